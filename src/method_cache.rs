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

use std::any::{Any, TypeId};
use std::hash::{BuildHasher, Hash};
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};

use hashbrown::hash_table::Entry as Slot;
use hashbrown::{DefaultHashBuilder, HashTable};

use crate::bound::Bound;
use crate::expiry::{Clock, Expiry};
use crate::flight::Flight;
use crate::identity::{owner_addr, weak_addr};
use crate::lock_scope::Scoped;
use crate::removal::{Removal, RemovalCause, tell};
use crate::shared::Shared;
use crate::stats::Stats;
use crate::sync::{Mutex, RwLock, RwLockReadGuard};
use crate::waits::Token;

/// The operations the registry runs over every method, whatever its types.
pub(crate) trait ErasedCache: Any + Send + Sync {
    fn shard_count(&self) -> usize;
    /// Removes dead owners' and expired entries among `budget` buckets of one shard from
    /// `from` on.
    fn sweep_step(&self, shard: usize, from: usize, budget: usize) -> SweepStep;
    /// Removes every dead owner's and expired entry; returns how many.
    fn purge(&self) -> usize;
    /// Removes the entry of (owner at `addr`, `args`), if `args` has this method's type.
    fn remove(&self, addr: usize, args: &dyn Any) -> bool;
    /// Removes every entry of the owner at `addr`.
    fn remove_owner(&self, addr: usize) -> usize;
    /// Removes every entry.
    fn clear(&self) -> usize;
    fn add_stats(&self, stats: &mut Stats);
    /// Bounds the method's weight (`usize::MAX`: no bound of its own).
    fn set_capacity(&self, capacity: usize);
    /// Counts the method's weight from now on, for the registry's bound.
    fn track(&self);
    /// The weight the method holds, if counted (it has a bound or is tracked), else 0.
    fn weight(&self) -> usize;
    /// Evicts one entry by the method's CLOCK hand, for the registry's bound; false if
    /// none could go.
    fn evict_one(&self) -> bool;
    /// Gives the method its own TTL (ms), or (`None`) the registry's, `inherited`.
    fn set_ttl(&self, own: Option<u64>, inherited: u64);
    /// Takes the registry's TTL (ms), unless the method has its own.
    fn inherit_ttl(&self, ttl: u64);
}

/// Entries removed under a lock, with their causes, to be settled once it is released.
type Removed<T, A, V> = Vec<(Entry<T, A, V>, RemovalCause)>;

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

struct Entry<T: ?Sized, A, V> {
    /// The key's hash, stored so that growing, shrinking and comparing never run the
    /// arguments' `Hash`, with the entry's visit count in its [`VISITS`] bits.
    word: AtomicU64,
    owner: Weak<T>,
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

impl<T: ?Sized, A: Eq, V> Entry<T, A, V> {
    fn new(key: Key, owner: Weak<T>, args: A, value: V, stamp: Stamp) -> Self {
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

    fn is_dead(&self) -> bool {
        self.owner.strong_count() == 0
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
        weak_addr(&self.owner) == addr
    }

    fn matches(&self, key: Key, args: &A) -> bool {
        self.hash() == key.hash && self.belongs_to(key.addr) && self.args == *args
    }
}

/// A shard's entries: the stored results, and the keys being computed now.
struct Tables<T: ?Sized, A, V> {
    ready: HashTable<Entry<T, A, V>>,
    /// Kept apart from `ready` so that entries stay small and hits probe only stored
    /// results. Claims change it under the read lock, one at a time by its mutex; the
    /// completion and abandonment of a claim, under the write lock, without locking it.
    in_flight: Mutex<InFlight<A>>,
}

/// The arguments of a key being computed: shared by the computing caller, which borrows
/// them for the method, and its pending entry, where waiters compare them (under the
/// in-flight lock, never cloning the `Arc`). Emptied when the claim ends and kept as the
/// shard's spare, so that a miss does not allocate.
pub(crate) type ArgSlot<A> = Arc<Option<A>>;

/// The keys of a shard whose method is running now (see [`crate::flight`]).
struct InFlight<A> {
    /// Usually empty or nearly: a key stays here only while its method runs, so this
    /// holds at most one key per thread and level of cached recursion. A `Vec` scanned
    /// by hash is cheaper than a hash table at that size.
    pending: Vec<Pending<A>>,
    /// An empty, unshared argument slot for the next claim.
    spare: Option<ArgSlot<A>>,
}

struct Pending<A> {
    hash: u64,
    /// The owner's address; the computing caller holds a strong `Arc` to it until the
    /// entry leaves, so the address cannot be reused meanwhile.
    addr: usize,
    args: ArgSlot<A>,
    computer: Token,
    /// Made by the first waiter.
    flight: Option<Arc<Flight>>,
}

impl<A: Eq> InFlight<A> {
    /// Makes the key pending, computed by `computer`.
    fn start(&mut self, key: Key, args: A, computer: Token) -> ArgSlot<A> {
        let mut slot = self.spare.take().unwrap_or_default();
        *Arc::get_mut(&mut slot).expect("a spare slot is never shared") = Some(args);
        self.pending.push(Pending {
            hash: key.hash,
            addr: key.addr,
            args: Arc::clone(&slot),
            computer,
            flight: None,
        });
        slot
    }

