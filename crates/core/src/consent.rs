//! The consent ledger: what a contact agreed to, per purpose, and how replicas
//! that recorded consent offline agree on it afterwards (design promise 3,
//! "Consent travels with the record").
//!
//! This module owns the consent vocabulary ([`PurposeId`], [`ConsentAction`],
//! [`ConsentStatus`], [`LawfulBasis`], [`ConsentSource`]), the ledger itself
//! ([`ConsentLedger`]) with its merge rule, and the ledger's storage inside a
//! record's Automerge document ([`read_ledger`], [`write_ledger`]).
//!
//! # The merge rule
//!
//! This section is the specification; the tests at the bottom of this file
//! check each sentence of it.
//!
//! - **A grow-only set of immutable events.** A ledger is a set of
//!   [`ConsentEvent`]s keyed by their [`EventId`]. Events are never edited or
//!   removed, and ledgers merge by set union, so any replicas that have seen
//!   the same events hold the same ledger, whatever the order in which they
//!   met. (Honest replicas never produce two different events under one id,
//!   except for `seen`: an anonymised ledger keeps each head with everything
//!   it dominates in `seen` ([`crate::privacy::retention`]), and copies that
//!   differ only in `seen` merge into one naming the union. Should corrupt
//!   or hostile data hold events that differ otherwise, the copy that is a
//!   withdrawal, and then the smaller by a fixed order of its fields, is
//!   kept, so that merge still does not depend on order.)
//! - **Causal order through `seen`.** When an event is recorded, its `seen`
//!   lists the heads its author had for that purpose. Per purpose, the events
//!   form a directed acyclic graph: an event comes causally after everything
//!   it has seen, directly or transitively. References to events of another
//!   purpose, and an event naming itself, are ignored. A `seen` id that is
//!   not (yet) in the local ledger is fine: the event dominates it as soon as
//!   it arrives.
//! - **Heads decide.** The heads of a purpose are its events that no other
//!   event of that purpose names in `seen`. The current [`ConsentStatus`] is
//!   derived from the heads alone:
//!   - no events for the purpose: [`ConsentStatus::NeverAsked`];
//!   - any head is a withdrawal: [`ConsentStatus::Withdrawn`] (between
//!     concurrent events the least permissive one wins, so a withdrawal is
//!     never lost to a grant made concurrently on another device);
//!   - otherwise: [`ConsentStatus::Granted`].
//!
//!   So the latest event in causal order wins: a grant recorded after seeing
//!   a withdrawal wins, because the withdrawal is no longer a head.
//! - **Wall clocks never decide.** `recorded_at` is for display and audit
//!   only ([`ConsentLedger::timeline`] uses it to order concurrent events).
//! - **Fail safe on corrupt data.** If the events of a purpose leave no head
//!   at all (they name each other in a cycle, which only hostile or corrupt
//!   data can produce), the status is [`ConsentStatus::Withdrawn`].
//!
//! # Example
//!
//! Two devices record consent for the same contact without a network: one
//! withdraws marketing email while the other, concurrently, grants it.
//!
//! ```
//! use rapport_core::consent::*;
//! use rapport_core::ids::{EventId, MemberId};
//! use rapport_core::Timestamp;
//!
//! let email: PurposeId = PurposeId::MARKETING_EMAIL.parse().unwrap();
//! let event = |n: u8, action, clock| NewConsentEvent {
//!     id: EventId::from_bytes([n; 16]),
//!     purpose: email.clone(),
//!     action,
//!     recorded_at: Timestamp::from_millis(clock),
//!     lawful_basis: LawfulBasis::Consent,
//!     source: ConsentSource::Call,
//!     recorded_by: MemberId::from_bytes([9; 16]),
//!     note: String::new(),
//! };
//!
//! let mut laptop = ConsentLedger::new();
//! laptop.record(event(1, ConsentAction::Withdrawn, 1_000));
//! let mut phone = ConsentLedger::new();
//! // The phone's clock runs ahead: clocks do not decide.
//! phone.record(event(2, ConsentAction::Granted, 9_000_000));
//!
//! laptop.merge(&phone);
//! assert_eq!(laptop.status(&email), ConsentStatus::Withdrawn);
//!
//! // A grant recorded after seeing the withdrawal wins.
//! laptop.record(event(3, ConsentAction::Granted, 2_000));
//! phone.merge(&laptop);
//! assert_eq!(phone.status(&email), ConsentStatus::Granted);
//! assert_eq!(phone, laptop);
//! ```
//!
//! # Storage
//!
//! Inside a record's document the ledger is a map from event id to a map of
//! the event's fields: `purpose`, `action`, `lawful_basis`, `source`,
//! `recorded_by` and `note` are strings, `recorded_at` is an integer
//! (milliseconds since the Unix epoch) and `seen` is a list of event ids.
//! Empty `note` and `seen` are left out. Replicas that add events
//! concurrently add different keys, so Automerge's merge is the set union.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::str::FromStr;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, Value};
use serde::{Deserialize, Serialize};

use crate::doc::{self, DecodeError, EncodeError};
use crate::ids::{EventId, MemberId};
use crate::Timestamp;

/// A purpose for which personal data is processed, as a slug of 1 to 40
/// characters from `a-z`, `0-9` and `_` (e.g. `marketing_email`). The
/// workspace document defines each purpose's name and description.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PurposeId(String);

impl PurposeId {
    pub const MARKETING_EMAIL: &'static str = "marketing_email";
    pub const PHONE_SMS: &'static str = "phone_sms";
    pub const PROFILING: &'static str = "profiling";
    pub const THIRD_PARTY: &'static str = "third_party_sharing";
    /// The purposes every new workspace starts with.
    pub const STANDARD: [&'static str; 4] =
        [Self::MARKETING_EMAIL, Self::PHONE_SMS, Self::PROFILING, Self::THIRD_PARTY];
    /// Longest slug accepted.
    pub const MAX_LEN: usize = 40;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A purpose id that is not a slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a purpose id of 1 to 40 characters from a-z, 0-9 and _ (like marketing_email), got {0:?}")]
pub struct BadPurposeId(pub String);

impl FromStr for PurposeId {
    type Err = BadPurposeId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(BadPurposeId(s.to_owned()))
        }
    }
}

impl TryFrom<String> for PurposeId {
    type Error = BadPurposeId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PurposeId> for String {
    fn from(id: PurposeId) -> Self {
        id.0
    }
}

impl fmt::Display for PurposeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text that names none of an enum's values (in a document, a form or an
/// import).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {found:?}: expected one of {expected}")]
pub struct UnknownValue {
    /// What was being read, e.g. "lawful basis".
    pub what: &'static str,
    pub found: String,
    /// The accepted values, comma separated.
    pub expected: String,
}

/// A closed vocabulary stored as snake_case text: `ALL`, `as_str` (the stored
/// and serde form, also used by `Display` and `FromStr`) and `label` (words
/// for the UI).
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal, $label:literal;)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored form, e.g. in documents and exports.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Words for the UI.
            pub const fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| UnknownValue {
                    what: $what,
                    found: s.to_owned(),
                    expected: Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }
    };
}

vocabulary! {
    /// What one ledger event says about a purpose.
    ConsentAction ("consent action") {
        Granted => "granted", "Granted";
        Withdrawn => "withdrawn", "Withdrawn";
    }
}

vocabulary! {
    /// A purpose's current status, derived from the ledger (see the module
    /// doc). Only [`ConsentStatus::Granted`] allows processing that relies on
    /// consent.
    ConsentStatus ("consent status") {
        NeverAsked => "never_asked", "Never asked";
        Granted => "granted", "Granted";
        Withdrawn => "withdrawn", "Withdrawn";
    }
}

impl ConsentStatus {
    /// Whether consent is currently given; features that use personal data
    /// for a purpose on the basis of consent require this.
    pub const fn is_granted(self) -> bool {
        matches!(self, ConsentStatus::Granted)
    }
}

