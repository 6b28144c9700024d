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
use std::sync::{Arc, Weak};

use crate::sync::RwLock;
use hashbrown::{DefaultHashBuilder, HashTable};

use crate::flight::Flight;
use crate::identity::{owner_addr, weak_addr};
use crate::lock_scope::Scoped;
use crate::stats::Stats;
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
}

/// What one [`ErasedCache::sweep_step`] did.
pub(crate) struct SweepStep {
    /// Buckets looked at.
    pub(crate) visited: usize,
    /// Where the next step on this shard starts, or `None` at the end of the shard.
    pub(crate) next: Option<usize>,
}

struct Entry<T: ?Sized, A, V> {
    /// Stored so that growing, shrinking and comparing never run the arguments' `Hash`.
    hash: u64,
    owner: Weak<T>,
    args: A,
    value: V,
}

impl<T: ?Sized, A: Eq, V> Entry<T, A, V> {
    fn is_dead(&self) -> bool {
        self.owner.strong_count() == 0
    }

    fn belongs_to(&self, addr: usize) -> bool {
        weak_addr(&self.owner) == addr
    }

    fn matches(&self, key: Key, args: &A) -> bool {
        self.hash == key.hash && self.belongs_to(key.addr) && self.args == *args
    }
}

/// A shard's entries: the stored results, and the keys being computed now.
struct Tables<T: ?Sized, A, V> {
    ready: HashTable<Entry<T, A, V>>,
    /// Usually empty; kept apart so that entries stay small and the hit path probes
    /// only stored results.
    pending: HashTable<Pending<A>>,
}

/// A key whose method is running now (see [`crate::flight`]).
struct Pending<A> {
    hash: u64,
    /// The owner's address; the computing caller holds a strong `Arc` to it until the
    /// entry leaves, so the address cannot be reused meanwhile.
    addr: usize,
    /// Shared with the computing caller, which borrows them for the method; waiters only
    /// compare them, under the lock, and never clone this `Arc`.
    args: Arc<A>,
    computer: Token,
    /// Made by the first waiter.
    flight: Option<Arc<Flight>>,
}

/// What a caller that missed must do about its key.
pub(crate) enum Claim<A, V> {
    /// Another caller stored it meanwhile.
    Ready(V),
    /// This caller computes it: run the method on these arguments, then `complete` or
    /// `abandon`.
    Compute(Arc<A>),
    /// Another thread computes it: wait for the flight, then claim again.
    Wait {
        args: A,
        flight: Arc<Flight>,
        computer: Token,
    },
    /// This thread computes it already, further up its stack.
    Recursive,
}

/// A call's key, computed once before any lock is taken.
#[derive(Clone, Copy)]
pub(crate) struct Key {
    hash: u64,
    addr: usize,
}

/// The result of a lookup, and whether this shard's turn at lazy purging has come.
pub(crate) struct Lookup<V> {
    pub(crate) value: Option<V>,
    pub(crate) purge_due: bool,
}

// Aligned to two cache lines (the unit x86 prefetches) so that hits on neighbouring
// shards from different cores do not share a line.
#[repr(align(128))]
struct Shard<T: ?Sized, A, V> {
    tables: RwLock<Tables<T, A, V>>,
    /// Counted with a plain load and store, not a locked add: a hit then writes only the
    /// line its lock already owns, at the price of losing increments under contention.
    hits: AtomicU64,
    /// Lookups left before this shard triggers a lazy purge step; racy like `hits`.
    until_purge: AtomicUsize,
    misses: AtomicU64,
    purged: AtomicU64,
    invalidated: AtomicU64,
    discarded: AtomicU64,
    waited: AtomicU64,
}

impl<T: ?Sized, A, V> Default for Shard<T, A, V> {
    fn default() -> Self {
        Self {
            tables: RwLock::new(Tables {
                ready: HashTable::new(),
                pending: HashTable::new(),
            }),
            hits: AtomicU64::new(0),
            until_purge: AtomicUsize::new(0),
            misses: AtomicU64::new(0),
            purged: AtomicU64::new(0),
            invalidated: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            waited: AtomicU64::new(0),
        }
    }
}

