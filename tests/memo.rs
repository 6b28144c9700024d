//! `#[weakmemo::memo]`: each supported shape caches per owner and key, the handle reports
//! and invalidates, and the generated code goes through the same registry path as a
//! hand-written `Registry::call` (or `call_async`, for an `async fn`).
#![cfg(feature = "macros")]

use std::collections::BTreeMap;
use std::fmt::Display;
use std::hash::Hash;
use std::num::ParseIntError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use weakmemo::{Registry, memo};

/// Each test has a registry of its own, so that tests running in parallel do not see
/// each other's counters.
static ADDER: Registry = Registry::new();
static PARSER: Registry = Registry::new();
static LOOKUP: Registry = Registry::new();
static FREE: Registry = Registry::new();
static PARITY: Registry = Registry::new();
static ATTRS: Registry = Registry::new();
static FETCHER: Registry = Registry::new();
static ASYNC_PARSER: Registry = Registry::new();
static ASYNC_FREE: Registry = Registry::new();
static ASYNC_PARITY: Registry = Registry::new();
static SPAWNED: Registry = Registry::new();
static GATED: Registry = Registry::new();

struct Adder {
    bias: i64,
    runs: AtomicUsize,
}

impl Adder {
    fn new(bias: i64) -> Arc<Self> {
        Arc::new(Self {
            bias,
            runs: AtomicUsize::new(0),
        })
    }

    /// Adds, with the owner's bias.
    #[memo(registry = &ADDER)]
    pub fn add(self: &Arc<Self>, a: i64, b: i64) -> i64 {
        self.runs.fetch_add(1, Relaxed);
        a + b + self.bias
    }

    /// No argument: the key is `()`.
    #[memo(registry = &ADDER)]
    fn bias_squared(self: &Arc<Self>) -> i64 {
        self.runs.fetch_add(1, Relaxed);
        self.bias * self.bias
    }

    /// Patterns in parameters, `mut` bindings and early `return` keep working.
    #[memo(registry = &ADDER)]
    fn clamp_sum(self: &Arc<Self>, (lo, hi): (i64, i64), mut values: Vec<i64>) -> i64 {
        self.runs.fetch_add(1, Relaxed);
        values.sort_unstable();
        if values.is_empty() {
            return lo;
        }
        values.iter().sum::<i64>().clamp(lo, hi)
    }
}

#[test]
fn a_method_is_cached_per_owner_and_arguments() {
    let one = Adder::new(1);
    let two = Adder::new(2);
    assert_eq!(one.add(1, 2), 4);
    assert_eq!(one.add(1, 2), 4);
    assert_eq!(two.add(1, 2), 5, "another owner is another key");
    assert_eq!(one.add(2, 1), 4);
    assert_eq!(one.runs.load(Relaxed), 2);
    assert_eq!(two.runs.load(Relaxed), 1);

    assert_eq!(one.bias_squared(), 1);
    assert_eq!(one.bias_squared(), 1);
    assert_eq!(one.clamp_sum((0, 10), vec![]), 0);
    assert_eq!(one.clamp_sum((0, 10), vec![4, 9]), 10);
    assert_eq!(one.clamp_sum((0, 10), vec![4, 9]), 10);
    assert_eq!(one.runs.load(Relaxed), 5);

    let info = Adder::add_memo().cache_info();
    assert_eq!(
        (info.hits, info.misses, info.maxsize, info.currsize),
        (1, 3, None, 3)
    );
    assert_eq!(
        info.to_string(),
        "CacheInfo(hits=1, misses=3, maxsize=None, currsize=3)"
    );

    // Invalidation: one key, one owner, the whole method.
    assert!(Adder::add_memo().invalidate(&one, &(1, 2)));
    assert!(!Adder::add_memo().invalidate(&one, &(1, 2)));
    assert_eq!(Adder::bias_squared_memo().invalidate_owner(&one), 1);
    assert_eq!(
        Adder::add_memo().cache_info().currsize,
        2,
        "other methods' entries of the owner stay"
    );
    assert_eq!(Adder::add_memo().invalidate_owner(&one), 1);
    assert_eq!(Adder::add_memo().cache_clear(), 1);
    assert_eq!(Adder::add_memo().cache_info().currsize, 0);
    assert_eq!(Adder::clamp_sum_memo().cache_info().currsize, 2);
    assert!(std::ptr::eq(Adder::add_memo().registry(), &ADDER));

    // The owner is not kept alive.
    let watch = Arc::downgrade(&one);
    drop(one);
    assert!(watch.upgrade().is_none());
}

