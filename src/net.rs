//! Network edges: the relay WebSocket and the cross-tab leader lock. Both
//! are thin wrappers over browser APIs so the sync logic above them stays in
//! plain Rust (crates/sync).

pub mod leader;
pub mod socket;
