//! The `LocalRegistry`: `Rc` owners freed, address reuse, recursion, bounds (LRU), TTL,
//! values that are not `Send`, user code that panics or calls back, and a model-based
//! property test against a reference LRU.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::{Rc, Weak};
use std::time::Duration;

use proptest::prelude::*;
use weakmemo::{LocalRegistry, Removal, RemovalCause};

thread_local! {
    static RUNS: Cell<usize> = const { Cell::new(0) };
}

fn runs() -> usize {
    RUNS.with(Cell::get)
}

fn double(n: &Rc<u64>, &k: &u64) -> u64 {
    RUNS.with(|runs| runs.set(runs.get() + 1));
    **n * k * 2
}

/// A value that is not `Send` (it holds an `Rc`) and counts its drops.
#[derive(Clone)]
struct Tracked(Rc<Cell<usize>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn rc_owners_are_not_kept_alive_and_their_values_are_dropped_by_purge() {
    fn tracked(_: &Rc<String>, &(): &()) -> Rc<Tracked> {
        thread_local!(static DROPS: Rc<Cell<usize>> = Rc::default());
        Rc::new(Tracked(DROPS.with(Rc::clone)))
    }
    let registry = LocalRegistry::new();
    let memo = registry.method(tracked);
    let owner = Rc::new("owner".to_string());
    let value = memo.call(&owner, ());
    assert!(Rc::ptr_eq(&value, &memo.call(&owner, ())));
    let drops = Rc::clone(&value.0);
    drop(value);
    let watch = Rc::downgrade(&owner);
    drop(owner);
    assert!(watch.upgrade().is_none(), "the cache kept the owner alive");
    assert_eq!(drops.get(), 0, "the entry still holds the value");
    assert_eq!(registry.purge(), 1);
    assert_eq!(drops.get(), 1);
    let stats = registry.stats();
    assert_eq!(
        (stats.entries, stats.purged, stats.hits, stats.misses),
        (0, 1, 1, 1)
    );
}

#[test]
fn lazy_steps_purge_dead_owners_as_calls_go_by() {
    let registry = LocalRegistry::new();
    registry.set_purge_interval(1);
    let memo = registry.method(double);
    let long_lived = Rc::new(1);
    for k in 0..10 {
        let short = Rc::new(k);
        memo.call(&short, 1);
    }
    for _ in 0..64 {
        memo.call(&long_lived, 1);
    }
    let stats = registry.stats();
    assert_eq!((stats.entries, stats.purged), (1, 10));
    assert!(stats.purge_steps >= 64);
}

#[test]
fn steps_off_still_sweep_before_the_table_grows() {
    let registry = LocalRegistry::new();
    registry.set_purge_interval(0);
    let memo = registry.method(double);
    for k in 0..100_000 {
        memo.call(&Rc::new(k), 1);
    }
    let stats = registry.stats();
    assert!(
        stats.entries <= 64,
        "dead entries grew the table: {stats:?}"
    );
    assert_eq!(stats.purge_steps, 0);
}

/// A million owners made and dropped one by one: the allocator hands the same address
/// over and over, and no call ever sees another owner's value.
#[test]
fn address_reuse_never_returns_a_dead_owners_value() {
    let registry = LocalRegistry::new();
    let memo = registry.method(double);
    let mut wrong = 0;
    let mut addresses = std::collections::HashSet::new();
    for n in 0..1_000_000_u64 {
        let owner = Rc::new(n);
        if n < 1_000 {
            addresses.insert(Rc::as_ptr(&owner).addr());
        }
        if memo.call(&owner, 1) != n * 2 {
            wrong += 1;
        }
    }
    assert_eq!(wrong, 0);
    assert!(
        addresses.len() < 1_000,
        "the allocator never reused an address"
    );
    assert!(registry.stats().entries < 1_000);
}

#[test]
fn same_key_recursion_panics_with_a_message_and_leaves_the_cache_usable() {
    fn looping(n: &Rc<u64>, &k: &u64) -> u64 {
        weakmemo::local().method(looping).call(n, k)
    }
    fn fib(n: &Rc<u64>, &k: &u64) -> u64 {
        let fib = weakmemo::local().method(fib);
        if k < 2 {
            k * **n
        } else {
            fib.call(n, k - 1) + fib.call(n, k - 2)
        }
    }
    let owner = Rc::new(1);
    let panic = catch_unwind(AssertUnwindSafe(|| {
        weakmemo::local().method(looping).call(&owner, 3)
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("recursive call for the same key"),
        "{message}"
    );
    assert!(message.contains("looping"), "{message}");
    // The pending key was forgotten as the panic unwound: other keys and the same key
    // after it work.
    assert_eq!(
        weakmemo::local().method(fib).call(&owner, 90),
        2_880_067_194_370_816_120
    );
    assert!(
        catch_unwind(AssertUnwindSafe(|| weakmemo::local()
            .method(looping)
            .call(&owner, 3)))
        .is_err()
    );
}

#[test]
fn a_method_that_panics_caches_nothing() {
    fn flaky(_: &Rc<u8>, &fail: &bool) -> u8 {
        assert!(!fail, "asked to fail");
        1
    }
    let memo = LocalRegistry::new().method(flaky);
    let owner = Rc::new(0);
    assert!(catch_unwind(AssertUnwindSafe(|| memo.call(&owner, true))).is_err());
    assert_eq!(memo.get(&owner, &true), None);
    assert_eq!(memo.call(&owner, false), 1);
    assert_eq!(memo.cache_info().currsize, 1);
}

#[test]
fn the_bound_evicts_the_least_recently_used_and_keeps_every_newcomer() {
    let registry = LocalRegistry::new();
    let memo = registry.method(double);
    memo.set_capacity(Some(2));
    let owner = Rc::new(1);
    memo.call(&owner, 1);
    memo.call(&owner, 2);
    memo.call(&owner, 1); // 2 is now the least recent
    memo.call(&owner, 3);
    assert_eq!(memo.get(&owner, &2), None);
    assert_eq!(memo.get(&owner, &1), Some(2));
    assert_eq!(memo.get(&owner, &3), Some(6), "a newcomer is kept");
    // A working set that moves costs one run per new key.
    let before = runs();
    for k in [10, 11, 10, 11, 10, 11] {
        memo.call(&owner, k);
    }
    assert_eq!(runs() - before, 2);
    assert_eq!(registry.stats().evicted, 3);
    memo.set_capacity(Some(0));
    memo.call(&owner, 20);
    assert_eq!(memo.get(&owner, &20), None);
}

#[test]
fn ownerless_methods_are_bounded_by_default() {
    fn square((): (), &k: &u64) -> u64 {
        k * k
    }
    let memo = LocalRegistry::new().method(square);
    assert_eq!(memo.capacity(), Some(weakmemo::DEFAULT_OWNERLESS_CAPACITY));
    for k in 0..5_000 {
        assert_eq!(memo.call((), k), k * k);
    }
    assert_eq!(
        memo.cache_info().currsize,
        weakmemo::DEFAULT_OWNERLESS_CAPACITY
    );
}

#[test]
fn a_weigher_bounds_weight_and_a_panicking_one_stores_nothing() {
    fn text(_: &Rc<u8>, &n: &usize) -> String {
        "x".repeat(n)
    }
    let registry = LocalRegistry::new();
    let memo = registry.method(text);
    memo.set_capacity(Some(100));
    memo.set_weigher(Some(Rc::new(|_: &usize, text: &String| {
        assert!(text.len() != 13, "unlucky");
        text.len() as u32
    })));
    let owner = Rc::new(0);
    for n in 0..40 {
        if n != 13 {
            memo.call(&owner, n);
        }
        assert!(registry.weight() <= 100);
    }
    assert!(catch_unwind(AssertUnwindSafe(|| memo.call(&owner, 13))).is_err());
    assert_eq!(memo.get(&owner, &13), None);
    memo.call(&owner, 101); // heavier than the bound: returned, not stored
    assert_eq!(memo.get(&owner, &101), None);
    assert!(registry.weight() <= 100);
}

#[test]
fn ttl_expires_entries_and_a_registry_ttl_reaches_methods_without_their_own() {
    let registry = LocalRegistry::new();
    let memo = registry.method(double);
    let owner = Rc::new(1);
    memo.call(&owner, 1);
    registry.set_ttl(Some(Duration::from_millis(30)));
    assert_eq!(
        memo.get(&owner, &1),
        Some(2),
        "ages from when the TTL was set"
    );
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(memo.get(&owner, &1), None);
    assert_eq!(registry.stats().expired, 1);
    memo.set_ttl(Some(Duration::MAX));
    memo.call(&owner, 2);
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(
        memo.get(&owner, &2),
        Some(4),
        "its own TTL overrides the registry's"
    );
    assert_eq!(memo.ttl(), Some(Duration::MAX));
    memo.set_ttl(Some(Duration::ZERO));
    memo.call(&owner, 3);
    assert_eq!(memo.get(&owner, &3), None);
    memo.set_ttl(None);
    assert_eq!(memo.ttl(), None);
}

/// Every key hashes alike: only `Eq` tells them apart.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Colliding(u32);

impl Hash for Colliding {
    fn hash<H: Hasher>(&self, state: &mut H) {
        0_u8.hash(state);
    }
}

#[test]
fn colliding_hashes_never_return_a_wrong_value() {
    fn id(owner: &Rc<u32>, key: &Colliding) -> u32 {
        **owner * 1_000 + key.0
    }
    let memo = LocalRegistry::new().method(id);
    let owners: Vec<_> = (0..4).map(Rc::new).collect();
    for _ in 0..2 {
        for owner in &owners {
            for k in 0..50 {
                assert_eq!(memo.call(owner, Colliding(k)), **owner * 1_000 + k);
            }
        }
    }
    let info = memo.cache_info();
    assert_eq!((info.hits, info.misses, info.currsize), (200, 200, 200));
}

/// An argument whose `Eq` uses another table of the cache comparing it.
#[allow(clippy::derived_hash_with_manual_eq)] // `eq` compares the field `Hash` hashes
#[derive(Clone, Hash)]
struct Reentrant(u32);

impl PartialEq for Reentrant {
    fn eq(&self, other: &Self) -> bool {
        fn other_key(_: &Rc<u8>, _: &Reentrant) -> u8 {
            0
        }
        REENTER.with(|registry| {
            if let Some(registry) = &*registry.borrow() {
                let _ = registry.method(other_key).get(&Rc::new(0), self);
            }
        });
        self.0 == other.0
    }
}

impl Eq for Reentrant {}

thread_local! {
    static REENTER: RefCell<Option<LocalRegistry>> = const { RefCell::new(None) };
}

#[test]
fn user_code_calling_back_under_a_borrow_panics_clearly_and_loses_nothing() {
    fn by_key(_: &Rc<u8>, key: &Reentrant) -> u32 {
        key.0
    }
    let registry = LocalRegistry::new();
    let memo = registry.method(by_key);
    let owner = Rc::new(0);
    assert_eq!(memo.call(&owner, Reentrant(1)), 1);
    // Another method's table is another `RefCell`: that works.
    REENTER.with(|slot| *slot.borrow_mut() = Some(registry.clone()));
    assert_eq!(memo.call(&owner, Reentrant(1)), 1);
    // The same table, from its own `Eq`, cannot be served.
    fn same_table(_: &Rc<u8>, key: &SelfReentrant) -> u32 {
        key.0
    }
    #[allow(clippy::derived_hash_with_manual_eq)]
    #[derive(Clone, Hash)]
    struct SelfReentrant(u32);
    impl PartialEq for SelfReentrant {
        fn eq(&self, other: &Self) -> bool {
            let _ = weakmemo::local().method(same_table).get(&Rc::new(0), self);
            self.0 == other.0
        }
    }
    impl Eq for SelfReentrant {}
    let memo = weakmemo::local().method(same_table);
    assert_eq!(memo.call(&owner, SelfReentrant(1)), 1);
    let panic = catch_unwind(AssertUnwindSafe(|| memo.call(&owner, SelfReentrant(1)))).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("was used from an argument's `Eq`"),
        "{message}"
    );
    // Released by the unwind; the entry and the books are intact.
    assert_eq!(memo.cache_info().currsize, 1);
    assert_eq!(memo.invalidate_owner(&owner), 1);
    REENTER.with(|slot| *slot.borrow_mut() = None);
}

#[test]
fn the_listener_hears_each_removal_once_and_may_use_the_cache() {
    let registry = LocalRegistry::new();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let inner = registry.clone();
    registry.set_removal_listener(Some(Rc::new(move |removal: &Removal<'_>| {
        assert!(removal.is_method(double));
        log.borrow_mut()
            .push((removal.cause(), *removal.args::<u64>().unwrap()));
        let _ = inner.stats(); // the cache is released
        assert!(
            removal.cause() != RemovalCause::Size,
            "a panicking listener is caught"
        );
    })));
    let memo = registry.method(double);
    memo.set_capacity(Some(2));
    let owner = Rc::new(1);
    let short = Rc::new(2);
    memo.call(&owner, 1);
    memo.call(&short, 2);
    drop(short);
    memo.call(&owner, 3); // the least recent, 1, makes room: Size, whose listener panics
    memo.call(&owner, 4); // then the dead owner's: Collected
    assert!(memo.invalidate(&owner, &3));
    assert_eq!(memo.clear(), 1);
    assert_eq!(
        *seen.borrow(),
        [
            (RemovalCause::Size, 1),
            (RemovalCause::Collected, 2),
            (RemovalCause::Explicit, 3),
            (RemovalCause::Explicit, 4),
        ]
    );
    let stats = registry.stats();
    assert_eq!(
        (
            stats.purged,
            stats.evicted,
            stats.invalidated,
            stats.entries
        ),
        (1, 1, 2, 0)
    );
}

#[test]
fn a_panicking_value_drop_reaches_the_caller_after_the_books_are_settled() {
    #[derive(Clone)]
    struct Bomb(bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.0 && !std::thread::panicking() {
                self.0 = false;
                panic!("boom");
            }
        }
    }
    fn bomb(_: &Rc<u8>, &armed: &bool) -> Bomb {
        Bomb(armed)
    }
    let registry = LocalRegistry::new();
    let memo = registry.method(bomb);
    let owner = Rc::new(0);
    let value = memo.call(&owner, true);
    std::mem::forget(value); // the caller's copy is not the point
    assert!(catch_unwind(AssertUnwindSafe(|| memo.clear())).is_err());
    let stats = registry.stats();
    assert_eq!((stats.entries, stats.invalidated), (0, 1));
    let _ = memo.call(&owner, false);
    assert_eq!(memo.cache_info().currsize, 1);
}

