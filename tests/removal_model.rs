//! Model-based property test of bounds, TTLs and the removal listener, against a model
//! kept exact by the listener itself.
//!
//! `tests/model.rs` checks a registry with no bounds against a model that knows every
//! entry; eviction choices (CLOCK hand, admission sketch) are not something a plain
//! model can predict, so this test lets the registry choose and checks that its choices
//! are consistent: the model holds the set of entries present (live and dead owners'),
//! adds the key of each call that missed and was not kept out, and removes what the
//! listener reports. Whether a call was kept out is `Δevicted − Δ(Size reports)`, 0 or 1.
//!
//! Each case (purge interval 0, 1 or 7; 1 or 4 shards) runs up to 64 random operations
//! on 3 owner slots, 2 methods and 4 keys: call, get, drop an owner, invalidate,
//! invalidate_owner, invalidate_method, clear, purge, set_method_capacity (none or
//! 0..4), set_capacity (none or 0..6), set_method_ttl (none, zero, `Duration::MAX`; no
//! timing involved). After every operation:
//!
//! 1. Every value returned (`call`, `get`) is the pure value of (owner, method, key).
//! 2. A call runs its method exactly when the model says it misses: the key is absent,
//!    or its method has a TTL of zero. `get` returns a value exactly then too.
//! 3. Every report is of an entry present (nothing reported twice, nothing never
//!    stored), its value the pure one, its cause plausible for the operation: `Collected`
//!    only for dead owners; `Expired` only for a method with a TTL of zero; `Explicit`
//!    exactly the entries in the scope of the `invalidate*`/`clear` (and their counts);
//!    `Size` only from calls and bound changes. `purge()` reports exactly the dead
//!    owners' and expired entries, and returns their number.
//! 4. A call with a TTL of zero, a method bound of 0 or a registry bound of 0 is kept
//!    out; a hit is never counted as kept out; only calls are.
//! 5. `stats()`: `entries` = the model's entries; `purged`, `expired`, `invalidated`
//!    = the listener's `Collected`, `Expired`, `Explicit` reports; `evicted` = `Size`
//!    reports + calls kept out.
//! 6. A bounded method's entries never exceed its bound, except right after the bound
//!    is lowered, and then never grow until within it; with a registry bound, all
//!    entries are within it; `weight()` is the number of entries of the methods whose
//!    weight is counted (those with a bound, or all once the registry had one).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::Recorder;
use proptest::prelude::*;
use weakmemo::{Registry, RemovalCause, Stats};

use RemovalCause::{Collected, Expired, Explicit, Size};

const SLOTS: usize = 3;
const KEYS: u8 = 4;

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

fn zero(owner: &Arc<Owner>, &key: &u8) -> u64 {
    owner.runs.fetch_add(1, SeqCst);
    pure(owner.id, 0, key)
}

fn one(owner: &Arc<Owner>, &key: &u8) -> u64 {
    owner.runs.fetch_add(1, SeqCst);
    pure(owner.id, 1, key)
}

type Key = (u64, usize, u8);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ttl {
    None,
    Zero,
    Max,
}

#[derive(Clone, Debug)]
enum Op {
    Call(usize, usize, u8),
    Get(usize, usize, u8),
    Drop(usize),
    Invalidate(usize, usize, u8),
    InvalidateOwner(usize),
    InvalidateMethod(usize),
    Clear,
    Purge,
    SetMethodCapacity(usize, Option<usize>),
    SetCapacity(Option<usize>),
    SetTtl(usize, Ttl),
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let method = 0..2usize;
    let ttl = prop_oneof![Just(Ttl::None), Just(Ttl::Zero), Just(Ttl::Max)];
    prop_oneof![
        12 => (slot.clone(), method.clone(), 0..KEYS).prop_map(|(s, m, k)| Op::Call(s, m, k)),
        3 => (slot.clone(), method.clone(), 0..KEYS).prop_map(|(s, m, k)| Op::Get(s, m, k)),
        2 => slot.clone().prop_map(Op::Drop),
        2 => (slot.clone(), method.clone(), 0..KEYS).prop_map(|(s, m, k)| Op::Invalidate(s, m, k)),
        1 => slot.prop_map(Op::InvalidateOwner),
        1 => method.clone().prop_map(Op::InvalidateMethod),
        1 => Just(Op::Clear),
        2 => Just(Op::Purge),
        3 => (method.clone(), proptest::option::of(0..5usize))
            .prop_map(|(m, c)| Op::SetMethodCapacity(m, c)),
        2 => proptest::option::of(0..7usize).prop_map(Op::SetCapacity),
        2 => (method, ttl).prop_map(|(m, t)| Op::SetTtl(m, t)),
    ]
}

