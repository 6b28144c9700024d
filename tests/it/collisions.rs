//! Keys that collide or look alike are still told apart.
//!
//! - Arguments: an argument type whose `Hash` is constant (every key of an owner has one
//!   hash) still gets the right value for hundreds of distinct arguments on several owners,
//!   through `call`, `get`, `invalidate` and `purge`: equality, not the hash, decides.
//! - Owners: identity is the allocation. Two owners equal by value (derived `PartialEq`
//!   and `Hash`) are two keys; an owner type whose `Hash` and `Eq` panic works with every
//!   API, since the cache never calls them; zero-sized owners and unsized owners
//!   (`Arc<str>`, `Arc<[u8]>`, `Arc<dyn Trait>`) work; an `Arc<dyn Trait>` and an
//!   `Arc<Concrete>` of one allocation are one owner for `invalidate_owner`.
//! - Methods: identity is the type. Distinct fn items with one signature, generic
//!   instantiations and distinct closures are distinct methods; one fn item used from two
//!   call sites, or one closure expression run twice, is one method. More than 16 methods
//!   (past the first level of the method directory) all keep their own entries.

use crate::common;

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use common::{Counter, Live, Owner, Val, expected, other_value, value};
use weakmemo::Registry;

/// An argument whose hash is always the same.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Colliding(u32);

impl Hash for Colliding {
    fn hash<H: Hasher>(&self, state: &mut H) {
        7u8.hash(state);
    }
}

fn colliding(owner: &Arc<Owner>, arg: &Colliding) -> Val {
    owner.invocations.inc();
    Val::new(
        expected(owner.id, 4, 0) * 1000 + u64::from(arg.0),
        &owner.values,
    )
}

fn want(id: u64, arg: u32) -> u64 {
    expected(id, 4, 0) * 1000 + u64::from(arg)
}

#[test]
fn a_constant_hash_never_mixes_arguments_up() {
    const ARGS: u32 = 300;
    let cache = Registry::new();
    let owners: Vec<_> = (1..=4).map(Owner::new).collect();
    for owner in &owners {
        for arg in 0..ARGS {
            assert_eq!(
                cache.method(colliding).call(owner, Colliding(arg)).n,
                want(owner.id, arg)
            );
        }
    }
    for owner in &owners {
        for arg in (0..ARGS).rev() {
            assert_eq!(
                cache.method(colliding).call(owner, Colliding(arg)).n,
                want(owner.id, arg)
            );
            assert_eq!(
                cache
                    .method(colliding)
                    .get(owner, &Colliding(arg))
                    .unwrap()
                    .n,
                want(owner.id, arg)
            );
        }
        assert_eq!(owner.invocations.get(), ARGS as usize, "each computed once");
        assert!(
            cache
                .method(colliding)
                .get(owner, &Colliding(ARGS))
                .is_none()
        );
        assert_eq!(owner.values.get(), ARGS as isize);
    }
    let stats = cache.stats();
    assert_eq!(stats.entries, 4 * ARGS as usize);
    assert_eq!(stats.misses, 4 * u64::from(ARGS) + 4);
    assert_eq!(stats.hits, 2 * 4 * u64::from(ARGS));

    // Removing every third argument of one owner leaves the rest intact.
    for arg in (0..ARGS).step_by(3) {
        assert!(
            cache
                .method(colliding)
                .invalidate(&owners[0], &Colliding(arg))
        );
    }
    for arg in 0..ARGS {
        let got = cache
            .method(colliding)
            .get(&owners[0], &Colliding(arg))
            .map(|v| v.n);
        assert_eq!(got, (arg % 3 != 0).then(|| want(1, arg)));
    }
    // A dead owner's colliding entries are purged; the others stay right.
    let values = owners[1].values.clone();
    let mut owners = owners;
    owners.remove(1);
    assert_eq!(cache.purge(), ARGS as usize);
    assert_eq!(values.get(), 0);
    for owner in &owners[1..] {
        for arg in 0..ARGS {
            assert_eq!(
                cache
                    .method(colliding)
                    .get(owner, &Colliding(arg))
                    .unwrap()
                    .n,
                want(owner.id, arg)
            );
        }
    }
}