impl<T: ?Sized, A, V> Shard<T, A, V> {
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

pub(crate) struct MethodCache<T: ?Sized, A, V> {
    hasher: DefaultHashBuilder,
    shards: Box<[Shard<T, A, V>]>,
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
        }
    }

    #[inline]
    pub(crate) fn key(&self, owner: &Arc<T>, args: &A) -> Key {
        let addr = owner_addr(owner);
        Key {
            hash: self.hasher.hash_one((addr, args)),
            addr,
        }
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<T, A, V> {
        // hashbrown places by the low bits and tags by the top seven; use the middle.
        &self.shards[(hash >> 32) as usize & (self.shards.len() - 1)]
    }

    #[inline]
    pub(crate) fn get(&self, key: Key, args: &A, purge_interval: usize) -> Lookup<V> {
        let shard = self.shard(key.hash);
        let value = Scoped::lock(|| shard.tables.read())
            .ready
            .find(key.hash, |entry| entry.matches(key, args))
            .map(|entry| entry.value.clone());
        let purge_due = shard.count_lookup(value.is_some(), purge_interval);
        Lookup { value, purge_due }
    }

    /// Stores `value` for the key unless another caller stored it first; returns the
    /// value that is stored, so that every caller of one key sees one value.
    pub(crate) fn insert(&self, key: Key, owner: &Arc<T>, args: A, value: V) -> V {
        let shard = self.shard(key.hash);
        let entry = Entry {
            hash: key.hash,
            owner: Arc::downgrade(owner),
            args,
            value: value.clone(),
        };
        let (stored, lost, swept) = {
            let mut tables = Scoped::lock(|| shard.tables.write());
            let table = &mut tables.ready;
            if let Some(first) = table.find(key.hash, |stored| stored.matches(key, &entry.args)) {
                (first.value.clone(), Some((entry, value)), Vec::new())
            } else {
                let swept = make_room(table);
                table.insert_unique(key.hash, entry, |entry| entry.hash);
                (value, None, swept)
            }
        };
        if lost.is_some() {
            shard.discarded.fetch_add(1, Relaxed);
        }
        shard.purged.fetch_add(swept.len() as u64, Relaxed);
        stored
    }

    /// Decides, under the write lock, who computes a key that missed: this caller, if
    /// nobody is computing it (the key becomes pending); else it waits, unless its own
    /// thread is the computer.
    pub(crate) fn claim(&self, key: Key, owner: &Arc<T>, args: A, me: Token) -> Claim<A, V> {
        let shard = self.shard(key.hash);
        let args = {
            let mut tables = Scoped::lock(|| shard.tables.write());
            if let Some(stored) = tables
                .ready
                .find(key.hash, |entry| entry.matches(key, &args))
            {
                return Claim::Ready(stored.value.clone());
            }
            let found = tables.pending.find_mut(key.hash, |pending| {
                pending.hash == key.hash && pending.addr == key.addr && *pending.args == args
            });
            if let Some(pending) = found {
                if pending.computer == me {
                    return Claim::Recursive;
                }
                let flight = Arc::clone(pending.flight.get_or_insert_with(Arc::default));
                let computer = pending.computer;
                drop(tables);
                return Claim::Wait {
                    args,
                    flight,
                    computer,
                };
            }
            let args = Arc::new(args);
            let pending = Pending {
                hash: key.hash,
                addr: owner_addr(owner),
                args: Arc::clone(&args),
                computer: me,
                flight: None,
            };
            tables
                .pending
                .insert_unique(key.hash, pending, |pending| pending.hash);
            args
        };
        Claim::Compute(args)
    }

    /// Counts a caller that waited for another thread's computation of `key`.
    pub(crate) fn count_wait(&self, key: Key) {
        self.shard(key.hash).waited.fetch_add(1, Relaxed);
    }

    /// Stores the value of a key this caller claimed, and wakes its waiters. `copy` is
    /// the clone to store, made by the caller while it could still abandon the key.
    pub(crate) fn complete(&self, key: Key, owner: &Arc<T>, args: Arc<A>, value: V, copy: V) -> V {
        let shard = self.shard(key.hash);
        let owner = Arc::downgrade(owner);
        let mut finished = FinishOnDrop(None);
        let swept = {
            let mut tables = Scoped::lock(|| shard.tables.write());
            // First the pending entry, found by identity (no user code), so that waiters
            // are woken however the rest goes.
            let pending = take_pending(&mut tables.pending, key, &args);
            finished.0 = pending.flight;
            drop(pending.args);
            let args = Arc::try_unwrap(args)
                .unwrap_or_else(|_| unreachable!("waiters never keep a pending key's arguments"));
            let entry = Entry {
                hash: key.hash,
                owner,
                args,
                value: copy,
            };
            // Only a registry whose single flight was turned off meanwhile can have
            // stored this key meanwhile; the first value stays.
            let first = tables
                .ready
                .find(key.hash, |stored| stored.matches(key, &entry.args))
                .map(|first| first.value.clone());
            if let Some(first) = first {
                drop(tables);
                shard.discarded.fetch_add(1, Relaxed);
                drop((entry, value));
                return first;
            }
            let swept = make_room(&mut tables.ready);
            tables
                .ready
                .insert_unique(key.hash, entry, |entry| entry.hash);
            swept
        };
        shard.purged.fetch_add(swept.len() as u64, Relaxed);
        value
    }

    /// Gives up a key this caller claimed (its method panicked or failed): the key is
    /// absent again, and its waiters wake to claim it themselves.
    pub(crate) fn abandon(&self, key: Key, args: Arc<A>) {
        let shard = self.shard(key.hash);
        let pending = {
            let mut tables = Scoped::lock(|| shard.tables.write());
            take_pending(&mut tables.pending, key, &args)
        };
        let _finished = FinishOnDrop(pending.flight);
    }
}

