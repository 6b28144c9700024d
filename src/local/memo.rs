//! The handle of one memoized method in a [`LocalRegistry`]: its calls, entries,
//! settings and counters.

use std::any::type_name;
use std::fmt;
use std::hash::Hash;
use std::rc::Rc;
use std::time::Duration;

use super::LocalRegistry;
use super::table::{Key, LocalTable, LocalWeigher, NO_TTL, Removed};
use crate::lookup::Lookup;
use crate::owners::{Held, Owners};
use crate::registry::CacheInfo;
use crate::stats::Stats;
use crate::table::expiry::{ttl_duration, ttl_ms};

/// The cache of one method in a [`LocalRegistry`], from [`LocalRegistry::method`]:
/// [`Memo`](crate::Memo)'s operations, for one thread. `F`, `H`, `A` and `V` are as
/// there (`H` is `rc::Weak<T>` for an owner `&Rc<T>`).
///
/// A handle holds its registry and table by `Rc`, so it may be kept (in a field, a
/// `thread_local!`) or made per call (a hash lookup).
///
/// ```
/// use std::rc::Rc;
///
/// fn double(n: &Rc<i32>, &k: &i32) -> i32 { **n * k * 2 }
///
/// let double = weakmemo::LocalRegistry::new().method(double);
/// let n = Rc::new(1);
/// assert_eq!(double.call(&n, 10), 20);
/// assert_eq!(double.get(&n, &10), Some(20));
/// assert_eq!(double.cache_info().to_string(), "CacheInfo(hits=1, misses=1, maxsize=None, currsize=1)");
/// assert!(double.invalidate(&n, &10));
/// ```
pub struct LocalMemo<F, H: Held, A, V> {
    registry: LocalRegistry,
    table: Rc<LocalTable<H, A, V>>,
    method: F,
}

impl<F: Copy, H: Held, A, V> Clone for LocalMemo<F, H, A, V> {
    fn clone(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            table: Rc::clone(&self.table),
            method: self.method,
        }
    }
}

impl<F, H: Held, A, V> fmt::Debug for LocalMemo<F, H, A, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalMemo")
            .field("method", &type_name::<F>())
            .finish_non_exhaustive()
    }
}

/// Forgets a `call`'s pending key when the method returns or unwinds.
struct Pending<'t, H: Held, A: Hash + Eq + 'static, V: Clone + 'static> {
    table: &'t LocalTable<H, A, V>,
    args: Rc<A>,
}

impl<H: Held, A: Hash + Eq + 'static, V: Clone + 'static> Drop for Pending<'_, H, A, V> {
    fn drop(&mut self) {
        self.table.end(&self.args);
    }
}

