//! The keys of a shard being computed now, and the claim a computing caller holds.
//!
//! A miss claims its key under the lookup's read lock (one claim at a time, by the
//! shard's in-flight mutex); the claim ends under the write lock, when the caller stores
//! its value ([`Claimed::complete`]) or gives the key up (dropping the [`Claimed`]: the
//! method panicked, failed or was cancelled). See [`crate::flight`] for the states.
//!
//! Invariants:
//! - A claim is guarded from the instant it is made: [`MethodCache::claim`] returns the
//!   [`Claimed`] guard itself, so no step between the claim and the computation (a lazy
//!   purge step, a wait-for record) can leave a key pending if it panics.
//! - A pending key is stale once an invalidation covering it has run: callers that come
//!   after the invalidation neither wait for it nor see it as their own, and its value
//!   is not stored. It still answers the callers that were waiting already.
//! - User code under the in-flight mutex is only the arguments' `Eq`; arguments are
//!   dropped by their callers after every lock is released.

use std::hash::Hash;
use std::sync::Arc;

use crate::lookup::Lookup;
use crate::owners::{Owners, SharedHeld};
use crate::table::single_flight::flight::Flight;
use crate::table::single_flight::waits::Token;
use crate::table::{Key, KeyOf, MethodCache};

/// The arguments of a key being computed: shared by the computing caller, which borrows
/// them for the method, and its pending entry, where waiters compare them (under the
/// in-flight lock, never cloning the `Arc`). Emptied when the claim ends and kept as the
/// shard's spare, so that a miss does not allocate.
pub(crate) type ArgSlot<A> = Arc<Option<A>>;

/// The keys of a shard whose method is running now.
pub(crate) struct InFlight<Ad, A, V> {
    /// Usually empty or nearly: a key stays here only while its method runs, so this
    /// holds at most one key per thread and level of cached recursion (and task). A
    /// `Vec` scanned by hash is cheaper than a hash table at that size.
    pending: Vec<Pending<Ad, A, V>>,
    /// An empty, unshared argument slot for the next claim.
    spare: Option<ArgSlot<A>>,
}

pub(crate) struct Pending<Ad, A, V> {
    hash: u64,
    /// The owners' addresses; the computing caller holds a strong `Arc` to each until
    /// the entry leaves, so no address can be reused meanwhile.
    addrs: Ad,
    args: ArgSlot<A>,
    computer: Token,
    /// Made by the first waiter.
    flight: Option<Arc<Flight<V>>>,
    /// Covered by an invalidation since it was claimed.
    stale: bool,
    /// Claimed with single flight on: others may wait for it. One claimed with it off
    /// is pending only so that invalidations cover it; nobody waits for it, even if
    /// single flight is turned on meanwhile.
    shared: bool,
}

impl<Ad: Eq + Copy, A, V> Pending<Ad, A, V> {
    pub(crate) fn is_key<Q: Lookup<A>>(&self, key: Key<Ad>, args: &Q) -> bool {
        self.hash == key.hash
            && self.addrs == key.addrs
            && self.args().is_some_and(|stored| args.matches(stored))
    }

    pub(crate) fn addrs(&self) -> Ad {
        self.addrs
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    pub(crate) fn args(&self) -> Option<&A> {
        self.args.as_ref().as_ref()
    }
}

/// How a claim ended, as its computing caller learns under the write lock.
pub(crate) struct Ended<V> {
    pub(crate) flight: Option<Arc<Flight<V>>>,
    pub(crate) stale: bool,
}

impl<Ad: Copy, A, V> InFlight<Ad, A, V> {
    pub(crate) const fn new() -> Self {
        Self {
            pending: Vec::new(),
            spare: None,
        }
    }

    /// Makes the key pending, computed by `computer`, and `shared` with waiters.
    pub(crate) fn claim(
        &mut self,
        key: Key<Ad>,
        args: A,
        computer: Token,
        shared: bool,
    ) -> ArgSlot<A> {
        let mut slot = self.spare.take().unwrap_or_default();
        *Arc::get_mut(&mut slot).expect("a spare slot is never shared") = Some(args);
        self.pending.push(Pending {
            hash: key.hash,
            addrs: key.addrs,
            args: Arc::clone(&slot),
            computer,
            flight: None,
            stale: false,
            shared,
        });
        slot
    }

