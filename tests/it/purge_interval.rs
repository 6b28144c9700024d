//! The purge interval changes behaviour observably, and memory stays bounded without it.
//!
//! - Interval 0: dead entries stay through any number of hits (`entries` unchanged,
//!   `purge_steps` 0, `purged` 0). Switched to 1 at run time, the same traffic runs exactly
//!   one step per lookup and removes them within the bound `docs/design.md` states,
//!   ⌈(B + S) / 64⌉ + 1 steps (B buckets, S shards), leaving exactly the live entries.
//! - With one shard, a step runs exactly every `interval` lookups (hits, misses, `get`
//!   and the `Ok` table's `get` all count); a large interval runs few or no steps; lowering the
//!   interval takes effect at the next lookup.
//! - `set_purge_interval` on `global()` works at run time (restored afterwards).
//! - Sweep before growth: with lazy steps off, 100,000 create / call / drop cycles keep
//!   `stats().entries` bounded by a small constant, and with long-lived owners present, by
//!   a small multiple of the live entries: memory is bounded with lazy purging off.

use crate::common;

use std::sync::Arc;

use common::{Owner, checked, expected, value};
use weakmemo::{DEFAULT_PURGE_INTERVAL, Registry};

const SHARDS: usize = 16;

/// `owners` owners with one entry each; returns the even-numbered (kept) ones, the
/// odd-numbered ones are dropped.
fn half_dead(cache: &Registry, owners: u64) -> Vec<Arc<Owner>> {
    let mut all = Vec::new();
    for id in 0..owners {
        let owner = Owner::new(id);
        drop(cache.method(value).call(&owner, 0));
        all.push(owner);
    }
    all.into_iter().filter(|owner| owner.id % 2 == 0).collect()
}

#[test]
fn interval_zero_keeps_dead_entries_and_interval_one_removes_them() {
    const OWNERS: u64 = 100;
    let cache = Registry::builder().shards(SHARDS).purge_interval(0).build();
    let live = half_dead(&cache, OWNERS);
    assert_eq!(cache.stats().entries, OWNERS as usize);

    for round in 0..100 {
        for owner in &live {
            assert_eq!(
                cache.method(value).call(owner, 0).n,
                expected(owner.id, 1, 0),
                "{round}"
            );
        }
    }
    let stats = cache.stats();
    assert_eq!(
        stats.entries, OWNERS as usize,
        "interval 0: dead entries stay"
    );
    assert_eq!((stats.purge_steps, stats.purged), (0, 0));
    assert_eq!(stats.hits, 100 * OWNERS / 2);

    // Interval 1: a step per lookup; the dead entries go within the documented bound.
    cache.set_purge_interval(1);
    assert_eq!(cache.purge_interval(), 1);
    let buckets_bound = 4 * OWNERS as usize; // a table of n >= 1 entries has <= 4n buckets
    let steps_bound = (buckets_bound + SHARDS).div_ceil(64) + 1;
    let mut lookups = 0;
    while cache.stats().entries > live.len() {
        assert!(
            lookups < steps_bound,
            "not purged after {lookups} steps: {:?}",
            cache.stats()
        );
        let owner = &live[lookups % live.len()];
        assert_eq!(
            cache.method(value).call(owner, 0).n,
            expected(owner.id, 1, 0)
        );
        lookups += 1;
    }
    let stats = cache.stats();
    assert_eq!(
        stats.purge_steps, lookups as u64,
        "exactly one step per lookup"
    );
    assert_eq!(stats.purged, OWNERS / 2);
    assert_eq!(stats.entries, live.len());
    assert_eq!(cache.purge(), 0, "nothing left for purge()");
}

#[test]
fn with_one_shard_a_step_runs_every_interval_lookups() {
    let cache = Registry::builder().shards(1).purge_interval(7).build();
    let owner = Owner::new(1);
    let mut lookups = 0u64;
    for arg in 0..25 {
        drop(cache.method(value).call(&owner, arg)); // a miss
        drop(cache.method(value).call(&owner, arg)); // a hit
        drop(cache.method(value).get(&owner, &(arg + 100))); // a miss of get
        lookups += 3;
        assert_eq!(
            cache.stats().purge_steps,
            lookups / 7,
            "after {lookups} lookups"
        );
    }
    // try_call and get count on their own table (one shard too).
    let mut fallible = 0;
    for arg in 0..10 {
        drop(common::ok_table(&cache, checked).try_call(&owner, arg));
        drop(common::ok_table(&cache, checked).get(&owner, &arg));
        fallible += 2;
    }
    assert_eq!(cache.stats().purge_steps, lookups / 7 + fallible / 7);
}

