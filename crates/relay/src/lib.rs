//! `rapport-relay`: Rapport's end-to-end encrypted sync relay.
//!
//! Members of a workspace connect to `GET /sync` (WebSocket), answer a
//! signed challenge, then push encrypted envelopes (acknowledged with
//! server sequence numbers once committed), pull the log since a cursor,
//! receive other members' pushes live, replace a document's log with a
//! snapshot and erase a document. The relay holds only opaque ciphertext
//! and an Ed25519 verifier per workspace: it authenticates, it never reads.
//!
//! Layout: [`config`] (flags and limits), [`server`] (router, state, HTTP
//! errors, graceful shutdown), `session` (one connection's state machine),
//! [`hub`] (live fan-out), [`rate`] (token buckets and refusals), [`deadline`]
//! (write deadlines on sockets), [`frames`]
//! (exact frame sizes), [`limits`] (the descriptor limit), [`store`] (the
//! storage trait and its SQLite implementation).
//!
//! Typical flow in a test or an embedding program:
//!
//! ```no_run
//! use std::sync::Arc;
//! use rapport_relay::{config::Limits, server::{serve, AppState}, store::sqlite::SqliteStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(SqliteStore::open("relay-data".as_ref())?);
//! let state = AppState::new(store, Limits::default(), None);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("ws://{}/sync", listener.local_addr()?);
//! serve(listener, state, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod deadline;
pub mod frames;
pub mod hub;
pub mod limits;
pub mod rate;
pub mod server;
mod session;
pub mod store;
