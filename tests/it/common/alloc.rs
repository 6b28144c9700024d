//! The test binary's global allocator: `System`, with counts kept per thread, so that a
//! measurement on one thread is not disturbed by the tests running on the others.
//!
//! A binary has one global allocator, and three modules measure through this one:
//!
//! - [`counting`] runs a closure with this thread's flag raised and returns how many
//!   allocations it made meanwhile ([`counted`] reads that count, which only moves
//!   while the flag is up): `borrowed_hits`;
//! - [`allocations`]: every allocation this thread has made, to take differences of:
//!   `memo`;
//! - [`held_here`]: the bytes this thread allocated and has not freed: `reliability`.
//!
//! `alloc`, `alloc_zeroed` and `realloc` each count as one allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// `System`, counting this thread's allocations and bytes held.
struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

std::thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNTED: Cell<usize> = const { Cell::new(0) };
    static HELD: Cell<isize> = const { Cell::new(0) };
}

/// Notes one allocation on this thread.
fn note_allocation() {
    // `try_with`: the allocator may run while this thread's locals are torn down.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNTED.try_with(|count| count.set(count.get() + 1));
    }
}

/// Adds `delta` to the bytes this thread holds.
fn account(delta: isize) {
    let _ = HELD.try_with(|held| held.set(held.get() + delta));
}

// SAFETY: every call is forwarded to `System` unchanged; the counting touches only
// const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            account(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            account(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded with the caller's guarantees.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        moved
    }
}

/// Runs `work` and returns what it returned and how many allocations this thread made
/// meanwhile.
pub fn counting<R>(work: impl FnOnce() -> R) -> (R, usize) {
    COUNTED.set(0);
    COUNTING.set(true);
    let result = work();
    COUNTING.set(false);
    (result, COUNTED.get())
}

/// The allocations counted by the last (or the running) [`counting`] on this thread.
pub fn counted() -> usize {
    COUNTED.get()
}

/// Every allocation this thread has made so far.
pub fn allocations() -> usize {
    ALLOCATIONS.get()
}

/// Bytes this thread allocated and did not free, so far.
pub fn held_here() -> isize {
    HELD.get()
}
