//! Object arguments and owner-less functions, called by hand through `Memo::call`.
//!
//! - A tuple of owners (a receiver and object arguments) is held weakly, by identity:
//!   the entry lives while all of them live, is never returned once one dies, and is
//!   removed by `purge()`, by lazy purge steps and by the sweep before a table grows;
//!   its value is dropped then, counted in `Stats::purged` and reported to the removal
//!   listener as `Collected`. Whichever owner dies, the receiver or an argument.
//! - The owners' own `Hash` and `Eq` are never called; `Arc<dyn Trait>` arguments and
//!   tuples of three and four owners work; the order of the owners is part of the key.
//! - A million short-lived argument objects at recycled addresses, beside one long-lived
//!   receiver, never see a dead argument's value, and the entries stay bounded.
//! - An owner-less function (`()` as its owners) runs once per distinct argument, also
//!   under 16 threads missing one cold key at once, and through `call_async`; it is
//!   bounded by `DEFAULT_OWNERLESS_CAPACITY` until told otherwise, and its entries go by
//!   `invalidate`, `clear`, a bound or a TTL.
//! - TTLs and bounds apply to methods with object arguments as to any other.

use crate::common;

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{Counter, Live, Owner, Recorder, Val, watchdog};
use weakmemo::{DEFAULT_OWNERLESS_CAPACITY, Registry, RemovalCause};

/// What [`pair`] computes: the receiver's id, the argument's id and the key, each in
/// its own digits.
fn pair_value(receiver: u64, argument: u64, k: u32) -> u64 {
    receiver * 1_000_000 + argument * 1_000 + u64::from(k)
}

/// A method of a receiver with one object argument; counts its runs on the receiver and
/// its values in the receiver's `Live`.
fn pair((receiver, argument): (&Arc<Owner>, &Arc<Owner>), &k: &u32) -> Val {
    receiver.invocations.inc();
    Val::new(pair_value(receiver.id, argument.id, k), &receiver.values)
}

/// A method of the receiver alone, beside [`pair`].
fn alone(receiver: &Arc<Owner>, &k: &u32) -> Val {
    receiver.invocations.inc();
    Val::new(pair_value(receiver.id, 0, k), &receiver.values)
}

/// Whichever owner dies, the entry is never visible again, `purge()` removes it and drops
/// its value, `Stats::purged` counts it and the listener hears `Collected`; the surviving
/// owner is untouched and keeps its own entry. `receiver_dies` picks the victim.
fn one_owner_dies_and_its_entry_goes(receiver_dies: bool) {
    let cache = Registry::new();
    let recorder = Recorder::<u32, Val>::install(&cache);
    let (values, invocations) = (Live::new(), Counter::new());
    let receiver = Owner::with(1, &Counter::new(), &values, &invocations);
    let argument = Owner::with(2, &Counter::new(), &values, &invocations);
    let (victim, survivor) = if receiver_dies {
        (&receiver, &argument)
    } else {
        (&argument, &receiver)
    };
    let survivor_id = survivor.id;

    assert_eq!(
        cache.method(pair).call((&receiver, &argument), 7).n,
        pair_value(1, 2, 7)
    );
    assert_eq!(
        cache.method(alone).call(survivor, 7).n,
        pair_value(survivor_id, 0, 7)
    );
    assert_eq!(
        cache.method(pair).call((&receiver, &argument), 7).n,
        pair_value(1, 2, 7)
    );
    assert_eq!(invocations.get(), 2, "the second call was a hit");
    assert_eq!(values.get(), 2, "the cache holds one value per entry");
    assert_eq!(
        Arc::strong_count(victim),
        1,
        "no strong reference to either owner"
    );
    assert_eq!(Arc::strong_count(survivor), 1);
    assert_eq!(Arc::weak_count(victim), 1, "one Weak, the pair's entry's");
    assert_eq!(Arc::weak_count(survivor), 2, "one Weak per entry");

    let (victim, survivor) = if receiver_dies {
        (receiver, argument)
    } else {
        (argument, receiver)
    };
    let (victim_drops, watch) = (victim.drops.clone(), Arc::downgrade(&victim));
    drop(victim);
    assert_eq!(victim_drops.get(), 1, "the dead owner's Drop ran at once");
    assert!(watch.upgrade().is_none());
    assert_eq!(survivor.drops.get(), 0);
    assert_eq!(
        cache.stats().entries,
        2,
        "the dead entry stays until purged"
    );
    assert_eq!(values.get(), 2, "and holds its value");

    // A new object equal in every field to the dead one, at another address (the
    // entry's Weak pins the dead one's), is another owner: the entry is never visible.
    let twin = Owner::with(
        if receiver_dies { 1 } else { 2 },
        &Counter::new(),
        &Live::new(),
        &Counter::new(),
    );
    let owners = if receiver_dies {
        (&twin, &survivor)
    } else {
        (&survivor, &twin)
    };
    assert_eq!(cache.method(pair).get(owners, &7), None);
    assert!(
        !cache.method(pair).invalidate(owners, &7),
        "nothing to invalidate"
    );

    assert_eq!(cache.purge(), 1, "the dead owner's entry, and only it");
    let stats = cache.stats();
    assert_eq!(
        (stats.entries, stats.purged, stats.invalidated),
        (1, 1, 0),
        "{stats:?}"
    );
    let records = recorder.take();
    assert_eq!(records.len(), 1, "one removal of pair's type");
    assert_eq!(records[0].0, RemovalCause::Collected);
    assert_eq!(records[0].1, 7);
    assert_eq!(records[0].2.n, pair_value(1, 2, 7));
    drop(records);
    assert_eq!(recorder.count(RemovalCause::Collected), 1);
    assert_eq!(recorder.total(), 1);
    assert_eq!(values.get(), 1, "the dead entry's value was dropped, once");

    assert_eq!(
        Arc::weak_count(&survivor),
        1,
        "the survivor's own entry remains"
    );
    let own = cache.method(alone).get(&survivor, &7).map(|v| v.n);
    assert_eq!(own, Some(pair_value(survivor_id, 0, 7)));
    assert_eq!(cache.purge(), 0);
    assert_eq!(invocations.get(), 2);
}