#[test]
fn interval_one_runs_a_step_per_lookup_of_any_kind() {
    let cache = Registry::builder().purge_interval(1).build();
    let owner = Owner::new(2);
    drop(cache.method(value).call(&owner, 1));
    drop(cache.method(value).call(&owner, 1));
    drop(cache.method(value).get(&owner, &1));
    drop(cache.method(value).get(&owner, &2));
    drop(common::ok_table(&cache, checked).try_call(&owner, 0));
    drop(common::ok_table(&cache, checked).try_call(&owner, 1));
    drop(common::ok_table(&cache, checked).get(&owner, &0));
    assert_eq!(cache.stats().purge_steps, 7);
    // Maintenance calls are not lookups.
    cache.purge();
    cache.method(value).invalidate(&owner, &1);
    cache.invalidate_owner(&owner);
    cache.method(value).clear();
    cache.clear();
    let _ = cache.stats();
    assert_eq!(cache.stats().purge_steps, 7);
}

#[test]
fn a_large_interval_runs_few_steps() {
    const LOOKUPS: u64 = 10_000;
    for (interval, most) in [(1000u64, LOOKUPS / 1000), (1_000_000, 0)] {
        let cache = Registry::builder()
            .purge_interval(interval as usize)
            .build();
        let live = half_dead(&cache, 64);
        let before = cache.stats();
        for i in 0..LOOKUPS as usize - 64 {
            drop(cache.method(value).get(&live[i % live.len()], &0));
        }
        let stats = cache.stats();
        assert!(stats.purge_steps <= most, "interval {interval}: {stats:?}");
        if interval == 1_000_000 {
            assert_eq!(stats.entries, before.entries, "no step, no purge");
        }
    }
}

#[test]
fn lowering_the_interval_takes_effect_at_the_next_lookup() {
    let cache = Registry::builder().shards(1).purge_interval(1000).build();
    let owner = Owner::new(3);
    for _ in 0..10 {
        drop(cache.method(value).call(&owner, 0));
    }
    assert_eq!(cache.stats().purge_steps, 0);
    cache.set_purge_interval(1);
    drop(cache.method(value).call(&owner, 0));
    assert_eq!(cache.stats().purge_steps, 1);
    cache.set_purge_interval(0);
    for _ in 0..10 {
        drop(cache.method(value).call(&owner, 0));
    }
    assert_eq!(cache.stats().purge_steps, 1, "0 turns steps off at once");
}

#[test]
fn the_default_interval_and_the_builder() {
    assert_eq!(Registry::new().purge_interval(), DEFAULT_PURGE_INTERVAL);
    assert_eq!(Registry::default().purge_interval(), DEFAULT_PURGE_INTERVAL);
    assert_eq!(
        Registry::builder()
            .purge_interval(5)
            .build()
            .purge_interval(),
        5
    );
    static CONFIGURED: Registry = Registry::builder().purge_interval(9).shards(3).build();
    assert_eq!(CONFIGURED.purge_interval(), 9);
    let owner = Owner::new(4);
    assert_eq!(
        CONFIGURED.method(value).call(&owner, 1).n,
        expected(4, 1, 1)
    );
    let debug = format!("{:?}", Registry::new());
    let want = format!("purge_interval: {DEFAULT_PURGE_INTERVAL}");
    assert!(debug.contains(&want), "{debug}");
}

/// The only test in this file that uses `global()`, and it holds
/// `common::global_registry()` against the other modules' uses, so its counts are its own.
#[test]
fn set_purge_interval_on_the_global_registry_at_run_time() {
    let _global = common::global_registry();
    fn doubled(n: &Arc<u64>, &k: &u64) -> u64 {
        **n * 2 + k
    }
    let global = weakmemo::global();
    assert!(
        std::ptr::eq(global, weakmemo::global()),
        "one shared registry"
    );
    let old = global.purge_interval();
    assert_eq!(old, DEFAULT_PURGE_INTERVAL);

    global.set_purge_interval(1);
    assert_eq!(global.purge_interval(), 1);
    let n = Arc::new(20);
    let before = global.stats().purge_steps;
    for k in 0..10 {
        assert_eq!(global.method(doubled).call(&n, k % 3), 40 + k % 3);
    }
    assert_eq!(global.stats().purge_steps - before, 10);

    global.set_purge_interval(0);
    let before = global.stats().purge_steps;
    for k in 0..10 {
        assert_eq!(global.method(doubled).call(&n, k % 3), 40 + k % 3);
    }
    assert_eq!(global.stats().purge_steps, before);

    global.set_purge_interval(old);
    assert_eq!(global.purge_interval(), old);
    assert_eq!(global.method(doubled).clear(), 3);
}

