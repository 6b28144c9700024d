//! A method's bound on entries (Python's `maxsize`): the budget its shards share, the
//! frequency sketch that decides admission, and the CLOCK hand that picks victims.
//!
//! The policy, chosen by the hit-ratio measurements in `docs/benchmarks.md` ("Why this
//! policy"; the study is in `docs/history.md`): an admission window (1% of the bound,
//! see [`super::window`]) in front of a main region kept by CLOCK over the tables'
//! bucket order, with a 2-bit visit counter per entry, TinyLFU-style admission fed by
//! misses only, and ghosts of the keys that admission refused.
//! - A hit raises its entry's counter (at most 3): a relaxed load, and a store only while
//!   the counter is below 3, on the line the probe has just read. Nothing else, in the
//!   window or out of it.
//! - A miss adds its key to the sketch and stores its value in the window. The window's
//!   oldest entry then leaves it: into the main region while the bound has room; else
//!   the hand moves: a dead owner's entry is taken at once (it is free); an entry whose
//!   counter is above 0 has it lowered and is passed; the first entry at 0 is the
//!   victim. The window's entry replaces the victim only if the sketch has seen its key
//!   more often than the victim's, or the ghosts' judge overrules the sketch; else it
//!   is evicted, and the hand stays on the victim for the next one.
//! - A miss of a key so refused, within as many requests as the bound holds entries, is
//!   stored in the main region over the hand's victim if the sketch has seen it at least
//!   as often (a tie wins here), and in the window again if not; such returns also age
//!   the sketch, which then forgets an old working set fast.
//! - While the judge favors recency (refused keys come back more than victims), the hand
//!   clears the counters it passes instead of lowering them, and an entry leaving the
//!   window gets one visit: an old set goes within one lap, as in LRU.
//! - Admission is what keeps a loop slightly larger than the cache, and one-off scans,
//!   from flushing it; the counters keep what is hit; the window keeps what was just
//!   computed; the ghosts and the judge let a moved working set in.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};

use std::hash::Hash;

use super::MethodCache;
use super::removals::Removals;
use super::window::Window;
use crate::lock_scope::Scoped;
use crate::owners::SharedHeld;
use crate::removal::RemovalCause;
use crate::sync::{Mutex, RwLock};

/// A method's bound; made for a method given a capacity, and for every method of a
/// registry given one, whose eviction uses the hand. The weight it bounds is counted by
/// the method's table, which counts it whether bounded or not.
pub(crate) struct Bound {
    /// Weight allowed (entries, unless the method has a weigher); may change at run
    /// time.
    capacity: AtomicUsize,
    pub(crate) sketch: Sketch,
    /// The weight of the entries in the admission window (those whose hash word has
    /// the window bit), plus that of reservations for window newcomers under way.
    pub(crate) window_held: AtomicUsize,
    /// Where the CLOCK hand is, and the window's order. Taken before any shard's lock,
    /// and shards are locked one at a time under it.
    pub(crate) hand: Mutex<Hand>,
}

/// A key the hand makes room for only if it beats the victim in the sketch.
#[derive(Clone, Copy)]
pub(super) struct Candidate {
    pub(super) hash: u64,
    /// Whether a tie is a win: for a key back from the ghosts.
    pub(super) wins_ties: bool,
    /// The request count now and the ghosts' horizon, for the victim's ghost.
    pub(super) clock: (u64, u64),
}

#[derive(Default)]
pub(crate) struct Hand {
    /// The hand's place: a shard and a bucket in it.
    pub(crate) shard: usize,
    pub(crate) bucket: usize,
    pub(crate) window: Window,
}

impl Bound {
    /// A bound of `capacity`, whose sketch serves at most `entries` entries (the smaller
    /// of the method's and the registry's bound: no more entries can be held).
    pub(crate) fn new(capacity: usize, entries: usize) -> Self {
        Self {
            capacity: AtomicUsize::new(capacity),
            sketch: Sketch::new(entries),
            window_held: AtomicUsize::new(0),
            hand: Mutex::new(Hand::default()),
        }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(Relaxed)
    }

    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Relaxed);
    }

    /// The window's share of the bound: 1% (Caffeine's), at least 1, so that it holds
    /// at least the newest entry. None for a bound of `usize::MAX`, which only lends a
    /// registry's bound the hand: its newcomers go straight to the main region.
    #[inline]
    pub(crate) fn window_capacity(&self) -> Option<usize> {
        let capacity = self.capacity();
        (capacity != usize::MAX).then(|| (capacity / 100).max(1))
    }

    /// The most hashes the window's queue keeps: twice the window's share, and 64,
    /// which its live entries never reach unless they weigh 0.
    #[inline]
    pub(super) fn queue_limit(&self) -> usize {
        self.window_capacity()
            .map_or(0, |share| share.saturating_mul(2).saturating_add(64))
    }

    /// Whether the window holds more than its share.
    #[inline]
    pub(super) fn window_is_over(&self) -> bool {
        self.window_capacity()
            .is_some_and(|share| self.window_held.load(Relaxed) > share)
    }
}