/// An object argument is freed as soon as its last `Arc` drops while the receiver
/// lives; its entry is never returned, `purge()` removes it, its value is dropped,
/// `Stats::purged` counts it and the listener reports `Collected`.
#[test]
fn an_argument_dropped_before_its_receiver_is_freed_and_its_entry_purged() {
    one_owner_dies_and_its_entry_goes(false);
}

/// The symmetric case: the receiver dies while the argument lives.
#[test]
fn a_receiver_dropped_before_its_argument_is_freed_and_its_entry_purged() {
    one_owner_dies_and_its_entry_goes(true);
}

/// Lazy purge steps remove an entry whose argument died, with no `purge()` call, in a
/// cache that is only read afterwards.
#[test]
fn lazy_purge_steps_remove_an_entry_whose_argument_died() {
    let cache = Registry::builder().purge_interval(1).build();
    let receiver = Owner::new(1);
    let argument = Owner::new(2);
    cache.method(pair).call((&receiver, &argument), 1);
    cache.method(alone).call(&receiver, 1);
    drop(argument);
    assert_eq!(receiver.values.get(), 2);
    for _ in 0..1_000 {
        assert_eq!(
            cache.method(alone).call(&receiver, 1).n,
            pair_value(1, 0, 1)
        );
    }
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.purged), (1, 1), "{stats:?}");
    assert_eq!(
        receiver.values.get(),
        1,
        "the dead entry's value was dropped"
    );
}

/// With lazy steps off, the sweep a table makes before it grows keeps the dead
/// arguments' entries bounded.
#[test]
fn the_sweep_before_growth_bounds_entries_of_dead_arguments() {
    let cache = Registry::builder().purge_interval(0).build();
    let receiver = Owner::new(1);
    let mut most = 0;
    for id in 0..20_000 {
        let argument = Owner::new(id);
        assert_eq!(
            cache.method(pair).call((&receiver, &argument), 0).n,
            pair_value(1, id, 0)
        );
        drop(argument);
        most = most.max(cache.stats().entries);
    }
    let stats = cache.stats();
    assert!(most < 4_096, "{most} entries held at most; {stats:?}");
    assert!(stats.purged > 15_000, "{stats:?}");
    assert_eq!(stats.purge_steps, 0, "no lazy step ran");
    assert_eq!(stats.entries as u64 + stats.purged, 20_000);
    assert_eq!(receiver.values.get(), stats.entries as isize);
}

/// `invalidate_owner` of an object argument removes the entries it is part of, and
/// `invalidate` takes the whole tuple of owners.
#[test]
fn invalidation_reaches_entries_through_any_of_their_owners() {
    let cache = Registry::new();
    let receiver = Owner::new(1);
    let (first, second) = (Owner::new(2), Owner::new(3));
    for k in 0..3 {
        cache.method(pair).call((&receiver, &first), k);
        cache.method(pair).call((&receiver, &second), k);
    }
    cache.method(alone).call(&receiver, 0);
    assert_eq!(cache.stats().entries, 7);

    assert!(cache.method(pair).invalidate((&receiver, &second), &0));
    assert!(
        !cache.method(pair).invalidate((&second, &receiver), &1),
        "order matters"
    );
    assert_eq!(
        cache.invalidate_owner(&first),
        3,
        "the argument's three entries"
    );
    assert_eq!(cache.method(pair).get((&receiver, &first), &1), None);
    assert_eq!(
        cache
            .method(pair)
            .get((&receiver, &second), &1)
            .map(|v| v.n),
        Some(pair_value(1, 3, 1))
    );
    assert_eq!(
        cache.invalidate_owner(&receiver),
        3,
        "two pairs and its own"
    );
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(cache.stats().invalidated, 7);
    assert_eq!(receiver.values.get(), 0);
}

