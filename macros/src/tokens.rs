//! Walking the function's tokens: whether it names `Self`, and renaming its receiver `self`.

use proc_macro2::{Delimiter, Group, Literal, TokenStream as TokenStream2, TokenTree};
use syn::Ident;

/// Whether the function names `Self`, outside the items nested in it: then it is an
/// associated fn, and its generated siblings are reached as `Self::..`.
pub(crate) fn mentions_self_type(tokens: TokenStream2) -> bool {
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
pub(crate) fn rename_self(tokens: TokenStream2, to: &Ident) -> TokenStream2 {
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