/// How often keys were missed lately: a count-min sketch of 4 rows of counters that
/// saturate at 15, all halved every 10 × (entries it serves) additions, at least 2,560,
/// so that it forgets.
///
/// Sized by the entries the method holds, not by its bound: a bound in bytes (with a
/// weigher) says nothing of how many entries it holds, and a bound of many entries may
/// never fill. It starts at 1,024 counters a row (4 KiB) and, each time it ages, grows to
/// 4 counters a row per entry held (Caffeine's width, with the same forgetting of what
/// it counted when it grows), up to what the bound can hold, if weights are at least 1.
/// Counters are written with plain loads and stores: a lost increment only blurs an
/// estimate.
pub(crate) struct Sketch {
    rows: RwLock<Rows>,
    additions: AtomicUsize,
    /// The most entries the method can hold (its bound, when weights are 1).
    most: usize,
    /// The entries the method held when the sketch last aged.
    entries: AtomicUsize,
}

/// The counters of a [`Sketch`]: 4 rows of `mask + 1` each, and the additions between
/// two halvings.
struct Rows {
    counters: Box<[AtomicU8]>,
    mask: usize,
    period: usize,
}

impl Rows {
    /// Rows for `entries` entries: 4 counters a row per entry, at least 1,024 a row.
    fn for_entries(entries: usize) -> Self {
        let width = entries
            .saturating_mul(4)
            .clamp(1024, 1 << 24)
            .next_power_of_two();
        Self {
            counters: (0..4 * width).map(|_| AtomicU8::new(0)).collect(),
            mask: width - 1,
            // Caffeine's sample size.
            period: 10 * entries.clamp(256, width / 4),
        }
    }

    fn width(&self) -> usize {
        self.mask + 1
    }

    fn counter(&self, hash: u64, row: u64) -> &AtomicU8 {
        // A different odd multiplier per row, then the high bits, which mix best.
        let mixed = (hash ^ (hash >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15 ^ (row << 1 | 1));
        let index = (mixed >> 32) as usize & self.mask;
        &self.counters[row as usize * self.width() + index]
    }
}

impl Sketch {
    /// A sketch that may grow to serve `most` entries; it starts small.
    fn new(most: usize) -> Self {
        Self {
            rows: RwLock::new(Rows::for_entries(most.min(256))),
            additions: AtomicUsize::new(0),
            most,
            entries: AtomicUsize::new(0),
        }
    }

    /// Counts a miss of `hash`; true when the sketch is due to age: call
    /// [`Self::age`] then.
    pub(crate) fn add(&self, hash: u64) -> bool {
        let rows = self.rows.read();
        for row in 0..4 {
            let counter = rows.counter(hash, row);
            let count = counter.load(Relaxed);
            if count < 15 {
                counter.store(count + 1, Relaxed);
            }
        }
        self.additions.fetch_add(1, Relaxed) + 1 == rows.period
    }

    /// Halves every counter, or, if the method holds more `entries` than the sketch
    /// serves, starts afresh at the size they need.
    pub(crate) fn age(&self, entries: usize) {
        let mut rows = self.rows.write();
        self.additions.store(0, Relaxed);
        self.entries.store(entries, Relaxed);
        let wanted = entries.min(self.most);
        if wanted.saturating_mul(4) > rows.width() && rows.width() < 1 << 24 {
            *rows = Rows::for_entries(wanted);
        } else {
            for counter in &rows.counters {
                counter.store(counter.load(Relaxed) / 2, Relaxed);
            }
        }
    }

    /// The entries the method held when the sketch last aged (0 before).
    pub(crate) fn entries_counted(&self) -> usize {
        self.entries.load(Relaxed)
    }

    pub(crate) fn estimate(&self, hash: u64) -> u8 {
        let rows = self.rows.read();
        (0..4)
            .map(|row| rows.counter(hash, row).load(Relaxed))
            .min()
            .unwrap_or(0)
    }

    /// The bytes its counters take.
    #[cfg(all(test, not(feature = "shuttle")))]
    pub(crate) fn bytes(&self) -> usize {
        self.rows.read().counters.len()
    }
}

#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use super::*;

    /// A bound in bytes (the README's 1 MiB budget) costs a sketch for the entries held,
    /// not for a million entries: 4 KiB at first, grown as entries come, never past what
    /// the bound can hold.
    #[test]
    fn the_sketch_is_sized_by_the_entries_held() {
        let sketch = Sketch::new(1 << 20);
        assert_eq!(sketch.bytes(), 4 * 1024);
        sketch.age(300);
        assert_eq!(sketch.bytes(), 4 * 2048, "4 counters a row per entry held");
        sketch.age(100);
        assert_eq!(sketch.bytes(), 4 * 2048, "it never shrinks");
        let small = Sketch::new(500);
        small.age(1 << 20);
        assert_eq!(small.bytes(), 4 * 2048, "no more than the bound can hold");
    }

