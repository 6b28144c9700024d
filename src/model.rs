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
//! - afterwards the key is stored once and is not pending.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use crate::method_cache::{Claim, MethodCache, Setup};

const EXPLORATIONS: usize = 3_000;

/// Runs `callers` threads on one key; the first `abandons` claims are abandoned (as a
/// panicking or failing method would), the others complete with 42.
fn one_cold_key(callers: u64, abandons: usize) {
    let cache = Arc::new(MethodCache::<u32, u32, u64>::new(Setup::plain(2)));
    let owner = Arc::new(7_u32);
    let runs = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (1..=callers)
        .map(|me| {
            let (cache, owner, runs) = (cache.clone(), owner.clone(), runs.clone());
            shuttle::thread::spawn(move || {
                let key = cache.key(&owner, &5);
                let mut found = cache.find(key, &5);
                loop {
                    let claim = match found {
                        Ok(value) => return value,
                        Err(miss) => miss.claim(key, 5, me),
                    };
                    match claim {
                        Claim::Recursive => panic!("no caller re-enters"),
                        Claim::Wait { flight, .. } => flight.wait(),
                        Claim::Compute(slot) => {
                            if runs.fetch_add(1, SeqCst) < abandons {
                                cache.abandon(key, slot);
                            } else {
                                return cache.complete(key, &owner, slot, (42, 42), 1);
                            }
                        }
                    }
                    found = cache.find(key, &5);
                }
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
