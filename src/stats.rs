//! Counters a user reads to size and tune a registry.

/// A snapshot of counters: a [`Registry`](crate::Registry)'s, summed over its methods,
/// from [`Registry::stats`], or one method's, from [`Memo::stats`].
///
/// Counters are summed shard by shard without stopping other threads, so a snapshot
/// taken while other threads use the registry mixes moments; each field says what it
/// counts and how exact it is.
///
/// [`Registry::stats`]: crate::Registry::stats
/// [`Memo::stats`]: crate::Memo::stats
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Lookups (a handle's `call`, `try_call`, their async twins, and `get`) that found a
    /// cached value.
    ///
    /// Counted per stripe of threads (8 stripes, threads taking them in turn) without a
    /// locked instruction, so that a hit writes no cache line another core writes: when
    /// two threads of one stripe hit the same method at the same instant one count may
    /// be lost, so with more than 8 threads this may undercount slightly. Exact while no
    /// two threads share a stripe: the first 8 threads to look something up have one
    /// each.
    pub hits: u64,
    /// Lookups that found no cached value. Exact. A miss of `call` or `try_call` either
    /// runs the method or, with single flight, receives the value of another thread's run
    /// (see `waited`). Every lookup counts: a method's table is made with its first
    /// handle, before any lookup through it.
    pub misses: u64,
    /// Entries held now, including entries of dead owners that were not purged yet.
    /// Right after [`Registry::purge`](crate::Registry::purge), with no other thread
    /// inserting, this is exactly the number of live owners' entries.
    pub entries: usize,
    /// Entries of dead owners removed so far ([`RemovalCause::Collected`]): by lazy
    /// purge steps, by the sweep a shard makes before it grows, by a bound's eviction
    /// (which takes them first), and by `purge()`. Exact.
    ///
    /// [`RemovalCause::Collected`]: crate::RemovalCause::Collected
    pub purged: u64,
    /// Entries removed by `invalidate`, `invalidate_owner` and `clear` (a handle's or the
    /// registry's). Exact.
    pub invalidated: u64,
    /// Values computed but not stored, for one of two reasons. Exact.
    /// - The call lost a race: another caller stored the same key first, so this value
    ///   was dropped and the stored one returned. Only happens with single flight off;
    ///   many of these mean threads often compute the same cold key at once, which
    ///   single flight would coalesce.
    /// - An invalidation covered the key while it was being computed: the value is from
    ///   before the invalidation, so it went only to the callers already waiting for it
    ///   (see [`Memo::invalidate`](crate::Memo::invalidate)).
    pub discarded: u64,
    /// Calls that found their key being computed by another thread and waited for that
    /// computation instead of running the method themselves (single flight). Exact.
    pub waited: u64,
    /// Entries a bound removed to make room (including those that lost admission on
    /// leaving a bounded method's window), and values kept out as heavier than a bound
    /// or by a TTL of zero; see
    /// [`Memo::set_capacity`](crate::Memo::set_capacity) and
    /// [`Registry::set_capacity`](crate::Registry::set_capacity). Exact.
    pub evicted: u64,
    /// Entries removed because they outlived their method's time to live (see
    /// [`Memo::set_ttl`](crate::Memo::set_ttl)). Exact.
    pub expired: u64,
    /// Lazy purge steps run so far (see the purge interval). Exact.
    pub purge_steps: u64,
    /// Tables in this registry: one per method and stored type, made with its first
    /// handle (so a fn cached through both `call` and `try_call` counts twice). 1 in a
    /// method's own stats.
    pub methods: usize,
}

impl Stats {
    /// `hits / (hits + misses)`, or 0 before any lookup.
    ///
    /// ```
    /// let stats = weakmemo::Registry::new().stats();
    /// assert_eq!(stats.hit_ratio(), 0.0);
    /// ```
    #[must_use]
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}
