//! `rapport-protocol`: the sync wire format and the end-to-end envelope
//! crypto shared by the Rapport app (wasm) and the relay (native).
//!
//! The relay stores and forwards opaque [`Envelope`]s; only holders of the
//! [`WorkspaceSecret`] (carried in the invite link's URL fragment, never sent
//! to a server) can derive the [`Keys`] that seal and open them. The relay
//! keeps an [`AuthVerifier`] (an Ed25519 public key derived from the secret)
//! and checks a signed challenge on every connection, so it can authenticate
//! members but never decrypt.
//!
//! Everything here is pure: randomness (secrets, nonces) and time are passed
//! in by the caller, so the same inputs always give the same bytes.
//!
//! # Typical flow (client side)
//!
//! ```
//! use rapport_protocol::{
//!     ChallengeNonce, ClientMessage, InviteLink, Keys, ServerMessage, WorkspaceId,
//!     WorkspaceSecret,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Creating a workspace: the caller supplies the randomness.
//! let secret = WorkspaceSecret::from_random_bytes([7; 32]);
//! let workspace = WorkspaceId::from_bytes([1; 16]);
//! let invite = InviteLink::new(Some("wss://relay.example/sync".into()), workspace, secret.clone())?;
//! let fragment = invite.to_fragment(); // "#join=wss%3A%2F%2F...&ws=...&k=..."
//!
//! // Joining: parse the fragment, derive the keys.
//! let joined = InviteLink::parse(&fragment)?;
//! let keys = Keys::derive(joined.secret(), joined.workspace());
//!
//! // Connecting: the relay sends a challenge, the client answers with a Hello.
//! let challenge = ChallengeNonce::from_bytes([9; 32]); // from ServerMessage::Challenge
//! let hello = ClientMessage::Hello {
//!     workspace,
//!     signature: keys.sign_challenge(&challenge),
//!     register: Some(keys.verifier()), // only needed the first time
//! };
//! let frame: Vec<u8> = hello.encode()?; // one WebSocket binary frame
//! assert_eq!(ClientMessage::decode(&frame)?, hello);
//!
//! // Sealing a change of record "contact-42" for the relay.
//! let tag = keys.doc_tag("contact-42");
//! let envelope = keys.seal(tag, b"automerge change bytes", [3; 24])?;
//! assert_eq!(keys.open(&envelope)?, b"automerge change bytes");
//! # let _ = ServerMessage::Pong { request: 0 };
//! # Ok(())
//! # }
//! ```
//!
//! See `docs/RELAY.md` for the full wire protocol and crypto construction.

mod crypto;
mod ids;
mod invite;
mod serde_bytes;
pub mod sizes;
mod wire;

pub use crypto::{
    verify, AuthError, AuthSignature, AuthVerifier, ChallengeNonce, CryptoError, Envelope, Keys, SecretError,
    WorkspaceSecret, ENVELOPE_NONCE_LEN, ENVELOPE_TAG_LEN,
};
pub use ids::{DocTag, IdError, Incarnation, RequestId, Seq, WorkspaceId};
pub use invite::{InviteError, InviteLink};
pub use wire::{
    ClientMessage, DecodeError, EncodeError, EntryKind, ErrorCode, LogEntry, ServerLimits, ServerMessage, WireError,
    OLDEST_READABLE_ERROR_VERSION, PROTOCOL_VERSION,
};
