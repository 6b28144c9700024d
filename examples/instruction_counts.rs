//! Deterministic instruction counts of the hit and miss paths, for `valgrind
//! --tool=callgrind`, which this noisy machine's clock cannot give (see
//! `docs/benchmarks.md`). Each loop is a function of its own, so that callgrind counts
//! only it:
//!
//! ```text
//! cargo build --release --example instruction_counts
//! valgrind --tool=callgrind --toggle-collect='*count_hits*' target/release/examples/instruction_counts hit
//! valgrind --tool=callgrind --toggle-collect='*count_hits*' target/release/examples/instruction_counts hit ttl
//! valgrind --tool=callgrind --toggle-collect='*count_hits_arc*' target/release/examples/instruction_counts hit arc
//! valgrind --tool=callgrind --toggle-collect='*count_hits_str*' target/release/examples/instruction_counts hit str
//! valgrind --tool=callgrind --toggle-collect='*count_hits_handle*' target/release/examples/instruction_counts hit handle
//! valgrind --tool=callgrind --toggle-collect='*count_hits_handle*' target/release/examples/instruction_counts hit handle bounded
//! valgrind --tool=callgrind --toggle-collect='*count_misses*' target/release/examples/instruction_counts miss bounded
//! valgrind --tool=callgrind --toggle-collect='*count_hits_memo*' target/release/examples/instruction_counts hit memo
//! valgrind --tool=callgrind --toggle-collect='*count_hits_memo_free*' target/release/examples/instruction_counts hit memo free
//! valgrind --tool=callgrind --toggle-collect='*count_misses*' target/release/examples/instruction_counts miss
//! valgrind --tool=callgrind --toggle-collect='*count_misses*' target/release/examples/instruction_counts miss off
//! valgrind --tool=callgrind --toggle-collect='*count_misses*' target/release/examples/instruction_counts miss free
//! valgrind --tool=callgrind --toggle-collect='*count_misses*' target/release/examples/instruction_counts miss free other
//! valgrind --tool=callgrind --toggle-collect='*count_floor*' target/release/examples/instruction_counts floor
//! valgrind --tool=callgrind --toggle-collect='*count_hits_quick_cache*' target/release/examples/instruction_counts hit quick_cache
//! valgrind --tool=callgrind --toggle-collect='*count_misses_quick_cache*' target/release/examples/instruction_counts miss quick_cache
//! valgrind --tool=callgrind --toggle-collect='*count_misses_quick_cache*' target/release/examples/instruction_counts miss quick_cache guard
//! ```
//!
//! Divide callgrind's "Collected" by the count the program prints. `hit`: 1,000,000
//! `call` hits on a 1,000-entry table (250 owners × 4 arguments). `miss`: misses as in
//! the `miss_insert` bench, 10,000 owners × 4 arguments stored, then 51 batches of 1,024
//! fresh keys, each batch invalidated outside the counted loop; `off` turns single
//! flight off; `free` gives every owner a `FreeOnDrop` token, `free other` one other
//! owner only (so the misses look in the books and find nothing); `ttl` gives the registry a time to live (an hour, so nothing expires); `arc`
//! passes the argument as an object held weakly (a second owner), `str` as a `&str`
//! looked up against a stored `String`; `handle` makes them through one handle made
//! before the loop (`hit` makes one per call); `memo` makes the hits through a
//! `#[weakmemo::memo]` method (`self: &Arc<Self>`) on a static registry, `memo free`
//! through a `#[weakmemo::memo]` free function (`owner: &Arc<Owner>`). `floor`: the same keys inserted into a bare `hashbrown::HashMap`;
//! `quick_cache` makes the same hits or misses on a `quick_cache::sync::Cache` (`guard`:
//! through its single-flight `get_or_insert_with`). Without
//! valgrind the program just runs.

use std::hint::black_box;
use std::sync::Arc;

use hashbrown::HashMap;
use weakmemo::Registry;

