//! `#[weakmemo::memo]`: each supported shape caches per owner and key, the handle reports
//! and invalidates, and the generated code goes through the same registry path as a
//! hand-written `Memo::call` (or `call_async`, for an `async fn`).
#![cfg(feature = "macros")]

use std::collections::BTreeMap;
use std::fmt::Display;
use std::hash::Hash;
use std::num::ParseIntError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::common::alloc::allocations;
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
    assert_eq!(Adder::add_memo().clear(), 1);
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
    assert_eq!(
        PARSER.method(Text::parse_uncached).get(&text, &16),
        Some(255)
    );
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
    let _global = crate::common::global_registry();
    let owner = Arc::new(Global(21));
    assert_eq!(owner.doubled(), 42);
    assert!(std::ptr::eq(
        Global::doubled_memo().registry(),
        weakmemo::global()
    ));
    assert_eq!(
        weakmemo::global()
            .method(Global::doubled_uncached)
            .get(&owner, &()),
        Some(42)
    );
}

/// The attribute's code path is a plain `Memo::call` with `NAME_uncached`.
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
        PARITY.method(Square::area_plus_uncached).get(&square, &1),
        Some(10)
    );
    assert_eq!(
        PARITY.method(Square::area_plus_uncached).call(&square, 1),
        10
    );
    // By hand first, then through the attribute: a hit too.
    assert_eq!(
        PARITY.method(Square::area_plus_uncached).call(&square, 2),
        11
    );
    assert_eq!(square.area_plus(2), 11);

    let through_registry = PARITY.method(Square::area_plus_uncached).stats();
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
    assert!(
        PARITY
            .method(Square::area_plus_uncached)
            .invalidate(&square, &2)
    );
    assert_eq!(Square::area_plus_memo().cache_info().currsize, 1);
}

/// Attributes and docs are kept: `#[must_use]` on the method, `#[cfg]` on all three
/// items, lint attributes (with `expect` turned into `allow`) on the body's fn.
struct Attrs;

impl Attrs {
    /// Documented.
    #[must_use]
    #[expect(clippy::needless_range_loop, clippy::manual_find)]
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
/// `Memo::call_async`.
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
    assert_eq!(Fetcher::fetch_memo().clear(), 1, "`other`'s entry");
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
        ASYNC_PARSER
            .method(AsyncText::parse_uncached)
            .get(&text, &16),
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

/// The attribute's code path is a plain `Memo::call_async` with `NAME_uncached`.
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
        ASYNC_PARITY
            .method(AsyncSquare::area_plus_uncached)
            .get(&square, &1),
        Some(10)
    );
    assert_eq!(
        ASYNC_PARITY
            .method(AsyncSquare::area_plus_uncached)
            .call_async(&square, 1)
            .await,
        10
    );
    // By hand first, then through the attribute: a hit too.
    assert_eq!(
        ASYNC_PARITY
            .method(AsyncSquare::area_plus_uncached)
            .call_async(&square, 2)
            .await,
        11
    );
    assert_eq!(square.area_plus(2).await, 11);

    let through_registry = ASYNC_PARITY.method(AsyncSquare::area_plus_uncached).stats();
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
    assert!(
        ASYNC_PARITY
            .method(AsyncSquare::area_plus_uncached)
            .invalidate(&square, &2)
    );
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
        Some(4),
        "the handle's table starts with the attribute's bound"
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
    assert_eq!(BOUNDED.method(Squares::square_uncached).capacity(), Some(4));
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
    assert_eq!(
        Quote::price_memo().ttl(),
        Some(TTL),
        "the handle's table starts with the attribute's TTL"
    );
    let start = Instant::now();
    assert_eq!(quote.price(2), 8);
    assert_eq!(quote.price(2), 8);
    // (Half the TTL: the registry's clock counts whole milliseconds.)
    if start.elapsed() < TTL / 2 {
        assert_eq!(quote.runs.load(Relaxed), 1, "a hit within the TTL");
    }
    assert_eq!(Quote::price_memo().ttl(), Some(TTL));
    assert_eq!(EXPIRING.method(Quote::price_uncached).ttl(), Some(TTL));
    assert_eq!(
        weakmemo::global().method(Quote::price_uncached).ttl(),
        None,
        "set on the registry of the call only"
    );
    assert_eq!(Quote::price_memo().cache_info().maxsize, None);

    let runs = quote.runs.load(Relaxed);
    std::thread::sleep(PAST_TTL);
    assert_eq!(
        EXPIRING.method(Quote::price_uncached).get(&quote, &2),
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

// The guard is held across awaits on purpose: one task, on this test's own runtime.
#[allow(clippy::await_holding_lock)]
#[tokio::test]
async fn ttl_on_an_async_method_recomputes_after_expiry() {
    let _global = crate::common::global_registry();
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
        weakmemo::global().method(Quote::volume_uncached).ttl(),
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
        BOUNDED_EXPIRING.method(Cubes::cube_uncached).capacity(),
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

// ---------------------------------------------------------------------------------------
// Object arguments: every `Arc` parameter is an owner beside the receiver, held weakly.

static OBJECTS: Registry = Registry::new();

/// Counts its drops, so that a test sees when the cache let it go.
struct Tracked {
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Relaxed);
    }
}

