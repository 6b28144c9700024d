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

    #[weakmemo::memo(maxsize = 16)]
    fn first<T: Clone + std::hash::Hash + Eq + Send + Sync + 'static>(self: &Arc<Self>, t: T) -> T {
        t
    }

    #[weakmemo::memo(ttl = std::time::Duration::from_secs(60))]
    fn second<T: Clone + std::hash::Hash + Eq + Send + Sync + 'static>(self: &Arc<Self>, t: T) -> T {
        t
    }

    #[weakmemo::memo(maxsize = 16, ttl = std::time::Duration::from_secs(60))]
    fn third<const N: usize>(self: &Arc<Self>, a: [u8; N]) -> [u8; N] {
        a
    }

    #[weakmemo::memo(ttl = std::time::Duration::from_secs(1), ttl = std::time::Duration::from_secs(2))]
    fn twice(self: &Arc<Self>, a: i64) -> i64 {
        a
    }

    #[weakmemo::memo(trait_impl)]
    fn local(self: &Arc<Self>, a: i64) -> i64 {
        a
    }

    #[weakmemo::memo(maxsize = None)]
    fn fourth<T: Clone + std::hash::Hash + Eq + Send + Sync + 'static>(t: T) -> T {
        t
    }

    #[weakmemo::memo(by_value(a::b))]
    fn fifth(a: Arc<str>) -> usize {
        a.len()
    }
}

fn main() {}
