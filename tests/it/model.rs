//! Model-based property test: random operation sequences against a plain reference model.
//!
//! Each case builds a registry (purge interval 0, 1 or 7; 1, 4 or 16 shards) and runs up
//! to 64 random operations: create an owner, drop an owner, `call` (method 1 or 2,
//! argument 0..4), `try_call` (fails for some owner/argument pairs), `get`, the `Ok` table's `get`,
//! `invalidate` (method 1, 2 or the fallible one), `invalidate_owner`,
//! `clear`, `clear`, `purge`, `set_purge_interval(0 | 1 | 7)`.
//!
//! The model is a map (owner, table, argument) -> value for live owners. Every cached
//! value carries a token `Arc` unique to its key, so the test also sees exactly which
//! entries of *dead* owners are still in the registry (a dead owner's entries can no
//! longer be looked up). Invariants checked after every operation:
//!
//! 1. Every returned value equals the model's: `call`/`try_call` return the pure value of
//!    (owner, method, argument), or the error; `get`/the `Ok` table's `get` return exactly the model's
//!    entry or `None`.
//! 2. A method runs exactly on a model miss (`call`, `try_call`), never on a hit, never for
//!    `get`/the `Ok` table's `get`; an `Err` is never stored.
//! 3. The registry holds exactly the model's entries of live owners (each key's token is
//!    held once or not at all; `Arc::weak_count` of each live owner equals its entries).
//! 4. Dead owners' entries: right after an owner is dropped its owner value is freed
//!    (`Weak::upgrade` is `None`); its entries may linger, but a dead entry never comes
//!    back once gone; `clear` and `clear` remove the dead entries of their
//!    scope too and count them; after `purge()` none remain, and purge returns exactly
//!    how many were present.
//! 5. Counts returned: `invalidate` (whether the model had the key), `invalidate_owner`
//!    (the model's entries of that owner), `clear` (the model's live entries
//!    of that method plus its dead entries present), `clear` (all entries present).
//! 6. `stats()` exactly: `entries` = live model entries + dead entries present; `hits`,
//!    `misses` (lookups of a method whose table exists; a `get` before any `call` counts
//!    nowhere); `purged` = dead entries that disappeared other than by `clear` or
//!    `clear`; `invalidated` = the sum of the counts returned; `discarded` = 0
//!    (one thread); `methods` = tables made; `purge_steps` grows by exactly one per lookup
//!    while the interval is 1, by none while it is 0, by at most one per lookup while 7.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Weak};

use proptest::prelude::*;
use weakmemo::Registry;

const ARGS: u8 = 4;
const TABLES: usize = 3;
/// Table indices: `call(one)`, `call(two)`, `try_call(fallible)`.
const ONE: usize = 0;
const TWO: usize = 1;
const FALLIBLE: usize = 2;

struct Owner {
    id: u64,
    /// One token per (table, argument); values of that key carry a clone.
    tokens: Vec<Arc<()>>,
    runs: Arc<AtomicUsize>,
}

#[derive(Clone, Debug)]
struct Value {
    n: u64,
    _token: Arc<()>,
}

fn pure(id: u64, table: usize, arg: u8) -> u64 {
    id * 100 + table as u64 * 10 + u64::from(arg)
}

fn fails(id: u64, arg: u8) -> bool {
    (id + u64::from(arg)) % 3 == 0
}

fn make(owner: &Owner, table: usize, arg: u8) -> Value {
    owner.runs.fetch_add(1, SeqCst);
    Value {
        n: pure(owner.id, table, arg),
        _token: owner.tokens[table * ARGS as usize + usize::from(arg)].clone(),
    }
}

fn one(owner: &Arc<Owner>, &arg: &u8) -> Value {
    make(owner, ONE, arg)
}

fn two(owner: &Arc<Owner>, &arg: &u8) -> Value {
    make(owner, TWO, arg)
}

fn fallible(owner: &Arc<Owner>, &arg: &u8) -> Result<Value, u8> {
    if fails(owner.id, arg) {
        owner.runs.fetch_add(1, SeqCst);
        Err(arg)
    } else {
        Ok(make(owner, FALLIBLE, arg))
    }
}