/// A fallible method in `result` mode: `Ok` is cached, errors are not.
struct Text(String);

impl Text {
    #[memo(registry = &PARSER, result)]
    fn parse(self: &Arc<Self>, radix: u32) -> Result<i64, ParseIntError> {
        let trimmed = self.0.trim();
        let value = i64::from_str_radix(trimmed, radix)?; // `?` returns the error
        Ok(value)
    }
}

#[test]
fn result_mode_caches_ok_values_only() {
    let text = Arc::new(Text("ff".into()));
    assert!(text.parse(10).is_err());
    assert!(text.parse(10).is_err());
    assert_eq!(text.parse(16), Ok(255));
    assert_eq!(text.parse(16), Ok(255));
    let info = Text::parse_memo().cache_info();
    assert_eq!(
        (info.hits, info.misses),
        (1, 3),
        "errors are misses, never hits"
    );
    assert_eq!(info.currsize, 1, "only the `Ok` value is held");
    assert_eq!(PARSER.get_ok(&text, Text::parse_uncached, &16), Some(255));
}

/// A generic type, a generic method and a where-clause.
struct Table<K> {
    rows: BTreeMap<K, String>,
}

impl<K> Table<K>
where
    K: Ord + Send + Sync + 'static,
{
    /// Looks a row up, with a default of any displayable type.
    #[memo(registry = &LOOKUP)]
    pub fn row_or<D>(self: &Arc<Self>, key: K, default: D) -> String
    where
        K: Clone + Hash + Eq,
        D: Display + Clone + Hash + Eq + Send + Sync + 'static,
    {
        match self.rows.get(&key) {
            Some(row) => row.clone(),
            None => default.to_string(),
        }
    }
}

#[test]
fn generic_methods_and_where_clauses_get_one_table_per_instantiation() {
    let table = Arc::new(Table {
        rows: BTreeMap::from([(1u8, "one".to_string())]),
    });
    assert_eq!(table.row_or(1, 0), "one");
    assert_eq!(table.row_or(2, 0), "0");
    assert_eq!(table.row_or(2, "none"), "none");
    assert_eq!(table.row_or(2, "none"), "none");
    let by_int = Table::<u8>::row_or_memo::<i32>().cache_info();
    let by_str = Table::<u8>::row_or_memo::<&'static str>().cache_info();
    assert_eq!((by_int.misses, by_int.currsize), (2, 2));
    assert_eq!((by_str.hits, by_str.misses, by_str.currsize), (1, 1, 1));
}

/// A free function: the first parameter is the owner.
#[memo(registry = &FREE)]
fn word_count(text: &Arc<String>, min_len: usize) -> usize {
    text.split_whitespace()
        .filter(|word| word.len() >= min_len)
        .count()
}

/// A generic free function over `dyn`-free owners.
#[memo(registry = &FREE)]
fn describe<T>(owner: &Arc<T>) -> String
where
    T: std::fmt::Debug + Send + Sync + 'static,
{
    format!("{owner:?}")
}

#[test]
fn free_functions_take_the_owner_first() {
    let text = Arc::new("a bb ccc".to_string());
    assert_eq!(word_count(&text, 2), 2);
    assert_eq!(word_count(&text, 2), 2);
    assert_eq!(word_count_memo().cache_info().hits, 1);
    assert_eq!(describe(&Arc::new(7u8)), "7");
    assert_eq!(describe_memo::<u8>().cache_info().misses, 1);
    assert_eq!(word_count_memo().invalidate_owner(&text), 1);
}

/// The default registry is `weakmemo::global()`.
struct Global(u32);