#[test]
fn an_invalidation_during_a_computation_keeps_its_value_out() {
    fn invalidating(owner: &Rc<u8>, &k: &u8) -> u8 {
        weakmemo::local()
            .method(invalidating)
            .invalidate_owner(owner);
        k
    }
    let memo = weakmemo::local().method(invalidating);
    let owner = Rc::new(0);
    assert_eq!(memo.call(&owner, 1), 1);
    assert_eq!(memo.get(&owner, &1), None);
    assert_eq!(memo.stats().discarded, 1);
}

#[test]
fn object_arguments_and_borrowed_arguments() {
    fn mentions((doc, word): (&Rc<Vec<String>>, &Rc<String>), (): &()) -> usize {
        doc.iter().filter(|w| **w == **word).count()
    }
    fn greet(site: &Rc<String>, name: &String) -> String {
        format!("{site}: {name}")
    }
    let registry = LocalRegistry::new();
    let doc = Rc::new(vec!["a".to_string(), "b".into(), "a".into()]);
    let word = Rc::new("a".to_string());
    assert_eq!(registry.method(mentions).call((&doc, &word), ()), 2);
    let watch = Rc::downgrade(&word);
    drop(word);
    assert!(watch.upgrade().is_none());
    assert_eq!(registry.purge(), 1);
    let greet = registry.method(greet);
    let site = Rc::new("home".to_string());
    assert_eq!(greet.call(&site, "ann"), "home: ann");
    assert_eq!(greet.get(&site, &"ann"), Some("home: ann".to_string()));
}

