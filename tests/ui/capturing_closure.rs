use std::sync::Arc;

fn main() {
    let bonus = 10;
    let owner = Arc::new(1);
    weakmemo::global().method(move |n: &Arc<i32>, &(): &()| **n + bonus).call(&owner, ());
}
