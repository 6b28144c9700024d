//! The registry: the public face of the cache.

use std::any::{Any, TypeId, type_name};
use std::convert::Infallible;
use std::fmt;
use std::hash::Hash;
use std::num::NonZero;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hashbrown::HashMap;

use crate::directory::Directory;
use crate::expiry::{ttl_duration, ttl_ms};
use crate::flight::Flight;
use crate::identity::{Method, MethodKind, Named, Stores, method_id, owner_addr, table_ids};
use crate::in_flight::Claim;
use crate::lock_scope::assert_unlocked;
use crate::lookup::Lookup;
use crate::method_cache::{
    Deferred, ErasedCache, KeyOf, MethodCache, Miss, Probe, Setup, Weigher, remove_key, resume,
};
use crate::owners::{Held, Owners};
use crate::removal::RemovalListener;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::sync::Mutex;
use crate::waits::{self, Caller};

/// Buckets one lazy purge step looks at.
pub const PURGE_STEP_BUCKETS: usize = 64;

/// The bound of a method without owners (a function of its arguments alone, called
/// with `()` as its owners) until one is set: nothing else ever frees its entries, so,
/// like Python's `lru_cache` (128), it is bounded unless told otherwise; lift it with
/// [`Registry::set_method_capacity`]`(method, None)`. A bound counts weight once the
/// method has a weigher ([`Registry::set_method_weigher`]), this one too: give a
/// weighed owner-less method a bound in the weigher's unit.
pub const DEFAULT_OWNERLESS_CAPACITY: usize = 1024;

/// Lookups between two lazy purge steps when nobody sets the interval.
pub const DEFAULT_PURGE_INTERVAL: usize = 256;

/// The heaviest entry a weigher may give (2²⁴ − 1): its weight shares a word with its
/// birth time. A heavier one is returned but not stored; weigh in larger units (KiB
/// rather than bytes) if values can be heavier.
pub const MAX_WEIGHT: u32 = (1 << 24) - 1;

/// A cache of memoized method results, keyed by owner identity, method and arguments.
///
/// Owners are held as `Weak`, so the cache never keeps an owner alive; the entries of
/// dead owners are never returned and are removed lazily by later lookups (see
/// [`set_purge_interval`](Self::set_purge_interval)) or at once by [`purge`](Self::purge).
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
/// assert_eq!(SHAPES.call(&square, area, ()), 9.0);
/// assert_eq!(SHAPES.stats().entries, 1);
/// ```
pub struct Registry {
    methods: Directory,
    purge_interval: AtomicUsize,
    single_flight: AtomicBool,
    /// Shards per method table, a power of two, or 0 for the default.
    shards: usize,
    cursor: Mutex<Cursor>,
    purge_steps: AtomicU64,
    /// Settings given to methods, by table identity, so that a table made later starts
    /// with them (and with few enough shards for its bound).
    configs: Mutex<Option<HashMap<TypeId, MethodConfig>>>,
    /// The registry's TTL in ms, which methods without their own take.
    ttl: AtomicU64,
    /// What the tables share with the registry, made on first need (a `const` registry
    /// cannot allocate): its bound, from `capacity` until set, and its listener.
    shared: OnceLock<Arc<Shared>>,
    capacity: u64,
}

/// What a registry was told about one method.
struct MethodConfig {
    /// `usize::MAX`: none.
    /// The method's bound as set (`usize::MAX`: lifted), or `None` if never set: then
    /// an owner-less method has [`DEFAULT_OWNERLESS_CAPACITY`], others none.
    capacity: Option<usize>,
    /// The method's own TTL in ms, if it has one.
    ttl: Option<u64>,
    /// A [`Weigher`] of the table's argument and value types.
    weigher: Option<Arc<dyn Any + Send + Sync>>,
}

impl MethodConfig {
    const DEFAULT: Self = Self {
        capacity: None,
        ttl: None,
        weigher: None,
    };

    /// The bound in force for a method with owners (`usize::MAX`: none), or without.
    fn capacity(&self, ownerless: bool) -> usize {
        self.capacity.unwrap_or(if ownerless {
            DEFAULT_OWNERLESS_CAPACITY
        } else {
            usize::MAX
        })
    }
}

impl Default for MethodConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

// A registry is shared between threads by design (the global one is a `static`).
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Registry>();
};

/// Where the lazy purge resumes: a method's position in the directory, a shard of it,
/// and a bucket of that shard.
#[derive(Default)]
struct Cursor {
    method: usize,
    shard: usize,
    bucket: usize,
}

/// Settings for a [`Registry`], usable in `const` and `static` items.
///
/// ```
/// use weakmemo::Registry;
///
/// static CACHE: Registry = Registry::builder().purge_interval(64).shards(32).build();
/// assert_eq!(CACHE.purge_interval(), 64);
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct RegistryBuilder {
    purge_interval: usize,
    shards: usize,
    single_flight: bool,
    capacity: Option<usize>,
    ttl: Option<Duration>,
}

impl RegistryBuilder {
    /// Lookups between lazy purge steps; see [`Registry::set_purge_interval`].
    pub const fn purge_interval(mut self, lookups: usize) -> Self {
        self.purge_interval = lookups;
        self
    }

