//! Contacts: a person the team works with, stored as one Automerge document,
//! with their consent ledger inside. Also the contact form: validation of
//! what a user typed into the fields it becomes.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};

use crate::consent::{self, ConsentLedger};
use crate::doc::{self, DecodeError, EncodeError};
use crate::ids::{EntryId, MemberId, RecordId};
use crate::privacy::restriction::{self, Restriction};
use crate::record::{Columns, Record, RecordKind, Row};
use crate::validate::{self, FieldError};
use crate::workspace::Workspace;
use crate::Timestamp;

/// One email address or phone number with its label ("work", "mobile").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labeled {
    pub id: EntryId,
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub street: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country: String,
}

impl Address {
    pub(crate) const FIELDS: [&'static str; 5] = ["street", "city", "region", "postal_code", "country"];

    pub(crate) fn get(&self, field: &str) -> &str {
        match field {
            "street" => &self.street,
            "city" => &self.city,
            "region" => &self.region,
            "postal_code" => &self.postal_code,
            _ => &self.country,
        }
    }

    pub(crate) fn get_mut(&mut self, field: &str) -> &mut String {
        match field {
            "street" => &mut self.street,
            "city" => &mut self.city,
            "region" => &mut self.region,
            "postal_code" => &mut self.postal_code,
            _ => &mut self.country,
        }
    }

    /// Reads an address stored as a map under `key` at the root.
    pub(crate) fn read(doc: &AutoCommit, key: &str) -> Result<Self, DecodeError> {
        let mut address = Address::default();
        if let Some(addr) = doc::get_map(doc, &ROOT, key)? {
            for f in Address::FIELDS {
                *address.get_mut(f) = doc::get_str(doc, &addr, f)?.unwrap_or_default();
            }
        }
        Ok(address)
    }

    /// Writes the address field by field, so concurrent edits of different
    /// lines merge.
    pub(crate) fn write(&self, doc: &mut AutoCommit, key: &str) -> Result<(), EncodeError> {
        let addr = doc::ensure_map(doc, &ROOT, key)?;
        for f in Address::FIELDS {
            doc::put_str(doc, &addr, f, Some(self.get(f)))?;
        }
        Ok(())
    }

    /// One line for display, skipping empty parts.
    pub fn one_line(&self) -> String {
        Self::FIELDS.iter().map(|f| self.get(f)).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: RecordId,
    pub given_name: String,
    pub family_name: String,
    /// In creation order; ids are time-ordered.
    pub emails: Vec<Labeled>,
    pub primary_email: Option<EntryId>,
    pub phones: Vec<Labeled>,
    pub primary_phone: Option<EntryId>,
    pub company_name: String,
    /// The company record this person works at, when linked; `company_name`
    /// keeps the name as shown (and for people whose company is not a record).
    pub company_id: Option<RecordId>,
    pub title: String,
    pub address: Address,
    pub tags: BTreeSet<String>,
    pub owner: Option<MemberId>,
    pub notes: String,
    /// Custom field id → normalised value.
    pub custom: BTreeMap<String, String>,
    pub consent: ConsentLedger,
    pub created_at: Timestamp,
    pub created_by: MemberId,
    pub updated_at: Timestamp,
    pub updated_by: MemberId,
    /// Deleted by a user (undo-able, still stored). Erasure is different.
    pub deleted: bool,
    /// Kept but not processed (see [`crate::privacy::restriction`]).
    /// Absent in older documents, which read as unrestricted.
    pub restriction: Option<Restriction>,
    /// When identifying fields were dropped by
    /// [`crate::privacy::retention::anonymise`]; absent = never.
    pub anonymised_at: Option<Timestamp>,
}

impl Contact {
    pub fn new(id: RecordId, now: Timestamp, by: MemberId) -> Self {
        Self {
            id,
            given_name: String::new(),
            family_name: String::new(),
            emails: Vec::new(),
            primary_email: None,
            phones: Vec::new(),
            primary_phone: None,
            company_name: String::new(),
            company_id: None,
            title: String::new(),
            address: Address::default(),
            tags: BTreeSet::new(),
            owner: Some(by),
            notes: String::new(),
            custom: BTreeMap::new(),
            consent: ConsentLedger::new(),
            created_at: now,
            created_by: by,
            updated_at: now,
            updated_by: by,
            deleted: false,
            restriction: None,
            anonymised_at: None,
        }
    }

    /// "Given Family", or the primary email when the name is empty.
    pub fn display_name(&self) -> String {
        let name = format!("{} {}", self.given_name.trim(), self.family_name.trim()).trim().to_owned();
        if !name.is_empty() {
            return name;
        }
        self.email().map(str::to_owned).unwrap_or_else(|| "Unnamed contact".into())
    }

    fn primary(entries: &[Labeled], primary: Option<EntryId>) -> Option<&Labeled> {
        entries.iter().find(|e| Some(e.id) == primary).or_else(|| entries.first())
    }

    /// The primary email address (or the first one).
    pub fn email(&self) -> Option<&str> {
        Self::primary(&self.emails, self.primary_email).map(|e| e.value.as_str())
    }

    /// The primary phone number (or the first one).
    pub fn phone(&self) -> Option<&str> {
        Self::primary(&self.phones, self.primary_phone).map(|e| e.value.as_str())
    }

    /// Marks the record as edited now by `by`.
    pub fn touch(&mut self, now: Timestamp, by: MemberId) {
        self.updated_at = now.max(self.updated_at);
        self.updated_by = by;
    }
}

fn read_entries(doc: &AutoCommit, key: &str) -> Result<Vec<Labeled>, DecodeError> {
    let Some(map) = doc::get_map(doc, &ROOT, key)? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for k in doc::map_keys(doc, &map) {
        let field = format!("{key}.{k}");
        let entry =
            doc::get_map(doc, &map, &k)?.ok_or(DecodeError::WrongType { field: field.clone(), expected: "map" })?;
        out.push(Labeled {
            id: doc::parse_id(&k, &field)?,
            label: doc::get_str(doc, &entry, "label")?.unwrap_or_default(),
            value: doc::get_str(doc, &entry, "value")?.unwrap_or_default(),
        });
    }
    out.sort_by_key(|e| e.id);
    Ok(out)
}

fn write_entries(doc: &mut AutoCommit, key: &str, entries: &[Labeled]) -> Result<(), EncodeError> {
    let map = doc::ensure_map(doc, &ROOT, key)?;
    let keep: BTreeSet<String> = entries.iter().map(|e| e.id.to_string()).collect();
    for existing in doc::map_keys(doc, &map) {
        if !keep.contains(&existing) {
            doc.delete(&map, existing.as_str())?;
        }
    }
    for e in entries {
        let entry = doc::ensure_map(doc, &map, &e.id.to_string())?;
        doc::put_str(doc, &entry, "label", Some(&e.label))?;
        doc::put_str(doc, &entry, "value", Some(&e.value))?;
    }
    Ok(())
}

fn member(doc: &AutoCommit, key: &str) -> Result<Option<MemberId>, DecodeError> {
    doc::get_id(doc, &ROOT, key)
}

impl Record for Contact {
    const KIND: RecordKind = RecordKind::Contact;

    fn id(&self) -> RecordId {
        self.id
    }

    fn from_doc(doc: &AutoCommit) -> Result<Self, DecodeError> {
        doc::check_root(doc, Self::KIND.as_str(), Self::SCHEMA)?;
        let id = doc::parse_id(&doc::req_str(doc, &ROOT, "id")?, "id")?;
        let address = Address::read(doc, "address")?;
        let tags = doc::read_key_set(doc, &ROOT, "tags")?;
        let custom = doc::read_str_map(doc, &ROOT, "custom")?;
        let consent = match doc::get_map(doc, &ROOT, "consent")? {
            Some(m) => consent::read_ledger(doc, &m)?,
            None => ConsentLedger::new(),
        };
        let created_by = member(doc, "created_by")?.ok_or(DecodeError::Missing { field: "created_by".into() })?;
        let entry_id = |key: &str| -> Result<Option<EntryId>, DecodeError> { doc::get_id(doc, &ROOT, key) };
        Ok(Self {
            id,
            given_name: doc::get_str(doc, &ROOT, "given_name")?.unwrap_or_default(),
            family_name: doc::get_str(doc, &ROOT, "family_name")?.unwrap_or_default(),
            emails: read_entries(doc, "emails")?,
            primary_email: entry_id("primary_email")?,
            phones: read_entries(doc, "phones")?,
            primary_phone: entry_id("primary_phone")?,
            company_name: doc::get_str(doc, &ROOT, "company_name")?.unwrap_or_default(),
            company_id: doc::get_id(doc, &ROOT, "company_id")?,
            title: doc::get_str(doc, &ROOT, "title")?.unwrap_or_default(),
            address,
            tags,
            owner: member(doc, "owner")?,
            notes: doc::get_str(doc, &ROOT, "notes")?.unwrap_or_default(),
            custom,
            consent,
            created_at: Timestamp::from_millis(doc::get_i64(doc, &ROOT, "created_at")?.unwrap_or(0)),
            created_by,
            updated_at: Timestamp::from_millis(doc::get_i64(doc, &ROOT, "updated_at")?.unwrap_or(0)),
            updated_by: member(doc, "updated_by")?.unwrap_or(created_by),
            deleted: doc::get_bool(doc, &ROOT, "deleted")?,
            restriction: restriction::read(doc, created_by)?,
            anonymised_at: doc::get_i64(doc, &ROOT, "anonymised_at")?.map(Timestamp::from_millis),
        })
    }

    fn write_doc(&self, doc: &mut AutoCommit) -> Result<(), EncodeError> {
        let id = |m: Option<MemberId>| m.map(|m| m.to_string());
        doc::put_str(doc, &ROOT, "id", Some(&self.id.to_string()))?;
        doc::put_str(doc, &ROOT, "given_name", Some(&self.given_name))?;
        doc::put_str(doc, &ROOT, "family_name", Some(&self.family_name))?;
        write_entries(doc, "emails", &self.emails)?;
        doc::put_str(doc, &ROOT, "primary_email", self.primary_email.map(|e| e.to_string()).as_deref())?;
        write_entries(doc, "phones", &self.phones)?;
        doc::put_str(doc, &ROOT, "primary_phone", self.primary_phone.map(|e| e.to_string()).as_deref())?;
        doc::put_str(doc, &ROOT, "company_name", Some(&self.company_name))?;
        doc::put_id(doc, &ROOT, "company_id", self.company_id.as_ref())?;
        doc::put_str(doc, &ROOT, "title", Some(&self.title))?;
        self.address.write(doc, "address")?;
        doc::write_key_set(doc, &ROOT, "tags", &self.tags)?;
        doc::put_str(doc, &ROOT, "owner", id(self.owner).as_deref())?;
        doc::put_text(doc, &ROOT, "notes", &self.notes)?;
        doc::write_str_map(doc, &ROOT, "custom", &self.custom)?;
        let ledger = doc::ensure_map(doc, &ROOT, "consent")?;
        consent::write_ledger(doc, &ledger, &self.consent)?;
        doc::put_i64(doc, &ROOT, "created_at", Some(self.created_at.as_millis()))?;
        doc::put_str(doc, &ROOT, "created_by", Some(&self.created_by.to_string()))?;
        doc::put_i64(doc, &ROOT, "updated_at", Some(self.updated_at.as_millis()))?;
        doc::put_str(doc, &ROOT, "updated_by", Some(&self.updated_by.to_string()))?;
        doc::put_bool(doc, &ROOT, "deleted", self.deleted)?;
        restriction::write(doc, self.restriction.as_ref())?;
        doc::put_i64(doc, &ROOT, "anonymised_at", self.anonymised_at.map(Timestamp::as_millis))?;
        Ok(())
    }

    fn row(&self) -> Row {
        let mut columns = Columns::default();
        columns.put("email", self.email().unwrap_or(""));
        columns.put("phone", self.phone().unwrap_or(""));
        columns.put("company", &self.company_name);
        columns.put("company_id", self.company_id.map(|c| c.to_string()).unwrap_or_default());
        columns.put("title", &self.title);
        columns.put("owner", self.owner.map(|o| o.to_string()).unwrap_or_default());
        columns.put("sort_name", format!("{} {}", self.family_name, self.given_name).trim().to_lowercase());
        let all_emails: Vec<&str> = self.emails.iter().skip(1).map(|e| e.value.as_str()).collect();
        columns.put("other_emails", all_emails.join(" "));
        let all_phones: Vec<&str> = self.phones.iter().skip(1).map(|e| e.value.as_str()).collect();
        columns.put("other_phones", all_phones.join(" "));
        columns.put(restriction::ROW_COLUMN, if self.restriction.is_some() { "restricted" } else { "" });
        columns
            .put(crate::privacy::retention::ROW_COLUMN, if self.anonymised_at.is_some() { "anonymised" } else { "" });
        let subtitle = match (self.title.is_empty(), self.company_name.is_empty()) {
            (false, false) => format!("{} at {}", self.title, self.company_name),
            (false, true) => self.title.clone(),
            (true, false) => self.company_name.clone(),
            (true, true) => String::new(),
        };
        Row {
            id: self.id,
            kind: Self::KIND,
            title: self.display_name(),
            subtitle,
            columns: columns.into_map(),
            tags: self.tags.iter().cloned().collect(),
            updated_at: self.updated_at,
            deleted: self.deleted,
        }
    }
}

/// One email or phone line of the form, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryForm {
    /// `None` for a line added in this form.
    pub id: Option<EntryId>,
    pub label: String,
    pub value: String,
    pub primary: bool,
}

/// The contact form as the user typed it: plain strings, validated by
/// [`ContactForm::apply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactForm {
    pub given_name: String,
    pub family_name: String,
    pub emails: Vec<EntryForm>,
    pub phones: Vec<EntryForm>,
    pub company_name: String,
    /// The linked company's record id, or empty when the name is not linked.
    pub company_id: String,
    pub title: String,
    pub address: Address,
    /// Comma-separated.
    pub tags: String,
    /// A member id, or empty for none.
    pub owner: String,
    pub notes: String,
    pub custom: BTreeMap<String, String>,
}

