use std::sync::Arc;

struct Client;

impl Client {
    #[weakmemo::memo]
    async fn fetch(self: &Arc<Self>, id: u64) -> String {
        id.to_string()
    }
}

fn main() {}
