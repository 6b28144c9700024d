//! The key set of the hit benches (`hit_path`, `async_calls`): owners, a cheap method,
//! and a seeded shuffle of every (owner, arg) pair with its checksum.

use std::sync::Arc;

/// Arguments per owner.
pub const ARGS: u64 = 4;

pub struct Owner {
    pub id: u64,
}

/// The memoized method: cheap, so that the benchmark measures the cache.
pub fn f(owner: &Arc<Owner>, &k: &u64) -> u64 {
    owner.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k
}

/// A tiny seeded xorshift64, so that runs are reproducible without another crate.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

pub fn addr(owner: &Arc<Owner>) -> usize {
    Arc::as_ptr(owner) as usize
}

/// Owners and a shuffled order of every (owner, arg) pair.
pub struct Data {
    pub owners: Vec<Arc<Owner>>,
    pub order: Vec<(u32, u64)>,
    /// Sum of `f` over the whole order: what a full pass of hits must return.
    pub checksum: u64,
}

impl Data {
    pub fn new(owners: usize, seed: u64) -> Self {
        let owners: Vec<_> = (0..owners as u64)
            .map(|id| Arc::new(Owner { id }))
            .collect();
        let mut order: Vec<(u32, u64)> = (0..owners.len() as u32)
            .flat_map(|i| (0..ARGS).map(move |k| (i, k)))
            .collect();
        XorShift(seed).shuffle(&mut order);
        let checksum = order.iter().fold(0u64, |acc, &(i, k)| {
            acc.wrapping_add(f(&owners[i as usize], &k))
        });
        Self {
            owners,
            order,
            checksum,
        }
    }

    pub fn entries(&self) -> usize {
        self.order.len()
    }

    /// Every (owner, arg, value), in owner order (the order tables are filled in).
    pub fn each(&self) -> impl Iterator<Item = (&Arc<Owner>, u64, u64)> {
        self.owners
            .iter()
            .flat_map(|o| (0..ARGS).map(move |k| (o, k, f(o, &k))))
    }
}
