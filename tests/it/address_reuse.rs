//! A recycled address never returns a dead owner's value.
//!
//! - The hazard is real here: a naive table keyed by the raw address returns stale values,
//!   because the allocator hands a freed block's address to the next object at once.
//! - weakmemo, over a million create / look up / call / drop cycles on owners of one small
//!   size (so addresses do repeat), never reports a hit for a fresh owner and never
//!   returns a wrong value, while `stats().entries` stays bounded.
//! - The standard ways of getting "the same object, changed" (`Arc::make_mut`,
//!   `Arc::get_mut`, `Arc::try_unwrap` then `Arc::new`) cannot revive a cached result:
//!   the entry's `Weak` pins the old allocation, so the changed object is a new owner.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use weakmemo::Registry;

#[derive(Clone)]
struct Counter(u64);

fn read(counter: &Arc<Counter>, &(): &()) -> u64 {
    counter.0
}

#[test]
fn a_naive_address_keyed_table_returns_stale_values() {
    let mut naive: HashMap<usize, u64> = HashMap::new();
    let mut addresses = HashSet::new();
    let mut stale = 0;
    const ROUNDS: u64 = 10_000;
    for i in 0..ROUNDS {
        let counter = Arc::new(Counter(i));
        let address = Arc::as_ptr(&counter) as usize;
        addresses.insert(address);
        // The naive memo: the value cached for this address, else computed.
        let value = *naive.entry(address).or_insert_with(|| read(&counter, &()));
        if value != i {
            stale += 1;
        }
        drop(counter);
    }
    assert!(
        addresses.len() < ROUNDS as usize / 2,
        "the allocator reused few addresses ({} distinct of {ROUNDS}); the hazard test \
         proves nothing",
        addresses.len()
    );
    assert!(stale > ROUNDS / 2, "only {stale} stale values");
}

#[test]
fn a_million_recycled_addresses_never_return_a_stale_value() {
    const ROUNDS: u64 = 1_000_000;
    const BOUND: usize = 4096;
    let cache = Registry::builder().purge_interval(64).build();
    let mut addresses = HashSet::new();
    let mut wrong = 0u64;
    let mut stale_hits = 0u64;
    let mut max_entries = 0;
    for i in 0..ROUNDS {
        let counter = Arc::new(Counter(i));
        addresses.insert(Arc::as_ptr(&counter) as usize);
        // A fresh owner must miss, whatever lived at its address before.
        if cache.method(read).get(&counter, &()).is_some() {
            stale_hits += 1;
        }
        if cache.method(read).call(&counter, ()) != i {
            wrong += 1;
        }
        drop(counter);
        if i % 1024 == 0 {
            let entries = cache.stats().entries;
            max_entries = max_entries.max(entries);
            assert!(entries < BOUND, "{entries} entries after {i} rounds");
        }
    }
    assert_eq!(wrong, 0, "wrong values returned");
    assert_eq!(stale_hits, 0, "fresh owners found a dead owner's entry");
    assert!(
        addresses.len() < (ROUNDS / 10) as usize,
        "{} distinct addresses in {ROUNDS} rounds: too little reuse to prove anything",
        addresses.len()
    );
    let stats = cache.stats();
    assert_eq!(stats.hits, 0);
    // Every round's `get` and `call` miss: a handle makes its method's table, so even
    // the first `get` is counted there.
    assert_eq!(stats.misses, 2 * ROUNDS);
    assert_eq!(stats.entries as u64 + stats.purged, ROUNDS, "{stats:?}");
    assert_eq!(cache.purge(), stats.entries, "every owner is dead");
    assert_eq!(cache.stats().entries, 0);
    eprintln!(
        "address reuse: {} distinct addresses, max {max_entries} entries, {stats:?}",
        addresses.len()
    );
}

#[test]
fn make_mut_gives_a_new_identity_while_an_entry_exists() {
    let cache = Registry::new();
    let mut counter = Arc::new(Counter(1));
    assert_eq!(cache.method(read).call(&counter, ()), 1);
    let before = Arc::as_ptr(&counter);

    // The entry's Weak makes the Arc non-unique, so make_mut moves the value out.
    Arc::make_mut(&mut counter).0 = 2;
    assert_ne!(Arc::as_ptr(&counter), before);
    assert_eq!(cache.method(read).get(&counter, &()), None);
    assert_eq!(cache.method(read).call(&counter, ()), 2);
    assert_eq!(cache.purge(), 1, "the old allocation's entry is dead");
    assert_eq!(cache.stats().entries, 1);
}

#[test]
fn get_mut_is_refused_while_an_entry_exists() {
    let cache = Registry::new();
    let mut counter = Arc::new(Counter(1));
    assert_eq!(cache.method(read).call(&counter, ()), 1);
    assert!(
        Arc::get_mut(&mut counter).is_none(),
        "the entry's Weak blocks get_mut"
    );

    assert_eq!(cache.invalidate_owner(&counter), 1);
    Arc::get_mut(&mut counter)
        .expect("unique once invalidated")
        .0 = 5;
    assert_eq!(cache.method(read).call(&counter, ()), 5);
}

#[test]
fn unwrap_and_rewrap_is_a_new_owner() {
    let cache = Registry::new();
    let counter = Arc::new(Counter(1));
    assert_eq!(cache.method(read).call(&counter, ()), 1);
    let before = Arc::as_ptr(&counter) as usize;

    let mut inner = Arc::try_unwrap(counter)
        .ok()
        .expect("the cache holds no strong ref");
    inner.0 = 3;
    let counter = Arc::new(inner);
    // The old block is still allocated (the entry's Weak), so the new one is elsewhere.
    assert_ne!(Arc::as_ptr(&counter) as usize, before);
    assert_eq!(cache.method(read).call(&counter, ()), 3);
    assert_eq!(cache.purge(), 1);
}