/// Removes the pending entry that shares `args` (identity, not equality: no user code).
fn take_pending<A>(pending: &mut HashTable<Pending<A>>, key: Key, args: &Arc<A>) -> Pending<A> {
    match pending.find_entry(key.hash, |pending| Arc::ptr_eq(&pending.args, args)) {
        Ok(entry) => entry.remove().0,
        Err(_) => unreachable!("a claimed key stays pending until its caller ends it"),
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
        rebuilt.insert_unique(entry.hash, entry, |entry| entry.hash);
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
        shard.purged.fetch_add(removed.len() as u64, Relaxed);
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
                    table.shrink_to(live * 2, |entry| entry.hash);
                }
                dead
            };
            shard.purged.fetch_add(dead.len() as u64, Relaxed);
            purged += dead.len();
        }
        purged
    }

    fn remove(&self, addr: usize, args: &dyn Any) -> bool {
        let Some(args) = args.downcast_ref::<A>() else {
            return false;
        };
        let hash = self.hasher.hash_one((addr, args));
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
        shard
            .invalidated
            .fetch_add(u64::from(removed.is_some()), Relaxed);
        removed.is_some()
    }

    fn remove_owner(&self, addr: usize) -> usize {
        let mut count = 0;
        for shard in &self.shards {
            let removed: Vec<_> = Scoped::lock(|| shard.tables.write())
                .ready
                .extract_if(|entry| entry.belongs_to(addr))
                .collect();
            shard.invalidated.fetch_add(removed.len() as u64, Relaxed);
            count += removed.len();
        }
        count
    }

    fn clear(&self) -> usize {
        let mut count = 0;
        for shard in &self.shards {
            let removed = mem::take(&mut Scoped::lock(|| shard.tables.write()).ready);
            shard.invalidated.fetch_add(removed.len() as u64, Relaxed);
            count += removed.len();
        }
        count
    }

    fn add_stats(&self, stats: &mut Stats) {
        for shard in &self.shards {
            stats.hits += shard.hits.load(Relaxed);
            stats.misses += shard.misses.load(Relaxed);
            stats.entries += Scoped::lock(|| shard.tables.read()).ready.len();
            stats.purged += shard.purged.load(Relaxed);
            stats.invalidated += shard.invalidated.load(Relaxed);
            stats.discarded += shard.discarded.load(Relaxed);
            stats.waited += shard.waited.load(Relaxed);
        }
        stats.methods += 1;
    }
}
