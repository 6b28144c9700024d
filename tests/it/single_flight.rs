//! Single flight: threads that miss one key at once run its method once.
//!
//! - N threads (2, 4, 8, 16) released together onto one cold key run the method exactly
//!   once and all receive its value; `waited` is between 1 and N-1, and exactly N-1 (with
//!   exactly N misses) when the method lasts until every other caller waits; one entry is
//!   stored and no copy of the value leaks.
//! - Keys that differ only by argument or only by owner, even in a one-shard registry, do
//!   not wait for each other.
//! - When the computing call fails, whether its method panics (the payload reaches that
//!   caller), its `try_call` returns `Err` (returned to that caller) or the clone the
//!   registry makes of its value panics, nothing is cached, the waiters wake, one of them
//!   computes afresh (two runs in all) and every other caller gets that second value.
//! - A method that re-enters its own key, directly or through a second cached method,
//!   panics with "recursive call for the same key" and the method's type name, and
//!   leaves nothing pending: the same thread recomputes the key, another thread computes
//!   it, and a thread that was waiting for the failed computation takes it over.
//! - Two threads whose computations wait for each other panic instead of hanging: one
//!   with "deadlock avoided", the other (which takes over the abandoned key and then meets
//!   its own) with "recursive call for the same key"; a three-thread cycle also ends with
//!   every thread panicking, at least one with "deadlock avoided". Afterwards the keys
//!   are computable, and the same threads wait for each other normally (no stale wait is
//!   left behind to fake a cycle).
//! - A waiter whose owner all other holders dropped while it waited still gets the
//!   value; then the owner's `Drop` runs and `purge()` removes its entry.
//! - An argument `Eq` that panics while comparing with a pending key (under the shard's
//!   write lock) poisons nothing: the computation, its waiters and later calls go on.
//! - With single flight off (by the builder or `set_single_flight`) every thread runs the
//!   method, all get the value stored first, `discarded` is N-1 and `waited` 0; switching
//!   it at run time takes effect at once, even while a key is being computed, and every
//!   caller still gets one value.
//! - A stress run (8 threads × 2000 random `try_call`, the `Ok` table's `get` and `invalidate` over 4
//!   owners × 8 arguments, with seeded sleeps and errors) never runs one key twice at
//!   once, returns only right values and real errors, and balances its counters exactly.
//!
//! Every test that could hang runs under the watchdog, so a lost wake-up fails instead of
//! stalling the run.

use crate::common;

use std::any::type_name_of_val;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{Counter, Live, Rng, Touchy, Val, panic_message, watchdog};
use weakmemo::{Registry, Stats};

const LIMIT: Duration = Duration::from_secs(30);
const RECURSIVE: &str = "recursive call for the same key";
const DEADLOCK: &str = "deadlock avoided";

fn leak(registry: Registry) -> &'static Registry {
    Box::leak(Box::new(registry))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn gate(parties: usize) -> Arc<Barrier> {
    Arc::new(Barrier::new(parties))
}

/// Sleeps in 1 ms steps until `done()`, for a condition another thread is bound to make
/// true; if it never does, the watchdog fails the test.
fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        thread::sleep(ms(1));
    }
}

