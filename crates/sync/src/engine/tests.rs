//! The engine against scripted relay frames: every protocol path, with a
//! fixed clock and fixed randomness.

use proptest::prelude::*;
use rapport_protocol::{
    verify, ChallengeNonce, DocTag, EntryKind, Envelope, Incarnation, WorkspaceId, WorkspaceSecret, PROTOCOL_VERSION,
};

use super::*;
use crate::plaintext::{doc_tag, encode_plaintext, seal_change};

const RECORD: RecordId = RecordId::from_bytes([0x11; 16]);
const OTHER: RecordId = RecordId::from_bytes([0x22; 16]);
const CHALLENGE: ChallengeNonce = ChallengeNonce::from_bytes([0xcc; 32]);
/// The relay log's incarnation the harness's engine has read from.
const INCARNATION: Incarnation = Incarnation::from_bytes([0x1c; 16]);

fn keys() -> Keys {
    Keys::derive(&WorkspaceSecret::from_random_bytes([3; 32]), WorkspaceId::from_bytes([4; 16]))
}

fn limits() -> ServerLimits {
    ServerLimits { max_frame_bytes: 1 << 20, max_envelopes_per_push: 100, max_pull_entries: 100 }
}

fn timing() -> Timing {
    Timing { backoff_base_ms: 100, backoff_max_ms: 3_000, ..Timing::default() }
}

/// A change of `record` at `seq`, sealed as another member would.
fn entry(seq: u64, record: RecordId, body: &[u8]) -> LogEntry {
    let envelope = seal_change(&keys(), record, body, [seq as u8; 24]).expect("seal");
    LogEntry { seq: Seq(seq), kind: EntryKind::Change, envelope }
}

fn outbox_entry(seq: u64, record: RecordId, body: &[u8]) -> OutboxEntry {
    OutboxEntry::changes(seq, record, body.to_vec())
}

fn frame(msg: &ServerMessage) -> Vec<u8> {
    msg.encode().expect("encode")
}

/// An engine, a clock and a deterministic random source.
struct Harness {
    engine: SyncEngine,
    now: u64,
    counter: u8,
    /// When set, every random byte is this value.
    fixed_random: Option<u8>,
}

impl Harness {
    fn new(register: bool, cursor: Seq) -> Self {
        Self {
            engine: SyncEngine::with_timing(keys(), register, cursor, timing()).with_incarnation(Some(INCARNATION)),
            now: 1_000,
            counter: 0,
            fixed_random: None,
        }
    }

    fn input(&mut self, input: Input<'_>) -> Vec<Output> {
        let counter = &mut self.counter;
        let fixed = self.fixed_random;
        let mut rng = |buf: &mut [u8]| {
            for b in buf {
                *counter = counter.wrapping_add(1);
                *b = fixed.unwrap_or(*counter);
            }
        };
        self.engine.handle(self.now, &mut rng, input)
    }

    fn recv(&mut self, msg: ServerMessage) -> Vec<Output> {
        let bytes = frame(&msg);
        self.input(Input::Frame(&bytes))
    }

    fn advance(&mut self, ms: u64) -> Vec<Output> {
        self.now += ms;
        self.input(Input::Tick)
    }

    /// Start, open, challenge: returns the outputs of the Hello.
    fn open(&mut self) -> Vec<Output> {
        let out = self.input(Input::Start);
        assert!(out.contains(&Output::Connect), "{out:?}");
        self.input(Input::Connected);
        self.recv(ServerMessage::Challenge { nonce: CHALLENGE })
    }

    /// A full handshake; returns the outputs of the Welcome.
    fn connect(&mut self, head: u64) -> Vec<Output> {
        self.open();
        self.recv(ServerMessage::Welcome { head: Seq(head), limits: limits(), incarnation: INCARNATION })
    }

    /// Answers an outbox read with nothing.
    fn empty_outbox(&mut self) -> Vec<Output> {
        self.input(Input::Outbox(Vec::new()))
    }

    fn status(&self) -> SyncStatus {
        self.engine.status()
    }
}

fn sent(out: &[Output]) -> Vec<ClientMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(bytes) => Some(ClientMessage::decode(bytes).expect("the engine sends valid frames")),
            _ => None,
        })
        .collect()
}

fn the_pull(out: &[Output]) -> (RequestId, Seq) {
    let pulls: Vec<_> = sent(out)
        .into_iter()
        .filter_map(|m| match m {
            ClientMessage::Pull { request, since, .. } => Some((request, since)),
            _ => None,
        })
        .collect();
    assert_eq!(pulls.len(), 1, "expected one pull in {out:?}");
    pulls[0]
}

fn the_push(out: &[Output]) -> (RequestId, Vec<Envelope>) {
    let pushes: Vec<_> = sent(out)
        .into_iter()
        .filter_map(|m| match m {
            ClientMessage::Push { request, envelopes } => Some((request, envelopes)),
            _ => None,
        })
        .collect();
    assert_eq!(pushes.len(), 1, "expected one push in {out:?}");
    pushes.into_iter().next().expect("one push")
}

fn applies(out: &[Output]) -> Vec<(Vec<Received>, Seq)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Apply { entries, through } => Some((entries.clone(), *through)),
            _ => None,
        })
        .collect()
}

fn saved(out: &[Output]) -> Vec<Seq> {
    out.iter()
        .filter_map(|o| match o {
            Output::SaveCursor(seq) => Some(*seq),
            _ => None,
        })
        .collect()
}

fn problems(out: &[Output]) -> Vec<SyncProblem> {
    out.iter()
        .filter_map(|o| match o {
            Output::Problem(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn reconnect_delay(out: &[Output]) -> Option<u64> {
    out.iter().find_map(|o| match o {
        Output::ReconnectAfter { ms } => Some(*ms),
        _ => None,
    })
}

fn quarantines(out: &[Output]) -> Vec<(Vec<QuarantinedChange>, Seq)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Quarantine { entries, through } => Some((entries.clone(), *through)),
            _ => None,
        })
        .collect()
}

fn seqs(received: &[Received]) -> Vec<u64> {
    received.iter().map(|r| r.seq.0).collect()
}

// --- Handshake ------------------------------------------------------------

#[test]
fn the_handshake_signs_the_challenge_and_registers_only_when_created_here() {
    for register in [true, false] {
        let mut h = Harness::new(register, Seq::ZERO);
        assert_eq!(h.status(), SyncStatus::Offline);
        let out = h.input(Input::Start);
        assert_eq!(h.status(), SyncStatus::Connecting);
        assert!(out.contains(&Output::Connect));
        h.input(Input::Connected);
        let out = h.recv(ServerMessage::Challenge { nonce: CHALLENGE });
        match sent(&out).as_slice() {
            [ClientMessage::Hello { workspace, signature, register: sent_verifier }] => {
                assert_eq!(*workspace, keys().workspace());
                assert_eq!(verify(&keys().verifier(), workspace, &CHALLENGE, signature), Ok(()));
                assert_eq!(sent_verifier.is_some(), register);
            }
            other => panic!("expected a Hello, got {other:?}"),
        }
    }
}

#[test]
fn a_client_whose_cursor_equals_the_head_does_not_pull_and_is_up_to_date_after_an_empty_outbox() {
    let mut h = Harness::new(false, Seq(7));
    let out = h.connect(7);
    assert!(sent(&out).is_empty(), "no pull: {out:?}");
    assert_eq!(out.iter().filter(|o| matches!(o, Output::ReadOutbox { .. })).count(), 1);
    let out = h.empty_outbox();
    assert!(out.contains(&Output::Status(SyncStatus::UpToDate)), "{out:?}");
}

#[test]
fn a_message_other_than_the_challenge_first_is_a_protocol_error() {
    let mut h = Harness::new(false, Seq::ZERO);
    h.input(Input::Start);
    h.input(Input::Connected);
    let out = h.recv(ServerMessage::Welcome { head: Seq(1), limits: limits(), incarnation: INCARNATION });
    assert!(out.contains(&Output::Close));
    assert!(matches!(problems(&out).as_slice(), [SyncProblem::Protocol(_)]));
    assert!(reconnect_delay(&out).is_some());
}

#[test]
fn no_welcome_in_time_closes_and_retries() {
    let mut h = Harness::new(false, Seq::ZERO);
    h.open();
    let out = h.advance(timing().handshake_timeout_ms);
    assert!(out.contains(&Output::Close));
    assert!(reconnect_delay(&out).is_some());
    assert_eq!(h.status(), SyncStatus::Error(SyncProblem::RelayUnreachable));
}

// --- Pulling ----------------------------------------------------------------

#[test]
fn pulling_pages_until_more_is_false_reports_progress_and_saves_the_cursor_only_after_each_apply() {
    let mut h = Harness::new(false, Seq(2));
    let out = h.connect(6);
    let (request, since) = the_pull(&out);
    assert_eq!(since, Seq(2));
    assert_eq!(h.status(), SyncStatus::Syncing { done: 0, total: 4 });

    let out = h.recv(ServerMessage::Batch {
        request,
        entries: vec![entry(3, RECORD, b"three"), entry(4, OTHER, b"four")],
        cursor: Seq(4),
        more: true,
    });
    let apply = applies(&out);
    assert_eq!(apply.len(), 1);
    assert_eq!(seqs(&apply[0].0), [3, 4]);
    assert_eq!(apply[0].0[0], Received { seq: Seq(3), record: RECORD, bytes: b"three".to_vec() });
    assert_eq!(apply[0].1, Seq(4));
    assert!(saved(&out).is_empty(), "nothing saved before the app applied the page");
    assert!(sent(&out).is_empty(), "the next page waits for this one to be applied");
    assert_eq!(h.engine.cursor(), Seq(2));

    let out = h.input(Input::Applied { through: Seq(4) });
    assert_eq!(saved(&out), [Seq(4)]);
    assert_eq!(h.status(), SyncStatus::Syncing { done: 2, total: 4 });
    let (request, since) = the_pull(&out);
    assert_eq!(since, Seq(4));

    // The last page ends at a head past its last entry (deleted entries).
    let out =
        h.recv(ServerMessage::Batch { request, entries: vec![entry(5, RECORD, b"five")], cursor: Seq(6), more: false });
    assert_eq!(applies(&out)[0].1, Seq(6));
    let out = h.input(Input::Applied { through: Seq(6) });
    assert_eq!(saved(&out), [Seq(6)]);
    assert!(sent(&out).is_empty(), "no more pages");
    h.empty_outbox();
    assert_eq!(h.status(), SyncStatus::UpToDate);
    assert_eq!(h.engine.cursor(), Seq(6));
}

#[test]
fn an_answer_for_an_apply_that_is_not_outstanding_changes_nothing() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.connect(2);
    let (request, _) = the_pull(&out);
    h.recv(ServerMessage::Batch { request, entries: vec![entry(1, RECORD, b"a")], cursor: Seq(2), more: false });
    let out = h.input(Input::Applied { through: Seq(9) });
    assert!(saved(&out).is_empty());
    assert_eq!(h.engine.cursor(), Seq::ZERO);
}

