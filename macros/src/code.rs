//! The owners' and the key's code, as each side of the call sees them, and the bounds
//! the registry needs.

use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, PatType, ReturnType, Type};

use crate::options::Options;
use crate::shape::{Form, Owner, Param};

/// A tuple of several, one itself, `()` for none: how owners, keys and lookups are all
/// shaped.
fn tuple_or_one(items: &[TokenStream2]) -> TokenStream2 {
    match items {
        [one] => one.clone(),
        several => quote!((#(#several),*)),
    }
}

/// The owners, as each side of the call sees them.
pub(crate) struct OwnersCode {
    /// The uncached code's first parameter: the receiver as written, `name: &Arc<U>`,
    /// a tuple pattern, or `(): ()`.
    pub(crate) param: TokenStream2,
    /// Statements rebinding the parameters that the owners' pattern does not bind as
    /// declared (an `Arc` by value).
    pub(crate) rebinds: Vec<TokenStream2>,
    /// What the public fn passes: `self`, `&name`, a tuple of them, or `()`.
    pub(crate) expr: TokenStream2,
    /// Their type in the handle's `Fn` bound, lifetimes elided.
    pub(crate) ty: TokenStream2,
    /// Their type in the handle's async `Method` bound, at `lifetime`.
    pub(crate) ty_at: TokenStream2,
    /// What an entry holds of them: `Weak<U>`, a tuple of `Weak`s, or `()`.
    pub(crate) held: TokenStream2,
    /// How the handle's docs spell them.
    pub(crate) doc: String,
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

pub(crate) fn owners_code(
    owners: &[Owner<'_, '_>],
    self_name: Option<&Ident>,
    lifetime: &syn::Lifetime,
    local: bool,
) -> OwnersCode {
    let (strong, weak) = if local {
        (quote!(::std::rc::Rc), quote!(::std::rc::Weak))
    } else {
        (quote!(::std::sync::Arc), quote!(::std::sync::Weak))
    };
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
        .map(|inner| quote!(&#lifetime #strong<#inner>))
        .collect();
    let held: Vec<TokenStream2> = inners.iter().map(|inner| quote!(#weak<#inner>)).collect();
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
pub(crate) struct KeyCode {
    /// The stored key's type: the owned form of each part.
    pub(crate) ty: TokenStream2,
    /// What the public fn passes: the key itself, or (with a borrowed part) a lookup of
    /// it, so that a hit allocates nothing.
    pub(crate) lookup: TokenStream2,
    /// Statements rebinding each parameter from the stored key, `args: &KEY`: a clone,
    /// or a borrow of its part.
    pub(crate) rebinds: Vec<TokenStream2>,
}

pub(crate) fn key_code(keys: &[(&Param<'_>, &Form<'_>)], args: &Ident) -> KeyCode {
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
/// attribute. (`Memo::call` reports them too, at the attribute.)
///
/// A `LocalRegistry`'s (`local`) need no `Send` or `Sync`: its `local_` checks.
pub(crate) fn bounds(
    owners: &[Owner<'_, '_>],
    keys: &[(&Param<'_>, &Form<'_>)],
    options: &Options,
    output: &ReturnType,
    local: bool,
) -> Vec<TokenStream2> {
    let check = |name: &str| {
        let prefix = if local { "local_" } else { "" };
        Ident::new(&format!("assert_{prefix}{name}"), Span::call_site())
    };
    let (assert_owner, assert_key, assert_borrowed, assert_value) = (
        check("owner"),
        check("key"),
        check("borrowed"),
        check("value"),
    );
    let owners = owners.iter().map(|owner| match owner {
        Owner::Receiver(receiver) => quote_spanned! {receiver.receiver.span()=>
            let _ = ::weakmemo::__private::#assert_owner::<Self>;
        },
        Owner::Param(param, _, inner) => quote_spanned! {param.pat_type.ty.span()=>
            let _ = ::weakmemo::__private::#assert_owner::<#inner>;
        },
    });
    let keys = keys.iter().map(|(param, form)| {
        let ty = &param.pat_type.ty;
        match form {
            Form::Owned => {
                quote_spanned!(ty.span()=> let _ = ::weakmemo::__private::#assert_key::<#ty>;)
            }
            Form::Borrowed { elem, .. } => quote_spanned! {ty.span()=>
                let _ = ::weakmemo::__private::#assert_borrowed::<#elem>;
            },
        }
    });
    let value = match output {
        ReturnType::Type(_, ty) if !options.result => {
            Some(quote_spanned!(ty.span()=> let _ = ::weakmemo::__private::#assert_value::<#ty>;))
        }
        _ => None,
    };
    owners.chain(keys).chain(value).collect()
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
