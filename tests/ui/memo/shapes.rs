//! Every supported shape: a method, a generic method on a generic type with a
//! where-clause, `result` mode with `?` and early `return`, a free function, a generic
//! free function, a registry of one's own, a bound and a time to live; and the same as
//! `async fn`, whose futures are `Send` and spawn on tokio. Then `Arc` arguments (by
//! reference, by value, `dyn`, four owners, `by_value`), a receiver by value, owner-less
//! functions, borrowed arguments, trait impls, one-line bodies, and the body's `self`
//! where the attribute renames it. All of it without a warning.
#![deny(warnings)]

use std::ffi::{CStr, OsStr};
use std::hash::Hash;
use std::num::ParseIntError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weakmemo::{Registry, memo};

static PARSERS: Registry = Registry::builder().purge_interval(64).build();

struct Adder {
    bias: i64,
}

impl Adder {
    /// A plain method.
    #[memo]
    pub fn add(self: &Arc<Self>, a: i64, b: i64) -> i64 {
        a + b + self.bias
    }

    /// A bounded method.
    #[memo(maxsize = 128)]
    pub fn sub(self: &Arc<Self>, a: i64) -> i64 {
        self.bias - a
    }

    /// A bounded async method.
    #[memo(maxsize = 2 * 64)]
    pub async fn neg(self: &Arc<Self>, a: i64) -> i64 {
        -a - self.bias
    }

    /// A method with a time to live.
    #[memo(ttl = Duration::from_secs(60))]
    pub fn mul(self: &Arc<Self>, a: i64) -> i64 {
        self.bias * a
    }

    /// A bounded async method with a time to live, in a registry of one's own.
    #[memo(registry = &PARSERS, maxsize = 16, ttl = std::time::Duration::from_millis(250))]
    pub async fn div(self: &Arc<Self>, a: i64) -> i64 {
        a / self.bias
    }
}

struct Wrapper<T>(T);

impl<T: Send + Sync + 'static> Wrapper<T> {
    /// A generic method with a where-clause.
    #[memo]
    pub fn pair<K>(self: &Arc<Self>, key: K) -> (K, usize)
    where
        K: Clone + Hash + Eq + Send + Sync + 'static,
    {
        (key, std::mem::size_of::<T>())
    }
}

struct Source(String);

impl Source {
    /// `result` mode in a registry of one's own; `?` and early `return` work.
    #[memo(registry = &PARSERS, result)]
    pub fn number(self: &Arc<Self>, radix: u32) -> Result<i64, ParseIntError> {
        if self.0.is_empty() {
            return Ok(0);
        }
        let n = i64::from_str_radix(&self.0, radix)?;
        Ok(n)
    }
}

/// A free function.
#[memo]
fn len_plus(text: &Arc<String>, extra: usize) -> usize {
    text.len() + extra
}

/// A bounded free function with a time to live, in `result` mode.
#[memo(result, ttl = Duration::from_secs(1), maxsize = 8)]
fn parse_len(text: &Arc<String>) -> Result<usize, ParseIntError> {
    Ok(text.parse::<usize>()? + text.len())
}

/// A generic free function.
#[memo(registry = &PARSERS)]
fn debug<T: std::fmt::Debug + Send + Sync + 'static>(value: &Arc<T>) -> String {
    format!("{value:?}")
}

struct Client {
    host: String,
}

impl Client {
    /// An async method.
    #[memo]
    pub async fn get(self: &Arc<Self>, path: String) -> String {
        tokio::task::yield_now().await;
        format!("{}{path}", self.host)
    }

    /// An async method in `result` mode in a registry of one's own, with a named
    /// receiver lifetime; `?` and early `return` work.
    #[memo(registry = &PARSERS, result)]
    pub async fn port<'a>(self: &'a Arc<Self>, radix: u32) -> Result<u16, ParseIntError> {
        if self.host.is_empty() {
            return Ok(0);
        }
        let (_, port) = self.host.rsplit_once(':').unwrap_or(("", "80"));
        tokio::task::yield_now().await;
        let port = u16::from_str_radix(port, radix)?;
        Ok(port)
    }
}

impl<T: Clone + Send + Sync + 'static> Wrapper<T> {
    /// A generic async method with a where-clause.
    #[memo]
    pub async fn tagged<K>(self: &Arc<Self>, key: K) -> (K, T)
    where
        K: Clone + Hash + Eq + Send + Sync + 'static,
    {
        tokio::task::yield_now().await;
        (key, self.0.clone())
    }
}

