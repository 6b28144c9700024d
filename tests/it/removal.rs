//! The removal listener (`Registry::set_removal_listener`): for every cause, the
//! removals it is told of are exactly the entries removed (same arguments, same values)
//! and match the counters of `Stats` one for one; values never stored are never
//! reported; a panicking listener loses nothing and stops nothing; a listener may call
//! back into the registry; `set_removal_listener(None)` stops it.

use crate::common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{Recorder, panic_message, sorted, watchdog};
use weakmemo::{Registry, Removal, RemovalCause, Stats};

use RemovalCause::{Collected, Expired, Explicit, Size};

/// The value of `keyed` for owner `id` and key `k`: which entry a removal was is plain
/// from its value.
fn pure(id: u64, k: u64) -> u64 {
    id * 1000 + k
}

fn keyed(owner: &Arc<u64>, &k: &u64) -> u64 {
    pure(**owner, k)
}

fn other(owner: &Arc<u64>, &k: &u64) -> u64 {
    pure(**owner, k) + 500
}

fn fallible(owner: &Arc<u64>, &k: &u64) -> Result<u64, String> {
    if k % 2 == 0 {
        Ok(pure(**owner, k))
    } else {
        Err(format!("odd {k}"))
    }
}

/// `(cause, k, value of keyed)` for each key.
fn records(
    cause: RemovalCause,
    id: u64,
    keys: impl IntoIterator<Item = u64>,
) -> Vec<(RemovalCause, u64, u64)> {
    keys.into_iter().map(|k| (cause, k, pure(id, k))).collect()
}

/// The listener's per-cause counts equal the counters of `stats`, given how many
/// newcomers a bound kept out (counted in `evicted`, never reported).
fn assert_counts_match(recorder: &Recorder<u64, u64>, stats: Stats, refused: u64) {
    assert_eq!(
        recorder.count(Collected),
        stats.purged,
        "collected vs purged"
    );
    assert_eq!(recorder.count(Expired), stats.expired, "expired");
    assert_eq!(
        recorder.count(Explicit),
        stats.invalidated,
        "explicit vs invalidated"
    );
    assert_eq!(
        recorder.count(Size) + refused,
        stats.evicted,
        "size vs evicted"
    );
}

/// Entries of a dropped owner, removed by `purge()` (and by lazy purge steps), are
/// reported as `Collected` with their arguments and values, and counted in `purged`.
#[test]
fn collected_entries_are_reported_exactly() {
    let cache = Registry::builder().purge_interval(0).build();
    let recorder = Recorder::<u64, u64>::install(&cache);
    let live = Arc::new(1);
    let dead = Arc::new(2);
    for k in 0..5 {
        cache.method(keyed).call(&live, k);
        cache.method(keyed).call(&dead, k);
    }
    drop(dead);
    assert!(recorder.take().is_empty(), "nothing removed yet");
    assert_eq!(cache.purge(), 5);
    assert_eq!(sorted(recorder.take()), records(Collected, 2, 0..5));
    assert_counts_match(&recorder, cache.stats(), 0);

    // Lazy steps report the same way.
    let dead = Arc::new(3);
    for k in 0..5 {
        cache.method(keyed).call(&dead, k);
    }
    drop(dead);
    cache.set_purge_interval(1);
    for _ in 0..100 {
        cache.method(keyed).call(&live, 0);
    }
    assert_eq!(sorted(recorder.take()), records(Collected, 3, 0..5));
    let stats = cache.stats();
    assert_eq!((stats.purged, stats.entries), (10, 5));
    assert_counts_match(&recorder, stats, 0);
}

