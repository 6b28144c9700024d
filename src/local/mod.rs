//! The registry for one thread: `Rc` owners, and values that are neither `Send` nor
//! `Sync`.
//!
//! - here: [`LocalRegistry`], [`local()`], and the registry-wide operations;
//! - [`memo`]: [`LocalMemo`], the handle of one method;
//! - [`table`]: one method's entries, in a `RefCell`.
//!
//! Nothing here is shared by threads, so nothing takes a lock or runs an atomic
//! instruction: counters are `Cell`s, tables `RefCell`s, and a handle holds its registry
//! by `Rc`. Identity is the owner's allocation held as a `Weak` (`rc::Weak` for an
//! `Rc`), as in the shared [`Registry`](crate::Registry), for the same reasons.

mod memo;
mod table;

use std::any::{Any, TypeId, type_name};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

pub use self::memo::LocalMemo;
pub use self::table::LocalWeigher;

use self::table::{LocalTable, NO_TTL, Removed};
use crate::identity::{Method, Named, Stores, table_id};
use crate::owners::{Held, Owners};
use crate::registry::{
    DEFAULT_OWNERLESS_CAPACITY, DEFAULT_PURGE_INTERVAL, Defaults, PURGE_STEP_BUCKETS,
};
use crate::removal::Removal;
use crate::stats::Stats;
use crate::table::expiry::{ttl_duration, ttl_ms};

