//! Regression tests for defects an adversarial suite found, each reproduced through the
//! public API and pinned by the behaviour the fix must give:
//!
//! - a `Drop` panic in a lazy purge step leaves no key pending forever;
//! - a method bound set during traffic, and bounds toggled during traffic, count every
//!   entry: `weight()` is what is stored, and a bound is met;
//! - a byte budget allocates memory by the entries held, not by the budget;
//! - an entry stored despite admission and removed at once releases no weight it never
//!   added; an `Eq` panic or a `Clone` panic while storing leaks no room, and loses no
//!   removal from the counters or the listener;
//! - a weigher set before the first call weighs the racing first stores;
//! - `join!` of one key inside a cached async fn shares one computation, while a branch
//!   awaiting its own computation's key is still a recursion;
//! - a call begun after an invalidation never receives a value computed before it;
//! - one fn used as a sync and as an async method makes two methods;
//! - a refused recursion drops its arguments outside the registry's locks.
//!
//! Every test body runs under the watchdog, so a hang fails instead of stalling the run;
//! the tests of this file take one lock in turn, so that the allocation measurement and
//! the races run undisturbed by each other.

use crate::common;

use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::alloc::held_here;
use common::{Recorder, Rng, arm, armed, panic_message, watchdog};
use weakmemo::{Awaits, Registry, RemovalCause, Returns};

const LIMIT: Duration = Duration::from_secs(20);
const RECURSIVE: &str = "recursive call for the same key";

/// Runs the tests of this file one at a time (a failed one poisons nothing).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------
// Small helpers.

/// Polls `future` to its end with a waker that does nothing (for futures that make
/// progress at every poll, as the ones here do).
fn drive<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Pending at its first poll (without waking anyone), ready at the second.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Waits (up to `limit`) until `done` holds; returns whether it did.
fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

// ---------------------------------------------------------------------------------------
// 1. A `Drop` panic in the lazy purge step of a miss.

/// A value whose `Drop` panics while this thread is armed, if it has a fuse.
#[derive(Clone, Debug)]
struct Bomb {
    n: u64,
    fuse: bool,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.fuse && armed() {
            panic!("bomb went off");
        }
    }
}

/// Key 0's value has a fuse; every other key's is harmless.
fn bomb(owner: &Arc<u64>, &k: &u64) -> Bomb {
    Bomb {
        n: **owner * 1000 + k,
        fuse: k == 0,
    }
}

/// A miss whose purge step drops a dead owner's value, whose `Drop` panics, leaves its
/// key usable: the call either returns the right value or panics with the `Drop`'s own
/// payload, and afterwards the key answers on this thread (no "recursive call") and on
/// another (no hang); the dead entry is counted once in `purged`.
#[test]
fn a_drop_panic_in_the_purge_step_of_a_miss_leaves_no_key_pending() {
    let _serial = serial();
    watchdog(Duration::from_secs(10), || {
        // One shard, a step at every lookup: the miss's step reaches the dead entry.
        let registry = Registry::builder().purge_interval(1).shards(1).build();
        let dead = Arc::new(1u64);
        let live = Arc::new(2u64);
        drop(registry.method(bomb).call(&dead, 0)); // disarmed: the returned copy is harmless
        drop(dead);

        arm(true);
        let first = catch_unwind(AssertUnwindSafe(|| registry.method(bomb).call(&live, 1).n));
        arm(false);
        match first {
            Ok(n) => assert_eq!(n, 2001),
            Err(payload) => assert_eq!(panic_message(&*payload), "bomb went off"),
        }

        let again = catch_unwind(AssertUnwindSafe(|| registry.method(bomb).call(&live, 1).n));
        match again {
            Ok(n) => assert_eq!(n, 2001),
            Err(payload) => panic!(
                "the key is left unusable on this thread: {}",
                panic_message(&*payload)
            ),
        }
        let from_another =
            thread::scope(|s| s.spawn(|| registry.method(bomb).call(&live, 1).n).join());
        assert_eq!(from_another.unwrap(), 2001);
        assert_eq!(registry.stats().purged, 1, "the dead entry is counted once");
    });
}

// ---------------------------------------------------------------------------------------
// 2. A method bound first set while other threads store.