/// A method's bound: each entry it evicts is reported as `Size`, and is the one that
/// left, whether it lost admission on leaving the window or was the hand's victim; a
/// value just computed is always stored.
#[test]
fn entries_evicted_by_a_method_bound_are_reported_exactly() {
    let cache = Registry::builder().purge_interval(0).build();
    cache.method(keyed).set_capacity(Some(2));
    let recorder = Recorder::<u64, u64>::install(&cache);
    let owner = Arc::new(1);
    cache.method(keyed).call(&owner, 1);
    cache.method(keyed).call(&owner, 2);
    // 3 is kept in the window; 2, out of it, takes the place of 1 (seen as often, and
    // a fresh cache follows recency): 1 is evicted, reported.
    assert_eq!(cache.method(keyed).call(&owner, 3), pure(1, 3));
    assert_eq!(recorder.take(), records(Size, 1, [1]));
    assert_eq!(
        cache.method(keyed).get(&owner, &1),
        None,
        "the reported one left"
    );
    assert_eq!(cache.method(keyed).get(&owner, &2), Some(pure(1, 2)));
    assert_eq!(cache.method(keyed).get(&owner, &3), Some(pure(1, 3)));
    assert_counts_match(&recorder, cache.stats(), 0);

    // Many more, a loop too large for the bound, which soon turns the judge to the
    // sketch, so that window entries lose too: every eviction reported once, what is
    // reported is what left, and every value computed is there right after.
    let mut present: BTreeSet<u64> = [2, 3].into();
    for k in 10..200 {
        for _ in 0..2 {
            let key = k % 50 + 10;
            let evicted = cache.stats().evicted;
            cache.method(keyed).call(&owner, key);
            let reported = recorder.take();
            for &(cause, key, value) in &reported {
                assert_eq!((cause, value), (Size, pure(1, key)));
                assert!(present.remove(&key), "{key} reported but not present");
            }
            assert_eq!(cache.stats().evicted - evicted, reported.len() as u64);
            assert_eq!(cache.method(keyed).get(&owner, &key), Some(pure(1, key)));
            present.insert(key);
        }
    }
    let stored: BTreeSet<u64> = (0..200)
        .filter(|k| cache.method(keyed).get(&owner, k).is_some())
        .collect();
    assert_eq!(stored, present);
    assert_counts_match(&recorder, cache.stats(), 0);
}

/// The registry's bound: every entry it evicts is reported as `Size`, and the reported
/// entries and those left are exactly the entries stored.
#[test]
fn entries_evicted_by_the_registry_bound_are_reported_exactly() {
    let cache = Registry::builder().purge_interval(0).capacity(10).build();
    let recorder = Recorder::<u64, u64>::install(&cache);
    let owner = Arc::new(4);
    for k in 0..30 {
        assert_eq!(cache.method(keyed).call(&owner, k), pure(4, k));
        assert_eq!(cache.method(other).call(&owner, k), pure(4, k) + 500);
    }
    let seen = recorder.take();
    assert_eq!(seen.len(), 50);
    let mut left = BTreeSet::new();
    for (cause, k, value) in seen {
        assert_eq!(cause, Size);
        assert!(value == pure(4, k) || value == pure(4, k) + 500);
        assert!(left.insert(value), "{value} reported twice");
    }
    for k in 0..30 {
        for value in [
            cache.method(keyed).get(&owner, &k),
            cache.method(other).get(&owner, &k),
        ]
        .into_iter()
        .flatten()
        {
            assert!(left.insert(value), "{value} both reported and present");
        }
    }
    assert_eq!(left.len(), 60, "every entry stored is reported or present");
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.evicted), (10, 50));
    assert_counts_match(&recorder, stats, 0);

    // A lowered bound, met at once: reported at once.
    cache.set_capacity(Some(4));
    assert_eq!(recorder.take().len(), 6);
    assert_counts_match(&recorder, cache.stats(), 0);
}