/// Runs `work(0..n)` on `n` threads released together by a barrier; returns each result,
/// or the message of its panic, in thread order.
fn race<R: Send + 'static>(
    n: usize,
    work: impl Fn(usize) -> R + Send + Sync + 'static,
) -> Vec<Result<R, String>> {
    let start = gate(n);
    let work = Arc::new(work);
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (start, work) = (start.clone(), work.clone());
            thread::spawn(move || {
                start.wait();
                catch_unwind(AssertUnwindSafe(|| work(i))).map_err(|p| panic_message(&*p))
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("panics are caught"))
        .collect()
}

/// Counts a drop of the [`Job`] that holds it.
struct Tracker(Counter);

impl Drop for Tracker {
    fn drop(&mut self) {
        self.0.inc();
    }
}

/// An owner that carries what its methods need, so that every test has its own.
struct Job {
    id: u64,
    cache: &'static Registry,
    /// Runs of its methods, all together.
    runs: AtomicUsize,
    /// A method that reads it lasts until its registry counts this many waits.
    queue: u64,
    /// Meeting points of a method and the test (one party each by default: no wait).
    entered: Arc<Barrier>,
    release: Arc<Barrier>,
    /// Whether the `hop` methods call the next one.
    cross: AtomicBool,
    /// How many `hop` methods form the cycle.
    ring: usize,
    values: Live,
    _dropped: Tracker,
}

impl Job {
    fn new(id: u64, cache: &'static Registry) -> Self {
        Self {
            id,
            cache,
            runs: AtomicUsize::new(0),
            queue: 0,
            entered: gate(1),
            release: gate(1),
            cross: AtomicBool::new(false),
            ring: 2,
            values: Live::new(),
            _dropped: Tracker(Counter::new()),
        }
    }

    /// Counts a run; returns its number, from 1.
    fn run(&self) -> u64 {
        self.runs.fetch_add(1, SeqCst) as u64 + 1
    }

    fn runs(&self) -> usize {
        self.runs.load(SeqCst)
    }

    /// Returns once its registry has counted `queue` waits.
    fn await_queue(&self) {
        wait_until(|| self.cache.stats().waited >= self.queue);
    }
}

// ---------------------------------------------------------------------------------------
// N threads, one key

/// Sleeps 20 ms and lasts until `queue` callers wait; the value names its run.
fn slow(job: &Arc<Job>, &arg: &u32) -> Val {
    let run = job.run();
    thread::sleep(ms(20));
    job.await_queue();
    Val::new(job.id * 1000 + u64::from(arg) * 10 + run, &job.values)
}

/// `n` threads call one cold key of `slow` at once; returns their values, the owner and
/// the registry's counters.
fn one_key(n: usize, queue: u64) -> (Vec<u64>, Arc<Job>, Stats) {
    watchdog(LIMIT, move || {
        let cache = leak(Registry::new());
        let job = Arc::new(Job {
            queue,
            ..Job::new(n as u64, cache)
        });
        let shared = job.clone();
        let values = race(n, move |_| cache.method(slow).call(&shared, 3).n);
        let values = values
            .into_iter()
            .map(|v| v.expect("no call panics"))
            .collect();
        let stats = cache.stats();
        assert_eq!(
            cache.method(slow).get(&job, &3).map(|v| v.n),
            Some(job.id * 1000 + 31)
        );
        (values, job, stats)
    })
}

#[test]
fn threads_missing_one_cold_key_at_once_run_the_method_once() {
    for n in [2, 4, 8, 16] {
        // The method lasts until at least one other caller waits: the scheduler need not
        // start any of them within the 20 ms sleep, but each must wait once it calls.
        let (values, job, stats) = one_key(n, 1);
        assert_eq!(job.runs(), 1, "n = {n}: one run");
        assert!(
            values.iter().all(|&v| v == n as u64 * 1000 + 31),
            "n = {n}: every caller gets the one value: {values:?}"
        );
        assert!(
            (1..n as u64).contains(&stats.waited),
            "n = {n}: waited = {}",
            stats.waited
        );
        // Callers that came after the value was stored hit instead of missing.
        assert!(
            stats.misses > stats.waited && stats.misses <= n as u64,
            "n = {n}: {stats:?}"
        );
        assert_eq!((stats.entries, stats.discarded), (1, 0), "n = {n}");
        assert_eq!(job.values.get(), 1, "n = {n}: only the stored copy is left");
    }
}

#[test]
fn when_the_method_outlasts_every_caller_each_other_caller_waits_once() {
    for n in [2, 4, 8, 16] {
        let (values, job, stats) = one_key(n, n as u64 - 1);
        assert_eq!(job.runs(), 1, "n = {n}");
        assert!(
            values.iter().all(|&v| v == n as u64 * 1000 + 31),
            "{values:?}"
        );
        assert_eq!(
            (stats.waited, stats.misses, stats.hits),
            (n as u64 - 1, n as u64, 0),
            "n = {n}: every call missed, all but the computing one waited"
        );
        assert_eq!((stats.entries, stats.discarded), (1, 0), "n = {n}");
        assert_eq!(job.values.get(), 1, "n = {n}");
    }
}

/// Meets every other caller inside the method: only callers that do not wait for each
/// other get past it.
fn meet(job: &Arc<Job>, &arg: &u32) -> u64 {
    job.run();
    job.entered.wait();
    job.id * 1000 + u64::from(arg)
}

#[test]
fn different_keys_never_wait_for_each_other_even_in_one_shard() {
    let (values, stats, runs) = watchdog(LIMIT, || {
        let cache = leak(Registry::builder().shards(1).build());
        let meeting = gate(4);
        let jobs: Arc<[Arc<Job>; 2]> = Arc::new([1, 2].map(|id| {
            Arc::new(Job {
                entered: meeting.clone(),
                ..Job::new(id, cache)
            })
        }));
        let shared = jobs.clone();
        let values = race(4, move |i| {
            cache.method(meet).call(&shared[i / 2], i as u32 % 2)
        });
        let runs = jobs.iter().map(|job| job.runs()).collect::<Vec<_>>();
        (values, cache.stats(), runs)
    });
    let values: Vec<u64> = values.into_iter().map(Result::unwrap).collect();
    assert_eq!(values, [1000, 1001, 2000, 2001]);
    assert_eq!(runs, [2, 2]);
    assert_eq!((stats.waited, stats.entries, stats.misses), (0, 4, 4));
}

// ---------------------------------------------------------------------------------------
// A failed computation with waiters

/// Run 1 lasts until `queue` callers wait, then panics; later runs return their number.
fn fragile(job: &Arc<Job>, &(): &()) -> u64 {
    let run = job.run();
    if run == 1 {
        job.await_queue();
        std::panic::panic_any(format!("run 1 of job {} failed", job.id));
    }
    thread::sleep(ms(5));
    job.id * 1000 + run
}

#[test]
fn a_panic_reaches_its_caller_and_a_waiter_computes_afresh() {
    for n in [2, 4, 8] {
        let (outcomes, job, stats) = watchdog(LIMIT, move || {
            let cache = leak(Registry::new());
            let job = Arc::new(Job {
                queue: n as u64 - 1,
                ..Job::new(n as u64, cache)
            });
            let shared = job.clone();
            let outcomes = race(n, move |_| cache.method(fragile).call(&shared, ()));
            let stats = cache.stats();
            // Still usable: a hit on the key; another owner's key fails, then computes.
            assert_eq!(cache.method(fragile).call(&job, ()), n as u64 * 1000 + 2);
            let other = Arc::new(Job::new(99, cache));
            assert!(catch(|| cache.method(fragile).call(&other, ())).is_err());
            assert_eq!(cache.method(fragile).call(&other, ()), 99 * 1000 + 2);
            (outcomes, job, stats)
        });
        let panicked: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        assert_eq!(
            panicked,
            [&format!("run 1 of job {n} failed")],
            "n = {n}: the computing caller alone gets the payload"
        );
        assert!(
            outcomes
                .iter()
                .filter_map(|o| o.as_ref().ok())
                .all(|&v| v == n as u64 * 1000 + 2),
            "n = {n}: the others get the second run's value: {outcomes:?}"
        );
        assert_eq!(job.runs(), 2, "n = {n}: one failed run, one fresh run");
        assert_eq!((stats.entries, stats.discarded), (1, 0), "n = {n}");
        // Every other caller waited for run 1; all but run 2's computer may wait again.
        assert!(
            (n as u64 - 1..=2 * n as u64 - 3).contains(&stats.waited),
            "n = {n}: waited = {}",
            stats.waited
        );
    }
}

/// Run 1 lasts until `queue` callers wait, then fails; later runs succeed.
fn fallible(job: &Arc<Job>, &(): &()) -> Result<u64, String> {
    let run = job.run();
    thread::sleep(ms(5));
    if run == 1 {
        job.await_queue();
        return Err(format!("run 1 of job {} failed", job.id));
    }
    Ok(job.id * 1000 + run)
}

#[test]
fn an_error_reaches_its_caller_uncached_and_a_waiter_computes_afresh() {
    for n in [2, 4, 8] {
        let (outcomes, job, stats, stored) = watchdog(LIMIT, move || {
            let cache = leak(Registry::new());
            let job = Arc::new(Job {
                queue: n as u64 - 1,
                ..Job::new(n as u64, cache)
            });
            let shared = job.clone();
            let outcomes = race(n, move |_| {
                common::ok_table(cache, fallible).try_call(&shared, ())
            });
            let stored = common::ok_table(cache, fallible).get(&job, &());
            (outcomes, job, cache.stats(), stored)
        });
        let outcomes: Vec<Result<u64, String>> = outcomes
            .into_iter()
            .map(|o| o.expect("nothing panics"))
            .collect();
        let errors: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        assert_eq!(errors, [&format!("run 1 of job {n} failed")], "n = {n}");
        assert!(
            outcomes
                .iter()
                .filter_map(|o| o.as_ref().ok())
                .all(|&v| v == n as u64 * 1000 + 2),
            "n = {n}: {outcomes:?}"
        );
        assert_eq!(job.runs(), 2, "n = {n}");
        assert_eq!(
            stored,
            Some(n as u64 * 1000 + 2),
            "n = {n}: the error was not cached"
        );
        assert_eq!((stats.entries, stats.discarded), (1, 0), "n = {n}");
        assert!((n as u64 - 1..=2 * n as u64 - 3).contains(&stats.waited));
    }
}

/// A value whose first clone panics (the registry clones a computed value to store it).
#[derive(Debug, PartialEq)]
struct Brittle(u64);

static BRITTLE_ARMED: AtomicBool = AtomicBool::new(false);

impl Clone for Brittle {
    fn clone(&self) -> Self {
        if BRITTLE_ARMED.swap(false, SeqCst) {
            panic!("brittle clone of {}", self.0);
        }
        Self(self.0)
    }
}

/// Run 1 lasts until `queue` callers wait; the value names its run.
fn brittle(job: &Arc<Job>, &(): &()) -> Brittle {
    let run = job.run();
    if run == 1 {
        job.await_queue();
    }
    Brittle(job.id * 1000 + run)
}

#[test]
fn a_panicking_clone_of_the_computed_value_abandons_the_key_to_a_waiter() {
    let n = 4;
    let (outcomes, job, stats) = watchdog(LIMIT, move || {
        let cache = leak(Registry::new());
        let job = Arc::new(Job {
            queue: n as u64 - 1,
            ..Job::new(5, cache)
        });
        let shared = job.clone();
        BRITTLE_ARMED.store(true, SeqCst);
        let outcomes = race(n, move |_| cache.method(brittle).call(&shared, ()));
        (outcomes, job, cache.stats())
    });
    let panicked: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(panicked, ["brittle clone of 5001"]);
    assert!(
        outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .all(|v| *v == Brittle(5002)),
        "{outcomes:?}"
    );
    assert_eq!(job.runs(), 2);
    assert_eq!(
        job.cache.method(brittle).get(&job, &()),
        Some(Brittle(5002))
    );
    assert_eq!((stats.entries, stats.discarded), (1, 0));
}

// ---------------------------------------------------------------------------------------
// Re-entering one's own key

std::thread_local! {
    /// While set, `selfish` calls its own key, and `ping` and `pong` call each other.
    static REENTER: Cell<bool> = const { Cell::new(false) };
}

/// Calls itself with its own arguments while `REENTER` is set (first meeting the test and
/// lasting until `queue` callers wait).
fn selfish(job: &Arc<Job>, &arg: &u32) -> u64 {
    job.run();
    if REENTER.get() {
        job.entered.wait();
        job.await_queue();
        return job.cache.method(selfish).call(job, arg) + 1;
    }
    job.id * 1000 + u64::from(arg)
}

fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&*p))
}

