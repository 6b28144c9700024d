//! The one way out of a table: every removed entry is counted by cause, reported to the
//! listener once and dropped, after every lock is released, whatever panics meanwhile.

use std::any::Any;
use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use super::MethodCache;
use super::entry::Entry;
use super::shard::{Counters, Tables};
use super::single_flight::in_flight::Pending;
use super::store::release;
use crate::lock_scope::Scoped;
use crate::owners::SharedHeld;
use crate::removal::{Removal, RemovalCause, tell};
use std::hash::Hash;

/// Entries taken out of a table, with their causes: the one way out of a table. Each
/// gives its weight back as it is pushed (so that an eviction loop sees the room it
/// made), and is counted, reported and dropped once every lock is released: by
/// [`Removals::settle`], or by `Drop` if a panic unwinds first.
pub(super) struct Removals<'a, H: SharedHeld, A: 'static, V: 'static> {
    pub(super) cache: &'a MethodCache<H, A, V>,
    pub(super) removed: Vec<(Entry<H, A, V>, RemovalCause)>,
}

/// A panic of user code (a removed entry's `Drop`) met while settling, resumed by the
/// operation once it has done all its work.
pub(crate) type Deferred = Option<Box<dyn Any + Send>>;

/// Resumes a deferred panic, if any.
pub(crate) fn resume(deferred: Deferred) {
    if let Some(payload) = deferred {
        resume_unwind(payload);
    }
}

impl<'a, H: SharedHeld, A: 'static, V: 'static> Removals<'a, H, A, V> {
    pub(super) fn new(cache: &'a MethodCache<H, A, V>) -> Self {
        Self {
            cache,
            removed: Vec::new(),
        }
    }

    /// Takes in an entry just removed from its table.
    pub(super) fn push(&mut self, entry: Entry<H, A, V>, cause: RemovalCause) {
        release(&self.cache.held, entry.stamp.weight());
        if entry.in_window()
            && let Some(bound) = self.cache.bound.get()
        {
            release(&bound.window_held, entry.stamp.weight());
        }
        self.removed.push((entry, cause));
    }

    pub(super) fn len(&self) -> usize {
        self.removed.len()
    }

    /// Counts the entries by cause, tells the listener of each, and drops them; call
    /// with no lock held. Every entry is dropped even if some `Drop` panics; the first
    /// such panic is returned, to be resumed when the caller's work is done.
    #[must_use]
    pub(super) fn settle(mut self) -> Deferred {
        self.settle_all()
    }

    #[inline]
    pub(super) fn settle_all(&mut self) -> Deferred {
        if self.removed.is_empty() {
            None
        } else {
            self.cache.settle_some(mem::take(&mut self.removed))
        }
    }
}

impl<H: SharedHeld, A: 'static, V: 'static> Drop for Removals<'_, H, A, V> {
    fn drop(&mut self) {
        // Reached with entries only if a panic unwinds past their settling: the panic
        // under way is the one to report.
        let _ = self.settle_all();
    }
}

impl<H: SharedHeld, A: 'static, V: 'static> MethodCache<H, A, V> {
    #[inline(never)]
    pub(super) fn settle_some(&self, removed: Vec<(Entry<H, A, V>, RemovalCause)>) -> Deferred {
        for (_, cause) in &removed {
            Counters::add(self.counters.of(*cause), 1);
        }
        if let Some(listener) = self.shared.listener.get() {
            for (entry, cause) in &removed {
                let removal = Removal {
                    cause: *cause,
                    method: self.method,
                    name: self.name,
                    args: &entry.args,
                    value: &entry.value,
                };
                tell(&listener, &removal);
            }
        }
        let mut deferred = None;
        for (entry, _) in removed {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(entry))) {
                deferred.get_or_insert(payload);
            }
        }
        deferred
    }
}

impl<H, A, V> MethodCache<H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Removes the entries `doomed` picks, shard by shard, with their causes, and marks
    /// the pending keys `covered` picks stale. Every shard is done even if a removed
    /// entry's `Drop` panics; the first such panic is resumed at the end.
    pub(super) fn remove_where(
        &self,
        doomed: impl Fn(&Entry<H, A, V>) -> Option<RemovalCause>,
        covered: impl Fn(&Pending<H::Addrs, A, V>) -> bool,
    ) -> usize {
        let mut count = 0;
        let mut deferred = None;
        for shard in self.made_shards() {
            let mut removals = Removals::new(self);
            {
                let mut tables = Scoped::lock(|| shard.tables.write());
                let Tables { ready, in_flight } = &mut *tables;
                in_flight.get_mut().invalidate(&covered);
                for entry in ready.extract_if(|entry| doomed(entry).is_some()) {
                    let cause = doomed(&entry).unwrap_or(RemovalCause::Collected);
                    removals.push(entry, cause);
                }
                // Give memory back after a burst, with slack so that purges do not
                // shrink and regrow a table again and again.
                let live = ready.len();
                if live * 4 < ready.capacity() {
                    ready.shrink_to(live * 2, Entry::hash);
                }
            }
            count += removals.len();
            let panic = removals.settle();
            deferred = deferred.or(panic);
        }
        resume(deferred);
        count
    }
}
