//! The handle of one memoized method: its calls, its entries, its settings and its
//! counters (Python's `cache_info()`, and `cache_clear()` as `clear()`), in one registry.

use std::any::type_name;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use super::Registry;
use crate::identity::owner_addr;
use crate::lock_scope::assert_unlocked;
use crate::lookup::Lookup;
use crate::owners::{Owners, SharedHeld};
use crate::stats::Stats;
use crate::table::expiry::{ttl_duration, ttl_ms};
use crate::table::{ErasedCache, MethodCache};

/// A function that weighs a method's entries, from its arguments and value, for the
/// bounds: see [`Memo::set_weigher`].
pub type Weigher<A, V> = Arc<dyn Fn(&A, &V) -> u32 + Send + Sync>;

/// The cache of one method in one registry, from [`Registry::method`] (or, for a method
/// marked `#[weakmemo::memo]`, the `NAME_memo()` function written beside it).
///
/// - `F` is the method, as the registry identifies it: a fn item or a non-capturing
///   closure taking the owners and `&A`.
/// - `H` is what an entry holds of its owners: `Weak<T>` for an owner `&Arc<T>`, a
///   tuple of `Weak`s for a tuple of owners, `()` for none.
/// - `A` is the arguments' stored type, and `V` the value's: the method's return type,
///   or the `Ok` type of a method cached by [`try_call`](Self::try_call).
///
/// A handle borrows its registry and is `Copy`; every handle of one method and `V`
/// reaches the same entries and settings, whoever made it. Its operations cover this
/// method's entries and no other method's; what spans every method is on [`Registry`].
///
/// ```
/// use std::sync::Arc;
/// use weakmemo::Registry;
///
/// static CACHE: Registry = Registry::new();
///
/// fn double(n: &Arc<i32>, &k: &i32) -> i32 { **n * k * 2 }
///
/// let double = CACHE.method(double);
/// let n = Arc::new(1);
/// assert_eq!(double.call(&n, 10), 20);
/// assert_eq!(double.call(&n, 10), 20);
/// assert_eq!(double.get(&n, &10), Some(20));
/// let info = double.cache_info();
/// assert_eq!((info.hits, info.misses, info.maxsize, info.currsize), (2, 1, None, 1));
/// assert!(double.invalidate(&n, &10));
/// assert_eq!(double.cache_info().currsize, 0);
/// ```
pub struct Memo<'r, F, H: SharedHeld, A, V> {
    registry: &'r Registry,
    table: &'r MethodCache<H, A, V>,
    method: F,
}

/// Counters of one cached method, named as Python's `functools` `cache_info()` names
/// them; from [`Memo::cache_info`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheInfo {
    /// Lookups that found a cached value (as [`Stats::hits`]: may undercount slightly
    /// when threads of one stripe hit the method at the same instant).
    pub hits: u64,
    /// Lookups that found no cached value (exact).
    pub misses: u64,
    /// The method's bound on entries, `None` if it has none (see
    /// [`Memo::set_capacity`]).
    pub maxsize: Option<usize>,
    /// Entries held now, including dead owners' entries not yet purged (as
    /// [`Stats::entries`]).
    pub currsize: usize,
}

impl CacheInfo {
    /// A method's counters, as `cache_info()` names them, and its bound.
    pub(crate) fn of(stats: &Stats, maxsize: Option<usize>) -> Self {
        Self {
            hits: stats.hits,
            misses: stats.misses,
            maxsize,
            currsize: stats.entries,
        }
    }
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

impl<F: Copy, H: SharedHeld, A, V> Clone for Memo<'_, F, H, A, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F: Copy, H: SharedHeld, A, V> Copy for Memo<'_, F, H, A, V> {}

impl<F, H: SharedHeld, A, V> fmt::Debug for Memo<'_, F, H, A, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memo")
            .field("method", &type_name::<F>())
            .finish_non_exhaustive()
    }
}