#[test]
fn a_method_calling_its_own_key_panics_and_leaves_nothing_pending() {
    let cache = leak(Registry::new());
    let job = Arc::new(Job::new(1, cache));
    let shared = job.clone();
    let (first, again, recomputed) = watchdog(LIMIT, move || {
        REENTER.set(true);
        let first = catch(|| cache.method(selfish).call(&shared, 7));
        // Detection is not a one-off: another key recurses and panics too.
        let again = catch(|| cache.method(selfish).call(&shared, 9));
        REENTER.set(false);
        // The same thread computes its failed key afresh.
        let recomputed = cache.method(selfish).call(&shared, 7);
        (first, again, recomputed)
    });
    for outcome in [&first, &again] {
        let message = outcome.as_ref().expect_err("re-entry panics");
        assert!(message.contains(RECURSIVE), "{message}");
        assert!(message.contains(type_name_of_val(&selfish)), "{message}");
        assert!(message.contains("selfish"), "{message}");
    }
    assert_eq!(recomputed, 1007);
    assert_eq!(
        job.runs(),
        3,
        "one run per failed call, one for the recomputation"
    );

    // Another thread computes the key that failed last: no pending entry of the first
    // thread is left for it to wait on forever.
    let shared = job.clone();
    assert_eq!(
        watchdog(LIMIT, move || cache.method(selfish).call(&shared, 9)),
        1009
    );
    assert_eq!(job.runs(), 4);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.waited, stats.discarded), (2, 0, 0));
}

