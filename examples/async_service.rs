//! A small tokio service that creates an owner per request, as in the article that
//! motivated weakmemo (an `lru_cache`d method on objects made per HTTP request kept every
//! object alive), and shows memory staying flat.
//!
//! ```text
//! cargo run --release --example async_service
//! ```
//!
//! Each request allocates a `Request` holding a 4 KiB body, in an `Arc`, and its handler
//! needs the body's digest three times: twice at once (say, for an ETag and for a
//! signature, joined with `tokio::join!`), then once more. The digest is a cached `async`
//! method: it awaits a 1 ms "backend" and hashes the body. 256 requests are in flight at a
//! time on a 2-worker runtime; 50,000 are served per scenario:
//!
//! - **weakmemo**: `weakmemo::global().call_async(self, ...)`. The two joined calls share
//!   one computation (single flight), the third is a lookup, and when the handler returns
//!   its `Request` is freed although its digest is cached; the dead entries are purged
//!   lazily by later requests.
//! - **naive**: a `Mutex<HashMap>` keyed by the request's address that keeps an `Arc`
//!   clone of the request beside its digest, the shape of `lru_cache` on a method. Every
//!   request stays alive, body and all.
//!
//! Every 5,000 requests a line gives VmRSS (from /proc/self/status), the requests alive
//! (counted in `Drop`; up to 256 of them are in flight), the entries the cache holds and
//! the method's executions so far. weakmemo runs first, so the naive cache's memory cannot
//! inflate its figures.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use tokio::task::JoinSet;

#[path = "../benches/support/mod.rs"]
mod support;
use support::rss_kib;

const REQUESTS: u64 = 50_000;
const IN_FLIGHT: usize = 256;
const BODY: usize = 4 * 1024;
const SAMPLE_EVERY: u64 = 5_000;
const BACKEND_TIME: Duration = Duration::from_millis(1);

/// Requests alive, counted exactly in `new` and `Drop`.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Executions of the uncached digest.
static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

/// What a handler builds per request: the owner of the cached method.
struct Request {
    id: u64,
    body: Vec<u8>,
}

impl Request {
    fn new(id: u64) -> Arc<Self> {
        LIVE.fetch_add(1, Relaxed);
        let body = (0..BODY).map(|i| (id as usize ^ i) as u8).collect();
        Arc::new(Self { id, body })
    }

    /// The cached method: one computation per request, however many callers.
    async fn digest(self: &Arc<Self>) -> u64 {
        weakmemo::global()
            .method(Self::digest_uncached)
            .call_async(self, ())
            .await
    }

    async fn digest_uncached(self: &Arc<Self>, &(): &()) -> u64 {
        EXECUTIONS.fetch_add(1, Relaxed);
        tokio::time::sleep(BACKEND_TIME).await;
        expected(self)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Relaxed);
    }
}

