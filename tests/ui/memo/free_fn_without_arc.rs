#[weakmemo::memo]
fn double(n: &u32, k: u32) -> u32 {
    n * k * 2
}

#[weakmemo::memo]
fn constant() -> u32 {
    7
}

fn main() {}