/// The owners' order is part of the key: `(a, b)` and `(b, a)` are two entries, even of
/// a symmetric method; the same object twice, `(a, a)`, is an entry of its own.
#[test]
fn the_order_of_the_owners_is_part_of_the_key() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    fn together((a, b): (&Arc<Owner>, &Arc<Owner>), &(): &()) -> u64 {
        RUNS.fetch_add(1, SeqCst);
        a.id + b.id
    }
    let cache = Registry::new();
    let (a, b) = (Owner::new(1), Owner::new(2));
    assert_eq!(cache.method(together).call((&a, &b), ()), 3);
    assert_eq!(cache.method(together).call((&b, &a), ()), 3);
    assert_eq!(cache.method(together).call((&a, &a), ()), 2);
    assert_eq!(cache.method(together).call((&a, &b), ()), 3);
    assert_eq!(RUNS.load(SeqCst), 3);
    assert_eq!(cache.stats().entries, 3);
    drop(a);
    assert_eq!(cache.purge(), 3, "every entry held `a`");
}

/// An object whose `Hash` and `Eq` panic, whichever way it is touched.
struct Prickly(u64);

impl Hash for Prickly {
    fn hash<H: Hasher>(&self, _: &mut H) {
        panic!("an owner's Hash was called");
    }
}

impl PartialEq for Prickly {
    fn eq(&self, _: &Self) -> bool {
        panic!("an owner's Eq was called");
    }
}

impl Eq for Prickly {}

fn prickly_sum((a, b): (&Arc<Prickly>, &Arc<Prickly>), &k: &u64) -> u64 {
    a.0 * 100 + b.0 * 10 + k
}

/// Neither the receiver's nor the argument's own `Hash` or `Eq` is ever called: by a
/// miss, a hit, `get`, `invalidate`, `invalidate_owner`, nor the purge of a dead one.
/// Two objects equal in value are two owners.
#[test]
fn an_arguments_own_hash_and_eq_are_never_called() {
    let cache = Registry::new();
    let (a, b) = (Arc::new(Prickly(1)), Arc::new(Prickly(2)));
    let twin = Arc::new(Prickly(2));
    assert_eq!(cache.method(prickly_sum).call((&a, &b), 3), 123);
    assert_eq!(cache.method(prickly_sum).call((&a, &b), 3), 123);
    assert_eq!(cache.method(prickly_sum).get((&a, &b), &3), Some(123));
    assert_eq!(
        cache.method(prickly_sum).get((&a, &twin), &3),
        None,
        "an equal twin is another"
    );
    assert_eq!(cache.method(prickly_sum).call((&a, &twin), 3), 123);
    assert_eq!(cache.method(prickly_sum).call((&b, &a), 3), 213);
    assert!(cache.method(prickly_sum).invalidate((&b, &a), &3));
    assert_eq!(cache.stats().entries, 2);
    drop(twin);
    assert_eq!(cache.purge(), 1);
    assert_eq!(cache.invalidate_owner(&b), 1);
    assert_eq!(cache.stats().entries, 0);
}

use crate::common::{Circle, Shape, Square};

/// A receiver that scales shapes.
struct Scale(f64);

fn scaled_area((scale, shape): (&Arc<Scale>, &Arc<dyn Shape>), &(): &()) -> f64 {
    scale.0 * shape.area()
}

/// `Arc<dyn Trait>` object arguments work: identity is the allocation, whatever the
/// concrete type, and a dead trait object's entry is purged.
#[test]
fn trait_object_arguments_are_held_by_identity() {
    let cache = Registry::new();
    let scale = Arc::new(Scale(2.0));
    let square: Arc<dyn Shape> = Arc::new(Square(3.0));
    let circle: Arc<dyn Shape> = Arc::new(Circle(1.0));
    let other_square: Arc<dyn Shape> = Arc::new(Square(3.0));
    assert_eq!(cache.method(scaled_area).call((&scale, &square), ()), 18.0);
    assert_eq!(cache.method(scaled_area).call((&scale, &circle), ()), 6.0);
    assert_eq!(
        cache.method(scaled_area).get((&scale, &other_square), &()),
        None
    );
    assert_eq!(
        cache.method(scaled_area).get((&scale, &square), &()),
        Some(18.0)
    );
    // The same allocation seen through another `Arc<dyn Shape>` is the same owner.
    let alias = Arc::clone(&square);
    assert_eq!(
        cache.method(scaled_area).get((&scale, &alias), &()),
        Some(18.0)
    );
    drop((square, alias));
    assert_eq!(cache.purge(), 1);
    assert_eq!(
        cache.method(scaled_area).get((&scale, &circle), &()),
        Some(6.0)
    );
    assert_eq!(cache.stats().entries, 1);
}

fn three((a, b, c): (&Arc<Owner>, &Arc<Owner>, &Arc<Owner>), &k: &u32) -> Val {
    a.invocations.inc();
    Val::new(
        a.id * 10_000 + b.id * 1_000 + c.id * 100 + u64::from(k),
        &a.values,
    )
}

fn four((a, b, c, d): (&Arc<Owner>, &Arc<Owner>, &Arc<Owner>, &Arc<Owner>), &k: &u32) -> Val {
    a.invocations.inc();
    Val::new(
        a.id * 100_000 + b.id * 10_000 + c.id * 1_000 + d.id * 100 + u64::from(k),
        &a.values,
    )
}