#[test]
fn a_waiter_takes_over_a_key_whose_computer_called_itself() {
    let (recursed, waited_for, job, stats) = watchdog(LIMIT, || {
        let cache = leak(Registry::new());
        let job = Arc::new(Job {
            queue: 1,
            entered: gate(2),
            ..Job::new(2, cache)
        });
        let computer = {
            let job = job.clone();
            thread::spawn(move || {
                REENTER.set(true);
                catch(|| cache.method(selfish).call(&job, 11))
            })
        };
        // The computer claimed the key: the next caller waits, and the computer recurses
        // once it has.
        job.entered.wait();
        let waiter = {
            let job = job.clone();
            thread::spawn(move || cache.method(selfish).call(&job, 11))
        };
        let recursed = computer.join().unwrap();
        let waited_for = waiter.join().unwrap();
        (recursed, waited_for, job, cache.stats())
    });
    assert!(recursed.unwrap_err().contains(RECURSIVE));
    assert_eq!(waited_for, 2011, "the waiter computed the key itself");
    assert_eq!(job.runs(), 2);
    assert_eq!((stats.waited, stats.entries), (1, 1));
}

/// `ping` and `pong` call each other with the same arguments while `REENTER` is set.
fn ping(job: &Arc<Job>, &arg: &u32) -> u64 {
    job.run();
    if REENTER.get() {
        return job.cache.method(pong).call(job, arg) + 1;
    }
    job.id * 1000 + 100 + u64::from(arg)
}

fn pong(job: &Arc<Job>, &arg: &u32) -> u64 {
    job.run();
    if REENTER.get() {
        return job.cache.method(ping).call(job, arg) + 1;
    }
    job.id * 1000 + 200 + u64::from(arg)
}

#[test]
fn a_method_reaching_its_own_key_through_another_panics_and_leaves_nothing_pending() {
    let cache = leak(Registry::new());
    let job = Arc::new(Job::new(3, cache));
    let shared = job.clone();
    let (from_ping, from_pong) = watchdog(LIMIT, move || {
        REENTER.set(true);
        let from_ping = catch(|| cache.method(ping).call(&shared, 5));
        let from_pong = catch(|| cache.method(pong).call(&shared, 6));
        REENTER.set(false);
        (from_ping, from_pong)
    });
    // The message names the method whose key was re-entered.
    let message = from_ping.unwrap_err();
    assert!(message.contains(RECURSIVE), "{message}");
    assert!(message.contains(type_name_of_val(&ping)), "{message}");
    assert!(!message.contains(type_name_of_val(&pong)), "{message}");
    let message = from_pong.unwrap_err();
    assert!(message.contains(RECURSIVE), "{message}");
    assert!(message.contains(type_name_of_val(&pong)), "{message}");
    assert_eq!(job.runs(), 4);
    assert_eq!(cache.stats().entries, 0);

    // Both keys of both attempts are free for another thread.
    let shared = job.clone();
    let values = watchdog(LIMIT, move || {
        [
            cache.method(ping).call(&shared, 5),
            cache.method(pong).call(&shared, 5),
            cache.method(ping).call(&shared, 6),
            cache.method(pong).call(&shared, 6),
        ]
    });
    assert_eq!(values, [3105, 3205, 3106, 3206]);
    assert_eq!(job.runs(), 8);
    assert_eq!(cache.stats().entries, 4);
}