#[test]
fn a_batch_out_of_order_or_answering_an_unknown_request_is_a_protocol_error_and_nothing_is_applied() {
    let bad_batches = |request: RequestId| {
        vec![
            ServerMessage::Batch { request: request + 100, entries: vec![], cursor: Seq(3), more: false },
            ServerMessage::Batch {
                request,
                entries: vec![entry(2, RECORD, b"b"), entry(1, RECORD, b"a")],
                cursor: Seq(3),
                more: false,
            },
            ServerMessage::Batch { request, entries: vec![entry(5, RECORD, b"e")], cursor: Seq(3), more: false },
            ServerMessage::Batch { request, entries: vec![], cursor: Seq(1), more: true },
        ]
    };
    for index in 0..4 {
        let mut h = Harness::new(false, Seq::ZERO);
        let out = h.connect(3);
        let (request, _) = the_pull(&out);
        let bad = bad_batches(request).swap_remove(index);
        let out = h.recv(bad);
        assert!(applies(&out).is_empty(), "case {index}: {out:?}");
        assert!(saved(&out).is_empty());
        assert!(out.contains(&Output::Close));
        assert!(matches!(problems(&out).as_slice(), [SyncProblem::Protocol(_)]), "case {index}");
        assert_eq!(h.engine.cursor(), Seq::ZERO);
    }
}

// --- Live -------------------------------------------------------------------

fn up_to_date(cursor: u64) -> Harness {
    let mut h = Harness::new(false, Seq(cursor));
    h.connect(cursor);
    h.empty_outbox();
    assert_eq!(h.status(), SyncStatus::UpToDate);
    h
}

#[test]
fn a_live_frame_that_follows_the_cursor_is_applied_and_advances_it() {
    let mut h = up_to_date(4);
    let out = h.recv(ServerMessage::Live { entries: vec![entry(5, RECORD, b"e"), entry(6, RECORD, b"f")] });
    let apply = applies(&out);
    assert_eq!(seqs(&apply[0].0), [5, 6]);
    assert_eq!(apply[0].1, Seq(6));
    assert!(sent(&out).is_empty(), "no pull for an in-order live frame");
    let out = h.input(Input::Applied { through: Seq(6) });
    assert_eq!(saved(&out), [Seq(6)]);
    assert_eq!(h.status(), SyncStatus::UpToDate);
}

#[test]
fn a_live_frame_after_a_gap_is_applied_as_a_hint_without_moving_the_cursor_and_triggers_a_pull() {
    let mut h = up_to_date(4);
    let out = h.recv(ServerMessage::Live { entries: vec![entry(7, RECORD, b"g")] });
    let apply = applies(&out);
    assert_eq!(seqs(&apply[0].0), [7]);
    assert_eq!(apply[0].1, Seq(4), "through stays at the cursor");
    let out = h.input(Input::Applied { through: Seq(4) });
    assert!(saved(&out).is_empty(), "the cursor does not pass the gap");
    let (request, since) = the_pull(&out);
    assert_eq!(since, Seq(4));
    let out = h.recv(ServerMessage::Batch {
        request,
        entries: vec![entry(5, OTHER, b"e"), entry(6, OTHER, b"f"), entry(7, RECORD, b"g")],
        cursor: Seq(7),
        more: false,
    });
    assert_eq!(seqs(&applies(&out)[0].0), [5, 6, 7]);
    let out = h.input(Input::Applied { through: Seq(7) });
    assert_eq!(saved(&out), [Seq(7)]);
    assert_eq!(h.status(), SyncStatus::UpToDate);
}

#[test]
fn a_live_frame_during_a_pull_does_not_move_the_cursor_and_the_pull_covers_it() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.connect(1);
    let (request, _) = the_pull(&out);
    // Entry 2 is committed while the pull is in flight.
    let out = h.recv(ServerMessage::Live { entries: vec![entry(2, RECORD, b"b")] });
    assert_eq!(applies(&out)[0].1, Seq::ZERO);
    h.input(Input::Applied { through: Seq::ZERO });
    // The page was read before entry 2: the head moved past it, so pull again.
    let out =
        h.recv(ServerMessage::Batch { request, entries: vec![entry(1, RECORD, b"a")], cursor: Seq(1), more: false });
    let out2 = h.input(Input::Applied { through: applies(&out)[0].1 });
    assert_eq!(saved(&out2), [Seq(1)]);
    let (request, since) = the_pull(&out2);
    assert_eq!(since, Seq(1));
    let out =
        h.recv(ServerMessage::Batch { request, entries: vec![entry(2, RECORD, b"b")], cursor: Seq(2), more: false });
    let out = h.input(Input::Applied { through: applies(&out)[0].1 });
    assert_eq!(saved(&out), [Seq(2)]);
}

#[test]
fn behind_triggers_a_pull_up_to_the_announced_head() {
    let mut h = up_to_date(3);
    let out = h.recv(ServerMessage::Behind { head: Seq(9) });
    let (_, since) = the_pull(&out);
    assert_eq!(since, Seq(3));
    assert_eq!(h.status(), SyncStatus::Syncing { done: 0, total: 6 });
}

// --- Pushing ----------------------------------------------------------------

#[test]
fn outbox_entries_are_sealed_pushed_and_acknowledged_only_after_pushed() {
    let mut h = Harness::new(false, Seq::ZERO);
    h.connect(0);
    let out = h.input(Input::Outbox(vec![outbox_entry(10, RECORD, b"ten"), outbox_entry(11, OTHER, b"eleven")]));
    let (request, envelopes) = the_push(&out);
    assert!(!out.iter().any(|o| matches!(o, Output::AckOutbox(_))), "no ack before the relay commits");
    assert_eq!(envelopes.len(), 2);
    assert_eq!(envelopes[0].doc_tag, keys().doc_tag(&RECORD.to_string()));
    assert_ne!(envelopes[0].nonce, envelopes[1].nonce, "a fresh nonce per envelope");
    assert_eq!(open_envelope(&keys(), &envelopes[1]), Ok((OTHER, b"eleven".to_vec())));
    assert!(matches!(h.status(), SyncStatus::Syncing { .. }));

    let out = h.recv(ServerMessage::Pushed { request, seqs: vec![Seq(1), Seq(2)] });
    assert_eq!(out.first(), Some(&Output::AckOutbox(vec![10, 11])));
    assert!(out.contains(&Output::ReadOutbox { limit: 100 }), "reads on for more: {out:?}");
    // Its own changes directly follow the cursor: no download.
    assert_eq!(saved(&out), [Seq(2)]);
    assert!(sent(&out).is_empty());
    h.empty_outbox();
    assert_eq!(h.status(), SyncStatus::UpToDate);
}

