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
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use crate::identity::{Named, method_id};
use crate::in_flight::Claim;
use crate::lookup::Lookup;
use crate::method_cache::{KeyOf, MethodCache, Probe};
use crate::owners::Owners;
use crate::registry::{Registry, recursive_call};
use crate::waits::{self, Caller, Polling};

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
    /// A hit is answered when `call_async` is called: the future is ready at its first
    /// poll and carries no state machine. A miss does its work from the first poll on.
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
    pub fn call_async<O, Q, A, V, F>(
        &self,
        owners: O,
        method: F,
        args: Q,
    ) -> impl Future<Output = V>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: AsyncFn(O, &A) -> V + 'static,
    {
        let () = Named::<F>::METHOD;
        let compute =
            async move |owners: O, args: &A| Ok::<V, Infallible>(method(owners, args).await);
        let value = |result: Result<V, Infallible>| match result {
            Ok(value) => value,
        };
        self.answer(
            method_id::<F>(true, false),
            type_name::<F>(),
            owners,
            args,
            compute,
            value,
        )
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
    pub fn try_call_async<O, Q, A, V, E, F>(
        &self,
        owners: O,
        method: F,
        args: Q,
    ) -> impl Future<Output = Result<V, E>>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: AsyncFn(O, &A) -> Result<V, E> + 'static,
    {
        let () = Named::<F>::METHOD;
        self.answer(
            method_id::<F>(true, true),
            type_name::<F>(),
            owners,
            args,
            method,
            |result| result,
        )
    }

    /// Looks the key up now, and answers a hit without building the computation's state
    /// machine; a miss becomes the computation, boxed, which starts at the first poll.
    fn answer<O, Q, A, V, E, Out>(
        &self,
        method: TypeId,
        name: &'static str,
        owners: O,
        args: Q,
        compute: impl AsyncFnOnce(O, &A) -> Result<V, E>,
        finish: impl FnOnce(Result<V, E>) -> Out,
    ) -> Answer<Out, impl Future<Output = Out>>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let cache = self.cache_or_insert::<O::Held, A, V>(method, name);
        let key = cache.key(owners, &args);
        let Probe { found, purge_due } = cache.get(key, &args, self.purge_interval());
        // The miss's read lock goes before a purge step takes others'; the computation
        // will look again, uncounted, when first polled.
        let hit = found.ok();
        if purge_due {
            self.purge_step();
        }
        if let Some(value) = hit {
            return Answer::Ready(Some(finish(Ok(value))));
        }
        Answer::Computing(Box::pin(async move {
            // Who calls is known at the first poll: inside which computation's poll.
            let caller = Caller::task();
            // Every lock here is released before the first `.await`.
            let claim = match cache.find(key, &args) {
                Ok(value) => return finish(Ok(value)),
                Err(miss) => self.settle_miss(cache, key, args, miss, false, &caller),
            };
            let result = self
                .compute_once_async(cache, key, owners, claim, compute, name, &caller)
                .await;
            self.keep_within_capacity();
            finish(result)
        }))
    }
}

/// The future of `call_async`: a hit, answered when the call was made, or the
/// computation.
enum Answer<Out, Computing> {
    Ready(Option<Out>),
    Computing(Pin<Box<Computing>>),
}

// Nothing is pinned in place: the computation is boxed, and the value is moved out.
impl<Out, Computing> Unpin for Answer<Out, Computing> {}

impl<Out, Computing: Future<Output = Out>> Future for Answer<Out, Computing> {
    type Output = Out;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Out> {
        match self.get_mut() {
            Answer::Ready(value) => Poll::Ready(value.take().expect("polled after it was ready")),
            Answer::Computing(computing) => computing.as_mut().poll(cx),
        }
    }
}

impl Registry {
    /// `compute_once` of `registry.rs`, awaiting instead of blocking.
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    async fn compute_once_async<'a, O, Q, A, V, E>(
        &self,
        cache: &'a MethodCache<O::Held, A, V>,
        key: KeyOf<O::Held>,
        owners: O,
        mut claim: Claim<'a, O::Held, Q, A, V>,
        compute: impl AsyncFnOnce(O, &A) -> Result<V, E>,
        method: &'static str,
        caller: &Caller,
    ) -> Result<V, E>
    where
        O: Owners,
        Q: Lookup<A>,
        A: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        loop {
            match claim {
                Claim::Recursive(args) => recursive_call(method, args),
                Claim::Wait {
                    args,
                    flight,
                    computer,
                } => {
                    {
                        let _waiting = waits::enter(caller.waits_as, computer, method);
                        cache.count_wait();
                        flight.finished().await;
                    }
                    claim = match self.after_wait(cache, key, args, &flight, caller) {
                        Ok(value) => return Ok(value),
                        Err(claim) => claim,
                    };
                }
                Claim::Compute(claimed) => {
                    // The computation polling this call waits for this one meanwhile.
                    let _nested = caller.computing(method);
                    // Dropped with this future if the task is cancelled: the key is
                    // abandoned.
                    let value = {
                        let mut computing = pin!(compute(owners, claimed.args()));
                        // Calls made while the method is polled belong to this computation.
                        poll_fn(|cx| {
                            let _polling = Polling::enter(caller.computes_as);
                            computing.as_mut().poll(cx)
                        })
                        .await?
                    };
                    return Ok(claimed.complete(owners, value));
                }
            }
        }
    }
}