// ---------------------------------------------------------------------------------------
// Wait cycles between threads

std::thread_local! {
    /// Whether this thread met the others in a `hop` already.
    static MET: Cell<bool> = const { Cell::new(false) };
}

/// While `cross` is on: meets the other threads (on each thread's first computation, so
/// that every key of the ring is claimed), then calls the next `hop` of the ring.
fn hop<const K: usize>(job: &Arc<Job>, &(): &()) -> u64 {
    job.run();
    if !job.cross.load(SeqCst) {
        return K as u64;
    }
    if !MET.replace(true) {
        job.entered.wait();
    }
    let cache = job.cache;
    1 + match (K + 1) % job.ring {
        0 => cache.method(hop::<0>).call(job, ()),
        1 => cache.method(hop::<1>).call(job, ()),
        _ => cache.method(hop::<2>).call(job, ()),
    }
}

fn call_hop(job: &Arc<Job>, k: usize) -> u64 {
    match k {
        0 => job.cache.method(hop::<0>).call(job, ()),
        1 => job.cache.method(hop::<1>).call(job, ()),
        _ => job.cache.method(hop::<2>).call(job, ()),
    }
}

/// A ring of `n` threads, each computing one `hop` that calls the next; returns what each
/// got and the owner.
fn ring(n: usize) -> (Vec<Result<u64, String>>, Arc<Job>) {
    let cache = leak(Registry::new());
    let job = Arc::new(Job {
        entered: gate(n),
        cross: AtomicBool::new(true),
        ring: n,
        ..Job::new(n as u64, cache)
    });
    let shared = job.clone();
    let outcomes = race(n, move |k| call_hop(&shared, k));
    (outcomes, job)
}

/// After a ring: with the cross calls off, a fresh thread computes every key.
fn compute_ring_afresh(job: &Arc<Job>) {
    job.cross.store(false, SeqCst);
    let shared = job.clone();
    let values = watchdog(LIMIT, move || {
        (0..shared.ring)
            .map(|k| call_hop(&shared, k))
            .collect::<Vec<_>>()
    });
    assert_eq!(values, (0..job.ring as u64).collect::<Vec<_>>());
    assert_eq!(job.cache.stats().entries, job.ring);
}

/// Lasts until `queue` callers wait, after meeting its waiter (so that it waits).
fn relay(job: &Arc<Job>, &(): &()) -> u64 {
    job.run();
    job.entered.wait();
    job.await_queue();
    job.id
}

#[test]
fn a_wait_cycle_between_two_threads_panics_instead_of_hanging() {
    let (outcomes, later, job) = watchdog(LIMIT, || {
        let cache = leak(Registry::new());
        let job = Arc::new(Job {
            entered: gate(2),
            cross: AtomicBool::new(true),
            ring: 2,
            ..Job::new(2, cache)
        });
        // Then the same two threads wait for each other, each way round, on a registry
        // of their own: a wait left over from the cycle would make this look like one.
        let after = leak(Registry::new());
        let relays: Arc<[Arc<Job>; 2]> = Arc::new([1, 2].map(|k| {
            Arc::new(Job {
                queue: k,
                entered: gate(2),
                ..Job::new(10 + k, after)
            })
        }));
        let phase = gate(2);
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (job, relays, phase) = (job.clone(), relays.clone(), phase.clone());
                thread::spawn(move || {
                    let outcome = catch(|| call_hop(&job, i));
                    phase.wait();
                    let mut later = Vec::new();
                    for (k, relay_job) in relays.iter().enumerate() {
                        if k != i {
                            // Call once the other thread computes it.
                            relay_job.entered.wait();
                        }
                        later.push(catch(|| after.method(relay).call(relay_job, ())));
                    }
                    (outcome, later)
                })
            })
            .collect();
        let (outcomes, later): (Vec<_>, Vec<_>) =
            threads.into_iter().map(|t| t.join().unwrap()).unzip();
        assert_eq!(after.stats().waited, 2);
        assert!(relays.iter().all(|r| r.runs() == 1));
        (outcomes, later, job)
    });
    let messages: Vec<String> = outcomes
        .into_iter()
        .map(|o| o.expect_err("no thread of a cycle gets a value"))
        .collect();
    // The thread that would close the cycle panics; the other then wakes, takes over the
    // abandoned key, and its method calls the key its own thread computes further up.
    let deadlocks = messages.iter().filter(|m| m.contains(DEADLOCK)).count();
    let recursions = messages.iter().filter(|m| m.contains(RECURSIVE)).count();
    assert_eq!((deadlocks, recursions), (1, 1), "{messages:#?}");
    assert!(messages.iter().any(|m| m.contains("hop")), "{messages:#?}");
    // hop 0 once; hop 1 on its thread, then on the other after the take-over (or the
    // reverse).
    assert_eq!(job.runs(), 3);
    assert_eq!(job.cache.stats().entries, 0);
    for later in later {
        assert_eq!(
            later,
            [Ok(11), Ok(12)],
            "the threads wait for each other normally"
        );
    }
    compute_ring_afresh(&job);
}

