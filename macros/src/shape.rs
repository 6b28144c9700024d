//! Checking the function and sorting its parameters into owners and key, each misuse
//! reported at its own span.

use proc_macro2::Span;
use quote::{ToTokens, format_ident};
use syn::{
    FnArg, GenericArgument, Ident, ItemFn, Pat, PatIdent, PatType, PathArguments, ReturnType, Type,
    TypeReference,
};

use crate::options::Options;
use crate::tokens::mentions_self_type;

/// The most owners an entry holds (`weakmemo::Owners` is implemented for up to four).
const MAX_OWNERS: usize = 4;

/// The most parts `weakmemo::Parts` looks up, for a key with a borrowed argument.
const MAX_PARTS: usize = 8;

/// The function's parameters, sorted.
pub(crate) struct Shape<'a> {
    pub(crate) receiver: Option<Receiver<'a>>,
    /// The typed parameters, in order.
    pub(crate) params: Vec<Param<'a>>,
    /// Whether the function is an associated one, so that its siblings are `Self::..`.
    pub(crate) in_impl: bool,
    /// Whether the owners are `Rc`s, held by a `LocalRegistry`.
    pub(crate) local: bool,
}

/// A receiver the cache can hold: `self: &Arc<Self>`, or `self: Arc<Self>` (by value).
pub(crate) struct Receiver<'a> {
    pub(crate) receiver: &'a syn::Receiver,
    pub(crate) by_value: bool,
}

/// A typed parameter, with the plain name the public fn gives it.
pub(crate) struct Param<'a> {
    pub(crate) pat_type: &'a PatType,
    pub(crate) name: Ident,
    role: Role<'a>,
}

enum Role<'a> {
    /// An object held weakly, by identity: `&Arc<U>`, or `Arc<U>` (by value). `inner`
    /// is `U`.
    Owner { by_value: bool, inner: &'a Type },
    /// Part of the key.
    Key(Form<'a>),
}

pub(crate) enum Form<'a> {
    /// Stored as written, moved in; the body receives a clone.
    Owned,
    /// `&U`, looked up as it is and stored as `U::to_owned()`; the body receives `&U`
    /// borrowed from the stored key. `direct`: `U` has a `Lookup` and `Part` impl of its
    /// own (`str`, `[T]`, `Path`, `OsStr`, `CStr`); other types go through `Borrowed`.
    Borrowed { elem: &'a Type, direct: bool },
}

/// One owner, in order: the receiver, then the `Arc` parameters.
pub(crate) enum Owner<'s, 'a> {
    Receiver(&'s Receiver<'a>),
    Param(&'s Param<'a>, bool, &'a Type),
}

impl<'a> Shape<'a> {
    pub(crate) fn owners(&self) -> Vec<Owner<'_, 'a>> {
        let receiver = self.receiver.iter().map(Owner::Receiver);
        let params = self.params.iter().filter_map(|param| match &param.role {
            Role::Owner { by_value, inner } => Some(Owner::Param(param, *by_value, inner)),
            Role::Key(_) => None,
        });
        receiver.chain(params).collect()
    }

    pub(crate) fn keys(&self) -> Vec<(&Param<'a>, &Form<'a>)> {
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
pub(crate) fn check<'a>(function: &'a ItemFn, options: &Options) -> syn::Result<Shape<'a>> {
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
                if written.colon_token.is_some() && is_ref_owner(&written.ty) {
                    receiver = Some(Receiver {
                        receiver: written,
                        by_value: false,
                    });
                } else if written.colon_token.is_some() && owner_inner(&written.ty).is_some() {
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
    let mut shape = Shape {
        receiver,
        params,
        in_impl,
        local: false,
    };
    let owners = shape.owners();
    let local = owners.first().is_some_and(|first| is_rc(owner_type(first)));
    if let Some(other) = owners
        .iter()
        .find(|owner| is_rc(owner_type(owner)) != local)
    {
        errors.push(
            owner_type(other),
            "`#[weakmemo::memo]` keeps a method's entries in one registry: `Arc` owners in \
             a shared `Registry`, `Rc` owners in a thread's `LocalRegistry`; this method \
             mixes the two: take every object as `Arc`, or every one as `Rc`",
        );
    }
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
    drop(owners);
    shape.local = local;
    match errors.0 {
        Some(error) => Err(error),
        None => Ok(shape),
    }
}

/// What a parameter of type `ty` is: an owner (an `Arc`, unless keyed `by_value`) or a
/// part of the key; each misuse is pushed to `errors`.
fn role<'a>(ty: &'a Type, by_value: bool, errors: &mut Errors) -> Role<'a> {
    if !by_value {
        if let Some(inner) = owner_inner(ty) {
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
            if let Some(inner) = owner_inner(elem) {
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
                    Type::Reference(reference) => owner_inner(&reference.elem).is_some(),
                    _ => owner_inner(ty).is_some(),
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
                          `self: Arc<Self>`; `&Rc<Self>` on one thread)";
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

/// `T` of a type written `Arc<T>` or `Rc<T>` (any path ending in `Arc` or `Rc`).
fn owner_inner(ty: &Type) -> Option<&Type> {
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
    if last.ident != "Arc" && last.ident != "Rc" {
        return None;
    }
    arguments.args.iter().find_map(|argument| match argument {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// An owner's type as written.
fn owner_type<'a>(owner: &Owner<'_, 'a>) -> &'a Type {
    match owner {
        Owner::Receiver(receiver) => &receiver.receiver.ty,
        Owner::Param(param, ..) => &param.pat_type.ty,
    }
}

/// Whether an owner's type (`Rc<T>`, `&Rc<T>`, `Arc<T>`, `&Arc<T>`) is an `Rc`'s, which
/// a `LocalRegistry` holds.
fn is_rc(ty: &Type) -> bool {
    let ty = match ty {
        Type::Reference(reference) => &*reference.elem,
        ty => ty,
    };
    matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|last| last.ident == "Rc"))
}

/// Whether `ty` is written `&Arc<..>` or `&Rc<..>` (shared reference).
fn is_ref_owner(ty: &Type) -> bool {
    matches!(ty, Type::Reference(TypeReference { mutability: None, elem, .. }) if owner_inner(elem).is_some())
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