#[test]
fn owners_equal_by_value_are_distinct_keys() {
    #[derive(PartialEq, Eq, Hash, Debug)]
    struct Point(i32, i32);
    fn tag(point: &Arc<Point>, &(): &()) -> usize {
        // Differs per allocation, so a shared entry would show.
        Arc::as_ptr(point) as usize
    }
    let cache = Registry::new();
    let a = Arc::new(Point(1, 2));
    let b = Arc::new(Point(1, 2));
    assert_eq!(a, b);
    assert_eq!(cache.method(tag).call(&a, ()), Arc::as_ptr(&a) as usize);
    assert_eq!(cache.method(tag).call(&b, ()), Arc::as_ptr(&b) as usize);
    assert_eq!(cache.stats().misses, 2);
    assert_eq!(cache.stats().entries, 2);
    // A clone of the Arc is the same owner.
    let a2 = Arc::clone(&a);
    assert_eq!(cache.method(tag).call(&a2, ()), Arc::as_ptr(&a) as usize);
    assert_eq!(cache.stats().hits, 1);
    assert_eq!(cache.invalidate_owner(&b), 1);
    assert_eq!(
        cache.method(tag).get(&a, &()),
        Some(Arc::as_ptr(&a) as usize)
    );
}

#[test]
fn an_owner_whose_hash_and_eq_panic_works_with_every_api() {
    struct Touchy(u64);
    impl Hash for Touchy {
        fn hash<H: Hasher>(&self, _: &mut H) {
            panic!("the owner's Hash must not be called");
        }
    }
    impl PartialEq for Touchy {
        fn eq(&self, _: &Self) -> bool {
            panic!("the owner's Eq must not be called");
        }
    }
    impl Eq for Touchy {}
    fn twice(t: &Arc<Touchy>, &k: &u64) -> u64 {
        t.0 * 2 + k
    }
    fn fallible(t: &Arc<Touchy>, &k: &u64) -> Result<u64, ()> {
        if k == 0 { Err(()) } else { Ok(t.0 + k) }
    }
    let cache = Registry::builder().purge_interval(1).build();
    let a = Arc::new(Touchy(10));
    let b = Arc::new(Touchy(10));
    assert_eq!(cache.method(twice).call(&a, 1), 21);
    assert_eq!(cache.method(twice).call(&a, 1), 21);
    assert_eq!(cache.method(twice).call(&b, 2), 22);
    assert_eq!(common::ok_table(&cache, fallible).try_call(&a, 0), Err(()));
    assert_eq!(common::ok_table(&cache, fallible).try_call(&a, 5), Ok(15));
    assert_eq!(cache.method(twice).get(&a, &1), Some(21));
    assert_eq!(cache.method(twice).get(&b, &1), None);
    assert_eq!(common::ok_table(&cache, fallible).get(&a, &5), Some(15));
    assert!(cache.method(twice).invalidate(&b, &2));
    assert_eq!(cache.method(twice).call(&b, 3), 23);
    assert_eq!(cache.invalidate_owner(&b), 1);
    assert_eq!(cache.method(twice).call(&b, 4), 24);
    assert_eq!(common::ok_table(&cache, fallible).clear(), 1);
    drop(b);
    assert_eq!(cache.purge(), 1);
    let stats = cache.stats();
    assert_eq!(stats.entries, 1);
    assert_eq!(cache.clear(), 1);
    assert_eq!(Arc::weak_count(&a), 0);
}

#[test]
fn zero_sized_owners_are_distinct() {
    fn address(unit: &Arc<()>, &(): &()) -> usize {
        Arc::as_ptr(unit) as usize
    }
    let cache = Registry::new();
    let units: Vec<Arc<()>> = (0..50).map(|_| Arc::new(())).collect();
    for unit in &units {
        assert_eq!(
            cache.method(address).call(unit, ()),
            Arc::as_ptr(unit) as usize
        );
    }
    assert_eq!(cache.stats().entries, 50);
    assert_eq!(cache.stats().misses, 50);
    for unit in &units {
        assert_eq!(cache.invalidate_owner(unit), 1);
    }
}

