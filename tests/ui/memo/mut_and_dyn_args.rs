use std::sync::Arc;

trait Shape {
    fn area(&self) -> f64;
}

struct Canvas;

impl Canvas {
    #[weakmemo::memo]
    fn fill(self: &Arc<Self>, pixels: &mut Vec<u8>) -> usize {
        pixels.push(0);
        pixels.len()
    }

    #[weakmemo::memo]
    fn area(self: &Arc<Self>, shape: &dyn Shape) -> u64 {
        shape.area() as u64
    }
}

#[weakmemo::memo]
fn scale(shape: &mut Arc<dyn Shape + Send + Sync>) -> u64 {
    shape.area() as u64
}

fn main() {}
