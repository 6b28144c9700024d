//! Churn: create an owner, call a memoized method on it twice (a miss, then a hit), drop
//! it; a million times. A naive global memo table keyed by owner address that stores an
//! `Arc` clone keeps every owner alive; weakmemo keeps none.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench churn
//! ```
//!
//! Before criterion starts, a plain run of 1,000,000 iterations per variant prints (to
//! stderr) peak and final entries, live owners, process memory (VmRSS) and wrong values.
//! It also runs a third variant, a table keyed by the raw address alone (no `Arc`, no
//! `Weak`): it frees the owners but returns wrong values once the allocator reuses an
//! address, which is why weakmemo holds a `Weak`.
//!
//! weak-table's `PtrWeakKeyHashMap` runs beside them, the peer that also holds owners
//! weakly.
//!
//! A second plain run gives each owner a 1 MiB value and compares the peak VmRSS with
//! lazy purging (the default) and with `FreeOnDrop`.
//!
//! Criterion then times one churn iteration for the naive table, weak-table and weakmemo.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group};
use hashbrown::HashMap;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use weak_table::PtrWeakKeyHashMap;
use weakmemo::Registry;

mod support;
use support::{config, rss_kib};

const ITERATIONS: u64 = 1_000_000;
const SAMPLE_EVERY: u64 = 10_000;
const ARG: u64 = 7;

/// Owners alive now, counted in `new_owner` and `Drop`.
static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Owner {
    id: u64,
    payload: [u8; 256],
}

impl Drop for Owner {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Relaxed);
    }
}

fn new_owner(id: u64) -> Arc<Owner> {
    LIVE.fetch_add(1, Relaxed);
    Arc::new(Owner {
        id,
        payload: [id as u8; 256],
    })
}

/// The memoized method; its value is unique per owner, so a wrong owner's value shows.
fn method(owner: &Arc<Owner>, &k: &u64) -> u64 {
    owner.id * 1000 + k + u64::from(owner.payload[255] ^ owner.id as u8)
}

fn expected(id: u64) -> u64 {
    id * 1000 + ARG
}

/// A memo table under test: a call, and the number of entries it holds.
trait Memo {
    fn call(&self, owner: &Arc<Owner>, k: u64) -> u64;
    fn entries(&self) -> usize;
    /// Called outside the timer after each timed batch.
    fn trim(&self) {}
}

/// The trap: keyed by address, holding an `Arc` clone so the address stays valid.
#[derive(Default)]
struct Naive(Mutex<NaiveMap>);

/// (owner address, arg) -> (a clone of the owner, value).
type NaiveMap = HashMap<(usize, u64), (Arc<Owner>, u64)>;

impl Memo for Naive {
    fn call(&self, owner: &Arc<Owner>, k: u64) -> u64 {
        let key = (Arc::as_ptr(owner) as usize, k);
        if let Some((_, value)) = self.0.lock().get(&key) {
            return *value;
        }
        let value = method(owner, &k);
        self.0
            .lock()
            .entry(key)
            .or_insert_with(|| (owner.clone(), value))
            .1
    }
    fn entries(&self) -> usize {
        self.0.lock().len()
    }
    /// Empties the table once it passes a million entries, or the leak would fill memory
    /// over a run (the naive table never frees its owners in real use either).
    fn trim(&self) {
        if self.entries() > ITERATIONS as usize {
            self.0.lock().clear();
        }
    }
}

/// The other trap: keyed by the raw address alone. Frees owners, returns stale values.
#[derive(Default)]
struct AddrOnly(Mutex<HashMap<(usize, u64), u64>>);

impl Memo for AddrOnly {
    fn call(&self, owner: &Arc<Owner>, k: u64) -> u64 {
        let key = (Arc::as_ptr(owner) as usize, k);
        if let Some(value) = self.0.lock().get(&key) {
            return *value;
        }
        let value = method(owner, &k);
        *self.0.lock().entry(key).or_insert(value)
    }
    fn entries(&self) -> usize {
        self.0.lock().len()
    }
}

/// weak-table's map of weakly held owners, each to its arguments' values, behind a
/// mutex: it drops dead owners' entries when it grows, as weakmemo purges lazily.
#[derive(Default)]
struct WeakTable(Mutex<PtrWeakKeyHashMap<Weak<Owner>, HashMap<u64, u64>>>);

impl Memo for WeakTable {
    fn call(&self, owner: &Arc<Owner>, k: u64) -> u64 {
        if let Some(value) = self.0.lock().get(owner).and_then(|args| args.get(&k)) {
            return *value;
        }
        let value = method(owner, &k);
        *self
            .0
            .lock()
            .entry(owner.clone())
            .or_insert_with(HashMap::new)
            .entry(k)
            .or_insert(value)
    }
    fn entries(&self) -> usize {
        self.0.lock().len()
    }
}

struct Weakmemo(Registry);

impl Memo for Weakmemo {
    fn call(&self, owner: &Arc<Owner>, k: u64) -> u64 {
        self.0.method(method).call(owner, k)
    }
    fn entries(&self) -> usize {
        self.0.stats().entries
    }
}

/// One churn iteration; returns how many of its two calls returned a wrong value.
#[inline(always)]
fn churn_once(memo: &impl Memo, id: u64) -> u64 {
    let owner = new_owner(id);
    let first = memo.call(&owner, ARG);
    let second = memo.call(black_box(&owner), ARG);
    drop(owner);
    u64::from(first != expected(id)) + u64::from(second != expected(id))
}

