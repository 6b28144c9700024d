//! An in-flight computation: the one thing waiters of a cold key wait on.
//!
//! The state machine of a key (see the design notes, "Single flight"):
//!
//! ```text
//!   absent ──claim──▶ pending(computer, args, flight?) ──complete──▶ ready(value)
//!                          │
//!                          └──abandon (panic or error)──▶ absent
//! ```
//!
//! A caller that finds the key pending takes (or creates) its `Flight`, releases the
//! locks, and waits for the flight to finish; then it looks the key up again, so it either
//! hits or, if the computation was abandoned, claims the key itself. The flight is
//! created by the first waiter, so an uncontended miss never allocates one. Waiting is
//! the only thing a flight does, through a condition variable for threads; a task can be
//! woken the same way by registering a `Waker` (the async path builds on that).

use std::future::poll_fn;
use std::task::{Poll, Waker};

use crate::sync::{Condvar, Mutex};

#[derive(Default)]
pub(crate) struct Flight {
    state: Mutex<FlightState>,
    finished: Condvar,
}

#[derive(Default)]
struct FlightState {
    done: bool,
    wakers: Vec<Waker>,
}

impl Flight {
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

    /// Marks the computation over (stored or abandoned) and wakes every waiter.
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
