//! The `#[weakmemo::memo]` attribute. Use it through the `weakmemo` crate, which
//! re-exports it behind its default `macros` feature; the generated code names
//! `::weakmemo`, so this crate alone is of no use.
//!
//! The attribute checks the function's shape, reports each misuse at its own span, and
//! sorts its parameters: the receiver and every `Arc` argument are the *owners*, held
//! weakly by identity; the others are the *key*, stored owned (a `&str` as a `String`,
//! looked up as it is). It turns one fn into three items (see the `weakmemo::attribute`
//! design note):
//!
//! - `NAME_uncached`: the original body, in a private fn taking the owners and `&KEY`
//!   (an `async fn` if the function is one);
//! - `NAME`: the original signature, docs and attributes, whose body finds the method's
//!   `weakmemo::Memo` handle and makes one `call` (or `try_call`; for an `async fn`, an
//!   awaited `call_async` or `try_call_async`);
//! - `NAME_memo()`: that handle, with the function's visibility.
//!
//! With `in_trait` (a trait impl, where rustc refuses items the trait does not declare)
//! it writes `NAME` alone, the body in a closure inside it.
#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

mod code;
mod generate;
mod options;
mod shape;
mod tokens;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::ItemFn;

use crate::generate::generate;
use crate::options::parse_options;
use crate::shape::check;