#[derive(Clone, Debug)]
enum Op {
    Create,
    Drop(usize),
    Call(usize, usize, u8),
    TryCall(usize, u8),
    Get(usize, usize, u8),
    GetOk(usize, u8),
    Invalidate(usize, usize, u8),
    InvalidateOwner(usize),
    InvalidateMethod(usize),
    Clear,
    Purge,
    SetInterval(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let owner = any::<usize>();
    prop_oneof![
        3 => Just(Op::Create),
        2 => owner.prop_map(Op::Drop),
        8 => (owner, 0..2usize, 0..ARGS).prop_map(|(o, m, a)| Op::Call(o, m, a)),
        3 => (owner, 0..ARGS).prop_map(|(o, a)| Op::TryCall(o, a)),
        3 => (owner, 0..2usize, 0..ARGS).prop_map(|(o, m, a)| Op::Get(o, m, a)),
        2 => (owner, 0..ARGS).prop_map(|(o, a)| Op::GetOk(o, a)),
        2 => (owner, 0..TABLES, 0..ARGS).prop_map(|(o, t, a)| Op::Invalidate(o, t, a)),
        1 => owner.prop_map(Op::InvalidateOwner),
        1 => (0..TABLES).prop_map(Op::InvalidateMethod),
        1 => Just(Op::Clear),
        2 => Just(Op::Purge),
        1 => prop::sample::select(vec![0usize, 1, 7]).prop_map(Op::SetInterval),
    ]
}

type Key = (usize, usize, u8); // (owner index, table, argument)

struct Record {
    arc: Option<Arc<Owner>>,
    watch: Weak<Owner>,
    tokens: Vec<Arc<()>>,
}

struct Model {
    cache: Registry,
    runs: Arc<AtomicUsize>,
    owners: Vec<Record>,
    /// Entries of live owners.
    live: BTreeMap<Key, u64>,
    /// Entries of dead owners still in the registry (exact after each check).
    dead: BTreeSet<Key>,
    /// Entries of dead owners seen gone: they must never come back.
    gone: BTreeSet<Key>,
    tables: [bool; TABLES],
    interval: usize,
    hits: u64,
    misses: u64,
    expected_runs: usize,
    purged: u64,
    invalidated: u64,
    steps_min: u64,
    steps_max: u64,
}

impl Model {
    fn new(interval: usize, shards: usize) -> Self {
        Self {
            cache: Registry::builder()
                .purge_interval(interval)
                .shards(shards)
                .build(),
            runs: Arc::default(),
            owners: Vec::new(),
            live: BTreeMap::new(),
            dead: BTreeSet::new(),
            gone: BTreeSet::new(),
            tables: [false; TABLES],
            interval,
            hits: 0,
            misses: 0,
            expected_runs: 0,
            purged: 0,
            invalidated: 0,
            steps_min: 0,
            steps_max: 0,
        }
    }

    fn create(&mut self) -> usize {
        let id = self.owners.len() as u64 + 1;
        let tokens: Vec<Arc<()>> = (0..TABLES * ARGS as usize).map(|_| Arc::new(())).collect();
        let arc = Arc::new(Owner {
            id,
            tokens: tokens.clone(),
            runs: self.runs.clone(),
        });
        self.owners.push(Record {
            watch: Arc::downgrade(&arc),
            arc: Some(arc),
            tokens,
        });
        self.owners.len() - 1
    }

    /// A live owner picked by `selector`, made if there is none.
    fn pick(&mut self, selector: usize) -> (usize, Arc<Owner>) {
        let alive: Vec<usize> = (0..self.owners.len())
            .filter(|&i| self.owners[i].arc.is_some())
            .collect();
        let index = if alive.is_empty() {
            self.create()
        } else {
            alive[selector % alive.len()]
        };
        (index, self.owners[index].arc.clone().unwrap())
    }

    /// Counts one lookup of a table that exists.
    fn lookup(&mut self, hit: bool) {
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        match self.interval {
            0 => {}
            1 => {
                self.steps_min += 1;
                self.steps_max += 1;
            }
            _ => self.steps_max += 1,
        }
    }

    /// How many copies of `key`'s value exist besides the model's and the owner's tokens:
    /// 1 if the registry holds the entry, else 0.
    fn held(&self, (owner, table, arg): Key) -> usize {
        let record = &self.owners[owner];
        let token = &record.tokens[table * ARGS as usize + usize::from(arg)];
        let others = 1 + usize::from(record.arc.is_some());
        let held = Arc::strong_count(token) - others;
        assert!(held <= 1, "{held} copies of {:?} held", (owner, table, arg));
        held
    }

    fn dead_present(&self) -> BTreeSet<Key> {
        self.dead
            .iter()
            .copied()
            .filter(|&key| self.held(key) == 1)
            .collect()
    }

