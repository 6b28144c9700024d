//! A hit allocates nothing, whatever form the arguments take.
//!
//! The binary's counting global allocator (`common::alloc`, wrapping `System`) counts
//! the allocations this thread makes while a thread-local flag is set, so the other test
//! threads do not interfere.
//! Each lookup form is stored by one miss (which must allocate: the counter works), then
//! hit 1,000 times with exactly 0 allocations: a `&str` key, `Parts((&str, u32))`,
//! `Borrowed(&MyKey)`, a `&[u8]` key, a plain `u64`, an owner-argument tuple, an
//! owner-less function, and `get` (hit or miss). Values are `Copy` numbers, so that the
//! clone a hit returns allocates nothing either.
//!
//! A method takes `&A`, `A` being the owned key its table stores (`&String`, `&Vec<u8>`,
//! `&PathBuf`), which is what clippy's `ptr_arg` objects to: allowed here.
#![allow(clippy::ptr_arg)]

use std::ffi::{CStr, CString, OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use crate::common::alloc::{counted, counting};
use weakmemo::{Borrowed, Parts, Registry};

const HITS: usize = 1_000;

/// Makes `HITS` hits with `hit`, each checked to return `expected`, and asserts that
/// they allocated nothing at all.
fn assert_hits_allocate_nothing<V: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: V,
    mut hit: impl FnMut() -> V,
) {
    let (wrong, count) = counting(|| (0..HITS).filter(|_| hit() != expected).count());
    assert_eq!(wrong, 0, "{what}: wrong values");
    assert_eq!(count, 0, "{what}: {count} allocations in {HITS} hits");
}

/// Stores with `miss`, asserting that it allocated (the counter works), then hits.
fn miss_then_hits<V: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: V,
    miss: impl FnOnce() -> V,
    hit: impl FnMut() -> V,
) {
    let (value, count) = counting(miss);
    assert_eq!(value, expected, "{what}: the miss");
    assert!(
        count > 0,
        "{what}: the miss allocated nothing; is the counter counting?"
    );
    assert_hits_allocate_nothing(what, expected, hit);
}

fn length(site: &Arc<u64>, name: &String) -> usize {
    name.len() + **site as usize
}

/// The counter counts: a `String` made while counting is one allocation, and nothing
/// is counted while the flag is down.
#[test]
fn the_counter_counts_this_threads_allocations_only_while_counting() {
    let (text, count) = counting(|| String::from("some text"));
    assert_eq!(count, 1);
    let ((), count) = counting(|| {});
    assert_eq!(count, 0);
    drop(text);
    let before = counted();
    let boxed = Box::new(5);
    assert_eq!(counted(), before, "not counting");
    drop(boxed);
}

/// A `&str` looking up a `String` key: the miss makes the `String` (allocates); a hit
/// compares in place and allocates nothing.
#[test]
fn a_str_key_hit_allocates_nothing() {
    let cache = Registry::new();
    let site = Arc::new(1);
    let name = String::from("a name long enough to be on the heap");
    let expected = name.len() + 1;
    miss_then_hits(
        "&str",
        expected,
        || cache.method(length).call(&site, name.as_str()),
        || cache.method(length).call(&site, name.as_str()),
    );
}

fn greet(site: &Arc<u64>, (name, times): &(String, u32)) -> usize {
    name.len() * *times as usize + **site as usize
}

/// `Parts((&str, u32))` looking up a `(String, u32)` key: a hit allocates nothing.
#[test]
fn a_parts_key_hit_allocates_nothing() {
    let cache = Registry::new();
    let site = Arc::new(2);
    let name = String::from("parted");
    miss_then_hits(
        "Parts((&str, u32))",
        6 * 3 + 2,
        || cache.method(greet).call(&site, Parts((name.as_str(), 3))),
        || cache.method(greet).call(&site, Parts((name.as_str(), 3))),
    );
}

/// A key type whose clone allocates (it holds a `String` and a `Vec`).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct MyKey {
    table: String,
    columns: Vec<u32>,
}

fn query(db: &Arc<u64>, key: &MyKey) -> usize {
    key.table.len() + key.columns.len() + **db as usize
}

