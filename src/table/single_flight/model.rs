//! Model checking of the in-flight protocol with Shuttle (`cargo test --features shuttle
//! --lib model`): threads claim one cold key, compute, complete or abandon it, and wait
//! on its flight, in random interleavings explored by Shuttle, with Shuttle's locks and
//! condition variables standing in through `crate::sync`.
//!
//! Invariants checked in every explored interleaving:
//! - no thread waits forever (Shuttle fails a run in which every thread is blocked);
//! - the method runs exactly once per successful computation: once in all when nobody
//!   abandons, and once more after each abandoned claim;
//! - every caller returns the one stored value;
//! - afterwards the key is stored once and is not pending;
//! - an invalidation covers the computations in flight: a call that begins after it
//!   returned receives a value computed after it, and only such a value is stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use crate::table::single_flight::in_flight::Claim;
use crate::table::single_flight::waits::Caller;
use crate::table::{MethodCache, Setup};

const EXPLORATIONS: usize = 3_000;

type Cache = MethodCache<std::sync::Weak<u32>, u32, u64>;

/// One call of key 5, as `Memo::call` makes it: find, claim, wait or compute (with
/// `compute`, which may give up, as a panicking or failing method would), until a value.
fn call(cache: &Cache, owner: &Arc<u32>, mut compute: impl FnMut() -> Option<u64>) -> u64 {
    let caller = Caller::thread();
    let key = cache.key(owner, &5);
    let mut found = cache.find(key, &5);
    loop {
        let claim = match found {
            Ok(value) => return value,
            Err(miss) => cache.claim(miss, key, 5, &caller, true),
        };
        match claim {
            Claim::Recursive(_) => panic!("no caller re-enters"),
            Claim::Wait { flight, .. } => {
                flight.wait();
                if let Some(&value) = flight.value() {
                    return value;
                }
            }
            Claim::Compute(claimed) => match compute() {
                Some(value) => return claimed.complete(owner, value),
                None => drop(claimed),
            },
        }
        found = cache.find(key, &5);
    }
}

/// Runs `callers` threads on one key; the first `abandons` claims are abandoned (as a
/// panicking or failing method would), the others complete with 42.
fn one_cold_key(callers: u64, abandons: usize) {
    let cache = Arc::new(Cache::new(Setup::plain(2)));
    let owner = Arc::new(7_u32);
    let runs = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let (cache, owner, runs) = (cache.clone(), owner.clone(), runs.clone());
            shuttle::thread::spawn(move || {
                call(&cache, &owner, || {
                    (runs.fetch_add(1, SeqCst) >= abandons).then_some(42)
                })
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), 42);
    }
    assert_eq!(runs.load(SeqCst), abandons + 1);
    let key = cache.key(&owner, &5);
    assert_eq!(cache.find(key, &5).ok(), Some(42));
    assert_eq!(cache.pending(), 0);
}

/// The owner's state changes from 0 to 1, then the key is invalidated, while other
/// threads call it: a call that begins after the invalidation returned must receive a
/// value computed from the new state, and only such a value may be stored. A
/// computation that read the old state claimed the key before the invalidation took the
/// shard's lock, so the invalidation made it stale.
fn invalidate_in_flight(callers: u64) {
    let cache = Arc::new(Cache::new(Setup::plain(2)));
    let owner = Arc::new(7_u32);
    let state = Arc::new(AtomicU64::new(0));
    let others: Vec<_> = (0..callers)
        .map(|_| {
            let (cache, owner, state) = (cache.clone(), owner.clone(), state.clone());
            shuttle::thread::spawn(move || {
                call(&cache, &owner, || Some(state.load(SeqCst)));
            })
        })
        .collect();
    state.store(1, SeqCst);
    cache.invalidate(cache.key(&owner, &5_u32), &5_u32);
    assert_eq!(call(&cache, &owner, || Some(state.load(SeqCst))), 1);
    for thread in others {
        thread.join().unwrap();
    }
    let key = cache.key(&owner, &5);
    assert_eq!(cache.find(key, &5).ok(), Some(1));
    assert_eq!(cache.pending(), 0);
}

#[test]
fn every_caller_gets_the_one_computed_value() {
    shuttle::check_random(|| one_cold_key(3, 0), EXPLORATIONS);
}

#[test]
fn an_abandoned_claim_wakes_its_waiters_and_one_takes_over() {
    shuttle::check_random(|| one_cold_key(3, 1), EXPLORATIONS);
}

#[test]
fn repeated_abandons_never_strand_a_waiter() {
    shuttle::check_random(|| one_cold_key(4, 2), EXPLORATIONS);
}

#[test]
fn two_callers_and_an_abandon_depth_first() {
    shuttle::check_dfs(|| one_cold_key(2, 1), Some(EXPLORATIONS));
}

#[test]
fn a_call_after_an_invalidation_never_gets_a_value_from_before_it() {
    shuttle::check_random(|| invalidate_in_flight(2), EXPLORATIONS);
}

#[test]
fn invalidating_an_in_flight_key_depth_first() {
    shuttle::check_dfs(|| invalidate_in_flight(1), Some(EXPLORATIONS));
}