/// An async free function.
#[memo]
async fn async_len_plus(text: &Arc<String>, extra: usize) -> usize {
    tokio::task::yield_now().await;
    text.len() + extra
}

/// A generic async free function in `result` mode.
#[memo(registry = &PARSERS, result)]
async fn async_parse<T>(text: &Arc<T>) -> Result<i64, ParseIntError>
where
    T: AsRef<str> + Send + Sync + 'static,
{
    (**text).as_ref().parse()
}

async fn async_shapes() {
    let client = Arc::new(Client {
        host: "localhost:8080".into(),
    });
    assert_eq!(client.get("/a".into()).await, "localhost:8080/a");
    let spawned = Arc::clone(&client);
    let task = tokio::spawn(async move { spawned.get("/a".into()).await });
    assert_eq!(task.await.unwrap(), "localhost:8080/a");
    let info = Client::get_memo().cache_info();
    assert_eq!((info.hits, info.misses, info.currsize), (1, 1, 1));
    assert!(Client::get_memo().invalidate(&client, &"/a".to_string()));

    assert!(client.port(2).await.is_err());
    assert_eq!(client.port(10).await, Ok(8080));
    assert_eq!(Client::port_memo().invalidate_owner(&client), 1);

    let adder = Arc::new(Adder { bias: 2 });
    assert_eq!(adder.div(8).await, 4);
    assert_eq!(Adder::div_memo().ttl(), Some(Duration::from_millis(250)));
    assert_eq!(Adder::div_memo().cache_info().maxsize, Some(16));

    let wrapper = Arc::new(Wrapper(7u8));
    let spawned = Arc::clone(&wrapper);
    let task = tokio::spawn(async move { spawned.tagged(1u32).await });
    assert_eq!(task.await.unwrap(), (1, 7));
    assert_eq!(wrapper.tagged(1u32).await, (1, 7));
    assert_eq!(Wrapper::<u8>::tagged_memo::<u32>().cache_info().hits, 1);

    let text = Arc::new("abc".to_string());
    assert_eq!(async_len_plus(&text, 1).await, 4);
    assert_eq!(async_len_plus_memo().clear(), 1);
    assert_eq!(async_parse(&Arc::new("12".to_string())).await, Ok(12));
    assert_eq!(async_parse_memo::<String>().cache_info().currsize, 1);
}

// ---------------------------------------------------------------------------------------
// Object arguments, receivers by value, one-line bodies.

struct Doc(String);

trait Named: Send + Sync {
    fn name(&self) -> String;
}

impl Named for Doc {
    fn name(&self) -> String {
        self.0.clone()
    }
}

impl std::fmt::Display for Adder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "adder{}", self.bias)
    }
}

mod helpers {
    pub fn twice(n: i64) -> i64 {
        2 * n
    }
}

impl Adder {
    /// A one-line body.
    #[memo]
    pub fn bias(self: &Arc<Self>) -> i64 { self.bias }

    /// An inner attribute, which applies to the fn.
    #[memo]
    pub fn unused(self: &Arc<Self>, n: i64) -> i64 {
        #![allow(unused_variables)]
        let ignored = n;
        self.bias
    }

    /// A receiver and an object argument: both owners, in a tuple.
    #[memo]
    pub fn with_doc(self: &Arc<Self>, doc: &Arc<Doc>, extra: i64) -> i64 {
        self.bias + doc.0.len() as i64 + extra
    }

    /// An `Arc` by value and a trait object by value.
    #[memo]
    pub fn owned(self: &Arc<Self>, doc: Arc<Doc>, named: Arc<dyn Named>) -> usize { doc.0.len() + named.name().len() }

    /// Four owners, the most an entry holds.
    #[memo]
    pub fn four(self: &Arc<Self>, a: &Arc<Doc>, b: &Arc<Doc>, c: &Arc<dyn Named>) -> usize {
        a.0.len() + b.0.len() + c.name().len() + self.bias as usize
    }

    /// A receiver by value, `mut`: the body receives its own `Arc<Self>`.
    #[memo]
    pub fn consumed(mut self: Arc<Self>, n: i64) -> (i64, usize) {
        let count = Arc::strong_count(&self);
        self = Arc::clone(&self);
        (self.bias + n, count)
    }