/// Tuples of three and four owners: one entry per combination, in order; the death of
/// any one of them (here a middle one) hides and purges exactly the entries it was in.
#[test]
fn three_and_four_owner_tuples_live_while_all_their_owners_live() {
    let cache = Registry::new();
    let [a, b, c, d, e] = [1, 2, 3, 4, 5].map(Owner::new);
    let values = a.values.clone();
    assert_eq!(cache.method(three).call((&a, &b, &c), 1).n, 12_301);
    assert_eq!(cache.method(three).call((&a, &c, &b), 1).n, 13_201);
    assert_eq!(cache.method(three).call((&a, &d, &e), 1).n, 14_501);
    assert_eq!(cache.method(four).call((&a, &b, &c, &d), 1).n, 123_401);
    assert_eq!(cache.method(four).call((&a, &e, &d, &e), 1).n, 154_501);
    assert_eq!(cache.method(three).call((&a, &b, &c), 1).n, 12_301);
    assert_eq!(cache.method(four).call((&a, &b, &c, &d), 1).n, 123_401);
    assert_eq!(a.invocations.get(), 5, "the repeats were hits");
    assert_eq!(cache.method(three).stats().hits, 1);
    assert_eq!(cache.method(four).stats().hits, 1);
    assert_eq!(Arc::weak_count(&e), 3, "one Weak per appearance of e");

    let watch = Arc::downgrade(&c);
    drop(c);
    assert!(watch.upgrade().is_none(), "the cache kept no owner alive");
    assert_eq!(values.get(), 5);
    assert_eq!(cache.purge(), 3, "the entries c was in");
    assert_eq!(values.get(), 2);
    assert_eq!(
        cache.method(three).get((&a, &d, &e), &1).map(|v| v.n),
        Some(14_501)
    );
    assert_eq!(
        cache.method(four).get((&a, &e, &d, &e), &1).map(|v| v.n),
        Some(154_501)
    );
    drop(e);
    assert_eq!(cache.purge(), 2);
    assert_eq!(values.get(), 0);
    assert_eq!(cache.stats().purged, 5);
}

/// The pair method, invalidating its own argument's entries while it computes.
fn pair_invalidating((receiver, argument): (&Arc<Owner>, &Arc<Owner>), &k: &u32) -> u64 {
    receiver.invocations.inc();
    INVALIDATING.invalidate_owner(argument);
    pair_value(receiver.id, argument.id, k)
}

static INVALIDATING: Registry = Registry::new();

/// `invalidate_owner` of an object argument covers a computation of one of its entries
/// in flight: the caller gets the value, nothing is stored (`Stats::discarded`), and the
/// next call computes afresh.
#[test]
fn invalidating_an_argument_covers_its_computation_in_flight() {
    let cache = &INVALIDATING;
    let (receiver, argument) = (Owner::new(1), Owner::new(2));
    assert_eq!(
        cache
            .method(pair_invalidating)
            .call((&receiver, &argument), 3),
        pair_value(1, 2, 3)
    );
    assert_eq!(
        cache
            .method(pair_invalidating)
            .get((&receiver, &argument), &3),
        None
    );
    let stats = cache.method(pair_invalidating).stats();
    assert_eq!((stats.entries, stats.discarded), (0, 1), "{stats:?}");
    cache
        .method(pair_invalidating)
        .call((&receiver, &argument), 3);
    assert_eq!(receiver.invocations.get(), 2);
}

async fn async_pair((receiver, argument): (&Arc<Owner>, &Arc<Owner>), &k: &u32) -> u64 {
    receiver.invocations.inc();
    tokio::task::yield_now().await;
    pair_value(receiver.id, argument.id, k)
}

/// `call_async` takes a tuple of owners too: cached per pair, never kept alive, purged
/// when the argument dies.
#[tokio::test]
async fn an_async_method_with_an_object_argument_is_cached_per_pair() {
    let cache = Registry::new();
    let (receiver, first, second) = (Owner::new(1), Owner::new(2), Owner::new(3));
    assert_eq!(
        cache
            .method(async_pair)
            .call_async((&receiver, &first), 1)
            .await,
        pair_value(1, 2, 1)
    );
    assert_eq!(
        cache
            .method(async_pair)
            .call_async((&receiver, &first), 1)
            .await,
        pair_value(1, 2, 1)
    );
    assert_eq!(
        cache
            .method(async_pair)
            .call_async((&receiver, &second), 1)
            .await,
        pair_value(1, 3, 1)
    );
    assert_eq!(receiver.invocations.get(), 2);
    assert_eq!(
        cache.method(async_pair).get((&receiver, &second), &1),
        Some(pair_value(1, 3, 1))
    );
    drop(first);
    assert_eq!(cache.purge(), 1);
    assert_eq!(cache.stats().entries, 1);
}

/// The long-lived object of the churns.
struct Receiver(u64);

/// A short-lived object of the churns; all of one size, so the allocator recycles them.
struct Arg(u64);

fn churned((receiver, arg): (&Arc<Receiver>, &Arc<Arg>), &(): &()) -> u64 {
    (receiver.0 << 40) | arg.0
}