/// Caches a function's results in a weakmemo registry, keyed by its owners (held
/// weakly, by identity), the function and its other arguments.
///
/// ```text
/// impl SlowAdder {
///     #[weakmemo::memo]
///     pub fn calculate(self: &Arc<Self>, a: i64, b: i64) -> i64 { ... }
/// }
/// // SlowAdder::calculate_memo(): .cache_info(), .clear(), .invalidate(&adder, &(1, 2)), ...
/// ```
///
/// It applies to a method, an associated fn or a free function, plain or `async fn`.
/// Its parameters are sorted:
///
/// - **Owners**, held weakly, by the address of their `Arc` allocation: the receiver
///   `self: &Arc<Self>` (or `self: Arc<Self>`) and every parameter of type `&Arc<U>`
///   or `Arc<U>` (`U` may be `dyn Trait`), in order, at most four in all. An entry lives
///   while all its owners live; it is never returned once one is dropped and is purged
///   lazily. Their `Hash` and `Eq` are never called: an equal object in another `Arc`
///   is another key. Owners may be `Rc`s instead (`self: &Rc<Self>`, `&Rc<U>`, all of
///   them): the method's entries then live in the thread's `weakmemo::local()`
///   registry, a `LocalRegistry`, and its owners, arguments and value need not be `Send`
///   or `Sync`; `NAME_memo()` returns a `LocalMemo`. A function with no owner is cached by its arguments alone, and its
///   table is bounded (`weakmemo::DEFAULT_OWNERLESS_CAPACITY`, 1024 entries) unless
///   `maxsize` says otherwise.
/// - **The key**, the other parameters, stored owned: none is `()`, one is itself,
///   several are a tuple in order. A borrowed `&U` (`&str`, `&[T]`, `&Path`, any
///   `U: ToOwned`) is stored as its owned form (`String`, `Vec<T>`, `PathBuf`,
///   `U::Owned`) and looked up as it is, so a hit allocates nothing; the body still
///   receives `&U`. A `&'static U` is stored as it is. Key types must be
///   `Hash + Eq + Send + Sync + 'static` (owned ones `Clone` too: the body receives a
///   clone), and the return type (an `async fn`'s output) `Clone + Send + Sync +
///   'static`.
///
/// ```text
/// impl Client {
///     #[weakmemo::memo]
///     pub async fn fetch(self: &Arc<Self>, path: &str) -> String { ... }
/// }
/// // client.fetch("/a").await: `Memo::call_async`, single flight across tasks
/// ```
///
/// An `async fn` stays one: `NAME` awaits `Memo::call_async` (`try_call_async` in
/// `result` mode) on the `async fn NAME_uncached`, and its future is `Send` when the
/// body's is (but see the design note for a rustc limit on spawning a task that awaits
/// it when an owner or key type holds a lifetime). Concurrent tasks missing one key
/// await one computation; a cancelled computation leaves nothing cached and a waiting
/// task runs the body afresh.
///
/// Beside the function `NAME`, the attribute writes two items of the same generics:
///
/// - `NAME_uncached`, a private fn (`async` if `NAME` is) that holds the original body
///   (so a breakpoint, a backtrace, an early `return` and `?` behave as written) and
///   takes the owners (`self`, one `&Arc`, a tuple of them, or `()`) and `&KEY`; it is
///   the method identity the registry sees;
/// - `NAME_memo()`, with the function's visibility, returning its `weakmemo::Memo`
///   handle, so that code that can call the method can read it (`get(owners, &key)`,
///   `stats()`, `cache_info()`), tune it (`set_capacity`, `set_ttl`, `set_weigher`) and
///   invalidate it (`invalidate(owners, &key)`, `invalidate_owner(&owner)`, `clear()`).
///   A loop that calls the method often can hold the handle and `call` it: the hit then
///   skips finding the method's table.
///
/// `NAME` finds the handle on each call: for a function that is not generic and whose
/// owner, key and value types do not name `Self`, from a `static` that keeps its table
/// once found; otherwise through the registry's directory, as `Registry::method` does
/// (an item inside a method cannot name `Self`, and a `static` is one for every
/// instantiation of a generic function).
///
/// They are named `Self::NAME_uncached` when the function is in an `impl`: it has a
/// receiver or names `Self` in its signature or body; otherwise it is taken for a free
/// function.
///
/// # Options
///
/// - `registry = EXPR`: the registry, an expression of type `&'static Registry`
///   evaluated on each call (`registry = &PARSERS` for a `static`); default
///   `weakmemo::global()`. For `Rc` owners, of type `LocalRegistry` (a handle, say
///   `MINE.with(Clone::clone)` of a `thread_local!`); default `weakmemo::local()`.
/// - `result`: the function returns a `Result`; `Ok` values are cached and errors are
///   returned without being cached (`Memo::try_call`, or `try_call_async`).
/// - `maxsize = N`: bounds the method to `N` entries (`Memo::set_capacity`): the bound
///   its table starts with, when the table is made (by the first call or the first
///   `NAME_memo()`), so `cache_info().maxsize` reports it from the start, and each
///   instantiation of a generic function, a method of its own with a table of its own,
///   starts with it too. `maxsize = None` lifts the bound of an owner-less function.
///   A bound changed later through the handle stays changed.
/// - `ttl = DURATION`: gives the method a time to live, an expression of type
///   `std::time::Duration` (`ttl = Duration::from_secs(60)`), evaluated when the table
///   is made: its entries are never returned once older than that, and the next call
///   computes afresh (`Memo::set_ttl`); like `maxsize`, a starting setting of every
///   instantiation, which `NAME_memo().ttl()` reports.
/// - `by_value(ARG, ..)`: these `Arc` arguments are part of the key, compared by value
///   (`Arc`'s `Eq`, which compares what it points to) and **held strongly** by every
///   entry made with them, like any other key: for `Arc<str>` names and other values
///   that merely happen to be shared, not for objects that must be freed.
/// - `in_trait`: for a method in a trait impl (or a trait's default method), where rustc
///   refuses items the trait does not declare: `NAME` alone is written, the body in a
///   non-capturing closure inside it, which is the method identity; there is no
///   `NAME_uncached` and no `NAME_memo()` handle. A method attribute cannot see its
///   `impl` header, so it cannot tell a trait impl from an inherent one by itself.
///
/// # Panics
///
/// The generated function panics where `Memo::call` does: when the body panics
/// (nothing is cached, the registry stays usable), when a call re-enters the key it is
/// computing ("recursive call for the same key"), and when waiting for another thread
/// would close a cycle ("deadlock avoided"). An `async fn` panics where
/// `Memo::call_async` does: the same, with tasks for threads. In `result` mode an
/// `Err` is returned, not cached; see `Memo::try_call`.
///
/// # Errors at compile time
///
/// Each at the span of the offending token, saying what to write instead: a receiver
/// other than `self: &Arc<Self>` or `self: Arc<Self>` (`&self`, `&mut self`, `self`,
/// `self: Box<Self>`); more than four owners; a `&mut` argument; a `&dyn Trait`
/// argument (take `&Arc<dyn Trait>`); an `impl Trait` argument; a borrow or a
/// non-`'static` lifetime inside an argument's type (`Vec<&str>`, `Cow<'a, str>`); more
/// than eight key arguments beside a borrowed one; `const fn`, `unsafe fn`, `extern
/// fn`; no return type; an unknown option, or `by_value` naming no `Arc` argument;
/// `Arc` and `Rc` owners in one method. A
/// `ttl` that is not a `Duration` is
/// rustc's type error, at the expression. An owner that is not `Send + Sync +
/// 'static`, a key argument that is not `Clone + Hash + Eq + Send + Sync + 'static`
/// (a borrowed one: whose owned form is not), or a return type that is not `Clone +
/// Send + Sync + 'static` (with `Rc` owners: the same, less `Send + Sync`), is
/// reported at its own span (and once more at the
/// attribute, by `Memo::call` or `call_async`).
///
/// # Build time
///
/// Measured on a 2-core VM with rustc 1.95, after `cargo clean` in a target directory of
/// its own: `cargo build --release` of weakmemo takes 3.7 s with this feature (the
/// default) and 1.7 s with `--no-default-features`; a debug `cargo build`, 4.1 s and
/// 1.7 s. The 2 s are `syn` (2.2 s on the critical path); this crate itself takes
/// 0.26 s, which is all a program already building `syn` 2 with `full` pays.
#[proc_macro_attribute]
pub fn memo(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // The original item too, so that a misuse is reported once, not again at
        // every call site of a method that would otherwise have vanished.
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #item).into()
        }
    }
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let options = parse_options(attr);
    let function: ItemFn = syn::parse2(item)?;
    let options = options?;
    let shape = check(&function, &options)?;
    Ok(generate(&options, &function, &shape))
}
