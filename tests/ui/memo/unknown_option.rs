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

    #[weakmemo::memo(expiry = std::time::Duration::from_secs(60))]
    fn neg(self: &Arc<Self>, a: i64) -> i64 {
        -a
    }

    #[weakmemo::memo(ttl_secs = 60)]
    fn abs(self: &Arc<Self>, a: i64) -> i64 {
        a.abs()
    }

    #[weakmemo::memo(ttl = std::time::Duration::from_secs(1), ttl = std::time::Duration::from_secs(2))]
    fn twice(self: &Arc<Self>, a: i64) -> i64 {
        a
    }

    #[weakmemo::memo(trait_impl)]
    fn local(self: &Arc<Self>, a: i64) -> i64 {
        a
    }

    #[weakmemo::memo(by_value(a::b))]
    fn fifth(a: Arc<str>) -> usize {
        a.len()
    }
}

fn main() {}
