//! The registry's books under contention: after every call has returned, the weight the
//! bounds count (`weight()`) equals the weight of the entries stored, each counted with
//! the weight it was stored with, whatever panics, failed methods, races, setting changes
//! and removals happened meanwhile; the removal listener is told of every removal exactly
//! once, and its reports per cause match the counters of `Stats`; no value is leaked or
//! dropped twice.
//!
//! Threads call two cached methods and a fallible one on a small key space of a few
//! owners, some of which are dropped and replaced, while another thread keeps changing
//! the settings (bounds, weighers, TTLs that never expire, single flight, the purge
//! interval) and removing entries (`invalidate*`, `clear`, `purge`). Some calls panic in
//! their method; the fallible method fails now and then.
//!
//! To know the weight each entry was stored with, every computation has a unique id in
//! its value, and every weigher records the weight it gives each id: an entry of id `i`
//! was stored with the weight its weigher gave `i`, whichever weigher was in force then.
//! The weighers are set, and each method's table made by one first call, before the
//! threads start, so no entry is weighed without one (a table made by racing first calls
//! is pinned by the last test: a weigher set before them weighs their entries too).
//!
//! The audit after the threads have joined: `purge()`, then the entries stored are the
//! values `get`/the `Ok` table's `get` find over the live owners, keys and methods (no TTL expires, and
//! the purge removed every dead owner's entry, so `Stats::entries` must be their number);
//! `weight()` must be the sum of their recorded weights; no id was reported removed
//! twice, nor any still stored; `clear()` then reports each of them once, and leaves a
//! weight of 0 and no entries; the listener's `Collected`, `Explicit` and `Expired`
//! reports equal `purged`, `invalidated` and `expired`, and its `Size` reports are at
//! most `evicted` (which also counts newcomers kept out); once everything is dropped,
//! every value copy is gone.
//!
//! Two narrower tests pin the moments where the books are most easily lost: a bound
//! made (the method's first, or the registry's first) while stores and removals are
//! under way, and a method's table made by racing first calls after its weigher was set.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex, Weak};
use std::thread;
use std::time::Duration;

use common::{Rng, arm, armed, panic_message, watchdog};
use weakmemo::{Registry, Removal, RemovalCause, Stats};

use RemovalCause::{Collected, Expired, Explicit, Size};

/// The payload of a method that panics on purpose.
const PANICS: &str = "the method panics on purpose";

/// What one test's values share: the source of computation ids and the count of live
/// value copies.
#[derive(Debug, Default)]
struct Books {
    next_id: AtomicU64,
    live: AtomicIsize,
}

struct Owner {
    id: u64,
    books: Arc<Books>,
}

/// A cached value: which computation made it, for which (owner, method, key), and `w`,
/// the weight its weighers multiply. Counts its live copies in its [`Books`].
#[derive(Debug)]
struct Item {
    id: u64,
    owner: u64,
    method: u8,
    key: u32,
    w: u32,
    books: Arc<Books>,
}

impl Item {
    fn new(owner: &Owner, method: u8, key: u32) -> Self {
        owner.books.live.fetch_add(1, SeqCst);
        Self {
            id: owner.books.next_id.fetch_add(1, SeqCst),
            owner: owner.id,
            method,
            key,
            w: key % 4,
            books: Arc::clone(&owner.books),
        }
    }

    /// Whether this is a value of (owner, method, key).
    fn is_of(&self, owner: u64, method: u8, key: u32) -> bool {
        (self.owner, self.method, self.key, self.w) == (owner, method, key, key % 4)
    }
}

impl Clone for Item {
    fn clone(&self) -> Self {
        self.books.live.fetch_add(1, SeqCst);
        Self {
            books: Arc::clone(&self.books),
            ..*self
        }
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        self.books.live.fetch_sub(1, SeqCst);
    }
}

/// Runs a method: panics if this thread is [`armed`], else makes a new value.
fn compute(owner: &Owner, method: u8, key: u32) -> Item {
    if armed() {
        panic!("{PANICS}");
    }
    Item::new(owner, method, key)
}

fn alpha(owner: &Arc<Owner>, &key: &u32) -> Item {
    compute(owner, 0, key)
}

fn beta(owner: &Arc<Owner>, &key: &u32) -> Item {
    compute(owner, 1, key)
}