    /// The renamed `self`: in a path (left alone), in a format string, in a closure, and
    /// beside a nested item with a `self` of its own.
    #[memo]
    pub fn renamed(self: &Arc<Self>, other: &Arc<Doc>) -> String {
        struct Local(i64);
        impl Local {
            fn get(&self) -> i64 {
                self.0
            }
        }
        let doubled = self::helpers::twice(self.bias);
        let closure = || self.bias + Local(1).get();
        format!("{self} {doubled} {} {}", closure(), other.0)
    }

    /// An object argument and a borrowed one, async.
    #[memo]
    pub async fn doc_prefix(self: &Arc<Self>, doc: &Arc<Doc>, prefix: &str) -> bool {
        tokio::task::yield_now().await;
        doc.0.starts_with(prefix) && self.bias >= 0
    }

    /// A receiver by value, async.
    #[memo]
    pub async fn consumed_async(self: Arc<Self>) -> i64 {
        self.bias
    }
}

/// `by_value`: an `Arc<str>` keyed by what it points to.
#[memo(by_value(name))]
fn shout(name: Arc<str>, times: usize) -> String {
    name.to_uppercase().repeat(times)
}

/// An `Arc` by value, alone.
#[memo]
fn doc_owned(doc: Arc<Doc>) -> usize {
    doc.0.len() + Arc::strong_count(&doc)
}

/// An object argument after a key argument, in a free function.
#[memo]
fn doc_len(extra: usize, doc: &Arc<Doc>) -> usize { doc.0.len() + extra }

// ---------------------------------------------------------------------------------------
// Owner-less functions.

/// Recursive, bounded by default.
#[memo]
fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

/// No argument at all.
#[memo]
fn seven() -> u32 { 7 }

/// Unbounded, with a time to live.
#[memo(maxsize = None, ttl = Duration::from_secs(5))]
fn halve(n: u64) -> u64 {
    n / 2
}

/// Generic.
#[memo]
fn repeat<T: Clone + Hash + Eq + Send + Sync + 'static>(value: T, n: usize) -> Vec<T> {
    vec![value; n]
}

/// Async, in `result` mode.
#[memo(result)]
async fn parse_async(text: String) -> Result<u32, ParseIntError> {
    tokio::task::yield_now().await;
    text.parse()
}

struct Math;

impl Math {
    /// Associated, without receiver: `Self` in the body.
    #[memo(maxsize = 64)]
    fn tri(n: u64) -> u64 {
        if n == 0 { 0 } else { n + Self::tri(n - 1) }
    }

    /// Associated, without receiver: `Self` in the signature.
    #[memo]
    fn unit(n: u8) -> Option<Self> {
        (n > 0).then_some(Self)
    }
}

impl Clone for Math {
    fn clone(&self) -> Self {
        Self
    }
}

// ---------------------------------------------------------------------------------------
// Borrowed arguments.

#[derive(Clone, Hash, PartialEq, Eq)]
struct Query {
    table: String,
}

impl Source {
    /// `&str` and `&[T]`, with a named lifetime.
    #[memo]
    pub fn count<'a>(self: &Arc<Self>, needle: &'a str, among: &[&'static str]) -> usize {
        among.iter().filter(|s| **s == needle).count() + self.0.len()
    }

    /// A generic `&U`, through `Borrowed`, alone.
    #[memo]
    pub fn rows(self: &Arc<Self>, query: &Query) -> usize { query.table.len() }
}

/// `&Path`, `&OsStr` and `&CStr`.
#[memo]
fn file_parts(path: &Path, name: &OsStr, tag: &CStr) -> usize {
    path.as_os_str().len() + name.len() + tag.to_bytes().len()
}

/// A generic borrowed argument, and patterns.
#[memo]
fn first_of<K: Clone + Hash + Eq + Send + Sync + 'static>(key: &K, (a, b): (u8, u8)) -> (K, u8) {
    (key.clone(), a.max(b))
}

// ---------------------------------------------------------------------------------------
// Trait impls.

trait Measure {
    fn measure(self: &Arc<Self>, scale: u32) -> u64;
    fn against(self: &Arc<Self>, doc: &Arc<Doc>, unit: &str) -> String;
    async fn slowly(self: &Arc<Self>, scale: u32) -> u64;
    async fn parse(self: &Arc<Self>, text: &str) -> Result<u64, ParseIntError>;
    fn constant(n: u8) -> u8;
}

