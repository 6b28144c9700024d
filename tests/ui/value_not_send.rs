use std::rc::Rc;
use std::sync::Arc;

fn shared(n: &Arc<u8>, &(): &()) -> Rc<u8> {
    Rc::new(**n)
}

fn main() {
    weakmemo::global().method(shared).call(&Arc::new(1), ());
}