#[test]
fn async_methods_on_a_single_threaded_runtime() {
    async fn len(text: &Rc<String>, &(): &()) -> Rc<usize> {
        tokio::task::yield_now().await;
        Rc::new(text.len())
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let memo = weakmemo::LocalRegistry::new().method(len);
        let text = Rc::new("four".to_string());
        let (a, b) = tokio::join!(memo.call_async(&text, ()), memo.call_async(&text, ()));
        assert_eq!((*a, *b), (4, 4));
        let stats = memo.stats();
        assert_eq!((stats.misses, stats.discarded, stats.entries), (2, 1, 1));
        assert_eq!(*memo.call_async(&text, ()).await, 4);
        assert_eq!(memo.stats().hits, 1);
    });
}

#[test]
fn arc_owners_of_objects_that_are_not_sync_work_too() {
    #[allow(clippy::arc_with_non_send_sync)]
    fn count(cell: &std::sync::Arc<Cell<u8>>, (): &()) -> u8 {
        cell.get()
    }
    #[allow(clippy::arc_with_non_send_sync)]
    let owner = std::sync::Arc::new(Cell::new(7));
    let registry = LocalRegistry::new();
    assert_eq!(registry.method(count).call(&owner, ()), 7);
    assert_eq!(registry.invalidate_owner(&owner), 1);
}

