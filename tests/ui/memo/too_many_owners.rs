use std::sync::Arc;

struct Doc;

impl Doc {
    #[weakmemo::memo]
    fn five(self: &Arc<Self>, a: &Arc<Doc>, b: Arc<Doc>, c: &Arc<Doc>, d: &Arc<Doc>) -> u8 {
        let _ = (a, b, c, d);
        5
    }
}

/// Nine arguments after the owner, one of them borrowed: more than `Parts` looks up.
#[weakmemo::memo]
fn nine(doc: &Arc<Doc>, a: &str, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8, i: u8) -> u8 {
    let _ = (doc, a);
    b + c + d + e + f + g + h + i
}

fn main() {}