struct Doc {
    text: String,
    _tracked: Tracked,
}

impl Doc {
    fn new(text: &str, drops: &Arc<AtomicUsize>) -> Arc<Self> {
        Arc::new(Self {
            text: text.into(),
            _tracked: Tracked {
                drops: Arc::clone(drops),
            },
        })
    }
}

struct Index {
    runs: AtomicUsize,
    /// Counts the drops of the values `overlap` returned.
    value_drops: Arc<AtomicUsize>,
}

impl Index {
    /// Characters of `doc` found in `pattern`: the doc is an owner, `pattern` the key.
    /// The value counts its drops.
    #[memo(registry = &OBJECTS)]
    fn overlap(self: &Arc<Self>, doc: &Arc<Doc>, pattern: char) -> Arc<Tracked> {
        self.runs.fetch_add(1, Relaxed);
        let _ = doc.text.chars().filter(|c| *c == pattern).count();
        Arc::new(Tracked {
            drops: Arc::clone(&self.value_drops),
        })
    }

    /// An `Arc` by value: the body receives the `Arc<Doc>` it declared.
    #[memo(registry = &OBJECTS)]
    fn owned_len(self: &Arc<Self>, doc: Arc<Doc>) -> (usize, usize) {
        self.runs.fetch_add(1, Relaxed);
        (doc.text.len(), Arc::strong_count(&doc))
    }
}

#[test]
fn an_arc_argument_is_held_weakly_by_identity() {
    let doc_drops = Arc::new(AtomicUsize::new(0));
    let index = Arc::new(Index {
        runs: AtomicUsize::new(0),
        value_drops: Arc::new(AtomicUsize::new(0)),
    });
    let doc = Doc::new("banana", &doc_drops);
    drop(index.overlap(&doc, 'a'));
    drop(index.overlap(&doc, 'a'));
    assert_eq!(index.runs.load(Relaxed), 1, "a hit: same objects, same key");
    assert!(!Index::overlap_memo().invalidate((&index, &doc), &'b'));

    // Equal by value, another allocation: another key; its `Hash` and `Eq` are never
    // called (`Doc` has neither).
    let twin = Doc::new("banana", &doc_drops);
    drop(index.overlap(&twin, 'a'));
    assert_eq!(
        index.runs.load(Relaxed),
        2,
        "an equal doc in another `Arc` is a miss"
    );
    assert_eq!(Index::overlap_memo().cache_info().currsize, 2);

    // The argument is freed when its last `Arc` drops, although the owner lives on.
    let watch = Arc::downgrade(&doc);
    drop(doc);
    assert!(
        watch.upgrade().is_none(),
        "the cache did not keep the argument alive"
    );
    assert_eq!(doc_drops.load(Relaxed), 1);
    // Its entry is never returned again, and a purge removes it and drops its value.
    assert_eq!(
        index.value_drops.load(Relaxed),
        0,
        "the entries still hold their values"
    );
    assert_eq!(OBJECTS.purge(), 1);
    assert_eq!(
        index.value_drops.load(Relaxed),
        1,
        "the dead doc's value was dropped"
    );
    assert_eq!(
        Index::overlap_memo().cache_info().currsize,
        1,
        "the twin's entry stays"
    );

    // The receiver's death ends the twin's entry as well.
    let twin_watch = Arc::downgrade(&twin);
    let index_watch = Arc::downgrade(&index);
    assert!(Index::overlap_memo().invalidate((&index, &twin), &'a'));
    drop(index.overlap(&twin, 'n'));
    drop(index);
    assert!(index_watch.upgrade().is_none());
    assert_eq!(OBJECTS.purge(), 1);
    drop(twin);
    assert!(twin_watch.upgrade().is_none());
    assert_eq!(doc_drops.load(Relaxed), 2);
}

