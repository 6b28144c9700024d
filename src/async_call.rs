//! Async methods: the cache and the in-flight protocol of [`Registry::call`], with
//! waiting done by waking tasks instead of blocking threads.
//!
//! Nothing here is a second cache. A lookup, a claim, a completion and an abandonment
//! are the very steps `call` takes, on the same tables; what differs is how a caller
//! waits ([`Flight::finished`](crate::flight) instead of blocking) and that the method is
//! a future, driven by the caller's task. No lock is ever held across an `.await`: every
//! step that locks runs to its end between two polls.
//!
//! A task's chain of awaits plays the part of a thread's call stack: a call made while
//! a computation is being polled takes that computation's token, so a method that
//! awaits its own key, directly or through other cached methods, is recognized.

use std::any::{TypeId, type_name};
use std::convert::Infallible;
use std::future::poll_fn;
use std::hash::Hash;
use std::pin::pin;
use std::sync::Arc;

use crate::identity::method_id;
use crate::method_cache::{Claim, Key, Lookup, MethodCache};
use crate::registry::{Claimed, Registry, Settled, look_again, recursive_call};
use crate::waits::{self, Polling, Token};

impl Registry {
    /// Like [`call`](Self::call), for an `async` method: the cached value, or the
    /// method's future awaited and its output cached.
    ///
    /// The method is an `async fn` item (or an `async` closure that captures nothing)
    /// taking the owner and a reference to the arguments. The returned future holds no
    /// lock across an `.await`, is `Send` when the method's future is, and depends on no
    /// runtime. (One exception to `Send`, a rustc limitation, rust-lang/rust#110338: an
    /// owner or argument type that contains a lifetime, even `'static`, such as
    /// `&'static str`, makes rustc fail to prove it; use owned types there.)
    ///
    /// Concurrent calls that miss one key await one computation (unless single flight
    /// is off). If the task driving that computation is cancelled (its future dropped),
    /// nothing is stored and the waiting tasks wake; one of them runs the method afresh.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// struct Page { url: String }
    ///
    /// impl Page {
    ///     async fn title(self: &Arc<Self>) -> String {
    ///         weakmemo::global().call_async(self, Self::fetch_title, ()).await
    ///     }
    ///     async fn fetch_title(self: &Arc<Self>, &(): &()) -> String {
    ///         // Imagine a request here.
    ///         format!("Title of {}", self.url)
    ///     }
    /// }
    ///
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// let page = Arc::new(Page { url: "https://example.com".into() });
    /// assert_eq!(page.title().await, "Title of https://example.com");
    /// assert_eq!(page.title().await, "Title of https://example.com"); // a lookup
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// As [`call`](Self::call), with tasks for threads: a panic in the method's future
    /// reaches its caller and leaves nothing cached, and waiters retry; a method that
    /// awaits its own key panics ("recursive call for the same key"); a cycle of
    /// computations awaiting each other panics ("deadlock avoided").
    pub async fn call_async<T, A, V, F>(&self, owner: &Arc<T>, method: F, args: A) -> V
    where
        T: ?Sized + Send + Sync + 'static,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: AsyncFn(&Arc<T>, &A) -> V + 'static,
    {
        let compute =
            async |owner: &Arc<T>, args: &A| Ok::<V, Infallible>(method(owner, args).await);
        let Ok(value) = self
            .get_or_compute_async(
                method_id::<F>(false),
                type_name::<F>(),
                owner,
                args,
                compute,
            )
            .await;
        value
    }

    /// Like [`call_async`](Self::call_async), for a method that can fail: an `Ok` value
    /// is cached, an error is returned to its caller and not cached.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// async fn parse(text: &Arc<String>, &radix: &u32) -> Result<i64, std::num::ParseIntError> {
    ///     i64::from_str_radix(text, radix)
    /// }
    ///
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # runtime.block_on(async {
    /// let cache = Registry::new();
    /// let text = Arc::new("ff".to_string());
    /// assert!(cache.try_call_async(&text, parse, 10).await.is_err());
    /// assert_eq!(cache.try_call_async(&text, parse, 16).await, Ok(255));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// The method's own error, when this call ran the method and it failed; waiters do
    /// not receive it, they retry.
    ///
    /// # Panics
    ///
    /// As [`call_async`](Self::call_async).
    pub async fn try_call_async<T, A, V, E, F>(
        &self,
        owner: &Arc<T>,
        method: F,
        args: A,
    ) -> Result<V, E>
    where
        T: ?Sized + Send + Sync + 'static,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: AsyncFn(&Arc<T>, &A) -> Result<V, E> + 'static,
    {
        self.get_or_compute_async(method_id::<F>(true), type_name::<F>(), owner, args, method)
            .await
    }

    async fn get_or_compute_async<T, A, V, E>(
        &self,
        method: TypeId,
        name: &'static str,
        owner: &Arc<T>,
        args: A,
        compute: impl AsyncFnOnce(&Arc<T>, &A) -> Result<V, E>,
    ) -> Result<V, E>
    where
        T: ?Sized + Send + Sync + 'static,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let cache = self.cache_or_insert::<T, A, V>(method);
        let key = cache.key(owner, &args);
        // Every lock below is released before the first `.await`.
        let settled = match cache.get(key, &args, self.purge_interval()) {
            Lookup {
                found: Ok(value),
                purge_due,
            } => {
                if purge_due {
                    self.purge_step();
                }
                return Ok(value);
            }
            Lookup {
                found: Err(miss),
                purge_due,
            } => self.settle_miss(key, args, miss, purge_due, waits::current_async),
        };
        match settled {
            Settled::Claimed(claim, me) => {
                compute_once_async(cache, key, owner, claim, compute, name, me).await
            }
            Settled::Alone(args) => {
                let value = compute(owner, &args).await?;
                Ok(cache.insert(key, owner, args, value))
            }
        }
    }
}

/// `compute_once` of `registry.rs`, awaiting instead of blocking.
async fn compute_once_async<T, A, V, E>(
    cache: &MethodCache<T, A, V>,
    key: Key,
    owner: &Arc<T>,
    mut claim: Claim<A>,
    compute: impl AsyncFnOnce(&Arc<T>, &A) -> Result<V, E>,
    method: &'static str,
    me: Token,
) -> Result<V, E>
where
    T: ?Sized + Send + Sync + 'static,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    loop {
        match claim {
            Claim::Recursive => recursive_call(method),
            Claim::Wait {
                args,
                flight,
                computer,
            } => {
                {
                    let _waiting = waits::enter(me, computer, method);
                    cache.count_wait();
                    flight.finished().await;
                }
                claim = match look_again(cache, key, args, me) {
                    Ok(value) => return Ok(value),
                    Err(claim) => claim,
                };
            }
            Claim::Compute(slot) => {
                // Dropped with this future if the task is cancelled: the key is abandoned.
                let claimed = Claimed::new(cache, key, slot);
                let value = {
                    let mut computing = pin!(compute(owner, claimed.args()));
                    // Calls made while the method is polled belong to this computation.
                    poll_fn(|cx| {
                        let _polling = Polling::enter(me);
                        computing.as_mut().poll(cx)
                    })
                    .await?
                };
                return Ok(claimed.complete(owner, value));
            }
        }
    }
}
