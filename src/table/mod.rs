//! One method's results: a sharded hash table of entries keyed by owner and arguments.
//!
//! Entries are stored inline in a `hashbrown::HashTable` per shard, typed by the method's
//! owner, argument and value types, so a hit is one probe with no pointer chase beyond
//! the table. The shard is picked by the key's hash, so concurrent hits on different keys
//! take different locks; each shard sits on its own cache lines.
//!
//! Invariants the hit path relies on:
//! - An entry matches a caller only if its `Weak` points at the caller's allocation. The
//!   caller holds a strong `Arc`, so that allocation is alive, and since the entry's `Weak`
//!   has kept the allocation from being freed since the entry was made, the entry was made
//!   for this very object: no liveness check is needed on a hit, and a dead owner's entry
//!   can never match (nobody can present a strong `Arc` to it).
//! - Arguments are compared with `Eq` after the stored hash; the hash only locates.
//! - An expired entry is never returned: a hit of a method with a TTL reads the clock.
//! - User code that runs under a shard lock is limited to `A: Eq` and `V: Clone`; every
//!   removed entry (and with it `A`, `V` and the `Weak`) is dropped, and the removal
//!   listener told of it, after every lock is released (the CLOCK hand's included), so
//!   a `Drop` impl or a listener may use the registry.
//!
//! The books (see the design notes, "The books"):
//! - `held` is the weight of the entries stored plus that of reservations under way. A
//!   store reserves its weight before its entry is in the table ([`Reservation`]), and
//!   every removal gives its entry's weight back once the entry is out of the table
//!   ([`Removals::push`], the only way out), so `held` never runs below the stored
//!   weight, and equals it whenever no call is under way, whatever panics: a reservation
//!   not kept is given back when dropped.
//! - Every removed entry goes through [`Removals`], which counts it by cause and tells
//!   the listener once, when settled or, if a panic unwinds past it, when dropped.

use std::any::{Any, TypeId};
use std::hash::{BuildHasher, Hash};
use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use hashbrown::hash_table::Entry as Slot;
use hashbrown::{DefaultHashBuilder, HashTable};

pub(crate) mod bound;
pub(crate) mod expiry;
pub(crate) mod single_flight;

use self::bound::Bound;
use self::expiry::{Clock, Expiry};
use self::single_flight::in_flight::{
    ArgSlot, Claim, Claimed, FinishOnDrop, Found, InFlight, Pending,
};
use self::single_flight::waits::Caller;
use crate::lock_scope::Scoped;
use crate::lookup::Lookup;
use crate::owners::{Addresses, Held, Owners};
use crate::removal::{Removal, RemovalCause, tell};
use crate::shared::Shared;
use crate::stats::Stats;
use crate::sync::{Mutex, RwLock, RwLockReadGuard};

/// The operations the registry runs over every method, whatever its types.
pub(crate) trait ErasedCache: Any + Send + Sync {
    fn shard_count(&self) -> usize;
    /// Removes dead owners' and expired entries among `budget` buckets of one shard from
    /// `from` on.
    fn sweep_step(&self, shard: usize, from: usize, budget: usize) -> SweepStep;
    /// Removes every dead owner's and expired entry; returns how many.
    fn purge(&self) -> usize;
    /// Removes every entry of the owner at `addr`.
    fn remove_owner(&self, addr: usize) -> usize;
    /// Removes every entry.
    fn clear(&self) -> usize;
    fn add_stats(&self, stats: &mut Stats);
    /// Bounds the method's weight (`usize::MAX`: no bound of its own).
    fn set_capacity(&self, capacity: usize);
    /// Gives the method a CLOCK hand, for the registry's bound to evict with.
    fn track(&self);
    /// The weight of the method's entries (and of its stores under way).
    fn weight(&self) -> usize;
    /// Evicts one entry by the method's CLOCK hand, for the registry's bound; false if
    /// none could go.
    fn evict_one(&self) -> bool;
    /// Gives the method its own TTL (ms), or (`None`) the registry's, `inherited`.
    fn set_ttl(&self, own: Option<u64>, inherited: u64);
    /// Takes the registry's TTL (ms), unless the method has its own.
    fn inherit_ttl(&self, ttl: u64);
}

/// [`crate::MAX_WEIGHT`]: an entry's weight shares its [`Stamp`] with its birth time.
const MAX_WEIGHT: usize = crate::MAX_WEIGHT as usize;

/// A function giving an entry's weight.
pub(crate) type Weigher<A, V> = Arc<dyn Fn(&A, &V) -> u32 + Send + Sync>;

/// What one [`ErasedCache::sweep_step`] did.
pub(crate) struct SweepStep {
    /// Buckets looked at.
    pub(crate) visited: usize,
    /// Where the next step on this shard starts, or `None` at the end of the shard.
    pub(crate) next: Option<usize>,
}

struct Entry<H: Held, A, V> {
    /// The key's hash, stored so that growing, shrinking and comparing never run the
    /// arguments' `Hash`, with the entry's visit count in its [`VISITS`] bits.
    word: AtomicU64,
    owner: H,
    args: A,
    value: V,
    stamp: Stamp,
}

/// An entry's birth time, in ms (see [`crate::expiry`]), over its weight, in 24 bits.
#[derive(Clone, Copy)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// `weight` must be at most [`MAX_WEIGHT`].
    pub(crate) fn new(born: u64, weight: usize) -> Self {
        debug_assert!(weight <= MAX_WEIGHT);
        Self(born << 24 | weight as u64)
    }

    fn born(self) -> u64 {
        self.0 >> 24
    }

    fn weight(self) -> usize {
        (self.0 & MAX_WEIGHT as u64) as usize
    }
}

