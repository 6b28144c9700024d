//! Methods run outside every lock, and user code that does run under a lock is fenced.
//!
//! - A memoized Fibonacci whose method calls itself through the registry computes fib(90)
//!   with exactly 91 misses and 88 hits; a cached method may call a cached method of
//!   another owner; a method may even re-enter its own key once (the inner result is
//!   stored first, the outer one is discarded and counted), with no deadlock.
//! - An argument's `Eq` or a value's `Clone` that calls a registry (the same one or
//!   another) while the registry runs it under a lock panics with a message containing
//!   "must not use a weakmemo registry" instead of deadlocking, and the registry is fully
//!   usable afterwards, its entry intact. An argument's `Hash` runs outside locks and may
//!   use the registry.
//! - Values (and arguments) of removed entries are dropped outside locks: a value whose
//!   `Drop` calls the registry works on every removal path (`invalidate`,
//!   `invalidate_owner`, `clear`, `clear`, `purge`, a lazy step, the sweep
//!   before growth, and a value discarded after a lost insert race).

use crate::common;

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use common::{Counter, Live, Owner, Val, panic_message, watchdog};
use weakmemo::Registry;

const NESTED: &str = "must not use a weakmemo registry";

fn leak(registry: Registry) -> &'static Registry {
    Box::leak(Box::new(registry))
}

#[test]
fn memoized_fibonacci_computes_each_term_once() {
    static FIB: Registry = Registry::new();
    struct Sequence;
    fn fib(seq: &Arc<Sequence>, &n: &u32) -> u64 {
        if n < 2 {
            u64::from(n)
        } else {
            FIB.method(fib).call(seq, n - 1) + FIB.method(fib).call(seq, n - 2)
        }
    }
    let seq = Arc::new(Sequence);
    assert_eq!(FIB.method(fib).call(&seq, 90), 2_880_067_194_370_816_120);
    let stats = FIB.stats();
    assert_eq!(stats.misses, 91, "fib(0)..=fib(90), once each");
    assert_eq!(stats.hits, 88, "fib(n - 2) for n in 3..=90");
    assert_eq!(stats.entries, 91);
    assert_eq!(stats.discarded, 0);
    assert_eq!(FIB.method(fib).call(&seq, 90), 2_880_067_194_370_816_120);
    assert_eq!(FIB.stats().hits, 89);
    // Another sequence object has its own entries.
    let other = Arc::new(Sequence);
    assert_eq!(FIB.method(fib).call(&other, 10), 55);
    assert_eq!(FIB.stats().misses, 91 + 11);
    drop(seq);
    assert_eq!(FIB.purge(), 91);
    assert_eq!(FIB.stats().entries, 11);
}

#[test]
fn a_cached_method_may_call_a_cached_method_of_another_owner() {
    static CACHE: Registry = Registry::new();
    struct Part {
        weight: u64,
    }
    struct Whole {
        parts: Vec<Arc<Part>>,
    }
    fn part_weight(part: &Arc<Part>, &scale: &u64) -> u64 {
        part.weight * scale
    }
    fn whole_weight(whole: &Arc<Whole>, &scale: &u64) -> u64 {
        whole
            .parts
            .iter()
            .map(|p| CACHE.method(part_weight).call(p, scale))
            .sum()
    }
    let shared = Arc::new(Part { weight: 5 });
    let a = Arc::new(Whole {
        parts: vec![shared.clone(), Arc::new(Part { weight: 1 })],
    });
    let b = Arc::new(Whole {
        parts: vec![shared.clone(), Arc::new(Part { weight: 2 })],
    });
    assert_eq!(CACHE.method(whole_weight).call(&a, 10), 60);
    assert_eq!(CACHE.method(whole_weight).call(&b, 10), 70);
    let stats = CACHE.stats();
    // Misses: a, b, and three parts; the shared part hit once.
    assert_eq!(
        (stats.misses, stats.hits, stats.entries, stats.methods),
        (5, 1, 5, 2)
    );
    assert_eq!(CACHE.method(part_weight).get(&shared, &10), Some(50));
    drop((a, b));
    assert_eq!(CACHE.purge(), 4, "the wholes and their private parts");
    assert_eq!(CACHE.stats().entries, 1);
}

