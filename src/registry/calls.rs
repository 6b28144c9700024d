//! A handle's calls: `call` and `try_call` for threads, `call_async` and
//! `try_call_async` for tasks, all four on one lookup and one single-flight protocol
//! ([`crate::table::single_flight`]).

use std::convert::Infallible;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Memo;
use crate::lookup::Lookup;
use crate::owners::{Owners, SharedHeld};
use crate::table::single_flight::Host;
use crate::table::single_flight::waits::Caller;
use crate::table::{KeyOf, Miss, Probe};

impl<'r, F, H, A, V> Memo<'r, F, H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Returns `method(owners, &args)`, computed once per live owners, method and
    /// arguments.
    ///
    /// The method runs outside every lock, so it may call other cached methods, or itself
    /// with other arguments. If several threads miss the same key at once, one runs the
    /// method and the others wait for it, holding no lock, and receive a clone of its
    /// value (single flight; see [`Registry::set_single_flight`](crate::Registry::set_single_flight)).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// fn double(n: &Arc<i32>, &k: &i32) -> i32 { **n * k * 2 }
    /// let double = weakmemo::global().method(double);
    /// let n = Arc::new(1);
    /// assert_eq!(double.call(&n, 10), 20); // computed
    /// assert_eq!(double.call(&n, 10), 20); // a lookup
    /// ```
    ///
    /// # Panics
    ///
    /// - If the method panics: the panic reaches this caller with its payload, nothing is
    ///   cached, and the registry stays usable. Callers waiting for this computation
    ///   wake, and one of them runs the method afresh.
    /// - If the call re-enters the key it is computing, on the same thread, directly or
    ///   through other cached methods: it would wait for itself, so it panics at once
    ///   with a message naming the method ("recursive call for the same key").
    /// - If waiting for another thread's computation would close a cycle of threads
    ///   waiting for each other (thread 1 computes key A and needs key B while thread 2
    ///   computes B and needs A): one of them panics ("deadlock avoided") instead of
    ///   hanging.
    /// - If called from an argument's `Eq` or a value's `Clone` while the registry runs
    ///   them under a lock.
    /// - If dropping an entry this call removed (by its lazy purge step, or to make
    ///   room) panics: the panic reaches this caller once the removals are done and
    ///   counted; the cache is left exact, and the key, if this call had claimed it, is
    ///   given up for another caller to compute.
    pub fn call<O, Q>(&self, owners: O, args: Q) -> V
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
        F: Fn(O, &A) -> V,
    {
        let method = self.method();
        let Ok(value) = self.get_or_compute(owners, args, |owners, args| {
            Ok::<V, Infallible>(method(owners, args))
        });
        value
    }

    /// Like [`call`](Self::call), for a method that can fail: an `Ok` value is cached,
    /// an error is returned to the caller and not cached, so the next call tries again.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weakmemo::Registry;
    ///
    /// fn parse(text: &Arc<String>, &radix: &u32) -> Result<i64, std::num::ParseIntError> {
    ///     i64::from_str_radix(text, radix)
    /// }
    /// let cache = Registry::new();
    /// let parse = cache.method(parse);
    /// let text = Arc::new("ff".to_string());
    /// assert!(parse.try_call(&text, 10).is_err());
    /// assert_eq!(parse.try_call(&text, 16), Ok(255));
    /// assert_eq!(parse.get(&text, &16), Some(255));
    /// assert_eq!(parse.get(&text, &10), None);
    /// ```
    ///
    /// # Errors
    ///
    /// The method's own error, when this call ran the method and it failed. Callers that
    /// were waiting for that computation do not receive the error: they wake, and one of
    /// them runs the method itself.
    ///
    /// # Panics
    ///
    /// As [`call`](Self::call).
    pub fn try_call<O, Q, E>(&self, owners: O, args: Q) -> Result<V, E>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
        F: Fn(O, &A) -> Result<V, E>,
    {
        self.get_or_compute(owners, args, self.method())
    }

    #[inline]
    fn get_or_compute<O, Q, E>(
        &self,
        owners: O,
        args: Q,
        compute: impl FnOnce(O, &A) -> Result<V, E>,
    ) -> Result<V, E>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
    {
        let (registry, table) = (self.registry(), self.table());
        let key = table.key(owners, &args);
        match table.get(key, &args, registry.purge_interval()) {
            Probe {
                found: Ok(value),
                purge_due,
            } => {
                if purge_due {
                    registry.purge_step();
                }
                Ok(value)
            }
            Probe {
                found: Err(miss),
                purge_due,
            } => self.compute_miss((key, owners, args), miss, purge_due, compute),
        }
    }

    /// The miss path, out of line so that the hit path stays small. The key is claimed
    /// (or joined) before the lookup's read lock is released.
    #[inline(never)]
    fn compute_miss<O, Q, E>(
        &self,
        (key, owners, args): (KeyOf<H>, O, Q),
        miss: Miss<'r, H, A, V>,
        purge_due: bool,
        compute: impl FnOnce(O, &A) -> Result<V, E>,
    ) -> Result<V, E>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
    {
        let (registry, table) = (self.registry(), self.table());
        let caller = Caller::thread();
        let claim = table.settle_miss(registry, (key, args), miss, purge_due, &caller);
        let value = table.compute_once(registry, (key, owners), claim, compute, &caller)?;
        registry.stored(table.id(), key);
        registry.keep_within_capacity();
        Ok(value)
    }

    /// Like [`call`](Self::call), for an `async` method: the cached value, or the
    /// method's future awaited and its output cached.
    ///
    /// The method is an `async fn` item (or an `async` closure that captures nothing)
    /// taking the owners and a reference to the arguments. The returned future holds no
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
    ///         weakmemo::global().method(Self::fetch_title).call_async(self, ()).await
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
    pub fn call_async<O, Q>(
        &self,
        owners: O,
        args: Q,
    ) -> impl Future<Output = V> + use<'r, F, H, A, V, O, Q>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
        F: AsyncFn(O, &A) -> V + Copy,
    {
        let method = *self.method();
        let compute =
            async move |owners: O, args: &A| Ok::<V, Infallible>(method(owners, args).await);
        self.answer(owners, args, compute, |result| match result {
            Ok(value) => value,
        })
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
    /// let parse = cache.method(parse);
    /// let text = Arc::new("ff".to_string());
    /// assert!(parse.try_call_async(&text, 10).await.is_err());
    /// assert_eq!(parse.try_call_async(&text, 16).await, Ok(255));
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
    pub fn try_call_async<O, Q, E>(
        &self,
        owners: O,
        args: Q,
    ) -> impl Future<Output = Result<V, E>> + use<'r, F, H, A, V, O, Q, E>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
        F: AsyncFn(O, &A) -> Result<V, E> + Copy,
    {
        self.answer(owners, args, *self.method(), |result| result)
    }

    /// Looks the key up now, and answers a hit without building the computation's state
    /// machine; a miss becomes the computation, boxed, which starts at the first poll.
    fn answer<O, Q, E, Out, C, Finish>(
        &self,
        owners: O,
        args: Q,
        compute: C,
        finish: Finish,
    ) -> Answer<Out, impl Future<Output = Out> + use<'r, F, H, A, V, O, Q, E, Out, C, Finish>>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
        C: AsyncFnOnce(O, &A) -> Result<V, E>,
        Finish: FnOnce(Result<V, E>) -> Out,
    {
        let (registry, table) = (self.registry(), self.table());
        let key = table.key(owners, &args);
        let Probe { found, purge_due } = table.get(key, &args, registry.purge_interval());
        // The miss's read lock goes before a purge step takes others'; the computation
        // will look again, uncounted, when first polled.
        let hit = found.ok();
        if purge_due {
            registry.purge_step();
        }
        if let Some(value) = hit {
            return Answer::Ready(Some(finish(Ok(value))));
        }
        Answer::Computing(Box::pin(async move {
            // Who calls is known at the first poll: inside which computation's poll.
            let caller = Caller::task();
            // Every lock here is released before the first `.await`.
            let claim = match table.find(key, &args) {
                Ok(value) => return finish(Ok(value)),
                Err(miss) => table.settle_miss(registry, (key, args), miss, false, &caller),
            };
            let result = table
                .compute_once_async(registry, (key, owners), claim, compute, &caller)
                .await;
            if result.is_ok() {
                registry.stored(table.id(), key);
            }
            registry.keep_within_capacity();
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
