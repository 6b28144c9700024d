// A weigher must take the type the method's table stores: here `u64`, or for
// `try_call`, the `Ok` type.
use std::sync::Arc;

fn square(n: &Arc<u64>, &k: &u64) -> u64 {
    **n * k * k
}

fn main() {
    let cache = weakmemo::Registry::new();
    cache.method(square).set_weigher(Some(std::sync::Arc::new(|_: &u64, text: &String| text.len() as u32)));
}
