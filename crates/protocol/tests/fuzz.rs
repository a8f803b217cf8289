//! Fuzz targets for the protocol's decoders of outside input: client and
//! server wire frames (with the envelopes they carry opened) and invite
//! links. A stable mutational runner (tests/fuzz_support) over the corpora
//! in `fuzz/corpus/<target>/` and seeds built here; no panic, and no single
//! allocation above a cap. `FUZZ_ITERS` inputs per target (default 3,000;
//! scripts/bench.sh runs more). A failing input is kept in the corpus as a
//! regression case.

mod fuzz_support;

use std::path::PathBuf;

use fuzz_support::{corpus, iterations, run, Counting};
use rapport_protocol::{
    ChallengeNonce, ClientMessage, EntryKind, ErrorCode, Incarnation, InviteLink, Keys, LogEntry, Seq, ServerLimits,
    ServerMessage, WireError, WorkspaceId, WorkspaceSecret,
};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Frames are at most a few MiB on the wire; fuzz inputs stay small.
const MAX_INPUT: usize = 64 * 1024;
/// No decoder may ask for more than this in one allocation for an input
/// of at most [`MAX_INPUT`] bytes (a length prefix must not be trusted).
const ALLOC_CAP: usize = 1024 * 1024;
const DEFAULT_ITERS: u64 = 3_000;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

fn keys() -> Keys {
    Keys::derive(&WorkspaceSecret::from_random_bytes([3; 32]), WorkspaceId::from_bytes([3; 16]))
}

fn envelope(keys: &Keys, n: u8) -> rapport_protocol::Envelope {
    keys.seal(keys.doc_tag("record"), &[n; 40], [n; 24]).expect("seal")
}

fn client_seeds() -> Vec<Vec<u8>> {
    let keys = keys();
    let challenge = ChallengeNonce::from_bytes([9; 32]);
    let messages = [
        ClientMessage::Hello {
            workspace: keys.workspace(),
            signature: keys.sign_challenge(&challenge),
            register: Some(keys.verifier()),
        },
        ClientMessage::Push { request: 7, envelopes: vec![envelope(&keys, 1), envelope(&keys, 2)] },
        ClientMessage::Pull { request: 8, since: Seq(41), limit: 500 },
        ClientMessage::ReplaceWithSnapshot {
            request: 9,
            snapshot: envelope(&keys, 3),
            covers_through: Seq(40),
            incarnation: Incarnation::from_bytes([6; 16]),
        },
        ClientMessage::DeleteDocument { request: 10, doc_tag: keys.doc_tag("record") },
        ClientMessage::Ping { request: 11 },
    ];
    let mut seeds: Vec<Vec<u8>> = messages.iter().map(|m| m.encode().expect("encode")).collect();
    seeds.extend(corpus(&corpus_dir("client_frame")));
    seeds
}

fn server_seeds() -> Vec<Vec<u8>> {
    let keys = keys();
    let entry = |seq, n| LogEntry { seq: Seq(seq), kind: EntryKind::Change, envelope: envelope(&keys, n) };
    let messages = [
        ServerMessage::Challenge { nonce: ChallengeNonce::from_bytes([5; 32]) },
        ServerMessage::Welcome {
            head: Seq(12),
            limits: ServerLimits { max_frame_bytes: 1 << 20, max_envelopes_per_push: 100, max_pull_entries: 500 },
            incarnation: Incarnation::from_bytes([6; 16]),
        },
        ServerMessage::Pushed { request: 3, seqs: vec![Seq(13), Seq(14)] },
        ServerMessage::Batch { request: 4, entries: vec![entry(1, 1), entry(2, 2)], cursor: Seq(2), more: true },
        ServerMessage::SnapshotStored { request: 5, seq: Seq(15), removed: 3 },
        ServerMessage::DocumentDeleted { request: 6, removed: 4 },
        ServerMessage::Live {
            entries: vec![LogEntry { seq: Seq(16), kind: EntryKind::Snapshot, envelope: envelope(&keys, 4) }],
        },
        ServerMessage::Behind { head: Seq(99) },
        ServerMessage::Pong { request: 7 },
        ServerMessage::Error(WireError {
            request: Some(8),
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            fatal: false,
            retry_after_ms: Some(250),
        }),
    ];
    let mut seeds: Vec<Vec<u8>> = messages.iter().map(|m| m.encode().expect("encode")).collect();
    seeds.extend(corpus(&corpus_dir("server_frame")));
    seeds
}

fn invite_seeds() -> Vec<Vec<u8>> {
    let with_relay = InviteLink::new(
        Some("wss://relay.example.org/sync?a=b&c=d".into()),
        WorkspaceId::from_bytes([4; 16]),
        WorkspaceSecret::from_random_bytes([4; 32]),
    )
    .expect("invite");
    let without = InviteLink::new(None, WorkspaceId::from_bytes([5; 16]), WorkspaceSecret::from_random_bytes([5; 32]))
        .expect("invite");
    let mut seeds = vec![
        format!("https://app.example.org/{}", with_relay.to_fragment()).into_bytes(),
        without.to_fragment().into_bytes(),
    ];
    seeds.extend(corpus(&corpus_dir("invite_link")));
    seeds
}

#[test]
fn client_frames_never_panic_or_over_allocate() {
    let seeds = client_seeds();
    let outcome = run("client_frame", &seeds, iterations(DEFAULT_ITERS), MAX_INPUT, ALLOC_CAP, |input| {
        ClientMessage::decode(input).is_ok()
    });
    assert!(outcome.accepted >= seeds.len() as u64, "the valid seeds decode: {outcome:?}");
}

#[test]
fn server_frames_and_their_envelopes_never_panic_or_over_allocate() {
    let seeds = server_seeds();
    let keys = keys();
    let outcome = run("server_frame", &seeds, iterations(DEFAULT_ITERS), MAX_INPUT, ALLOC_CAP, |input| {
        match ServerMessage::decode(input) {
            Ok(ServerMessage::Batch { entries, .. } | ServerMessage::Live { entries }) => {
                // Outside ciphertext: opening must fail cleanly, not panic.
                for entry in &entries {
                    let _ = keys.open(&entry.envelope);
                }
                true
            }
            Ok(_) => true,
            Err(_) => false,
        }
    });
    assert!(outcome.accepted >= seeds.len() as u64, "the valid seeds decode: {outcome:?}");
}

#[test]
fn invite_links_never_panic_or_over_allocate() {
    let seeds = invite_seeds();
    let outcome = run("invite_link", &seeds, iterations(DEFAULT_ITERS), 4096, ALLOC_CAP, |input| {
        InviteLink::parse(&String::from_utf8_lossy(input)).is_ok()
    });
    assert!(outcome.accepted >= 2, "the valid seeds parse: {outcome:?}");
}
