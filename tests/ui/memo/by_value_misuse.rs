use std::sync::Arc;

#[weakmemo::memo(by_value(count, missing))]
fn greet(name: Arc<str>, count: usize) -> String {
    name.repeat(count)
}

#[weakmemo::memo(strong(name))]
fn shout(name: Arc<str>) -> String {
    name.to_uppercase()
}

fn main() {}
