//! The `LocalRegistry` (`Rc` owners, one thread) beside the shared `Registry` (`Arc`
//! owners) and a bare `RefCell<HashMap>` keyed by (owner address, argument): the floor a
//! single-threaded cache cannot go under, and the leak and address-reuse trap weakmemo
//! exists to avoid.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench local
//! ```
//!
//! Groups:
//! - `local_hits`: hits on 1,000 entries (250 owners x 4 arguments), in order, through a
//!   handle made once.
//! - `local_miss_insert`: 1,024 fresh keys (new arguments on existing owners) computed
//!   and stored per iteration, each table cleared outside the timed loop.
//!
//! Every contender is checked against the expected checksum before it is timed.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hashbrown::HashMap;
use support::config;
use weakmemo::{LocalRegistry, Registry};

mod support;

const OWNERS: usize = 250;
const ARGS: u64 = 4;
const BATCH: u64 = 1024;

fn mix_of(id: u64, arg: u64) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ arg
}

fn mix_rc(owner: &Rc<u64>, &arg: &u64) -> u64 {
    mix_of(**owner, arg)
}

fn mix_arc(owner: &Arc<u64>, &arg: &u64) -> u64 {
    mix_of(**owner, arg)
}

/// The `i`-th lookup: owner index and argument, every key in turn.
fn key(i: usize) -> (usize, u64) {
    (i % OWNERS, (i / OWNERS) as u64 % ARGS)
}

fn expected(n: usize) -> u64 {
    (0..n).fold(0, |sum, i| {
        let (owner, arg) = key(i);
        sum.wrapping_add(mix_of(owner as u64, arg))
    })
}

type Floor = RefCell<HashMap<(usize, u64), u64>>;

fn floor_get(map: &Floor, owner: &Rc<u64>, arg: u64) -> u64 {
    let addr = Rc::as_ptr(owner).addr();
    if let Some(&value) = map.borrow().get(&(addr, arg)) {
        return value;
    }
    let value = mix_rc(owner, &arg);
    map.borrow_mut().insert((addr, arg), value);
    value
}

fn hits(c: &mut Criterion) {
    let rcs: Vec<Rc<u64>> = (0..OWNERS as u64).map(Rc::new).collect();
    let arcs: Vec<Arc<u64>> = (0..OWNERS as u64).map(Arc::new).collect();
    let n = OWNERS * ARGS as usize;
    let want = expected(n);

    let floor = Floor::default();
    let local = LocalRegistry::new();
    let local = local.method(mix_rc);
    let shared = Registry::new();
    let shared = shared.method(mix_arc);
    let rounds = |f: &dyn Fn(usize) -> u64| (0..n).fold(0_u64, |sum, i| sum.wrapping_add(f(i)));
    let run_floor = |i: usize| {
        let (o, a) = key(i);
        floor_get(&floor, black_box(&rcs[o]), black_box(a))
    };
    let run_local = |i: usize| {
        let (o, a) = key(i);
        local.call(black_box(&rcs[o]), black_box(a))
    };
    let run_shared = |i: usize| {
        let (o, a) = key(i);
        shared.call(black_box(&arcs[o]), black_box(a))
    };
    for run in [&run_floor as &dyn Fn(usize) -> u64, &run_local, &run_shared] {
        assert_eq!(rounds(run), want); // fills
        assert_eq!(rounds(run), want); // hits
    }

    let mut group = c.benchmark_group("local_hits");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("refcell_hashmap", |b| b.iter(|| rounds(&run_floor)));
    group.bench_function("weakmemo_local", |b| b.iter(|| rounds(&run_local)));
    group.bench_function("weakmemo_registry", |b| b.iter(|| rounds(&run_shared)));
    group.finish();
}

/// Times `iters` batches of fresh misses, each on a cleared table.
fn batches(iters: u64, mut clear: impl FnMut(), mut miss: impl FnMut(u64) -> u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        clear();
        let start = Instant::now();
        let mut sum = 0_u64;
        for i in 0..BATCH {
            sum = sum.wrapping_add(miss(i));
        }
        total += start.elapsed();
        black_box(sum);
    }
    total
}

fn misses(c: &mut Criterion) {
    let rcs: Vec<Rc<u64>> = (0..OWNERS as u64).map(Rc::new).collect();
    let arcs: Vec<Arc<u64>> = (0..OWNERS as u64).map(Arc::new).collect();
    let floor = Floor::default();
    let local = LocalRegistry::new();
    let local = local.method(mix_rc);
    let shared = Registry::new();
    let shared = shared.method(mix_arc);
    let owner = |i: u64| (i as usize) % OWNERS;

    let mut group = c.benchmark_group("local_miss_insert");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("refcell_hashmap", |b| {
        b.iter_custom(|iters| {
            batches(
                iters,
                || floor.borrow_mut().clear(),
                |i| floor_get(&floor, black_box(&rcs[owner(i)]), black_box(i)),
            )
        });
    });
    group.bench_function("weakmemo_local", |b| {
        b.iter_custom(|iters| {
            batches(
                iters,
                || {
                    local.clear();
                },
                |i| local.call(black_box(&rcs[owner(i)]), black_box(i)),
            )
        });
    });
    group.bench_function("weakmemo_registry", |b| {
        b.iter_custom(|iters| {
            batches(
                iters,
                || {
                    shared.clear();
                },
                |i| shared.call(black_box(&arcs[owner(i)]), black_box(i)),
            )
        });
    });
    group.finish();
    assert_eq!(local.cache_info().currsize, BATCH as usize);
}

criterion_group! {
    name = benches;
    config = config();
    targets = hits, misses
}
criterion_main!(benches);
