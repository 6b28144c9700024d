//! The objects an entry belongs to, held weakly: a method's receiver, the object
//! arguments beside it, or nothing at all.
//!
//! An entry holds a `Weak` to each of its owners and matches a call only if every one
//! of them is the call's by address. The call holds a strong `Arc` to each, and each
//! `Weak` has kept its allocation from being freed since the entry was made, so a match
//! is the very objects the entry was made for: alive, and never a recycled address. An
//! entry whose owners are not all alive can never match, and is purged like a dead
//! receiver's (JAX's `multi_weakref_lru_cache` has the same rule). Owners' own `Hash`
//! and `Eq` are never called.

use std::hash::Hash;
use std::sync::{Arc, Weak};

use crate::identity::{owner_addr, weak_addr};

/// The objects a call's entry belongs to: `&Arc<T>` (a method's receiver), a tuple of
/// up to four `&Arc`s (a receiver and object arguments, each held weakly, by identity),
/// or `()` (a function of its arguments alone, whose entries nothing frees but a bound,
/// a TTL or invalidation).
///
/// The entry lives while all of its owners live; it is never returned once one of them
/// is dropped, and lazy purging removes it.
///
/// ```
/// use std::sync::Arc;
/// use weakmemo::Registry;
///
/// struct Doc(String);
/// fn overlap((a, b): (&Arc<Doc>, &Arc<Doc>), &(): &()) -> usize {
///     a.0.chars().filter(|c| b.0.contains(*c)).count()
/// }
///
/// let cache = Registry::new();
/// let (a, b) = (Arc::new(Doc("abc".into())), Arc::new(Doc("bcd".into())));
/// assert_eq!(cache.method(overlap).call((&a, &b), ()), 2);
/// let watch = Arc::downgrade(&b);
/// drop(b);
/// assert!(watch.upgrade().is_none()); // the cache did not keep the argument alive
/// assert_eq!(cache.purge(), 1);
/// ```
pub trait Owners: Copy + sealed::Sealed {
    /// What an entry holds of its owners.
    #[doc(hidden)]
    type Held: Held;
    /// The owners' addresses, part of the key.
    #[doc(hidden)]
    fn addrs(self) -> <Self::Held as Held>::Addrs;
    /// `Weak`s to the owners, for a new entry.
    #[doc(hidden)]
    fn downgrade(self) -> Self::Held;
}

/// What an entry holds of its owners (see [`Owners`]).
#[doc(hidden)]
pub trait Held: Send + Sync + 'static {
    /// The owners' addresses, in order.
    type Addrs: Addresses;
    /// The addresses the `Weak`s point to.
    fn addrs(&self) -> Self::Addrs;
    /// Whether an owner is dead, so that the entry can never match again.
    fn is_dead(&self) -> bool;
    /// Whether one of the owners is the allocation at `addr`.
    fn holds(&self, addr: usize) -> bool;
}

mod sealed {
    pub trait Sealed {}
}

impl<T: ?Sized + Send + Sync + 'static> sealed::Sealed for &Arc<T> {}

impl<T: ?Sized + Send + Sync + 'static> Owners for &Arc<T> {
    type Held = Weak<T>;

    #[inline]
    fn addrs(self) -> usize {
        owner_addr(self)
    }

    fn downgrade(self) -> Weak<T> {
        Arc::downgrade(self)
    }
}

impl<T: ?Sized + Send + Sync + 'static> Held for Weak<T> {
    type Addrs = usize;

    #[inline]
    fn addrs(&self) -> usize {
        weak_addr(self)
    }

    fn is_dead(&self) -> bool {
        self.strong_count() == 0
    }

    fn holds(&self, addr: usize) -> bool {
        weak_addr(self) == addr
    }
}

impl sealed::Sealed for () {}

/// No owner: the entry belongs to the function alone.
impl Owners for () {
    type Held = ();

    #[inline]
    fn addrs(self) {}

    fn downgrade(self) {}
}

impl Held for () {
    type Addrs = ();

    #[inline]
    fn addrs(&self) {}

    fn is_dead(&self) -> bool {
        false
    }

    fn holds(&self, _: usize) -> bool {
        false
    }
}

macro_rules! owner_tuples {
    ($($n:literal: ($($t:ident $i:tt),+);)+) => {$(
        impl<$($t: ?Sized + Send + Sync + 'static),+> sealed::Sealed for ($(&Arc<$t>,)+) {}

        impl<$($t: ?Sized + Send + Sync + 'static),+> Owners for ($(&Arc<$t>,)+) {
            type Held = ($(Weak<$t>,)+);

            #[inline]
            fn addrs(self) -> [usize; $n] {
                [$(owner_addr(self.$i)),+]
            }

            fn downgrade(self) -> Self::Held {
                ($(Arc::downgrade(self.$i),)+)
            }
        }

        impl<$($t: ?Sized + Send + Sync + 'static),+> Held for ($(Weak<$t>,)+) {
            type Addrs = [usize; $n];

            #[inline]
            fn addrs(&self) -> [usize; $n] {
                [$(weak_addr(&self.$i)),+]
            }

            fn is_dead(&self) -> bool {
                $(self.$i.strong_count() == 0)||+
            }

            fn holds(&self, addr: usize) -> bool {
                $(weak_addr(&self.$i) == addr)||+
            }
        }
    )+};
}

owner_tuples! {
    2: (A 0, B 1);
    3: (A 0, B 1, C 2);
    4: (A 0, B 1, C 2, D 3);
}

/// The owners' addresses of a key: one, none, or a few.
#[doc(hidden)]
pub trait Addresses: Copy + Eq + Hash + Send + Sync + 'static {
    /// Whether `addr` is among them.
    fn contains(&self, addr: usize) -> bool {
        self.as_slice().contains(&addr)
    }
    /// The addresses, in order.
    fn as_slice(&self) -> &[usize];
}

impl Addresses for usize {
    fn as_slice(&self) -> &[usize] {
        std::slice::from_ref(self)
    }
}

impl Addresses for () {
    fn as_slice(&self) -> &[usize] {
        &[]
    }
}

impl<const N: usize> Addresses for [usize; N] {
    fn as_slice(&self) -> &[usize] {
        self
    }
}