#[test]
fn a_wait_cycle_of_three_threads_panics_instead_of_hanging() {
    for _ in 0..3 {
        let (outcomes, job) = watchdog(LIMIT, || ring(3));
        let messages: Vec<String> = outcomes
            .into_iter()
            .map(|o| o.expect_err("no thread of a cycle gets a value"))
            .collect();
        assert!(
            messages.iter().any(|m| m.contains(DEADLOCK)),
            "{messages:#?}"
        );
        assert!(
            messages
                .iter()
                .all(|m| m.contains(DEADLOCK) || m.contains(RECURSIVE)),
            "{messages:#?}"
        );
        assert_eq!(job.cache.stats().entries, 0);
        compute_ring_afresh(&job);
    }
}

// ---------------------------------------------------------------------------------------
// Owners

/// Meets the test, then waits for its release.
fn held(job: &Arc<Job>, &(): &()) -> Val {
    job.run();
    job.entered.wait();
    job.release.wait();
    Val::new(job.id, &job.values)
}

#[test]
fn a_waiter_gets_its_value_after_every_other_holder_dropped_the_owner() {
    let drops = Counter::new();
    let (values, weak, live, stats, purged, after) = watchdog(LIMIT, {
        let drops = drops.clone();
        move || {
            let cache = leak(Registry::new());
            let job = Arc::new(Job {
                entered: gate(2),
                release: gate(2),
                _dropped: Tracker(drops.clone()),
                ..Job::new(7, cache)
            });
            let (weak, live, release) = (
                Arc::downgrade(&job),
                job.values.clone(),
                job.release.clone(),
            );
            let computer = {
                let job = job.clone();
                thread::spawn(move || cache.method(held).call(&job, ()).n)
            };
            job.entered.wait();
            let waiter = {
                let job = job.clone();
                thread::spawn(move || cache.method(held).call(&job, ()).n)
            };
            wait_until(|| cache.stats().waited == 1);
            // Only the computing caller and the waiter hold the owner now.
            drop(job);
            assert_eq!(drops.get(), 0);
            release.wait();
            let values = [computer.join().unwrap(), waiter.join().unwrap()];
            let stats = cache.stats();
            let purged = cache.purge();
            (values, weak, live, stats, purged, cache.stats())
        }
    });
    assert_eq!(values, [7, 7]);
    assert!(weak.upgrade().is_none());
    assert_eq!(
        drops.get(),
        1,
        "the owner's Drop ran once everybody was done"
    );
    assert_eq!((stats.waited, stats.entries), (1, 1));
    assert_eq!(purged, 1);
    assert_eq!((after.entries, after.purged), (0, 1));
    assert_eq!(live.get(), 0, "the purge dropped the stored value");
}

// ---------------------------------------------------------------------------------------
// User code that panics under the lock

/// Run 1 meets the test and waits for its release.
fn touchy(job: &Arc<Job>, arg: &Touchy) -> u64 {
    if job.run() == 1 {
        job.entered.wait();
        job.release.wait();
    }
    job.id * 1000 + u64::from(arg.0)
}

#[test]
fn a_panicking_argument_eq_against_a_pending_key_poisons_nothing() {
    let (caught, values, stats, job) = watchdog(LIMIT, || {
        // One shard: later callers need the very lock the panic unwound through.
        let cache = leak(Registry::builder().shards(1).build());
        let job = Arc::new(Job {
            entered: gate(2),
            release: gate(2),
            ..Job::new(8, cache)
        });
        let computer = {
            let job = job.clone();
            thread::spawn(move || cache.method(touchy).call(&job, Touchy(1)))
        };
        job.entered.wait();
        // The key is pending: the claim compares the arguments under the write lock.
        common::arm(true);
        let caught = catch(|| cache.method(touchy).call(&job, Touchy(1)));
        common::arm(false);
        let waiter = {
            let job = job.clone();
            thread::spawn(move || cache.method(touchy).call(&job, Touchy(1)))
        };
        wait_until(|| cache.stats().waited == 1);
        job.release.wait();
        let values = [
            computer.join().unwrap(),
            waiter.join().unwrap(),
            cache.method(touchy).call(&job, Touchy(1)),
            cache.method(touchy).call(&job, Touchy(2)),
        ];
        (caught, values, cache.stats(), job)
    });
    assert_eq!(caught.unwrap_err(), "touchy eq");
    assert_eq!(values, [8001, 8001, 8001, 8002]);
    assert_eq!(job.runs(), 2, "the key once, and the second key");
    assert_eq!((stats.waited, stats.entries), (1, 2));
}

// ---------------------------------------------------------------------------------------
// Single flight off, and switched at run time