    /// Shards (independently locked parts) of each method's table, rounded up to a power
    /// of two; 0, the default, picks 64 per available core, from 128 to 1024.
    ///
    /// More shards let more threads hit one method at once without meeting on a lock;
    /// each costs 128 bytes (16 KiB per method at 128 shards) plus its table's slack. A
    /// program with very many cached methods and few threads can lower it.
    pub const fn shards(mut self, shards: usize) -> Self {
        self.shards = if shards == 0 {
            0
        } else {
            shards.next_power_of_two()
        };
        self
    }

    /// Whether callers that miss a key another thread is computing wait for that
    /// computation (the default) or run the method themselves; see
    /// [`Registry::set_single_flight`].
    pub const fn single_flight(mut self, on: bool) -> Self {
        self.single_flight = on;
        self
    }

    /// Bounds the weight of every method's entries together; see
    /// [`Registry::set_capacity`].
    pub const fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Gives every method a time to live; see [`Registry::set_ttl`].
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The registry.
    pub const fn build(self) -> Registry {
        Registry {
            methods: Directory::new(),
            purge_interval: AtomicUsize::new(self.purge_interval),
            single_flight: AtomicBool::new(self.single_flight),
            shards: self.shards,
            cursor: Mutex::new(Cursor {
                method: 0,
                shard: 0,
                bucket: 0,
            }),
            purge_steps: AtomicU64::new(0),
            configs: Mutex::new(None),
            ttl: AtomicU64::new(ttl_ms(self.ttl)),
            shared: OnceLock::new(),
            capacity: match self.capacity {
                Some(capacity) => capacity as u64,
                None => u64::MAX,
            },
        }
    }
}

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
/// assert_eq!(weakmemo::global().call(&n, double, ()), 42);
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
        RegistryBuilder {
            purge_interval: DEFAULT_PURGE_INTERVAL,
            shards: 0,
            single_flight: true,
            capacity: None,
            ttl: None,
        }
    }

    /// Returns `method(owner, &args)`, computed once per live owner, method and arguments.
    ///
    /// The method runs outside every lock, so it may call other cached methods, or itself
    /// with other arguments. If several threads miss the same key at once, one runs the
    /// method and the others wait for it, holding no lock, and receive a clone of its
    /// value (single flight; see [`set_single_flight`](Self::set_single_flight)).
    ///
    /// The method is identified by its type, so it must be a fn item or a non-capturing
    /// closure; passing a capturing closure or a fn pointer fails to build, with a
    /// message saying so. (The check runs when the code is compiled to machine code, so
    /// `cargo check` alone does not report it.) Every call site that passes the same fn
    /// item shares its entries.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// struct Account { rate: f64 }
    /// impl Account {
    ///     fn interest(self: &Arc<Self>, years: u32) -> f64 {
    ///         weakmemo::global().call(self, Self::compute_interest, years)
    ///     }
    ///     fn compute_interest(self: &Arc<Self>, &years: &u32) -> f64 {
    ///         (1.0 + self.rate).powi(years as i32)
    ///     }
    /// }
    /// let account = Arc::new(Account { rate: 0.5 });
    /// assert_eq!(account.interest(2), 2.25);
    /// ```
    ///
    /// A closure that captures is refused:
    ///
    /// ```compile_fail,E0080
    /// use std::sync::Arc;
    /// let bonus = 10;
    /// let owner = Arc::new(1);
    /// weakmemo::global().call(&owner, move |n: &Arc<i32>, &(): &()| **n + bonus, ());
    /// ```
    ///
    /// # Panics
    ///
    /// - If `method` panics: the panic reaches this caller with its payload, nothing is
    ///   cached, and the registry stays usable. Callers waiting for this computation
    ///   wake, and one of them runs the method afresh.
    /// - If the call re-enters the key it is computing, on the same thread, directly or
    ///   through other cached methods: it would wait for itself, so it panics at once
    ///   with a message naming the method ("recursive call for the same key").
    /// - If waiting for another thread's computation would close a cycle of threads
    ///   waiting for each other (thread 1 computes key A and needs key B while thread 2
    ///   computes B and needs A): one of them panics ("deadlock avoided") instead of
    ///   hanging.
    /// - If called from an argument's `Eq` or a value's `Clone` while the registry runs
    ///   them under a lock.
    /// - If dropping an entry this call removed (by its lazy purge step, or to make
    ///   room) panics: the panic reaches this caller once the removals are done and
    ///   counted; the cache is left exact, and the key, if this call had claimed it, is
    ///   given up for another caller to compute.
    pub fn call<O, Q, A, V, F>(&self, owners: O, method: F, args: Q) -> V
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: Fn(O, &A) -> V + 'static,
    {
        let () = Named::<F>::METHOD;
        let Ok(value) = self.get_or_compute(
            method_id::<F>(false, false),
            type_name::<F>(),
            owners,
            args,
            |owner, args| Ok::<V, Infallible>(method(owner, args)),
        );
        value
    }

    /// Like [`call`](Self::call), for a method that can fail: an `Ok` value is cached,
    /// an error is returned to the caller and not cached, so the next call tries again.
    ///
    /// A method's `Ok` values are kept apart from its results cached by `call`; read
    /// them with [`get_ok`](Self::get_ok).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn parse(text: &Arc<String>, &radix: &u32) -> Result<i64, std::num::ParseIntError> {
    ///     i64::from_str_radix(text, radix)
    /// }
    /// let cache = Registry::new();
    /// let text = Arc::new("ff".to_string());
    /// assert!(cache.try_call(&text, parse, 10).is_err());
    /// assert_eq!(cache.try_call(&text, parse, 16), Ok(255));
    /// assert_eq!(cache.get_ok(&text, parse, &16), Some(255));
    /// assert_eq!(cache.get_ok(&text, parse, &10), None);
    /// ```
    ///
    /// # Errors
    ///
    /// The method's own error, when this call ran the method and it failed. Callers that
    /// were waiting for that computation do not receive the error: they wake, and one of
    /// them runs the method itself.
    ///
    /// # Panics
    ///
    /// As [`call`](Self::call).
    pub fn try_call<O, Q, A, V, E, F>(&self, owners: O, method: F, args: Q) -> Result<V, E>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: Fn(O, &A) -> Result<V, E> + 'static,
    {
        let () = Named::<F>::METHOD;
        let table = method_id::<F>(false, true);
        self.get_or_compute(table, type_name::<F>(), owners, args, method)
    }

    /// The value [`call`](Self::call) (or [`call_async`](Self::call_async)) cached for
    /// these arguments, without computing it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn square(n: &Arc<u64>, &(): &()) -> u64 { **n * **n }
    /// let cache = Registry::new();
    /// let n = Arc::new(7);
    /// assert_eq!(cache.get(&n, square, &()), None);
    /// cache.call(&n, square, ());
    /// assert_eq!(cache.get(&n, square, &()), Some(49));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn get<O, Q, A, K, F>(&self, owners: O, method: F, args: &Q) -> Option<K::Output>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind<Output: Clone + Send + Sync + 'static>,
        F: Method<O, A, K>,
    {
        let _ = method;
        let () = Named::<F>::METHOD;
        self.peek(method_id::<F>(K::ASYNC, false), owners, args)
    }

    /// The `Ok` value [`try_call`](Self::try_call) (or
    /// [`try_call_async`](Self::try_call_async)) cached for these arguments, without
    /// computing it.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    pub fn get_ok<O, Q, A, V, E, K, F>(&self, owners: O, method: F, args: &Q) -> Option<V>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        K: MethodKind<Output = Result<V, E>>,
        F: Method<O, A, K>,
    {
        let _ = method;
        let () = Named::<F>::METHOD;
        self.peek(method_id::<F>(K::ASYNC, true), owners, args)
    }

    /// Removes the entry of one owner, method and arguments (whether `call` or
    /// `try_call` stored it); returns whether there was one.
    ///
    /// Invalidation covers computations in flight, as every `invalidate*` method and
    /// [`clear`](Self::clear) does: a call that begins after this returns never
    /// receives a value whose computation began before it. A computation of the key
    /// under way now still answers the callers already waiting for it, but its value is
    /// not stored ([`Stats::discarded`]), and later callers compute afresh, so change
    /// the owner's state first, then invalidate.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn len(text: &Arc<str>, &(): &()) -> usize { text.len() }
    /// let cache = Registry::new();
    /// let text: Arc<str> = Arc::from("four");
    /// cache.call(&text, len, ());
    /// assert!(cache.invalidate(&text, len, &()));
    /// assert!(!cache.invalidate(&text, len, &()));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn invalidate<O, Q, A, K, F>(&self, owners: O, method: F, args: &Q) -> bool
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        assert_unlocked();
        let _ = method;
        let addrs = owners.addrs();
        let mut removed = false;
        for cache in self.caches_of::<F, K>() {
            removed |= remove_key(cache, addrs, args);
        }
        removed
    }

    /// Removes every entry of one owner, for every method; returns how many.
    ///
    /// Computations in flight are covered, as by [`invalidate`](Self::invalidate).
    ///
    /// This visits every method's table, so it costs time in proportion to the whole
    /// registry. The owner's identity is its allocation: entries made through an
    /// `Arc<dyn Trait>` and an `Arc<Concrete>` of the same object are all removed.
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn invalidate_owner<T: ?Sized>(&self, owner: &Arc<T>) -> usize {
        assert_unlocked();
        let addr = owner_addr(owner);
        sum_over(self.methods.iter(), |cache| cache.remove_owner(addr))
    }

    /// Removes every entry of one method, for every owner; returns how many.
    ///
    /// Computations in flight are covered, as by [`invalidate`](Self::invalidate).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn twice(n: &Arc<i32>, &k: &i32) -> i32 { **n * k * 2 }
    /// let cache = Registry::new();
    /// let n = Arc::new(1);
    /// cache.call(&n, twice, 1);
    /// cache.call(&n, twice, 2);
    /// assert_eq!(cache.invalidate_method(twice), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn invalidate_method<O, A, K, F>(&self, method: F) -> usize
    where
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        assert_unlocked();
        let _ = method;
        sum_over(self.caches_of::<F, K>(), ErasedCache::clear)
    }

    /// Removes every entry of one owner for one method (whether `call` or `try_call`
    /// stored them); returns how many.
    ///
    /// Computations in flight are covered, as by [`invalidate`](Self::invalidate).
    ///
    /// Unlike [`invalidate_owner`](Self::invalidate_owner), this visits one method's
    /// table only.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn twice(n: &Arc<i32>, &k: &i32) -> i32 { **n * k * 2 }
    /// fn thrice(n: &Arc<i32>, &k: &i32) -> i32 { **n * k * 3 }
    /// let cache = Registry::new();
    /// let n = Arc::new(1);
    /// cache.call(&n, twice, 1);
    /// cache.call(&n, twice, 2);
    /// cache.call(&n, thrice, 1);
    /// assert_eq!(cache.invalidate_owner_method(&n, twice), 2);
    /// assert_eq!(cache.get(&n, thrice, &1), Some(3));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn invalidate_owner_method<T, O, A, K, F>(&self, owner: &Arc<T>, method: F) -> usize
    where
        T: ?Sized,
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        assert_unlocked();
        let _ = method;
        let addr = owner_addr(owner);
        sum_over(self.caches_of::<F, K>(), |cache| cache.remove_owner(addr))
    }

    /// Bounds one method to `capacity` entries, or lifts its bound (`None`), like the
    /// `maxsize` of Python's `lru_cache`. Applies to the entries `call` and `try_call`
    /// (or their async twins) store for the method, now and later.
    ///
    /// Over the bound, a newcomer takes the room of a dead owner's entry if the CLOCK
    /// hand meets one, else of an entry not hit since the hand last passed, provided its
    /// arguments were missed more often lately than that entry's; otherwise it is
    /// returned but not stored. Hits are not slowed: each sets a small counter on its
    /// entry. [`Stats::evicted`] counts both the entries removed and the newcomers kept
    /// out. `Some(0)` stores nothing. A method bounded before its first call gets about
    /// one shard per 64 entries of its bound; a lowered bound takes effect as newcomers
    /// arrive. The policy and its measurements: [`benchmarks`](crate::benchmarks),
    /// "`hit_ratio`".
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn square(n: &Arc<u64>, &k: &u64) -> u64 { **n * k * k }
    /// let cache = Registry::new();
    /// cache.set_method_capacity(square, Some(100));
    /// let n = Arc::new(1);
    /// for k in 0..1000 {
    ///     assert_eq!(cache.call(&n, square, k), k * k);
    /// }
    /// assert!(cache.stats().entries <= 100);
    /// assert_eq!(cache.method_capacity(square), Some(100));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn set_method_capacity<O, A, K, F>(&self, method: F, capacity: Option<usize>)
    where
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        assert_unlocked();
        let _ = method;
        let capacity = capacity.unwrap_or(usize::MAX);
        self.configure::<F, K>(|config| config.capacity = Some(capacity));
        for cache in self.caches_of::<F, K>() {
            cache.set_capacity(capacity);
        }
    }

    /// The bound [`set_method_capacity`](Self::set_method_capacity) gave a method, if any,
    /// or, for a method without owners that was given none, [`DEFAULT_OWNERLESS_CAPACITY`].
    #[must_use]
    pub fn method_capacity<O, A, K, F>(&self, method: F) -> Option<usize>
    where
        O: Owners,
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        let _ = method;
        let ownerless = is_ownerless::<O::Held>();
        let capacity = self
            .config_of::<F, K, _>(|config| config.capacity(ownerless))
            .unwrap_or(MethodConfig::DEFAULT.capacity(ownerless));
        (capacity != usize::MAX).then_some(capacity)
    }

    /// Weighs each new entry of `method` with `weigher`, so that bounds (the method's
    /// and the registry's) count weight, in whatever unit it gives (bytes, say), rather
    /// than entries. Without a weigher an entry weighs 1. `V` is the type the method's
    /// table stores: its return type, or for a method called through `try_call`, the
    /// `Ok` type (see [`Stores`]); any other type is a compile error.
    ///
    /// An entry is weighed once, when it is stored, and keeps that weight. One heavier
    /// than a bound, or than [`MAX_WEIGHT`], is returned but not stored, and counted in
    /// [`Stats::evicted`]; a weight of 0 makes an entry free.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn page(site: &Arc<String>, &n: &usize) -> String { site.repeat(n) }
    /// let cache = Registry::builder().capacity(1_000).build(); // bytes, by the weigher
    /// cache.set_method_weigher(page, |_: &usize, text: &String| text.len() as u32);
    /// let site = Arc::new("ab".to_string());
    /// for n in 0..100 {
    ///     assert_eq!(cache.call(&site, page, n).len(), 2 * n);
    /// }
    /// assert!(cache.weight() <= 1_000);
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn set_method_weigher<O, A, V, K, F>(
        &self,
        method: F,
        weigher: impl Fn(&A, &V) -> u32 + Send + Sync + 'static,
    ) where
        O: Owners,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        K: Stores<V> + MethodKind,
        F: Method<O, A, K>,
    {
        assert_unlocked();
        let _ = method;
        let weigher: Weigher<A, V> = Arc::new(weigher);
        self.configure::<F, K>(|config| config.weigher = Some(Arc::new(Arc::clone(&weigher))));
        for table in table_ids::<F, K>() {
            let cache = self.methods.find(table);
            if let Some(cache) =
                cache.and_then(|c| (c as &dyn Any).downcast_ref::<MethodCache<O::Held, A, V>>())
            {
                cache.set_weigher(Some(Arc::clone(&weigher)));
            }
        }
    }

    /// Gives `method` a time to live of its own, or (`None`) the registry's again: its
    /// entries are never returned once older than `ttl` (counted from when they were
    /// stored; an entry stored while the method had no TTL counts from when one was
    /// set), and are removed lazily, like dead owners' entries, by purge steps, by
    /// [`purge`](Self::purge), and by stores and bounds that meet them. A TTL is kept in
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
    /// cache.set_method_ttl(quote, Some(Duration::from_millis(20)));
    /// let acme: Arc<str> = Arc::from("ACME");
    /// cache.call(&acme, quote, ());
    /// assert!(cache.get(&acme, quote, &()).is_some());
    /// std::thread::sleep(Duration::from_millis(30));
    /// assert!(cache.get(&acme, quote, &()).is_none());
    /// assert_eq!(cache.method_ttl(quote), Some(Duration::from_millis(20)));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn set_method_ttl<O, A, K, F>(&self, method: F, ttl: Option<Duration>)
    where
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        assert_unlocked();
        let _ = method;
        let own = ttl.map(|ttl| ttl_ms(Some(ttl)));
        self.configure::<F, K>(|config| config.ttl = own);
        for cache in self.caches_of::<F, K>() {
            cache.set_ttl(own, self.ttl.load(Relaxed));
        }
    }

    /// The TTL [`set_method_ttl`](Self::set_method_ttl) gave a method, if any (not the
    /// registry's, which applies to methods without one).
    #[must_use]
    pub fn method_ttl<O, A, K, F>(&self, method: F) -> Option<Duration>
    where
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        let _ = method;
        ttl_duration(self.config_of::<F, K, _>(|config| config.ttl)??)
    }

    /// Gives every method without a TTL of its own this one, or none, at run time; see
    /// [`set_method_ttl`](Self::set_method_ttl) for what a TTL does.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// weakmemo::global().set_ttl(Some(Duration::from_secs(600)));
    /// assert_eq!(weakmemo::global().ttl(), Some(Duration::from_secs(600)));
    /// # weakmemo::global().set_ttl(None);
    /// ```
    pub fn set_ttl(&self, ttl: Option<Duration>) {
        // Under the configs' lock, so that a table made meanwhile takes the new TTL.
        let _configs = self.configs.lock();
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
    /// at run time: entries, unless methods have weighers
    /// ([`set_method_weigher`](Self::set_method_weigher)).
    ///
    /// Over the bound, the method holding the most weight gives up entries, picked by
    /// its CLOCK hand, so a method that caches little keeps its entries while another
    /// floods the registry; per-method bounds
    /// ([`set_method_capacity`](Self::set_method_capacity)) still apply, with their
    /// admission policy. Dead owners' and expired entries go first: those the hand meets,
    /// or finds within 64 buckets of a live victim, and, when this lowers the bound, all
    /// of them (a [`purge`](Self::purge)) before any live entry. A lowered bound is met
    /// at once, by the caller. Entries are evicted after a store, so while stores are
    /// under way the weight may pass the bound by the weight they store. `Some(0)` stores
    /// nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// fn double(n: &Arc<u64>, &k: &u64) -> u64 { **n * k * 2 }
    /// let cache = weakmemo::Registry::new();
    /// cache.set_capacity(Some(100));
    /// let n = Arc::new(1);
    /// for k in 0..1_000 {
    ///     cache.call(&n, double, k);
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
            // Under the configs' lock, so that a table made meanwhile is counted.
            let _configs = self.configs.lock();
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
    /// go on. Values computed but never stored (kept out by a bound, or lost to a race)
    /// are not entries, and are not reported.
    ///
    /// See [`Removal`](crate::Removal) for an example.
    pub fn set_removal_listener(
        &self,
        listener: Option<RemovalListener>,
    ) -> Option<RemovalListener> {
        self.shared().listener.replace(listener)
    }

    /// Evicts from the heaviest method until the registry is within its bound; each
    /// round frees an entry or ends.
    #[inline]
    pub(crate) fn keep_within_capacity(&self) {
        if let Some(shared) = self.shared.get() {
            let capacity = shared.capacity();
            if capacity != u64::MAX {
                self.evict_to(capacity);
            }
        }
    }

    #[inline(never)]
    fn evict_to(&self, capacity: u64) {
        loop {
            let mut total = 0;
            let mut heaviest: Option<(usize, &dyn ErasedCache)> = None;
            for cache in self.methods.iter() {
                let weight = cache.weight();
                total += weight;
                if heaviest.is_none_or(|(most, _)| weight > most) {
                    heaviest = Some((weight, cache));
                }
            }
            let Some((_, cache)) = heaviest.filter(|_| total as u64 > capacity) else {
                return;
            };
            if !cache.evict_one() {
                return;
            }
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        self.shared
            .get_or_init(|| Arc::new(Shared::new(self.capacity)))
    }

    /// Changes the config of `F`'s tables (through `call` and through `try_call`).
    fn configure<F: 'static, K: MethodKind>(&self, change: impl Fn(&mut MethodConfig)) {
        let mut configs = self.configs.lock();
        let configs = configs.get_or_insert_with(HashMap::new);
        for table in table_ids::<F, K>() {
            change(configs.entry(table).or_default());
        }
    }

    /// Reads the config of `F`, if it has one.
    fn config_of<F: 'static, K: MethodKind, R>(
        &self,
        read: impl FnOnce(&MethodConfig) -> R,
    ) -> Option<R> {
        self.config_at(table_ids::<F, K>()[0], read)
    }

    /// Reads the config of table `method`, if it has one.
    fn config_at<R>(&self, method: TypeId, read: impl FnOnce(&MethodConfig) -> R) -> Option<R> {
        let configs = self.configs.lock();
        configs.as_ref()?.get(&method).map(read)
    }

    /// Removes every entry; returns how many.
    ///
    /// Computations in flight are covered, as by [`invalidate`](Self::invalidate).
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    pub fn clear(&self) -> usize {
        assert_unlocked();
        sum_over(self.methods.iter(), ErasedCache::clear)
    }

    /// Removes every dead owner's entry now, and shrinks tables left mostly empty;
    /// returns how many entries were removed.
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
    /// cache.call(&n, id, ());
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

    /// Sets how many lookups pass between two lazy purge steps, at run time.
    ///
    /// Every lookup (`call`, `try_call`, `get`, `get_ok`) counts, hits included, so a
    /// cache that is only read still purges. Each shard counts its own lookups and, every
    /// `lookups`-th one, runs one step: it looks at the next
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

    /// Lookups between two lazy purge steps; see
    /// [`set_purge_interval`](Self::set_purge_interval).
    #[must_use]
    #[inline]
    pub fn purge_interval(&self) -> usize {
        self.purge_interval.load(Relaxed)
    }

    /// A snapshot of the counters; see [`Stats`] for what each counts and how exactly.
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    #[must_use]
    pub fn stats(&self) -> Stats {
        assert_unlocked();
        let mut stats = Stats {
            purge_steps: self.purge_steps.load(Relaxed),
            ..Stats::default()
        };
        for cache in self.methods.iter() {
            cache.add_stats(&mut stats);
        }
        stats
    }

    /// The counters of one method (its `call` and `try_call` tables together); see
    /// [`Stats`]. `purge_steps` counts the registry's steps, which serve every method,
    /// and `methods` is the number of tables found: 0 before the first call, 1, or 2 if
    /// the method was called through both `call` and `try_call`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn double(n: &Arc<u32>, &(): &()) -> u32 { **n * 2 }
    /// fn triple(n: &Arc<u32>, &(): &()) -> u32 { **n * 3 }
    /// let cache = Registry::new();
    /// let n = Arc::new(1);
    /// cache.call(&n, double, ());
    /// cache.call(&n, double, ());
    /// cache.call(&n, triple, ());
    /// let stats = cache.method_stats(double);
    /// assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1));
    /// assert_eq!(cache.stats().entries, 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` run under a registry lock.
    #[must_use]
    pub fn method_stats<O, A, K, F>(&self, method: F) -> Stats
    where
        A: Hash + Eq + Send + Sync + 'static,
        K: MethodKind,
        F: Method<O, A, K>,
    {
        assert_unlocked();
        let _ = method;
        let mut stats = Stats {
            purge_steps: self.purge_steps.load(Relaxed),
            ..Stats::default()
        };
        for cache in self.caches_of::<F, K>() {
            cache.add_stats(&mut stats);
        }
        stats
    }

    #[inline]
    fn get_or_compute<O, Q, A, V, E>(
        &self,
        method: TypeId,
        name: &'static str,
        owners: O,
        args: Q,
        compute: impl FnOnce(O, &A) -> Result<V, E>,
    ) -> Result<V, E>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let cache = self.cache_or_insert::<O::Held, A, V>(method, name);
        let key = cache.key(owners, &args);
        match cache.get(key, &args, self.purge_interval()) {
            Probe {
                found: Ok(value),
                purge_due,
            } => {
                if purge_due {
                    self.purge_step();
                }
                Ok(value)
            }
            Probe {
                found: Err(miss),
                purge_due,
            } => self.compute_miss(cache, key, owners, args, compute, name, miss, purge_due),
        }
    }

    /// The miss path, kept out of line so that the hit path stays small. The key is
    /// claimed (or joined) before the lookup's read lock is released.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    fn compute_miss<O, Q, A, V, E>(
        &self,
        cache: &MethodCache<O::Held, A, V>,
        key: KeyOf<O::Held>,
        owners: O,
        args: Q,
        compute: impl FnOnce(O, &A) -> Result<V, E>,
        name: &'static str,
        miss: Miss<'_, O::Held, A, V>,
        purge_due: bool,
    ) -> Result<V, E>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let caller = Caller::thread();
        let claim = self.settle_miss(cache, key, args, miss, purge_due, &caller);
        let value = self.compute_once(cache, key, owners, claim, compute, name, &caller)?;
        self.keep_within_capacity();
        Ok(value)
    }

    /// The first step of every miss, `call`'s and `call_async`'s: claim the key (or find
    /// whom to wait for) under the lookup's read lock; then take the shard's purge turn,
    /// now that no lock is held. The claim is guarded already, so a panic in the purge
    /// step (a removed value's `Drop`) abandons it.
    #[allow(clippy::too_many_arguments)] // two call sites; a struct would only rename them
    pub(crate) fn settle_miss<'a, H, Q, A, V>(
        &self,
        cache: &'a MethodCache<H, A, V>,
        key: KeyOf<H>,
        args: Q,
        miss: Miss<'a, H, A, V>,
        purge_due: bool,
        caller: &Caller,
    ) -> Claim<'a, H, Q, A, V>
    where
        H: Held,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let claim = cache.claim(miss, key, args, caller, self.single_flight());
        if purge_due {
            self.purge_step();
        }
        claim
    }

    /// The rest of a miss, from the first claim: wait for the key's computer and take
    /// its value (or, if it gave up, look again), or compute it; the claim's guard ends
    /// it however the method ends.
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    fn compute_once<'a, O, Q, A, V, E>(
        &self,
        cache: &'a MethodCache<O::Held, A, V>,
        key: KeyOf<O::Held>,
        owners: O,
        mut claim: Claim<'a, O::Held, Q, A, V>,
        compute: impl FnOnce(O, &A) -> Result<V, E>,
        method: &'static str,
        caller: &Caller,
    ) -> Result<V, E>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        loop {
            match claim {
                Claim::Recursive(args) => recursive_call(method, args),
                Claim::Wait {
                    args,
                    flight,
                    computer,
                } => {
                    {
                        let _waiting = waits::enter(caller.waits_as, computer, method);
                        // Counted once the wait is accepted: a refused one panics above.
                        cache.count_wait();
                        flight.wait();
                    }
                    claim = match self.after_wait(cache, key, args, &flight, caller) {
                        Ok(value) => return Ok(value),
                        Err(claim) => claim,
                    };
                }
                Claim::Compute(claimed) => {
                    let value = compute(owners, claimed.args())?;
                    return Ok(claimed.complete(owners, value));
                }
            }
        }
    }

    /// After a wait: the value the computation handed over, or, if it was abandoned, a
    /// new lookup and claim.
    pub(crate) fn after_wait<'a, H, Q, A, V>(
        &self,
        cache: &'a MethodCache<H, A, V>,
        key: KeyOf<H>,
        args: Q,
        flight: &Flight<V>,
        caller: &Caller,
    ) -> Result<V, Claim<'a, H, Q, A, V>>
    where
        H: Held,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        if let Some(value) = flight.value() {
            return Ok(value.clone());
        }
        cache
            .find(key, &args)
            .map_err(|miss| cache.claim(miss, key, args, caller, self.single_flight()))
    }

    fn peek<O, Q, A, V>(&self, method: TypeId, owners: O, args: &Q) -> Option<V>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let cache = downcast::<O::Held, A, V>(self.methods.find(method)?);
        let Probe { found, purge_due } =
            cache.get(cache.key(owners, args), args, self.purge_interval());
        // The miss's read lock is released before a purge step takes others.
        let value = found.ok();
        if purge_due {
            self.purge_step();
        }
        value
    }

    #[inline]
    pub(crate) fn cache_or_insert<H, A, V>(
        &self,
        method: TypeId,
        name: &'static str,
    ) -> &MethodCache<H, A, V>
    where
        H: Held,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        match self.methods.find(method) {
            Some(cache) => downcast(cache),
            None => self.new_cache(method, name),
        }
    }

    /// Makes the table of `method` (or finds the one another thread just made), with
    /// the settings the registry was given for it. Out of line, so that the lookup
    /// above builds no closure on the hit path.
    #[cold]
    #[inline(never)]
    fn new_cache<H, A, V>(&self, method: TypeId, name: &'static str) -> &MethodCache<H, A, V>
    where
        H: Held,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        // Under the configs' lock until the table is in the directory: a setting made
        // meanwhile then either is in the config read here, or finds the table there.
        // The table starts with every setting, so that no first call stores under
        // another (a weigher applied after publication missed racing first stores).
        let configs = self.configs.lock();
        let config = configs.as_ref().and_then(|configs| configs.get(&method));
        let config = config.unwrap_or(&MethodConfig::DEFAULT);
        let capacity = config.capacity(is_ownerless::<H>());
        // A bounded method's shards should hold about 64 of its bound each (fewer shards
        // lose hit ratio to contention, more to uneven filling).
        let shards = (capacity / 64)
            .clamp(1, self.shard_count())
            .next_power_of_two();
        let weigher = config.weigher.as_ref();
        let weigher = weigher.and_then(|weigher| weigher.downcast_ref::<Weigher<A, V>>());
        let cache = self.methods.find_or_insert(method, || {
            Box::new(MethodCache::<H, A, V>::new(Setup {
                shards,
                table: method,
                name,
                shared: Arc::clone(self.shared()),
                capacity,
                ttl: (config.ttl, self.ttl.load(Relaxed)),
                weigher: weigher.cloned(),
            }))
        });
        drop(configs);
        downcast(cache)
    }

    /// The tables of `F` called through `call` and through `try_call` (or their async
    /// twins, as `K` says), where they exist.
    fn caches_of<F: 'static, K: MethodKind>(&self) -> impl Iterator<Item = &dyn ErasedCache> {
        table_ids::<F, K>()
            .into_iter()
            .filter_map(|method| self.methods.find(method))
    }

    fn shard_count(&self) -> usize {
        if self.shards != 0 {
            return self.shards;
        }
        static DEFAULT: OnceLock<usize> = OnceLock::new();
        *DEFAULT.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
            (cores * 64).next_power_of_two().clamp(128, 1024)
        })
    }

    /// One lazy purge step: [`PURGE_STEP_BUCKETS`] buckets from the cursor on, moving
    /// through every shard of every method in turn, so that each bucket of the registry
    /// is looked at once per lap. If another thread is stepping, this one skips its turn
    /// rather than wait.
    pub(crate) fn purge_step(&self) {
        let Some(mut cursor) = self.cursor.try_lock() else {
            return;
        };
        self.purge_steps.fetch_add(1, Relaxed);
        let mut budget = PURGE_STEP_BUCKETS;
        while budget > 0 {
            let Some((position, cache)) = self.methods.next_from(cursor.method) else {
                if cursor.method == 0 {
                    return; // no method yet
                }
                *cursor = Cursor::default();
                continue;
            };
            if position != cursor.method {
                *cursor = Cursor {
                    method: position,
                    ..Cursor::default()
                };
            }
            let step = cache.sweep_step(cursor.shard, cursor.bucket, budget);
            // An empty shard costs one unit, so a step always ends.
            budget = budget.saturating_sub(step.visited.max(1));
            match step.next {
                Some(bucket) => cursor.bucket = bucket,
                None if cursor.shard + 1 < cache.shard_count() => {
                    cursor.shard += 1;
                    cursor.bucket = 0;
                }
                None => {
                    *cursor = Cursor {
                        method: position + 1,
                        ..Cursor::default()
                    };
                }
            }
        }
    }
}

