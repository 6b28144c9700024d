//! The accepted shapes: a fn item, a non-capturing closure, a `dyn` owner.
use std::sync::Arc;

trait Shape: Send + Sync {
    fn area(&self) -> f64;
}

impl Shape for f64 {
    fn area(&self) -> f64 {
        self * self
    }
}

fn area(shape: &Arc<dyn Shape>, &(): &()) -> f64 {
    shape.area()
}

fn main() {
    let shape: Arc<dyn Shape> = Arc::new(3.0);
    assert_eq!(weakmemo::global().method(area).call(&shape, ()), 9.0);
    let n = Arc::new(4);
    assert_eq!(weakmemo::global().method(|n: &Arc<i32>, &k: &i32| **n * k).call(&n, 5), 20);
}
