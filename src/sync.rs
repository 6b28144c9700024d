//! The synchronization primitives the cache is built on, in one place, so that a model
//! checker can stand in for them: with the `shuttle` feature (for tests only), every lock,
//! condition variable and thread-local below is Shuttle's, and the unit tests in
//! `src/table/single_flight/model.rs` explore the in-flight protocol's interleavings.

#[cfg(not(feature = "shuttle"))]
pub(crate) use parking_lot::{Mutex, MutexGuard, RwLock};
#[cfg(not(feature = "shuttle"))]
pub(crate) use std::sync::atomic;
#[cfg(not(feature = "shuttle"))]
pub(crate) use std::thread_local;

#[cfg(feature = "shuttle")]
pub(crate) use shuttle::sync::atomic;
#[cfg(feature = "shuttle")]
pub(crate) use shuttle::thread_local;
#[cfg(feature = "shuttle")]
pub(crate) use shuttle_backed::{Mutex, MutexGuard, RwLock};

pub(crate) use crate::read_mostly::{ReadGuard, ReadMostly};

/// Stripes of threads: per-thread counters and reader slots are indexed by a thread's
/// stripe, so that threads on different cores (up to this many) write different lines.
pub(crate) const STRIPES: usize = 8;

#[cfg(not(feature = "shuttle"))]
thread_local! {
    /// This thread's stripe, given in turn as threads first need one.
    static STRIPE: usize = {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES
    };
}

/// The calling thread's stripe, below [`STRIPES`].
#[cfg(not(feature = "shuttle"))]
#[inline]
pub(crate) fn stripe() -> usize {
    STRIPE.with(|stripe| *stripe)
}

/// The calling task's stripe: from its id, so that every execution of a model gives the
/// same stripes (Shuttle's depth-first search replays executions, which must not differ).
#[cfg(feature = "shuttle")]
pub(crate) fn stripe() -> usize {
    usize::from(shuttle::current::me()) % STRIPES
}

/// A condition variable whose `wait` takes and returns the guard, which both backends
/// can provide without `unsafe`.
#[derive(Default)]
pub(crate) struct Condvar {
    #[cfg(not(feature = "shuttle"))]
    inner: parking_lot::Condvar,
    #[cfg(feature = "shuttle")]
    inner: shuttle::sync::Condvar,
}

impl Condvar {
    #[cfg(not(feature = "shuttle"))]
    pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.inner.wait(&mut guard);
        guard
    }

    #[cfg(feature = "shuttle")]
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.inner
            .wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }
}

/// Shuttle's `std`-shaped locks behind `parking_lot`-shaped methods (no poisoning).
#[cfg(feature = "shuttle")]
mod shuttle_backed {
    use std::sync::PoisonError;

    pub(crate) type MutexGuard<'a, T> = shuttle::sync::MutexGuard<'a, T>;
    pub(crate) type RwLockReadGuard<'a, T> = shuttle::sync::RwLockReadGuard<'a, T>;

    #[derive(Default)]
    pub(crate) struct Mutex<T>(shuttle::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(shuttle::sync::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
        }
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok()
        }
    }

    pub(crate) struct RwLock<T>(shuttle::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(shuttle::sync::RwLock::new(value))
        }
        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(PoisonError::into_inner)
        }
        pub(crate) fn write(&self) -> shuttle::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(PoisonError::into_inner)
        }
    }
}
