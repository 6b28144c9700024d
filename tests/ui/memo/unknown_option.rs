use std::sync::Arc;

struct Adder;

impl Adder {
    #[weakmemo::memo(capacity = 128)]
    fn add(self: &Arc<Self>, a: i64) -> i64 {
        a
    }

    #[weakmemo::memo(regsitry = weakmemo::global())]
    fn sub(self: &Arc<Self>, a: i64) -> i64 {
        -a
    }

    #[weakmemo::memo(ttl = 60)]
    fn neg(self: &Arc<Self>, a: i64) -> i64 {
        -a
    }

    #[weakmemo::memo(maxsize = 16)]
    fn first<T: Clone + std::hash::Hash + Eq + Send + Sync + 'static>(self: &Arc<Self>, t: T) -> T {
        t
    }
}

fn main() {}
