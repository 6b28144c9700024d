//! Failures cache nothing and poison nothing.
//!
//! - A panicking method: its payload reaches the caller unchanged, nothing is stored
//!   (`stats().entries` unchanged, `get` returns `None`, no `Weak` taken), the registry
//!   stays usable, and the next call runs the method again and caches its value.
//! - `try_call` returning `Err`: the error reaches the caller, nothing is stored, the next
//!   call runs the method again; an `Ok` later is cached and read back by the `Ok` table's `get`, and
//!   `call` and `try_call` of one method keep separate tables.
//! - A value whose `Clone` panics on the hit path, an argument whose `Eq` panics under the
//!   lock (in a lookup, or in the insert after the method ran), and an argument whose
//!   `Hash` panics before any lock: each panic reaches the caller and the registry, its
//!   locks and its entries are unharmed afterwards, also for other threads.
//! - Arguments are hashed once per call and never again (not to grow, purge or shrink).
//! - Looking up a method never called finds nothing; its handle made its table, where
//!   the lookups count as misses.

use crate::common;

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use common::{Owner, Touchy, Val, arm, armed, checked, expected, panic_message, value, watchdog};
use weakmemo::{Memo, Registry};

/// A method that panics while armed, with a payload naming its argument.
fn flaky(owner: &Arc<Owner>, &arg: &u32) -> Val {
    owner.invocations.inc();
    if armed() {
        std::panic::panic_any(format!("flaky failed on {arg}"));
    }
    Val::new(expected(owner.id, 9, arg), &owner.values)
}

#[test]
fn a_panicking_method_caches_nothing_and_the_next_call_recomputes() {
    let cache = Registry::new();
    let owner = Owner::new(1);
    assert_eq!(cache.method(flaky).call(&owner, 0).n, expected(1, 9, 0));
    let before = cache.stats();

    arm(true);
    let caught = catch_unwind(AssertUnwindSafe(|| cache.method(flaky).call(&owner, 1)));
    arm(false);
    let payload = caught.expect_err("the panic reaches the caller");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("flaky failed on 1"),
        "the payload is the method's own"
    );

    let after = cache.stats();
    assert_eq!(after.entries, before.entries, "nothing stored");
    assert_eq!(after.misses, before.misses + 1);
    assert!(cache.method(flaky).get(&owner, &1).is_none());
    assert_eq!(Arc::weak_count(&owner), 1, "only the entry of argument 0");
    assert_eq!(owner.values.get(), 1);

    // The next call runs the method again and caches.
    assert_eq!(cache.method(flaky).call(&owner, 1).n, expected(1, 9, 1));
    assert_eq!(owner.invocations.get(), 3);
    assert_eq!(cache.method(flaky).call(&owner, 1).n, expected(1, 9, 1));
    assert_eq!(owner.invocations.get(), 3);
    assert_eq!(cache.stats().entries, 2);
    // The old entry was untouched.
    assert_eq!(
        cache.method(flaky).get(&owner, &0).unwrap().n,
        expected(1, 9, 0)
    );
}

#[test]
fn a_panicking_method_leaves_the_registry_usable_from_other_threads() {
    let cache: &'static Registry = Box::leak(Box::new(Registry::new()));
    let owner = Owner::new(2);
    for _ in 0..10 {
        arm(true);
        let _ = catch_unwind(AssertUnwindSafe(|| cache.method(flaky).call(&owner, 5)));
        arm(false);
    }
    let shared = owner.clone();
    let value = watchdog(Duration::from_secs(60), move || {
        cache.method(flaky).call(&shared, 5).n + cache.method(value).call(&shared, 5).n
    });
    assert_eq!(value, expected(2, 9, 5) + expected(2, 1, 5));
    assert_eq!(
        cache.method(flaky).get(&owner, &5).unwrap().n,
        expected(2, 9, 5)
    );
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.misses, stats.hits), (2, 12, 1));
}

