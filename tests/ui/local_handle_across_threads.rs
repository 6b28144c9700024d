use std::rc::Rc;

fn len(text: &Rc<String>, &(): &()) -> usize {
    text.len()
}

fn main() {
    let len = weakmemo::local().method(len);
    std::thread::spawn(move || len.clear());
}
