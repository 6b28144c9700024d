//! Idle purging, opt-in: a sweep of a registry every period, by a thread of its own or
//! by a future on any runtime, so that an idle cache frees dead owners' values and
//! expired entries too (lazy purging needs traffic).

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::Registry;

/// A thread that [`purge`](Registry::purge)s a registry every period, made by
/// [`Registry::sweep_every`]; dropping it (or [`stop`](Self::stop)) stops the thread
/// and waits for it to end.
pub struct Sweeper {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

/// Set once to stop the sweeper; its thread sleeps on it between sweeps.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Registry {
    /// Starts a thread that [`purge`](Self::purge)s this registry every `period`:
    /// dead owners' entries and expired ones go within a period, with no traffic. Stops
    /// when the returned [`Sweeper`] drops.
    ///
    /// Each sweep visits every entry (as `purge` does), under one shard's lock at a
    /// time, so hits on other shards go on meanwhile. A panic of user code during a sweep
    /// (a removed value's `Drop`, the removal listener) ends that sweep, not the thread.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use weakmemo::Registry;
    ///
    /// static CACHE: Registry = Registry::new();
    ///
    /// fn len(text: &Arc<String>, &(): &()) -> usize { text.len() }
    ///
    /// let sweeper = CACHE.sweep_every(Duration::from_millis(10));
    /// let text = Arc::new("abc".to_string());
    /// CACHE.method(len).call(&text, ());
    /// drop(text);
    /// while CACHE.stats().entries > 0 {
    ///     std::thread::sleep(Duration::from_millis(5)); // no cache traffic
    /// }
    /// drop(sweeper); // stops the thread
    /// ```
    ///
    /// # Panics
    ///
    /// If `period` is zero, or the thread cannot be spawned.
    pub fn sweep_every(&'static self, period: Duration) -> Sweeper {
        assert!(
            !period.is_zero(),
            "weakmemo: a sweep period must not be zero"
        );
        let stop = Arc::new(Stop::default());
        let thread = thread::Builder::new()
            .name("weakmemo-sweeper".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    while !stop.wait(period) {
                        sweep(self);
                    }
                }
            })
            .expect("weakmemo: could not spawn the sweeper thread");
        Sweeper {
            stop,
            thread: Some(thread),
        }
    }

    /// A future that [`purge`](Self::purge)s this registry every `period`, for an
    /// async runtime, which it does not depend on: `sleep` is the runtime's timer (for
    /// tokio, `tokio::time::sleep`). It never ends; dropping it (aborting its task)
    /// stops it.
    ///
    /// A sweep runs inside one poll and blocks its worker thread while it visits every
    /// entry; give it a blocking-friendly task where that matters. A panic of user code
    /// during a sweep ends that sweep, not the future.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weakmemo::Registry;
    ///
    /// static CACHE: Registry = Registry::new();
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let sweeping = tokio::spawn(CACHE.sweeping(Duration::from_secs(60), tokio::time::sleep));
    /// // ... serve ...
    /// sweeping.abort(); // stops it
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub fn sweeping<Sleep, Slept>(
        &'static self,
        period: Duration,
        mut sleep: Sleep,
    ) -> impl Future<Output = ()> + use<Sleep, Slept>
    where
        Sleep: FnMut(Duration) -> Slept,
        Slept: Future<Output = ()>,
    {
        assert!(
            !period.is_zero(),
            "weakmemo: a sweep period must not be zero"
        );
        async move {
            loop {
                sleep(period).await;
                sweep(self);
            }
        }
    }
}

/// One sweep; a panic of user code in it is dropped with the sweep, since a sweeper has
/// nobody to report it to (the entries are removed and the books exact whatever
/// panics, see `Registry::purge`).
fn sweep(registry: &Registry) {
    let _ = catch_unwind(AssertUnwindSafe(|| registry.purge()));
}

impl Stop {
    /// Sleeps for `period` or until stopped; whether stopped.
    fn wait(&self, period: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, period, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }
}

impl Sweeper {
    /// Stops the thread and waits for it to end (as dropping the sweeper does).
    pub fn stop(self) {}
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            // Dropped by its own thread (from a removal listener or a value's `Drop`
            // run by a sweep): the thread ends after this sweep; it cannot wait for
            // itself.
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sweeper").finish_non_exhaustive()
    }
}
