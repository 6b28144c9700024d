//! The registry-wide bound (`RegistryBuilder::capacity`, `Registry::set_capacity`) and
//! weighers (`set_weigher`): the bound holds under threads; the heaviest method
//! gives up entries, so a flood does not evict a small method, and per-method bounds
//! still apply; a lowered bound is met at once, 0 stores nothing, `None` lifts it;
//! `weight()` is the sum of the weights stored; an entry heavier than a bound is
//! returned, not stored, and flushes nothing; weight 0 is free; a value that holds its
//! owner is freed once evicted; the global registry's bound is settable at run time.

use crate::common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use common::{Counter, Node, Recorder, myself, watchdog};
use weakmemo::{MAX_WEIGHT, Registry, RemovalCause};

fn square(owner: &Arc<u64>, &k: &u64) -> u64 {
    **owner * 1_000_000 + k * k
}

fn cube(owner: &Arc<u64>, &k: &u64) -> u64 {
    **owner * 1_000_000 + k * k * k
}

/// The weight `weighted` entries are given: 1 to 4.
fn weight_of(k: u64) -> u32 {
    (k % 4) as u32 + 1
}

fn weighted(owner: &Arc<u64>, &k: &u64) -> u64 {
    **owner * 1_000_000 + k
}

/// Eight threads store weighted entries of one method: sampled while they run, the
/// weight never passes the bound by more than eight of the heaviest entry (each thread
/// evicts after it stores); after they end it is within the bound, and so are entries.
#[test]
fn the_bound_holds_under_eight_threads() {
    const CAPACITY: usize = 500;
    let cache: &'static Registry =
        Box::leak(Box::new(Registry::builder().capacity(CAPACITY).build()));
    cache
        .method(weighted)
        .set_weigher(Some(std::sync::Arc::new(|&k: &u64, _: &u64| weight_of(k))));
    let warm = Arc::new(100);
    cache.method(weighted).call(&warm, 0);
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut most = 0;
            while !done.load(SeqCst) {
                most = most.max(cache.weight());
                thread::yield_now();
            }
            most
        })
    };
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let owner = Arc::new(t);
                start.wait();
                for k in 0..4_000 {
                    assert_eq!(
                        cache.method(weighted).call(&owner, k % 1_500),
                        t * 1_000_000 + k % 1_500
                    );
                }
                owner
            })
        })
        .collect();
    let owners: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    done.store(true, SeqCst);
    let most = sampler.join().unwrap();
    assert!(most <= CAPACITY + 8 * 4, "sampled weight {most}");
    let stats = cache.stats();
    assert!(cache.weight() <= CAPACITY, "weight {}", cache.weight());
    assert!(stats.entries <= CAPACITY, "{} entries", stats.entries);
    assert!(stats.evicted > 0);
    drop((owners, warm));
}

/// One method flooding the registry evicts its own entries (it is the heaviest), not
/// those of a method that caches little, which are all still hits afterwards.
#[test]
fn a_flooding_method_evicts_its_own_entries_not_a_small_one() {
    let cache = Registry::builder().capacity(100).purge_interval(0).build();
    let owner = Arc::new(1);
    for k in 0..10 {
        cache.method(cube).call(&owner, k);
    }
    for k in 0..10_000 {
        assert_eq!(cache.method(square).call(&owner, k), 1_000_000 + k * k);
    }
    let small = cache.method(cube).stats();
    let flood = cache.method(square).stats();
    assert_eq!((small.entries, small.evicted), (10, 0));
    assert_eq!(flood.entries, 90);
    assert_eq!(flood.evicted, 10_000 - 90);
    for k in 0..10 {
        assert_eq!(cache.method(cube).call(&owner, k), 1_000_000 + k * k * k);
    }
    assert_eq!(
        cache.method(cube).stats().misses,
        10,
        "the small method's entries all hit"
    );
    assert_eq!(cache.weight(), 100);
}

