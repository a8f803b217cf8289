//! `rapport-sync`: the client half of Rapport's end-to-end encrypted relay
//! sync (design promises 2 and 5, and the sync half of promise 4: erased
//! records are deleted on the relay and never stored or pushed again).
//!
//! - [`engine`]: [`SyncEngine`], the protocol as a sans-IO state machine:
//!   time and randomness are parameters, IO is returned as data.
//! - [`driver`]: [`SyncDriver`], which carries the engine's outputs out
//!   through small traits ([`Transport`], [`Applier`], [`Host`]) and the
//!   app's [`Storage`](rapport_core::storage::Storage) (cursor, outbox,
//!   confirmed relay erasures); it keeps the erasure guards with the
//!   tombstones the app reports through [`Host::is_erased`].
//! - [`plaintext`]: what is inside an envelope.
//! - [`config`]: [`SyncConfig`] (relay, workspace, secret), invite links,
//!   and what is persisted in the meta table.
//! - [`status`]: [`SyncStatus`] and [`SyncProblem`], for the UI.
//!
//! `docs/SYNC.md` describes the states, the outbox and cursor rules, what is
//! durable when, and the reconnect policy.
//!
//! # Typical flow
//!
//! The engine alone, answering a relay by hand (the driver does this for
//! real):
//!
//! ```
//! use rapport_protocol::{ChallengeNonce, ClientMessage, Incarnation, Seq, ServerLimits, ServerMessage};
//! use rapport_sync::engine::{Input, Output, SyncEngine};
//! use rapport_sync::{SyncConfig, SyncStatus};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SyncConfig::create("wss://relay.example/sync", [7; 48])?;
//! let mut engine = SyncEngine::new(config.keys(), config.created_here, Seq::ZERO);
//! let mut rng = |buf: &mut [u8]| buf.fill(4); // use a CSPRNG in the app
//!
//! let out = engine.handle(0, &mut rng, Input::Start);
//! assert!(out.contains(&Output::Connect));
//! engine.handle(1, &mut rng, Input::Connected);
//!
//! let challenge = ServerMessage::Challenge { nonce: ChallengeNonce::from_bytes([1; 32]) }.encode()?;
//! let out = engine.handle(2, &mut rng, Input::Frame(&challenge));
//! let Some(Output::Send(hello)) = out.first() else { panic!("expected a Hello") };
//! assert!(matches!(ClientMessage::decode(hello), Ok(ClientMessage::Hello { register: Some(_), .. })));
//!
//! let limits = ServerLimits { max_frame_bytes: 1 << 20, max_envelopes_per_push: 100, max_pull_entries: 100 };
//! let incarnation = Incarnation::from_bytes([2; 16]); // the relay log's
//! let welcome = ServerMessage::Welcome { head: Seq::ZERO, limits, incarnation }.encode()?;
//! let out = engine.handle(3, &mut rng, Input::Frame(&welcome));
//! assert!(out.contains(&Output::SaveIncarnation(incarnation))); // the first one: remember it
//! assert!(out.contains(&Output::ReadOutbox { limit: 100 }));
//!
//! let out = engine.handle(4, &mut rng, Input::Outbox(Vec::new()));
//! assert!(out.contains(&Output::Status(SyncStatus::UpToDate)));
//! # Ok(())
//! # }
//! ```

pub mod backoff;
pub mod config;
pub mod driver;
pub mod engine;
pub mod plaintext;
pub mod quarantine;
pub mod status;

pub use config::{load_relay_erased, save_relay_erased, turn_on, JoinError, LoadError, SyncConfig};
pub use driver::{
    apply_page, Applier, Event, Host, Interrupted, RepoApplier, StorageAccess, SyncDriver, Transport, TransportError,
};
pub use engine::{ApplyFailure, ApplyFailureKind, Input, Output, Random, Received, SyncEngine, Timing};
pub use quarantine::{QuarantineList, QuarantinedChange};
pub use status::{SyncProblem, SyncStatus};
