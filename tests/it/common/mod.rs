//! Helpers shared by the integration tests: drop counters, values that count their live
//! copies, a seeded xorshift generator and a watchdog.
//!
//! The test binary's modules share it (`use crate::common;`), and each uses only part of
//! it, hence the `dead_code` allowance. `alloc` is the binary's global allocator, which
//! counts per thread.
#![allow(dead_code)]

pub mod alloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::time::Duration;

/// A shared counter of events (drops, invocations).
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, SeqCst);
    }
    pub fn get(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// How many instances of a [`Val`] family exist now: +1 when one is made or cloned,
/// -1 when one is dropped. A value the cache holds counts 1; a value dropped twice
/// would drive the count below what the test expects.
#[derive(Clone, Debug, Default)]
pub struct Live(Arc<AtomicIsize>);

impl Live {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn get(&self) -> isize {
        self.0.load(SeqCst)
    }
}

/// A cached value that counts its live copies in a [`Live`].
#[derive(Debug)]
pub struct Val {
    pub n: u64,
    live: Live,
}

impl Val {
    pub fn new(n: u64, live: &Live) -> Self {
        live.0.fetch_add(1, SeqCst);
        Self {
            n,
            live: live.clone(),
        }
    }
}

impl Clone for Val {
    fn clone(&self) -> Self {
        Self::new(self.n, &self.live)
    }
}

impl Drop for Val {
    fn drop(&mut self) {
        self.live.0.fetch_sub(1, SeqCst);
    }
}

impl PartialEq for Val {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n
    }
}

/// An owner that counts its drops and hands its methods a [`Live`] for their values.
#[derive(Debug)]
pub struct Owner {
    pub id: u64,
    pub drops: Counter,
    pub values: Live,
    pub invocations: Counter,
}

impl Owner {
    /// A new owner with fresh counters.
    pub fn new(id: u64) -> Arc<Self> {
        Arc::new(Self {
            id,
            drops: Counter::new(),
            values: Live::new(),
            invocations: Counter::new(),
        })
    }

    /// A new owner sharing counters with others.
    pub fn with(id: u64, drops: &Counter, values: &Live, invocations: &Counter) -> Arc<Self> {
        Arc::new(Self {
            id,
            drops: drops.clone(),
            values: values.clone(),
            invocations: invocations.clone(),
        })
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.drops.inc();
    }
}

/// Expected value of [`value`] and [`other_value`].
pub fn expected(id: u64, method: u64, arg: u32) -> u64 {
    id * 1000 + method * 100 + u64::from(arg)
}

/// A cached method: a pure function of the owner's id and the argument.
pub fn value(owner: &Arc<Owner>, &arg: &u32) -> Val {
    owner.invocations.inc();
    Val::new(expected(owner.id, 1, arg), &owner.values)
}

/// A second method with the same signature: a different method.
pub fn other_value(owner: &Arc<Owner>, &arg: &u32) -> Val {
    owner.invocations.inc();
    Val::new(expected(owner.id, 2, arg), &owner.values)
}

/// A fallible method: `Err` for odd arguments, the error also a counted value.
pub fn checked(owner: &Arc<Owner>, &arg: &u32) -> Result<Val, Val> {
    owner.invocations.inc();
    let val = Val::new(expected(owner.id, 3, arg), &owner.values);
    if arg % 2 == 0 { Ok(val) } else { Err(val) }
}

/// xorshift64*: a tiny seeded generator, so that failures replay.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-enough in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Runs `work` on its own thread and fails the test if it does not finish in `limit`,
/// so that a deadlock shows as a failure instead of a hung test run. A panic in `work`
/// is re-raised here.
pub fn watchdog<R: Send + 'static>(
    limit: Duration,
    work: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (done, finished) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let result = work();
        let _ = done.send(());
        result
    });
    match finished.recv_timeout(limit) {
        Ok(()) => handle.join().expect("the watched work panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(_) => unreachable!("the work ended without reporting"),
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: the work did not finish within {limit:?}; a deadlock?")
        }
    }
}

/// The message of a caught panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

