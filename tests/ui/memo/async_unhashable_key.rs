use std::sync::Arc;

#[derive(Clone, PartialEq, Eq)]
struct Point(i64, i64);

struct NotClone;

struct Plane;

impl Plane {
    #[weakmemo::memo]
    async fn norm(self: &Arc<Self>, point: Point, scale: i64) -> i64 {
        (point.0.abs() + point.1.abs()) * scale
    }

    #[weakmemo::memo]
    async fn make(self: &Arc<Self>, seed: u32) -> NotClone {
        let _ = seed;
        NotClone
    }
}

fn main() {}
