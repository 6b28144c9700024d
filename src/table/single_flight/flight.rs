//! An in-flight computation: the one thing waiters of a cold key wait on.
//!
//! The state machine of a key (see the design notes, "Single flight"):
//!
//! ```text
//!   absent ──claim──▶ pending(computer, args, flight?) ──complete──▶ ready(value)
//!                          │        │
//!                          │        └──invalidate──▶ pending, stale ──complete──▶ absent
//!                          └──abandon (panic or error)──▶ absent
//! ```
//!
//! A caller that finds the key pending (and not stale) takes (or creates) its `Flight`,
//! releases the locks, and waits for the flight to finish. The flight carries the
//! computed value to its waiters, so they receive it whether or not it was stored (a
//! bound may refuse it, an invalidation may have made it stale); if the computation was
//! abandoned, a waiter looks the key up again and claims it itself. The flight is
//! created by the first waiter, so an uncontended miss never allocates one. A thread
//! waits through a condition variable; a task registers a `Waker` (the async path builds
//! on that).

use std::future::poll_fn;
use std::sync::OnceLock;
use std::task::{Poll, Waker};

use crate::sync::{Condvar, Mutex};

pub(crate) struct Flight<V> {
    state: Mutex<FlightState>,
    finished: Condvar,
    /// The computed value, set before `finish` and never changed after, so that waiters
    /// clone it with no lock held (a `Clone` may call the registry).
    value: OnceLock<V>,
}

impl<V> Default for Flight<V> {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            finished: Condvar::default(),
            value: OnceLock::new(),
        }
    }
}

#[derive(Default)]
struct FlightState {
    done: bool,
    wakers: Vec<Waker>,
}

impl<V> Flight<V> {
    /// Blocks this thread until [`Flight::finish`].
    pub(crate) fn wait(&self) {
        let mut state = self.state.lock();
        while !state.done {
            state = self.finished.wait(state);
        }
    }

    /// Waits, as a task, until [`Flight::finish`]: the task is woken, never blocked.
    pub(crate) async fn finished(&self) {
        // Where this task's waker is listed, once it is: a task polled again replaces
        // its own waker in place, so a thousand waiters cost a thousand steps, not a
        // million.
        let mut listed: Option<usize> = None;
        poll_fn(|cx| {
            let mut state = self.state.lock();
            if state.done {
                return Poll::Ready(());
            }
            match listed {
                // The list is only emptied by `finish`, which sets `done` first.
                Some(at) if !state.wakers[at].will_wake(cx.waker()) => {
                    state.wakers[at] = cx.waker().clone();
                }
                Some(_) => {}
                None => {
                    listed = Some(state.wakers.len());
                    state.wakers.push(cx.waker().clone());
                }
            }
            Poll::Pending
        })
        .await;
    }

    /// The computed value, once finished; `None` if the computation was abandoned.
    pub(crate) fn value(&self) -> Option<&V> {
        self.value.get()
    }

    /// Hands `value` to the waiters; call before [`Self::finish`].
    pub(crate) fn set(&self, value: V) {
        let _ = self.value.set(value);
    }

    /// Marks the computation over (with a value, or abandoned) and wakes every waiter.
    pub(crate) fn finish(&self) {
        let wakers = {
            let mut state = self.state.lock();
            state.done = true;
            std::mem::take(&mut state.wakers)
        };
        self.finished.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }
}
