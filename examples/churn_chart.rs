//! Draws `docs/churn.svg`: process memory while a million owners are created, used
//! through a memoized method and dropped, for a naive cache and for weakmemo.
//!
//! ```text
//! cargo run --release --example churn_chart
//! ```
//!
//! Each scenario runs in a child process of its own (this program started again with
//! `--child NAME`), so that memory one scenario leaves behind cannot pollute the other's
//! VmRSS. The child prints one sample line every `SAMPLE_EVERY` iterations: iteration,
//! VmRSS, live owners (counted in `Drop`, exact) and entries in the cache. The parent
//! prints a table and writes the SVG by hand.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use hashbrown::HashMap;
use parking_lot::Mutex;

#[path = "../benches/support/mod.rs"]
mod support;
use support::rss_kib;

const ITERATIONS: u64 = 1_000_000;
const SAMPLE_EVERY: u64 = 10_000;
const PAYLOAD: usize = 256;
const ARG: u64 = 7;

static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Owner {
    id: u64,
    payload: [u8; PAYLOAD],
}

impl Drop for Owner {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Relaxed);
    }
}

fn method(owner: &Arc<Owner>, &k: &u64) -> u64 {
    owner.id * 1000 + k + u64::from(owner.payload[PAYLOAD - 1] ^ owner.id as u8)
}

/// Runs one scenario and prints `iteration rss_kib live entries` lines.
fn child(scenario: &str) {
    type NaiveMap = HashMap<(usize, u64), (Arc<Owner>, u64)>;
    let naive: Mutex<NaiveMap> = Mutex::default();
    let registry = weakmemo::Registry::new();
    let call = |owner: &Arc<Owner>| -> u64 {
        match scenario {
            "naive" => {
                let key = (Arc::as_ptr(owner) as usize, ARG);
                if let Some((_, value)) = naive.lock().get(&key) {
                    return *value;
                }
                let value = method(owner, &ARG);
                naive.lock().insert(key, (owner.clone(), value));
                value
            }
            "weakmemo" => registry.method(method).call(owner, ARG),
            _ => panic!("unknown scenario {scenario}"),
        }
    };
    let entries = || match scenario {
        "naive" => naive.lock().len(),
        _ => registry.stats().entries,
    };
    let mut wrong = 0u64;
    println!("0 {} 0 0", rss_kib());
    for id in 0..ITERATIONS {
        LIVE.fetch_add(1, Relaxed);
        let owner = Arc::new(Owner {
            id,
            payload: [id as u8; PAYLOAD],
        });
        let expected = id * 1000 + ARG;
        wrong += u64::from(call(&owner) != expected);
        wrong += u64::from(call(&owner) != expected);
        drop(owner);
        if (id + 1) % SAMPLE_EVERY == 0 {
            println!(
                "{} {} {} {}",
                id + 1,
                rss_kib(),
                LIVE.load(Relaxed),
                entries()
            );
        }
    }
    println!("wrong {wrong}");
}

struct Sample {
    iteration: u64,
    rss_mib: f64,
    live: u64,
    entries: u64,
}

fn run_child(scenario: &str) -> (Vec<Sample>, u64) {
    let exe = std::env::current_exe().expect("own path");
    let output = Command::new(exe)
        .args(["--child", scenario])
        .output()
        .expect("child runs");
    assert!(
        output.status.success(),
        "child {scenario} failed: {output:?}"
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let mut samples = Vec::new();
    let mut wrong = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields[0] == "wrong" {
            wrong = Some(fields[1].parse().unwrap());
            continue;
        }
        let n: Vec<u64> = fields.iter().map(|f| f.parse().unwrap()).collect();
        samples.push(Sample {
            iteration: n[0],
            rss_mib: n[1] as f64 / 1024.0,
            live: n[2],
            entries: n[3],
        });
    }
    (samples, wrong.expect("child reported wrong values"))
}

/// A round axis maximum above `value`: 1, 2 or 5 times a power of ten.
fn nice_max(value: f64) -> f64 {
    let mut step = 1.0;
    loop {
        for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0] {
            if m * step >= value {
                return m * step;
            }
        }
        step *= 10.0;
    }
}