/// Under a registry bound, a method's own bound still applies when it is the tighter
/// one, and the room it leaves is the other methods'.
#[test]
fn per_method_bounds_still_apply_under_the_registry_bound() {
    let cache = Registry::builder().capacity(100).purge_interval(0).build();
    cache.method(square).set_capacity(Some(30));
    let owner = Arc::new(2);
    for k in 0..2_000 {
        // Each key twice, so that newcomers win the method bound's admission.
        for _ in 0..2 {
            assert_eq!(
                cache.method(square).call(&owner, k % 700),
                2_000_000 + (k % 700).pow(2)
            );
        }
        assert!(cache.method(square).stats().entries <= 30);
    }
    for k in 0..60 {
        cache.method(cube).call(&owner, k);
    }
    assert!(cache.method(square).stats().entries <= 30);
    assert_eq!(
        cache.method(cube).stats().entries,
        60,
        "room left by the method bound"
    );
    assert!(cache.stats().entries <= 100);
    assert!(cache.weight() <= 100);
}

/// `set_capacity` on a registry that never had a bound starts from the entries it holds
/// (counted always);
/// lowered, it is met at once, heaviest method first; `Some(0)` removes everything and
/// stores nothing; `None` lifts it.
#[test]
fn set_capacity_at_run_time_shrinks_at_once_zero_stores_nothing_none_lifts() {
    let cache = Registry::builder().purge_interval(0).build();
    let recorder = Recorder::<u64, u64>::install(&cache);
    let owner = Arc::new(3);
    for k in 0..150 {
        cache.method(square).call(&owner, k);
    }
    for k in 0..50 {
        cache.method(cube).call(&owner, k);
    }
    assert_eq!(cache.capacity(), None);
    assert_eq!(cache.weight(), 200, "counted before a bound is set");
    cache.set_capacity(Some(1_000));
    assert_eq!(cache.capacity(), Some(1_000));
    assert_eq!(cache.weight(), 200, "entries already stored are counted");
    assert_eq!(cache.stats().evicted, 0);

    cache.set_capacity(Some(100));
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.evicted), (100, 100));
    assert_eq!(cache.weight(), 100);
    assert_eq!(
        cache.method(cube).stats().entries,
        50,
        "the heavier method gave way"
    );
    assert_eq!(recorder.count(RemovalCause::Size), 100);

    cache.set_capacity(Some(0));
    assert_eq!((cache.stats().entries, cache.weight()), (0, 0));
    for _ in 0..3 {
        assert_eq!(cache.method(square).call(&owner, 7), 3_000_000 + 49);
    }
    assert_eq!(cache.method(square).get(&owner, &7), None);
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(
        recorder.count(RemovalCause::Size),
        200,
        "refused ones not reported"
    );

    cache.set_capacity(None);
    assert_eq!(cache.capacity(), None);
    for k in 0..500 {
        cache.method(square).call(&owner, k);
    }
    assert_eq!(cache.stats().entries, 500);
    assert_eq!(cache.stats().evicted, 200 + 3);
}

/// A weigher: `weight()` is the sum of the weights of the entries stored, and follows
/// removals exactly; `entries` still counts entries.
#[test]
fn weight_is_the_sum_of_the_weights_stored() {
    let cache = Registry::builder()
        .capacity(1_000_000)
        .purge_interval(0)
        .build();
    cache
        .method(weighted)
        .set_weigher(Some(std::sync::Arc::new(|&k: &u64, _: &u64| weight_of(k))));
    let owner = Arc::new(4);
    for k in 0..100 {
        cache.method(weighted).call(&owner, k);
        cache.method(square).call(&owner, k);
    }
    let sum =
        |keys: &mut dyn Iterator<Item = u64>| keys.map(|k| weight_of(k) as usize).sum::<usize>();
    assert_eq!(
        cache.weight(),
        sum(&mut (0..100)) + 100,
        "weighted, plus square's 1 each"
    );
    assert_eq!(cache.stats().entries, 200);
    for k in 0..10 {
        cache.method(weighted).invalidate(&owner, &k);
    }
    assert_eq!(cache.weight(), sum(&mut (10..100)) + 100);
    cache.method(square).clear();
    assert_eq!(cache.weight(), sum(&mut (10..100)));
    let dead = Arc::new(5);
    for k in 0..8 {
        cache.method(weighted).call(&dead, k);
    }
    drop(dead);
    assert_eq!(cache.weight(), sum(&mut (10..100)) + sum(&mut (0..8)));
    cache.purge();
    assert_eq!(cache.weight(), sum(&mut (10..100)));
    cache.clear();
    assert_eq!(cache.weight(), 0);
}

