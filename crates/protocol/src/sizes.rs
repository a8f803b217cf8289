//! Exact encoded sizes of envelopes and log entries, and the rule both
//! sides of the wire use to decide whether an envelope can travel at all:
//! the relay stores only envelopes that a `Batch` carrying them alone, under
//! the widest sequence number, request id and cursor, fits in its announced
//! `max_frame_bytes`; the client checks the same rule before pushing, so an
//! envelope near the limit is reported as too large instead of refused.
//!
//! The arithmetic follows the postcard encoding (LEB128 varints, fixed
//! arrays inline); the relay's tests check it against the real encoder.

use crate::{Envelope, LogEntry};

/// Bytes of a LEB128 varint.
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Encoded bytes of an envelope: tag, nonce, ciphertext length and bytes.
pub fn envelope_len(envelope: &Envelope) -> usize {
    let ct = envelope.ciphertext.len();
    envelope.doc_tag.as_bytes().len() + envelope.nonce.len() + varint_len(ct as u64) + ct
}

/// Encoded bytes of a log entry.
pub fn entry_len(entry: &LogEntry) -> usize {
    varint_len(entry.seq.get()) + 1 + envelope_len(&entry.envelope)
}

/// The most bytes a `Batch` adds around its entries: version, variant,
/// request id, entry count, cursor and `more`, each at its widest.
pub const BATCH_HEAD_MAX: usize = 1 + 1 + 5 + 5 + 10 + 1;
/// The most bytes a log entry adds to its envelope: sequence number and kind.
pub const ENTRY_HEAD_MAX: usize = 10 + 1;

/// Whether a batch holding only this envelope, under any sequence number,
/// request id and cursor, fits in `max_frame` bytes. The relay stores only
/// envelopes for which this holds, so every stored entry can be pulled.
pub fn fits_alone(envelope: &Envelope, max_frame: usize) -> bool {
    BATCH_HEAD_MAX + ENTRY_HEAD_MAX + envelope_len(envelope) <= max_frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_grow_every_seven_bits() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(u64::from(u32::MAX)), 5);
        assert_eq!(varint_len(u64::MAX), 10);
    }
}