/// Without single flight, a method that re-enters its own key runs twice, and the first
/// value stored wins. (With single flight, the default, the same re-entry panics:
/// tests/it/single_flight.rs.)
#[test]
fn without_single_flight_a_method_may_reenter_its_own_key_once() {
    static CACHE: Registry = Registry::builder().single_flight(false).build();
    std::thread_local! {
        static DEPTH: Cell<u64> = const { Cell::new(0) };
    }
    fn reenter(owner: &Arc<Owner>, &arg: &u32) -> Val {
        owner.invocations.inc();
        let depth = DEPTH.get();
        DEPTH.set(depth + 1);
        if depth == 0 {
            // The inner call misses too (nothing is stored yet) and stores its value.
            assert_eq!(CACHE.method(reenter).call(owner, arg).n, 1);
        }
        DEPTH.set(depth);
        Val::new(depth, &owner.values)
    }
    let owner = Owner::new(1);
    let result = watchdog(Duration::from_secs(60), {
        let owner = owner.clone();
        move || CACHE.method(reenter).call(&owner, 0).n
    });
    assert_eq!(
        result, 1,
        "the value stored first (the inner one) is returned"
    );
    let stats = CACHE.stats();
    assert_eq!((stats.misses, stats.discarded, stats.entries), (2, 1, 1));
    assert_eq!(owner.invocations.get(), 2);
    assert_eq!(owner.values.get(), 1, "the outer value was dropped");
}

std::thread_local! {
    /// The registry a [`Nosy`] argument's `Eq` or a [`Sneaky`] value's `Clone` calls.
    static NOSY: Cell<Option<&'static Registry>> = const { Cell::new(None) };
}

/// An argument whose `Eq` calls the registry in [`NOSY`].
#[derive(Debug)]
struct Nosy(u32);

impl Hash for Nosy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for Nosy {
    fn eq(&self, other: &Self) -> bool {
        if let Some(registry) = NOSY.get() {
            let _ = registry.stats();
        }
        self.0 == other.0
    }
}

impl Eq for Nosy {}

fn nosy(owner: &Arc<Owner>, arg: &Nosy) -> u64 {
    owner.invocations.inc();
    owner.id * 100 + u64::from(arg.0)
}

/// Runs `f`, expecting the re-entrancy panic.
fn expect_nested_panic<R>(f: impl FnOnce() -> R) {
    let caught = catch_unwind(AssertUnwindSafe(f));
    NOSY.set(None);
    let payload = caught.err().expect("a nested registry call must panic");
    let message = panic_message(&*payload);
    assert!(
        message.contains(NESTED),
        "unexpected panic message: {message}"
    );
}

fn check_eq_guard(cache: &'static Registry, called: &'static Registry) {
    let owner = Owner::new(3);
    assert_eq!(cache.method(nosy).call(&owner, Nosy(1)), 301);
    // Eq runs only on a probe that meets an entry with the same hash: a lookup of the
    // cached key.
    NOSY.set(Some(called));
    expect_nested_panic(|| cache.method(nosy).call(&owner, Nosy(1)));

    // Every path that compares arguments under a lock is fenced the same way.
    NOSY.set(Some(called));
    expect_nested_panic(|| cache.method(nosy).get(&owner, &Nosy(1)));
    NOSY.set(Some(called));
    expect_nested_panic(|| cache.method(nosy).invalidate(&owner, &Nosy(1)));

    // The registry is fully usable, and the entry is intact.
    assert_eq!(cache.method(nosy).call(&owner, Nosy(1)), 301);
    assert_eq!(cache.method(nosy).call(&owner, Nosy(2)), 302);
    assert_eq!(owner.invocations.get(), 2);
    assert_eq!(cache.stats().entries, 2);
    assert!(cache.method(nosy).invalidate(&owner, &Nosy(1)));
    assert_eq!(cache.invalidate_owner(&owner), 1);
    assert_eq!(cache.clear(), 0);
    assert_eq!(cache.purge(), 0);
    // Including from the thread that panicked, on another method.
    let other = Owner::new(4);
    assert_eq!(
        cache.method(common::value).call(&other, 1).n,
        common::expected(4, 1, 1)
    );
}