fn fresh(owner: &Arc<u64>, &k: &u64) -> u64 {
    **owner ^ k
}

/// A method bound first set while two threads store fresh keys counts every entry:
/// once they end (and a few more misses meet the bound), `weight()` equals the entries
/// held and they are within the bound. (Before the fix, entries stored while the bound
/// was being made were never counted, and stayed above it for good. Many shards make
/// that moment, which visits every shard, long enough to meet stores in most rounds.)
#[test]
fn a_method_bound_set_during_traffic_counts_every_entry() {
    const BOUND: usize = 1000;
    let _serial = serial();
    watchdog(Duration::from_secs(60), || {
        for round in 0..8 {
            let registry = Registry::builder().shards(1 << 14).build();
            let owner = Arc::new(round);
            let progress = AtomicU64::new(0);
            let stop = AtomicBool::new(false);
            thread::scope(|s| {
                for t in 0..2u64 {
                    let (registry, owner, progress, stop) = (&registry, &owner, &progress, &stop);
                    s.spawn(move || {
                        let mut i = 0;
                        while !stop.load(SeqCst) {
                            registry.method(fresh).call(owner, t << 32 | i);
                            progress.fetch_add(1, SeqCst);
                            i += 1;
                        }
                    });
                }
                while progress.load(SeqCst) < 200 {
                    thread::yield_now();
                }
                registry.method(fresh).set_capacity(Some(BOUND));
                let after = progress.load(SeqCst) + 2000;
                while progress.load(SeqCst) < after {
                    thread::yield_now();
                }
                stop.store(true, SeqCst);
            });
            for i in 0..20 {
                registry.method(fresh).call(&owner, u64::MAX - i);
            }
            let entries = registry.stats().entries;
            assert_eq!(
                registry.weight(),
                entries,
                "round {round}: the weight is the entries held (weight 1 each)"
            );
            assert!(
                entries <= BOUND,
                "round {round}: {entries} entries held under a bound of {BOUND}"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// 3. Memory of a byte budget.

/// Eight distinct methods: `sized::<0>` to `sized::<7>`.
fn sized<const N: u64>(owner: &Arc<u64>, &k: &u64) -> Vec<u8> {
    vec![(N + k) as u8; 100 + **owner as usize]
}

/// Weighs `sized::<N>` by its bytes, and stores a few entries of it.
fn fill_sized<const N: u64>(registry: &Registry, owner: &Arc<u64>, bound_it: bool) {
    registry
        .method(sized::<N>)
        .set_weigher(Some(std::sync::Arc::new(|_: &u64, bytes: &Vec<u8>| {
            bytes.len() as u32
        })));
    if bound_it {
        registry.method(sized::<N>).set_capacity(Some(1 << 20));
    }
    for k in 0..4 {
        assert_eq!(
            registry.method(sized::<N>).call(owner, k).len(),
            100 + **owner as usize
        );
    }
}

/// Bounds eight weighed methods (each by a 1 MiB method bound, or all by a 1 MiB
/// registry bound) and stores a few entries in each; fails as soon as this thread has
/// allocated `limit` bytes for them.
fn measure_byte_budgets(bound_methods: bool, limit: isize) {
    let registry = Registry::new();
    let owner = Arc::new(0u64);
    let before = held_here();
    if !bound_methods {
        registry.set_capacity(Some(1 << 20));
    }
    let steps: [fn(&Registry, &Arc<u64>, bool); 8] = [
        fill_sized::<0>,
        fill_sized::<1>,
        fill_sized::<2>,
        fill_sized::<3>,
        fill_sized::<4>,
        fill_sized::<5>,
        fill_sized::<6>,
        fill_sized::<7>,
    ];
    for (methods, step) in (1..).zip(steps) {
        step(&registry, &owner, bound_methods);
        let held = held_here() - before;
        assert!(
            held < limit,
            "{methods} weighed method(s) of 4 entries under a 1 MiB budget hold {held} bytes"
        );
    }
    assert_eq!(registry.stats().entries, 32);
}

/// A method bound in bytes costs memory by the entries held: eight weighed methods
/// bounded to 1 MiB each, with four small entries each, allocate well under 8 MiB
/// (before the fix, a sketch sized by the bound in weight units: 16 MiB per method).
#[test]
fn a_method_byte_budget_allocates_by_the_entries_held() {
    let _serial = serial();
    watchdog(LIMIT, || measure_byte_budgets(true, 8 << 20));
}

/// The same for a registry bound of 1 MiB over eight weighed methods.
#[test]
fn a_registry_byte_budget_allocates_by_the_entries_held() {
    let _serial = serial();
    watchdog(LIMIT, || measure_byte_budgets(false, 8 << 20));
}

// ---------------------------------------------------------------------------------------
// 4. An entry stored despite admission, removed before it is counted.

const NEWCOMER: u64 = 99;

fn heft(k: u64) -> u32 {
    if k == NEWCOMER { 40 } else { 10 }
}

async fn slow_weighed(owner: &Arc<u64>, &k: &u64) -> u64 {
    YieldOnce(false).await;
    **owner * 1000 + k
}

/// A waker that invalidates one key the first time it is woken.
struct InvalidateOnWake {
    registry: &'static Registry,
    owner: Arc<u64>,
    fired: AtomicBool,
}

impl Wake for InvalidateOnWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.fired.swap(true, SeqCst) {
            self.registry
                .method(slow_weighed)
                .invalidate(&self.owner, &NEWCOMER);
        }
    }
}

/// A newcomer the bound refuses, stored all the same because a task waits for it, and
/// invalidated by that task's waker the moment it is stored, releases no weight it never
/// added: once everything settles, `weight()` is the sum of the weights of the entries
/// present, and 0 after `clear()`.
#[test]
fn an_entry_stored_despite_admission_and_removed_at_once_leaves_no_phantom_weight() {
    let _serial = serial();
    watchdog(LIMIT, || {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
        registry
            .method(slow_weighed)
            .set_weigher(Some(std::sync::Arc::new(|&k: &u64, _: &u64| heft(k))));
        registry.method(slow_weighed).set_capacity(Some(50));
        let owner = Arc::new(7u64);
        // Full of hot entries: 3 × 10 of 50, so a newcomer of 40 must be admitted.
        for k in 1..=3 {
            assert_eq!(
                drive(registry.method(slow_weighed).call_async(&owner, k)),
                7000 + k
            );
            for _ in 0..3 {
                assert_eq!(
                    registry.method(slow_weighed).get(&owner, &k),
                    Some(7000 + k)
                );
            }
        }
        assert_eq!(registry.weight(), 30);

        let mut computing = pin!(registry.method(slow_weighed).call_async(&owner, NEWCOMER));
        let mut waiting = pin!(registry.method(slow_weighed).call_async(&owner, NEWCOMER));
        let mut quiet = Context::from_waker(Waker::noop());
        assert!(computing.as_mut().poll(&mut quiet).is_pending(), "claimed");
        let waker = Arc::new(InvalidateOnWake {
            registry,
            owner: Arc::clone(&owner),
            fired: AtomicBool::new(false),
        });
        let waker = Waker::from(Arc::clone(&waker));
        let mut invalidating = Context::from_waker(&waker);
        assert!(
            waiting.as_mut().poll(&mut invalidating).is_pending(),
            "waits"
        );
        assert_eq!(registry.stats().waited, 1);
        let Poll::Ready(value) = computing.as_mut().poll(&mut quiet) else {
            panic!("the computation ends at its second poll");
        };
        assert_eq!(value, 7000 + NEWCOMER);
        assert_eq!(drive(waiting.as_mut()), 7000 + NEWCOMER);

        let present: Vec<u64> = [1, 2, 3, NEWCOMER]
            .into_iter()
            .filter(|k| registry.method(slow_weighed).get(&owner, k).is_some())
            .collect();
        let expected: usize = present.iter().map(|&k| heft(k) as usize).sum();
        assert_eq!(registry.stats().entries, present.len());
        assert_eq!(
            registry.weight(),
            expected,
            "the weight of the entries present ({present:?})"
        );
        registry.clear();
        assert_eq!(registry.weight(), 0, "no phantom weight after clear()");
    });
}

// ---------------------------------------------------------------------------------------
// 5. Bounds changed during traffic.

fn drift_a(owner: &Arc<u64>, &k: &u64) -> u64 {
    **owner + k
}

fn drift_b(owner: &Arc<u64>, &k: &u64) -> u64 {
    **owner * 2 + k
}

/// Two threads call two methods over random keys while a third toggles the registry's
/// bound and a method bound between values and `None`: once they end, `weight()` is the
/// entries held (weight 1 each), and 0 after `clear()`. (Before the fix it drifted from
/// them in most rounds.)
#[test]
fn bounds_toggled_during_traffic_keep_the_weight_exact() {
    let _serial = serial();
    watchdog(Duration::from_secs(60), || {
        for round in 0..40u64 {
            let registry = Registry::new();
            let owner = Arc::new(round);
            let running = AtomicUsize::new(2);
            let progress = AtomicU64::new(0);
            thread::scope(|s| {
                for t in 0..2 {
                    let (registry, owner, running, progress) =
                        (&registry, &owner, &running, &progress);
                    s.spawn(move || {
                        let mut rng = Rng::new(round * 2 + t);
                        for _ in 0..1000 {
                            let k = rng.below(1000);
                            if rng.below(2) == 0 {
                                registry.method(drift_a).call(owner, k);
                            } else {
                                registry.method(drift_b).call(owner, k);
                            }
                            progress.fetch_add(1, SeqCst);
                        }
                        running.fetch_sub(1, SeqCst);
                    });
                }
                // Bounds are first made while the tables already hold entries.
                while progress.load(SeqCst) < 500 {
                    thread::yield_now();
                }
                // Each bound set, then lifted, in turn, at least once.
                let mut rng = Rng::new(1000 + round);
                for turn in 0.. {
                    if turn >= 4 && running.load(SeqCst) == 0 {
                        break;
                    }
                    match turn % 4 {
                        0 => registry.set_capacity(Some(200 + rng.below(1000) as usize)),
                        1 => registry
                            .method(drift_a)
                            .set_capacity(Some(100 + rng.below(500) as usize)),
                        2 => registry.set_capacity(None),
                        _ => registry.method(drift_a).set_capacity(None),
                    }
                    thread::yield_now();
                }
            });
            let entries = registry.stats().entries;
            assert_eq!(
                registry.weight(),
                entries,
                "round {round}: the weight is the entries held"
            );
            registry.clear();
            assert_eq!(registry.weight(), 0, "round {round}: nothing after clear()");
        }
    });
}

// ---------------------------------------------------------------------------------------
// 6. An `Eq` panic while a value is stored.

/// An argument whose hash is constant (so every key of one owner collides in full, and
/// storing one compares it with the others) and whose `Eq` panics while armed.
#[derive(Debug)]
struct Clash(u32);

impl Hash for Clash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        0u32.hash(state);
    }
}

impl PartialEq for Clash {
    fn eq(&self, other: &Self) -> bool {
        if armed() {
            panic!("clash eq");
        }
        self.0 == other.0
    }
}

impl Eq for Clash {}

/// Arms this thread for arguments from 100 on, as it returns: the lookup and the claim
/// compare disarmed, the store's probe armed.
fn clashing(owner: &Arc<u64>, arg: &Clash) -> u64 {
    if arg.0 >= 100 {
        arm(true);
    }
    **owner * 1000 + u64::from(arg.0)
}

/// An `Eq` that panics while a value is stored (the probe meets a colliding entry)
/// leaks no room of the bound, with single flight on and off: after four such panics
/// `weight()` is the entries held, and the method still caches new keys up to its bound.
#[test]
fn an_eq_panic_while_storing_leaks_no_room_of_the_bound() {
    let _serial = serial();
    watchdog(LIMIT, || {
        for single_flight in [true, false] {
            let registry = Registry::builder().single_flight(single_flight).build();
            registry.method(clashing).set_capacity(Some(8));
            let owner = Arc::new(1u64);
            assert_eq!(registry.method(clashing).call(&owner, Clash(0)), 1000);
            for n in 100..104 {
                let caught = catch_unwind(AssertUnwindSafe(|| {
                    registry.method(clashing).call(&owner, Clash(n))
                }));
                arm(false);
                match caught {
                    Ok(value) => assert_eq!(value, 1000 + u64::from(n)),
                    Err(payload) => assert_eq!(panic_message(&*payload), "clash eq"),
                }
                // Whether or not it was stored, the key leaves no entry behind.
                registry.method(clashing).invalidate(&owner, &Clash(n));
            }
            let stats = registry.stats();
            assert_eq!(
                registry.weight(),
                stats.entries,
                "single flight {single_flight}: the weight is the entries held"
            );
            for n in 1..8 {
                assert_eq!(
                    registry.method(clashing).call(&owner, Clash(n)),
                    1000 + u64::from(n)
                );
            }
            for n in 0..8 {
                assert_eq!(
                    registry.method(clashing).get(&owner, &Clash(n)),
                    Some(1000 + u64::from(n)),
                    "single flight {single_flight}: key {n} is cached within the bound of 8"
                );
            }
            assert_eq!(registry.weight(), 8);
        }
    });
}

// ---------------------------------------------------------------------------------------
// 7. A weigher set before the first call, and racing first calls.

fn weighed_first(owner: &Arc<u64>, &k: &u64) -> u64 {
    **owner + k
}

/// A weigher set before any call weighs every entry, even those of first calls racing
/// to make the method's table: `weight()` is 100 per entry, in every round. (Before the
/// fix, a table was published before its weigher was applied, and a call that found it
/// in between stored an entry of weight 1: in 7-24 % of rounds here.)
#[test]
fn a_weigher_set_before_the_first_call_weighs_racing_first_stores() {
    // Many more threads than cores, so that the thread making the table is often
    // descheduled between publishing it and applying its settings.
    const THREADS: usize = 16;
    let _serial = serial();
    watchdog(Duration::from_secs(60), || {
        let owner = Arc::new(5u64);
        for round in 0..150 {
            let registry = Registry::builder().capacity(200 * THREADS).build();
            registry
                .method(weighed_first)
                .set_weigher(Some(std::sync::Arc::new(|_: &u64, _: &u64| 100)));
            let start = Barrier::new(THREADS);
            thread::scope(|s| {
                for t in 0..THREADS as u64 {
                    let (registry, owner, start) = (&registry, &owner, &start);
                    s.spawn(move || {
                        start.wait();
                        registry.method(weighed_first).call(owner, t);
                    });
                }
            });
            let entries = registry.stats().entries;
            assert_eq!(entries, THREADS, "round {round}");
            assert_eq!(
                registry.weight(),
                100 * entries,
                "round {round}: every first store is weighed"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// 8. `join!` of one key inside a cached async fn.

/// An owner counting the runs of `inner`.
struct Twin {
    inner_runs: AtomicUsize,
}

static SIBLINGS: Registry = Registry::new();

async fn inner(owner: &Arc<Twin>, &k: &u64) -> u64 {
    owner.inner_runs.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    k * 10
}

async fn joins_one_key(owner: &Arc<Twin>, &k: &u64) -> (u64, u64) {
    tokio::join!(
        SIBLINGS.method(inner).call_async(owner, k),
        SIBLINGS.method(inner).call_async(owner, k)
    )
}

/// Two sibling branches of a `join!` inside a cached async fn, awaiting one key, share
/// its computation: both get the value, and `inner` runs once (no "recursive call").
#[test]
fn join_of_one_key_inside_a_cached_async_fn_computes_it_once() {
    let _serial = serial();
    watchdog(LIMIT, || {
        let owner = Arc::new(Twin {
            inner_runs: AtomicUsize::new(0),
        });
        let both =
            current_thread_runtime().block_on(SIBLINGS.method(joins_one_key).call_async(&owner, 3));
        assert_eq!(both, (30, 30));
        assert_eq!(owner.inner_runs.load(SeqCst), 1);
    });
}

static SELF_JOIN: Registry = Registry::new();

async fn joins_itself(owner: &Arc<Twin>, &k: &u64) -> u64 {
    let (a, b) = tokio::join!(
        SELF_JOIN.method(inner).call_async(owner, k),
        Box::pin(SELF_JOIN.method(joins_itself).call_async(owner, k))
    );
    a + b
}

/// A guard for the fix of the test above (it passes today): a `join!` branch that
/// awaits the key its own computation is computing is still a recursion, and panics
/// instead of hanging.
#[test]
fn a_join_branch_awaiting_its_own_computation_still_panics_as_a_recursion() {
    let _serial = serial();
    watchdog(LIMIT, || {
        let owner = Arc::new(Twin {
            inner_runs: AtomicUsize::new(0),
        });
        let runtime = current_thread_runtime();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(SELF_JOIN.method(joins_itself).call_async(&owner, 4))
        }));
        let message = panic_message(&*caught.expect_err("a recursion panics"));
        assert!(message.contains(RECURSIVE), "{message}");
    });
}

// ---------------------------------------------------------------------------------------
// 9. Invalidation while a key is being computed.

/// An owner whose method reads its version, and whose first run is held inside until
/// released.
struct Doc {
    version: AtomicU64,
    runs: AtomicUsize,
    entered: Barrier,
    release: Barrier,
}

impl Doc {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            version: AtomicU64::new(1),
            runs: AtomicUsize::new(0),
            entered: Barrier::new(2),
            release: Barrier::new(2),
        })
    }
}

