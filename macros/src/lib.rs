//! The `#[weakmemo::memo]` attribute. Use it through the `weakmemo` crate, which
//! re-exports it behind its default `macros` feature; the generated code names
//! `::weakmemo`, so this crate alone is of no use.
//!
//! The attribute checks the method's shape, reports each misuse at its own span, and
//! turns one fn into three items (see the `weakmemo::attribute` design note):
//!
//! - `NAME_uncached`: the original body, in a private fn taking the owner and `&KEY`
//!   (an `async fn` if the method is one);
//! - `NAME`: the original signature, docs and attributes, whose body is one
//!   `Registry::call` (or `try_call`; for an `async fn`, an awaited `call_async` or
//!   `try_call_async`) passing `NAME_uncached`;
//! - `NAME_memo()`: the method's `weakmemo::Memo` handle.
#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, FnArg, GenericArgument, GenericParam, Ident, ItemFn, Pat, PatIdent,
    PathArguments, ReturnType, Signature, Token, Type, TypeReference,
};

/// Caches a method's results in a weakmemo registry, keyed by the owner's allocation
/// (held weakly), the method and the other arguments.
///
/// ```text
/// impl SlowAdder {
///     #[weakmemo::memo]
///     pub fn calculate(self: &Arc<Self>, a: i64, b: i64) -> i64 { ... }
/// }
/// // SlowAdder::calculate_memo().cache_info(), .cache_clear(), .invalidate(&adder, &(1, 2))
/// ```
///
/// It applies to a method whose receiver is `self: &Arc<Self>`, in an inherent `impl`,
/// and to a free function whose first parameter is `&Arc<T>`, plain or `async fn`. The
/// other parameters form the key: none is `()`, one is itself, several are a tuple in
/// order. They must be `Clone + Hash + Eq + Send + Sync + 'static` and the return type
/// (an `async fn`'s output) `Clone + Send + Sync + 'static`.
///
/// ```text
/// impl Client {
///     #[weakmemo::memo]
///     pub async fn fetch(self: &Arc<Self>, id: u64) -> String { ... }
/// }
/// // client.fetch(7).await: `Registry::call_async`, single flight across tasks
/// ```
///
/// An `async fn` stays one: `NAME` awaits `Registry::call_async` (`try_call_async` in
/// `result` mode) on the `async fn NAME_uncached`, and its future is `Send` when the
/// body's is (but see the design note for a rustc limit on spawning a task that awaits
/// it when the owner or key type holds a lifetime). Concurrent tasks missing one key
/// await one computation; a cancelled computation leaves nothing cached and a waiting
/// task runs the body afresh.
///
/// Beside the method `NAME`, the attribute writes two items of the same generics:
///
/// - `NAME_uncached`, a private fn (`async` if `NAME` is) that holds the original body
///   (so a breakpoint, a backtrace, an early `return` and `?` behave as written) and
///   takes the owner and `&KEY`; it is the method identity the registry sees;
/// - `NAME_memo()`, with the method's visibility, returning its `weakmemo::Memo`
///   handle: `cache_info()`, `ttl()`, `cache_clear()`, `invalidate_owner(&owner)`,
///   `invalidate(&owner, &key)`.
///
/// # Options
///
/// - `registry = EXPR`: the registry, an expression of type `&'static Registry`
///   evaluated on each call (`registry = &PARSERS` for a `static`); default
///   `weakmemo::global()`.
/// - `result`: the method returns a `Result`; `Ok` values are cached and errors are
///   returned without being cached (`Registry::try_call`, or `try_call_async`).
///
/// - `maxsize = N`: bounds the method to `N` entries (`Registry::set_method_capacity`,
///   set on the registry of the first call); `cache_info().maxsize` reports it from
///   then on. Not for generic methods, whose instantiations are methods of their own.
/// - `ttl = DURATION`: gives the method a time to live, an expression of type
///   `std::time::Duration` (`ttl = Duration::from_secs(60)`): its entries are never
///   returned once older than that, and the next call computes afresh
///   (`Registry::set_method_ttl`, set on the registry of the first call, with
///   `maxsize`'s flag); `NAME_memo().ttl()` reports it from then on. Not for generic
///   methods either.
///
/// # Panics
///
/// The generated method panics where `Registry::call` does: when the body panics
/// (nothing is cached, the registry stays usable), when a call re-enters the key it is
/// computing ("recursive call for the same key"), and when waiting for another thread
/// would close a cycle ("deadlock avoided"). An `async fn` panics where
/// `Registry::call_async` does: the same, with tasks for threads. In `result` mode an
/// `Err` is returned, not cached; see `Registry::try_call`.
///
/// # Errors at compile time
///
/// Each at the span of the offending token: a `&self`, `&mut self` or other receiver
/// than `self: &Arc<Self>` (the cache holds the owner weakly, by its allocation, which
/// only an `Arc` has); a free function without a leading `&Arc<T>`; `const fn`,
/// `unsafe fn`, `extern fn`; an `impl Trait` argument; a reference argument
/// other than `&'static` (the key owns its arguments); no return type; an unknown
/// option; `maxsize` or `ttl` on a generic method. A `ttl` that is not a `Duration`
/// is rustc's type error, at the expression. An argument that is not
/// `Clone + Hash + Eq + Send + Sync + 'static`, or a return type that is not
/// `Clone + Send + Sync + 'static`, is reported at its own span (and once more at the
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