/// Fails for one computation in four; the error is a counted value too.
fn gamma(owner: &Arc<Owner>, &key: &u32) -> Result<Item, Item> {
    let item = compute(owner, 2, key);
    if item.id % 4 == 0 {
        Err(item)
    } else {
        Ok(item)
    }
}

/// The weight each weigher gave each computation id.
type Weighed = Arc<Mutex<HashMap<u64, u32>>>;

/// A weigher giving `w × factor`, and recording it. An entry is weighed once, when it is
/// stored: weighing one computation twice is a failure.
fn weigher(factor: u32, weighed: &Weighed) -> impl Fn(&u32, &Item) -> u32 + Send + Sync + 'static {
    let weighed = Arc::clone(weighed);
    move |_, item| {
        let weight = item.w * factor;
        let before = weighed.lock().unwrap().insert(item.id, weight);
        assert!(before.is_none(), "computation {} weighed twice", item.id);
        weight
    }
}

/// Sets method `method`'s weigher to `w × factor`.
fn set_weigher(cache: &Registry, method: u64, factor: u32, weighed: &Weighed) {
    match method {
        0 => cache
            .method(alpha)
            .set_weigher(Some(std::sync::Arc::new(weigher(factor, weighed)))),
        1 => cache
            .method(beta)
            .set_weigher(Some(std::sync::Arc::new(weigher(factor, weighed)))),
        _ => common::ok_table(cache, gamma)
            .set_weigher(Some(std::sync::Arc::new(weigher(factor, weighed)))),
    }
}

/// The listener's view: the id and cause of each removal, in order.
type Reports = Arc<Mutex<Vec<(u64, RemovalCause)>>>;

fn listen(cache: &Registry) -> Reports {
    let reports = Reports::default();
    let seen = Arc::clone(&reports);
    cache.set_removal_listener(Some(Arc::new(move |removal: &Removal<'_>| {
        let item = removal.value::<Item>().expect("every value is an Item");
        seen.lock().unwrap().push((item.id, removal.cause()));
    })));
    reports
}

/// What a run does; every run has three calling threads and one that changes settings
/// and removes entries (the test's thread).
#[derive(Clone, Copy)]
struct Plan {
    seed: u64,
    shards: usize,
    owners: usize,
    keys: u64,
    /// Calls each of the three callers makes.
    calls: usize,
    /// Changes (or removals) the fourth thread makes.
    changes: usize,
    /// Which settings the fourth thread changes.
    method_bounds: bool,
    registry_bound: bool,
    weighers: bool,
    /// TTLs (none, or `Duration::MAX`), single flight and the purge interval.
    switches: bool,
    /// `invalidate*`, `clear`, `purge`.
    removals: bool,
}

/// Owners by slot; replacing one drops the old owner (once no call holds it).
type Slots = Mutex<Vec<Arc<Owner>>>;

struct Run {
    plan: Plan,
    cache: Registry,
    books: Arc<Books>,
    weighed: Weighed,
    reports: Reports,
    slots: Slots,
    next_owner: AtomicU64,
}

impl Run {
    fn new(plan: Plan) -> Self {
        common::quiet_panics(PANICS);
        let cache = Registry::builder()
            .shards(plan.shards)
            .purge_interval(7)
            .build();
        let reports = listen(&cache);
        let weighed = Weighed::default();
        // Every entry is weighed by a recording weigher, from the first call on.
        for method in 0..3 {
            set_weigher(&cache, method, 1, &weighed);
        }
        let books = Arc::new(Books::default());
        let run = Self {
            plan,
            cache,
            books,
            weighed,
            reports,
            slots: Mutex::new(Vec::new()),
            next_owner: AtomicU64::new(0),
        };
        let owners: Vec<_> = (0..plan.owners).map(|_| run.new_owner()).collect();
        // The tables are made now, with their weighers, before the threads race: a table
        // made by racing first calls is the concern of
        // `a_weigher_set_before_the_first_call_weighs_every_entry`.
        let first = &owners[0];
        run.cache.method(alpha).call(first, 0);
        run.cache.method(beta).call(first, 0);
        let _ = run.cache.method(gamma).try_call(first, 0);
        run.cache.invalidate_owner(first);
        *run.slots.lock().unwrap() = owners;
        run
    }

