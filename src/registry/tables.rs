//! Finding a method's table, or making it with every setting in place.
//!
//! A table is made once per method and stored value type, when its first handle is
//! made, and lives as long as its registry. Its settings live in it alone: a handle's
//! setter changes the table, and a table starts with the registry's TTL and bound
//! (read under the registry's settings lock, which the registry-wide setters hold) and
//! with the defaults `#[memo]` gives it.

use std::any::{Any, TypeId, type_name};
use std::hash::Hash;
use std::num::NonZero;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::builder::DEFAULT_OWNERLESS_CAPACITY;
use super::{Memo, Registry};
use crate::identity::{Method, Named, Stores, table_id};
use crate::owners::{Owners, SharedHeld};
use crate::table::expiry::ttl_ms;
use crate::table::{ErasedCache, MethodCache, Setup};

/// The settings a table starts with, if it is made now: `#[memo]`'s `maxsize` and
/// `ttl`, which reach every instantiation of a generic method this way.
#[derive(Clone, Copy, Debug, Default)]
pub struct Defaults {
    /// The method's bound (`Some(None)`: none, even for an owner-less method), or, if
    /// `None`, the default: [`DEFAULT_OWNERLESS_CAPACITY`] for an owner-less method.
    pub capacity: Option<Option<usize>>,
    /// The method's own TTL, if it has one.
    pub ttl: Option<Duration>,
}

impl Registry {
    /// The handle of `method` in this registry: call it through
    /// [`call`](Memo::call) (or [`try_call`](Memo::try_call), or their async twins),
    /// and read, tune and invalidate its entries.
    ///
    /// The method is identified by its type, so it must be a fn item or a non-capturing
    /// closure taking the owners and a reference to the arguments; passing a capturing
    /// closure or a fn pointer fails to build, with a message saying so. (The check runs
    /// when the code is compiled to machine code, so `cargo check` alone does not report
    /// it.) Every handle of the same fn item and stored type shares one table, so a
    /// handle is cheap to make (a lookup) and to copy, and need not be kept.
    ///
    /// `V`, the type the table stores, is the method's return type (or its future's
    /// output), or, for a method returning `Result<V, E>` called through
    /// [`try_call`](Memo::try_call), its `Ok` type: it is inferred from how the handle is
    /// called, and a handle of a fallible method that is never called names it
    /// (`let parse: Memo<_, _, _, i64> = cache.method(parse);`).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// struct Account { rate: f64 }
    /// impl Account {
    ///     fn interest(self: &Arc<Self>, years: u32) -> f64 {
    ///         weakmemo::global().method(Self::compute_interest).call(self, years)
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
    /// weakmemo::global().method(move |n: &Arc<i32>, &(): &()| **n + bonus).call(&owner, ());
    /// ```
    pub fn method<F, O, A, K, V>(&self, method: F) -> Memo<'_, F, O::Held, A, V>
    where
        O: Owners<Held: SharedHeld>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        K: Stores<V>,
        F: Method<O, A, K>,
    {
        let () = Named::<F>::METHOD;
        Memo::new(self, self.table::<F, _, _, _>(Defaults::default), method)
    }

    /// The table of method `F` storing `V`, made with `defaults` if it is new.
    #[inline]
    pub(crate) fn table<F: 'static, H, A, V>(
        &self,
        defaults: impl FnOnce() -> Defaults,
    ) -> &MethodCache<H, A, V>
    where
        H: SharedHeld,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        match self.methods.find(table_id::<F, V>()) {
            Some(cache) => downcast(cache),
            None => self.new_table::<F, H, A, V>(defaults()),
        }
    }

    /// Makes the table (or finds the one another thread just made) with its settings.
    /// Out of line, so that the lookup above stays small.
    #[cold]
    #[inline(never)]
    fn new_table<F: 'static, H, A, V>(&self, defaults: Defaults) -> &MethodCache<H, A, V>
    where
        H: SharedHeld,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        // Under the settings lock until the table is in the directory: a registry-wide
        // setting made meanwhile then either is read here, or finds the table there.
        let _settings = self.settings.lock();
        let ownerless = TypeId::of::<H>() == TypeId::of::<()>();
        let capacity = defaults
            .capacity
            .unwrap_or(ownerless.then_some(DEFAULT_OWNERLESS_CAPACITY));
        let cache = self.methods.find_or_insert(table_id::<F, V>(), || {
            Box::new(MethodCache::<H, A, V>::new(Setup {
                max_shards: self.shard_count(),
                id: table_id::<F, V>(),
                method: TypeId::of::<F>(),
                name: type_name::<F>(),
                shared: Arc::clone(self.shared()),
                capacity: capacity.unwrap_or(usize::MAX),
                ttl: (
                    defaults.ttl.map(|ttl| ttl_ms(Some(ttl))),
                    self.ttl.load(Relaxed),
                ),
            }))
        });
        downcast(cache)
    }

    pub(super) fn shard_count(&self) -> usize {
        if self.shards != 0 {
            return self.shards;
        }
        static DEFAULT: OnceLock<usize> = OnceLock::new();
        *DEFAULT.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
            (cores * 4).next_power_of_two().clamp(8, 256)
        })
    }
}