/// The attribute's arguments.
struct Options {
    registry: Option<Expr>,
    result: bool,
    /// The method's bound, an expression of type `usize`.
    maxsize: Option<Expr>,
    /// The method's time to live, an expression of type `std::time::Duration`.
    ttl: Option<Expr>,
}

fn parse_options(attr: TokenStream2) -> syn::Result<Options> {
    let mut options = Options {
        registry: None,
        result: false,
        maxsize: None,
        ttl: None,
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
        } else if BOUND_ALIASES.iter().any(|name| path.is_ident(name)) {
            Err(meta
                .error("the bound on entries is spelled `maxsize = N`, as in Python's `lru_cache`"))
        } else if TTL_ALIASES.iter().any(|name| path.is_ident(name)) {
            Err(meta.error(
                "the time to live is spelled `ttl = DURATION`, a `std::time::Duration` \
                 (`ttl = Duration::from_secs(60)`)",
            ))
        } else {
            Err(meta.error(
                "unknown option of `#[weakmemo::memo]`: the options are \
                 `registry = EXPR` (a `&'static weakmemo::Registry`), `maxsize = N` (a \
                 bound on entries), `ttl = DURATION` (a time to live) and `result`",
            ))
        }
    });
    parser.parse2(attr)?;
    Ok(options)
}