/// A million rounds (about 4 s in debug, so not scaled down): allocate an `Arc<Arg>`,
/// look it up, call with it beside one long-lived receiver (the default purge
/// interval), drop it. The allocator hands a freed argument block back as soon as its
/// entry is purged (the entry's `Weak` pins it until then, so never the previous
/// round's), and nearly every round runs at a recycled address: counted, and required
/// of 90% of the rounds. No round returns a wrong value (the value encodes the
/// argument's id), no fresh argument finds an entry, the entries stay bounded, and each
/// holds one `Weak` to the receiver.
#[test]
fn churned_arguments_at_recycled_addresses_never_return_a_wrong_value() {
    const ROUNDS: u64 = 1_000_000;
    const BOUND: usize = 4_096;
    watchdog(Duration::from_secs(600), move || {
        let cache = Registry::new();
        let receiver = Arc::new(Receiver(7));
        let mut addresses = HashSet::new();
        let (mut repeats, mut same_as_last, mut last) = (0u64, 0u64, 0usize);
        let (mut wrong, mut stale_hits, mut most) = (0u64, 0u64, 0usize);
        for i in 0..ROUNDS {
            let arg = Arc::new(Arg(i));
            let address = Arc::as_ptr(&arg) as usize;
            if !addresses.insert(address) {
                repeats += 1;
            }
            if address == last {
                same_as_last += 1;
            }
            last = address;
            if cache.method(churned).get((&receiver, &arg), &()).is_some() {
                stale_hits += 1;
            }
            if cache.method(churned).call((&receiver, &arg), ()) != (7 << 40) | i {
                wrong += 1;
            }
            drop(arg);
            if i % 1024 == 0 {
                let entries = cache.stats().entries;
                most = most.max(entries);
                assert!(entries < BOUND, "{entries} entries after {i} rounds");
            }
        }
        let stats = cache.stats();
        eprintln!(
            "argument churn: {ROUNDS} rounds, {} distinct addresses, {repeats} rounds at a \
             recycled address ({same_as_last} at the previous round's), at most {most} \
             entries; {stats:?}",
            addresses.len()
        );
        assert_eq!(wrong, 0, "wrong values returned");
        assert_eq!(
            stale_hits, 0,
            "fresh arguments found a dead argument's entry"
        );
        assert_eq!(
            same_as_last, 0,
            "the last round's block is pinned by its entry"
        );
        assert!(
            repeats > ROUNDS * 9 / 10,
            "only {repeats} of {ROUNDS} rounds reused an address: too little reuse to \
             prove anything"
        );
        assert_eq!(stats.hits, 0);
        assert_eq!(stats.entries as u64 + stats.purged, ROUNDS, "{stats:?}");
        assert_eq!(
            Arc::weak_count(&receiver),
            stats.entries,
            "one Weak per entry"
        );
        assert_eq!(cache.purge(), stats.entries, "every argument is dead");
        assert_eq!(Arc::weak_count(&receiver), 0);
    });
}

/// The mirror of the churn above, 200,000 rounds: short-lived receivers at recycled
/// addresses beside one long-lived argument object; no wrong value, no stale hit, the
/// entries bounded, and the argument left with no `Weak` once they are purged.
#[test]
fn churned_receivers_beside_one_long_lived_argument_never_return_a_wrong_value() {
    const ROUNDS: u64 = 200_000;
    fn reversed((receiver, argument): (&Arc<Arg>, &Arc<Receiver>), &(): &()) -> u64 {
        (argument.0 << 20) | receiver.0
    }
    let cache = Registry::new();
    let argument = Arc::new(Receiver(5));
    let mut addresses = HashSet::new();
    let (mut bad, mut most) = (0, 0);
    for i in 0..ROUNDS {
        let receiver = Arc::new(Arg(i));
        addresses.insert(Arc::as_ptr(&receiver) as usize);
        if cache
            .method(reversed)
            .get((&receiver, &argument), &())
            .is_some()
        {
            bad += 1;
        }
        if cache.method(reversed).call((&receiver, &argument), ()) != (5 << 20) | i {
            bad += 1;
        }
        if i % 1024 == 0 {
            most = most.max(cache.stats().entries);
        }
    }
    assert_eq!(bad, 0, "wrong values or stale hits");
    assert!(
        addresses.len() < (ROUNDS / 10) as usize,
        "{} addresses",
        addresses.len()
    );
    assert!(most < 4_096, "{most} entries at most");
    let stats = cache.stats();
    assert_eq!(
        Arc::weak_count(&argument),
        stats.entries,
        "one Weak per entry"
    );
    assert_eq!(
        cache.purge(),
        stats.entries,
        "every receiver is dead; {stats:?}"
    );
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(Arc::weak_count(&argument), 0);
}