/// The bits of an entry's hash word that count hits since the CLOCK hand last passed, at
/// most 3 (see [`crate::bound`]). No index uses them: hashbrown takes a hash's low bits
/// and its top seven, shards bits 32 to 41; every [`Key`] has them clear. Kept in the
/// hash word so that counting costs an entry no bytes (a small entry would grow by a
/// quarter, which a table of a million entries measurably pays on every hit).
const VISITS: u64 = 0b11 << 48;
const ONE_VISIT: u64 = 1 << 48;

impl<H: Held, A: Eq, V> Entry<H, A, V> {
    fn new(key: KeyOf<H>, owner: H, args: A, value: V, stamp: Stamp) -> Self {
        Self {
            word: AtomicU64::new(key.hash),
            owner,
            args,
            value,
            stamp,
        }
    }

    fn hash(&self) -> u64 {
        self.word.load(Relaxed) & !VISITS
    }

    fn visits(&self) -> u64 {
        (self.word.load(Relaxed) & VISITS) / ONE_VISIT
    }

    /// Counts a hit for the CLOCK hand: a store only while the count is below its cap,
    /// so that hot entries are not written on every hit. Racing hits may count once;
    /// none can change the hash bits, which they all store unchanged.
    #[inline]
    fn visit(&self) {
        let word = self.word.load(Relaxed);
        if word & VISITS != VISITS {
            self.word.store(word + ONE_VISIT, Relaxed);
        }
    }

    /// Lowers the visit count (under the write lock, as the CLOCK hand passes).
    fn unvisit(&self) {
        let word = self.word.load(Relaxed);
        if word & VISITS != 0 {
            self.word.store(word - ONE_VISIT, Relaxed);
        }
    }

    /// Whether an owner is dead: the entry can never match again.
    fn is_dead(&self) -> bool {
        self.owner.is_dead()
    }

    fn is_expired(&self, clock: Option<Clock>) -> bool {
        clock.is_some_and(|clock| clock.expired(self.stamp.born()))
    }

    /// Why the entry should go now, whatever the bound: its owner is dead, or it expired.
    fn stale(&self, clock: Option<Clock>) -> Option<RemovalCause> {
        if self.is_dead() {
            Some(RemovalCause::Collected)
        } else if self.is_expired(clock) {
            Some(RemovalCause::Expired)
        } else {
            None
        }
    }

    fn belongs_to(&self, addr: usize) -> bool {
        self.owner.holds(addr)
    }

    /// Whether this is the entry of `key` and `args`: same hash, the same owners (by
    /// address), and arguments that `Eq` (or a borrowed form's `matches`) finds equal.
    #[inline]
    fn matches<Q: Lookup<A>>(&self, key: KeyOf<H>, args: &Q) -> bool {
        self.hash() == key.hash && self.owner.addrs() == key.addrs && args.matches(&self.args)
    }
}

/// A shard's entries: the stored results, and the keys being computed now.
struct Tables<H: Held, A, V> {
    ready: HashTable<Entry<H, A, V>>,
    /// Kept apart from `ready` so that entries stay small and hits probe only stored
    /// results. Claims change it under the read lock, one at a time by its mutex; the
    /// completion and abandonment of a claim, and invalidations, under the write lock,
    /// without locking it.
    in_flight: Mutex<InFlight<H::Addrs, A, V>>,
}

/// A call's key, computed once before any lock is taken: the hash of its owners'
/// addresses and arguments, with the [`VISITS`] bits clear, and the addresses.
#[derive(Clone, Copy)]
pub(crate) struct Key<Ad> {
    pub(crate) hash: u64,
    pub(crate) addrs: Ad,
}

/// The key of a table whose entries hold `H`.
pub(crate) type KeyOf<H> = Key<<H as Held>::Addrs>;

/// The result of a lookup, and whether this shard's turn at lazy purging has come.
pub(crate) struct Probe<'a, H: Held, A, V> {
    pub(crate) found: Result<V, Miss<'a, H, A, V>>,
    pub(crate) purge_due: bool,
}

/// A lookup that missed, still holding its shard's read lock, so that a claim can follow
/// with no moment in between at which the key could be stored: the read lock keeps out
/// `complete`, which stores a key and ends its pending entry under the write lock.
pub(crate) struct Miss<'a, H: Held, A, V> {
    tables: Scoped<RwLockReadGuard<'a, Tables<H, A, V>>>,
}

// Aligned to two cache lines (the unit x86 prefetches) so that hits on neighbouring
// shards from different cores do not share a line. Counters of rarer events live in
// the `MethodCache`, so that a shard fits in those 128 bytes.
#[repr(align(128))]
struct Shard<H: Held, A, V> {
    tables: RwLock<Tables<H, A, V>>,
    /// Counted with a plain load and store, not a locked add: a hit then writes only the
    /// line its lock already owns, at the price of losing increments under contention.
    hits: AtomicU64,
    /// Lookups left before this shard triggers a lazy purge step; racy like `hits`.
    until_purge: AtomicUsize,
    misses: AtomicU64,
}