#[test]
fn own_pushes_after_a_gap_are_pulled_back_rather_than_skipped() {
    let mut h = up_to_date(3);
    h.input(Input::LocalChanges);
    let out = h.input(Input::Outbox(vec![outbox_entry(1, RECORD, b"x")]));
    let (request, _) = the_push(&out);
    // Someone else's entry 4 is committed first; ours is 5.
    let out = h.recv(ServerMessage::Pushed { request, seqs: vec![Seq(5)] });
    assert!(saved(&out).is_empty());
    let (_, since) = the_pull(&out);
    assert_eq!(since, Seq(3));
}

#[test]
fn a_push_lost_to_a_disconnect_is_not_acknowledged_and_is_pushed_again() {
    let mut h = Harness::new(false, Seq::ZERO);
    h.connect(0);
    let out = h.input(Input::Outbox(vec![outbox_entry(1, RECORD, b"x")]));
    let (_, first) = the_push(&out);
    let out = h.input(Input::Disconnected);
    assert!(!out.iter().any(|o| matches!(o, Output::AckOutbox(_))));
    let delay = reconnect_delay(&out).expect("reconnects");
    let out = h.advance(delay);
    assert!(out.contains(&Output::Connect));
    h.input(Input::Connected);
    h.recv(ServerMessage::Challenge { nonce: CHALLENGE });
    let out = h.recv(ServerMessage::Welcome { head: Seq(1), limits: limits(), incarnation: INCARNATION });
    let (request, since) = the_pull(&out);
    assert_eq!(since, Seq::ZERO);
    assert!(!out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "pulls before pushing: {out:?}");
    h.recv(ServerMessage::Batch { request, entries: vec![entry(1, OTHER, b"theirs")], cursor: Seq(1), more: false });
    let out = h.input(Input::Applied { through: Seq(1) });
    assert!(out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "then reads the outbox: {out:?}");
    let out = h.input(Input::Outbox(vec![outbox_entry(1, RECORD, b"x")]));
    let (request, again) = the_push(&out);
    assert_eq!(open_envelope(&keys(), &again[0]), open_envelope(&keys(), &first[0]));
    let out = h.recv(ServerMessage::Pushed { request, seqs: vec![Seq(2)] });
    assert_eq!(out.first(), Some(&Output::AckOutbox(vec![1])));
}

#[test]
fn pushes_are_batched_within_the_relays_envelope_count_and_frame_size() {
    let small = ServerLimits { max_frame_bytes: 1_000, max_envelopes_per_push: 3, max_pull_entries: 100 };
    let mut h = Harness::new(false, Seq::ZERO);
    h.open();
    h.recv(ServerMessage::Welcome { head: Seq::ZERO, limits: small, incarnation: INCARNATION });
    // Five entries of 200 bytes: 3 by count, then by size.
    let entries: Vec<_> = (1..=5).map(|i| outbox_entry(i, RECORD, &[i as u8; 200])).collect();
    let out = h.input(Input::Outbox(entries.clone()));
    let (_, envelopes) = the_push(&out);
    assert_eq!(envelopes.len(), 3);
    let frame_len = out.iter().find_map(|o| if let Output::Send(f) = o { Some(f.len()) } else { None });
    assert!(frame_len.is_some_and(|n| n <= 1_000), "{frame_len:?}");

    let roomy = ServerLimits { max_frame_bytes: 700, max_envelopes_per_push: 100, max_pull_entries: 100 };
    let mut h = Harness::new(false, Seq::ZERO);
    h.open();
    h.recv(ServerMessage::Welcome { head: Seq::ZERO, limits: roomy, incarnation: INCARNATION });
    let out = h.input(Input::Outbox(entries));
    let (_, envelopes) = the_push(&out);
    let frame_len = out.iter().find_map(|o| if let Output::Send(f) = o { Some(f.len()) } else { None });
    assert_eq!(envelopes.len(), 2, "two 300-byte envelopes fit in 700 bytes, three do not");
    assert!(frame_len.is_some_and(|n| n <= 700), "{frame_len:?}");
}

#[test]
fn a_change_too_large_for_the_relay_is_reported_kept_queued_and_does_not_block_the_others() {
    let tiny = ServerLimits { max_frame_bytes: 300, max_envelopes_per_push: 10, max_pull_entries: 100 };
    let mut h = Harness::new(false, Seq::ZERO);
    h.open();
    h.recv(ServerMessage::Welcome { head: Seq::ZERO, limits: tiny, incarnation: INCARNATION });
    let out = h.input(Input::Outbox(vec![outbox_entry(1, RECORD, &[0; 400]), outbox_entry(2, OTHER, b"small")]));
    assert!(matches!(problems(&out).as_slice(), [SyncProblem::ChangeTooLarge { record, .. }] if *record == RECORD));
    let (request, envelopes) = the_push(&out);
    assert_eq!(envelopes.len(), 1);
    let out = h.recv(ServerMessage::Pushed { request, seqs: vec![Seq(1)] });
    assert_eq!(out.first(), Some(&Output::AckOutbox(vec![2])), "the large one stays in the outbox");
    // Reading on returns the large one again: nothing is pushed, no loop.
    let limit = out.iter().find_map(|o| if let Output::ReadOutbox { limit } = o { Some(*limit) } else { None });
    assert_eq!(limit, Some(11), "reads past the entries it cannot send");
    let out = h.input(Input::Outbox(vec![outbox_entry(1, RECORD, &[0; 400])]));
    assert!(sent(&out).is_empty());
    assert!(matches!(h.status(), SyncStatus::Error(SyncProblem::ChangeTooLarge { .. })));
}

#[test]
fn a_change_the_relay_could_not_pull_back_alone_is_reported_not_pushed() {
    // The relay stores only envelopes a batch can carry alone under the
    // widest numbers (`fits_alone`); a push frame has less around its
    // envelope, so a change just under the limit would be refused there.
    let max = 1_000;
    let edge = (600..max)
        .map(|n| vec![7u8; n])
        .find(|body| {
            let envelope = seal_change_within(&keys(), RECORD, body, [0; 24], max).expect("seal");
            let push = ClientMessage::Push { request: 1, envelopes: vec![envelope.clone()] };
            !fits_alone(&envelope, max) && push.encode().expect("encode").len() <= max
        })
        .expect("a size whose push fits but whose batch would not");
    let limits = ServerLimits { max_frame_bytes: max as u32, max_envelopes_per_push: 10, max_pull_entries: 100 };
    let mut h = Harness::new(false, Seq::ZERO);
    h.open();
    h.recv(ServerMessage::Welcome { head: Seq::ZERO, limits, incarnation: INCARNATION });
    let out = h.input(Input::Outbox(vec![outbox_entry(1, RECORD, &edge)]));
    assert!(matches!(problems(&out).as_slice(), [SyncProblem::ChangeTooLarge { record, .. }] if *record == RECORD));
    assert!(sent(&out).is_empty(), "{out:?}");
}

// --- Pull before push -------------------------------------------------------

#[test]
fn after_a_reconnect_the_outbox_is_read_only_once_the_log_up_to_the_welcome_head_is_applied() {
    let mut h = Harness::new(false, Seq(2));
    let out = h.connect(4);
    let (request, _) = the_pull(&out);
    assert!(!out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "{out:?}");
    assert!(!h.input(Input::LocalChanges).iter().any(|o| matches!(o, Output::ReadOutbox { .. })));
    // Entries pushed by others while catching up do not hold the push back
    // any further than the head announced at Welcome.
    h.recv(ServerMessage::Live { entries: vec![entry(5, OTHER, b"live")] });
    h.input(Input::Applied { through: Seq(2) });
    let out = h.recv(ServerMessage::Batch {
        request,
        entries: vec![entry(3, RECORD, b"c"), entry(4, RECORD, b"tombstone")],
        cursor: Seq(4),
        more: false,
    });
    assert!(!out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "not before the page is applied");
    let out = h.input(Input::Applied { through: Seq(4) });
    assert!(out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "{out:?}");
    let (_, since) = the_pull(&out);
    assert_eq!(since, Seq(4), "and the live entry is pulled in order");
}

#[test]
fn an_unreadable_entry_while_catching_up_is_set_aside_and_local_changes_go_once_the_log_is_past_it() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.connect(2);
    let (request, _) = the_pull(&out);
    let out = h.recv(ServerMessage::Batch {
        request,
        entries: vec![tampered(1), entry(2, RECORD, b"b")],
        cursor: Seq(2),
        more: false,
    });
    assert_eq!(quarantines(&out).len(), 1);
    assert!(!out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "not before the log is past it: {out:?}");
    let out = h.input(Input::Applied { through: Seq(1) });
    assert_eq!(saved(&out), [Seq(1)]);
    assert_eq!(seqs(&applies(&out)[0].0), [2]);
    let out = h.input(Input::Applied { through: Seq(2) });
    assert!(out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "{out:?}");
}

