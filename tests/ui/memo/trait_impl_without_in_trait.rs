use std::sync::Arc;

trait Area {
    fn area(self: &Arc<Self>, scale: u32) -> u64;
}

struct Square(u64);

impl Area for Square {
    // A method attribute cannot see that it is in a trait impl: `in_trait` says so.
    #[weakmemo::memo]
    fn area(self: &Arc<Self>, scale: u32) -> u64 {
        self.0 * self.0 * u64::from(scale)
    }
}

fn main() {}