impl<H: Held, A, V> Default for Shard<H, A, V> {
    fn default() -> Self {
        Self {
            tables: RwLock::new(Tables {
                ready: HashTable::new(),
                in_flight: Mutex::new(InFlight::new()),
            }),
            hits: AtomicU64::new(0),
            until_purge: AtomicUsize::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

impl<H: Held, A: Eq, V: Clone> Shard<H, A, V> {
    #[inline]
    fn find<Q: Lookup<A>>(
        &self,
        key: KeyOf<H>,
        args: &Q,
        expiry: &Expiry,
    ) -> Result<V, Miss<'_, H, A, V>> {
        let tables = Scoped::lock(|| self.tables.read());
        match tables
            .ready
            .find(key.hash, |entry| entry.matches(key, args))
        {
            Some(entry) if !entry.is_expired(expiry.clock()) => {
                entry.visit();
                Ok(entry.value.clone())
            }
            // An expired entry stays until a store replaces it or a sweep takes it.
            _ => Err(Miss { tables }),
        }
    }

    /// Counts one lookup; true once every `interval` lookups (never when it is 0).
    #[inline]
    fn count_lookup(&self, hit: bool, interval: usize) -> bool {
        if hit {
            self.hits
                .store(self.hits.load(Relaxed).wrapping_add(1), Relaxed);
        } else {
            self.misses.fetch_add(1, Relaxed);
        }
        if interval == 0 {
            return false;
        }
        // 0 is a fresh shard; more than `interval` means the interval was lowered.
        let left = match self.until_purge.load(Relaxed) {
            0 => interval,
            left => left.min(interval),
        };
        let due = left == 1;
        self.until_purge
            .store(if due { interval } else { left - 1 }, Relaxed);
        due
    }
}

/// Counters of events rarer than lookups, shared by a method's shards.
#[derive(Default)]
struct Counters {
    purged: AtomicU64,
    invalidated: AtomicU64,
    discarded: AtomicU64,
    waited: AtomicU64,
    evicted: AtomicU64,
    expired: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, count: usize) {
        if count > 0 {
            counter.fetch_add(count as u64, Relaxed);
        }
    }

    fn of(&self, cause: RemovalCause) -> &AtomicU64 {
        match cause {
            RemovalCause::Collected => &self.purged,
            RemovalCause::Size => &self.evicted,
            RemovalCause::Expired => &self.expired,
            RemovalCause::Explicit => &self.invalidated,
        }
    }
}

/// One method's table (public only for `#[memo]`'s generated code to name).
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct MethodCache<H: Held, A, V> {
    hasher: DefaultHashBuilder,
    /// Made at the first lookup, as many as the bound then asks for (see
    /// [`MethodCache::shards`]).
    shards: OnceLock<Box<[Shard<H, A, V>]>>,
    /// The registry's shard count: the most a table has.
    max_shards: usize,
    counters: Counters,
    /// The weight of the entries stored, plus that of reservations under way (see the
    /// module's invariants): counted for every method, bounded or not, so that a bound
    /// set at any moment starts from the exact weight.
    held: AtomicUsize,
    /// Set once the method, or its registry, is given a bound; never unset (a bound of
    /// `usize::MAX` only gives the registry's bound a CLOCK hand to evict with).
    bound: OnceLock<Bound>,
    expiry: Expiry,
    weigher: Mutex<Option<Weigher<A, V>>>,
    /// Whether `weigher` holds one, so that a method without one never locks it.
    weighed: AtomicBool,
    shared: Arc<Shared>,
    /// The method's identity and name, for the removal listener and panic messages.
    method: TypeId,
    name: &'static str,
}

/// What a table is made with: its identity and settings, all in place before the table
/// is published to other threads (see `Registry::table`).
pub(crate) struct Setup {
    /// The most shards the table may have, a power of two.
    pub(crate) max_shards: usize,
    pub(crate) method: TypeId,
    pub(crate) name: &'static str,
    pub(crate) shared: Arc<Shared>,
    /// The method's own bound, if any (`usize::MAX`: none).
    pub(crate) capacity: usize,
    /// The method's own TTL in ms, if it has one, and the registry's.
    pub(crate) ttl: (Option<u64>, u64),
}

#[cfg(test)]
impl Setup {
    /// A table of `shards` shards with no settings, alone in its registry.
    pub(crate) fn plain(shards: usize) -> Self {
        Self {
            max_shards: shards,
            method: TypeId::of::<()>(),
            name: "test",
            shared: Arc::new(Shared::new(u64::MAX)),
            capacity: usize::MAX,
            ttl: (None, expiry::ttl_ms(None)),
        }
    }
}

/// Room reserved in `held` for an entry about to be stored; given back when dropped,
/// unless kept because the entry is in the table.
struct Reservation<'a> {
    held: &'a AtomicUsize,
    weight: usize,
}

impl Reservation<'_> {
    /// The entry is stored: its weight stays counted, until it is removed.
    fn keep(mut self) {
        self.weight = 0;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        release(self.held, self.weight);
    }
}

/// Gives back `weight` of `held`, which counted it (see the module's invariants).
fn release(held: &AtomicUsize, weight: usize) {
    if weight > 0 {
        let before = held.fetch_sub(weight, Relaxed);
        debug_assert!(before >= weight, "weight given back that was never counted");
    }
}

/// Entries taken out of a table, with their causes: the one way out of a table. Each
/// gives its weight back as it is pushed (so that an eviction loop sees the room it
/// made), and is counted, reported and dropped once every lock is released: by
/// [`Removals::settle`], or by `Drop` if a panic unwinds first.
struct Removals<'a, H: Held, A: 'static, V: 'static> {
    cache: &'a MethodCache<H, A, V>,
    removed: Vec<(Entry<H, A, V>, RemovalCause)>,
}

/// A panic of user code (a removed entry's `Drop`) met while settling, resumed by the
/// operation once it has done all its work.
pub(crate) type Deferred = Option<Box<dyn Any + Send>>;

/// Resumes a deferred panic, if any.
pub(crate) fn resume(deferred: Deferred) {
    if let Some(payload) = deferred {
        resume_unwind(payload);
    }
}