/// `Borrowed(&MyKey)`: the miss clones the key (allocates); a hit does not.
#[test]
fn a_borrowed_key_hit_allocates_nothing() {
    let cache = Registry::new();
    let db = Arc::new(3);
    let key = MyKey {
        table: "users".into(),
        columns: vec![1, 2, 3],
    };
    miss_then_hits(
        "Borrowed(&MyKey)",
        5 + 3 + 3,
        || cache.method(query).call(&db, Borrowed(&key)),
        || cache.method(query).call(&db, Borrowed(&key)),
    );
}

fn checksum(file: &Arc<u64>, bytes: &Vec<u8>) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum::<u64>() + **file
}

/// A `&[u8]` looking up a `Vec<u8>` key: a hit allocates nothing.
#[test]
fn a_byte_slice_key_hit_allocates_nothing() {
    let cache = Registry::new();
    let file = Arc::new(4);
    let bytes: Vec<u8> = (0..=255).collect();
    let expected = (0..=255u64).sum::<u64>() + 4;
    miss_then_hits(
        "&[u8]",
        expected,
        || cache.method(checksum).call(&file, &bytes[..]),
        || cache.method(checksum).call(&file, &bytes[..]),
    );
}

fn scaled(n: &Arc<u64>, &k: &u64) -> u64 {
    **n * k
}

/// A plain `u64` key: a hit allocates nothing.
#[test]
fn a_plain_u64_key_hit_allocates_nothing() {
    let cache = Registry::new();
    let n = Arc::new(5);
    miss_then_hits(
        "u64",
        35,
        || cache.method(scaled).call(&n, 7),
        || cache.method(scaled).call(&n, 7),
    );
}

fn distance((a, b): (&Arc<u64>, &Arc<u64>), &k: &u32) -> u64 {
    a.abs_diff(*b.as_ref()) * u64::from(k)
}

/// An owner-argument tuple: a hit allocates nothing (no `Weak` is made on a hit).
#[test]
fn an_owner_tuple_hit_allocates_nothing() {
    let cache = Registry::new();
    let (a, b) = (Arc::new(10), Arc::new(3));
    miss_then_hits(
        "(&Arc, &Arc)",
        14,
        || cache.method(distance).call((&a, &b), 2),
        || cache.method(distance).call((&a, &b), 2),
    );
    assert_eq!(Arc::weak_count(&b), 1, "one Weak, made by the miss");
}

fn shout((): (), word: &String) -> usize {
    word.len() * 2
}

/// An owner-less function looked up by `&str`: a hit allocates nothing.
#[test]
fn an_ownerless_str_key_hit_allocates_nothing() {
    let cache = Registry::new();
    miss_then_hits(
        "() with &str",
        10,
        || cache.method(shout).call((), "hello"),
        || cache.method(shout).call((), "hello"),
    );
}

/// `get(&o, f, &"x")` allocates nothing, whether it finds the entry or not (it never
/// makes the key owned).
#[test]
fn get_with_a_str_allocates_nothing_on_a_hit_or_a_miss() {
    let cache = Registry::new();
    let site = Arc::new(1);
    assert_eq!(cache.method(length).call(&site, "x"), 2);
    assert_hits_allocate_nothing("get hit", Some(2), || cache.method(length).get(&site, &"x"));
    assert_hits_allocate_nothing("get miss", None, || cache.method(length).get(&site, &"y"));
    let other = Arc::new(1);
    assert_hits_allocate_nothing("get of another owner", None, || {
        cache.method(length).get(&other, &"x")
    });
    let stats = cache.stats();
    assert_eq!(stats.hits, HITS as u64);
    assert_eq!(stats.misses, 1 + 2 * HITS as u64);
}

/// Hits still allocate nothing when every one of them runs a lazy purge step
/// (`purge_interval(1)`) over tables with nothing dead in them.
#[test]
fn hits_that_run_purge_steps_allocate_nothing() {
    let cache = Registry::builder().purge_interval(1).build();
    let site = Arc::new(1);
    for k in 0..100 {
        cache.method(scaled).call(&site, k);
    }
    let name = String::from("stepping");
    assert_eq!(cache.method(length).call(&site, name.as_str()), 9);
    assert_hits_allocate_nothing("&str, stepping", 9, || {
        cache.method(length).call(&site, name.as_str())
    });
    assert_hits_allocate_nothing("u64, stepping", 42, || cache.method(scaled).call(&site, 42));
    assert!(cache.stats().purge_steps >= 2 * HITS as u64);
}