impl Global {
    #[memo]
    fn doubled(self: &Arc<Self>) -> u32 {
        self.0 * 2
    }
}

#[test]
fn the_default_registry_is_the_global_one() {
    let owner = Arc::new(Global(21));
    assert_eq!(owner.doubled(), 42);
    assert!(std::ptr::eq(
        Global::doubled_memo().registry(),
        weakmemo::global()
    ));
    assert_eq!(
        weakmemo::global().get(&owner, Global::doubled_uncached, &()),
        Some(42)
    );
}

/// The attribute's code path is a plain `Registry::call` with `NAME_uncached`.
struct Square(u64);

impl Square {
    #[memo(registry = &PARITY)]
    fn area_plus(self: &Arc<Self>, extra: u64) -> u64 {
        self.0 * self.0 + extra
    }
}

#[test]
fn the_attribute_and_a_hand_written_call_share_entries_and_stats() {
    let square = Arc::new(Square(3));
    assert_eq!(square.area_plus(1), 10); // a miss, through the attribute
    // By hand, the same method identity: a hit on the entry the attribute stored.
    assert_eq!(
        PARITY.get(&square, Square::area_plus_uncached, &1),
        Some(10)
    );
    assert_eq!(PARITY.call(&square, Square::area_plus_uncached, 1), 10);
    // By hand first, then through the attribute: a hit too.
    assert_eq!(PARITY.call(&square, Square::area_plus_uncached, 2), 11);
    assert_eq!(square.area_plus(2), 11);

    let through_registry = PARITY.method_stats(Square::area_plus_uncached);
    let through_handle = Square::area_plus_memo().stats();
    assert_eq!(through_registry, through_handle);
    assert_eq!(
        (
            through_registry.hits,
            through_registry.misses,
            through_registry.entries,
            through_registry.methods
        ),
        (3, 2, 2, 1),
        "one table: the attribute and the hand-written calls are one method"
    );
    assert_eq!(PARITY.stats().entries, 2);
    assert!(PARITY.invalidate(&square, Square::area_plus_uncached, &2));
    assert_eq!(Square::area_plus_memo().cache_info().currsize, 1);
}

/// Attributes and docs are kept: `#[must_use]` on the method, `#[cfg]` on all three
/// items, lint attributes (with `expect` turned into `allow`) on the body's fn.
struct Attrs;

impl Attrs {
    /// Documented.
    #[must_use]
    #[expect(clippy::needless_range_loop)]
    #[memo(registry = &ATTRS)]
    fn first_even(self: &Arc<Self>, values: Vec<u32>) -> Option<usize> {
        for i in 0..values.len() {
            if values[i] % 2 == 0 {
                return Some(i);
            }
        }
        None
    }

    /// A named lifetime on the receiver: the handle's bound stays higher-ranked.
    #[memo(registry = &ATTRS)]
    fn named_lifetime<'a>(self: &'a Arc<Self>, n: u32) -> u32 {
        n + 1
    }

    #[cfg(any())]
    #[memo(registry = &ATTRS)]
    fn compiled_out(self: &Arc<Self>) -> u32 {
        this_does_not_exist()
    }
}

#[test]
fn attributes_are_kept() {
    let attrs = Arc::new(Attrs);
    assert_eq!(attrs.first_even(vec![1, 3, 4]), Some(2));
    assert_eq!(attrs.first_even(vec![1, 3, 4]), Some(2));
    assert_eq!(Attrs::first_even_memo().cache_info().hits, 1);
    assert_eq!(attrs.named_lifetime(1), 2);
    assert_eq!(Attrs::named_lifetime_memo().invalidate_owner(&attrs), 1);
}

/// An `async fn` method: the body becomes an `async fn NAME_uncached`, the method awaits
/// `Registry::call_async`.
struct Fetcher {
    base: String,
    runs: AtomicUsize,
}

impl Fetcher {
    fn new(base: &str) -> Arc<Self> {
        Arc::new(Self {
            base: base.into(),
            runs: AtomicUsize::new(0),
        })
    }

