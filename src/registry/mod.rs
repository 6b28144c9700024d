//! The registry: the public face of the cache.
//!
//! - here: [`Registry`] and its registry-wide operations and settings;
//! - [`builder`]: [`RegistryBuilder`] and the defaults;
//! - [`tables`]: finding or making a method's table, with its settings from the start;
//! - [`memo`]: [`Memo`], the typed handle of one method: its per-method operations
//!   and settings;
//! - [`calls`]: the handle's `call` and its fallible and async twins;
//! - [`maintenance`]: the lazy purge step and the registry's bound;
//! - [`directory`]: the lock-free map from a method's identity to its table.

mod builder;
mod calls;
mod directory;
mod maintenance;
mod memo;
mod prompt;
mod tables;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use self::builder::{
    DEFAULT_OWNERLESS_CAPACITY, DEFAULT_PURGE_INTERVAL, MAX_WEIGHT, PURGE_STEP_BUCKETS,
    RegistryBuilder,
};
pub use self::memo::{CacheInfo, Memo, Weigher};
pub use self::prompt::{FREE_ON_DROP_KEYS, FreeOnDrop};
pub use self::tables::Defaults;
#[cfg(feature = "macros")]
pub use self::tables::{Resolved, memo};

use self::directory::Directory;
use self::maintenance::{Cursor, sum_over};
use crate::identity::owner_addr;
use crate::lock_scope::assert_unlocked;
use crate::removal::RemovalListener;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::sync::Mutex;
use crate::table::ErasedCache;
use crate::table::expiry::{ttl_duration, ttl_ms};

/// A cache of memoized method results, keyed by owner identity, method and arguments.
///
/// Owners are held as `Weak`, so the cache never keeps an owner alive; the entries of
/// dead owners are never returned and are removed lazily by later lookups (see
/// [`set_purge_interval`](Self::set_purge_interval)) or at once by [`purge`](Self::purge).
///
/// A method is called, read, tuned and invalidated through its handle,
/// [`method`](Self::method); what spans every method (the registry's bound and TTL,
/// [`clear`](Self::clear), [`stats`](Self::stats), ...) is here.
///
/// Most programs use the shared [`global()`](crate::global) registry. A registry of your
/// own gives its methods separate tuning, statistics and `clear()`:
///
/// ```
/// use std::sync::Arc;
/// use weakmemo::Registry;
///
/// static SHAPES: Registry = Registry::builder().purge_interval(1024).build();
///
/// struct Square(f64);
/// fn area(square: &Arc<Square>, &(): &()) -> f64 {
///     square.0 * square.0
/// }
///
/// let square = Arc::new(Square(3.0));
/// assert_eq!(SHAPES.method(area).call(&square, ()), 9.0);
/// assert_eq!(SHAPES.stats().entries, 1);
/// ```
pub struct Registry {
    methods: Directory,
    purge_interval: AtomicUsize,
    single_flight: AtomicBool,
    /// Shards per method table at most, a power of two, or 0 for the default.
    shards: usize,
    cursor: Mutex<Cursor>,
    purge_steps: AtomicU64,
    /// Held while a table is made and while a registry-wide setting reaches every
    /// table, so that a table made meanwhile starts with the setting.
    settings: Mutex<()>,
    /// The registry's TTL in ms, which methods without their own take.
    ttl: AtomicU64,
    /// What the tables share with the registry, made on first need (a `const` registry
    /// cannot allocate): its bound, from `capacity` until set, and its listener.
    shared: OnceLock<Arc<Shared>>,
    capacity: u64,
    /// The books of the owners whose entries leave as they drop ([`FreeOnDrop`]).
    tracked: self::prompt::Tracked,
}

// A registry is shared between threads by design (the global one is a `static`).
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Registry>();
};

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("purge_interval", &self.purge_interval())
            .field("capacity", &self.capacity())
            .field("ttl", &self.ttl())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The shared registry, for methods that need no registry of their own.
///
/// ```
/// use std::sync::Arc;
///
/// fn double(n: &Arc<i32>, &(): &()) -> i32 {
///     **n * 2
/// }
/// let n = Arc::new(21);
/// assert_eq!(weakmemo::global().method(double).call(&n, ()), 42);
/// ```
pub fn global() -> &'static Registry {
    static GLOBAL: Registry = Registry::new();
    &GLOBAL
}

impl Registry {
    /// A registry with the default settings.
    #[must_use]
    pub const fn new() -> Self {
        Self::builder().build()
    }

