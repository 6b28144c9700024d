//! Every supported shape: a method, a generic method on a generic type with a
//! where-clause, `result` mode with `?` and early `return`, a free function, a generic
//! free function, a registry of one's own, a bound and a time to live; and the same as
//! `async fn`, whose futures are `Send` and spawn on tokio.
use std::hash::Hash;
use std::num::ParseIntError;
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
    assert_eq!(async_len_plus_memo().cache_clear(), 1);
    assert_eq!(async_parse(&Arc::new("12".to_string())).await, Ok(12));
    assert_eq!(async_parse_memo::<String>().cache_info().currsize, 1);
}

fn main() {
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
    assert_eq!(debug_memo::<i32>().cache_clear(), 1);

    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
        .block_on(async_shapes());
}
