//! The workspace document: settings shared by every record of a workspace
//! (name, default phone country code), consent purposes, custom field
//! definitions, members, the tombstones of erased records and the retention
//! policy. It is one Automerge document like any record.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ROOT};
use serde::{Deserialize, Serialize};

use crate::consent::{LawfulBasis, PurposeId};
use crate::doc::{self, DecodeError, EncodeError};
use crate::ids::{MemberId, RecordId};
use crate::privacy::{retention, tombstone, RetentionPolicy, Tombstones};
use crate::record::{Record, RecordKind, Row};
use crate::sales::pipeline::{Pipeline, PipelineId, Stage, StageId};
use crate::validate::CustomFieldKind;
use crate::Timestamp;

/// A purpose for which personal data may be processed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purpose {
    pub name: String,
    pub description: String,
    pub lawful_basis: LawfulBasis,
}

/// A custom field defined for one kind of record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldDef {
    pub label: String,
    pub kind: CustomFieldKind,
    pub applies_to: RecordKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    pub id: RecordId,
    pub name: String,
    /// Calling code (digits, e.g. "44") assumed for phone numbers typed
    /// without one.
    pub default_calling_code: String,
    pub purposes: BTreeMap<PurposeId, Purpose>,
    pub custom_fields: BTreeMap<String, CustomFieldDef>,
    pub members: BTreeMap<MemberId, Member>,
    /// Erased records (grow-only; see [`crate::privacy::tombstone`]).
    /// Absent in older documents, which read as none.
    pub tombstones: Tombstones,
    /// When inactive contacts come up for review; absent = no policy.
    pub retention: Option<RetentionPolicy>,
    /// Deal pipelines and their stages (see [`crate::sales::pipeline`]).
    pub pipelines: BTreeMap<PipelineId, Pipeline>,
    /// Currency new deals start in (ISO 4217 code).
    pub currency: String,
    /// Monthly sales target in minor units of [`Workspace::currency`], for
    /// the forecast; absent = none.
    pub monthly_target: Option<i64>,
    pub updated_at: Timestamp,
}

impl Workspace {
    /// A new workspace with the four standard purposes and its creator as
    /// the only member.
    pub fn new(id: RecordId, name: &str, creator: MemberId, creator_name: &str, now: Timestamp) -> Self {
        let mut members = BTreeMap::new();
        members.insert(creator, Member { name: creator_name.to_owned() });
        Self {
            id,
            name: name.to_owned(),
            default_calling_code: "44".into(),
            purposes: default_purposes(),
            custom_fields: BTreeMap::new(),
            members,
            tombstones: Tombstones::new(),
            retention: None,
            pipelines: crate::sales::pipeline::default_pipelines(),
            currency: "EUR".into(),
            monthly_target: None,
            updated_at: now,
        }
    }

    /// Whether record `id` was erased (its data must not be kept, applied
    /// or pushed anywhere).
    pub fn is_erased(&self, id: RecordId) -> bool {
        self.tombstones.is_erased(id)
    }

    /// The name to show for a member, or a short form of the id.
    pub fn member_name(&self, id: MemberId) -> String {
        self.members.get(&id).map(|m| m.name.clone()).unwrap_or_else(|| {
            let s = id.to_string();
            format!("member {}", &s[s.len() - 6..])
        })
    }

    /// A pipeline's stage, if both exist.
    pub fn stage(&self, pipeline: &str, stage: &str) -> Option<&Stage> {
        self.pipelines.get(pipeline)?.stages.get(stage)
    }

    /// Pipelines in display order (archived ones left out unless asked for).
    pub fn ordered_pipelines(&self, include_archived: bool) -> Vec<(&PipelineId, &Pipeline)> {
        let mut out: Vec<_> = self.pipelines.iter().filter(|(_, p)| include_archived || !p.archived).collect();
        out.sort_by(|a, b| a.1.position.total_cmp(&b.1.position).then_with(|| a.0.cmp(b.0)));
        out
    }

    /// Where a new deal starts: the first open stage of the first pipeline.
    pub fn default_stage(&self) -> Option<(PipelineId, StageId)> {
        self.ordered_pipelines(false)
            .into_iter()
            .find_map(|(pid, p)| p.first_open_stage().map(|s| (pid.clone(), s.clone())))
    }

    /// Custom fields that apply to `kind`, in id order.
    pub fn fields_for(&self, kind: RecordKind) -> impl Iterator<Item = (&String, &CustomFieldDef)> {
        self.custom_fields.iter().filter(move |(_, d)| d.applies_to == kind)
    }