/// Expired entries are reported as `Expired` when `purge()` or a store of their key
/// removes them, with their arguments and values.
#[test]
fn expired_entries_are_reported_exactly() {
    // One shard: the four entries then fit its table with room to spare, so the store
    // below never sweeps the shard before growing (which would report the other expired
    // entries of its shard too, as it may, depending on where the random hasher put them).
    let cache = Registry::builder().purge_interval(0).shards(1).build();
    cache
        .method(keyed)
        .set_ttl(Some(Duration::from_millis(100)));
    let recorder = Recorder::<u64, u64>::install(&cache);
    let owner = Arc::new(5);
    for k in 0..4 {
        cache.method(keyed).call(&owner, k);
    }
    cache.method(other).call(&owner, 0);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(cache.method(keyed).get(&owner, &0), None);
    assert!(recorder.take().is_empty(), "expired, but not removed yet");
    // A store replaces the expired entry of its key.
    assert_eq!(cache.method(keyed).call(&owner, 0), pure(5, 0));
    assert_eq!(recorder.take(), records(Expired, 5, [0]));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(cache.purge(), 4);
    assert_eq!(sorted(recorder.take()), records(Expired, 5, 0..4));
    let stats = cache.stats();
    assert_eq!((stats.expired, stats.entries), (5, 1));
    assert_counts_match(&recorder, stats, 0);
}

/// `invalidate`, `invalidate_owner`, `invalidate_owner`, `clear` and
/// `clear` report what they remove as `Explicit`, including a dead owner's entries that
/// `clear` and `clear` sweep up; `try_call`'s entries report their `Ok` value.
#[test]
fn explicit_removals_are_reported_exactly() {
    let cache = Registry::builder().purge_interval(0).build();
    let recorder = Recorder::<u64, u64>::install(&cache);
    let a = Arc::new(6);
    let b = Arc::new(7);
    let fill = || {
        for k in 0..4 {
            cache.method(keyed).call(&a, k);
            cache.method(keyed).call(&b, k);
            cache.method(other).call(&a, k);
        }
    };
    fill();
    assert!(cache.method(keyed).invalidate(&a, &2));
    assert!(
        !cache.method(keyed).invalidate(&a, &2),
        "gone: nothing more to report"
    );
    assert_eq!(recorder.take(), records(Explicit, 6, [2]));

    assert_eq!(cache.method(keyed).invalidate_owner(&b), 4);
    assert_eq!(sorted(recorder.take()), records(Explicit, 7, 0..4));

    assert_eq!(cache.invalidate_owner(&a), 3 + 4);
    let mut expected = records(Explicit, 6, [0, 1, 3]);
    expected.extend((0..4).map(|k| (Explicit, k, pure(6, k) + 500)));
    assert_eq!(sorted(recorder.take()), sorted(expected));

    fill();
    let dead = Arc::new(8);
    cache.method(keyed).call(&dead, 9);
    drop(dead);
    assert_eq!(cache.method(keyed).clear(), 4 + 4 + 1);
    let mut expected = records(Explicit, 6, 0..4);
    expected.extend(records(Explicit, 7, 0..4));
    expected.extend(records(Explicit, 8, [9]));
    assert_eq!(sorted(recorder.take()), sorted(expected));

    fill();
    for k in 0..4 {
        let _ = common::ok_table(&cache, fallible).try_call(&a, k);
    }
    assert_eq!(cache.clear(), 4 + 4 + 4 + 2);
    let seen = recorder.take();
    assert_eq!(seen.len(), 14);
    assert!(seen.iter().all(|&(cause, _, _)| cause == Explicit));
    let fallibles = seen
        .iter()
        .filter(|&&(_, k, v)| v == pure(6, k) && k % 2 == 0);
    assert_eq!(fallibles.count(), 2 + 2, "keyed's and fallible's Ok values");
    let stats = cache.stats();
    assert_eq!((stats.invalidated, stats.entries), (1 + 4 + 7 + 9 + 14, 0));
    assert_counts_match(&recorder, stats, 0);
}

