//! Prompt freeing: an owner holding a `FreeOnDrop` has its entries, and their values,
//! removed as it drops, with no further access to the cache; owners without one keep
//! the lazy behaviour.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, Weak};

use weakmemo::{FREE_ON_DROP_KEYS, FreeOnDrop, Registry, RemovalCause};

use crate::common::{Live, Val};

/// A registry of the test's own, `'static` as a token needs.
fn registry() -> &'static Registry {
    Box::leak(Box::new(Registry::new()))
}

/// An owner that opted in (or not: `opt_in` false), whose values count in `values`.
struct Doc {
    id: u64,
    values: Live,
    _free: Option<FreeOnDrop>,
}

fn doc(registry: &'static Registry, id: u64, values: &Live, opt_in: bool) -> Arc<Doc> {
    Arc::new_cyclic(|me: &Weak<Doc>| Doc {
        id,
        values: values.clone(),
        _free: opt_in.then(|| registry.free_on_drop(me)),
    })
}

fn render(doc: &Arc<Doc>, &arg: &u64) -> Val {
    Val::new(doc.id * 1000 + arg, &doc.values)
}

/// The case: a large value per owner is freed as the owner drops, with no
/// further cache access; the entry's `Weak` goes with it, so the owner's memory too.
#[test]
fn a_large_value_is_freed_as_its_owner_drops() {
    fn page(doc: &Arc<Doc>, &(): &()) -> Arc<Vec<u8>> {
        Arc::new(vec![doc.id as u8; 1 << 20])
    }
    let registry = registry();
    let doc = doc(registry, 7, &Live::new(), true);
    let value = registry.method(page).call(&doc, ());
    let value_watch = Arc::downgrade(&value);
    drop(value);
    assert!(value_watch.upgrade().is_some(), "the cache holds the value");
    drop(doc);
    assert!(
        value_watch.upgrade().is_none(),
        "the value outlived its owner"
    );
    let stats = registry.stats();
    assert_eq!((stats.entries, stats.purged), (0, 1));
}

/// Without the token, the lazy behaviour is unchanged: the value stays until a purge.
#[test]
fn an_owner_without_a_token_keeps_the_lazy_behaviour() {
    let registry = registry();
    let values = Live::new();
    let plain = doc(registry, 1, &values, false);
    let tracked = doc(registry, 2, &values, true);
    let render = registry.method(render);
    for arg in 0..3 {
        render.call(&plain, arg);
        render.call(&tracked, arg);
    }
    assert_eq!(values.get(), 6);
    drop(tracked);
    assert_eq!(values.get(), 3, "the tracked owner's three values went");
    drop(plain);
    assert_eq!(values.get(), 3, "the plain owner's values wait for a purge");
    assert_eq!(registry.purge(), 3);
    assert_eq!(values.get(), 0);
}

/// Churn: with the token, the values held at any moment are the live owners' alone;
/// without it, up to a purge interval's worth of dead ones linger.
#[test]
fn churn_holds_only_live_owners_values() {
    for opt_in in [true, false] {
        let registry = registry();
        let values = Live::new();
        let render = registry.method(render);
        let mut peak = 0;
        for id in 0..20_000 {
            let doc = doc(registry, id, &values, opt_in);
            assert_eq!(render.call(&doc, 1).n, id * 1000 + 1);
            assert_eq!(render.call(&doc, 1).n, id * 1000 + 1);
            peak = peak.max(values.get());
            drop(doc);
        }
        if opt_in {
            assert_eq!(peak, 1, "only the live owner's value is held");
            assert_eq!(values.get(), 0);
        } else {
            assert!(
                peak > 1,
                "lazy purging holds dead values a while (peak {peak})"
            );
        }
    }
}

/// Past `FREE_ON_DROP_KEYS` keys the books keep the owner's methods only; its drop still
/// removes every entry, from every method, and no live owner's.
#[test]
fn an_owner_with_many_keys_is_swept_at_its_drop() {
    fn other(doc: &Arc<Doc>, &arg: &u64) -> Val {
        Val::new(doc.id * 7 + arg, &doc.values)
    }
    let registry = registry();
    let values = Live::new();
    let live = doc(registry, 1, &values, true);
    let many = doc(registry, 2, &values, true);
    let keys = FREE_ON_DROP_KEYS as u64 * 2;
    for arg in 0..keys {
        registry.method(render).call(&many, arg);
        registry.method(render).call(&live, arg);
    }
    registry.method(other).call(&many, 0);
    assert_eq!(values.get(), 2 * keys as isize + 1);
    drop(many);
    assert_eq!(values.get(), keys as isize, "the live owner's entries stay");
    assert_eq!(registry.stats().entries, keys as usize);
    drop(live);
    assert_eq!(values.get(), 0);
}

/// An entry of two owners goes when the one that opted in drops.
#[test]
fn an_entry_of_two_owners_goes_with_the_tracked_one() {
    fn pair((a, b): (&Arc<Doc>, &Arc<Doc>), &(): &()) -> Val {
        Val::new(a.id * 10 + b.id, &a.values)
    }
    let registry = registry();
    let values = Live::new();
    let (plain, tracked) = (
        doc(registry, 1, &values, false),
        doc(registry, 2, &values, true),
    );
    assert_eq!(registry.method(pair).call((&plain, &tracked), ()).n, 12);
    assert_eq!(registry.method(pair).call((&tracked, &plain), ()).n, 21);
    drop(tracked);
    assert_eq!(values.get(), 0);
    assert_eq!(registry.stats().entries, 0);
}

