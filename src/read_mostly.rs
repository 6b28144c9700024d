//! A lock for data read far more often than written, whose readers write no cache line
//! that readers on other cores write: a shard's entries, which every hit reads.
//!
//! A `RwLock` counts its readers in one word, so every hit on a shard writes that word,
//! and two cores hitting one hot key pass its line back and forth (the `hot_key`
//! benchmark: 0.8× the throughput of one thread). Here each reader counts itself in the
//! slot of its thread's stripe, a cache line of its own, and a writer announces itself
//! in a flag that readers only read:
//!
//! - a reader adds 1 to its slot, then reads the flag: clear, it is in; set, it takes
//!   its 1 back and waits for the writer (by taking the writers' mutex, so it blocks
//!   rather than spins);
//! - a writer takes the writers' mutex, sets the flag, then waits for every slot to
//!   read 0 (asleep: the last reader to leave a slot while the flag is set wakes it);
//!   it clears the flag when done (a `Release` store: the clear takes no part in the
//!   handshake below, and a reader's `SeqCst` load of it is an acquire).
//!
//! Exclusion is Dekker's argument: the reader's add and read of the flag, and the
//! writer's set of the flag and reads of the slots, are `SeqCst`, so in their single
//! total order either the reader's add comes before the writer's read of that slot (and
//! the writer waits for it), or the writer's set comes before the reader's read of the
//! flag (and the reader steps back). The same order makes the wake-up safe: a reader
//! that leaves its slot empty and then reads the flag clear left before the writer read
//! that slot. A writer costs one mutex, one store and one load per slot; there are as
//! many slots as cores, up to [`SLOTS`].
//!
//! Like `parking_lot`'s lock, it is not reentrant: a thread holding a guard must not
//! lock the same `ReadMostly` again (the table never does, and user code under its
//! locks cannot, see [`crate::lock_scope`]). Nothing is poisoned: the table's invariants
//! do not depend on a write finishing, and no user code runs under a write guard.
//!
//! This is the crate's only `unsafe`: a guard hands out the data behind an `UnsafeCell`.
//! The Shuttle models in `table/single_flight/model.rs` run it with Shuttle's atomics,
//! mutex and yields, including one that checks readers never see a write half done.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::num::NonZero;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use crate::sync::atomic::{
    AtomicBool, AtomicUsize,
    Ordering::{Release, SeqCst},
};
use crate::sync::{Condvar, Mutex, MutexGuard, stripe};

/// The most reader slots a lock has: readers on more cores than this share slots.
pub(crate) const SLOTS: usize = 8;

/// The data, its reader slots, and the writers' flag and mutex.
pub(crate) struct ReadMostly<T> {
    /// Readers inside, per stripe of threads.
    readers: Box<[Slot]>,
    /// Set while a writer holds the lock or waits for readers to leave.
    writing: AtomicBool,
    /// Writers take it one at a time; readers who meet a writer wait on it.
    writer: Mutex<()>,
    /// Where a writer sleeps until the readers inside have left, woken by the last one.
    drained: Mutex<()>,
    left: Condvar,
    data: UnsafeCell<T>,
}

/// One stripe's reader count, on two cache lines of its own (the unit x86 prefetches).
#[repr(align(128))]
struct Slot(AtomicUsize);

// SAFETY: `ReadMostly<T>` hands out `&T` to several threads at once (through read guards)
// and `&mut T` to one thread at a time, never both (the exclusion argued in the module
// docs), as `RwLock<T>` does; so, like `RwLock<T>`, it may be shared between threads when
// `T` may be sent (a writer may drop or replace what another thread stored) and shared.
unsafe impl<T: Send + Sync> Sync for ReadMostly<T> {}

/// Reader slots for this machine: one per core, a power of two, at most [`SLOTS`].
fn slot_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
        cores.next_power_of_two().min(SLOTS)
    })
}

impl<T> ReadMostly<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            readers: (0..slot_count())
                .map(|_| Slot(AtomicUsize::new(0)))
                .collect(),
            writing: AtomicBool::new(false),
            writer: Mutex::new(()),
            drained: Mutex::new(()),
            left: Condvar::default(),
            data: UnsafeCell::new(value),
        }
    }

    /// Shared access; waits while a writer is in.
    #[inline]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        self.read_in(stripe())
    }

    /// [`read`](Self::read), for a caller that knows its thread's stripe already.
    #[inline]
    pub(crate) fn read_in(&self, stripe: usize) -> ReadGuard<'_, T> {
        let slot = &self.readers[stripe & (self.readers.len() - 1)].0;
        loop {
            slot.fetch_add(1, SeqCst);
            if !self.writing.load(SeqCst) {
                return ReadGuard { lock: self, slot };
            }
            // The writer may have seen this reader's 1 and gone to sleep on it.
            if slot.fetch_sub(1, SeqCst) == 1 {
                self.wake_writer();
            }
            self.wait_for_writer();
        }
    }

    #[cold]
    #[inline(never)]
    fn wait_for_writer(&self) {
        // The writer holds the mutex until it is done: taking it is the wait.
        drop(self.writer.lock());
    }

    /// Exclusive access; waits for the readers inside to leave.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        let writer = self.writer.lock();
        self.writing.store(true, SeqCst);
        for slot in &self.readers {
            if slot.0.load(SeqCst) != 0 {
                self.wait_for_readers(&slot.0);
            }
        }
        WriteGuard {
            lock: self,
            _writer: writer,
        }
    }
}

