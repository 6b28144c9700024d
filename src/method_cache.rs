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

use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::RwLock;

use crate::identity::{owner_addr, weak_addr};
use crate::lock_scope::Scoped;
use crate::stats::Stats;

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
    table: RwLock<HashTable<Entry<T, A, V>>>,
    /// Counted with a plain load and store, not a locked add: a hit then writes only the
    /// line its lock already owns, at the price of losing increments under contention.
    hits: AtomicU64,
    /// Lookups left before this shard triggers a lazy purge step; racy like `hits`.
    until_purge: AtomicUsize,
    misses: AtomicU64,
    purged: AtomicU64,
    invalidated: AtomicU64,
    discarded: AtomicU64,
}

impl<T: ?Sized, A, V> Default for Shard<T, A, V> {
    fn default() -> Self {
        Self {
            table: RwLock::new(HashTable::new()),
            hits: AtomicU64::new(0),
            until_purge: AtomicUsize::new(0),
            misses: AtomicU64::new(0),
            purged: AtomicU64::new(0),
            invalidated: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
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
        let value = Scoped::lock(|| shard.table.read())
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
            let mut table = Scoped::lock(|| shard.table.write());
            if let Some(first) = table.find(key.hash, |stored| stored.matches(key, &entry.args)) {
                (first.value.clone(), Some((entry, value)), Vec::new())
            } else {
                let swept = make_room(&mut table);
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
            let table = Scoped::lock(|| shard.table.read());
            let buckets = table.num_buckets();
            let end = buckets.min(from.saturating_add(budget));
            let dead_at: Vec<usize> = (from..end)
                .filter(|&index| table.get_bucket(index).is_some_and(Entry::is_dead))
                .collect();
            (end, buckets, dead_at)
        };
        let mut removed = Vec::new();
        if !dead_at.is_empty() {
            let mut table = Scoped::lock(|| shard.table.write());
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
                let mut table = Scoped::lock(|| shard.table.write());
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
            let mut table = Scoped::lock(|| shard.table.write());
            match table.find_entry(hash, |entry| entry.matches(key, args)) {
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
            let removed: Vec<_> = Scoped::lock(|| shard.table.write())
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
            let removed = mem::take(&mut *Scoped::lock(|| shard.table.write()));
            shard.invalidated.fetch_add(removed.len() as u64, Relaxed);
            count += removed.len();
        }
        count
    }

    fn add_stats(&self, stats: &mut Stats) {
        for shard in &self.shards {
            stats.hits += shard.hits.load(Relaxed);
            stats.misses += shard.misses.load(Relaxed);
            stats.entries += Scoped::lock(|| shard.table.read()).len();
            stats.purged += shard.purged.load(Relaxed);
            stats.invalidated += shard.invalidated.load(Relaxed);
            stats.discarded += shard.discarded.load(Relaxed);
        }
        stats.methods += 1;
    }
}