// --- Erasure on the relay ---------------------------------------------------

fn deletes(out: &[Output]) -> Vec<(RequestId, DocTag)> {
    sent(out)
        .into_iter()
        .filter_map(|m| match m {
            ClientMessage::DeleteDocument { request, doc_tag } => Some((request, doc_tag)),
            _ => None,
        })
        .collect()
}

fn erased(out: &[Output]) -> Vec<RecordId> {
    out.iter()
        .filter_map(|o| match o {
            Output::RelayErased(records) => Some(records.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn tag(record: RecordId) -> DocTag {
    doc_tag(&keys(), record)
}

#[test]
fn a_delete_is_sent_per_record_when_connected_and_each_confirmation_is_reported() {
    let mut h = up_to_date(3);
    let out = h.input(Input::EraseOnRelay(vec![RECORD, OTHER]));
    let sent = deletes(&out);
    assert_eq!(sent.iter().map(|(_, t)| *t).collect::<Vec<_>>(), [tag(RECORD), tag(OTHER)]);
    assert!(matches!(h.status(), SyncStatus::Syncing { .. }), "busy until confirmed");
    assert_eq!(h.engine.erasing(), BTreeSet::from([RECORD, OTHER]));

    let out = h.recv(ServerMessage::DocumentDeleted { request: sent[0].0, removed: 3 });
    assert_eq!(erased(&out), [RECORD]);
    assert!(matches!(h.status(), SyncStatus::Syncing { .. }));
    let out = h.recv(ServerMessage::DocumentDeleted { request: sent[1].0, removed: 0 });
    assert_eq!(erased(&out), [OTHER], "a document already gone is confirmed too");
    assert_eq!(h.status(), SyncStatus::UpToDate);
    assert!(h.engine.erasing().is_empty());
    assert!(deletes(&h.advance(timing().request_timeout_ms * 2)).is_empty(), "never sent again");
}

#[test]
fn a_delete_asked_for_offline_is_sent_after_the_welcome_and_again_after_each_reconnect_until_confirmed() {
    let mut h = Harness::new(false, Seq(5));
    let out = h.input(Input::EraseOnRelay(vec![RECORD]));
    assert!(sent(&out).is_empty(), "offline: nothing to send on");
    assert_eq!(h.status(), SyncStatus::Offline);
    let out = h.connect(5);
    assert_eq!(deletes(&out).iter().map(|(_, t)| *t).collect::<Vec<_>>(), [tag(RECORD)]);

    // Lost before the confirmation: sent again on the next connection.
    let delay = reconnect_delay(&h.input(Input::Disconnected)).expect("reconnects");
    h.advance(delay);
    h.input(Input::Connected);
    h.recv(ServerMessage::Challenge { nonce: CHALLENGE });
    let out = h.recv(ServerMessage::Welcome { head: Seq(5), limits: limits(), incarnation: INCARNATION });
    let again = deletes(&out);
    assert_eq!(again.iter().map(|(_, t)| *t).collect::<Vec<_>>(), [tag(RECORD)]);
    let out = h.recv(ServerMessage::DocumentDeleted { request: again[0].0, removed: 1 });
    assert_eq!(erased(&out), [RECORD]);
    h.empty_outbox();
    assert_eq!(h.status(), SyncStatus::UpToDate);
}

#[test]
fn a_record_asked_for_again_while_its_delete_is_in_flight_is_deleted_once_more_before_it_counts_as_confirmed() {
    let mut h = up_to_date(0);
    let first = deletes(&h.input(Input::EraseOnRelay(vec![RECORD])));
    // A change of the record arrives meanwhile: the relay may have stored
    // it after the delete ran.
    let out = h.input(Input::EraseOnRelay(vec![RECORD]));
    assert!(deletes(&out).is_empty(), "one delete of a record in flight at a time");
    let out = h.recv(ServerMessage::DocumentDeleted { request: first[0].0, removed: 1 });
    assert!(erased(&out).is_empty(), "not confirmed yet: {out:?}");
    let second = deletes(&out);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].1, tag(RECORD));
    let out = h.recv(ServerMessage::DocumentDeleted { request: second[0].0, removed: 1 });
    assert_eq!(erased(&out), [RECORD]);
}

#[test]
fn deletes_in_flight_are_capped_and_the_rest_follow_the_confirmations() {
    let mut h = up_to_date(0);
    let many: Vec<RecordId> = (0..20u8).map(|n| RecordId::from_bytes([n; 16])).collect();
    let out = h.input(Input::EraseOnRelay(many));
    let first = deletes(&out);
    assert_eq!(first.len(), timing().erase_max_in_flight as usize);
    let out = h.recv(ServerMessage::DocumentDeleted { request: first[0].0, removed: 0 });
    assert_eq!(deletes(&out).len(), 1);
}

#[test]
fn a_rate_limited_delete_is_sent_again_after_the_pause() {
    let mut h = up_to_date(0);
    let first = deletes(&h.input(Input::EraseOnRelay(vec![RECORD])));
    let out = h.recv(wire_error(ErrorCode::RateLimited, false, Some(first[0].0), Some(200)));
    assert!(deletes(&out).is_empty());
    let out = h.advance(200);
    assert_eq!(deletes(&out).iter().map(|(_, t)| *t).collect::<Vec<_>>(), [tag(RECORD)]);
}

#[test]
fn an_unanswered_delete_times_out_like_any_request() {
    let mut h = up_to_date(0);
    h.input(Input::EraseOnRelay(vec![RECORD]));
    let out = h.advance(timing().request_timeout_ms);
    assert!(out.contains(&Output::Close), "{out:?}");
    assert!(h.engine.erasing().contains(&RECORD), "still owed");
}

#[test]
fn a_confirmation_of_a_delete_never_sent_is_a_protocol_error() {
    let mut h = up_to_date(0);
    let out = h.recv(ServerMessage::DocumentDeleted { request: 77, removed: 1 });
    assert!(out.contains(&Output::Close));
    assert!(erased(&out).is_empty());
    assert!(matches!(problems(&out).as_slice(), [SyncProblem::Protocol(_)]));
}

// --- Errors -----------------------------------------------------------------

fn wire_error(code: ErrorCode, fatal: bool, request: Option<RequestId>, retry: Option<u32>) -> ServerMessage {
    ServerMessage::Error(WireError { request, code, message: format!("{code:?}"), fatal, retry_after_ms: retry })
}

#[test]
fn unauthorized_shows_access_refused_and_never_reconnects_until_started_again() {
    let mut h = Harness::new(false, Seq::ZERO);
    h.open();
    let out = h.recv(wire_error(ErrorCode::Unauthorized, true, None, None));
    assert!(out.contains(&Output::Close));
    assert!(reconnect_delay(&out).is_none());
    assert!(!out.iter().any(|o| matches!(o, Output::WakeAfter { .. })));
    assert_eq!(h.status(), SyncStatus::Error(SyncProblem::AccessRefused));
    for _ in 0..5 {
        let out = h.advance(timing().backoff_max_ms * 10);
        assert!(!out.contains(&Output::Connect), "{out:?}");
    }
    // A late close event from the socket changes nothing.
    assert!(h.input(Input::Disconnected).is_empty());
    assert!(h.input(Input::Start).contains(&Output::Connect), "the user may try again");
}

#[test]
fn an_unknown_workspace_is_reported_and_retried_at_the_longest_delay() {
    let mut h = Harness::new(false, Seq::ZERO);
    h.open();
    let out = h.recv(wire_error(ErrorCode::UnknownWorkspace, true, None, None));
    assert_eq!(h.status(), SyncStatus::Error(SyncProblem::UnknownWorkspace));
    assert!(reconnect_delay(&out).is_some_and(|ms| ms >= timing().backoff_max_ms / 2), "{out:?}");
}

#[test]
fn rate_limited_requests_are_sent_again_after_the_given_delay() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.connect(5);
    let (request, _) = the_pull(&out);
    let out = h.recv(wire_error(ErrorCode::RateLimited, false, Some(request), Some(250)));
    assert!(!out.contains(&Output::Close));
    assert!(out.contains(&Output::WakeAfter { ms: 250 }), "{out:?}");
    assert!(sent(&h.advance(100)).is_empty(), "not before the delay");
    let out = h.advance(150);
    let (_, since) = the_pull(&out);
    assert_eq!(since, Seq::ZERO);
}

#[test]
fn cursor_ahead_restarts_from_zero_and_uploads_everything_again() {
    let mut h = Harness::new(false, Seq(50));
    let out = h.connect(3);
    let (request, since) = the_pull(&out);
    assert_eq!(since, Seq(50), "a cursor past the head asks, and the relay says so");
    assert!(!out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "the answer comes first");
    let out = h.recv(wire_error(ErrorCode::CursorAhead, false, Some(request), None));
    assert!(out.contains(&Output::Reupload), "{out:?}");
    assert_eq!(saved(&out), [Seq::ZERO]);
    let (request, since) = the_pull(&out);
    assert_eq!(since, Seq::ZERO);
    assert!(!out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "the relay's log (and its tombstones) first");
    h.recv(ServerMessage::Batch {
        request,
        entries: vec![entry(1, OTHER, b"a"), entry(3, OTHER, b"c")],
        cursor: Seq(3),
        more: false,
    });
    let out = h.input(Input::Applied { through: Seq(3) });
    assert!(out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "then the upload: {out:?}");
}

#[test]
fn fatal_relay_errors_close_and_reconnect_and_internal_errors_are_the_relays_problem() {
    let mut h = up_to_date(0);
    let out = h.recv(wire_error(ErrorCode::Unavailable, true, None, None));
    assert!(out.contains(&Output::Close));
    assert!(reconnect_delay(&out).is_some());
    assert_eq!(h.status(), SyncStatus::Error(SyncProblem::RelayUnreachable));

    let mut h = up_to_date(0);
    let out = h.recv(wire_error(ErrorCode::Internal, false, Some(1), None));
    assert!(out.contains(&Output::Close));
    assert!(matches!(h.status(), SyncStatus::Error(SyncProblem::RelayFailed(_))));
}

// --- Hostile input ----------------------------------------------------------

#[test]
fn garbled_frames_report_a_problem_close_and_reconnect_without_applying_anything() {
    let valid = frame(&ServerMessage::Live { entries: vec![entry(4, RECORD, b"x")] });
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![PROTOCOL_VERSION, 200],
        valid[..valid.len() - 3].to_vec(),
        [valid.clone(), vec![0]].concat(),
        vec![PROTOCOL_VERSION, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    ];
    for bytes in garbage {
        let mut h = up_to_date(3);
        let out = h.input(Input::Frame(&bytes));
        assert!(applies(&out).is_empty(), "{bytes:?}");
        assert!(saved(&out).is_empty());
        assert!(out.contains(&Output::Close));
        assert!(matches!(problems(&out).as_slice(), [SyncProblem::Protocol(_)]));
        assert!(reconnect_delay(&out).is_some());
        assert_eq!(h.engine.cursor(), Seq(3));
    }
}

fn tampered(seq: u64) -> LogEntry {
    let mut e = entry(seq, RECORD, b"secret change");
    e.envelope.ciphertext[0] ^= 1;
    e
}

#[test]
fn an_envelope_that_fails_to_decrypt_is_set_aside_durably_before_the_cursor_passes_it_and_sync_goes_on() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.connect(4);
    let (request, _) = the_pull(&out);
    let out = h.recv(ServerMessage::Batch {
        request,
        entries: vec![entry(1, RECORD, b"a"), entry(2, RECORD, b"b"), tampered(3), entry(4, RECORD, b"d")],
        cursor: Seq(4),
        more: false,
    });
    let apply = applies(&out);
    assert_eq!(seqs(&apply[0].0), [1, 2], "what precedes it first");
    assert_eq!(apply[0].1, Seq(2));
    assert!(matches!(problems(&out).as_slice(), [SyncProblem::UnreadableChange { seq: Seq(3), .. }]));
    let out = h.input(Input::Applied { through: Seq(2) });
    assert_eq!(saved(&out), [Seq(2)]);
    let set_aside = quarantines(&out);
    assert_eq!(set_aside.len(), 1);
    let (entries, through) = &set_aside[0];
    assert_eq!((entries.len(), entries[0].seq, entries[0].record, *through), (1, Seq(3), None, Seq(3)));
    assert!(entries[0].reason.contains("decrypted"), "{}", entries[0].reason);
    assert_eq!(h.engine.cursor(), Seq(2), "not past it before it is recorded");
    assert!(matches!(h.status(), SyncStatus::Syncing { .. }), "never up to date while it is being set aside");
    let out = h.input(Input::Applied { through: Seq(3) });
    assert_eq!(saved(&out), [Seq(3)]);
    assert_eq!(seqs(&applies(&out)[0].0), [4], "and sync goes on past it");
    let out = h.input(Input::Applied { through: Seq(4) });
    assert_eq!(saved(&out), [Seq(4)]);
    h.empty_outbox();
    assert_eq!(h.status(), SyncStatus::UpToDate);
    // Later live entries follow the cursor again.
    let out = h.recv(ServerMessage::Live { entries: vec![entry(5, OTHER, b"e")] });
    assert_eq!(applies(&out)[0].1, Seq(5));
}