fn heavy(owner: &Arc<u64>, &k: &u64) -> Vec<u8> {
    vec![**owner as u8; k as usize]
}

/// An entry heavier than the registry's bound, a method's bound, or `MAX_WEIGHT` is
/// returned but not stored, counted in `evicted`, reported to no listener, and leaves
/// the entries already stored in place.
#[test]
fn an_entry_heavier_than_a_bound_is_returned_not_stored_and_flushes_nothing() {
    let cache = Registry::builder().capacity(100).purge_interval(0).build();
    let recorder = Recorder::<u64, Vec<u8>>::install(&cache);
    cache
        .method(heavy)
        .set_weigher(Some(std::sync::Arc::new(|_: &u64, value: &Vec<u8>| {
            value.len() as u32
        })));
    let owner = Arc::new(6);
    for k in 1..=10 {
        cache.method(heavy).call(&owner, k);
    }
    assert_eq!(cache.weight(), 55);
    let before = cache.stats();
    assert_eq!(cache.method(heavy).call(&owner, 101), vec![6; 101]);
    assert_eq!(cache.method(heavy).get(&owner, &101), None);
    let after = cache.stats();
    assert_eq!(after.evicted, before.evicted + 1);
    assert_eq!((after.entries, cache.weight()), (10, 55), "nothing flushed");
    for k in 1..=10 {
        assert!(cache.method(heavy).get(&owner, &k).is_some(), "{k} flushed");
    }
    // Exactly the bound fits: stored, then others (or itself) evicted to make room.
    assert_eq!(cache.method(heavy).call(&owner, 100).len(), 100);
    assert!(cache.weight() <= 100);

    // A method's bound, tighter than the registry's.
    cache.method(heavy).set_capacity(Some(50));
    cache.clear();
    for k in 1..=5 {
        cache.method(heavy).call(&owner, k);
    }
    let before = cache.stats();
    assert_eq!(cache.method(heavy).call(&owner, 51).len(), 51);
    assert_eq!(cache.method(heavy).get(&owner, &51), None);
    assert_eq!(cache.stats().evicted, before.evicted + 1);
    assert_eq!(cache.stats().entries, 5);

    // MAX_WEIGHT, with no bound at all.
    let unbounded = Registry::new();
    unbounded
        .method(heavy)
        .set_weigher(Some(std::sync::Arc::new(|&k: &u64, _: &Vec<u8>| {
            if k == 1 { MAX_WEIGHT + 1 } else { MAX_WEIGHT }
        })));
    unbounded.method(heavy).call(&owner, 1);
    unbounded.method(heavy).call(&owner, 2);
    assert_eq!(
        unbounded.method(heavy).get(&owner, &1),
        None,
        "heavier than MAX_WEIGHT"
    );
    assert_eq!(
        unbounded.method(heavy).get(&owner, &2),
        Some(vec![6; 2]),
        "MAX_WEIGHT fits"
    );
    assert_eq!(unbounded.stats().evicted, 1);

    let reported: Vec<_> = recorder
        .take()
        .into_iter()
        .map(|(cause, k, _)| (cause, k))
        .collect();
    assert!(
        reported.iter().all(|&(_, k)| k != 101 && k != 51),
        "a value never stored was reported: {reported:?}"
    );
}

/// An owner whose `slow_heavy` method waits until released, so that another thread
/// can wait for its computation.
struct Gate {
    open: Mutex<bool>,
    opened: std::sync::Condvar,
    runs: AtomicUsize,
}

fn slow_heavy(owner: &Arc<Gate>, &k: &u64) -> Vec<u8> {
    owner.runs.fetch_add(1, SeqCst);
    let mut open = owner.open.lock().unwrap();
    while !*open {
        open = owner.opened.wait(open).unwrap();
    }
    vec![1; k as usize]
}

