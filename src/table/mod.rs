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

use std::any::TypeId;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use hashbrown::DefaultHashBuilder;

pub(crate) mod bound;
mod entry;
mod erased;
pub(crate) mod expiry;
mod removals;
mod shard;
pub(crate) mod single_flight;
mod store;
mod window;

pub(crate) use self::entry::{Key, KeyOf};
pub(crate) use self::erased::ErasedCache;
pub(crate) use self::removals::{Deferred, resume};
pub(crate) use self::shard::{Miss, Probe};

use self::entry::POLICY_BITS;
use self::removals::Removals;
use self::shard::{Counters, Lookups, Shard, Tables};
use crate::sync::{STRIPES, stripe};

use self::bound::Bound;
use self::expiry::Expiry;
use self::single_flight::in_flight::{ArgSlot, Claim, Claimed, FinishOnDrop, Found};
use self::single_flight::waits::Caller;
use crate::lock_scope::Scoped;
use crate::lookup::Lookup;
use crate::owners::{Owners, SharedHeld};
use crate::removal::RemovalCause;
use crate::shared::Shared;
use crate::sync::Mutex;

/// A function giving an entry's weight.
pub(crate) type Weigher<A, V> = Arc<dyn Fn(&A, &V) -> u32 + Send + Sync>;

/// One method's table: its shards of entries and keys in flight, its counters, bound,
/// TTL and weigher.
pub(crate) struct MethodCache<H: SharedHeld, A, V> {
    hasher: DefaultHashBuilder,
    /// Made at the first lookup, as many as the bound then asks for (see
    /// [`MethodCache::shards`]).
    shards: OnceLock<Box<[Shard<H, A, V>]>>,
    /// The registry's shard count: the most a table has.
    max_shards: usize,
    counters: Counters,
    /// Lookups, counted per stripe of threads (see [`shard::Lookups`]).
    lookups: Box<[Lookups]>,
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
    /// The table's identity in its registry's directory (see [`crate::identity`]).
    id: TypeId,
    /// The method's identity and name, for the removal listener and panic messages.
    method: TypeId,
    name: &'static str,
}

/// What a table is made with: its identity and settings, all in place before the table
/// is published to other threads (see `Registry::table`).
pub(crate) struct Setup {
    /// The most shards the table may have, a power of two.
    pub(crate) max_shards: usize,
    pub(crate) id: TypeId,
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
            id: TypeId::of::<()>(),
            method: TypeId::of::<()>(),
            name: "test",
            shared: Arc::new(Shared::new(u64::MAX)),
            capacity: usize::MAX,
            ttl: (None, expiry::ttl_ms(None)),
        }
    }
}

/// The shard of `hash` among `count`, a power of two: hashbrown places by a hash's low
/// bits and tags by its top seven, so the shard takes the middle ones.
#[inline]
fn shard_index(hash: u64, count: usize) -> usize {
    (hash >> 32) as usize & (count - 1)
}

impl<H: SharedHeld, A, V> MethodCache<H, A, V> {
    #[inline]
    fn shard(&self, hash: u64) -> &Shard<H, A, V> {
        let shards = self.shards();
        &shards[shard_index(hash, shards.len())]
    }

    /// The shard of `hash`, if the shards are made.
    fn shard_of(&self, hash: u64) -> Option<&Shard<H, A, V>> {
        let shards = self.made_shards();
        (!shards.is_empty()).then(|| &shards[shard_index(hash, shards.len())])
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

    /// The table's identity in its registry's directory.
    pub(crate) fn id(&self) -> TypeId {
        self.id
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
    H: SharedHeld,
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
            lookups: (0..STRIPES).map(|_| Lookups::default()).collect(),
            held: AtomicUsize::new(0),
            bound: OnceLock::new(),
            expiry: Expiry::new(),
            weighed: AtomicBool::new(false),
            weigher: Mutex::new(None),
            shared: setup.shared,
            id: setup.id,
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
            hash: self.hasher.hash_one((addrs, args)) & !POLICY_BITS,
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
        // One thread-local read serves the reader slot and the counters.
        let stripe = stripe();
        let found = shard.find(key, args, &self.expiry, stripe);
        let purge_due = self.lookups[stripe].count(found.is_ok(), purge_interval);
        Probe { found, purge_due }
    }

    /// Looks the key up again, uncounted: for a caller that has waited for it.
    pub(crate) fn find<Q: Lookup<A>>(
        &self,
        key: KeyOf<H>,
        args: &Q,
    ) -> Result<V, Miss<'_, H, A, V>> {
        self.shard(key.hash).find(key, args, &self.expiry, stripe())
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
}

#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use super::*;
    use crate::table::entry::Entry;

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