#[test]
fn a_failure_to_record_an_entry_as_set_aside_keeps_the_cursor_before_it_and_reconnects() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.connect(2);
    let (request, _) = the_pull(&out);
    let out = h.recv(ServerMessage::Batch {
        request,
        entries: vec![tampered(1), entry(2, RECORD, b"b")],
        cursor: Seq(2),
        more: false,
    });
    assert_eq!(quarantines(&out).len(), 1);
    let failure = ApplyFailure { at: Seq(1), kind: ApplyFailureKind::StorageFull };
    let out = h.input(Input::ApplyFailed { through: Seq(1), failure });
    assert!(saved(&out).is_empty());
    assert_eq!(h.engine.cursor(), Seq::ZERO);
    assert!(out.contains(&Output::Close));
    assert_eq!(h.status(), SyncStatus::Error(SyncProblem::StorageFull));
}
#[test]
fn an_unreadable_live_entry_in_order_is_set_aside_and_then_passed() {
    let mut h = up_to_date(2);
    let out = h.recv(ServerMessage::Live { entries: vec![tampered(3)] });
    assert!(applies(&out).is_empty());
    assert!(saved(&out).is_empty());
    assert!(matches!(problems(&out).as_slice(), [SyncProblem::UnreadableChange { seq: Seq(3), .. }]));
    assert_eq!(quarantines(&out)[0].1, Seq(3));
    assert_ne!(h.status(), SyncStatus::UpToDate);
    let out = h.input(Input::Applied { through: Seq(3) });
    assert_eq!(saved(&out), [Seq(3)]);
    assert_eq!(h.status(), SyncStatus::UpToDate);
}
#[test]
fn a_change_from_a_newer_app_or_filed_under_another_records_tag_is_not_applied() {
    let keys = keys();
    let mut newer = encode_plaintext(RECORD, b"v3");
    newer[0] = 3;
    let misfiled = keys.seal(doc_tag(&keys, OTHER), &encode_plaintext(RECORD, b"x"), [7; 24]).expect("seal");
    let foreign = Keys::derive(&WorkspaceSecret::from_random_bytes([9; 32]), keys.workspace())
        .seal(doc_tag(&keys, RECORD), &encode_plaintext(RECORD, b"x"), [7; 24])
        .expect("seal");
    let cases = [
        (keys.seal(doc_tag(&keys, RECORD), &newer, [7; 24]).expect("seal"), "format 3"),
        (misfiled, "another"),
        (foreign, "decrypted"),
        (Envelope { doc_tag: DocTag::from_bytes([0; 32]), nonce: [0; 24], ciphertext: vec![1; 3] }, "decrypted"),
    ];
    for (envelope, says) in cases {
        let mut h = Harness::new(false, Seq::ZERO);
        let out = h.connect(1);
        let (request, _) = the_pull(&out);
        let out = h.recv(ServerMessage::Batch {
            request,
            entries: vec![LogEntry { seq: Seq(1), kind: EntryKind::Change, envelope }],
            cursor: Seq(1),
            more: false,
        });
        assert!(applies(&out).is_empty(), "{says}");
        assert!(saved(&out).is_empty());
        match problems(&out).as_slice() {
            [SyncProblem::UnreadableChange { seq: Seq(1), reason }] => assert!(reason.contains(says), "{reason}"),
            other => panic!("{other:?}"),
        }
        let set_aside = quarantines(&out);
        let change = &set_aside[0].0[0];
        assert!(change.reason.contains(says), "{}", change.reason);
        assert_eq!(change.record, (says == "another").then_some(RECORD), "the record when it is known");
        assert!(!change.detail.is_empty());
        assert_eq!(saved(&h.input(Input::Applied { through: Seq(1) })), [Seq(1)]);
    }
}