    fn apply(&mut self, op: &Op) {
        let mut dead_removed_by_invalidation = false;
        match *op {
            Op::Create => {
                self.create();
            }
            Op::Drop(selector) => {
                let (index, arc) = self.pick(selector);
                drop(arc);
                self.owners[index].arc = None;
                assert!(
                    self.owners[index].watch.upgrade().is_none(),
                    "owner kept alive"
                );
                let keys: Vec<Key> = self
                    .live
                    .range((index, 0, 0)..(index + 1, 0, 0))
                    .map(|(k, _)| *k)
                    .collect();
                for key in keys {
                    self.live.remove(&key);
                    self.dead.insert(key);
                }
            }
            Op::Call(selector, method, arg) => {
                let (index, owner) = self.pick(selector);
                let key = (index, method, arg);
                let hit = self.live.contains_key(&key);
                self.tables[method] = true;
                self.lookup(hit);
                let got = if method == ONE {
                    self.cache.method(one).call(&owner, arg)
                } else {
                    self.cache.method(two).call(&owner, arg)
                };
                assert_eq!(got.n, pure(owner.id, method, arg));
                if !hit {
                    self.expected_runs += 1;
                    self.live.insert(key, got.n);
                }
            }
            Op::TryCall(selector, arg) => {
                let (index, owner) = self.pick(selector);
                let key = (index, FALLIBLE, arg);
                let hit = self.live.contains_key(&key);
                self.tables[FALLIBLE] = true;
                self.lookup(hit);
                let got = crate::common::ok_table(&self.cache, fallible).try_call(&owner, arg);
                if hit {
                    assert_eq!(got.unwrap().n, self.live[&key]);
                } else {
                    self.expected_runs += 1;
                    if fails(owner.id, arg) {
                        assert_eq!(got.unwrap_err(), arg);
                    } else {
                        let got = got.unwrap();
                        assert_eq!(got.n, pure(owner.id, FALLIBLE, arg));
                        self.live.insert(key, got.n);
                    }
                }
            }
            Op::Get(selector, method, arg) => {
                let (index, owner) = self.pick(selector);
                let want = self.live.get(&(index, method, arg)).copied();
                // A handle makes its method's table, so every lookup counts.
                self.tables[method] = true;
                self.lookup(want.is_some());
                let got = if method == ONE {
                    self.cache.method(one).get(&owner, &arg)
                } else {
                    self.cache.method(two).get(&owner, &arg)
                };
                assert_eq!(got.map(|v| v.n), want);
            }
            Op::GetOk(selector, arg) => {
                let (index, owner) = self.pick(selector);
                let want = self.live.get(&(index, FALLIBLE, arg)).copied();
                self.tables[FALLIBLE] = true;
                self.lookup(want.is_some());
                let got = crate::common::ok_table(&self.cache, fallible).get(&owner, &arg);
                assert_eq!(got.map(|v| v.n), want);
            }
            Op::Invalidate(selector, table, arg) => {
                let (index, owner) = self.pick(selector);
                let want = self.live.remove(&(index, table, arg)).is_some();
                self.tables[table] = true;
                let got = match table {
                    ONE => self.cache.method(one).invalidate(&owner, &arg),
                    TWO => self.cache.method(two).invalidate(&owner, &arg),
                    _ => crate::common::ok_table(&self.cache, fallible).invalidate(&owner, &arg),
                };
                assert_eq!(got, want);
                self.invalidated += u64::from(got);
            }
            Op::InvalidateOwner(selector) => {
                let (index, owner) = self.pick(selector);
                let before = self.live.len();
                self.live.retain(|&(o, _, _), _| o != index);
                let got = self.cache.invalidate_owner(&owner);
                assert_eq!(got, before - self.live.len());
                self.invalidated += got as u64;
            }
            Op::InvalidateMethod(table) => {
                let before = self.live.len();
                self.live.retain(|&(_, t, _), _| t != table);
                let dead_of_table = self.dead.iter().filter(|&&(_, t, _)| t == table).count();
                self.tables[table] = true;
                let got = match table {
                    ONE => self.cache.method(one).clear(),
                    TWO => self.cache.method(two).clear(),
                    _ => crate::common::ok_table(&self.cache, fallible).clear(),
                };
                assert_eq!(got, before - self.live.len() + dead_of_table);
                self.invalidated += got as u64;
                dead_removed_by_invalidation = true;
                let after = self.dead_present();
                assert!(
                    after.iter().all(|&(_, t, _)| t != table),
                    "dead entries left"
                );
                assert_eq!(
                    after.len(),
                    self.dead.len() - dead_of_table,
                    "others untouched"
                );
            }
            Op::Clear => {
                let got = self.cache.clear();
                assert_eq!(got, self.live.len() + self.dead.len());
                self.invalidated += got as u64;
                self.live.clear();
                dead_removed_by_invalidation = true;
                assert!(self.dead_present().is_empty());
            }
            Op::Purge => {
                let got = self.cache.purge();
                assert_eq!(
                    got,
                    self.dead.len(),
                    "purge returns the dead entries present"
                );
                assert!(self.dead_present().is_empty(), "purge left dead entries");
            }
            Op::SetInterval(interval) => {
                self.cache.set_purge_interval(interval);
                assert_eq!(self.cache.purge_interval(), interval);
                self.interval = interval;
            }
        }
        // Dead entries only ever disappear; count how, then keep the exact set.
        let present = self.dead_present();
        let vanished = self.dead.len() - present.len();
        self.gone.extend(self.dead.difference(&present).copied());
        if !dead_removed_by_invalidation {
            self.purged += vanished as u64;
        }
        self.dead = present;
        self.check();
    }

