use std::rc::Rc;
use std::sync::Arc;

struct Doc;

impl Doc {
    #[weakmemo::memo]
    fn mentions(self: &Arc<Self>, user: &Rc<String>) -> usize {
        user.len()
    }
}

fn main() {}
