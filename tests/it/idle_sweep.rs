//! Idle purging: a sweeper (a thread, or a future on a runtime) frees dead owners'
//! values and expired entries with no cache traffic, and stops when dropped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weakmemo::{Registry, Sweeper};

use crate::common::{Live, Owner, Val, value};

const PERIOD: Duration = Duration::from_millis(20);

fn registry() -> &'static Registry {
    Box::leak(Box::new(Registry::new()))
}

/// Waits (with no cache access but `stats`, which removes nothing) until `done`, for at
/// most `limit`; whether it came.
fn within(limit: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    done()
}

#[test]
fn an_idle_cache_frees_dead_owners_values() {
    let registry = registry();
    let owner = Owner::new(1);
    let values = owner.values.clone();
    for arg in 0..10 {
        registry.method(value).call(&owner, arg);
    }
    let _sweeper = registry.sweep_every(PERIOD);
    drop(owner);
    assert!(
        within(PERIOD * 250, || values.get() == 0),
        "values left: {}",
        values.get()
    );
    assert_eq!(registry.stats().entries, 0);
}

#[test]
fn an_idle_cache_drops_expired_entries() {
    let registry = registry();
    registry.set_ttl(Some(Duration::from_millis(1)));
    let owner = Owner::new(2);
    registry.method(value).call(&owner, 0);
    let _sweeper = registry.sweep_every(PERIOD);
    assert!(within(PERIOD * 250, || owner.values.get() == 0));
    assert_eq!(registry.stats().expired, 1);
}

#[test]
fn a_dropped_sweeper_sweeps_no_more() {
    let registry = registry();
    let sweeper = registry.sweep_every(PERIOD);
    let owner = Owner::new(3);
    let values = owner.values.clone();
    registry.method(value).call(&owner, 0);
    sweeper.stop();
    drop(owner);
    std::thread::sleep(PERIOD * 10);
    assert_eq!(values.get(), 1, "a stopped sweeper purged");
    assert_eq!(registry.stats().purged, 0);
}

/// A sweep whose value `Drop` panics ends that sweep, not the thread: later sweeps run.
#[test]
fn a_panic_in_a_sweep_does_not_stop_the_sweeper() {
    #[derive(Clone)]
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            if !std::thread::panicking()
                && std::thread::current().name() == Some("weakmemo-sweeper")
            {
                panic!("bomb");
            }
        }
    }
    fn bomb(owner: &Arc<Owner>, &(): &()) -> Bomb {
        let _ = owner;
        Bomb
    }
    let registry = registry();
    let _sweeper = registry.sweep_every(PERIOD);
    let first = Owner::new(4);
    registry.method(bomb).call(&first, ());
    drop(first);
    assert!(within(PERIOD * 250, || registry.stats().entries == 0));
    let second = Owner::new(5);
    let values = second.values.clone();
    registry.method(value).call(&second, 0);
    drop(second);
    assert!(
        within(PERIOD * 250, || values.get() == 0),
        "the sweeper stopped at the panic"
    );
}

/// A sweeper dropped by its own thread, from the removal listener, ends without waiting
/// for itself.
#[test]
fn a_sweeper_dropped_by_its_own_sweep_ends() {
    static SWEEPER: Mutex<Option<Sweeper>> = Mutex::new(None);
    let registry = registry();
    let heard = Live::new();
    let counted = heard.clone();
    registry.set_removal_listener(Some(Arc::new(move |_: &weakmemo::Removal<'_>| {
        std::mem::forget(Val::new(0, &counted));
        SWEEPER.lock().unwrap().take();
    })));
    *SWEEPER.lock().unwrap() = Some(registry.sweep_every(PERIOD));
    let owner = Owner::new(6);
    registry.method(value).call(&owner, 0);
    drop(owner);
    assert!(within(PERIOD * 250, || heard.get() == 1));
    assert!(SWEEPER.lock().unwrap().is_none());
}

#[test]
#[should_panic(expected = "weakmemo: a sweep period must not be zero")]
fn a_zero_period_is_refused() {
    let _ = registry().sweep_every(Duration::ZERO);
}

/// The future form, on a runtime's timer: it frees an idle cache's dead values, and
/// sweeps no more once its task is aborted.
#[test]
fn the_sweeping_future_runs_on_a_runtime_and_stops_when_dropped() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let registry = registry();
    let owner = Owner::new(7);
    let values = owner.values.clone();
    registry.method(value).call(&owner, 0);
    let sweeping = runtime.spawn(registry.sweeping(PERIOD, tokio::time::sleep));
    drop(owner);
    assert!(within(PERIOD * 250, || values.get() == 0));
    sweeping.abort();
    runtime.block_on(async { assert!(sweeping.await.unwrap_err().is_cancelled()) });
    let later = Owner::new(8);
    let later_values = later.values.clone();
    registry.method(value).call(&later, 0);
    drop(later);
    std::thread::sleep(PERIOD * 10);
    assert_eq!(later_values.get(), 1, "an aborted sweeping future purged");
}