    /// Fetches, after a real suspension.
    #[memo(registry = &FETCHER)]
    pub async fn fetch(self: &Arc<Self>, id: u64, suffix: String) -> String {
        self.runs.fetch_add(1, Relaxed);
        tokio::task::yield_now().await;
        if id == 0 {
            return "root".to_string(); // early `return` from the async body
        }
        format!("{}/{id}{suffix}", self.base)
    }

    /// No argument: the key is `()`.
    #[memo(registry = &FETCHER)]
    async fn base_len(self: &Arc<Self>) -> usize {
        self.runs.fetch_add(1, Relaxed);
        self.base.len()
    }
}

#[tokio::test]
async fn an_async_method_is_computed_once_then_hit() {
    let fetcher = Fetcher::new("https://a");
    let other = Fetcher::new("https://b");
    assert_eq!(fetcher.fetch(1, ".json".into()).await, "https://a/1.json");
    assert_eq!(fetcher.fetch(1, ".json".into()).await, "https://a/1.json");
    assert_eq!(other.fetch(1, ".json".into()).await, "https://b/1.json");
    assert_eq!(fetcher.fetch(0, String::new()).await, "root");
    assert_eq!(fetcher.fetch(0, String::new()).await, "root");
    assert_eq!(fetcher.runs.load(Relaxed), 2);
    assert_eq!(other.runs.load(Relaxed), 1);
    assert_eq!(fetcher.base_len().await, 9);
    assert_eq!(fetcher.base_len().await, 9);
    assert_eq!(fetcher.runs.load(Relaxed), 3);

    let info = Fetcher::fetch_memo().cache_info();
    assert_eq!(
        (info.hits, info.misses, info.maxsize, info.currsize),
        (2, 3, None, 3)
    );
    assert_eq!(Fetcher::base_len_memo().cache_info().hits, 1);

    // Invalidation: one key, one owner, the whole method.
    assert!(Fetcher::fetch_memo().invalidate(&fetcher, &(1, ".json".to_string())));
    assert!(!Fetcher::fetch_memo().invalidate(&fetcher, &(1, ".json".to_string())));
    assert_eq!(fetcher.fetch(1, ".json".into()).await, "https://a/1.json");
    assert_eq!(
        fetcher.runs.load(Relaxed),
        4,
        "an invalidated key runs again"
    );
    assert_eq!(Fetcher::base_len_memo().invalidate_owner(&fetcher), 1);
    assert_eq!(Fetcher::fetch_memo().invalidate_owner(&fetcher), 2);
    assert_eq!(Fetcher::fetch_memo().cache_clear(), 1, "`other`'s entry");
    assert_eq!(Fetcher::fetch_memo().cache_info().currsize, 0);
    assert!(std::ptr::eq(Fetcher::fetch_memo().registry(), &FETCHER));

    // The owner is not kept alive.
    let watch = Arc::downgrade(&fetcher);
    drop(fetcher);
    assert!(watch.upgrade().is_none());
}

/// `result` mode on an `async fn`: `Registry::try_call_async`.
struct AsyncText(String);

impl AsyncText {
    #[memo(registry = &ASYNC_PARSER, result)]
    async fn parse(self: &Arc<Self>, radix: u32) -> Result<i64, ParseIntError> {
        tokio::task::yield_now().await;
        let value = i64::from_str_radix(self.0.trim(), radix)?; // `?` returns the error
        Ok(value)
    }
}

#[tokio::test]
async fn async_result_mode_caches_ok_values_only() {
    let text = Arc::new(AsyncText("ff".into()));
    assert!(text.parse(10).await.is_err());
    assert!(text.parse(10).await.is_err());
    assert_eq!(text.parse(16).await, Ok(255));
    assert_eq!(text.parse(16).await, Ok(255));
    let info = AsyncText::parse_memo().cache_info();
    assert_eq!((info.hits, info.misses, info.currsize), (1, 3, 1));
    assert_eq!(
        ASYNC_PARSER.get_ok(&text, AsyncText::parse_uncached, &16),
        Some(255)
    );
}

