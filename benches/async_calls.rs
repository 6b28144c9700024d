//! `Memo::call_async` against moka's `future::Cache::get_with` and quick_cache's async
//! guard (`sync::Cache::get_value_or_guard_async`), on the hit path and on one cold key
//! shared by 1,000 tasks.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench async_calls
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench async_calls -- async_hits_40k
//! ```
//!
//! Groups (filter names):
//! - `async_hits_40k`: random hits on 10k owners x 4 args, on a current-thread tokio
//!   runtime. A timed iteration is one `block_on` of a future that awaits 1,024 lookups
//!   one after another (criterion's `iter_custom`; the runtime is built once). Contenders:
//!   - `floor_hashmap`: a bare `HashMap<(usize, u64), u64>` read inside the same
//!     `block_on`, the cost of the loop and of `block_on` itself;
//!   - `weakmemo_call`: the sync `Memo::call` inside the `block_on`, so that
//!     `weakmemo_call_async` beside it shows what the async wrapper costs;
//!   - `weakmemo_call_async`: `Memo::call_async` with an `async fn` method;
//!   - `quick_cache_get`: the sync `sync::Cache::get`, quick_cache's own baseline;
//!   - `quick_cache_async_guard`: `get_value_or_guard_async`, inserting through the guard
//!     on a miss;
//!   - `moka_get_with`: `future::Cache::get_with`.
//!
//!   Before it is timed, every contender makes one full pass that must return the
//!   expected checksum and run the method (or insert) no time at all, so a contender that
//!   missed, and recomputed, fails; after criterion, the same count must still be zero.
//! - `async_cold_key_1000t`: 1,000 tasks, spawned on a 2-worker multi-thread runtime and
//!   released together, ask for one key that nobody has computed. The method awaits
//!   `tokio::time::sleep(1 ms)` (tokio's timer rounds it up to the next millisecond tick)
//!   and counts its executions. Contenders: weakmemo (single flight on, the default),
//!   weakmemo with single flight off (the duplicate-work baseline), quick_cache's async
//!   guard and moka's `get_with`. Each contender's cache lives across rounds and each
//!   round asks for a fresh key (a new owner for weakmemo, a new integer for the others).
//!   A round: the main thread spawns the 1,000 tasks, which meet it at a first
//!   `tokio::sync::Barrier` (untimed), then at a second one that releases their calls
//!   together; the round's time runs from the main thread's arrival at the second barrier
//!   to the last task's join. Every task's value is checked.
//!
//! Before criterion starts, a plain run of 50 cold-key rounds per contender (after one
//! untimed round) prints, to stderr, the executions of the method per round (mean and max;
//! 1 for single flight) and the wall time of a round. After criterion, one line per
//! contender gives the executions over every round criterion ran. The plain run is
//! skipped under `--test` and `--list`.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, measurement::WallTime};
use hashbrown::HashMap;
use tokio::runtime::Runtime;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use weakmemo::Registry;

mod support;
use support::config;
use support::keyset::{ARGS, Data, Owner, addr, f};

// ---------------------------------------------------------------------------------------
// Hit path.

/// Lookups per timed iteration (one `block_on`).
const BATCH: usize = 1024;
/// Owners in the hit-path table (with `ARGS` each, 40k entries, like `hits_40k`).
const OWNERS: u64 = 10_000;

/// Times the method ran (or a value was computed and inserted) on the hit path.
static HIT_PATH_MISSES: AtomicU64 = AtomicU64::new(0);

/// The value computed on a miss, counted: the hit path must never get here once filled.
fn computed(owner: &Arc<Owner>, k: u64) -> u64 {
    HIT_PATH_MISSES.fetch_add(1, Relaxed);
    f(owner, &k)
}

/// The memoized method, for weakmemo's `call`.
fn f_sync(owner: &Arc<Owner>, &k: &u64) -> u64 {
    computed(owner, k)
}

/// The memoized method, for weakmemo's `call_async`.
async fn f_async(owner: &Arc<Owner>, &k: &u64) -> u64 {
    computed(owner, k)
}

impl Data {
    /// One batch of lookups starting at `*pos`, awaited one after another; moves `*pos`
    /// on, wrapping.
    async fn batch(&self, pos: &mut usize, lookup: &impl AsyncFn(&Arc<Owner>, u64) -> u64) -> u64 {
        let start = *pos;
        let end = start + BATCH;
        let mut acc = 0u64;
        for &(i, k) in &self.order[start..end] {
            acc = acc.wrapping_add(lookup(black_box(&self.owners[i as usize]), black_box(k)).await);
        }
        *pos = if end + BATCH > self.order.len() {
            0
        } else {
            end
        };
        acc
    }

