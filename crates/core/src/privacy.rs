//! Privacy by design: data-subject requests (access, erasure, restriction),
//! retention, and the groundwork that makes erasure reach every copy
//! (design promise 4, "Erasure really erases").
//!
//! Everything here is pure: functions take records, rows, documents and
//! `now`, and return values or plans that the app, the sync engine and the
//! relay carry out. Each submodule's doc says what it guarantees and what it
//! cannot.
//!
//! | need | module | entry points |
//! |---|---|---|
//! | who was erased (no personal data) | [`tombstone`] | [`Tombstone`], [`Tombstones`], `Workspace::is_erased` |
//! | how records point at people | [`references`] | [`Reference`], [`Referencing`], [`references::refs_column`] |
//! | what an erasure removes, the confirmation text | [`erasure`] | [`plan_erasure`], [`ErasurePlan::preview`] |
//! | what a replica drops, what it may apply, save or push | [`replica`] | [`apply_tombstones`], [`accept_remote`], [`accept_outbox`], [`accept_local`], [`relay_deletions`] |
//! | removing values from history | [`epoch`] | [`rewrite_without_history`], [`epoch::next_epoch_of`] |
//! | kept but not processed | [`restriction`] | `Contact::may_process`, [`restriction::is_restricted_row`] |
//! | inactive contacts, anonymisation | [`retention`] | [`RetentionPolicy`], [`retention::activity_facts`], [`review`], [`retention::anonymise_document`] |
//! | access request | [`access`] | [`access_export`], [`access_report_html`] |
//!
//! The audit trail (who changed what and when) is [`crate::audit`].
//!
//! # An erasure, step by step
//!
//! The order matters: the tombstone is durable (and queued for sync with the
//! workspace) before any byte is removed, so a crash in between is finished
//! by the next start, which runs [`apply_tombstones`] again.
//!
//! ```
//! # futures::executor::block_on(async {
//! use rapport_core::contact::Contact;
//! use rapport_core::ids::{MemberId, RecordId};
//! use rapport_core::privacy::{accept_remote, apply_tombstones, plan_erasure};
//! use rapport_core::repo::Repo;
//! use rapport_core::storage::{memory::MemoryStorage, Storage};
//! use rapport_core::workspace::Workspace;
//! use rapport_core::Timestamp;
//!
//! let repo = Repo::new(MemoryStorage::new(), [1; 16]);
//! let me = MemberId::from_bytes([9; 16]);
//! let now = Timestamp::from_millis(1_700_000_000_000);
//! let mut ws = Workspace::new(RecordId::from_bytes([1; 16]), "Acme", me, "Sam", now);
//! let mut ws_handle = repo.create(&ws).await.unwrap();
//! let mut ada = Contact::new(RecordId::from_bytes([2; 16]), now, me);
//! ada.given_name = "Ada".into();
//! repo.create(&ada).await.unwrap();
//!
//! // 1. The confirmation dialog shows exactly what goes.
//! let rows = repo.storage().rows().await.unwrap().rows;
//! let plan = plan_erasure(&ada, &rows);
//! assert!(plan.preview().starts_with("Ada: the contact and its change history."));
//!
//! // 2. Confirmed: the tombstones go into the workspace document first.
//! for t in plan.tombstones(now, me) {
//!     ws.tombstones.insert(t);
//! }
//! repo.save(&mut ws_handle, &ws).await.unwrap();
//!
//! // 3. Then every byte of the erased records goes (every replica does the
//! //    same at start and after each merge into the workspace document).
//! let outbox = repo.storage().outbox(usize::MAX).await.unwrap();
//! let purge = apply_tombstones(rows.iter().map(|r| r.id), &outbox, &ws.tombstones);
//! for id in &purge.remove {
//!     repo.storage().remove(*id).await.unwrap();
//! }
//! repo.storage().ack_outbox(&purge.drop_outbox).await.unwrap();
//! assert!(repo.storage().load(ada.id).await.unwrap().is_none());
//!
//! // 4. Changes to Ada that arrive later are refused, never stored.
//! assert!(!accept_remote(ada.id, &ws.tombstones));
//! # });
//! ```
//!
//! # What erasure guarantees, and what it cannot
//!
//! An erasure writes one [`Tombstone`] per erased record into the workspace
//! document, then removes every byte this browser stores for those records.
//! Tombstones merge by set union and are never removed, so every replica that
//! syncs the workspace learns of the erasure; from then on the guards of
//! [`replica`] refuse remote changes to those records, refuse to push local
//! ones, and [`apply_tombstones`] removes the replica's own copies. Together
//! this means that an erased contact is never resurrected, even by a replica
//! that was offline during the erasure and edited the contact meanwhile (the
//! property test of [`replica`] checks this for any number of replicas and
//! any sync order).
//!
//! What no design can guarantee: a copy on a device that never syncs again,
//! an export or backup file someone saved, a screenshot, or data already
//! sent to another system stays where it is. The relay can drop envelopes
//! and snapshots, but not a copy of its database taken earlier. Erasure
//! removes data from the places Rapport controls, as soon as they next meet.

pub mod access;
pub mod epoch;
pub mod erasure;
pub mod references;
pub mod replica;
pub mod restriction;
pub mod retention;
pub mod tombstone;

pub use access::{access_export, access_report_html};
pub use epoch::rewrite_without_history;
pub use erasure::{plan_erasure, ErasurePlan};
pub use references::{Reference, Referencing};
pub use replica::{accept_local, accept_outbox, accept_remote, apply_tombstones, relay_deletions, Purge};
pub use restriction::{Refusal, Restriction};
pub use retention::{anonymise, review, RetentionCandidate, RetentionPolicy};
pub use tombstone::{Tombstone, Tombstones};