/// Meets the other callers inside the method (so all must run it); the value names its
/// run.
fn everyone(job: &Arc<Job>, &(): &()) -> u64 {
    let run = job.run();
    job.entered.wait();
    job.id * 1000 + run
}

/// `n` threads run `everyone` on a fresh owner of `cache`; returns the one value they got.
fn all_run(cache: &'static Registry, n: usize, id: u64) -> u64 {
    let job = Arc::new(Job {
        entered: gate(n),
        ..Job::new(id, cache)
    });
    let shared = job.clone();
    let values: Vec<u64> = race(n, move |_| cache.method(everyone).call(&shared, ()))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(job.runs(), n, "every caller ran the method");
    assert!(
        values.iter().all(|&v| v == values[0]),
        "one value: {values:?}"
    );
    assert!((id * 1000 + 1..=id * 1000 + n as u64).contains(&values[0]));
    assert_eq!(cache.method(everyone).get(&job, &()), Some(values[0]));
    values[0]
}

#[test]
fn without_single_flight_every_thread_runs_the_method_and_the_first_value_wins() {
    assert!(Registry::new().single_flight());
    assert!(
        !Registry::builder()
            .single_flight(false)
            .build()
            .single_flight()
    );
    for n in [2, 4, 8] {
        let stats = watchdog(LIMIT, move || {
            let cache = leak(Registry::builder().single_flight(false).build());
            all_run(cache, n, 1);
            cache.stats()
        });
        assert_eq!(
            (stats.discarded, stats.waited, stats.entries, stats.misses),
            (n as u64 - 1, 0, 1, n as u64),
            "n = {n}"
        );
    }
}

#[test]
fn set_single_flight_switches_the_behaviour_at_run_time() {
    let n = 4;
    watchdog(LIMIT, move || {
        let cache = leak(Registry::builder().single_flight(false).build());
        all_run(cache, n, 1);

        cache.set_single_flight(true);
        assert!(cache.single_flight());
        let job = Arc::new(Job {
            queue: n as u64 - 1,
            ..Job::new(2, cache)
        });
        let shared = job.clone();
        let values = race(n, move |_| cache.method(slow).call(&shared, 0).n);
        assert!(values.iter().all(|v| *v == Ok(2001)), "{values:?}");
        assert_eq!(job.runs(), 1);
        let stats = cache.stats();
        assert_eq!(
            (stats.discarded, stats.waited),
            (n as u64 - 1, n as u64 - 1)
        );

        cache.set_single_flight(false);
        assert!(!cache.single_flight());
        all_run(cache, n, 3);
        let stats = cache.stats();
        assert_eq!(
            (stats.discarded, stats.waited, stats.entries),
            (2 * (n as u64 - 1), n as u64 - 1, 3)
        );
    });
}

/// Run 1 meets the test and waits for its release; the value names its run.
fn gated(job: &Arc<Job>, &(): &()) -> u64 {
    let run = job.run();
    if run == 1 {
        job.entered.wait();
        job.release.wait();
    }
    job.id * 1000 + run
}

