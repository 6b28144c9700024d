//! Concurrent use keeps every value right and every count exact.
//!
//! - Eight threads run seeded random operations (calls of two methods, `try_call`, `get`,
//!   the `Ok` table's `get`, owner replacement and drops, `invalidate*`, `clear`, `purge`) on a shared
//!   pool of owner slots. Every value returned is checked against a pure function of
//!   (owner id, method, argument). Afterwards, with all threads joined, the counters
//!   balance exactly: every method run is an entry now, or was purged, invalidated,
//!   discarded after a lost race, or was an error; `misses` is method runs plus lookups
//!   that returned `None`; `invalidated` is the sum of what the calls returned. After a
//!   final `purge()`, `stats().entries` equals the number of live owners' entries, counted
//!   independently by `Arc::weak_count` and by `get`, and equals the live values.
//! - Two threads that miss one cold key at once both run the method (which returns a new
//!   value per run) and both get the value stored first; `discarded` counts the loser.
//! - Threads racing to make the first entry of 40 methods create exactly one table each.
//! - `Registry` and `Stats` are `Send + Sync`.
//!
//! Everything runs under a watchdog, so a deadlock fails the test instead of hanging it.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use common::{Counter, Live, Owner, Rng, checked, expected, other_value, value, watchdog};
use weakmemo::Registry;

const THREADS: usize = 8;
const SLOTS: usize = 16;
const OPS: usize = 40_000;
const ARGS: u32 = 8;
const LIMIT: Duration = Duration::from_secs(60);

/// What one thread saw, to balance against the registry's counters.
#[derive(Default, Debug)]
struct Tally {
    errors: u64,
    nones: u64,
    invalidated: u64,
    purged: u64,
    lookups: u64,
}

struct World {
    cache: Registry,
    slots: Vec<Mutex<Option<Arc<Owner>>>>,
    next_id: AtomicU64,
    drops: Counter,
    values: Live,
    invocations: Counter,
}

impl World {
    fn owner(&self) -> Arc<Owner> {
        let id = self.next_id.fetch_add(1, SeqCst);
        Owner::with(id, &self.drops, &self.values, &self.invocations)
    }
}

#[test]
fn a_registry_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Registry>();
    shareable::<weakmemo::Stats>();
}

fn run_thread(world: &World, seed: u64) -> Tally {
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    let cache = &world.cache;
    for _ in 0..OPS {
        let slot = &world.slots[rng.below(SLOTS as u64) as usize];
        let owner = {
            let mut slot = slot.lock().unwrap();
            slot.get_or_insert_with(|| world.owner()).clone()
        };
        let arg = rng.below(u64::from(ARGS)) as u32;
        let method = rng.below(2);
        match rng.below(1000) {
            0..550 | 860.. => {
                tally.lookups += 1;
                let got = if method == 0 {
                    cache.method(value).call(&owner, arg)
                } else {
                    cache.method(other_value).call(&owner, arg)
                };
                assert_eq!(got.n, expected(owner.id, method + 1, arg));
            }
            550..630 => {
                tally.lookups += 1;
                match common::ok_table(cache, checked).try_call(&owner, arg) {
                    Ok(got) => {
                        assert_eq!(arg % 2, 0);
                        assert_eq!(got.n, expected(owner.id, 3, arg));
                    }
                    Err(got) => {
                        assert_eq!(arg % 2, 1);
                        assert_eq!(got.n, expected(owner.id, 3, arg));
                        tally.errors += 1;
                    }
                }
            }
            630..710 => {
                tally.lookups += 1;
                let got = if method == 0 {
                    cache.method(value).get(&owner, &arg)
                } else {
                    cache.method(other_value).get(&owner, &arg)
                };
                match got {
                    Some(got) => assert_eq!(got.n, expected(owner.id, method + 1, arg)),
                    None => tally.nones += 1,
                }
            }
            710..750 => {
                tally.lookups += 1;
                match common::ok_table(cache, checked).get(&owner, &arg) {
                    Some(got) => assert_eq!(got.n, expected(owner.id, 3, arg)),
                    None => tally.nones += 1,
                }
            }
            750..755 => {
                // Replace the owner: the old one dies once no thread holds it.
                let fresh = world.owner();
                *slot.lock().unwrap() = Some(fresh);
            }
            755..757 => {
                *slot.lock().unwrap() = None;
            }
            757..790 => {
                let removed = if method == 0 {
                    cache.method(value).invalidate(&owner, &arg)
                } else {
                    common::ok_table(cache, checked).invalidate(&owner, &arg)
                };
                tally.invalidated += u64::from(removed);
            }
            790..792 => tally.invalidated += cache.invalidate_owner(&owner) as u64,
            792..795 => tally.purged += cache.purge() as u64,
            798..860 => {
                // Churn: a short-lived owner, used once and dropped.
                tally.lookups += 1;
                let temp = world.owner();
                assert_eq!(
                    cache.method(value).call(&temp, arg).n,
                    expected(temp.id, 1, arg)
                );
            }
            795 | 796 => tally.invalidated += cache.method(other_value).clear() as u64,
            797 => match rng.below(10) {
                0 => tally.invalidated += cache.clear() as u64,
                _ => tally.purged += cache.purge() as u64,
            },
        }
    }
    tally
}