    fn new_owner(&self) -> Arc<Owner> {
        Arc::new(Owner {
            id: self.next_owner.fetch_add(1, SeqCst),
            books: Arc::clone(&self.books),
        })
    }

    fn owner(&self, rng: &mut Rng) -> Arc<Owner> {
        let slots = self.slots.lock().unwrap();
        Arc::clone(&slots[rng.below(slots.len() as u64) as usize])
    }

    /// Drops the owner of a slot (its entries become dead owners') for a new one.
    fn replace_owner(&self, rng: &mut Rng) {
        let owner = self.new_owner();
        let mut slots = self.slots.lock().unwrap();
        let slot = rng.below(slots.len() as u64) as usize;
        slots[slot] = owner;
    }

    /// One call, `get` or the `Ok` table's `get` of a random owner, method and key; one call in eight
    /// panics in its method if it runs it.
    fn call(&self, rng: &mut Rng) {
        let owner = self.owner(rng);
        let key = rng.below(self.plan.keys) as u32;
        let method = rng.below(3);
        if rng.below(10) == 0 {
            let found = match method {
                0 => self.cache.method(alpha).get(&owner, &key),
                1 => self.cache.method(beta).get(&owner, &key),
                _ => common::ok_table(&self.cache, gamma).get(&owner, &key),
            };
            if let Some(item) = found {
                assert!(item.is_of(owner.id, method as u8, key), "get: {item:?}");
            }
            return;
        }
        let panics = rng.below(8) == 0;
        arm(panics);
        let called = catch_unwind(AssertUnwindSafe(|| match method {
            0 => Ok(self.cache.method(alpha).call(&owner, key)),
            1 => Ok(self.cache.method(beta).call(&owner, key)),
            _ => common::ok_table(&self.cache, gamma).try_call(&owner, key),
        }));
        arm(false);
        match called {
            Ok(Ok(item) | Err(item)) => {
                assert!(item.is_of(owner.id, method as u8, key), "call: {item:?}");
            }
            Err(payload) => {
                let message = panic_message(&*payload);
                assert!(panics && message == PANICS, "a call panicked: {message}");
            }
        }
    }

    /// One setting change or removal, of those the plan allows.
    fn change(&self, rng: &mut Rng) {
        let plan = self.plan;
        let cache = &self.cache;
        let method = rng.below(3);
        let bound =
            |rng: &mut Rng, most: u64| (rng.below(4) > 0).then(|| rng.below(most + 1) as usize);
        let enabled = |pick| match pick {
            0 => plan.method_bounds,
            1 => plan.registry_bound,
            2 => plan.weighers,
            3..=5 => plan.switches,
            6 | 7 => plan.removals,
            _ => true,
        };
        let pick = loop {
            let pick = rng.below(9);
            if enabled(pick) {
                break pick;
            }
        };
        match pick {
            0 => {
                let capacity = bound(rng, 16);
                match method {
                    0 => cache.method(alpha).set_capacity(capacity),
                    1 => cache.method(beta).set_capacity(capacity),
                    _ => common::ok_table(cache, gamma).set_capacity(capacity),
                }
            }
            1 => cache.set_capacity(bound(rng, 40)),
            2 => {
                let factor = rng.below(4) as u32;
                set_weigher(cache, method, factor, &self.weighed);
            }
            3 => {
                let ttl = (rng.below(2) == 0).then_some(Duration::MAX);
                match rng.below(4) {
                    0 => cache.set_ttl(ttl),
                    1 => cache.method(alpha).set_ttl(ttl),
                    2 => cache.method(beta).set_ttl(ttl),
                    _ => common::ok_table(cache, gamma).set_ttl(ttl),
                }
            }
            4 => cache.set_single_flight(rng.below(2) == 0),
            5 => {
                cache.set_purge_interval([0, 1, 7, 64][rng.below(4) as usize]);
            }
            6 => {
                let owner = self.owner(rng);
                let key = rng.below(plan.keys) as u32;
                match rng.below(5) {
                    0 => {
                        cache.method(alpha).invalidate(&owner, &key);
                    }
                    1 => {
                        common::ok_table(cache, gamma).invalidate(&owner, &key);
                    }
                    2 => {
                        cache.invalidate_owner(&owner);
                    }
                    3 => {
                        cache.method(beta).invalidate_owner(&owner);
                    }
                    _ => {
                        common::ok_table(cache, gamma).clear();
                    }
                }
            }
            7 => match rng.below(8) {
                0 => {
                    cache.clear();
                }
                _ => {
                    cache.purge();
                }
            },
            _ => self.replace_owner(rng),
        }
    }

