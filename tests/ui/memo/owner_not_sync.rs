use std::cell::Cell;
use std::sync::Arc;

struct Counter;

impl Counter {
    #[weakmemo::memo]
    fn read(self: &Arc<Self>, cell: &Arc<Cell<u8>>) -> u8 {
        cell.get()
    }
}

fn main() {}