pub use crate::form::FormErrors;

impl ContactForm {
    pub fn from_contact(c: &Contact) -> Self {
        let entries = |list: &[Labeled], primary: Option<EntryId>| -> Vec<EntryForm> {
            let first = list.first().map(|e| e.id);
            list.iter()
                .map(|e| EntryForm {
                    id: Some(e.id),
                    label: e.label.clone(),
                    value: e.value.clone(),
                    primary: Some(e.id) == primary.or(first),
                })
                .collect()
        };
        Self {
            given_name: c.given_name.clone(),
            family_name: c.family_name.clone(),
            emails: entries(&c.emails, c.primary_email),
            phones: entries(&c.phones, c.primary_phone),
            company_name: c.company_name.clone(),
            company_id: c.company_id.map(|id| id.to_string()).unwrap_or_default(),
            title: c.title.clone(),
            address: c.address.clone(),
            tags: crate::form::tags_text(&c.tags),
            owner: c.owner.map(|o| o.to_string()).unwrap_or_default(),
            notes: c.notes.clone(),
            custom: c.custom.clone(),
        }
    }

    /// Validates every field and, only when all are valid, writes them into
    /// `contact`. New email/phone lines get ids from `new_entry`.
    ///
    /// # Errors
    /// Every invalid field with its message; `contact` is left unchanged.
    pub fn apply(
        &self,
        contact: &mut Contact,
        ws: &Workspace,
        new_entry: &mut impl FnMut() -> EntryId,
    ) -> Result<(), FormErrors> {
        let mut errors = FormErrors::new();
        let mut check = |key: &str, r: Result<String, FieldError>| -> String {
            r.unwrap_or_else(|e| {
                errors.insert(key.to_owned(), e);
                String::new()
            })
        };
        let short = |s: &str| validate::short_text(s, validate::MAX_SHORT);
        let given = check("given_name", short(&self.given_name));
        let family = check("family_name", short(&self.family_name));
        if self.given_name.trim().is_empty() && self.family_name.trim().is_empty() {
            errors.insert("given_name".into(), FieldError::Required);
        }
        let mut check = |key: &str, r: Result<String, FieldError>| -> String {
            r.unwrap_or_else(|e| {
                errors.insert(key.to_owned(), e);
                String::new()
            })
        };
        let company = check("company_name", short(&self.company_name));
        let title = check("title", short(&self.title));
        let mut address = Address::default();
        for f in Address::FIELDS {
            *address.get_mut(f) = check(&format!("address.{f}"), short(self.address.get(f)));
        }
        let notes = check("notes", validate::short_text(&self.notes, validate::MAX_NOTES));
        let owner = match self.owner.trim() {
            "" => None,
            s => match s.parse::<MemberId>() {
                Ok(m) => Some(m),
                Err(_) => {
                    errors.insert("owner".into(), FieldError::Required);
                    None
                }
            },
        };
        let mut entries = |kind: &str, lines: &[EntryForm], errors: &mut FormErrors| {
            let mut out = Vec::new();
            let mut primary = None;
            for (i, line) in lines.iter().enumerate() {
                if line.value.trim().is_empty() {
                    continue;
                }
                let value = if kind == "emails" {
                    validate::email(&line.value)
                } else {
                    validate::phone(&line.value, Some(&ws.default_calling_code))
                };
                match value {
                    Ok(value) => {
                        let id = line.id.unwrap_or_else(&mut *new_entry);
                        if line.primary {
                            primary = Some(id);
                        }
                        out.push(Labeled { id, label: line.label.trim().to_owned(), value });
                    }
                    Err(e) => {
                        errors.insert(format!("{kind}.{i}"), e);
                    }
                }
            }
            out.sort_by_key(|e| e.id);
            (out, primary)
        };
        let (emails, primary_email) = entries("emails", &self.emails, &mut errors);
        let (phones, primary_phone) = entries("phones", &self.phones, &mut errors);
        let tags = crate::form::tags(&self.tags).unwrap_or_else(|e| {
            errors.insert("tags".into(), e);
            BTreeSet::new()
        });
        let company_id = crate::form::record(&self.company_id).unwrap_or_else(|e| {
            errors.insert("company_name".into(), e);
            None
        });
        let mut checker = crate::form::Checker::default();
        let custom = crate::form::custom_values(&mut checker, ws, RecordKind::Contact, &self.custom, &contact.custom);
        errors.extend(checker.errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        contact.given_name = given;
        contact.family_name = family;
        contact.emails = emails;
        contact.primary_email = primary_email;
        contact.phones = phones;
        contact.primary_phone = primary_phone;
        contact.company_name = company;
        contact.company_id = company_id;
        contact.title = title;
        contact.address = address;
        contact.tags = tags;
        contact.owner = owner;
        contact.notes = notes;
        contact.custom = custom;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
