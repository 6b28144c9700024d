use std::sync::Arc;

struct Adder;

impl Adder {
    #[weakmemo::memo(maxsize = 128)]
    fn add(self: &Arc<Self>, a: i64) -> i64 {
        a
    }

    #[weakmemo::memo(regsitry = weakmemo::global())]
    fn sub(self: &Arc<Self>, a: i64) -> i64 {
        -a
    }
}

fn main() {}