/// `Removal`'s accessors: the method, its name, and typed arguments and value (`None`
/// for the wrong types); `is_method` holds for a method called through `try_call`.
#[test]
fn a_removal_names_its_method_and_types_its_entry() {
    let cache = Registry::new();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    cache.set_removal_listener(Some(Arc::new(move |removal: &Removal<'_>| {
        log.lock().unwrap().push((
            removal.is_method(keyed),
            removal.is_method(fallible),
            removal.method_name().contains("fallible"),
            removal.args::<u64>().copied(),
            removal.value::<u64>().copied(),
            removal.args::<u32>().is_some() || removal.value::<String>().is_some(),
        ));
    })));
    let owner = Arc::new(9);
    cache.method(keyed).call(&owner, 1);
    common::ok_table(&cache, fallible)
        .try_call(&owner, 2)
        .unwrap();
    cache.method(keyed).invalidate(&owner, &1);
    common::ok_table(&cache, fallible).invalidate(&owner, &2);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (true, false, false, Some(1), Some(pure(9, 1)), false),
            (false, true, true, Some(2), Some(pure(9, 2)), false),
        ]
    );
}

fn counted(runs: &Arc<AtomicUsize>, &k: &u64) -> u64 {
    runs.fetch_add(1, SeqCst);
    k * 3
}

/// Values computed but never stored are never reported: kept out by a bound of 0, by
/// admission, by a weight over the bound, by a TTL of zero; nor errors, which are never
/// stored.
#[test]
fn values_never_stored_are_never_reported() {
    let cache = Registry::builder().purge_interval(0).build();
    let recorder = Recorder::<u64, u64>::install(&cache);
    let runs = Arc::new(AtomicUsize::new(0));
    cache.method(counted).set_capacity(Some(0));
    for k in 0..5 {
        assert_eq!(cache.method(counted).call(&runs, k), k * 3);
    }
    cache.method(counted).set_capacity(None);
    cache.method(counted).set_ttl(Some(Duration::ZERO));
    for k in 0..5 {
        assert_eq!(cache.method(counted).call(&runs, k), k * 3);
    }
    cache.method(counted).set_ttl(None);
    cache.method(counted).set_weigher(Some(std::sync::Arc::new(
        |_: &u64, &v: &u64| if v > 30 { 1_000 } else { 1 },
    )));
    cache.method(counted).set_capacity(Some(100));
    assert_eq!(cache.method(counted).call(&runs, 11), 33);
    assert_eq!(runs.load(SeqCst), 11);
    let owner = Arc::new(10);
    for k in 0..5 {
        let _ = common::ok_table(&cache, fallible).try_call(&owner, 2 * k + 1);
    }
    let stats = cache.stats();
    assert_eq!(stats.entries, 0);
    assert_eq!(recorder.total(), 0, "{:?}", recorder.take());
    assert_counts_match(&recorder, stats, stats.evicted);
}

/// An owner whose method meets a barrier, so that two threads compute one key at once.
struct Meeting {
    barrier: Barrier,
}

fn meet(owner: &Arc<Meeting>, &k: &u64) -> u64 {
    owner.barrier.wait();
    k + 1
}

/// With single flight off, two threads that compute one key at once both store it; the
/// value that loses the race is dropped, counted in `discarded`, never reported.
#[test]
fn a_value_that_lost_a_race_is_never_reported() {
    let cache: &'static Registry =
        Box::leak(Box::new(Registry::builder().single_flight(false).build()));
    let recorder = Recorder::<u64, u64>::install(cache);
    let owner = Arc::new(Meeting {
        barrier: Barrier::new(2),
    });
    watchdog(Duration::from_secs(20), move || {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let owner = Arc::clone(&owner);
                thread::spawn(move || cache.method(meet).call(&owner, 1))
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 2);
        }
        let stats = cache.stats();
        assert_eq!((stats.discarded, stats.entries), (1, 1));
        assert_eq!(recorder.total(), 0, "{:?}", recorder.take());
        assert_eq!(cache.method(meet).clear(), 1);
        assert_eq!(recorder.take(), [(Explicit, 1, 2)]);
    });
}