/// A function told of every entry that leaves a [`LocalRegistry`]'s caches; see
/// [`LocalRegistry::set_removal_listener`].
pub type LocalRemovalListener = Rc<dyn Fn(&Removal<'_>)>;

/// A cache of memoized method results for one thread, keyed by owner identity, method
/// and arguments: the [`Registry`](crate::Registry) for `Rc` owners, and for objects and
/// values that are not `Send` or `Sync` (an `Rc<RefCell<_>>` tree, an interpreter's
/// values).
///
/// Owners are held as `Weak`s (`rc::Weak` for an `Rc`), so the cache never keeps an
/// owner alive; dead owners' entries are never returned and are purged lazily, every
/// [`purge_interval`](Self::set_purge_interval) lookups, before a table grows, or at
/// once by [`purge`](Self::purge). A method's bound evicts the least recently used
/// entry. No lock and no atomic instruction is on any path.
///
/// A `LocalRegistry` is a handle (an `Rc`): clones share the entries, and it cannot
/// leave its thread. [`local()`] is the thread's own, which `#[memo]` uses for a method
/// taking `self: &Rc<Self>`.
///
/// ```
/// use std::rc::Rc;
/// use std::cell::RefCell;
/// use weakmemo::LocalRegistry;
///
/// struct Node { children: RefCell<Vec<Rc<Node>>>, weight: u32 }
///
/// fn total(node: &Rc<Node>, &(): &()) -> u32 {
///     let total = weakmemo::local().method(total);
///     node.weight + node.children.borrow().iter().map(|c| total.call(c, ())).sum::<u32>()
/// }
///
/// let leaf = Rc::new(Node { children: RefCell::new(vec![]), weight: 2 });
/// let root = Rc::new(Node { children: RefCell::new(vec![leaf.clone()]), weight: 1 });
/// let total = weakmemo::local().method(total);
/// assert_eq!(total.call(&root, ()), 3);
/// assert_eq!(total.cache_info().currsize, 2);
///
/// let watch = Rc::downgrade(&leaf);
/// drop((root, leaf));
/// assert!(watch.upgrade().is_none()); // the cache kept neither alive
/// assert_eq!(weakmemo::local().purge(), 2);
/// ```
///
/// A registry cannot cross threads:
///
/// ```compile_fail,E0277
/// let registry = weakmemo::LocalRegistry::new();
/// std::thread::spawn(move || registry.purge());
/// ```
#[derive(Clone)]
pub struct LocalRegistry {
    inner: Rc<Inner>,
}

struct Inner {
    tables: RefCell<Tables>,
    purge_interval: Cell<usize>,
    /// Lookups left before the next purge step.
    countdown: Cell<usize>,
    /// The table the next step looks at.
    step_table: Cell<usize>,
    purge_steps: Cell<u64>,
    /// The registry's TTL in ms, for methods without their own.
    ttl: Cell<u64>,
    listener: RefCell<Option<LocalRemovalListener>>,
}

#[derive(Default)]
struct Tables {
    by_id: HashMap<TypeId, usize>,
    /// Each table twice: to be downcast to its type, and to be served without it.
    list: Vec<(Rc<dyn Any>, Rc<dyn ErasedTable>)>,
}

/// A table's operations that do not need its types.
trait ErasedTable {
    fn purge_step(&self, registry: &LocalRegistry);
    fn purge(&self, registry: &LocalRegistry) -> usize;
    fn invalidate_owner(&self, registry: &LocalRegistry, addr: usize) -> usize;
    fn clear(&self, registry: &LocalRegistry) -> usize;
    fn inherit_ttl(&self, ttl: u64);
    fn add_stats(&self, stats: &mut Stats);
    fn weight(&self) -> u64;
}

impl<H: Held, A: Hash + Eq + 'static, V: Clone + 'static> ErasedTable for LocalTable<H, A, V> {
    fn purge_step(&self, registry: &LocalRegistry) {
        let mut removed = Removed::new();
        LocalTable::purge_step(self, PURGE_STEP_BUCKETS, &mut removed);
        registry.report(self, removed);
    }

    fn purge(&self, registry: &LocalRegistry) -> usize {
        let mut removed = Removed::new();
        let count = LocalTable::purge(self, &mut removed);
        registry.report(self, removed);
        count
    }

    fn invalidate_owner(&self, registry: &LocalRegistry, addr: usize) -> usize {
        let mut removed = Removed::new();
        let count = self.invalidate_where(&mut removed, |owner| owner.holds(addr));
        registry.report(self, removed);
        count
    }

    fn clear(&self, registry: &LocalRegistry) -> usize {
        let mut removed = Removed::new();
        let count = self.invalidate_where(&mut removed, |_| true);
        registry.report(self, removed);
        count
    }

    fn inherit_ttl(&self, ttl: u64) {
        if !self.state().own_ttl {
            self.set_ttl(ttl, false);
        }
    }

    fn add_stats(&self, stats: &mut Stats) {
        LocalTable::add_stats(self, stats);
    }

    fn weight(&self) -> u64 {
        LocalTable::weight(self)
    }
}

thread_local! {
    static LOCAL: LocalRegistry = LocalRegistry::new();
}

/// This thread's own [`LocalRegistry`] (a clone of its handle), for methods that need no
/// registry of their own; `#[memo]` uses it for `Rc` owners.
///
/// ```
/// use std::rc::Rc;
///
/// fn double(n: &Rc<i32>, &(): &()) -> i32 { **n * 2 }
/// let n = Rc::new(21);
/// assert_eq!(weakmemo::local().method(double).call(&n, ()), 42);
/// ```
///
/// # Panics
///
/// If called while the thread's locals are being destroyed (from another thread-local's
/// `Drop`).
#[must_use]
pub fn local() -> LocalRegistry {
    LOCAL.with(LocalRegistry::clone)
}

/// What `#[memo]` writes for `Rc` owners: `method`'s handle in `registry`, its table
/// made with `defaults` (the attribute's settings) if it is new.
#[cfg(feature = "macros")]
pub fn local_memo<F, H, A, V>(
    registry: &LocalRegistry,
    method: F,
    defaults: impl FnOnce() -> Defaults,
) -> LocalMemo<F, H, A, V>
where
    F: 'static,
    H: Held,
    A: Hash + Eq + 'static,
    V: Clone + 'static,
{
    let () = Named::<F>::METHOD;
    LocalMemo::new(
        registry.clone(),
        registry.table::<F, H, A, V>(defaults),
        method,
    )
}

impl Default for LocalRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LocalRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRegistry")
            .field("purge_interval", &self.purge_interval())
            .field("ttl", &self.ttl())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl LocalRegistry {
    /// A registry with the default settings: lazy steps every
    /// [`DEFAULT_PURGE_INTERVAL`] lookups, no TTL, no listener.
    #[must_use]
    pub fn new() -> Self {
        Self {
            inner: Rc::new(Inner {
                tables: RefCell::default(),
                purge_interval: Cell::new(DEFAULT_PURGE_INTERVAL),
                countdown: Cell::new(DEFAULT_PURGE_INTERVAL),
                step_table: Cell::new(0),
                purge_steps: Cell::new(0),
                ttl: Cell::new(NO_TTL),
                listener: RefCell::new(None),
            }),
        }
    }

    /// The handle of `method` in this registry: as [`Registry::method`](crate::Registry::method),
    /// for owners of any kind (`&Rc<T>`, `&Arc<T>`, tuples of either, `()`) and
    /// arguments and values that need not be `Send` or `Sync`.
    ///
    /// A method without owners is bounded to [`DEFAULT_OWNERLESS_CAPACITY`] entries
    /// from its first handle, as in the shared registry.
    ///
    /// ```compile_fail,E0080
    /// use std::rc::Rc;
    /// let bonus = 10;
    /// weakmemo::local().method(move |n: &Rc<i32>, &(): &()| **n + bonus).call(&Rc::new(1), ());
    /// ```
    pub fn method<F, O, A, K, V>(&self, method: F) -> LocalMemo<F, O::Held, A, V>
    where
        O: Owners,
        A: Hash + Eq + 'static,
        V: Clone + 'static,
        K: Stores<V>,
        F: Method<O, A, K>,
    {
        let () = Named::<F>::METHOD;
        LocalMemo::new(
            self.clone(),
            self.table::<F, O::Held, A, V>(Defaults::default),
            method,
        )
    }

    /// The table of `F` storing `V`, made with `defaults` if it is new.
    fn table<F: 'static, H: Held, A: Hash + Eq + 'static, V: Clone + 'static>(
        &self,
        defaults: impl FnOnce() -> Defaults,
    ) -> Rc<LocalTable<H, A, V>> {
        let id = table_id::<F, V>();
        let mut tables = self.inner.tables.borrow_mut();
        if let Some(&at) = tables.by_id.get(&id) {
            return Rc::clone(&tables.list[at].0)
                .downcast()
                .expect("a table's identity names its types");
        }
        let Defaults { capacity, ttl } = defaults();
        let ownerless = size_of::<<H as Held>::Addrs>() == 0;
        let capacity = match capacity {
            Some(capacity) => capacity.map_or(u64::MAX, |capacity| capacity as u64),
            None if ownerless => DEFAULT_OWNERLESS_CAPACITY as u64,
            None => u64::MAX,
        };
        let table = Rc::new(LocalTable::<H, A, V>::new(
            TypeId::of::<F>(),
            type_name::<F>(),
            capacity,
            self.inner.ttl.get(),
        ));
        if let Some(ttl) = ttl {
            table.set_ttl(ttl_ms(Some(ttl)), true);
        }
        let at = tables.list.len();
        tables.by_id.insert(id, at);
        tables.list.push((table.clone(), table.clone()));
        table
    }

    /// Counts a lookup toward the next purge step, and runs it if due. Called with no
    /// table borrowed.
    #[inline]
    fn looked_up(&self) {
        let inner = &*self.inner;
        match inner.countdown.get() {
            0 => {} // steps off
            1 => {
                inner.countdown.set(inner.purge_interval.get());
                self.purge_step();
            }
            left => inner.countdown.set(left - 1),
        }
    }

    /// Looks at the next [`PURGE_STEP_BUCKETS`] slots of the next table.
    #[cold]
    fn purge_step(&self) {
        let inner = &*self.inner;
        let table = {
            let tables = inner.tables.borrow();
            if tables.list.is_empty() {
                return;
            }
            let at = inner.step_table.get() % tables.list.len();
            inner.step_table.set(at + 1);
            Rc::clone(&tables.list[at].1)
        };
        inner.purge_steps.set(inner.purge_steps.get() + 1);
        table.purge_step(self);
    }

    /// Every table, for an operation on each, with no borrow held while it runs.
    fn each_table(&self) -> Vec<Rc<dyn ErasedTable>> {
        let tables = self.inner.tables.borrow();
        tables
            .list
            .iter()
            .map(|(_, table)| Rc::clone(table))
            .collect()
    }

    /// Tells the listener of each removal, then drops them; the table is released and
    /// its books settled, so the listener and the drops may use the cache. A panicking
    /// listener is caught (its hook has reported it); a panicking `Drop` reaches the
    /// caller after the other removals are dropped.
    #[inline]
    fn report<H: Held, A: 'static, V: 'static>(
        &self,
        table: &LocalTable<H, A, V>,
        removed: Removed<A, V>,
    ) {
        if !removed.is_empty() {
            self.report_some(table, removed);
        }
    }

    #[cold]
    fn report_some<H: Held, A: 'static, V: 'static>(
        &self,
        table: &LocalTable<H, A, V>,
        removed: Removed<A, V>,
    ) {
        let listener = self.inner.listener.borrow().clone();
        if let Some(listener) = listener {
            for (cause, args, value) in &removed {
                let removal = Removal {
                    cause: *cause,
                    method: table.method,
                    name: table.name,
                    args,
                    value,
                };
                let _ = catch_unwind(AssertUnwindSafe(|| listener(&removal)));
            }
        }
        drop(removed);
    }

    /// Lookups between lazy purge steps: as
    /// [`Registry::set_purge_interval`](crate::Registry::set_purge_interval). Each step
    /// looks at the next [`PURGE_STEP_BUCKETS`] slots of the next table in turn. `0`
    /// turns steps off: dead owners' entries then leave when their table is about to
    /// grow, or on [`purge`](Self::purge).
    ///
    /// ```
    /// let registry = weakmemo::LocalRegistry::new();
    /// registry.set_purge_interval(64);
    /// assert_eq!(registry.purge_interval(), 64);
    /// ```
    pub fn set_purge_interval(&self, lookups: usize) {
        self.inner.purge_interval.set(lookups);
        self.inner.countdown.set(lookups);
    }

    /// Lookups between lazy purge steps; see [`set_purge_interval`](Self::set_purge_interval).
    #[must_use]
    pub fn purge_interval(&self) -> usize {
        self.inner.purge_interval.get()
    }

    /// Gives every method without a TTL of its own this one (`None`: no TTL); as
    /// [`LocalMemo::set_ttl`].
    ///
    /// # Panics
    ///
    /// If called from an argument's `Eq` or a value's `Clone` that the registry runs.
    pub fn set_ttl(&self, ttl: Option<Duration>) {
        let ms = ttl_ms(ttl);
        self.inner.ttl.set(ms);
        for table in self.each_table() {
            table.inherit_ttl(ms);
        }
    }

    /// The registry's TTL; see [`set_ttl`](Self::set_ttl).
    #[must_use]
    pub fn ttl(&self) -> Option<Duration> {
        ttl_duration(self.inner.ttl.get())
    }

    /// Tells `listener` of every entry that leaves this registry's caches, with its
    /// cause, once the cache is settled, or (`None`) stops telling. A panic in the
    /// listener is caught, and the cache goes on.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use weakmemo::{LocalRegistry, RemovalCause};
    ///
    /// fn square(n: &Rc<u64>, &(): &()) -> u64 { **n * **n }
    /// let registry = LocalRegistry::new();
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let log = seen.clone();
    /// registry.set_removal_listener(Some(Rc::new(move |removal: &weakmemo::Removal<'_>| {
    ///     log.borrow_mut().push((removal.cause(), *removal.value::<u64>().unwrap()));
    /// })));
    /// let n = Rc::new(3);
    /// registry.method(square).call(&n, ());
    /// drop(n);
    /// registry.purge();
    /// assert_eq!(*seen.borrow(), [(RemovalCause::Collected, 9)]);
    /// ```
    pub fn set_removal_listener(&self, listener: Option<LocalRemovalListener>) {
        let old = self.inner.listener.replace(listener);
        drop(old); // after the borrow: its `Drop` may set another
    }

    /// Removes every dead owner's and expired entry now; returns how many.
    ///
    /// # Panics
    ///
    /// As [`set_ttl`](Self::set_ttl); and if dropping a removed value panics, once the
    /// others are dropped.
    pub fn purge(&self) -> usize {
        self.each_table()
            .iter()
            .map(|table| table.purge(self))
            .sum()
    }

    /// Removes every entry of every method; returns how many. Counters are kept.
    ///
    /// # Panics
    ///
    /// As [`purge`](Self::purge).
    pub fn clear(&self) -> usize {
        self.each_table()
            .iter()
            .map(|table| table.clear(self))
            .sum()
    }

    /// Removes every entry, of every method, that `owner` (an `&Rc` or an `&Arc`) is
    /// among the owners of; returns how many.
    ///
    /// ```
    /// use std::rc::Rc;
    /// fn len(text: &Rc<str>, &(): &()) -> usize { text.len() }
    /// fn upper(text: &Rc<str>, &(): &()) -> String { text.to_uppercase() }
    /// let registry = weakmemo::LocalRegistry::new();
    /// let text: Rc<str> = Rc::from("abc");
    /// registry.method(len).call(&text, ());
    /// registry.method(upper).call(&text, ());
    /// assert_eq!(registry.invalidate_owner(&text), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`purge`](Self::purge).
    pub fn invalidate_owner<O: Owners<Held: Held<Addrs = usize>>>(&self, owner: O) -> usize {
        let addr = owner.addrs();
        self.each_table()
            .iter()
            .map(|table| table.invalidate_owner(self, addr))
            .sum()
    }

    /// The counters of every method, summed; see [`Stats`]. Exact: one thread.
    ///
    /// # Panics
    ///
    /// As [`set_ttl`](Self::set_ttl).
    #[must_use]
    pub fn stats(&self) -> Stats {
        let mut stats = self.no_stats();
        for table in self.each_table() {
            table.add_stats(&mut stats);
        }
        stats
    }

    /// The registry's own counters, before any method's.
    fn no_stats(&self) -> Stats {
        Stats {
            purge_steps: self.inner.purge_steps.get(),
            ..Stats::default()
        }
    }

    /// The weight of every entry held, summed (the number of entries, for methods
    /// without a weigher).
    ///
    /// # Panics
    ///
    /// As [`set_ttl`](Self::set_ttl).
    #[must_use]
    pub fn weight(&self) -> usize {
        let weight: u64 = self.each_table().iter().map(|table| table.weight()).sum();
        usize::try_from(weight).unwrap_or(usize::MAX)
    }
}
