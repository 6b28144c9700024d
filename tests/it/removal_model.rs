//! Model-based property test of bounds, weights, TTLs, run-time settings and the removal
//! listener, against a model kept exact by the listener itself.
//!
//! `tests/it/model.rs` checks a registry with no bounds against a model that knows every
//! entry; eviction choices (CLOCK hand, admission sketch) are not something a plain
//! model can predict, so this test lets the registry choose and checks that its choices
//! are consistent: the model holds the entries present (live and dead owners'), each with
//! the weight it was stored with, adds the key of each call that missed and was not kept
//! out, and removes what the listener reports. Whether a call was kept out is
//! `Δevicted − Δ(Size reports)`, 0 or 1.
//!
//! Each case (purge interval 0, 1 or 7 to start with; 1 or 4 shards) runs up to 64
//! random operations on 3 owner slots, 2 methods and 4 keys: call, a call whose method
//! panics, get, drop an owner, invalidate, invalidate_owner, clear, clear,
//! purge, and setting changes interleaved with them: set_capacity (none or 0..7),
//! set_capacity (none or 0..10), set_weigher (weight 1, key % 3 with 0 allowed, or
//! key + 1), set_ttl (none: the registry's, zero, `Duration::MAX`: exempt),
//! set_ttl for the registry (none, zero, `Duration::MAX`), set_single_flight (on, off)
//! and set_purge_interval (0, 1, 7). No timing is involved: a TTL of zero expires every
//! entry, `Duration::MAX` none. After every operation:
//!
//! 1. Every value returned (`call`, `get`) is the pure value of (owner, method, key).
//! 2. A call runs its method exactly when the model says it misses: the key is absent,
//!    or its method's TTL in force (its own, else the registry's) is zero. `get` returns
//!    a value exactly then too.
//! 3. A call whose method panics runs it exactly when it misses; the panic then reaches
//!    the caller with its payload, nothing is stored, nothing is kept out or evicted, and
//!    the books (entries, weights, counters) are unchanged but for lazy purge steps. On
//!    a hit it returns the value and does not panic.
//! 4. Every report is of an entry present (nothing reported twice, nothing never
//!    stored), its value the pure one, its cause plausible for the operation: `Collected`
//!    only for dead owners; `Expired` only for a method whose TTL in force is zero;
//!    `Explicit` exactly the entries in the scope of the `invalidate*`/`clear` (and their
//!    counts); `Size` only from calls that store and bound changes. `purge()` reports
//!    exactly the dead owners' and expired entries, and returns their number.
//! 5. A call with a TTL of zero in force, or whose entry weighs more than its method's
//!    bound or the registry's, is kept out; a hit is never counted as kept out; only
//!    calls that ran their method to the end are.
//! 6. `stats()`: `entries` = the model's entries; `purged`, `expired`, `invalidated`
//!    = the listener's `Collected`, `Expired`, `Explicit` reports; `evicted` = `Size`
//!    reports + calls kept out.
//! 7. Weights: each entry keeps the weight its method's weigher in force when it was
//!    stored gave it, whatever weigher came after. `weight()` is the sum of the weights
//!    of all entries present, of every method, bounded or not. A bounded method's weight
//!    never exceeds its bound, except right after the bound is lowered, and then never
//!    grows until within it; with a registry bound, the total weight is within it (a
//!    lowered registry bound is met at once).
//! 8. The getters read back what was set: `capacity()`, `capacity()`, `ttl()`,
//!    `ttl()`, `single_flight()`, `purge_interval()`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::{Recorder, arm, armed, panic_message};
use proptest::prelude::*;
use weakmemo::{Registry, RemovalCause, Stats};

use RemovalCause::{Collected, Expired, Explicit, Size};

const SLOTS: usize = 3;
const KEYS: u8 = 4;

/// The payload of a method that panics on purpose.
const PANICS: &str = "the method panics on purpose";

struct Owner {
    id: u64,
    runs: AtomicUsize,
}

fn pure(id: u64, method: usize, key: u8) -> u64 {
    id * 100 + method as u64 * 10 + u64::from(key)
}

/// (owner id, method, key) of a value.
fn decode(value: u64) -> Key {
    (value / 100, (value / 10 % 10) as usize, (value % 10) as u8)
}

/// Counts the run, then panics if this thread is [`armed`].
fn run(owner: &Owner, method: usize, key: u8) -> u64 {
    owner.runs.fetch_add(1, SeqCst);
    if armed() {
        panic!("{PANICS}");
    }
    pure(owner.id, method, key)
}