/// An async free function, and a generic one.
#[memo(registry = &ASYNC_FREE)]
async fn async_word_count(text: &Arc<String>, min_len: usize) -> usize {
    tokio::task::yield_now().await;
    text.split_whitespace()
        .filter(|word| word.len() >= min_len)
        .count()
}

#[memo(registry = &ASYNC_FREE)]
async fn async_describe<T>(owner: &Arc<T>, prefix: &'static str) -> String
where
    T: std::fmt::Debug + Send + Sync + 'static,
{
    format!("{prefix}{owner:?}")
}

#[tokio::test]
async fn async_free_functions_take_the_owner_first() {
    let text = Arc::new("a bb ccc".to_string());
    assert_eq!(async_word_count(&text, 2).await, 2);
    assert_eq!(async_word_count(&text, 2).await, 2);
    assert_eq!(async_word_count_memo().cache_info().hits, 1);
    assert_eq!(async_describe(&Arc::new(7u8), "n=").await, "n=7");
    assert_eq!(async_describe(&Arc::new(7u8), "n=").await, "n=7");
    let info = async_describe_memo::<u8>().cache_info();
    assert_eq!((info.hits, info.misses), (0, 2), "two owners");
    assert_eq!(async_word_count_memo().invalidate_owner(&text), 1);
}

/// The attribute's code path is a plain `Registry::call_async` with `NAME_uncached`.
struct AsyncSquare(u64);

impl AsyncSquare {
    #[memo(registry = &ASYNC_PARITY)]
    async fn area_plus(self: &Arc<Self>, extra: u64) -> u64 {
        self.0 * self.0 + extra
    }
}

#[tokio::test]
async fn an_async_attribute_and_a_hand_written_call_async_share_entries_and_stats() {
    let square = Arc::new(AsyncSquare(3));
    assert_eq!(square.area_plus(1).await, 10); // a miss, through the attribute
    // By hand, the same method identity: a hit on the entry the attribute stored.
    assert_eq!(
        ASYNC_PARITY.get(&square, AsyncSquare::area_plus_uncached, &1),
        Some(10)
    );
    assert_eq!(
        ASYNC_PARITY
            .call_async(&square, AsyncSquare::area_plus_uncached, 1)
            .await,
        10
    );
    // By hand first, then through the attribute: a hit too.
    assert_eq!(
        ASYNC_PARITY
            .call_async(&square, AsyncSquare::area_plus_uncached, 2)
            .await,
        11
    );
    assert_eq!(square.area_plus(2).await, 11);

    let through_registry = ASYNC_PARITY.method_stats(AsyncSquare::area_plus_uncached);
    let through_handle = AsyncSquare::area_plus_memo().stats();
    assert_eq!(through_registry, through_handle);
    assert_eq!(
        (
            through_registry.hits,
            through_registry.misses,
            through_registry.entries,
            through_registry.methods
        ),
        (3, 2, 2, 1),
        "one table: the attribute and the hand-written calls are one method"
    );
    assert_eq!(ASYNC_PARITY.stats().entries, 2);
    assert!(ASYNC_PARITY.invalidate(&square, AsyncSquare::area_plus_uncached, &2));
    assert_eq!(AsyncSquare::area_plus_memo().cache_info().currsize, 1);
}

/// A generic async method on a generic type; its future is `Send`, so it can be spawned.
/// (Owned types: a `&'static str` in the owner or key type trips
/// rust-lang/rust#110338 when an `async` block awaiting the call must be `Send`, as it
/// does for a hand-written `call_async`; see docs/macro.md.)
struct Shelf<T> {
    items: Vec<T>,
    runs: AtomicUsize,
}

impl<T: Clone + Send + Sync + 'static> Shelf<T> {
    #[memo(registry = &SPAWNED)]
    async fn nth_or<D>(self: &Arc<Self>, index: usize, default: D) -> Result<T, D>
    where
        D: Clone + Hash + Eq + Send + Sync + 'static,
    {
        self.runs.fetch_add(1, Relaxed);
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        self.items.get(index).cloned().ok_or(default)
    }
}