/// The model: per live owner, an LRU list of (argument, value) for one bounded method.
#[derive(Debug, Clone)]
enum Op {
    New,
    Drop(usize),
    Call(usize, u8),
    Get(usize, u8),
    Invalidate(usize, u8),
    InvalidateOwner(usize),
    Clear,
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::New),
        1 => (0..8_usize).prop_map(Op::Drop),
        6 => (0..8_usize, 0..6_u8).prop_map(|(o, k)| Op::Call(o, k)),
        2 => (0..8_usize, 0..6_u8).prop_map(|(o, k)| Op::Get(o, k)),
        1 => (0..8_usize, 0..6_u8).prop_map(|(o, k)| Op::Invalidate(o, k)),
        1 => (0..8_usize).prop_map(Op::InvalidateOwner),
        1 => Just(Op::Clear),
        1 => Just(Op::Purge),
    ]
}

fn modelled(owner: &Rc<u64>, &k: &u8) -> u64 {
    **owner * 100 + u64::from(k)
}

proptest! {
    #[test]
    fn agrees_with_a_reference_lru(capacity in 1..6_usize, interval in 0..3_usize, ops in proptest::collection::vec(op(), 1..80)) {
        let registry = LocalRegistry::new();
        registry.set_purge_interval(interval);
        let memo = registry.method(modelled);
        memo.set_capacity(Some(capacity));
        let mut owners: Vec<Rc<u64>> = Vec::new();
        let mut next = 0;
        // Most recent first: (owner id, argument); dead owners' entries stay (they still
        // take room) until removed.
        let mut lru: VecDeque<(u64, u8)> = VecDeque::new();
        let mut dead: Vec<u64> = Vec::new();
        let mut weaks: Vec<Weak<u64>> = Vec::new();
        // Lookups left before the registry's next purge step, which (a table this small
        // being one step's worth of slots) removes every dead owner's entry, right after
        // the lookup that made it due and before that call stores.
        let mut countdown = interval;
        let mut looked_up = |lru: &mut VecDeque<(u64, u8)>, dead: &[u64]| {
            match countdown {
                0 => {}
                1 => {
                    countdown = interval;
                    lru.retain(|e| !dead.contains(&e.0));
                }
                _ => countdown -= 1,
            }
        };
        for op in ops {
            match op {
                Op::New => {
                    next += 1;
                    let owner = Rc::new(next);
                    weaks.push(Rc::downgrade(&owner));
                    owners.push(owner);
                }
                Op::Drop(i) if i < owners.len() => {
                    let owner = owners.swap_remove(i);
                    dead.push(*owner);
                }
                Op::Call(i, k) if i < owners.len() => {
                    let id = *owners[i];
                    prop_assert_eq!(memo.call(&owners[i], k), id * 100 + u64::from(k));
                    let found = lru.iter().position(|&e| e == (id, k));
                    if let Some(at) = found {
                        lru.remove(at);
                    }
                    looked_up(&mut lru, &dead);
                    if found.is_none() && lru.len() == capacity {
                        lru.pop_back();
                    }
                    lru.push_front((id, k));
                }
                Op::Get(i, k) if i < owners.len() => {
                    let id = *owners[i];
                    let found = memo.get(&owners[i], &k);
                    let at = lru.iter().position(|&e| e == (id, k));
                    prop_assert_eq!(found, at.map(|_| id * 100 + u64::from(k)));
                    if let Some(at) = at {
                        lru.remove(at);
                        lru.push_front((id, k));
                    }
                    looked_up(&mut lru, &dead);
                }
                Op::Invalidate(i, k) if i < owners.len() => {
                    let id = *owners[i];
                    let at = lru.iter().position(|&e| e == (id, k));
                    prop_assert_eq!(memo.invalidate(&owners[i], &k), at.is_some());
                    if let Some(at) = at { lru.remove(at); }
                }
                Op::InvalidateOwner(i) if i < owners.len() => {
                    let id = *owners[i];
                    let before = lru.len();
                    lru.retain(|e| e.0 != id);
                    prop_assert_eq!(memo.invalidate_owner(&owners[i]), before - lru.len());
                }
                Op::Clear => {
                    prop_assert_eq!(memo.clear(), lru.len());
                    lru.clear();
                }
                Op::Purge => {
                    let before = lru.len();
                    lru.retain(|e| !dead.contains(&e.0));
                    let purged = registry.purge();
                    prop_assert_eq!(purged, before - lru.len());
                }
                _ => {}
            }
            // Lazy steps and sweeps may have removed dead owners' entries already:
            // the live entries are exactly the model's, the dead ones a subset.
            let live = lru.iter().filter(|e| !dead.contains(&e.0)).count();
            let entries = memo.cache_info().currsize;
            prop_assert!(entries >= live && entries <= lru.len(), "{} not in {}..={}", entries, live, lru.len());
            if entries < lru.len() {
                // Which dead entries went is the steps' business; the model forgets them.
                lru.retain(|e| !dead.contains(&e.0));
                prop_assert_eq!(registry.purge(), entries - live);
            }
            for (weak, id) in weaks.iter().zip(1..) {
                prop_assert_eq!(weak.upgrade().is_some(), !dead.contains(&id), "the cache kept an owner alive");
            }
        }
    }
}

