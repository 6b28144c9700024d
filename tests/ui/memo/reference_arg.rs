use std::borrow::Cow;
use std::sync::Arc;

struct Dictionary;

impl Dictionary {
    /// `word: &str` and `ok: &'static str` are fine; a borrow inside a type is not.
    #[weakmemo::memo]
    fn define<'a>(
        self: &Arc<Self>,
        word: &str,
        also: Vec<&str>,
        ok: &'static str,
        note: Cow<'a, str>,
        nested: &Option<&'a u8>,
    ) -> String {
        format!("{word} {also:?} {ok} {note} {nested:?}")
    }
}

fn main() {}
