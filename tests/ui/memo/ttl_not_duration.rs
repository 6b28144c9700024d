use std::sync::Arc;

struct Quotes;

impl Quotes {
    /// Seconds as a bare integer: `ttl` takes a `std::time::Duration`.
    #[weakmemo::memo(ttl = 60)]
    fn price(self: &Arc<Self>, symbol: String) -> f64 {
        symbol.len() as f64
    }

    /// An `Option<Duration>`: the attribute writes the `Some` itself.
    #[weakmemo::memo(maxsize = 8, ttl = Some(std::time::Duration::from_secs(1)))]
    async fn volume(self: &Arc<Self>, symbol: String) -> u64 {
        symbol.len() as u64
    }
}

fn main() {}