#[test]
fn an_arc_argument_by_value_is_lent_to_the_body() {
    let drops = Arc::new(AtomicUsize::new(0));
    let index = Arc::new(Index {
        runs: AtomicUsize::new(0),
        value_drops: Arc::new(AtomicUsize::new(0)),
    });
    let doc = Doc::new("abc", &drops);
    // The caller's clone moved in, plus the body's own, made from the `&Arc` on a miss.
    assert_eq!(index.owned_len(Arc::clone(&doc)), (3, 3));
    assert_eq!(index.owned_len(Arc::clone(&doc)), (3, 3));
    assert_eq!(index.runs.load(Relaxed), 1);
    assert_eq!(Arc::strong_count(&doc), 1, "no entry holds the doc");
    assert_eq!(Index::owned_len_memo().invalidate_owner(&doc), 1);
}

/// A free function of two objects, both owners; and one of a trait object.
#[memo(registry = &OBJECTS)]
fn shared_chars(a: &Arc<Doc>, b: &Arc<Doc>) -> usize {
    a.text.chars().filter(|c| b.text.contains(*c)).count()
}

trait Shape: Send + Sync {
    fn area(&self) -> f64;
}

struct Tile(f64);

impl Shape for Tile {
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

#[memo(registry = &OBJECTS)]
fn scaled_area(shape: &Arc<dyn Shape>, scale: u32) -> u64 {
    (shape.area() * f64::from(scale)) as u64
}

#[test]
fn free_functions_of_several_objects_and_of_trait_objects() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (a, b) = (Doc::new("abc", &drops), Doc::new("bbcd", &drops));
    assert_eq!(shared_chars(&a, &b), 2);
    assert_eq!(shared_chars(&a, &b), 2);
    assert_eq!(
        shared_chars(&b, &a),
        3,
        "the order of owners is part of the key"
    );
    let info = shared_chars_memo().cache_info();
    assert_eq!((info.hits, info.misses), (1, 2));
    assert!(shared_chars_memo().invalidate((&a, &b), &()));
    assert_eq!(shared_chars_memo().invalidate_owner(&a), 1, "`(b, a)` too");

    let square: Arc<dyn Shape> = Arc::new(Tile(2.0));
    assert_eq!(scaled_area(&square, 10), 40);
    assert_eq!(scaled_area(&square, 10), 40);
    assert_eq!(scaled_area_memo().cache_info().hits, 1);
    let watch = Arc::downgrade(&square);
    drop(square);
    assert!(watch.upgrade().is_none());
}

static BY_VALUE: Registry = Registry::new();

struct Greeter;

impl Greeter {
    /// `by_value`: the name is a key compared by value, held strongly by the entry.
    #[memo(registry = &BY_VALUE, by_value(name))]
    fn greet(self: &Arc<Self>, name: Arc<str>) -> String {
        format!("hello {name}")
    }
}

