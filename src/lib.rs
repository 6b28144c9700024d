//! Memoize methods on `Arc`-owned objects in a shared cache that never keeps the objects
//! alive.
//!
//! Python's `functools.lru_cache` on a method puts `self` in the key, so the cache keeps
//! every instance alive; a server that makes objects per request runs out of memory. In
//! Rust, a global table keyed by an `Arc` clone has the same leak, and a table keyed by a
//! raw address is worse: the allocator reuses the address, and the table hands a dead
//! object's result to a new one. weakmemo keys each result by the owner's allocation held
//! as a [`Weak`](std::sync::Weak), the method, and the arguments.
//!
//! # A first example
//!
//! Wrap the object in an `Arc`, take `self: &Arc<Self>`, and mark the method with
//! [`#[memo]`](memo):
//!
//! ```
//! # #[cfg(feature = "macros")] {
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! struct SlowAdder { delay: Duration }
//!
//! impl SlowAdder {
//!     #[weakmemo::memo]
//!     pub fn calculate(self: &Arc<Self>, a: i64, b: i64) -> i64 {
//!         std::thread::sleep(self.delay);
//!         a + b
//!     }
//! }
//!
//! let adder = Arc::new(SlowAdder { delay: Duration::from_millis(20) });
//! assert_eq!(adder.calculate(1, 2), 3); // sleeps
//! assert_eq!(adder.calculate(1, 2), 3); // a lookup
//!
//! // The method's handle, with Python's `cache_info()` and `cache_clear()` (`clear()`):
//! let info = SlowAdder::calculate_memo().cache_info();
//! assert_eq!((info.hits, info.misses, info.currsize), (1, 1, 1));
//!
//! let watch = Arc::downgrade(&adder);
//! drop(adder);
//! assert!(watch.upgrade().is_none()); // the cache did not keep it alive
//! # }
//! ```
//!
//! # A method's handle
//!
//! Under the attribute is the method's handle, which works as well by hand (and is all
//! there is without the `macros` feature). [`Registry::method`] takes the fn to cache, a
//! fn taking the owner and a reference to its arguments, and returns its [`Memo`], whose
//! [`call`](Memo::call) runs the fn once per live owner and arguments. The registry is the
//! shared [`global()`] one or one of your own.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! struct SlowAdder { delay: Duration }
//!
//! impl SlowAdder {
//!     pub fn calculate(self: &Arc<Self>, a: i64, b: i64) -> i64 {
//!         weakmemo::global().method(Self::calculate_uncached).call(self, (a, b))
//!     }
//!     fn calculate_uncached(self: &Arc<Self>, &(a, b): &(i64, i64)) -> i64 {
//!         std::thread::sleep(self.delay);
//!         a + b
//!     }
//! }
//!
//! let adder = Arc::new(SlowAdder { delay: Duration::from_millis(20) });
//! assert_eq!(adder.calculate(1, 2), 3); // sleeps
//! assert_eq!(adder.calculate(1, 2), 3); // a lookup
//! ```
//!
//! A handle is typed by what its method's entries hold (owners, arguments, value), so
//! its operations take the method's own owners and arguments, checked when the code is
//! built: [`get`](Memo::get) reads without computing, [`invalidate`](Memo::invalidate)
//! removes one key, [`invalidate_owner`](Memo::invalidate_owner) one owner's entries and
//! [`clear`](Memo::clear) all of them; [`cache_info`](Memo::cache_info) and
//! [`stats`](Memo::stats) count, and its setters tune this method alone. Every handle of
//! one fn reaches one table, so a handle is cheap to make (a lookup) and need not be
//! kept; `#[memo]` writes `NAME_memo()` to return it. What spans every method (a bound
//! and a TTL for all, [`Registry::invalidate_owner`], [`Registry::clear`],
//! [`purge`](Registry::purge), [`Registry::stats`]) is on the [`Registry`].
//!
//! ```
//! use std::sync::Arc;
//! use weakmemo::Registry;
//!
//! fn area(side: &Arc<f64>, &scale: &u32) -> f64 { **side * **side * f64::from(scale) }
//!
//! let cache = Registry::new();
//! let area = cache.method(area);
//! let side = Arc::new(2.0);
//! assert_eq!(area.call(&side, 3), 12.0); // computed
//! assert_eq!(area.get(&side, &3), Some(12.0)); // read
//! assert!(area.invalidate(&side, &3));
//! assert_eq!(area.get(&side, &3), None);
//! assert_eq!(area.cache_info().to_string(), "CacheInfo(hits=1, misses=2, maxsize=None, currsize=0)");
//! ```
//!
//! [`memo`] lists the attribute's options (the registry, a `Result` mode in which errors
//! are not cached, `maxsize`, `ttl`, `by_value` and `in_trait`) and its compile-time
//! errors; [`attribute`] shows what it writes for each shape: `Arc` arguments held
//! weakly beside the receiver, owner-less functions, borrowed arguments, trait impls.
//!
//! # How identity works
//!
//! - **The owner** is its allocation. An entry holds a `Weak` to it, which keeps the
//!   allocation's memory (not the object) from being reused, so a new object can never
//!   be mistaken for a dead one at the same address. The owner's own `Hash` and `Eq` are
//!   never called: two owners equal by value are two keys.
//! - **The method** is its type. Pass a fn item (`Self::calculate_uncached`) or a
//!   closure that captures nothing; every handle of the same fn item, wherever it is
//!   made, shares its entries. A capturing closure or a fn pointer is refused when the
//!   code is built:
//!
//! ```compile_fail,E0080
//! # use std::sync::Arc;
//! let f: fn(&Arc<u8>, &()) -> u8 = |n, _| **n;
//! weakmemo::global().method(f).call(&Arc::new(1), ()); // error: a method must be a fn item ...
//! ```
//!
//! - **The arguments** are hashed to find a bucket and always compared with `Eq`, so
//!   colliding hashes never return a wrong value. Several arguments form a tuple.
//!
//! A [`Registry`]'s owners and values cross threads, so they must be `Send + Sync`
//! (for one thread's `Rc`s, see [One thread: `Rc` owners](#one-thread-rc-owners)):
//!
//! ```compile_fail,E0277
//! # use std::sync::Arc;
//! fn count(n: &Arc<std::cell::Cell<u8>>, _: &()) -> u8 { 0 }
//! weakmemo::global().method(count).call(&Arc::new(std::cell::Cell::new(1)), ());
//! ```
//!
//! ```compile_fail,E0277
//! # use std::{rc::Rc, sync::Arc};
//! fn shared(n: &Arc<u8>, _: &()) -> Rc<u8> { Rc::new(**n) }
//! weakmemo::global().method(shared).call(&Arc::new(1), ());
//! ```
//!
//! `Arc<dyn Trait>` owners work too:
//!
//! ```
//! use std::sync::Arc;
//!
//! trait Shape: Send + Sync { fn area(&self) -> f64; }
//! struct Square(f64);
//! impl Shape for Square { fn area(&self) -> f64 { self.0 * self.0 } }
//!
//! fn area(shape: &Arc<dyn Shape>, &(): &()) -> f64 { shape.area() }
//!
//! let shape: Arc<dyn Shape> = Arc::new(Square(2.0));
//! assert_eq!(weakmemo::global().method(area).call(&shape, ()), 4.0);
//! ```
//!
//! # Object arguments, functions without an owner, borrowed arguments
//!
//! An `Arc` passed as an argument is the same trap as the owner, one parameter over: a
//! key holding it keeps it alive. So every `Arc` a call names is an *owner*: pass a tuple
//! of them (up to four), and each is held weakly, by identity, like the receiver. The
//! entry lives while all of them live; once one is dropped, it is never returned and lazy
//! purging removes it ([`Owners`]).
//!
//! ```
//! use std::sync::Arc;
//! use weakmemo::Registry;
//!
//! struct User { name: String }
//! struct Doc { words: Vec<String> }
//!
//! fn mentions((doc, user): (&Arc<Doc>, &Arc<User>), &(): &()) -> usize {
//!     doc.words.iter().filter(|word| **word == user.name).count()
//! }
//!
//! let cache = Registry::new();
//! let doc = Arc::new(Doc { words: vec!["ann".into(), "bo".into(), "ann".into()] });
//! let user = Arc::new(User { name: "ann".into() });
//! assert_eq!(cache.method(mentions).call((&doc, &user), ()), 2);
//!
//! let watch = Arc::downgrade(&user);
//! drop(user); // a per-request object: the long-lived `doc` does not keep it
//! assert!(watch.upgrade().is_none());
//! assert_eq!(cache.purge(), 1);
//! ```
//!
//! An `Arc` put in the arguments instead is a key like any other, by choice: compared
//! by value (its `Hash` and `Eq`) and held strongly until its entry goes.
//!
//! A function of its arguments alone (Python's static and class methods) has no owner:
//! pass `()`. Nothing frees such entries but a bound, a TTL or invalidation, so these
//! methods are bounded by [`DEFAULT_OWNERLESS_CAPACITY`] (1,024 entries) unless told
//! otherwise, as Python's `lru_cache` defaults to 128:
//!
//! ```
//! fn fib((): (), &n: &u64) -> u64 {
//!     let fib = weakmemo::global().method(fib);
//!     if n < 2 { n } else { fib.call((), n - 1) + fib.call((), n - 2) }
//! }
//! let fib = weakmemo::global().method(fib);
//! assert_eq!(fib.call((), 80), 23_416_728_348_467_685);
//! assert_eq!(fib.capacity(), Some(1024));
//! ```
//!
//! A long-lived owner with arguments its callers choose (a user id, a query string) grows
//! the same way: give such a method a bound or a TTL.
//!
//! Arguments are looked up as they are passed ([`Lookup`]): a `&str` finds a stored
//! `String` (and `&[T]` a `Vec<T>`, `&Path` a `PathBuf`, [`Borrowed`] any `ToOwned`), and
//! [`Parts`] does it part by part for several; a hit allocates nothing, the owned form is
//! made on a miss only.
//!
//! ```
//! use std::sync::Arc;
//! use weakmemo::Parts;
//!
//! fn greet(site: &Arc<String>, (name, times): &(String, usize)) -> String {
//!     format!("{site}: {}", name.repeat(*times))
//! }
//!
//! let site = Arc::new("home".to_string());
//! let name: &str = "hi";
//! let greet = weakmemo::global().method(greet);
//! assert_eq!(greet.call(&site, Parts((name, 2))), "home: hihi");
//! ```
//!
//! # When entries go away
//!
//! An entry of a dead owner is never returned, but it still holds its arguments and value
//! until it is removed. Removal is lazy and needs no thread of its own:
//!
//! - every lookup counts toward a **purge step**; every
//!   [`purge_interval`](Registry::set_purge_interval) lookups a step looks at the next
//!   [`PURGE_STEP_BUCKETS`] buckets of the registry and removes dead owners' entries,
//!   so a cache that is only read is cleaned too;
//! - before a table grows, it first drops its dead owners' entries, so memory stays
//!   bounded even with lazy steps turned off;
//! - [`Registry::purge`] removes them all at once.
//!
//! Live owners' entries stay until invalidated, unless a bound or a time to live removes
//! them (next section).
//!
//! ```
//! use std::sync::Arc;
//! use weakmemo::Registry;
//!
//! fn double(n: &Arc<u32>, &(): &()) -> u32 { **n * 2 }
//!
//! let cache = Registry::builder().purge_interval(1).build();
//! let double = cache.method(double);
//! let short_lived = Arc::new(1);
//! let long_lived = Arc::new(2);
//! double.call(&short_lived, ());
//! drop(short_lived);
//! for _ in 0..100 {
//!     double.call(&long_lived, ()); // hits, and lazy purge steps
//! }
//! let stats = cache.stats();
//! assert_eq!((stats.entries, stats.purged), (1, 1));
//! ```
//!
//! # Bounds, weights and time to live
//!
//! - [`Memo::set_capacity`] keeps one method within a number of entries, like the
//!   `maxsize` of Python's `lru_cache`. As with `lru_cache`, a value just computed is
//!   always stored, so its next call finds it. Unlike it, a value stored once cannot
//!   push out what is used often: the newest 1% of the bound (at least one entry) is a
//!   window that keeps every new value, and a value leaving the window stays only if it
//!   was asked for more often lately than the entry it would replace; one asked for
//!   again within about `maxsize` calls (when an LRU cache of that size would still
//!   hold it) needs only to be asked for as often. The cache also watches what it
//!   turned away and what it evicted: while what it turned away comes back within
//!   about `maxsize` calls more often than what it evicted, it keeps what is new
//!   instead, as `lru_cache` would, and it starts that way. So a one-off scan, or a
//!   loop over a few more keys than fit, does not flush a cache that has seen such
//!   traffic, and when the calls move to new keys the cache follows at about one
//!   computation a key, as `lru_cache` does. Dead owners' and expired entries go
//!   first.
//! - [`Registry::set_capacity`] bounds all methods together; over it, the method holding
//!   the most evicts, so one flooding method cannot evict everything else.
//! - [`Memo::set_weigher`] makes bounds count weight (bytes, say) instead of entries.
//! - [`Registry::set_ttl`] (every method) and [`Memo::set_ttl`] (one) expire entries:
//!   never returned once older, removed lazily.
//! - [`Registry::set_removal_listener`] is told of every removal and its
//!   [`RemovalCause`]; [`Stats`] counts each cause.
//!
//! A method's settings live in its table, so a setting made through one handle holds
//! for every handle of the method, and all can change at run time. Bound a method before
//! its first call where you can: its shards are made at its first lookup, about one per
//! 64 entries of its bound then.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use weakmemo::Registry;
//!
//! struct Doc { text: String }
//! fn render(doc: &Arc<Doc>, &width: &usize) -> String { doc.text.repeat(width) }
//!
//! static CACHE: Registry = Registry::builder()
//!     .capacity(64 * 1024) // bytes, by the weigher below
//!     .ttl(Duration::from_secs(600))
//!     .build();
//! let render = CACHE.method(render);
//! render.set_weigher(Some(Arc::new(|_: &usize, html: &String| html.len() as u32)));
//! render.set_capacity(Some(16 * 1024));
//!
//! let doc = Arc::new(Doc { text: "<p>".into() });
//! for width in 0..1_000 {
//!     assert_eq!(render.call(&doc, width).len(), 3 * width);
//! }
//! assert!(CACHE.weight() <= 16 * 1024);
//! assert!(CACHE.stats().evicted > 0);
//! ```
//!
//! Picking a bound: [`Stats::hit_ratio`] under real traffic is the guide. Raise a
//! method's bound while the hit ratio still rises; past the working set it flattens and
//! each entry only costs memory. With a weigher, a bound in bytes is a memory budget for
//! what the weigher counts; the table adds 24 bytes per entry (hash, owner, stamp) beside
//! the arguments and value it stores inline, and some slack. A TTL is for
//! freshness, not memory: it bounds how stale a value may be, and, since Rust has no
//! ephemerons, it frees values that hold their own owner.
//!
//! # Failing methods, panics and re-entrancy
//!
//! [`Memo::try_call`] caches `Ok` values and returns errors without caching them. Its
//! table stores the `Ok` type, so it is another table than `call`'s (which stores the
//! whole `Result`, errors included), and the handle's [`get`](Memo::get) reads the `Ok`
//! value. A handle is typed by the value it stores, which its calls infer; a handle
//! that is only read names it.
//!
//! ```
//! use std::num::ParseIntError;
//! use std::sync::Arc;
//! use weakmemo::{Memo, Registry};
//!
//! fn parse(text: &Arc<str>, &radix: &u32) -> Result<u64, ParseIntError> {
//!     u64::from_str_radix(text, radix)
//! }
//!
//! let cache = Registry::new();
//! let text: Arc<str> = Arc::from("ff");
//! let parse_ok = cache.method(parse);
//! assert!(parse_ok.try_call(&text, 10).is_err()); // not cached
//! assert_eq!(parse_ok.try_call(&text, 16), Ok(255)); // cached
//!
//! let parsed: Memo<'_, _, _, _, u64> = cache.method(parse); // the same table
//! assert_eq!(parsed.get(&text, &16), Some(255));
//! ```
//!
//! A method that panics caches nothing; the panic reaches its caller and the registry
//! stays usable (its locks do not poison). Methods run outside every lock, so a cached
//! method may call other cached methods, or itself with other arguments:
//!
//! ```
//! use std::sync::Arc;
//!
//! struct Sequence { step: u64 }
//!
//! fn fib(seq: &Arc<Sequence>, &n: &u64) -> u64 {
//!     if n < 2 {
//!         return n * seq.step;
//!     }
//!     let fib = weakmemo::global().method(fib);
//!     fib.call(seq, n - 1) + fib.call(seq, n - 2)
//! }
//!
//! let seq = Arc::new(Sequence { step: 1 });
//! assert_eq!(weakmemo::global().method(fib).call(&seq, 90), 2_880_067_194_370_816_120);
//! ```
//!
//! If several threads miss the same key at once, one runs the method and the others wait
//! for it and receive its value (single flight, [`Stats::waited`]). A call that would
//! wait for itself (a method re-entering the key it is computing) or close a cycle of
//! threads waiting for each other panics with a message saying so, instead of hanging.
//!
//! # Async methods
//!
//! [`Memo::call_async`] (and [`Memo::try_call_async`]) caches an `async fn` the same
//! way, with the lookup and single flight of `call`: tasks that miss one key await one
//! computation, and a computation whose task is cancelled hands the key over to a
//! waiting task, as a panicking one does. It depends on no runtime, holds no lock across
//! an `.await`, and its future is `Send` when the method's is. [`#[memo]`](memo) on an
//! `async fn` writes this call.
//!
//! ```
//! use std::sync::Arc;
//!
//! struct User { id: u32 }
//!
//! async fn profile(user: &Arc<User>, &(): &()) -> String {
//!     format!("profile {}", user.id) // imagine a database query
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let user = Arc::new(User { id: 7 });
//! let profile = weakmemo::global().method(profile);
//! assert_eq!(profile.call_async(&user, ()).await, "profile 7");
//! assert_eq!(profile.get(&user, &()), Some("profile 7".to_string()));
//! # });
//! ```
//!
//! # One thread: `Rc` owners
//!
//! A [`LocalRegistry`] serves one thread: `Rc` owners (`rc::Weak`s in its entries), and
//! owners, arguments and values that are not `Send` or `Sync`. It has the handle's
//! operations ([`LocalMemo`]), lazy purge and its interval, bounds (exact LRU), TTL, the
//! removal listener, stats, invalidation and fail-fast same-key recursion, with no lock
//! and no atomic instruction on its paths. [`local()`] is the thread's own, which
//! [`#[memo]`](memo) uses for `self: &Rc<Self>`:
//!
//! ```
//! # #[cfg(feature = "macros")] {
//! use std::cell::RefCell;
//! use std::rc::Rc;
//!
//! struct Env { vars: RefCell<Vec<(String, i64)>> }
//!
//! impl Env {
//!     #[weakmemo::memo]
//!     fn lookup(self: &Rc<Self>, name: &str) -> Option<i64> {
//!         self.vars.borrow().iter().find(|(n, _)| n == name).map(|(_, v)| *v)
//!     }
//! }
//!
//! let env = Rc::new(Env { vars: RefCell::new(vec![("x".into(), 1)]) });
//! assert_eq!(env.lookup("x"), Some(1));
//! assert_eq!(env.lookup("x"), Some(1)); // a lookup
//! env.vars.borrow_mut().push(("y".into(), 2));
//! Env::lookup_memo().invalidate_owner(&env); // its state changed
//! assert_eq!(env.lookup("y"), Some(2));
//! # }
//! ```
//!
//! # Freeing dead owners' values sooner
//!
//! A dead owner's entries are never returned, and lazy purge steps remove them as calls
//! go by. Where that is not soon enough (a large value per short-lived owner, or a
//! cache that goes idle), two opt-ins: a [`FreeOnDrop`] token in the owner removes its
//! entries as it drops ([`Registry::free_on_drop`]), and a sweeper purges the registry
//! every period with no traffic ([`Registry::sweep_every`], a thread, or
//! [`Registry::sweeping`], a future on any runtime). The README's "Choosing how dead
//! values go" compares every way with its cost.
//!
//! # A value that holds its owner
//!
//! Rust has no ephemerons: if a cached value holds an `Arc` to its own owner, the entry
//! keeps the owner alive and the owner keeps the entry, until you invalidate it, a bound
//! evicts it or it expires. Store a `Weak` in the value instead, invalidate the owner's
//! entries when you retire it, or bound the method or give it a TTL.
//!
//! # Design notes and measurements
//!
//! [`design`] explains the layout of the code, the data structures, the invariants the
//! code relies on and the bound on how long dead entries stay; [`benchmarks`] records the
//! measurements against a bare `hashbrown` lookup, quick_cache, moka and weak-table.
//!
//! [`attribute`] describes what `#[memo]` writes and measures what it adds to a build.
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `macros` | on | the [`memo`] attribute, from the `weakmemo-macros` crate (syn, quote, proc-macro2): about 2 s more on a clean build, see [`attribute`] |
//! | `shuttle` | off | testing only: model-checks the in-flight protocol under Shuttle |
//!
//! The minimum supported Rust version is 1.86. The crate's one `unsafe` module is the
//! lock a shard's readers take without writing a shared line ([`design`],
//! "Concurrency"), each block argued in a `// SAFETY:` comment and the lock
//! model-checked by Shuttle.
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod identity;
mod local;
mod lock_scope;
mod lookup;
mod owners;
mod read_mostly;
mod registry;
mod removal;
mod shared;
mod stats;
mod sweep;
mod sync;
mod table;

