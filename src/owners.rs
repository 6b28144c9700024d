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
use std::rc::{Rc, Weak as RcWeak};
use std::sync::{Arc, Weak};

use crate::identity::{owner_addr, rc_addr, rc_weak_addr, weak_addr};

/// The objects a call's entry belongs to: `&Arc<T>` (a method's receiver), a tuple of
/// up to four `&Arc`s (a receiver and object arguments, each held weakly, by identity),
/// or `()` (a function of its arguments alone, whose entries nothing frees but a bound,
/// a TTL or invalidation). In a [`LocalRegistry`](crate::LocalRegistry), `&Rc<T>` and
/// tuples of `&Rc`s too (a [`Registry`](crate::Registry) refuses them: its entries cross
/// threads).
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
pub trait Held: 'static {
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

/// What a [`Registry`](crate::Registry) can hold of its owners: `Weak`s of `Send + Sync`
/// objects, since its entries cross threads. A [`LocalRegistry`](crate::LocalRegistry)
/// holds any [`Held`], `rc::Weak`s included.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "weakmemo: a `Registry` is shared by threads, so it cannot hold `{Self}`",
    label = "owners of a shared registry must be `Arc`s of `Send + Sync` objects",
    note = "for `Rc` owners, or objects that are not `Send + Sync`, use a `LocalRegistry` \
            (`weakmemo::local()`), which serves one thread"
)]
pub trait SharedHeld: Held + Send + Sync {}

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

impl SharedHeld for () {}

/// `&Arc<T>` and `&Rc<T>` owners, alone and in tuples: `$strong` is the pointer,
/// `$weak` its `Weak`, `$addr` and `$weak_addr` their addresses.
macro_rules! owners {
    ($strong:ident, $weak:ident, $addr:ident, $weak_addr:ident) => {
        impl<T: ?Sized + 'static> sealed::Sealed for &$strong<T> {}

        impl<T: ?Sized + 'static> Owners for &$strong<T> {
            type Held = $weak<T>;

            #[inline]
            fn addrs(self) -> usize {
                $addr(self)
            }

            fn downgrade(self) -> $weak<T> {
                $strong::downgrade(self)
            }
        }

        impl<T: ?Sized + 'static> Held for $weak<T> {
            type Addrs = usize;

            #[inline]
            fn addrs(&self) -> usize {
                $weak_addr(self)
            }

            fn is_dead(&self) -> bool {
                self.strong_count() == 0
            }

            fn holds(&self, addr: usize) -> bool {
                $weak_addr(self) == addr
            }
        }

        owners!(@tuples $strong, $weak, $weak_addr;
            2: (A 0, B 1);
            3: (A 0, B 1, C 2);
            4: (A 0, B 1, C 2, D 3);
        );
    };
    (@tuples $strong:ident, $weak:ident, $weak_addr:ident; $($n:literal: ($($t:ident $i:tt),+);)+) => {$(
        impl<$($t: ?Sized + 'static),+> sealed::Sealed for ($(&$strong<$t>,)+) {}

        impl<$($t: ?Sized + 'static),+> Owners for ($(&$strong<$t>,)+) {
            type Held = ($($weak<$t>,)+);

            #[inline]
            fn addrs(self) -> [usize; $n] {
                [$(Owners::addrs(self.$i)),+]
            }

            fn downgrade(self) -> Self::Held {
                ($($strong::downgrade(self.$i),)+)
            }
        }

        impl<$($t: ?Sized + 'static),+> Held for ($($weak<$t>,)+) {
            type Addrs = [usize; $n];

            #[inline]
            fn addrs(&self) -> [usize; $n] {
                [$($weak_addr(&self.$i)),+]
            }

            fn is_dead(&self) -> bool {
                $(self.$i.strong_count() == 0)||+
            }

            fn holds(&self, addr: usize) -> bool {
                $($weak_addr(&self.$i) == addr)||+
            }
        }
    )+};
}

owners!(Arc, Weak, owner_addr, weak_addr);
owners!(Rc, RcWeak, rc_addr, rc_weak_addr);

impl<T: ?Sized + Send + Sync + 'static> SharedHeld for Weak<T> {}

macro_rules! shared_tuples {
    ($(($($t:ident),+);)+) => {$(
        impl<$($t: ?Sized + Send + Sync + 'static),+> SharedHeld for ($(Weak<$t>,)+) {}
    )+};
}

shared_tuples! {
    (A, B);
    (A, B, C);
    (A, B, C, D);
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