#[test]
fn by_value_keys_an_arc_by_what_it_points_to() {
    let greeter = Arc::new(Greeter);
    let first: Arc<str> = Arc::from("ada");
    let second: Arc<str> = Arc::from("ada");
    assert_eq!(greeter.greet(Arc::clone(&first)), "hello ada");
    assert_eq!(greeter.greet(Arc::clone(&second)), "hello ada");
    let info = Greeter::greet_memo().cache_info();
    assert_eq!((info.hits, info.misses), (1, 1), "equal names are one key");
    assert_eq!(
        Arc::strong_count(&first),
        2,
        "the entry holds the name strongly"
    );
    assert!(Greeter::greet_memo().invalidate(&greeter, &second));
    assert_eq!(Arc::strong_count(&first), 1);
}

// ---------------------------------------------------------------------------------------
// Owner-less functions: cached by their arguments alone, bounded by default.

static PURE: Registry = Registry::new();
static FIB_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Recursive: each `fib(k)` is computed once, however often it is asked for.
#[memo(registry = &PURE)]
fn fib(n: u64) -> u64 {
    FIB_RUNS.fetch_add(1, Relaxed);
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

#[test]
fn an_ownerless_function_runs_once_per_distinct_call() {
    assert_eq!(
        fib_memo().cache_info().maxsize,
        Some(weakmemo::DEFAULT_OWNERLESS_CAPACITY),
        "bounded before the first call"
    );
    assert_eq!(fib(30), 832_040);
    assert_eq!(FIB_RUNS.load(Relaxed), 31, "fib(0) to fib(30), once each");
    assert_eq!(fib(30), 832_040);
    assert_eq!(fib(12), 144);
    assert_eq!(FIB_RUNS.load(Relaxed), 31);
    let info = fib_memo().cache_info();
    // Misses: the 31 values; hits: `fib(n - 2)` inside `fib(n)` for n in 3..=30, then
    // the two calls above.
    assert_eq!(
        (info.hits, info.misses, info.maxsize, info.currsize),
        (30, 31, Some(1024), 31)
    );
    assert!(fib_memo().invalidate((), &30));
    assert_eq!(fib_memo().clear(), 30);
    assert_eq!(PURE.method(fib_uncached).get((), &12), None);
}

static FLIGHT: Registry = Registry::new();
static SQUARE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memo(registry = &FLIGHT)]
fn slow_square(n: u64) -> u64 {
    SQUARE_RUNS.fetch_add(1, Relaxed);
    std::thread::sleep(Duration::from_millis(50));
    n * n
}

#[test]
fn sixteen_threads_on_one_cold_ownerless_key_run_it_once() {
    let barrier = std::sync::Barrier::new(16);
    let values: Vec<u64> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    slow_square(7)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(values, vec![49; 16]);
    assert_eq!(SQUARE_RUNS.load(Relaxed), 1, "single flight");
    let info = slow_square_memo().cache_info();
    assert_eq!(info.hits + info.misses, 16);
    assert_eq!(info.currsize, 1);
}

static OWNERLESS_BOUNDS: Registry = Registry::new();

#[memo(registry = &OWNERLESS_BOUNDS, maxsize = 8)]
fn cube(n: u64) -> u64 {
    n * n * n
}

#[memo(registry = &OWNERLESS_BOUNDS, maxsize = None)]
fn negate(n: i64) -> i64 {
    -n
}

struct Math;

impl Math {
    /// An associated fn without receiver: `Self` tells the attribute it is in an `impl`.
    #[memo(registry = &OWNERLESS_BOUNDS)]
    fn tri(n: u64) -> u64 {
        if n == 0 { 0 } else { n + Self::tri(n - 1) }
    }
}

