//! The synchronization primitives the cache is built on, in one place, so that a model
//! checker can stand in for them: with the `shuttle` feature (for tests only), every lock,
//! condition variable and thread-local below is Shuttle's, and the unit tests in
//! `src/table/single_flight/model.rs` explore the in-flight protocol's interleavings.

#[cfg(not(feature = "shuttle"))]
pub(crate) use parking_lot::{Mutex, MutexGuard, RwLock};
#[cfg(not(feature = "shuttle"))]
pub(crate) use read_mostly::{ReadGuard, ReadMostly};
#[cfg(not(feature = "shuttle"))]
pub(crate) use std::thread_local;

#[cfg(feature = "shuttle")]
pub(crate) use shuttle::thread_local;
#[cfg(feature = "shuttle")]
pub(crate) use shuttle_backed::{
    Mutex, MutexGuard, RwLock, RwLock as ReadMostly, RwLockReadGuard as ReadGuard,
};

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

/// A lock for data read far more often than written (a shard's entries): a reader locks
/// the slot of its thread's group, on a cache line of its own, so readers on different
/// cores write no shared line; a writer locks every slot (crossbeam's `ShardedLock`, 8
/// slots). A panic under the write lock poisons nothing here: the table's invariants do
/// not depend on a write finishing (user code never runs under it).
#[cfg(not(feature = "shuttle"))]
mod read_mostly {
    use std::sync::PoisonError;

    use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};

    pub(crate) type ReadGuard<'a, T> = ShardedLockReadGuard<'a, T>;

    pub(crate) struct ReadMostly<T>(ShardedLock<T>);

    impl<T> ReadMostly<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(ShardedLock::new(value))
        }
        #[inline]
        pub(crate) fn read(&self) -> ReadGuard<'_, T> {
            self.0.read().unwrap_or_else(PoisonError::into_inner)
        }
        pub(crate) fn write(&self) -> ShardedLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(PoisonError::into_inner)
        }
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
