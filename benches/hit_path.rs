//! Hit path, concurrent hits, miss + insert and purge-interval benchmarks for weakmemo,
//! each against baselines measured side by side in the same criterion group.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench hit_path
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench hit_path -- hits_40k
//! ```
//!
//! Groups (filter names):
//! - `hits_40k`, `hits_1m`: random hits on 10k owners x 4 args and 250k owners x 4 args;
//!   `weakmemo_arc_arg` passes the argument as an object held weakly (a second owner),
//!   `weakmemo_str_arg` as a `&str` looked up against a stored `String`;
//!   `weakmemo_call` finds the method's table each call, `weakmemo_handle` holds it.
//! - `threads_40k`: the 40k hits from 1 and from 2 threads (wall clock, `iter_custom`).
//! - `hot_key`: hits from 1 and 2 threads on one key (`one/...`), and on 16 keys with
//!   Zipf traffic (s = 1: the hottest key takes 30% of the lookups; `zipf16/...`), each
//!   thread from its own place in one sequence. weakmemo through a handle made once.
//! - `miss_insert`: a fresh key (new args on an existing owner) computed and stored, in a
//!   table that already holds the 40k entries and has been through a warm-up round.
//! - `purge_interval`: hits on 40k live entries plus 40k entries of dropped owners, for
//!   several purge intervals. Before criterion starts, a plain run prints (to stderr) how
//!   many lookups each interval needs until the dead owners' entries are gone.
//!
//! `quick_cache_sharded` is quick_cache built with its `sharded-lock` feature (see
//! Cargo.toml), in the hit groups.
//!
//! Every contender's table is checked once against the expected checksum before it is
//! timed, so a contender that silently missed (an evicting cache, a wrong key) fails.

use std::hint::black_box;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, measurement::WallTime};
use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock};
use weak_table::PtrWeakKeyHashMap;
use weakmemo::Registry;

mod support;
use support::config;
use support::keyset::{ARGS, Data, Owner, addr, f};

/// Lookups per timed iteration, so that the timer's own cost is negligible.
const BATCH: usize = 1024;

/// Whether a benchmark id passes the command line's filters, approximately (criterion
/// takes a regex; plain names are substrings). Lets a filtered run skip building the
/// tables of contenders it will not time: `cargo bench --bench hit_path -- hits_1m/weakmemo`.
fn wanted(id: &str) -> bool {
    const WITH_VALUE: [&str; 14] = [
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--profile-time",
        "--measurement-time",
        "--warm-up-time",
        "--sample-size",
        "--output-format",
        "--color",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
    ];
    let mut filters = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    filters.is_empty()
        || filters.iter().any(|filter| {
            id.contains(filter.as_str()) || filter.contains(|c: char| "^$.*+?()[]{}|\\".contains(c))
        })
}

impl Data {
    /// One batch of lookups starting at `*pos`; moves `*pos` on, wrapping.
    #[inline(always)]
    fn batch(&self, pos: &mut usize, lookup: &impl Fn(&Arc<Owner>, u64) -> u64) -> u64 {
        let start = *pos;
        let end = start + BATCH;
        let mut acc = 0u64;
        for &(i, k) in &self.order[start..end] {
            acc = acc.wrapping_add(lookup(black_box(&self.owners[i as usize]), black_box(k)));
        }
        *pos = if end + BATCH > self.order.len() {
            0
        } else {
            end
        };
        acc
    }

