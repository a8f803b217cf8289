//! What is inside an envelope: the plaintext that [`rapport_protocol::Keys::seal`]
//! encrypts and [`rapport_protocol::Keys::open`] returns.
//!
//! ```text
//! plaintext = version:u8 (= 2) || postcard({ record: [u8; 16], bytes: Vec<u8> }) || zeros
//! ```
//!
//! - `record` is the record's id (the 16 bytes of its UUID). It is inside the
//!   encryption, so the relay never learns it.
//! - `bytes` are Automerge bytes for that record: one or more change chunks,
//!   or a whole saved document (both load with `load_incremental`).
//! - With postcard, the 16 id bytes are written raw (no length) and `bytes`
//!   is a varint length followed by the raw bytes.
//! - Zero bytes pad the plaintext to a size bucket ([`padded_len`]), so the
//!   relay sees one of a few lengths instead of each change's exact size
//!   (which says which field was edited). Format 1, written before padding,
//!   is still read: it allows no bytes after the body.
//!
//! The envelope's document tag must be `Keys::doc_tag(&record.to_string())`
//! (the record id in its hyphenated UUID form). [`open_envelope`] checks it,
//! so a member cannot file one record's changes under another record's tag
//! (which would defeat erasure on the relay).
//!
//! A plaintext version other than 1 or 2 is refused with
//! [`PlaintextError::UnsupportedVersion`]: it was written by a newer app, and
//! the engine sets it aside rather than misreading it (see `docs/SYNC.md`).

use rapport_core::ids::RecordId;
use rapport_protocol::{CryptoError, DocTag, Envelope, Keys, ENVELOPE_NONCE_LEN};
use serde::Deserialize;

/// The first byte of every plaintext written now (padded).
pub const PLAINTEXT_VERSION: u8 = 2;
/// The first byte of plaintexts written before padding (still read).
pub const UNPADDED_VERSION: u8 = 1;

/// Plaintexts up to this many bytes are padded to it: small edits (most are
/// 100 to 250 bytes) all look alike, whichever field they touch.
const SMALLEST_BUCKET: usize = 256;

/// The length a plaintext of `len` bytes is padded to: 256 bytes at least,
/// above that Padmé (Nikitin et al., "Reducing Metadata Leakage from
/// Encrypted Files and Communication with PURBs", 2019): the length is
/// rounded up so that only its top `log2(log2(len)) + 1` bits remain, which
/// leaves O(log log n) bits of the size visible and costs at most 12% (a few
/// percent on average).
pub fn padded_len(len: usize) -> usize {
    if len <= SMALLEST_BUCKET {
        return SMALLEST_BUCKET;
    }
    let e = len.ilog2();
    let s = e.ilog2() + 1;
    let mask = (1usize << (e - s)) - 1;
    len.saturating_add(mask) & !mask
}

/// The body of a version-1 plaintext. Borrowed on both sides, so decoding
/// never allocates from a length read from the bytes.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct Body<'a> {
    record: [u8; 16],
    #[serde(borrow)]
    bytes: &'a [u8],
}

/// A plaintext could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaintextError {
    /// Nothing at all.
    #[error("the change is empty: expected a version byte and a record")]
    Empty,
    /// Written by another version of the app.
    #[error("the change was written in format {found}, which this version of Rapport cannot read (it reads format {supported}); update the app")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// Not a valid version-1 body.
    #[error("the change is malformed: {0}")]
    Malformed(String),
    /// A valid body followed by more bytes (format 1), or by padding that
    /// is not all zeros (format 2).
    #[error("the change has {0} unexpected bytes after its content")]
    TrailingBytes(usize),
}

/// Encodes the plaintext of one record's Automerge bytes, padded with
/// zeros to [`padded_len`].
///
/// Written by hand (it cannot fail this way) in exactly postcard's encoding
/// of the body; the tests decode it with postcard and pin the bytes.
pub fn encode_plaintext(record: RecordId, bytes: &[u8]) -> Vec<u8> {
    let mut out = encode_exact(record, bytes);
    out.resize(padded_len(out.len()), 0);
    out
}

/// The same plaintext without padding: for a change that fits the relay's
/// frame only unpadded.
pub fn encode_plaintext_unpadded(record: RecordId, bytes: &[u8]) -> Vec<u8> {
    encode_exact(record, bytes)
}

fn encode_exact(record: RecordId, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 16 + 10 + bytes.len());
    out.push(PLAINTEXT_VERSION);
    out.extend_from_slice(record.as_uuid().as_bytes());
    let mut len = bytes.len() as u64;
    loop {
        let low = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(low);
            break;
        }
        out.push(low | 0x80);
    }
    out.extend_from_slice(bytes);
    out
}

