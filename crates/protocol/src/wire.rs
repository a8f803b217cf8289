//! The wire format: [`ClientMessage`] and [`ServerMessage`], one per
//! WebSocket binary frame, each frame being
//!
//! ```text
//! [PROTOCOL_VERSION: u8] [postcard encoding of the message]
//! ```
//!
//! Postcard (<https://postcard.jamesmunns.com/wire-format>) is a frozen,
//! documented format: enums are a varint variant index followed by their
//! fields in order, integers are varints, fixed byte arrays are raw bytes,
//! byte strings a varint length then raw bytes. Variant and field order is
//! therefore part of the protocol: **only append variants, never reorder**;
//! any other change bumps [`PROTOCOL_VERSION`].
//!
//! Decoding never panics and never trusts a length from the wire for an
//! allocation beyond the frame's own size (tested with proptest).

use serde::{Deserialize, Serialize};

use crate::crypto::{AuthSignature, AuthVerifier, ChallengeNonce, Envelope};
use crate::ids::{DocTag, Incarnation, RequestId, Seq, WorkspaceId};

/// The first byte of every frame.
///
/// Version 2 added the log's [`Incarnation`] to [`ServerMessage::Welcome`]
/// and [`ClientMessage::ReplaceWithSnapshot`], and
/// [`ErrorCode::IncarnationChanged`]. Each side refuses frames of another
/// version (never misreads them): see [`DecodeError::UnsupportedVersion`]
/// and [`WireError::encode_for_version`].
pub const PROTOCOL_VERSION: u8 = 2;

/// The oldest version whose `Error` frames are encoded exactly as in
/// [`PROTOCOL_VERSION`]: a relay answers a client of that version (or
/// newer) with an error frame that client can read ("update the app").
pub const OLDEST_READABLE_ERROR_VERSION: u8 = 1;

/// A frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame has no bytes at all.
    #[error("empty frame: expected a version byte followed by a message")]
    Empty,
    /// The version byte is not one this build speaks.
    #[error("unsupported protocol version {found}; this side speaks version {supported}")]
    UnsupportedVersion {
        /// Version byte received.
        found: u8,
        /// Version this build speaks.
        supported: u8,
    },
    /// The bytes after the version byte are not a valid message.
    #[error("malformed {what} message: {reason}")]
    Malformed {
        /// "client" or "server".
        what: &'static str,
        /// Postcard's description of the problem.
        reason: String,
    },
    /// A valid message was followed by extra bytes.
    #[error("{count} unexpected bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
}

/// A message could not be encoded (only possible for a broken serializer;
/// kept as a typed error rather than a panic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not encode a protocol message: {0}")]
pub struct EncodeError(String);

fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, EncodeError> {
    postcard::to_extend(msg, vec![PROTOCOL_VERSION]).map_err(|e| EncodeError(e.to_string()))
}

fn decode<'a, T: Deserialize<'a>>(frame: &'a [u8], what: &'static str) -> Result<T, DecodeError> {
    let (&version, body) = frame.split_first().ok_or(DecodeError::Empty)?;
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion { found: version, supported: PROTOCOL_VERSION });
    }
    let (msg, rest) =
        postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed { what, reason: e.to_string() })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { count: rest.len() });
    }
    Ok(msg)
}