mod attribute {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    /// A tree node as GUI and compiler code keep them: `Rc`, with interior mutability.
    struct Node {
        weight: u32,
        children: RefCell<Vec<Rc<Node>>>,
        runs: Cell<u32>,
    }

    impl Node {
        fn new(weight: u32) -> Rc<Self> {
            Rc::new(Self {
                weight,
                children: RefCell::default(),
                runs: Cell::new(0),
            })
        }

        #[weakmemo::memo]
        fn total(self: &Rc<Self>) -> u32 {
            self.runs.set(self.runs.get() + 1);
            self.weight + self.children.borrow().iter().map(Node::total).sum::<u32>()
        }

        #[weakmemo::memo(maxsize = 2)]
        fn scaled(self: &Rc<Self>, by: u32, label: &str) -> String {
            format!("{label}{}", self.weight * by)
        }

        #[weakmemo::memo]
        async fn later(self: &Rc<Self>) -> Rc<u32> {
            Rc::new(self.weight)
        }
    }

    #[weakmemo::memo]
    fn shared_weight(a: &Rc<Node>, b: &Rc<Node>) -> u32 {
        a.weight + b.weight
    }

    trait Weighed {
        fn doubled(self: &Rc<Self>) -> u32;
    }

    impl Weighed for Node {
        #[weakmemo::memo(in_trait)]
        fn doubled(self: &Rc<Self>) -> u32 {
            self.weight * 2
        }
    }

