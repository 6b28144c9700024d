//! Completing a claim: weighing, admitting (within the method's and the registry's
//! bounds), storing, and handing the value to the claim's waiters.

use std::hash::Hash;
use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as Slot;

use super::MethodCache;
use super::bound::{Bound, Candidate, Hand};
use super::entry::{Entry, KeyOf, MAX_WEIGHT, Stamp};
use super::expiry::Clock;
use super::removals::{Removals, resume};
use super::shard::{Counters, Tables};
use super::single_flight::in_flight::{ArgSlot, FinishOnDrop};
use crate::lock_scope::Scoped;
use crate::owners::{Owners, SharedHeld};
use crate::removal::RemovalCause;

/// Room reserved in `held` (and, for a window newcomer, in the window's weight) for an
/// entry about to be stored; given back when dropped, unless kept because the entry is
/// in the table.
pub(super) struct Reservation<'a> {
    pub(super) held: &'a AtomicUsize,
    pub(super) window: Option<&'a AtomicUsize>,
    pub(super) weight: usize,
}

impl Reservation<'_> {
    /// The entry is stored: its weight stays counted, until it is removed (or, for the
    /// window's, until it leaves the window).
    pub(super) fn keep(mut self) {
        self.weight = 0;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        release(self.held, self.weight);
        if let Some(window) = self.window {
            release(window, self.weight);
        }
    }
}

/// A newcomer's room, and where it goes.
pub(super) struct Admitted<'a> {
    reservation: Reservation<'a>,
    place: Place<'a>,
}

/// Where a newcomer goes.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// A table with no bound.
    Unbounded,
    /// The main region: a key back from the ghosts that beat the hand's victim, or a
    /// newcomer of a bound that lends the registry's bound its hand only (no window).
    Main,
    /// The window of `bound`, missed at request `u64` (the window's clock).
    Window(&'a Bound, u64),
}

/// Gives back `weight` of `held`, which counted it (see the module's invariants).
pub(super) fn release(held: &AtomicUsize, weight: usize) {
    if weight > 0 {
        let before = held.fetch_sub(weight, Relaxed);
        debug_assert!(before >= weight, "weight given back that was never counted");
    }
}