/// Compiles only if the future is `Send`.
fn assert_send<F: Future + Send>(_: &F) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_method_future_is_send_and_spawns() {
    let shelf = Arc::new(Shelf {
        items: vec!["a".to_string(), "b".to_string()],
        runs: AtomicUsize::new(0),
    });
    assert_send(&shelf.nth_or(0, 'x'));
    assert_send(&async_word_count(&Arc::new(String::new()), 1));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let shelf = Arc::clone(&shelf);
        tasks.spawn(async move { shelf.nth_or(i % 3, 'x').await });
    }
    let mut values = tasks.join_all().await;
    values.sort_unstable();
    assert_eq!(values.iter().filter(|v| **v == Ok("a".into())).count(), 3);
    assert_eq!(values.iter().filter(|v| **v == Err('x')).count(), 2);
    assert_eq!(
        shelf.runs.load(Relaxed),
        3,
        "one run per key, spawned tasks or not"
    );
    let info = Shelf::<String>::nth_or_memo::<char>().cache_info();
    assert_eq!(info.currsize, 3);
    assert_eq!(
        info.hits + info.misses,
        8,
        "a task that awaited another's computation counts as a miss"
    );
}

/// Single flight through the attribute: tasks missing one key await one computation.
struct Gate {
    open: tokio::sync::Notify,
    runs: AtomicUsize,
}

