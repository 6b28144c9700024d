struct Math;

impl Math {
    // No receiver and no `Self`: taken for a free function, whose siblings have bare
    // names. Naming `Self` (here `Self::double` would do, or `-> u64` via `Self`) or
    // `in_trait` fixes it.
    #[weakmemo::memo]
    fn double(n: u64) -> u64 {
        n * 2
    }
}

fn main() {
    let _ = Math::double(1);
}