struct Owner {
    id: u64,
    /// `miss free`: the owner's entries leave as it drops.
    _free: Option<weakmemo::FreeOnDrop>,
}

impl Owner {
    fn new(id: u64) -> Arc<Self> {
        Arc::new(Self { id, _free: None })
    }
}

fn mix(owner: &Arc<Owner>, &arg: &u64) -> u64 {
    owner.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ arg
}

/// The registry of `hit memo` and `hit memo free`: the attribute wants a `&'static`.
static REG: Registry = Registry::new();

impl Owner {
    /// The hits of `hit memo`: `mix` as a `#[weakmemo::memo]` method.
    #[weakmemo::memo(registry = &REG)]
    fn mix_memo(self: &Arc<Self>, arg: u64) -> u64 {
        self.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ arg
    }
}

/// The hits of `hit memo free`: `mix` as a `#[weakmemo::memo]` free function.
#[weakmemo::memo(registry = &REG)]
fn mix_memo_free(owner: &Arc<Owner>, arg: u64) -> u64 {
    owner.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ arg
}

const BATCH: usize = 1024;
const ROUNDS: usize = 51;

#[inline(never)]
fn count_hits(registry: &Registry, owners: &[Arc<Owner>], n: usize) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        let owner = &owners[i % owners.len()];
        let arg = (i / owners.len() % 4) as u64;
        sum = sum.wrapping_add(registry.method(mix).call(black_box(owner), black_box(arg)));
    }
    sum
}

/// The hits of `hit handle`: `hit` through a handle made once, outside the loop.
#[inline(never)]
fn count_hits_handle(registry: &Registry, owners: &[Arc<Owner>], n: usize) -> u64 {
    let mix = registry.method(mix);
    let mut sum = 0u64;
    for i in 0..n {
        let owner = &owners[i % owners.len()];
        let arg = (i / owners.len() % 4) as u64;
        sum = sum.wrapping_add(mix.call(black_box(owner), black_box(arg)));
    }
    sum
}

/// The hits of `hit arc`: the argument is an object, held weakly as a second owner.
fn mix_arc((owner, arg): (&Arc<Owner>, &Arc<Owner>), &(): &()) -> u64 {
    mix(owner, &arg.id)
}

/// The hits of `hit str`: a `&str` argument looked up against its stored `String`.
// The table stores the `String` a `&str` looks up, and hands the method that.
#[allow(clippy::ptr_arg)]
fn mix_str(owner: &Arc<Owner>, name: &String) -> u64 {
    mix(owner, &(name.len() as u64))
}

const NAMES: [&str; 4] = ["", "a", "ab", "abc"];

#[inline(never)]
fn count_hits_memo(owners: &[Arc<Owner>], n: usize) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        let owner = &owners[i % owners.len()];
        let arg = (i / owners.len() % 4) as u64;
        sum = sum.wrapping_add(black_box(owner).mix_memo(black_box(arg)));
    }
    sum
}

#[inline(never)]
fn count_hits_memo_free(owners: &[Arc<Owner>], n: usize) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        let owner = &owners[i % owners.len()];
        let arg = (i / owners.len() % 4) as u64;
        sum = sum.wrapping_add(mix_memo_free(black_box(owner), black_box(arg)));
    }
    sum
}

#[inline(never)]
fn count_hits_arc(
    registry: &Registry,
    owners: &[Arc<Owner>],
    args: &[Arc<Owner>],
    n: usize,
) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        let owner = &owners[i % owners.len()];
        let arg = &args[i / owners.len() % 4];
        sum = sum.wrapping_add(registry.method(mix_arc).call(black_box((owner, arg)), ()));
    }
    sum
}

#[inline(never)]
fn count_hits_str(registry: &Registry, owners: &[Arc<Owner>], n: usize) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        let owner = &owners[i % owners.len()];
        let name = NAMES[i / owners.len() % 4];
        sum = sum.wrapping_add(
            registry
                .method(mix_str)
                .call(black_box(owner), black_box(name)),
        );
    }
    sum
}