/// Messages from an app (client) to the relay.
///
/// After the WebSocket opens, the relay sends [`ServerMessage::Challenge`];
/// the client's first message must be [`ClientMessage::Hello`]. Every other
/// request carries a client-chosen [`RequestId`] that the reply echoes;
/// the relay answers requests of one connection in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Authenticates to a workspace by signing the relay's challenge.
    /// `register` creates the workspace on this relay with that verifier if
    /// it does not exist yet (ignored when it does).
    Hello {
        /// The workspace to open.
        workspace: WorkspaceId,
        /// `Keys::sign_challenge` of the relay's challenge.
        signature: AuthSignature,
        /// The verifier to create the workspace with, if it is new.
        register: Option<AuthVerifier>,
    },
    /// Appends envelopes to the workspace log; answered by
    /// [`ServerMessage::Pushed`] once durably stored.
    Push {
        /// Echoed in the reply.
        request: RequestId,
        /// In log order.
        envelopes: Vec<Envelope>,
    },
    /// Reads log entries with a sequence number greater than `since`;
    /// answered by [`ServerMessage::Batch`].
    Pull {
        /// Echoed in the reply.
        request: RequestId,
        /// The client's cursor.
        since: Seq,
        /// At most this many entries (the relay may cap it lower).
        limit: u32,
    },
    /// Replaces every entry of `snapshot.doc_tag` with `seq <= covers_through`
    /// (change chunks and any older snapshot) by this compacted snapshot,
    /// which gets a new sequence number. Entries after `covers_through` are
    /// kept, so concurrent pushes are never lost. Refused with
    /// [`ErrorCode::IncarnationChanged`], and not executed, unless
    /// `incarnation` is the log's current one: `covers_through` is a
    /// position in that log only.
    ReplaceWithSnapshot {
        /// Echoed in the reply.
        request: RequestId,
        /// The encrypted compacted document.
        snapshot: Envelope,
        /// The highest sequence number whose content the snapshot includes.
        covers_through: Seq,
        /// The incarnation of the log `covers_through` was read from (the
        /// one `Welcome` announced on this connection).
        incarnation: Incarnation,
    },
    /// Erasure: removes every envelope and the snapshot of a document.
    DeleteDocument {
        /// Echoed in the reply.
        request: RequestId,
        /// The document to remove.
        doc_tag: DocTag,
    },
    /// Keep-alive and round-trip probe; answered by [`ServerMessage::Pong`].
    Ping {
        /// Echoed in the reply.
        request: RequestId,
    },
}

impl ClientMessage {
    /// Encodes as one binary frame.
    ///
    /// # Errors
    /// [`EncodeError`] only if serialization itself fails (not expected).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        encode(self)
    }

    /// Decodes one binary frame.
    ///
    /// # Errors
    /// [`DecodeError`] for an empty frame, another version, malformed bytes
    /// or trailing bytes. Never panics.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        decode(frame, "client")
    }

    /// The request id, for every message that has one.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            ClientMessage::Hello { .. } => None,
            ClientMessage::Push { request, .. }
            | ClientMessage::Pull { request, .. }
            | ClientMessage::ReplaceWithSnapshot { request, .. }
            | ClientMessage::DeleteDocument { request, .. }
            | ClientMessage::Ping { request } => Some(*request),
        }
    }
}

/// What kind of content a log entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    /// Incremental Automerge changes.
    Change,
    /// A compacted whole document that replaced earlier entries.
    Snapshot,
}

/// One entry of a workspace's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Its server sequence number.
    pub seq: Seq,
    /// Change or snapshot.
    pub kind: EntryKind,
    /// The encrypted content.
    pub envelope: Envelope,
}

/// The limits a relay enforces, announced in [`ServerMessage::Welcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerLimits {
    /// Largest frame the relay accepts, in bytes.
    pub max_frame_bytes: u32,
    /// Most envelopes in one push.
    pub max_envelopes_per_push: u32,
    /// Most entries in one batch.
    pub max_pull_entries: u32,
}

/// Why the relay refused something. Codes are stable; the message is for
/// logs and developers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame's version byte is not spoken by the relay.
    UnsupportedVersion,
    /// The frame could not be decoded, or was a text frame.
    Malformed,
    /// The frame exceeded the relay's size limit.
    FrameTooLarge,
    /// The message is not allowed at this point (e.g. a push before Hello).
    UnexpectedMessage,
    /// The signature did not verify: the client lacks the workspace secret.
    Unauthorized,
    /// The workspace does not exist on this relay and no verifier was sent.
    UnknownWorkspace,
    /// Hello did not arrive in time.
    HandshakeTimeout,
    /// Nothing arrived for too long.
    IdleTimeout,
    /// Too many frames or bytes; retry after `retry_after_ms`.
    RateLimited,
    /// The request is well-formed but invalid (empty push, cursor ahead of
    /// the log, too many envelopes...).
    InvalidRequest,
    /// A pull's cursor is past the workspace's head: the relay lost data
    /// (e.g. restored from a backup) or the cursor is from another relay.
    /// Pull from `Seq::ZERO` and push what the relay is missing.
    CursorAhead,
    /// The relay is at its connection limit or shutting down.
    Unavailable,
    /// The relay failed internally (storage); the request was not applied.
    Internal,
    /// A `ReplaceWithSnapshot` named another incarnation of the log than
    /// the current one (the relay was restored or reset since the client
    /// read it): not executed. Reconnect, pull from `Seq::ZERO`, and
    /// compute the replacement again.
    IncarnationChanged,
}

