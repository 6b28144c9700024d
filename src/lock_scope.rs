//! Detects a registry call made while this thread holds one of the registry's locks.
//!
//! Only two kinds of user code run under a shard lock: the arguments' `Eq` (to compare
//! keys) and the values' `Clone` (to hand out a copy). If either called back into a
//! registry, the nested call could wait for a lock its own thread holds. A thread-local
//! count of held locks turns that hang into a panic with a precise message; it costs a
//! thread-local increment and decrement per lock, which the hit benchmark includes.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

thread_local! {
    static LOCKS_HELD: Cell<usize> = const { Cell::new(0) };
}

/// Panics if this thread is inside an `Eq` or `Clone` that a registry runs under a lock.
#[track_caller]
pub(crate) fn assert_not_nested() {
    if LOCKS_HELD.get() != 0 {
        panic!(
            "weakmemo: a registry was called from an argument's `Eq` or a value's `Clone` \
             while a registry lock is held; these impls must not use a weakmemo registry"
        );
    }
}

/// A lock guard that counts itself in [`LOCKS_HELD`] while it lives.
pub(crate) struct Scoped<G>(G);

impl<G> Scoped<G> {
    pub(crate) fn new(guard: G) -> Self {
        LOCKS_HELD.set(LOCKS_HELD.get() + 1);
        Self(guard)
    }
}

impl<G> Drop for Scoped<G> {
    fn drop(&mut self) {
        LOCKS_HELD.set(LOCKS_HELD.get() - 1);
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
