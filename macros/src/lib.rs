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
//! - `NAME`: the original signature, docs and attributes, whose body is one
//!   `Registry::call` (or `try_call`; for an `async fn`, an awaited `call_async` or
//!   `try_call_async`) passing `NAME_uncached`;
//! - `NAME_memo()`: the method's `weakmemo::Memo` handle.
//!
//! With `in_trait` (a trait impl, where rustc refuses items the trait does not declare)
//! it writes `NAME` alone, the body in a closure inside it.
#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

use proc_macro::TokenStream;
use proc_macro2::{Delimiter, Group, Literal, Span, TokenStream as TokenStream2, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, FnArg, GenericArgument, GenericParam, Ident, ItemFn, Pat, PatIdent, PatType,
    PathArguments, ReturnType, Signature, Token, Type, TypeReference,
};

/// Caches a function's results in a weakmemo registry, keyed by its owners (held
/// weakly, by identity), the function and its other arguments.
///
/// ```text
/// impl SlowAdder {
///     #[weakmemo::memo]
///     pub fn calculate(self: &Arc<Self>, a: i64, b: i64) -> i64 { ... }
/// }
/// // SlowAdder::calculate_memo().cache_info(), .cache_clear(), .invalidate(&adder, &(1, 2))
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
///   is another key. A function with no owner is cached by its arguments alone, and its
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
/// // client.fetch("/a").await: `Registry::call_async`, single flight across tasks
/// ```
///
/// An `async fn` stays one: `NAME` awaits `Registry::call_async` (`try_call_async` in
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
///   handle: `cache_info()`, `ttl()`, `cache_clear()`, `invalidate_owner(&owner)`,
///   `invalidate(owners, &key)`.
///
/// They are named `Self::NAME_uncached` when the function is in an `impl`: it has a
/// receiver or names `Self` in its signature or body; otherwise it is taken for a free
/// function.
///
/// # Options
///
/// - `registry = EXPR`: the registry, an expression of type `&'static Registry`
///   evaluated on each call (`registry = &PARSERS` for a `static`); default
///   `weakmemo::global()`.
/// - `result`: the function returns a `Result`; `Ok` values are cached and errors are
///   returned without being cached (`Registry::try_call`, or `try_call_async`).
/// - `maxsize = N`: bounds the method to `N` entries (`Registry::set_method_capacity`,
///   set on the registry of the first call); `cache_info().maxsize` reports it from
///   then on. `maxsize = None` lifts the bound of an owner-less function. Not for
///   generic functions, whose instantiations are methods of their own.
/// - `ttl = DURATION`: gives the method a time to live, an expression of type
///   `std::time::Duration` (`ttl = Duration::from_secs(60)`): its entries are never
///   returned once older than that, and the next call computes afresh
///   (`Registry::set_method_ttl`, set on the registry of the first call, with
///   `maxsize`'s flag); `NAME_memo().ttl()` reports it from then on. Not for generic
///   functions either.
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
/// The generated function panics where `Registry::call` does: when the body panics
/// (nothing is cached, the registry stays usable), when a call re-enters the key it is
/// computing ("recursive call for the same key"), and when waiting for another thread
/// would close a cycle ("deadlock avoided"). An `async fn` panics where
/// `Registry::call_async` does: the same, with tasks for threads. In `result` mode an
/// `Err` is returned, not cached; see `Registry::try_call`.
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
/// `maxsize` or `ttl` on a generic function. A `ttl` that is not a `Duration` is
/// rustc's type error, at the expression. An owner that is not `Send + Sync +
/// 'static`, a key argument that is not `Clone + Hash + Eq + Send + Sync + 'static`
/// (a borrowed one: whose owned form is not), or a return type that is not `Clone +
/// Send + Sync + 'static`, is reported at its own span (and once more at the
/// attribute, by `Registry::call` or `call_async`).
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

/// Names a user may try for the bound, which is spelled `maxsize`.
const BOUND_ALIASES: &[&str] = &["max_size", "capacity", "size"];

/// Names a user may try for the time to live, which is spelled `ttl`.
const TTL_ALIASES: &[&str] = &[
    "time_to_live",
    "expire",
    "expires",
    "expiry",
    "expire_after",
    "timeout",
    "ttl_secs",
    "ttl_ms",
    "max_age",
];

/// Names a user may try for a trait impl's method, which is spelled `in_trait`.
const TRAIT_ALIASES: &[&str] = &["trait_impl", "in_trait_impl", "local", "in_impl"];

/// Names a user may try for keying an `Arc` by value, which is spelled `by_value`.
const BY_VALUE_ALIASES: &[&str] = &["strong", "by_eq", "by_hash", "value"];

/// The attribute's arguments.
struct Options {
    registry: Option<Expr>,
    result: bool,
    /// The method's bound, an expression of type `usize`, or `None` for none.
    maxsize: Option<Expr>,
    /// The method's time to live, an expression of type `std::time::Duration`.
    ttl: Option<Expr>,
    /// Everything inside the method, for a trait impl.
    in_trait: bool,
    /// `Arc` parameters keyed by value rather than held by identity.
    by_value: Vec<Ident>,
}