fn render(doc: &Arc<Doc>, &(): &()) -> u64 {
    let version = doc.version.load(SeqCst);
    if doc.runs.fetch_add(1, SeqCst) == 0 {
        doc.entered.wait();
        doc.release.wait();
    }
    version
}

/// The four ways to invalidate the key of `render`.
#[derive(Clone, Copy, Debug)]
enum Invalidation {
    Key,
    Owner,
    Method,
    Clear,
}

const INVALIDATIONS: [Invalidation; 4] = [
    Invalidation::Key,
    Invalidation::Owner,
    Invalidation::Method,
    Invalidation::Clear,
];

impl Invalidation {
    fn apply(self, registry: &Registry, doc: &Arc<Doc>) {
        match self {
            Self::Key => {
                registry.method(render).invalidate(doc, &());
            }
            Self::Owner => {
                registry.invalidate_owner(doc);
            }
            Self::Method => {
                registry.method(render).clear();
            }
            Self::Clear => {
                registry.clear();
            }
        }
    }
}

/// Runs `render` on another thread, held inside after reading version 1; meanwhile the
/// version becomes 2 and `how` invalidates; with `waiter`, a second caller waits for the
/// computation before the invalidation. Returns what the computing call and the waiter
/// got, after the computation is released.
fn invalidate_while_computing(
    registry: &Registry,
    doc: &Arc<Doc>,
    how: Invalidation,
    waiter: bool,
) -> (u64, Option<u64>) {
    thread::scope(|s| {
        let computing = s.spawn(|| registry.method(render).call(doc, ()));
        doc.entered.wait();
        let waiting = waiter.then(|| {
            let waiting = s.spawn(|| registry.method(render).call(doc, ()));
            assert!(
                wait_until(Duration::from_secs(5), || registry.stats().waited == 1),
                "the waiter waits"
            );
            waiting
        });
        doc.version.store(2, SeqCst);
        how.apply(registry, doc);
        doc.release.wait();
        (
            computing.join().unwrap(),
            waiting.map(|waiting| waiting.join().unwrap()),
        )
    })
}

