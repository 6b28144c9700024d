//! A method's bound (`Registry::set_capacity`): it holds under threads, keeps
//! what is hit through scans, frees a value that holds its own owner, counts what it
//! removes, and handles 0, lifting and lowering.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;

use common::{Counter, Node, myself};
use weakmemo::Registry;

fn square(_: &Arc<u64>, &k: &u64) -> u64 {
    k * k
}

#[test]
fn the_bound_holds_and_values_stay_right() {
    let cache = Registry::new();
    cache.method(square).set_capacity(Some(100));
    let owner = Arc::new(0);
    for k in 0..10_000 {
        assert_eq!(
            cache.method(square).call(&owner, k % 3_000),
            (k % 3_000).pow(2)
        );
        assert!(cache.stats().entries <= 100);
    }
    let stats = cache.stats();
    assert_eq!(stats.entries, 100, "a full bound stays full");
    assert_eq!(
        stats.misses - stats.evicted,
        100,
        "every miss stored or evicted one"
    );
}

#[test]
fn the_bound_holds_under_eight_threads() {
    let cache: &'static Registry = Box::leak(Box::new(Registry::new()));
    cache.method(square).set_capacity(Some(500));
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let start = start.clone();
            thread::spawn(move || {
                let owner = Arc::new(t);
                start.wait();
                for k in 0..5_000 {
                    // Each key twice, so that newcomers win admission and evict.
                    for _ in 0..2 {
                        assert_eq!(cache.method(square).call(&owner, k), k * k);
                    }
                }
                owner
            })
        })
        .collect();
    let owners: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let stats = cache.stats();
    assert!(stats.entries <= 500, "{} entries", stats.entries);
    assert!(stats.evicted > 0);
    drop(owners);
}

/// A one-off scan leaves the hot entries alone once the cache has seen keys it turned
/// away never come back (here, a first scan): a fresh cache, which has seen none,
/// starts from recency, as LRU (`docs/design.md`, "Bounds").
#[test]
fn hit_entries_survive_a_scan() {
    let cache = Registry::new();
    cache.method(square).set_capacity(Some(64));
    let owner = Arc::new(0);
    let hot: Vec<u64> = (0..32).collect();
    let warm = || {
        for _ in 0..10 {
            for &k in &hot {
                cache.method(square).call(&owner, k);
            }
        }
    };
    let scan = |keys: std::ops::Range<u64>| {
        for k in keys {
            cache.method(square).call(&owner, k);
        }
    };
    warm();
    scan(1_000..1_640);
    warm();
    // A scan of one-off keys, ten times the bound.
    scan(2_000..2_640);
    let misses = cache.stats().misses;
    for &k in &hot {
        assert_eq!(cache.method(square).call(&owner, k), k * k);
    }
    // The sketch counts misses only, and has aged: a hot entry whose count fell to 0
    // can lose to a one-off key (1 miss in 174 of 1,000 runs, never more; LRU: 32).
    let flushed = cache.stats().misses - misses;
    assert!(flushed <= 2, "the scan flushed {flushed} hot entries");
}

fn label(node: &Arc<Node>, &k: &u64) -> Arc<Node> {
    let _ = k;
    node.clone()
}

#[test]
fn a_value_holding_its_owner_is_freed_once_evicted() {
    let cache = Registry::new();
    cache.method(myself).set_capacity(Some(4));
    let drops = Counter::new();
    let node = Node::new(&drops);
    let watch = Arc::downgrade(&node);
    cache.method(myself).call(&node, ());
    drop(node);
    assert!(
        watch.upgrade().is_some(),
        "the entry keeps its owner: a cycle"
    );
    // Other owners' entries, each missed in three rounds so that they win admission,
    // push it out.
    let others: Vec<_> = (0..16).map(|_| Node::new(&Counter::new())).collect();
    for _ in 0..3 {
        for other in &others {
            cache.method(myself).call(other, ());
        }
    }
    assert!(watch.upgrade().is_none(), "evicted, so freed");
    assert_eq!(drops.get(), 1);
    assert!(cache.stats().evicted > 0);
    // `label` has no bound: its entries are not evicted.
    let free = Node::new(&Counter::new());
    for k in 0..100 {
        cache.method(label).call(&free, k);
    }
    assert_eq!(cache.method(label).stats().entries, 100);
}

