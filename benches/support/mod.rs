//! What the benches and the churn chart share.
#![allow(dead_code)] // each user takes part of it

use std::time::Duration;

use criterion::Criterion;

/// Short runs, because this machine has 2 noisy cores: ratios come from contenders
/// measured side by side, not from long runs.
pub fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_millis(2500))
        .without_plots()
}

/// The process's resident memory in KiB, from /proc/self/status (0 where unavailable).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