#[test]
fn an_argument_eq_that_calls_its_registry_panics_clearly() {
    let cache = leak(Registry::new());
    watchdog(Duration::from_secs(60), move || {
        check_eq_guard(cache, cache)
    });
}

#[test]
fn an_argument_eq_that_calls_another_registry_panics_clearly() {
    let cache = leak(Registry::new());
    let other = leak(Registry::new());
    watchdog(Duration::from_secs(60), move || {
        check_eq_guard(cache, other)
    });
}

/// A value whose `Clone` calls the registry in [`NOSY`].
#[derive(Debug, PartialEq)]
struct Sneaky(u64);

impl Clone for Sneaky {
    fn clone(&self) -> Self {
        if let Some(registry) = NOSY.get() {
            let _ = registry.stats();
        }
        Self(self.0)
    }
}

fn sneaky(owner: &Arc<Owner>, &arg: &u32) -> Sneaky {
    owner.invocations.inc();
    Sneaky(owner.id * 100 + u64::from(arg))
}

#[test]
fn a_value_clone_that_calls_the_registry_panics_clearly() {
    let cache = leak(Registry::new());
    watchdog(Duration::from_secs(60), move || {
        let owner = Owner::new(5);
        assert_eq!(cache.method(sneaky).call(&owner, 1), Sneaky(501));
        NOSY.set(Some(cache));
        expect_nested_panic(|| cache.method(sneaky).call(&owner, 1));
        NOSY.set(Some(cache));
        expect_nested_panic(|| cache.method(sneaky).get(&owner, &1));

        assert_eq!(cache.method(sneaky).call(&owner, 1), Sneaky(501));
        assert_eq!(owner.invocations.get(), 1);
        assert_eq!(cache.stats().entries, 1);
        assert_eq!(cache.invalidate_owner(&owner), 1);
    });
}

/// An argument whose `Hash` uses the registry: hashing runs before any lock is taken.
#[derive(Debug, PartialEq, Eq)]
struct Hashy(u32);

impl Hash for Hashy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if let Some(registry) = NOSY.get() {
            let _ = registry.stats();
        }
        self.0.hash(state);
    }
}

fn hashy(owner: &Arc<Owner>, arg: &Hashy) -> u64 {
    owner.id + u64::from(arg.0)
}

#[test]
fn an_argument_hash_may_use_the_registry() {
    let cache = leak(Registry::new());
    watchdog(Duration::from_secs(60), move || {
        NOSY.set(Some(cache));
        let owner = Owner::new(6);
        assert_eq!(cache.method(hashy).call(&owner, Hashy(1)), 7);
        assert_eq!(cache.method(hashy).call(&owner, Hashy(1)), 7);
        assert_eq!(cache.method(hashy).get(&owner, &Hashy(1)), Some(7));
        assert!(cache.method(hashy).invalidate(&owner, &Hashy(1)));
        NOSY.set(None);
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.hits, stats.invalidated), (1, 2, 1));
    });
}

// ---- Drops outside locks ----

static HELPER: LazyLock<Arc<u64>> = LazyLock::new(|| Arc::new(1000));

fn helper_plus(helper: &Arc<u64>, &k: &u64) -> u64 {
    **helper + k
}

/// An owner whose methods produce [`Noisy`] values for its registry.
struct NoisyOwner {
    id: u64,
    cache: &'static Registry,
    values: Live,
    noisy_drops: Counter,
}

/// A value whose `Drop` uses the registry that holds it.
#[derive(Clone)]
struct Noisy {
    val: Val,
    cache: &'static Registry,
    drops: Counter,
}

impl Drop for Noisy {
    fn drop(&mut self) {
        // Would panic (nested) or deadlock if dropped under a shard lock.
        assert_eq!(self.cache.method(helper_plus).call(&*HELPER, 1), 1001);
        let _ = self.cache.stats();
        self.drops.inc();
    }
}

fn noisy(owner: &Arc<NoisyOwner>, &arg: &u32) -> Noisy {
    Noisy {
        val: Val::new(owner.id * 100 + u64::from(arg), &owner.values),
        cache: owner.cache,
        drops: owner.noisy_drops.clone(),
    }
}