#[inline(never)]
fn count_misses(registry: &Registry, owners: &[Arc<Owner>], keys: &[(usize, u64)]) -> u64 {
    let mut sum = 0u64;
    for &(i, arg) in keys {
        sum = sum.wrapping_add(
            registry
                .method(mix)
                .call(black_box(&owners[i]), black_box(arg)),
        );
    }
    sum
}

/// The misses of `miss quick_cache`: quick_cache's `get`, then `insert` (no single
/// flight), as the `miss_insert` bench's baseline does; or, with `guard`, its
/// single-flight `get_or_insert_with`. Each a loop of its own (the closure's type).
#[inline(never)]
fn count_misses_quick_cache(
    owners: &[Arc<Owner>],
    keys: &[(usize, u64)],
    miss: impl Fn(&Arc<Owner>, (usize, u64), u64) -> u64,
) -> u64 {
    let mut sum = 0u64;
    for &(i, arg) in keys {
        let owner = black_box(&owners[i]);
        let arg = black_box(arg);
        sum = sum.wrapping_add(miss(owner, (Arc::as_ptr(owner) as usize, arg), arg));
    }
    sum
}

/// The hits of `hit quick_cache`: the keys of `hit`, in a quick_cache.
#[inline(never)]
fn count_hits_quick_cache(cache: &QuickCache, owners: &[Arc<Owner>], n: usize) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        let owner = black_box(&owners[i % owners.len()]);
        let arg = black_box((i / owners.len() % 4) as u64);
        let key = (Arc::as_ptr(owner) as usize, arg);
        sum = sum.wrapping_add(cache.get(&key).unwrap_or_default());
    }
    sum
}

type QuickCache = quick_cache::sync::Cache<(usize, u64), u64>;