fn parse_options(attr: TokenStream2) -> syn::Result<Options> {
    let mut options = Options {
        registry: None,
        result: false,
        maxsize: None,
        ttl: None,
        in_trait: false,
        by_value: Vec::new(),
    };
    let parser = syn::meta::parser(|meta| {
        let path = &meta.path;
        if path.is_ident("registry") {
            if options.registry.is_some() {
                return Err(meta.error("`registry` is given twice"));
            }
            options.registry = Some(meta.value()?.parse()?);
            Ok(())
        } else if path.is_ident("result") {
            options.result = true;
            Ok(())
        } else if path.is_ident("in_trait") {
            options.in_trait = true;
            Ok(())
        } else if path.is_ident("maxsize") {
            if options.maxsize.is_some() {
                return Err(meta.error("`maxsize` is given twice"));
            }
            options.maxsize = Some(meta.value()?.parse()?);
            Ok(())
        } else if path.is_ident("ttl") {
            if options.ttl.is_some() {
                return Err(meta.error("`ttl` is given twice"));
            }
            options.ttl = Some(meta.value()?.parse()?);
            Ok(())
        } else if path.is_ident("by_value") {
            meta.parse_nested_meta(|arg| match arg.path.get_ident() {
                Some(name) if arg.input.is_empty() || arg.input.peek(Token![,]) => {
                    options.by_value.push(name.clone());
                    Ok(())
                }
                _ => Err(arg.error("`by_value(..)` lists parameter names: `by_value(name, ..)`")),
            })
        } else if BOUND_ALIASES.iter().any(|name| path.is_ident(name)) {
            Err(meta
                .error("the bound on entries is spelled `maxsize = N`, as in Python's `lru_cache`"))
        } else if TTL_ALIASES.iter().any(|name| path.is_ident(name)) {
            Err(meta.error(
                "the time to live is spelled `ttl = DURATION`, a `std::time::Duration` \
                 (`ttl = Duration::from_secs(60)`)",
            ))
        } else if TRAIT_ALIASES.iter().any(|name| path.is_ident(name)) {
            Err(meta.error(
                "a method of a trait impl is marked `in_trait`: `#[weakmemo::memo(in_trait)]`",
            ))
        } else if BY_VALUE_ALIASES.iter().any(|name| path.is_ident(name)) {
            Err(meta.error(
                "an `Arc` argument keyed by value (held strongly) is spelled \
                 `by_value(name)`",
            ))
        } else {
            Err(meta.error(
                "unknown option of `#[weakmemo::memo]`: the options are \
                 `registry = EXPR` (a `&'static weakmemo::Registry`), `maxsize = N` (a \
                 bound on entries, `None` for none), `ttl = DURATION` (a time to live), \
                 `result`, `by_value(ARG, ..)` (`Arc` arguments keyed by value, held \
                 strongly) and `in_trait` (a method of a trait impl)",
            ))
        }
    });
    parser.parse2(attr)?;
    Ok(options)
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let options = parse_options(attr);
    let function: ItemFn = syn::parse2(item)?;
    let options = options?;
    let shape = check(&function, &options)?;
    Ok(generate(&options, &function, &shape))
}

/// The most owners an entry holds (`weakmemo::Owners` is implemented for up to four).
const MAX_OWNERS: usize = 4;

/// The most parts `weakmemo::Parts` looks up, for a key with a borrowed argument.
const MAX_PARTS: usize = 8;

/// The function's parameters, sorted.
struct Shape<'a> {
    receiver: Option<Receiver<'a>>,
    /// The typed parameters, in order.
    params: Vec<Param<'a>>,
    /// Whether the function is an associated one, so that its siblings are `Self::..`.
    in_impl: bool,
}

/// A receiver the cache can hold: `self: &Arc<Self>`, or `self: Arc<Self>` (by value).
struct Receiver<'a> {
    receiver: &'a syn::Receiver,
    by_value: bool,
}

/// A typed parameter, with the plain name the public fn gives it.
struct Param<'a> {
    pat_type: &'a PatType,
    name: Ident,
    role: Role<'a>,
}

