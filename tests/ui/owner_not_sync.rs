use std::cell::Cell;
use std::sync::Arc;

fn get(n: &Arc<Cell<u8>>, &(): &()) -> u8 {
    n.get()
}

fn main() {
    weakmemo::global().method(get).call(&Arc::new(Cell::new(1)), ());
}