fn noisy_owner(cache: &'static Registry, id: u64, values: &Live) -> Arc<NoisyOwner> {
    Arc::new(NoisyOwner {
        id,
        cache,
        values: values.clone(),
        noisy_drops: Counter::new(),
    })
}

/// Fills `cache` with `n` entries of one owner.
fn fill(cache: &'static Registry, id: u64, n: u32, values: &Live) -> Arc<NoisyOwner> {
    let owner = noisy_owner(cache, id, values);
    for arg in 0..n {
        assert_eq!(
            cache.method(noisy).call(&owner, arg).val.n,
            id * 100 + u64::from(arg)
        );
    }
    owner
}

#[test]
fn values_whose_drop_uses_the_registry_are_dropped_outside_locks() {
    let cache = leak(Registry::builder().purge_interval(0).build());
    watchdog(Duration::from_secs(60), move || {
        let values = Live::new();

        let a = fill(cache, 1, 3, &values);
        assert!(cache.method(noisy).invalidate(&a, &0));
        assert_eq!(values.get(), 2, "invalidate");
        assert_eq!(cache.invalidate_owner(&a), 2);
        assert_eq!(values.get(), 0, "invalidate_owner");

        let _b = fill(cache, 2, 3, &values);
        assert_eq!(cache.method(noisy).clear(), 3);
        assert_eq!(values.get(), 0, "invalidate_method");

        let _c = fill(cache, 3, 3, &values);
        assert_eq!(cache.clear(), 4, "three values and the helper's entry");
        assert_eq!(values.get(), 0, "clear");

        drop(fill(cache, 4, 3, &values));
        assert_eq!(cache.purge(), 3);
        assert_eq!(values.get(), 0, "purge");

        // A lazy step, run by a lookup.
        drop(fill(cache, 5, 3, &values));
        cache.set_purge_interval(1);
        let live = noisy_owner(cache, 6, &values);
        let mut lookups = 0;
        while values.get() > 1 {
            assert!(lookups < 100, "lazy steps did not run");
            drop(cache.method(noisy).call(&live, 0));
            lookups += 1;
        }
        assert_eq!(values.get(), 1, "a lazy step");
        cache.set_purge_interval(0);
    });
}

#[test]
fn values_dropped_by_the_sweep_before_growth_may_use_the_registry() {
    // One shard and no lazy steps: the sweep before growth is the only remover.
    let cache = leak(Registry::builder().shards(1).purge_interval(0).build());
    watchdog(Duration::from_secs(60), move || {
        let values = Live::new();
        let mut inserted = 0u64;
        for id in 0..64 {
            drop(fill(cache, id, 1, &values));
            inserted += 1;
        }
        let stats = cache.stats();
        let noisy_entries = stats.entries - 1; // the helper's entry, made by the drops
        assert!(
            stats.purged > 0,
            "the sweep before growth never ran: {stats:?}"
        );
        assert!(noisy_entries < 16, "dead entries piled up: {stats:?}");
        assert_eq!(noisy_entries as u64 + stats.purged, inserted);
        assert_eq!(
            values.get(),
            noisy_entries as isize,
            "swept values were dropped"
        );
    });
}

#[test]
fn a_value_discarded_after_a_lost_race_may_use_the_registry() {
    // A race needs two runs of one key: single flight off.
    let cache = leak(Registry::builder().single_flight(false).build());
    std::thread_local! {
        static DEPTH: Cell<u32> = const { Cell::new(0) };
    }
    fn noisy_reenter(owner: &Arc<NoisyOwner>, &arg: &u32) -> Noisy {
        let depth = DEPTH.get();
        DEPTH.set(depth + 1);
        if depth == 0 {
            drop(owner.cache.method(noisy_reenter).call(owner, arg));
        }
        DEPTH.set(depth);
        noisy(owner, &(arg + depth))
    }
    watchdog(Duration::from_secs(60), move || {
        let values = Live::new();
        let owner = noisy_owner(cache, 7, &values);
        let got = cache.method(noisy_reenter).call(&owner, 0);
        assert_eq!(got.val.n, 701, "the inner value was stored first");
        drop(got);
        assert_eq!(cache.stats().discarded, 1);
        assert_eq!(values.get(), 1);
        assert!(
            owner.noisy_drops.get() >= 1,
            "the discarded value was dropped"
        );
    });
}
