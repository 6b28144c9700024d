use std::rc::Rc;
use std::sync::Arc;

struct Doc;

impl Doc {
    #[weakmemo::memo]
    fn words(self: &Arc<Self>) -> Rc<Vec<String>> {
        Rc::new(Vec::new())
    }
}

fn main() {}
