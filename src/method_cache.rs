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
//! - User code that runs under a shard lock is limited to `A: Eq` and `V: Clone`; every
//!   removed entry (and with it `A`, `V` and the `Weak`) is dropped after the lock is
//!   released, so a `Drop` impl may use the registry.

use std::any::Any;
use std::hash::{BuildHasher, Hash};
use std::mem;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};

use hashbrown::hash_table::Entry as Slot;
use hashbrown::{DefaultHashBuilder, HashTable};

use crate::bound::Bound;
use crate::flight::Flight;
use crate::identity::{owner_addr, weak_addr};
use crate::lock_scope::Scoped;
use crate::stats::Stats;
use crate::sync::{Mutex, RwLock, RwLockReadGuard};
use crate::waits::Token;

/// The operations the registry runs over every method, whatever its types.
pub(crate) trait ErasedCache: Any + Send + Sync {
    fn shard_count(&self) -> usize;
    /// Removes dead owners' entries among `budget` buckets of one shard from `from` on.
    fn sweep_step(&self, shard: usize, from: usize, budget: usize) -> SweepStep;
    /// Removes every dead owner's entry; returns how many.
    fn purge(&self) -> usize;
    /// Removes the entry of (owner at `addr`, `args`), if `args` has this method's type.
    fn remove(&self, addr: usize, args: &dyn Any) -> bool;
    /// Removes every entry of the owner at `addr`.
    fn remove_owner(&self, addr: usize) -> usize;
    /// Removes every entry.
    fn clear(&self) -> usize;
    fn add_stats(&self, stats: &mut Stats);
    /// Bounds the method's entries (`usize::MAX`: no bound).
    fn set_capacity(&self, capacity: usize);
}

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
}

/// The bits of an entry's hash word that count hits since the CLOCK hand last passed, at
/// most 3 (see [`crate::bound`]). No index uses them: hashbrown takes a hash's low bits
/// and its top seven, shards bits 32 to 41; every [`Key`] has them clear. Kept in the
/// hash word so that counting costs an entry no bytes (a small entry would grow by a
/// quarter, which a table of a million entries measurably pays on every hit).
const VISITS: u64 = 0b11 << 48;
const ONE_VISIT: u64 = 1 << 48;

