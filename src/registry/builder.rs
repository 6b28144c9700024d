//! A registry's settings before it is made, and the defaults.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::Duration;

use super::Registry;
use super::directory::Directory;
use super::maintenance::Cursor;
use crate::sync::Mutex;
use crate::table::expiry::ttl_ms;

/// Buckets one lazy purge step looks at.
pub const PURGE_STEP_BUCKETS: usize = 64;

/// The bound of a method without owners (a function of its arguments alone, called
/// with `()` as its owners) until one is set: nothing else ever frees its entries, so,
/// like Python's `lru_cache` (128), it is bounded unless told otherwise; lift it with
/// [`Memo::set_capacity`](crate::Memo::set_capacity)`(None)`. A bound counts weight once
/// the method has a weigher ([`Memo::set_weigher`](crate::Memo::set_weigher)), this one
/// too: give a weighed owner-less method a bound in the weigher's unit.
pub const DEFAULT_OWNERLESS_CAPACITY: usize = 1024;

/// Lookups between two lazy purge steps when nobody sets the interval.
pub const DEFAULT_PURGE_INTERVAL: usize = 256;

/// The heaviest entry a weigher may give (2²⁴ − 1): its weight shares a word with its
/// birth time. A heavier one is returned but not stored; weigh in larger units (KiB
/// rather than bytes) if values can be heavier.
pub const MAX_WEIGHT: u32 = (1 << 24) - 1;

/// Settings for a [`Registry`], usable in `const` and `static` items.
///
/// ```
/// use weakmemo::Registry;
///
/// static CACHE: Registry = Registry::builder().purge_interval(64).shards(32).build();
/// assert_eq!(CACHE.purge_interval(), 64);
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct RegistryBuilder {
    purge_interval: usize,
    shards: usize,
    single_flight: bool,
    capacity: Option<usize>,
    ttl: Option<Duration>,
}

impl RegistryBuilder {
    /// The defaults: see [`Registry::builder`].
    pub(super) const fn new() -> Self {
        Self {
            purge_interval: DEFAULT_PURGE_INTERVAL,
            shards: 0,
            single_flight: true,
            capacity: None,
            ttl: None,
        }
    }

    /// Lookups between lazy purge steps; see [`Registry::set_purge_interval`].
    pub const fn purge_interval(mut self, lookups: usize) -> Self {
        self.purge_interval = lookups;
        self
    }

    /// Shards (independently locked parts) of each method's table, rounded up to a power
    /// of two; 0, the default, picks 4 per available core, from 8 to 256.
    ///
    /// Hits do not meet on a shard's lock (each thread reads through a slot of its own),
    /// so shards serve the stores: more let more threads store into one method at once.
    /// Each costs about 1.2 KiB (its lock's eight reader slots, 128 bytes each, and
    /// itself) plus its table's slack. A program with very many cached methods and few
    /// threads can lower it.
    pub const fn shards(mut self, shards: usize) -> Self {
        self.shards = if shards == 0 {
            0
        } else {
            shards.next_power_of_two()
        };
        self
    }

    /// Whether callers that miss a key another thread is computing wait for that
    /// computation (the default) or run the method themselves; see
    /// [`Registry::set_single_flight`].
    pub const fn single_flight(mut self, on: bool) -> Self {
        self.single_flight = on;
        self
    }

    /// Bounds the weight of every method's entries together; see
    /// [`Registry::set_capacity`].
    pub const fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Gives every method a time to live; see [`Registry::set_ttl`].
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The registry.
    pub const fn build(self) -> Registry {
        Registry {
            methods: Directory::new(),
            purge_interval: AtomicUsize::new(self.purge_interval),
            single_flight: AtomicBool::new(self.single_flight),
            shards: self.shards,
            cursor: Mutex::new(Cursor::START),
            purge_steps: AtomicU64::new(0),
            settings: Mutex::new(()),
            ttl: AtomicU64::new(ttl_ms(self.ttl)),
            shared: OnceLock::new(),
            capacity: match self.capacity {
                Some(capacity) => capacity as u64,
                None => u64::MAX,
            },
            tracked: super::prompt::Tracked::new(),
        }
    }
}