/// FNV-1a of the body, mixed with the id.
fn expected(request: &Request) -> u64 {
    request
        .body
        .iter()
        .fold(0xcbf2_9ce4_8422_2325 ^ request.id, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// The leaky shape: the cache keeps a clone of the owner's `Arc` beside the value.
#[derive(Default)]
struct NaiveCache(Mutex<HashMap<usize, (Arc<Request>, u64)>>);

impl NaiveCache {
    async fn digest(&self, request: &Arc<Request>) -> u64 {
        let key = Arc::as_ptr(request) as usize;
        if let Some((_, value)) = self.0.lock().unwrap().get(&key) {
            return *value;
        }
        // No lock across the await; two callers that miss at once both compute.
        let value = request.digest_uncached(&()).await;
        self.0.lock().unwrap().insert(key, (request.clone(), value));
        value
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

enum Cache {
    Weakmemo,
    Naive(NaiveCache),
}

impl Cache {
    async fn digest(&self, request: &Arc<Request>) -> u64 {
        match self {
            Cache::Weakmemo => request.digest().await,
            Cache::Naive(naive) => naive.digest(request).await,
        }
    }

    fn entries(&self) -> usize {
        match self {
            Cache::Weakmemo => weakmemo::global().stats().entries,
            Cache::Naive(naive) => naive.len(),
        }
    }
}

/// One request: a fresh owner, its digest needed by two parts of the handler at once,
/// then once more. Returns whether every digest was right.
async fn handle(id: u64, cache: Arc<Cache>) -> bool {
    let request = Request::new(id);
    let (etag, signature) = tokio::join!(cache.digest(&request), cache.digest(&request));
    let again = cache.digest(&request).await;
    let right = expected(&request);
    etag == right && signature == right && again == right
}

struct Summary {
    peak_rss_kib: u64,
    start_rss_kib: u64,
    peak_entries: usize,
    executions: u64,
    wrong: u64,
    elapsed: Duration,
}

/// Serves `REQUESTS` requests, `IN_FLIGHT` at a time, printing a sample line every
/// `SAMPLE_EVERY` completed requests.
async fn serve(name: &str, cache: Arc<Cache>) -> Summary {
    let executions_before = EXECUTIONS.load(Relaxed);
    let start_rss_kib = rss_kib();
    let mut summary = Summary {
        peak_rss_kib: start_rss_kib,
        start_rss_kib,
        peak_entries: 0,
        executions: 0,
        wrong: 0,
        elapsed: Duration::ZERO,
    };
    println!();
    println!(
        "{name}: VmRSS {:.1} MiB before the first request",
        kib_to_mib(start_rss_kib)
    );
    println!(
        "{:>9} | {:>10} | {:>14} | {:>9} | {:>10}",
        "requests", "VmRSS MiB", "requests alive", "entries", "executions"
    );
    let begin = Instant::now();
    let mut tasks = JoinSet::new();
    let mut done = 0u64;
    let mut finish = |right: bool, summary: &mut Summary| {
        done += 1;
        summary.wrong += u64::from(!right);
        if done % SAMPLE_EVERY == 0 {
            let rss = rss_kib();
            let entries = cache.entries();
            summary.peak_rss_kib = summary.peak_rss_kib.max(rss);
            summary.peak_entries = summary.peak_entries.max(entries);
            println!(
                "{done:>9} | {:>10.1} | {:>14} | {entries:>9} | {:>10}",
                kib_to_mib(rss),
                LIVE.load(Relaxed),
                EXECUTIONS.load(Relaxed) - executions_before
            );
        }
    };
    for id in 0..REQUESTS {
        if tasks.len() == IN_FLIGHT {
            let right = tasks
                .join_next()
                .await
                .unwrap()
                .expect("a handler panicked");
            finish(right, &mut summary);
        }
        tasks.spawn(handle(id, cache.clone()));
    }
    while let Some(right) = tasks.join_next().await {
        finish(right.expect("a handler panicked"), &mut summary);
    }
    summary.elapsed = begin.elapsed();
    summary.executions = EXECUTIONS.load(Relaxed) - executions_before;
    summary
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    println!(
        "{REQUESTS} requests, {IN_FLIGHT} in flight, each with a fresh Arc<Request> holding a \
         {} KiB body and a cached async digest that awaits a {} ms backend",
        BODY / 1024,
        BACKEND_TIME.as_millis()
    );

    let weakmemo = runtime.block_on(serve("weakmemo", Arc::new(Cache::Weakmemo)));
    let alive_after_weakmemo = LIVE.load(Relaxed);
    let entries_left = weakmemo::global().stats().entries;
    weakmemo::global().purge();
    let entries_after_purge = weakmemo::global().stats().entries;

    let naive_cache = Arc::new(Cache::Naive(NaiveCache::default()));
    let naive = runtime.block_on(serve("naive", naive_cache.clone()));
    let alive_after_naive = LIVE.load(Relaxed);
    drop(naive_cache);
    let alive_after_dropping_naive = LIVE.load(Relaxed);

    println!();
    println!(
        "| scenario | VmRSS before | peak VmRSS | requests alive at end | peak entries | \
         executions | wrong | wall time |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, summary, alive) in [
        ("weakmemo", &weakmemo, alive_after_weakmemo),
        (
            "naive `Mutex<HashMap>` holding `Arc`",
            &naive,
            alive_after_naive,
        ),
    ] {
        println!(
            "| {name} | {:.1} MiB | {:.1} MiB | {alive} | {} | {} | {} | {:.2} s |",
            kib_to_mib(summary.start_rss_kib),
            kib_to_mib(summary.peak_rss_kib),
            summary.peak_entries,
            summary.executions,
            summary.wrong,
            summary.elapsed.as_secs_f64(),
        );
    }
    println!();
    println!(
        "weakmemo: {entries_left} entries of dead requests left at the end, {entries_after_purge} \
         after `purge()`; the naive cache's requests are freed only when the cache is dropped \
         ({alive_after_naive} alive before, {alive_after_dropping_naive} after)."
    );

    assert_eq!(
        weakmemo.wrong + naive.wrong,
        0,
        "a handler saw a wrong digest"
    );
    assert_eq!(alive_after_weakmemo, 0, "weakmemo kept a request alive");
    assert_eq!(
        weakmemo.executions, REQUESTS,
        "single flight: one execution per request"
    );
}