/// An invalidation (by key, owner, method or `clear`) while the key is being computed
/// covers that computation: it still answers its own caller, but its value is not
/// stored, so the next call computes the new version.
#[test]
fn an_invalidation_covers_the_computation_in_flight() {
    let _serial = serial();
    watchdog(LIMIT, || {
        for how in INVALIDATIONS {
            let registry = Registry::new();
            let doc = Doc::new();
            let (computed, _) = invalidate_while_computing(&registry, &doc, how, false);
            assert_eq!(computed, 1, "{how:?}: the computation answers its caller");
            assert_eq!(
                registry.method(render).call(&doc, ()),
                2,
                "{how:?}: a call after the invalidation gets no value computed before it"
            );
        }
    });
}

/// A caller that waited for the computation before the invalidation still receives its
/// value; the value is not stored, and the next call computes the new version.
#[test]
fn an_invalidation_in_flight_still_answers_the_callers_waiting() {
    let _serial = serial();
    watchdog(LIMIT, || {
        for how in INVALIDATIONS {
            let registry = Registry::new();
            let doc = Doc::new();
            let (computed, waited) = invalidate_while_computing(&registry, &doc, how, true);
            assert_eq!(computed, 1, "{how:?}");
            assert_eq!(
                waited,
                Some(1),
                "{how:?}: the waiter gets the computation's value"
            );
            assert_eq!(
                registry.method(render).call(&doc, ()),
                2,
                "{how:?}: a call after the invalidation gets no value computed before it"
            );
        }
    });
}

