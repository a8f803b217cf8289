//! Fuzz targets for the decoders of stored and received bytes: Automerge
//! chunks and snapshots as stored in IndexedDB or pulled from the relay
//! (`chunks::check`, `repo::hydrate`, `repo::materialise`,
//! `privacy::epoch::classify`) and stored rows (`storage::decode_row`).
//! Same stable mutational runner as the protocol's (its
//! tests/fuzz_support), over the corpora in `fuzz/corpus/<target>/` and
//! seeds built here; no panic, and no single allocation above a cap.
//! `FUZZ_ITERS` inputs per target (default 1,000; scripts/bench.sh runs
//! more).

#[path = "../../protocol/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::PathBuf;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use fuzz_support::{corpus, iterations, run, Counting};
use rapport_core::privacy::epoch::classify;
use rapport_core::repo::{hydrate, materialise};
use rapport_core::storage::decode_row;

#[global_allocator]
static ALLOC: Counting = Counting;

const MAX_INPUT: usize = 64 * 1024;
/// No single allocation above this for an input of at most [`MAX_INPUT`]
/// bytes: a declared length or a compressed size must not be trusted.
const ALLOC_CAP: usize = 16 * 1024 * 1024;
const DEFAULT_ITERS: u64 = 1_000;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

/// A contact-like document: its snapshot and its change chunks (one small,
/// one large enough that Automerge compresses it).
fn sample() -> (AutoCommit, Vec<u8>, Vec<Vec<u8>>) {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "kind", "contact").expect("put");
    doc.put(ROOT, "name", "Ada Lovelace").expect("put");
    let first = doc.save_incremental();
    let emails = doc.put_object(ROOT, "emails", ObjType::List).expect("list");
    for i in 0..40 {
        doc.insert(&emails, i, format!("ada{i}@example.org").as_str()).expect("insert");
    }
    doc.put(ROOT, "notes", "x".repeat(600).as_str()).expect("put");
    let second = doc.save_incremental();
    let snapshot = doc.save();
    (doc, snapshot, vec![first, second])
}

#[test]
fn stored_chunks_never_panic_or_over_allocate() {
    let (_, snapshot, chunks) = sample();
    let mut seeds = chunks.clone();
    seeds.push(snapshot);
    seeds.extend(corpus(&corpus_dir("stored_chunk")));
    let outcome = run("stored_chunk", &seeds, iterations(DEFAULT_ITERS), MAX_INPUT, ALLOC_CAP, |input| {
        match hydrate(None, &[input.to_vec()]) {
            Ok(doc) => {
                let _ = materialise(&doc);
                true
            }
            Err(_) => false,
        }
    });
    assert!(outcome.accepted >= 2, "the valid seeds load: {outcome:?}");
}

#[test]
fn stored_snapshots_never_panic_or_over_allocate() {
    let (_, snapshot, chunks) = sample();
    let mut seeds = vec![snapshot];
    seeds.extend(chunks);
    seeds.extend(corpus(&corpus_dir("stored_snapshot")));
    let outcome =
        run("stored_snapshot", &seeds, iterations(DEFAULT_ITERS), MAX_INPUT, ALLOC_CAP, |input| {
            match hydrate(Some(input), &[]) {
                Ok(doc) => {
                    let _ = materialise(&doc);
                    true
                }
                Err(_) => false,
            }
        });
    assert!(outcome.accepted >= 2, "the valid seeds load: {outcome:?}");
}

#[test]
fn received_bytes_are_classified_without_panic_or_over_allocation() {
    let (doc, snapshot, chunks) = sample();
    let mut seeds = chunks;
    seeds.push(snapshot);
    seeds.extend(corpus(&corpus_dir("received_change")));
    let outcome = run("received_change", &seeds, iterations(DEFAULT_ITERS), MAX_INPUT, ALLOC_CAP, |input| {
        classify(&doc, input).is_ok()
    });
    assert!(outcome.accepted >= 2, "the valid seeds are classified: {outcome:?}");
}

#[test]
fn stored_rows_never_panic_or_over_allocate() {
    let mut seeds = vec![br#"{"id":"0192f0c4-0000-7000-8000-000000000001","kind":"contact","title":"Ada","subtitle":"CEO, Acme","columns":{"email":"ada@example.org"},"tags":["vip"],"updated_at":1765000000000,"deleted":false}"#.to_vec()];
    seeds.extend(corpus(&corpus_dir("stored_row")));
    let outcome = run("stored_row", &seeds, iterations(DEFAULT_ITERS), 8192, ALLOC_CAP, |input| {
        decode_row(&String::from_utf8_lossy(input)).is_ok()
    });
    assert!(outcome.accepted >= 1, "the valid seed decodes: {outcome:?}");
}
