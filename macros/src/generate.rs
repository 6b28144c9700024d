//! Writing the three items: `NAME_uncached`, the public `NAME` and its `NAME_memo()` handle.

use proc_macro2::{Span, TokenStream as TokenStream2, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, FnArg, GenericParam, Ident, ItemFn, ReturnType, Signature, Token};

use crate::code::{OwnersCode, bounds, key_code, owners_code};
use crate::options::Options;
use crate::shape::Shape;
use crate::tokens::rename_self;

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

pub(crate) fn generate(options: &Options, function: &ItemFn, shape: &Shape<'_>) -> TokenStream2 {
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
    let rc_owners = shape.local;
    let registry = match &options.registry {
        Some(expr) => expr.to_token_stream(),
        None if rc_owners => quote!(::weakmemo::local()),
        None => quote!(::weakmemo::global()),
    };

    let owners = shape.owners();
    let keys = shape.keys();
    let self_name = self_name(shape, owners.len(), local);
    let owners_code = owners_code(&owners, self_name.as_ref(), &lifetime, rc_owners);
    let key = key_code(&keys, &args);
    let bounds = bounds(&owners, &keys, options, &sig.output, rc_owners);

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
    let handle = if rc_owners {
        // A thread's registry: no `static` can hold its tables.
        quote!(::weakmemo::__private::local_memo(&#registry_var, #method, #defaults))
    } else if generic || names_self(&types) {
        quote!(::weakmemo::__private::memo(#registry_var, #method, #defaults))
    } else {
        quote! {{
            static __WEAKMEMO_TABLE: ::weakmemo::__private::Resolved<#held, #key_type, #stored> =
                ::weakmemo::__private::Resolved::new();
            __WEAKMEMO_TABLE.memo(#registry_var, #method, #defaults)
        }}
    };
    let registry_type = if rc_owners {
        quote!(::weakmemo::LocalRegistry)
    } else {
        quote!(&'static ::weakmemo::Registry)
    };
    let resolve = quote! {
        let #registry_var: #registry_type = #registry;
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
    let memo_type = if rc_owners {
        quote!(::weakmemo::LocalMemo<impl #method_bound, #held, #key_type, #stored>)
    } else {
        quote!(::weakmemo::Memo<'static, impl #method_bound, #held, #key_type, #stored>)
    };
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
        #vis fn #memo #generics () -> #memo_type #where_clause {
            #resolve
        }
    }
}

/// Whether `maxsize = None` was written: no bound.
fn is_none(expr: &Expr) -> bool {
    matches!(expr, Expr::Path(path) if path.qself.is_none() && path.path.is_ident("None"))
}
