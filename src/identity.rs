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
pub trait Method<T: ?Sized, A, Kind>: 'static {}

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
}

impl<R> MethodKind for Returns<R> {
    type Output = R;
}

impl<R> MethodKind for Awaits<R> {
    type Output = R;
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

impl<T: ?Sized, A, R, F: Fn(&Arc<T>, &A) -> R + 'static> Method<T, A, Returns<R>> for F {}

impl<T: ?Sized, A, R, F: AsyncFn(&Arc<T>, &A) -> R + 'static> Method<T, A, Awaits<R>> for F {}

/// Marks the table of a method called through `try_call`: it stores the `Ok` value, so it
/// must not share a table with the same method called through `call`.
struct Fallible<F>(PhantomData<F>);

/// The identity of method `F`, called through `call` (`fallible == false`) or `try_call`.
///
/// Fails to build (post-monomorphization, so at `cargo build`, not `cargo check`) if `F`
/// is not zero-sized.
#[inline]
pub(crate) fn method_id<F: 'static>(fallible: bool) -> TypeId {
    const {
        assert!(
            size_of::<F>() == 0,
            "weakmemo: a method must be a fn item or a non-capturing closure, because \
             the cache identifies it by its type; a capturing closure or a fn pointer \
             carries data the type does not show"
        )
    };
    if fallible {
        TypeId::of::<Fallible<F>>()
    } else {
        TypeId::of::<F>()
    }
}
