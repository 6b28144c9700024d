//! What a registry does for all its tables as calls go by: the lazy purge step, and
//! keeping within the registry's bound.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::Relaxed;

use super::Registry;
use super::builder::PURGE_STEP_BUCKETS;
use crate::table::single_flight::Host;
use crate::table::{Deferred, ErasedCache, resume};

/// Where the lazy purge resumes: a method's position in the directory, a shard of it,
/// and a bucket of that shard.
pub(super) struct Cursor {
    method: usize,
    shard: usize,
    bucket: usize,
}

impl Cursor {
    pub(super) const START: Self = Self {
        method: 0,
        shard: 0,
        bucket: 0,
    };

    const fn at(method: usize) -> Self {
        Self {
            method,
            ..Self::START
        }
    }
}

impl Host for Registry {
    fn single_flight(&self) -> bool {
        self.single_flight()
    }

    /// One lazy purge step: [`PURGE_STEP_BUCKETS`] buckets from the cursor on, moving
    /// through every shard of every method in turn, so that each bucket of the registry
    /// is looked at once per lap. If another thread is stepping, this one skips its turn
    /// rather than wait.
    fn purge_step(&self) {
        let Some(mut cursor) = self.cursor.try_lock() else {
            return;
        };
        self.purge_steps.fetch_add(1, Relaxed);
        let mut budget = PURGE_STEP_BUCKETS;
        while budget > 0 {
            let Some((position, cache)) = self.methods.next_from(cursor.method) else {
                if cursor.method == 0 {
                    return; // no method yet
                }
                *cursor = Cursor::START;
                continue;
            };
            if position != cursor.method {
                *cursor = Cursor::at(position);
            }
            // A table not looked up yet has no shards: it is skipped.
            let step = (cursor.shard < cache.shard_count())
                .then(|| cache.sweep_step(cursor.shard, cursor.bucket, budget));
            // An empty shard costs one unit, so a step always ends.
            budget = budget.saturating_sub(step.as_ref().map_or(1, |step| step.visited.max(1)));
            match step.and_then(|step| step.next) {
                Some(bucket) => cursor.bucket = bucket,
                None if cursor.shard + 1 < cache.shard_count() => {
                    cursor.shard += 1;
                    cursor.bucket = 0;
                }
                None => *cursor = Cursor::at(position + 1),
            }
        }
    }
}

impl Registry {
    /// Evicts from the heaviest method until the registry is within its bound; each
    /// round frees an entry or ends.
    #[inline]
    pub(super) fn keep_within_capacity(&self) {
        if let Some(shared) = self.shared.get() {
            let capacity = shared.capacity();
            if capacity != u64::MAX {
                self.evict_to(capacity);
            }
        }
    }

    #[inline(never)]
    fn evict_to(&self, capacity: u64) {
        loop {
            let mut total = 0;
            let mut heaviest: Option<(usize, &dyn ErasedCache)> = None;
            for cache in self.methods.iter() {
                let weight = cache.weight();
                total += weight;
                if heaviest.is_none_or(|(most, _)| weight > most) {
                    heaviest = Some((weight, cache));
                }
            }
            let Some((_, cache)) = heaviest.filter(|_| total as u64 > capacity) else {
                return;
            };
            if !cache.evict_one() {
                return;
            }
        }
    }
}

/// Runs `each` on every table (or table and key) and sums what it returns. Every one
/// is done even if one panics (a removed entry's `Drop` may); the first panic is resumed
/// at the end.
pub(super) fn sum_over<T>(tables: impl Iterator<Item = T>, each: impl Fn(T) -> usize) -> usize {
    let mut deferred: Deferred = None;
    let mut sum = 0;
    for table in tables {
        match catch_unwind(AssertUnwindSafe(|| each(table))) {
            Ok(count) => sum += count,
            Err(payload) => {
                deferred.get_or_insert(payload);
            }
        }
    }
    resume(deferred);
    sum
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::Registry;

    fn tagged<const N: usize>(owner: &Arc<u32>, &arg: &u32) -> u32 {
        N as u32 * 1000 + **owner + arg
    }

    /// The lazy cursor walks every shard of every method, across directory levels, so
    /// traffic on one method purges the dead entries of all others.
    #[test]
    fn lazy_steps_reach_every_method() {
        let registry = Registry::builder().purge_interval(1).shards(4).build();
        let live = Arc::new(1);
        let dead = Arc::new(2);
        macro_rules! call_all {
            ($($n:literal)*) => { $( for arg in 0..3 { registry.method(tagged::<$n>).call(&dead, arg); } )* };
        }
        call_all!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
        assert_eq!(registry.stats().methods, 25);
        assert_eq!(registry.stats().entries, 75);
        drop(dead);
        let first = registry.method(tagged::<0>);
        for arg in 0..1000 {
            assert_eq!(first.call(&live, arg % 5), 1 + arg % 5);
        }
        let stats = registry.stats();
        assert_eq!(stats.purged, 75);
        assert_eq!(stats.entries, 5);
        assert!(stats.purge_steps > 0);
    }
}