/// Whether a table's entries have no owner (a function of its arguments alone): nothing
/// frees them but a bound, a TTL or invalidation, so they get a bound by default.
fn is_ownerless<H: Held>() -> bool {
    TypeId::of::<H>() == TypeId::of::<()>()
}

/// Runs `each` on every table and sums what it returns. Every table is done even if
/// one panics (a removed entry's `Drop` may); the first panic is resumed at the end.
fn sum_over<'a>(
    tables: impl Iterator<Item = &'a dyn ErasedCache>,
    each: impl Fn(&'a dyn ErasedCache) -> usize,
) -> usize {
    let mut deferred: Deferred = None;
    let mut sum = 0;
    for table in tables {
        match catch_unwind(AssertUnwindSafe(|| each(table))) {
            Ok(count) => sum += count,
            Err(payload) => {
                deferred.get_or_insert(payload);
            }
        }
    }
    resume(deferred);
    sum
}

/// The panic of a call that would wait for its own computation; its arguments are
/// dropped first, with no lock held.
#[cold]
pub(crate) fn recursive_call<A>(method: &str, args: A) -> ! {
    drop(args);
    panic!(
        "weakmemo: recursive call for the same key: `{method}` was called, directly or \
         through other cached methods, with the owner and arguments it is computing, and \
         would wait for its own result"
    )
}

