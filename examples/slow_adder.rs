//! The `functools.lru_cache`-on-a-method trap, in Rust, and weakmemo's way out.
//!
//! ```text
//! cargo run --release --example slow_adder
//! ```
//!
//! A `SlowAdder` sleeps `delay` and then adds. Memoizing `calculate` in a global table
//! keyed by the instance (an `Arc` clone, like Python's `self` in the `lru_cache` key)
//! keeps every instance alive for as long as the table lives. `#[weakmemo::memo]` keys
//! the entry by a `Weak`, so dropping the last `Arc` frees the instance at once, and its
//! entries leave the table lazily as later lookups pass by, or at once on `purge()`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Instances alive now: incremented in `new`, decremented in `Drop`.
static ALIVE: AtomicUsize = AtomicUsize::new(0);

/// How many instances each half of the demo creates and drops.
const INSTANCES: usize = 10_000;

struct SlowAdder {
    delay: Duration,
}

impl SlowAdder {
    fn new(delay: Duration) -> Arc<Self> {
        ALIVE.fetch_add(1, Relaxed);
        Arc::new(Self { delay })
    }

    /// Memoized with weakmemo: the registry holds only a `Weak` to `self`. The attribute
    /// moves this body into `calculate_uncached` and makes `calculate` a registry call.
    #[weakmemo::memo]
    fn calculate(self: &Arc<Self>, a: i64, b: i64) -> i64 {
        std::thread::sleep(self.delay);
        a + b
    }

    /// Memoized the naive way: the table holds an `Arc` clone of `self` in every entry.
    fn calculate_naive(self: &Arc<Self>, a: i64, b: i64) -> i64 {
        let key = (Arc::as_ptr(self) as usize, a, b);
        if let Some((_, sum)) = NAIVE.lock().unwrap().get(&key) {
            return *sum;
        }
        let sum = self.calculate_uncached(&(a, b)); // the same work, uncached
        NAIVE.lock().unwrap().insert(key, (Arc::clone(self), sum));
        sum
    }
}

impl Drop for SlowAdder {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Relaxed);
    }
}

/// The naive cache: (instance address, a, b) -> (the instance, a + b).
#[allow(clippy::type_complexity)]
static NAIVE: LazyLock<Mutex<HashMap<(usize, i64, i64), (Arc<SlowAdder>, i64)>>> =
    LazyLock::new(Default::default);

fn timed(call: impl FnOnce() -> i64) -> (i64, Duration) {
    let start = Instant::now();
    let result = call();
    (result, start.elapsed())
}

fn main() {
    let delay = Duration::from_millis(200);
    println!("SlowAdder::calculate sleeps {delay:?} and adds; two ways to memoize it.\n");

    // 1. The naive global cache.
    println!("1. naive global cache: Mutex<HashMap<(addr, a, b), (Arc<SlowAdder>, sum)>>");
    {
        let adder = SlowAdder::new(delay);
        let (sum, first) = timed(|| adder.calculate_naive(1, 2));
        let (again, second) = timed(|| adder.calculate_naive(1, 2));
        assert_eq!((sum, again), (3, 3));
        println!("   first call  {first:>12.3?}  result {sum}");
        println!("   second call {second:>12.3?}  result {again} (cached)");
    }
    for i in 0..INSTANCES as i64 {
        let adder = SlowAdder::new(Duration::ZERO);
        adder.calculate_naive(i, 1);
    }
    let naive_alive = ALIVE.load(Relaxed);
    let naive_entries = NAIVE.lock().unwrap().len();
    println!(
        "   created and dropped {} instances: {naive_alive} still alive, {naive_entries} \
         entries held",
        INSTANCES + 1
    );
    assert_eq!(
        naive_alive,
        INSTANCES + 1,
        "the naive cache should keep every instance"
    );
    NAIVE.lock().unwrap().clear();
    assert_eq!(ALIVE.load(Relaxed), 0);
    println!(
        "   only clearing the whole cache frees them: {} alive after clear()\n",
        ALIVE.load(Relaxed)
    );

    // 2. weakmemo.
    let registry = weakmemo::global();
    println!("2. #[weakmemo::memo] fn calculate(self: &Arc<Self>, a: i64, b: i64) -> i64");
    {
        let adder = SlowAdder::new(delay);
        let (sum, first) = timed(|| adder.calculate(1, 2));
        let (again, second) = timed(|| adder.calculate(1, 2));
        assert_eq!((sum, again), (3, 3));
        assert!(second < delay / 10, "the second call should be cached");
        println!("   first call  {first:>12.3?}  result {sum}");
        println!("   second call {second:>12.3?}  result {again} (cached)");
    }
    assert_eq!(ALIVE.load(Relaxed), 0);
    for i in 0..INSTANCES as i64 {
        let adder = SlowAdder::new(Duration::ZERO);
        assert_eq!(adder.calculate(i, 1), i + 1);
        assert_eq!(adder.calculate(i, 1), i + 1); // a hit
    }
    let alive = ALIVE.load(Relaxed);
    let held = registry.stats().entries;
    println!(
        "   created and dropped {} instances: {alive} still alive, {held} entries held \
         (dead owners' entries, never returned, not yet purged)",
        INSTANCES + 1
    );
    assert_eq!(alive, 0, "weakmemo must not keep any instance alive");
    assert!(
        held < INSTANCES / 2,
        "a table whose owners die sweeps them before it grows, so it stays small"
    );

    // The lazy way: lookups on live owners purge dead entries as they go, a few buckets
    // every `purge_interval` lookups, so even a cache that is only read gets clean.
    let keeper = SlowAdder::new(Duration::ZERO);
    keeper.calculate(0, 0);
    let mut lookups = 0;
    while registry.stats().entries > 1 && lookups < 10_000_000 {
        for _ in 0..1024 {
            keeper.calculate(0, 0);
        }
        lookups += 1024;
    }
    let lazy_held = registry.stats().entries;
    println!(
        "   lazy: after {lookups} hits on one live instance (purge interval {}): \
         {lazy_held} entry held",
        registry.purge_interval()
    );
    assert_eq!(
        lazy_held, 1,
        "lazy purging should leave only the live owner's entry"
    );
    drop(keeper);

    // The explicit way: purge() removes every dead owner's entry now.
    for i in 0..1000 {
        SlowAdder::new(Duration::ZERO).calculate(i, i);
    }
    let before = registry.stats().entries;
    let purged = registry.purge();
    let after = registry.stats().entries;
    println!(
        "   explicit: 1000 more dropped; {before} entries held, purge() removed {purged}, {after} held"
    );
    assert_eq!(after, 0);
    assert_eq!(ALIVE.load(Relaxed), 0);

    let stats = registry.stats();
    println!(
        "\n   stats: {} hits, {} misses, {} dead entries purged, {} lazy purge steps",
        stats.hits, stats.misses, stats.purged, stats.purge_steps
    );
    // One method's counters, as Python's `calculate.cache_info()` (the registry holds
    // no other method here, so the numbers are the same).
    println!(
        "   SlowAdder::calculate_memo().cache_info(): {}",
        SlowAdder::calculate_memo().cache_info()
    );
    println!("\nOK: the naive cache kept {naive_alive} instances alive; weakmemo kept 0.");
}
