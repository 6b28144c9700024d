use std::sync::Arc;

struct Dictionary;

impl Dictionary {
    #[weakmemo::memo]
    fn define(self: &Arc<Self>, word: &str, also: Vec<&str>, ok: &'static str) -> String {
        format!("{word} {also:?} {ok}")
    }
}

fn main() {}
