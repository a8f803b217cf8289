//! Rapport's domain core: plain Rust, no browser APIs, tested natively.
//!
//! Every CRM record is one Automerge document ([`record::Record`] maps a plain
//! struct to and from it) plus a compact materialised [`record::Row`] used by
//! lists and search. [`repo::Repo`] hydrates documents lazily from any
//! [`storage::Storage`] and writes each edit as an incremental chunk in the
//! same atomic write as its row.
//!
//! A typical flow:
//! ```
//! # futures::executor::block_on(async {
//! use rapport_core::{contact::Contact, repo::Repo, storage::memory::MemoryStorage, Timestamp};
//! use rapport_core::ids::{MemberId, RecordId};
//! use rapport_core::storage::Storage;
//!
//! let repo = Repo::new(MemoryStorage::new(), [1; 16]);
//! let me = MemberId::from_bytes([9; 16]);
//! let now = Timestamp::from_millis(1_700_000_000_000);
//! let mut ada = Contact::new(RecordId::from_bytes([2; 16]), now, me);
//! ada.given_name = "Ada".into();
//! repo.create(&ada).await.unwrap();
//!
//! let rows = repo.storage().rows().await.unwrap().rows;
//! assert_eq!(rows[0].title, "Ada");
//! let (doc, loaded) = repo.open::<Contact>(ada.id, now).await.unwrap();
//! assert_eq!(loaded.given_name, "Ada");
//! # let _ = doc;
//! # });
//! ```

pub mod audit;
pub mod chunks;
pub mod conflict;
pub mod consent;
pub mod contact;
pub mod doc;
pub mod form;
pub mod ids;
pub mod privacy;
pub mod record;
pub mod repo;
pub mod sales;
pub mod search;
pub mod storage;
mod time;
pub mod validate;
pub mod workspace;

#[cfg(test)]
mod test_support;

pub use time::Timestamp;