#[test]
fn maxsize_bounds_or_unbounds_an_ownerless_function() {
    for n in 0..100 {
        for _ in 0..2 {
            assert_eq!(cube(n), n * n * n);
            assert_eq!(negate(n as i64), -(n as i64));
        }
    }
    let info = cube_memo().cache_info();
    assert_eq!(info.maxsize, Some(8));
    assert!(info.currsize <= 8, "{info}");
    let info = negate_memo().cache_info();
    assert_eq!(
        (info.maxsize, info.currsize),
        (None, 100),
        "`maxsize = None`: no bound"
    );

    assert_eq!(Math::tri(10), 55);
    let info = Math::tri_memo().cache_info();
    assert_eq!((info.misses, info.maxsize), (11, Some(1024)));
}

static ASYNC_PURE: Registry = Registry::new();

#[memo(registry = &ASYNC_PURE)]
async fn slow_lookup(id: u32) -> String {
    tokio::time::sleep(Duration::from_millis(20)).await;
    format!("user {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_ownerless_function_has_single_flight() {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        tasks.spawn(slow_lookup(3));
    }
    assert_eq!(tasks.join_all().await, vec!["user 3".to_string(); 8]);
    let info = slow_lookup_memo().cache_info();
    assert_eq!((info.misses + info.hits, info.currsize), (8, 1));
    assert_eq!(
        slow_lookup_memo().stats().waited + info.hits,
        7,
        "one computed"
    );
}

// ---------------------------------------------------------------------------------------
// Borrowed arguments: stored owned, looked up as they are.

static BORROWED: Registry = Registry::new();

struct Dictionary {
    runs: AtomicUsize,
}

#[derive(Clone, Hash, PartialEq, Eq)]
struct Query {
    table: String,
}

impl Dictionary {
    #[memo(registry = &BORROWED)]
    fn define(self: &Arc<Self>, word: &str, times: usize) -> usize {
        self.runs.fetch_add(1, Relaxed);
        word.len() * times
    }

    #[memo(registry = &BORROWED)]
    fn total(self: &Arc<Self>, values: &[u32]) -> u32 {
        self.runs.fetch_add(1, Relaxed);
        values.iter().sum()
    }

    /// Any `&U` where `U: ToOwned`, through `weakmemo::Borrowed`.
    #[memo(registry = &BORROWED)]
    fn rows(self: &Arc<Self>, query: &Query, limit: u8) -> usize {
        self.runs.fetch_add(1, Relaxed);
        query.table.len() + usize::from(limit)
    }
}

#[memo(registry = &BORROWED)]
fn extension(path: &std::path::Path) -> Option<String> {
    path.extension()
        .map(|ext| ext.to_string_lossy().into_owned())
}

#[test]
fn borrowed_arguments_are_stored_owned_and_looked_up_as_they_are() {
    let dict = Arc::new(Dictionary {
        runs: AtomicUsize::new(0),
    });
    let word = String::from("abc");
    assert_eq!(dict.define(&word, 2), 6);
    let same = format!("{}{}", "ab", "c");
    assert_eq!(
        dict.define(&same, 2),
        6,
        "another string of equal content: a hit"
    );
    assert_eq!(dict.define("abc", 3), 9);
    assert_eq!(dict.runs.load(Relaxed), 2);
    let info = Dictionary::define_memo().cache_info();
    assert_eq!((info.hits, info.misses), (1, 2));
    // The key is the owned form: `(String, usize)`, or a lookup of it.
    assert!(Dictionary::define_memo().invalidate(&dict, &("abc".to_string(), 2)));
    assert!(Dictionary::define_memo().invalidate(&dict, &weakmemo::Parts(("abc", 3))));

    assert_eq!(dict.total(&[1, 2, 3]), 6);
    let owned: Vec<u32> = (1..=3).collect();
    assert_eq!(dict.total(&owned), 6, "a `Vec` of equal contents: a hit");
    assert_eq!(Dictionary::total_memo().cache_info().hits, 1);

    let query = Query {
        table: "users".into(),
    };
    assert_eq!(dict.rows(&query, 1), 6);
    assert_eq!(dict.rows(&query.clone(), 1), 6);
    assert_eq!(Dictionary::rows_memo().cache_info().hits, 1);

    let path = std::path::PathBuf::from("/tmp/a.rs");
    assert_eq!(extension(&path).as_deref(), Some("rs"));
    assert_eq!(
        extension(std::path::Path::new("/tmp/a.rs")).as_deref(),
        Some("rs")
    );
    assert_eq!(extension_memo().cache_info().hits, 1);
}