impl<'a, H: Held, A: 'static, V: 'static> Removals<'a, H, A, V> {
    fn new(cache: &'a MethodCache<H, A, V>) -> Self {
        Self {
            cache,
            removed: Vec::new(),
        }
    }

    /// Takes in an entry just removed from its table.
    fn push(&mut self, entry: Entry<H, A, V>, cause: RemovalCause) {
        release(&self.cache.held, entry.stamp.weight());
        self.removed.push((entry, cause));
    }

    fn len(&self) -> usize {
        self.removed.len()
    }

    /// Counts the entries by cause, tells the listener of each, and drops them; call
    /// with no lock held. Every entry is dropped even if some `Drop` panics; the first
    /// such panic is returned, to be resumed when the caller's work is done.
    #[must_use]
    fn settle(mut self) -> Deferred {
        self.settle_all()
    }

    #[inline]
    fn settle_all(&mut self) -> Deferred {
        if self.removed.is_empty() {
            None
        } else {
            self.cache.settle_some(mem::take(&mut self.removed))
        }
    }
}

impl<H: Held, A: 'static, V: 'static> Drop for Removals<'_, H, A, V> {
    fn drop(&mut self) {
        // Reached with entries only if a panic unwinds past their settling: the panic
        // under way is the one to report.
        let _ = self.settle_all();
    }
}

impl<H: Held, A: 'static, V: 'static> MethodCache<H, A, V> {
    #[inline(never)]
    fn settle_some(&self, removed: Vec<(Entry<H, A, V>, RemovalCause)>) -> Deferred {
        for (_, cause) in &removed {
            Counters::add(self.counters.of(*cause), 1);
        }
        if let Some(listener) = self.shared.listener.get() {
            for (entry, cause) in &removed {
                let removal = Removal {
                    cause: *cause,
                    method: self.method,
                    name: self.name,
                    args: &entry.args,
                    value: &entry.value,
                };
                tell(&listener, &removal);
            }
        }
        let mut deferred = None;
        for (entry, _) in removed {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(entry))) {
                deferred.get_or_insert(payload);
            }
        }
        deferred
    }
}

impl<H: Held, A, V> MethodCache<H, A, V> {
    #[inline]
    fn shard(&self, hash: u64) -> &Shard<H, A, V> {
        let shards = self.shards();
        // hashbrown places by the low bits and tags by the top seven; use the middle.
        &shards[(hash >> 32) as usize & (shards.len() - 1)]
    }

    /// The shards, made at the first lookup: as many as the registry's shard count, or,
    /// for a bounded method, about one per 64 entries of its bound then (fewer shards
    /// lose hit ratio to contention, more to uneven filling and a longer CLOCK lap).
    #[inline]
    fn shards(&self) -> &[Shard<H, A, V>] {
        self.shards.get_or_init(
            #[cold]
            || {
                let capacity = self.bound.get().map_or(usize::MAX, Bound::capacity);
                let count = (capacity / 64)
                    .clamp(1, self.max_shards)
                    .next_power_of_two();
                (0..count).map(|_| Shard::default()).collect()
            },
        )
    }

    /// The shards made so far: none before the first lookup, which nothing else needs.
    fn made_shards(&self) -> &[Shard<H, A, V>] {
        self.shards.get().map_or(&[], |shards| shards)
    }

    /// The method's name, as `std::any::type_name` spells it.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Gives up a key this caller claimed (its method panicked or failed): the key is
    /// absent again, and its waiters wake to claim it themselves.
    pub(crate) fn abandon(&self, key: KeyOf<H>, slot: ArgSlot<A>) {
        let shard = self.shard(key.hash);
        let (ended, args) = Scoped::lock(|| shard.tables.write())
            .in_flight
            .get_mut()
            .end(slot);
        let _finished = FinishOnDrop(ended.flight);
        drop(args);
    }

    /// Keys pending in every shard.
    #[cfg(all(test, feature = "shuttle"))]
    pub(crate) fn pending(&self) -> usize {
        let shards = self.made_shards().iter();
        shards
            .map(|shard| shard.tables.read().in_flight.lock().len())
            .sum()
    }
}

