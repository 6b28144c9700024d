use std::rc::Rc;
use std::sync::Arc;

struct Adder;

impl Adder {
    #[weakmemo::memo]
    fn boxed(self: Box<Self>, a: i64) -> i64 {
        a
    }

    #[weakmemo::memo]
    fn counted(self: Rc<Self>, a: i64) -> i64 {
        a
    }

    #[weakmemo::memo]
    fn exclusive(self: &mut Arc<Self>, a: i64) -> i64 {
        a
    }

    #[weakmemo::memo]
    fn owned(self, a: i64) -> i64 {
        a
    }
}

fn main() {}
