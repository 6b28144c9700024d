//! `call_async` and `try_call_async`: single flight across tasks, cancellation, panics,
//! recursion and cycles, owners freed, and the same tables and counters as `call`.
//! Every test runs under tokio's timer or the thread watchdog, so a hang fails it.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::{Live, Val, panic_message, watchdog};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use weakmemo::Registry;

const LIMIT: Duration = Duration::from_secs(20);

/// Runs `test` on a multi-threaded runtime under the thread watchdog.
fn run<F: Future<Output = ()> + Send + 'static>(test: impl FnOnce() -> F + Send + 'static) {
    watchdog(LIMIT, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .unwrap()
            .block_on(test());
    });
}

/// An owner whose cached method counts its runs and can be held inside until released.
struct Slow {
    runs: AtomicUsize,
    gate: Notify,
}

impl Slow {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            runs: AtomicUsize::new(0),
            gate: Notify::new(),
        })
    }
}

async fn gated(owner: &Arc<Slow>, &n: &u64) -> u64 {
    owner.runs.fetch_add(1, SeqCst);
    owner.gate.notified().await;
    n * 10
}

async fn quick(owner: &Arc<Slow>, &n: &u64) -> u64 {
    owner.runs.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    n * 10
}

/// Yields until `done` holds (the runtime's other tasks make progress meanwhile).
async fn until(done: impl Fn() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn many_tasks_on_one_cold_key_run_the_method_once() {
    run(|| async {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
        let owner = Slow::new();
        let mut tasks = JoinSet::new();
        for _ in 0..1000 {
            let owner = owner.clone();
            tasks.spawn(async move { registry.method(gated).call_async(&owner, 7).await });
        }
        until(|| registry.stats().waited + 1 >= 1000).await;
        owner.gate.notify_one();
        while let Some(value) = tasks.join_next().await {
            assert_eq!(value.unwrap(), 70);
        }
        assert_eq!(owner.runs.load(SeqCst), 1);
        let stats = registry.stats();
        assert_eq!((stats.misses, stats.waited, stats.entries), (1000, 999, 1));
    });
}

#[test]
fn a_cancelled_computation_hands_over_to_a_waiter() {
    run(|| async {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
        let owner = Slow::new();
        let first = {
            let owner = owner.clone();
            tokio::spawn(async move { registry.method(gated).call_async(&owner, 1).await })
        };
        until(|| owner.runs.load(SeqCst) == 1).await;
        let mut waiters = JoinSet::new();
        for _ in 0..8 {
            let owner = owner.clone();
            waiters.spawn(async move { registry.method(gated).call_async(&owner, 1).await });
        }
        until(|| registry.stats().waited == 8).await;
        // Cancel the computing task mid-way: its future, and with it the claim, is dropped.
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        // One waiter took over and is held at the gate in its turn.
        until(|| owner.runs.load(SeqCst) == 2).await;
        owner.gate.notify_one();
        while let Some(value) = waiters.join_next().await {
            assert_eq!(value.unwrap(), 10);
        }
        assert_eq!(owner.runs.load(SeqCst), 2);
        assert_eq!(registry.stats().entries, 1);
    });
}

#[test]
fn a_dropped_future_leaves_nothing_pending() {
    run(|| async {
        let registry = Registry::new();
        let owner = Slow::new();
        // Polled once, so the key is claimed, then dropped by the timeout.
        let timed_out = tokio::time::timeout(
            Duration::from_millis(5),
            registry.method(gated).call_async(&owner, 3),
        )
        .await;
        assert!(timed_out.is_err());
        assert_eq!(owner.runs.load(SeqCst), 1);
        // Not pending: this call computes rather than waits.
        assert_eq!(registry.method(quick).call_async(&owner, 3).await, 30);
        assert_eq!(registry.stats().waited, 0);
    });
}

async fn explode(owner: &Arc<Slow>, &n: &u64) -> u64 {
    if owner.runs.fetch_add(1, SeqCst) == 0 {
        owner.gate.notified().await;
        panic!("explode: first run");
    }
    n
}

#[test]
fn a_panic_in_the_future_reaches_its_caller_and_a_waiter_computes() {
    run(|| async {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
        let owner = Slow::new();
        let first = {
            let owner = owner.clone();
            tokio::spawn(async move { registry.method(explode).call_async(&owner, 5).await })
        };
        until(|| owner.runs.load(SeqCst) == 1).await;
        let waiter = {
            let owner = owner.clone();
            tokio::spawn(async move { registry.method(explode).call_async(&owner, 5).await })
        };
        until(|| registry.stats().waited == 1).await;
        owner.gate.notify_one();
        let panic = first.await.unwrap_err().into_panic();
        assert_eq!(panic_message(&*panic), "explode: first run");
        assert_eq!(waiter.await.unwrap(), 5);
        assert_eq!(owner.runs.load(SeqCst), 2);
        assert_eq!(registry.stats().entries, 1);
    });
}

async fn flaky(owner: &Arc<Slow>, &n: &u64) -> Result<u64, String> {
    if owner.runs.fetch_add(1, SeqCst) == 0 {
        owner.gate.notified().await;
        return Err("flaky: first run".into());
    }
    Ok(n)
}

#[test]
fn an_error_goes_to_its_caller_uncached_and_a_waiter_computes() {
    run(|| async {
        let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
        let owner = Slow::new();
        let first = {
            let owner = owner.clone();
            tokio::spawn(async move { registry.method(flaky).try_call_async(&owner, 2).await })
        };
        until(|| owner.runs.load(SeqCst) == 1).await;
        let waiter = {
            let owner = owner.clone();
            tokio::spawn(async move { registry.method(flaky).try_call_async(&owner, 2).await })
        };
        until(|| registry.stats().waited == 1).await;
        owner.gate.notify_one();
        assert_eq!(first.await.unwrap(), Err("flaky: first run".to_string()));
        assert_eq!(waiter.await.unwrap(), Ok(2));
        assert_eq!(
            registry.method(flaky).try_call_async(&owner, 2).await,
            Ok(2)
        );
        assert_eq!(registry.method(flaky).get(&owner, &2), Some(2));
        assert_eq!(owner.runs.load(SeqCst), 2);
    });
}

static SELF_CALLS: Registry = Registry::new();

async fn awaits_itself(owner: &Arc<u64>, &n: &u64) -> u64 {
    Box::pin(SELF_CALLS.method(awaits_itself).call_async(owner, n)).await
}

async fn ping(owner: &Arc<u64>, &n: &u64) -> u64 {
    Box::pin(SELF_CALLS.method(pong).call_async(owner, n)).await
}

async fn pong(owner: &Arc<u64>, &n: &u64) -> u64 {
    Box::pin(SELF_CALLS.method(ping).call_async(owner, n)).await
}

#[test]
fn a_method_awaiting_its_own_key_panics_instead_of_hanging() {
    run(|| async {
        for (name, task) in [
            (
                "awaits_itself",
                tokio::spawn(async {
                    SELF_CALLS
                        .method(awaits_itself)
                        .call_async(&Arc::new(1), 1)
                        .await
                }),
            ),
            (
                "ping",
                tokio::spawn(async { SELF_CALLS.method(ping).call_async(&Arc::new(2), 2).await }),
            ),
        ] {
            let message = panic_message(&*task.await.unwrap_err().into_panic());
            assert!(
                message.contains("recursive call for the same key") && message.contains(name),
                "{message}"
            );
        }
    });
}

static CYCLE: Registry = Registry::new();

/// Key `n` waits at the gate until both computations have started, then awaits key
/// `1 - n`, which the other task computes: a cycle.
async fn crossed(owner: &Arc<Slow>, &n: &u64) -> u64 {
    owner.runs.fetch_add(1, SeqCst);
    until(|| owner.runs.load(SeqCst) >= 2).await;
    Box::pin(CYCLE.method(crossed).call_async(owner, 1 - n)).await + 1
}

#[test]
fn a_cycle_of_tasks_panics_instead_of_hanging() {
    run(|| async {
        let owner = Slow::new();
        let tasks: Vec<_> = (0..2)
            .map(|n| {
                let owner = owner.clone();
                tokio::spawn(async move { CYCLE.method(crossed).call_async(&owner, n).await })
            })
            .collect();
        let mut panics = Vec::new();
        for task in tasks {
            let error = task.await.expect_err("no task of a cycle gets a value");
            panics.push(panic_message(&*error.into_panic()));
        }
        // The task that would close the cycle panics; the other wakes, takes over the key
        // it was waiting for, and so computes a key that needs its own: a recursion.
        panics.sort_by_key(|message| !message.contains("deadlock avoided"));
        assert!(panics[0].contains("deadlock avoided"), "{panics:?}");
        assert!(
            panics[1].contains("recursive call for the same key"),
            "{panics:?}"
        );
        assert_eq!(CYCLE.stats().entries, 0);
    });
}

async fn valued(owner: &Arc<Live>, &n: &u64) -> Val {
    tokio::task::yield_now().await;
    Val::new(n, owner)
}

#[test]
fn an_owner_dropped_during_its_computation_is_freed_and_its_entry_never_returned() {
    run(|| async {
        let registry: &'static Registry =
            Box::leak(Box::new(Registry::builder().purge_interval(1).build()));
        let live = Live::new();
        let owner = Arc::new(live.clone());
        let watch = Arc::downgrade(&owner);
        // The task holds the last strong reference while it computes.
        let task =
            tokio::spawn(async move { registry.method(valued).call_async(&owner, 9).await.n });
        assert_eq!(task.await.unwrap(), 9);
        assert!(
            watch.upgrade().is_none(),
            "the entry must not keep its owner alive"
        );
        // A new owner, perhaps at the recycled address, never sees the dead one's value,
        // and lookups purge the dead entry.
        let other = Arc::new(live.clone());
        for _ in 0..300 {
            assert_eq!(registry.method(valued).call_async(&other, 9).await.n, 9);
        }
        let stats = registry.stats();
        assert_eq!((stats.entries, stats.purged), (1, 1));
        drop(other);
        assert_eq!(registry.purge(), 1);
        assert_eq!(live.get(), 0, "every value was dropped");
    });
}

#[test]
fn async_calls_share_the_lazy_purge_and_stats_of_the_sync_path() {
    run(|| async {
        let registry = Registry::new();
        let owner = Slow::new();
        assert_eq!(registry.method(quick).call_async(&owner, 1).await, 10);
        assert_eq!(registry.method(quick).call_async(&owner, 1).await, 10);
        assert_eq!(registry.method(quick).get(&owner, &1), Some(10));
        assert_eq!(registry.method(quick).get(&owner, &2), None);
        let stats = registry.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (2, 2, 1));
        assert!(registry.method(quick).invalidate(&owner, &1));
        assert_eq!(owner.runs.load(SeqCst), 1);
    });
}

#[test]
fn single_flight_off_runs_each_caller_and_keeps_the_first_value() {
    run(|| async {
        let registry: &'static Registry =
            Box::leak(Box::new(Registry::builder().single_flight(false).build()));
        let owner = Slow::new();
        let mut tasks = JoinSet::new();
        for _ in 0..4 {
            let owner = owner.clone();
            tasks.spawn(async move { registry.method(gated).call_async(&owner, 4).await });
        }
        until(|| owner.runs.load(SeqCst) == 4).await;
        for _ in 0..4 {
            owner.gate.notify_one();
        }
        while let Some(value) = tasks.join_next().await {
            assert_eq!(value.unwrap(), 40);
        }
        let stats = registry.stats();
        assert_eq!((stats.waited, stats.discarded, stats.entries), (0, 3, 1));
    });
}

/// The returned future is `Send` when the method's is, so it can be spawned.
#[test]
fn the_future_is_send() {
    fn assert_send<F: Future + Send>(future: F) -> F {
        future
    }
    let registry = Registry::new();
    let owner = Slow::new();
    drop(assert_send(registry.method(quick).call_async(&owner, 1)));
    drop(assert_send(
        registry.method(flaky).try_call_async(&owner, 1),
    ));
}