    /// A slug for a new custom field or purpose from its label, unique among `taken`.
    pub fn slug_for<'a>(label: &str, taken: impl Iterator<Item = &'a str> + Clone) -> String {
        let mut base: String = label
            .trim()
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
            .split('_')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        base.truncate(32);
        if base.is_empty() {
            base = "field".into();
        }
        let mut candidate = base.clone();
        let mut n = 2;
        while taken.clone().any(|t| t == candidate) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        candidate
    }
}

/// Marketing email, phone/SMS, profiling/analytics and third-party sharing.
pub fn default_purposes() -> BTreeMap<PurposeId, Purpose> {
    let defs = [
        (PurposeId::MARKETING_EMAIL, "Marketing email", "Newsletters and offers by email", LawfulBasis::Consent),
        (PurposeId::PHONE_SMS, "Phone and SMS", "Sales and marketing calls and text messages", LawfulBasis::Consent),
        (
            PurposeId::PROFILING,
            "Profiling and analytics",
            "Lead scoring and behavioural analytics",
            LawfulBasis::Consent,
        ),
        (PurposeId::THIRD_PARTY, "Third-party sharing", "Sharing with partners", LawfulBasis::Consent),
    ];
    defs.into_iter()
        .filter_map(|(id, name, description, basis)| {
            Some((
                id.parse().ok()?,
                Purpose { name: name.into(), description: description.into(), lawful_basis: basis },
            ))
        })
        .collect()
}

/// Maps of small structs are stored as JSON text per entry: each entry is
/// replaced whole (last writer wins per entry), while different entries
/// merge independently.
fn write_json_map<K: ToString, V: Serialize>(
    doc: &mut AutoCommit,
    key: &str,
    entries: &BTreeMap<K, V>,
) -> Result<(), EncodeError> {
    let map = doc::ensure_map(doc, &ROOT, key)?;
    let wanted: BTreeMap<String, String> =
        entries.iter().map(|(k, v)| (k.to_string(), serde_json::to_string(v).unwrap_or_default())).collect();
    for existing in doc::map_keys(doc, &map) {
        if !wanted.contains_key(&existing) {
            automerge::transaction::Transactable::delete(doc, &map, existing.as_str())?;
        }
    }
    for (k, v) in &wanted {
        doc::put_str(doc, &map, k, Some(v))?;
    }
    Ok(())
}

fn read_json_map<K: std::str::FromStr + Ord, V: for<'de> Deserialize<'de>>(
    doc: &AutoCommit,
    key: &str,
) -> Result<BTreeMap<K, V>, DecodeError> {
    let mut out = BTreeMap::new();
    let Some(map) = doc::get_map(doc, &ROOT, key)? else { return Ok(out) };
    for k in doc::map_keys(doc, &map) {
        let field = format!("{key}.{k}");
        let text = doc::req_str(doc, &map, &k)?;
        let id = k.parse().map_err(|_| DecodeError::Invalid { field: field.clone(), reason: "bad key".into() })?;
        let value = serde_json::from_str(&text).map_err(|e| DecodeError::Invalid { field, reason: e.to_string() })?;
        out.insert(id, value);
    }
    Ok(out)
}

impl Record for Workspace {
    const KIND: RecordKind = RecordKind::Workspace;

    fn id(&self) -> RecordId {
        self.id
    }

    fn from_doc(doc: &AutoCommit) -> Result<Self, DecodeError> {
        doc::check_root(doc, Self::KIND.as_str(), Self::SCHEMA)?;
        let id = doc::req_str(doc, &ROOT, "id")?;
        Ok(Self {
            id: id.parse().map_err(|_| DecodeError::Invalid { field: "id".into(), reason: "not a UUID".into() })?,
            name: doc::get_str(doc, &ROOT, "name")?.unwrap_or_default(),
            default_calling_code: doc::get_str(doc, &ROOT, "default_calling_code")?.unwrap_or_default(),
            purposes: read_json_map(doc, "purposes")?,
            custom_fields: read_json_map(doc, "custom_fields")?,
            members: read_json_map(doc, "members")?,
            tombstones: tombstone::read(doc)?,
            retention: retention::read_policy(doc)?,
            pipelines: crate::sales::pipeline::read(doc)?,
            currency: doc::get_str(doc, &ROOT, "currency")?.unwrap_or_else(|| "EUR".into()),
            monthly_target: doc::get_i64(doc, &ROOT, "monthly_target")?,
            updated_at: Timestamp::from_millis(doc::get_i64(doc, &ROOT, "updated_at")?.unwrap_or(0)),
        })
    }

