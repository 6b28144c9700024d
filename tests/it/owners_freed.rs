//! The cache never keeps an owner alive, and frees each cached value exactly once.
//!
//! For every public path (`call`, `try_call` with `Ok` and `Err`, `get`, the `Ok` table's `get`,
//! `invalidate`, `invalidate_owner`, `clear`, `clear`, `purge`, a panicking
//! method) this file shows, with drop counters and exact counts:
//!
//! - the owner's `Drop` runs as soon as the user's last `Arc` goes, while its entries are
//!   still in the cache (`Weak::upgrade()` is `None`, `stats().entries` unchanged);
//! - each entry holds exactly one `Weak` (`Arc::weak_count`) and exactly one value, and
//!   the removal paths drop that value exactly once (a live-copies counter returns to
//!   its expected level, never below);
//! - lazy purging frees dead owners' values with no `purge()` call, also in a cache that
//!   is only read (hits and `get`), which is the Caffeine #111/#167 pitfall;
//! - dropping a registry drops every value and `Weak` it held;
//! - a value holding its own owner is a cycle (documented limitation): only `clear`,
//!   `clear` or `invalidate_owner` break it.

use crate::common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use common::{Counter, Live, Node, Owner, Val, checked, expected, myself, other_value, value};
use weakmemo::Registry;

/// One owner with three entries of `value`; returns the owner.
/// Drops the test's last `Arc` of `owner`, checks that its `Drop` ran at once, purges,
/// and checks that every value it had in the cache is gone; returns what `purge()` said.
fn drop_then_purge(cache: &Registry, owner: Arc<Owner>) -> usize {
    let (drops, values) = (owner.drops.clone(), owner.values.clone());
    drop(owner);
    assert_eq!(drops.get(), 1, "the owner's Drop ran at once");
    let purged = cache.purge();
    assert_eq!(
        values.get(),
        0,
        "purge dropped every value of the dead owner"
    );
    purged
}

fn owner_with_three(cache: &Registry, id: u64) -> Arc<Owner> {
    let owner = Owner::new(id);
    for arg in 0..3 {
        assert_eq!(
            cache.method(value).call(&owner, arg).n,
            expected(id, 1, arg)
        );
    }
    owner
}

#[test]
fn call_keeps_no_owner_alive_and_purge_drops_each_value_once() {
    let cache = Registry::new();
    let owner = owner_with_three(&cache, 1);
    let (drops, values) = (owner.drops.clone(), owner.values.clone());
    assert_eq!(
        Arc::strong_count(&owner),
        1,
        "the cache holds no strong reference"
    );
    assert_eq!(Arc::weak_count(&owner), 3, "one Weak per entry");
    assert_eq!(
        values.get(),
        3,
        "the cache holds exactly one copy per entry"
    );

    // A hit hands out a clone and takes no reference to the owner.
    let hit = cache.method(value).call(&owner, 1);
    assert_eq!(hit.n, expected(1, 1, 1));
    assert_eq!(values.get(), 4);
    drop(hit);
    assert_eq!(Arc::strong_count(&owner), 1);

    let watch = Arc::downgrade(&owner);
    drop(owner);
    assert_eq!(drops.get(), 1, "the owner's Drop ran at once");
    assert!(watch.upgrade().is_none());
    assert_eq!(cache.stats().entries, 3, "its entries stay until purged");
    assert_eq!(values.get(), 3, "and hold their values");

    assert_eq!(cache.purge(), 3);
    assert_eq!(values.get(), 0, "purge dropped each value exactly once");
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.purged, stats.invalidated), (0, 3, 0));
    assert_eq!(cache.purge(), 0);
    assert_eq!(values.get(), 0);
    assert_eq!(drops.get(), 1);
}