    /// A full pass over the order; panics unless it returns the expected checksum
    /// without computing anything.
    async fn verify(&self, name: &str, lookup: &impl AsyncFn(&Arc<Owner>, u64) -> u64) {
        let misses = HIT_PATH_MISSES.load(Relaxed);
        let mut sum = 0u64;
        for &(i, k) in &self.order {
            sum = sum.wrapping_add(lookup(&self.owners[i as usize], k).await);
        }
        assert_eq!(
            sum, self.checksum,
            "{name}: a full pass returned wrong values"
        );
        assert_eq!(
            HIT_PATH_MISSES.load(Relaxed),
            misses,
            "{name}: a full pass missed"
        );
    }
}

fn bench_hits(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    name: &str,
    data: &Data,
    lookup: impl AsyncFn(&Arc<Owner>, u64) -> u64,
) {
    runtime.block_on(data.verify(name, &lookup));
    let misses = HIT_PATH_MISSES.load(Relaxed);
    let mut pos = 0;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(runtime.block_on(data.batch(&mut pos, &lookup)));
            }
            start.elapsed()
        });
    });
    assert_eq!(
        HIT_PATH_MISSES.load(Relaxed),
        misses,
        "{name}: missed while timed"
    );
}

fn async_hits_40k(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let data = Data::new(OWNERS as usize, 0x5EED_0001 + OWNERS);
    let mut group = c.benchmark_group("async_hits_40k");
    group.throughput(Throughput::Elements(BATCH as u64));

    let floor: HashMap<(usize, u64), u64> =
        data.each().map(|(o, k, v)| ((addr(o), k), v)).collect();
    bench_hits(
        &mut group,
        &runtime,
        "floor_hashmap",
        &data,
        async |o, k| floor.get(&(addr(o), k)).copied().unwrap_or(0),
    );
    drop(floor);

    {
        let registry = Registry::new();
        for (o, k, _) in data.each() {
            registry.method(f_sync).call(o, k);
        }
        bench_hits(
            &mut group,
            &runtime,
            "weakmemo_call",
            &data,
            async |o, k| registry.method(f_sync).call(o, k),
        );
        assert_eq!(registry.stats().entries as u64, OWNERS * ARGS);
    }

    {
        let registry = Registry::new();
        runtime.block_on(async {
            for (o, k, _) in data.each() {
                registry.method(f_async).call_async(o, k).await;
            }
        });
        bench_hits(
            &mut group,
            &runtime,
            "weakmemo_call_async",
            &data,
            async |o, k| registry.method(f_async).call_async(o, k).await,
        );
        assert_eq!(registry.stats().entries as u64, OWNERS * ARGS);
    }

    {
        // Twice the entries, so that nothing is evicted (checked by `verify`).
        let cache =
            quick_cache::sync::Cache::<(usize, u64), u64>::new(2 * (OWNERS * ARGS) as usize);
        for (o, k, v) in data.each() {
            cache.insert((addr(o), k), v);
        }
        bench_hits(
            &mut group,
            &runtime,
            "quick_cache_get",
            &data,
            async |o, k| cache.get(&(addr(o), k)).unwrap_or(0),
        );
        bench_hits(
            &mut group,
            &runtime,
            "quick_cache_async_guard",
            &data,
            async |o, k| match cache.get_value_or_guard_async(&(addr(o), k)).await {
                Ok(value) => value,
                Err(guard) => {
                    let value = computed(o, k);
                    let _ = guard.insert(value);
                    value
                }
            },
        );
    }

    {
        let cache = moka::future::Cache::<(usize, u64), u64>::builder()
            .max_capacity(2 * OWNERS * ARGS)
            .build();
        runtime.block_on(async {
            for (o, k, v) in data.each() {
                cache.insert((addr(o), k), v).await;
            }
            cache.run_pending_tasks().await;
        });
        bench_hits(
            &mut group,
            &runtime,
            "moka_get_with",
            &data,
            async |o, k| cache.get_with((addr(o), k), async { computed(o, k) }).await,
        );
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------
// One cold key, 1,000 tasks.

/// Callers per round.
const TASKS: usize = 1000;
/// Worker threads of the cold key's runtime: the machine's cores.
const WORKERS: usize = 2;
/// How long the method awaits.
const METHOD_TIME: Duration = Duration::from_millis(1);
/// Rounds per contender in the plain report.
const REPORT_ROUNDS: usize = 50;

/// Executions of the method; only one contender runs at a time.
static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
/// Keys never asked before, shared by all contenders.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The method's body: counts itself, sleeps, returns a value unique to the key.
async fn compute(key: u64) -> u64 {
    EXECUTIONS.fetch_add(1, Relaxed);
    tokio::time::sleep(METHOD_TIME).await;
    expected(key)
}

fn expected(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15) & !(1 << 63)
}

struct KeyOwner {
    key: u64,
}

/// The memoized method, for weakmemo.
async fn slow(owner: &Arc<KeyOwner>, &(): &()) -> u64 {
    compute(owner.key).await
}

type BoxFuture = Pin<Box<dyn Future<Output = u64> + Send>>;
/// One round's call, made by every task.
type Call = Arc<dyn Fn() -> BoxFuture + Send + Sync>;

/// One round: `TASKS` tasks make `call` once each, released together. Returns the wall
/// time from the release to the last join and checks every caller's value.
fn round(runtime: &Runtime, call: Call, key: u64) -> Duration {
    runtime.block_on(async move {
        let ready = Arc::new(Barrier::new(TASKS + 1));
        let start = Arc::new(Barrier::new(TASKS + 1));
        let mut tasks = JoinSet::new();
        for _ in 0..TASKS {
            let (call, ready, start) = (call.clone(), ready.clone(), start.clone());
            tasks.spawn(async move {
                let mine = call();
                drop(call); // the round's key may be an owner: only the call holds it
                ready.wait().await;
                start.wait().await;
                mine.await
            });
        }
        drop(call);
        ready.wait().await;
        let begin = Instant::now();
        start.wait().await;
        let mut values = Vec::with_capacity(TASKS);
        while let Some(value) = tasks.join_next().await {
            values.push(value);
        }
        let elapsed = begin.elapsed();
        for (i, value) in values.into_iter().enumerate() {
            let value = value.unwrap_or_else(|e| panic!("task {i}: {e}"));
            assert_eq!(value, expected(key), "task {i}: wrong value");
        }
        elapsed
    })
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
    fn round(&self, runtime: &Runtime) -> (Duration, usize) {
        let key = NEXT_KEY.fetch_add(1, Relaxed);
        let call = (self.call)(key);
        EXECUTIONS.store(0, Relaxed);
        let elapsed = round(runtime, call, key);
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
            let owner = Arc::new(KeyOwner { key });
            Arc::new(move || {
                let (registry, owner) = (registry.clone(), owner.clone());
                Box::pin(async move { registry.method(slow).call_async(&owner, ()).await })
            })
        }),
        counters: Some(Box::new(move || {
            let stats = reader.stats();
            (stats.waited, stats.discarded)
        })),
    }
}