#[test]
fn random_concurrent_operations_keep_values_right_and_counts_exact() {
    watchdog(LIMIT, || {
        let world = Arc::new(World {
            cache: Registry::builder().purge_interval(16).build(),
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
            next_id: AtomicU64::new(1),
            drops: Counter::new(),
            values: Live::new(),
            invocations: Counter::new(),
        });
        // Make the three tables, so that every later `get` that finds nothing counts.
        let warm = world.owner();
        drop(world.cache.method(value).call(&warm, 0));
        drop(world.cache.method(other_value).call(&warm, 0));
        drop(world.cache.method(checked).try_call(&warm, 0));
        drop(warm);

        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let world = world.clone();
                std::thread::spawn(move || run_thread(&world, 0xC0FFEE + t as u64))
            })
            .collect();
        let tallies: Vec<Tally> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
        let (errors, nones) = (sum(|t| t.errors), sum(|t| t.nones));
        let (invalidated, purged, lookups) = (
            sum(|t| t.invalidated),
            sum(|t| t.purged),
            sum(|t| t.lookups),
        );

        let cache = &world.cache;
        let runs = world.invocations.get() as u64;
        let stats = cache.stats();
        eprintln!("threads: {stats:?}, {runs} runs, {errors} errors, {nones} nones");
        // Every run and every `None` is a miss of its own; with single flight a miss may
        // also end with another thread's value (after waiting for it, or not).
        assert!(
            runs + nones <= stats.misses,
            "a miss is a method run, a None, or another thread's value: {stats:?}"
        );
        assert!(
            stats.hits + stats.misses <= lookups + 3,
            "hits may only undercount"
        );
        assert_eq!(
            stats.invalidated, invalidated,
            "invalidated is what the calls returned"
        );
        assert!(stats.purged >= purged);
        assert_eq!(
            runs,
            stats.entries as u64 + stats.purged + stats.invalidated + stats.discarded + errors,
            "every method run is accounted for: {stats:?}"
        );
        assert_eq!(stats.methods, 3);

        // Quiescent now: a purge leaves exactly the live owners' entries.
        let before = cache.stats();
        let final_purge = cache.purge();
        let stats = cache.stats();
        assert_eq!(stats.purged, before.purged + final_purge as u64);
        assert_eq!(stats.entries, before.entries - final_purge);
        let live: Vec<Arc<Owner>> = world
            .slots
            .iter()
            .filter_map(|slot| slot.lock().unwrap().clone())
            .collect();
        let by_weak: usize = live.iter().map(Arc::weak_count).sum();
        let mut by_get = 0;
        for owner in &live {
            for arg in 0..ARGS {
                by_get += usize::from(cache.method(value).get(owner, &arg).is_some());
                by_get += usize::from(cache.method(other_value).get(owner, &arg).is_some());
                by_get += usize::from(common::ok_table(cache, checked).get(owner, &arg).is_some());
                assert!(
                    common::ok_table(cache, checked)
                        .get(owner, &(arg | 1))
                        .is_none(),
                    "errors cached"
                );
            }
        }
        assert_eq!(
            stats.entries, by_weak,
            "entries after purge = live owners' entries"
        );
        assert_eq!(stats.entries, by_get);
        assert_eq!(
            world.values.get(),
            stats.entries as isize,
            "one live value per entry"
        );
        let created = world.next_id.load(SeqCst) - 1;
        assert_eq!(world.drops.get() as u64 + live.len() as u64, created);
        drop(live);
    });
}

