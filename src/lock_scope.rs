//! Detects a registry call made while this thread holds one of the registry's locks.
//!
//! Only two kinds of user code run under a shard lock: the arguments' `Eq` (to compare
//! keys) and the values' `Clone` (to hand out a copy). If either called back into a
//! registry, the nested call could wait for a lock its own thread holds. The registry
//! never holds two of these locks at once, so one thread-local flag, checked and set as a
//! lock is taken and cleared as it is released, turns that hang into a panic with a
//! precise message, for two thread-local accesses per lock.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

use crate::sync::thread_local;

thread_local! {
    static LOCKED: Cell<bool> = const { Cell::new(false) };
}

/// A lock guard, taken only if this thread holds no other registry lock.
pub(crate) struct Scoped<G>(G);

impl<G> Scoped<G> {
    /// Runs `acquire` (which takes a lock) and wraps its guard.
    ///
    /// # Panics
    ///
    /// If this thread already holds a registry lock: it is inside an argument's `Eq` or
    /// a value's `Clone` that the registry runs under a lock.
    #[inline]
    pub(crate) fn lock(acquire: impl FnOnce() -> G) -> Self {
        if LOCKED.with(|locked| locked.replace(true)) {
            nested_call();
        }
        Self(acquire())
    }
}

/// Panics like [`Scoped::lock`] would, for entry points that may take no lock at all
/// (a registry with no table yet) but should fail the same way whatever its contents.
pub(crate) fn assert_unlocked() {
    if LOCKED.with(Cell::get) {
        nested_call();
    }
}

/// Whether this thread holds a registry lock: it is inside an argument's `Eq` or a
/// value's `Clone`.
pub(crate) fn is_locked() -> bool {
    LOCKED.with(Cell::get)
}

#[cold]
#[inline(never)]
fn nested_call() -> ! {
    panic!(
        "weakmemo: a registry was called from an argument's `Eq` or a value's `Clone` \
         while a registry lock is held; these impls must not use a weakmemo registry"
    );
}

impl<G> Drop for Scoped<G> {
    #[inline]
    fn drop(&mut self) {
        LOCKED.with(|locked| locked.set(false));
    }
}

impl<G: Deref> Deref for Scoped<G> {
    type Target = G::Target;
    fn deref(&self) -> &G::Target {
        &self.0
    }
}

impl<G: DerefMut> DerefMut for Scoped<G> {
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.0
    }
}