/// The typed table behind `cache`. A method's type fixes its owner, argument and result
/// types, and each way of calling it (`try_call`, `call_async`, ...) has its own table
/// identity, so this cannot fail.
#[inline]
fn downcast<H, A, V>(cache: &dyn ErasedCache) -> &MethodCache<H, A, V>
where
    H: Held,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    (cache as &dyn Any)
        .downcast_ref()
        .expect("a method's table has the types of its method")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged<const N: usize>(owner: &Arc<u32>, &arg: &u32) -> u32 {
        N as u32 * 1000 + **owner + arg
    }

    /// The lazy cursor walks every shard of every method, across directory levels, so
    /// traffic on one method purges the dead entries of all others.
    #[test]
    fn lazy_steps_reach_every_method() {
        let registry = Registry::builder().purge_interval(1).shards(4).build();
        let live = Arc::new(1);
        let dead = Arc::new(2);
        macro_rules! call_all {
            ($($n:literal)*) => { $( for arg in 0..3 { registry.call(&dead, tagged::<$n>, arg); } )* };
        }
        call_all!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
        assert_eq!(registry.stats().methods, 25);
        assert_eq!(registry.stats().entries, 75);
        drop(dead);
        for arg in 0..1000 {
            assert_eq!(registry.call(&live, tagged::<0>, arg % 5), 1 + arg % 5);
        }
        let stats = registry.stats();
        assert_eq!(stats.purged, 75);
        assert_eq!(stats.entries, 5);
        assert!(stats.purge_steps > 0);
    }

    #[test]
    fn builder_rounds_shards_to_a_power_of_two() {
        assert_eq!(Registry::builder().shards(5).build().shard_count(), 8);
        assert!(Registry::new().shard_count().is_power_of_two());
        assert!(Registry::new().shard_count() >= 128);
    }
}