impl<T> ReadMostly<T> {
    /// Sleeps until `slot` is empty. Checked under `drained`, which a leaving reader
    /// takes before waking the writer, so the wake-up cannot fall between the check and
    /// the sleep.
    #[cold]
    #[inline(never)]
    fn wait_for_readers(&self, slot: &AtomicUsize) {
        let mut drained = self.drained.lock();
        while slot.load(SeqCst) != 0 {
            drained = self.left.wait(drained);
        }
    }

    /// Wakes the writer waiting for the slot this reader just left empty.
    #[cold]
    #[inline(never)]
    fn wake_writer(&self) {
        let _drained = self.drained.lock();
        self.left.notify_all();
    }
}

/// Shared access to a [`ReadMostly`]'s data; leaves its slot when dropped.
pub(crate) struct ReadGuard<'a, T> {
    lock: &'a ReadMostly<T>,
    slot: &'a AtomicUsize,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard's count in its slot is non-zero from before it read the
        // writers' flag clear until it is dropped, so no writer is in meanwhile (module
        // docs): nothing writes the data while this `&T` lives, which borrows the guard.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.slot.fetch_sub(1, SeqCst) == 1 && self.lock.writing.load(SeqCst) {
            self.lock.wake_writer();
        }
    }
}

/// Exclusive access to a [`ReadMostly`]'s data; lets readers in again when dropped.
pub(crate) struct WriteGuard<'a, T> {
    lock: &'a ReadMostly<T>,
    _writer: MutexGuard<'a, ()>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: as in `deref_mut`; a shared borrow of the guard gives a shared `&T`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds the writers' mutex, so no other writer is in, and it
        // saw every reader slot at 0 after setting the flag that keeps new readers out
        // (module docs); the flag stays set until the guard is dropped. So nothing else
        // reads or writes the data while this `&mut T`, which borrows the guard
        // mutably, lives.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // Before the mutex is released (the field drops after this), so a reader
        // waiting on it finds the flag clear. `Release` suffices: only the set takes
        // part in the store-then-load handshake with the readers' slots, and a reader
        // that reads this clear sees the writer's data (its load is `SeqCst`, so an
        // acquire). On x86 a plain store, not the `xchg` (a full barrier) of `SeqCst`.
        self.lock.writing.store(false, Release);
    }
}

/// Model checking of the lock with Shuttle (`cargo test --features shuttle --lib
/// model`): writers that change the data in two steps, with a yield between, and readers
/// that look twice with a yield between, in random interleavings. Checked in each: no
/// reader sees a write half done or a write between its two looks, no write is lost, and
/// nobody waits forever (Shuttle fails a run in which every thread is blocked).
#[cfg(all(test, feature = "shuttle"))]
mod model {
    use std::sync::Arc;

    use super::ReadMostly;

    const EXPLORATIONS: usize = 3_000;

    #[test]
    fn readers_never_see_a_write_half_done() {
        shuttle::check_random(
            || {
                let lock = Arc::new(ReadMostly::new((0u64, 0u64)));
                let writers = (0..2).map(|_| {
                    let lock = Arc::clone(&lock);
                    shuttle::thread::spawn(move || {
                        for _ in 0..2 {
                            let mut data = lock.write();
                            data.0 += 1;
                            shuttle::thread::yield_now();
                            data.1 += 1;
                        }
                    })
                });
                let readers = (0..2).map(|_| {
                    let lock = Arc::clone(&lock);
                    shuttle::thread::spawn(move || {
                        for _ in 0..3 {
                            let data = lock.read();
                            let seen = *data;
                            shuttle::thread::yield_now();
                            assert_eq!(*data, seen, "a write came in between two looks");
                            assert_eq!(seen.0, seen.1, "a write was seen half done");
                        }
                    })
                });
                let threads: Vec<_> = writers.chain(readers).collect();
                for thread in threads {
                    thread.join().unwrap();
                }
                assert_eq!(*lock.read(), (4, 4), "a write was lost");
            },
            EXPLORATIONS,
        );
    }
}
