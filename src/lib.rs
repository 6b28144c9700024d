//! weakmemo (docs to come).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod directory;
mod identity;
mod lock_scope;
mod method_cache;
mod registry;
mod stats;

pub use registry::{DEFAULT_PURGE_INTERVAL, PURGE_STEP_BUCKETS, Registry, RegistryBuilder, global};
pub use stats::Stats;
