struct Counter(u64);

impl Counter {
    #[weakmemo::memo]
    fn bump(&mut self, by: u64) -> u64 {
        self.0 += by;
        self.0
    }
}

fn main() {}