    fn write_doc(&self, doc: &mut AutoCommit) -> Result<(), EncodeError> {
        doc::put_str(doc, &ROOT, "id", Some(&self.id.to_string()))?;
        doc::put_str(doc, &ROOT, "name", Some(&self.name))?;
        doc::put_str(doc, &ROOT, "default_calling_code", Some(&self.default_calling_code))?;
        write_json_map(doc, "purposes", &self.purposes)?;
        write_json_map(doc, "custom_fields", &self.custom_fields)?;
        write_json_map(doc, "members", &self.members)?;
        tombstone::write(doc, &self.tombstones)?;
        retention::write_policy(doc, self.retention.as_ref())?;
        crate::sales::pipeline::write(doc, &self.pipelines)?;
        doc::put_str(doc, &ROOT, "currency", Some(&self.currency))?;
        doc::put_i64(doc, &ROOT, "monthly_target", self.monthly_target)?;
        doc::put_i64(doc, &ROOT, "updated_at", Some(self.updated_at.as_millis()))?;
        Ok(())
    }

    fn row(&self) -> Row {
        Row {
            id: self.id,
            kind: Self::KIND,
            title: self.name.clone(),
            subtitle: String::new(),
            columns: Default::default(),
            tags: Vec::new(),
            updated_at: self.updated_at,
            deleted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_round_trips_through_its_document() {
        let me = MemberId::from_bytes([1; 16]);
        let mut ws = Workspace::new(RecordId::from_bytes([2; 16]), "Acme", me, "Sam", Timestamp::from_millis(5));
        ws.custom_fields.insert(
            "tier".into(),
            CustomFieldDef {
                label: "Tier".into(),
                kind: CustomFieldKind::Choice(vec!["Gold".into(), "Silver".into()]),
                applies_to: RecordKind::Contact,
            },
        );
        let mut doc = AutoCommit::new();
        doc::init_root(&mut doc, "workspace", 1).unwrap();
        ws.write_doc(&mut doc).unwrap();
        assert_eq!(Workspace::from_doc(&doc).unwrap(), ws);
    }

    #[test]
    fn concurrent_new_purposes_on_two_replicas_both_survive() {
        let me = MemberId::from_bytes([1; 16]);
        let ws = Workspace::new(RecordId::from_bytes([2; 16]), "Acme", me, "Sam", Timestamp::from_millis(5));
        let mut a = AutoCommit::new();
        doc::init_root(&mut a, "workspace", 1).unwrap();
        ws.write_doc(&mut a).unwrap();
        let mut b = a.fork();
        let add = |doc: &mut AutoCommit, id: &str| {
            let mut w = Workspace::from_doc(doc).unwrap();
            w.purposes.insert(
                id.parse().unwrap(),
                Purpose { name: id.into(), description: String::new(), lawful_basis: LawfulBasis::Consent },
            );
            w.write_doc(doc).unwrap();
        };
        add(&mut a, "events");
        add(&mut b, "surveys");
        a.merge(&mut b).unwrap();
        let merged = Workspace::from_doc(&a).unwrap();
        assert!(merged.purposes.contains_key(&"events".parse().unwrap()));
        assert!(merged.purposes.contains_key(&"surveys".parse().unwrap()));
        assert_eq!(merged.purposes.len(), 6);
    }

    #[test]
    fn tombstones_and_the_retention_policy_round_trip_and_older_documents_read_without_them() {
        use crate::privacy::Tombstone;
        let me = MemberId::from_bytes([1; 16]);
        let mut ws = Workspace::new(RecordId::from_bytes([2; 16]), "Acme", me, "Sam", Timestamp::from_millis(5));
        let mut doc = AutoCommit::new();
        doc::init_root(&mut doc, "workspace", 1).unwrap();
        ws.write_doc(&mut doc).unwrap();
        let old = Workspace::from_doc(&doc).unwrap();
        assert!(old.tombstones.is_empty() && old.retention.is_none());

        let erased = RecordId::from_bytes([3; 16]);
        ws.tombstones.insert(Tombstone {
            record: erased,
            kind: RecordKind::Contact,
            erased_at: Timestamp::from_millis(6),
            erased_by: me,
        });
        ws.retention = Some(RetentionPolicy::new(18));
        ws.write_doc(&mut doc).unwrap();
        let back = Workspace::from_doc(&doc).unwrap();
        assert_eq!(back, ws);
        assert!(back.is_erased(erased) && !back.is_erased(ws.id));
    }

    #[test]
    fn slugs_are_unique_and_readable() {
        let taken = ["vip_level"];
        assert_eq!(Workspace::slug_for("VIP level!", taken.iter().copied()), "vip_level_2");
        assert_eq!(Workspace::slug_for("  ", [].iter().copied()), "field");
    }
}