fn zero(owner: &Arc<Owner>, &key: &u8) -> u64 {
    run(owner, 0, key)
}

fn one(owner: &Arc<Owner>, &key: &u8) -> u64 {
    run(owner, 1, key)
}

type Key = (u64, usize, u8);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ttl {
    None,
    Zero,
    Max,
}

impl Ttl {
    fn duration(self) -> Option<Duration> {
        match self {
            Ttl::None => None,
            Ttl::Zero => Some(Duration::ZERO),
            Ttl::Max => Some(Duration::MAX),
        }
    }
}

/// A deterministic weigher, of the key.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Weigher {
    /// As without a weigher.
    One,
    /// 0 (a free entry), 1 or 2.
    KeyMod3,
    /// 1 to 4.
    KeyPlus1,
}

impl Weigher {
    fn weight(self, key: u8) -> usize {
        match self {
            Weigher::One => 1,
            Weigher::KeyMod3 => usize::from(key % 3),
            Weigher::KeyPlus1 => usize::from(key) + 1,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Call(usize, usize, u8),
    /// A call whose method panics if it runs.
    PanicCall(usize, usize, u8),
    Get(usize, usize, u8),
    Drop(usize),
    Invalidate(usize, usize, u8),
    InvalidateOwner(usize),
    InvalidateMethod(usize),
    Clear,
    Purge,
    SetMethodCapacity(usize, Option<usize>),
    SetCapacity(Option<usize>),
    SetMethodWeigher(usize, Weigher),
    SetMethodTtl(usize, Ttl),
    /// The registry's TTL.
    SetTtl(Ttl),
    SetSingleFlight(bool),
    SetPurgeInterval(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let method = 0..2usize;
    let ttl = || prop_oneof![Just(Ttl::None), Just(Ttl::Zero), Just(Ttl::Max)];
    let weigher = prop_oneof![
        Just(Weigher::One),
        Just(Weigher::KeyMod3),
        Just(Weigher::KeyPlus1)
    ];
    prop_oneof![
        12 => (slot.clone(), method.clone(), 0..KEYS).prop_map(|(s, m, k)| Op::Call(s, m, k)),
        2 => (slot.clone(), method.clone(), 0..KEYS).prop_map(|(s, m, k)| Op::PanicCall(s, m, k)),
        3 => (slot.clone(), method.clone(), 0..KEYS).prop_map(|(s, m, k)| Op::Get(s, m, k)),
        2 => slot.clone().prop_map(Op::Drop),
        2 => (slot.clone(), method.clone(), 0..KEYS).prop_map(|(s, m, k)| Op::Invalidate(s, m, k)),
        1 => slot.prop_map(Op::InvalidateOwner),
        1 => method.clone().prop_map(Op::InvalidateMethod),
        1 => Just(Op::Clear),
        2 => Just(Op::Purge),
        3 => (method.clone(), proptest::option::of(0..7usize))
            .prop_map(|(m, c)| Op::SetMethodCapacity(m, c)),
        2 => proptest::option::of(0..10usize).prop_map(Op::SetCapacity),
        3 => (method.clone(), weigher).prop_map(|(m, w)| Op::SetMethodWeigher(m, w)),
        2 => (method, ttl()).prop_map(|(m, t)| Op::SetMethodTtl(m, t)),
        1 => ttl().prop_map(Op::SetTtl),
        1 => any::<bool>().prop_map(Op::SetSingleFlight),
        1 => prop_oneof![Just(0usize), Just(1), Just(7)].prop_map(Op::SetPurgeInterval),
    ]
}

struct Model {
    cache: Registry,
    recorder: Recorder<u8, u64>,
    slots: [Option<Arc<Owner>>; SLOTS],
    next_id: u64,
    dead: BTreeSet<u64>,
    /// Entries in the registry, of live and dead owners, with the weight each was
    /// stored with.
    present: BTreeMap<Key, usize>,
    /// Each method's own bound, and the weight it may hold now (more than the bound
    /// right after it was lowered).
    capacity: [Option<usize>; 2],
    limit: [usize; 2],
    registry_capacity: Option<usize>,
    /// Each method's own TTL (`Ttl::None`: the registry's), and the registry's.
    method_ttl: [Ttl; 2],
    registry_ttl: Ttl,
    /// The weigher each method's new entries are weighed with.
    weigher: [Weigher; 2],
    kept_out: u64,
}

impl Model {
    fn new(interval: usize, shards: usize) -> Self {
        common::quiet_panics(PANICS);
        let cache = Registry::builder()
            .purge_interval(interval)
            .shards(shards)
            .build();
        let recorder = Recorder::install(&cache);
        Self {
            cache,
            recorder,
            slots: Default::default(),
            next_id: 1,
            dead: BTreeSet::new(),
            present: BTreeMap::new(),
            capacity: [None; 2],
            limit: [usize::MAX; 2],
            registry_capacity: None,
            method_ttl: [Ttl::None; 2],
            registry_ttl: Ttl::None,
            weigher: [Weigher::One; 2],
            kept_out: 0,
        }
    }

    fn owner(&mut self, slot: usize) -> Arc<Owner> {
        let next_id = &mut self.next_id;
        Arc::clone(self.slots[slot].get_or_insert_with(|| {
            *next_id += 1;
            Arc::new(Owner {
                id: *next_id - 1,
                runs: AtomicUsize::new(0),
            })
        }))
    }

    fn call(&self, owner: &Arc<Owner>, method: usize, key: u8) -> u64 {
        match method {
            0 => self.cache.method(zero).call(owner, key),
            _ => self.cache.method(one).call(owner, key),
        }
    }

    fn get(&self, owner: &Arc<Owner>, method: usize, key: u8) -> Option<u64> {
        match method {
            0 => self.cache.method(zero).get(owner, &key),
            _ => self.cache.method(one).get(owner, &key),
        }
    }

    fn set_method_capacity(&self, method: usize, capacity: Option<usize>) {
        match method {
            0 => self.cache.method(zero).set_capacity(capacity),
            _ => self.cache.method(one).set_capacity(capacity),
        }
        let read = match method {
            0 => self.cache.method(zero).capacity(),
            _ => self.cache.method(one).capacity(),
        };
        assert_eq!(read, capacity, "method_capacity reads back");
    }

    fn set_method_weigher(&self, method: usize, weigher: Weigher) {
        let weigh = move |&key: &u8, _: &u64| weigher.weight(key) as u32;
        match method {
            0 => self
                .cache
                .method(zero)
                .set_weigher(Some(std::sync::Arc::new(weigh))),
            _ => self
                .cache
                .method(one)
                .set_weigher(Some(std::sync::Arc::new(weigh))),
        }
    }

    fn set_method_ttl(&self, method: usize, ttl: Ttl) {
        match method {
            0 => self.cache.method(zero).set_ttl(ttl.duration()),
            _ => self.cache.method(one).set_ttl(ttl.duration()),
        }
        let read = match method {
            0 => self.cache.method(zero).ttl(),
            _ => self.cache.method(one).ttl(),
        };
        assert_eq!(read, ttl.duration(), "method_ttl reads back");
    }

    /// Whether the method's TTL in force is zero: its own, else the registry's
    /// (`Duration::MAX` of its own exempts it).
    fn ttl_zero(&self, method: usize) -> bool {
        match self.method_ttl[method] {
            Ttl::Zero => true,
            Ttl::Max => false,
            Ttl::None => self.registry_ttl == Ttl::Zero,
        }
    }

    /// Whether a call of (owner `id`, `method`, `key`) would find its entry.
    fn hits(&self, id: u64, method: usize, key: u8) -> bool {
        self.present.contains_key(&(id, method, key)) && !self.ttl_zero(method)
    }

    /// The weight of the method's entries present.
    fn weight_of(&self, method: usize) -> usize {
        let entries = self.present.iter();
        entries
            .filter(|&(&(_, m, _), _)| m == method)
            .map(|(_, &weight)| weight)
            .sum()
    }

    fn in_scope(&self, scope: impl Fn(&Key) -> bool) -> BTreeSet<Key> {
        self.present
            .keys()
            .copied()
            .filter(|key| scope(key))
            .collect()
    }

    fn apply(&mut self, op: &Op) {
        let before = self.cache.stats();
        let sizes_before = self.recorder.count(Size);
        // What the operation must report as explicit removals, if it is one.
        let mut explicit: Option<BTreeSet<Key>> = None;
        // The call's key, and whether it missed and ran its method to the end.
        let mut called: Option<(Key, bool)> = None;
        match *op {
            Op::Call(slot, method, key) => {
                let owner = self.owner(slot);
                let id = owner.id;
                let runs = owner.runs.load(SeqCst);
                assert_eq!(self.call(&owner, method, key), pure(id, method, key));
                let ran = owner.runs.load(SeqCst) - runs;
                let hit = self.hits(id, method, key);
                assert_eq!(ran, usize::from(!hit), "{op:?}: hit {hit}, ran {ran}");
                called = Some(((id, method, key), !hit));
            }
            Op::PanicCall(slot, method, key) => {
                let owner = self.owner(slot);
                let id = owner.id;
                let runs = owner.runs.load(SeqCst);
                let hit = self.hits(id, method, key);
                arm(true);
                let result = catch_unwind(AssertUnwindSafe(|| self.call(&owner, method, key)));
                arm(false);
                let ran = owner.runs.load(SeqCst) - runs;
                assert_eq!(ran, usize::from(!hit), "{op:?}: hit {hit}, ran {ran}");
                match result {
                    Ok(value) => {
                        assert!(hit, "{op:?}: a miss ran a panicking method, no panic");
                        assert_eq!(value, pure(id, method, key), "{op:?}");
                    }
                    Err(payload) => {
                        assert!(!hit, "{op:?}: a hit panicked");
                        assert_eq!(panic_message(&*payload), PANICS, "{op:?}: the payload");
                    }
                }
                // Neither stored nor kept out: `called` stays `None`.
            }
            Op::Get(slot, method, key) => {
                let owner = self.owner(slot);
                let id = owner.id;
                let found = self.get(&owner, method, key);
                let hit = self.hits(id, method, key);
                assert_eq!(found, hit.then(|| pure(id, method, key)), "{op:?}");
            }
            Op::Drop(slot) => {
                if let Some(owner) = self.slots[slot].take() {
                    self.dead.insert(owner.id);
                }
            }
            Op::Invalidate(slot, method, key) => {
                let owner = self.owner(slot);
                let scope = self.in_scope(|&k| k == (owner.id, method, key));
                let found = match method {
                    0 => self.cache.method(zero).invalidate(&owner, &key),
                    _ => self.cache.method(one).invalidate(&owner, &key),
                };
                assert_eq!(found, !scope.is_empty(), "{op:?}");
                explicit = Some(scope);
            }
            Op::InvalidateOwner(slot) => {
                let owner = self.owner(slot);
                let scope = self.in_scope(|&(id, _, _)| id == owner.id);
                assert_eq!(self.cache.invalidate_owner(&owner), scope.len(), "{op:?}");
                explicit = Some(scope);
            }
            Op::InvalidateMethod(method) => {
                let scope = self.in_scope(|&(_, m, _)| m == method);
                let count = match method {
                    0 => self.cache.method(zero).clear(),
                    _ => self.cache.method(one).clear(),
                };
                assert_eq!(count, scope.len(), "{op:?}");
                explicit = Some(scope);
            }
            Op::Clear => {
                let scope = self.in_scope(|_| true);
                assert_eq!(self.cache.clear(), scope.len());
                explicit = Some(scope);
            }
            Op::Purge => {
                let stale =
                    self.in_scope(|&(id, m, _)| self.dead.contains(&id) || self.ttl_zero(m));
                assert_eq!(self.cache.purge(), stale.len(), "{op:?}");
                let reported: BTreeSet<Key> = self
                    .recorder
                    .peek()
                    .iter()
                    .map(|&(_, _, v)| decode(v))
                    .collect();
                assert_eq!(reported, stale, "purge reports exactly the stale entries");
            }
            Op::SetMethodCapacity(method, capacity) => {
                self.set_method_capacity(method, capacity);
                self.capacity[method] = capacity;
                let weight = self.weight_of(method);
                self.limit[method] = capacity.map_or(usize::MAX, |c| c.max(weight));
            }
            Op::SetCapacity(capacity) => {
                self.cache.set_capacity(capacity);
                assert_eq!(self.cache.capacity(), capacity);
                self.registry_capacity = capacity;
            }
            Op::SetMethodWeigher(method, weigher) => {
                self.set_method_weigher(method, weigher);
                self.weigher[method] = weigher;
            }
            Op::SetMethodTtl(method, ttl) => {
                self.set_method_ttl(method, ttl);
                self.method_ttl[method] = ttl;
            }
            Op::SetTtl(ttl) => {
                self.cache.set_ttl(ttl.duration());
                assert_eq!(self.cache.ttl(), ttl.duration(), "ttl reads back");
                self.registry_ttl = ttl;
            }
            Op::SetSingleFlight(on) => {
                self.cache.set_single_flight(on);
                assert_eq!(self.cache.single_flight(), on);
            }
            Op::SetPurgeInterval(lookups) => {
                self.cache.set_purge_interval(lookups);
                assert_eq!(self.cache.purge_interval(), lookups);
            }
        }
        self.settle(op, before, sizes_before, explicit, called);
    }

    /// Applies the operation's reports to the model and checks them.
    fn settle(
        &mut self,
        op: &Op,
        before: Stats,
        sizes_before: u64,
        explicit: Option<BTreeSet<Key>>,
        called: Option<(Key, bool)>,
    ) {
        let after = self.cache.stats();
        let sizes = self.recorder.count(Size) - sizes_before;
        let kept_out = after.evicted - before.evicted - sizes;
        // The weight the call's entry is stored with, if it ran its method.
        let mut weight = 0;
        match called {
            Some(((_, method, key), true)) => {
                weight = self.weigher[method].weight(key);
                assert!(kept_out <= 1, "{op:?}: {kept_out} kept out");
                let over = |bound: Option<usize>| bound.is_some_and(|bound| weight > bound);
                let must = self.ttl_zero(method)
                    || over(self.capacity[method])
                    || over(self.registry_capacity);
                if must {
                    assert_eq!(kept_out, 1, "{op:?} (weight {weight}) must be kept out");
                }
            }
            _ => assert_eq!(kept_out, 0, "{op:?}: only a missed call is kept out"),
        }
        self.kept_out += kept_out;
        let stored = matches!(called, Some((_, true))) && kept_out == 0;
        let mut added = false;
        let mut explicit_seen = BTreeSet::new();
        for (cause, args, value) in self.recorder.take() {
            let key = decode(value);
            assert_eq!(
                args, key.2,
                "{op:?}: a report's arguments and value disagree"
            );
            assert_eq!(value, pure(key.0, key.1, key.2));
            if self.present.remove(&key).is_none() {
                // The only entry not present before that may leave: the one this call
                // stored, evicted at once by the registry's bound.
                let own = called.is_some_and(|(called, _)| called == key);
                assert!(
                    own && stored && !added && cause == Size,
                    "{op:?}: {cause:?} reported for {key:?}, which is not present"
                );
                added = true;
            }
            match cause {
                Collected => assert!(self.dead.contains(&key.0), "{op:?}: {key:?} not dead"),
                Expired => assert!(self.ttl_zero(key.1), "{op:?}: {key:?} not expired"),
                Explicit => assert!(explicit_seen.insert(key), "{op:?}: {key:?} twice"),
                Size => assert!(
                    matches!(called, Some((_, true)))
                        || matches!(op, Op::SetCapacity(_) | Op::SetMethodCapacity(..)),
                    "{op:?} evicted {key:?}"
                ),
                _ => unreachable!("a new cause"),
            }
        }
        assert_eq!(
            explicit_seen,
            explicit.unwrap_or_default(),
            "{op:?}: explicit removals"
        );
        if stored && !added {
            self.present.insert(called.unwrap().0, weight);
        }
        self.check(op, after);
    }

    fn check(&mut self, op: &Op, stats: Stats) {
        assert_eq!(stats.entries, self.present.len(), "{op:?}: entries");
        assert_eq!(
            stats.purged,
            self.recorder.count(Collected),
            "{op:?}: purged"
        );
        assert_eq!(
            stats.expired,
            self.recorder.count(Expired),
            "{op:?}: expired"
        );
        assert_eq!(
            stats.invalidated,
            self.recorder.count(Explicit),
            "{op:?}: invalidated"
        );
        assert_eq!(
            stats.evicted,
            self.recorder.count(Size) + self.kept_out,
            "{op:?}: evicted"
        );
        let mut total = 0;
        for method in 0..2 {
            let weight = self.weight_of(method);
            assert!(
                weight <= self.limit[method],
                "{op:?}: method {method} weighs {weight}, over {}",
                self.limit[method]
            );
            if let Some(capacity) = self.capacity[method] {
                self.limit[method] = capacity.max(weight);
            }
            total += weight;
        }
        if let Some(capacity) = self.registry_capacity {
            assert!(total <= capacity, "{op:?}: weight {total} over {capacity}");
        }
        assert_eq!(self.cache.weight(), total, "{op:?}: weight");
    }
}

fn run_ops(interval: usize, shards: usize, ops: &[Op]) {
    let mut model = Model::new(interval, shards);
    for op in ops {
        model.apply(op);
    }
    // Everything left is removed, and reported, by `clear`.
    model.apply(&Op::Clear);
    assert!(model.present.is_empty());
    assert_eq!(model.cache.weight(), 0, "weight after clear");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random operations, setting changes among them, keep the registry, its weights, its
    /// counters and its listener consistent.
    #[test]
    fn bounds_ttls_settings_and_the_listener_match_the_model(
        interval in prop_oneof![Just(0usize), Just(1), Just(7)],
        shards in prop_oneof![Just(1usize), Just(4)],
        ops in proptest::collection::vec(op(), 1..64),
    ) {
        run_ops(interval, shards, &ops);
    }
}

/// A fixed sequence through every operation, so that a regression shows without
/// shrinking.
#[test]
fn a_fixed_sequence_matches_the_model() {
    use Op::*;
    let ops = [
        Call(0, 0, 0),
        Call(0, 0, 1),
        Call(1, 1, 0),
        SetMethodCapacity(0, Some(1)),
        Call(0, 0, 2),
        Call(0, 0, 2),
        Get(0, 0, 1),
        Drop(1),
        SetCapacity(Some(2)),
        Call(2, 1, 3),
        Call(2, 1, 3),
        SetMethodTtl(1, Ttl::Zero),
        Get(2, 1, 3),
        Call(2, 1, 3),
        Purge,
        SetMethodTtl(1, Ttl::Max),
        SetCapacity(Some(0)),
        Call(0, 1, 1),
        SetCapacity(None),
        SetMethodCapacity(0, None),
        Call(0, 1, 1),
        Invalidate(0, 1, 1),
        Call(0, 0, 3),
        InvalidateOwner(0),
        Call(2, 0, 0),
        InvalidateMethod(0),
        Call(2, 1, 2),
        Drop(2),
        Call(0, 0, 0),
    ];
    for interval in [0, 1, 7] {
        run_ops(interval, 4, &ops);
    }
}

/// A fixed sequence of setting changes between calls: weighers changed while entries
/// weighed by the old one are present (each keeps its weight, whatever removes it),
/// panicking calls, the registry's TTL beside the method's, single flight off and on,
/// purge intervals changed, bounds lowered and lifted.
#[test]
fn a_fixed_sequence_of_setting_changes_matches_the_model() {
    use Op::*;
    let ops = [
        // Unbounded methods' weight counts too.
        Call(0, 0, 0),
        Call(0, 1, 0),
        SetMethodWeigher(0, Weigher::KeyPlus1),
        Call(0, 0, 3),
        Call(1, 0, 1),
        // Weighed 1, 4, 2: removed by each way, each with its own weight.
        SetMethodWeigher(0, Weigher::KeyMod3),
        Call(1, 0, 2),
        Call(1, 0, 3),
        Invalidate(0, 0, 3),
        Drop(1),
        Purge,
        PanicCall(0, 0, 1),
        PanicCall(0, 0, 0),
        Call(0, 0, 1),
        SetMethodCapacity(0, Some(2)),
        SetMethodWeigher(0, Weigher::KeyPlus1),
        Call(0, 0, 3),
        Call(0, 0, 2),
        SetMethodWeigher(0, Weigher::One),
        Call(0, 0, 2),
        SetSingleFlight(false),
        Call(0, 0, 0),
        PanicCall(2, 1, 1),
        SetSingleFlight(true),
        SetTtl(Ttl::Zero),
        Get(0, 0, 1),
        Call(0, 1, 2),
        SetMethodTtl(1, Ttl::Max),
        Call(0, 1, 2),
        SetPurgeInterval(1),
        Get(0, 0, 0),
        SetTtl(Ttl::Max),
        Call(0, 0, 1),
        SetPurgeInterval(0),
        SetCapacity(Some(3)),
        SetMethodWeigher(1, Weigher::KeyPlus1),
        Call(2, 1, 3),
        Call(2, 1, 0),
        SetCapacity(Some(1)),
        SetMethodCapacity(0, Some(0)),
        Call(2, 0, 2),
        SetCapacity(None),
        SetMethodCapacity(0, None),
        SetTtl(Ttl::None),
        InvalidateMethod(1),
        Call(2, 0, 3),
        InvalidateOwner(2),
    ];
    for interval in [0, 1, 7] {
        run_ops(interval, 4, &ops);
    }
}