impl<H, A, V> MethodCache<H, A, V>
where
    H: Held,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(setup: Setup) -> Self {
        debug_assert!(setup.max_shards.is_power_of_two());
        let cache = Self {
            hasher: DefaultHashBuilder::default(),
            shards: OnceLock::new(),
            max_shards: setup.max_shards,
            counters: Counters::default(),
            held: AtomicUsize::new(0),
            bound: OnceLock::new(),
            expiry: Expiry::new(),
            weighed: AtomicBool::new(false),
            weigher: Mutex::new(None),
            shared: setup.shared,
            method: setup.method,
            name: setup.name,
        };
        let (own, inherited) = setup.ttl;
        cache.expiry.set_own(own, inherited);
        cache.set_capacity(setup.capacity);
        if cache.shared.capacity() != u64::MAX {
            cache.track();
        }
        cache
    }

    #[inline]
    pub(crate) fn key<O: Owners<Held = H>, Q: Lookup<A>>(&self, owners: O, args: &Q) -> KeyOf<H> {
        self.key_of(owners.addrs(), args)
    }

    #[inline]
    fn key_of<Q: Hash>(&self, addrs: H::Addrs, args: &Q) -> KeyOf<H> {
        Key {
            hash: self.hasher.hash_one((addrs, args)) & !VISITS,
            addrs,
        }
    }

    /// Looks the key up and counts the lookup.
    #[inline]
    pub(crate) fn get<Q: Lookup<A>>(
        &self,
        key: KeyOf<H>,
        args: &Q,
        purge_interval: usize,
    ) -> Probe<'_, H, A, V> {
        let shard = self.shard(key.hash);
        let found = shard.find(key, args, &self.expiry);
        let purge_due = shard.count_lookup(found.is_ok(), purge_interval);
        Probe { found, purge_due }
    }

    /// Looks the key up again, uncounted: for a caller that has waited for it.
    pub(crate) fn find<Q: Lookup<A>>(
        &self,
        key: KeyOf<H>,
        args: &Q,
    ) -> Result<V, Miss<'_, H, A, V>> {
        self.shard(key.hash).find(key, args, &self.expiry)
    }

    /// Decides who computes a key that missed, under the miss's read lock: this caller,
    /// which claims it (with `join`, only if nobody else computes it), or another caller,
    /// which it will wait for; unless the caller computes it already (a recursion). The
    /// claim is guarded from this moment on.
    pub(crate) fn claim<'a, Q: Lookup<A>>(
        &'a self,
        miss: Miss<'a, H, A, V>,
        key: KeyOf<H>,
        args: Q,
        caller: &Caller,
        join: bool,
    ) -> Claim<'a, H, Q, A, V> {
        let mut in_flight = miss.tables.in_flight.lock();
        let found = if join {
            in_flight.find(key, &args, |computer| caller.owns(computer))
        } else {
            // Without single flight nobody waits, and a method may re-enter its own key:
            // it computes it again.
            Found::Absent
        };
        match found {
            // The arguments go back to be dropped once the locks are released.
            Found::Own => Claim::Recursive(args),
            Found::Other(at) => {
                let (flight, computer) = in_flight.join(at);
                Claim::Wait {
                    args,
                    flight,
                    computer,
                }
            }
            // A borrowed form is made owned here, on a miss only (its `Clone` or
            // `to_owned` runs under the read lock, as `Eq` does).
            Found::Absent => Claim::Compute(Claimed {
                cache: self,
                key,
                slot: Some(in_flight.claim(key, args.into_key(), caller.computes_as, join)),
            }),
        }
    }

    /// Sets the function that weighs the method's new entries; `None` weighs each 1.
    pub(crate) fn set_weigher(&self, weigher: Option<Weigher<A, V>>) {
        let mut slot = self.weigher.lock();
        self.weighed.store(weigher.is_some(), Relaxed);
        *slot = weigher;
    }

    /// The weight of an entry, by the method's weigher (user code: call it with no lock
    /// held, and where a panic loses nothing).
    #[inline]
    pub(crate) fn weigh(&self, args: &A, value: &V) -> usize {
        if !self.weighed.load(Relaxed) {
            return 1;
        }
        let weigher = self.weigher.lock().clone();
        weigher.map_or(1, |weigh| weigh(args, value) as usize)
    }

    /// Removes the entry of `key` and `args`, and marks such a key stale if it is in
    /// flight; returns whether there was an entry.
    pub(crate) fn invalidate<Q: Lookup<A>>(&self, key: KeyOf<H>, args: &Q) -> bool {
        let is_key = |hash, addrs, stored: &A| {
            hash == key.hash && addrs == key.addrs && args.matches(stored)
        };
        let shard = self.shard(key.hash);
        let mut removals = Removals::new(self);
        {
            let mut tables = Scoped::lock(|| shard.tables.write());
            let Tables { ready, in_flight } = &mut *tables;
            in_flight.get_mut().invalidate(|pending| {
                pending
                    .args()
                    .is_some_and(|stored| is_key(pending.hash(), pending.addrs(), stored))
            });
            let found = ready.find_entry(key.hash, |entry| {
                is_key(entry.hash(), entry.owner.addrs(), &entry.args)
            });
            if let Ok(entry) = found {
                removals.push(entry.remove().0, RemovalCause::Explicit);
            }
        }
        let found = removals.len() > 0;
        resume(removals.settle());
        found
    }

    /// The method's bound (`usize::MAX`: none).
    pub(crate) fn capacity(&self) -> usize {
        self.bound.get().map_or(usize::MAX, Bound::capacity)
    }

    /// The method's weigher, if it has one.
    pub(crate) fn weigher(&self) -> Option<Weigher<A, V>> {
        self.weigher.lock().clone()
    }

    /// The method's own TTL in ms, if it has one.
    pub(crate) fn own_ttl(&self) -> Option<u64> {
        self.expiry.own()
    }

    /// Counts a caller that waited for another caller's computation.
    pub(crate) fn count_wait(&self) {
        Counters::add(&self.counters.waited, 1);
    }

    /// Stores the value of a key this caller claimed, unless a bound keeps it out or an
    /// invalidation made the claim stale, and hands it to the claim's waiters. `copy` is
    /// the clone to store and `weight` its weight, both made by the caller while it
    /// could still abandon the key. Returns the value stored for the key (the first, if
    /// another caller stored it meanwhile) or, if none was, the caller's.
    pub(crate) fn complete(
        &self,
        key: KeyOf<H>,
        owners: impl Owners<Held = H>,
        slot: ArgSlot<A>,
        (value, copy): (V, V),
        weight: usize,
    ) -> V {
        let shard = self.shard(key.hash);
        let mut removals = Removals::new(self);
        // Decided before the shard is locked: eviction locks shards one at a time.
        let reservation = self.admit(key.hash, weight, &mut removals);
        let stamp = Stamp::new(self.expiry.stamp(), weight.min(MAX_WEIGHT));
        // Waiters are woken however the rest goes; with a value, if it is set.
        let mut finished = FinishOnDrop(None);
        let (value, unstored) = {
            let mut tables = Scoped::lock(|| shard.tables.write());
            let Tables { ready, in_flight } = &mut *tables;
            // Ended before the write lock is released, so that a lookup sees the key
            // either pending or stored.
            let (ended, args) = in_flight.get_mut().end(slot);
            finished.0 = ended.flight;
            let entry = Entry::new(key, owners.downgrade(), args, copy, stamp);
            match reservation {
                // An invalidation covered the key while it was computed: the value is
                // from before it, so it answers the waiters only.
                Some(_) if ended.stale => (value, Unstored::Stale(entry)),
                Some(reservation) => {
                    match store(ready, key, entry, self.expiry.clock(), &mut removals) {
                        Stored::Kept => {
                            reservation.keep();
                            (value, Unstored::None)
                        }
                        Stored::Lost(entry, first) => (first, Unstored::Lost(entry, value)),
                    }
                }
                None => (value, Unstored::Refused(entry)),
            }
        };
        if let Some(flight) = &finished.0 {
            flight.set(value.clone());
        }
        drop(finished);
        match unstored {
            Unstored::None => {}
            Unstored::Refused(entry) => {
                Counters::add(&self.counters.evicted, 1);
                drop(entry);
            }
            Unstored::Stale(entry) => {
                Counters::add(&self.counters.discarded, 1);
                drop(entry);
            }
            Unstored::Lost(entry, value) => {
                Counters::add(&self.counters.discarded, 1);
                drop((entry, value));
            }
        }
        resume(removals.settle());
        value
    }

    /// Removes the entries `doomed` picks, shard by shard, with their causes, and marks
    /// the pending keys `covered` picks stale. Every shard is done even if a removed
    /// entry's `Drop` panics; the first such panic is resumed at the end.
    fn remove_where(
        &self,
        doomed: impl Fn(&Entry<H, A, V>) -> Option<RemovalCause>,
        covered: impl Fn(&Pending<H::Addrs, A, V>) -> bool,
    ) -> usize {
        let mut count = 0;
        let mut deferred = None;
        for shard in self.made_shards() {
            let mut removals = Removals::new(self);
            {
                let mut tables = Scoped::lock(|| shard.tables.write());
                let Tables { ready, in_flight } = &mut *tables;
                in_flight.get_mut().invalidate(&covered);
                for entry in ready.extract_if(|entry| doomed(entry).is_some()) {
                    let cause = doomed(&entry).unwrap_or(RemovalCause::Collected);
                    removals.push(entry, cause);
                }
                // Give memory back after a burst, with slack so that purges do not
                // shrink and regrow a table again and again.
                let live = ready.len();
                if live * 4 < ready.capacity() {
                    ready.shrink_to(live * 2, Entry::hash);
                }
            }
            count += removals.len();
            let panic = removals.settle();
            deferred = deferred.or(panic);
        }
        resume(deferred);
        count
    }

    /// Whether a newcomer of `hash` and `weight` may be stored, with its room reserved:
    /// not if a TTL of 0 or a weight over a bound (the method's or the registry's) keeps
    /// it out; else always without a bound, and with one if there is room, or room was
    /// made by evicting victims it beats (see [`crate::bound`]). Takes no shard lock but
    /// one at a time, and none is held on entry, so it must run before the newcomer's
    /// shard is locked.
    #[inline]
    fn admit(
        &self,
        hash: u64,
        weight: usize,
        removals: &mut Removals<'_, H, A, V>,
    ) -> Option<Reservation<'_>> {
        if !self.storable(weight) {
            return None;
        }
        match self.bound.get() {
            None => Some(self.reserve(weight).0),
            Some(bound) => self.admit_within(bound, hash, weight, removals),
        }
    }

    /// Reserves room for an entry of `weight`; also returns whether that takes the
    /// method over `capacity`.
    fn reserve(&self, weight: usize) -> (Reservation<'_>, usize) {
        let held = self.held.fetch_add(weight, Relaxed) + weight;
        let reservation = Reservation {
            held: &self.held,
            weight,
        };
        (reservation, held)
    }

    /// Whether more weight is held (or reserved) than the bound allows.
    fn is_over(&self, bound: &Bound) -> bool {
        self.held.load(Relaxed) > bound.capacity()
    }

    /// Whether an entry of `weight` may be stored at all: not under a TTL of 0, nor if
    /// heavier than [`MAX_WEIGHT`] or a bound (it could only stay by flushing the rest).
    #[inline]
    fn storable(&self, weight: usize) -> bool {
        !self.expiry.stores_nothing()
            && weight <= MAX_WEIGHT
            && weight as u64 <= self.shared.capacity()
            && self
                .bound
                .get()
                .is_none_or(|bound| weight <= bound.capacity())
    }

    #[inline(never)]
    fn admit_within(
        &self,
        bound: &Bound,
        hash: u64,
        weight: usize,
        removals: &mut Removals<'_, H, A, V>,
    ) -> Option<Reservation<'_>> {
        if bound.sketch.add(hash) {
            bound.sketch.age(self.entries());
        }
        let (reservation, held) = self.reserve(weight);
        let mut admitted = true;
        if held > bound.capacity() {
            // The first victim must lose to the newcomer; a heavy newcomer may need more.
            admitted = self.evict_for(bound, Some(hash), removals);
            while admitted && self.is_over(bound) && self.evict_for(bound, None, removals) {}
        }
        // Not admitted, the reservation is given back here.
        let reservation = admitted.then_some(reservation);
        // A lowered bound is met by taking one more entry per miss.
        if self.is_over(bound) {
            self.evict_for(bound, None, removals);
        }
        reservation
    }

    /// Moves the CLOCK hand to free room for a newcomer of `hash` (or, with `None`, for
    /// one stored already), pushing what it removes onto `removals`: a dead owner's or an
    /// expired entry goes at once; an entry hit since the hand last passed has its count
    /// lowered; the first at 0 is the victim, unless a dead owner's or expired entry
    /// within 64 buckets goes in its place, and is evicted if the sketch has seen the
    /// newcomer more often. False if nothing was freed: the newcomer lost, or the hand
    /// found nothing to take in five laps (every entry is being removed meanwhile, or
    /// the bound is 0).
    fn evict_for(
        &self,
        bound: &Bound,
        hash: Option<u64>,
        removals: &mut Removals<'_, H, A, V>,
    ) -> bool {
        if self.made_shards().is_empty() {
            return false; // nothing stored yet
        }
        let mut hand = bound.hand.lock();
        let clock = self.expiry.clock();
        let mut laps = 0;
        loop {
            let shard = &self.made_shards()[hand.shard];
            let mut tables = Scoped::lock(|| shard.tables.write());
            let table = &mut tables.ready;
            while hand.bucket < table.num_buckets() {
                let Some(candidate) = table.get_bucket(hand.bucket) else {
                    hand.bucket += 1;
                    continue;
                };
                let stale = candidate.stale(clock);
                if stale.is_none() && candidate.visits() > 0 {
                    candidate.unvisit();
                    hand.bucket += 1;
                    continue;
                }
                let mut at = hand.bucket;
                if stale.is_none() {
                    // A live victim. A dead owner's or expired entry close by is free
                    // room, and goes first; else the newcomer must beat the victim, or
                    // the hand stays on it for the next newcomer.
                    let buckets = table.num_buckets();
                    let near = (1..buckets.min(65))
                        .map(|step| (hand.bucket + step) % buckets)
                        .find(|&index| {
                            table
                                .get_bucket(index)
                                .is_some_and(|e| e.stale(clock).is_some())
                        });
                    let loses = |hash| {
                        bound.sketch.estimate(hash) <= bound.sketch.estimate(candidate.hash())
                    };
                    match near {
                        Some(index) => at = index,
                        None if hash.is_some_and(loses) => return false,
                        None => hand.bucket += 1,
                    }
                } else {
                    hand.bucket += 1;
                }
                let Ok(entry) = table.get_bucket_entry(at) else {
                    unreachable!("the bucket was just found full");
                };
                let victim = entry.remove().0;
                let cause = victim.stale(clock).unwrap_or(RemovalCause::Size);
                removals.push(victim, cause);
                return true;
            }
            drop(tables);
            hand.bucket = 0;
            hand.shard += 1;
            if hand.shard == self.made_shards().len() {
                hand.shard = 0;
                laps += 1;
                if laps == 5 {
                    return false;
                }
            }
        }
    }

    /// The method's bound, made with `capacity` if it has none yet.
    fn bound_or_init(&self, capacity: usize) -> &Bound {
        self.bound.get_or_init(|| {
            // The sketch serves the smaller bound, as it is when the bound is made.
            let registry = usize::try_from(self.shared.capacity()).unwrap_or(usize::MAX);
            Bound::new(capacity, capacity.min(registry))
        })
    }

    /// The number of entries stored now (a sum over the shards: for the sketch's size,
    /// now and then).
    fn entries(&self) -> usize {
        let shards = self.made_shards().iter();
        shards
            .map(|shard| Scoped::lock(|| shard.tables.read()).ready.len())
            .sum()
    }
}

