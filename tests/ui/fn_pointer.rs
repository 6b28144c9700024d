use std::sync::Arc;

fn double(n: &Arc<i32>, &(): &()) -> i32 {
    **n * 2
}

fn main() {
    let method: fn(&Arc<i32>, &()) -> i32 = double;
    weakmemo::global().method(method).call(&Arc::new(1), ());
}