struct Model {
    cache: Registry,
    recorder: Recorder<u8, u64>,
    slots: [Option<Arc<Owner>>; SLOTS],
    next_id: u64,
    dead: BTreeSet<u64>,
    /// Entries in the registry, of live and dead owners.
    present: BTreeSet<Key>,
    /// Each method's own bound, and the entries it may hold now (more than the bound
    /// right after it was lowered).
    capacity: [Option<usize>; 2],
    limit: [usize; 2],
    registry_capacity: Option<usize>,
    ttl_zero: [bool; 2],
    /// Whether the method's table exists, and whether its weight is counted.
    table: [bool; 2],
    counted: [bool; 2],
    kept_out: u64,
}

impl Model {
    fn new(interval: usize, shards: usize) -> Self {
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
            present: BTreeSet::new(),
            capacity: [None; 2],
            limit: [usize::MAX; 2],
            registry_capacity: None,
            ttl_zero: [false; 2],
            table: [false; 2],
            counted: [false; 2],
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
            0 => self.cache.call(owner, zero, key),
            _ => self.cache.call(owner, one, key),
        }
    }

    fn get(&self, owner: &Arc<Owner>, method: usize, key: u8) -> Option<u64> {
        match method {
            0 => self.cache.get(owner, zero, &key),
            _ => self.cache.get(owner, one, &key),
        }
    }

    fn set_method_capacity(&self, method: usize, capacity: Option<usize>) {
        match method {
            0 => self.cache.set_method_capacity(zero, capacity),
            _ => self.cache.set_method_capacity(one, capacity),
        }
    }

    fn set_ttl(&self, method: usize, ttl: Option<Duration>) {
        match method {
            0 => self.cache.set_method_ttl(zero, ttl),
            _ => self.cache.set_method_ttl(one, ttl),
        }
    }

    /// A table is made by the first call of its method, with the bound it was given.
    fn made_table(&mut self, method: usize) {
        if !self.table[method] {
            self.table[method] = true;
            self.counted[method] =
                self.capacity[method].is_some() || self.registry_capacity.is_some();
        }
    }

    fn in_scope(&self, scope: impl Fn(&Key) -> bool) -> BTreeSet<Key> {
        self.present
            .iter()
            .copied()
            .filter(|key| scope(key))
            .collect()
    }

    fn apply(&mut self, op: &Op) {
        let before = self.cache.stats();
        let sizes_before = self.recorder.count(Size);
        // What the operation must report as explicit removals, if it is one.
        let mut explicit: Option<BTreeSet<Key>> = None;
        // The call's key, and whether it missed.
        let mut called: Option<(Key, bool)> = None;
        match *op {
            Op::Call(slot, method, key) => {
                let owner = self.owner(slot);
                let id = owner.id;
                let runs = owner.runs.load(SeqCst);
                self.made_table(method);
                assert_eq!(self.call(&owner, method, key), pure(id, method, key));
                let ran = owner.runs.load(SeqCst) - runs;
                let hit = self.present.contains(&(id, method, key)) && !self.ttl_zero[method];
                assert_eq!(ran, usize::from(!hit), "{op:?}: hit {hit}, ran {ran}");
                called = Some(((id, method, key), !hit));
            }
            Op::Get(slot, method, key) => {
                let owner = self.owner(slot);
                let id = owner.id;
                let found = self.get(&owner, method, key);
                let hit = self.present.contains(&(id, method, key)) && !self.ttl_zero[method];
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
                    0 => self.cache.invalidate(&owner, zero, &key),
                    _ => self.cache.invalidate(&owner, one, &key),
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
                    0 => self.cache.invalidate_method(zero),
                    _ => self.cache.invalidate_method(one),
                };
                assert_eq!(count, scope.len(), "{op:?}");
                explicit = Some(scope);
            }
            Op::Clear => {
                let scope = self.present.clone();
                assert_eq!(self.cache.clear(), scope.len());
                explicit = Some(scope);
            }
            Op::Purge => {
                let stale =
                    self.in_scope(|&(id, m, _)| self.dead.contains(&id) || self.ttl_zero[m]);
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
                if self.table[method] && capacity.is_some() {
                    self.counted[method] = true;
                }
                self.capacity[method] = capacity;
                let entries = self.in_scope(|&(_, m, _)| m == method).len();
                self.limit[method] = capacity.map_or(usize::MAX, |c| c.max(entries));
            }
            Op::SetCapacity(capacity) => {
                self.cache.set_capacity(capacity);
                assert_eq!(self.cache.capacity(), capacity);
                self.registry_capacity = capacity;
                if capacity.is_some() {
                    for method in 0..2 {
                        self.counted[method] |= self.table[method];
                    }
                }
            }
            Op::SetTtl(method, ttl) => {
                let duration = match ttl {
                    Ttl::None => None,
                    Ttl::Zero => Some(Duration::ZERO),
                    Ttl::Max => Some(Duration::MAX),
                };
                self.set_ttl(method, duration);
                self.ttl_zero[method] = ttl == Ttl::Zero;
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
        match called {
            Some(((_, method, _), true)) => {
                assert!(kept_out <= 1, "{op:?}: {kept_out} kept out");
                let must = self.ttl_zero[method]
                    || self.capacity[method] == Some(0)
                    || self.registry_capacity == Some(0);
                if must {
                    assert_eq!(kept_out, 1, "{op:?} must be kept out");
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
            if !self.present.remove(&key) {
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
                Expired => assert!(self.ttl_zero[key.1], "{op:?}: {key:?} not expired"),
                Explicit => assert!(explicit_seen.insert(key), "{op:?}: {key:?} twice"),
                Size => assert!(
                    matches!(
                        op,
                        Op::Call(..) | Op::SetCapacity(_) | Op::SetMethodCapacity(..)
                    ),
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
            self.present.insert(called.unwrap().0);
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
        let mut weight = 0;
        for method in 0..2 {
            let entries = self.in_scope(|&(_, m, _)| m == method).len();
            assert!(
                entries <= self.limit[method],
                "{op:?}: method {method} holds {entries}, over {}",
                self.limit[method]
            );
            if let Some(capacity) = self.capacity[method] {
                self.limit[method] = capacity.max(entries);
            }
            if self.counted[method] {
                weight += entries;
            }
        }
        if let Some(capacity) = self.registry_capacity {
            assert!(
                stats.entries <= capacity,
                "{op:?}: {} entries over {capacity}",
                stats.entries
            );
        }
        assert_eq!(self.cache.weight(), weight, "{op:?}: weight");
    }
}

fn run(interval: usize, shards: usize, ops: &[Op]) {
    let mut model = Model::new(interval, shards);
    for op in ops {
        model.apply(op);
    }
    // Everything left is removed, and reported, by `clear`.
    model.apply(&Op::Clear);
    assert!(model.present.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random operations keep the registry, its counters and its listener consistent.
    #[test]
    fn bounds_ttls_and_the_listener_match_the_model(
        interval in prop_oneof![Just(0usize), Just(1), Just(7)],
        shards in prop_oneof![Just(1usize), Just(4)],
        ops in proptest::collection::vec(op(), 1..64),
    ) {
        run(interval, shards, &ops);
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
        SetTtl(1, Ttl::Zero),
        Get(2, 1, 3),
        Call(2, 1, 3),
        Purge,
        SetTtl(1, Ttl::Max),
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
        run(interval, 4, &ops);
    }
}