    /// Aging halves the counts, unless the sketch grows (and starts afresh).
    #[test]
    fn aging_halves_or_grows() {
        let sketch = Sketch::new(100);
        for _ in 0..6 {
            sketch.add(42);
        }
        assert_eq!(sketch.estimate(42), 6);
        sketch.age(100);
        assert_eq!(sketch.estimate(42), 3);
    }
}

impl<H, A, V> MethodCache<H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Moves the CLOCK hand to free room for a candidate (the window's oldest entry, or a
    /// newcomer back from the ghosts) or, with `None`, for one stored already, pushing
    /// what it removes onto `removals`: a dead owner's or an expired entry goes at once;
    /// an entry hit since the hand last passed has its count lowered; the first at 0 is
    /// the victim, unless a dead owner's or expired entry within 64 buckets goes in its
    /// place, and is evicted if the sketch has seen the candidate more often (or as
    /// often, if it wins ties). Window entries are passed over, but in the last lap,
    /// which takes the first entry it meets, window or not, hit or not (a registry's
    /// bound may need room from a method holding only its window). False if nothing was
    /// freed: the candidate lost, or the hand found nothing to take in five laps (every
    /// entry is being removed meanwhile, or the bound is 0).
    pub(super) fn evict_for(
        &self,
        bound: &Bound,
        hand: &mut Hand,
        candidate: Option<Candidate>,
        removals: &mut Removals<'_, H, A, V>,
    ) -> bool {
        if self.made_shards().is_empty() {
            return false; // nothing stored yet
        }
        let clock = self.expiry.clock();
        let mut laps = 0;
        loop {
            let shard = &self.made_shards()[hand.shard];
            let mut tables = Scoped::lock(|| shard.tables.write());
            let table = &mut tables.ready;
            while hand.bucket < table.num_buckets() {
                let Some(victim) = table.get_bucket(hand.bucket) else {
                    hand.bucket += 1;
                    continue;
                };
                let stale = victim.stale(clock);
                let last = laps == 4;
                if stale.is_none() && victim.in_window() && !last {
                    hand.bucket += 1;
                    continue;
                }
                if stale.is_none() && victim.visits() > 0 && !last {
                    victim.unvisit(hand.window.favors_recency());
                    hand.bucket += 1;
                    continue;
                }
                let mut at = hand.bucket;
                if stale.is_none() {
                    // A live victim. A dead owner's or expired entry close by is free
                    // room, and goes first; else the candidate must beat the victim, or
                    // the hand stays on it for the next candidate.
                    let buckets = table.num_buckets();
                    let near = (1..buckets.min(65))
                        .map(|step| (hand.bucket + step) % buckets)
                        .find(|&index| {
                            table
                                .get_bucket(index)
                                .is_some_and(|e| e.stale(clock).is_some())
                        });
                    let loses = |c: &Candidate| {
                        let (new, old) = (
                            bound.sketch.estimate(c.hash),
                            bound.sketch.estimate(victim.hash()),
                        );
                        new < old || new == old && !c.wins_ties
                    };
                    match (near, candidate) {
                        (Some(index), _) => at = index,
                        (None, Some(c)) if loses(&c) => {
                            if !hand.window.overrules() {
                                return false;
                            }
                            hand.bucket += 1;
                        }
                        (None, Some(c)) => {
                            // The sketch's own choice: the judge watches its victims.
                            let (now, horizon) = c.clock;
                            hand.window.evicted(victim.hash(), now, horizon);
                            hand.bucket += 1;
                        }
                        (None, None) => hand.bucket += 1,
                    }
                } else {
                    hand.bucket += 1;
                }
                let Ok(entry) = table.get_bucket_entry(at) else {
                    unreachable!("the bucket was just found full");
                };
                let taken = entry.remove().0;
                let cause = taken.stale(clock).unwrap_or(RemovalCause::Size);
                removals.push(taken, cause);
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
    pub(super) fn bound_or_init(&self, capacity: usize) -> &Bound {
        self.bound.get_or_init(|| {
            // The sketch serves the smaller bound, as it is when the bound is made.
            let registry = usize::try_from(self.shared.capacity()).unwrap_or(usize::MAX);
            Bound::new(capacity, capacity.min(registry))
        })
    }

    /// The number of entries stored now (a sum over the shards: for the sketch's size,
    /// now and then).
    pub(super) fn entries(&self) -> usize {
        let shards = self.made_shards().iter();
        shards
            .map(|shard| Scoped::lock(|| shard.tables.read()).ready.len())
            .sum()
    }
}