/// With single flight off, a value computed before an invalidation is not stored
/// either: the next call computes the new version.
#[test]
fn an_invalidation_in_flight_covers_a_computation_without_single_flight() {
    let _serial = serial();
    watchdog(LIMIT, || {
        for how in INVALIDATIONS {
            let registry = Registry::builder().single_flight(false).build();
            let doc = Doc::new();
            let (computed, _) = invalidate_while_computing(&registry, &doc, how, false);
            assert_eq!(computed, 1, "{how:?}");
            assert_eq!(
                registry.method(render).call(&doc, ()),
                2,
                "{how:?}: the stale value was not stored"
            );
        }
    });
}

/// A call that begins after the invalidation, while the stale computation still runs,
/// does not receive its value (it must not wait for it and take its answer).
#[test]
fn a_call_begun_after_an_invalidation_never_gets_the_stale_computation() {
    let _serial = serial();
    watchdog(LIMIT, || {
        for how in INVALIDATIONS {
            let registry = Registry::new();
            let doc = Doc::new();
            let (computed, late) = thread::scope(|s| {
                let computing = s.spawn(|| registry.method(render).call(&doc, ()));
                doc.entered.wait();
                doc.version.store(2, SeqCst);
                how.apply(&registry, &doc);
                let late = s.spawn(|| registry.method(render).call(&doc, ()));
                // It either answers on its own, or waits for the stale computation.
                wait_until(Duration::from_secs(5), || {
                    late.is_finished() || registry.stats().waited > 0
                });
                doc.release.wait();
                (computing.join().unwrap(), late.join().unwrap())
            });
            assert_eq!(computed, 1, "{how:?}");
            assert_eq!(late, 2, "{how:?}: the late call gets the new version");
        }
    });
}

