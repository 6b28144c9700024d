//! What the registry does to every method's table, whatever its types: the erased face
//! of a table, for purging, bounds, statistics and registry-wide invalidation.

use std::any::Any;
use std::hash::Hash;
use std::sync::atomic::Ordering::Relaxed;

use super::MethodCache;
use super::entry::Entry;
use super::removals::{Removals, resume};
use crate::lock_scope::Scoped;
use crate::owners::{Addresses, SharedHeld};
use crate::removal::RemovalCause;
use crate::stats::Stats;

/// The operations the registry runs over every method, whatever its types.
pub(crate) trait ErasedCache: Any + Send + Sync {
    fn shard_count(&self) -> usize;
    /// Removes dead owners' and expired entries among `budget` buckets of one shard from
    /// `from` on.
    fn sweep_step(&self, shard: usize, from: usize, budget: usize) -> SweepStep;
    /// Removes every dead owner's and expired entry; returns how many.
    fn purge(&self) -> usize;
    /// Removes every entry of the owner at `addr`.
    fn remove_owner(&self, addr: usize) -> usize;
    /// Removes the entries of the dead owner at `addr`: those of the key `hash`, or,
    /// without one, all of them (a scan of every shard).
    fn remove_dead(&self, addr: usize, hash: Option<u64>) -> usize;
    /// Removes every entry.
    fn clear(&self) -> usize;
    fn add_stats(&self, stats: &mut Stats);
    /// Bounds the method's weight (`usize::MAX`: no bound of its own).
    fn set_capacity(&self, capacity: usize);
    /// Gives the method a CLOCK hand, for the registry's bound to evict with.
    fn track(&self);
    /// The weight of the method's entries (and of its stores under way).
    fn weight(&self) -> usize;
    /// Evicts one entry by the method's CLOCK hand, for the registry's bound; false if
    /// none could go.
    fn evict_one(&self) -> bool;
    /// Gives the method its own TTL (ms), or (`None`) the registry's, `inherited`.
    fn set_ttl(&self, own: Option<u64>, inherited: u64);
    /// Takes the registry's TTL (ms), unless the method has its own.
    fn inherit_ttl(&self, ttl: u64);
}

/// What one [`ErasedCache::sweep_step`] did.
pub(crate) struct SweepStep {
    /// Buckets looked at.
    pub(crate) visited: usize,
    /// Where the next step on this shard starts, or `None` at the end of the shard.
    pub(crate) next: Option<usize>,
}

impl<H, A, V> ErasedCache for MethodCache<H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn shard_count(&self) -> usize {
        self.made_shards().len()
    }

    fn sweep_step(&self, shard: usize, from: usize, budget: usize) -> SweepStep {
        let shard = &self.made_shards()[shard];
        let clock = self.expiry.clock();
        // Look under the read lock, so hits go on; write-lock only to remove.
        let (end, buckets, stale_at) = {
            let tables = Scoped::lock(|| shard.tables.read());
            let table = &tables.ready;
            let buckets = table.num_buckets();
            let end = buckets.min(from.saturating_add(budget));
            let stale_at: Vec<usize> = (from..end)
                .filter(|&index| {
                    table
                        .get_bucket(index)
                        .is_some_and(|e| e.stale(clock).is_some())
                })
                .collect();
            (end, buckets, stale_at)
        };
        let mut removals = Removals::new(self);
        if !stale_at.is_empty() {
            let mut tables = Scoped::lock(|| shard.tables.write());
            let table = &mut tables.ready;
            for index in stale_at {
                // The table may have changed in between: check again before removing.
                if let Ok(entry) = table.get_bucket_entry(index) {
                    if let Some(cause) = entry.get().stale(clock) {
                        removals.push(entry.remove().0, cause);
                    }
                }
            }
        }
        resume(removals.settle());
        SweepStep {
            visited: end.saturating_sub(from),
            next: (end < buckets).then_some(end),
        }
    }

    fn purge(&self) -> usize {
        let clock = self.expiry.clock();
        self.remove_where(|entry| entry.stale(clock), |_| false)
    }

    fn remove_owner(&self, addr: usize) -> usize {
        self.remove_where(
            |entry| entry.belongs_to(addr).then_some(RemovalCause::Explicit),
            |pending| pending.addrs().contains(addr),
        )
    }

    fn remove_dead(&self, addr: usize, hash: Option<u64>) -> usize {
        let dead = |entry: &Entry<H, A, V>| entry.belongs_to(addr) && entry.is_dead();
        let Some(hash) = hash else {
            return self.remove_where(
                |entry| dead(entry).then_some(RemovalCause::Collected),
                |_| false,
            );
        };
        // A key's entries are in its hash's shard, made by the store that recorded it.
        let Some(shard) = self.shard_of(hash) else {
            return 0;
        };
        let mut removals = Removals::new(self);
        {
            let mut tables = Scoped::lock(|| shard.tables.write());
            // Keys of one hash may differ in their arguments: take every one.
            while let Ok(entry) = tables
                .ready
                .find_entry(hash, |entry| entry.hash() == hash && dead(entry))
            {
                removals.push(entry.remove().0, RemovalCause::Collected);
            }
        }
        let count = removals.len();
        resume(removals.settle());
        count
    }

    fn clear(&self) -> usize {
        self.remove_where(|_| Some(RemovalCause::Explicit), |_| true)
    }

    /// Bounds the method to `capacity` (`usize::MAX`: no bound of its own). Entries
    /// over a lowered bound leave as newcomers arrive, not at once.
    fn set_capacity(&self, capacity: usize) {
        // Lifting a bound never set allocates nothing.
        if capacity != usize::MAX || self.bound.get().is_some() {
            self.bound_or_init(capacity).set_capacity(capacity);
        }
    }

    fn track(&self) {
        self.bound_or_init(usize::MAX);
    }

    fn weight(&self) -> usize {
        self.held.load(Relaxed)
    }

    fn evict_one(&self) -> bool {
        let Some(bound) = self.bound.get() else {
            return false;
        };
        let mut removals = Removals::new(self);
        let evicted = self.evict_for(bound, &mut bound.hand.lock(), None, &mut removals);
        resume(removals.settle());
        evicted
    }

    fn set_ttl(&self, own: Option<u64>, inherited: u64) {
        self.expiry.set_own(own, inherited);
    }

    fn inherit_ttl(&self, ttl: u64) {
        self.expiry.inherit(ttl);
    }

    fn add_stats(&self, stats: &mut Stats) {
        for shard in self.made_shards() {
            stats.entries += Scoped::lock(|| shard.tables.read()).ready.len();
        }
        for lookups in &self.lookups {
            stats.hits += lookups.hits.load(Relaxed);
            stats.misses += lookups.misses.load(Relaxed);
        }
        stats.purged += self.counters.purged.load(Relaxed);
        stats.invalidated += self.counters.invalidated.load(Relaxed);
        stats.discarded += self.counters.discarded.load(Relaxed);
        stats.waited += self.counters.waited.load(Relaxed);
        stats.evicted += self.counters.evicted.load(Relaxed);
        stats.expired += self.counters.expired.load(Relaxed);
        stats.methods += 1;
    }
}
