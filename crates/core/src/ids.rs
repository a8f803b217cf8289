//! Stable identifiers. Records reference each other by these ids, never by
//! position or name, so ids are validated once at the boundary (`FromStr`)
//! and carried as newtypes everywhere else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A malformed id in user input, a URL or stored bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a UUID such as 0190f1c2-7a3b-7c00-8000-000000000000, got {0:?}")]
pub struct BadId(pub String);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7) from the caller's clock and randomness.
            pub fn new(now: crate::Timestamp, random: [u8; 10]) -> Self {
                Self(crate::ids::uuid_v7(now, random))
            }

            /// Builds an id from raw bytes (tests, generators).
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(uuid::Uuid::from_bytes(bytes))
            }

            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s.trim()).map(Self).map_err(|_| BadId(s.to_owned()))
            }
        }
    };
}

uuid_id!(
    /// Identifies one record (one Automerge document) for its whole life,
    /// across epochs and replicas.
    RecordId
);
uuid_id!(
    /// Identifies a workspace member (a person, possibly on several devices).
    MemberId
);
uuid_id!(
    /// Identifies one consent event in a contact's ledger.
    EventId
);
uuid_id!(
    /// Identifies an entry inside a record (one email, one phone number).
    EntryId
);
uuid_id!(
    /// Identifies a workspace.
    WorkspaceId
);

/// UUIDv7 built from explicit time and randomness so that domain code never
/// reads a global clock or RNG (tests stay deterministic).
pub(crate) fn uuid_v7(now: crate::Timestamp, random: [u8; 10]) -> uuid::Uuid {
    let millis = u64::try_from(now.as_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    #[test]
    fn ids_round_trip_through_their_text_form() {
        let id = RecordId::new(Timestamp::from_millis(1_700_000_000_000), [7; 10]);
        let parsed: RecordId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }

    #[test]
    fn ids_made_later_sort_later() {
        let a = RecordId::new(Timestamp::from_millis(1_000), [255; 10]);
        let b = RecordId::new(Timestamp::from_millis(2_000), [0; 10]);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn a_malformed_id_is_refused_with_the_expected_form() {
        let err = "not-an-id".parse::<RecordId>().unwrap_err();
        assert!(err.to_string().contains("expected a UUID"));
    }
}