#[inline(never)]
fn count_floor(
    map: &mut HashMap<(usize, u64), u64>,
    owners: &[Arc<Owner>],
    keys: &[(usize, u64)],
) -> u64 {
    let mut sum = 0u64;
    for &(i, arg) in keys {
        let owner = black_box(&owners[i]);
        let value = mix(owner, &arg);
        map.insert((Arc::as_ptr(owner) as usize, black_box(arg)), value);
        sum = sum.wrapping_add(value);
    }
    sum
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "hit".into());
    // 'static, as a `FreeOnDrop` token needs.
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let free = |id| {
        Arc::new_cyclic(|me| Owner {
            id,
            _free: Some(registry.free_on_drop(me)),
        })
    };
    if std::env::args().any(|arg| arg == "off") {
        registry.set_single_flight(false);
    }
    if std::env::args().any(|arg| arg == "ttl") {
        registry.set_ttl(Some(std::time::Duration::from_secs(3600)));
    }
    if std::env::args().any(|arg| arg == "bounded") {
        // Room for every key: hits of a bounded method, none evicted.
        registry.method(mix).set_capacity(Some(100_000));
    }
    match mode.as_str() {
        "hit" => {
            let owners: Vec<_> = (0..250).map(Owner::new).collect();
            let args: Vec<_> = (0..4).map(Owner::new).collect();
            let n = 1_000_000;
            if std::env::args().any(|arg| arg == "quick_cache") {
                let cache = QuickCache::new(2 * owners.len() * 4);
                for owner in &owners {
                    for arg in 0..4 {
                        cache.insert((Arc::as_ptr(owner) as usize, arg), mix(owner, &arg));
                    }
                }
                black_box(count_hits_quick_cache(&cache, &owners, n));
            } else if std::env::args().any(|arg| arg == "handle") {
                for owner in &owners {
                    for arg in 0..4 {
                        registry.method(mix).call(owner, arg);
                    }
                }
                black_box(count_hits_handle(registry, &owners, n));
            } else if std::env::args().any(|arg| arg == "memo") {
                let free = std::env::args().any(|arg| arg == "free");
                for owner in &owners {
                    for arg in 0..4 {
                        if free {
                            mix_memo_free(owner, arg);
                        } else {
                            owner.mix_memo(arg);
                        }
                    }
                }
                if free {
                    black_box(count_hits_memo_free(&owners, n));
                } else {
                    black_box(count_hits_memo(&owners, n));
                }
            } else if std::env::args().any(|arg| arg == "arc") {
                for owner in &owners {
                    for arg in &args {
                        registry.method(mix_arc).call((owner, arg), ());
                    }
                }
                black_box(count_hits_arc(registry, &owners, &args, n));
            } else if std::env::args().any(|arg| arg == "str") {
                for owner in &owners {
                    for name in NAMES {
                        registry.method(mix_str).call(owner, name);
                    }
                }
                black_box(count_hits_str(registry, &owners, n));
            } else {
                for owner in &owners {
                    for arg in 0..4 {
                        registry.method(mix).call(owner, arg);
                    }
                }
                black_box(count_hits(registry, &owners, n));
            }
            println!("{n} hits");
        }
        "miss" | "floor" => {
            // `free`: every owner holds a token; `free other`: only one more owner does.
            let owners: Vec<_> = if std::env::args().any(|arg| arg == "free") {
                if std::env::args().any(|arg| arg == "other") {
                    std::mem::forget(free(u64::MAX));
                    (0..10_000).map(Owner::new).collect()
                } else {
                    (0..10_000).map(free).collect()
                }
            } else {
                (0..10_000).map(Owner::new).collect()
            };
            let quick_cache = std::env::args().any(|arg| arg == "quick_cache");
            let guard = std::env::args().any(|arg| arg == "guard");
            let mut map = HashMap::new();
            let cache = QuickCache::new(2 * owners.len() * 4);
            for owner in &owners {
                for arg in 0..4 {
                    registry.method(mix).call(owner, arg);
                    map.insert((Arc::as_ptr(owner) as usize, arg), mix(owner, &arg));
                    cache.insert((Arc::as_ptr(owner) as usize, arg), mix(owner, &arg));
                }
            }
            let mut fresh = 1_000_000u64;
            for round in 0..ROUNDS {
                let keys: Vec<(usize, u64)> = (0..BATCH)
                    .map(|j| {
                        fresh += 1;
                        ((round * BATCH + j) * 7919 % owners.len(), fresh)
                    })
                    .collect();
                if mode == "miss" && quick_cache {
                    black_box(if guard {
                        count_misses_quick_cache(&owners, &keys, |owner, key, arg| {
                            let value =
                                cache.get_or_insert_with(&key, || Ok::<_, ()>(mix(owner, &arg)));
                            value.unwrap_or_default()
                        })
                    } else {
                        count_misses_quick_cache(&owners, &keys, |owner, key, arg| {
                            cache.get(&key).unwrap_or_else(|| {
                                let value = mix(owner, &arg);
                                cache.insert(key, value);
                                value
                            })
                        })
                    });
                    for &(i, arg) in &keys {
                        cache.remove(&(Arc::as_ptr(&owners[i]) as usize, arg));
                    }
                } else if mode == "miss" {
                    black_box(count_misses(registry, &owners, &keys));
                    for &(i, arg) in &keys {
                        registry.method(mix).invalidate(&owners[i], &arg);
                    }
                } else {
                    black_box(count_floor(&mut map, &owners, &keys));
                    for &(i, arg) in &keys {
                        map.remove(&(Arc::as_ptr(&owners[i]) as usize, arg));
                    }
                }
            }
            println!("{} {mode} calls", ROUNDS * BATCH);
        }
        _ => panic!(
            "usage: instruction_counts hit [ttl | arc | str | handle | memo [free] | quick_cache] | miss [off] [ttl] [free [other]] [quick_cache [guard]] | floor"
        ),
    }
}
