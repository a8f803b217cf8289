//! Benchmark tools for Rapport (see `docs/BENCHMARKS.md` and
//! `scripts/bench.sh`):
//!
//! - `rapport-bench-gen` generates a realistic workspace from a fixed seed
//!   ([`generate`]) and writes each record's Automerge bytes and materialised
//!   row to a data file ([`format`]) that the browser loader
//!   (`tests/bench/loader.mjs`) writes into the app's IndexedDB.
//! - `rapport-relay-load` starts the relay on loopback and measures how many
//!   idle WebSocket clients it holds, and at what memory, and how many
//!   envelopes per second it stores.

pub mod format;
pub mod generate;
pub mod pools;
pub mod rng;

/// The `p`-th percentile (0–100) of `values`, nearest rank; `NaN` when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}