/// What a completed claim did not store, dropped once no lock is held and waiters are
/// woken.
enum Unstored<H: Held, A, V> {
    None,
    /// A bound kept it out.
    Refused(Entry<H, A, V>),
    /// An invalidation covered it while it was computed.
    Stale(Entry<H, A, V>),
    /// Another caller stored the key first (single flight off, or a stale claim's
    /// successor): the caller's entry, and its value, replaced by the first.
    Lost(Entry<H, A, V>, V),
}

/// What [`store`] did with a newcomer.
enum Stored<H: Held, A, V> {
    /// It is in the table.
    Kept,
    /// Its key was stored already, unexpired: the first value stays, and this is a
    /// clone of it, for the caller; the newcomer goes back.
    Lost(Entry<H, A, V>, V),
}

/// Stores `entry` unless its key is stored already and unexpired, in which case the
/// first value stays, so that every caller of one key sees one value.
fn store<H: Held, A: Hash + Eq + 'static, V: Clone + 'static>(
    ready: &mut HashTable<Entry<H, A, V>>,
    key: KeyOf<H>,
    entry: Entry<H, A, V>,
    clock: Option<Clock>,
    removals: &mut Removals<'_, H, A, V>,
) -> Stored<H, A, V> {
    make_room(ready, clock, removals);
    // One probe finds the first entry or the free slot.
    match ready.entry(
        key.hash,
        |stored| stored.matches(key, &entry.args),
        Entry::hash,
    ) {
        Slot::Occupied(mut first) if first.get().is_expired(clock) => {
            let expired = mem::replace(first.get_mut(), entry);
            removals.push(expired, RemovalCause::Expired);
            Stored::Kept
        }
        Slot::Occupied(first) => Stored::Lost(entry, first.get().value.clone()),
        Slot::Vacant(slot) => {
            slot.insert(entry);
            Stored::Kept
        }
    }
}