// ---------------------------------------------------------------------------------------
// 10. A `Clone` panic while inserting, single flight off.

/// A value whose `Clone` panics while this thread is armed, if it is fragile.
#[derive(Debug, PartialEq)]
struct Brittle {
    n: u64,
    fragile: bool,
}

impl Clone for Brittle {
    fn clone(&self) -> Self {
        if self.fragile && armed() {
            panic!("brittle clone");
        }
        Self {
            n: self.n,
            fragile: self.fragile,
        }
    }
}

/// Key 9's value is fragile.
fn brittle(owner: &Arc<u64>, &k: &u64) -> Brittle {
    Brittle {
        n: **owner * 1000 + k,
        fragile: k == 9,
    }
}

/// With single flight off, a `Clone` that panics while a newcomer is inserted, after
/// the bound evicted a victim for it, loses nothing: the panic reaches the caller,
/// `weight()` is the entries held, and every entry gone is counted and reported to the
/// listener exactly once.
#[test]
fn a_clone_panic_while_inserting_leaks_no_room_and_loses_no_removal() {
    let _serial = serial();
    watchdog(LIMIT, || {
        let registry = Registry::builder().single_flight(false).build();
        let recorder = Recorder::<u64, Brittle>::install(&registry);
        registry.method(brittle).set_capacity(Some(3));
        let owner = Arc::new(1u64);
        // Key 9 missed once already (so it beats a victim next time), then removed.
        assert_eq!(registry.method(brittle).call(&owner, 9).n, 1009);
        assert!(registry.method(brittle).invalidate(&owner, &9));
        for k in 0..3 {
            assert_eq!(registry.method(brittle).call(&owner, k).n, 1000 + k);
        }
        assert_eq!(registry.weight(), 3);

        arm(true);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            registry.method(brittle).call(&owner, 9)
        }));
        arm(false);
        let payload = caught.expect_err("the panic reaches the caller");
        assert_eq!(panic_message(&*payload), "brittle clone");

        let stats = registry.stats();
        assert_eq!(registry.weight(), stats.entries, "no room leaked");
        let reported = recorder.peek();
        for k in 0..3 {
            let told = reported.iter().filter(|(_, args, _)| *args == k).count();
            let present = registry.method(brittle).get(&owner, &k).is_some();
            assert_eq!(
                told,
                usize::from(!present),
                "key {k} present: {present}; told {told} time(s): {reported:?}"
            );
        }
        assert_eq!(
            recorder.count(RemovalCause::Size),
            stats.evicted,
            "size vs evicted"
        );
        assert_eq!(
            recorder.count(RemovalCause::Explicit),
            stats.invalidated,
            "explicit vs invalidated"
        );
        assert_eq!(recorder.total(), stats.evicted + stats.invalidated);
    });
}