#[test]
fn removal_causes_are_counted_exactly() {
    let cache = Registry::builder().purge_interval(0).build();
    cache.method(square).set_capacity(Some(2));
    let owner = Arc::new(0);
    // A bound of 2: a window of 1 and a main region of 1. The newest value is kept in
    // the window; 2, pushed out of it, takes the place of 1: the sketch has seen both
    // once, and a fresh cache follows recency.
    cache.method(square).call(&owner, 1);
    cache.method(square).call(&owner, 2);
    cache.method(square).call(&owner, 3);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.evicted), (2, 1));
    assert_eq!(cache.method(square).get(&owner, &1), None);
    assert_eq!(cache.method(square).get(&owner, &2), Some(4));
    assert_eq!(cache.method(square).get(&owner, &3), Some(9));
    // A dead owner's entry is taken first, and counted as purged.
    let dead = Arc::new(1);
    cache.method(square).clear();
    cache.method(square).call(&dead, 5);
    cache.method(square).call(&owner, 6);
    drop(dead);
    let before = cache.stats();
    cache.method(square).call(&owner, 7);
    let after = cache.stats();
    assert_eq!(after.purged - before.purged, 1);
    assert_eq!(after.evicted, before.evicted);
    assert_eq!(after.entries, 2);
    assert_eq!(after.invalidated, 2);
}

#[test]
fn capacity_zero_stores_nothing_and_none_lifts_the_bound() {
    let cache = Registry::new();
    let runs = Arc::new(AtomicUsize::new(0));
    fn counted(runs: &Arc<AtomicUsize>, &k: &u64) -> u64 {
        runs.fetch_add(1, SeqCst);
        k
    }
    cache.method(counted).set_capacity(Some(0));
    for _ in 0..3 {
        assert_eq!(cache.method(counted).call(&runs, 1), 1);
    }
    assert_eq!(runs.load(SeqCst), 3);
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(cache.method(counted).capacity(), Some(0));
    cache.method(counted).set_capacity(None);
    assert_eq!(cache.method(counted).capacity(), None);
    for k in 0..1_000 {
        cache.method(counted).call(&runs, k);
    }
    assert_eq!(cache.stats().entries, 1_000);
}

#[test]
fn a_lowered_bound_is_met_as_newcomers_arrive() {
    let cache = Registry::new();
    let owner = Arc::new(0);
    for k in 0..200 {
        cache.method(square).call(&owner, k);
    }
    cache.method(square).set_capacity(Some(50));
    for round in 0..10 {
        for k in 1_000..1_300 {
            cache.method(square).call(&owner, k + round % 2);
        }
    }
    assert!(cache.stats().entries <= 50, "{}", cache.stats().entries);
}

#[test]
fn try_call_and_async_tables_are_bounded_too() {
    fn parse(text: &Arc<String>, &k: &u64) -> Result<u64, String> {
        text.parse::<u64>()
            .map(|n| n + k)
            .map_err(|e| e.to_string())
    }
    let cache = Registry::new();
    common::ok_table(&cache, parse).set_capacity(Some(10));
    let text = Arc::new("1".to_string());
    for k in 0..100 {
        for _ in 0..2 {
            assert_eq!(cache.method(parse).try_call(&text, k), Ok(k + 1));
        }
    }
    assert!(cache.stats().entries <= 10);

    async fn twice(n: &Arc<u64>, &k: &u64) -> u64 {
        **n * k * 2
    }
    cache.method(twice).set_capacity(Some(5));
    let n = Arc::new(1);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            for k in 0..50 {
                for _ in 0..2 {
                    assert_eq!(cache.method(twice).call_async(&n, k).await, 2 * k);
                }
            }
        });
    assert!(cache.method(twice).stats().entries <= 5);
}

#[test]
fn lifting_a_bound_that_was_never_set_changes_nothing() {
    let cache = Registry::new();
    cache.method(square).set_capacity(None);
    let owner = Arc::new(0);
    for k in 0..300 {
        cache.method(square).call(&owner, k);
    }
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.evicted), (300, 0));
    assert_eq!(cache.method(square).capacity(), None);
}

/// Runs of `counted` so far, per test (each test has its own owner).
fn counted(runs: &Arc<AtomicUsize>, &k: &u64) -> u64 {
    runs.fetch_add(1, SeqCst);
    k
}

/// Calls `counted` on each key in turn and returns how many of them ran it.
fn runs_of(
    cache: &Registry,
    runs: &Arc<AtomicUsize>,
    keys: impl IntoIterator<Item = u64>,
) -> usize {
    let before = runs.load(SeqCst);
    for k in keys {
        assert_eq!(cache.method(counted).call(runs, k), k);
    }
    runs.load(SeqCst) - before
}

/// `rounds` rounds over `keys`, in order.
fn rounds(keys: std::ops::Range<u64>, rounds: usize) -> Vec<u64> {
    (0..rounds).flat_map(|_| keys.clone()).collect()
}