#[test]
fn an_error_is_not_cached_and_the_next_call_recomputes() {
    fn sometimes(owner: &Arc<Owner>, &arg: &u32) -> Result<Val, String> {
        owner.invocations.inc();
        if armed() {
            Err(format!("no {arg} today"))
        } else {
            Ok(Val::new(expected(owner.id, 8, arg), &owner.values))
        }
    }
    let cache = Registry::new();
    let owner = Owner::new(3);
    arm(true);
    for round in 1..=3 {
        assert_eq!(
            cache.method(sometimes).try_call(&owner, 4).unwrap_err(),
            "no 4 today"
        );
        assert_eq!(
            owner.invocations.get(),
            round,
            "each error call ran the method"
        );
    }
    arm(false);
    assert!(
        common::ok_table(&cache, sometimes)
            .get(&owner, &4)
            .is_none()
    );
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(cache.stats().misses, 4, "three try_calls and the get");
    assert_eq!(Arc::weak_count(&owner), 0);

    assert_eq!(
        cache.method(sometimes).try_call(&owner, 4).unwrap().n,
        expected(3, 8, 4)
    );
    assert_eq!(owner.invocations.get(), 4);
    // Cached now: no more runs, even while the method would fail.
    arm(true);
    assert_eq!(
        cache.method(sometimes).try_call(&owner, 4).unwrap().n,
        expected(3, 8, 4)
    );
    arm(false);
    assert_eq!(owner.invocations.get(), 4);
    let ok = common::ok_table(&cache, sometimes);
    assert_eq!(ok.get(&owner, &4).unwrap().n, expected(3, 8, 4));
    // `call` of the same method has its own table, holding the whole `Result`.
    let whole: Memo<'_, _, _, _, Result<Val, String>> = cache.method(sometimes);
    assert!(whole.get(&owner, &4).is_none());
    assert_eq!(whole.call(&owner, 4).unwrap().n, expected(3, 8, 4));
    assert_eq!(owner.invocations.get(), 5);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.methods), (2, 2));
    // Each handle invalidates its own table's entry.
    assert!(ok.invalidate(&owner, &4));
    assert!(whole.invalidate(&owner, &4));
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(owner.values.get(), 0);
}

#[test]
fn a_cached_error_through_call_is_a_value_like_any_other() {
    let cache = Registry::new();
    let owner = Owner::new(4);
    // Through `call`, a Result is just the value: an Err is cached.
    assert_eq!(
        cache.method(checked).call(&owner, 1).unwrap_err().n,
        expected(4, 3, 1)
    );
    assert_eq!(
        cache.method(checked).call(&owner, 1).unwrap_err().n,
        expected(4, 3, 1)
    );
    assert_eq!(owner.invocations.get(), 1);
    // Through `try_call`, it is not.
    assert!(cache.method(checked).try_call(&owner, 1).is_err());
    assert!(cache.method(checked).try_call(&owner, 1).is_err());
    assert_eq!(owner.invocations.get(), 3);
    assert_eq!(common::ok_table(&cache, checked).clear(), 0);
    let whole: Memo<'_, _, _, _, Result<Val, Val>> = cache.method(checked);
    assert_eq!(whole.clear(), 1);
}

/// A value whose `Clone` panics while armed.
#[derive(Debug)]
struct Brittle(u64);

impl Clone for Brittle {
    fn clone(&self) -> Self {
        if armed() {
            panic!("brittle clone");
        }
        Self(self.0)
    }
}

fn brittle(owner: &Arc<Owner>, &arg: &u32) -> Brittle {
    owner.invocations.inc();
    Brittle(expected(owner.id, 7, arg))
}

#[test]
fn a_panicking_clone_on_the_hit_path_poisons_nothing() {
    let cache: &'static Registry = Box::leak(Box::new(Registry::new()));
    let owner = Owner::new(5);
    assert_eq!(cache.method(brittle).call(&owner, 1).0, expected(5, 7, 1));
    for _ in 0..3 {
        arm(true);
        let caught = catch_unwind(AssertUnwindSafe(|| cache.method(brittle).call(&owner, 1)));
        arm(false);
        assert_eq!(panic_message(&*caught.unwrap_err()), "brittle clone");
        arm(true);
        let caught = catch_unwind(AssertUnwindSafe(|| cache.method(brittle).get(&owner, &1)));
        arm(false);
        assert_eq!(panic_message(&*caught.unwrap_err()), "brittle clone");
    }
    // The shard lock was released (a writer on another thread gets it) and the entry
    // is intact.
    let shared = owner.clone();
    let (inserted, invalidated) = watchdog(Duration::from_secs(60), move || {
        let inserted = cache.method(brittle).call(&shared, 2).0;
        (inserted, cache.method(brittle).invalidate(&shared, &2))
    });
    assert_eq!(inserted, expected(5, 7, 2));
    assert!(invalidated);
    assert_eq!(cache.method(brittle).call(&owner, 1).0, expected(5, 7, 1));
    assert_eq!(owner.invocations.get(), 2);
    assert_eq!(cache.stats().entries, 1);
    assert_eq!(cache.clear(), 1);
}

