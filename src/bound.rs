//! A method's bound on entries (Python's `maxsize`): the budget its shards share, the
//! frequency sketch that decides admission, and the CLOCK hand that picks victims.
//!
//! The policy, chosen by the hit-ratio measurements in `docs/benchmarks.md` ("Choosing
//! an eviction policy"): CLOCK over the tables' bucket order with a 2-bit visit counter
//! per entry, and TinyLFU-style admission fed by misses only.
//! - A hit raises its entry's counter (at most 3): a relaxed load, and a store only while
//!   the counter is below 3, on the line the probe has just read. Nothing else.
//! - A miss that would exceed the bound adds its key to the sketch, then moves the hand:
//!   a dead owner's entry is taken at once (it is free); an entry whose counter is above
//!   0 has it lowered and is passed; the first entry at 0 is the victim. The newcomer
//!   replaces the victim only if the sketch has seen the newcomer's key more often than
//!   the victim's; else the newcomer is computed and returned but not stored, and the
//!   hand stays on the victim for the next newcomer.
//! - Admission is what keeps a loop slightly larger than the cache, and one-off scans,
//!   from flushing it; the counters keep what is hit.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};

use crate::sync::Mutex;

/// A method's bound; made for a method given a capacity, and for every method of a
/// registry given one, whose eviction uses the hand and whose sum is the registry's
/// weight.
pub(crate) struct Bound {
    /// Weight allowed (entries, unless the method has a weigher); may change at run
    /// time.
    capacity: AtomicUsize,
    /// Weight of the entries stored, plus that reserved by inserts under way (see
    /// `reserve`).
    len: AtomicUsize,
    pub(crate) sketch: Sketch,
    /// Where the CLOCK hand is: a shard and a bucket in it. Taken before any shard's
    /// lock, and shards are locked one at a time under it.
    pub(crate) hand: Mutex<Hand>,
}

#[derive(Default)]
pub(crate) struct Hand {
    pub(crate) shard: usize,
    pub(crate) bucket: usize,
}

impl Bound {
    /// A bound of `capacity`, whose sketch serves about `entries` entries (the smaller
    /// of the method's and the registry's bound).
    pub(crate) fn new(capacity: usize, entries: usize) -> Self {
        Self {
            capacity: AtomicUsize::new(capacity),
            len: AtomicUsize::new(0),
            sketch: Sketch::new(entries),
            hand: Mutex::new(Hand::default()),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(Relaxed)
    }

    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Relaxed);
    }

    /// Reserves room for an entry of `weight`; true if that takes the method over its
    /// bound, so that victims must go first (or the newcomer stay out, then `release`).
    pub(crate) fn reserve(&self, weight: usize) -> bool {
        self.len.fetch_add(weight, Relaxed) + weight > self.capacity()
    }

    /// The weight stored and reserved.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Whether more entries are stored (or reserved) than the bound allows.
    pub(crate) fn is_over(&self) -> bool {
        self.len.load(Relaxed) > self.capacity()
    }

    /// Counts the weight of entries stored before the bound was set.
    pub(crate) fn reserve_stored(&self, weight: usize) {
        self.len.fetch_add(weight, Relaxed);
    }

    /// Gives back `weight`: of removed entries, or of unused reservations.
    pub(crate) fn release(&self, weight: usize) {
        // Saturating: inserts racing with the bound's creation may not have reserved.
        if weight > 0 {
            let _ = self
                .len
                .fetch_update(Relaxed, Relaxed, |len| Some(len.saturating_sub(weight)));
        }
    }
}

/// How often keys were missed lately: a count-min sketch of 4 rows of counters that
/// saturate at 15, all halved every 10 × capacity additions (at least 2,560) so that it
/// forgets.
/// Counters are written with plain loads and stores: a lost increment only blurs an
/// estimate.
pub(crate) struct Sketch {
    rows: [Box<[AtomicU8]>; 4],
    mask: usize,
    additions: AtomicUsize,
    period: usize,
}

impl Sketch {
    /// Sized as Caffeine's for `capacity` entries (4 rows of 4 × capacity counters), at
    /// least 1,024 per row, so that a small bound still has a useful history.
    fn new(capacity: usize) -> Self {
        let width = capacity
            .saturating_mul(4)
            .clamp(1024, 1 << 24)
            .next_power_of_two();
        Self {
            rows: std::array::from_fn(|_| (0..width).map(|_| AtomicU8::new(0)).collect()),
            mask: width - 1,
            additions: AtomicUsize::new(0),
            // Caffeine's sample size; 10 × width ÷ 4, with the width rounded up to a
            // power of two, was up to twice that, and an old hot set kept out the new.
            period: 10 * capacity.clamp(256, width / 4),
        }
    }

    fn index(&self, hash: u64, row: u64) -> usize {
        // A different odd multiplier per row, then the high bits, which mix best.
        let mixed = (hash ^ (hash >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15 ^ (row << 1 | 1));
        (mixed >> 32) as usize & self.mask
    }

    pub(crate) fn add(&self, hash: u64) {
        for (row, counters) in (0..).zip(&self.rows) {
            let counter = &counters[self.index(hash, row)];
            let count = counter.load(Relaxed);
            if count < 15 {
                counter.store(count + 1, Relaxed);
            }
        }
        if self.additions.fetch_add(1, Relaxed) + 1 == self.period {
            self.additions.store(0, Relaxed);
            for counter in self.rows.iter().flat_map(|row| row.iter()) {
                counter.store(counter.load(Relaxed) / 2, Relaxed);
            }
        }
    }

    pub(crate) fn estimate(&self, hash: u64) -> u8 {
        (0..)
            .zip(&self.rows)
            .map(|(row, counters)| counters[self.index(hash, row)].load(Relaxed))
            .min()
            .unwrap_or(0)
    }
}
