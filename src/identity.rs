//! How an owner and a method are identified, without ever calling user code.
//!
//! An owner is its allocation: the address of the value inside the `Arc`. The address is
//! a sound identity for as long as an entry holds a `Weak` to it, because a `Weak` keeps
//! the allocation (not the value) alive, so the allocator cannot hand the same address to
//! a new object while the entry exists. The owner's own `Hash` and `Eq` are never called.
//!
//! A method is its type. Fn items and non-capturing closures are zero-sized types unique
//! to their definition, so `TypeId::of::<F>()` names the method and nothing else; a
//! value that carries data (a capturing closure, a fn pointer) could change behaviour
//! without changing type, so it is rejected at build time.

use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::{Arc, Weak};

/// The address of an owner's allocation (the data pointer, metadata dropped).
pub(crate) fn owner_addr<T: ?Sized>(owner: &Arc<T>) -> usize {
    Arc::as_ptr(owner).cast::<()>().addr()
}

/// The address a `Weak` points to; equal to [`owner_addr`] of every `Arc` of the same
/// allocation, whatever `T` the `Arc` was coerced to.
pub(crate) fn weak_addr<T: ?Sized>(owner: &Weak<T>) -> usize {
    Weak::as_ptr(owner).cast::<()>().addr()
}

/// A method the registry can name: a fn item, or a closure that captures nothing, taking
/// the owner and a reference to the arguments, plain or `async`.
///
/// Implemented for every such function; `Kind` ([`Returns`] or [`Awaits`]) is inferred
/// and only tells the two sorts apart. The operations that name a method without
/// calling it ([`Registry::get`](crate::Registry::get),
/// [`Registry::invalidate`](crate::Registry::invalidate),
/// [`Registry::method_stats`](crate::Registry::method_stats), ...) take any `Method`,
/// so they serve `call_async` as they serve `call`.
pub trait Method<O, A, Kind>: 'static {}

/// The [`Method`] kind of a plain function returning `R`.
#[derive(Debug)]
pub struct Returns<R>(PhantomData<R>);

/// The [`Method`] kind of an `async` function whose future outputs `R`.
#[derive(Debug)]
pub struct Awaits<R>(PhantomData<R>);

/// What a [`Method`] of this kind gives, once called (and awaited): its value type.
pub trait MethodKind {
    /// `R`, for [`Returns<R>`] and for [`Awaits<R>`].
    type Output;
    /// Whether the method is `async` ([`Awaits`]): a fn that can be called both ways
    /// (a plain fn returning a `Future`) is two methods, with a table each.
    const ASYNC: bool;
}

impl<R> MethodKind for Returns<R> {
    type Output = R;
    const ASYNC: bool = false;
}

impl<R> MethodKind for Awaits<R> {
    type Output = R;
    const ASYNC: bool = true;
}

/// A [`Method`] kind whose table may store values of type `V`: its output `R`, through
/// `call` (or `call_async`), or, for an output `Result<V, E>`, the `Ok` type, through
/// `try_call` (or `try_call_async`). It lets
/// [`Registry::set_method_weigher`](crate::Registry::set_method_weigher) refuse, at
/// build time, a weigher of a type the method never stores.
#[diagnostic::on_unimplemented(
    message = "weakmemo: this method stores no `{V}`: a weigher takes the method's \
               return type, or the `Ok` type of a `Result` cached by `try_call`",
    label = "the weigher's value type"
)]
pub trait Stores<V> {}

impl<R> Stores<R> for Returns<R> {}

impl<R> Stores<R> for Awaits<R> {}

impl<V, E> Stores<V> for Returns<Result<V, E>> {}

impl<V, E> Stores<V> for Awaits<Result<V, E>> {}

impl<O, A, R, F: Fn(O, &A) -> R + 'static> Method<O, A, Returns<R>> for F {}

impl<O, A, R, F: AsyncFn(O, &A) -> R + 'static> Method<O, A, Awaits<R>> for F {}

/// The table of method `F` called in one way: `ASYNC` through `call_async` or
/// `try_call_async`, `FALLIBLE` through `try_call` or `try_call_async`. A fallible
/// table stores the `Ok` value, and an async one the future's output, so none may share
/// a table with another way of calling the same fn (a plain fn returning a `Future` can
/// be called both ways: it is two methods).
struct Table<F, const ASYNC: bool, const FALLIBLE: bool>(PhantomData<F>);

/// Proves at build time that `F` names a method: it is zero-sized, as a fn item or a
/// non-capturing closure is. Named in each public entry point that takes a method, so
/// that the build error points at the caller's line.
pub(crate) struct Named<F>(PhantomData<F>);

impl<F> Named<F> {
    pub(crate) const METHOD: () = assert!(
        size_of::<F>() == 0,
        "weakmemo: a method must be a fn item or a non-capturing closure, because the \
         cache identifies it by its type; a capturing closure or a fn pointer (an array \
         or `if`/`match` of fn items makes them fn pointers) carries data the type does \
         not show"
    );
}

/// The identity of the table of method `F` called through `call` (or `call_async`, if
/// `asynchronous`), or, if `fallible`, `try_call` (or `try_call_async`).
#[inline]
pub(crate) fn method_id<F: 'static>(asynchronous: bool, fallible: bool) -> TypeId {
    match (asynchronous, fallible) {
        (false, false) => TypeId::of::<Table<F, false, false>>(),
        (false, true) => TypeId::of::<Table<F, false, true>>(),
        (true, false) => TypeId::of::<Table<F, true, false>>(),
        (true, true) => TypeId::of::<Table<F, true, true>>(),
    }
}

/// The identities of both tables of method `F` of kind `K` (through `call` and
/// `try_call`, or their async twins).
pub(crate) fn table_ids<F: 'static, K: MethodKind>() -> [TypeId; 2] {
    // For the entry points that name a method without calling it (`invalidate`, the
    // settings, ...): the error points here, and names the method's type.
    let () = Named::<F>::METHOD;
    [
        method_id::<F>(K::ASYNC, false),
        method_id::<F>(K::ASYNC, true),
    ]
}