pub use identity::{Awaits, Method, Returns, Stores};
pub use local::{LocalMemo, LocalRegistry, LocalRemovalListener, LocalWeigher, local};
pub use lookup::{Borrowed, Lookup, Part, Parts};
pub use owners::Owners;
#[doc(hidden)]
pub use owners::{Addresses, Held, SharedHeld};
pub use registry::{
    CacheInfo, DEFAULT_OWNERLESS_CAPACITY, DEFAULT_PURGE_INTERVAL, FREE_ON_DROP_KEYS, FreeOnDrop,
    MAX_WEIGHT, Memo, PURGE_STEP_BUCKETS, Registry, RegistryBuilder, Weigher, global,
};
pub use removal::{Removal, RemovalCause, RemovalListener};
pub use stats::Stats;
pub use sweep::Sweeper;
#[cfg(feature = "macros")]
pub use weakmemo_macros::memo;

/// Not public API: what `#[memo]` expands to, beside [`Registry::method`].
#[doc(hidden)]
#[cfg(feature = "macros")]
pub mod __private {
    use std::hash::Hash;

    pub use crate::local::local_memo;
    pub use crate::registry::{Defaults, Resolved, memo};

    /// The value type a `result`-mode method's table stores: its `Ok` type.
    pub trait Fallible {
        /// The `Ok` type.
        type Ok;
    }

