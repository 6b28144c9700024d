//! Instruction counts of the `LocalRegistry`'s hit and miss, beside the shared
//! `Registry`'s and a bare `RefCell<HashMap>`'s, for `valgrind --tool=callgrind` (see
//! `docs/benchmarks.md`, "Rc owners"):
//!
//! ```text
//! cargo build --release --example local_counts
//! valgrind --tool=callgrind --toggle-collect='*count_*' target/release/examples/local_counts hit local
//! valgrind --tool=callgrind --toggle-collect='*count_*' target/release/examples/local_counts miss registry
//! ```
//!
//! The first argument is `hit` (1,000,000 hits on 1,000 entries: 250 owners x 4
//! arguments) or `miss` (50 batches of 1,024 fresh keys, each table cleared outside the
//! counted loop); the second `local`, `registry` or `refcell`. Divide callgrind's
//! "Collected" by the count printed. Without valgrind the program just runs.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;

use hashbrown::HashMap;
use weakmemo::{LocalRegistry, Registry};

const OWNERS: usize = 250;
const HITS: usize = 1_000_000;
const BATCH: u64 = 1024;
const ROUNDS: usize = 50;

fn mix_rc(owner: &Rc<u64>, &arg: &u64) -> u64 {
    owner.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ arg
}

fn mix_arc(owner: &Arc<u64>, &arg: &u64) -> u64 {
    owner.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ arg
}

type Floor = RefCell<HashMap<(usize, u64), u64>>;

#[inline(never)]
fn count_refcell(map: &Floor, owners: &[Rc<u64>], keys: &[(usize, u64)]) -> u64 {
    let mut sum = 0_u64;
    for &(i, arg) in keys {
        let owner = black_box(&owners[i]);
        let addr = Rc::as_ptr(owner).addr();
        let found = map.borrow().get(&(addr, arg)).copied();
        let value = found.unwrap_or_else(|| {
            let value = mix_rc(owner, &arg);
            map.borrow_mut().insert((addr, arg), value);
            value
        });
        sum = sum.wrapping_add(value);
    }
    sum
}

#[inline(never)]
fn count_local(registry: &LocalRegistry, owners: &[Rc<u64>], keys: &[(usize, u64)]) -> u64 {
    let mix = registry.method(mix_rc);
    keys.iter().fold(0, |sum, &(i, arg)| {
        sum.wrapping_add(mix.call(black_box(&owners[i]), black_box(arg)))
    })
}

#[inline(never)]
fn count_registry(registry: &Registry, owners: &[Arc<u64>], keys: &[(usize, u64)]) -> u64 {
    let mix = registry.method(mix_arc);
    keys.iter().fold(0, |sum, &(i, arg)| {
        sum.wrapping_add(mix.call(black_box(&owners[i]), black_box(arg)))
    })
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "hit".into());
    let cache = std::env::args().nth(2).unwrap_or_else(|| "local".into());
    let rcs: Vec<Rc<u64>> = (0..OWNERS as u64).map(Rc::new).collect();
    let arcs: Vec<Arc<u64>> = (0..OWNERS as u64).map(Arc::new).collect();
    let floor = Floor::default();
    let local = LocalRegistry::new();
    let shared = Registry::new();
    let hit_keys = |n: usize| -> Vec<(usize, u64)> {
        (0..n)
            .map(|i| (i % OWNERS, (i / OWNERS) as u64 % 4))
            .collect()
    };
    let miss_keys: Vec<(usize, u64)> = (0..BATCH).map(|i| (i as usize % OWNERS, i)).collect();
    let run = |keys: &[(usize, u64)]| match cache.as_str() {
        "local" => count_local(&local, &rcs, keys),
        "registry" => count_registry(&shared, &arcs, keys),
        "refcell" => count_refcell(&floor, &rcs, keys),
        other => panic!("unknown cache {other:?}: local, registry or refcell"),
    };
    let counted = match mode.as_str() {
        "hit" => {
            // The fill: its 1,000 misses are counted too, under 1 instruction per hit.
            run(&hit_keys(OWNERS * 4));
            black_box(run(&hit_keys(HITS)));
            HITS
        }
        "miss" => {
            for _ in 0..ROUNDS {
                local.clear();
                shared.clear();
                floor.borrow_mut().clear();
                black_box(run(&miss_keys));
            }
            ROUNDS * BATCH as usize
        }
        other => panic!("unknown mode {other:?}: hit or miss"),
    };
    println!("{counted} lookups");
}
