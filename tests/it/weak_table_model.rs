//! weakmemo against `weak_table::PtrWeakKeyHashMap`, the obvious single-threaded design
//! of a weakly keyed memo table, used here as the reference model.
//!
//! The reference maps each owner (by pointer, held weakly) to its `(method, arg) -> value`
//! entries; weak-table forgets an owner's entries once the owner is dropped, which is
//! what weakmemo must show to its users. Random sequences of calls, lookups, owner
//! drops, invalidations and purges must agree with it:
//!
//! 1. `call` returns the reference's value if it has one, else the pure value, and runs
//!    the method exactly when the reference has no entry;
//! 2. `get` returns exactly the reference's entry;
//! 3. `invalidate` and `invalidate_owner` return what the reference removed;
//! 4. after `purge()`, `stats().entries` equals the reference's entries of live owners
//!    (weak-table's `remove_expired` dropped the dead ones the same way).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use proptest::prelude::*;
use weak_table::PtrWeakKeyHashMap;
use weakmemo::Registry;

struct Owner {
    id: u64,
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

fn pure(id: u64, method: u8, arg: u8) -> u64 {
    id * 100 + u64::from(method) * 10 + u64::from(arg)
}

fn first(owner: &Arc<Owner>, &arg: &u8) -> u64 {
    RUNS.fetch_add(1, SeqCst);
    pure(owner.id, 0, arg)
}

fn second(owner: &Arc<Owner>, &arg: &u8) -> u64 {
    RUNS.fetch_add(1, SeqCst);
    pure(owner.id, 1, arg)
}

#[derive(Clone, Debug)]
enum Op {
    Create,
    Drop(usize),
    Call(usize, u8, u8),
    Get(usize, u8, u8),
    Invalidate(usize, u8, u8),
    InvalidateOwner(usize),
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    let owner = any::<usize>();
    prop_oneof![
        2 => Just(Op::Create),
        2 => owner.prop_map(Op::Drop),
        8 => (owner, 0..2u8, 0..4u8).prop_map(|(o, m, a)| Op::Call(o, m, a)),
        3 => (owner, 0..2u8, 0..4u8).prop_map(|(o, m, a)| Op::Get(o, m, a)),
        2 => (owner, 0..2u8, 0..4u8).prop_map(|(o, m, a)| Op::Invalidate(o, m, a)),
        1 => owner.prop_map(Op::InvalidateOwner),
        2 => Just(Op::Purge),
    ]
}

fn run(cache: &Registry, owner: &Arc<Owner>, method: u8, arg: u8) -> u64 {
    if method == 0 {
        cache.method(first).call(owner, arg)
    } else {
        cache.method(second).call(owner, arg)
    }
}

fn get(cache: &Registry, owner: &Arc<Owner>, method: u8, arg: u8) -> Option<u64> {
    if method == 0 {
        cache.method(first).get(owner, &arg)
    } else {
        cache.method(second).get(owner, &arg)
    }
}

fn invalidate(cache: &Registry, owner: &Arc<Owner>, method: u8, arg: u8) -> bool {
    if method == 0 {
        cache.method(first).invalidate(owner, &arg)
    } else {
        cache.method(second).invalidate(owner, &arg)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn agrees_with_a_weak_table(
        interval in prop::sample::select(vec![0usize, 1, 5]),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let cache = Registry::builder().purge_interval(interval).shards(4).build();
        let mut reference: PtrWeakKeyHashMap<std::sync::Weak<Owner>, HashMap<(u8, u8), u64>> =
            PtrWeakKeyHashMap::new();
        let mut owners: Vec<Arc<Owner>> = Vec::new();
        let mut next_id = 0;
        for op in ops {
            let pick = |owners: &Vec<Arc<Owner>>, i: usize| owners[i % owners.len()].clone();
            if owners.is_empty() && !matches!(op, Op::Create | Op::Purge) {
                continue;
            }
            match op {
                Op::Create => {
                    next_id += 1;
                    owners.push(Arc::new(Owner { id: next_id }));
                }
                Op::Drop(i) => {
                    owners.swap_remove(i % owners.len());
                }
                Op::Call(i, method, arg) => {
                    let owner = pick(&owners, i);
                    let before = RUNS.load(SeqCst);
                    let got = run(&cache, &owner, method, arg);
                    let ran = RUNS.load(SeqCst) - before;
                    let entries = reference.entry(owner.clone()).or_insert_with(HashMap::new);
                    let expected = *entries.get(&(method, arg)).unwrap_or(&pure(owner.id, method, arg));
                    prop_assert_eq!(ran, usize::from(!entries.contains_key(&(method, arg))));
                    entries.insert((method, arg), expected);
                    prop_assert_eq!(got, expected);
                }
                Op::Get(i, method, arg) => {
                    let owner = pick(&owners, i);
                    let expected = reference.get(&owner).and_then(|e| e.get(&(method, arg)).copied());
                    prop_assert_eq!(get(&cache, &owner, method, arg), expected);
                }
                Op::Invalidate(i, method, arg) => {
                    let owner = pick(&owners, i);
                    let expected = reference
                        .get_mut(&owner)
                        .is_some_and(|e| e.remove(&(method, arg)).is_some());
                    prop_assert_eq!(invalidate(&cache, &owner, method, arg), expected);
                }
                Op::InvalidateOwner(i) => {
                    let owner = pick(&owners, i);
                    let expected = reference.remove(&owner).map_or(0, |e| e.len());
                    prop_assert_eq!(cache.invalidate_owner(&owner), expected);
                }
                Op::Purge => {
                    cache.purge();
                    reference.remove_expired();
                    let live: usize = reference.values().map(HashMap::len).sum();
                    prop_assert_eq!(cache.stats().entries, live);
                }
            }
        }
    }
}