#[test]
fn a_change_the_app_rejects_is_set_aside_and_pulling_goes_on_after_it() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.connect(3);
    let (request, _) = the_pull(&out);
    h.recv(ServerMessage::Batch {
        request,
        entries: vec![entry(1, RECORD, b"a"), entry(2, OTHER, b"not automerge"), entry(3, RECORD, b"c")],
        cursor: Seq(3),
        more: false,
    });
    let failure = ApplyFailure { at: Seq(2), kind: ApplyFailureKind::Rejected("not Automerge data".into()) };
    let out = h.input(Input::ApplyFailed { through: Seq(3), failure });
    assert_eq!(saved(&out), [Seq(1)]);
    assert!(sent(&out).is_empty(), "no pull before it is recorded");
    let set_aside = quarantines(&out);
    assert_eq!(set_aside[0].0[0].seq, Seq(2));
    assert_eq!(set_aside[0].0[0].record, Some(OTHER));
    assert!(matches!(h.status(), SyncStatus::Syncing { .. }));
    let out = h.input(Input::Applied { through: Seq(2) });
    assert_eq!(saved(&out), [Seq(2)]);
    assert_eq!(the_pull(&out).1, Seq(2), "the entries after it come again");
}

#[test]
fn a_refusal_naming_no_entry_of_the_apply_starts_over_from_the_saved_cursor() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.connect(2);
    let (request, _) = the_pull(&out);
    h.recv(ServerMessage::Batch {
        request,
        entries: vec![entry(1, RECORD, b"a"), entry(2, RECORD, b"b")],
        cursor: Seq(2),
        more: false,
    });
    let failure = ApplyFailure { at: Seq(9), kind: ApplyFailureKind::Rejected("confused".into()) };
    let out = h.input(Input::ApplyFailed { through: Seq(2), failure });
    assert!(quarantines(&out).is_empty(), "nothing is set aside on a wrong answer");
    assert!(out.contains(&Output::Close));
}
#[test]
fn storage_full_while_applying_closes_and_pulls_again_from_the_saved_cursor_after_reconnecting() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.connect(3);
    let (request, _) = the_pull(&out);
    h.recv(ServerMessage::Batch {
        request,
        entries: vec![entry(1, RECORD, b"a"), entry(2, RECORD, b"b"), entry(3, RECORD, b"c")],
        cursor: Seq(3),
        more: false,
    });
    let failure = ApplyFailure { at: Seq(2), kind: ApplyFailureKind::StorageFull };
    let out = h.input(Input::ApplyFailed { through: Seq(3), failure });
    assert_eq!(saved(&out), [Seq(1)]);
    assert!(out.contains(&Output::Close));
    assert_eq!(h.status(), SyncStatus::Error(SyncProblem::StorageFull));
    let delay = reconnect_delay(&out).expect("retries");
    h.advance(delay);
    h.input(Input::Connected);
    h.recv(ServerMessage::Challenge { nonce: CHALLENGE });
    let out = h.recv(ServerMessage::Welcome { head: Seq(3), limits: limits(), incarnation: INCARNATION });
    assert_eq!(the_pull(&out).1, Seq(1));
}

// --- Connection lifecycle -----------------------------------------------------

#[test]
fn reconnect_backoff_grows_is_capped_and_resets_after_a_successful_sync() {
    let mut h = Harness::new(false, Seq::ZERO);
    h.fixed_random = Some(0xff);
    h.input(Input::Start);
    let mut delays = Vec::new();
    for _ in 0..8 {
        let out = h.input(Input::Disconnected);
        let delay = reconnect_delay(&out).expect("a delay");
        delays.push(delay);
        assert!(!h.advance(delay - 1).contains(&Output::Connect), "not early");
        assert!(h.advance(1).contains(&Output::Connect));
    }
    // With all-ones randomness, each delay is near the top of its window.
    let ceilings = [100, 200, 400, 800, 1_600, 3_000, 3_000, 3_000];
    for (delay, ceiling) in delays.iter().zip(ceilings) {
        assert!(*delay >= ceiling / 2 && *delay <= ceiling, "{delays:?}");
    }
    assert!(delays.windows(2).take(5).all(|w| w[0] < w[1]), "grows: {delays:?}");
    h.input(Input::Connected);
    h.recv(ServerMessage::Challenge { nonce: CHALLENGE });
    h.recv(ServerMessage::Welcome { head: Seq::ZERO, limits: limits(), incarnation: INCARNATION });
    h.empty_outbox();
    assert_eq!(h.status(), SyncStatus::UpToDate);
    let out = h.input(Input::Disconnected);
    assert!(reconnect_delay(&out).is_some_and(|d| d <= 100), "reset: {out:?}");
}

#[test]
fn jitter_comes_from_the_callers_randomness() {
    let delay_with = |byte: u8| {
        let mut h = Harness::new(false, Seq::ZERO);
        h.fixed_random = Some(byte);
        h.input(Input::Start);
        reconnect_delay(&h.input(Input::Disconnected)).expect("a delay")
    };
    assert_ne!(delay_with(0), delay_with(0x3f));
    assert_eq!(delay_with(7), delay_with(7));
}

#[test]
fn a_dead_connection_is_detected_by_the_request_timeout() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.connect(5);
    the_pull(&out);
    assert!(!h.advance(timing().request_timeout_ms - 1).contains(&Output::Close));
    let out = h.advance(1);
    assert!(out.contains(&Output::Close));
    assert!(reconnect_delay(&out).is_some());
    assert_eq!(h.status(), SyncStatus::Error(SyncProblem::RelayUnreachable));
}

#[test]
fn a_quiet_connection_is_probed_with_a_ping_and_a_pong_keeps_it() {
    let mut h = up_to_date(0);
    let out = h.advance(timing().keepalive_ms);
    let request = match sent(&out).as_slice() {
        [ClientMessage::Ping { request }] => *request,
        other => panic!("expected a ping, got {other:?}"),
    };
    h.now += 10;
    h.recv(ServerMessage::Pong { request });
    assert!(!h.advance(timing().request_timeout_ms).contains(&Output::Close));
    assert_eq!(h.status(), SyncStatus::UpToDate);
}

#[test]
fn every_deadline_is_announced_as_a_wake_up() {
    let mut h = Harness::new(false, Seq::ZERO);
    let out = h.input(Input::Start);
    assert!(out.contains(&Output::WakeAfter { ms: timing().handshake_timeout_ms }), "{out:?}");
    let mut h = up_to_date(0);
    let out = h.advance(1);
    assert!(out.iter().any(|o| matches!(o, Output::WakeAfter { .. })), "a tick re-arms the timer: {out:?}");
}

#[test]
fn stop_closes_and_shows_offline_without_reconnecting() {
    let mut h = up_to_date(0);
    let out = h.input(Input::Stop);
    assert!(out.contains(&Output::Close));
    assert!(out.contains(&Output::Status(SyncStatus::Offline)));
    assert!(reconnect_delay(&out).is_none());
    assert!(!h.advance(timing().backoff_max_ms * 2).contains(&Output::Connect));
    // A connection that completes after Stop is closed at once.
    assert!(h.input(Input::Connected).contains(&Output::Close));
}

#[test]
fn the_same_inputs_give_the_same_outputs() {
    let run = || {
        let mut h = Harness::new(true, Seq::ZERO);
        let mut all = h.connect(2);
        let (request, _) = the_pull(&all);
        all.extend(h.input(Input::Outbox(vec![outbox_entry(1, RECORD, b"x")])));
        all.extend(h.recv(ServerMessage::Batch {
            request,
            entries: vec![entry(1, OTHER, b"a"), entry(2, OTHER, b"b")],
            cursor: Seq(2),
            more: false,
        }));
        all.extend(h.input(Input::Disconnected));
        all
    };
    assert_eq!(run(), run());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_frames_in_any_state_never_panic_apply_or_advance_the_cursor(
        state in 0u8..4,
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..6),
    ) {
        let mut h = Harness::new(false, Seq(3));
        match state {
            0 => { h.input(Input::Start); h.input(Input::Connected); }
            1 => { h.open(); }
            2 => { h.connect(3); }
            _ => { h.connect(9); }
        }
        for bytes in frames {
            let mut framed = vec![PROTOCOL_VERSION];
            framed.extend_from_slice(&bytes);
            for f in [bytes, framed] {
                let out = h.input(Input::Frame(&f));
                prop_assert!(applies(&out).is_empty());
                prop_assert!(saved(&out).is_empty());
            }
        }
        prop_assert_eq!(h.engine.cursor(), Seq(3));
    }
}

fn snapshot_entry(seq: u64, record: RecordId, body: &[u8]) -> OutboxEntry {
    OutboxEntry { kind: OutboxKind::Snapshot, ..outbox_entry(seq, record, body) }
}