impl<T: ?Sized, A: Eq, V> Entry<T, A, V> {
    fn new(key: Key, owner: Weak<T>, args: A, value: V) -> Self {
        Self {
            word: AtomicU64::new(key.hash),
            owner,
            args,
            value,
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
    fn find(&self, key: Key, args: &A) -> Result<V, Miss<'_, T, A, V>> {
        let tables = Scoped::lock(|| self.tables.read());
        match tables
            .ready
            .find(key.hash, |entry| entry.matches(key, args))
        {
            Some(entry) => {
                entry.visit();
                Ok(entry.value.clone())
            }
            None => Err(Miss { tables }),
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
}

impl Counters {
    fn add(counter: &AtomicU64, count: usize) {
        if count > 0 {
            counter.fetch_add(count as u64, Relaxed);
        }
    }
}

pub(crate) struct MethodCache<T: ?Sized, A, V> {
    hasher: DefaultHashBuilder,
    shards: Box<[Shard<T, A, V>]>,
    counters: Counters,
    /// Set once the method is given a bound; never unset (a bound of `usize::MAX` is
    /// none).
    bound: OnceLock<Bound>,
}

impl<T, A, V> MethodCache<T, A, V>
where
    T: ?Sized + Send + Sync + 'static,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `shards` must be a power of two.
    pub(crate) fn new(shards: usize) -> Self {
        debug_assert!(shards.is_power_of_two());
        Self {
            hasher: DefaultHashBuilder::default(),
            shards: (0..shards).map(|_| Shard::default()).collect(),
            counters: Counters::default(),
            bound: OnceLock::new(),
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
        let found = shard.find(key, args);
        let purge_due = shard.count_lookup(found.is_ok(), purge_interval);
        Lookup { found, purge_due }
    }

    /// Looks the key up again, uncounted: for a caller that has waited for it.
    pub(crate) fn find(&self, key: Key, args: &A) -> Result<V, Miss<'_, T, A, V>> {
        self.shard(key.hash).find(key, args)
    }

    /// Stores `value` for the key unless another caller stored it first; returns the
    /// value that is stored, so that every caller of one key sees one value.
    pub(crate) fn insert(&self, key: Key, owner: &Arc<T>, args: A, value: V) -> V {
        if !self.admit(key.hash) {
            self.count_refused();
            return value;
        }
        let entry = Entry::new(key, Arc::downgrade(owner), args, value.clone());
        let shard = self.shard(key.hash);
        let stored = store(
            &mut Scoped::lock(|| shard.tables.write()).ready,
            key,
            entry,
            value,
        );
        self.count_stored(stored)
    }

    /// Counts what [`store`] did, and drops what it removed, now that no lock is held.
    fn count_stored(&self, stored: Stored<T, A, V>) -> V {
        let lost = usize::from(stored.lost.is_some());
        Counters::add(&self.counters.discarded, lost);
        Counters::add(&self.counters.purged, stored.swept.len());
        self.released(lost + stored.swept.len());
        stored.value
    }

    /// Gives `count` removed entries' room back to the bound, if the method has one.
    fn released(&self, count: usize) {
        if let Some(bound) = self.bound.get() {
            bound.release(count);
        }
    }

    /// Whether a newcomer of `hash` may be stored: always, without a bound; else if
    /// there is room, or room was made by evicting a victim it beats (see
    /// [`crate::bound`]). Takes no shard lock but one at a time, and none is held on
    /// entry, so it must run before the newcomer's shard is locked.
    fn admit(&self, hash: u64) -> bool {
        let Some(bound) = self.bound.get() else {
            return true;
        };
        bound.sketch.add(hash);
        let admitted = !bound.reserve() || self.evict_for(bound, Some(hash));
        if !admitted {
            bound.release(1);
        }
        // A lowered bound is met by taking one more entry per miss.
        if bound.is_over() {
            self.evict_for(bound, None);
        }
        admitted
    }

    /// Restores the bound after a store it did not admit: counts the entry, and takes
    /// one out.
    fn overfilled(&self) {
        if let Some(bound) = self.bound.get() {
            bound.reserve();
            self.evict_for(bound, None);
        }
    }

    /// Counts a newcomer the bound kept out.
    fn count_refused(&self) {
        Counters::add(&self.counters.evicted, 1);
    }

    /// Moves the CLOCK hand to free one entry's room for a newcomer of `hash` (or, with
    /// `None`, for one stored already): a dead owner's entry goes at once; an entry hit
    /// since the hand last passed has its count lowered; the first at 0 is the victim,
    /// evicted if the sketch has seen the newcomer more often. False if nothing was
    /// freed: the newcomer lost, or the hand found nothing to take in five laps (every
    /// entry is being removed meanwhile, or the bound is 0).
    fn evict_for(&self, bound: &Bound, hash: Option<u64>) -> bool {
        let mut hand = bound.hand.lock();
        let mut laps = 0;
        loop {
            let shard = &self.shards[hand.shard];
            let mut removed = None;
            let outcome = {
                let mut tables = Scoped::lock(|| shard.tables.write());
                let table = &mut tables.ready;
                let mut outcome = None;
                while hand.bucket < table.num_buckets() {
                    let Ok(entry) = table.get_bucket_entry(hand.bucket) else {
                        hand.bucket += 1;
                        continue;
                    };
                    let candidate = entry.get();
                    if !candidate.is_dead() && candidate.visits() > 0 {
                        candidate.unvisit();
                        hand.bucket += 1;
                        continue;
                    }
                    let loses = |hash| {
                        bound.sketch.estimate(hash) <= bound.sketch.estimate(candidate.hash())
                    };
                    if !candidate.is_dead() && hash.is_some_and(loses) {
                        // The hand stays on the victim, which meets the next newcomer.
                        // A dead owner's entry close by is free room all the same.
                        let buckets = table.num_buckets();
                        let dead = (1..buckets.min(65))
                            .map(|step| (hand.bucket + step) % buckets)
                            .find(|&index| table.get_bucket(index).is_some_and(Entry::is_dead));
                        if let Some(Ok(entry)) = dead.map(|index| table.get_bucket_entry(index)) {
                            removed = Some((entry.remove().0, true));
                            outcome = Some(true);
                        } else {
                            outcome = Some(false);
                        }
                        break;
                    }
                    let dead = candidate.is_dead();
                    removed = Some((entry.remove().0, dead));
                    hand.bucket += 1;
                    outcome = Some(true);
                    break;
                }
                outcome
            };
            if let Some((entry, dead)) = removed {
                bound.release(1);
                let cause = if dead {
                    &self.counters.purged
                } else {
                    &self.counters.evicted
                };
                Counters::add(cause, 1);
                drop(entry);
            }
            if let Some(admitted) = outcome {
                return admitted;
            }
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

    fn len(&self) -> usize {
        let shards = self.shards.iter();
        shards
            .map(|shard| Scoped::lock(|| shard.tables.read()).ready.len())
            .sum()
    }

    /// Counts a caller that waited for another thread's computation of `key`.
    pub(crate) fn count_wait(&self) {
        Counters::add(&self.counters.waited, 1);
    }

    /// Stores the value of a key this caller claimed, and wakes its waiters. `copy` is
    /// the clone to store, made by the caller while it could still abandon the key.
    pub(crate) fn complete(
        &self,
        key: Key,
        owner: &Arc<T>,
        slot: ArgSlot<A>,
        value: V,
        copy: V,
    ) -> V {
        let shard = self.shard(key.hash);
        let owner = Arc::downgrade(owner);
        // Decided before the shard is locked: eviction locks shards one at a time.
        let admitted = self.admit(key.hash);
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
            // is restored once the lock is released.
            forced = !admitted && flight.is_some();
            finished.0 = flight;
            let entry = Entry::new(key, owner, args, copy);
            if !admitted && !forced {
                drop(tables);
                drop(finished);
                drop(entry);
                self.count_refused();
                return value;
            }
            // Only a registry whose single flight was turned off meanwhile can have
            // stored this key meanwhile; the first value stays.
            store(ready, key, entry, value)
        };
        drop(finished);
        if forced {
            self.overfilled();
        }
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
}

/// What [`store`] did; dropped after unlocking, with the entries it removed.
struct Stored<T: ?Sized, A, V> {
    /// The value stored for the key: the caller's, or the first if it was there.
    value: V,
    /// The caller's entry and value, if the key was stored already.
    lost: Option<(Entry<T, A, V>, V)>,
    /// Dead owners' entries removed to make room.
    swept: Vec<Entry<T, A, V>>,
}

/// Stores `entry` unless its key is stored already, in which case the first value stays
/// and is returned, so that every caller of one key sees one value.
fn store<T: ?Sized, A: Eq, V: Clone>(
    ready: &mut HashTable<Entry<T, A, V>>,
    key: Key,
    entry: Entry<T, A, V>,
    value: V,
) -> Stored<T, A, V> {
    let swept = make_room(ready);
    // One probe finds the first entry or the free slot.
    match ready.entry(
        key.hash,
        |stored| stored.matches(key, &entry.args),
        Entry::hash,
    ) {
        Slot::Occupied(first) => Stored {
            value: first.get().value.clone(),
            lost: Some((entry, value)),
            swept,
        },
        Slot::Vacant(slot) => {
            slot.insert(entry);
            Stored {
                value,
                lost: None,
                swept,
            }
        }
    }
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

/// When a table is full, remove its dead owners' entries and rebuild it with room for as
/// many new entries as it has live ones: twice the live entries, which hashbrown rounds
/// up to its next size (with no dead entries, that is exactly its usual doubling).
///
/// The rebuild, rather than hashbrown's own growth, is what bounds memory: entries that
/// `extract_if` removes mostly become tombstones, which give no room back, and hashbrown
/// grows a table that is full of tombstones unless it is under half full. A rebuild has
/// none. Its cost, O(buckets), is paid by the at least `live` inserts (3 if none) the previous
/// rebuild made room for, so inserts stay amortized O(1); and a table never holds more
/// than `4 × live` entries (or 3), `live` counted at its last rebuild.
fn make_room<T: ?Sized, A: Eq, V>(table: &mut HashTable<Entry<T, A, V>>) -> Vec<Entry<T, A, V>> {
    if table.len() < table.capacity() {
        return Vec::new();
    }
    let dead: Vec<_> = table.extract_if(|entry| entry.is_dead()).collect();
    let mut rebuilt = HashTable::with_capacity((2 * table.len()).max(3));
    for entry in table.drain() {
        rebuilt.insert_unique(entry.hash(), entry, Entry::hash);
    }
    *table = rebuilt;
    dead
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
        // Look under the read lock, so hits go on; write-lock only to remove.
        let (end, buckets, dead_at) = {
            let tables = Scoped::lock(|| shard.tables.read());
            let table = &tables.ready;
            let buckets = table.num_buckets();
            let end = buckets.min(from.saturating_add(budget));
            let dead_at: Vec<usize> = (from..end)
                .filter(|&index| table.get_bucket(index).is_some_and(Entry::is_dead))
                .collect();
            (end, buckets, dead_at)
        };
        let mut removed = Vec::new();
        if !dead_at.is_empty() {
            let mut tables = Scoped::lock(|| shard.tables.write());
            let table = &mut tables.ready;
            for index in dead_at {
                // The table may have changed in between: check again before removing.
                if let Ok(entry) = table.get_bucket_entry(index) {
                    if entry.get().is_dead() {
                        removed.push(entry.remove().0);
                    }
                }
            }
        }
        Counters::add(&self.counters.purged, removed.len());
        self.released(removed.len());
        SweepStep {
            visited: end.saturating_sub(from),
            next: (end < buckets).then_some(end),
        }
    }

    fn purge(&self) -> usize {
        let mut purged = 0;
        for shard in &self.shards {
            let dead: Vec<_> = {
                let mut tables = Scoped::lock(|| shard.tables.write());
                let table = &mut tables.ready;
                let dead = table.extract_if(|entry| entry.is_dead()).collect();
                // Give memory back after a burst, with slack so that purges do not
                // shrink and regrow a table again and again.
                let live = table.len();
                if live * 4 < table.capacity() {
                    table.shrink_to(live * 2, Entry::hash);
                }
                dead
            };
            Counters::add(&self.counters.purged, dead.len());
            self.released(dead.len());
            purged += dead.len();
        }
        purged
    }

    fn remove(&self, addr: usize, args: &dyn Any) -> bool {
        let Some(args) = args.downcast_ref::<A>() else {
            return false;
        };
        let hash = self.hasher.hash_one((addr, args)) & !VISITS;
        let key = Key { hash, addr };
        let shard = self.shard(hash);
        let removed = {
            let mut tables = Scoped::lock(|| shard.tables.write());
            match tables
                .ready
                .find_entry(hash, |entry| entry.matches(key, args))
            {
                Ok(entry) => Some(entry.remove().0),
                Err(_) => None,
            }
        };
        Counters::add(&self.counters.invalidated, usize::from(removed.is_some()));
        self.released(usize::from(removed.is_some()));
        removed.is_some()
    }

    fn remove_owner(&self, addr: usize) -> usize {
        let mut count = 0;
        for shard in &self.shards {
            let removed: Vec<_> = Scoped::lock(|| shard.tables.write())
                .ready
                .extract_if(|entry| entry.belongs_to(addr))
                .collect();
            Counters::add(&self.counters.invalidated, removed.len());
            self.released(removed.len());
            count += removed.len();
        }
        count
    }

    fn clear(&self) -> usize {
        let mut count = 0;
        for shard in &self.shards {
            let removed = mem::take(&mut Scoped::lock(|| shard.tables.write()).ready);
            Counters::add(&self.counters.invalidated, removed.len());
            self.released(removed.len());
            count += removed.len();
        }
        count
    }

    /// Bounds the method to `capacity` entries (`usize::MAX`: no bound). Entries over a
    /// lowered bound leave as newcomers arrive, not at once.
    fn set_capacity(&self, capacity: usize) {
        // No bound yet and none asked for: nothing to allocate (the sketch is sized by
        // the first bound).
        if capacity == usize::MAX && self.bound.get().is_none() {
            return;
        }
        let bound = self.bound.get_or_init(|| {
            let bound = Bound::new(capacity);
            // Entries stored before the bound count against it.
            bound.reserve_stored(self.len());
            bound
        });
        bound.set_capacity(capacity);
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

    /// The visit count lives in the hash word: an entry is its key, owner, arguments and
    /// value, nothing more.
    #[test]
    fn an_entry_has_no_room_for_anything_else() {
        assert_eq!(size_of::<Entry<u64, u64, u64>>(), 32);
    }
}