/// An error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// The request it answers, if any.
    pub request: Option<RequestId>,
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
    /// When set, the relay closes the connection after this frame.
    pub fatal: bool,
    /// For [`ErrorCode::RateLimited`]: when a retry can succeed.
    pub retry_after_ms: Option<u32>,
}

impl WireError {
    /// Encodes this error as a `ServerMessage::Error` frame of `version`,
    /// so that a peer speaking an older version reads it (in words: "update
    /// the app") instead of refusing the frame. `Error` frames are encoded
    /// identically from [`OLDEST_READABLE_ERROR_VERSION`] to
    /// [`PROTOCOL_VERSION`]; any other version gets the current encoding.
    ///
    /// # Errors
    /// [`EncodeError`] only if serialization itself fails (not expected).
    pub fn encode_for_version(&self, version: u8) -> Result<Vec<u8>, EncodeError> {
        let version = if (OLDEST_READABLE_ERROR_VERSION..=PROTOCOL_VERSION).contains(&version) {
            version
        } else {
            PROTOCOL_VERSION
        };
        let mut frame = ServerMessage::Error(self.clone()).encode()?;
        frame[0] = version;
        Ok(frame)
    }
}

/// Messages from the relay to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// First frame of every connection: sign this.
    Challenge {
        /// Fresh random bytes for this connection.
        nonce: ChallengeNonce,
    },
    /// Authentication succeeded.
    Welcome {
        /// The workspace's newest sequence number: nothing to pull when the
        /// client's cursor equals it (within the same incarnation).
        head: Seq,
        /// What the relay accepts.
        limits: ServerLimits,
        /// The current incarnation of the workspace's log. A client whose
        /// cursor was read from another incarnation pulls from
        /// `Seq::ZERO` and uploads again what the relay may lack.
        incarnation: Incarnation,
    },
    /// A push was durably committed; one sequence number per envelope, in
    /// order.
    Pushed {
        /// The push's request id.
        request: RequestId,
        /// Assigned sequence numbers.
        seqs: Vec<Seq>,
    },
    /// A page of the log.
    Batch {
        /// The pull's request id.
        request: RequestId,
        /// Entries in increasing `seq`.
        entries: Vec<LogEntry>,
        /// The cursor to send as `since` next time.
        cursor: Seq,
        /// More entries are waiting past `cursor`: pull again.
        more: bool,
    },
    /// A snapshot replaced earlier entries.
    SnapshotStored {
        /// The request id.
        request: RequestId,
        /// The snapshot's new sequence number.
        seq: Seq,
        /// How many entries it replaced.
        removed: u64,
    },
    /// A document's data was erased from the relay.
    DocumentDeleted {
        /// The request id.
        request: RequestId,
        /// How many entries (envelopes and snapshot) were removed.
        removed: u64,
    },
    /// Entries just committed by another member of the workspace. A hint:
    /// advance the cursor only when `entries[0].seq` directly follows it,
    /// otherwise pull.
    Live {
        /// The new entries.
        entries: Vec<LogEntry>,
    },
    /// The relay dropped live entries for this slow connection: pull up to
    /// at least `head`.
    Behind {
        /// The workspace head when this was sent.
        head: Seq,
    },
    /// Answer to [`ClientMessage::Ping`].
    Pong {
        /// The ping's request id.
        request: RequestId,
    },
    /// Something was refused.
    Error(WireError),
}