#[test]
fn try_call_ok_keeps_no_owner_alive() {
    let cache = Registry::new();
    let owner = Owner::new(2);
    let values = owner.values.clone();
    assert_eq!(
        common::ok_table(&cache, checked)
            .try_call(&owner, 0)
            .unwrap()
            .n,
        expected(2, 3, 0)
    );
    assert_eq!(
        common::ok_table(&cache, checked)
            .try_call(&owner, 2)
            .unwrap()
            .n,
        expected(2, 3, 2)
    );
    assert_eq!(Arc::strong_count(&owner), 1);
    assert_eq!(Arc::weak_count(&owner), 2);
    assert_eq!(values.get(), 2);
    assert_eq!(owner.invocations.get(), 2);

    assert_eq!(cache.stats().entries, 2);
    assert_eq!(drop_then_purge(&cache, owner), 2);
}

#[test]
fn try_call_err_stores_nothing_and_keeps_nothing() {
    let cache = Registry::new();
    let owner = Owner::new(3);
    let values = owner.values.clone();
    let err = common::ok_table(&cache, checked)
        .try_call(&owner, 1)
        .unwrap_err();
    assert_eq!(err.n, expected(3, 3, 1));
    drop(err);
    assert_eq!(values.get(), 0, "the error is not kept anywhere");
    assert_eq!(Arc::weak_count(&owner), 0, "no entry, so no Weak");
    assert_eq!(Arc::strong_count(&owner), 1);
    assert_eq!(cache.stats().entries, 0);

    assert_eq!(drop_then_purge(&cache, owner), 0);
}

#[test]
fn gets_of_both_tables_keep_no_owner_alive() {
    let cache = Registry::new();
    let owner = Owner::new(4);
    let values = owner.values.clone();
    drop(cache.method(value).call(&owner, 7));
    drop(common::ok_table(&cache, checked).try_call(&owner, 8));
    for _ in 0..10 {
        assert_eq!(
            cache.method(value).get(&owner, &7).unwrap().n,
            expected(4, 1, 7)
        );
        assert_eq!(
            common::ok_table(&cache, checked).get(&owner, &8).unwrap().n,
            expected(4, 3, 8)
        );
        assert!(cache.method(value).get(&owner, &8).is_none());
        assert!(common::ok_table(&cache, checked).get(&owner, &7).is_none());
    }
    assert_eq!(Arc::strong_count(&owner), 1);
    assert_eq!(Arc::weak_count(&owner), 2);
    assert_eq!(values.get(), 2);

    assert_eq!(cache.stats().entries, 2);
    assert_eq!(drop_then_purge(&cache, owner), 2);
}

#[test]
fn invalidate_drops_the_value_at_once_and_exactly_once() {
    let cache = Registry::new();
    let owner = owner_with_three(&cache, 5);
    let values = owner.values.clone();
    drop(common::ok_table(&cache, checked).try_call(&owner, 0));
    assert_eq!(values.get(), 4);

    assert!(cache.method(value).invalidate(&owner, &1));
    assert_eq!(values.get(), 3);
    assert_eq!(Arc::weak_count(&owner), 3);
    assert!(!cache.method(value).invalidate(&owner, &1));
    assert_eq!(values.get(), 3);
    // `invalidate` also reaches the entries `try_call` stored for the same method.
    assert!(common::ok_table(&cache, checked).invalidate(&owner, &0));
    assert_eq!(values.get(), 2);
    assert_eq!(cache.stats().invalidated, 2);

    assert_eq!(drop_then_purge(&cache, owner), 2);
}

#[test]
fn invalidate_owner_drops_every_value_of_that_owner_only() {
    let cache = Registry::new();
    let owner = owner_with_three(&cache, 6);
    let other = owner_with_three(&cache, 7);
    drop(cache.method(other_value).call(&owner, 9));
    drop(common::ok_table(&cache, checked).try_call(&owner, 4));
    let (drops, values) = (owner.drops.clone(), owner.values.clone());
    assert_eq!(values.get(), 5);
    assert_eq!(Arc::weak_count(&owner), 5);

    assert_eq!(cache.invalidate_owner(&owner), 5);
    assert_eq!(values.get(), 0);
    assert_eq!(Arc::weak_count(&owner), 0);
    assert_eq!(
        Arc::weak_count(&other),
        3,
        "the other owner keeps its entries"
    );
    assert_eq!(other.values.get(), 3);
    assert_eq!(cache.invalidate_owner(&owner), 0);

    drop(owner);
    assert_eq!(drops.get(), 1);
    assert_eq!(cache.purge(), 0);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.invalidated, stats.purged), (3, 5, 0));
}

