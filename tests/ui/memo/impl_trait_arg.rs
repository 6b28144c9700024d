use std::sync::Arc;

struct Formatter;

impl Formatter {
    #[weakmemo::memo]
    fn show(self: &Arc<Self>, value: impl std::fmt::Display) -> String {
        value.to_string()
    }
}

fn main() {}
