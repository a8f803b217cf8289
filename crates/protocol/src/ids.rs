//! Identifiers that travel on the wire: [`WorkspaceId`], [`DocTag`], [`Seq`],
//! [`Incarnation`] and [`RequestId`]. Text forms are unpadded base64url, validated at the
//! boundary by `FromStr`.

use core::fmt;
use core::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Chosen by the client to match a reply to its request; echoed by the relay.
pub type RequestId = u32;

/// A malformed identifier in text form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is not unpadded base64url.
    #[error("expected unpadded base64url ({expected_chars} characters) for a {what}")]
    NotBase64Url {
        /// Which identifier was being parsed.
        what: &'static str,
        /// How many characters a valid one has.
        expected_chars: usize,
    },
    /// The text decodes to the wrong number of bytes.
    #[error("expected a {what} of {expected} bytes, got {found}")]
    WrongLength {
        /// Which identifier was being parsed.
        what: &'static str,
        /// How many bytes a valid one has.
        expected: usize,
        /// How many bytes the text held.
        found: usize,
    },
}

/// Decodes unpadded base64url into exactly `N` bytes.
pub(crate) fn decode_b64_array<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], IdError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| IdError::NotBase64Url { what, expected_chars: (N * 4).div_ceil(3) })?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| IdError::WrongLength { what, expected: N, found: bytes.len() })
}

pub(crate) fn encode_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Identifies a workspace on a relay: 16 bytes chosen at random by the
/// workspace's creator, shown as 22 base64url characters.
///
/// It is not secret (it appears in the invite link and in the relay's store)
/// and it is bound into every envelope's AAD and every auth signature.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkspaceId(#[serde(with = "crate::serde_bytes::array")] [u8; 16]);

impl WorkspaceId {
    /// Length in bytes.
    pub const LEN: usize = 16;

    /// Wraps 16 bytes; the caller supplies randomness for a new workspace.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_b64(&self.0))
    }
}

impl fmt::Debug for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkspaceId({self})")
    }
}

impl FromStr for WorkspaceId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        decode_b64_array(s, "workspace id").map(Self)
    }
}

/// One life of a workspace's log on a relay: 16 random bytes drawn by the
/// relay when it creates the log, and drawn again whenever the log may
/// have lost committed entries (restored from a backup, or reset by its
/// operator). Sequence numbers, and so a client's cursor, mean something
/// only within one incarnation: a client that sees another one in
/// `Welcome` pulls from zero and uploads again what the relay lacks.
/// Shown as 22 base64url characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Incarnation(#[serde(with = "crate::serde_bytes::array")] [u8; 16]);

impl Incarnation {
    /// Length in bytes.
    pub const LEN: usize = 16;

    /// Wraps 16 bytes; the relay supplies fresh randomness for a new one.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_b64(&self.0))
    }
}

impl fmt::Debug for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Incarnation({self})")
    }
}

impl FromStr for Incarnation {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        decode_b64_array(s, "relay log incarnation").map(Self)
    }
}

/// The relay-visible name of one document (record): a keyed hash of the
/// record id, so the relay can group and erase a document's envelopes
/// without learning which record it is. Computed by [`crate::Keys::doc_tag`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DocTag(#[serde(with = "crate::serde_bytes::array")] [u8; 32]);

impl DocTag {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// Wraps 32 bytes (as read back from storage or the wire).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for DocTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_b64(&self.0))
    }
}

impl fmt::Debug for DocTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocTag({self})")
    }
}

impl FromStr for DocTag {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        decode_b64_array(s, "document tag").map(Self)
    }
}

/// A server sequence number in a workspace's log. The relay assigns them
/// strictly increasing from 1 and never reuses one within an
/// [`Incarnation`] of the log, even after deletions; `Seq::ZERO` is the
/// cursor of a client that has pulled nothing.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// Before the first entry.
    pub const ZERO: Seq = Seq(0);

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_id_text_round_trips() {
        let id = WorkspaceId::from_bytes([0xab; 16]);
        let text = id.to_string();
        assert_eq!(text.len(), 22);
        assert_eq!(text.parse::<WorkspaceId>(), Ok(id));
    }

    #[test]
    fn workspace_id_rejects_bad_text_with_a_precise_error() {
        assert!(matches!("not base64!".parse::<WorkspaceId>(), Err(IdError::NotBase64Url { expected_chars: 22, .. })));
        assert_eq!(
            "AAAA".parse::<WorkspaceId>(),
            Err(IdError::WrongLength { what: "workspace id", expected: 16, found: 3 })
        );
    }

    #[test]
    fn incarnation_text_round_trips() {
        let incarnation = Incarnation::from_bytes([0x5a; 16]);
        assert_eq!(incarnation.to_string().parse::<Incarnation>(), Ok(incarnation));
        assert!(matches!("AAAA".parse::<Incarnation>(), Err(IdError::WrongLength { expected: 16, .. })));
    }

    #[test]
    fn doc_tag_text_round_trips() {
        let tag = DocTag::from_bytes([7; 32]);
        assert_eq!(tag.to_string().parse::<DocTag>(), Ok(tag));
    }
}