#[test]
fn invalidate_method_drops_that_methods_values_of_every_owner() {
    let cache = Registry::new();
    let drops = Counter::new();
    let (first, second) = (Live::new(), Live::new());
    let invocations = Counter::new();
    let a = Owner::with(1, &drops, &first, &invocations);
    let b = Owner::with(2, &drops, &second, &invocations);
    for owner in [&a, &b] {
        for arg in 0..4 {
            drop(cache.method(value).call(owner, arg));
        }
        drop(cache.method(other_value).call(owner, 0));
    }
    assert_eq!((first.get(), second.get()), (5, 5));

    // Dead owners' entries of the method go too, and are counted.
    drop(b);
    assert_eq!(drops.get(), 1);
    assert_eq!(cache.method(value).clear(), 8);
    assert_eq!((first.get(), second.get()), (1, 1));
    assert_eq!(Arc::weak_count(&a), 1);
    assert_eq!(cache.method(value).clear(), 0);

    drop(a);
    assert_eq!(drops.get(), 2);
    assert_eq!(cache.purge(), 2);
    assert_eq!((first.get(), second.get()), (0, 0));
}

#[test]
fn clear_drops_every_value_live_or_dead() {
    let cache = Registry::new();
    let a = owner_with_three(&cache, 8);
    let b = owner_with_three(&cache, 9);
    drop(common::ok_table(&cache, checked).try_call(&a, 0));
    let (a_values, b_values) = (a.values.clone(), b.values.clone());
    let b_drops = b.drops.clone();
    drop(b);
    assert_eq!(b_drops.get(), 1);

    assert_eq!(cache.clear(), 7, "live and dead entries are all cleared");
    assert_eq!((a_values.get(), b_values.get()), (0, 0));
    assert_eq!(Arc::weak_count(&a), 0);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.invalidated, stats.purged), (0, 7, 0));
    assert_eq!(cache.clear(), 0);
    assert_eq!(cache.purge(), 0);

    // The cache works as before after clear.
    assert_eq!(cache.method(value).call(&a, 0).n, expected(8, 1, 0));
    assert_eq!(Arc::weak_count(&a), 1);
}

#[test]
fn a_panicking_method_keeps_no_owner_alive() {
    fn boom(owner: &Arc<Owner>, &arg: &u32) -> Val {
        let _partial = Val::new(u64::from(arg), &owner.values);
        panic!("boom {arg}");
    }
    let cache = Registry::new();
    let owner = Owner::new(10);
    let (drops, values) = (owner.drops.clone(), owner.values.clone());
    let caught = catch_unwind(AssertUnwindSafe(|| cache.method(boom).call(&owner, 1)));
    assert!(caught.is_err());
    assert_eq!(Arc::strong_count(&owner), 1);
    assert_eq!(Arc::weak_count(&owner), 0);
    assert_eq!(values.get(), 0);

    let watch = Arc::downgrade(&owner);
    drop(owner);
    assert_eq!(drops.get(), 1);
    assert!(watch.upgrade().is_none());
    assert_eq!(cache.purge(), 0);
}

#[test]
fn lazy_purge_frees_dead_values_without_purge() {
    let cache = Registry::builder().purge_interval(1).build();
    let dead = owner_with_three(&cache, 11);
    let (drops, values) = (dead.drops.clone(), dead.values.clone());
    let live = owner_with_three(&cache, 12);
    drop(dead);
    assert_eq!(drops.get(), 1);
    assert_eq!(values.get(), 3, "nothing removed yet");

    // Lookups of other keys (hits of the live owner) run lazy steps.
    let mut lookups = 0;
    while values.get() != 0 {
        assert!(
            lookups < 100,
            "dead values still held after {lookups} lookups"
        );
        assert_eq!(
            cache.method(value).call(&live, lookups % 3).n,
            expected(12, 1, lookups % 3)
        );
        lookups += 1;
    }
    let stats = cache.stats();
    assert_eq!(stats.purged, 3);
    assert_eq!(stats.entries, 3);
    assert!(stats.purge_steps > 0);
    assert_eq!(live.values.get(), 3, "live entries untouched");
}

