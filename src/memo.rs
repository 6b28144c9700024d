//! The handle of one memoized method: Python's `cache_info()` and `cache_clear()`, and
//! invalidation, for one method of one registry.

use std::any::type_name;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use crate::identity::{Method, MethodKind};
use crate::lookup::Lookup;
use crate::owners::Owners;
use crate::registry::Registry;
use crate::stats::Stats;

/// The cache of one method in one registry: what `#[weakmemo::memo]` returns from the
/// `NAME_memo()` function it writes beside a method `NAME`.
///
/// `F` is the method as the registry identifies it: a fn item or a non-capturing closure
/// taking the owner and `&KEY`. Every operation covers the method's entries whether
/// they were stored through `call` or `try_call`, and no other method's.
///
/// ```
/// use std::sync::Arc;
/// use weakmemo::{Memo, Registry};
///
/// static CACHE: Registry = Registry::new();
///
/// fn double(n: &Arc<i32>, &k: &i32) -> i32 { **n * k * 2 }
///
/// let memo = Memo::new(&CACHE, double);
/// let n = Arc::new(1);
/// CACHE.call(&n, double, 10);
/// CACHE.call(&n, double, 10);
/// let info = memo.cache_info();
/// assert_eq!((info.hits, info.misses, info.maxsize, info.currsize), (1, 1, None, 1));
/// assert!(memo.invalidate(&n, &10));
/// assert_eq!(memo.cache_info().currsize, 0);
/// ```
#[derive(Clone, Copy)]
pub struct Memo<F> {
    registry: &'static Registry,
    method: F,
}

/// Counters of one cached method, named as Python's `functools` `cache_info()` names
/// them; from [`Memo::cache_info`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheInfo {
    /// Lookups that found a cached value (as [`Stats::hits`]: may undercount slightly
    /// when threads hit the same shard at the same instant).
    pub hits: u64,
    /// Lookups that found no cached value (exact).
    pub misses: u64,
    /// The method's bound on entries, `None` if it has none (see
    /// [`Registry::set_method_capacity`]).
    pub maxsize: Option<usize>,
    /// Entries held now, including dead owners' entries not yet purged (as
    /// [`Stats::entries`]).
    pub currsize: usize,
}

impl fmt::Display for CacheInfo {
    /// Python's spelling: `CacheInfo(hits=1, misses=2, maxsize=None, currsize=2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            hits,
            misses,
            maxsize,
            currsize,
        } = self;
        write!(f, "CacheInfo(hits={hits}, misses={misses}, maxsize=")?;
        match maxsize {
            Some(maxsize) => write!(f, "{maxsize}")?,
            None => f.write_str("None")?,
        }
        write!(f, ", currsize={currsize})")
    }
}

impl<F> fmt::Debug for Memo<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memo")
            .field("method", &type_name::<F>())
            .finish_non_exhaustive()
    }
}

impl<F: Copy + 'static> Memo<F> {
    /// The handle of `method` in `registry`.
    pub const fn new(registry: &'static Registry, method: F) -> Self {
        Self { registry, method }
    }

    /// The registry that holds this method's entries.
    #[must_use]
    pub fn registry(&self) -> &'static Registry {
        self.registry
    }

    /// Hits, misses and entries of this method; see [`CacheInfo`].
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    #[must_use]
    pub fn cache_info<O, A, K>(&self) -> CacheInfo
    where
        O: Owners,
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        let stats = self.stats();
        CacheInfo {
            hits: stats.hits,
            misses: stats.misses,
            maxsize: self.registry.method_capacity(self.method),
            currsize: stats.entries,
        }
    }

    /// The method's own time to live, if it has one (not the registry's); see
    /// [`Registry::method_ttl`].
    #[must_use]
    pub fn ttl<O, A, K>(&self) -> Option<Duration>
    where
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        self.registry.method_ttl(self.method)
    }

    /// Every counter of this method; see [`Registry::method_stats`].
    ///
    /// # Panics
    ///
    /// As [`cache_info`](Self::cache_info).
    #[must_use]
    pub fn stats<O, A, K>(&self) -> Stats
    where
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        self.registry.method_stats(self.method)
    }

    /// Removes every entry of this method, for every owner; returns how many. The
    /// counters are kept, as [`Registry::invalidate_method`] keeps them.
    ///
    /// # Panics
    ///
    /// As [`cache_info`](Self::cache_info).
    pub fn cache_clear<O, A, K>(&self) -> usize
    where
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        self.registry.invalidate_method(self.method)
    }

    /// Removes the entry of some owners and key; returns whether there was one. The
    /// owners are those the method is called with: `&owner`, a tuple `(&a, &b)` (a
    /// receiver and `Arc` arguments), or `()`. The key of a memoized method is its other
    /// arguments in their stored form: `()` for none, the argument itself for one, a
    /// tuple for several, a `&str` as a `String` (or any [`Lookup`] of it, such as
    /// [`Parts`](crate::Parts)`(("word", 2))`).
    ///
    /// # Panics
    ///
    /// As [`cache_info`](Self::cache_info).
    pub fn invalidate<O, Q, A, K>(&self, owners: O, key: &Q) -> bool
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        self.registry.invalidate(owners, self.method, key)
    }

    /// Removes every entry of one owner for this method; returns how many. Other
    /// methods' entries of the owner stay; [`Registry::invalidate_owner`] removes those.
    ///
    /// # Panics
    ///
    /// As [`cache_info`](Self::cache_info).
    pub fn invalidate_owner<T, O, A, K>(&self, owner: &Arc<T>) -> usize
    where
        T: ?Sized,
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        self.registry.invalidate_owner_method(owner, self.method)
    }
}
