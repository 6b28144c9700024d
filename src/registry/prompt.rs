//! Prompt freeing, opt-in: an owner holding a [`FreeOnDrop`] has its entries, and so its
//! values, removed as the owner drops, rather than at a later lazy step.
//!
//! Rust's `Weak` has no callback, so the only moment an owner's death can be seen is its
//! own `Drop`: the token is a field of the owner. A table cannot see inside an owner,
//! so the registry keeps the books: for each owner that opted in, the keys (method and
//! hash) stored for it, recorded as each miss stores. The token's `Drop` removes those
//! entries, each found by its hash in one shard. An owner with more than [`FREE_ON_DROP_KEYS`]
//! keys stops being recorded key by key: the books keep its methods only, and its
//! drop sweeps those methods' tables for it. So the books stay bounded, by
//! [`FREE_ON_DROP_KEYS`] per live owner that opted in.
//!
//! Owners that do not opt in pay one relaxed load per stored miss while no owner of
//! the registry has opted in, and a look in the books (one mutex, one hash lookup) per
//! stored miss while some have. Hits pay nothing.

use std::any::TypeId;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Weak;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use hashbrown::HashMap;

use super::Registry;
use super::maintenance::sum_over;
use crate::identity::weak_addr;
use crate::lock_scope;
use crate::owners::Addresses;
use crate::sync::Mutex;
use crate::table::Key;

/// Keys recorded for one owner before its books keep only its methods.
pub const FREE_ON_DROP_KEYS: usize = 64;

/// The registry's books of the owners that opted in, by address.
pub(super) struct Tracked {
    /// Owners that opted in and have not dropped (the books' length, kept outside the
    /// mutex): while 0, a store looks no further.
    owners: AtomicUsize,
    books: Mutex<Option<HashMap<usize, Book>>>,
}

/// One owner's book: its tokens, and what was stored for it.
struct Book {
    tokens: usize,
    keys: Keys,
}

enum Keys {
    /// Each key stored: the method's table and the key's hash.
    Each(Vec<(TypeId, u64)>),
    /// Too many keys: the methods' tables only, swept at the owner's drop.
    Methods(Vec<TypeId>),
}

impl Tracked {
    pub(super) const fn new() -> Self {
        Self {
            owners: AtomicUsize::new(0),
            books: Mutex::new(None),
        }
    }

    fn open(&self, addr: usize) {
        let mut books = self.books.lock();
        let book = books
            .get_or_insert_with(HashMap::new)
            .entry(addr)
            .or_insert(Book {
                tokens: 0,
                keys: Keys::Each(Vec::new()),
            });
        book.tokens += 1;
        if book.tokens == 1 {
            self.owners.fetch_add(1, Relaxed);
        }
    }

    /// Records that a miss stored the key `hash` of table `table` for `owners`: in the
    /// book of each of them that opted in.
    ///
    /// Called with the owners alive (the caller holds them), so no owner's book can
    /// close meanwhile; and an owner's book is opened before the owner is first called
    /// (the token is made with it), so a store never misses a book it should write.
    #[inline]
    pub(super) fn record(&self, table: TypeId, hash: u64, owners: &[usize]) {
        if self.owners.load(Relaxed) != 0 && !owners.is_empty() {
            self.record_slow(table, hash, owners);
        }
    }

    #[inline(never)]
    fn record_slow(&self, table: TypeId, hash: u64, owners: &[usize]) {
        let mut books = self.books.lock();
        let Some(books) = books.as_mut() else { return };
        for addr in owners {
            let Some(book) = books.get_mut(addr) else {
                continue;
            };
            match &mut book.keys {
                Keys::Each(keys) if keys.contains(&(table, hash)) => {}
                Keys::Each(keys) if keys.len() < FREE_ON_DROP_KEYS => keys.push((table, hash)),
                Keys::Each(keys) => {
                    let mut methods: Vec<TypeId> = keys.iter().map(|&(table, _)| table).collect();
                    methods.push(table);
                    methods.sort_unstable();
                    methods.dedup();
                    book.keys = Keys::Methods(methods);
                }
                Keys::Methods(methods) if methods.contains(&table) => {}
                Keys::Methods(methods) => methods.push(table),
            }
        }
    }

    /// Closes one token of the owner at `addr`; its keys, if that was the last token.
    fn close(&self, addr: usize) -> Option<Keys> {
        let mut books = self.books.lock();
        let books = books.as_mut()?;
        let book = books.get_mut(&addr)?;
        book.tokens -= 1;
        if book.tokens > 0 {
            return None;
        }
        self.owners.fetch_sub(1, Relaxed);
        books.remove(&addr).map(|book| book.keys)
    }
}