fn report(name: &str, memo: &impl Memo, extra: impl Fn() -> String) {
    let live_before = LIVE.load(Relaxed);
    let rss_before = rss_kib();
    let (mut peak_entries, mut peak_live, mut peak_rss) = (0, 0, rss_before);
    let mut wrong = 0;
    let start = Instant::now();
    for id in 0..ITERATIONS {
        wrong += churn_once(memo, id);
        if (id + 1) % SAMPLE_EVERY == 0 {
            peak_entries = peak_entries.max(memo.entries());
            peak_live = peak_live.max(LIVE.load(Relaxed) - live_before);
            peak_rss = peak_rss.max(rss_kib());
        }
    }
    let elapsed = start.elapsed();
    eprintln!(
        "| {name} | {:.0} | {peak_entries} | {} | {peak_live} | {} | {:.1} | {wrong} | {} |",
        elapsed.as_nanos() as f64 / ITERATIONS as f64,
        memo.entries(),
        LIVE.load(Relaxed) - live_before,
        (peak_rss.saturating_sub(rss_before)) as f64 / 1024.0,
        extra(),
    );
}

/// Outside criterion: one plain run of each variant. weakmemo runs first, so that the
/// memory the naive table leaks (and the allocator may keep) does not pollute its RSS.
fn churn_report() {
    eprintln!();
    eprintln!(
        "churn: {ITERATIONS} x (new owner with a 256-byte payload, call twice, drop); \
         sampled every {SAMPLE_EVERY}"
    );
    eprintln!(
        "| variant | ns/iter | peak entries | entries at end | peak live owners | \
         live owners at end | peak VmRSS growth (MiB) | wrong values | notes |"
    );
    eprintln!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    {
        let memo = Weakmemo(Registry::new());
        report("weakmemo", &memo, || {
            let stats = memo.0.stats();
            format!(
                "hits {}, misses {}, purged {}, purge steps {}",
                stats.hits, stats.misses, stats.purged, stats.purge_steps
            )
        });
        let purged = memo.0.purge();
        assert_eq!(memo.0.stats().entries, 0, "entries left after purge()");
        eprintln!("|   weakmemo after purge() | | | 0 | | | | | purge() removed {purged} |");
    }
    {
        let memo = WeakTable::default();
        report("weak-table (Mutex<PtrWeakKeyHashMap>)", &memo, String::new);
    }
    {
        let memo = AddrOnly::default();
        report("address-only key (no Arc, no Weak)", &memo, String::new);
    }
    {
        let memo = Naive::default();
        report(
            "naive Mutex<HashMap> holding Arc clones",
            &memo,
            String::new,
        );
        drop(memo);
        assert_eq!(LIVE.load(Relaxed), 0);
    }
    eprintln!();
}

/// Owners of a large value each: 1 MiB per owner, with or without a `FreeOnDrop`.
struct Request {
    id: u64,
    _free: Option<weakmemo::FreeOnDrop>,
}

fn page(request: &Arc<Request>, &(): &()) -> Arc<Vec<u8>> {
    Arc::new(vec![request.id as u8 | 1; 1 << 20])
}

/// Outside criterion: 2,000 requests, each rendering a 1 MiB page through the cache and
/// dropping it, one at a time; the peak VmRSS growth with the lazy default and with
/// `FreeOnDrop` (the values held at once are the live owners' alone).
fn large_values_report() {
    const REQUESTS: u64 = 2_000;
    eprintln!("large values: {REQUESTS} x (new owner, one 1 MiB value, drop)");
    eprintln!("| variant | peak VmRSS growth (MiB) | entries at end |");
    eprintln!("|---|---:|---:|");
    for free in [true, false] {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
        let page = registry.method(page);
        let rss_before = rss_kib();
        let mut peak = rss_before;
        for id in 0..REQUESTS {
            let request = Arc::new_cyclic(|me| Request {
                id,
                _free: free.then(|| registry.free_on_drop(me)),
            });
            assert_eq!(page.call(&request, ())[0], id as u8 | 1);
            drop(request);
            peak = peak.max(rss_kib());
        }
        let name = if free {
            "weakmemo, FreeOnDrop"
        } else {
            "weakmemo, lazy (default)"
        };
        eprintln!(
            "| {name} | {:.1} | {} |",
            peak.saturating_sub(rss_before) as f64 / 1024.0,
            registry.stats().entries
        );
        registry.purge();
    }
    eprintln!();
}

/// Times one churn iteration of `memo`, counting wrong values outside the timer.
fn bench_churn(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    memo: &impl Memo,
    next_id: &mut u64,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut wrong = 0;
            let start = Instant::now();
            for _ in 0..iters {
                wrong += churn_once(memo, *next_id);
                *next_id += 1;
            }
            let elapsed = start.elapsed();
            assert_eq!(wrong, 0);
            memo.trim();
            elapsed
        });
    });
}

fn churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("churn");
    group.throughput(Throughput::Elements(1));
    let mut next_id = 0u64;
    bench_churn(
        &mut group,
        "naive_arc_mutex_hashmap",
        &Naive::default(),
        &mut next_id,
    );
    bench_churn(
        &mut group,
        "weak_table_mutex",
        &WeakTable::default(),
        &mut next_id,
    );
    let memo = Weakmemo(Registry::new());
    bench_churn(&mut group, "weakmemo_call", &memo, &mut next_id);
    eprintln!("weakmemo after the timed run: {:?}", memo.0.stats());
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = churn
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--test" || a == "--list") {
        // First, before the naive table's leak grows the heap that later runs reuse.
        large_values_report();
        churn_report();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
