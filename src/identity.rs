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
use std::rc::{self, Rc};
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

/// [`owner_addr`] of an `Rc` owner.
pub(crate) fn rc_addr<T: ?Sized>(owner: &Rc<T>) -> usize {
    Rc::as_ptr(owner).cast::<()>().addr()
}

/// [`weak_addr`] of an `rc::Weak`.
pub(crate) fn rc_weak_addr<T: ?Sized>(owner: &rc::Weak<T>) -> usize {
    rc::Weak::as_ptr(owner).cast::<()>().addr()
}

/// A method the registry can name: a fn item, or a closure that captures nothing, taking
/// the owners and a reference to the arguments, plain or `async`.
///
/// Implemented for every such function; `Kind` ([`Returns`] or [`Awaits`]) is inferred
/// and only tells the two sorts apart, so that [`Registry::method`](crate::Registry::method)
/// can infer what a method's table stores ([`Stores`]). A plain fn that returns a
/// `'static` future is both, so two methods: name the kind where it matters,
/// `registry.method::<_, _, _, Awaits<_>, _>(f)` (or `Returns<_>`).
pub trait Method<O, A, Kind>: 'static {}

/// The [`Method`] kind of a plain function returning `R`.
#[derive(Debug)]
pub struct Returns<R>(PhantomData<R>);

/// The [`Method`] kind of an `async` function whose future outputs `R`.
#[derive(Debug)]
pub struct Awaits<R>(PhantomData<R>);

/// A [`Method`] kind whose table may store values of type `V`: its output `R`, through
/// `call` (or `call_async`), or, for an output `Result<V, E>`, the `Ok` type, through
/// `try_call` (or `try_call_async`). It lets [`Registry::method`](crate::Registry::method)
/// infer the stored type from the method alone when the method returns no `Result`.
#[diagnostic::on_unimplemented(
    message = "weakmemo: this method stores no `{V}`: a method's table stores its \
               return type, or the `Ok` type of a `Result` cached by `try_call`",
    label = "the stored type"
)]
pub trait Stores<V> {}

impl<R> Stores<R> for Returns<R> {}

impl<R> Stores<R> for Awaits<R> {}

impl<V, E> Stores<V> for Returns<Result<V, E>> {}

impl<V, E> Stores<V> for Awaits<Result<V, E>> {}

impl<O, A, R, F: Fn(O, &A) -> R + 'static> Method<O, A, Returns<R>> for F {}

impl<O, A, R, F: AsyncFn(O, &A) -> R + 'static> Method<O, A, Awaits<R>> for F {}

/// The identity of a method's table: the method and the type it stores. `call` stores
/// the return type (a whole `Result`, errors included), `try_call` the `Ok` type, and
/// the async twins the future's output (or its `Ok` type), so one fn cached two ways
/// has two tables; every handle of one fn and stored type reaches the same one.
struct Table<F, V>(PhantomData<(F, V)>);

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

/// The identity of the table of method `F` storing `V`.
#[inline]
pub(crate) fn table_id<F: 'static, V: 'static>() -> TypeId {
    TypeId::of::<Table<F, V>>()
}