/// An owner whose method meets a barrier, so that two callers are inside it at once.
struct Rendezvous {
    barrier: Barrier,
    runs: AtomicU64,
}

fn rendezvous(owner: &Arc<Rendezvous>, &(): &()) -> u64 {
    owner.barrier.wait();
    // A different value per run, so that a caller seeing the loser's value would show.
    owner.runs.fetch_add(1, SeqCst) + 100
}

#[test]
fn two_threads_missing_one_key_both_get_the_value_stored_first() {
    for _ in 0..20 {
        let (results, owner, stats) = watchdog(LIMIT, || {
            // Both must run the method (it waits for both at a barrier): the race that
            // single flight prevents, so it is off here.
            let cache = Arc::new(Registry::builder().single_flight(false).build());
            let owner = Arc::new(Rendezvous {
                barrier: Barrier::new(2),
                runs: AtomicU64::new(0),
            });
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (cache, owner) = (cache.clone(), owner.clone());
                    std::thread::spawn(move || cache.method(rendezvous).call(&owner, ()))
                })
                .collect();
            let results: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let stats = cache.stats();
            assert_eq!(cache.method(rendezvous).get(&owner, &()), Some(results[0]));
            (results, owner, stats)
        });
        assert_eq!(owner.runs.load(SeqCst), 2, "both ran the method");
        assert_eq!(results[0], results[1], "both see one value");
        assert!(results[0] == 100 || results[0] == 101);
        assert_eq!((stats.misses, stats.discarded, stats.entries), (2, 1, 1));
    }
}

fn numbered<const K: u64>(owner: &Arc<Owner>, &arg: &u32) -> u64 {
    owner.invocations.inc();
    K * 1000 + u64::from(arg)
}

macro_rules! call_each {
    ($cache:expr, $owner:expr, $order:expr; $($k:literal)*) => {{
        let calls: [&dyn Fn(); 0 $(+ { let _ = $k; 1 })*] = [$(&|| {
            assert_eq!($cache.method(numbered::<$k>).call($owner, 0), $k * 1000);
        }),*];
        for &i in $order {
            calls[i]();
        }
    }};
}

#[test]
fn racing_first_uses_of_many_methods_make_one_table_each() {
    const METHODS: usize = 40;
    watchdog(LIMIT, || {
        let cache = Arc::new(Registry::new());
        let owner = Owner::new(1);
        let start = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (cache, owner, start) = (cache.clone(), owner.clone(), start.clone());
                std::thread::spawn(move || {
                    let mut order: Vec<usize> = (0..METHODS).collect();
                    let mut rng = Rng::new(t as u64 + 1);
                    for i in (1..METHODS).rev() {
                        order.swap(i, rng.below(i as u64 + 1) as usize);
                    }
                    start.wait();
                    call_each!(cache, &owner, &order;
                        0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
                        20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let stats = cache.stats();
        assert_eq!(stats.methods, METHODS, "one table per method");
        assert_eq!(stats.entries, METHODS);
        // Single flight: each method ran once, however many threads missed it at once.
        let runs = owner.invocations.get() as u64;
        assert_eq!(runs, METHODS as u64);
        assert_eq!(stats.discarded, 0);
        assert!(stats.misses >= runs);
        assert_eq!(Arc::weak_count(&owner), METHODS);
    });
}