/// Stores ten light entries of `slow_heavy` (weights 1 to 10), then has two threads
/// call a key of weight 150 at once: one computes it, held at the gate until the other
/// waits for it (single flight). Both must receive the value; the heavy entry must not
/// be stored, and the light ones must stay.
fn heavy_with_a_waiter(cache: &'static Registry) {
    cache
        .method(slow_heavy)
        .set_weigher(Some(std::sync::Arc::new(|_: &u64, value: &Vec<u8>| {
            value.len() as u32
        })));
    let gate = Arc::new(Gate {
        open: Mutex::new(true),
        opened: std::sync::Condvar::new(),
        runs: AtomicUsize::new(0),
    });
    for k in 1..=10 {
        cache.method(slow_heavy).call(&gate, k);
    }
    *gate.open.lock().unwrap() = false;
    watchdog(Duration::from_secs(20), move || {
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let gate = Arc::clone(&gate);
                thread::spawn(move || cache.method(slow_heavy).call(&gate, 150).len())
            })
            .collect();
        while cache.stats().waited < 1 {
            thread::yield_now();
        }
        *gate.open.lock().unwrap() = true;
        gate.opened.notify_all();
        for caller in callers {
            assert_eq!(caller.join().unwrap(), 150);
        }
        assert_eq!(
            cache.method(slow_heavy).get(&gate, &150),
            None,
            "heavier than the bound"
        );
        let kept = (1..=10).filter(|k| cache.method(slow_heavy).get(&gate, k).is_some());
        assert_eq!(kept.count(), 10, "the light entries were flushed");
        assert_eq!(cache.stats().entries, 10);
    });
}

/// An entry heavier than the registry's bound, computed while another caller waits
/// for it, is not stored either and flushes nothing.
#[test]
fn an_entry_heavier_than_the_registry_bound_with_a_waiter_flushes_nothing() {
    let cache = Box::leak(Box::new(
        Registry::builder().capacity(100).purge_interval(0).build(),
    ));
    heavy_with_a_waiter(cache);
    assert_eq!(cache.weight(), 55);
}

/// The same under a method's bound.
#[test]
fn an_entry_heavier_than_a_method_bound_with_a_waiter_flushes_nothing() {
    let cache = Box::leak(Box::new(Registry::builder().purge_interval(0).build()));
    cache.method(slow_heavy).set_capacity(Some(100));
    heavy_with_a_waiter(cache);
}

/// Entries of weight 0 are free: any number fit under a bound, even a bound of 0.
#[test]
fn weight_zero_entries_are_free() {
    let cache = Registry::builder().capacity(0).purge_interval(0).build();
    cache
        .method(weighted)
        .set_weigher(Some(std::sync::Arc::new(|_: &u64, _: &u64| 0)));
    let owner = Arc::new(7);
    for k in 0..1_000 {
        cache.method(weighted).call(&owner, k);
    }
    cache.method(square).call(&owner, 1);
    let stats = cache.stats();
    assert_eq!(
        (stats.entries, stats.evicted),
        (1_000, 1),
        "square's entry weighs 1"
    );
    assert_eq!(cache.weight(), 0);
    cache.set_capacity(Some(5));
    cache.method(square).call(&owner, 1);
    assert_eq!(cache.stats().entries, 1_001);
    assert_eq!(cache.weight(), 1);
}

/// Under the registry's bound, a value that holds its own owner (a cycle through the
/// cache) is freed once evicted.
#[test]
fn a_value_holding_its_owner_is_freed_once_evicted_by_the_registry_bound() {
    let cache = Registry::builder().capacity(4).purge_interval(0).build();
    let drops = Counter::new();
    let node = Node::new(&drops);
    let watch = Arc::downgrade(&node);
    cache.method(myself).call(&node, ());
    drop(node);
    assert!(watch.upgrade().is_some(), "the entry keeps its owner");
    let others: Vec<_> = (0..64).map(|_| Node::new(&Counter::new())).collect();
    for other in &others {
        cache.method(myself).call(other, ());
    }
    assert!(watch.upgrade().is_none(), "evicted, so freed");
    assert_eq!(drops.get(), 1);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.evicted), (4, 61));
}