    /// Ends the claim that holds `slot` (found by identity: no user code), returning how
    /// it ended and its arguments; keeps the emptied slot as the spare.
    pub(crate) fn end(&mut self, mut slot: ArgSlot<A>) -> (Ended<V>, A) {
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
        let ended = Ended {
            flight: pending.flight,
            stale: pending.stale,
        };
        (ended, args)
    }

    /// Marks the pending keys `covered` picks as stale (see the module's invariants).
    pub(crate) fn invalidate(&mut self, covered: impl Fn(&Pending<Ad, A, V>) -> bool) {
        for pending in &mut self.pending {
            if !pending.stale && covered(pending) {
                pending.stale = true;
            }
        }
    }

    /// Keys pending now.
    #[cfg(all(test, feature = "shuttle"))]
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}

/// What [`InFlight::find`] found.
pub(crate) enum Found {
    /// A computation of the caller's own.
    Own,
    /// Another caller's computation, at this index.
    Other(usize),
    /// None.
    Absent,
}

/// What a caller that missed must do about its key.
pub(crate) enum Claim<'a, H: SharedHeld, Q, A, V> {
    /// This caller computes it: run the method on the claim's arguments, then complete.
    Compute(Claimed<'a, H, A, V>),
    /// Another caller computes it: wait for the flight, take its value, or look again if
    /// it was abandoned.
    Wait {
        args: Q,
        flight: Arc<Flight<V>>,
        computer: Token,
    },
    /// This caller computes it already, further up its stack: it would wait for itself.
    /// The arguments are handed back so that they are dropped with no lock held.
    Recursive(Q),
}

impl<Ad: Copy + Eq, A, V> InFlight<Ad, A, V> {
    /// The pending, shared and not stale computations of a key that missed: one the caller owns
    /// (`owns` its computer), else the first of another's.
    pub(crate) fn find<Q: Lookup<A>>(
        &self,
        key: Key<Ad>,
        args: &Q,
        owns: impl Fn(Token) -> bool,
    ) -> Found {
        let mut found = Found::Absent;
        for (at, pending) in self.pending.iter().enumerate() {
            if pending.stale || !pending.shared || !pending.is_key(key, args) {
                continue;
            }
            if owns(pending.computer) {
                return Found::Own;
            }
            if let Found::Absent = found {
                found = Found::Other(at);
            }
        }
        found
    }

    /// The flight of pending key `at`, made by its first waiter, and its computer.
    pub(crate) fn join(&mut self, at: usize) -> (Arc<Flight<V>>, Token) {
        let pending = &mut self.pending[at];
        let flight = pending.flight.get_or_insert_with(Arc::default);
        (Arc::clone(flight), pending.computer)
    }
}

/// A key this caller is computing. Dropped before [`Claimed::complete`] (the method
/// panicked or returned an error, a step after the claim panicked, or, for
/// `call_async`, its future was dropped), it abandons the key so that waiters take over.
pub(crate) struct Claimed<'a, H: SharedHeld, A, V> {
    pub(crate) cache: &'a MethodCache<H, A, V>,
    pub(crate) key: KeyOf<H>,
    pub(crate) slot: Option<ArgSlot<A>>,
}

impl<H: SharedHeld, A, V> Claimed<'_, H, A, V> {
    pub(crate) fn args(&self) -> &A {
        self.slot
            .as_deref()
            .and_then(Option::as_ref)
            .expect("a claim holds its arguments until it ends")
    }
}

impl<H, A, V> Claimed<'_, H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Stores the computed value (see [`MethodCache::complete`]) and returns the one
    /// stored for the key.
    pub(crate) fn complete(mut self, owners: impl Owners<Held = H>, value: V) -> V {
        // The user code left (`Clone`, the weigher) runs while this guard can abandon.
        let copy = value.clone();
        let weight = self.cache.weigh(self.args(), &value);
        let slot = self.slot.take().expect("a claim ends once");
        self.cache
            .complete(self.key, owners, slot, (value, copy), weight)
    }
}

impl<H: SharedHeld, A, V> Drop for Claimed<'_, H, A, V> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.cache.abandon(self.key, slot);
        }
    }
}

/// Finishes a flight when dropped, so that waiters wake even if what follows panics;
/// they take its value if one was set.
pub(crate) struct FinishOnDrop<V>(pub(crate) Option<Arc<Flight<V>>>);

impl<V> Drop for FinishOnDrop<V> {
    fn drop(&mut self) {
        if let Some(flight) = self.0.take() {
            flight.finish();
        }
    }
}