/// Four threads churn argument objects of their own beside one shared receiver, at
/// recycled addresses, while their calls' purge steps remove each other's dead entries:
/// no wrong value, no fresh argument found, entries bounded.
#[test]
fn threads_churning_arguments_beside_one_receiver_never_see_a_wrong_value() {
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 50_000;
    watchdog(Duration::from_secs(300), || {
        let cache = Arc::new(Registry::new());
        let receiver = Arc::new(Receiver(3));
        let threads: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (cache, receiver) = (Arc::clone(&cache), Arc::clone(&receiver));
                std::thread::spawn(move || {
                    let mut bad = 0;
                    for i in 0..ROUNDS {
                        let id = thread * ROUNDS + i;
                        let arg = Arc::new(Arg(id));
                        if cache.method(churned).get((&receiver, &arg), &()).is_some() {
                            bad += 1;
                        }
                        if cache.method(churned).call((&receiver, &arg), ()) != (3 << 40) | id {
                            bad += 1;
                        }
                    }
                    bad
                })
            })
            .collect();
        let mut most = 0;
        while !threads.iter().all(|thread| thread.is_finished()) {
            most = most.max(cache.stats().entries);
            std::thread::sleep(Duration::from_millis(1));
        }
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 0, "wrong values or stale hits");
        }
        let stats = cache.stats();
        assert!(most < 4_096, "{most} entries at most; {stats:?}");
        assert_eq!(stats.entries as u64 + stats.purged, THREADS * ROUNDS);
        assert_eq!(cache.purge(), stats.entries);
        assert_eq!(Arc::weak_count(&receiver), 0);
    });
}

/// A method with a TTL and object arguments: never returned once expired, recomputed,
/// and removed by `purge()` as `Expired`.
#[test]
fn a_ttl_applies_to_a_method_with_object_arguments() {
    let cache = Registry::new();
    cache.method(pair).set_ttl(Some(Duration::from_millis(100)));
    let (receiver, argument) = (Owner::new(1), Owner::new(2));
    assert_eq!(
        cache.method(pair).call((&receiver, &argument), 1).n,
        pair_value(1, 2, 1)
    );
    assert!(cache.method(pair).get((&receiver, &argument), &1).is_some());
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(cache.method(pair).get((&receiver, &argument), &1), None);
    assert_eq!(cache.purge(), 1);
    assert_eq!(cache.stats().expired, 1);
    assert_eq!(receiver.values.get(), 0);
    assert_eq!(
        cache.method(pair).call((&receiver, &argument), 1).n,
        pair_value(1, 2, 1)
    );
    assert_eq!(receiver.invocations.get(), 2, "recomputed after expiry");
}

/// A bound on a method with object arguments holds: with a thousand live argument
/// objects, at most the bound is stored, the rest is evicted or kept out, and every
/// value returned is right.
#[test]
fn a_bound_applies_to_a_method_with_object_arguments() {
    let cache = Registry::new();
    cache.method(pair).set_capacity(Some(64));
    let receiver = Owner::new(1);
    let arguments: Vec<_> = (0..1_000).map(Owner::new).collect();
    for _ in 0..2 {
        for argument in &arguments {
            let value = cache.method(pair).call((&receiver, argument), 5).n;
            assert_eq!(value, pair_value(1, argument.id, 5));
        }
    }
    let stats = cache.stats();
    assert!(stats.entries <= 64, "{stats:?}");
    assert!(stats.evicted > 0, "{stats:?}");
    assert_eq!(receiver.values.get(), stats.entries as isize);
    assert_eq!(cache.method(pair).capacity(), Some(64));
}

// ---------------------------------------------------------------------------------------
// Owner-less functions.

/// Each distinct argument of an owner-less function runs once; the repeats are hits,
/// counted by `stats` and `stats`.
#[test]
fn an_ownerless_function_runs_once_per_distinct_argument() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    fn square((): (), &x: &u64) -> u64 {
        RUNS.fetch_add(1, SeqCst);
        x * x
    }
    fn other((): (), &x: &u64) -> u64 {
        x + 1
    }
    let cache = Registry::new();
    for round in 0..3 {
        for x in 0..100 {
            assert_eq!(cache.method(square).call((), x), x * x, "round {round}");
        }
    }
    assert_eq!(cache.method(other).call((), 4), 5);
    assert_eq!(RUNS.load(SeqCst), 100);
    let stats = cache.method(square).stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (200, 100, 100));
    assert_eq!(cache.method(square).get((), &9), Some(81));
    assert_eq!(cache.method(square).get((), &100), None);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (201, 102, 101));
    assert_eq!(cache.purge(), 0, "nothing owner-less is ever dead");
}

/// Sixteen threads missing one cold owner-less key at once (behind a barrier) run the
/// function once; all receive its value, and the fifteen others are counted in
/// `Stats::waited` (the function holds on until they all wait, or ten seconds pass).
#[test]
fn sixteen_threads_on_one_cold_ownerless_key_run_it_once() {
    static CACHE: Registry = Registry::new();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    fn slow((): (), &x: &u64) -> u64 {
        RUNS.fetch_add(1, SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while CACHE.method(slow).stats().waited < 15 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        x * 3
    }
    watchdog(Duration::from_secs(60), || {
        let barrier = Arc::new(Barrier::new(16));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    CACHE.method(slow).call((), 14)
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 42);
        }
        assert_eq!(RUNS.load(SeqCst), 1);
        let stats = CACHE.method(slow).stats();
        assert_eq!(stats.waited, 15, "{stats:?}");
        assert_eq!(
            (stats.misses, stats.hits, stats.entries),
            (16, 0, 1),
            "{stats:?}"
        );
    });
}