enum Role<'a> {
    /// An object held weakly, by identity: `&Arc<U>`, or `Arc<U>` (by value). `inner`
    /// is `U`.
    Owner { by_value: bool, inner: &'a Type },
    /// Part of the key.
    Key(Form<'a>),
}

enum Form<'a> {
    /// Stored as written, moved in; the body receives a clone.
    Owned,
    /// `&U`, looked up as it is and stored as `U::to_owned()`; the body receives `&U`
    /// borrowed from the stored key. `direct`: `U` has a `Lookup` and `Part` impl of its
    /// own (`str`, `[T]`, `Path`, `OsStr`, `CStr`); other types go through `Borrowed`.
    Borrowed { elem: &'a Type, direct: bool },
}

/// One owner, in order: the receiver, then the `Arc` parameters.
enum Owner<'s, 'a> {
    Receiver(&'s Receiver<'a>),
    Param(&'s Param<'a>, bool, &'a Type),
}

impl<'a> Shape<'a> {
    fn owners(&self) -> Vec<Owner<'_, 'a>> {
        let receiver = self.receiver.iter().map(Owner::Receiver);
        let params = self.params.iter().filter_map(|param| match &param.role {
            Role::Owner { by_value, inner } => Some(Owner::Param(param, *by_value, inner)),
            Role::Key(_) => None,
        });
        receiver.chain(params).collect()
    }

    fn keys(&self) -> Vec<(&Param<'a>, &Form<'a>)> {
        self.params
            .iter()
            .filter_map(|param| match &param.role {
                Role::Key(form) => Some((param, form)),
                Role::Owner { .. } => None,
            })
            .collect()
    }
}

/// Every misuse of the signature, combined into one error.
fn check<'a>(function: &'a ItemFn, options: &Options) -> syn::Result<Shape<'a>> {
    let sig = &function.sig;
    let mut errors = Errors(None);
    if let Some(token) = &sig.constness {
        errors.push(
            token,
            "`#[weakmemo::memo]` cannot cache a `const fn`: the cache is looked up at run time",
        );
    }
    if let Some(token) = &sig.unsafety {
        errors.push(
            token,
            "`#[weakmemo::memo]` cannot cache an `unsafe fn`: the registry calls the \
             method through the safe `Fn` or `AsyncFn` trait",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push(
            abi,
            "`#[weakmemo::memo]` cannot cache an `extern` fn: the registry calls it as a \
             Rust fn item",
        );
    }
    if let ReturnType::Default = sig.output {
        errors.push_span(
            sig.paren_token.span.close(),
            "`#[weakmemo::memo]` needs a return type: the cache stores what the method \
             returns, and a method returning `()` has nothing to cache",
        );
    }

    let mut receiver = None;
    let mut params = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate() {
        match input {
            // A receiver after the first parameter is already an error of the parser.
            FnArg::Receiver(written) => {
                if written.colon_token.is_some() && is_ref_arc(&written.ty) {
                    receiver = Some(Receiver {
                        receiver: written,
                        by_value: false,
                    });
                } else if written.colon_token.is_some() && arc_inner(&written.ty).is_some() {
                    receiver = Some(Receiver {
                        receiver: written,
                        by_value: true,
                    });
                } else {
                    errors.push(written, &receiver_error(written));
                }
            }
            FnArg::Typed(pat_type) => {
                let name = simple_name(&pat_type.pat)
                    .unwrap_or_else(|| format_ident!("arg{}", i + 1, span = Span::mixed_site()));
                let by_value =
                    simple_name(&pat_type.pat).is_some_and(|name| options.by_value.contains(&name));
                let role = role(&pat_type.ty, by_value, &mut errors);
                params.push(Param {
                    pat_type,
                    name,
                    role,
                });
            }
        }
    }
    check_by_value(options, &params, &mut errors);

    let in_impl = receiver.is_some()
        || mentions_self_type(sig.to_token_stream())
        || mentions_self_type(function.block.to_token_stream());
    let shape = Shape {
        receiver,
        params,
        in_impl,
    };
    let owners = shape.owners();
    if let Some(fifth) = owners.get(MAX_OWNERS) {
        let tokens = match fifth {
            Owner::Receiver(receiver) => receiver.receiver.to_token_stream(),
            Owner::Param(param, ..) => param.pat_type.to_token_stream(),
        };
        errors.push(
            tokens,
            "`#[weakmemo::memo]` holds at most four objects by identity (the receiver and \
             the `Arc` arguments together), and this is a fifth: group objects that live \
             and die together behind one `Arc`, or key the method by an owned value \
             that names the object (an id) instead",
        );
    }
    let keys = shape.keys();
    let borrowed = keys
        .iter()
        .any(|(_, form)| matches!(form, Form::Borrowed { .. }));
    if borrowed && keys.len() > MAX_PARTS {
        errors.push(
            keys[MAX_PARTS].0.pat_type,
            "`#[weakmemo::memo]` looks a key with a borrowed argument up part by part \
             (`weakmemo::Parts`), which takes at most eight arguments after the owners: \
             group some arguments in a struct of your own, or take the borrowed ones \
             owned (`String` for `&str`)",
        );
    }
    match errors.0 {
        Some(error) => Err(error),
        None => Ok(shape),
    }
}

/// What a parameter of type `ty` is: an owner (an `Arc`, unless keyed `by_value`) or a
/// part of the key; each misuse is pushed to `errors`.
fn role<'a>(ty: &'a Type, by_value: bool, errors: &mut Errors) -> Role<'a> {
    if !by_value {
        if let Some(inner) = arc_inner(ty) {
            return Role::Owner {
                by_value: true,
                inner,
            };
        }
        if let Type::Reference(TypeReference {
            mutability: None,
            elem,
            ..
        }) = ty
        {
            if let Some(inner) = arc_inner(elem) {
                return Role::Owner {
                    by_value: false,
                    inner,
                };
            }
        }
    }
    let Type::Reference(reference) = ty else {
        check_key_type(ty, errors);
        return Role::Key(Form::Owned);
    };
    let elem = &*reference.elem;
    if reference.mutability.is_some() {
        errors.push(
            ty,
            "`#[weakmemo::memo]` cannot take a `&mut` argument: a hit skips the body, so \
             its writes would happen on a miss only; take `&T` (looked up as it is, \
             stored owned) or an owned value, and return what the body computes",
        );
    } else if let Type::TraitObject(_) = elem {
        errors.push(
            ty,
            "`#[weakmemo::memo]` cannot key the cache by a `&dyn Trait` argument: a trait \
             object has no owned form to store; take `&Arc<dyn Trait>`, which the cache \
             holds weakly, by identity, or a concrete type",
        );
    } else {
        check_key_type(elem, errors);
    }
    if is_static(reference) {
        return Role::Key(Form::Owned);
    }
    Role::Key(Form::Borrowed {
        elem,
        direct: has_direct_lookup(elem),
    })
}

/// `by_value` names only `Arc` parameters.
fn check_by_value(options: &Options, params: &[Param<'_>], errors: &mut Errors) {
    for listed in &options.by_value {
        match params.iter().find(|param| param.name == *listed) {
            None => errors.push(
                listed,
                "`by_value` names no parameter of this function: list the `Arc` \
                 arguments to key by value",
            ),
            Some(param) => {
                let ty = &*param.pat_type.ty;
                let is_arc = match ty {
                    Type::Reference(reference) => arc_inner(&reference.elem).is_some(),
                    _ => arc_inner(ty).is_some(),
                };
                if !is_arc {
                    errors.push(
                        listed,
                        "`by_value` is for `Arc` arguments, which are otherwise held by \
                         identity; every other argument is part of the key by value \
                         already",
                    );
                }
            }
        }
    }
}

/// Why a receiver other than `self: &Arc<Self>` or `self: Arc<Self>` cannot be cached,
/// naming what was written.
fn receiver_error(receiver: &syn::Receiver) -> String {
    const WANTED: &str = "`#[weakmemo::memo]` needs the receiver `self: &Arc<Self>` (or \
                          `self: Arc<Self>`)";
    const WHY: &str = "the cache holds the owner weakly, as a `Weak` to its `Arc` \
                       allocation, so that caching never keeps it alive";
    let written = match (
        &receiver.reference,
        &receiver.mutability,
        &receiver.colon_token,
    ) {
        (Some(_), Some(_), _) => "&mut self",
        (Some(_), None, _) => "&self",
        (None, Some(_), None) => "mut self",
        (None, None, None) => "self",
        (None, _, Some(_)) => {
            let ty = pretty(&receiver.ty);
            let exclusive = matches!(&*receiver.ty, Type::Reference(reference) if reference.mutability.is_some());
            let mutation = if exclusive {
                "; nor may a cached method mutate its owner, since a hit skips the body"
            } else {
                ""
            };
            return format!(
                "{WANTED}, not `self: {ty}`: {WHY}, and only a shared `Arc` can be held \
                 so{mutation}; take `self: &Arc<Self>` and call the method on an `Arc<Self>`"
            );
        }
    };
    let mutation = if receiver.mutability.is_some() {
        "; nor may a cached method mutate its owner, since a hit skips the body"
    } else {
        ""
    };
    format!(
        "{WANTED}, not `{written}`: {WHY}, and `{written}` has no `Arc` to hold{mutation}; \
         take `self: &Arc<Self>` and call the method on an `Arc<Self>`"
    )
}

/// A type as written, for a message: `&mut Arc<Self>` rather than the tokens'
/// `& mut Arc < Self >`.
fn pretty(ty: &Type) -> String {
    ty.to_token_stream()
        .to_string()
        .replace(" < ", "<")
        .replace("< ", "<")
        .replace(" <", "<")
        .replace(" >", ">")
        .replace("& ", "&")
        .replace(" :: ", "::")
}

/// The errors found so far.
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, tokens: impl ToTokens, message: &str) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    fn push_span(&mut self, span: Span, message: &str) {
        self.add(syn::Error::new(span, message));
    }

    fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }
}