static NO_ALLOC: Registry = Registry::new();

struct Lexicon;

impl Lexicon {
    #[memo(registry = &NO_ALLOC)]
    fn score(self: &Arc<Self>, word: &str, path: &std::path::Path, weight: u32) -> usize {
        word.len() + path.as_os_str().len() + weight as usize
    }
}

#[test]
fn a_borrowed_hit_allocates_nothing() {
    let lexicon = Arc::new(Lexicon);
    let path = std::path::Path::new("/a");
    assert_eq!(lexicon.score("word", path, 1), 7);
    let before = allocations();
    for _ in 0..100 {
        assert_eq!(lexicon.score("word", path, 1), 7);
    }
    assert_eq!(
        allocations() - before,
        0,
        "a hit makes no `String` nor `PathBuf`"
    );
    assert_eq!(Lexicon::score_memo().cache_info().hits, 100);
}

// ---------------------------------------------------------------------------------------
// Trait impls: `in_trait` writes the method alone.

static TRAITS: Registry = Registry::new();

trait Measure {
    fn measure(self: &Arc<Self>, scale: u32) -> u64;
    async fn measure_slowly(self: &Arc<Self>, unit: &str) -> String;
}

struct Rect {
    w: u64,
    h: u64,
    runs: AtomicUsize,
}

impl Measure for Rect {
    #[memo(registry = &TRAITS, in_trait)]
    fn measure(self: &Arc<Self>, scale: u32) -> u64 {
        self.runs.fetch_add(1, Relaxed);
        self.w * self.h * u64::from(scale)
    }

    #[memo(registry = &TRAITS, in_trait)]
    async fn measure_slowly(self: &Arc<Self>, unit: &str) -> String {
        self.runs.fetch_add(1, Relaxed);
        tokio::task::yield_now().await;
        format!("{}{unit}", self.w * self.h)
    }
}

/// A generic impl: each instantiation is a method of its own.
struct Tagged<T> {
    tag: T,
    runs: AtomicUsize,
}

impl<T: std::fmt::Display + Send + Sync + 'static> Measure for Tagged<T> {
    #[memo(registry = &TRAITS, in_trait)]
    fn measure(self: &Arc<Self>, scale: u32) -> u64 {
        self.runs.fetch_add(1, Relaxed);
        self.tag.to_string().len() as u64 * u64::from(scale)
    }

    #[memo(registry = &TRAITS, in_trait)]
    async fn measure_slowly(self: &Arc<Self>, unit: &str) -> String {
        self.runs.fetch_add(1, Relaxed);
        tokio::task::yield_now().await;
        format!("{}{unit}", self.tag)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trait_impl_methods_are_cached_sync_and_async() {
    let rect = Arc::new(Rect {
        w: 2,
        h: 3,
        runs: AtomicUsize::new(0),
    });
    assert_eq!(rect.measure(2), 12);
    assert_eq!(rect.measure(2), 12);
    assert_eq!(rect.runs.load(Relaxed), 1);

    let spawned = Arc::clone(&rect);
    let task = tokio::spawn(async move { spawned.measure_slowly("m2").await });
    assert_eq!(task.await.unwrap(), "6m2");
    assert_eq!(rect.measure_slowly("m2").await, "6m2");
    assert_eq!(rect.runs.load(Relaxed), 2, "one run per method and key");

    let tagged = Arc::new(Tagged {
        tag: 12_345u32,
        runs: AtomicUsize::new(0),
    });
    let named = Arc::new(Tagged {
        tag: "ab",
        runs: AtomicUsize::new(0),
    });
    assert_eq!(tagged.measure(1), 5);
    assert_eq!(tagged.measure(1), 5);
    assert_eq!(named.measure(1), 2);
    assert_eq!(tagged.measure_slowly("!").await, "12345!");
    assert_eq!(tagged.measure_slowly("!").await, "12345!");
    assert_eq!(tagged.runs.load(Relaxed), 2);
    assert_eq!(named.runs.load(Relaxed), 1);

    let stats = TRAITS.stats();
    assert_eq!((stats.hits, stats.misses), (4, 5));
    assert_eq!(
        stats.methods, 5,
        "two of `Rect`, two of `Tagged<u32>`, one of `Tagged<&str>`"
    );
    assert_eq!(TRAITS.invalidate_owner(&tagged), 2);
    let watch = Arc::downgrade(&rect);
    drop(rect);
    assert!(watch.upgrade().is_none());
}

static GENERIC_BOUNDED: Registry = Registry::new();

/// A generic method with a bound and a TTL in its attribute.
struct Keeper;

impl Keeper {
    #[memo(registry = &GENERIC_BOUNDED, maxsize = 4, ttl = Duration::from_secs(3600))]
    fn keep<T: Clone + Hash + Eq + Send + Sync + 'static>(self: &Arc<Self>, t: T) -> T {
        t
    }
}