fn touchy(owner: &Arc<Owner>, arg: &Touchy) -> u64 {
    owner.invocations.inc();
    expected(owner.id, 6, arg.0)
}

#[test]
fn a_panicking_argument_eq_poisons_nothing() {
    let cache: &'static Registry = Box::leak(Box::new(Registry::new()));
    let owner = Owner::new(6);
    assert_eq!(
        cache.method(touchy).call(&owner, Touchy(1)),
        expected(6, 6, 1)
    );
    for _ in 0..3 {
        arm(true);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            cache.method(touchy).call(&owner, Touchy(1))
        }));
        arm(false);
        assert_eq!(panic_message(&*caught.unwrap_err()), "touchy eq");
        arm(true);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            cache.method(touchy).invalidate(&owner, &Touchy(1))
        }));
        arm(false);
        assert_eq!(panic_message(&*caught.unwrap_err()), "touchy eq");
    }
    let shared = owner.clone();
    let got = watchdog(Duration::from_secs(60), move || {
        (
            cache.method(touchy).call(&shared, Touchy(1)),
            cache.method(touchy).call(&shared, Touchy(2)),
        )
    });
    assert_eq!(got, (expected(6, 6, 1), expected(6, 6, 2)));
    assert_eq!(owner.invocations.get(), 2);
    assert_eq!(cache.stats().entries, 2);
    assert!(cache.method(touchy).invalidate(&owner, &Touchy(1)));
    assert_eq!(cache.stats().entries, 1);
}

/// An argument whose `Eq`, while armed, answers "different" once (so the lookup misses
/// and the method runs) and then panics (in the insert, under the shard's write lock).
#[derive(Debug)]
struct Fickle(u32);

std::thread_local! {
    static FICKLE_CALLS: Cell<u32> = const { Cell::new(0) };
}

impl Hash for Fickle {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for Fickle {
    fn eq(&self, other: &Self) -> bool {
        if armed() {
            let calls = FICKLE_CALLS.get() + 1;
            FICKLE_CALLS.set(calls);
            if calls == 1 {
                return false;
            }
            panic!("fickle eq");
        }
        self.0 == other.0
    }
}

impl Eq for Fickle {}

fn fickle(owner: &Arc<Owner>, arg: &Fickle) -> Val {
    owner.invocations.inc();
    Val::new(expected(owner.id, 4, arg.0), &owner.values)
}

#[test]
fn a_panicking_argument_eq_during_insert_poisons_nothing() {
    // One shard, so that the other thread below needs the very lock that was held. The
    // insert after a run compares arguments only without single flight (with it, the
    // claim before the run does; tests/it/single_flight.rs covers that path).
    let cache: &'static Registry = Box::leak(Box::new(
        Registry::builder().shards(1).single_flight(false).build(),
    ));
    let owner = Owner::new(10);
    assert_eq!(
        cache.method(fickle).call(&owner, Fickle(1)).n,
        expected(10, 4, 1)
    );
    FICKLE_CALLS.set(0);
    arm(true);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        cache.method(fickle).call(&owner, Fickle(1))
    }));
    arm(false);
    assert_eq!(panic_message(&*caught.unwrap_err()), "fickle eq");
    assert_eq!(
        FICKLE_CALLS.get(),
        2,
        "the lookup compared, then the insert did"
    );
    assert_eq!(
        owner.invocations.get(),
        2,
        "the method ran for the failed call"
    );
    assert_eq!(
        owner.values.get(),
        1,
        "its value was dropped; the stored one stays"
    );
    assert_eq!(cache.stats().entries, 1);

    let shared = owner.clone();
    let got = watchdog(Duration::from_secs(60), move || {
        let first = cache.method(fickle).call(&shared, Fickle(1)).n;
        let second = cache.method(fickle).call(&shared, Fickle(2)).n;
        (
            first,
            second,
            cache.method(fickle).invalidate(&shared, &Fickle(2)),
        )
    });
    assert_eq!(got, (expected(10, 4, 1), expected(10, 4, 2), true));
    assert_eq!(owner.invocations.get(), 3);
    assert_eq!(cache.stats().entries, 1);
}