    /// Runs the plan's threads to the end, then audits the books. The fourth thread
    /// spreads its changes over the callers' first four fifths of calls, the callers and
    /// it keeping pace with each other (neither runs more than a few calls ahead); the
    /// callers' last calls, under the settings left, store entries for the audit to find.
    fn run(self) {
        let plan = self.plan;
        let start = Barrier::new(4);
        // Calls made, changes made, and whether changes are still being made.
        let calls = AtomicUsize::new(0);
        let changes = AtomicUsize::new(0);
        let changing = AtomicBool::new(true);
        // Calls per change, in thousandths.
        let pace = 3 * plan.calls * 4 / 5 * 1000 / plan.changes;
        thread::scope(|scope| {
            for t in 0..3 {
                let (run, start) = (&self, &start);
                let (calls, changes, changing) = (&calls, &changes, &changing);
                scope.spawn(move || {
                    let mut rng = Rng::new(plan.seed * 10 + t);
                    start.wait();
                    for _ in 0..plan.calls {
                        while changing.load(SeqCst)
                            && calls.load(SeqCst) > (changes.load(SeqCst) + 1) * pace / 1000 + 16
                        {
                            thread::yield_now();
                        }
                        run.call(&mut rng);
                        calls.fetch_add(1, SeqCst);
                    }
                });
            }
            let mut rng = Rng::new(plan.seed * 10 + 9);
            start.wait();
            for change in 0..plan.changes {
                while calls.load(SeqCst) < change * pace / 1000 {
                    thread::yield_now();
                }
                self.change(&mut rng);
                changes.fetch_add(1, SeqCst);
            }
            changing.store(false, SeqCst);
        });
        self.audit();
    }

    /// The ids of the entries stored, with the weight each was stored with, found by
    /// `get` and the `Ok` table's `get` over the live owners, methods and keys.
    fn stored(&self) -> BTreeMap<u64, u32> {
        let weighed = self.weighed.lock().unwrap().clone();
        let mut stored = BTreeMap::new();
        let owners = self.slots.lock().unwrap().clone();
        for owner in &owners {
            for key in 0..self.plan.keys as u32 {
                let found = [
                    self.cache.method(alpha).get(owner, &key),
                    self.cache.method(beta).get(owner, &key),
                    common::ok_table(&self.cache, gamma).get(owner, &key),
                ];
                for (method, item) in found.into_iter().enumerate() {
                    let Some(item) = item else { continue };
                    assert!(item.is_of(owner.id, method as u8, key), "{item:?}");
                    let weight = *weighed
                        .get(&item.id)
                        .unwrap_or_else(|| panic!("{item:?} stored, never weighed"));
                    assert!(stored.insert(item.id, weight).is_none(), "{item:?} twice");
                }
            }
        }
        stored
    }