/// Decodes a plaintext into its record and Automerge bytes.
///
/// # Errors
/// [`PlaintextError`] for an empty input, another version, a malformed body
/// or trailing bytes. Never panics.
pub fn decode_plaintext(plaintext: &[u8]) -> Result<(RecordId, Vec<u8>), PlaintextError> {
    let (&version, body) = plaintext.split_first().ok_or(PlaintextError::Empty)?;
    if version != PLAINTEXT_VERSION && version != UNPADDED_VERSION {
        return Err(PlaintextError::UnsupportedVersion { found: version, supported: PLAINTEXT_VERSION });
    }
    let (decoded, rest): (Body<'_>, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| PlaintextError::Malformed(e.to_string()))?;
    let padding_allowed = version == PLAINTEXT_VERSION;
    if !(rest.is_empty() || padding_allowed && rest.iter().all(|&b| b == 0)) {
        return Err(PlaintextError::TrailingBytes(rest.len()));
    }
    Ok((RecordId::from_bytes(decoded.record), decoded.bytes.to_vec()))
}

/// The relay-visible tag of a record.
pub fn doc_tag(keys: &Keys, record: RecordId) -> DocTag {
    keys.doc_tag(&record.to_string())
}

/// Seals one record's Automerge bytes, padded, with the caller's random
/// nonce.
///
/// # Errors
/// [`CryptoError`] only past XChaCha20-Poly1305's size limit (about 256 GiB).
pub fn seal_change(
    keys: &Keys,
    record: RecordId,
    bytes: &[u8],
    nonce: [u8; ENVELOPE_NONCE_LEN],
) -> Result<Envelope, CryptoError> {
    keys.seal(doc_tag(keys, record), &encode_plaintext(record, bytes), nonce)
}

/// Seals as [`seal_change`], padded when the padded envelope can still be
/// stored by a relay whose frames are at most `max_frame` bytes
/// ([`rapport_protocol::sizes::fits_alone`]), else unpadded: padding must
/// never make a change that fits too large.
///
/// # Errors
/// As [`seal_change`].
pub fn seal_change_within(
    keys: &Keys,
    record: RecordId,
    bytes: &[u8],
    nonce: [u8; ENVELOPE_NONCE_LEN],
    max_frame: usize,
) -> Result<Envelope, CryptoError> {
    let padded = seal_change(keys, record, bytes, nonce)?;
    if rapport_protocol::sizes::fits_alone(&padded, max_frame) {
        return Ok(padded);
    }
    keys.seal(doc_tag(keys, record), &encode_plaintext_unpadded(record, bytes), nonce)
}

/// Why a received envelope was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The envelope does not open with this workspace's key (tampered with,
    /// or sealed with another key).
    #[error("it could not be decrypted with this workspace's key ({0})")]
    Crypto(#[from] CryptoError),
    /// It opened, but its content is not a change this app can read.
    #[error("{0}")]
    Plaintext(#[from] PlaintextError),
    /// It opened, but names a record whose tag is not the envelope's.
    #[error("it names record {record} but was filed under another document")]
    WrongDocument {
        /// The record named inside.
        record: RecordId,
    },
}

/// Opens and decodes an envelope, checking that it belongs to the record it
/// names.
///
/// # Errors
/// [`EnvelopeError`]; never panics on any input.
pub fn open_envelope(keys: &Keys, envelope: &Envelope) -> Result<(RecordId, Vec<u8>), EnvelopeError> {
    let plaintext = keys.open(envelope)?;
    let (record, bytes) = decode_plaintext(&plaintext)?;
    if doc_tag(keys, record) != envelope.doc_tag {
        return Err(EnvelopeError::WrongDocument { record });
    }
    Ok((record, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rapport_protocol::{WorkspaceId, WorkspaceSecret};

    fn keys(n: u8) -> Keys {
        Keys::derive(&WorkspaceSecret::from_random_bytes([n; 32]), WorkspaceId::from_bytes([n; 16]))
    }

    const RECORD: RecordId = RecordId::from_bytes([7; 16]);

    #[test]
    fn the_plaintext_format_is_pinned() {
        // A change to these bytes breaks every existing workspace.
        let plain = encode_plaintext(RECORD, b"abc");
        let mut expected = vec![2];
        expected.extend_from_slice(&[7; 16]);
        expected.extend_from_slice(&[3, b'a', b'b', b'c']);
        expected.resize(256, 0);
        assert_eq!(plain, expected);
        assert_eq!(decode_plaintext(&plain), Ok((RECORD, b"abc".to_vec())));
        // Format 1, written before padding, still reads.
        let mut old = vec![1];
        old.extend_from_slice(&[7; 16]);
        old.extend_from_slice(&[3, b'a', b'b', b'c']);
        assert_eq!(decode_plaintext(&old), Ok((RECORD, b"abc".to_vec())));
    }

    #[test]
    fn plaintexts_are_padded_to_a_few_sizes() {
        assert_eq!(padded_len(1), 256);
        assert_eq!(padded_len(256), 256);
        // Padmé: 300 has e = 8, s = 4, so 4 low bits go: 304.
        assert_eq!(padded_len(300), 304);
        assert_eq!(padded_len(1_000), 1_024);
        assert_eq!(padded_len(100_000), 100_352);
        for len in [257, 999, 4_097, 65_537, 1_000_003] {
            let padded = padded_len(len);
            assert!(padded >= len && (padded - len) as f64 <= len as f64 * 0.12, "{len} -> {padded}");
        }
        // Edits of different fields of one record look alike to the relay.
        let short = seal_change(&keys(1), RECORD, b"city", [1; 24]).expect("seal");
        let long = seal_change(&keys(1), RECORD, &[9; 200], [1; 24]).expect("seal");
        assert_eq!(short.ciphertext.len(), long.ciphertext.len());
    }

    #[test]
    fn padding_never_makes_a_change_too_large_for_the_relay() {
        use rapport_protocol::sizes::{envelope_len, fits_alone, BATCH_HEAD_MAX, ENTRY_HEAD_MAX};
        let keys = keys(1);
        // 1,500 bytes make a 1,518-byte plaintext, padded to 1,536: with a
        // frame limit that the unpadded envelope fills exactly, the change
        // goes unpadded and still fits.
        let bytes = vec![5; 1_500];
        let exact =
            keys.seal(doc_tag(&keys, RECORD), &encode_plaintext_unpadded(RECORD, &bytes), [1; 24]).expect("seal");
        let max = BATCH_HEAD_MAX + ENTRY_HEAD_MAX + envelope_len(&exact);
        assert!(!fits_alone(&seal_change(&keys, RECORD, &bytes, [1; 24]).expect("seal"), max));
        let env = seal_change_within(&keys, RECORD, &bytes, [1; 24], max).expect("seal");
        assert!(fits_alone(&env, max));
        assert_eq!(open_envelope(&keys, &env), Ok((RECORD, bytes)));
        // Room for the padding: padded.
        let small = seal_change_within(&keys, RECORD, b"x", [1; 24], 2_000).expect("seal");
        assert_eq!(small, seal_change(&keys, RECORD, b"x", [1; 24]).expect("seal"));
    }

    #[test]
    fn a_sealed_change_opens_to_its_record_and_bytes() {
        let keys = keys(1);
        let env = seal_change(&keys, RECORD, b"automerge", [9; 24]).expect("seal");
        assert_eq!(env.doc_tag, keys.doc_tag(&RECORD.to_string()));
        assert_eq!(open_envelope(&keys, &env), Ok((RECORD, b"automerge".to_vec())));
    }

    #[test]
    fn an_envelope_of_another_workspace_does_not_open() {
        let env = seal_change(&keys(1), RECORD, b"automerge", [9; 24]).expect("seal");
        assert_eq!(open_envelope(&keys(2), &env), Err(EnvelopeError::Crypto(CryptoError::Unauthentic)));
    }

    #[test]
    fn a_change_filed_under_another_records_tag_is_refused() {
        let keys = keys(1);
        let other = RecordId::from_bytes([8; 16]);
        let env = keys.seal(doc_tag(&keys, other), &encode_plaintext(RECORD, b"x"), [1; 24]).expect("seal");
        assert_eq!(open_envelope(&keys, &env), Err(EnvelopeError::WrongDocument { record: RECORD }));
    }

    #[test]
    fn a_newer_format_is_refused_with_both_versions() {
        let mut plain = encode_plaintext(RECORD, b"x");
        plain[0] = 3;
        assert_eq!(decode_plaintext(&plain), Err(PlaintextError::UnsupportedVersion { found: 3, supported: 2 }));
    }

    #[test]
    fn truncated_and_padded_plaintexts_are_errors_not_panics() {
        let plain = encode_plaintext_unpadded(RECORD, b"some bytes");
        for len in 0..plain.len() {
            assert!(decode_plaintext(&plain[..len]).is_err(), "cut at {len}");
        }
        // Format 2 allows zeros after the body, nothing else.
        let mut padded = plain.clone();
        padded.extend_from_slice(&[0, 0, 1]);
        assert_eq!(decode_plaintext(&padded), Err(PlaintextError::TrailingBytes(3)));
        // Format 1 allows nothing after the body.
        let mut old = plain.clone();
        old[0] = UNPADDED_VERSION;
        old.push(0);
        assert_eq!(decode_plaintext(&old), Err(PlaintextError::TrailingBytes(1)));
        // A claimed length far past the input.
        let mut huge = vec![1];
        huge.extend_from_slice(&[0; 16]);
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(decode_plaintext(&huge), Err(PlaintextError::Malformed(_))));
    }

    #[test]
    fn the_hand_written_encoding_is_postcards() {
        let bytes = vec![5u8; 300];
        let body = Body { record: [3; 16], bytes: &bytes };
        let mut expected = vec![PLAINTEXT_VERSION];
        expected.extend(postcard::to_allocvec(&body).expect("encode"));
        assert_eq!(encode_plaintext_unpadded(RecordId::from_bytes([3; 16]), &bytes), expected);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_plaintext_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_plaintext(&bytes);
        }

        #[test]
        fn plaintexts_round_trip(id in any::<[u8; 16]>(), bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let record = RecordId::from_bytes(id);
            prop_assert_eq!(decode_plaintext(&encode_plaintext(record, &bytes)), Ok((record, bytes)));
        }
    }
}