vocabulary! {
    /// The lawful basis for processing (GDPR article 6(1)).
    LawfulBasis ("lawful basis") {
        Consent => "consent", "Consent";
        Contract => "contract", "Contract";
        LegalObligation => "legal_obligation", "Legal obligation";
        VitalInterests => "vital_interests", "Vital interests";
        PublicTask => "public_task", "Public task";
        LegitimateInterests => "legitimate_interests", "Legitimate interests";
    }
}

vocabulary! {
    /// Where a consent event came from.
    ConsentSource ("consent source") {
        Form => "form", "Web form";
        Call => "call", "Phone call";
        Email => "email", "Email";
        InPerson => "in_person", "In person";
        Import => "import", "Import";
        Other => "other", "Other";
    }
}

/// One immutable entry of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEvent {
    pub id: EventId,
    pub purpose: PurposeId,
    pub action: ConsentAction,
    /// The recording device's clock: display and audit only.
    pub recorded_at: Timestamp,
    pub lawful_basis: LawfulBasis,
    pub source: ConsentSource,
    pub recorded_by: MemberId,
    #[serde(default)]
    pub note: String,
    /// The heads of this purpose its author had seen when recording it.
    #[serde(default)]
    pub seen: Vec<EventId>,
}

/// An event about to be recorded locally; [`ConsentLedger::record`] fills in
/// what it has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConsentEvent {
    pub id: EventId,
    pub purpose: PurposeId,
    pub action: ConsentAction,
    pub recorded_at: Timestamp,
    pub lawful_basis: LawfulBasis,
    pub source: ConsentSource,
    pub recorded_by: MemberId,
    pub note: String,
}

/// A contact's consent history: a grow-only set of immutable events. See the
/// module doc for the merge rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentLedger {
    events: BTreeMap<EventId, ConsentEvent>,
}

impl ConsentLedger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// All events, in id order.
    pub fn events(&self) -> impl Iterator<Item = &ConsentEvent> {
        self.events.values()
    }

    pub fn get(&self, id: EventId) -> Option<&ConsentEvent> {
        self.events.get(&id)
    }

    /// Appends a local event; its `seen` is set to the current heads for its
    /// purpose (what this author has seen). Returns the stored event (ids
    /// are unique, so it is the one given unless the id was already taken,
    /// in which case the rule for duplicate ids of [`Self::insert`] applies).
    pub fn record(&mut self, event: NewConsentEvent) -> &ConsentEvent {
        let seen = self.heads(&event.purpose);
        let NewConsentEvent { id, purpose, action, recorded_at, lawful_basis, source, recorded_by, note } = event;
        self.insert_ref(ConsentEvent {
            id,
            purpose,
            action,
            recorded_at,
            lawful_basis,
            source,
            recorded_by,
            note,
            seen,
        })
    }

    /// Adds an event from another replica. Idempotent: events are immutable,
    /// so an id already present is left as it is, except that two copies
    /// differing only in `seen` become one naming both lists (sorted). (Only
    /// corrupt or hostile data holds events under one id that differ
    /// otherwise; then the same copy is kept whatever the order of arrival,
    /// see the module doc.)
    pub fn insert(&mut self, event: ConsentEvent) {
        self.insert_ref(event);
    }

    fn insert_ref(&mut self, event: ConsentEvent) -> &ConsentEvent {
        use std::collections::btree_map::Entry;
        match self.events.entry(event.id) {
            Entry::Vacant(slot) => slot.insert(event),
            Entry::Occupied(mut slot) => {
                let held = slot.get_mut();
                if held.seen != event.seen && same_but_seen(held, &event) {
                    let union: BTreeSet<EventId> = held.seen.iter().chain(&event.seen).copied().collect();
                    held.seen = union.into_iter().collect();
                } else if duplicate_rank(&event) < duplicate_rank(held) {
                    slot.insert(event);
                }
                slot.into_mut()
            }
        }
    }

    /// Every id the events of `purpose` have seen, directly or through
    /// other events of the ledger, starting from `id` (not included): what
    /// `id` dominates. Ids named but not held are included; the walk goes on
    /// only through events held.
    pub fn dominated_by(&self, id: EventId) -> BTreeSet<EventId> {
        let Some(start) = self.events.get(&id) else {
            return BTreeSet::new();
        };
        let mut out = BTreeSet::new();
        let mut todo: Vec<EventId> = start.seen.clone();
        while let Some(next) = todo.pop() {
            if next == id || !out.insert(next) {
                continue;
            }
            if let Some(e) = self.events.get(&next).filter(|e| e.purpose == start.purpose) {
                todo.extend(e.seen.iter().copied());
            }
        }
        out.retain(|s| self.events.get(s).is_none_or(|e| e.purpose == start.purpose));
        out
    }

    /// Every id named in some event's `seen` (held or not).
    pub fn named(&self) -> BTreeSet<EventId> {
        self.events.values().flat_map(|e| e.seen.iter().copied()).collect()
    }

    /// Set union with another replica's ledger.
    pub fn merge(&mut self, other: &ConsentLedger) {
        for event in other.events.values() {
            self.insert(event.clone());
        }
    }

    /// The events of `purpose` that no other event of `purpose` names in
    /// `seen`, sorted by id.
    pub fn heads(&self, purpose: &PurposeId) -> Vec<EventId> {
        self.head_events(purpose).iter().map(|e| e.id).collect()
    }

    fn of<'a>(&'a self, purpose: &'a PurposeId) -> impl Iterator<Item = &'a ConsentEvent> + 'a {
        self.events.values().filter(move |e| &e.purpose == purpose)
    }

    fn head_events<'a>(&'a self, purpose: &'a PurposeId) -> Vec<&'a ConsentEvent> {
        let dominated: BTreeSet<EventId> =
            self.of(purpose).flat_map(|e| e.seen.iter().copied().filter(move |s| *s != e.id)).collect();
        self.of(purpose).filter(|e| !dominated.contains(&e.id)).collect()
    }

    /// The purpose's current status, derived from its heads (see the module
    /// doc).
    pub fn status(&self, purpose: &PurposeId) -> ConsentStatus {
        let heads = self.head_events(purpose);
        if heads.is_empty() {
            // No heads but some events: a cycle, only from corrupt data.
            return if self.of(purpose).next().is_none() {
                ConsentStatus::NeverAsked
            } else {
                ConsentStatus::Withdrawn
            };
        }
        if heads.iter().any(|e| e.action == ConsentAction::Withdrawn) {
            ConsentStatus::Withdrawn
        } else {
            ConsentStatus::Granted
        }
    }

    /// The status of every purpose that has events.
    pub fn statuses(&self) -> BTreeMap<PurposeId, ConsentStatus> {
        self.purposes()
            .into_iter()
            .map(|p| {
                let status = self.status(&p);
                (p, status)
            })
            .collect()
    }

    /// The purposes that have events.
    pub fn purposes(&self) -> BTreeSet<PurposeId> {
        self.events.values().map(|e| e.purpose.clone()).collect()
    }

    /// The events of one purpose (or all), newest first for display: an
    /// event always comes before everything it has seen (directly or
    /// transitively); between concurrent events, the later `recorded_at`
    /// comes first, then the greater id. Wall clocks order the display only.
    /// Events caught in a cycle (corrupt data), and those seen only through
    /// them, come last in the same clock order, so that none is hidden.
    pub fn timeline(&self, purpose: Option<&PurposeId>) -> Vec<&ConsentEvent> {
        let events: BTreeMap<EventId, &ConsentEvent> =
            self.events.values().filter(|e| purpose.is_none_or(|p| &e.purpose == p)).map(|e| (e.id, e)).collect();
        // Edges go from an event to the events of its purpose it has seen;
        // `waiting[x]` counts the events not yet shown that have seen x.
        let seen_of = |e: &ConsentEvent| -> BTreeSet<EventId> {
            e.seen
                .iter()
                .copied()
                .filter(|s| *s != e.id && events.get(s).is_some_and(|o| o.purpose == e.purpose))
                .collect()
        };
        let mut waiting: BTreeMap<EventId, usize> = BTreeMap::new();
        for e in events.values() {
            for s in seen_of(e) {
                *waiting.entry(s).or_default() += 1;
            }
        }
        let key = |e: &ConsentEvent| (e.recorded_at, e.id);
        let mut ready: BinaryHeap<(Timestamp, EventId)> =
            events.values().filter(|e| !waiting.contains_key(&e.id)).map(|e| key(e)).collect();
        let mut out = Vec::with_capacity(events.len());
        while let Some((_, id)) = ready.pop() {
            let Some(&event) = events.get(&id) else {
                continue;
            };
            out.push(event);
            for s in seen_of(event) {
                if let Some(count) = waiting.get_mut(&s) {
                    *count -= 1;
                    if *count == 0 {
                        waiting.remove(&s);
                        if let Some(&other) = events.get(&s) {
                            ready.push(key(other));
                        }
                    }
                }
            }
        }
        if out.len() < events.len() {
            let shown: BTreeSet<EventId> = out.iter().map(|e| e.id).collect();
            let mut rest: Vec<&ConsentEvent> = events.values().copied().filter(|e| !shown.contains(&e.id)).collect();
            rest.sort_by_key(|e| std::cmp::Reverse(key(e)));
            out.extend(rest);
        }
        out
    }
}