    #[test]
    fn memo_accepts_rc_receivers_and_arguments() {
        let leaf = Node::new(2);
        let root = Node::new(1);
        root.children.borrow_mut().push(Rc::clone(&leaf));
        assert_eq!(root.total(), 3);
        assert_eq!(root.total(), 3);
        assert_eq!((root.runs.get(), leaf.runs.get()), (1, 1));
        let info = Node::total_memo().cache_info();
        assert!(info.hits >= 1 && info.currsize >= 2, "{info}");

        assert_eq!(root.scaled(3, "x"), "x3");
        assert_eq!(Node::scaled_memo().capacity(), Some(2));
        assert_eq!(
            Node::scaled_memo()
                .get(&root, &weakmemo::Parts((3, "x")))
                .as_deref(),
            Some("x3")
        );

        assert_eq!(shared_weight(&root, &leaf), 3);
        assert_eq!(shared_weight_memo().get((&root, &leaf), &()), Some(3));
        assert_eq!(root.doubled(), 2);

        let watch = Rc::downgrade(&leaf);
        drop(leaf);
        root.children.borrow_mut().clear();
        assert!(
            watch.upgrade().is_none(),
            "the thread's registry kept the node alive"
        );
    }

    #[test]
    fn memo_on_an_async_method_with_an_rc_receiver() {
        let node = Node::new(5);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert_eq!(*node.later().await, 5);
            assert_eq!(*node.later().await, 5);
        });
        assert_eq!(Node::later_memo().stats().hits, 1);
    }
}