/// An owner-less method is bounded by `DEFAULT_OWNERLESS_CAPACITY` (1024) until told
/// otherwise; `set_capacity(f, None)` lifts the bound, before the first call or
/// after.
#[test]
fn an_ownerless_function_is_bounded_by_default_until_lifted() {
    fn bounded((): (), &x: &u64) -> u64 {
        x ^ 0x55
    }
    fn lifted_first((): (), &x: &u64) -> u64 {
        x ^ 0xAA
    }
    assert_eq!(DEFAULT_OWNERLESS_CAPACITY, 1024);
    let cache = Registry::new();
    assert_eq!(cache.method(bounded).capacity(), Some(1024));
    for x in 0..5_000 {
        assert_eq!(cache.method(bounded).call((), x), x ^ 0x55);
    }
    let stats = cache.method(bounded).stats();
    assert!(stats.entries <= 1024, "{stats:?}");
    assert!(stats.evicted >= 5_000 - 1024, "{stats:?}");

    cache.method(bounded).set_capacity(None);
    assert_eq!(cache.method(bounded).capacity(), None);
    let before = cache.method(bounded).stats().entries;
    for x in 5_000..10_000 {
        assert_eq!(cache.method(bounded).call((), x), x ^ 0x55);
    }
    assert_eq!(cache.method(bounded).stats().entries, before + 5_000);

    cache.method(lifted_first).set_capacity(None);
    assert_eq!(cache.method(lifted_first).capacity(), None);
    for x in 0..5_000 {
        assert_eq!(cache.method(lifted_first).call((), x), x ^ 0xAA);
    }
    assert_eq!(cache.method(lifted_first).stats().entries, 5_000);

    // A method with an owner has no bound by default.
    assert_eq!(cache.method(alone).capacity(), None);
}

/// A working set as large as the default bound is kept whole: 1,024 distinct owner-less
/// arguments, called three times over, run once each.
#[test]
fn a_working_set_of_the_default_bounds_size_is_kept_whole() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    fn kept((): (), &x: &u64) -> u64 {
        RUNS.fetch_add(1, SeqCst);
        x + 7
    }
    let cache = Registry::new();
    for _ in 0..3 {
        for x in 0..DEFAULT_OWNERLESS_CAPACITY as u64 {
            assert_eq!(cache.method(kept).call((), x), x + 7);
        }
    }
    assert_eq!(RUNS.load(SeqCst), DEFAULT_OWNERLESS_CAPACITY);
    let stats = cache.method(kept).stats();
    assert_eq!(
        (stats.entries, stats.evicted),
        (DEFAULT_OWNERLESS_CAPACITY, 0)
    );
}

/// The default bound holds for an owner-less function cached through `try_call` too,
/// and `set_capacity(f, None)` lifts it there as well.
#[test]
fn an_ownerless_try_call_is_bounded_by_default_too() {
    fn parse((): (), &x: &u64) -> Result<u64, String> {
        if x % 2 == 0 {
            Ok(x / 2)
        } else {
            Err(format!("{x} is odd"))
        }
    }
    fn parse_lifted((): (), &x: &u64) -> Result<u64, String> {
        Ok(x)
    }
    let cache = Registry::new();
    assert_eq!(common::ok_table(&cache, parse).capacity(), Some(1024));
    for x in 0..10_000 {
        assert_eq!(
            common::ok_table(&cache, parse).try_call((), x).is_ok(),
            x % 2 == 0
        );
    }
    let stats = common::ok_table(&cache, parse).stats();
    assert!(stats.entries <= 1024, "{stats:?}");
    assert!(stats.entries > 0, "{stats:?}");
    assert_eq!(
        common::ok_table(&cache, parse).get((), &1),
        None,
        "errors are not cached"
    );

    common::ok_table(&cache, parse_lifted).set_capacity(None);
    for x in 0..3_000 {
        assert_eq!(
            common::ok_table(&cache, parse_lifted).try_call((), x),
            Ok(x)
        );
    }
    assert_eq!(
        common::ok_table(&cache, parse_lifted).stats().entries,
        3_000
    );
}

/// `invalidate((), f, &k)` removes one owner-less entry, `clear` all of
/// them; the function then runs again.
#[test]
fn ownerless_entries_are_invalidated_by_key_and_by_method() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    fn triple((): (), &x: &u32) -> u32 {
        RUNS.fetch_add(1, SeqCst);
        x * 3
    }
    let cache = Registry::new();
    for x in 0..10 {
        cache.method(triple).call((), x);
    }
    assert!(cache.method(triple).invalidate((), &4));
    assert!(!cache.method(triple).invalidate((), &4));
    assert_eq!(cache.method(triple).get((), &4), None);
    assert_eq!(cache.method(triple).call((), 4), 12);
    assert_eq!(RUNS.load(SeqCst), 11);
    assert_eq!(cache.method(triple).clear(), 10);
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(cache.stats().invalidated, 11);
    assert_eq!(cache.method(triple).call((), 4), 12);
    assert_eq!(RUNS.load(SeqCst), 12);
}