std::thread_local! {
    /// While set, the test types that can panic (such as [`Touchy`]) panic, on this
    /// thread only.
    static ARMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread's panicking test types are armed.
pub fn armed() -> bool {
    ARMED.get()
}

/// Arms or disarms this thread's panicking test types.
pub fn arm(on: bool) {
    ARMED.set(on);
}

/// An argument whose `Eq` panics with "touchy eq" while [`armed`] (it runs under a
/// shard lock).
#[derive(Debug)]
pub struct Touchy(pub u32);

impl std::hash::Hash for Touchy {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for Touchy {
    fn eq(&self, other: &Self) -> bool {
        if armed() {
            panic!("touchy eq");
        }
        self.0 == other.0
    }
}

impl Eq for Touchy {}

/// An owner whose cached value holds the owner itself (see [`myself`]): a cycle through
/// the cache that only invalidation or eviction breaks. Counts its drops.
pub struct Node {
    pub drops: Counter,
}

impl Node {
    pub fn new(drops: &Counter) -> Arc<Self> {
        Arc::new(Self {
            drops: drops.clone(),
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.drops.inc();
    }
}

/// The method whose value is its own owner.
pub fn myself(node: &Arc<Node>, &(): &()) -> Arc<Node> {
    Arc::clone(node)
}

/// One removal as a [`Recorder`] saw it: the cause, the arguments and the value.
pub type Record<A, V> = (weakmemo::RemovalCause, A, V);

/// A removal listener that records every removal whose arguments are an `A` and value a
/// `V` (with its cause), and counts every removal by cause, whatever its types.
pub struct Recorder<A, V> {
    seen: Arc<std::sync::Mutex<Vec<Record<A, V>>>>,
    causes: Arc<std::sync::Mutex<Vec<weakmemo::RemovalCause>>>,
}

impl<A, V> Clone for Recorder<A, V> {
    fn clone(&self) -> Self {
        Self {
            seen: Arc::clone(&self.seen),
            causes: Arc::clone(&self.causes),
        }
    }
}

impl<A: Clone + Send + 'static, V: Clone + Send + 'static> Recorder<A, V> {
    pub fn new() -> Self {
        Self {
            seen: Arc::default(),
            causes: Arc::default(),
        }
    }

    /// The listener that records into this recorder.
    pub fn listener(&self) -> weakmemo::RemovalListener {
        let recorder = self.clone();
        Arc::new(move |removal: &weakmemo::Removal<'_>| recorder.record(removal))
    }

    /// A new recorder, set as `cache`'s listener.
    pub fn install(cache: &weakmemo::Registry) -> Self {
        let recorder = Self::new();
        cache.set_removal_listener(Some(recorder.listener()));
        recorder
    }

    pub fn record(&self, removal: &weakmemo::Removal<'_>) {
        self.causes.lock().unwrap().push(removal.cause());
        if let (Some(args), Some(value)) = (removal.args::<A>(), removal.value::<V>()) {
            let record = (removal.cause(), args.clone(), value.clone());
            self.seen.lock().unwrap().push(record);
        }
    }

    /// The removals of type `A`, `V` recorded since the last `take`.
    pub fn take(&self) -> Vec<Record<A, V>> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// The removals of type `A`, `V` recorded since the last `take`, left in place.
    pub fn peek(&self) -> Vec<Record<A, V>> {
        self.seen.lock().unwrap().clone()
    }

    /// Removals of any type with this cause, since the recorder was made.
    pub fn count(&self, cause: weakmemo::RemovalCause) -> u64 {
        let causes = self.causes.lock().unwrap();
        causes.iter().filter(|&&seen| seen == cause).count() as u64
    }

    /// Removals of any type, since the recorder was made.
    pub fn total(&self) -> u64 {
        self.causes.lock().unwrap().len() as u64
    }
}

impl<A: Clone + Send + 'static, V: Clone + Send + 'static> Default for Recorder<A, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// `records` sorted, to compare as a multiset.
pub fn sorted<A: Ord, V: Ord>(mut records: Vec<Record<A, V>>) -> Vec<Record<A, V>> {
    records.sort_by(|a, b| {
        (format!("{:?}", a.0), &a.1, &a.2).cmp(&(format!("{:?}", b.0), &b.1, &b.2))
    });
    records
}

/// Taken by every test that uses `weakmemo::global()`: they share one process now (one
/// test binary), and some change its settings (bound, purge interval) or count its
/// stats, so they run one at a time (a failed one poisons nothing).
pub fn global_registry() -> std::sync::MutexGuard<'static, ()> {
    static GLOBAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GLOBAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A trait for `Arc<dyn Shape>` owners, with two implementations.
pub trait Shape: Send + Sync {
    fn area(&self) -> f64;
}

pub struct Square(pub f64);

impl Shape for Square {
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

pub struct Circle(pub f64);

impl Shape for Circle {
    fn area(&self) -> f64 {
        3.0 * self.0 * self.0
    }
}

/// Keeps the panics with this payload out of the test output (a test that panics on
/// purpose); every other panic is reported as usual. One hook serves every caller.
pub fn quiet_panics(payload: &'static str) {
    static QUIET: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    static ONCE: std::sync::Once = std::sync::Once::new();
    QUIET
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(payload);
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = panic_message(info.payload());
            let quiet = QUIET.lock().unwrap_or_else(|e| e.into_inner());
            if !quiet.iter().any(|&q| q == message) {
                report(info);
            }
        }));
    });
}

/// The handle of a fallible method's `Ok` table, the one `try_call` stores in, for the
/// tests that read or tune it without calling it there.
pub fn ok_table<'r, F, O, A, T, E>(
    cache: &'r weakmemo::Registry,
    method: F,
) -> weakmemo::Memo<'r, F, O::Held, A, T>
where
    F: Fn(O, &A) -> Result<T, E> + 'static,
    O: weakmemo::Owners<Held: weakmemo::SharedHeld>,
    A: std::hash::Hash + Eq + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    cache.method(method)
}
