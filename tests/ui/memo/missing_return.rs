use std::sync::Arc;

struct Logger;

impl Logger {
    #[weakmemo::memo]
    fn log(self: &Arc<Self>, line: String) {
        println!("{line}");
    }
}

fn main() {}