#[test]
fn sweep_before_growth_bounds_a_churn_with_lazy_steps_off() {
    const ROUNDS: u64 = 100_000;
    let cache = Registry::builder().shards(SHARDS).purge_interval(0).build();
    let mut max_entries = 0;
    for i in 0..ROUNDS {
        let owner = Owner::new(i);
        assert_eq!(cache.method(value).call(&owner, 0).n, expected(i, 1, 0));
        drop(owner);
        if i % 64 == 0 {
            max_entries = max_entries.max(cache.stats().entries);
        }
    }
    let stats = cache.stats();
    max_entries = max_entries.max(stats.entries);
    // One live entry at a time: each shard's table stays at its first size.
    assert!(
        max_entries <= 4 * SHARDS,
        "entries grew to {max_entries}: {stats:?}"
    );
    assert_eq!(stats.purge_steps, 0);
    assert_eq!(
        stats.purged + stats.entries as u64,
        ROUNDS,
        "all dead ones swept: {stats:?}"
    );
    assert_eq!(cache.purge(), stats.entries);
}

#[test]
fn sweep_before_growth_bounds_a_churn_among_live_owners() {
    const LIVE: u64 = 200;
    const ROUNDS: u64 = 50_000;
    let cache = Registry::builder().shards(SHARDS).purge_interval(0).build();
    let live: Vec<_> = (0..LIVE)
        .map(|id| {
            let owner = Owner::new(id);
            drop(cache.method(value).call(&owner, 0));
            owner
        })
        .collect();
    let mut max_entries = 0;
    for i in 0..ROUNDS {
        let owner = Owner::new(LIVE + i);
        drop(cache.method(value).call(&owner, 0));
        drop(owner);
        if i % 64 == 0 {
            max_entries = max_entries.max(cache.stats().entries);
        }
    }
    // "About twice its live entries" (docs/design.md), plus room for the first sizes.
    let bound = 3 * LIVE as usize + 4 * SHARDS;
    assert!(
        max_entries <= bound,
        "entries grew to {max_entries} (bound {bound})"
    );
    for owner in &live {
        assert_eq!(
            cache.method(value).get(owner, &0).unwrap().n,
            expected(owner.id, 1, 0)
        );
    }
    let stats = cache.stats();
    assert_eq!(stats.purge_steps, 0);
    assert_eq!(cache.purge() + LIVE as usize, stats.entries);
    assert_eq!(cache.stats().entries, LIVE as usize);
}

/// Regression: `make_room` (src/table/) promises a full table never holds more
/// than `4 × live` entries. An earlier version swept with `extract_if` and
/// then let hashbrown grow: the removed entries became tombstones that give no room
/// back, so the table grew again and again and held up to 7.5 times its live entries.
/// The hasher is seeded at random, so the scenario repeats 100 times.
#[test]
fn sweep_before_growth_keeps_a_table_within_its_documented_bound() {
    const LIVE: usize = 12;
    const BOUND: usize = 4 * LIVE; // `make_room` in src/table/store.rs
    let mut worst = 0;
    for _ in 0..100 {
        let cache = Registry::builder().shards(1).purge_interval(0).build();
        let live: Vec<_> = (0..LIVE as u64)
            .map(|id| {
                let owner = Owner::new(id);
                drop(cache.method(value).call(&owner, 0));
                owner
            })
            .collect();
        for i in 0..400 {
            let owner = Owner::new(LIVE as u64 + i);
            drop(cache.method(value).call(&owner, 0));
            drop(owner);
            worst = worst.max(cache.stats().entries);
        }
        drop(live);
    }
    assert!(
        worst <= BOUND,
        "{worst} entries held for {LIVE} live owners (bound {BOUND})"
    );
}
