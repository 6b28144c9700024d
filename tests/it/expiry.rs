//! Time to live (`RegistryBuilder::ttl`, `Registry::set_ttl`, `set_ttl`): an
//! expired entry is never returned, whichever TTL applies; a method's own TTL overrides
//! the registry's, `Duration::MAX` exempts, `Duration::ZERO` stores nothing; entries
//! stored before a TTL age from when it is set; expired entries are removed lazily
//! (`purge()`, purge steps, a store of their key) and counted exactly; a value that holds
//! its own owner is freed once it expires and is purged; `call_async` is no exception.
//!
//! Timing: TTLs of 100 ms, and sleeps of three times that before asserting an expiry.
//! Nothing is asserted to happen *before* a short TTL runs out, except under a measured
//! check that retries if the machine stalled (see `entries_stored_without_a_ttl_...`);
//! whatever must survive has a TTL of an hour.

use crate::common;

use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Counter, Node, Owner, checked, expected, myself, other_value, value};
use weakmemo::Registry;

/// The short TTL under test.
const TTL: Duration = Duration::from_millis(100);
/// A TTL nothing in a test outlives.
const LONG: Duration = Duration::from_secs(3600);

/// Sleeps well past [`TTL`].
fn outlive_ttl() {
    sleep(3 * TTL);
}

/// A method's TTL: once it has passed, `get` and the `Ok` table's `get` return nothing and `call` and
/// `try_call` run the method again, exactly once per key.
#[test]
fn a_method_ttl_expires_its_entries() {
    let cache = Registry::builder().purge_interval(0).build();
    cache.method(value).set_ttl(Some(TTL));
    common::ok_table(&cache, checked).set_ttl(Some(TTL));
    assert_eq!(cache.method(value).ttl(), Some(TTL));
    assert_eq!(cache.ttl(), None);
    let owner = Owner::new(1);
    for arg in 0..3 {
        assert_eq!(cache.method(value).call(&owner, arg).n, expected(1, 1, arg));
    }
    assert_eq!(
        common::ok_table(&cache, checked)
            .try_call(&owner, 0)
            .unwrap()
            .n,
        expected(1, 3, 0)
    );
    assert_eq!(owner.invocations.get(), 4);

    outlive_ttl();
    for arg in 0..3 {
        assert_eq!(
            cache.method(value).get(&owner, &arg),
            None,
            "expired, yet returned"
        );
    }
    assert_eq!(
        common::ok_table(&cache, checked).get(&owner, &0),
        None,
        "expired, yet returned"
    );
    assert_eq!(owner.invocations.get(), 4, "get never computes");
    for arg in 0..3 {
        assert_eq!(cache.method(value).call(&owner, arg).n, expected(1, 1, arg));
    }
    assert_eq!(
        common::ok_table(&cache, checked)
            .try_call(&owner, 0)
            .unwrap()
            .n,
        expected(1, 3, 0)
    );
    assert_eq!(
        owner.invocations.get(),
        8,
        "each expired key computed once more"
    );
}

/// The registry's TTL from the builder applies to every method.
#[test]
fn a_registry_ttl_from_the_builder_expires_entries() {
    let cache = Registry::builder().ttl(TTL).purge_interval(0).build();
    assert_eq!(cache.ttl(), Some(TTL));
    assert_eq!(cache.method(value).ttl(), None, "not the method's own");
    let owner = Owner::new(2);
    cache.method(value).call(&owner, 0);
    cache.method(other_value).call(&owner, 0);
    outlive_ttl();
    assert_eq!(cache.method(value).get(&owner, &0), None);
    assert_eq!(cache.method(other_value).get(&owner, &0), None);
    assert_eq!(cache.method(value).call(&owner, 0).n, expected(2, 1, 0));
    assert_eq!(
        cache.method(other_value).call(&owner, 0).n,
        expected(2, 2, 0)
    );
    assert_eq!(owner.invocations.get(), 4);
}

