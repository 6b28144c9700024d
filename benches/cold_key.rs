//! Cold key: 16 threads released together ask for one key that nobody has computed yet.
//! The method sleeps 1 ms and counts its executions. With single flight one thread runs
//! it and the others wait for its value; without, every thread that misses runs it.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench cold_key
//! ```
//!
//! Contenders, side by side in one run:
//! - `weakmemo`: `Registry::new()`, single flight on (the default).
//! - `weakmemo_no_single_flight`: `Registry::builder().single_flight(false)`, the
//!   duplicate-work baseline.
//! - `quick_cache`: `sync::Cache::get_or_insert_with`.
//! - `moka`: `sync::Cache::get_with`.
//!
//! Each contender's cache lives across rounds and each round asks for a fresh key (a new
//! owner for weakmemo, a new integer for the others), so the key is cold and nothing but
//! the key is made per round. The 16 worker threads are spawned once and reused. A round:
//! the main thread hands the workers the round's call, they pick it up (untimed), then
//! all 17 meet at a `std::sync::Barrier` that releases the 16 calls together, and meet
//! again at a second barrier when every call has returned. Criterion times a round
//! (`iter_custom`, wall clock from the main thread's arrival at the start barrier to its
//! release from the end barrier).
//!
//! Before criterion starts, a plain run of 50 rounds per contender (after one untimed
//! round) prints, to stderr, the executions of the method per round (mean and max; 1 for
//! single flight) and the wall time of a round. After criterion, one line per contender
//! gives the executions over every round criterion ran. Every round checks that all 16
//! callers received the method's value.

use std::convert::Infallible;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use weakmemo::Registry;

mod support;
use support::config;

/// Callers per round.
const THREADS: usize = 16;
/// How long the method takes.
const METHOD_TIME: Duration = Duration::from_millis(1);
/// Rounds per contender in the plain report.
const REPORT_ROUNDS: usize = 50;
/// What a worker records when its call panicked.
const PANICKED: u64 = u64::MAX;

/// Executions of the method; only one contender runs at a time.
static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
/// Keys never asked before, shared by all contenders.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The method's body: counts itself, sleeps, returns a value unique to the key.
fn compute(key: u64) -> u64 {
    EXECUTIONS.fetch_add(1, Relaxed);
    std::thread::sleep(METHOD_TIME);
    expected(key)
}

fn expected(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15) & !(1 << 63)
}

struct Owner {
    key: u64,
}

/// The memoized method, for weakmemo.
fn slow(owner: &Arc<Owner>, &(): &()) -> u64 {
    compute(owner.key)
}

/// One round's call, made by every worker.
type Call = Arc<dyn Fn() -> u64 + Send + Sync>;

/// 16 threads that make one call each per round, released together.
struct Pool {
    call: Arc<Mutex<Option<Call>>>,
    /// Every worker has picked up the round's call (or learnt to stop).
    ready: Arc<Barrier>,
    /// Releases the calls together.
    start: Arc<Barrier>,
    /// Every call has returned.
    end: Arc<Barrier>,
    results: Arc<[AtomicU64]>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new() -> Self {
        let call: Arc<Mutex<Option<Call>>> = Arc::default();
        let [ready, start, end] = [(); 3].map(|()| Arc::new(Barrier::new(THREADS + 1)));
        let results: Arc<[AtomicU64]> = (0..THREADS).map(|_| AtomicU64::new(0)).collect();
        let workers = (0..THREADS)
            .map(|i| {
                let (call, ready, start, end, results) = (
                    call.clone(),
                    ready.clone(),
                    start.clone(),
                    end.clone(),
                    results.clone(),
                );
                std::thread::spawn(move || {
                    loop {
                        ready.wait();
                        let Some(mine) = call.lock().unwrap().clone() else {
                            return;
                        };
                        start.wait();
                        let value = catch_unwind(AssertUnwindSafe(|| mine())).unwrap_or(PANICKED);
                        drop(mine); // the round's key may be an owner: let it go
                        results[i].store(value, Relaxed);
                        end.wait();
                    }
                })
            })
            .collect();
        Self {
            call,
            ready,
            start,
            end,
            results,
            workers,
        }
    }