/// Issue 16's first case: a full cache of hot entries keeps a value just computed, as
/// `lru_cache` does, so that its next call finds it, and `invalidate` finds it too.
#[test]
fn a_value_just_computed_is_kept_in_a_full_cache_of_hot_entries() {
    let cache = Registry::new();
    cache.method(counted).set_capacity(Some(100));
    let runs = Arc::new(AtomicUsize::new(0));
    assert_eq!(runs_of(&cache, &runs, rounds(0..100, 8)), 100);
    assert_eq!(runs_of(&cache, &runs, [1_000; 8]), 1, "computed once");
    assert_eq!(runs_of(&cache, &runs, [1_001]), 1);
    assert!(
        cache.method(counted).invalidate(&runs, &1_001),
        "it was stored"
    );
    // And the hot entries were not flushed for it. A fresh cache follows recency, so
    // the newcomer took a hot entry's place, and that one, back, another's, for a few
    // runs (over 1,000 hasher seeds: 6 at the median, 12 at the 95th percentile, at
    // most 57; LRU: 100; before the judge, 1).
    assert!(runs_of(&cache, &runs, 0..100) <= 90);
}

/// At a bound of 100, after `before` and 10 rounds over 100 keys the cache settles on,
/// the runs of 5 rounds over 100 new keys, and of 3 more once moved.
fn runs_to_move(before: &[u64]) -> (usize, usize) {
    let cache = Registry::new();
    cache.method(counted).set_capacity(Some(100));
    let runs = Arc::new(AtomicUsize::new(0));
    runs_of(&cache, &runs, before.iter().copied());
    runs_of(&cache, &runs, rounds(0..100, 10));
    let moved = runs_of(&cache, &runs, rounds(100..200, 5));
    (moved, runs_of(&cache, &runs, rounds(100..200, 3)))
}

/// Issue 16's second case: a working set that moves to as many new keys as the bound
/// costs about one run per key, as in LRU (103 to 114 for 100 keys over 1,000 hasher
/// seeds; at most 1.5 per key is the target; before the judge, 199 to 284). The new
/// keys go in over the old ones, as a cache that has not seen its refusals prove right
/// follows recency, and the CLOCK hand then clears the old entries' visits in one lap.
#[test]
fn a_moved_working_set_is_adopted_at_once() {
    let (moved, after) = runs_to_move(&[]);
    assert!(moved <= 150, "{moved} runs to move 100 keys");
    assert!(after <= 10, "{after} runs once moved");
}

/// The same after the cache has learned, from a loop too large for it, to trust the
/// sketch: the new keys' quick returns turn the judge back to recency within a round
/// or two (123 to 323 runs over 1,000 hasher seeds, 241 at the median), where a cache
/// judging by frequency alone took 450 to 600.
#[test]
fn a_moved_working_set_is_adopted_after_a_loop() {
    let (moved, after) = runs_to_move(&rounds(1_000..1_110, 20));
    assert!(moved <= 400, "{moved} runs to move 100 keys");
    assert!(after <= 10, "{after} runs once moved");
}

/// Issue 16's third case: at a bound of 2, a switch from keys {1, 2} to {3, 4} costs 2
/// runs, as in LRU (before the judge, 3; before the window, 4).
#[test]
fn a_switch_at_a_bound_of_two_costs_two_runs() {
    let cache = Registry::new();
    cache.method(counted).set_capacity(Some(2));
    let runs = Arc::new(AtomicUsize::new(0));
    runs_of(&cache, &runs, rounds(1..3, 10));
    assert_eq!(runs_of(&cache, &runs, rounds(3..5, 10)), 2);
}

/// A loop over slightly more keys than the bound still hits most of the time: keys back
/// only after more than the bound's worth of requests are judged by frequency, lose to
/// the entries held, and teach the judge to trust the sketch (LRU would hit none). A
/// few hasher seeds in a thousand make the sketch's estimates of the loop's keys
/// differ enough that window entries keep winning, and the main region churns: that
/// tail predates the judge (at most 389 then).
#[test]
fn a_loop_slightly_larger_than_the_bound_keeps_hitting() {
    let cache = Registry::new();
    cache.method(counted).set_capacity(Some(100));
    let runs = Arc::new(AtomicUsize::new(0));
    runs_of(&cache, &runs, rounds(0..110, 5));
    let misses = runs_of(&cache, &runs, rounds(0..110, 10));
    // Over 1,000 hasher seeds: 170 at the median, 199 at the 95th percentile, at most
    // 241, and 528 in another thousand (before the judge: 138, 175, 389); LRU: 1,100.
    assert!(misses <= 650, "{misses} misses in 1,100 requests");
}
