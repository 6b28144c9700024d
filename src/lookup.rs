//! Arguments as a call passes them, and as an entry stores them: owned arguments are
//! moved in, borrowed ones (`&str`, `&[T]`, `&Path`, ...) are looked up as they are and
//! made owned only when a miss stores them, so a hit allocates nothing.
//!
//! The hash of a call's arguments is the hash of what the call passes (an entry keeps
//! the hash it was stored with), so a borrowed form must hash as its owned form does:
//! `str` as `String`, a slice as a `Vec`, which is what `Borrow` promises.

use std::borrow::Borrow;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// Arguments a call passes, looked up against stored arguments of type `K`, and made
/// into a `K` when a miss stores them.
///
/// - Any `K` is its own lookup: it is moved into the entry on a miss.
/// - `&str`, `&[T]`, `&Path`, `&OsStr` and `&CStr` look up `String`, `Vec<T>`,
///   `PathBuf`, `OsString` and `CString`; [`Borrowed`] does the same for any `&U` where
///   `U: ToOwned`.
/// - [`Parts`] looks a tuple up part by part, so that `Parts((name, 3))` with a `&str`
///   name looks up a `(String, u32)`.
///
/// A hit compares with `matches` and allocates nothing; `into_key` runs only on a miss
/// (`get` and `invalidate` take `&Q` and never run it).
/// For a lookup type of your own (a struct of borrowed fields looking up a struct of
/// owned ones, say), implement [`Part`], which makes it a `Lookup` too; it must hash as
/// the key it looks up.
///
/// ```
/// use std::sync::Arc;
/// use weakmemo::{Parts, Registry};
///
/// fn greet(site: &Arc<String>, (name, times): &(String, usize)) -> String {
///     format!("{site}: {}", name.repeat(*times))
/// }
///
/// let cache = Registry::new();
/// let site = Arc::new("home".to_string());
/// let name: &str = "hi";
/// assert_eq!(cache.method(greet).call(&site, Parts((name, 2))), "home: hihi"); // stores ("hi", 2)
/// assert_eq!(cache.method(greet).call(&site, Parts((name, 2))), "home: hihi"); // no allocation
/// assert_eq!(cache.method(greet).get(&site, &Parts((name, 2))).as_deref(), Some("home: hihi"));
/// ```
pub trait Lookup<K>: Hash {
    /// Whether these arguments are the stored `key`.
    fn matches(&self, key: &K) -> bool;
    /// The arguments to store.
    fn into_key(self) -> K;
}

/// One argument is looked up as a [`Part`]: itself, or a borrowed form.
impl<K, Q: Part<K>> Lookup<K> for Q {
    #[inline]
    fn matches(&self, key: &K) -> bool {
        Part::matches(self, key)
    }

    fn into_key(self) -> K {
        Part::into_key(self)
    }
}

/// `&U` for any `U: ToOwned`, looked up against `U::Owned` (which hashes as `U`, as
/// `Borrow` promises) and made owned only on a miss.
///
/// `&str`, `&[T]`, `&Path`, `&OsStr` and `&CStr` need no wrapper.
///
/// ```
/// use std::sync::Arc;
/// use weakmemo::{Borrowed, Registry};
///
/// #[derive(Clone, Hash, PartialEq, Eq)]
/// struct Query(String);
///
/// fn run(db: &Arc<u32>, query: &Query) -> usize { query.0.len() + **db as usize }
///
/// let cache = Registry::new();
/// let db = Arc::new(1);
/// let query = Query("select".into());
/// assert_eq!(cache.method(run).call(&db, Borrowed(&query)), 7); // cloned, once
/// assert_eq!(cache.method(run).call(&db, Borrowed(&query)), 7); // not cloned
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Borrowed<'a, U: ?Sized>(pub &'a U);

impl<U: ?Sized + Hash> Hash for Borrowed<'_, U> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl<U: ?Sized + ToOwned + Hash + Eq> Part<U::Owned> for Borrowed<'_, U> {
    #[inline]
    fn matches(&self, key: &U::Owned) -> bool {
        self.0 == key.borrow()
    }

    fn into_key(self) -> U::Owned {
        self.0.to_owned()
    }
}

