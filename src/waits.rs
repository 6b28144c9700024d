//! Which thread waits for which: detects a wait that would close a cycle.
//!
//! A thread waits only while it computes nothing but its own call stack, so a cycle of
//! threads each waiting for the next one's computation can never resolve. Before waiting
//! for the computer of a key, a caller follows the chain of waits from that computer; if
//! the chain comes back to the caller, waiting would deadlock, and the caller panics
//! instead. The map is taken only by callers about to wait, never on a hit.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::sync::{Mutex, thread_local};

/// A thread's identity for the in-flight protocol: cheaper than `thread::current()`.
pub(crate) type Token = u64;

/// This thread's token.
pub(crate) fn current() -> Token {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: Cell<Token> = const { Cell::new(0) };
    }
    TOKEN.with(|token| {
        if token.get() == 0 {
            token.set(NEXT.fetch_add(1, Relaxed));
        }
        token.get()
    })
}

/// (waiter, computer) pairs; as many as threads waiting now.
static WAITING: Mutex<Vec<(Token, Token)>> = Mutex::new(Vec::new());

/// Records that thread `me` is about to wait for a computation of thread `computer`;
/// the record lasts as long as the returned guard.
///
/// # Panics
///
/// If `computer` is, directly or through other waits, waiting for `me`.
#[must_use]
pub(crate) fn enter(me: Token, computer: Token, method: &str) -> Waiting {
    {
        let mut waiting = WAITING.lock();
        debug_assert_ne!(computer, me, "a thread never waits for its own computation");
        // The map never holds a cycle (each wait is checked as it is added, under this
        // lock), so the chain from `computer` ends within `len` steps.
        let mut at = computer;
        for _ in 0..=waiting.len() {
            let Some(&(_, next)) = waiting.iter().find(|(waiter, _)| *waiter == at) else {
                break;
            };
            if next == me {
                drop(waiting);
                panic!(
                    "weakmemo: deadlock avoided: a call of `{method}` would wait for a \
                     computation whose thread is itself waiting, directly or through other \
                     threads, for a computation of this thread; the cached methods call \
                     each other in a cycle across threads"
                );
            }
            at = next;
        }
        waiting.push((me, computer));
    }
    Waiting(me)
}

/// A thread's wait, in the map until dropped (even by unwinding).
pub(crate) struct Waiting(Token);

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.lock().retain(|(waiter, _)| *waiter != self.0);
    }
}