    /// A full pass over the order; panics unless it returns the expected checksum.
    fn verify(&self, name: &str, lookup: &impl Fn(&Arc<Owner>, u64) -> u64) {
        let sum = self.order.iter().fold(0u64, |acc, &(i, k)| {
            acc.wrapping_add(lookup(&self.owners[i as usize], k))
        });
        assert_eq!(
            sum, self.checksum,
            "{name}: a full pass did not hit every entry"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Contenders, built from a Data.

type Floor = HashMap<(usize, u64), u64>;
type WeakTable = PtrWeakKeyHashMap<Weak<Owner>, HashMap<u64, u64>>;

fn build_floor(data: &Data) -> Floor {
    let mut map = Floor::with_capacity(data.entries());
    for (o, k, v) in data.each() {
        map.insert((addr(o), k), v);
    }
    map
}

fn build_quick_cache(data: &Data) -> quick_cache::sync::Cache<(usize, u64), u64> {
    // Twice the entries, so that nothing is evicted (checked by `verify`).
    let cache = quick_cache::sync::Cache::new(data.entries() * 2);
    for (o, k, v) in data.each() {
        cache.insert((addr(o), k), v);
    }
    cache
}

/// quick_cache with its `sharded-lock` feature (see Cargo.toml), built as above.
fn build_quick_cache_sharded(data: &Data) -> quick_cache_sharded::sync::Cache<(usize, u64), u64> {
    let cache = quick_cache_sharded::sync::Cache::new(data.entries() * 2);
    for (o, k, v) in data.each() {
        cache.insert((addr(o), k), v);
    }
    cache
}

fn build_moka(data: &Data) -> moka::sync::Cache<(usize, u64), u64> {
    let cache = moka::sync::Cache::builder()
        .max_capacity(data.entries() as u64 * 2)
        .build();
    for (o, k, v) in data.each() {
        cache.insert((addr(o), k), v);
    }
    cache.run_pending_tasks();
    cache
}

fn build_weak_table(data: &Data) -> WeakTable {
    let mut map = WeakTable::new();
    for (o, k, v) in data.each() {
        map.entry(o.clone())
            .or_insert_with(HashMap::new)
            .insert(k, v);
    }
    map
}

fn build_weakmemo(data: &Data, registry: Registry) -> Registry {
    for (o, k, _) in data.each() {
        registry.method(f).call(o, k);
    }
    registry
}

// ---------------------------------------------------------------------------------------
// Single-thread hits.

fn bench_one(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    data: &Data,
    lookup: impl Fn(&Arc<Owner>, u64) -> u64,
) {
    data.verify(name, &lookup);
    let mut pos = 0;
    group.bench_function(name, |b| b.iter(|| data.batch(&mut pos, &lookup)));
}

fn hits(c: &mut Criterion, group_name: &str, owners: usize) {
    let data = Data::new(owners, 0x5EED_0001 + owners as u64);
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(BATCH as u64));

    let want = |name: &str| wanted(&format!("{group_name}/{name}"));
    if want("floor_hashmap") {
        let map = build_floor(&data);
        bench_one(&mut group, "floor_hashmap", &data, |o, k| {
            map.get(&(addr(o), k)).copied().unwrap_or(0)
        });
    }
    if want("mutex_hashmap") {
        let map = Mutex::new(build_floor(&data));
        bench_one(&mut group, "mutex_hashmap", &data, |o, k| {
            map.lock().get(&(addr(o), k)).copied().unwrap_or(0)
        });
    }
    if want("quick_cache") {
        let cache = build_quick_cache(&data);
        bench_one(&mut group, "quick_cache", &data, |o, k| {
            cache.get(&(addr(o), k)).unwrap_or(0)
        });
    }
    if want("quick_cache_sharded") {
        let cache = build_quick_cache_sharded(&data);
        bench_one(&mut group, "quick_cache_sharded", &data, |o, k| {
            cache.get(&(addr(o), k)).unwrap_or(0)
        });
    }
    if want("moka") {
        let cache = build_moka(&data);
        bench_one(&mut group, "moka", &data, |o, k| {
            cache.get(&(addr(o), k)).unwrap_or(0)
        });
    }
    if want("weak_table_mutex") {
        let map = Mutex::new(build_weak_table(&data));
        bench_one(&mut group, "weak_table_mutex", &data, |o, k| {
            map.lock()
                .get(o)
                .and_then(|inner| inner.get(&k).copied())
                .unwrap_or(0)
        });
    }
    if want("weakmemo_call") || want("weakmemo_get") || want("weakmemo_handle") {
        let registry = build_weakmemo(&data, Registry::new());
        if want("weakmemo_call") {
            bench_one(&mut group, "weakmemo_call", &data, |o, k| {
                registry.method(f).call(o, k)
            });
        }
        if want("weakmemo_handle") {
            // The handle made once, as a hot loop (or `Type::NAME_memo()`) holds it.
            let handle = registry.method(f);
            bench_one(&mut group, "weakmemo_handle", &data, |o, k| {
                handle.call(o, k)
            });
        }
        if want("weakmemo_get") {
            bench_one(&mut group, "weakmemo_get", &data, |o, k| {
                registry.method(f).get(o, &k).unwrap_or(0)
            });
        }
        let stats = registry.stats();
        assert_eq!(stats.entries, data.entries());
        assert_eq!(stats.misses, data.entries() as u64);
    }
    if want("weakmemo_arc_arg") {
        // The argument is an object held weakly, a second owner beside the receiver.
        let args: Vec<Arc<Owner>> = (0..ARGS).map(|id| Arc::new(Owner { id })).collect();
        let registry = Registry::new();
        let lookup =
            |o: &Arc<Owner>, k: u64| registry.method(f_arc).call((o, &args[k as usize]), ());
        for (o, k, _) in data.each() {
            lookup(o, k);
        }
        bench_one(&mut group, "weakmemo_arc_arg", &data, lookup);
    }
    if want("weakmemo_str_arg") {
        // The argument is a `&str`, looked up against a stored `String`.
        let names: Vec<String> = (0..ARGS).map(|k| "k".repeat(k as usize + 1)).collect();
        let registry = Registry::new();
        let lookup =
            |o: &Arc<Owner>, k: u64| registry.method(f_str).call(o, names[k as usize].as_str());
        for (o, k, _) in data.each() {
            lookup(o, k);
        }
        bench_one(&mut group, "weakmemo_str_arg", &data, lookup);
    }
    group.finish();
}

/// `f`, with its argument given as an object (its id).
fn f_arc((owner, arg): (&Arc<Owner>, &Arc<Owner>), &(): &()) -> u64 {
    f(owner, &arg.id)
}

/// `f`, with its argument given as a name (of its length plus one).
// The table stores the `String` a `&str` looks up, and hands the method that.
#[allow(clippy::ptr_arg)]
fn f_str(owner: &Arc<Owner>, name: &String) -> u64 {
    f(owner, &(name.len() as u64 - 1))
}

fn hits_40k(c: &mut Criterion) {
    hits(c, "hits_40k", 10_000);
}

fn hits_1m(c: &mut Criterion) {
    hits(c, "hits_1m", 250_000);
}

// ---------------------------------------------------------------------------------------
// Hits from 1 and 2 threads.

fn bench_threads(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    data: &Data,
    lookup: impl Fn(&Arc<Owner>, u64) -> u64 + Sync,
) {
    data.verify(name, &lookup);
    for threads in [1usize, 2] {
        // Elements are lookups summed over the threads.
        group.throughput(Throughput::Elements((BATCH * threads) as u64));
        group.bench_function(format!("{name}/{threads}t"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for t in 0..threads {
                        let lookup = &lookup;
                        scope.spawn(move || {
                            // Threads start apart, so they do not walk the same keys in step.
                            let mut pos = (data.entries() / threads * t) / BATCH * BATCH;
                            let mut acc = 0u64;
                            for _ in 0..iters {
                                acc = acc.wrapping_add(data.batch(&mut pos, lookup));
                            }
                            black_box(acc);
                        });
                    }
                });
                start.elapsed()
            });
        });
    }
}