/// `T` of a type written `Arc<T>` (any path ending in `Arc`).
fn arc_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    if last.ident != "Arc" {
        return None;
    }
    arguments.args.iter().find_map(|argument| match argument {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// Whether `ty` is written `&Arc<..>` (shared reference).
fn is_ref_arc(ty: &Type) -> bool {
    matches!(ty, Type::Reference(TypeReference { mutability: None, elem, .. }) if arc_inner(elem).is_some())
}

fn is_static(reference: &TypeReference) -> bool {
    reference
        .lifetime
        .as_ref()
        .is_some_and(|lifetime| lifetime.ident == "static")
}

/// Whether `&elem` is a lookup of its own (`weakmemo::Lookup` and `Part` impls for
/// `&str`, `&[T]`, `&Path`, `&OsStr` and `&CStr`). `Path`, `OsStr` and `CStr` are taken
/// for std's when written bare or under `std::` or `core::`; any other `&U` goes through
/// `weakmemo::Borrowed`, which does the same for every `U: ToOwned`.
fn has_direct_lookup(elem: &Type) -> bool {
    match elem {
        Type::Slice(_) => true,
        Type::Paren(paren) => has_direct_lookup(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            let segments = &path.path.segments;
            let Some(last) = segments.last() else {
                return false;
            };
            let bare = segments.len() == 1 && path.path.leading_colon.is_none();
            let std = segments
                .first()
                .is_some_and(|first| first.ident == "std" || first.ident == "core");
            last.arguments.is_empty()
                && match last.ident.to_string().as_str() {
                    "str" => bare,
                    "Path" | "OsStr" | "CStr" => bare || std,
                    _ => false,
                }
        }
        _ => false,
    }
}

/// Reports `impl Trait`, references and lifetimes other than `'static` anywhere in a
/// key's type (a whole `&U` argument is handled by [`role`]).
fn check_key_type(ty: &Type, errors: &mut Errors) {
    const BORROW: &str = "`#[weakmemo::memo]` cannot key the cache by a type that holds a \
                          borrow: the key outlives the call, so it owns its arguments; a \
                          whole argument `&T` is looked up as it is and stored as its \
                          owned form, but a borrow inside another type cannot be; take an \
                          owned type here (`Vec<String>` for `Vec<&str>`, `String` for \
                          `Cow<'_, str>`) or a `&'static` borrow";
    match ty {
        Type::ImplTrait(_) => errors.push(
            ty,
            "`#[weakmemo::memo]` cannot key the cache by an `impl Trait` argument: the key \
             is stored, so its type must be named; take a generic parameter \
             (`<K: Trait>` ... `key: K`) or a concrete type",
        ),
        Type::Reference(reference) => {
            if is_static(reference) {
                check_key_type(&reference.elem, errors);
            } else {
                errors.push(ty, BORROW);
            }
        }
        Type::Array(array) => check_key_type(&array.elem, errors),
        Type::Slice(slice) => check_key_type(&slice.elem, errors),
        Type::Group(group) => check_key_type(&group.elem, errors),
        Type::Paren(paren) => check_key_type(&paren.elem, errors),
        Type::Tuple(tuple) => {
            for elem in &tuple.elems {
                check_key_type(elem, errors);
            }
        }
        Type::Path(path) => {
            if let Some(qself) = &path.qself {
                check_key_type(&qself.ty, errors);
            }
            for segment in &path.path.segments {
                if let PathArguments::AngleBracketed(arguments) = &segment.arguments {
                    for argument in &arguments.args {
                        match argument {
                            GenericArgument::Type(ty) => check_key_type(ty, errors),
                            GenericArgument::Lifetime(lifetime) if lifetime.ident != "static" => {
                                errors.push(lifetime, BORROW);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Lint and `cfg` attributes, which must also apply to the generated items; `expect`
/// becomes `allow`, since the lint it expects now fires in one of two items.
fn shared_attrs(attrs: &[Attribute], lints: bool) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|attr| {
            let path = attr.path();
            path.is_ident("cfg")
                || (lints
                    && ["allow", "expect", "warn", "deny", "forbid"]
                        .iter()
                        .any(|name| path.is_ident(name)))
        })
        .map(expect_to_allow)
        .collect()
}

/// An attribute as the generated items carry it: outer (an inner `#![allow(..)]` at the
/// top of the body applies to the fn, and the body is no longer where it was), and
/// `expect` as `allow`.
fn expect_to_allow(attr: &Attribute) -> Attribute {
    let mut attr = attr.clone();
    attr.style = syn::AttrStyle::Outer;
    if let syn::Meta::List(list) = &mut attr.meta {
        if list.path.is_ident("expect") {
            list.path = Ident::new("allow", list.path.span()).into();
        }
    }
    attr
}

/// A tuple of several, one itself, `()` for none: how owners, keys and lookups are all
/// shaped.
fn tuple_or_one(items: &[TokenStream2]) -> TokenStream2 {
    match items {
        [one] => one.clone(),
        several => quote!((#(#several),*)),
    }
}

/// The owners, as each side of the call sees them.
struct OwnersCode {
    /// The uncached code's first parameter: the receiver as written, `name: &Arc<U>`,
    /// a tuple pattern, or `(): ()`.
    param: TokenStream2,
    /// Statements rebinding the parameters that the owners' pattern does not bind as
    /// declared (an `Arc` by value).
    rebinds: Vec<TokenStream2>,
    /// What the public fn passes: `self`, `&name`, a tuple of them, or `()`.
    expr: TokenStream2,
    /// Their type in the handle's `Fn` bound, lifetimes elided.
    ty: TokenStream2,
    /// Their type in the handle's async `Method` bound, at `lifetime`.
    ty_at: TokenStream2,
    /// What an entry holds of them: `Weak<U>`, a tuple of `Weak`s, or `()`.
    held: TokenStream2,
    /// How the handle's docs spell them.
    doc: String,
}

/// One owner as the uncached code receives it: the pattern binding it (alone or in the
/// owners tuple), its type there (`&Arc<U>`, lifetimes elided), and, if the pattern
/// does not bind the parameter as declared, the statement that does.
struct Received {
    pat: TokenStream2,
    ty: TokenStream2,
    rebind: Option<TokenStream2>,
}

fn receive(owner: &Owner<'_, '_>, i: usize, self_name: Option<&Ident>) -> Received {
    // The `&Arc` the registry passes, when the parameter wants the `Arc` itself.
    let held = format_ident!("__weakmemo_owner{}", i, span = Span::mixed_site());
    match owner {
        Owner::Receiver(receiver) => {
            let ty = &receiver.receiver.ty;
            if receiver.by_value {
                let self_name = self_name.expect("a receiver by value is renamed");
                let mutability = &receiver.receiver.mutability;
                Received {
                    pat: held.to_token_stream(),
                    ty: quote!(&#ty),
                    rebind: Some(quote! {
                        let #mutability #self_name: #ty = ::core::clone::Clone::clone(#held);
                    }),
                }
            } else {
                Received {
                    pat: match self_name {
                        Some(self_name) => self_name.to_token_stream(),
                        None => receiver.receiver.self_token.to_token_stream(),
                    },
                    ty: elided(ty),
                    rebind: None,
                }
            }
        }
        Owner::Param(param, by_value, _) => {
            let PatType { pat, ty, .. } = param.pat_type;
            if *by_value {
                // One refcount increment, on a miss only, so that the body has the
                // `Arc<U>` it declared.
                Received {
                    pat: held.to_token_stream(),
                    ty: quote!(&#ty),
                    rebind: Some(quote! {
                        let #pat: #ty = ::core::clone::Clone::clone(#held);
                    }),
                }
            } else {
                Received {
                    pat: pat.to_token_stream(),
                    ty: elided(ty),
                    rebind: None,
                }
            }
        }
    }
}

fn owners_code(
    owners: &[Owner<'_, '_>],
    self_name: Option<&Ident>,
    lifetime: &syn::Lifetime,
) -> OwnersCode {
    let received: Vec<Received> = owners
        .iter()
        .enumerate()
        .map(|(i, owner)| receive(owner, i, self_name))
        .collect();
    let param = match (owners, &received[..]) {
        ([], _) => quote!((): ()),
        // The receiver alone, not renamed: the uncached fn is a method as written.
        ([Owner::Receiver(receiver)], _) if self_name.is_none() => {
            receiver.receiver.to_token_stream()
        }
        (_, [one]) => {
            let Received { pat, ty, .. } = one;
            quote!(#pat: #ty)
        }
        (_, several) => {
            let pats = several.iter().map(|owner| &owner.pat);
            let tys = several.iter().map(|owner| &owner.ty);
            quote!((#(#pats),*): (#(#tys),*))
        }
    };
    let passed: Vec<TokenStream2> = owners
        .iter()
        .map(|owner| match owner {
            Owner::Receiver(receiver) => {
                let self_token = &receiver.receiver.self_token;
                if receiver.by_value {
                    quote!(&#self_token)
                } else {
                    self_token.to_token_stream()
                }
            }
            Owner::Param(param, by_value, _) => {
                let name = &param.name;
                if *by_value {
                    quote!(&#name)
                } else {
                    quote!(#name)
                }
            }
        })
        .collect();
    let types: Vec<TokenStream2> = received.iter().map(|owner| owner.ty.clone()).collect();
    let inners: Vec<TokenStream2> = owners
        .iter()
        .map(|owner| match owner {
            Owner::Receiver(_) => quote!(Self),
            Owner::Param(_, _, inner) => inner.to_token_stream(),
        })
        .collect();
    let types_at: Vec<TokenStream2> = inners
        .iter()
        .map(|inner| quote!(&#lifetime ::std::sync::Arc<#inner>))
        .collect();
    let held: Vec<TokenStream2> = inners
        .iter()
        .map(|inner| quote!(::std::sync::Weak<#inner>))
        .collect();
    let doc = match owners.len() {
        0 => "()".to_string(),
        1 => "&owner".to_string(),
        n => {
            let each: Vec<String> = (1..=n).map(|i| format!("&owner{i}")).collect();
            format!("({})", each.join(", "))
        }
    };
    OwnersCode {
        param,
        rebinds: received
            .into_iter()
            .filter_map(|owner| owner.rebind)
            .collect(),
        expr: tuple_or_one(&passed),
        ty: tuple_or_one(&types),
        ty_at: tuple_or_one(&types_at),
        held: tuple_or_one(&held),
        doc,
    }
}

/// The key, as each side of the call sees it.
struct KeyCode {
    /// The stored key's type: the owned form of each part.
    ty: TokenStream2,
    /// What the public fn passes: the key itself, or (with a borrowed part) a lookup of
    /// it, so that a hit allocates nothing.
    lookup: TokenStream2,
    /// Statements rebinding each parameter from the stored key, `args: &KEY`: a clone,
    /// or a borrow of its part.
    rebinds: Vec<TokenStream2>,
}

fn key_code(keys: &[(&Param<'_>, &Form<'_>)], args: &Ident) -> KeyCode {
    let types: Vec<TokenStream2> = keys
        .iter()
        .map(|(param, form)| match form {
            Form::Owned => param.pat_type.ty.to_token_stream(),
            Form::Borrowed { elem, .. } => quote!(<#elem as ::std::borrow::ToOwned>::Owned),
        })
        .collect();
    let parts: Vec<TokenStream2> = keys
        .iter()
        .map(|(param, form)| {
            let name = &param.name;
            match form {
                Form::Owned | Form::Borrowed { direct: true, .. } => name.to_token_stream(),
                Form::Borrowed { direct: false, .. } => {
                    quote_spanned!(param.pat_type.ty.span()=> ::weakmemo::Borrowed(#name))
                }
            }
        })
        .collect();
    let borrowed = keys
        .iter()
        .any(|(_, form)| matches!(form, Form::Borrowed { .. }));
    let lookup = match &parts[..] {
        several @ [_, _, ..] if borrowed => quote!(::weakmemo::Parts((#(#several),*))),
        parts => tuple_or_one(parts),
    };
    let rebinds = keys
        .iter()
        .enumerate()
        .map(|(i, (param, form))| {
            let pat = &param.pat_type.pat;
            let index = syn::Index::from(i);
            let part = if keys.len() == 1 {
                args.to_token_stream()
            } else {
                quote!(&#args.#index)
            };
            match form {
                Form::Owned => {
                    let ty = &param.pat_type.ty;
                    quote!(let #pat: #ty = ::core::clone::Clone::clone(#part);)
                }
                Form::Borrowed { elem, .. } => {
                    quote!(let #pat: &#elem = ::core::borrow::Borrow::<#elem>::borrow(#part);)
                }
            }
        })
        .collect();
    KeyCode {
        ty: tuple_or_one(&types),
        lookup,
        rebinds,
    }
}

/// The bounds the registry needs, checked at the span of each owner, argument and of
/// the return type, so that a missing `Hash` points at the argument rather than at the
/// attribute. (`Registry::call` reports them too, at the attribute.)
fn bounds(
    owners: &[Owner<'_, '_>],
    keys: &[(&Param<'_>, &Form<'_>)],
    options: &Options,
    output: &ReturnType,
) -> Vec<TokenStream2> {
    let owners = owners.iter().map(|owner| match owner {
        Owner::Receiver(receiver) => quote_spanned! {receiver.receiver.span()=>
            let _ = ::weakmemo::__private::assert_owner::<Self>;
        },
        Owner::Param(param, _, inner) => quote_spanned! {param.pat_type.ty.span()=>
            let _ = ::weakmemo::__private::assert_owner::<#inner>;
        },
    });
    let keys = keys.iter().map(|(param, form)| {
        let ty = &param.pat_type.ty;
        match form {
            Form::Owned => {
                quote_spanned!(ty.span()=> let _ = ::weakmemo::__private::assert_key::<#ty>;)
            }
            Form::Borrowed { elem, .. } => quote_spanned! {ty.span()=>
                let _ = ::weakmemo::__private::assert_borrowed::<#elem>;
            },
        }
    });
    let value = match output {
        ReturnType::Type(_, ty) if !options.result => {
            Some(quote_spanned!(ty.span()=> let _ = ::weakmemo::__private::assert_value::<#ty>;))
        }
        _ => None,
    };
    owners.chain(keys).chain(value).collect()
}

/// The path of a generated fn (`NAME_uncached`, `NAME_memo`) with the generics named:
/// `Self::` in an `impl`.
fn named_path(sig: &Signature, uncached: &Ident, in_impl: bool) -> TokenStream2 {
    let named: Vec<TokenStream2> = sig
        .generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(ty) => Some(ty.ident.to_token_stream()),
            GenericParam::Const(constant) => Some(constant.ident.to_token_stream()),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    let turbofish = if named.is_empty() {
        quote!()
    } else {
        quote!(::<#(#named),*>)
    };
    if in_impl {
        quote!(Self::#uncached #turbofish)
    } else {
        quote!(#uncached #turbofish)
    }
}

/// The settings the method's table starts with (every instantiation's, for a generic
/// method): `weakmemo::__private::Defaults`, made only when the table is. Each has the
/// span of its option, so that a value of the wrong type is reported there.
fn defaults(options: &Options) -> TokenStream2 {
    let capacity = match &options.maxsize {
        Some(maxsize) if is_none(maxsize) => quote_spanned! {maxsize.span()=>
            ::core::option::Option::Some(::core::option::Option::None)
        },
        Some(maxsize) => quote_spanned! {maxsize.span()=>
            ::core::option::Option::Some(::core::option::Option::Some(#maxsize))
        },
        None => quote!(::core::option::Option::None),
    };
    let ttl = match &options.ttl {
        Some(ttl) => {
            let ttl_var = Ident::new("__weakmemo_ttl", Span::mixed_site());
            quote_spanned! {ttl.span()=>
                {
                    let #ttl_var: ::core::time::Duration = #ttl;
                    ::core::option::Option::Some(#ttl_var)
                }
            }
        }
        None => quote!(::core::option::Option::None),
    };
    quote! {
        || ::weakmemo::__private::Defaults { capacity: #capacity, ttl: #ttl }
    }
}

/// Whether a type names `Self` or an `impl` type, which an item inside the method
/// (the `static` that holds a resolved table) cannot name.
fn names_self(tokens: &TokenStream2) -> bool {
    tokens.clone().into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "Self" || ident == "impl",
        TokenTree::Group(group) => names_self(&group.stream()),
        _ => false,
    })
}

/// The public fn's signature: the original with plain parameter names, and no `mut` on
/// a receiver by value, which it only lends.
fn public_sig(sig: &Signature, shape: &Shape<'_>) -> Signature {
    let mut public = sig.clone();
    public.inputs = Punctuated::<FnArg, Token![,]>::new();
    if let Some(receiver) = &shape.receiver {
        let mut receiver = receiver.receiver.clone();
        receiver.mutability = None;
        public.inputs.push(FnArg::Receiver(receiver));
    }
    for param in &shape.params {
        let name = &param.name;
        let ty = &param.pat_type.ty;
        public.inputs.push(syn::parse_quote!(#name: #ty));
    }
    public
}

/// The receiver's new name where the uncached code cannot bind `self`: in the owners
/// tuple, for a receiver by value (the body wants the `Arc`, the registry passes a
/// `&Arc`), and in a closure. It has the span of the receiver's `self`, so that the
/// body's renamed tokens resolve to it.
fn self_name(shape: &Shape<'_>, owners: usize, local: bool) -> Option<Ident> {
    let receiver = shape.receiver.as_ref()?;
    (local || owners > 1 || receiver.by_value)
        .then(|| Ident::new("__weakmemo_self", receiver.receiver.self_token.span))
}

fn generate(options: &Options, function: &ItemFn, shape: &Shape<'_>) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let name = &sig.ident;
    let local = options.in_trait;
    let (_, _, where_clause) = sig.generics.split_for_impl();
    let generics = &sig.generics;
    let output = match &sig.output {
        ReturnType::Type(_, ty) => ty.to_token_stream(),
        ReturnType::Default => unreachable!("checked"),
    };

    // Generated locals live in the macro's own hygiene, invisible to the body.
    let args = Ident::new("__weakmemo_args", Span::mixed_site());
    let registry_var = Ident::new("__weakmemo_registry", Span::mixed_site());
    let method_var = Ident::new("__weakmemo_method", Span::mixed_site());
    let lifetime = syn::Lifetime::new("'__weakmemo", Span::mixed_site());
    let registry = match &options.registry {
        Some(expr) => expr.to_token_stream(),
        None => quote!(::weakmemo::global()),
    };

    let owners = shape.owners();
    let keys = shape.keys();
    let self_name = self_name(shape, owners.len(), local);
    let owners_code = owners_code(&owners, self_name.as_ref(), &lifetime);
    let key = key_code(&keys, &args);
    let bounds = bounds(&owners, &keys, options, &sig.output);

    // The uncached code: the bounds, the rebinding of each parameter, the body. Its
    // statements are spliced rather than nested as a block, so that a one-expression
    // body (`{ self.0 }`) is not a block in a block (`unused_braces`).
    let stmts = &block.stmts;
    let body = quote!(#(#stmts)*);
    let body = match &self_name {
        Some(self_name) => rename_self(body, self_name),
        None => body,
    };
    let OwnersCode {
        param: owner_param,
        rebinds: owner_rebinds,
        ..
    } = &owners_code;
    let key_type = &key.ty;
    let key_rebinds = &key.rebinds;
    let uncached_body = quote! {
        #(#bounds)*
        #(#owner_rebinds)*
        #(#key_rebinds)*
        #body
    };
    let asyncness = &sig.asyncness;
    let uncached = format_ident!("{}_uncached", name);
    let (method, uncached_item, closure) = if local {
        // A closure that captures nothing: a method identity (its own type) that needs
        // no item beside the method, and sees `Self` and the generics.
        let closure = quote! {
            let #method_var = #asyncness |#owner_param, #args: &#key_type| -> #output {
                #uncached_body
            };
        };
        (method_var.to_token_stream(), None, Some(closure))
    } else {
        let inner_attrs = shared_attrs(attrs, true);
        let item = quote! {
            #(#inner_attrs)*
            #asyncness fn #uncached #generics (#owner_param, #args: &#key_type) -> #output
            #where_clause
            {
                #uncached_body
            }
        };
        let path = named_path(sig, &uncached, shape.in_impl);
        (path, Some(item), None)
    };

    let (call, awaited) = match (asyncness.is_some(), options.result) {
        (false, false) => (quote!(call), quote!()),
        (false, true) => (quote!(try_call), quote!()),
        (true, false) => (quote!(call_async), quote!(.await)),
        (true, true) => (quote!(try_call_async), quote!(.await)),
    };
    // The handle: its table kept in a `static` where one can name its types.
    let held = &owners_code.held;
    let stored = if options.result {
        quote!(<#output as ::weakmemo::__private::Fallible>::Ok)
    } else {
        output.clone()
    };
    let generic = generics
        .params
        .iter()
        .any(|param| !matches!(param, GenericParam::Lifetime(_)));
    let defaults = defaults(options);
    // A `static` is one for every instantiation, and cannot name `Self`: a generic
    // method, or one whose stored types name `Self`, looks its table up each call.
    let types = quote!(#held #key_type #stored);
    let handle = if generic || names_self(&types) {
        quote!(::weakmemo::__private::memo(#registry_var, #method, #defaults))
    } else {
        quote! {{
            static __WEAKMEMO_TABLE: ::weakmemo::__private::Resolved<#held, #key_type, #stored> =
                ::weakmemo::__private::Resolved::new();
            __WEAKMEMO_TABLE.memo(#registry_var, #method, #defaults)
        }}
    };
    let resolve = quote! {
        let #registry_var: &'static ::weakmemo::Registry = #registry;
        #closure
        #handle
    };
    let public_sig = public_sig(sig, shape);
    let outer_attrs: Vec<Attribute> = attrs.iter().map(expect_to_allow).collect();
    let owners_expr = &owners_code.expr;
    let lookup = &key.lookup;
    // The method resolves its handle itself rather than through `NAME_memo()`, whose
    // opaque method type would hide whether an `async fn`'s future is `Send`.
    // A thin wrapper (the body is `NAME_uncached`): inlined, the hit is the handle's
    // own, unless the function says otherwise.
    let inline =
        (!attrs.iter().any(|attr| attr.path().is_ident("inline"))).then(|| quote!(#[inline]));
    let public = quote! {
        #(#outer_attrs)*
        #inline
        #vis #public_sig {
            { #resolve }.#call(#owners_expr, #lookup) #awaited
        }
    };
    if local {
        return public;
    }

    // What the handle's opaque method type promises: the fn item's `Fn` bound, or,
    // for an `async fn`, its `AsyncFn` bound, which the handle's calls take.
    let method_bound = if asyncness.is_some() {
        let owners_type = &owners_code.ty_at;
        quote! {
            for<#lifetime> ::core::ops::AsyncFn(#owners_type, &#key_type) -> #output
                + ::core::marker::Copy + 'static
        }
    } else {
        let owners_type = &owners_code.ty;
        quote! {
            ::core::ops::Fn(#owners_type, &#key_type) -> #output
                + ::core::marker::Copy + 'static
        }
    };
    let memo = format_ident!("{}_memo", name);
    let memo_attrs = shared_attrs(attrs, false);
    let memo_doc = format!(
        "The cache of `{name}`, made by `#[weakmemo::memo]`: its entries \
         (`get({owners}, &key)`, `invalidate({owners}, &key)`, `invalidate_owner(&owner)`, \
         `clear()`), its settings (`set_capacity`, `set_ttl`, `set_weigher`) and its \
         counters (`cache_info()`, `stats()`).",
        owners = owners_code.doc
    );
    quote! {
        #uncached_item

        #public

        #(#memo_attrs)*
        #[doc = #memo_doc]
        #[allow(dead_code)]
        #vis fn #memo #generics () -> ::weakmemo::Memo<
            'static,
            impl #method_bound,
            #held,
            #key_type,
            #stored,
        > #where_clause {
            #resolve
        }
    }
}

/// Whether `maxsize = None` was written: no bound.
fn is_none(expr: &Expr) -> bool {
    matches!(expr, Expr::Path(path) if path.qself.is_none() && path.path.is_ident("None"))
}

/// The owner's type with the lifetime of its reference elided, so that the handle's
/// `Fn` bound is higher-ranked, as the fn item is, even for `self: &'a Arc<Self>`.
fn elided(ty: &Type) -> TokenStream2 {
    match ty {
        Type::Reference(reference) => {
            let mut reference = reference.clone();
            reference.lifetime = None;
            reference.to_token_stream()
        }
        _ => ty.to_token_stream(),
    }
}

/// The name bound by a plain `name` or `mut name` pattern.
fn simple_name(pat: &Pat) -> Option<Ident> {
    match pat {
        Pat::Ident(PatIdent {
            by_ref: None,
            subpat: None,
            ident,
            ..
        }) => Some(ident.clone()),
        _ => None,
    }
}

/// Whether the function names `Self`, outside the items nested in it: then it is an
/// associated fn, and its generated siblings are reached as `Self::..`.
fn mentions_self_type(tokens: TokenStream2) -> bool {
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Ident(ident) if ident == "Self" => return true,
            TokenTree::Ident(ident) if starts_item(&ident, tokens.peek()) => {
                skip_item(&mut tokens, &mut Vec::new());
            }
            TokenTree::Group(group) if mentions_self_type(group.stream()) => return true,
            _ => {}
        }
    }
    false
}

/// Whether `ident` (followed by `next`) begins an item nested in a body: a `self` or
/// `Self` inside it is its own, not the method's.
fn starts_item(ident: &Ident, next: Option<&TokenTree>) -> bool {
    match ident.to_string().as_str() {
        // `fn name`, not the pointer type `fn(..)`.
        "fn" => matches!(next, Some(TokenTree::Ident(_))),
        "impl" | "trait" | "mod" | "use" => true,
        "macro_rules" => matches!(next, Some(TokenTree::Punct(punct)) if punct.as_char() == '!'),
        _ => false,
    }
}

/// Moves the rest of a nested item to `out` as it is: up to its `{ .. }` body or its
/// `;`.
fn skip_item(tokens: &mut impl Iterator<Item = TokenTree>, out: &mut Vec<TokenTree>) {
    for token in tokens {
        let end = match &token {
            TokenTree::Group(group) => group.delimiter() == Delimiter::Brace,
            TokenTree::Punct(punct) => punct.as_char() == ';',
            _ => false,
        };
        out.push(token);
        if end {
            return;
        }
    }
}

/// Std's format macros, with the position of the format string among their
/// arguments: in it, `{self}` names the receiver.
const FORMAT_MACROS: &[(&str, usize)] = &[
    ("format", 0),
    ("format_args", 0),
    ("print", 0),
    ("println", 0),
    ("eprint", 0),
    ("eprintln", 0),
    ("panic", 0),
    ("unreachable", 0),
    ("todo", 0),
    ("unimplemented", 0),
    ("write", 1),
    ("writeln", 1),
    ("assert", 1),
    ("debug_assert", 1),
    ("assert_eq", 2),
    ("assert_ne", 2),
    ("debug_assert_eq", 2),
    ("debug_assert_ne", 2),
];

/// The body with the receiver `self` renamed to `to`, for code that receives the
/// receiver under another name (in the owners tuple, by value, or in a closure, none of
/// which can bind `self`). Left alone: paths (`self::item`), `use` declarations and
/// nested items (`fn`, `impl`, `trait`, `mod`, `macro_rules!`), whose `self` is their
/// own. In the format string of one of std's format macros (`format!`, `println!`,
/// `write!`, `panic!`, `assert!`, ...), `{self}` and `{self:..}` are renamed too.
fn rename_self(tokens: TokenStream2, to: &Ident) -> TokenStream2 {
    let mut out: Vec<TokenTree> = Vec::new();
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Ident(ident) if ident == "self" => {
                let path = matches!(tokens.peek(), Some(TokenTree::Punct(punct)) if punct.as_char() == ':');
                if path {
                    out.push(ident.into());
                } else {
                    out.push(Ident::new(&to.to_string(), ident.span()).into());
                }
            }
            TokenTree::Ident(ident) if starts_item(&ident, tokens.peek()) => {
                out.push(ident.into());
                skip_item(&mut tokens, &mut out);
            }
            TokenTree::Group(group) => {
                let mut inner: Vec<TokenTree> =
                    rename_self(group.stream(), to).into_iter().collect();
                // `name!(..)`: the input of a macro, perhaps a format macro.
                let format_at = match &out[..] {
                    [.., TokenTree::Ident(name), TokenTree::Punct(bang)]
                        if bang.as_char() == '!' =>
                    {
                        FORMAT_MACROS
                            .iter()
                            .find(|(known, _)| name == known)
                            .map(|(_, at)| *at)
                    }
                    _ => None,
                };
                if let Some(at) = format_at {
                    rename_format_string(&mut inner, at, to);
                }
                let mut renamed = Group::new(group.delimiter(), inner.into_iter().collect());
                renamed.set_span(group.span());
                out.push(renamed.into());
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

/// Renames `{self}` in a format macro's input, if its argument number `at` is a string
/// literal alone.
fn rename_format_string(input: &mut [TokenTree], at: usize, to: &Ident) {
    let mut args =
        input.split_mut(|token| matches!(token, TokenTree::Punct(punct) if punct.as_char() == ','));
    if let Some([TokenTree::Literal(literal)]) = args.nth(at) {
        *literal = rename_in_format(literal, &to.to_string());
    }
}

/// A string literal with `{self}` and `{self:..}` renamed to `{to}` (`{{self}}` is
/// text, and stays); any other literal as it is.
fn rename_in_format(literal: &Literal, to: &str) -> Literal {
    let text = literal.to_string();
    let is_string = text.starts_with('"') || text.starts_with("r\"") || text.starts_with("r#");
    if !is_string || !text.contains("{self") {
        return literal.clone();
    }
    let mut renamed = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find('{') {
        renamed.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with("{{") {
            renamed.push_str("{{");
            rest = &rest[2..];
        } else if rest.starts_with("{self}") || rest.starts_with("{self:") {
            renamed.push('{');
            renamed.push_str(to);
            rest = &rest["{self".len()..];
        } else {
            renamed.push('{');
            rest = &rest[1..];
        }
    }
    renamed.push_str(rest);
    match renamed.parse::<Literal>() {
        Ok(mut new) => {
            new.set_span(literal.span());
            new
        }
        Err(_) => literal.clone(),
    }
}