    fn audit(self) {
        let cache = &self.cache;
        cache.purge();
        let stored = self.stored();
        let stats = cache.stats();
        assert_eq!(
            stats.entries,
            stored.len(),
            "after purge(), every entry is a live owner's, which get finds"
        );
        let expected: usize = stored.values().map(|&w| w as usize).sum();
        assert_eq!(
            cache.weight(),
            expected,
            "weight() vs the weights the {} entries were stored with",
            stored.len()
        );
        if let Some(capacity) = cache.capacity() {
            assert!(
                expected <= capacity,
                "entries weighing {expected} stored over the registry's bound {capacity}, \
                 once every call returned"
            );
        }
        let before: Vec<(u64, RemovalCause)> = self.reports.lock().unwrap().clone();
        let mut reported = BTreeSet::new();
        for &(id, cause) in &before {
            assert!(
                reported.insert(id),
                "computation {id} reported twice ({cause:?})"
            );
            assert!(
                !stored.contains_key(&id),
                "computation {id} reported, still stored"
            );
        }
        let weighed = self.weighed.lock().unwrap().clone();
        let unweighed: Vec<_> = before
            .iter()
            .filter(|(id, _)| !weighed.contains_key(id))
            .collect();
        assert!(
            unweighed.is_empty(),
            "removals reported of values never weighed, so never stored: {unweighed:?}"
        );

        assert_eq!(
            cache.clear(),
            stored.len(),
            "clear() removes what get found"
        );
        assert_eq!(cache.weight(), 0, "weight() after clear()");
        let stats_after = cache.stats();
        assert_eq!(stats_after.entries, 0, "entries after clear()");
        let reports: Vec<(u64, RemovalCause)> = self.reports.lock().unwrap().clone();
        let cleared: BTreeMap<u64, RemovalCause> =
            reports[before.len()..].iter().copied().collect();
        assert_eq!(
            reports.len() - before.len(),
            cleared.len(),
            "clear() reported an entry twice"
        );
        assert_eq!(
            cleared.keys().copied().collect::<Vec<_>>(),
            stored.keys().copied().collect::<Vec<_>>(),
            "clear() reports exactly the entries stored"
        );
        assert!(cleared.values().all(|&cause| cause == Explicit));
        assert_counts(&reports, stats_after);
        assert_eq!(stats_after.expired, 0, "no TTL expires");
        assert_eq!(
            self.books.live.load(SeqCst),
            0,
            "value copies left after clear(), every call returned"
        );

        // Everything dropped: no copy of a value is left, none was dropped twice.
        let books = Arc::clone(&self.books);
        let owners: Vec<Weak<Owner>> = {
            let slots = self.slots.lock().unwrap();
            slots.iter().map(Arc::downgrade).collect()
        };
        drop(self);
        assert!(
            owners.iter().all(|owner| owner.upgrade().is_none()),
            "the registry kept an owner alive"
        );
        assert_eq!(
            books.live.load(SeqCst),
            0,
            "live value copies after the end"
        );
    }
}

/// The listener's reports per cause equal the counters of `stats`; `Size` reports are at
/// most `evicted`, which also counts newcomers kept out.
fn assert_counts(reports: &[(u64, RemovalCause)], stats: Stats) {
    let count = |cause| reports.iter().filter(|&&(_, c)| c == cause).count() as u64;
    assert_eq!(
        count(Collected),
        stats.purged,
        "Collected reports vs purged"
    );
    assert_eq!(
        count(Explicit),
        stats.invalidated,
        "Explicit reports vs invalidated"
    );
    assert_eq!(count(Expired), stats.expired, "Expired reports vs expired");
    assert!(
        count(Size) <= stats.evicted,
        "{} Size reports, more than evicted {}",
        count(Size),
        stats.evicted
    );
}

const EVERYTHING: Plan = Plan {
    seed: 1,
    shards: 4,
    owners: 5,
    keys: 8,
    calls: 1_500,
    changes: 600,
    method_bounds: true,
    registry_bound: true,
    weighers: true,
    switches: true,
    removals: true,
};

/// Every setting changing at once beside calls, panics, failures and removals: the
/// weight counted is the weight stored, and every removal is reported once.
#[test]
fn the_books_balance_whatever_changes_meanwhile() {
    watchdog(Duration::from_secs(20), || {
        for seed in 1..=6 {
            Run::new(Plan { seed, ..EVERYTHING }).run();
        }
    });
}

/// Weighers changed while method bounds are raised, lowered and lifted, on a hot key
/// space (many callers of one key at once: single flight's forced stores), with no
/// registry bound and no removals but owners replaced: each entry's weight is given back
/// as it was counted.
#[test]
fn method_bounds_and_weighers_changing_keep_the_weight_exact() {
    watchdog(Duration::from_secs(20), || {
        Run::new(Plan {
            seed: 3,
            owners: 3,
            keys: 3,
            registry_bound: false,
            switches: false,
            removals: false,
            ..EVERYTHING
        })
        .run();
    });
}

/// The registry's bound set, changed and lifted while methods have no bound of their
/// own, with removals and owners replaced: the weight counted for it is exact, and every
/// removal is reported once.
#[test]
fn a_registry_bound_changing_keeps_the_weight_exact() {
    watchdog(Duration::from_secs(20), || {
        Run::new(Plan {
            seed: 4,
            method_bounds: false,
            switches: false,
            ..EVERYTHING
        })
        .run();
    });
}