#[test]
fn switching_single_flight_while_a_key_is_computed_keeps_one_value() {
    for on in [true, false] {
        let (values, stats, runs) = watchdog(LIMIT, move || {
            let cache = leak(Registry::builder().single_flight(on).build());
            let job = Arc::new(Job {
                entered: gate(2),
                release: gate(2),
                ..Job::new(4, cache)
            });
            let first = {
                let job = job.clone();
                thread::spawn(move || cache.method(gated).call(&job, ()))
            };
            job.entered.wait();
            // Run 1 is under way (claimed, if single flight was on). Switched, this call
            // neither waits for it nor sees it: it runs the method and stores run 2.
            cache.set_single_flight(!on);
            let second = cache.method(gated).call(&job, ());
            job.release.wait();
            let values = [first.join().unwrap(), second];
            (values, cache.stats(), job.runs())
        });
        assert_eq!(values, [4002, 4002], "started with single flight {on}");
        assert_eq!(runs, 2);
        assert_eq!(
            (stats.discarded, stats.waited, stats.entries),
            (1, 0, 1),
            "started with single flight {on}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Stress

const STRESS_THREADS: usize = 8;
const STRESS_OPS: usize = 2000;
const SITES: usize = 4;
const SITE_ARGS: usize = 8;
const SEED: u64 = 0x51_6E_61_1E;

/// An owner of the stress test: per argument, the attempts so far and the runs under
/// way; and how often a run started while another of its key was under way.
struct Site {
    id: u64,
    attempts: [AtomicU32; SITE_ARGS],
    busy: [AtomicU32; SITE_ARGS],
    overlaps: AtomicU32,
}

fn pure(id: u64, arg: u32) -> u64 {
    id * 1000 + u64::from(arg) * 7 + 1
}

/// The seeded roll of one attempt: whether it sleeps, how long, and whether it fails.
fn roll(id: u64, arg: u32, attempt: u32) -> u64 {
    Rng::new(SEED ^ (id << 40) ^ (u64::from(arg) << 20) ^ u64::from(attempt)).next_u64()
}

fn fails(roll: u64) -> bool {
    roll % 5 == 0
}

/// Sleeps up to 1 ms on a third of its attempts and fails on a fifth, as rolled; the
/// error names the attempt.
fn shaky(site: &Arc<Site>, &arg: &u32) -> Result<u64, (u64, u32, u32)> {
    let a = arg as usize;
    // Only an invalidation lets a second run of a key start while one is under way:
    // callers after it must not wait for a computation from before it.
    if site.busy[a].fetch_add(1, SeqCst) > 0 {
        site.overlaps.fetch_add(1, SeqCst);
    }
    let attempt = site.attempts[a].fetch_add(1, SeqCst);
    let roll = roll(site.id, arg, attempt);
    if roll % 3 == 0 {
        thread::sleep(Duration::from_micros((roll >> 8) % 1000));
    }
    site.busy[a].fetch_sub(1, SeqCst);
    if fails(roll) {
        Err((site.id, arg, attempt))
    } else {
        Ok(pure(site.id, arg))
    }
}

#[derive(Default)]
struct StressTally {
    errors: u64,
    invalidated: u64,
}

#[test]
fn stress_random_calls_stay_right_and_balance() {
    let (tallies, sites, cache) = watchdog(Duration::from_secs(60), || {
        let cache = leak(Registry::new());
        let sites: Arc<Vec<Arc<Site>>> = Arc::new(
            (0..SITES as u64)
                .map(|id| {
                    Arc::new(Site {
                        id: id + 1,
                        attempts: Default::default(),
                        busy: Default::default(),
                        overlaps: AtomicU32::new(0),
                    })
                })
                .collect(),
        );
        let shared = sites.clone();
        let tallies = race(STRESS_THREADS, move |t| {
            let mut rng = Rng::new(SEED + t as u64);
            let mut tally = StressTally::default();
            for _ in 0..STRESS_OPS {
                let site = &shared[rng.below(SITES as u64) as usize];
                let arg = rng.below(SITE_ARGS as u64) as u32;
                match rng.below(100) {
                    0..80 => match common::ok_table(cache, shaky).try_call(site, arg) {
                        Ok(value) => assert_eq!(value, pure(site.id, arg)),
                        Err((id, got_arg, attempt)) => {
                            assert_eq!((id, got_arg), (site.id, arg));
                            assert!(fails(roll(id, arg, attempt)), "an error no run made");
                            tally.errors += 1;
                        }
                    },
                    80..90 => {
                        if let Some(value) = common::ok_table(cache, shaky).get(site, &arg) {
                            assert_eq!(value, pure(site.id, arg));
                        }
                    }
                    _ => {
                        tally.invalidated +=
                            u64::from(common::ok_table(cache, shaky).invalidate(site, &arg))
                    }
                }
            }
            tally
        });
        (tallies, sites, cache)
    });
    let tallies: Vec<StressTally> = tallies
        .into_iter()
        .map(|t| t.unwrap_or_else(|message| panic!("a stress thread panicked: {message}")))
        .collect();
    let errors: u64 = tallies.iter().map(|t| t.errors).sum();
    let invalidated: u64 = tallies.iter().map(|t| t.invalidated).sum();
    let runs: u64 = sites
        .iter()
        .flat_map(|site| &site.attempts)
        .map(|a| u64::from(a.load(SeqCst)))
        .sum();

    let stats = cache.stats();
    assert_eq!(stats.invalidated, invalidated);
    assert_eq!(stats.purged, 0);
    let overlaps: u64 = sites
        .iter()
        .map(|s| u64::from(s.overlaps.load(SeqCst)))
        .sum();
    assert!(
        overlaps <= stats.invalidated && stats.discarded <= stats.invalidated,
        "runs overlap, and values go unstored, only after invalidations: {overlaps}, {stats:?}"
    );
    // Every run failed (and its caller saw the error), or stored its value, which is
    // still there or was invalidated, or was not stored because an invalidation covered
    // it while it ran: no run was lost or duplicated.
    assert_eq!(
        runs,
        errors + stats.entries as u64 + stats.invalidated + stats.discarded,
        "{stats:?}"
    );
    assert!(stats.waited <= stats.misses);

    let mut present = 0;
    for site in sites.iter() {
        for arg in 0..SITE_ARGS as u32 {
            if let Some(value) = common::ok_table(cache, shaky).get(site, &arg) {
                assert_eq!(value, pure(site.id, arg));
                present += 1;
            }
        }
    }
    assert_eq!(present, stats.entries);
    drop(sites);
    assert_eq!(cache.purge(), present);
    assert_eq!(cache.stats().entries, 0);
}

// ---------------------------------------------------------------------------------------
// Regressions

/// `Stats::waited` counts calls that waited, exactly; a call refused with "deadlock
/// avoided" did not wait. An earlier version counted it in `claim`, before the wait was
/// checked.
#[test]
fn a_wait_refused_as_a_deadlock_is_not_counted_as_a_wait() {
    let (outcomes, job) = watchdog(LIMIT, || ring(2));
    assert!(outcomes.iter().all(Result::is_err));
    // One thread waited (then took over and met its own key); the other was refused.
    assert_eq!(job.cache.stats().waited, 1);
}