// ---------------------------------------------------------------------------------------
// 11. One fn as a sync and as an async method.

fn ready_sum(owner: &Arc<u64>, &k: &u64) -> std::future::Ready<u64> {
    std::future::ready(**owner + k)
}

/// A fn returning a future can be cached by `call` (its value is the future) and by
/// `call_async` (its value is the output): two methods, in either order.
#[test]
fn one_fn_called_sync_and_async_makes_two_methods_in_either_order() {
    let _serial = serial();
    watchdog(LIMIT, || {
        let runtime = current_thread_runtime();
        let owner = Arc::new(40u64);
        for sync_first in [true, false] {
            let registry = Registry::new();
            // `ready_sum` is both kinds of method: the handle names which.
            let sync = |registry: &Registry| {
                let method = registry.method::<_, _, _, Returns<_>, _>(ready_sum);
                method.call(&owner, 2).into_inner()
            };
            let awaited = |registry: &Registry| {
                let method = registry.method::<_, _, _, Awaits<_>, _>(ready_sum);
                runtime.block_on(method.call_async(&owner, 2))
            };
            if sync_first {
                assert_eq!(sync(&registry), 42);
                assert_eq!(awaited(&registry), 42);
            } else {
                assert_eq!(awaited(&registry), 42);
                assert_eq!(sync(&registry), 42);
            }
            assert_eq!(sync(&registry), 42);
            assert_eq!(awaited(&registry), 42);
            let stats = registry.stats();
            assert_eq!(
                (stats.methods, stats.entries, stats.hits),
                (2, 2, 2),
                "sync first: {sync_first}"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------
// 12. A refused recursion and its arguments' `Drop`.

static NESTED: Registry = Registry::new();

/// An argument whose `Drop` uses the registry, if it is loud.
#[derive(Debug)]
struct Loud {
    n: u32,
    loud: bool,
}

impl Hash for Loud {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.n.hash(state);
    }
}

impl PartialEq for Loud {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n
    }
}

impl Eq for Loud {}

impl Drop for Loud {
    fn drop(&mut self) {
        if self.loud {
            let _ = NESTED.stats();
        }
    }
}

/// Calls itself with its own key, through a loud argument.
fn reenters(owner: &Arc<u64>, arg: &Loud) -> u64 {
    NESTED.method(reenters).call(
        owner,
        Loud {
            n: arg.n,
            loud: true,
        },
    )
}

/// A refused same-key recursion drops its arguments with no registry lock held: an
/// argument whose `Drop` calls `stats()` does not turn the recursion's panic into the
/// "called from an argument's `Eq` or a value's `Clone`" one.
#[test]
fn a_refused_recursion_drops_its_arguments_outside_the_locks() {
    let _serial = serial();
    watchdog(LIMIT, || {
        let owner = Arc::new(3u64);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            NESTED
                .method(reenters)
                .call(&owner, Loud { n: 1, loud: false })
        }));
        let message = panic_message(&*caught.expect_err("a recursion panics"));
        assert!(message.contains(RECURSIVE), "{message}");
        // Nothing is left pending: the next call meets the same recursion, not a hang.
        let again = catch_unwind(AssertUnwindSafe(|| {
            NESTED
                .method(reenters)
                .call(&owner, Loud { n: 1, loud: false })
        }));
        let message = panic_message(&*again.expect_err("a recursion panics"));
        assert!(message.contains(RECURSIVE), "{message}");
    });
}