/// Whether two events are the same but for `seen`.
fn same_but_seen(a: &ConsentEvent, b: &ConsentEvent) -> bool {
    (a.id, &a.purpose, a.action, a.recorded_at, a.lawful_basis, a.source, a.recorded_by, &a.note)
        == (b.id, &b.purpose, b.action, b.recorded_at, b.lawful_basis, b.source, b.recorded_by, &b.note)
}

/// Orders two different events stored under one id (never produced by
/// honest replicas): the smaller is kept. A withdrawal first (fail safe),
/// then by every other field, so the choice is a total order and merging
/// does not depend on the order of arrival.
#[allow(clippy::type_complexity)]
fn duplicate_rank(
    e: &ConsentEvent,
) -> (bool, &PurposeId, Timestamp, LawfulBasis, ConsentSource, MemberId, &str, &[EventId]) {
    (
        e.action != ConsentAction::Withdrawn,
        &e.purpose,
        e.recorded_at,
        e.lawful_basis,
        e.source,
        e.recorded_by,
        &e.note,
        &e.seen,
    )
}

/// Where the ledger's fields are named in errors.
const FIELD: &str = "consent";

/// Reads the ledger stored as a map (event id → map of the event's fields;
/// `seen` a list of strings) at `obj`.
///
/// Where replicas wrote different maps under one event id (corrupt or
/// hostile data), every copy is read and the rule for duplicate ids of
/// [`ConsentLedger::insert`] keeps one, so all replicas read the same ledger.
///
/// # Errors
/// [`DecodeError`] naming the field (`consent.<event id>.<field>`) when `obj`
/// is not a map, a key is not an event id, an event is not a map, a field is
/// missing or of the wrong type, or holds an unknown purpose, action, lawful
/// basis or source. Corrupt data is reported, never repaired.
pub fn read_ledger<D: ReadDoc>(doc: &D, obj: &ObjId) -> Result<ConsentLedger, DecodeError> {
    if doc.object_type(obj)? != ObjType::Map {
        return Err(DecodeError::WrongType { field: FIELD.into(), expected: "map" });
    }
    let mut ledger = ConsentLedger::new();
    for key in doc.keys(obj) {
        let field = format!("{FIELD}.{key}");
        let id: EventId = key.parse().map_err(|_| DecodeError::Invalid {
            field: field.clone(),
            reason: "the key is not an event id (a UUID)".into(),
        })?;
        for (value, event_obj) in doc.get_all(obj, key.as_str())? {
            if !matches!(value, Value::Object(ObjType::Map)) {
                return Err(DecodeError::WrongType { field, expected: "map" });
            }
            let event = read_event(doc, &event_obj, id).map_err(|e| within(&field, e))?;
            ledger.insert(event);
        }
    }
    Ok(ledger)
}

fn read_event<D: ReadDoc>(doc: &D, obj: &ObjId, id: EventId) -> Result<ConsentEvent, DecodeError> {
    fn parse<T: FromStr>(field: &str, text: String) -> Result<T, DecodeError>
    where
        T::Err: fmt::Display,
    {
        text.parse().map_err(|e: T::Err| DecodeError::Invalid { field: field.into(), reason: e.to_string() })
    }
    let text = |field: &str| doc::req_str(doc, obj, field);
    let recorded_at =
        doc::get_i64(doc, obj, "recorded_at")?.ok_or_else(|| DecodeError::Missing { field: "recorded_at".into() })?;
    let seen = doc::get_str_list(doc, obj, "seen")?
        .into_iter()
        .map(|s| parse("seen", s))
        .collect::<Result<Vec<EventId>, _>>()?;
    Ok(ConsentEvent {
        id,
        purpose: parse("purpose", text("purpose")?)?,
        action: parse("action", text("action")?)?,
        recorded_at: Timestamp::from_millis(recorded_at),
        lawful_basis: parse("lawful_basis", text("lawful_basis")?)?,
        source: parse("source", text("source")?)?,
        recorded_by: parse("recorded_by", text("recorded_by")?)?,
        note: doc::get_str(doc, obj, "note")?.unwrap_or_default(),
        seen,
    })
}

/// Prefixes the field an error names with the path of its event.
fn within(prefix: &str, e: DecodeError) -> DecodeError {
    let path = |field: String| format!("{prefix}.{field}");
    match e {
        DecodeError::Missing { field } => DecodeError::Missing { field: path(field) },
        DecodeError::WrongType { field, expected } => DecodeError::WrongType { field: path(field), expected },
        DecodeError::Invalid { field, reason } => DecodeError::Invalid { field: path(field), reason },
        other => other,
    }
}

/// Writes the events of `ledger` missing from the map at `obj`; never
/// rewrites an existing event (append-only), so writing an unchanged ledger
/// makes no change.
///
/// # Errors
/// [`EncodeError`] when `obj` is not a map of this document.
pub fn write_ledger(doc: &mut AutoCommit, obj: &ObjId, ledger: &ConsentLedger) -> Result<(), EncodeError> {
    for event in ledger.events() {
        if doc.get(obj, event.id.to_string().as_str())?.is_some() {
            continue;
        }
        put_event(doc, obj, event)?;
    }
    Ok(())
}