impl Gate {
    #[memo(registry = &GATED)]
    async fn value(self: &Arc<Self>, n: u64) -> u64 {
        self.runs.fetch_add(1, Relaxed);
        self.open.notified().await;
        n * 10
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_on_one_cold_key_share_one_async_computation() {
    let gate = Arc::new(Gate {
        open: tokio::sync::Notify::new(),
        runs: AtomicUsize::new(0),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let gate = Arc::clone(&gate);
        tasks.spawn(async move { gate.value(7).await });
    }
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while GATED.stats().waited < 15 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("15 tasks wait for the one computing");
    gate.open.notify_one();
    assert_eq!(tasks.join_all().await, vec![70; 16]);
    assert_eq!(gate.runs.load(Relaxed), 1);
    assert_eq!(Gate::value_memo().cache_info().misses, 16);
}

static BOUNDED: Registry = Registry::new();

struct Squares;

impl Squares {
    /// Squares, at most four of them kept.
    #[memo(registry = &BOUNDED, maxsize = 4)]
    fn square(self: &Arc<Self>, n: u64) -> u64 {
        n * n
    }
}

#[test]
fn maxsize_bounds_the_method_and_cache_info_reports_it() {
    let squares = Arc::new(Squares);
    assert_eq!(
        Squares::square_memo().cache_info().maxsize,
        None,
        "set at the first call"
    );
    for n in 0..100 {
        // Each twice, so that newcomers win admission over what they replace.
        for _ in 0..2 {
            assert_eq!(squares.square(n), n * n);
        }
    }
    let info = Squares::square_memo().cache_info();
    assert_eq!(info.maxsize, Some(4));
    assert!(info.currsize <= 4, "{info}");
    assert_eq!(BOUNDED.method_capacity(Squares::square_uncached), Some(4));
    assert!(Squares::square_memo().stats().evicted > 0);
}

/// The time to live of the methods below: long enough that the call after a miss comes
/// well within it on an idle machine, and checked by the clock where that matters, so
/// that a loaded machine makes no test fail.
const TTL: Duration = Duration::from_millis(100);

/// Well past [`TTL`]: a sleep lasts at least this long, so the entry has expired.
const PAST_TTL: Duration = Duration::from_millis(400);

static EXPIRING: Registry = Registry::new();

struct Quote {
    symbol: String,
    runs: AtomicUsize,
}

impl Quote {
    fn new(symbol: &str) -> Arc<Self> {
        Arc::new(Self {
            symbol: symbol.into(),
            runs: AtomicUsize::new(0),
        })
    }

    /// A price that goes stale after [`TTL`].
    #[memo(registry = &EXPIRING, ttl = TTL)]
    fn price(self: &Arc<Self>, currency: u8) -> usize {
        self.runs.fetch_add(1, Relaxed);
        self.symbol.len() * usize::from(currency)
    }

    /// An `async fn`, in the global registry, with the TTL written out.
    #[memo(ttl = std::time::Duration::from_millis(100))]
    async fn volume(self: &Arc<Self>, day: u32) -> u64 {
        self.runs.fetch_add(1, Relaxed);
        tokio::task::yield_now().await;
        u64::from(day) * 1_000
    }
}

#[test]
fn ttl_recomputes_a_value_after_it_expires() {
    let quote = Quote::new("ACME");
    assert_eq!(Quote::price_memo().ttl(), None, "set at the first call");
    let start = Instant::now();
    assert_eq!(quote.price(2), 8);
    assert_eq!(quote.price(2), 8);
    // (Half the TTL: the registry's clock counts whole milliseconds.)
    if start.elapsed() < TTL / 2 {
        assert_eq!(quote.runs.load(Relaxed), 1, "a hit within the TTL");
    }
    assert_eq!(Quote::price_memo().ttl(), Some(TTL));
    assert_eq!(EXPIRING.method_ttl(Quote::price_uncached), Some(TTL));
    assert_eq!(
        weakmemo::global().method_ttl(Quote::price_uncached),
        None,
        "set on the registry of the call only"
    );
    assert_eq!(Quote::price_memo().cache_info().maxsize, None);

    let runs = quote.runs.load(Relaxed);
    std::thread::sleep(PAST_TTL);
    assert_eq!(
        EXPIRING.get(&quote, Quote::price_uncached, &2),
        None,
        "an expired entry is never returned"
    );
    assert_eq!(quote.price(2), 8);
    assert_eq!(
        quote.runs.load(Relaxed),
        runs + 1,
        "recomputed after expiry"
    );
}

#[tokio::test]
async fn ttl_on_an_async_method_recomputes_after_expiry() {
    let quote = Quote::new("ACME");
    let start = Instant::now();
    assert_eq!(quote.volume(3).await, 3_000);
    assert_eq!(quote.volume(3).await, 3_000);
    // (Half the TTL: the registry's clock counts whole milliseconds.)
    if start.elapsed() < TTL / 2 {
        assert_eq!(quote.runs.load(Relaxed), 1, "a hit within the TTL");
    }
    assert_eq!(Quote::volume_memo().ttl(), Some(TTL));
    assert_eq!(
        weakmemo::global().method_ttl(Quote::volume_uncached),
        Some(TTL)
    );

    let runs = quote.runs.load(Relaxed);
    tokio::time::sleep(PAST_TTL).await;
    assert_eq!(quote.volume(3).await, 3_000);
    assert_eq!(
        quote.runs.load(Relaxed),
        runs + 1,
        "recomputed after expiry"
    );
}

static BOUNDED_EXPIRING: Registry = Registry::new();

struct Cubes;

impl Cubes {
    /// Cubes, at most four of them kept, none for longer than [`TTL`].
    #[memo(registry = &BOUNDED_EXPIRING, maxsize = 4, ttl = TTL)]
    fn cube(self: &Arc<Self>, n: u64) -> u64 {
        n * n * n
    }
}

#[test]
fn maxsize_and_ttl_together_set_both() {
    let cubes = Arc::new(Cubes);
    for n in 0..100 {
        for _ in 0..2 {
            assert_eq!(cubes.cube(n), n * n * n);
        }
    }
    let info = Cubes::cube_memo().cache_info();
    // (Entries may have expired already, if the loop took longer than the TTL.)
    let expired = Cubes::cube_memo().stats().expired;
    assert_eq!(info.maxsize, Some(4));
    assert!(info.currsize <= 4, "{info}");
    assert_eq!(Cubes::cube_memo().ttl(), Some(TTL));
    assert_eq!(
        BOUNDED_EXPIRING.method_capacity(Cubes::cube_uncached),
        Some(4)
    );

    std::thread::sleep(PAST_TTL);
    assert_eq!(BOUNDED_EXPIRING.purge(), info.currsize, "all expired");
    assert_eq!(Cubes::cube_memo().cache_info().currsize, 0);
    assert_eq!(
        Cubes::cube_memo().stats().expired,
        expired + info.currsize as u64
    );
}