/// Who owns the cached results: the receiver, or a free function's first parameter.
enum Owner<'a> {
    Receiver(&'a syn::Receiver),
    Param(&'a syn::PatType),
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let options = parse_options(attr);
    let function: ItemFn = syn::parse2(item)?;
    let options = options?;
    let (owner, keys) = check(&function.sig)?;
    let generic = function
        .sig
        .generics
        .params
        .iter()
        .any(|param| !matches!(param, GenericParam::Lifetime(_)));
    if generic {
        // The settings are applied once, by a flag that a `static` holds, and a
        // `static` cannot be generic: one instantiation would take them for all.
        let mut errors = Errors(None);
        if let Some(maxsize) = &options.maxsize {
            errors.push(
                maxsize,
                "`maxsize` cannot bound a generic method: each instantiation is a method \
                 of its own, with a table of its own; bound each with \
                 `Registry::set_method_capacity`",
            );
        }
        if let Some(ttl) = &options.ttl {
            errors.push(
                ttl,
                "`ttl` cannot expire a generic method: each instantiation is a method of \
                 its own, with a table of its own; give each its time to live with \
                 `Registry::set_method_ttl`",
            );
        }
        if let Some(error) = errors.0 {
            return Err(error);
        }
    }
    Ok(generate(&options, &function, &owner, &keys))
}

/// Every misuse of the signature, combined into one error.
fn check(sig: &Signature) -> syn::Result<(Owner<'_>, Vec<&syn::PatType>)> {
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

    let mut inputs = sig.inputs.iter();
    let owner = match inputs.next() {
        Some(FnArg::Receiver(receiver)) => {
            if !is_ref_arc(&receiver.ty) || receiver.colon_token.is_none() {
                errors.push(receiver, &receiver_error(receiver));
            }
            Some(Owner::Receiver(receiver))
        }
        Some(FnArg::Typed(param)) => {
            if !is_ref_arc(&param.ty) {
                errors.push(
                    &param.ty,
                    "`#[weakmemo::memo]` on a function needs `&Arc<T>` as the first \
                     parameter: the owner, which the cache holds weakly, by its `Arc` \
                     allocation; the other parameters form the key",
                );
            }
            Some(Owner::Param(param))
        }
        None => {
            errors.push_span(
                sig.paren_token.span.join(),
                "`#[weakmemo::memo]` needs an owner: a method with the receiver \
                 `self: &Arc<Self>`, or a function whose first parameter is `&Arc<T>`",
            );
            None
        }
    };

    let mut keys = Vec::new();
    for input in inputs {
        // A receiver after the first parameter is already an error of the parser.
        if let FnArg::Typed(param) = input {
            check_key_type(&param.ty, &mut errors);
            keys.push(param);
        }
    }
    match (errors.0, owner) {
        (Some(error), _) => Err(error),
        (None, Some(owner)) => Ok((owner, keys)),
        (None, None) => unreachable!("a missing owner is an error"),
    }
}

/// Why a receiver other than `self: &Arc<Self>` cannot be cached, naming what was
/// written.
fn receiver_error(receiver: &syn::Receiver) -> String {
    const WANTED: &str = "`#[weakmemo::memo]` needs the receiver `self: &Arc<Self>`";
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
            return format!(
                "{WANTED}, a shared reference to an `Arc`: {WHY}; call the method on an \
                 `Arc<Self>`"
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

/// Whether `ty` is written `&Arc<..>` (any path ending in `Arc`, shared reference).
fn is_ref_arc(ty: &Type) -> bool {
    let Type::Reference(TypeReference {
        mutability: None,
        elem,
        ..
    }) = ty
    else {
        return false;
    };
    let Type::Path(path) = &**elem else {
        return false;
    };
    path.qself.is_none()
        && path.path.segments.last().is_some_and(|last| {
            last.ident == "Arc" && matches!(last.arguments, PathArguments::AngleBracketed(_))
        })
}

/// Reports `impl Trait` and borrowed references anywhere in a key argument's type.
fn check_key_type(ty: &Type, errors: &mut Errors) {
    match ty {
        Type::ImplTrait(_) => errors.push(
            ty,
            "`#[weakmemo::memo]` cannot key the cache by an `impl Trait` argument: the key \
             is stored, so its type must be named; take a generic parameter \
             (`<K: Trait>` ... `key: K`) or a concrete type",
        ),
        Type::Reference(reference) => {
            let is_static = reference
                .lifetime
                .as_ref()
                .is_some_and(|lifetime| lifetime.ident == "static");
            if is_static {
                check_key_type(&reference.elem, errors);
            } else {
                errors.push(
                    ty,
                    "`#[weakmemo::memo]` cannot key the cache by a reference: the key \
                     outlives the call, so it must own its arguments; take an owned type \
                     (`String` for `&str`, `Vec<T>` for `&[T]`, `T` or `Arc<T>` for `&T`) \
                     or a `&'static` reference",
                );
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
            for segment in &path.path.segments {
                if let PathArguments::AngleBracketed(arguments) = &segment.arguments {
                    for argument in &arguments.args {
                        if let GenericArgument::Type(ty) = argument {
                            check_key_type(ty, errors);
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

fn expect_to_allow(attr: &Attribute) -> Attribute {
    let mut attr = attr.clone();
    if let syn::Meta::List(list) = &mut attr.meta {
        if list.path.is_ident("expect") {
            list.path = Ident::new("allow", list.path.span()).into();
        }
    }
    attr
}

fn generate(
    options: &Options,
    function: &ItemFn,
    owner: &Owner<'_>,
    keys: &[&syn::PatType],
) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let name = &sig.ident;
    let uncached = format_ident!("{}_uncached", name);
    let memo = format_ident!("{}_memo", name);
    let (_, _, where_clause) = sig.generics.split_for_impl();
    let generics = &sig.generics;
    let output = match &sig.output {
        ReturnType::Type(_, ty) => ty.to_token_stream(),
        ReturnType::Default => unreachable!("checked"),
    };

    // Generated locals live in the macro's own hygiene, invisible to the body.
    let args = Ident::new("__weakmemo_args", Span::mixed_site());
    let registry_var = Ident::new("__weakmemo_registry", Span::mixed_site());
    let registry = match &options.registry {
        Some(expr) => expr.to_token_stream(),
        None => quote!(::weakmemo::global()),
    };

    // The key: its type, the expression building it, the pattern unpacking it.
    let key_types: Vec<&Type> = keys.iter().map(|param| &*param.ty).collect();
    let key_pats: Vec<&Pat> = keys.iter().map(|param| &*param.pat).collect();
    let key_names: Vec<Ident> = keys
        .iter()
        .enumerate()
        .map(|(i, param)| {
            simple_name(&param.pat)
                .unwrap_or_else(|| format_ident!("arg{}", i + 1, span = Span::mixed_site()))
        })
        .collect();
    // The bounds the registry needs, checked at the span of each argument and of the
    // return type, so that a missing `Hash` points at the argument rather than at the
    // attribute. (`Registry::call` reports them too, at the attribute.)
    let mut bounds: Vec<TokenStream2> = key_types
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> let _ = ::weakmemo::__private::assert_key::<#ty>;))
        .collect();
    if !options.result {
        if let ReturnType::Type(_, ty) = &sig.output {
            bounds.push(
                quote_spanned!(ty.span()=> let _ = ::weakmemo::__private::assert_value::<#ty>;),
            );
        }
    }
    let (key_type, key_expr, key_unpack) = match keys {
        [] => (quote!(()), quote!(()), quote!()),
        [_] => (
            quote!(#(#key_types)*),
            quote!(#(#key_names)*),
            quote!(let #(#key_pats)* = ::core::clone::Clone::clone(#args);),
        ),
        _ => (
            quote!((#(#key_types),*)),
            quote!((#(#key_names),*)),
            quote!(let (#(#key_pats),*) = ::core::clone::Clone::clone(#args);),
        ),
    };

    // The method as the registry sees it: the uncached fn item, with the generics named.
    let turbofish: Vec<TokenStream2> = sig
        .generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(ty) => Some(ty.ident.to_token_stream()),
            GenericParam::Const(constant) => Some(constant.ident.to_token_stream()),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    let turbofish = if turbofish.is_empty() {
        quote!()
    } else {
        quote!(::<#(#turbofish),*>)
    };

    // The owner, as a parameter of the uncached fn and of the public one, and its type.
    let (method_path, owner_param, owner_outer, owner_expr, owner_type) = match owner {
        Owner::Receiver(receiver) => {
            let self_token = &receiver.self_token;
            (
                quote!(Self::#uncached #turbofish),
                receiver.to_token_stream(),
                receiver.to_token_stream(),
                self_token.to_token_stream(),
                elided(&receiver.ty),
            )
        }
        Owner::Param(param) => {
            let ty = &param.ty;
            let owner_name =
                simple_name(&param.pat).unwrap_or_else(|| Ident::new("owner", Span::mixed_site()));
            (
                quote!(#uncached #turbofish),
                param.to_token_stream(),
                quote!(#owner_name: #ty),
                owner_name.to_token_stream(),
                elided(ty),
            )
        }
    };

    // The bound and the time to live, set on the registry of the first call (the method
    // is not generic: checked), then one relaxed load per call. Each setter has the
    // span of its option, so that a value of the wrong type is reported there.
    let bound = options.maxsize.as_ref().map(|maxsize| {
        quote_spanned! {maxsize.span()=>
            #registry_var.set_method_capacity(
                #method_path,
                ::core::option::Option::Some(#maxsize),
            );
        }
    });
    let ttl = options.ttl.as_ref().map(|ttl| {
        let ttl_var = Ident::new("__weakmemo_ttl", Span::mixed_site());
        quote_spanned! {ttl.span()=>
            let #ttl_var: ::core::time::Duration = #ttl;
            #registry_var.set_method_ttl(#method_path, ::core::option::Option::Some(#ttl_var));
        }
    });
    let settings_once = (bound.is_some() || ttl.is_some()).then(|| {
        // In a block of its own, so that the flag hides no item of the user's.
        quote! {
            {
                static __WEAKMEMO_SET: ::core::sync::atomic::AtomicBool =
                    ::core::sync::atomic::AtomicBool::new(false);
                if !__WEAKMEMO_SET.load(::core::sync::atomic::Ordering::Relaxed) {
                    #bound
                    #ttl
                    __WEAKMEMO_SET.store(true, ::core::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });

    let asyncness = &sig.asyncness;
    let (call, awaited) = match (asyncness.is_some(), options.result) {
        (false, false) => (quote!(call), quote!()),
        (false, true) => (quote!(try_call), quote!()),
        (true, false) => (quote!(call_async), quote!(.await)),
        (true, true) => (quote!(try_call_async), quote!(.await)),
    };
    // What the handle's opaque type promises: the fn item's `Fn` bound or, for an
    // `async fn`, the `Method` bound that the handle's operations take, which names the
    // owner, key and output and no borrow (an `impl AsyncFn(..)` would compile too).
    let method_bound = if asyncness.is_some() {
        let owner_inner = arc_inner(owner_type_of(owner)).expect("checked: `&Arc<T>`");
        quote! {
            for<'__weakmemo> ::weakmemo::Method<
                &'__weakmemo ::std::sync::Arc<#owner_inner>,
                #key_type,
                ::weakmemo::Awaits<#output>,
            > + ::core::marker::Copy
        }
    } else {
        quote! {
            ::core::ops::Fn(#owner_type, &#key_type) -> #output
                + ::core::marker::Copy + 'static
        }
    };

    // The public method: the original signature with plain parameter names.
    let mut outer_sig = sig.clone();
    outer_sig.inputs = Punctuated::<FnArg, Token![,]>::new();
    outer_sig
        .inputs
        .push(syn::parse2(owner_outer).expect("an owner parameter"));
    for (name, ty) in key_names.iter().zip(&key_types) {
        outer_sig.inputs.push(syn::parse_quote!(#name: #ty));
    }
    let outer_attrs: Vec<Attribute> = attrs.iter().map(expect_to_allow).collect();
    let inner_attrs = shared_attrs(attrs, true);
    let memo_attrs = shared_attrs(attrs, false);
    let memo_doc = format!(
        "The cache of `{name}`, made by `#[weakmemo::memo]`: its `cache_info()`, \
         `cache_clear()`, `invalidate(&owner, &key)` and `invalidate_owner(&owner)`."
    );

    quote! {
        #(#inner_attrs)*
        #asyncness fn #uncached #generics (#owner_param, #args: &#key_type) -> #output #where_clause {
            #(#bounds)*
            #key_unpack
            #block
        }

        #(#outer_attrs)*
        #vis #outer_sig {
            let #registry_var: &'static ::weakmemo::Registry = #registry;
            #settings_once
            #registry_var.#call(#owner_expr, #method_path, #key_expr) #awaited
        }

        #(#memo_attrs)*
        #[doc = #memo_doc]
        #[allow(dead_code)]
        #vis fn #memo #generics () -> ::weakmemo::Memo<impl #method_bound> #where_clause {
            ::weakmemo::Memo::new(#registry, #method_path)
        }
    }
}

/// The owner's declared type: `&Arc<Self>` or a free function's `&Arc<T>`.
fn owner_type_of<'a>(owner: &Owner<'a>) -> &'a Type {
    match owner {
        Owner::Receiver(receiver) => &receiver.ty,
        Owner::Param(param) => &param.ty,
    }
}

/// `T` of a type written `&Arc<T>` (see [`is_ref_arc`]).
fn arc_inner(ty: &Type) -> Option<&Type> {
    let Type::Reference(TypeReference { elem, .. }) = ty else {
        return None;
    };
    let Type::Path(path) = &**elem else {
        return None;
    };
    let PathArguments::AngleBracketed(arguments) = &path.path.segments.last()?.arguments else {
        return None;
    };
    arguments.args.iter().find_map(|argument| match argument {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
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
