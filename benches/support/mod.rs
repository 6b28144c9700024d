//! What the benches and the churn chart share.
#![allow(dead_code)] // each user takes part of it

pub mod keyset;

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

/// The header of a cold-key report (`cold_key` and `async_calls`), under its `title`.
pub fn cold_key_header(title: &str) {
    eprintln!();
    eprintln!("{title}");
    eprintln!(
        "| contender | executions per round, mean | max | wall time per round, mean | \
         min | max | waited per round | discarded per round |"
    );
    eprintln!("|---|---:|---:|---:|---:|---:|---:|---:|");
}

/// One contender's line of a cold-key report, over `rounds` calls of `round`, which
/// runs a round and returns its wall time and how many times the method ran;
/// `counters` reads a registry's (waited, discarded), where the contender has one.
///
/// # Panics
///
/// If a contender with single flight ran the method more than once in a round.
pub fn cold_key_line(
    name: &str,
    single_flight: bool,
    counters: Option<&dyn Fn() -> (u64, u64)>,
    rounds: usize,
    mut round: impl FnMut() -> (Duration, usize),
) {
    let before = counters.map(|read| read());
    let (times, executions): (Vec<f64>, Vec<usize>) = (0..rounds)
        .map(|_| {
            let (elapsed, runs) = round();
            (elapsed.as_secs_f64() * 1e3, runs)
        })
        .unzip();
    let per_round = |n: u64| format!("{:.2}", n as f64 / rounds as f64);
    let (waited, discarded) = match (counters, before) {
        (Some(read), Some((waited, discarded))) => {
            let (w, d) = read();
            (per_round(w - waited), per_round(d - discarded))
        }
        _ => ("n/a".to_string(), "n/a".to_string()),
    };
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let runs: Vec<f64> = executions.iter().map(|&n| n as f64).collect();
    eprintln!(
        "| {name} | {:.2} | {} | {:.3} ms | {:.3} ms | {:.3} ms | {waited} | {discarded} |",
        mean(&runs),
        executions.iter().max().unwrap(),
        mean(&times),
        times.iter().copied().fold(f64::INFINITY, f64::min),
        times.iter().copied().fold(0.0, f64::max),
    );
    if single_flight {
        assert!(
            executions.iter().all(|&n| n == 1),
            "{name}: single flight ran the method more than once in a round"
        );
    }
}