fn svg(series: &[(&str, &str, &[Sample], String)]) -> String {
    let (w, h) = (820.0, 480.0);
    let (left, right, top, bottom) = (80.0, 40.0, 64.0, 90.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let peak = series
        .iter()
        .flat_map(|(_, _, s, _)| s.iter().map(|s| s.rss_mib))
        .fold(0.0, f64::max);
    let y_max = nice_max(peak * 1.05);
    let x = |i: u64| left + pw * i as f64 / ITERATIONS as f64;
    let y = |mib: f64| top + ph - ph * mib / y_max;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="26" text-anchor="middle" font-size="17" font-weight="bold">Memory under churn: naive memo table vs weakmemo</text>"#,
        w / 2.0
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="46" text-anchor="middle" font-size="12.5" fill="#333">1,000,000 times: create an owner (Arc, 256-byte payload), call a memoized method twice, drop the owner</text>"##,
        w / 2.0
    );
    // Grid and y ticks.
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        let yy = y(v);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.0}</text>"##,
            left + pw,
            left - 8.0,
            yy + 4.0
        );
    }
    // X ticks.
    for i in 0..=5 {
        let it = ITERATIONS / 5 * i;
        let xx = x(it);
        let label = if it == 0 {
            "0".to_string()
        } else {
            format!("{}k", it / 1000)
        };
        let _ = writeln!(
            out,
            r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#444"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            top + ph,
            top + ph + 5.0,
            top + ph + 20.0
        );
    }
    // Axes and their labels.
    let _ = writeln!(
        out,
        r##"<path d="M{left},{top} V{:.1} H{:.1}" fill="none" stroke="#444"/>"##,
        top + ph,
        left + pw
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">iterations (owners created and dropped)</text>"#,
        left + pw / 2.0,
        top + ph + 42.0
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(22,{:.1}) rotate(-90)" text-anchor="middle">process memory, VmRSS (MiB)</text>"#,
        top + ph / 2.0
    );
    // Series first, then the legend on a white box above them.
    for (_, color, samples, _) in series {
        let points: Vec<String> = samples
            .iter()
            .map(|s| format!("{:.1},{:.1}", x(s.iteration), y(s.rss_mib)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2.5" stroke-linejoin="round"/>"#,
            points.join(" ")
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{:.1}" y="{:.1}" width="560" height="{:.1}" fill="white" fill-opacity="0.92" stroke="#bbb"/>"##,
        left + 10.0,
        top + 6.0,
        40.0 * series.len() as f64 + 4.0
    );
    for (n, (name, color, _, note)) in series.iter().enumerate() {
        let ly = top + 22.0 + 40.0 * n as f64;
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-weight="bold">{name}</text><text x="{:.1}" y="{:.1}" font-size="11.5" fill="#333">{note}</text>"##,
            left + 20.0,
            left + 50.0,
            left + 58.0,
            ly + 4.5,
            left + 58.0,
            ly + 20.0
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{left}" y="{:.1}" font-size="11.5" fill="#555">VmRSS of a separate child process per scenario, sampled every {} iterations; live owners counted exactly in Drop.</text>"##,
        h - 14.0,
        SAMPLE_EVERY
    );
    let _ = writeln!(
        out,
        r##"<text x="{left}" y="{:.1}" font-size="11.5" fill="#555">Command: cargo run --release --example churn_chart</text>"##,
        h - 30.0
    );
    out.push_str("</svg>\n");
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--child" {
        child(&args[2]);
        return;
    }
    let (naive, naive_wrong) = run_child("naive");
    let (weak, weak_wrong) = run_child("weakmemo");
    assert_eq!((naive_wrong, weak_wrong), (0, 0), "wrong values");

    println!(
        "| scenario | peak VmRSS (MiB) | VmRSS at end (MiB) | peak live owners | live owners at end | peak entries | entries at end |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, samples) in [
        ("naive Mutex<HashMap> holding Arc", &naive),
        ("weakmemo", &weak),
    ] {
        let last = samples.last().expect("samples");
        println!(
            "| {name} | {:.1} | {:.1} | {} | {} | {} | {} |",
            samples.iter().map(|s| s.rss_mib).fold(0.0, f64::max),
            last.rss_mib,
            samples.iter().map(|s| s.live).max().unwrap_or(0),
            last.live,
            samples.iter().map(|s| s.entries).max().unwrap_or(0),
            last.entries,
        );
    }
    let weak_last = weak.last().expect("samples");
    let naive_last = naive.last().expect("samples");
    assert_eq!(weak_last.live, 0, "weakmemo kept owners alive");
    assert_eq!(
        naive_last.live, ITERATIONS,
        "the naive cache should keep every owner"
    );

    let note = |s: &[Sample]| {
        let last = s.last().expect("samples");
        format!(
            "owners alive at the end: {}; entries held at the end: {}, at peak: {}",
            group_thousands(last.live),
            group_thousands(last.entries),
            group_thousands(s.iter().map(|s| s.entries).max().unwrap_or(0)),
        )
    };
    let chart = svg(&[
        (
            "naive Mutex&lt;HashMap&gt; holding an Arc clone",
            "#d62728",
            &naive,
            note(&naive),
        ),
        ("weakmemo", "#1f77b4", &weak, note(&weak)),
    ]);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/churn.svg");
    std::fs::write(path, chart).expect("write docs/churn.svg");
    println!("\nwrote {path}");
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