    /// Ends the claim that holds `slot` (found by identity: no user code), returning its
    /// flight and its arguments; keeps the emptied slot as the spare.
    fn end(&mut self, mut slot: ArgSlot<A>) -> (Option<Arc<Flight>>, A) {
        let at = self
            .pending
            .iter()
            .position(|pending| Arc::ptr_eq(&pending.args, &slot))
            .expect("a claimed key stays pending until its caller ends it");
        let pending = self.pending.swap_remove(at);
        drop(pending.args);
        let args = Arc::get_mut(&mut slot)
            .and_then(Option::take)
            .expect("waiters never keep a pending key's arguments");
        self.spare = Some(slot);
        (pending.flight, args)
    }
}

/// What a caller that missed must do about its key.
pub(crate) enum Claim<A> {
    /// This caller computes it: run the method on these arguments, then `complete` or
    /// `abandon`.
    Compute(ArgSlot<A>),
    /// Another thread computes it: wait for the flight, then look again.
    Wait {
        args: A,
        flight: Arc<Flight>,
        computer: Token,
    },
    /// This thread computes it already, further up its stack.
    Recursive,
}

/// A call's key, computed once before any lock is taken; its hash has the [`VISITS`]
/// bits clear.
#[derive(Clone, Copy)]
pub(crate) struct Key {
    hash: u64,
    addr: usize,
}

/// The result of a lookup, and whether this shard's turn at lazy purging has come.
pub(crate) struct Lookup<'a, T: ?Sized, A, V> {
    pub(crate) found: Result<V, Miss<'a, T, A, V>>,
    pub(crate) purge_due: bool,
}

/// A lookup that missed, still holding its shard's read lock, so that a claim can follow
/// with no moment in between at which the key could be stored: the read lock keeps out
/// `complete`, which stores a key and ends its pending entry under the write lock.
pub(crate) struct Miss<'a, T: ?Sized, A, V> {
    tables: Scoped<RwLockReadGuard<'a, Tables<T, A, V>>>,
}

// Aligned to two cache lines (the unit x86 prefetches) so that hits on neighbouring
// shards from different cores do not share a line. Counters of rarer events live in
// the `MethodCache`, so that a shard fits in those 128 bytes.
#[repr(align(128))]
struct Shard<T: ?Sized, A, V> {
    tables: RwLock<Tables<T, A, V>>,
    /// Counted with a plain load and store, not a locked add: a hit then writes only the
    /// line its lock already owns, at the price of losing increments under contention.
    hits: AtomicU64,
    /// Lookups left before this shard triggers a lazy purge step; racy like `hits`.
    until_purge: AtomicUsize,
    misses: AtomicU64,
}