/// A listener that panics: the call whose store removed the entry still returns its
/// value, the counters stay exact, the cache keeps working, and every later removal is
/// still reported (the listener is not dropped).
#[test]
fn a_panicking_listener_loses_nothing() {
    let cache = Registry::builder().purge_interval(0).build();
    cache.method(keyed).set_capacity(Some(1));
    let recorder = Recorder::<u64, u64>::new();
    let inner = recorder.listener();
    cache.set_removal_listener(Some(Arc::new(move |removal: &Removal<'_>| {
        inner(removal);
        panic!("listener: told of {removal:?}");
    })));
    let owner = Arc::new(11);
    cache.method(keyed).call(&owner, 1);
    // A bound of 1 is a window of 1: 2 takes 1's room, and the listener panics under
    // this call, which returns all the same.
    assert_eq!(cache.method(keyed).call(&owner, 2), pure(11, 2));
    assert_eq!(recorder.take(), records(Size, 11, [1]));
    assert_eq!(cache.method(keyed).get(&owner, &2), Some(pure(11, 2)));
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.evicted), (1, 1), "one evicted");

    // Later removals of every kind are still reported, each through a panic.
    assert!(cache.method(keyed).invalidate(&owner, &2));
    let dead = Arc::new(12);
    cache.method(other).call(&dead, 1);
    cache.method(other).call(&dead, 2);
    drop(dead);
    assert_eq!(cache.purge(), 2);
    cache.method(other).call(&owner, 3);
    assert_eq!(cache.clear(), 1);
    let mut expected = records(Explicit, 11, [2]);
    expected.extend([
        (Collected, 1, pure(12, 1) + 500),
        (Collected, 2, pure(12, 2) + 500),
    ]);
    expected.push((Explicit, 3, pure(11, 3) + 500));
    assert_eq!(sorted(recorder.take()), sorted(expected));
    assert_counts_match(&recorder, cache.stats(), 0);
    // And the cache still caches.
    assert_eq!(cache.method(keyed).call(&owner, 4), pure(11, 4));
    assert_eq!(cache.method(keyed).get(&owner, &4), Some(pure(11, 4)));
}

/// A listener that panics with a message: the message reaches the panic hook, not the
/// caller (checked by the caller returning normally).
#[test]
fn a_listener_panic_does_not_reach_the_caller() {
    let cache = Registry::new();
    cache.set_removal_listener(Some(Arc::new(|_: &Removal<'_>| panic!("listener panic"))));
    let owner = Arc::new(13);
    cache.method(keyed).call(&owner, 1);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cache.method(keyed).invalidate(&owner, &1)
    }));
    match result {
        Ok(found) => assert!(found),
        Err(payload) => panic!("reached the caller: {}", panic_message(&*payload)),
    }
}