impl ServerMessage {
    /// Encodes as one binary frame.
    ///
    /// # Errors
    /// [`EncodeError`] only if serialization itself fails (not expected).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        encode(self)
    }

    /// Decodes one binary frame.
    ///
    /// # Errors
    /// [`DecodeError`] for an empty frame, another version, malformed bytes
    /// or trailing bytes. Never panics.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        decode(frame, "server")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn envelope(i: u8) -> Envelope {
        Envelope {
            doc_tag: DocTag::from_bytes([i; 32]),
            nonce: [i.wrapping_add(1); 24],
            ciphertext: vec![i; 16 + usize::from(i)],
        }
    }

    fn all_client_messages() -> Vec<ClientMessage> {
        vec![
            ClientMessage::Hello {
                workspace: WorkspaceId::from_bytes([1; 16]),
                signature: AuthSignature::from_bytes([2; 64]),
                register: Some(AuthVerifier::from_bytes([3; 32])),
            },
            ClientMessage::Hello {
                workspace: WorkspaceId::from_bytes([1; 16]),
                signature: AuthSignature::from_bytes([2; 64]),
                register: None,
            },
            ClientMessage::Push { request: 7, envelopes: vec![envelope(1), envelope(2)] },
            ClientMessage::Pull { request: u32::MAX, since: Seq(u64::MAX), limit: 100 },
            ClientMessage::ReplaceWithSnapshot {
                request: 9,
                snapshot: envelope(3),
                covers_through: Seq(42),
                incarnation: Incarnation::from_bytes([8; 16]),
            },
            ClientMessage::DeleteDocument { request: 10, doc_tag: DocTag::from_bytes([4; 32]) },
            ClientMessage::Ping { request: 11 },
        ]
    }

    fn all_server_messages() -> Vec<ServerMessage> {
        let entry = |s: u64, kind| LogEntry { seq: Seq(s), kind, envelope: envelope(s as u8) };
        vec![
            ServerMessage::Challenge { nonce: ChallengeNonce::from_bytes([5; 32]) },
            ServerMessage::Welcome {
                head: Seq(3),
                limits: ServerLimits { max_frame_bytes: 1 << 20, max_envelopes_per_push: 1000, max_pull_entries: 500 },
                incarnation: Incarnation::from_bytes([6; 16]),
            },
            ServerMessage::Pushed { request: 1, seqs: vec![Seq(4), Seq(5)] },
            ServerMessage::Batch {
                request: 2,
                entries: vec![entry(1, EntryKind::Change), entry(2, EntryKind::Snapshot)],
                cursor: Seq(2),
                more: true,
            },
            ServerMessage::SnapshotStored { request: 3, seq: Seq(9), removed: 4 },
            ServerMessage::DocumentDeleted { request: 4, removed: 2 },
            ServerMessage::Live { entries: vec![entry(6, EntryKind::Change)] },
            ServerMessage::Behind { head: Seq(77) },
            ServerMessage::Pong { request: 5 },
            ServerMessage::Error(WireError {
                request: Some(6),
                code: ErrorCode::RateLimited,
                message: "slow down".into(),
                fatal: false,
                retry_after_ms: Some(250),
            }),
        ]
    }

    #[test]
    fn every_client_message_round_trips() {
        for msg in all_client_messages() {
            let frame = msg.encode().expect("encode");
            assert_eq!(frame[0], PROTOCOL_VERSION);
            assert_eq!(ClientMessage::decode(&frame), Ok(msg));
        }
    }

    #[test]
    fn every_server_message_round_trips() {
        for msg in all_server_messages() {
            let frame = msg.encode().expect("encode");
            assert_eq!(ServerMessage::decode(&frame), Ok(msg));
        }
    }

    #[test]
    fn the_encoding_is_pinned() {
        // A change to these bytes is a protocol break: bump PROTOCOL_VERSION.
        let frame = ClientMessage::Pull { request: 300, since: Seq(5), limit: 2 }.encode().expect("encode");
        assert_eq!(frame, vec![2, 2, 0xac, 0x02, 5, 2]);
        let frame = ServerMessage::Pong { request: 1 }.encode().expect("encode");
        assert_eq!(frame, vec![2, 8, 1]);
        let welcome = ServerMessage::Welcome {
            head: Seq(3),
            limits: ServerLimits { max_frame_bytes: 1024, max_envelopes_per_push: 1, max_pull_entries: 2 },
            incarnation: Incarnation::from_bytes([0xab; 16]),
        };
        let mut expected = vec![2, 1, 3, 0x80, 0x08, 1, 2];
        expected.extend([0xab; 16]);
        assert_eq!(welcome.encode().expect("encode"), expected);
    }

    #[test]
    fn a_version_1_frame_is_refused_not_misread() {
        // A version-1 Welcome (no incarnation) as an older relay sends it.
        let v1_welcome = [1, 1, 3, 0x80, 0x08, 1, 2];
        assert_eq!(ServerMessage::decode(&v1_welcome), Err(DecodeError::UnsupportedVersion { found: 1, supported: 2 }));
        // A version-1 ReplaceWithSnapshot as an older app sends it.
        let mut v1_replace = vec![1, 3, 9];
        v1_replace.extend([3; 32]);
        v1_replace.extend([4; 24]);
        v1_replace.extend([16]);
        v1_replace.extend([5; 16]);
        v1_replace.push(42);
        assert_eq!(ClientMessage::decode(&v1_replace), Err(DecodeError::UnsupportedVersion { found: 1, supported: 2 }));
    }

    #[test]
    fn an_error_for_an_older_client_is_encoded_in_its_version() {
        let error = WireError {
            request: None,
            code: ErrorCode::UnsupportedVersion,
            message: "update the app".into(),
            fatal: true,
            retry_after_ms: None,
        };
        let v1 = error.encode_for_version(1).expect("encode");
        assert_eq!(v1[0], 1);
        // The bytes after the version are what a version-1 app decodes:
        // variant 9 (Error), no request, code 0, the message, fatal, none.
        let mut expected = vec![1, 9, 0, 0, 14];
        expected.extend(b"update the app");
        expected.extend([1, 0]);
        assert_eq!(v1, expected);
        let current = error.encode_for_version(0).expect("encode");
        assert_eq!(ServerMessage::decode(&current), Ok(ServerMessage::Error(error)));
    }

    #[test]
    fn an_empty_frame_is_an_error() {
        assert_eq!(ClientMessage::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(ServerMessage::decode(&[]), Err(DecodeError::Empty));
    }

    #[test]
    fn a_wrong_version_is_reported_with_both_versions() {
        let mut frame = ClientMessage::Ping { request: 1 }.encode().expect("encode");
        frame[0] = 3;
        assert_eq!(ClientMessage::decode(&frame), Err(DecodeError::UnsupportedVersion { found: 3, supported: 2 }));
    }

    #[test]
    fn every_truncation_of_every_message_is_an_error_not_a_panic() {
        for msg in all_client_messages() {
            let frame = msg.encode().expect("encode");
            for len in 0..frame.len() {
                assert!(ClientMessage::decode(&frame[..len]).is_err(), "{msg:?} cut at {len}");
            }
        }
        for msg in all_server_messages() {
            let frame = msg.encode().expect("encode");
            for len in 0..frame.len() {
                assert!(ServerMessage::decode(&frame[..len]).is_err(), "{msg:?} cut at {len}");
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut frame = ClientMessage::Ping { request: 1 }.encode().expect("encode");
        frame.push(0);
        assert_eq!(ClientMessage::decode(&frame), Err(DecodeError::TrailingBytes { count: 1 }));
    }

    #[test]
    fn an_unknown_variant_and_a_huge_length_are_malformed() {
        assert!(matches!(ClientMessage::decode(&[PROTOCOL_VERSION, 200]), Err(DecodeError::Malformed { .. })));
        // Push with a claimed 2^63 envelopes and nothing behind it.
        let frame = [PROTOCOL_VERSION, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(matches!(ClientMessage::decode(&frame), Err(DecodeError::Malformed { .. })));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ClientMessage::decode(&bytes);
            let _ = ServerMessage::decode(&bytes);
        }

        #[test]
        fn arbitrary_bodies_behind_a_valid_version_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut frame = vec![PROTOCOL_VERSION];
            frame.extend_from_slice(&bytes);
            let _ = ClientMessage::decode(&frame);
            let _ = ServerMessage::decode(&frame);
        }

        #[test]
        fn mutated_valid_frames_never_panic(idx in 0usize..7, pos in any::<usize>(), byte in any::<u8>()) {
            let mut frame = all_client_messages()[idx].encode().expect("encode");
            let pos = pos % frame.len();
            frame[pos] = byte;
            let _ = ClientMessage::decode(&frame);
        }

        #[test]
        fn pushes_with_arbitrary_envelopes_round_trip(
            request in any::<u32>(),
            items in proptest::collection::vec(
                (any::<[u8; 32]>(), any::<[u8; 24]>(), proptest::collection::vec(any::<u8>(), 0..300)),
                0..8,
            ),
        ) {
            let msg = ClientMessage::Push {
                request,
                envelopes: items
                    .into_iter()
                    .map(|(tag, nonce, ciphertext)| Envelope { doc_tag: DocTag::from_bytes(tag), nonce, ciphertext })
                    .collect(),
            };
            let frame = msg.encode().expect("encode");
            prop_assert_eq!(ClientMessage::decode(&frame), Ok(msg));
        }
    }
}