/// Each instantiation of a generic method is a method of its own, with a table of its
/// own, and every one of them starts with the attribute's settings, before its first
/// call and after.
#[test]
fn attribute_settings_reach_every_instantiation_of_a_generic_method() {
    assert_eq!(Keeper::keep_memo::<u64>().cache_info().maxsize, Some(4));
    assert_eq!(Keeper::keep_memo::<String>().cache_info().maxsize, Some(4));
    let keeper = Arc::new(Keeper);
    for n in 0..100u64 {
        for _ in 0..2 {
            assert_eq!(keeper.keep(n), n);
            assert_eq!(keeper.keep(n.to_string()), n.to_string());
        }
    }
    for info in [
        Keeper::keep_memo::<u64>().cache_info(),
        Keeper::keep_memo::<String>().cache_info(),
    ] {
        assert_eq!(info.maxsize, Some(4));
        assert!(info.currsize <= 4, "{info}");
        assert_eq!(info.misses + info.hits, 200, "{info}");
    }
    assert_eq!(
        Keeper::keep_memo::<String>().ttl(),
        Some(Duration::from_secs(3600))
    );
    assert_eq!(GENERIC_BOUNDED.stats().methods, 2);
}

static SETTINGS_PANIC: Registry = Registry::new();
static TTL_ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// The attribute's `ttl`, user code run when the table is made: panics while armed.
fn armed_ttl() -> Duration {
    if TTL_ARMED.swap(false, Relaxed) {
        panic!("ttl expression failed");
    }
    Duration::from_secs(60)
}

#[memo(registry = &SETTINGS_PANIC, maxsize = 8, ttl = armed_ttl())]
fn settings_once(owner: &Arc<u32>) -> u32 {
    **owner + 1
}

/// The attribute's settings are user code, run with no lock held when the method's table
/// is made: a panic there reaches the caller, makes no table, and the next call makes it
/// with every setting.
#[test]
fn a_panicking_setting_expression_makes_no_table_and_the_next_call_does() {
    let owner = Arc::new(41);
    let panic = std::panic::catch_unwind(|| settings_once(&owner)).unwrap_err();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"ttl expression failed"));
    assert_eq!(SETTINGS_PANIC.stats().methods, 0, "no table half made");
    assert_eq!(settings_once(&owner), 42);
    assert_eq!(settings_once(&owner), 42);
    let memo = settings_once_memo();
    assert_eq!(memo.ttl(), Some(Duration::from_secs(60)));
    let info = memo.cache_info();
    assert_eq!((info.maxsize, info.hits, info.misses), (Some(8), 1, 1));
}