/// No bound at all, only weighers, switches and removals: `weight()` still counts every
/// method's entries (a bound set later must find them counted).
#[test]
fn unbounded_methods_weight_is_counted_too() {
    watchdog(Duration::from_secs(20), || {
        Run::new(Plan {
            seed: 5,
            shards: 1,
            method_bounds: false,
            registry_bound: false,
            ..EVERYTHING
        })
        .run();
    });
}

/// A weigher set before a method's first call weighs every entry the method stores, the
/// first ones too, even when several threads make those first calls at once (and so race
/// to make the method's table): no entry is stored unweighed (with weight 1, which no
/// weigher gave), and `weight()` is the weight the weigher gave. The registry has a bound
/// from the start, so the tables count their weight from when they are made.
#[test]
fn a_weigher_set_before_the_first_call_weighs_every_entry() {
    common::quiet_panics(PANICS);
    watchdog(Duration::from_secs(20), || {
        for round in 0..1_000 {
            let cache = Registry::builder().shards(1).capacity(1_000).build();
            let weighed = Weighed::default();
            set_weigher(&cache, 0, 2, &weighed);
            let books = Arc::new(Books::default());
            let owner = Arc::new(Owner {
                id: round,
                books: Arc::clone(&books),
            });
            let start = Barrier::new(4);
            thread::scope(|scope| {
                for t in 0..4u32 {
                    let (cache, owner, start) = (&cache, &owner, &start);
                    scope.spawn(move || {
                        start.wait();
                        for key in 0..4 {
                            cache.method(alpha).call(owner, t * 4 + key);
                        }
                    });
                }
            });
            let weighed = weighed.lock().unwrap().clone();
            let mut expected = 0;
            for key in 0..16 {
                let item = cache
                    .method(alpha)
                    .get(&owner, &key)
                    .expect("no bound is reached");
                let weight = weighed.get(&item.id).copied();
                assert_eq!(
                    weight,
                    Some(item.w * 2),
                    "round {round}: key {key} stored without its weigher"
                );
                expected += item.w as usize * 2;
            }
            assert_eq!(cache.weight(), expected, "round {round}: weight()");
            cache.clear();
            assert_eq!(books.live.load(SeqCst), 0, "round {round}: live copies");
        }
    });
}

/// A bound made while calls store and invalidations remove entries (the method's first
/// bound, or the registry's first, which starts counting every method's weight) counts
/// exactly the weight stored: an entry stored or removed while the bound is being made
/// is counted once, or not at all if it is gone. The bound is never reached.
#[test]
fn a_bound_made_while_calls_run_counts_the_weight_stored() {
    common::quiet_panics(PANICS);
    watchdog(Duration::from_secs(20), || {
        for round in 0..300u64 {
            let cache = Registry::builder().shards(4).build();
            let weighed = Weighed::default();
            set_weigher(&cache, 0, 1, &weighed);
            let books = Arc::new(Books::default());
            let owner = Arc::new(Owner {
                id: round,
                books: Arc::clone(&books),
            });
            // The table, made with its weigher before the threads start.
            cache.method(alpha).call(&owner, 0);
            let start = Barrier::new(4);
            thread::scope(|scope| {
                for t in 0..3 {
                    let (cache, owner, start) = (&cache, &owner, &start);
                    scope.spawn(move || {
                        let mut rng = Rng::new(round * 4 + t);
                        start.wait();
                        for _ in 0..300 {
                            let key = rng.below(16) as u32;
                            if rng.below(3) == 0 {
                                cache.method(alpha).invalidate(owner, &key);
                            } else {
                                cache.method(alpha).call(owner, key);
                            }
                        }
                    });
                }
                start.wait();
                for _ in 0..round % 7 * 10 {
                    thread::yield_now();
                }
                if round % 2 == 0 {
                    cache.method(alpha).set_capacity(Some(1_000));
                } else {
                    cache.set_capacity(Some(1_000));
                }
            });
            let weighed = weighed.lock().unwrap().clone();
            let mut expected = 0;
            for key in 0..16 {
                if let Some(item) = cache.method(alpha).get(&owner, &key) {
                    expected += weighed[&item.id] as usize;
                }
            }
            assert_eq!(cache.weight(), expected, "round {round}: weight()");
            cache.clear();
            assert_eq!(cache.weight(), 0, "round {round}: weight() after clear()");
            assert_eq!(books.live.load(SeqCst), 0, "round {round}: live copies");
        }
    });
}