impl<T: ?Sized, A, V> Default for Shard<T, A, V> {
    fn default() -> Self {
        Self {
            tables: RwLock::new(Tables {
                ready: HashTable::new(),
                in_flight: Mutex::new(InFlight {
                    pending: Vec::new(),
                    spare: None,
                }),
            }),
            hits: AtomicU64::new(0),
            until_purge: AtomicUsize::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

impl<T: ?Sized, A: Eq, V: Clone> Shard<T, A, V> {
    #[inline]
    fn find(&self, key: Key, args: &A, expiry: &Expiry) -> Result<V, Miss<'_, T, A, V>> {
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

impl<T: ?Sized, A: Eq, V> Miss<'_, T, A, V> {
    /// Decides who computes the key that missed: this caller, if nobody is computing it
    /// (the key becomes pending); else it waits, unless its own thread is the computer.
    pub(crate) fn claim(self, key: Key, args: A, me: Token) -> Claim<A> {
        let mut in_flight = self.tables.in_flight.lock();
        let found = in_flight.pending.iter_mut().find(|pending| {
            pending.hash == key.hash
                && pending.addr == key.addr
                && pending.args.as_ref().as_ref() == Some(&args)
        });
        match found {
            Some(pending) if pending.computer == me => Claim::Recursive,
            Some(pending) => Claim::Wait {
                flight: Arc::clone(pending.flight.get_or_insert_with(Arc::default)),
                computer: pending.computer,
                args,
            },
            None => Claim::Compute(in_flight.start(key, args, me)),
        }
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

pub(crate) struct MethodCache<T: ?Sized, A, V> {
    hasher: DefaultHashBuilder,
    shards: Box<[Shard<T, A, V>]>,
    counters: Counters,
    /// Set once the method, or its registry, is given a bound; never unset (a bound of
    /// `usize::MAX` only counts the weight, for the registry's bound).
    bound: OnceLock<Bound>,
    expiry: Expiry,
    weigher: Mutex<Option<Weigher<A, V>>>,
    /// Whether `weigher` holds one, so that a method without one never locks it.
    weighed: AtomicBool,
    shared: Arc<Shared>,
    /// The table's identity and the method's name, for the removal listener.
    table: TypeId,
    name: &'static str,
}

/// What a table is made with; its settings come after (see `Registry::new_cache`).
pub(crate) struct Setup {
    /// A power of two.
    pub(crate) shards: usize,
    pub(crate) table: TypeId,
    pub(crate) name: &'static str,
    pub(crate) shared: Arc<Shared>,
}

#[cfg(test)]
impl Setup {
    /// A table of `shards` shards with no settings, alone in its registry.
    pub(crate) fn plain(shards: usize) -> Self {
        Self {
            shards,
            table: TypeId::of::<()>(),
            name: "test",
            shared: Arc::new(Shared::new(u64::MAX)),
        }
    }
}

impl<T, A, V> MethodCache<T, A, V>
where
    T: ?Sized + Send + Sync + 'static,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(setup: Setup) -> Self {
        debug_assert!(setup.shards.is_power_of_two());
        Self {
            hasher: DefaultHashBuilder::default(),
            shards: (0..setup.shards).map(|_| Shard::default()).collect(),
            counters: Counters::default(),
            bound: OnceLock::new(),
            expiry: Expiry::new(),
            weighed: AtomicBool::new(false),
            weigher: Mutex::new(None),
            shared: setup.shared,
            table: setup.table,
            name: setup.name,
        }
    }

    #[inline]
    pub(crate) fn key(&self, owner: &Arc<T>, args: &A) -> Key {
        let addr = owner_addr(owner);
        Key {
            hash: self.hasher.hash_one((addr, args)) & !VISITS,
            addr,
        }
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<T, A, V> {
        // hashbrown places by the low bits and tags by the top seven; use the middle.
        &self.shards[(hash >> 32) as usize & (self.shards.len() - 1)]
    }

    /// Looks the key up and counts the lookup.
    #[inline]
    pub(crate) fn get(&self, key: Key, args: &A, purge_interval: usize) -> Lookup<'_, T, A, V> {
        let shard = self.shard(key.hash);
        let found = shard.find(key, args, &self.expiry);
        let purge_due = shard.count_lookup(found.is_ok(), purge_interval);
        Lookup { found, purge_due }
    }

    /// Looks the key up again, uncounted: for a caller that has waited for it.
    pub(crate) fn find(&self, key: Key, args: &A) -> Result<V, Miss<'_, T, A, V>> {
        self.shard(key.hash).find(key, args, &self.expiry)
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

    /// Stores `value` for the key unless another caller stored it first; returns the
    /// value that is stored, so that every caller of one key sees one value.
    pub(crate) fn insert(&self, key: Key, owner: &Arc<T>, args: A, value: V) -> V {
        let weight = self.weigh(&args, &value);
        let mut removed = Removed::new();
        if !self.admit(key.hash, weight, &mut removed) {
            self.count_refused();
            self.settle(removed);
            return value;
        }
        let stamp = Stamp::new(self.expiry.stamp(), weight);
        let entry = Entry::new(key, Arc::downgrade(owner), args, value.clone(), stamp);
        let shard = self.shard(key.hash);
        let stored = store(
            &mut Scoped::lock(|| shard.tables.write()).ready,
            key,
            entry,
            value,
            self.expiry.clock(),
        );
        self.settle(removed);
        self.count_stored(stored)
    }

    /// Counts what [`store`] did, and drops what it removed, now that no lock is held.
    fn count_stored(&self, stored: Stored<T, A, V>) -> V {
        if let Some((entry, _)) = stored.lost {
            Counters::add(&self.counters.discarded, 1);
            self.released(entry.stamp.weight());
        }
        self.released(weight_of(&stored.removed));
        self.settle(stored.removed);
        stored.value
    }

    /// Counts removed entries by cause, tells the listener, and drops them. Runs with
    /// no lock held; their weight was given back as they were removed (see
    /// [`Self::released`]).
    #[inline]
    fn settle(&self, removed: Removed<T, A, V>) {
        if !removed.is_empty() {
            self.settle_some(removed);
        }
    }

    #[inline(never)]
    fn settle_some(&self, removed: Removed<T, A, V>) {
        for (_, cause) in &removed {
            Counters::add(self.counters.of(*cause), 1);
        }
        if let Some(listener) = self.shared.listener.get() {
            for (entry, cause) in &removed {
                let removal = Removal {
                    cause: *cause,
                    table: self.table,
                    name: self.name,
                    args: &entry.args,
                    value: &entry.value,
                };
                tell(&listener, &removal);
            }
        }
    }

    /// Gives `weight` back to the bound, if the method has one: that of entries as they
    /// are removed (so that an eviction loop sees the room it made), or of a
    /// reservation not used.
    fn released(&self, weight: usize) {
        if let Some(bound) = self.bound.get() {
            bound.release(weight);
        }
    }

    /// Whether a newcomer of `hash` and `weight` may be stored: not if a TTL of 0 or a
    /// weight over a bound (the method's or the registry's) keeps it out; else always
    /// without a bound, and with one if there is room, or room was made by evicting
    /// victims it beats (see [`crate::bound`]). Takes no shard lock but one at a time,
    /// and none is held on entry, so it must run before the newcomer's shard is locked.
    #[inline]
    fn admit(&self, hash: u64, weight: usize, removed: &mut Removed<T, A, V>) -> bool {
        if !self.storable(weight) {
            return false;
        }
        match self.bound.get() {
            None => true,
            Some(bound) => self.admit_within(bound, hash, weight, removed),
        }
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
        removed: &mut Removed<T, A, V>,
    ) -> bool {
        bound.sketch.add(hash);
        let mut admitted = true;
        if bound.reserve(weight) {
            // The first victim must lose to the newcomer; a heavy newcomer may need more.
            admitted = self.evict_for(bound, Some(hash), removed);
            while admitted && bound.is_over() && self.evict_for(bound, None, removed) {}
        }
        if !admitted {
            bound.release(weight);
        }
        // A lowered bound is met by taking one more entry per miss.
        if bound.is_over() {
            self.evict_for(bound, None, removed);
        }
        admitted
    }

    /// Restores the bound after a store it did not admit: counts the entry, and takes
    /// some out.
    fn overfilled(&self, weight: usize, removed: &mut Removed<T, A, V>) {
        if let Some(bound) = self.bound.get() {
            bound.reserve(weight);
            while bound.is_over() && self.evict_for(bound, None, removed) {}
        }
    }

    /// Counts a newcomer the bound kept out.
    fn count_refused(&self) {
        Counters::add(&self.counters.evicted, 1);
    }

    /// Moves the CLOCK hand to free room for a newcomer of `hash` (or, with `None`, for
    /// one stored already), pushing what it removes onto `removed`: a dead owner's or an
    /// expired entry goes at once; an entry hit since the hand last passed has its count
    /// lowered; the first at 0 is the victim, unless a dead owner's or expired entry
    /// within 64 buckets goes in its place, and is evicted if the sketch has seen the
    /// newcomer more often. False if nothing was freed: the newcomer lost, or the hand
    /// found nothing to take in five laps (every entry is being removed meanwhile, or
    /// the bound is 0).
    fn evict_for(&self, bound: &Bound, hash: Option<u64>, removed: &mut Removed<T, A, V>) -> bool {
        let mut hand = bound.hand.lock();
        let clock = self.expiry.clock();
        let mut laps = 0;
        loop {
            let shard = &self.shards[hand.shard];
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
                bound.release(victim.stamp.weight());
                removed.push((victim, cause));
                return true;
            }
            drop(tables);
            hand.bucket = 0;
            hand.shard += 1;
            if hand.shard == self.shards.len() {
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
            let bound = Bound::new(capacity, capacity.min(registry));
            // Entries stored before the bound count against it.
            bound.reserve_stored(self.stored_weight());
            bound
        })
    }

    /// The weight of the entries stored now.
    fn stored_weight(&self) -> usize {
        let shards = self.shards.iter();
        shards
            .map(|shard| {
                let tables = Scoped::lock(|| shard.tables.read());
                tables
                    .ready
                    .iter()
                    .map(|entry| entry.stamp.weight())
                    .sum::<usize>()
            })
            .sum()
    }

    /// Counts a caller that waited for another thread's computation of `key`.
    pub(crate) fn count_wait(&self) {
        Counters::add(&self.counters.waited, 1);
    }

    /// Stores the value of a key this caller claimed, and wakes its waiters. `copy` is
    /// the clone to store and `weight` its weight, both made by the caller while it
    /// could still abandon the key.
    pub(crate) fn complete(
        &self,
        key: Key,
        owner: &Arc<T>,
        slot: ArgSlot<A>,
        (value, copy): (V, V),
        weight: usize,
    ) -> V {
        let shard = self.shard(key.hash);
        let owner = Arc::downgrade(owner);
        let mut removed = Removed::new();
        // Decided before the shard is locked: eviction locks shards one at a time.
        let admitted = self.admit(key.hash, weight, &mut removed);
        let stamp = Stamp::new(self.expiry.stamp(), weight.min(MAX_WEIGHT));
        let forced;
        // Ended before the write lock is released, so that a lookup sees the key either
        // pending or stored; waiters are woken however the rest goes.
        let mut finished = FinishOnDrop(None);
        let stored = {
            let mut tables = Scoped::lock(|| shard.tables.write());
            let Tables { ready, in_flight } = &mut *tables;
            let (flight, args) = in_flight.get_mut().end(slot);
            // Callers wait for this value: a newcomer the bound refused is stored all the
            // same, so that they receive it rather than compute it again, and the bound
            // is restored once the lock is released. Not one that can never be stored,
            // though: they compute it again.
            forced = !admitted && flight.is_some() && self.storable(weight);
            finished.0 = flight;
            let entry = Entry::new(key, owner, args, copy, stamp);
            if !admitted && !forced {
                drop(tables);
                drop(finished);
                drop(entry);
                self.count_refused();
                self.settle(removed);
                return value;
            }
            // Only a registry whose single flight was turned off meanwhile can have
            // stored this key meanwhile; the first value stays.
            store(ready, key, entry, value, self.expiry.clock())
        };
        drop(finished);
        if forced {
            self.overfilled(weight, &mut removed);
        }
        self.settle(removed);
        self.count_stored(stored)
    }

    /// Keys pending in every shard.
    #[cfg(all(test, feature = "shuttle"))]
    pub(crate) fn pending(&self) -> usize {
        let shards = self.shards.iter();
        shards
            .map(|shard| shard.tables.read().in_flight.lock().pending.len())
            .sum()
    }

    /// Gives up a key this caller claimed (its method panicked or failed): the key is
    /// absent again, and its waiters wake to claim it themselves.
    pub(crate) fn abandon(&self, key: Key, slot: ArgSlot<A>) {
        let shard = self.shard(key.hash);
        let (flight, args) = Scoped::lock(|| shard.tables.write())
            .in_flight
            .get_mut()
            .end(slot);
        let _finished = FinishOnDrop(flight);
        drop(args);
    }

    /// Removes the entries `doomed` picks, shard by shard, with their causes.
    fn remove_where(&self, doomed: impl Fn(&Entry<T, A, V>) -> Option<RemovalCause>) -> usize {
        let mut count = 0;
        for shard in &self.shards {
            let removed: Removed<T, A, V> = {
                let mut tables = Scoped::lock(|| shard.tables.write());
                let table = &mut tables.ready;
                let removed = table
                    .extract_if(|entry| doomed(entry).is_some())
                    .map(|entry| {
                        let cause = doomed(&entry).unwrap_or(RemovalCause::Collected);
                        (entry, cause)
                    })
                    .collect();
                // Give memory back after a burst, with slack so that purges do not
                // shrink and regrow a table again and again.
                let live = table.len();
                if live * 4 < table.capacity() {
                    table.shrink_to(live * 2, Entry::hash);
                }
                removed
            };
            count += removed.len();
            self.released(weight_of(&removed));
            self.settle(removed);
        }
        count
    }
}

/// What [`store`] did; dropped after unlocking, with the entries it removed.
struct Stored<T: ?Sized, A, V> {
    /// The value stored for the key: the caller's, or the first if it was there.
    value: V,
    /// The caller's entry and value, if the key was stored already.
    lost: Option<(Entry<T, A, V>, V)>,
    /// Dead owners' and expired entries removed to make room, or replaced.
    removed: Removed<T, A, V>,
}

/// Stores `entry` unless its key is stored already and unexpired, in which case the
/// first value stays and is returned, so that every caller of one key sees one value.
fn store<T: ?Sized, A: Eq, V: Clone>(
    ready: &mut HashTable<Entry<T, A, V>>,
    key: Key,
    entry: Entry<T, A, V>,
    value: V,
    clock: Option<Clock>,
) -> Stored<T, A, V> {
    let mut removed = make_room(ready, clock);
    // One probe finds the first entry or the free slot.
    match ready.entry(
        key.hash,
        |stored| stored.matches(key, &entry.args),
        Entry::hash,
    ) {
        Slot::Occupied(mut first) if first.get().is_expired(clock) => {
            removed.push((mem::replace(first.get_mut(), entry), RemovalCause::Expired));
            Stored {
                value,
                lost: None,
                removed,
            }
        }
        Slot::Occupied(first) => Stored {
            value: first.get().value.clone(),
            lost: Some((entry, value)),
            removed,
        },
        Slot::Vacant(slot) => {
            slot.insert(entry);
            Stored {
                value,
                lost: None,
                removed,
            }
        }
    }
}

fn weight_of<T: ?Sized, A, V>(removed: &Removed<T, A, V>) -> usize {
    removed.iter().map(|(entry, _)| entry.stamp.weight()).sum()
}

/// Finishes a flight when dropped, so that waiters wake even if what follows panics.
struct FinishOnDrop(Option<Arc<Flight>>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let Some(flight) = self.0.take() {
            flight.finish();
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
fn make_room<T: ?Sized, A: Eq, V>(
    table: &mut HashTable<Entry<T, A, V>>,
    clock: Option<Clock>,
) -> Removed<T, A, V> {
    if table.len() < table.capacity() {
        return Removed::new();
    }
    let removed = table
        .extract_if(|entry| entry.stale(clock).is_some())
        .map(|entry| {
            let cause = entry.stale(clock).unwrap_or(RemovalCause::Collected);
            (entry, cause)
        })
        .collect();
    let mut rebuilt = HashTable::with_capacity((2 * table.len()).max(3));
    for entry in table.drain() {
        rebuilt.insert_unique(entry.hash(), entry, Entry::hash);
    }
    *table = rebuilt;
    removed
}

impl<T, A, V> ErasedCache for MethodCache<T, A, V>
where
    T: ?Sized + Send + Sync + 'static,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn sweep_step(&self, shard: usize, from: usize, budget: usize) -> SweepStep {
        let shard = &self.shards[shard];
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
        let mut removed = Removed::new();
        if !stale_at.is_empty() {
            let mut tables = Scoped::lock(|| shard.tables.write());
            let table = &mut tables.ready;
            for index in stale_at {
                // The table may have changed in between: check again before removing.
                if let Ok(entry) = table.get_bucket_entry(index) {
                    if let Some(cause) = entry.get().stale(clock) {
                        removed.push((entry.remove().0, cause));
                    }
                }
            }
        }
        self.released(weight_of(&removed));
        self.settle(removed);
        SweepStep {
            visited: end.saturating_sub(from),
            next: (end < buckets).then_some(end),
        }
    }

    fn purge(&self) -> usize {
        let clock = self.expiry.clock();
        self.remove_where(|entry| entry.stale(clock))
    }

    fn remove(&self, addr: usize, args: &dyn Any) -> bool {
        let Some(args) = args.downcast_ref::<A>() else {
            return false;
        };
        let hash = self.hasher.hash_one((addr, args)) & !VISITS;
        let key = Key { hash, addr };
        let shard = self.shard(hash);
        let removed: Removed<T, A, V> = {
            let mut tables = Scoped::lock(|| shard.tables.write());
            match tables
                .ready
                .find_entry(hash, |entry| entry.matches(key, args))
            {
                Ok(entry) => vec![(entry.remove().0, RemovalCause::Explicit)],
                Err(_) => Vec::new(),
            }
        };
        let found = !removed.is_empty();
        self.released(weight_of(&removed));
        self.settle(removed);
        found
    }

    fn remove_owner(&self, addr: usize) -> usize {
        self.remove_where(|entry| entry.belongs_to(addr).then_some(RemovalCause::Explicit))
    }

    fn clear(&self) -> usize {
        self.remove_where(|_| Some(RemovalCause::Explicit))
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
        self.bound.get().map_or(0, Bound::len)
    }

    fn evict_one(&self) -> bool {
        let Some(bound) = self.bound.get() else {
            return false;
        };
        let mut removed = Removed::new();
        let evicted = self.evict_for(bound, None, &mut removed);
        self.settle(removed);
        evicted
    }

    fn set_ttl(&self, own: Option<u64>, inherited: u64) {
        self.expiry.set_own(own, inherited);
    }

    fn inherit_ttl(&self, ttl: u64) {
        self.expiry.inherit(ttl);
    }

    fn add_stats(&self, stats: &mut Stats) {
        for shard in &self.shards {
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
        assert_eq!(size_of::<Shard<u8, u64, u64>>(), 128);
        assert_eq!(size_of::<Shard<dyn Send + Sync, String, Vec<u8>>>(), 128);
    }

    /// The visit count lives in the hash word, the weight beside the birth time: an
    /// entry is its key, owner, arguments, value and one word more.
    #[test]
    fn an_entry_has_no_room_for_anything_else() {
        assert_eq!(size_of::<Entry<u64, u64, u64>>(), 40);
    }
}
