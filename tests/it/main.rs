//! The integration tests, one module per subject, built as one test binary: one link
//! instead of one per file (run one subject with `cargo test --test it NAME::`).
//!
//! `common` holds the shared helpers and the binary's global allocator, which counts
//! allocations per thread (`common::alloc`). Tests that change the global registry's
//! settings, and tests that use the global registry, take `common::global_registry()`.

mod address_reuse;
mod async_calls;
mod books;
mod borrowed_hits;
mod bounds;
mod collisions;
mod common;
mod expiry;
mod free_on_drop;
mod idle_sweep;
mod local;
mod memo;
mod model;
mod owners;
mod owners_freed;
mod panics;
mod purge_interval;
mod recursion;
mod registry_bound;
mod reliability;
mod removal;
mod removal_model;
mod single_flight;
mod threads;
mod weak_table_model;
