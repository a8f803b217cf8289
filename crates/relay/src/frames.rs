//! Exact sizes of the relay's frames, so that nothing it sends exceeds the
//! `max_frame_bytes` it announces: which envelopes can be stored at all (a
//! batch carrying one alone must fit), how a `Live` frame is split, and a
//! cheap look at a request's id without decoding the whole frame.
//!
//! The arithmetic follows the postcard encoding documented in
//! docs/RELAY.md; the tests check it against `ServerMessage::encode`.

use rapport_protocol::{LogEntry, RequestId, ServerMessage, PROTOCOL_VERSION};

pub use rapport_protocol::sizes::{entry_len, envelope_len, fits_alone, varint_len, BATCH_HEAD_MAX, ENTRY_HEAD_MAX};

/// Splits committed entries into `Live` frames of at most `max_frame` bytes
/// each, in order. An entry too large for any frame goes alone (it cannot
/// happen for entries that passed [`fits_alone`]).
pub fn live_frames(entries: Vec<LogEntry>, max_frame: usize) -> Vec<Vec<LogEntry>> {
    // version + variant; the count is added per chunk.
    const LIVE_HEAD: usize = 1 + 1;
    let mut chunks = Vec::new();
    let mut chunk: Vec<LogEntry> = Vec::new();
    let mut size = LIVE_HEAD;
    for entry in entries {
        let len = entry_len(&entry);
        let grown = size + len + varint_len(chunk.len() as u64 + 1);
        if !chunk.is_empty() && grown > max_frame {
            chunks.push(std::mem::take(&mut chunk));
            size = LIVE_HEAD;
        }
        size += len;
        chunk.push(entry);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// The request id of a client frame, read from its first bytes without
/// decoding the rest (every request variant starts with its id). `None`
/// for `Hello`, another version or bytes that do not start a request.
pub fn peek_request_id(frame: &[u8]) -> Option<RequestId> {
    let (&version, rest) = frame.split_first()?;
    if version != PROTOCOL_VERSION {
        return None;
    }
    let (variant, rest) = read_varint(rest)?;
    // 1 Push, 2 Pull, 3 ReplaceWithSnapshot, 4 DeleteDocument, 5 Ping.
    if !(1..=5).contains(&variant) {
        return None;
    }
    let (request, _) = read_varint(rest)?;
    RequestId::try_from(request).ok()
}

/// Encoded size of a server message (for tests and debug assertions).
pub fn encoded_len(msg: &ServerMessage) -> usize {
    msg.encode().map_or(0, |f| f.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapport_protocol::{ClientMessage, DocTag, EntryKind, Envelope, Seq};

    fn entry(seq: u64, len: usize) -> LogEntry {
        LogEntry {
            seq: Seq(seq),
            kind: EntryKind::Change,
            envelope: Envelope { doc_tag: DocTag::from_bytes([7; 32]), nonce: [1; 24], ciphertext: vec![9; len] },
        }
    }

    #[test]
    fn sizes_match_the_encoder() {
        for (seq, len) in [(1, 16), (127, 127), (128, 128), (u64::MAX, 20_000), (1 << 35, 0)] {
            let e = entry(seq, len);
            let live = ServerMessage::Live { entries: vec![e.clone()] };
            assert_eq!(encoded_len(&live), 1 + 1 + 1 + entry_len(&e), "seq {seq} len {len}");
        }
        let widest = ServerMessage::Batch {
            request: u32::MAX,
            entries: vec![entry(u64::MAX, 300)],
            cursor: Seq(u64::MAX),
            more: true,
        };
        assert_eq!(encoded_len(&widest), BATCH_HEAD_MAX - 4 + entry_len(&entry(u64::MAX, 300)));
        assert_eq!(entry_len(&entry(u64::MAX, 300)), ENTRY_HEAD_MAX + envelope_len(&entry(1, 300).envelope));
    }

    #[test]
    fn an_envelope_that_fits_alone_fits_in_any_batch_of_one() {
        let max = 4096;
        let mut len = 0;
        while fits_alone(&entry(1, len + 1).envelope, max) {
            len += 1;
        }
        let widest = ServerMessage::Batch {
            request: u32::MAX,
            entries: vec![entry(u64::MAX, len)],
            cursor: Seq(u64::MAX),
            more: true,
        };
        assert!(encoded_len(&widest) <= max);
        // One byte more would not have fitted under the widest numbers, yet
        // the push that carries it fits in a frame: the relay must refuse it.
        let push = ClientMessage::Push { request: 1, envelopes: vec![entry(1, len + 1).envelope] };
        assert!(push.encode().expect("encode").len() <= max);
    }

    #[test]
    fn live_frames_stay_within_the_limit_and_keep_the_order() {
        let max = 2048;
        let entries: Vec<_> = (1..=100).map(|i| entry(i * 1000, 100 + (i as usize % 7) * 50)).collect();
        let chunks = live_frames(entries.clone(), max);
        assert!(chunks.len() > 1);
        for chunk in &chunks {
            assert!(encoded_len(&ServerMessage::Live { entries: chunk.clone() }) <= max);
        }
        assert_eq!(chunks.concat(), entries);
    }

    #[test]
    fn request_ids_are_read_without_decoding() {
        let envelope = entry(1, 40).envelope;
        let cases = [
            ClientMessage::Ping { request: 300 },
            ClientMessage::Push { request: 7, envelopes: vec![envelope.clone()] },
            ClientMessage::Pull { request: u32::MAX, since: Seq(5), limit: 1 },
            ClientMessage::DeleteDocument { request: 0, doc_tag: envelope.doc_tag },
        ];
        for msg in cases {
            let frame = msg.encode().expect("encode");
            assert_eq!(peek_request_id(&frame), msg.request_id());
        }
        assert_eq!(peek_request_id(&[]), None);
        assert_eq!(peek_request_id(&[PROTOCOL_VERSION, 0]), None, "Hello");
        assert_eq!(peek_request_id(&[PROTOCOL_VERSION, 5, 0xff]), None, "truncated");
    }
}