/// When a table is full, remove its dead owners' and expired entries and rebuild it with
/// room for as many new entries as it has live ones: twice the live entries, which
/// hashbrown rounds up to its next size (with none removed, that is exactly its usual
/// doubling).
///
/// The rebuild, rather than hashbrown's own growth, is what bounds memory: entries that
/// `extract_if` removes mostly become tombstones, which give no room back, and hashbrown
/// grows a table that is full of tombstones unless it is under half full. A rebuild has
/// none. Its cost, O(buckets), is paid by the at least `live` inserts (3 if none) the previous
/// rebuild made room for, so inserts stay amortized O(1); and a table never holds more
/// than `4 × live` entries (or 3), `live` counted at its last rebuild.
fn make_room<H: Held, A: Eq + 'static, V: 'static>(
    table: &mut HashTable<Entry<H, A, V>>,
    clock: Option<Clock>,
    removals: &mut Removals<'_, H, A, V>,
) {
    if table.len() < table.capacity() {
        return;
    }
    for entry in table.extract_if(|entry| entry.stale(clock).is_some()) {
        let cause = entry.stale(clock).unwrap_or(RemovalCause::Collected);
        removals.push(entry, cause);
    }
    let mut rebuilt = HashTable::with_capacity((2 * table.len()).max(3));
    for entry in table.drain() {
        rebuilt.insert_unique(entry.hash(), entry, Entry::hash);
    }
    *table = rebuilt;
}

