//! An entry as a shard stores it, and the key a call looks it up by.
//!
//! An entry is its owners' `Weak`s, its arguments, its value and one word of stamp (birth
//! time and weight), with the CLOCK visit counter in spare bits of its stored hash: no
//! room for anything else (see the layout test in this folder's `mod.rs`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::expiry::Clock;
use crate::lookup::Lookup;
use crate::owners::{Held, SharedHeld};
use crate::removal::RemovalCause;

/// [`crate::MAX_WEIGHT`]: an entry's weight shares its [`Stamp`] with its birth time.
pub(super) const MAX_WEIGHT: usize = crate::MAX_WEIGHT as usize;

pub(super) struct Entry<H: SharedHeld, A, V> {
    /// The key's hash, stored so that growing, shrinking and comparing never run the
    /// arguments' `Hash`, with the entry's visit count in its [`VISITS`] bits.
    pub(super) word: AtomicU64,
    pub(super) owner: H,
    pub(super) args: A,
    pub(super) value: V,
    pub(super) stamp: Stamp,
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

    pub(super) fn born(self) -> u64 {
        self.0 >> 24
    }

    pub(super) fn weight(self) -> usize {
        (self.0 & MAX_WEIGHT as u64) as usize
    }
}

/// The bits of an entry's hash word that count hits since the CLOCK hand last passed, at
/// most 3 (see [`crate::bound`]). No index uses them: hashbrown takes a hash's low bits
/// and its top seven, shards bits 32 to 41; every [`Key`] has them clear. Kept in the
/// hash word so that counting costs an entry no bytes (a small entry would grow by a
/// quarter, which a table of a million entries measurably pays on every hit).
pub(super) const VISITS: u64 = 0b11 << 48;
pub(super) const ONE_VISIT: u64 = 1 << 48;
/// The bit of an entry's hash word set while the entry is in its method's admission
/// window (see [`super::window`]); free for the same reasons as [`VISITS`].
pub(super) const IN_WINDOW: u64 = 1 << 50;
/// The bits of a hash word that are not the key's hash: every [`Key`] has them clear.
pub(super) const POLICY_BITS: u64 = VISITS | IN_WINDOW;

impl<H: SharedHeld, A: Eq, V> Entry<H, A, V> {
    pub(super) fn new(key: KeyOf<H>, owner: H, args: A, value: V, stamp: Stamp) -> Self {
        Self {
            word: AtomicU64::new(key.hash),
            owner,
            args,
            value,
            stamp,
        }
    }

    pub(super) fn hash(&self) -> u64 {
        self.word.load(Relaxed) & !POLICY_BITS
    }

    pub(super) fn visits(&self) -> u64 {
        (self.word.load(Relaxed) & VISITS) / ONE_VISIT
    }

    /// Counts a hit for the CLOCK hand: a store only while the count is below its cap,
    /// so that hot entries are not written on every hit. Racing hits may count once;
    /// none can change the hash bits, which they all store unchanged.
    #[inline]
    pub(super) fn visit(&self) {
        let word = self.word.load(Relaxed);
        if word & VISITS != VISITS {
            self.word.store(word + ONE_VISIT, Relaxed);
        }
    }

    /// Lowers the visit count by one, or to 0 with `all` (under the write lock, as the
    /// CLOCK hand passes).
    pub(super) fn unvisit(&self, all: bool) {
        let word = self.word.load(Relaxed);
        if word & VISITS != 0 {
            let lower = if all { word & VISITS } else { ONE_VISIT };
            self.word.store(word - lower, Relaxed);
        }
    }

    /// Whether an owner is dead: the entry can never match again.
    pub(super) fn is_dead(&self) -> bool {
        self.owner.is_dead()
    }

    pub(super) fn is_expired(&self, clock: Option<Clock>) -> bool {
        clock.is_some_and(|clock| clock.expired(self.stamp.born()))
    }

    /// Why the entry should go now, whatever the bound: its owner is dead, or it expired.
    pub(super) fn stale(&self, clock: Option<Clock>) -> Option<RemovalCause> {
        if self.is_dead() {
            Some(RemovalCause::Collected)
        } else if self.is_expired(clock) {
            Some(RemovalCause::Expired)
        } else {
            None
        }
    }

    pub(super) fn belongs_to(&self, addr: usize) -> bool {
        self.owner.holds(addr)
    }

    /// Whether this is the entry of `key` and `args`: same hash, the same owners (by
    /// address), and arguments that `Eq` (or a borrowed form's `matches`) finds equal.
    #[inline]
    pub(super) fn matches<Q: Lookup<A>>(&self, key: KeyOf<H>, args: &Q) -> bool {
        self.hash() == key.hash && self.owner.addrs() == key.addrs && args.matches(&self.args)
    }
}

impl<H: SharedHeld, A, V> Entry<H, A, V> {
    /// Whether the entry is in the admission window (not yet judged by admission).
    pub(super) fn in_window(&self) -> bool {
        self.word.load(Relaxed) & IN_WINDOW != 0
    }

    /// Puts a new entry in the window, before it is stored.
    pub(super) fn enter_window(&mut self) {
        *self.word.get_mut() |= IN_WINDOW;
    }

    /// Takes the entry out of the window, into the main region. Under the shard's
    /// write lock: a hit stores the word it read plus a visit, which would put the bit
    /// back if it raced this, and the write lock keeps hits out.
    pub(super) fn leave_window(&self) {
        self.word.fetch_and(!IN_WINDOW, Relaxed);
    }
}

/// A call's key, computed once before any lock is taken: the hash of its owners'
/// addresses and arguments, with the [`POLICY_BITS`] clear, and the addresses.
#[derive(Clone, Copy)]
pub(crate) struct Key<Ad> {
    pub(crate) hash: u64,
    pub(crate) addrs: Ad,
}

/// The key of a table whose entries hold `H`.
pub(crate) type KeyOf<H> = Key<<H as Held>::Addrs>;
