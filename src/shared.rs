//! What a registry's tables read of their registry as they store and remove entries.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::removal::ListenerSlot;

/// Shared by a registry and its tables, which cannot borrow the registry that owns them.
pub(crate) struct Shared {
    /// The registry's bound, in weight (entries, unless methods have weighers);
    /// `u64::MAX` is none.
    capacity: AtomicU64,
    pub(crate) listener: ListenerSlot,
}

impl Shared {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            capacity: AtomicU64::new(capacity),
            listener: ListenerSlot::default(),
        }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity.load(Relaxed)
    }

    pub(crate) fn set_capacity(&self, capacity: u64) {
        self.capacity.store(capacity, Relaxed);
    }
}