/// A cache that is only read still removes dead owners' entries (Caffeine #111/#167).
fn read_only_traffic_purges(read: impl Fn(&Registry, &Arc<Owner>) -> Option<Val>) {
    // Filled with lazy steps off and every owner alive (so the sweep before growth finds
    // nothing either): every dead entry is still there when the reads begin.
    let cache = Registry::builder().purge_interval(0).build();
    let drops = Counter::new();
    let (dead_values, live_values) = (Live::new(), Live::new());
    let invocations = Counter::new();
    let mut live = Vec::new();
    for id in 0..200u64 {
        let values = if id % 2 == 0 {
            &live_values
        } else {
            &dead_values
        };
        let owner = Owner::with(id, &drops, values, &invocations);
        drop(cache.method(value).call(&owner, 0));
        live.push(owner);
    }
    let live: Vec<_> = live.into_iter().filter(|owner| owner.id % 2 == 0).collect();
    assert_eq!(drops.get(), 100);
    assert_eq!(dead_values.get(), 100);
    let before = cache.stats();
    assert_eq!(before.entries, 200);
    assert_eq!(before.purged, 0);
    cache.set_purge_interval(4);

    let mut rounds = 0;
    while dead_values.get() != 0 {
        assert!(
            rounds < 200,
            "read-only traffic did not purge: {:?}",
            cache.stats()
        );
        for owner in &live {
            assert_eq!(read(&cache, owner).unwrap().n, expected(owner.id, 1, 0));
        }
        rounds += 1;
    }
    let stats = cache.stats();
    assert_eq!(stats.entries, 100);
    assert_eq!(stats.purged, 100);
    assert_eq!(stats.misses, before.misses, "only hits happened");
    assert_eq!(invocations.get(), 200, "no method ran during the reads");
    assert_eq!(live_values.get(), 100);
}

#[test]
fn a_cache_only_hit_through_call_still_purges() {
    read_only_traffic_purges(|cache, owner| Some(cache.method(value).call(owner, 0)));
}

#[test]
fn a_cache_only_read_through_get_still_purges() {
    read_only_traffic_purges(|cache, owner| cache.method(value).get(owner, &0));
}

#[test]
fn a_value_that_holds_its_owner_is_freed_by_clear_or_invalidation() {
    // Documented limitation: the value keeps its own owner alive (no ephemerons).
    let cache = Registry::new();
    let drops = Counter::new();

    let node = Node::new(&drops);
    drop(cache.method(myself).call(&node, ()));
    let watch = Arc::downgrade(&node);
    drop(node);
    assert_eq!(drops.get(), 0, "the cycle keeps the owner alive");
    assert_eq!(
        cache.purge(),
        0,
        "purge cannot break it: the owner is alive"
    );
    assert_eq!(cache.clear(), 1);
    assert_eq!(drops.get(), 1, "clear broke the cycle");
    assert!(watch.upgrade().is_none());

    let node = Node::new(&drops);
    drop(cache.method(myself).call(&node, ()));
    drop(node);
    assert_eq!(cache.method(myself).clear(), 1);
    assert_eq!(drops.get(), 2);

    let node = Node::new(&drops);
    drop(cache.method(myself).call(&node, ()));
    assert_eq!(cache.invalidate_owner(&node), 1);
    drop(node);
    assert_eq!(drops.get(), 3);
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn dropping_a_registry_drops_every_value_and_weak() {
    let cache = Registry::builder().shards(4).build();
    let live = owner_with_three(&cache, 13);
    let dead = owner_with_three(&cache, 14);
    drop(common::ok_table(&cache, checked).try_call(&live, 2));
    let (live_values, dead_values) = (live.values.clone(), dead.values.clone());
    drop(dead);
    assert_eq!((live_values.get(), dead_values.get()), (4, 3));
    assert_eq!(Arc::weak_count(&live), 4);

    drop(cache);
    assert_eq!((live_values.get(), dead_values.get()), (0, 0));
    assert_eq!(Arc::weak_count(&live), 0);
    assert_eq!(Arc::strong_count(&live), 1);
}