/// The typed table behind `cache`. A table's identity is its method and stored type,
/// which fix its owner and argument types too, so this cannot fail.
#[inline]
fn downcast<H, A, V>(cache: &dyn ErasedCache) -> &MethodCache<H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    (cache as &dyn Any)
        .downcast_ref()
        .expect("a method's table has the types of its method")
}

/// A `#[memo]` method's table, found once and kept in a `static` of the generated code,
/// so that a hit skips the directory and its downcast: a load and two comparisons.
///
/// Only for a method whose stored types the `static` can name: not generic, and naming
/// no `Self` (an item inside a method cannot); others look their table up each call
/// ([`memo`]). The registry and the method's identity are kept beside the table, because
/// the `registry` option is an expression evaluated at each call, and one `static`
/// serves every instantiation of a generic `impl`: a call the kept table is not for
/// looks its own up.
#[cfg(feature = "macros")]
pub struct Resolved<H: SharedHeld, A: 'static, V: 'static> {
    found: OnceLock<(&'static Registry, TypeId, &'static MethodCache<H, A, V>)>,
}

#[cfg(feature = "macros")]
impl<H: SharedHeld, A, V> std::fmt::Debug for Resolved<H, A, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("found", &self.found.get().is_some())
            .finish()
    }
}

#[cfg(feature = "macros")]
impl<H: SharedHeld, A, V> Default for Resolved<H, A, V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "macros")]
impl<H: SharedHeld, A, V> Resolved<H, A, V> {
    /// Nothing found yet.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            found: OnceLock::new(),
        }
    }
}

#[cfg(feature = "macros")]
impl<H, A, V> Resolved<H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The handle of `method` in `registry`: the table kept, if it is this method's in
    /// this registry, else the one found (or made with `defaults`), kept if none was.
    #[inline]
    pub fn memo<F: 'static>(
        &'static self,
        registry: &'static Registry,
        method: F,
        defaults: impl FnOnce() -> Defaults,
    ) -> Memo<'static, F, H, A, V> {
        let () = Named::<F>::METHOD;
        let table = match self.found.get() {
            Some(&(kept_in, kept_for, table))
                if std::ptr::eq(kept_in, registry) && kept_for == TypeId::of::<F>() =>
            {
                table
            }
            _ => self.find::<F>(registry, defaults),
        };
        Memo::new(registry, table, method)
    }

    /// The table of `F` in `registry`, kept if none was: out of line, so that the hit
    /// above stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn find<F: 'static>(
        &'static self,
        registry: &'static Registry,
        defaults: impl FnOnce() -> Defaults,
    ) -> &'static MethodCache<H, A, V> {
        let table = registry.table::<F, H, A, V>(defaults);
        let _ = self.found.set((registry, TypeId::of::<F>(), table));
        table
    }
}

/// The handle of a generic `#[memo]` method's instantiation, looked up each time: its
/// table is made with `defaults`, the attribute's settings, whichever instantiation
/// comes first.
#[cfg(feature = "macros")]
pub fn memo<F, H, A, V>(
    registry: &'static Registry,
    method: F,
    defaults: impl FnOnce() -> Defaults,
) -> Memo<'static, F, H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: 'static,
{
    let () = Named::<F>::METHOD;
    Memo::new(registry, registry.table::<F, H, A, V>(defaults), method)
}

#[cfg(test)]
mod tests {
    use crate::Registry;

    #[test]
    fn builder_rounds_shards_to_a_power_of_two() {
        assert_eq!(Registry::builder().shards(5).build().shard_count(), 8);
        assert!(Registry::new().shard_count().is_power_of_two());
        assert!(Registry::new().shard_count() >= 8);
    }
}