#[test]
fn unsized_owners_work() {
    fn len(text: &Arc<str>, &(): &()) -> usize {
        text.len()
    }
    fn sum(bytes: &Arc<[u8]>, &(): &()) -> u32 {
        bytes.iter().map(|&b| u32::from(b)).sum()
    }
    let cache = Registry::new();
    let a: Arc<str> = Arc::from("four");
    let b: Arc<str> = Arc::from("four");
    let c: Arc<[u8]> = Arc::from(&[1u8, 2, 3][..]);
    assert_eq!(cache.method(len).call(&a, ()), 4);
    assert_eq!(cache.method(len).call(&b, ()), 4);
    assert_eq!(cache.method(sum).call(&c, ()), 6);
    assert_eq!(cache.stats().misses, 3, "equal strings are distinct owners");
    assert_eq!(cache.invalidate_owner(&a), 1);
    assert_eq!(cache.method(len).get(&b, &()), Some(4));
    drop((b, c));
    assert_eq!(cache.purge(), 2);
}

use crate::common::{Circle, Shape, Square};

fn dyn_area(shape: &Arc<dyn Shape>, &(): &()) -> f64 {
    shape.area()
}

fn square_side(square: &Arc<Square>, &(): &()) -> f64 {
    square.0
}

#[test]
fn dyn_trait_owners_work() {
    let cache = Registry::new();
    let shapes: Vec<Arc<dyn Shape>> = vec![
        Arc::new(Square(2.0)),
        Arc::new(Circle(1.0)),
        Arc::new(Square(3.0)),
    ];
    for _ in 0..2 {
        let areas: Vec<f64> = shapes
            .iter()
            .map(|s| cache.method(dyn_area).call(s, ()))
            .collect();
        assert_eq!(areas, [4.0, 3.0, 9.0]);
    }
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits, stats.entries), (3, 3, 3));
}

#[test]
fn dyn_and_concrete_arcs_of_one_allocation_are_one_owner() {
    let cache = Registry::new();
    let square = Arc::new(Square(2.0));
    let shape: Arc<dyn Shape> = square.clone();
    let other: Arc<dyn Shape> = Arc::new(Square(2.0));
    assert_eq!(cache.method(dyn_area).call(&shape, ()), 4.0);
    assert_eq!(cache.method(square_side).call(&square, ()), 2.0);
    assert_eq!(cache.method(dyn_area).call(&other, ()), 4.0);
    assert_eq!(Arc::weak_count(&square), 2);

    // Through the concrete Arc, both entries of the allocation go, not the other's.
    assert_eq!(cache.invalidate_owner(&square), 2);
    assert_eq!(cache.method(dyn_area).get(&shape, &()), None);
    assert_eq!(cache.method(dyn_area).get(&other, &()), Some(4.0));

    // And through the dyn Arc.
    assert_eq!(cache.method(dyn_area).call(&shape, ()), 4.0);
    assert_eq!(cache.method(square_side).call(&square, ()), 2.0);
    assert_eq!(cache.invalidate_owner(&shape), 2);
    assert_eq!(Arc::weak_count(&square), 0);

    // The allocation dies when both Arcs are gone, not before.
    assert_eq!(cache.method(square_side).call(&square, ()), 2.0);
    drop(square);
    assert_eq!(cache.purge(), 0, "the dyn Arc still keeps the owner alive");
    drop(shape);
    assert_eq!(cache.purge(), 1);
}

