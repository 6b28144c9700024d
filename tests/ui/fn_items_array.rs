use std::sync::Arc;

fn double(n: &Arc<i32>, &(): &()) -> i32 {
    **n * 2
}

fn triple(n: &Arc<i32>, &(): &()) -> i32 {
    **n * 3
}

fn main() {
    // An array coerces its fn items to one fn pointer type: the error names this line.
    for method in [double, triple] {
        weakmemo::global().method(method).call(&Arc::new(1), ());
    }
}