    /// One round: every worker makes `call` once, all released together. Returns the
    /// wall time from the release to the last return and checks every caller's value.
    fn round(&self, call: Call, key: u64) -> Duration {
        *self.call.lock().unwrap() = Some(call);
        self.ready.wait();
        let start = Instant::now();
        self.start.wait();
        self.end.wait();
        let elapsed = start.elapsed();
        // Every worker took its copy before the start barrier; the key's owner goes now.
        *self.call.lock().unwrap() = None;
        for (i, result) in self.results.iter().enumerate() {
            let value = result.swap(0, Relaxed);
            assert_ne!(value, PANICKED, "worker {i}: the call panicked");
            assert_eq!(value, expected(key), "worker {i}: wrong value");
        }
        elapsed
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        *self.call.lock().unwrap() = None;
        self.ready.wait();
        for worker in self.workers.drain(..) {
            worker.join().unwrap();
        }
    }
}

/// A cache under test: how to ask it for a key, and its own counters where it has them.
struct Contender {
    name: &'static str,
    single_flight: bool,
    /// The call that asks for `key`.
    call: Box<dyn Fn(u64) -> Call>,
    /// (calls that waited, values discarded), for weakmemo.
    counters: Option<Box<dyn Fn() -> (u64, u64)>>,
}

impl Contender {
    /// One round on a fresh key; returns its wall time and the method's executions.
    fn round(&self, pool: &Pool) -> (Duration, usize) {
        let key = NEXT_KEY.fetch_add(1, Relaxed);
        let call = (self.call)(key);
        EXECUTIONS.store(0, Relaxed);
        let elapsed = pool.round(call, key);
        (elapsed, EXECUTIONS.load(Relaxed))
    }
}

fn weakmemo(name: &'static str, registry: Registry) -> Contender {
    let registry = Arc::new(registry);
    let single_flight = registry.single_flight();
    let reader = registry.clone();
    Contender {
        name,
        single_flight,
        call: Box::new(move |key| {
            let registry = registry.clone();
            let owner = Arc::new(Owner { key });
            Arc::new(move || registry.method(slow).call(&owner, ()))
        }),
        counters: Some(Box::new(move || {
            let stats = reader.stats();
            (stats.waited, stats.discarded)
        })),
    }
}

fn contenders() -> Vec<Contender> {
    let quick = Arc::new(quick_cache::sync::Cache::<u64, u64>::new(10_000));
    let moka = moka::sync::Cache::<u64, u64>::new(10_000);
    vec![
        weakmemo("weakmemo", Registry::new()),
        weakmemo(
            "weakmemo_no_single_flight",
            Registry::builder().single_flight(false).build(),
        ),
        Contender {
            name: "quick_cache",
            single_flight: true,
            call: Box::new(move |key| {
                let quick = quick.clone();
                Arc::new(move || {
                    let Ok(value) =
                        quick.get_or_insert_with(&key, || Ok::<_, Infallible>(compute(key)));
                    value
                })
            }),
            counters: None,
        },
        Contender {
            name: "moka",
            single_flight: true,
            call: Box::new(move |key| {
                let moka = moka.clone();
                Arc::new(move || moka.get_with(key, || compute(key)))
            }),
            counters: None,
        },
    ]
}

/// Outside criterion: executions and wall time per round.
fn report(pool: &Pool, contenders: &[Contender]) {
    support::cold_key_header(&format!(
        "cold_key: {THREADS} threads released together ask for one cold key; the method \
         sleeps {} ms; {REPORT_ROUNDS} rounds per contender after one untimed round",
        METHOD_TIME.as_millis()
    ));
    for contender in contenders {
        contender.round(pool);
        support::cold_key_line(
            contender.name,
            contender.single_flight,
            contender.counters.as_deref(),
            REPORT_ROUNDS,
            || contender.round(pool),
        );
    }
    eprintln!();
}

fn cold_key(c: &mut Criterion) {
    let pool = Pool::new();
    let contenders = contenders();
    let testing = std::env::args().any(|arg| arg == "--test" || arg == "--list");
    if !testing {
        report(&pool, &contenders);
    }
    let mut group = c.benchmark_group("cold_key_16t");
    let mut tallies = Vec::new();
    for contender in &contenders {
        // (rounds, executions, max executions in a round) over every round criterion ran.
        let mut tally = (0usize, 0usize, 0usize);
        group.bench_function(contender.name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (elapsed, runs) = contender.round(&pool);
                        tally = (tally.0 + 1, tally.1 + runs, tally.2.max(runs));
                        elapsed
                    })
                    .sum()
            });
        });
        tallies.push((contender.name, tally));
    }
    group.finish();
    if !testing {
        eprintln!();
        for (name, (rounds, runs, max)) in tallies {
            eprintln!(
                "cold_key_16t/{name}: {rounds} rounds under criterion, executions per round \
                 mean {:.2}, max {max}",
                runs as f64 / rounds.max(1) as f64
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = cold_key
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
