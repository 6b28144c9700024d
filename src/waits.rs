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

/// Where tokens come from: never 0, which means "none".
static NEXT: AtomicU64 = AtomicU64::new(1);

/// A token nobody has had.
fn fresh() -> Token {
    NEXT.fetch_add(1, Relaxed)
}

thread_local! {
    /// The token of the async computation being polled on this thread, or 0.
    static POLLING: Cell<Token> = const { Cell::new(0) };
}

/// This thread's token.
pub(crate) fn current() -> Token {
    thread_local! {
        static TOKEN: Cell<Token> = const { Cell::new(0) };
    }
    TOKEN.with(|token| {
        if token.get() == 0 {
            token.set(fresh());
        }
        token.get()
    })
}

/// The token of an async call: that of the computation whose poll makes this call, so
/// that a computation that awaits its own key, directly or through other cached
/// methods, is recognized as a recursion; a fresh one for a call made outside any
/// computation (a task's own stack of awaits plays the part of a thread's call stack).
pub(crate) fn current_async() -> Token {
    match POLLING.with(Cell::get) {
        0 => fresh(),
        token => token,
    }
}

/// Marks this thread as polling the computation of `token` until dropped (also on
/// unwinding), restoring what it was.
pub(crate) struct Polling(Token);

impl Polling {
    pub(crate) fn enter(token: Token) -> Self {
        Self(POLLING.with(|polling| polling.replace(token)))
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        POLLING.with(|polling| polling.set(self.0));
    }
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