impl<H, A, V> MethodCache<H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
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
        let admitted = self.admit(key.hash, weight, &mut removals);
        let mut queued = Place::Unbounded;
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
            let mut entry = Entry::new(key, owners.downgrade(), args, copy, stamp);
            match admitted {
                // An invalidation covered the key while it was computed: the value is
                // from before it, so it answers the waiters only.
                Some(_) if ended.stale => (value, Unstored::Stale(entry)),
                Some(Admitted { reservation, place }) => {
                    if let Place::Window(..) = place {
                        entry.enter_window();
                    }
                    match store(ready, key, entry, self.expiry.clock(), &mut removals) {
                        Stored::Kept => {
                            reservation.keep();
                            queued = place;
                            (value, Unstored::None)
                        }
                        Stored::Lost(entry, first) => (first, Unstored::Lost(entry, value)),
                    }
                }
                None => (value, Unstored::Refused(entry)),
            }
        };
        // Queued once its shard is unlocked: the hand's lock is taken before a shard's.
        if let Place::Window(bound, missed_at) = queued {
            bound
                .hand
                .lock()
                .window
                .queue
                .push_back((key.hash, missed_at));
        }
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

    /// Whether a newcomer of `hash` and `weight` may be stored, with its room reserved
    /// and where it goes: not if a TTL of 0 or a weight over a bound (the method's or the
    /// registry's) keeps it out; else always, in the main region without a bound, and
    /// with one in the window (or, let in by a ghost, in the main region), once room is
    /// made (see [`crate::bound`]). Takes no shard lock but one at a time, and none is
    /// held on entry, so it must run before the newcomer's shard is locked.
    #[inline]
    pub(super) fn admit(
        &self,
        hash: u64,
        weight: usize,
        removals: &mut Removals<'_, H, A, V>,
    ) -> Option<Admitted<'_>> {
        if !self.storable(weight) {
            return None;
        }
        Some(match self.bound.get() {
            None => Admitted {
                reservation: self.reserve(weight),
                place: Place::Unbounded,
            },
            Some(bound) => self.admit_within(bound, hash, weight, removals),
        })
    }

    /// Reserves room for an entry of `weight`.
    pub(super) fn reserve(&self, weight: usize) -> Reservation<'_> {
        self.held.fetch_add(weight, Relaxed);
        Reservation {
            held: &self.held,
            window: None,
            weight,
        }
    }

    /// Whether more weight is held (or reserved) than the bound allows.
    pub(super) fn is_over(&self, bound: &Bound) -> bool {
        self.held.load(Relaxed) > bound.capacity()
    }

    /// Whether an entry of `weight` may be stored at all: not under a TTL of 0, nor if
    /// heavier than [`MAX_WEIGHT`] or a bound (it could only stay by flushing the rest).
    #[inline]
    pub(super) fn storable(&self, weight: usize) -> bool {
        !self.expiry.stores_nothing()
            && weight <= MAX_WEIGHT
            && weight as u64 <= self.shared.capacity()
            && self
                .bound
                .get()
                .is_none_or(|bound| weight <= bound.capacity())
    }

    /// Counts the miss in the sketch, asks the ghosts whether the key returns, reserves
    /// its room and makes room within the bound: the window's oldest entries leave it
    /// (judged against the hand's victim if the bound is full) until the window is
    /// within its share, then the hand evicts until the bound is met.
    #[inline(never)]
    pub(super) fn admit_within<'a>(
        &'a self,
        bound: &'a Bound,
        hash: u64,
        weight: usize,
        removals: &mut Removals<'_, H, A, V>,
    ) -> Admitted<'a> {
        if bound.sketch.add(hash) {
            bound.sketch.age(self.entries());
        }
        let now = self.requests();
        let horizon = self.horizon(bound);
        let mut hand = bound.hand.lock();
        let ghost = hand.window.returned(hash, now, horizon);
        if ghost.age {
            bound.sketch.age(self.entries());
        }
        let mut reservation = self.reserve(weight);
        let mut windowed = bound.window_capacity().is_some();
        if windowed && ghost.direct {
            // Back in time: into the main region, if the bound has room or the sketch
            // has seen it at least as often as the hand's victim; else a newcomer.
            let candidate = Candidate {
                hash,
                wins_ties: true,
                clock: (now, horizon),
            };
            windowed =
                self.is_over(bound) && !self.evict_for(bound, &mut hand, Some(candidate), removals);
        }
        if windowed {
            bound.window_held.fetch_add(weight, Relaxed);
            reservation.window = Some(&bound.window_held);
        }
        loop {
            let over = self.is_over(bound);
            // Also past its length limit: hashes of entries removed meanwhile, or free
            // (weighed 0), must not pile up.
            let long = hand.window.queue.len() > bound.queue_limit();
            if (bound.window_is_over() || long)
                && let Some(oldest) = hand.window.queue.pop_front()
            {
                self.leave_window(bound, &mut hand, oldest, over, (now, horizon), removals);
            } else if !over || !self.evict_for(bound, &mut hand, None, removals) {
                break;
            }
        }
        let place = if windowed {
            Place::Window(bound, now)
        } else {
            Place::Main
        };
        Admitted { reservation, place }
    }

    /// Takes the window entry of `hash`, missed at request `missed_at`, out of the
    /// window, if it is still there: into the main region if the bound is not `over`, or
    /// if the sketch has seen it more often than the hand's victim, which is evicted;
    /// else it is evicted, and remembered by the ghosts. `now` is the request count and
    /// `horizon` the ghosts' (see [`Self::horizon`]).
    fn leave_window(
        &self,
        bound: &Bound,
        hand: &mut Hand,
        (hash, missed_at): (u64, u64),
        over: bool,
        (now, horizon): (u64, u64),
        removals: &mut Removals<'_, H, A, V>,
    ) {
        let shard = self.shard(hash);
        let is_it = |entry: &Entry<H, A, V>| entry.hash() == hash && entry.in_window();
        let present = || {
            let tables = Scoped::lock(|| shard.tables.read());
            tables.ready.find(hash, is_it).is_some()
        };
        // A victim is judged only for an entry still there to take its place.
        let candidate = Candidate {
            hash,
            wins_ties: false,
            clock: (now, horizon),
        };
        let joins = !over || (present() && self.evict_for(bound, hand, Some(candidate), removals));
        let mut tables = Scoped::lock(|| shard.tables.write());
        let Ok(entry) = tables.ready.find_entry(hash, is_it) else {
            return; // invalidated, purged or expired meanwhile
        };
        if joins {
            let entry = entry.get();
            entry.leave_window();
            if hand.window.favors_recency() {
                // As if stored behind the hand: it gets one lap to be asked for.
                entry.visit();
            }
            release(&bound.window_held, entry.stamp.weight());
        } else {
            removals.push(entry.remove().0, RemovalCause::Size);
            hand.window.lost(hash, missed_at, now, horizon);
        }
    }

    /// The requests (hits and misses) counted so far: the window's clock.
    fn requests(&self) -> u64 {
        let lookups = self.lookups.iter();
        lookups
            .map(|stripe| stripe.hits.load(Relaxed) + stripe.misses.load(Relaxed))
            .sum()
    }

    /// How many requests a ghost may take to return and be let in: about the entries
    /// the method holds, as many as an LRU cache of its size would keep. Its bound,
    /// unless weighed; with a weigher, the entries counted when the sketch last aged
    /// (none before: no key is let back in until then).
    fn horizon(&self, bound: &Bound) -> u64 {
        let entries = if self.weighed.load(Relaxed) {
            bound.sketch.entries_counted()
        } else {
            bound.capacity()
        };
        entries.max(1) as u64
    }
}

/// What a completed claim did not store, dropped once no lock is held and waiters are
/// woken.
pub(super) enum Unstored<H: SharedHeld, A, V> {
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
pub(super) enum Stored<H: SharedHeld, A, V> {
    /// It is in the table.
    Kept,
    /// Its key was stored already, unexpired: the first value stays, and this is a
    /// clone of it, for the caller; the newcomer goes back.
    Lost(Entry<H, A, V>, V),
}

/// Stores `entry` unless its key is stored already and unexpired, in which case the
/// first value stays, so that every caller of one key sees one value.
#[inline] // one call site, in `complete`, in another module
pub(super) fn store<H: SharedHeld, A: Hash + Eq + 'static, V: Clone + 'static>(
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
#[inline] // on every store; kept inlined into `complete`, as before the split
pub(super) fn make_room<H: SharedHeld, A: Eq + 'static, V: 'static>(
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