/// Writes `event` under its id in the ledger map at `obj`, over whatever
/// copy is there (the replay of an epoch uses it to add `seen` names to an
/// event, see [`crate::privacy::epoch::replay`]).
///
/// # Errors
/// [`EncodeError`] when `obj` is not a map of this document.
pub(crate) fn put_event(doc: &mut AutoCommit, obj: &ObjId, event: &ConsentEvent) -> Result<(), EncodeError> {
    let key = event.id.to_string();
    let map = doc.put_object(obj, key.as_str(), ObjType::Map)?;
    doc.put(&map, "purpose", event.purpose.as_str())?;
    doc.put(&map, "action", event.action.as_str())?;
    doc.put(&map, "recorded_at", event.recorded_at.as_millis())?;
    doc.put(&map, "lawful_basis", event.lawful_basis.as_str())?;
    doc.put(&map, "source", event.source.as_str())?;
    doc.put(&map, "recorded_by", event.recorded_by.to_string())?;
    if !event.note.is_empty() {
        doc.put(&map, "note", event.note.as_str())?;
    }
    if !event.seen.is_empty() {
        let list = doc.put_object(&map, "seen", ObjType::List)?;
        for (i, seen) in event.seen.iter().enumerate() {
            doc.insert(&list, i, seen.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{ActorId, ROOT};
    use proptest::prelude::*;
    use ConsentAction::{Granted, Withdrawn};

    fn purpose(s: &str) -> PurposeId {
        s.parse().unwrap()
    }

    fn email() -> PurposeId {
        purpose(PurposeId::MARKETING_EMAIL)
    }

    fn sms() -> PurposeId {
        purpose(PurposeId::PHONE_SMS)
    }

    fn me() -> MemberId {
        MemberId::from_bytes([9; 16])
    }

    /// Distinct, readable ids: `id(n)` sorts by `n`.
    fn id(n: u64) -> EventId {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        EventId::from_bytes(bytes)
    }

    fn new_event(n: u64, purpose: &PurposeId, action: ConsentAction, clock: i64) -> NewConsentEvent {
        NewConsentEvent {
            id: id(n),
            purpose: purpose.clone(),
            action,
            recorded_at: Timestamp::from_millis(clock),
            lawful_basis: LawfulBasis::Consent,
            source: ConsentSource::Form,
            recorded_by: me(),
            note: String::new(),
        }
    }

    /// An event as another replica (or hostile data) could deliver it.
    fn event(n: u64, purpose: &PurposeId, action: ConsentAction, clock: i64, seen: &[u64]) -> ConsentEvent {
        ConsentEvent {
            id: id(n),
            purpose: purpose.clone(),
            action,
            recorded_at: Timestamp::from_millis(clock),
            lawful_basis: LawfulBasis::Consent,
            source: ConsentSource::Call,
            recorded_by: me(),
            note: String::new(),
            seen: seen.iter().map(|&s| id(s)).collect(),
        }
    }

    fn ledger_of(events: Vec<ConsentEvent>) -> ConsentLedger {
        let mut ledger = ConsentLedger::new();
        for e in events {
            ledger.insert(e);
        }
        ledger
    }

    fn ids_of(events: &[&ConsentEvent]) -> Vec<EventId> {
        events.iter().map(|e| e.id).collect()
    }

    // --- vocabulary -------------------------------------------------------

    #[test]
    fn purpose_ids_accept_slugs_and_refuse_anything_else() {
        for ok in ["a", "marketing_email", "x1_2", "_", &"a".repeat(40)] {
            assert_eq!(ok.parse::<PurposeId>().unwrap().as_str(), ok);
        }
        for bad in ["", "Marketing", "marketing email", "e-mail", " a", "é", &"a".repeat(41)] {
            let err = bad.parse::<PurposeId>().unwrap_err();
            assert!(err.to_string().contains("expected a purpose id"), "{err}");
        }
    }

    #[test]
    fn the_standard_purposes_are_valid_ids() {
        for p in PurposeId::STANDARD {
            assert_eq!(purpose(p).to_string(), p);
        }
        assert_eq!(PurposeId::THIRD_PARTY, "third_party_sharing");
    }

    #[test]
    fn purpose_ids_serialize_as_text_and_deserialize_only_when_valid() {
        assert_eq!(serde_json::to_string(&email()).unwrap(), "\"marketing_email\"");
        assert_eq!(serde_json::from_str::<PurposeId>("\"profiling\"").unwrap(), purpose("profiling"));
        assert!(serde_json::from_str::<PurposeId>("\"Not A Slug\"").is_err());
    }

    fn assert_round_trips<T>(all: &[T])
    where
        T: Copy + fmt::Display + FromStr + PartialEq + fmt::Debug + Serialize + for<'de> Deserialize<'de>,
        T::Err: fmt::Debug,
    {
        for v in all {
            let text = v.to_string();
            assert_eq!(text.parse::<T>().unwrap(), *v);
            assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<T>(&format!("\"{text}\"")).unwrap(), *v);
        }
    }

    #[test]
    fn every_vocabulary_value_round_trips_through_its_text_and_serde_forms() {
        assert_round_trips(ConsentAction::ALL);
        assert_round_trips(ConsentStatus::ALL);
        assert_round_trips(LawfulBasis::ALL);
        assert_round_trips(ConsentSource::ALL);
        assert_eq!(LawfulBasis::ALL.len(), 6);
        assert_eq!(ConsentSource::ALL.len(), 6);
    }

    #[test]
    fn vocabulary_has_stored_forms_and_labels_in_words() {
        assert_eq!(ConsentStatus::NeverAsked.label(), "Never asked");
        assert_eq!(ConsentStatus::NeverAsked.as_str(), "never_asked");
        assert_eq!(ConsentStatus::Granted.label(), "Granted");
        assert_eq!(ConsentStatus::Withdrawn.label(), "Withdrawn");
        assert_eq!(LawfulBasis::LegitimateInterests.as_str(), "legitimate_interests");
        assert_eq!(LawfulBasis::LegitimateInterests.label(), "Legitimate interests");
        assert_eq!(ConsentSource::InPerson.as_str(), "in_person");
        assert_eq!(ConsentSource::InPerson.label(), "In person");
        assert_eq!(ConsentAction::Withdrawn.as_str(), "withdrawn");
        assert!(ConsentStatus::Granted.is_granted());
        assert!(!ConsentStatus::NeverAsked.is_granted());
        assert!(!ConsentStatus::Withdrawn.is_granted());
    }

    #[test]
    fn unknown_vocabulary_text_is_refused_with_the_accepted_values() {
        let err = "maybe".parse::<LawfulBasis>().unwrap_err();
        assert_eq!(err.what, "lawful basis");
        assert!(err.to_string().contains("\"maybe\""), "{err}");
        assert!(err.to_string().contains("consent, contract, legal_obligation"), "{err}");
        assert!("Granted".parse::<ConsentAction>().is_err());
        assert!("fax".parse::<ConsentSource>().is_err());
    }

    // --- status -------------------------------------------------------------

    #[test]
    fn a_purpose_without_events_was_never_asked() {
        let mut ledger = ConsentLedger::new();
        assert!(ledger.is_empty());
        assert_eq!(ledger.status(&email()), ConsentStatus::NeverAsked);
        ledger.record(new_event(1, &sms(), Granted, 0));
        assert_eq!(ledger.status(&email()), ConsentStatus::NeverAsked);
        assert_eq!(ledger.heads(&email()), vec![]);
    }

    #[test]
    fn a_single_grant_gives_granted_and_a_single_withdrawal_gives_withdrawn() {
        let mut ledger = ConsentLedger::new();
        ledger.record(new_event(1, &email(), Granted, 0));
        ledger.record(new_event(2, &sms(), Withdrawn, 0));
        assert_eq!(ledger.status(&email()), ConsentStatus::Granted);
        assert_eq!(ledger.status(&sms()), ConsentStatus::Withdrawn);
        assert_eq!(ledger.len(), 2);
    }

    #[test]
    fn recording_sets_seen_to_the_current_heads_of_that_purpose_only() {
        let mut ledger = ConsentLedger::new();
        assert_eq!(ledger.record(new_event(1, &email(), Granted, 0)).seen, vec![]);
        ledger.record(new_event(2, &sms(), Granted, 0));
        let third = ledger.record(new_event(3, &email(), Withdrawn, 0));
        assert_eq!(third.seen, vec![id(1)]);
        assert_eq!(ledger.heads(&email()), vec![id(3)]);
        assert_eq!(ledger.heads(&sms()), vec![id(2)]);
        assert_eq!(ledger.get(id(3)).unwrap().seen, vec![id(1)]);
    }

    #[test]
    fn the_latest_event_in_causal_order_wins() {
        let mut ledger = ConsentLedger::new();
        ledger.record(new_event(1, &email(), Granted, 0));
        ledger.record(new_event(2, &email(), Withdrawn, 0));
        assert_eq!(ledger.status(&email()), ConsentStatus::Withdrawn);
        ledger.record(new_event(3, &email(), Granted, 0));
        assert_eq!(ledger.status(&email()), ConsentStatus::Granted);
        assert_eq!(ledger.heads(&email()), vec![id(3)]);
    }

    #[test]
    fn a_withdrawal_is_never_lost_to_a_concurrent_grant() {
        let mut a = ConsentLedger::new();
        a.record(new_event(1, &email(), Granted, 0));
        let mut b = a.clone();
        a.record(new_event(2, &email(), Withdrawn, 10));
        // The granting device's clock is far ahead, and its id sorts later.
        b.record(new_event(3, &email(), Granted, 10_000_000));
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.heads(&email()), vec![id(2), id(3)]);
        assert_eq!(ab.status(&email()), ConsentStatus::Withdrawn);
    }

    #[test]
    fn concurrent_grants_give_granted() {
        let mut a = ConsentLedger::new();
        a.record(new_event(1, &email(), Withdrawn, 0));
        let mut b = a.clone();
        a.record(new_event(2, &email(), Granted, 0));
        b.record(new_event(3, &email(), Granted, 0));
        a.merge(&b);
        assert_eq!(a.heads(&email()), vec![id(2), id(3)]);
        assert_eq!(a.status(&email()), ConsentStatus::Granted);
    }

    #[test]
    fn a_grant_recorded_after_seeing_a_concurrent_withdrawal_wins() {
        let mut a = ConsentLedger::new();
        let mut b = ConsentLedger::new();
        a.record(new_event(1, &email(), Withdrawn, 500));
        b.record(new_event(2, &email(), Granted, 100));
        b.merge(&a);
        assert_eq!(b.status(&email()), ConsentStatus::Withdrawn);
        // Having seen both, the contact grants again (e.g. on a call).
        assert_eq!(b.record(new_event(3, &email(), Granted, 0)).seen, vec![id(1), id(2)]);
        a.merge(&b);
        assert_eq!(a.status(&email()), ConsentStatus::Granted);
        assert_eq!(a.heads(&email()), vec![id(3)]);
    }

    #[test]
    fn wall_clocks_never_decide_the_status() {
        for (first, second) in [(0, 1), (1, 0), (i64::MAX, i64::MIN), (i64::MIN, i64::MAX)] {
            let mut ledger = ConsentLedger::new();
            ledger.record(new_event(1, &email(), Granted, first));
            ledger.record(new_event(2, &email(), Withdrawn, second));
            assert_eq!(ledger.status(&email()), ConsentStatus::Withdrawn);
            ledger.record(new_event(3, &email(), Granted, first));
            assert_eq!(ledger.status(&email()), ConsentStatus::Granted);
        }
    }

    #[test]
    fn an_event_dominates_a_seen_event_that_arrives_after_it() {
        let withdrawal = event(1, &email(), Withdrawn, 0, &[]);
        let regrant = event(2, &email(), Granted, 0, &[1]);
        let mut ledger = ledger_of(vec![regrant]);
        assert_eq!(ledger.status(&email()), ConsentStatus::Granted);
        ledger.insert(withdrawal);
        assert_eq!(ledger.heads(&email()), vec![id(2)]);
        assert_eq!(ledger.status(&email()), ConsentStatus::Granted);
    }

    #[test]
    fn a_cycle_that_leaves_no_heads_fails_safe_to_withdrawn() {
        let ledger = ledger_of(vec![event(1, &email(), Granted, 0, &[2]), event(2, &email(), Granted, 0, &[1])]);
        assert_eq!(ledger.heads(&email()), vec![]);
        assert_eq!(ledger.status(&email()), ConsentStatus::Withdrawn);
    }

    #[test]
    fn an_event_naming_itself_is_still_a_head() {
        let ledger = ledger_of(vec![event(1, &email(), Withdrawn, 0, &[1]), event(2, &email(), Granted, 0, &[])]);
        assert_eq!(ledger.heads(&email()), vec![id(1), id(2)]);
        assert_eq!(ledger.status(&email()), ConsentStatus::Withdrawn);
    }

    #[test]
    fn seen_ids_of_another_purpose_do_not_hide_its_events() {
        let ledger = ledger_of(vec![event(1, &sms(), Withdrawn, 0, &[]), event(2, &email(), Granted, 0, &[1])]);
        assert_eq!(ledger.status(&sms()), ConsentStatus::Withdrawn);
        assert_eq!(ledger.heads(&sms()), vec![id(1)]);
    }

    #[test]
    fn purposes_and_statuses_cover_only_purposes_with_events() {
        let mut ledger = ConsentLedger::new();
        ledger.record(new_event(1, &sms(), Withdrawn, 0));
        ledger.record(new_event(2, &purpose("events"), Granted, 0));
        assert_eq!(ledger.purposes().into_iter().collect::<Vec<_>>(), vec![purpose("events"), sms()]);
        let statuses = ledger.statuses();
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses[&sms()], ConsentStatus::Withdrawn);
        assert_eq!(statuses[&purpose("events")], ConsentStatus::Granted);
    }

    // --- merge --------------------------------------------------------------

    #[test]
    fn inserting_an_event_twice_changes_nothing() {
        let mut ledger = ConsentLedger::new();
        let recorded = ledger.record(new_event(1, &email(), Granted, 0)).clone();
        let before = ledger.clone();
        ledger.insert(recorded);
        ledger.merge(&before.clone());
        assert_eq!(ledger, before);
        assert_eq!(ledger.len(), 1);
    }

    #[test]
    fn merging_is_a_set_union_independent_of_order() {
        let a = ledger_of(vec![event(1, &email(), Granted, 0, &[]), event(2, &sms(), Granted, 0, &[])]);
        let b = ledger_of(vec![event(1, &email(), Granted, 0, &[]), event(3, &email(), Withdrawn, 0, &[1])]);
        let c = ledger_of(vec![event(4, &sms(), Withdrawn, 0, &[2])]);
        let mut abc = a.clone();
        abc.merge(&b);
        abc.merge(&c);
        let mut cba = c.clone();
        cba.merge(&b);
        cba.merge(&a);
        assert_eq!(abc, cba);
        assert_eq!(abc.len(), 4);
        assert_eq!(abc.status(&email()), ConsentStatus::Withdrawn);
        assert_eq!(abc.status(&sms()), ConsentStatus::Withdrawn);
    }

    #[test]
    fn an_id_already_present_keeps_its_event() {
        let mut ledger = ConsentLedger::new();
        ledger.record(new_event(1, &email(), Withdrawn, 0));
        let mut impostor = event(1, &email(), Granted, 0, &[]);
        impostor.note = "rewritten".into();
        ledger.insert(impostor);
        assert_eq!(ledger.get(id(1)).unwrap().action, Withdrawn);
        assert_eq!(ledger.get(id(1)).unwrap().note, "");
    }

    #[test]
    fn two_different_events_under_one_id_resolve_the_same_whatever_the_order() {
        let withdrawal = event(1, &email(), Withdrawn, 5, &[]);
        let grant = event(1, &email(), Granted, 0, &[]);
        let first = ledger_of(vec![withdrawal.clone(), grant.clone()]);
        let second = ledger_of(vec![grant.clone(), withdrawal.clone()]);
        assert_eq!(first, second);
        assert_eq!(first.status(&email()), ConsentStatus::Withdrawn);
        let mut early = withdrawal.clone();
        early.recorded_at = Timestamp::from_millis(1);
        let third = ledger_of(vec![withdrawal.clone(), early.clone()]);
        let fourth = ledger_of(vec![early.clone(), withdrawal]);
        assert_eq!(third, fourth);
        assert_eq!(third.get(id(1)), Some(&early));
    }

    #[test]
    fn copies_that_differ_only_in_seen_become_one_naming_both_whatever_the_order() {
        let a = event(5, &email(), Withdrawn, 0, &[1, 3]);
        let b = event(5, &email(), Withdrawn, 0, &[2]);
        let first = ledger_of(vec![a.clone(), b.clone()]);
        let second = ledger_of(vec![b.clone(), a.clone(), b]);
        assert_eq!(first, second);
        assert_eq!(first.get(id(5)).unwrap().seen, vec![id(1), id(2), id(3)]);
        // A copy that differs otherwise still follows the duplicate rule.
        let grant = event(5, &email(), Granted, 0, &[1, 2, 3, 4]);
        assert_eq!(ledger_of(vec![a.clone(), grant.clone()]).get(id(5)).unwrap().action, Withdrawn);
        assert_eq!(ledger_of(vec![grant, a]).get(id(5)).unwrap().seen, vec![id(1), id(3)]);
    }

    #[test]
    fn an_event_dominates_what_it_has_seen_transitively_within_its_purpose() {
        let ledger = ledger_of(vec![
            event(1, &email(), Granted, 0, &[]),
            event(2, &email(), Withdrawn, 0, &[1, 9]),
            event(3, &email(), Granted, 0, &[2, 4]),
            event(4, &sms(), Granted, 0, &[]),
            event(5, &email(), Granted, 0, &[]),
        ]);
        // 9 is named but not held; 4 is of another purpose; 5 is concurrent.
        assert_eq!(ledger.dominated_by(id(3)), [id(1), id(2), id(9)].into_iter().collect());
        assert!(ledger.dominated_by(id(5)).is_empty());
        assert!(ledger.dominated_by(id(42)).is_empty());
        assert_eq!(ledger.named(), [id(1), id(2), id(4), id(9)].into_iter().collect());
    }

    // --- timeline -----------------------------------------------------------

    #[test]
    fn the_timeline_puts_an_event_before_everything_it_has_seen_whatever_the_clocks() {
        let mut ledger = ConsentLedger::new();
        ledger.record(new_event(1, &email(), Granted, 3_000));
        ledger.record(new_event(2, &email(), Withdrawn, 2_000));
        ledger.record(new_event(3, &email(), Granted, 1_000));
        assert_eq!(ids_of(&ledger.timeline(Some(&email()))), vec![id(3), id(2), id(1)]);
    }

    #[test]
    fn the_timeline_shows_concurrent_events_latest_clock_first_then_greatest_id() {
        let ledger = ledger_of(vec![
            event(1, &email(), Granted, 0, &[]),
            event(2, &email(), Withdrawn, 50, &[1]),
            event(3, &email(), Granted, 100, &[1]),
            event(4, &email(), Granted, 50, &[1]),
            event(5, &sms(), Granted, 75, &[]),
        ]);
        assert_eq!(ids_of(&ledger.timeline(Some(&email()))), vec![id(3), id(4), id(2), id(1)]);
        assert_eq!(ids_of(&ledger.timeline(None)), vec![id(3), id(5), id(4), id(2), id(1)]);
    }

    #[test]
    fn the_timeline_filters_by_purpose() {
        let mut ledger = ConsentLedger::new();
        ledger.record(new_event(1, &email(), Granted, 0));
        ledger.record(new_event(2, &sms(), Granted, 0));
        assert_eq!(ids_of(&ledger.timeline(Some(&sms()))), vec![id(2)]);
        assert!(ledger.timeline(Some(&purpose("profiling"))).is_empty());
        assert_eq!(ledger.timeline(None).len(), 2);
    }

    #[test]
    fn the_timeline_still_shows_events_caught_in_a_cycle() {
        let ledger = ledger_of(vec![
            event(1, &email(), Granted, 10, &[2]),
            event(2, &email(), Withdrawn, 20, &[1]),
            event(3, &email(), Granted, 0, &[]),
        ]);
        assert_eq!(ids_of(&ledger.timeline(Some(&email()))), vec![id(3), id(2), id(1)]);
    }

    // --- storage ------------------------------------------------------------

    fn doc_with_ledger_map() -> (AutoCommit, ObjId) {
        let mut doc = AutoCommit::new();
        let map = doc.put_object(ROOT, "consent", ObjType::Map).unwrap();
        (doc, map)
    }

    fn sample_ledger() -> ConsentLedger {
        let mut ledger = ConsentLedger::new();
        let mut first = new_event(1, &email(), Granted, 1_700_000_000_000);
        first.note = "Ticked the box on the signup form".into();
        first.source = ConsentSource::InPerson;
        first.lawful_basis = LawfulBasis::LegitimateInterests;
        ledger.record(first);
        ledger.record(new_event(2, &email(), Withdrawn, -5));
        ledger.record(new_event(3, &sms(), Granted, i64::MAX));
        ledger
    }

    #[test]
    fn a_ledger_round_trips_through_an_automerge_document() {
        let (mut doc, map) = doc_with_ledger_map();
        let ledger = sample_ledger();
        write_ledger(&mut doc, &map, &ledger).unwrap();
        let read = read_ledger(&doc, &map).unwrap();
        assert_eq!(read, ledger);
        let reloaded = AutoCommit::load(&doc.save()).unwrap();
        let map = doc::get_map(&reloaded, &ROOT, "consent").unwrap().unwrap();
        assert_eq!(read_ledger(&reloaded, &map).unwrap(), ledger);
    }

    #[test]
    fn an_empty_ledger_map_reads_as_an_empty_ledger() {
        let (doc, map) = doc_with_ledger_map();
        assert_eq!(read_ledger(&doc, &map).unwrap(), ConsentLedger::new());
    }

    #[test]
    fn writing_an_unchanged_ledger_makes_no_change() {
        let (mut doc, map) = doc_with_ledger_map();
        let ledger = sample_ledger();
        write_ledger(&mut doc, &map, &ledger).unwrap();
        let heads = doc.get_heads();
        write_ledger(&mut doc, &map, &ledger).unwrap();
        assert_eq!(doc.get_heads(), heads);
    }

    #[test]
    fn writing_never_rewrites_an_existing_event() {
        let (mut doc, map) = doc_with_ledger_map();
        let mut ledger = ConsentLedger::new();
        ledger.record(new_event(1, &email(), Withdrawn, 0));
        write_ledger(&mut doc, &map, &ledger).unwrap();
        let tampered = ledger_of(vec![event(1, &email(), Granted, 0, &[]), event(2, &sms(), Granted, 0, &[])]);
        write_ledger(&mut doc, &map, &tampered).unwrap();
        let read = read_ledger(&doc, &map).unwrap();
        assert_eq!(read.get(id(1)).unwrap().action, Withdrawn);
        assert_eq!(read.len(), 2);
    }

    #[test]
    fn the_same_event_written_by_two_replicas_reads_as_one_event() {
        let (mut a, map) = doc_with_ledger_map();
        let mut b = a.fork().with_actor(ActorId::from(vec![2; 16]));
        let ledger = sample_ledger();
        write_ledger(&mut a, &map, &ledger).unwrap();
        write_ledger(&mut b, &map, &ledger).unwrap();
        a.merge(&mut b).unwrap();
        assert_eq!(read_ledger(&a, &map).unwrap(), ledger);
    }

    #[test]
    fn different_events_written_under_one_id_read_the_same_on_every_replica() {
        let (mut a, map) = doc_with_ledger_map();
        let mut b = a.fork().with_actor(ActorId::from(vec![2; 16]));
        write_ledger(&mut a, &map, &ledger_of(vec![event(1, &email(), Granted, 0, &[])])).unwrap();
        write_ledger(&mut b, &map, &ledger_of(vec![event(1, &email(), Withdrawn, 0, &[])])).unwrap();
        let mut a2 = a.clone();
        a.merge(&mut b).unwrap();
        b.merge(&mut a2).unwrap();
        let from_a = read_ledger(&a, &map).unwrap();
        assert_eq!(from_a, read_ledger(&b, &map).unwrap());
        assert_eq!(from_a.status(&email()), ConsentStatus::Withdrawn);
    }

    /// Writes one valid event, lets `spoil` damage it, and returns the error.
    fn read_error(spoil: impl FnOnce(&mut AutoCommit, &ObjId)) -> DecodeError {
        let (mut doc, map) = doc_with_ledger_map();
        let mut ledger = ConsentLedger::new();
        ledger.record(new_event(1, &email(), Granted, 0));
        ledger.record(new_event(2, &email(), Granted, 0));
        write_ledger(&mut doc, &map, &ledger).unwrap();
        let (_, event) = doc.get(&map, id(2).to_string()).unwrap().unwrap();
        spoil(&mut doc, &event);
        read_ledger(&doc, &map).unwrap_err()
    }

    fn field_of(err: &DecodeError) -> String {
        match err {
            DecodeError::Missing { field }
            | DecodeError::WrongType { field, .. }
            | DecodeError::Invalid { field, .. } => field.clone(),
            other => panic!("expected an error naming a field, got {other}"),
        }
    }

    #[test]
    fn reading_reports_an_unknown_action_basis_or_source_naming_the_field() {
        for (field, value) in [("action", "maybe"), ("lawful_basis", "whim"), ("source", "carrier pigeon")] {
            let err = read_error(|doc, event| doc.put(event, field, value).unwrap());
            assert!(matches!(err, DecodeError::Invalid { .. }), "{err}");
            assert_eq!(field_of(&err), format!("consent.{}.{field}", id(2)));
            assert!(err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn reading_reports_invalid_purpose_member_and_seen_ids() {
        let err = read_error(|doc, event| doc.put(event, "purpose", "Marketing Email").unwrap());
        assert_eq!(field_of(&err), format!("consent.{}.purpose", id(2)));
        let err = read_error(|doc, event| doc.put(event, "recorded_by", "nobody").unwrap());
        assert_eq!(field_of(&err), format!("consent.{}.recorded_by", id(2)));
        let err = read_error(|doc, event| {
            let (_, list) = doc.get(event, "seen").unwrap().unwrap();
            doc.insert(&list, 0, "not-an-id").unwrap();
        });
        assert_eq!(field_of(&err), format!("consent.{}.seen", id(2)));
    }

    #[test]
    fn reading_reports_fields_of_the_wrong_type() {
        let err = read_error(|doc, event| doc.put(event, "recorded_at", "yesterday").unwrap());
        assert!(matches!(err, DecodeError::WrongType { expected: "integer", .. }), "{err}");
        assert_eq!(field_of(&err), format!("consent.{}.recorded_at", id(2)));
        let err = read_error(|doc, event| doc.put(event, "action", 1).unwrap());
        assert!(matches!(err, DecodeError::WrongType { .. }), "{err}");
        let err = read_error(|doc, event| doc.put(event, "seen", "everything").unwrap());
        assert!(matches!(err, DecodeError::WrongType { expected: "list", .. }), "{err}");
        let err = read_error(|doc, event| {
            let (_, list) = doc.get(event, "seen").unwrap().unwrap();
            doc.insert(&list, 0, 42).unwrap();
        });
        assert!(matches!(err, DecodeError::WrongType { .. }), "{err}");
        assert_eq!(field_of(&err), format!("consent.{}.seen", id(2)));
        let err = read_error(|doc, event| {
            doc.put_object(event, "note", ObjType::List).unwrap();
        });
        assert_eq!(field_of(&err), format!("consent.{}.note", id(2)));
    }

    #[test]
    fn reading_reports_a_missing_field() {
        for field in ["purpose", "action", "recorded_at", "lawful_basis", "source", "recorded_by"] {
            let err = read_error(|doc, event| doc.delete(event, field).unwrap());
            assert_eq!(err, DecodeError::Missing { field: format!("consent.{}.{field}", id(2)) });
        }
    }

    #[test]
    fn reading_reports_a_key_that_is_not_an_event_id_or_an_event_that_is_not_a_map() {
        let (mut doc, map) = doc_with_ledger_map();
        doc.put_object(&map, "oops", ObjType::Map).unwrap();
        let err = read_ledger(&doc, &map).unwrap_err();
        assert_eq!(field_of(&err), "consent.oops");
        let (mut doc, map) = doc_with_ledger_map();
        doc.put(&map, id(1).to_string(), "granted").unwrap();
        let err = read_ledger(&doc, &map).unwrap_err();
        assert_eq!(err, DecodeError::WrongType { field: format!("consent.{}", id(1)), expected: "map" });
    }

    #[test]
    fn reading_something_that_is_not_a_map_is_an_error_not_a_panic() {
        let mut doc = AutoCommit::new();
        let list = doc.put_object(ROOT, "consent", ObjType::List).unwrap();
        doc.insert(&list, 0, "x").unwrap();
        assert!(matches!(read_ledger(&doc, &list), Err(DecodeError::WrongType { .. })));
        let text = doc.put_object(ROOT, "text", ObjType::Text).unwrap();
        assert!(read_ledger(&doc, &text).is_err());
        assert!(write_ledger(&mut doc, &list, &sample_ledger()).is_err());
    }

    // --- properties ---------------------------------------------------------

    /// One step of a random multi-replica history.
    #[derive(Debug, Clone)]
    enum Step {
        Record { replica: usize, purpose: usize, withdraw: bool, clock: i64 },
        Sync { from: usize, to: usize },
    }

    fn purposes() -> [PurposeId; 2] {
        [email(), sms()]
    }

    fn clock() -> impl Strategy<Value = i64> {
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), -1_000_000i64..1_000_000, any::<i64>(),]
    }

    fn steps(replicas: usize, max: usize) -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            (0..replicas, 0..2usize, any::<bool>(), clock())
                .prop_map(|(replica, purpose, withdraw, clock)| Step::Record { replica, purpose, withdraw, clock }),
            (0..replicas, 0..replicas).prop_map(|(from, to)| Step::Sync { from, to }),
        ];
        proptest::collection::vec(step, 0..max)
    }

    /// A history on 2–5 replicas plus, for each replica, a random order in
    /// which it finally merges every replica.
    fn scenario(max_steps: usize) -> impl Strategy<Value = (usize, Vec<Step>, Vec<Vec<usize>>)> {
        (2..=5usize).prop_flat_map(move |n| {
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            (Just(n), steps(n, max_steps), proptest::collection::vec(order, n))
        })
    }

    fn action(withdraw: bool) -> ConsentAction {
        if withdraw {
            Withdrawn
        } else {
            Granted
        }
    }

    /// Runs a history; event `i` of the history gets id `i`.
    fn run(n: usize, steps: &[Step]) -> Vec<ConsentLedger> {
        let purposes = purposes();
        let mut ledgers = vec![ConsentLedger::new(); n];
        for (i, step) in steps.iter().enumerate() {
            match *step {
                Step::Record { replica, purpose, withdraw, clock } => {
                    ledgers[replica].record(new_event(i as u64, &purposes[purpose], action(withdraw), clock));
                }
                Step::Sync { from, to } => {
                    let other = ledgers[from].clone();
                    ledgers[to].merge(&other);
                }
            }
        }
        ledgers
    }

    fn merge_all(ledgers: &[ConsentLedger], orders: &[Vec<usize>]) -> Vec<ConsentLedger> {
        orders
            .iter()
            .zip(ledgers)
            .map(|(order, own)| {
                let mut merged = own.clone();
                for &other in order {
                    merged.merge(&ledgers[other]);
                }
                merged
            })
            .collect()
    }

    /// The status computed from first principles: withdrawn when some
    /// withdrawal has no event causally after it (transitively).
    fn oracle_status(ledger: &ConsentLedger, purpose: &PurposeId) -> ConsentStatus {
        let events: Vec<&ConsentEvent> = ledger.events().filter(|e| &e.purpose == purpose).collect();
        if events.is_empty() {
            return ConsentStatus::NeverAsked;
        }
        let has_successor = |target: EventId| {
            // Is there an event from which `target` is reachable through `seen`?
            events.iter().any(|start| {
                let mut stack: Vec<EventId> = start.seen.clone();
                let mut visited = BTreeSet::new();
                while let Some(next) = stack.pop() {
                    if next == target {
                        return true;
                    }
                    if visited.insert(next) {
                        if let Some(e) = ledger.get(next) {
                            stack.extend(e.seen.iter().copied());
                        }
                    }
                }
                false
            })
        };
        let latest: Vec<&&ConsentEvent> = events.iter().filter(|e| !has_successor(e.id)).collect();
        if latest.iter().any(|e| e.action == Withdrawn) {
            ConsentStatus::Withdrawn
        } else {
            ConsentStatus::Granted
        }
    }

    /// Every event comes before all the events it has seen.
    fn assert_timeline_respects_causality(ledger: &ConsentLedger) {
        for purpose in [None, Some(&email()), Some(&sms())] {
            let timeline = ledger.timeline(purpose);
            let position: BTreeMap<EventId, usize> = timeline.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
            assert_eq!(position.len(), timeline.len());
            for (i, e) in timeline.iter().enumerate() {
                for s in &e.seen {
                    if let Some(&j) = position.get(s) {
                        assert!(i < j, "{} shown after {} which it has seen", e.id, s);
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::test_support::cases(128)))]

        #[test]
        fn replicas_that_sync_randomly_converge_to_the_same_ledger_and_statuses(
            (n, steps, orders) in scenario(40)
        ) {
            let ledgers = run(n, &steps);
            let merged = merge_all(&ledgers, &orders);
            let recorded = steps.iter().filter(|s| matches!(s, Step::Record { .. })).count();
            for ledger in &merged {
                prop_assert_eq!(ledger, &merged[0]);
                prop_assert_eq!(ledger.len(), recorded);
                for purpose in purposes() {
                    prop_assert_eq!(ledger.status(&purpose), merged[0].status(&purpose));
                }
            }
            assert_timeline_respects_causality(&merged[0]);
        }

        #[test]
        fn the_status_is_withdrawn_exactly_when_a_withdrawal_is_a_head(
            (n, steps, orders) in scenario(40)
        ) {
            let ledgers = run(n, &steps);
            for ledger in ledgers.iter().chain(&merge_all(&ledgers, &orders)) {
                for purpose in purposes() {
                    let heads = ledger.heads(&purpose);
                    let withdrawn_head = heads.iter().any(|h| ledger.get(*h).unwrap().action == Withdrawn);
                    let status = ledger.status(&purpose);
                    prop_assert_eq!(withdrawn_head, status == ConsentStatus::Withdrawn);
                    prop_assert_eq!(status, oracle_status(ledger, &purpose));
                }
            }
        }

        #[test]
        fn a_withdrawal_is_never_lost_to_a_grant_made_concurrently_on_another_replica(
            (n, steps, orders) in scenario(30),
            pick in any::<(prop::sample::Index, prop::sample::Index)>(),
            clocks in (clock(), clock()),
            purpose in 0..2usize,
        ) {
            let mut ledgers = run(n, &steps);
            let a = pick.0.index(n);
            let b = (a + 1 + pick.1.index(n - 1)) % n;
            let purpose = &purposes()[purpose];
            ledgers[a].record(new_event(1_000, purpose, Withdrawn, clocks.0));
            ledgers[b].record(new_event(1_001, purpose, Granted, clocks.1));
            for ledger in merge_all(&ledgers, &orders) {
                prop_assert_eq!(ledger.status(purpose), ConsentStatus::Withdrawn);
            }
        }

        #[test]
        fn a_grant_made_after_seeing_a_withdrawal_wins(
            (n, steps, orders) in scenario(30),
            pick in any::<(prop::sample::Index, prop::sample::Index)>(),
            clocks in (clock(), clock()),
            purpose in 0..2usize,
        ) {
            let mut ledgers = run(n, &steps);
            let a = pick.0.index(n);
            let b = pick.1.index(n);
            let purpose = &purposes()[purpose];
            ledgers[a].record(new_event(1_000, purpose, Withdrawn, clocks.0));
            // b catches up with everyone (so it sees the withdrawal), then grants.
            for other in 0..n {
                let other = ledgers[other].clone();
                ledgers[b].merge(&other);
            }
            prop_assert_eq!(ledgers[b].status(purpose), ConsentStatus::Withdrawn);
            ledgers[b].record(new_event(1_001, purpose, Granted, clocks.1));
            for ledger in merge_all(&ledgers, &orders) {
                prop_assert_eq!(ledger.status(purpose), ConsentStatus::Granted);
            }
        }

        #[test]
        fn skewed_clocks_change_no_status(
            (n, steps, orders) in scenario(40),
            skewed in proptest::collection::vec(clock(), 40),
        ) {
            let reclocked: Vec<Step> = steps
                .iter()
                .zip(&skewed)
                .map(|(step, &new_clock)| match *step {
                    Step::Record { replica, purpose, withdraw, .. } => {
                        Step::Record { replica, purpose, withdraw, clock: new_clock }
                    }
                    ref sync => sync.clone(),
                })
                .collect();
            let honest = run(n, &steps);
            let skewed = run(n, &reclocked);
            let all = |ledgers: &[ConsentLedger]| {
                ledgers.iter().cloned().chain(merge_all(ledgers, &orders)).collect::<Vec<_>>()
            };
            for (h, s) in all(&honest).iter().zip(&all(&skewed)) {
                for purpose in purposes() {
                    prop_assert_eq!(h.status(&purpose), s.status(&purpose));
                    prop_assert_eq!(h.heads(&purpose), s.heads(&purpose));
                }
                assert_timeline_respects_causality(s);
            }
        }
    }

    fn ledger_map(doc: &AutoCommit) -> ObjId {
        doc::get_map(doc, &ROOT, "consent").unwrap().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::test_support::cases(64)))]

        #[test]
        fn replicas_that_sync_through_automerge_converge_to_the_same_ledger(
            (n, steps, orders) in scenario(24)
        ) {
            let purposes = purposes();
            let (mut base, _) = doc_with_ledger_map();
            let mut docs: Vec<AutoCommit> = (0..n)
                .map(|i| base.fork().with_actor(ActorId::from(vec![i as u8 + 1; 16])))
                .collect();
            // The same history kept in memory: each document must read as it.
            let mut model = vec![ConsentLedger::new(); n];
            for (i, step) in steps.iter().enumerate() {
                match *step {
                    Step::Record { replica, purpose, withdraw, clock } => {
                        let doc = &mut docs[replica];
                        let map = ledger_map(doc);
                        let mut ledger = read_ledger(doc, &map).unwrap();
                        let new = new_event(i as u64, &purposes[purpose], action(withdraw), clock);
                        ledger.record(new.clone());
                        write_ledger(doc, &map, &ledger).unwrap();
                        doc.commit();
                        model[replica].record(new);
                    }
                    Step::Sync { from, to } => {
                        let mut other = docs[from].clone();
                        docs[to].merge(&mut other).unwrap();
                        let other = model[from].clone();
                        model[to].merge(&other);
                    }
                }
            }
            for (doc, expected) in docs.iter().zip(&model) {
                prop_assert_eq!(&read_ledger(doc, &ledger_map(doc)).unwrap(), expected);
            }
            let snapshots = docs.clone();
            for (doc, order) in docs.iter_mut().zip(&orders) {
                for &other in order {
                    doc.merge(&mut snapshots[other].clone()).unwrap();
                }
            }
            let expected = merge_all(&model, &orders).remove(0);
            for doc in &docs {
                let ledger = read_ledger(doc, &ledger_map(doc)).unwrap();
                prop_assert_eq!(&ledger, &expected);
                for purpose in &purposes {
                    prop_assert_eq!(ledger.status(purpose), expected.status(purpose));
                }
            }
        }
    }
}
