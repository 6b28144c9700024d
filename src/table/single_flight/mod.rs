//! Single flight: one computation per missed key, whoever else misses it meanwhile, for
//! threads and tasks alike.
//!
//! - [`in_flight`]: the keys being computed, kept in each shard beside its entries, and
//!   the claim a miss takes on one (compute it, wait for it, or a recursion);
//! - [`flight`]: what waiters wait on, by blocking or by waking;
//! - [`waits`]: who is computing and who waits for whom, so that a call re-entering its
//!   own key, or a cycle of threads waiting for each other, panics instead of hanging;
//! - here: the two drivers of one protocol, [`MethodCache::compute_once`] for threads and
//!   [`MethodCache::compute_once_async`] for tasks. A lookup, a claim, a completion and
//!   an abandonment are the same steps on the same tables; what differs is how a caller
//!   waits (blocking, or awaiting [`Flight::finished`]) and that an async method is a
//!   future, driven by the caller's task. No lock is ever held across an `.await`.
//!
//! A task's chain of awaits plays the part of a thread's call stack: a call made while
//! a computation is being polled takes that computation's token, so a method that
//! awaits its own key, directly or through other cached methods, is recognized.

pub(crate) mod flight;
pub(crate) mod in_flight;
#[cfg(all(test, feature = "shuttle"))]
mod model;
pub(crate) mod waits;

use std::future::poll_fn;
use std::hash::Hash;
use std::pin::pin;

use self::flight::Flight;
use self::in_flight::Claim;
use self::waits::{Caller, Polling};
use super::{KeyOf, MethodCache, Miss};
use crate::lookup::Lookup;
use crate::owners::{Owners, SharedHeld};

/// What a table's calls need of their registry, which the table cannot borrow.
pub(crate) trait Host {
    /// Whether a miss waits for the key's computation under way (single flight on).
    fn single_flight(&self) -> bool;
    /// Runs one lazy purge step of the registry.
    fn purge_step(&self);
}

impl<H, A, V> MethodCache<H, A, V>
where
    H: SharedHeld,
    A: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The first step of every miss, sync or async: claim the key (or find whom to wait
    /// for) under the lookup's read lock; then take the shard's purge turn, now that no
    /// lock is held. The claim is guarded already, so a panic in the purge step (a
    /// removed value's `Drop`) abandons it.
    #[inline] // the miss path's one step, called from the registry's module
    pub(crate) fn settle_miss<'a, Q: Lookup<A>>(
        &'a self,
        host: &impl Host,
        (key, args): (KeyOf<H>, Q),
        miss: Miss<'a, H, A, V>,
        purge_due: bool,
        caller: &Caller,
    ) -> Claim<'a, H, Q, A, V> {
        let claim = self.claim(miss, key, args, caller, host.single_flight());
        if purge_due {
            host.purge_step();
        }
        claim
    }

    /// The rest of a thread's miss, from the first claim: wait for the key's computer
    /// and take its value (or, if it gave up, look again), or compute it; the claim's
    /// guard ends it however the method ends.
    #[inline] // the miss path's one step, called from the registry's module
    pub(crate) fn compute_once<'a, O, Q, E>(
        &'a self,
        host: &impl Host,
        (key, owners): (KeyOf<H>, O),
        mut claim: Claim<'a, H, Q, A, V>,
        compute: impl FnOnce(O, &A) -> Result<V, E>,
        caller: &Caller,
    ) -> Result<V, E>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
    {
        loop {
            match claim {
                Claim::Recursive(args) => recursive_call(self.name(), args),
                Claim::Wait {
                    args,
                    flight,
                    computer,
                } => {
                    {
                        let _waiting = waits::enter(caller.waits_as, computer, self.name());
                        // Counted once the wait is accepted: a refused one panics above.
                        self.count_wait();
                        flight.wait();
                    }
                    claim = match self.after_wait(host, key, args, &flight, caller) {
                        Ok(value) => return Ok(value),
                        Err(claim) => claim,
                    };
                }
                Claim::Compute(claimed) => {
                    let value = compute(owners, claimed.args())?;
                    return Ok(claimed.complete(owners, value));
                }
            }
        }
    }

    /// [`compute_once`](Self::compute_once), for a task: awaiting instead of blocking.
    pub(crate) async fn compute_once_async<'a, O, Q, E>(
        &'a self,
        host: &impl Host,
        (key, owners): (KeyOf<H>, O),
        mut claim: Claim<'a, H, Q, A, V>,
        compute: impl AsyncFnOnce(O, &A) -> Result<V, E>,
        caller: &Caller,
    ) -> Result<V, E>
    where
        O: Owners<Held = H>,
        Q: Lookup<A>,
    {
        loop {
            match claim {
                Claim::Recursive(args) => recursive_call(self.name(), args),
                Claim::Wait {
                    args,
                    flight,
                    computer,
                } => {
                    {
                        let _waiting = waits::enter(caller.waits_as, computer, self.name());
                        self.count_wait();
                        flight.finished().await;
                    }
                    claim = match self.after_wait(host, key, args, &flight, caller) {
                        Ok(value) => return Ok(value),
                        Err(claim) => claim,
                    };
                }
                Claim::Compute(claimed) => {
                    // The computation polling this call waits for this one meanwhile.
                    let _nested = caller.computing(self.name());
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

    /// After a wait: the value the computation handed over, or, if it was abandoned, a
    /// new lookup and claim.
    fn after_wait<'a, Q: Lookup<A>>(
        &'a self,
        host: &impl Host,
        key: KeyOf<H>,
        args: Q,
        flight: &Flight<V>,
        caller: &Caller,
    ) -> Result<V, Claim<'a, H, Q, A, V>> {
        if let Some(value) = flight.value() {
            return Ok(value.clone());
        }
        self.find(key, &args)
            .map_err(|miss| self.claim(miss, key, args, caller, host.single_flight()))
    }
}

/// The panic of a call that would wait for its own computation; its arguments are
/// dropped first, with no lock held.
#[cold]
fn recursive_call<A>(method: &str, args: A) -> ! {
    drop(args);
    panic!(
        "weakmemo: recursive call for the same key: `{method}` was called, directly or \
         through other cached methods, with the owner and arguments it is computing, and \
         would wait for its own result"
    )
}