fn threads_40k(c: &mut Criterion) {
    let data = Data::new(10_000, 0x5EED_0002);
    let mut group = c.benchmark_group("threads_40k");
    let want = |name: &str| wanted(&format!("threads_40k/{name}"));
    if want("floor_hashmap") {
        // No lock at all: how well this machine scales reads of a shared table.
        let map = build_floor(&data);
        bench_threads(&mut group, "floor_hashmap", &data, |o, k| {
            map.get(&(addr(o), k)).copied().unwrap_or(0)
        });
    }
    if want("rwlock_hashmap") {
        let map = RwLock::new(build_floor(&data));
        bench_threads(&mut group, "rwlock_hashmap", &data, |o, k| {
            map.read().get(&(addr(o), k)).copied().unwrap_or(0)
        });
    }
    if want("quick_cache") {
        let cache = build_quick_cache(&data);
        bench_threads(&mut group, "quick_cache", &data, |o, k| {
            cache.get(&(addr(o), k)).unwrap_or(0)
        });
    }
    if want("quick_cache_sharded") {
        let cache = build_quick_cache_sharded(&data);
        bench_threads(&mut group, "quick_cache_sharded", &data, |o, k| {
            cache.get(&(addr(o), k)).unwrap_or(0)
        });
    }
    if want("moka") {
        let cache = build_moka(&data);
        bench_threads(&mut group, "moka", &data, |o, k| {
            cache.get(&(addr(o), k)).unwrap_or(0)
        });
    }
    if want("weakmemo_call") {
        let registry = build_weakmemo(&data, Registry::new());
        bench_threads(&mut group, "weakmemo_call", &data, |o, k| {
            registry.method(f).call(o, k)
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------
// Hot keys: every thread on one key, or on the hottest of 16.

/// 4 owners x 4 arguments; `order` is all on one key, or a Zipf sequence (s = 1) over
/// the 16, long enough for the threads' starting places to be apart.
fn hot_data(zipf: bool) -> Data {
    let mut data = Data::new(4, 0x5EED_0003);
    let keys: Vec<(u32, u64)> = (0..4u32)
        .flat_map(|i| (0..ARGS).map(move |k| (i, k)))
        .collect();
    let len = 64 * BATCH;
    data.order = if zipf {
        let weights: Vec<f64> = (1..=keys.len()).map(|rank| 1.0 / rank as f64).collect();
        let total: f64 = weights.iter().sum();
        let mut rng = support::keyset::XorShift(0x2195);
        (0..len)
            .map(|_| {
                let mut u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
                let mut rank = 0;
                while rank + 1 < keys.len() && u >= weights[rank] {
                    u -= weights[rank];
                    rank += 1;
                }
                keys[rank]
            })
            .collect()
    } else {
        vec![keys[0]; len]
    };
    data.checksum = data.order.iter().fold(0u64, |acc, &(i, k)| {
        acc.wrapping_add(f(&data.owners[i as usize], &k))
    });
    data
}

fn hot_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot_key");
    for (shape, zipf) in [("one", false), ("zipf16", true)] {
        let data = hot_data(zipf);
        let want = |name: &str| wanted(&format!("hot_key/{shape}/{name}"));
        if want("floor_hashmap") {
            let map = build_floor(&data);
            bench_threads(
                &mut group,
                &format!("{shape}/floor_hashmap"),
                &data,
                |o, k| map.get(&(addr(o), k)).copied().unwrap_or(0),
            );
        }
        if want("mutex_hashmap") {
            let map = Mutex::new(build_floor(&data));
            bench_threads(
                &mut group,
                &format!("{shape}/mutex_hashmap"),
                &data,
                |o, k| map.lock().get(&(addr(o), k)).copied().unwrap_or(0),
            );
        }
        if want("quick_cache") {
            let cache = build_quick_cache(&data);
            bench_threads(
                &mut group,
                &format!("{shape}/quick_cache"),
                &data,
                |o, k| cache.get(&(addr(o), k)).unwrap_or(0),
            );
        }
        if want("quick_cache_sharded") {
            let cache = build_quick_cache_sharded(&data);
            bench_threads(
                &mut group,
                &format!("{shape}/quick_cache_sharded"),
                &data,
                |o, k| cache.get(&(addr(o), k)).unwrap_or(0),
            );
        }
        if want("moka") {
            let cache = build_moka(&data);
            bench_threads(&mut group, &format!("{shape}/moka"), &data, |o, k| {
                cache.get(&(addr(o), k)).unwrap_or(0)
            });
        }
        if want("weak_table_mutex") {
            let map = Mutex::new(build_weak_table(&data));
            bench_threads(
                &mut group,
                &format!("{shape}/weak_table_mutex"),
                &data,
                |o, k| {
                    map.lock()
                        .get(o)
                        .and_then(|args| args.get(&k).copied())
                        .unwrap_or(0)
                },
            );
        }
        if want("weakmemo_handle") {
            let registry = build_weakmemo(&data, Registry::new());
            let handle = registry.method(f);
            bench_threads(
                &mut group,
                &format!("{shape}/weakmemo_handle"),
                &data,
                |o, k| handle.call(o, k),
            );
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------
// Miss + insert: each timed batch computes and stores BATCH fresh keys (new args on
// existing owners) into a table holding the 40k entries; the batch's keys are removed
// again outside the timer, so the table keeps its size and its capacity (it has been
// through one untimed warm-up round, so no timed insert grows it).

/// A contender's timed insert and untimed removal of one fresh key.
trait Inserter {
    fn insert(&self, owner: &Arc<Owner>, k: u64) -> u64;
    fn remove(&self, owner: &Arc<Owner>, k: u64);
}

struct FloorInsert(std::cell::RefCell<Floor>);
impl Inserter for FloorInsert {
    fn insert(&self, o: &Arc<Owner>, k: u64) -> u64 {
        let v = f(o, &k);
        self.0.borrow_mut().insert((addr(o), k), v);
        v
    }
    fn remove(&self, o: &Arc<Owner>, k: u64) {
        self.0.borrow_mut().remove(&(addr(o), k));
    }
}

struct MutexInsert(Mutex<Floor>);
impl Inserter for MutexInsert {
    fn insert(&self, o: &Arc<Owner>, k: u64) -> u64 {
        *self
            .0
            .lock()
            .entry((addr(o), k))
            .or_insert_with(|| f(o, &k))
    }
    fn remove(&self, o: &Arc<Owner>, k: u64) {
        self.0.lock().remove(&(addr(o), k));
    }
}

struct QuickInsert(quick_cache::sync::Cache<(usize, u64), u64>);
impl Inserter for QuickInsert {
    fn insert(&self, o: &Arc<Owner>, k: u64) -> u64 {
        let key = (addr(o), k);
        self.0.get(&key).unwrap_or_else(|| {
            let v = f(o, &k);
            self.0.insert(key, v);
            v
        })
    }
    fn remove(&self, o: &Arc<Owner>, k: u64) {
        self.0.remove(&(addr(o), k));
    }
}

struct WeakmemoInsert(Registry);
impl Inserter for WeakmemoInsert {
    fn insert(&self, o: &Arc<Owner>, k: u64) -> u64 {
        self.0.method(f).call(o, k)
    }
    fn remove(&self, o: &Arc<Owner>, k: u64) {
        self.0.method(f).invalidate(o, &k);
    }
}

fn bench_insert(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    data: &Data,
    table: impl Inserter,
) {
    let mut pos = 0usize;
    let mut fresh = 1_000_000u64; // args never used before
    let mut keys = Vec::with_capacity(BATCH);
    let mut round = |table: &dyn Inserter| -> Duration {
        keys.clear();
        for _ in 0..BATCH {
            let (i, _) = data.order[pos];
            pos = (pos + 1) % data.order.len();
            keys.push((i, fresh));
            fresh += 1;
        }
        let start = Instant::now();
        let mut acc = 0u64;
        for &(i, k) in &keys {
            acc = acc.wrapping_add(table.insert(black_box(&data.owners[i as usize]), k));
        }
        let elapsed = start.elapsed();
        black_box(acc);
        for &(i, k) in &keys {
            table.remove(&data.owners[i as usize], k);
        }
        elapsed
    };
    round(&table); // warm-up round: the table reaches the size it keeps
    group.bench_function(name, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| round(&table)).sum())
    });
}

fn miss_insert(c: &mut Criterion) {
    let data = Data::new(10_000, 0x5EED_0003);
    let mut group = c.benchmark_group("miss_insert");
    group.throughput(Throughput::Elements(BATCH as u64));
    let want = |name: &str| wanted(&format!("miss_insert/{name}"));
    if want("floor_hashmap") {
        let table = FloorInsert(build_floor(&data).into());
        bench_insert(&mut group, "floor_hashmap", &data, table);
    }
    if want("mutex_hashmap") {
        let table = MutexInsert(Mutex::new(build_floor(&data)));
        bench_insert(&mut group, "mutex_hashmap", &data, table);
    }
    if want("quick_cache") {
        let table = QuickInsert(build_quick_cache(&data));
        bench_insert(&mut group, "quick_cache", &data, table);
    }
    if want("weakmemo_call") {
        let table = WeakmemoInsert(build_weakmemo(&data, Registry::new()));
        bench_insert(&mut group, "weakmemo_call", &data, table);
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------
// Purge interval: hits on 40k live entries with 40k dead owners' entries beside them.

const INTERVALS: [usize; 6] = [0, 16, 64, 256, 1024, 4096];

/// A registry holding `live` (10k owners x 4) plus the entries of 10k dropped owners.
fn live_and_dead(live: &Data, interval: usize) -> Registry {
    let registry = Registry::builder().purge_interval(interval).build();
    let dead: Vec<_> = (0..live.owners.len() as u64)
        .map(|id| Arc::new(Owner { id: id + 1_000_000 }))
        .collect();
    // Interleaved, so live and dead entries share the tables as they would in use.
    for (o, d) in live.owners.iter().zip(&dead) {
        for k in 0..ARGS {
            registry.method(f).call(o, k);
            registry.method(f).call(d, k);
        }
    }
    drop(dead);
    assert_eq!(registry.stats().entries, live.entries() * 2);
    registry
}

/// Outside criterion: lookups (hits on live entries) until the dead entries are gone.
fn purge_report() {
    const CAP: u64 = 50_000_000;
    let data = Data::new(10_000, 0x5EED_0004);
    eprintln!();
    eprintln!("purge_interval: 40k live + 40k dead entries, hits on live entries only");
    eprintln!(
        "| interval | lookups until entries == live | lazy purge steps in those lookups | \
         entries after 1M lookups |"
    );
    eprintln!("|---:|---:|---:|---:|");
    for interval in INTERVALS {
        let registry = live_and_dead(&data, interval);
        let steps_before = registry.stats().purge_steps; // made by the 80k setup calls
        let mut pos = 0;
        let mut lookups = 0u64;
        let mut after_1m = None;
        let lookup = |o: &Arc<Owner>, k: u64| registry.method(f).call(o, k);
        let done = loop {
            black_box(data.batch(&mut pos, &lookup));
            lookups += BATCH as u64;
            let entries = registry.stats().entries;
            if lookups >= 1_000_000 && after_1m.is_none() {
                after_1m = Some(entries);
            }
            if entries == data.entries() {
                break Some(lookups);
            }
            if lookups >= CAP || (interval == 0 && lookups >= 1_000_000) {
                break None;
            }
        };
        let stats = registry.stats();
        let after_1m = after_1m.map_or_else(|| data.entries().to_string(), |e| e.to_string());
        let done = match (done, interval) {
            (Some(n), _) => n.to_string(),
            (None, 0) => "never (lazy steps off; only growth or purge())".to_string(),
            (None, _) => format!("> {CAP}"),
        };
        let steps = stats.purge_steps - steps_before;
        eprintln!("| {interval} | {done} | {steps} | {after_1m} |");
    }
    eprintln!();
}

fn purge_interval(c: &mut Criterion) {
    let data = Data::new(10_000, 0x5EED_0004);
    let mut group = c.benchmark_group("purge_interval");
    group.throughput(Throughput::Elements(BATCH as u64));
    for interval in INTERVALS {
        let name = format!("weakmemo_call/{interval}");
        if !wanted(&format!("purge_interval/{name}")) {
            continue;
        }
        let registry = live_and_dead(&data, interval);
        // Timed from the start with the dead entries present; the warm-up and the
        // measurement then run through the lazy purge, so this is the steady cost.
        bench_one(&mut group, &name, &data, |o, k| {
            registry.method(f).call(o, k)
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------

criterion_group! {
    name = benches;
    config = config();
    targets = hits_40k, hits_1m, threads_40k, hot_key, miss_insert, purge_interval
}

fn main() {
    // The plain report runs when the filters let purge_interval run, but not in
    // `cargo test --benches` (criterion's `--test` mode) or `--list`.
    let testing = std::env::args().any(|arg| arg == "--test" || arg == "--list");
    if !testing && wanted("purge_interval/weakmemo_call") {
        purge_report();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