    /// Settings for a new registry.
    pub const fn builder() -> RegistryBuilder {
        RegistryBuilder::new()
    }

    /// Removes every entry of one owner, for every method; returns how many.
    ///
    /// Computations in flight are covered, as by [`Memo::invalidate`].
    ///
    /// This visits every method's table, so it costs time in proportion to the whole
    /// registry; [`Memo::invalidate_owner`] visits one method's. The owner's identity is
    /// its allocation: entries made through an `Arc<dyn Trait>` and an `Arc<Concrete>`
    /// of the same object are all removed.
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn invalidate_owner<T: ?Sized>(&self, owner: &Arc<T>) -> usize {
        assert_unlocked();
        let addr = owner_addr(owner);
        sum_over(self.methods.iter(), |cache| cache.remove_owner(addr))
    }

    /// Removes every entry of every method; returns how many. The counters are kept.
    ///
    /// Computations in flight are covered, as by [`Memo::invalidate`].
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn clear(&self) -> usize {
        assert_unlocked();
        sum_over(self.methods.iter(), ErasedCache::clear)
    }

    /// Removes every dead owner's (and expired) entry now, and shrinks tables left
    /// mostly empty; returns how many entries were removed.
    ///
    /// Lazy purging makes this unnecessary for correctness (dead owners' entries are
    /// never returned) and for bounded memory; call it to release memory at a moment of
    /// your choosing, or before reading an exact [`Stats::entries`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn id(n: &Arc<u8>, &(): &()) -> u8 { **n }
    /// let cache = Registry::new();
    /// let n = Arc::new(1);
    /// cache.method(id).call(&n, ());
    /// drop(n);
    /// assert_eq!(cache.purge(), 1);
    /// assert_eq!(cache.stats().entries, 0);
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn purge(&self) -> usize {
        assert_unlocked();
        sum_over(self.methods.iter(), ErasedCache::purge)
    }

    /// A snapshot of the counters of every method; see [`Stats`] for what each counts
    /// and how exactly, and [`Memo::stats`] for one method's.
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    #[must_use]
    pub fn stats(&self) -> Stats {
        assert_unlocked();
        let mut stats = self.no_stats();
        for cache in self.methods.iter() {
            cache.add_stats(&mut stats);
        }
        stats
    }

    /// Counters before any table's are added: the registry's own.
    fn no_stats(&self) -> Stats {
        Stats {
            purge_steps: self.purge_steps.load(Relaxed),
            ..Stats::default()
        }
    }

    /// Gives every method without a TTL of its own this one, or none, at run time; see
    /// [`Memo::set_ttl`] for what a TTL does.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// weakmemo::global().set_ttl(Some(Duration::from_secs(600)));
    /// assert_eq!(weakmemo::global().ttl(), Some(Duration::from_secs(600)));
    /// # weakmemo::global().set_ttl(None);
    /// ```
    pub fn set_ttl(&self, ttl: Option<Duration>) {
        let _settings = self.settings.lock();
        let ttl = ttl_ms(ttl);
        self.ttl.store(ttl, Relaxed);
        for cache in self.methods.iter() {
            cache.inherit_ttl(ttl);
        }
    }

    /// The registry's TTL; see [`set_ttl`](Self::set_ttl).
    #[must_use]
    pub fn ttl(&self) -> Option<Duration> {
        ttl_duration(self.ttl.load(Relaxed))
    }