/// `set_ttl` at run time reaches the methods that exist (and their entries, which age
/// from then) and those made later; `set_ttl(None)` lifts it.
#[test]
fn a_registry_ttl_set_at_run_time_applies_to_every_method() {
    let cache = Registry::builder().purge_interval(0).build();
    let owner = Owner::new(3);
    cache.method(value).call(&owner, 0);
    cache.set_ttl(Some(TTL));
    assert_eq!(cache.ttl(), Some(TTL));
    // A method first called after the TTL was set.
    cache.method(other_value).call(&owner, 0);
    outlive_ttl();
    assert_eq!(
        cache.method(value).get(&owner, &0),
        None,
        "an existing method"
    );
    assert_eq!(
        cache.method(other_value).get(&owner, &0),
        None,
        "a method made later"
    );
    assert_eq!(owner.invocations.get(), 2);
    cache.method(value).call(&owner, 0);
    assert_eq!(owner.invocations.get(), 3);

    cache.set_ttl(None);
    assert_eq!(cache.ttl(), None);
    cache.method(value).call(&owner, 1);
    cache.method(other_value).call(&owner, 1);
    assert_eq!(owner.invocations.get(), 5);
    outlive_ttl();
    assert_eq!(cache.method(value).call(&owner, 1).n, expected(3, 1, 1));
    assert_eq!(
        cache.method(other_value).call(&owner, 1).n,
        expected(3, 2, 1)
    );
    assert_eq!(owner.invocations.get(), 5, "no TTL any more: both hit");
}

/// A method's own TTL wins over the registry's, longer or shorter, whichever is set
/// first; `set_ttl(None)` gives the method the registry's again.
#[test]
fn a_method_ttl_overrides_the_registry_ttl() {
    let cache = Registry::builder().ttl(TTL).purge_interval(0).build();
    cache.method(value).set_ttl(Some(LONG));
    let owner = Owner::new(4);
    cache.method(value).call(&owner, 0);
    cache.method(other_value).call(&owner, 0);
    // Set after the method's own: does not override it.
    cache.set_ttl(Some(TTL));
    outlive_ttl();
    assert_eq!(
        cache.method(value).get(&owner, &0).map(|v| v.n),
        Some(expected(4, 1, 0))
    );
    assert_eq!(cache.method(other_value).get(&owner, &0), None);

    // The other way round: a long registry TTL, a short one of the method's own.
    cache.set_ttl(Some(LONG));
    cache.method(other_value).set_ttl(Some(TTL));
    cache.method(other_value).call(&owner, 1);
    outlive_ttl();
    assert_eq!(cache.method(other_value).get(&owner, &1), None);
    assert!(cache.method(value).get(&owner, &0).is_some());

    // Back to the registry's TTL, which is short again.
    cache.set_ttl(Some(TTL));
    cache.method(value).set_ttl(None);
    assert_eq!(cache.method(value).ttl(), None);
    cache.method(value).call(&owner, 2);
    outlive_ttl();
    assert_eq!(cache.method(value).get(&owner, &2), None);
    assert_eq!(cache.method(value).get(&owner, &0), None);
}

/// `Duration::MAX` as a method's TTL exempts it from the registry's.
#[test]
fn duration_max_exempts_a_method_from_the_registry_ttl() {
    let cache = Registry::builder().ttl(TTL).purge_interval(0).build();
    cache.method(value).set_ttl(Some(Duration::MAX));
    let owner = Owner::new(5);
    cache.method(value).call(&owner, 0);
    cache.method(other_value).call(&owner, 0);
    outlive_ttl();
    assert_eq!(cache.method(value).call(&owner, 0).n, expected(5, 1, 0));
    assert_eq!(owner.invocations.get(), 2, "exempt: a hit");
    assert_eq!(
        cache.method(other_value).get(&owner, &0),
        None,
        "not exempt"
    );
    assert_eq!(cache.purge(), 1);
    assert_eq!(cache.stats().expired, 1);
    assert_eq!(cache.method(value).stats().entries, 1);
}

