//! Every supported shape: a method, a generic method on a generic type with a
//! where-clause, `result` mode with `?` and early `return`, a free function, a generic
//! free function, and a registry of one's own.
use std::hash::Hash;
use std::num::ParseIntError;
use std::sync::Arc;

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

/// A generic free function.
#[memo(registry = &PARSERS)]
fn debug<T: std::fmt::Debug + Send + Sync + 'static>(value: &Arc<T>) -> String {
    format!("{value:?}")
}

fn main() {
    let adder = Arc::new(Adder { bias: 1 });
    assert_eq!(adder.add(1, 2), 4);
    assert_eq!(Adder::add_memo().cache_info().misses, 1);

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

    assert_eq!(debug(&Arc::new(5)), "5");
    assert_eq!(debug_memo::<i32>().cache_clear(), 1);
}