impl Measure for Adder {
    #[memo(in_trait)]
    fn measure(self: &Arc<Self>, scale: u32) -> u64 { self.bias as u64 * u64::from(scale) }

    #[memo(in_trait, maxsize = 16, ttl = Duration::from_secs(5))]
    fn against(self: &Arc<Self>, doc: &Arc<Doc>, unit: &str) -> String {
        format!("{self}: {}{unit}", doc.0)
    }

    #[memo(in_trait, registry = &PARSERS)]
    async fn slowly(self: &Arc<Self>, scale: u32) -> u64 {
        tokio::task::yield_now().await;
        self.measure(scale)
    }

    #[memo(in_trait, result)]
    async fn parse(self: &Arc<Self>, text: &str) -> Result<u64, ParseIntError> {
        tokio::task::yield_now().await;
        let n: u64 = text.parse()?;
        Ok(n + self.bias as u64)
    }

    #[memo(in_trait)]
    fn constant(n: u8) -> u8 { n }
}

impl<T: Clone + Send + Sync + 'static> Measure for Wrapper<T> {
    #[memo(in_trait)]
    fn measure(self: &Arc<Self>, scale: u32) -> u64 {
        std::mem::size_of::<T>() as u64 * u64::from(scale)
    }

    #[memo(in_trait)]
    fn against(self: &Arc<Self>, doc: &Arc<Doc>, unit: &str) -> String {
        format!("{}{unit}", doc.0)
    }

    #[memo(in_trait)]
    async fn slowly(self: &Arc<Self>, scale: u32) -> u64 {
        tokio::task::yield_now().await;
        u64::from(scale)
    }

    #[memo(in_trait, result)]
    async fn parse(self: &Arc<Self>, text: &str) -> Result<u64, ParseIntError> {
        if text.is_empty() {
            return Ok(std::mem::size_of::<T>() as u64);
        }
        text.parse()
    }

    #[memo(in_trait)]
    fn constant(n: u8) -> u8 {
        n + std::mem::size_of::<T>() as u8
    }
}

/// A trait's provided method, with `in_trait`: one method per implementing type.
trait Describe: Send + Sync + 'static {
    fn label(&self) -> String;

    #[memo(in_trait)]
    fn describe(self: &Arc<Self>, width: usize) -> String
    where
        Self: Sized,
    {
        format!("{:>width$}", self.label())
    }
}

impl Describe for Doc {
    fn label(&self) -> String {
        self.0.clone()
    }
}

async fn new_shapes() {
    let adder = Arc::new(Adder { bias: 1 });
    let doc = Arc::new(Doc("doc".into()));
    assert!(adder.doc_prefix(&doc, "do").await);
    assert!(adder.doc_prefix(&doc, &String::from("do")).await);
    assert_eq!(Adder::doc_prefix_memo().cache_info().hits, 1);
    assert_eq!(Arc::clone(&adder).consumed_async().await, 1);
    let spawned = Arc::clone(&adder);
    let task = tokio::spawn(async move { spawned.slowly(3).await });
    assert_eq!(task.await.unwrap(), 3);
    assert_eq!(adder.slowly(3).await, 3);
    let wrapper = Arc::new(Wrapper(1u32));
    let spawned = Arc::clone(&wrapper);
    let task = tokio::spawn(async move { spawned.slowly(2).await });
    assert_eq!(task.await.unwrap(), 2);
    assert_eq!(wrapper.parse("").await, Ok(4));
    assert!(wrapper.parse("x").await.is_err());
    let spawned = Arc::clone(&adder);
    let task = tokio::spawn(async move { spawned.parse("41").await });
    assert_eq!(task.await.unwrap(), Ok(42));
    assert_eq!(parse_async("12".into()).await, Ok(12));
    assert!(parse_async("x".into()).await.is_err());
    assert_eq!(parse_async_memo().cache_info().currsize, 1);
}