/// The listener hears of each entry once, as `Collected`, and the books count it so.
#[test]
fn the_listener_hears_each_removal_once() {
    let registry = registry();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&heard);
    registry.set_removal_listener(Some(Arc::new(move |removal: &weakmemo::Removal<'_>| {
        log.lock().unwrap().push(removal.cause());
    })));
    let values = Live::new();
    let doc = doc(registry, 3, &values, true);
    for arg in 0..4 {
        registry.method(render).call(&doc, arg);
    }
    drop(doc);
    assert_eq!(*heard.lock().unwrap(), vec![RemovalCause::Collected; 4]);
    let stats = registry.stats();
    assert_eq!((stats.entries, stats.purged, stats.invalidated), (0, 4, 0));
}

/// A value whose `Drop` panics: the panic reaches the owner's drop, every other entry
/// still goes, and the registry's books stay exact.
#[test]
fn a_panicking_value_drop_reaches_the_owners_drop() {
    #[derive(Clone)]
    struct Bomb(bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.0 && !std::thread::panicking() {
                panic!("bomb");
            }
        }
    }
    fn bomb(doc: &Arc<Doc>, &arg: &u64) -> Bomb {
        let _ = doc;
        Bomb(arg == 1)
    }
    let registry = registry();
    let doc = doc(registry, 4, &Live::new(), true);
    for arg in 0..3 {
        // The copies handed back are forgotten: only the stored bomb goes off.
        std::mem::forget(registry.method(bomb).call(&doc, arg));
    }
    let panic = catch_unwind(AssertUnwindSafe(|| drop(doc))).expect_err("the bomb went off");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"bomb"));
    let stats = registry.stats();
    assert_eq!((stats.entries, stats.purged), (0, 3));
}

/// Address reuse: a new owner in a dead one's allocation gets its own values, and its
/// own book (the old one closed as the old owner dropped).
#[test]
fn a_reused_address_gets_its_own_book() {
    let registry = registry();
    let values = Live::new();
    let render = registry.method(render);
    let mut reused = 0;
    let mut last = None;
    for id in 0..2_000 {
        let doc = doc(registry, id, &values, id % 2 == 0);
        let addr = Arc::as_ptr(&doc) as usize;
        reused += usize::from(last == Some(addr));
        last = Some(addr);
        assert_eq!(render.call(&doc, 5).n, id * 1000 + 5);
    }
    assert!(reused > 0, "the allocator never reused an address");
    registry.purge();
    assert_eq!(values.get(), 0);
}

/// An owner whose last `Arc` drops inside an argument's `Eq`, under a registry lock:
/// no panic and no hang; its entries wait for lazy purging, as without a token.
#[test]
fn an_owner_dropped_under_a_registry_lock_waits_for_a_purge() {
    static HELD: Mutex<Option<Arc<Doc>>> = Mutex::new(None);
    /// An argument whose `Eq` drops the owner parked in `HELD`.
    #[derive(Clone, Hash, PartialEq, Eq)]
    struct Dropper(u64);
    #[derive(Clone)]
    struct Key(Dropper);
    impl std::hash::Hash for Key {
        fn hash<S: std::hash::Hasher>(&self, state: &mut S) {
            self.0.hash(state);
        }
    }
    impl PartialEq for Key {
        fn eq(&self, other: &Self) -> bool {
            HELD.lock().unwrap().take();
            self.0 == other.0
        }
    }
    impl Eq for Key {}
    fn keyed(doc: &Arc<Doc>, key: &Key) -> Val {
        Val::new(doc.id + key.0.0, &doc.values)
    }
    let registry = registry();
    let values = Live::new();
    let other = doc(registry, 1, &values, false);
    let parked = doc(registry, 2, &values, true);
    registry.method(keyed).call(&parked, Key(Dropper(0)));
    registry.method(keyed).call(&other, Key(Dropper(0)));
    *HELD.lock().unwrap() = Some(parked);
    // The hit compares keys: `Eq` drops the parked owner under the shard's lock.
    assert_eq!(registry.method(keyed).call(&other, Key(Dropper(0))).n, 1);
    assert!(HELD.lock().unwrap().is_none());
    assert_eq!(values.get(), 2, "nothing was removed under the lock");
    assert_eq!(registry.purge(), 1);
    assert_eq!(values.get(), 1);
}

/// Threads making, calling and dropping owners that opted in, beside plain ones, on
/// one registry: every tracked owner's value goes with it, and the books stay exact.
#[test]
fn threads_churning_tracked_owners_free_every_value() {
    let registry = registry();
    let values = Live::new();
    let plain = doc(registry, 999_999, &values, false);
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let values = values.clone();
            let plain = &plain;
            scope.spawn(move || {
                let render = registry.method(render);
                for i in 0..2_000 {
                    let id = t * 10_000 + i;
                    let doc = doc(registry, id, &values, true);
                    assert_eq!(render.call(&doc, i % 3).n, id * 1000 + i % 3);
                    render.call(plain, i % 5);
                    drop(doc);
                }
            });
        }
    });
    assert_eq!(
        values.get(),
        5,
        "only the plain owner's five values are held"
    );
    let stats = registry.stats();
    assert_eq!((stats.entries, stats.purged), (5, 8_000));
}

/// `call_async` records its keys as `call` does.
#[test]
fn an_async_call_is_freed_as_its_owner_drops() {
    async fn render_async(doc: &Arc<Doc>, &arg: &u64) -> Val {
        Val::new(doc.id + arg, &doc.values)
    }
    let registry = registry();
    let values = Live::new();
    let doc = doc(registry, 9, &values, true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let value = runtime.block_on(registry.method(render_async).call_async(&doc, 1));
    assert_eq!(value.n, 10);
    drop(value);
    assert_eq!(values.get(), 1);
    drop(doc);
    assert_eq!(values.get(), 0);
}