fn the_snapshot(out: &[Output]) -> (RequestId, Envelope, Seq) {
    let found: Vec<_> = sent(out)
        .into_iter()
        .filter_map(|m| match m {
            ClientMessage::ReplaceWithSnapshot { request, snapshot, covers_through, incarnation } => {
                assert_eq!(incarnation, INCARNATION, "a snapshot names the incarnation of its connection");
                Some((request, snapshot, covers_through))
            }
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one snapshot in {out:?}");
    found.into_iter().next().expect("one snapshot")
}

#[test]
fn a_snapshot_entry_is_sent_alone_covering_the_cursor_and_acknowledged_only_when_stored() {
    let mut h = up_to_date(7);
    h.input(Input::LocalChanges);
    let out = h.input(Input::Outbox(vec![snapshot_entry(20, RECORD, b"epoch 1"), outbox_entry(21, OTHER, b"later")]));
    let (request, snapshot, covers) = the_snapshot(&out);
    assert_eq!(covers, Seq(7), "covers everything applied");
    assert_eq!(open_envelope(&keys(), &snapshot), Ok((RECORD, b"epoch 1".to_vec())));
    assert!(!out.iter().any(|o| matches!(o, Output::AckOutbox(_))), "no ack before the relay stores it");
    assert!(matches!(h.status(), SyncStatus::Syncing { .. }));
    let out = h.recv(ServerMessage::SnapshotStored { request, seq: Seq(8), removed: 3 });
    assert_eq!(out.first(), Some(&Output::AckOutbox(vec![20])));
    assert_eq!(saved(&out), [Seq(8)], "its own entry directly follows the cursor");
    assert!(out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "then the changes after it: {out:?}");
    let out = h.input(Input::Outbox(vec![outbox_entry(21, OTHER, b"later")]));
    let (request, envelopes) = the_push(&out);
    assert_eq!(envelopes.len(), 1);
    h.recv(ServerMessage::Pushed { request, seqs: vec![Seq(9)] });
    h.empty_outbox();
    assert_eq!(h.status(), SyncStatus::UpToDate);
}

#[test]
fn changes_queued_before_a_snapshot_are_pushed_first() {
    let mut h = up_to_date(2);
    h.input(Input::LocalChanges);
    let entries =
        vec![outbox_entry(1, OTHER, b"before"), snapshot_entry(2, RECORD, b"epoch"), outbox_entry(3, OTHER, b"after")];
    let out = h.input(Input::Outbox(entries.clone()));
    let (request, envelopes) = the_push(&out);
    assert_eq!(envelopes.len(), 1, "only what comes before the snapshot");
    let out = h.recv(ServerMessage::Pushed { request, seqs: vec![Seq(3)] });
    assert_eq!(out.first(), Some(&Output::AckOutbox(vec![1])));
    let out = h.input(Input::Outbox(entries[1..].to_vec()));
    let (_, _, covers) = the_snapshot(&out);
    assert_eq!(covers, Seq(3), "its own push is applied too");
}

#[test]
fn a_snapshot_lost_to_a_disconnect_is_sent_again_after_the_pull_covering_the_new_cursor() {
    let mut h = up_to_date(4);
    h.input(Input::LocalChanges);
    let out = h.input(Input::Outbox(vec![snapshot_entry(1, RECORD, b"epoch")]));
    the_snapshot(&out);
    let out = h.input(Input::Disconnected);
    assert!(!out.iter().any(|o| matches!(o, Output::AckOutbox(_))));
    let delay = reconnect_delay(&out).expect("reconnects");
    h.advance(delay);
    h.input(Input::Connected);
    h.recv(ServerMessage::Challenge { nonce: CHALLENGE });
    // The first send was stored (at 5) and someone edited after it (6).
    let out = h.recv(ServerMessage::Welcome { head: Seq(6), limits: limits(), incarnation: INCARNATION });
    let (request, _) = the_pull(&out);
    let page = vec![entry(5, RECORD, b"our snapshot"), entry(6, RECORD, b"their edit")];
    h.recv(ServerMessage::Batch { request, entries: page, cursor: Seq(6), more: false });
    let out = h.input(Input::Applied { through: Seq(6) });
    assert!(out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "{out:?}");
    let out = h.input(Input::Outbox(vec![snapshot_entry(1, RECORD, b"epoch + their edit")]));
    let (request, snapshot, covers) = the_snapshot(&out);
    assert_eq!(covers, Seq(6));
    assert_eq!(open_envelope(&keys(), &snapshot), Ok((RECORD, b"epoch + their edit".to_vec())));
    let out = h.recv(ServerMessage::SnapshotStored { request, seq: Seq(7), removed: 2 });
    assert_eq!(out.first(), Some(&Output::AckOutbox(vec![1])));
}

#[test]
fn a_rate_limited_snapshot_is_sent_again_and_one_that_times_out_reconnects() {
    let mut h = up_to_date(0);
    h.input(Input::LocalChanges);
    let out = h.input(Input::Outbox(vec![snapshot_entry(1, RECORD, b"epoch")]));
    let (request, _, _) = the_snapshot(&out);
    let out = h.recv(wire_error(ErrorCode::RateLimited, false, Some(request), Some(250)));
    assert!(!out.contains(&Output::Close));
    let out = h.advance(250);
    assert!(out.iter().any(|o| matches!(o, Output::ReadOutbox { .. })), "{out:?}");
    let out = h.input(Input::Outbox(vec![snapshot_entry(1, RECORD, b"epoch")]));
    the_snapshot(&out);
    let out = h.advance(timing().request_timeout_ms);
    assert!(out.contains(&Output::Close), "{out:?}");
    assert_eq!(h.status(), SyncStatus::Error(SyncProblem::RelayUnreachable));
}

#[test]
fn a_snapshot_too_large_is_reported_kept_and_the_changes_after_it_still_go() {
    let small = ServerLimits { max_frame_bytes: 300, max_envelopes_per_push: 10, max_pull_entries: 100 };
    let mut h = Harness::new(false, Seq::ZERO);
    h.open();
    h.recv(ServerMessage::Welcome { head: Seq::ZERO, limits: small, incarnation: INCARNATION });
    let out = h.input(Input::Outbox(vec![snapshot_entry(1, RECORD, &[7; 400]), outbox_entry(2, OTHER, b"small")]));
    assert!(matches!(problems(&out).as_slice(), [SyncProblem::ChangeTooLarge { record: RECORD, .. }]), "{out:?}");
    let (_, envelopes) = the_push(&out);
    assert_eq!(envelopes.len(), 1);
}

#[test]
fn a_stored_snapshot_never_asked_for_is_a_protocol_error() {
    let mut h = up_to_date(0);
    let out = h.recv(ServerMessage::SnapshotStored { request: 99, seq: Seq(1), removed: 0 });
    assert!(out.contains(&Output::Close), "{out:?}");
    // Nor does a push's id answer as a snapshot.
    let mut h = up_to_date(0);
    h.input(Input::LocalChanges);
    let out = h.input(Input::Outbox(vec![outbox_entry(1, RECORD, b"x")]));
    let (request, _) = the_push(&out);
    let out = h.recv(ServerMessage::SnapshotStored { request, seq: Seq(1), removed: 0 });
    assert!(out.contains(&Output::Close), "{out:?}");
    // Nor does `Pushed` answer a snapshot.
    let mut h = up_to_date(0);
    h.input(Input::LocalChanges);
    let out = h.input(Input::Outbox(vec![snapshot_entry(1, RECORD, b"epoch")]));
    let (request, _, _) = the_snapshot(&out);
    let out = h.recv(ServerMessage::Pushed { request, seqs: vec![Seq(1)] });
    assert!(out.contains(&Output::Close), "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, Output::AckOutbox(_))));
}

// --- Bounded queue of live entries ---------------------------------------------

#[test]
fn live_entries_beyond_the_queue_bound_are_dropped_and_pulled_later_in_order() {
    let mut h = Harness::new(false, Seq(1));
    h.engine = SyncEngine::with_timing(keys(), false, Seq(1), Timing { max_queued_entries: 3, ..timing() })
        .with_incarnation(Some(INCARNATION));
    h.connect(1);
    h.empty_outbox();
    // An apply is outstanding (the app is slow) while live frames stream in.
    let out = h.recv(ServerMessage::Live { entries: vec![entry(2, RECORD, b"b")] });
    assert_eq!(applies(&out)[0].1, Seq(2));
    for seq in 3..50 {
        h.recv(ServerMessage::Live { entries: vec![entry(seq, RECORD, b"x")] });
        let queued: usize = h.engine.queue.iter().map(|p| p.entries.len()).sum();
        assert!(queued <= 3, "{queued} entries queued after live entry {seq}");
    }
    assert_eq!(h.engine.head(), Seq(49), "the head is still known");
    // Once the app catches up, what was dropped is pulled, in order.
    let mut out = h.input(Input::Applied { through: Seq(2) });
    while let Some((_, through)) = applies(&out).first().cloned() {
        out = h.input(Input::Applied { through });
    }
    let (_, since) = the_pull(&out);
    assert_eq!(since, Seq(5), "after the entries that fitted");
    assert_ne!(h.status(), SyncStatus::UpToDate, "not up to date while entries are missing");
}

#[test]
fn live_entries_beyond_the_byte_bound_are_dropped_too() {
    let mut h = Harness::new(false, Seq(1));
    h.engine = SyncEngine::with_timing(keys(), false, Seq(1), Timing { max_queued_bytes: 1_000, ..timing() })
        .with_incarnation(Some(INCARNATION));
    h.connect(1);
    h.empty_outbox();
    h.recv(ServerMessage::Live { entries: vec![entry(2, RECORD, b"b")] });
    h.recv(ServerMessage::Live { entries: vec![entry(3, RECORD, &[7; 600])] });
    h.recv(ServerMessage::Live { entries: vec![entry(4, RECORD, &[7; 600])] });
    let bytes: usize = h.engine.queue.iter().flat_map(|p| &p.entries).map(|e| e.bytes.len()).sum();
    assert!(bytes <= 1_000, "{bytes} bytes queued");
    assert_eq!(h.engine.head(), Seq(4));
}

// --- Relay incarnations -----------------------------------------------------

const RESTORED: Incarnation = Incarnation::from_bytes([0x2d; 16]);

fn resets(out: &[Output]) -> Vec<Incarnation> {
    out.iter()
        .filter_map(|o| match o {
            Output::ResetLog { incarnation } => Some(*incarnation),
            _ => None,
        })
        .collect()
}

fn reads_outbox(out: &[Output]) -> bool {
    out.iter().any(|o| matches!(o, Output::ReadOutbox { .. }))
}

#[test]
fn a_welcome_from_another_incarnation_resets_the_log_and_pulls_from_zero_before_any_push() {
    // This device read up to 5 of the old log; the restored log has 3
    // entries, numbered 1 to 3 again (not the ones it read).
    let mut h = Harness::new(false, Seq(5));
    h.open();
    let out = h.recv(ServerMessage::Welcome { head: Seq(3), limits: limits(), incarnation: RESTORED });
    assert_eq!(resets(&out), [RESTORED]);
    assert!(problems(&out).contains(&SyncProblem::RelayReset));
    assert!(sent(&out).is_empty(), "nothing is pulled or pushed before the reset is durable: {out:?}");
    assert!(!reads_outbox(&out));
    assert_eq!(h.engine.cursor(), Seq::ZERO);
    assert_eq!(h.engine.incarnation(), Some(INCARNATION), "the new one counts once it is saved");
    assert!(matches!(h.status(), SyncStatus::Syncing { .. }));

    let out = h.input(Input::LogReset { incarnation: RESTORED });
    assert_eq!(h.engine.incarnation(), Some(RESTORED));
    let (request, since) = the_pull(&out);
    assert_eq!(since, Seq::ZERO, "the whole restored log");
    assert!(!reads_outbox(&out), "pull before push");
    let entries = vec![entry(1, RECORD, b"a"), entry(2, OTHER, b"b"), entry(3, RECORD, b"c")];
    let out = h.recv(ServerMessage::Batch { request, entries, cursor: Seq(3), more: false });
    let (_, through) = applies(&out).pop().expect("an apply");
    let out = h.input(Input::Applied { through });
    assert_eq!(saved(&out), [Seq(3)]);
    assert!(reads_outbox(&out), "then the upload (the documents queued by the reset): {out:?}");
}

#[test]
fn the_same_incarnation_does_not_reset() {
    let mut h = Harness::new(false, Seq(5));
    let out = h.connect(5);
    assert!(resets(&out).is_empty());
    assert!(!out.iter().any(|o| matches!(o, Output::SaveIncarnation(_))));
    assert!(reads_outbox(&out));
}

#[test]
fn a_cursor_without_a_saved_incarnation_resets_once_and_a_new_device_only_saves_it() {
    // An app from before incarnations: its cursor cannot be trusted.
    let mut h = Harness::new(false, Seq(4));
    h.engine = SyncEngine::with_timing(keys(), false, Seq(4), timing());
    let out = h.connect(9);
    assert_eq!(resets(&out), [INCARNATION]);
    h.input(Input::LogReset { incarnation: INCARNATION });
    assert_eq!(h.engine.incarnation(), Some(INCARNATION));

    // A device that has read nothing adopts the incarnation.
    let mut h = Harness::new(false, Seq::ZERO);
    h.engine = SyncEngine::with_timing(keys(), false, Seq::ZERO, timing());
    let out = h.connect(9);
    assert!(resets(&out).is_empty());
    assert!(out.contains(&Output::SaveIncarnation(INCARNATION)));
    assert_eq!(the_pull(&out).1, Seq::ZERO);
    assert_eq!(h.engine.incarnation(), Some(INCARNATION));
}

#[test]
fn a_reset_cut_short_by_a_disconnect_is_done_again_after_the_next_welcome() {
    let mut h = Harness::new(false, Seq(5));
    h.open();
    let out = h.recv(ServerMessage::Welcome { head: Seq(3), limits: limits(), incarnation: RESTORED });
    assert_eq!(resets(&out), [RESTORED]);
    let out = h.input(Input::StorageFailed(StorageError::QuotaExceeded));
    assert!(out.contains(&Output::Close));
    // A late answer from the failed reset changes nothing.
    h.input(Input::LogReset { incarnation: RESTORED });
    assert_eq!(h.engine.incarnation(), Some(INCARNATION));
    let delay = reconnect_delay(&out).expect("reconnects");
    h.now += delay;
    h.input(Input::Tick);
    h.input(Input::Connected);
    h.recv(ServerMessage::Challenge { nonce: CHALLENGE });
    let out = h.recv(ServerMessage::Welcome { head: Seq(3), limits: limits(), incarnation: RESTORED });
    assert_eq!(resets(&out), [RESTORED], "the saved incarnation is still the old one");
}

#[test]
fn a_snapshot_refused_for_another_incarnation_deletes_nothing_resets_and_goes_again_over_the_new_log() {
    let mut h = up_to_date(7);
    h.input(Input::LocalChanges);
    let snapshot = snapshot_entry(20, RECORD, b"epoch 1");
    let out = h.input(Input::Outbox(vec![snapshot.clone()]));
    let (request, _, covers) = the_snapshot(&out);
    assert_eq!(covers, Seq(7));
    let out = h.recv(ServerMessage::Error(WireError {
        request: Some(request),
        code: ErrorCode::IncarnationChanged,
        message: "the log is another incarnation".into(),
        fatal: false,
        retry_after_ms: None,
    }));
    assert!(!out.iter().any(|o| matches!(o, Output::AckOutbox(_))), "the snapshot stays queued");
    assert!(out.contains(&Output::Close));
    assert!(problems(&out).contains(&SyncProblem::RelayReset));
    let delay = reconnect_delay(&out).expect("reconnects");
    h.now += delay;
    h.input(Input::Tick);
    h.input(Input::Connected);
    h.recv(ServerMessage::Challenge { nonce: CHALLENGE });
    // Even a Welcome naming the same incarnation resets: the relay said
    // the log is not the one this device read.
    let out = h.recv(ServerMessage::Welcome { head: Seq(2), limits: limits(), incarnation: INCARNATION });
    assert_eq!(resets(&out), [INCARNATION]);
    let out = h.input(Input::LogReset { incarnation: INCARNATION });
    let (request, since) = the_pull(&out);
    assert_eq!(since, Seq::ZERO);
    let entries = vec![entry(1, RECORD, b"a"), entry(2, OTHER, b"b")];
    let out = h.recv(ServerMessage::Batch { request, entries, cursor: Seq(2), more: false });
    let (_, through) = applies(&out).pop().expect("an apply");
    let out = h.input(Input::Applied { through });
    assert!(reads_outbox(&out));
    let out = h.input(Input::Outbox(vec![snapshot]));
    let (_, _, covers) = the_snapshot(&out);
    assert_eq!(covers, Seq(2), "it covers only what this device read of the new log");
}

#[test]
fn a_relay_of_another_protocol_version_says_who_must_update_and_retries_slowly() {
    for (relay, title) in [(PROTOCOL_VERSION + 1, "Update needed"), (PROTOCOL_VERSION - 1, "Sync server out of date")] {
        let mut h = Harness::new(false, Seq::ZERO);
        h.input(Input::Start);
        h.input(Input::Connected);
        let mut challenge = frame(&ServerMessage::Challenge { nonce: CHALLENGE });
        challenge[0] = relay;
        let out = h.input(Input::Frame(&challenge));
        let problem = SyncProblem::VersionMismatch { relay, app: PROTOCOL_VERSION };
        assert_eq!(problems(&out), std::slice::from_ref(&problem));
        assert_eq!(problem.title(), title);
        assert!(out.contains(&Output::Close));
        assert!(reconnect_delay(&out).expect("retries") >= timing().backoff_max_ms / 2, "slowly");
        assert_eq!(h.status(), SyncStatus::Error(problem));
    }
}