fn global_only(owner: &Arc<u64>, &k: &u64) -> u64 {
    **owner + k
}

/// Sets the global registry's bound back to none when dropped, even if the test fails.
struct RestoreGlobal;

impl Drop for RestoreGlobal {
    fn drop(&mut self) {
        weakmemo::global().set_capacity(None);
    }
}

/// The global registry's bound is settable at run time, and liftable. (The only test
/// of this module that uses `global()`, with a method of its own; it holds
/// `common::global_registry()`, so the other modules' uses of `global()` wait.)
#[test]
fn the_global_registry_bound_is_settable_at_run_time() {
    let _global = common::global_registry();
    let global = weakmemo::global();
    let _restore = RestoreGlobal;
    let owner = Arc::new(8);
    for k in 0..20 {
        global.method(global_only).call(&owner, k);
    }
    global.set_capacity(Some(10));
    assert_eq!(global.capacity(), Some(10));
    assert!(global.method(global_only).stats().entries <= 10);
    for k in 100..200 {
        assert_eq!(global.method(global_only).call(&owner, k), 8 + k);
        assert!(global.method(global_only).stats().entries <= 10);
    }
    global.set_capacity(None);
    assert_eq!(global.capacity(), None);
    global.method(global_only).clear();
    for k in 0..50 {
        global.method(global_only).call(&owner, k);
    }
    assert_eq!(global.method(global_only).stats().entries, 50);
    global.method(global_only).clear();
}

/// With weighers and a registry bound, evictions of both kinds are reported as `Size`
/// exactly, and the entries reported and those left are exactly the entries stored.
#[test]
fn weighted_evictions_are_reported_exactly() {
    let cache = Registry::builder().capacity(40).purge_interval(0).build();
    let recorder = Recorder::<u64, u64>::install(&cache);
    cache
        .method(weighted)
        .set_weigher(Some(std::sync::Arc::new(|&k: &u64, _: &u64| weight_of(k))));
    let owner = Arc::new(9);
    let other = Arc::new(10);
    for k in 0..200 {
        cache.method(weighted).call(&owner, k);
        cache.method(square).call(&other, k);
    }
    let mut values = BTreeSet::new();
    for (cause, _, value) in recorder.take() {
        assert_eq!(cause, RemovalCause::Size);
        assert!(values.insert(value));
    }
    let mut weight = 0;
    for k in 0..200 {
        if let Some(value) = cache.method(weighted).get(&owner, &k) {
            assert!(values.insert(value), "{value} reported and present");
            weight += weight_of(k) as usize;
        }
        if let Some(value) = cache.method(square).get(&other, &k) {
            assert!(values.insert(value), "{value} reported and present");
            weight += 1;
        }
    }
    assert_eq!(
        values.len(),
        400,
        "every entry stored was reported or is present"
    );
    assert_eq!(cache.weight(), weight);
    assert!(weight <= 40);
    assert_eq!(recorder.count(RemovalCause::Size), cache.stats().evicted);
}

/// Over the registry's bound, dead owners' entries go first (as `set_capacity`
/// documents: "dead owners' and expired entries first"): lowering the bound to the
/// number of live entries removes exactly the dead owner's, and evicts none.
#[test]
fn dead_owners_entries_go_first_under_the_registry_bound() {
    let cache = Registry::builder().purge_interval(0).build();
    let live = Arc::new(11);
    let dead = Arc::new(12);
    for k in 0..20 {
        cache.method(square).call(&live, k);
        cache.method(square).call(&dead, k);
    }
    drop(dead);
    cache.set_capacity(Some(20));
    let stats = cache.stats();
    assert_eq!(
        (stats.entries, stats.purged, stats.evicted),
        (20, 20, 0),
        "{stats:?}"
    );
    for k in 0..20 {
        assert!(cache.method(square).get(&live, &k).is_some());
    }
}