/// A listener that uses the registry (`get`, `call` of another method and of its own,
/// `stats`, `invalidate`) does not deadlock, whichever path removes the entry: a purge
/// step, `purge()`, a store's eviction by either bound, `set_capacity`, an expiry met by
/// a store, `invalidate*` and `clear`.
#[test]
fn a_listener_that_calls_back_into_the_registry_does_not_deadlock() {
    watchdog(Duration::from_secs(30), || {
        let cache: &'static Registry = Box::leak(Box::new(
            Registry::builder().purge_interval(1).shards(2).build(),
        ));
        let recorder = Recorder::<u64, u64>::new();
        let inner = recorder.listener();
        let helper = Arc::new(99);
        let calls = Arc::new(AtomicUsize::new(0));
        let wrong = Arc::new(AtomicUsize::new(0));
        let (seen, bad) = (Arc::clone(&calls), Arc::clone(&wrong));
        cache.set_removal_listener(Some(Arc::new(move |removal: &Removal<'_>| {
            inner(removal);
            seen.fetch_add(1, SeqCst);
            let &k = removal.args::<u64>().unwrap();
            // Re-entries from keys below 1,000 only, so that they end. A panic here would
            // be caught: count wrong answers instead.
            if k < 1_000 {
                let k = k + 1_000;
                let right = [
                    cache.method(other).call(&helper, k) == pure(99, k) + 500,
                    cache
                        .method(other)
                        .get(&helper, &k)
                        .is_none_or(|v| v == pure(99, k) + 500),
                    cache.method(keyed).call(&helper, k) == pure(99, k),
                    cache.stats().entries > 0,
                ];
                cache.method(other).invalidate(&helper, &k);
                bad.fetch_add(right.iter().filter(|&&right| !right).count(), SeqCst);
            }
        })));
        let owner = Arc::new(14);
        cache.method(keyed).set_capacity(Some(8));
        for round in 0..3 {
            for k in 0..40 {
                assert_eq!(cache.method(keyed).call(&owner, k), pure(14, k), "{round}");
            }
        }
        let dead = Arc::new(15);
        for k in 0..20 {
            cache.method(other).call(&dead, k);
        }
        drop(dead);
        for _ in 0..50 {
            cache.method(keyed).call(&owner, 0);
        }
        cache.purge();
        cache.set_capacity(Some(6));
        for k in 0..20 {
            cache.method(other).call(&owner, k);
        }
        cache.set_capacity(Some(2));
        cache.set_capacity(None);
        cache.method(other).set_ttl(Some(Duration::from_millis(50)));
        for k in 0..5 {
            cache.method(other).call(&owner, k);
        }
        thread::sleep(Duration::from_millis(200));
        for k in 0..5 {
            cache.method(other).call(&owner, k);
        }
        cache.method(keyed).invalidate(&owner, &0);
        cache.invalidate_owner(&owner);
        cache.method(other).clear();
        cache.clear();
        let stats = cache.stats();
        assert!(calls.load(SeqCst) > 0);
        assert_eq!(wrong.load(SeqCst), 0, "wrong answers inside the listener");
        for cause in [Collected, Size, Expired, Explicit] {
            assert!(recorder.count(cause) > 0, "no {cause:?} removal exercised");
        }
        assert_eq!(calls.load(SeqCst) as u64, recorder.total());
        let refused = stats.evicted - recorder.count(Size);
        assert_counts_match(&recorder, stats, refused);
        cache.set_removal_listener(None);
    });
}

/// `set_removal_listener(None)` returns the listener it removes, after which nothing
/// is reported; a new listener replaces the old one, which is returned.
#[test]
fn setting_none_stops_the_listener_and_returns_it() {
    let cache = Registry::new();
    let first = Recorder::<u64, u64>::new();
    let listener = first.listener();
    assert!(
        cache
            .set_removal_listener(Some(Arc::clone(&listener)))
            .is_none()
    );
    let owner = Arc::new(16);
    cache.method(keyed).call(&owner, 1);
    cache.method(keyed).invalidate(&owner, &1);
    assert_eq!(first.total(), 1);

    let second = Recorder::<u64, u64>::new();
    let replaced = cache.set_removal_listener(Some(second.listener()));
    assert!(Arc::ptr_eq(&replaced.unwrap(), &listener));
    cache.method(keyed).call(&owner, 2);
    cache.method(keyed).invalidate(&owner, &2);
    assert_eq!((first.total(), second.total()), (1, 1));

    let removed = cache.set_removal_listener(None);
    assert!(removed.is_some());
    assert!(cache.set_removal_listener(None).is_none());
    cache.method(keyed).call(&owner, 3);
    cache.method(keyed).invalidate(&owner, &3);
    assert_eq!((first.total(), second.total()), (1, 1));
    assert_eq!(cache.stats().invalidated, 3);
}