    fn check(&self) {
        // The registry holds exactly the live model entries, each value once.
        for (index, record) in self.owners.iter().enumerate() {
            let Some(arc) = &record.arc else { continue };
            let mut entries = 0;
            for table in 0..TABLES {
                for arg in 0..ARGS {
                    let key = (index, table, arg);
                    let held = self.held(key);
                    assert_eq!(held == 1, self.live.contains_key(&key), "entry {key:?}");
                    entries += held;
                }
            }
            // The model's own `watch` is one Weak; each entry holds one more.
            assert_eq!(
                Arc::weak_count(arc),
                1 + entries,
                "owner {index}: one Weak per entry"
            );
        }
        for &key in &self.gone {
            assert_eq!(self.held(key), 0, "dead entry {key:?} came back");
        }
        let stats = self.cache.stats();
        assert_eq!(
            stats.entries,
            self.live.len() + self.dead.len(),
            "entries: {stats:?}"
        );
        assert_eq!(stats.hits, self.hits, "hits");
        assert_eq!(stats.misses, self.misses, "misses");
        assert_eq!(stats.purged, self.purged, "purged");
        assert_eq!(stats.invalidated, self.invalidated, "invalidated");
        assert_eq!(stats.discarded, 0);
        assert_eq!(stats.methods, self.tables.iter().filter(|&&t| t).count());
        assert!(
            (self.steps_min..=self.steps_max).contains(&stats.purge_steps),
            "purge_steps {} not in {}..={}",
            stats.purge_steps,
            self.steps_min,
            self.steps_max
        );
        assert_eq!(self.runs.load(SeqCst), self.expected_runs, "method runs");
    }

    /// Ends the case: a purge leaves exactly the live entries; dropping every owner and
    /// purging again leaves nothing.
    fn finish(mut self) {
        self.apply(&Op::Purge);
        assert_eq!(self.cache.stats().entries, self.live.len());
        for index in 0..self.owners.len() {
            if self.owners[index].arc.is_some() {
                self.apply(&Op::Drop(0));
            }
        }
        self.apply(&Op::Purge);
        assert_eq!(self.cache.stats().entries, 0);
        let held: usize = self
            .owners
            .iter()
            .flat_map(|r| &r.tokens)
            .map(|t| Arc::strong_count(t) - 1)
            .sum();
        assert_eq!(held, 0, "every value was dropped");
    }
}

proptest! {
    // 256 cases unless PROPTEST_CASES says otherwise (for a longer search).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn registry_matches_the_model(
        interval in prop::sample::select(vec![0usize, 1, 7]),
        shards in prop::sample::select(vec![1usize, 4, 16]),
        ops in prop::collection::vec(op(), 1..64),
    ) {
        let mut model = Model::new(interval, shards);
        for op in &ops {
            model.apply(op);
        }
        model.finish();
    }
}

/// A fixed sequence that exercises each invariant once, so a regression shows without
/// relying on the random search.
#[test]
fn a_fixed_sequence_matches_the_model() {
    let mut model = Model::new(0, 1);
    use Op::*;
    for op in [
        Get(0, 0, 1),
        Call(0, 0, 1),
        Call(0, 0, 1),
        Call(0, 1, 2),
        TryCall(0, 0),
        TryCall(0, 2),
        GetOk(0, 2),
        Create,
        Call(1, 0, 1),
        Drop(0),
        Get(0, 0, 1),
        InvalidateMethod(ONE),
        Call(0, 0, 3),
        Drop(0),
        Purge,
        Create,
        Call(0, 1, 0),
        Call(0, 0, 0),
        SetInterval(1),
        Drop(0),
        Create,
        Call(0, 1, 1),
        Get(0, 1, 1),
        Invalidate(0, TWO, 1),
        InvalidateOwner(0),
        Clear,
    ] {
        model.apply(&op);
    }
    model.finish();
}
