//! Time to live: when an entry was stored, and whether it has outlived its method's TTL.
//!
//! Entries carry their birth time in milliseconds since the process first asked (40 bits
//! of an entry's [`Stamp`](crate::method_cache), enough for 34 years). An entry stored
//! while its method had no TTL is stamped 0 and ages from the moment a TTL is set. The
//! clock is read only by methods that have a TTL: a hit of one pays one `Instant::now()`,
//! a hit of any other one relaxed load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A TTL in milliseconds meaning "none".
const NONE: u64 = u64::MAX;

/// The longest TTL kept: longer ones (`Duration::MAX`) are this, which never expires.
const CAPPED: u64 = NONE - 1;

/// Milliseconds since the first call, plus one, so that 0 stays free for "not stamped".
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let elapsed = EPOCH.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).map_or(CAPPED, |ms| ms + 1)
}

/// A TTL in whole milliseconds, rounded up so that an entry never outlives it; `None` is
/// [`NONE`].
pub(crate) const fn ttl_ms(ttl: Option<Duration>) -> u64 {
    match ttl {
        None => NONE,
        Some(ttl) => {
            let ms = ttl.as_nanos().div_ceil(1_000_000);
            if ms >= CAPPED as u128 {
                CAPPED
            } else {
                ms as u64
            }
        }
    }
}

/// The TTL of [`ttl_ms`] back as a `Duration` (`Duration::MAX` for one that was capped).
pub(crate) fn ttl_duration(ms: u64) -> Option<Duration> {
    match ms {
        NONE => None,
        CAPPED => Some(Duration::MAX),
        ms => Some(Duration::from_millis(ms)),
    }
}

/// A method's TTL, and where it comes from.
pub(crate) struct Expiry {
    /// Milliseconds, or [`NONE`]; the method's own, else its registry's.
    ttl: AtomicU64,
    /// Whether `ttl` is the method's own, which the registry's does not override.
    own: AtomicBool,
    /// When a TTL was last set over none: the birth time of entries stamped 0.
    since: AtomicU64,
}

impl Expiry {
    /// No TTL, until one is set.
    pub(crate) fn new() -> Self {
        Self {
            ttl: AtomicU64::new(NONE),
            own: AtomicBool::new(false),
            since: AtomicU64::new(0),
        }
    }

    /// Sets the TTL (in ms, [`NONE`] for none).
    pub(crate) fn set(&self, ttl: u64) {
        if ttl != NONE && self.ttl.swap(ttl, Relaxed) == NONE {
            self.since.store(now_ms(), Relaxed);
        } else {
            self.ttl.store(ttl, Relaxed);
        }
    }

    /// Sets the method's own TTL, or (`None`) goes back to the registry's, `inherited`.
    pub(crate) fn set_own(&self, own: Option<u64>, inherited: u64) {
        self.own.store(own.is_some(), Relaxed);
        self.set(own.unwrap_or(inherited));
    }

    /// Takes the registry's TTL, unless the method has its own.
    pub(crate) fn inherit(&self, ttl: u64) {
        if !self.own.load(Relaxed) {
            self.set(ttl);
        }
    }

    /// The method's own TTL in ms, if it has one.
    pub(crate) fn own(&self) -> Option<u64> {
        self.own.load(Relaxed).then(|| self.ttl())
    }

    /// The TTL in ms, or [`NONE`].
    #[inline]
    pub(crate) fn ttl(&self) -> u64 {
        self.ttl.load(Relaxed)
    }

    /// Whether a TTL of 0 keeps every entry out.
    #[inline]
    pub(crate) fn stores_nothing(&self) -> bool {
        self.ttl() == 0
    }

    /// The birth time to stamp a new entry with: now, if the method has a TTL.
    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        if self.ttl() == NONE { 0 } else { now_ms() }
    }

    /// A clock reading for [`Self::expired`], taken only if the method has a TTL.
    #[inline]
    pub(crate) fn clock(&self) -> Option<Clock> {
        let ttl = self.ttl();
        (ttl != NONE).then(|| Clock::read(ttl, self.since.load(Relaxed)))
    }
}

/// A TTL and the time, read once for the entries of one lookup or sweep.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    ttl: u64,
    since: u64,
    now: u64,
}

impl Clock {
    /// A reading of `ttl` ms, for entries stamped 0 born at `since`, taken now.
    pub(crate) fn read(ttl: u64, since: u64) -> Self {
        Self {
            ttl,
            since,
            now: now_ms(),
        }
    }

    /// Whether an entry born at `born` (0: before the TTL was set) has expired.
    #[inline]
    pub(crate) fn expired(self, born: u64) -> bool {
        self.now.saturating_sub(born.max(self.since)) >= self.ttl
    }
}