/// An owner-less function that invalidates its own key while computing it: the caller
/// gets the value, nothing is stored (`Stats::discarded`), the next call runs again.
#[test]
fn invalidating_an_ownerless_key_covers_its_computation_in_flight() {
    static CACHE: Registry = Registry::new();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    fn forgetful((): (), &x: &u32) -> u32 {
        RUNS.fetch_add(1, SeqCst);
        assert!(
            !CACHE.method(forgetful).invalidate((), &x),
            "nothing stored yet"
        );
        x + 1
    }
    assert_eq!(CACHE.method(forgetful).call((), 1), 2);
    assert_eq!(CACHE.method(forgetful).get((), &1), None);
    let stats = CACHE.method(forgetful).stats();
    assert_eq!((stats.entries, stats.discarded), (0, 1), "{stats:?}");
    assert_eq!(CACHE.method(forgetful).call((), 1), 2);
    assert_eq!(RUNS.load(SeqCst), 2);
}

/// Dropping a registry drops every value and `Weak` its tuple entries held.
#[test]
fn dropping_a_registry_releases_its_object_arguments() {
    let cache = Registry::new();
    let (receiver, argument) = (Owner::new(1), Owner::new(2));
    for k in 0..10 {
        cache.method(pair).call((&receiver, &argument), k);
    }
    assert_eq!(
        (Arc::weak_count(&receiver), Arc::weak_count(&argument)),
        (10, 10)
    );
    assert_eq!(receiver.values.get(), 10);
    drop(cache);
    assert_eq!(
        (Arc::weak_count(&receiver), Arc::weak_count(&argument)),
        (0, 0)
    );
    assert_eq!(receiver.values.get(), 0);
}

/// An owner-less function with a TTL: expired entries are never returned.
#[test]
fn a_ttl_applies_to_an_ownerless_function() {
    fn stamp((): (), &x: &u64) -> u64 {
        x + 1
    }
    let cache = Registry::new();
    cache
        .method(stamp)
        .set_ttl(Some(Duration::from_millis(100)));
    cache.method(stamp).call((), 1);
    assert_eq!(cache.method(stamp).get((), &1), Some(2));
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(cache.method(stamp).get((), &1), None);
    assert_eq!(cache.purge(), 1);
    assert_eq!(cache.stats().expired, 1);
}

static ASYNC_RUNS: AtomicUsize = AtomicUsize::new(0);

async fn fetch((): (), &x: &u64) -> u64 {
    ASYNC_RUNS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    x * 10
}

async fn fetch_many((): (), &x: &u64) -> u64 {
    x * 2
}

/// `call_async(())` caches an owner-less async function: four tasks on one cold key
/// await one computation (three wait), later calls hit, `get` sees the value, and the
/// default bound holds for the async table too.
#[tokio::test]
async fn an_ownerless_async_function_is_cached_and_bounded() {
    let cache = Registry::new();
    let (a, b, c, d) = tokio::join!(
        cache.method(fetch).call_async((), 4),
        cache.method(fetch).call_async((), 4),
        cache.method(fetch).call_async((), 4),
        cache.method(fetch).call_async((), 4),
    );
    assert_eq!([a, b, c, d], [40; 4]);
    assert_eq!(ASYNC_RUNS.load(SeqCst), 1);
    assert_eq!(cache.method(fetch).stats().waited, 3);
    assert_eq!(cache.method(fetch).call_async((), 4).await, 40);
    assert_eq!(cache.method(fetch).get((), &4), Some(40));
    assert_eq!(ASYNC_RUNS.load(SeqCst), 1);
    assert_eq!(cache.method(fetch).stats().hits, 2);

    assert_eq!(cache.method(fetch_many).capacity(), Some(1024));
    for x in 0..3_000 {
        assert_eq!(cache.method(fetch_many).call_async((), x).await, x * 2);
    }
    assert!(cache.method(fetch_many).stats().entries <= 1024);
    assert!(cache.method(fetch).invalidate((), &4));
}

// The method takes `&A` for the owned key `A` its table stores.
#[allow(clippy::ptr_arg)]
async fn spawned_one(receiver: &Arc<Owner>, name: &String) -> u64 {
    receiver.id + name.len() as u64
}

async fn spawned_none((): (), &k: &u32) -> u64 {
    u64::from(k) * 2
}

/// The futures of `call_async` with a tuple of owners, with no owner, and looked up by
/// `&str` are `Send`: each can be spawned on a multi-threaded runtime.
#[test]
fn async_calls_of_every_owner_shape_can_be_spawned() {
    static CACHE: Registry = Registry::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (receiver, argument) = (Owner::new(1), Owner::new(2));
        let pair = tokio::spawn({
            let (receiver, argument) = (Arc::clone(&receiver), Arc::clone(&argument));
            async move {
                CACHE
                    .method(async_pair)
                    .call_async((&receiver, &argument), 4)
                    .await
            }
        });
        let none = tokio::spawn(async move { CACHE.method(spawned_none).call_async((), 4).await });
        let by_str = tokio::spawn({
            let receiver = Arc::clone(&receiver);
            async move {
                let name = String::from("name");
                CACHE
                    .method(spawned_one)
                    .call_async(&receiver, name.as_str())
                    .await
            }
        });
        assert_eq!(pair.await.unwrap(), pair_value(1, 2, 4));
        assert_eq!(none.await.unwrap(), 8);
        assert_eq!(by_str.await.unwrap(), 5);
        assert_eq!(CACHE.stats().entries, 3);
    });
}
