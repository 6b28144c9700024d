//! Who calls, and which caller waits for which: detects a wait that would close a cycle.
//!
//! A thread waits only while it computes nothing but its own call stack, so a cycle of
//! threads each waiting for the next one's computation can never resolve. Async
//! computations have a token each, and the computations being polled on a thread form
//! its stack ([`Caller`]); a computation claimed inside another's poll is waited for by
//! that one, and the map records it while it runs. Before waiting
//! for the computer of a key, a caller follows the chain of waits from that computer; if
//! the chain comes back to the caller, waiting would deadlock, and the caller panics
//! instead. The map is taken only by callers about to wait, never on a hit.

use std::cell::{Cell, RefCell};
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
    /// The tokens of the async computations being polled on this thread, innermost
    /// last: a computation's future polls the futures of the calls its method makes, so
    /// polls nest as calls do on a thread's stack.
    static POLLING: RefCell<Vec<Token>> = const { RefCell::new(Vec::new()) };
}

/// This thread's token.
fn current() -> Token {
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

/// Who makes a call, for the in-flight protocol: the token a key it claims is computed
/// under, the token it waits as, and whether a computation is its own (waiting for it
/// would be waiting for itself).
pub(crate) struct Caller {
    /// The computer of a key this caller claims.
    pub(crate) computes_as: Token,
    /// Who waits, in the wait-for map, when this caller waits.
    pub(crate) waits_as: Token,
    /// An async call made while a computation is polled: that computation waits for
    /// what this call computes, so the edge is in the wait-for map while it computes.
    nested: bool,
    sync: bool,
}

impl Caller {
    /// A call of `call` or `try_call`: a thread's stack is strictly nested, so every
    /// computation on it is the thread's, and one of its keys met again is a recursion.
    pub(crate) fn thread() -> Self {
        let token = current();
        Self {
            computes_as: token,
            waits_as: token,
            nested: false,
            sync: true,
        }
    }

    /// A call of `call_async` or `try_call_async`. Its computation gets a fresh token:
    /// two calls polled by one computation (`join!` of one key) are siblings, not a
    /// recursion, so they must not share one. It waits as the innermost computation
    /// being polled, if any: that computation cannot go on until this call returns.
    pub(crate) fn task() -> Self {
        let computes_as = fresh();
        let polled = POLLING.with(|polling| polling.borrow().last().copied());
        Self {
            computes_as,
            waits_as: polled.unwrap_or(computes_as),
            nested: polled.is_some(),
            sync: false,
        }
    }

    /// Whether the computation of `computer` is this caller's own: for a thread, its
    /// own token; for a task, a computation being polled on this thread now, which
    /// this call would await from inside.
    pub(crate) fn owns(&self, computer: Token) -> bool {
        if self.sync {
            computer == self.computes_as
        } else {
            POLLING.with(|polling| polling.borrow().contains(&computer))
        }
    }

    /// For a key this caller claimed: records that the computation polling this call
    /// waits for it, so that a cycle through it is seen (none for a thread, whose
    /// computations all share its token).
    pub(crate) fn computing(&self, method: &str) -> Option<Waiting> {
        self.nested
            .then(|| enter(self.waits_as, self.computes_as, method))
    }
}

/// Marks this thread as polling the computation of `token` until dropped (also on
/// unwinding).
pub(crate) struct Polling;

impl Polling {
    pub(crate) fn enter(token: Token) -> Self {
        POLLING.with(|polling| polling.borrow_mut().push(token));
        Self
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        POLLING.with(|polling| polling.borrow_mut().pop());
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