    /// Bounds the weight of all methods' entries together, or lifts the bound (`None`),
    /// at run time: entries, unless methods have weighers ([`Memo::set_weigher`]).
    ///
    /// Over the bound, the method holding the most weight gives up entries, picked by
    /// its CLOCK hand, so a method that caches little keeps its entries while another
    /// floods the registry; per-method bounds ([`Memo::set_capacity`]) still apply,
    /// with their admission policy. Dead owners' and expired entries go first: those
    /// the hand meets, or finds within 64 buckets of a live victim, and, when this
    /// lowers the bound, all of them (a [`purge`](Self::purge)) before any live entry.
    /// A lowered bound is met at once, by the caller. Entries are evicted after a
    /// store, so while stores are under way the weight may pass the bound by the weight
    /// they store. `Some(0)` stores nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// fn double(n: &Arc<u64>, &k: &u64) -> u64 { **n * k * 2 }
    /// let cache = weakmemo::Registry::new();
    /// cache.set_capacity(Some(100));
    /// let n = Arc::new(1);
    /// let double = cache.method(double);
    /// for k in 0..1_000 {
    ///     double.call(&n, k);
    /// }
    /// assert!(cache.stats().entries <= 100);
    /// assert_eq!(cache.capacity(), Some(100));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn set_capacity(&self, capacity: Option<usize>) {
        assert_unlocked();
        {
            let _settings = self.settings.lock();
            self.shared()
                .set_capacity(capacity.map_or(u64::MAX, |capacity| capacity as u64));
            if capacity.is_some() {
                for cache in self.methods.iter() {
                    cache.track();
                }
            }
        }
        if self
            .capacity()
            .is_some_and(|capacity| self.weight() > capacity)
        {
            self.purge();
        }
        self.keep_within_capacity();
    }

    /// The registry's bound; see [`set_capacity`](Self::set_capacity).
    #[must_use]
    pub fn capacity(&self) -> Option<usize> {
        let capacity = self
            .shared
            .get()
            .map_or(self.capacity, |shared| shared.capacity());
        (capacity != u64::MAX).then(|| usize::try_from(capacity).unwrap_or(usize::MAX))
    }

    /// The weight of all entries held, as the registry's bound counts it: entries,
    /// unless methods have weighers. Counted for every method, bounded or not, so a
    /// bound set at any moment starts from it; exact whenever no call is under way
    /// (a store counts its weight from just before its entry is stored).
    #[must_use]
    pub fn weight(&self) -> usize {
        self.methods.iter().map(ErasedCache::weight).sum()
    }

    /// Tells `listener` of every entry that leaves this registry's caches from now on,
    /// with its cause, or (`None`) stops telling; returns the listener it replaces.
    ///
    /// The listener runs on the thread that removed the entries (a lookup's purge step,
    /// a store's eviction, `invalidate`, ...), after every lock is released and the
    /// counters are updated, so it may use the registry. A panic in it is reported by
    /// the panic hook and then caught: the cache, and the call that removed the entry,
    /// go on. Values computed but never stored (heavier than a bound, under a TTL of
    /// zero, or lost to a race) are not entries, and are not reported.
    ///
    /// See [`Removal`](crate::Removal) for an example.
    pub fn set_removal_listener(
        &self,
        listener: Option<RemovalListener>,
    ) -> Option<RemovalListener> {
        self.shared().listener.replace(listener)
    }

    /// Sets how many lookups pass between two lazy purge steps, at run time.
    ///
    /// Every lookup ([`Memo::call`] and its twins, [`Memo::get`]) counts, hits
    /// included, so a cache that is only read still purges. Each shard counts its own
    /// lookups and, every `lookups`-th one, runs one step: it looks at the next
    /// [`PURGE_STEP_BUCKETS`] buckets of the registry (all methods, all shards, in turn)
    /// and removes the dead owners' entries there. A smaller interval frees dead owners'
    /// values sooner and costs more time per lookup; [`benchmarks`](crate::benchmarks) has
    /// measurements ("Purge interval").
    ///
    /// `0` turns lazy steps off: dead owners' entries then leave only when their shard
    /// is about to grow (which keeps memory bounded) or on [`purge`](Self::purge).
    ///
    /// ```
    /// weakmemo::global().set_purge_interval(1024);
    /// assert_eq!(weakmemo::global().purge_interval(), 1024);
    /// ```
    pub fn set_purge_interval(&self, lookups: usize) {
        self.purge_interval.store(lookups, Relaxed);
    }

    /// Lookups between two lazy purge steps; see
    /// [`set_purge_interval`](Self::set_purge_interval).
    #[must_use]
    #[inline]
    pub fn purge_interval(&self) -> usize {
        self.purge_interval.load(Relaxed)
    }

    /// Turns single flight on (the default) or off, at run time.
    ///
    /// With single flight, when several threads miss the same key at once, one runs the
    /// method and the others wait for it (holding no lock) and receive a clone of its
    /// value; if it panics or returns an error, nothing is stored, the waiters wake, and
    /// one of them runs the method in turn. Without it, each of them runs the method and
    /// all receive the value stored first ([`Stats::discarded`] counts the others):
    /// duplicate work instead of waiting.
    pub fn set_single_flight(&self, on: bool) {
        self.single_flight.store(on, Relaxed);
    }

    /// Whether single flight is on; see [`set_single_flight`](Self::set_single_flight).
    #[must_use]
    pub fn single_flight(&self) -> bool {
        self.single_flight.load(Relaxed)
    }

    fn shared(&self) -> &Arc<Shared> {
        self.shared
            .get_or_init(|| Arc::new(Shared::new(self.capacity)))
    }
}
