//! Checking Automerge bytes before they are trusted.
//!
//! Automerge's incremental load skips a chunk it cannot parse (and a strict
//! load refuses changes whose dependencies have not arrived yet, which is
//! normal in sync). So stored and received bytes are checked chunk by chunk
//! here: every chunk must parse and match its checksum, without requiring
//! its dependencies to be present.

use automerge::{Automerge, Change, LoadOptions, OnPartialLoad, VerificationMode};
use sha2::{Digest, Sha256};

use crate::doc::DecodeError;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;

fn bad(reason: impl Into<String>) -> DecodeError {
    DecodeError::Automerge(reason.into())
}

fn leb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Checks that `bytes` is a sequence of well-formed Automerge chunks
/// (documents and changes).
///
/// # Errors
/// [`DecodeError::Automerge`] naming the first bad chunk.
pub fn check(bytes: &[u8]) -> Result<(), DecodeError> {
    let mut rest = bytes;
    let mut index = 0;
    while !rest.is_empty() {
        if rest.len() < 9 || rest[..4] != MAGIC {
            return Err(bad(format!("chunk {index} does not start with Automerge's magic bytes")));
        }
        let kind = rest[8];
        let (len, len_bytes) = leb128(&rest[9..]).ok_or_else(|| bad(format!("chunk {index} has a bad length")))?;
        let total = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(9 + len_bytes))
            .filter(|t| *t <= rest.len())
            .ok_or_else(|| bad(format!("chunk {index} is truncated")))?;
        let chunk = &rest[..total];
        // Automerge stores the first 4 bytes of SHA-256(type, length, data)
        // but does not check them when parsing a change.
        let digest = Sha256::digest(&chunk[8..]);
        if digest[..4] != chunk[4..8] {
            return Err(bad(format!("chunk {index} fails its checksum")));
        }
        match kind {
            DOCUMENT => {
                let options =
                    LoadOptions::new().on_partial_load(OnPartialLoad::Error).verification_mode(VerificationMode::Check);
                Automerge::load_with_options(chunk, options).map_err(|e| bad(format!("chunk {index}: {e}")))?;
            }
            CHANGE | COMPRESSED_CHANGE => {
                Change::try_from(chunk).map_err(|e| bad(format!("chunk {index}: {e}")))?;
            }
            other => return Err(bad(format!("chunk {index} has unsupported type {other}"))),
        }
        rest = &rest[total..];
        index += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    use super::*;

    fn doc_and_change() -> (Vec<u8>, Vec<u8>) {
        let mut doc = AutoCommit::new();
        doc.put(&ROOT, "name", "Ada Lovelace").unwrap();
        let snapshot = doc.save();
        let heads = doc.get_heads();
        doc.put(&ROOT, "title", "Countess of Lovelace, mathematician").unwrap();
        (snapshot, doc.save_after(&heads))
    }

    #[test]
    fn documents_and_changes_pass_even_without_their_dependencies() {
        let (snapshot, change) = doc_and_change();
        check(&snapshot).unwrap();
        check(&change).unwrap();
        check(&[snapshot, change].concat()).unwrap();
        check(&[]).unwrap();
    }

    #[test]
    fn a_flipped_byte_anywhere_in_a_change_is_detected() {
        let (_, change) = doc_and_change();
        for i in 0..change.len() {
            let mut bad = change.clone();
            bad[i] ^= 0x40;
            assert!(check(&bad).is_err(), "flipping byte {i} of {} went unnoticed", change.len());
        }
    }

    #[test]
    fn truncated_bytes_and_trailing_garbage_are_detected() {
        let (snapshot, change) = doc_and_change();
        assert!(check(&change[..change.len() - 1]).is_err());
        assert!(check(&[change.clone(), b"junk".to_vec()].concat()).is_err());
        assert!(check(&snapshot[..snapshot.len() / 2]).is_err());
    }
}