/// The token of an owner whose entries leave its registry as it drops: a field of the
/// owner, made with [`Registry::free_on_drop`].
///
/// The entries go while the owner's fields drop, each reported to the removal listener
/// as [`Collected`](crate::RemovalCause::Collected) and counted in
/// [`Stats::purged`](crate::Stats::purged), as a lazy purge would.
pub struct FreeOnDrop {
    registry: &'static Registry,
    addr: usize,
}

impl fmt::Debug for FreeOnDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreeOnDrop").finish_non_exhaustive()
    }
}

impl Registry {
    /// A token that removes its owner's entries of this registry as the owner drops;
    /// make it with the owner, in [`Arc::new_cyclic`](std::sync::Arc::new_cyclic), and
    /// keep it as one of the owner's fields.
    ///
    /// Without it an owner's entries stay until a lazy purge step, a sweep or a bound
    /// removes them (see [`set_purge_interval`](Self::set_purge_interval)): harmless for
    /// small values, but a server that caches a large value per short-lived owner then
    /// holds a few hundred dead owners' values at once. With it, a dead owner's values
    /// are freed as it drops.
    ///
    /// ```
    /// use std::sync::{Arc, Weak};
    /// use weakmemo::FreeOnDrop;
    ///
    /// struct Request {
    ///     body: String,
    ///     _free: FreeOnDrop,
    /// }
    ///
    /// fn render(request: &Arc<Request>, &(): &()) -> Arc<Vec<u8>> {
    ///     Arc::new(request.body.repeat(1024).into_bytes()) // large
    /// }
    ///
    /// let cache = weakmemo::global();
    /// let request = Arc::new_cyclic(|me: &Weak<Request>| Request {
    ///     body: "hello".into(),
    ///     _free: cache.free_on_drop(me),
    /// });
    /// let page = cache.method(render).call(&request, ());
    /// let watch = Arc::downgrade(&page);
    /// drop(page);
    /// drop(request);
    /// assert!(watch.upgrade().is_none()); // freed with its owner, no further access
    /// ```
    ///
    /// The cost falls on stores, not hits: while no owner of the registry holds a
    /// token, a miss that stores pays one relaxed load more; while some do, every
    /// stored miss looks its owners up in the registry's books (one mutex, one hash
    /// lookup), and an owner that holds one has each of its keys recorded there. The
    /// books hold at most [`FREE_ON_DROP_KEYS`] keys per owner, then its methods only: its drop
    /// then sweeps those methods' tables for its entries, a cost in proportion to them.
    ///
    /// `owner` must be the owner being made (the `Weak` that `new_cyclic` gives); a
    /// token made from another object's `Weak` removes that object's entries once it is
    /// dead, when this token drops.
    pub fn free_on_drop<T: ?Sized>(&'static self, owner: &Weak<T>) -> FreeOnDrop {
        let addr = weak_addr(owner);
        self.tracked.open(addr);
        FreeOnDrop {
            registry: self,
            addr,
        }
    }

    /// What follows a miss that stored (or was answered by the computation that did):
    /// the key goes in the books of its owners that opted in.
    #[inline]
    pub(super) fn stored<Ad: Addresses>(&self, table: TypeId, key: Key<Ad>) {
        self.tracked.record(table, key.hash, key.addrs.as_slice());
    }

    /// Removes the entries recorded for the dead owner at `addr`.
    fn free_dead(&self, keys: Keys, addr: usize) -> usize {
        match keys {
            Keys::Each(keys) => sum_over(
                keys.iter()
                    .filter_map(|&(table, hash)| Some((self.methods.find(table)?, hash))),
                |(cache, hash)| cache.remove_dead(addr, Some(hash)),
            ),
            Keys::Methods(methods) => sum_over(
                methods.iter().filter_map(|&table| self.methods.find(table)),
                |cache| cache.remove_dead(addr, None),
            ),
        }
    }
}

impl Drop for FreeOnDrop {
    fn drop(&mut self) {
        let Some(keys) = self.registry.tracked.close(self.addr) else {
            return;
        };
        // Dropped under a registry lock (inside an argument's `Eq` or a value's `Clone`),
        // the entries cannot be removed now: lazy purging takes them.
        if lock_scope::is_locked() {
            return;
        }
        // A removed value's `Drop` may panic: resumed here, unless this drop is part of
        // an unwinding already (a second panic would abort).
        let freed = catch_unwind(AssertUnwindSafe(|| {
            self.registry.free_dead(keys, self.addr)
        }));
        if let Err(payload) = freed {
            if !std::thread::panicking() {
                resume_unwind(payload);
            }
        }
    }
}
