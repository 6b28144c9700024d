//! A shard: one lock over a part of a method's entries and of its keys in flight, with
//! its lookup counters on the same two cache lines; and the rarer counters its table
//! keeps for all shards.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use hashbrown::HashTable;

use super::entry::{Entry, KeyOf};
use super::expiry::Expiry;
use super::single_flight::in_flight::InFlight;
use crate::lock_scope::Scoped;
use crate::lookup::Lookup;
use crate::owners::SharedHeld;
use crate::removal::RemovalCause;
use crate::sync::{Mutex, ReadGuard, ReadMostly};

/// A shard's entries: the stored results, and the keys being computed now.
pub(super) struct Tables<H: SharedHeld, A, V> {
    pub(super) ready: HashTable<Entry<H, A, V>>,
    /// Kept apart from `ready` so that entries stay small and hits probe only stored
    /// results. Claims change it under the read lock, one at a time by its mutex; the
    /// completion and abandonment of a claim, and invalidations, under the write lock,
    /// without locking it.
    pub(super) in_flight: Mutex<InFlight<H::Addrs, A, V>>,
}

/// The result of a lookup, and whether this shard's turn at lazy purging has come.
pub(crate) struct Probe<'a, H: SharedHeld, A, V> {
    pub(crate) found: Result<V, Miss<'a, H, A, V>>,
    pub(crate) purge_due: bool,
}

/// A lookup that missed, still holding its shard's read lock, so that a claim can follow
/// with no moment in between at which the key could be stored: the read lock keeps out
/// `complete`, which stores a key and ends its pending entry under the write lock.
pub(crate) struct Miss<'a, H: SharedHeld, A, V> {
    pub(super) tables: Scoped<ReadGuard<'a, Tables<H, A, V>>>,
}

/// A part of a method's entries, behind a lock that readers take without writing a line
/// that readers on other cores take too: a hit writes nothing shared. Aligned to two
/// cache lines (the unit x86 prefetches), so that a write to one shard's table header
/// does not evict the next shard's from its readers' caches.
#[repr(align(128))]
pub(super) struct Shard<H: SharedHeld, A, V> {
    pub(super) tables: ReadMostly<Tables<H, A, V>>,
}

impl<H: SharedHeld, A, V> Default for Shard<H, A, V> {
    fn default() -> Self {
        Self {
            tables: ReadMostly::new(Tables {
                ready: HashTable::new(),
                in_flight: Mutex::new(InFlight::new()),
            }),
        }
    }
}

impl<H: SharedHeld, A: Eq, V: Clone> Shard<H, A, V> {
    #[inline]
    pub(super) fn find<Q: Lookup<A>>(
        &self,
        key: KeyOf<H>,
        args: &Q,
        expiry: &Expiry,
        stripe: usize,
    ) -> Result<V, Miss<'_, H, A, V>> {
        let tables = Scoped::lock(|| self.tables.read_in(stripe));
        match tables
            .ready
            .find(key.hash, |entry| entry.matches(key, args))
        {
            Some(entry) if !entry.is_expired(expiry.clock()) => {
                entry.visit();
                Ok(entry.value.clone())
            }
            // An expired entry stays until a store replaces it or a sweep takes it.
            _ => Err(Miss { tables }),
        }
    }
}

/// One stripe's lookup counters, on cache lines of its own (two: the unit x86
/// prefetches).
#[derive(Default)]
#[repr(align(128))]
pub(super) struct Lookups {
    /// Counted with a plain load and store, not a locked add: exact while each stripe
    /// has one thread, and may lose increments when threads of one stripe hit at once.
    pub(super) hits: AtomicU64,
    /// Lookups left before this stripe triggers a lazy purge step; racy like `hits`.
    pub(super) until_purge: AtomicUsize,
    pub(super) misses: AtomicU64,
}

impl Lookups {
    /// Counts one lookup; true once every `interval` lookups (never when it is 0).
    #[inline]
    pub(super) fn count(&self, hit: bool, interval: usize) -> bool {
        if hit {
            self.hits
                .store(self.hits.load(Relaxed).wrapping_add(1), Relaxed);
        } else {
            self.misses.fetch_add(1, Relaxed);
        }
        if interval == 0 {
            return false;
        }
        // 0 is a fresh stripe; more than `interval` means the interval was lowered.
        let left = match self.until_purge.load(Relaxed) {
            0 => interval,
            left => left.min(interval),
        };
        let due = left == 1;
        self.until_purge
            .store(if due { interval } else { left - 1 }, Relaxed);
        due
    }
}

/// Counters of events rarer than lookups, shared by a method's shards.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) purged: AtomicU64,
    pub(super) invalidated: AtomicU64,
    pub(super) discarded: AtomicU64,
    pub(super) waited: AtomicU64,
    pub(super) evicted: AtomicU64,
    pub(super) expired: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, count: usize) {
        if count > 0 {
            counter.fetch_add(count as u64, Relaxed);
        }
    }

    pub(super) fn of(&self, cause: RemovalCause) -> &AtomicU64 {
        match cause {
            RemovalCause::Collected => &self.purged,
            RemovalCause::Size => &self.evicted,
            RemovalCause::Expired => &self.expired,
            RemovalCause::Explicit => &self.invalidated,
        }
    }
}
