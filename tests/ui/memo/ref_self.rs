use std::sync::Arc;

struct Adder;

impl Adder {
    #[weakmemo::memo]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {
    let _ = Arc::new(Adder).add(1, 2);
}