/// `Duration::ZERO`, the method's or the registry's, stores nothing: every call runs the
/// method and nothing is ever returned by `get`.
#[test]
fn duration_zero_stores_nothing() {
    let cache = Registry::new();
    cache.method(value).set_ttl(Some(Duration::ZERO));
    let owner = Owner::new(6);
    for _ in 0..3 {
        assert_eq!(cache.method(value).call(&owner, 0).n, expected(6, 1, 0));
    }
    assert_eq!(owner.invocations.get(), 3);
    assert_eq!(cache.method(value).get(&owner, &0), None);
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(owner.values.get(), 0, "no value kept");

    let zero = Registry::builder().ttl(Duration::ZERO).build();
    let owner = Owner::new(7);
    for _ in 0..3 {
        assert_eq!(
            zero.method(checked).try_call(&owner, 0).unwrap().n,
            expected(7, 3, 0)
        );
        assert_eq!(
            zero.method(other_value).call(&owner, 1).n,
            expected(7, 2, 1)
        );
    }
    assert_eq!(owner.invocations.get(), 6);
    assert_eq!(zero.stats().entries, 0);
    // An entry stored before a TTL of zero is set is never returned after.
    let cache = Registry::new();
    cache.method(value).call(&owner, 0);
    cache.method(value).set_ttl(Some(Duration::ZERO));
    assert_eq!(cache.method(value).get(&owner, &0), None);
}

/// An entry stored while no TTL applied ages from when a TTL is set, not from when it
/// was stored (nor from the process's start); then expires like any other.
#[test]
fn entries_stored_without_a_ttl_age_from_when_one_is_set() {
    let ttl = Duration::from_millis(200);
    let mut decided = false;
    for attempt in 0..10 {
        let cache = Registry::builder().purge_interval(0).build();
        let owner = Owner::new(8);
        // Starts the crate's clock if no test has yet, then ages the entry well past the
        // TTL (and the clock past it too).
        cache.method(other_value).set_ttl(Some(LONG));
        cache.method(other_value).call(&owner, 0);
        cache.method(value).call(&owner, 0);
        sleep(ttl + TTL);
        let set = Instant::now();
        cache.method(value).set_ttl(Some(ttl));
        let found = cache.method(value).get(&owner, &0);
        if set.elapsed() < ttl / 2 {
            // Fast enough that the entry cannot have aged past the TTL since it was set.
            assert_eq!(
                found.map(|v| v.n),
                Some(expected(8, 1, 0)),
                "attempt {attempt}: the entry aged from its store, not from the TTL"
            );
            decided = true;
            sleep(3 * ttl);
            assert_eq!(
                cache.method(value).get(&owner, &0),
                None,
                "and it does expire"
            );
            assert_eq!(cache.purge(), 1);
            break;
        }
    }
    assert!(decided, "the machine stalled on every attempt");
}

/// Expired entries are not removed by lookups that meet them: they stay (their values
/// held) until `purge()`, which returns them and counts them in `expired`, apart from
/// dead owners' entries, counted in `purged`.
#[test]
fn purge_removes_expired_entries_and_counts_them_exactly() {
    let cache = Registry::builder().purge_interval(0).build();
    cache.method(value).set_ttl(Some(TTL));
    let owner = Owner::new(9);
    let dead = Owner::new(10);
    for arg in 0..5 {
        cache.method(value).call(&owner, arg);
    }
    cache.method(value).call(&dead, 0);
    cache.method(other_value).call(&dead, 0);
    cache.method(other_value).call(&owner, 0);
    drop(dead);
    outlive_ttl();
    for arg in 0..5 {
        assert_eq!(cache.method(value).get(&owner, &arg), None);
    }
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.expired, stats.purged), (8, 0, 0));
    assert_eq!(
        owner.values.get(),
        5 + 1,
        "expired values are held until removed"
    );

    // The dead owner's expired entry counts as collected: its owner died first.
    assert_eq!(cache.purge(), 5 + 2);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.expired, stats.purged), (1, 5, 2));
    assert_eq!(owner.values.get(), 1, "only the unexpired value is held");
    assert_eq!(cache.purge(), 0);
    assert_eq!(cache.stats().expired, 5);
}

