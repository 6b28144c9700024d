//! The attribute's options: `registry`, `result`, `maxsize`, `ttl`, `by_value`, `in_trait`.

use proc_macro2::TokenStream as TokenStream2;
use syn::parse::Parser;
use syn::{Expr, Ident, Token};

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
pub(crate) struct Options {
    pub(crate) registry: Option<Expr>,
    pub(crate) result: bool,
    /// The method's bound, an expression of type `usize`, or `None` for none.
    pub(crate) maxsize: Option<Expr>,
    /// The method's time to live, an expression of type `std::time::Duration`.
    pub(crate) ttl: Option<Expr>,
    /// Everything inside the method, for a trait impl.
    pub(crate) in_trait: bool,
    /// `Arc` parameters keyed by value rather than held by identity.
    pub(crate) by_value: Vec<Ident>,
}

pub(crate) fn parse_options(attr: TokenStream2) -> syn::Result<Options> {
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