impl<F, H, A, V> LocalMemo<F, H, A, V>
where
    H: Held,
    A: Hash + Eq + 'static,
    V: Clone + 'static,
{
    pub(super) fn new(registry: LocalRegistry, table: Rc<LocalTable<H, A, V>>, method: F) -> Self {
        Self {
            registry,
            table,
            method,
        }
    }

    /// The registry that holds this method's entries.
    #[must_use]
    pub fn registry(&self) -> &LocalRegistry {
        &self.registry
    }

    /// Looks the key up, counts it, and reports what it removed (an expired entry).
    fn lookup<O: Owners<Held = H>, Q: Lookup<A>>(
        &self,
        owners: O,
        args: &Q,
    ) -> (Key<H::Addrs>, Option<V>) {
        let key = self.table.key(owners.addrs(), args);
        let mut removed = Removed::new();
        let found = self.table.get(key, args, &mut removed);
        self.registry.report(&self.table, removed);
        self.registry.looked_up();
        (key, found)
    }

    /// Weighs and stores a computed value, then reports what made room for it.
    fn store<O: Owners<Held = H>>(
        &self,
        key: Key<H::Addrs>,
        epoch: u64,
        owners: O,
        args: A,
        value: &V,
    ) {
        let weigher = self.table.state().weigher.clone();
        // User code, run with the table released: a panic stores nothing.
        let weight = weigher.map_or(1, |weigh| weigh(&args, value));
        let value = value.clone();
        // Checked after the user code above, which may have invalidated.
        if !self.table.still_current(epoch) {
            return;
        }
        let mut removed = Removed::new();
        self.table
            .store(key, owners.downgrade(), args, value, weight, &mut removed);
        self.registry.report(&self.table, removed);
    }

    /// The value for these owners and arguments, computed on a miss by `compute` and
    /// stored if it is `Ok`.
    fn get_or_compute<O, Q, E>(
        &self,
        owners: O,
        args: Q,
        compute: impl FnOnce(O, &A) -> Result<V, E>,
    ) -> Result<V, E>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
    {
        let (key, found) = self.lookup(owners, &args);
        if let Some(value) = found {
            return Ok(value);
        }
        let epoch = self.table.epoch();
        let stored = Rc::new(args.into_key());
        // `args` was moved into the key; recursion is checked against it.
        self.table.begin(key, &*stored, &stored);
        let pending = Pending {
            table: &self.table,
            args: stored,
        };
        let value = compute(owners, &*pending.args)?;
        let args = Rc::clone(&pending.args);
        drop(pending);
        let args = Rc::into_inner(args).expect("the pending key held the only other clone");
        self.store(key, epoch, owners, args, &value);
        Ok(value)
    }

    /// Returns `method(owners, &args)`, computed once per live owners, method and
    /// arguments, as [`Memo::call`](crate::Memo::call).
    ///
    /// The method runs with no table borrowed, so it may call cached methods, or itself
    /// with other arguments.
    ///
    /// # Panics
    ///
    /// - If the method panics: the panic reaches the caller, nothing is cached, and the
    ///   registry stays usable.
    /// - If the call re-enters the key it is computing ("recursive call for the same
    ///   key").
    /// - If called from an argument's `Eq` or a value's `Clone` that this cache runs.
    /// - If dropping an entry this call removed panics, once the removals are counted.
    pub fn call<O, Q>(&self, owners: O, args: Q) -> V
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
        F: Fn(O, &A) -> V,
    {
        let Ok(value) = self.get_or_compute(owners, args, |owners, args| {
            Ok::<V, std::convert::Infallible>((self.method)(owners, args))
        });
        value
    }

    /// Like [`call`](Self::call), for a method that can fail: an `Ok` value is cached,
    /// an error is returned and not cached.
    ///
    /// ```
    /// use std::rc::Rc;
    /// fn parse(text: &Rc<str>, &radix: &u32) -> Result<u64, std::num::ParseIntError> {
    ///     u64::from_str_radix(text, radix)
    /// }
    /// let parse = weakmemo::LocalRegistry::new().method(parse);
    /// let text: Rc<str> = Rc::from("ff");
    /// assert!(parse.try_call(&text, 10).is_err());
    /// assert_eq!(parse.try_call(&text, 16), Ok(255));
    /// assert_eq!(parse.get(&text, &16), Some(255));
    /// ```
    ///
    /// # Errors
    ///
    /// The method's error, which is not cached.
    ///
    /// # Panics
    ///
    /// As [`call`](Self::call).
    pub fn try_call<O, Q, E>(&self, owners: O, args: Q) -> Result<V, E>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
        F: Fn(O, &A) -> Result<V, E>,
    {
        self.get_or_compute(owners, args, &self.method)
    }

    /// Awaits `method(owners, &args)`, computed once per key, as
    /// [`Memo::call_async`](crate::Memo::call_async), on a single-threaded executor
    /// (a `LocalSet`, `futures::executor::block_on`, ...). The future holds no borrow
    /// across an `.await`.
    ///
    /// Tasks that miss one key at once each compute it: the first stores its value and
    /// the others' are returned and counted in [`Stats::discarded`]. An invalidation
    /// while a computation is under way keeps its value out.
    ///
    /// ```
    /// use std::rc::Rc;
    /// async fn len(text: &Rc<String>, &(): &()) -> usize { text.len() }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let len = weakmemo::local().method(len);
    /// let text = Rc::new("four".to_string());
    /// assert_eq!(len.call_async(&text, ()).await, 4);
    /// assert_eq!(len.get(&text, &()), Some(4));
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// As [`call`](Self::call), except that a task awaiting its own key is not detected.
    pub async fn call_async<O, Q>(&self, owners: O, args: Q) -> V
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
        F: AsyncFn(O, &A) -> V,
    {
        let Ok(value) = self
            .try_call_async_with(owners, args, async |owners, args: &A| {
                Ok::<V, std::convert::Infallible>((self.method)(owners, args).await)
            })
            .await;
        value
    }

    /// Like [`call_async`](Self::call_async), for a method that can fail: an `Ok`
    /// value is cached, an error is returned and not cached.
    ///
    /// # Errors
    ///
    /// The method's error, which is not cached.
    ///
    /// # Panics
    ///
    /// As [`call_async`](Self::call_async).
    pub async fn try_call_async<O, Q, E>(&self, owners: O, args: Q) -> Result<V, E>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
        F: AsyncFn(O, &A) -> Result<V, E>,
    {
        self.try_call_async_with(owners, args, async |owners, args: &A| {
            (self.method)(owners, args).await
        })
        .await
    }

    async fn try_call_async_with<O, Q, E>(
        &self,
        owners: O,
        args: Q,
        compute: impl AsyncFnOnce(O, &A) -> Result<V, E>,
    ) -> Result<V, E>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
    {
        let (key, found) = self.lookup(owners, &args);
        if let Some(value) = found {
            return Ok(value);
        }
        let epoch = self.table.epoch();
        let args = args.into_key();
        let value = compute(owners, &args).await?;
        self.store(key, epoch, owners, args, &value);
        Ok(value)
    }

    /// The value cached for these owners and arguments, without computing it; as
    /// [`Memo::get`](crate::Memo::get).
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` that this cache runs.
    pub fn get<O, Q>(&self, owners: O, args: &Q) -> Option<V>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
    {
        self.lookup(owners, args).1
    }

    /// Removes the entry of these owners and arguments; returns whether there was one.
    /// A computation under way for this method is not stored.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    pub fn invalidate<O, Q>(&self, owners: O, args: &Q) -> bool
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
    {
        let key = self.table.key(owners.addrs(), args);
        let mut removed = Removed::new();
        let found = self.table.invalidate(key, args, &mut removed);
        self.registry.report(&self.table, removed);
        found
    }

    /// Removes every entry of one owner (an `&Rc` or `&Arc`) for this method; returns
    /// how many.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    pub fn invalidate_owner<O: Owners<Held: Held<Addrs = usize>>>(&self, owner: O) -> usize {
        let addr = owner.addrs();
        let mut removed = Removed::new();
        let count = self
            .table
            .invalidate_where(&mut removed, |held| held.holds(addr));
        self.registry.report(&self.table, removed);
        count
    }

    /// Removes every entry of this method; returns how many. Counters are kept.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    pub fn clear(&self) -> usize {
        let mut removed = Removed::new();
        let count = self.table.invalidate_where(&mut removed, |_| true);
        self.registry.report(&self.table, removed);
        count
    }

    /// The counters of this method; see [`Stats`]. Exact.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    #[must_use]
    pub fn stats(&self) -> Stats {
        let mut stats = self.registry.no_stats();
        self.table.add_stats(&mut stats);
        stats
    }

    /// Hits, misses, bound and entries, as Python's `cache_info()` names them.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    #[must_use]
    pub fn cache_info(&self) -> CacheInfo {
        CacheInfo::of(&self.stats(), self.capacity())
    }

    /// Bounds this method to `capacity` entries (or weight, with a weigher), or lifts
    /// its bound (`None`), like the `maxsize` of Python's `lru_cache`: over it, the
    /// least recently used entries go (counted as dead or expired if they were,
    /// [`Stats::evicted`] otherwise), and a newcomer is always stored. A lowered bound
    /// takes effect at the next store. `Some(0)` stores nothing.
    ///
    /// ```
    /// use std::rc::Rc;
    /// fn square(n: &Rc<u64>, &k: &u64) -> u64 { **n * k * k }
    /// let square = weakmemo::LocalRegistry::new().method(square);
    /// square.set_capacity(Some(2));
    /// let n = Rc::new(1);
    /// for k in [1, 2, 1, 3] {
    ///     square.call(&n, k);
    /// }
    /// assert_eq!(square.get(&n, &1), Some(1)); // used more recently than 2
    /// assert_eq!(square.get(&n, &2), None);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    pub fn set_capacity(&self, capacity: Option<usize>) {
        self.table.state().capacity = capacity.map_or(u64::MAX, |capacity| capacity as u64);
    }

    /// This method's bound, if it has one.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    #[must_use]
    pub fn capacity(&self) -> Option<usize> {
        let capacity = self.table.state().capacity;
        (capacity != u64::MAX).then(|| usize::try_from(capacity).unwrap_or(usize::MAX))
    }

    /// Weighs each new entry with `weigher`, so that the bound counts weight; `None`
    /// weighs each 1. As [`Memo::set_weigher`](crate::Memo::set_weigher): run with the
    /// table released; a panic stores nothing.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    pub fn set_weigher(&self, weigher: Option<LocalWeigher<A, V>>) {
        let old = std::mem::replace(&mut self.table.state().weigher, weigher);
        drop(old); // after the borrow: its captures' `Drop` may use the cache
    }

    /// This method's weigher, if it has one.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    #[must_use]
    pub fn weigher(&self) -> Option<LocalWeigher<A, V>> {
        self.table.state().weigher.clone()
    }

    /// Gives this method a time to live of its own, or (`None`) the registry's again;
    /// as [`Memo::set_ttl`](crate::Memo::set_ttl): entries older than it are never
    /// returned and are removed lazily; an entry stored with no TTL in force ages from
    /// when one is set; `Duration::ZERO` stores nothing, `Duration::MAX` never expires.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// fn quote(symbol: &Rc<str>, &(): &()) -> usize { symbol.len() }
    /// let quote = weakmemo::LocalRegistry::new().method(quote);
    /// quote.set_ttl(Some(Duration::from_millis(20)));
    /// let acme: Rc<str> = Rc::from("ACME");
    /// quote.call(&acme, ());
    /// std::thread::sleep(Duration::from_millis(30));
    /// assert_eq!(quote.get(&acme, &()), None);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    pub fn set_ttl(&self, ttl: Option<Duration>) {
        match ttl {
            Some(ttl) => self.table.set_ttl(ttl_ms(Some(ttl)), true),
            None => self.table.set_ttl(self.registry.inner.ttl.get(), false),
        }
    }

    /// This method's own time to live, if it has one.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    #[must_use]
    pub fn ttl(&self) -> Option<Duration> {
        let state = self.table.state();
        if state.own_ttl && state.ttl != NO_TTL {
            ttl_duration(state.ttl)
        } else {
            None
        }
    }
}