/// Lazy purge steps remove expired entries, including those of a method nobody looks
/// up any more.
#[test]
fn lazy_purge_steps_remove_expired_entries() {
    let cache = Registry::builder().purge_interval(1).shards(4).build();
    cache.method(value).set_ttl(Some(TTL));
    let owner = Owner::new(11);
    for arg in 0..20 {
        cache.method(value).call(&owner, arg);
    }
    cache.method(other_value).call(&owner, 0);
    outlive_ttl();
    let mut lookups = 0;
    while cache.method(value).stats().entries > 0 {
        assert!(lookups < 100, "not purged: {:?}", cache.stats());
        // Hits of another method: each runs one step.
        assert_eq!(
            cache.method(other_value).call(&owner, 0).n,
            expected(11, 2, 0)
        );
        lookups += 1;
    }
    let stats = cache.stats();
    assert_eq!((stats.expired, stats.purged, stats.entries), (20, 0, 1));
    assert_eq!(owner.values.get(), 1, "the expired values are dropped");
}

/// A store of an expired entry's key replaces it: one entry, one expiry counted, the
/// old value dropped.
#[test]
fn a_store_replaces_an_expired_entry_of_its_key() {
    let cache = Registry::builder().purge_interval(0).build();
    cache.method(value).set_ttl(Some(TTL));
    let owner = Owner::new(12);
    cache.method(value).call(&owner, 0);
    outlive_ttl();
    assert_eq!(cache.method(value).call(&owner, 0).n, expected(12, 1, 0));
    assert_eq!(owner.invocations.get(), 2);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.expired, stats.misses), (1, 1, 2));
    assert_eq!(owner.values.get(), 1, "only the new value is held");

    // The same with single flight off, through the other insert path.
    cache.set_single_flight(false);
    outlive_ttl();
    assert_eq!(cache.method(value).call(&owner, 0).n, expected(12, 1, 0));
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.expired, stats.discarded), (1, 2, 0));
    assert_eq!(owner.values.get(), 1);
}

/// A value that holds its own owner keeps it alive through the cache (a cycle); once
/// the entry expires and is purged, the owner is freed.
#[test]
fn a_value_holding_its_owner_is_freed_once_expired_and_purged() {
    let cache = Registry::builder().purge_interval(0).build();
    cache.method(myself).set_ttl(Some(TTL));
    let drops = Counter::new();
    let node = Node::new(&drops);
    let watch = Arc::downgrade(&node);
    cache.method(myself).call(&node, ());
    drop(node);
    outlive_ttl();
    assert!(
        watch.upgrade().is_some(),
        "expired but not removed: still held"
    );
    assert_eq!(drops.get(), 0);
    assert_eq!(cache.purge(), 1);
    assert!(watch.upgrade().is_none(), "purged, so freed");
    assert_eq!(drops.get(), 1);
    let stats = cache.stats();
    assert_eq!((stats.expired, stats.purged, stats.entries), (1, 0, 0));
}

async fn doubled(owner: &Arc<Owner>, &arg: &u32) -> u64 {
    owner.invocations.inc();
    tokio::task::yield_now().await;
    expected(owner.id, 4, arg) * 2
}

/// `call_async` never returns an expired value either: past the TTL it runs the method
/// again, and `get` sees nothing until then.
#[test]
fn call_async_never_returns_an_expired_value() {
    let cache = Registry::builder().purge_interval(0).build();
    cache.method(doubled).set_ttl(Some(TTL));
    let owner = Owner::new(13);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(
            cache.method(doubled).call_async(&owner, 1).await,
            expected(13, 4, 1) * 2
        );
    });
    assert_eq!(owner.invocations.get(), 1);
    outlive_ttl();
    assert_eq!(cache.method(doubled).get(&owner, &1), None);
    runtime.block_on(async {
        assert_eq!(
            cache.method(doubled).call_async(&owner, 1).await,
            expected(13, 4, 1) * 2
        );
    });
    assert_eq!(owner.invocations.get(), 2, "expired: computed again");
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.expired), (1, 1));
}
