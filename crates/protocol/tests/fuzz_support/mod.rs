//! A small coverage-free mutational fuzzer that runs on stable Rust
//! (cargo-fuzz needs nightly): seeds from a corpus directory kept in the
//! repo plus seeds built in code, mutated by bit flips, byte changes,
//! insertions, deletions, splices and interesting integers, fed to a
//! decoder that must return (never panic) and never request a single
//! allocation above a cap, checked by a counting global allocator.
//!
//! `FUZZ_ITERS` sets the number of mutated inputs per target (the test
//! command keeps it small; scripts/bench.sh runs many more), `FUZZ_SEED`
//! the random seed (printed on failure, so a failure replays).

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Counts the largest single allocation and the live bytes.
pub struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    LARGEST.fetch_max(size, Ordering::Relaxed);
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

/// xorshift64*: deterministic for a given seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: [u64; 10] = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0xffff_ffff, u64::MAX, 1 << 31, 1 << 40];

/// One to four random mutations of `input`, `other` for splices.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                out.drain(i..i + n);
            }
            4 if !other.is_empty() => {
                let i = rng.below(len + 1);
                let j = rng.below(other.len());
                let n = 1 + rng.below(other.len() - j);
                out.truncate(i);
                out.extend_from_slice(&other[j..j + n]);
            }
            5 => {
                // A varint-encoded interesting number (postcard, LEB128).
                let mut v = INTERESTING[rng.below(INTERESTING.len())];
                let i = rng.below(len + 1);
                let mut bytes = Vec::new();
                loop {
                    let b = (v & 0x7f) as u8;
                    v >>= 7;
                    if v == 0 {
                        bytes.push(b);
                        break;
                    }
                    bytes.push(b | 0x80);
                }
                out.splice(i..i, bytes);
            }
            6 if len > 0 => {
                out.truncate(rng.below(len));
            }
            _ if len > 1 => {
                // Duplicate a range.
                let i = rng.below(len);
                let n = 1 + rng.below(len - i);
                let copy = out[i..i + n].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, copy);
            }
            _ => out.push(rng.next() as u8),
        }
    }
    out.truncate(max_len);
    out
}

/// Every file in `dir` (sorted by name; empty if it does not exist).
pub fn corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files.iter().map(|p| std::fs::read(p).expect("corpus file readable")).collect()
}

/// What one target's run did.
#[derive(Debug)]
pub struct Outcome {
    pub inputs: u64,
    pub accepted: u64,
    pub largest_allocation: usize,
}

pub fn iterations(default: u64) -> u64 {
    std::env::var("FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn seed() -> u64 {
    std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_2026)
}

/// Runs `target` on every seed as is, then on `iters` mutations. Panics
/// (failing the test) with the offending input in hex when the target
/// panics or one allocation exceeds `alloc_cap` bytes.
pub fn run(
    name: &str,
    seeds: &[Vec<u8>],
    iters: u64,
    max_len: usize,
    alloc_cap: usize,
    target: impl Fn(&[u8]) -> bool,
) -> Outcome {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    // One target at a time: the allocation counters are process-wide.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let seed = seed();
    let mut rng = Rng::new(seed ^ name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))));
    let mut outcome = Outcome { inputs: 0, accepted: 0, largest_allocation: 0 };
    let check = |input: &[u8], outcome: &mut Outcome| {
        LARGEST.store(0, Ordering::Relaxed);
        let result = catch_unwind(AssertUnwindSafe(|| target(input)));
        let largest = LARGEST.load(Ordering::Relaxed);
        let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
        match result {
            Ok(accepted) => outcome.accepted += u64::from(accepted),
            Err(_) => panic!("{name}: the decoder panicked (FUZZ_SEED={seed}) on input {hex}"),
        }
        assert!(
            largest <= alloc_cap,
            "{name}: one allocation of {largest} bytes (cap {alloc_cap}, FUZZ_SEED={seed}) on input {hex}"
        );
        outcome.largest_allocation = outcome.largest_allocation.max(largest);
        outcome.inputs += 1;
    };
    for s in seeds {
        check(s, &mut outcome);
    }
    for _ in 0..iters {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, a, b, max_len);
        check(&input, &mut outcome);
    }
    println!("fuzz {name}: {outcome:?}");
    if let Ok(path) = std::env::var("FUZZ_REPORT") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("FUZZ_REPORT opens");
        writeln!(
            file,
            "{{\"target\":\"{name}\",\"inputs\":{},\"accepted\":{},\"largest_allocation\":{},\"cap\":{alloc_cap}}}",
            outcome.inputs, outcome.accepted, outcome.largest_allocation
        )
        .expect("FUZZ_REPORT written");
    }
    outcome
}