macro_rules! borrowed_forms {
    ($($borrowed:ty => $owned:ty),+ $(,)?) => {$(
        impl Part<$owned> for &$borrowed {
            #[inline]
            fn matches(&self, key: &$owned) -> bool {
                **self == *Borrow::<$borrowed>::borrow(key)
            }

            fn into_key(self) -> $owned {
                self.to_owned()
            }
        }
    )+};
}

borrowed_forms! {
    str => String,
    Path => PathBuf,
    OsStr => OsString,
    CStr => CString,
}

impl<T: Hash + Eq + Clone> Part<Vec<T>> for &[T] {
    #[inline]
    fn matches(&self, key: &Vec<T>) -> bool {
        *self == key.as_slice()
    }

    fn into_key(self) -> Vec<T> {
        self.to_vec()
    }
}

/// One argument looked up against its stored form `K`: any `K` itself (moved in on a
/// miss), or a borrowed form (see [`Lookup`]). Every `Part` is a `Lookup`, alone or in
/// [`Parts`]; implement this one for a lookup type of your own.
pub trait Part<K>: Hash {
    /// Whether this argument is the stored `key`.
    fn matches(&self, key: &K) -> bool;
    /// The argument to store.
    fn into_key(self) -> K;
}

impl<K: Hash + Eq> Part<K> for K {
    #[inline]
    fn matches(&self, key: &K) -> bool {
        self == key
    }

    fn into_key(self) -> K {
        self
    }
}

/// A tuple of arguments looked up part by part (see [`Lookup`]): `Parts((name, n))`
/// with `name: &str` and `n: u32` looks up a stored `(String, u32)`, and hashes as it.
#[derive(Debug, Clone, Copy)]
pub struct Parts<T>(pub T);

macro_rules! part_tuples {
    ($(($($q:ident $k:ident $i:tt),+);)+) => {$(
        impl<$($q: Hash),+> Hash for Parts<($($q,)+)> {
            fn hash<S: Hasher>(&self, state: &mut S) {
                // As the tuple of stored parts hashes: each part in turn.
                $(self.0.$i.hash(state);)+
            }
        }

        impl<$($q: Part<$k>, $k),+> Lookup<($($k,)+)> for Parts<($($q,)+)> {
            #[inline]
            fn matches(&self, key: &($($k,)+)) -> bool {
                $(self.0.$i.matches(&key.$i))&&+
            }

            fn into_key(self) -> ($($k,)+) {
                ($(self.0.$i.into_key(),)+)
            }
        }
    )+};
}

part_tuples! {
    (A KA 0);
    (A KA 0, B KB 1);
    (A KA 0, B KB 1, C KC 2);
    (A KA 0, B KB 1, C KC 2, D KD 3);
    (A KA 0, B KB 1, C KC 2, D KD 3, E KE 4);
    (A KA 0, B KB 1, C KC 2, D KD 3, E KE 4, F KF 5);
    (A KA 0, B KB 1, C KC 2, D KD 3, E KE 4, F KF 5, G KG 6);
    (A KA 0, B KB 1, C KC 2, D KD 3, E KE 4, F KF 5, G KG 6, H KH 7);
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    /// A borrowed form hashes as the key it looks up, so either finds the same entry.
    #[test]
    fn borrowed_forms_hash_as_their_keys() {
        let seeded = hashbrown::DefaultHashBuilder::default();
        let same = |a: u64, b: u64| assert_eq!(a, b);
        same(seeded.hash_one("ab"), seeded.hash_one(String::from("ab")));
        same(
            seeded.hash_one(Parts(("ab", 3_u32))),
            seeded.hash_one((String::from("ab"), 3_u32)),
        );
        same(
            seeded.hash_one(Parts((Borrowed(&[1_u8, 2][..]), Path::new("/a")))),
            seeded.hash_one((vec![1_u8, 2], PathBuf::from("/a"))),
        );
    }

    #[test]
    fn parts_match_part_by_part_and_make_the_key() {
        let key = (String::from("ab"), 3_u32);
        assert!(Lookup::matches(&Parts(("ab", 3_u32)), &key));
        assert!(!Lookup::matches(&Parts(("ab", 4_u32)), &key));
        assert_eq!(Parts(("ab", 3_u32)).into_key(), key);
    }
}