fn contenders() -> Vec<Contender> {
    let quick = Arc::new(quick_cache::sync::Cache::<u64, u64>::new(10_000));
    let moka = moka::future::Cache::<u64, u64>::new(10_000);
    vec![
        weakmemo("weakmemo", Registry::new()),
        weakmemo(
            "weakmemo_no_single_flight",
            Registry::builder().single_flight(false).build(),
        ),
        Contender {
            name: "quick_cache_async_guard",
            single_flight: true,
            call: Box::new(move |key| {
                let quick = quick.clone();
                Arc::new(move || {
                    let quick = quick.clone();
                    Box::pin(async move {
                        match quick.get_value_or_guard_async(&key).await {
                            Ok(value) => value,
                            Err(guard) => {
                                let value = compute(key).await;
                                let _ = guard.insert(value);
                                value
                            }
                        }
                    })
                })
            }),
            counters: None,
        },
        Contender {
            name: "moka_get_with",
            single_flight: true,
            call: Box::new(move |key| {
                let moka = moka.clone();
                Arc::new(move || {
                    let moka = moka.clone();
                    Box::pin(async move { moka.get_with(key, compute(key)).await })
                })
            }),
            counters: None,
        },
    ]
}

/// Outside criterion: executions and wall time per round.
fn report(runtime: &Runtime, contenders: &[Contender]) {
    support::cold_key_header(&format!(
        "async_cold_key: {TASKS} tasks on {WORKERS} worker threads, released together, ask \
         for one cold key; the method awaits a {} ms sleep; {REPORT_ROUNDS} rounds per \
         contender after one untimed round",
        METHOD_TIME.as_millis()
    ));
    for contender in contenders {
        contender.round(runtime);
        support::cold_key_line(
            contender.name,
            contender.single_flight,
            contender.counters.as_deref(),
            REPORT_ROUNDS,
            || contender.round(runtime),
        );
    }
    eprintln!();
}

fn async_cold_key(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_time()
        .build()
        .expect("a multi-thread runtime");
    let contenders = contenders();
    let testing = std::env::args().any(|arg| arg == "--test" || arg == "--list");
    if !testing {
        report(&runtime, &contenders);
    }
    let mut group = c.benchmark_group("async_cold_key_1000t");
    let mut tallies = Vec::new();
    for contender in &contenders {
        // (rounds, executions, max executions in a round) over every round criterion ran.
        let mut tally = (0usize, 0usize, 0usize);
        group.bench_function(contender.name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (elapsed, runs) = contender.round(&runtime);
                        tally = (tally.0 + 1, tally.1 + runs, tally.2.max(runs));
                        elapsed
                    })
                    .sum()
            });
        });
        tallies.push((contender.name, contender.single_flight, tally));
    }
    group.finish();
    for (name, single_flight, (_, _, max)) in &tallies {
        assert!(
            !single_flight || *max <= 1,
            "{name}: single flight ran the method {max} times in a round under criterion"
        );
    }
    if !testing {
        eprintln!();
        for (name, _, (rounds, runs, max)) in tallies {
            eprintln!(
                "async_cold_key_1000t/{name}: {rounds} rounds under criterion, executions \
                 per round mean {:.2}, max {max}",
                runs as f64 / rounds.max(1) as f64
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = async_hits_40k, async_cold_key
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