fn main() {
    let adder = Arc::new(Adder { bias: 1 });
    let doc = Arc::new(Doc("doc".into()));
    let named: Arc<dyn Named> = Arc::new(Doc("named".into()));
    assert_eq!(adder.bias(), 1);
    assert_eq!(adder.unused(3), 1);
    assert_eq!(adder.with_doc(&doc, 1), 5);
    assert!(Adder::with_doc_memo().invalidate((&adder, &doc), &1));
    assert_eq!(adder.owned(Arc::clone(&doc), Arc::clone(&named)), 8);
    assert_eq!(adder.four(&doc, &doc, &named), 12);
    assert_eq!(Adder::four_memo().invalidate_owner(&named), 1);
    assert_eq!(Arc::clone(&adder).consumed(1), (2, 3));
    assert_eq!(adder.renamed(&doc), "adder1 2 2 doc");
    assert_eq!(shout(Arc::from("hi"), 2), "HIHI");
    assert_eq!(shout(Arc::from("hi"), 2), "HIHI");
    assert_eq!(shout_memo().cache_info().hits, 1);
    assert_eq!(doc_owned(Arc::clone(&doc)), 6);
    assert_eq!(doc_owned_memo().invalidate_owner(&doc), 1);
    assert_eq!(doc_len(1, &doc), 4);
    assert!(doc_len_memo().invalidate(&doc, &1));

    assert_eq!(fib(20), 6765);
    assert_eq!(fib_memo().cache_info().maxsize, Some(1024));
    assert_eq!(seven(), 7);
    assert!(seven_memo().invalidate((), &()));
    assert_eq!(halve(9), 4);
    assert_eq!(halve_memo().cache_info().maxsize, None);
    assert_eq!(repeat('x', 2), vec!['x', 'x']);
    assert_eq!(repeat_memo::<char>().cache_info().currsize, 1);
    assert_eq!(Math::tri(4), 10);
    assert_eq!(Math::tri_memo().cache_info().maxsize, Some(64));
    assert!(Math::unit(1).is_some());
    assert_eq!(Math::unit_memo().cache_info().misses, 1);

    let source = Arc::new(Source("s".into()));
    assert_eq!(source.count("a", &["a", "b", "a"]), 3);
    let (needle, among) = (String::from("a"), ["a", "b", "a"].to_vec());
    assert_eq!(source.count(&needle, &among), 3, "equal contents, other allocations");
    assert_eq!(Source::count_memo().cache_info().hits, 1);
    let query = Query { table: "t".into() };
    assert_eq!(source.rows(&query), 1);
    assert!(Source::rows_memo().invalidate(&source, &query));
    assert_eq!(file_parts(Path::new("/a"), OsStr::new("b"), c"c"), 4);
    assert_eq!(file_parts_memo().cache_info().currsize, 1);
    assert_eq!(first_of(&"k".to_string(), (1, 2)), ("k".to_string(), 2));
    assert_eq!(first_of_memo::<String>().cache_info().misses, 1);

    assert_eq!(adder.measure(2), 2);
    assert_eq!(adder.against(&doc, "m"), "adder1: docm");
    assert_eq!(<Adder as Measure>::constant(3), 3);
    let wrapper = Arc::new(Wrapper(0u16));
    assert_eq!(wrapper.measure(2), 4);
    assert_eq!(wrapper.against(&doc, "m"), "docm");
    assert_eq!(<Wrapper<u16> as Measure>::constant(1), 3);
    assert_eq!(doc.describe(5), "  doc");
    assert_eq!(doc.describe(5), "  doc");

    let adder = Arc::new(Adder { bias: 1 });
    assert_eq!(adder.add(1, 2), 4);
    assert_eq!(Adder::add_memo().cache_info().misses, 1);
    assert_eq!(adder.mul(3), 3);
    assert_eq!(Adder::mul_memo().ttl(), Some(Duration::from_secs(60)));

    let wrapper = Arc::new(Wrapper(0u16));
    assert_eq!(wrapper.pair("k"), ("k", 2));
    assert_eq!(Wrapper::<u16>::pair_memo::<&str>().cache_info().currsize, 1);

    let source = Arc::new(Source("ff".into()));
    assert!(source.number(10).is_err());
    assert_eq!(source.number(16), Ok(255));
    assert_eq!(Source::number_memo().cache_info().currsize, 1);

    let text = Arc::new("abc".to_string());
    assert_eq!(len_plus(&text, 1), 4);
    assert_eq!(len_plus_memo().invalidate_owner(&text), 1);
    assert!(parse_len(&text).is_err());
    assert_eq!(parse_len(&Arc::new("12".to_string())), Ok(14));
    assert_eq!(parse_len_memo().ttl(), Some(Duration::from_secs(1)));

    assert_eq!(debug(&Arc::new(5)), "5");
    assert_eq!(debug_memo::<i32>().clear(), 1);

    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
        .block_on(async {
            async_shapes().await;
            new_shapes().await;
        });
}
