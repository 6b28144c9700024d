use std::rc::Rc;

fn len(text: &Rc<String>, &(): &()) -> usize {
    text.len()
}

fn main() {
    weakmemo::global().method(len).call(&Rc::new(String::new()), ());
}