fn title(site: &Arc<u64>, &k: &u64) -> String {
    format!("page {k} of site {site}")
}

/// A negative control: a hit whose value is a `String` allocates its clone, once per
/// hit, so the counter does see allocations made inside a hit.
#[test]
fn a_hit_that_clones_a_string_value_is_counted() {
    let cache = Registry::new();
    let site = Arc::new(1);
    let first = cache.method(title).call(&site, 2);
    let (wrong, count) = counting(|| {
        (0..HITS)
            .filter(|_| cache.method(title).call(&site, 2) != first)
            .count()
    });
    assert_eq!(wrong, 0);
    assert_eq!(count, HITS, "one allocation per hit: the value's clone");
    assert_eq!(cache.stats().hits, HITS as u64);
}

/// A key whose clones are counted, to show which operations make a key owned.
#[derive(Debug, Hash, PartialEq, Eq)]
struct Counted(String);

static CLONES: AtomicUsize = AtomicUsize::new(0);

impl Clone for Counted {
    fn clone(&self) -> Self {
        CLONES.fetch_add(1, SeqCst);
        Self(self.0.clone())
    }
}

fn counted_len(site: &Arc<u64>, key: &Counted) -> usize {
    key.0.len() + **site as usize
}

/// `invalidate(&o, f, &"x")` finds the `String` entry by the `&str` and never makes
/// the key owned: an `invalidate` that finds nothing allocates nothing, and one that
/// removes an entry allocates at most once (the list of removals it settles after
/// unlocking, whatever the key). A `Borrowed` key is cloned by the miss only.
#[test]
fn invalidate_with_a_borrowed_key_converts_nothing() {
    let cache = Registry::new();
    let site = Arc::new(1);
    assert_eq!(cache.method(length).call(&site, "xyz"), 4);
    let (removed, count) = counting(|| cache.method(length).invalidate(&site, &"abc"));
    assert!(!removed);
    assert_eq!(count, 0, "an invalidate that finds nothing");
    let (removed, count) = counting(|| cache.method(length).invalidate(&site, &"xyz"));
    assert!(removed);
    assert!(count <= 1, "{count} allocations to remove one entry");
    assert_eq!(cache.stats().entries, 0);

    let key = Counted("counted".into());
    assert_eq!(cache.method(counted_len).call(&site, Borrowed(&key)), 8);
    assert_eq!(CLONES.load(SeqCst), 1, "the miss made the key owned");
    assert_eq!(cache.method(counted_len).call(&site, Borrowed(&key)), 8);
    assert_eq!(
        cache.method(counted_len).get(&site, &Borrowed(&key)),
        Some(8)
    );
    assert!(cache.method(counted_len).invalidate(&site, &Borrowed(&key)));
    assert_eq!(
        CLONES.load(SeqCst),
        1,
        "no hit, get or invalidate cloned it"
    );
}

static FORM_RUNS: AtomicUsize = AtomicUsize::new(0);

fn of_path(n: &Arc<u64>, path: &PathBuf) -> usize {
    FORM_RUNS.fetch_add(1, SeqCst);
    path.as_os_str().len() + **n as usize
}

fn of_os(n: &Arc<u64>, text: &OsString) -> usize {
    FORM_RUNS.fetch_add(1, SeqCst);
    text.len() + **n as usize
}

fn of_c(n: &Arc<u64>, text: &CString) -> usize {
    FORM_RUNS.fetch_add(1, SeqCst);
    text.as_bytes().len() + **n as usize
}

fn of_words(n: &Arc<u64>, words: &Vec<String>) -> usize {
    FORM_RUNS.fetch_add(1, SeqCst);
    words.len() + **n as usize
}

fn of_parts(n: &Arc<u64>, (path, words, k): &(PathBuf, Vec<u32>, u8)) -> usize {
    FORM_RUNS.fetch_add(1, SeqCst);
    path.as_os_str().len() + words.len() + usize::from(*k) + **n as usize
}