#[test]
fn methods_with_one_signature_are_distinct_and_call_sites_share() {
    let cache = Registry::new();
    let owner = Owner::new(1);
    assert_eq!(cache.method(value).call(&owner, 5).n, expected(1, 1, 5));
    assert_eq!(
        cache.method(other_value).call(&owner, 5).n,
        expected(1, 2, 5)
    );
    assert_eq!(owner.invocations.get(), 2);
    // Another call site of the same fn item shares its entry.
    fn elsewhere(cache: &Registry, owner: &Arc<Owner>) -> u64 {
        cache.method(value).call(owner, 5).n
    }
    assert_eq!(elsewhere(&cache, &owner), expected(1, 1, 5));
    assert_eq!(owner.invocations.get(), 2);
    assert_eq!(cache.stats().methods, 2);
    assert_eq!(cache.method(other_value).clear(), 1);
    assert_eq!(
        cache.method(value).get(&owner, &5).unwrap().n,
        expected(1, 1, 5)
    );
}

#[test]
fn closures_are_methods_by_expression() {
    let cache = Registry::new();
    let owner = Arc::new(3u64);
    // One closure expression run twice is one method.
    for _ in 0..2 {
        assert_eq!(
            cache
                .method(|n: &Arc<u64>, &k: &u64| **n + k)
                .call(&owner, 1),
            4
        );
    }
    assert_eq!(cache.stats().misses, 1);
    // Two textually equal closures are two methods, even with different results.
    assert_eq!(
        cache
            .method(|n: &Arc<u64>, &k: &u64| **n * k)
            .call(&owner, 2),
        6
    );
    assert_eq!(
        cache
            .method(|n: &Arc<u64>, &k: &u64| **n * k + 1)
            .call(&owner, 2),
        7
    );
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.methods, stats.entries), (3, 3, 3));
}

fn numbered<const K: u64>(owner: &Arc<Owner>, &arg: &u32) -> u64 {
    owner.invocations.inc();
    K * 1_000_000 + owner.id * 1000 + u64::from(arg)
}

/// Every method, twice per owner and argument: computed once, then a hit; values right.
fn check<const K: u64>(cache: &Registry, owners: [&Arc<Owner>; 2]) {
    for owner in owners {
        for arg in 0..2 {
            let want = K * 1_000_000 + owner.id * 1000 + u64::from(arg);
            assert_eq!(cache.method(numbered::<K>).call(owner, arg), want);
            assert_eq!(cache.method(numbered::<K>).call(owner, arg), want);
        }
    }
}

macro_rules! check_each {
    ($cache:expr, $owners:expr; $($k:literal)*) => { $( check::<$k>($cache, $owners); )* };
}

#[test]
fn more_methods_than_one_directory_level() {
    const METHODS: usize = 40;
    let cache = Registry::builder().purge_interval(1).build();
    let drops = Counter::new();
    let live = Live::new();
    let invocations = Counter::new();
    let a = Owner::with(1, &drops, &live, &invocations);
    let b = Owner::with(2, &drops, &live, &invocations);
    check_each!(&cache, [&a, &b]; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
                                  20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39);

    let stats = cache.stats();
    assert_eq!(stats.methods, METHODS);
    assert_eq!(stats.entries, METHODS * 4);
    assert_eq!(invocations.get(), METHODS * 4);
    assert_eq!(stats.misses, METHODS as u64 * 4);
    assert_eq!(stats.hits, METHODS as u64 * 4);

    // Every method's entries of a dead owner are found by the lazy steps, across levels.
    drop(b);
    let mut lookups = 0;
    while cache.stats().purged < METHODS as u64 * 2 {
        assert!(
            lookups < 1000,
            "lazy steps missed some methods: {:?}",
            cache.stats()
        );
        assert_eq!(cache.method(numbered::<39>).call(&a, 0), 39_001_000);
        lookups += 1;
    }
    assert_eq!(cache.stats().purged, METHODS as u64 * 2);
    assert_eq!(cache.stats().entries, METHODS * 2);
    assert_eq!(cache.method(numbered::<17>).clear(), 2);
    assert_eq!(cache.method(numbered::<38>).clear(), 2);
    assert_eq!(cache.invalidate_owner(&a), (METHODS - 2) * 2);
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(cache.stats().methods, METHODS);
}
