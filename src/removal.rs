//! Why entries leave, and the listener a registry tells of each one.

use std::any::{Any, TypeId};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::identity::Method;
use crate::sync::Mutex;

/// Why an entry left its cache; each cause has its counter in [`Stats`](crate::Stats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Its owner was dropped: removed by a lazy purge step, by [`purge`], by a table
    /// sweeping before it grows, or by a bound, which takes such entries first.
    /// Counted in [`Stats::purged`](crate::Stats::purged).
    ///
    /// [`purge`]: crate::Registry::purge
    Collected,
    /// A bound (the method's or the registry's) needed its room. Counted in
    /// [`Stats::evicted`](crate::Stats::evicted).
    Size,
    /// It outlived its method's time to live. Counted in
    /// [`Stats::expired`](crate::Stats::expired).
    Expired,
    /// [`invalidate`](crate::Memo::invalidate), `invalidate_owner` or `clear` (a
    /// handle's or the registry's) removed it. Counted in
    /// [`Stats::invalidated`](crate::Stats::invalidated).
    Explicit,
}

/// An entry leaving its cache, as a [`RemovalListener`] sees it: the cause, the method,
/// and the entry's arguments and value, typed as the method's.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use weakmemo::{Registry, Removal, RemovalCause};
///
/// fn square(n: &Arc<u64>, &k: &u64) -> u64 { **n * k * k }
///
/// static SEEN: Mutex<Vec<(RemovalCause, u64, u64)>> = Mutex::new(Vec::new());
/// let cache = Registry::new();
/// cache.set_removal_listener(Some(Arc::new(|removal: &Removal<'_>| {
///     if removal.is_method(square) {
///         let (&k, &value) = (removal.args::<u64>().unwrap(), removal.value::<u64>().unwrap());
///         SEEN.lock().unwrap().push((removal.cause(), k, value));
///     }
/// })));
/// let n = Arc::new(1);
/// let squares = cache.method(square);
/// squares.call(&n, 3);
/// squares.invalidate(&n, &3);
/// assert_eq!(*SEEN.lock().unwrap(), [(RemovalCause::Explicit, 3, 9)]);
/// ```
pub struct Removal<'a> {
    pub(crate) cause: RemovalCause,
    pub(crate) method: TypeId,
    pub(crate) name: &'static str,
    pub(crate) args: &'a dyn Any,
    pub(crate) value: &'a dyn Any,
}

impl Removal<'_> {
    /// Why the entry left.
    #[must_use]
    pub fn cause(&self) -> RemovalCause {
        self.cause
    }

    /// Whether the entry was `method`'s (stored through any of its handles: by `call`,
    /// `try_call` or their async twins).
    #[must_use]
    pub fn is_method<O, A, K, F: Method<O, A, K>>(&self, method: F) -> bool {
        let _ = method;
        TypeId::of::<F>() == self.method
    }

    /// The method's type name, as `std::any::type_name` spells it: for logs.
    #[must_use]
    pub fn method_name(&self) -> &'static str {
        self.name
    }

    /// The entry's arguments, if they are an `A`.
    #[must_use]
    pub fn args<A: 'static>(&self) -> Option<&A> {
        self.args.downcast_ref()
    }

    /// The entry's value, if it is a `V` (for `try_call`, the `Ok` value).
    #[must_use]
    pub fn value<V: 'static>(&self) -> Option<&V> {
        self.value.downcast_ref()
    }
}

impl fmt::Debug for Removal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Removal")
            .field("cause", &self.cause)
            .field("method", &self.name)
            .finish_non_exhaustive()
    }
}

/// A function told of every entry that leaves a registry's caches, with its cause; see
/// [`Registry::set_removal_listener`](crate::Registry::set_removal_listener).
pub type RemovalListener = Arc<dyn Fn(&Removal<'_>) + Send + Sync>;

/// A registry's listener, read by its tables each time they remove entries.
#[derive(Default)]
pub(crate) struct ListenerSlot {
    set: AtomicBool,
    listener: Mutex<Option<RemovalListener>>,
}

impl ListenerSlot {
    pub(crate) fn replace(&self, listener: Option<RemovalListener>) -> Option<RemovalListener> {
        let mut slot = self.listener.lock();
        self.set.store(listener.is_some(), Relaxed);
        std::mem::replace(&mut *slot, listener)
    }

    /// The listener, if one is set; one relaxed load when none is.
    #[inline]
    pub(crate) fn get(&self) -> Option<RemovalListener> {
        if self.set.load(Relaxed) {
            self.listener.lock().clone()
        } else {
            None
        }
    }
}

/// Tells `listener` of one removal. The cache's state is settled before this runs (no
/// lock held, counters and bounds updated), so a panic here is caught and the caller
/// goes on: the panic hook has already reported it, and there is nothing to undo.
pub(crate) fn tell(listener: &RemovalListener, removal: &Removal<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| listener(removal)));
}
