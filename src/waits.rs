//! Which thread waits for which: detects a wait that would close a cycle.
//!
//! A thread waits only while it computes nothing but its own call stack, so a cycle of
//! threads each waiting for the next one's computation can never resolve. Before waiting
//! for the computer of a key, a caller follows the chain of waits from that computer; if
//! the chain comes back to the caller, waiting would deadlock, and the caller panics
//! instead. The map is taken only by callers about to wait, never on a hit.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hashbrown::{HashMap, HashSet};

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

/// Who waits for whom: each waiter's token, with the computers it waits for (one for a
/// thread; an async computation can await several keys at once, with `join!`).
/// Created by the first wait.
static WAITING: Mutex<Option<HashMap<Token, Vec<Token>>>> = Mutex::new(None);

/// Records that `me` is about to wait for a computation of `computer`; the record lasts
/// as long as the returned guard. Costs O(1) plus the waits reachable from `computer`.
///
/// # Panics
///
/// If `computer` is, directly or through other waits, waiting for `me`.
#[must_use]
pub(crate) fn enter(me: Token, computer: Token, method: &str) -> Waiting {
    let closes_cycle = {
        let mut waiting = WAITING.lock();
        let waiting = waiting.get_or_insert_with(HashMap::new);
        debug_assert_ne!(computer, me, "a caller never waits for its own computation");
        // The graph never holds a cycle (each wait is checked as it is added, under this
        // lock), so this search ends; `seen` keeps it linear where paths join.
        let mut seen = HashSet::new();
        let mut next = vec![computer];
        let mut closes_cycle = false;
        while let Some(at) = next.pop() {
            if at == me {
                closes_cycle = true;
                break;
            }
            if seen.insert(at) {
                next.extend(waiting.get(&at).into_iter().flatten());
            }
        }
        if !closes_cycle {
            waiting.entry(me).or_default().push(computer);
        }
        closes_cycle
    };
    if closes_cycle {
        panic!(
            "weakmemo: deadlock avoided: a call of `{method}` would wait for a computation \
             that is itself waiting, directly or through others, for a computation of this \
             caller; the cached methods call each other in a cycle across threads or tasks"
        );
    }
    Waiting { me, computer }
}

/// One wait, in the map until dropped (even by unwinding).
pub(crate) struct Waiting {
    me: Token,
    computer: Token,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waiting = WAITING.lock();
        let Some(waiting) = waiting.as_mut() else {
            return;
        };
        if let Some(computers) = waiting.get_mut(&self.me) {
            if let Some(at) = computers.iter().position(|&c| c == self.computer) {
                computers.swap_remove(at);
            }
            if computers.is_empty() {
                waiting.remove(&self.me);
            }
        }
    }
}