    impl<T, E> Fallible for Result<T, E> {
        type Ok = T;
    }

    /// Names an argument type that cannot be part of a key at the argument's span.
    pub fn assert_key<K: Clone + Hash + Eq + Send + Sync + 'static>() {}

    /// Names a borrowed argument `&U` whose owned form cannot be part of a key (or
    /// that cannot be looked up against it) at the argument's span.
    pub fn assert_borrowed<U>()
    where
        U: ?Sized + ToOwned + Hash + Eq,
        U::Owned: Hash + Eq + Send + Sync + 'static,
    {
    }

    /// Names an object argument (or receiver) that cannot be held as an owner at its
    /// span.
    pub fn assert_owner<T: ?Sized + Send + Sync + 'static>() {}

    /// Names a return type that cannot be cached at the return type's span.
    pub fn assert_value<V: Clone + Send + Sync + 'static>() {}

    /// [`assert_key`] for a `LocalRegistry`, which needs no `Send` or `Sync`.
    pub fn assert_local_key<K: Clone + Hash + Eq + 'static>() {}

    /// [`assert_borrowed`] for a `LocalRegistry`.
    pub fn assert_local_borrowed<U>()
    where
        U: ?Sized + ToOwned + Hash + Eq,
        U::Owned: Hash + Eq + 'static,
    {
    }

    /// [`assert_owner`] for a `LocalRegistry`.
    pub fn assert_local_owner<T: ?Sized + 'static>() {}

    /// [`assert_value`] for a `LocalRegistry`.
    pub fn assert_local_value<V: Clone + 'static>() {}
}

#[doc = include_str!("../docs/design.md")]
pub mod design {}

#[doc = include_str!("../docs/benchmarks.md")]
pub mod benchmarks {}

#[doc = include_str!("../docs/macro.md")]
#[cfg(feature = "macros")]
pub mod attribute {}

#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "macros"))]
struct ReadmeDoctests;