/// An argument whose `Hash` panics while armed (it runs before any lock).
#[derive(Debug, PartialEq, Eq)]
struct Unhashable(u32);

impl Hash for Unhashable {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if armed() {
            panic!("unhashable");
        }
        self.0.hash(state);
    }
}

fn unhashable(owner: &Arc<Owner>, arg: &Unhashable) -> u64 {
    owner.invocations.inc();
    expected(owner.id, 5, arg.0)
}

#[test]
fn a_panicking_argument_hash_poisons_nothing() {
    let cache = Registry::new();
    let owner = Owner::new(7);
    assert_eq!(
        cache.method(unhashable).call(&owner, Unhashable(1)),
        expected(7, 5, 1)
    );
    arm(true);
    for result in [
        catch_unwind(AssertUnwindSafe(|| {
            let _ = cache.method(unhashable).call(&owner, Unhashable(2));
        })),
        catch_unwind(AssertUnwindSafe(|| {
            let _ = cache.method(unhashable).get(&owner, &Unhashable(1));
        })),
        catch_unwind(AssertUnwindSafe(|| {
            let _ = cache.method(unhashable).invalidate(&owner, &Unhashable(1));
        })),
    ] {
        assert_eq!(panic_message(&*result.unwrap_err()), "unhashable");
    }
    arm(false);
    assert_eq!(
        owner.invocations.get(),
        1,
        "the method never ran for the failed call"
    );
    assert_eq!(
        cache.method(unhashable).get(&owner, &Unhashable(1)),
        Some(expected(7, 5, 1))
    );
    assert_eq!(cache.stats().entries, 1);
    // The registry's own maintenance runs no `Hash`: growing and purging work while armed.
    arm(true);
    let purged = cache.purge();
    let cleared = cache.clear();
    arm(false);
    assert_eq!((purged, cleared), (0, 1));
}

#[test]
fn the_table_never_rehashes_arguments() {
    // Each call hashes its own key once, before any lock; growing, purging and shrinking
    // use the stored hashes. So a `Hash` that panics or disagrees later cannot break the
    // table's maintenance.
    let cache = Registry::builder().shards(1).build();
    let owner = Owner::new(8);
    std::thread_local! {
        static HASHES: Cell<usize> = const { Cell::new(0) };
    }
    #[derive(Debug, PartialEq, Eq)]
    struct Counted(u32);
    impl Hash for Counted {
        fn hash<H: Hasher>(&self, state: &mut H) {
            HASHES.set(HASHES.get() + 1);
            self.0.hash(state);
        }
    }
    fn counted(owner: &Arc<Owner>, arg: &Counted) -> u64 {
        owner.id + u64::from(arg.0)
    }
    for i in 0..1000 {
        assert_eq!(
            cache.method(counted).call(&owner, Counted(i)),
            8 + u64::from(i)
        );
    }
    assert_eq!(HASHES.get(), 1000, "one hash per call, none for growth");
    drop(owner);
    assert_eq!(cache.purge(), 1000);
    assert_eq!(HASHES.get(), 1000, "none for purge or shrink");
}

#[test]
fn looking_up_a_method_never_called_finds_nothing_and_counts_only_the_misses() {
    let cache = Registry::new();
    let owner = Owner::new(9);
    assert!(cache.method(value).get(&owner, &1).is_none());
    assert!(common::ok_table(&cache, checked).get(&owner, &0).is_none());
    assert!(!cache.method(value).invalidate(&owner, &1));
    assert_eq!(cache.method(value).clear(), 0);
    assert_eq!(cache.invalidate_owner(&owner), 0);
    // A handle makes its method's table: the two lookups are misses there.
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits, stats.methods), (2, 0, 2));
    assert_eq!((stats.entries, stats.invalidated), (0, 0));
}