impl<'r, F, H, A, V> Memo<'r, F, H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(registry: &'r Registry, table: &'r MethodCache<H, A, V>, method: F) -> Self {
        Self {
            registry,
            table,
            method,
        }
    }

    pub(super) fn method(&self) -> &F {
        &self.method
    }

    pub(crate) fn table(&self) -> &'r MethodCache<H, A, V> {
        self.table
    }

    /// The registry that holds this method's entries.
    #[must_use]
    pub fn registry(&self) -> &'r Registry {
        self.registry
    }

    /// The value cached for these owners and arguments, without computing it.
    ///
    /// The owners are those the method is called with: `&owner`, a tuple `(&a, &b)`, or
    /// `()`. The arguments are in their stored form, or any [`Lookup`] of it: for a
    /// `#[memo]` method, `()` for none, the argument itself for one, a tuple for
    /// several, a `&str` as a `String` (or a `&str` itself, or
    /// [`Parts`](crate::Parts)`(("word", 2))`).
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn get<O, Q>(&self, owners: O, args: &Q) -> Option<V>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
    {
        let probe = self.table.get(
            self.table.key(owners, args),
            args,
            self.registry.purge_interval(),
        );
        // The miss's read lock is released before a purge step takes others.
        let value = probe.found.ok();
        if probe.purge_due {
            crate::table::single_flight::Host::purge_step(self.registry);
        }
        value
    }

    /// Removes the entry of these owners and arguments (as [`get`](Self::get) names
    /// them); returns whether there was one.
    ///
    /// Invalidation covers computations in flight, as every invalidation and `clear`
    /// does: a call that begins after this returns never receives a value whose
    /// computation began before it. A computation of the key under way now still
    /// answers the callers already waiting for it, but its value is not stored
    /// ([`Stats::discarded`]), and later callers compute afresh, so change the owner's
    /// state first, then invalidate.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn len(text: &Arc<str>, &(): &()) -> usize { text.len() }
    /// let cache = Registry::new();
    /// let len = cache.method(len);
    /// let text: Arc<str> = Arc::from("four");
    /// len.call(&text, ());
    /// assert!(len.invalidate(&text, &()));
    /// assert!(!len.invalidate(&text, &()));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn invalidate<O, Q>(&self, owners: O, args: &Q) -> bool
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
    {
        assert_unlocked();
        self.table.invalidate(self.table.key(owners, args), args)
    }

    /// Removes every entry of one owner for this method; returns how many. The owner's
    /// other methods keep theirs: [`Registry::invalidate_owner`] removes those too.
    ///
    /// Computations in flight are covered, as by [`invalidate`](Self::invalidate).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn twice(n: &Arc<i32>, &k: &i32) -> i32 { **n * k * 2 }
    /// fn thrice(n: &Arc<i32>, &k: &i32) -> i32 { **n * k * 3 }
    /// let cache = Registry::new();
    /// let (twice, thrice) = (cache.method(twice), cache.method(thrice));
    /// let n = Arc::new(1);
    /// twice.call(&n, 1);
    /// twice.call(&n, 2);
    /// thrice.call(&n, 1);
    /// assert_eq!(twice.invalidate_owner(&n), 2);
    /// assert_eq!(thrice.get(&n, &1), Some(3));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn invalidate_owner<T: ?Sized>(&self, owner: &Arc<T>) -> usize {
        assert_unlocked();
        self.table.remove_owner(owner_addr(owner))
    }

    /// Removes every entry of this method, for every owner; returns how many. The
    /// counters are kept. Computations in flight are covered, as by
    /// [`invalidate`](Self::invalidate).
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn clear(&self) -> usize {
        assert_unlocked();
        self.table.clear()
    }

    /// The counters of this method; see [`Stats`]. `purge_steps` counts the registry's
    /// steps, which serve every method, and `methods` is 1.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn double(n: &Arc<u32>, &(): &()) -> u32 { **n * 2 }
    /// fn triple(n: &Arc<u32>, &(): &()) -> u32 { **n * 3 }
    /// let cache = Registry::new();
    /// let double = cache.method(double);
    /// let n = Arc::new(1);
    /// double.call(&n, ());
    /// double.call(&n, ());
    /// cache.method(triple).call(&n, ());
    /// let stats = double.stats();
    /// assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1));
    /// assert_eq!(cache.stats().entries, 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    #[must_use]
    pub fn stats(&self) -> Stats {
        assert_unlocked();
        let mut stats = self.registry.no_stats();
        self.table.add_stats(&mut stats);
        stats
    }

    /// Hits, misses, bound and entries of this method, as Python's `cache_info()`
    /// names them; see [`CacheInfo`].
    ///
    /// # Panics
    ///
    /// As [`stats`](Self::stats).
    #[must_use]
    pub fn cache_info(&self) -> CacheInfo {
        CacheInfo::of(&self.stats(), self.capacity())
    }

    /// Bounds this method to `capacity` entries (or weight, with a weigher), or lifts
    /// its bound (`None`), like the `maxsize` of Python's `lru_cache`.
    ///
    /// A value just computed is always stored, in a window of the newest 1% of the
    /// bound (at least one entry), so that its next call finds it. When the window is
    /// over its share, its oldest entry leaves it: it takes the room of a dead owner's
    /// entry if the CLOCK hand meets one, else of an entry not hit since the hand last
    /// passed, provided its arguments were missed more often lately than that entry's
    /// (as often, if it was evicted so lately before and is back within about
    /// `capacity` calls); otherwise it is evicted. While the keys so evicted come back
    /// within about `capacity` calls more often than the entries evicted for others
    /// (as when the working set moves, and in a fresh cache, which has seen none), the
    /// newest entry takes the room anyway, as in LRU. Hits are not slowed: each sets a
    /// small counter on its entry. [`Stats::evicted`] counts the entries removed.
    /// `Some(0)` stores nothing. A method bounded before its first lookup gets about
    /// one shard per 64 entries of its bound; a lowered bound is met at the next miss.
    /// The policy and its measurements: [`benchmarks`](crate::benchmarks),
    /// "`hit_ratio`".
    ///
    /// A method without owners is bounded by default, to
    /// [`DEFAULT_OWNERLESS_CAPACITY`](crate::DEFAULT_OWNERLESS_CAPACITY): nothing else
    /// would ever free its entries.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn square(n: &Arc<u64>, &k: &u64) -> u64 { **n * k * k }
    /// let cache = Registry::new();
    /// let square = cache.method(square);
    /// square.set_capacity(Some(100));
    /// let n = Arc::new(1);
    /// for k in 0..1000 {
    ///     assert_eq!(square.call(&n, k), k * k);
    /// }
    /// assert!(cache.stats().entries <= 100);
    /// assert_eq!(square.capacity(), Some(100));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn set_capacity(&self, capacity: Option<usize>) {
        assert_unlocked();
        self.table.set_capacity(capacity.unwrap_or(usize::MAX));
    }

    /// This method's bound, if it has one; see [`set_capacity`](Self::set_capacity).
    #[must_use]
    pub fn capacity(&self) -> Option<usize> {
        let capacity = self.table.capacity();
        (capacity != usize::MAX).then_some(capacity)
    }

    /// Weighs each new entry of this method with `weigher`, so that bounds (the
    /// method's and the registry's) count weight, in whatever unit it gives (bytes,
    /// say), rather than entries; `None` weighs each new entry 1 again. An entry is
    /// weighed once, when it is stored, and keeps that weight. One heavier than a
    /// bound, or than [`MAX_WEIGHT`](crate::MAX_WEIGHT), is returned but not stored, and
    /// counted in [`Stats::evicted`]; a weight of 0 makes an entry free.
    ///
    /// The weigher is user code, run with no lock held: it may use the registry, and if
    /// it panics, the call that stored panics with it and nothing is stored or lost.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn page(site: &Arc<String>, &n: &usize) -> String { site.repeat(n) }
    /// let cache = Registry::builder().capacity(1_000).build(); // bytes, by the weigher
    /// let page = cache.method(page);
    /// page.set_weigher(Some(Arc::new(|_: &usize, text: &String| text.len() as u32)));
    /// let site = Arc::new("ab".to_string());
    /// for n in 0..100 {
    ///     assert_eq!(page.call(&site, n).len(), 2 * n);
    /// }
    /// assert!(cache.weight() <= 1_000);
    /// ```
    pub fn set_weigher(&self, weigher: Option<Weigher<A, V>>) {
        self.table.set_weigher(weigher);
    }

    /// This method's weigher, if it has one; see [`set_weigher`](Self::set_weigher).
    #[must_use]
    pub fn weigher(&self) -> Option<Weigher<A, V>> {
        self.table.weigher()
    }

    /// Gives this method a time to live of its own, or (`None`) the registry's again:
    /// its entries are never returned once older than `ttl` (counted from when they were
    /// stored; an entry stored while the method had no TTL counts from when one was
    /// set), and are removed lazily, like dead owners' entries, by purge steps, by
    /// [`Registry::purge`], and by stores and bounds that meet them. A TTL is kept in
    /// whole milliseconds, rounded up; `Duration::ZERO` stores nothing, and
    /// `Duration::MAX` exempts the method from the registry's TTL. Expiry is judged by
    /// the TTL in force at each lookup, as Caffeine's is when its duration changes:
    /// lengthening or lifting a TTL keeps the entries not yet removed.
    ///
    /// A hit of a method with a TTL reads the clock (`Instant::now()`, about 20 ns); a
    /// hit of one without, a flag.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use weakmemo::Registry;
    ///
    /// fn quote(symbol: &Arc<str>, &(): &()) -> f64 { symbol.len() as f64 }
    /// let cache = Registry::new();
    /// let quote = cache.method(quote);
    /// quote.set_ttl(Some(Duration::from_millis(20)));
    /// let acme: Arc<str> = Arc::from("ACME");
    /// quote.call(&acme, ());
    /// assert!(quote.get(&acme, &()).is_some());
    /// std::thread::sleep(Duration::from_millis(30));
    /// assert!(quote.get(&acme, &()).is_none());
    /// assert_eq!(quote.ttl(), Some(Duration::from_millis(20)));
    /// ```
    pub fn set_ttl(&self, ttl: Option<Duration>) {
        // Under the registry's settings lock, so that a registry-wide TTL set meanwhile
        // cannot overwrite a lifted own TTL with a stale value.
        let _settings = self.registry.settings.lock();
        let own = ttl.map(|ttl| ttl_ms(Some(ttl)));
        self.table.set_ttl(
            own,
            self.registry.ttl.load(std::sync::atomic::Ordering::Relaxed),
        );
    }

    /// This method's own time to live, if it has one (not the registry's, which applies
    /// to methods without one); see [`set_ttl`](Self::set_ttl).
    #[must_use]
    pub fn ttl(&self) -> Option<Duration> {
        ttl_duration(self.table.own_ttl()?)
    }
}