impl<H, A, V> ErasedCache for MethodCache<H, A, V>
where
    H: Held,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn shard_count(&self) -> usize {
        self.made_shards().len()
    }

    fn sweep_step(&self, shard: usize, from: usize, budget: usize) -> SweepStep {
        let shard = &self.made_shards()[shard];
        let clock = self.expiry.clock();
        // Look under the read lock, so hits go on; write-lock only to remove.
        let (end, buckets, stale_at) = {
            let tables = Scoped::lock(|| shard.tables.read());
            let table = &tables.ready;
            let buckets = table.num_buckets();
            let end = buckets.min(from.saturating_add(budget));
            let stale_at: Vec<usize> = (from..end)
                .filter(|&index| {
                    table
                        .get_bucket(index)
                        .is_some_and(|e| e.stale(clock).is_some())
                })
                .collect();
            (end, buckets, stale_at)
        };
        let mut removals = Removals::new(self);
        if !stale_at.is_empty() {
            let mut tables = Scoped::lock(|| shard.tables.write());
            let table = &mut tables.ready;
            for index in stale_at {
                // The table may have changed in between: check again before removing.
                if let Ok(entry) = table.get_bucket_entry(index) {
                    if let Some(cause) = entry.get().stale(clock) {
                        removals.push(entry.remove().0, cause);
                    }
                }
            }
        }
        resume(removals.settle());
        SweepStep {
            visited: end.saturating_sub(from),
            next: (end < buckets).then_some(end),
        }
    }

    fn purge(&self) -> usize {
        let clock = self.expiry.clock();
        self.remove_where(|entry| entry.stale(clock), |_| false)
    }

    fn remove_owner(&self, addr: usize) -> usize {
        self.remove_where(
            |entry| entry.belongs_to(addr).then_some(RemovalCause::Explicit),
            |pending| pending.addrs().contains(addr),
        )
    }

    fn clear(&self) -> usize {
        self.remove_where(|_| Some(RemovalCause::Explicit), |_| true)
    }

    /// Bounds the method to `capacity` (`usize::MAX`: no bound of its own). Entries
    /// over a lowered bound leave as newcomers arrive, not at once.
    fn set_capacity(&self, capacity: usize) {
        // Lifting a bound never set allocates nothing.
        if capacity != usize::MAX || self.bound.get().is_some() {
            self.bound_or_init(capacity).set_capacity(capacity);
        }
    }

    fn track(&self) {
        self.bound_or_init(usize::MAX);
    }

    fn weight(&self) -> usize {
        self.held.load(Relaxed)
    }

    fn evict_one(&self) -> bool {
        let Some(bound) = self.bound.get() else {
            return false;
        };
        let mut removals = Removals::new(self);
        let evicted = self.evict_for(bound, None, &mut removals);
        resume(removals.settle());
        evicted
    }

    fn set_ttl(&self, own: Option<u64>, inherited: u64) {
        self.expiry.set_own(own, inherited);
    }

    fn inherit_ttl(&self, ttl: u64) {
        self.expiry.inherit(ttl);
    }

    fn add_stats(&self, stats: &mut Stats) {
        for shard in self.made_shards() {
            stats.hits += shard.hits.load(Relaxed);
            stats.misses += shard.misses.load(Relaxed);
            stats.entries += Scoped::lock(|| shard.tables.read()).ready.len();
        }
        stats.purged += self.counters.purged.load(Relaxed);
        stats.invalidated += self.counters.invalidated.load(Relaxed);
        stats.discarded += self.counters.discarded.load(Relaxed);
        stats.waited += self.counters.waited.load(Relaxed);
        stats.evicted += self.counters.evicted.load(Relaxed);
        stats.expired += self.counters.expired.load(Relaxed);
        stats.methods += 1;
    }
}

#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use super::*;

    /// A shard stays within the two cache lines it is aligned to; the rarer counters
    /// live in the `MethodCache` for that reason.
    #[test]
    fn a_shard_is_two_cache_lines() {
        assert_eq!(size_of::<Shard<std::sync::Weak<u8>, u64, u64>>(), 128);
        assert_eq!(
            size_of::<Shard<std::sync::Weak<dyn Send + Sync>, String, Vec<u8>>>(),
            128
        );
    }

    /// The visit count lives in the hash word, the weight beside the birth time: an
    /// entry is its key, owner, arguments, value and one word more.
    #[test]
    fn an_entry_has_no_room_for_anything_else() {
        assert_eq!(size_of::<Entry<std::sync::Weak<u64>, u64, u64>>(), 40);
    }
}