/// Every borrowed form hashes and compares as its owned form: an entry stored by the
/// owned form is hit by the borrowed one, with no allocation and no run, and the other
/// way round: `&Path`, `&OsStr`, `&CStr`, `&[String]`, `Borrowed(&[u32])` inside
/// `Parts`.
#[test]
fn every_borrowed_form_finds_what_its_owned_form_stored() {
    let cache = Registry::new();
    let n = Arc::new(1);
    let runs = || FORM_RUNS.load(SeqCst);

    cache.method(of_path).call(&n, PathBuf::from("/a/b"));
    let ((a, b), count) = counting(|| {
        (
            cache.method(of_path).call(&n, Path::new("/a/b")),
            cache.method(of_path).get(&n, &Path::new("/a/b")),
        )
    });
    assert_eq!((a, b, count), (5, Some(5), 0));
    cache.method(of_path).call(&n, Path::new("/c"));
    assert_eq!(cache.method(of_path).call(&n, PathBuf::from("/c")), 3);

    cache.method(of_os).call(&n, OsString::from("os"));
    let (a, count) = counting(|| cache.method(of_os).call(&n, OsStr::new("os")));
    assert_eq!((a, count), (3, 0));

    cache.method(of_c).call(&n, CString::new("cc").unwrap());
    let text: &CStr = c"cc";
    let (a, count) = counting(|| cache.method(of_c).call(&n, text));
    assert_eq!((a, count), (3, 0));
    cache.method(of_c).call(&n, c"dd");
    assert_eq!(cache.method(of_c).call(&n, CString::new("dd").unwrap()), 3);

    let words = vec!["one".to_string(), "two".to_string()];
    cache.method(of_words).call(&n, words.clone());
    let (a, count) = counting(|| cache.method(of_words).call(&n, &words[..]));
    assert_eq!((a, count), (3, 0));

    let numbers = [1_u32, 2, 3];
    cache
        .method(of_parts)
        .call(&n, (PathBuf::from("/p"), numbers.to_vec(), 4));
    let (a, count) = counting(|| {
        cache
            .method(of_parts)
            .call(&n, Parts((Path::new("/p"), Borrowed(&numbers[..]), 4_u8)))
    });
    assert_eq!((a, count), (2 + 3 + 4 + 1, 0));
    let (a, count) = counting(|| {
        cache
            .method(of_parts)
            .call(&n, Parts((Path::new("/p"), &numbers[..], 4_u8)))
    });
    assert_eq!((a, count), (10, 0));

    assert_eq!(runs(), 7, "each key ran once, whatever form looked it up");
    assert_eq!(cache.stats().entries, 7);
}

async fn fetch(site: &Arc<u64>, name: &String) -> usize {
    name.len() + **site as usize
}

/// Polls `future` once, with a waker that does nothing, expecting it ready.
fn ready_at_first_poll<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("a hit was not ready at its first poll"),
    }
}

/// A `call_async` hit, by `&str`, is answered when the call is made: ready at its first
/// poll, with no boxed computation, so it allocates nothing either.
#[test]
fn an_async_hit_allocates_nothing() {
    let cache = Registry::new();
    let site = Arc::new(1);
    let (value, count) =
        counting(|| ready_at_first_poll(cache.method(fetch).call_async(&site, "page")));
    assert_eq!(value, 5);
    assert!(count > 0, "the miss allocated nothing");
    assert_hits_allocate_nothing("call_async by &str", 5, || {
        ready_at_first_poll(cache.method(fetch).call_async(&site, "page"))
    });
}

fn halve(n: &Arc<u64>, &k: &u64) -> Result<u64, String> {
    if k % 2 == 0 {
        Ok(**n * k / 2)
    } else {
        Err(format!("{k} is odd"))
    }
}

fn four_ways((a, b, c, d): (&Arc<u64>, &Arc<u64>, &Arc<u64>, &Arc<u64>), &(): &()) -> u64 {
    **a + **b + **c + **d
}

/// A `try_call` hit of an `Ok` value, and a hit of a four-owner tuple, allocate nothing.
#[test]
fn try_call_and_four_owner_hits_allocate_nothing() {
    let cache = Registry::new();
    let n = Arc::new(3);
    miss_then_hits(
        "try_call",
        Ok(6),
        || cache.method(halve).try_call(&n, 4),
        || cache.method(halve).try_call(&n, 4),
    );
    let [a, b, c, d] = [1, 2, 3, 4].map(Arc::new);
    miss_then_hits(
        "four owners",
        10,
        || cache.method(four_ways).call((&a, &b, &c, &d), ()),
        || cache.method(four_ways).call((&a, &b, &c, &d), ()),
    );
}
