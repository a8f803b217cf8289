//! Companies: an organisation the team sells to or supports. People link
//! to a company through [`Contact::company_id`](crate::contact::Contact);
//! deals, activities and tickets through their own fields.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, ROOT};

use crate::contact::Address;
use crate::doc::{self, DecodeError, EncodeError};
use crate::form::{self, Checker, FormErrors};
use crate::ids::{MemberId, RecordId};
use crate::record::{Columns, Record, RecordKind, Row};
use crate::search::fold;
use crate::validate::FieldError;
use crate::workspace::Workspace;
use crate::Timestamp;

/// Head-count bands offered for a company's size.
pub const SIZES: [&str; 7] = ["1–10", "11–50", "51–200", "201–500", "501–1,000", "1,001–5,000", "5,000+"];

#[derive(Debug, Clone, PartialEq)]
pub struct Company {
    pub id: RecordId,
    pub name: String,
    /// Web domain, normalised (`example.com`).
    pub domain: String,
    pub industry: String,
    /// One of [`SIZES`], or empty.
    pub size: String,
    pub address: Address,
    pub owner: Option<MemberId>,
    pub tags: BTreeSet<String>,
    pub notes: String,
    pub custom: BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub created_by: MemberId,
    pub updated_at: Timestamp,
    pub updated_by: MemberId,
    pub deleted: bool,
}

impl Company {
    pub fn new(id: RecordId, now: Timestamp, by: MemberId) -> Self {
        Self {
            id,
            name: String::new(),
            domain: String::new(),
            industry: String::new(),
            size: String::new(),
            address: Address::default(),
            owner: Some(by),
            tags: BTreeSet::new(),
            notes: String::new(),
            custom: BTreeMap::new(),
            created_at: now,
            created_by: by,
            updated_at: now,
            updated_by: by,
            deleted: false,
        }
    }

    pub fn touch(&mut self, now: Timestamp, by: MemberId) {
        self.updated_at = now.max(self.updated_at);
        self.updated_by = by;
    }
}

/// Normalises a web domain typed as a URL or a bare name
/// (`https://www.Example.com/about` → `example.com`); empty is allowed.
///
/// # Errors
/// [`FieldError::Invalid`] when it is not a domain name.
pub fn domain(input: &str) -> Result<String, FieldError> {
    let mut d = input.trim().to_ascii_lowercase();
    for prefix in ["https://", "http://"] {
        if let Some(rest) = d.strip_prefix(prefix) {
            d = rest.to_owned();
        }
    }
    if let Some(rest) = d.strip_prefix("www.") {
        d = rest.to_owned();
    }
    let d = d.split(['/', '?', '#']).next().unwrap_or("").trim_end_matches('.').to_owned();
    if d.is_empty() {
        return Ok(d);
    }
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if !d.contains('.') || d.len() > 253 || !labels_ok {
        return Err(FieldError::Invalid("Enter a web domain like example.com".into()));
    }
    Ok(d)
}

/// The company whose name matches `name` (ignoring case and accents), when
/// exactly one live company has it: how a contact's typed company name is
/// linked to the record.
pub fn match_by_name<'a>(rows: impl IntoIterator<Item = &'a Row>, name: &str) -> Option<RecordId> {
    let mut found = named(rows, name);
    let first = found.next()?;
    found.next().is_none().then_some(first.id)
}

/// The live companies whose name is `name` (trimmed, ignoring case and
/// accents); none for a blank name.
pub fn named<'a>(rows: impl IntoIterator<Item = &'a Row>, name: &str) -> impl Iterator<Item = &'a Row> {
    let wanted = fold(name.trim());
    rows.into_iter()
        .filter(move |r| !wanted.is_empty() && r.kind == RecordKind::Company && !r.deleted && fold(&r.title) == wanted)
}

impl Record for Company {
    const KIND: RecordKind = RecordKind::Company;

    fn id(&self) -> RecordId {
        self.id
    }

    fn from_doc(doc: &AutoCommit) -> Result<Self, DecodeError> {
        doc::check_root(doc, Self::KIND.as_str(), Self::SCHEMA)?;
        let created_by: MemberId =
            doc::get_id(doc, &ROOT, "created_by")?.ok_or(DecodeError::Missing { field: "created_by".into() })?;
        Ok(Self {
            id: doc::parse_id(&doc::req_str(doc, &ROOT, "id")?, "id")?,
            name: doc::get_str(doc, &ROOT, "name")?.unwrap_or_default(),
            domain: doc::get_str(doc, &ROOT, "domain")?.unwrap_or_default(),
            industry: doc::get_str(doc, &ROOT, "industry")?.unwrap_or_default(),
            size: doc::get_str(doc, &ROOT, "size")?.unwrap_or_default(),
            address: Address::read(doc, "address")?,
            owner: doc::get_id(doc, &ROOT, "owner")?,
            tags: doc::read_key_set(doc, &ROOT, "tags")?,
            notes: doc::get_str(doc, &ROOT, "notes")?.unwrap_or_default(),
            custom: doc::read_str_map(doc, &ROOT, "custom")?,
            created_at: Timestamp::from_millis(doc::get_i64(doc, &ROOT, "created_at")?.unwrap_or(0)),
            created_by,
            updated_at: Timestamp::from_millis(doc::get_i64(doc, &ROOT, "updated_at")?.unwrap_or(0)),
            updated_by: doc::get_id(doc, &ROOT, "updated_by")?.unwrap_or(created_by),
            deleted: doc::get_bool(doc, &ROOT, "deleted")?,
        })
    }

    fn write_doc(&self, doc: &mut AutoCommit) -> Result<(), EncodeError> {
        doc::put_str(doc, &ROOT, "id", Some(&self.id.to_string()))?;
        doc::put_str(doc, &ROOT, "name", Some(&self.name))?;
        doc::put_str(doc, &ROOT, "domain", Some(&self.domain))?;
        doc::put_str(doc, &ROOT, "industry", Some(&self.industry))?;
        doc::put_str(doc, &ROOT, "size", Some(&self.size))?;
        self.address.write(doc, "address")?;
        doc::put_id(doc, &ROOT, "owner", self.owner.as_ref())?;
        doc::write_key_set(doc, &ROOT, "tags", &self.tags)?;
        doc::put_text(doc, &ROOT, "notes", &self.notes)?;
        doc::write_str_map(doc, &ROOT, "custom", &self.custom)?;
        doc::put_authorship(doc, (self.created_at, self.created_by), (self.updated_at, self.updated_by), self.deleted)
    }

    fn row(&self) -> Row {
        let mut columns = Columns::default();
        columns.put("domain", self.domain.clone());
        columns.put("industry", self.industry.clone());
        columns.put("size", self.size.clone());
        columns.put("city", self.address.city.clone());
        columns.put("owner", self.owner.map(|o| o.to_string()).unwrap_or_default());
        columns.put("sort_name", self.name.to_lowercase());
        let subtitle = [self.industry.as_str(), self.address.city.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" · ");
        Row {
            id: self.id,
            kind: Self::KIND,
            title: if self.name.is_empty() { "Unnamed company".into() } else { self.name.clone() },
            subtitle,
            columns: columns.into_map(),
            tags: self.tags.iter().cloned().collect(),
            updated_at: self.updated_at,
            deleted: self.deleted,
        }
    }
}

/// The company form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanyForm {
    pub name: String,
    pub domain: String,
    pub industry: String,
    pub size: String,
    pub address: Address,
    pub owner: String,
    pub tags: String,
    pub notes: String,
    pub custom: BTreeMap<String, String>,
}

impl CompanyForm {
    pub fn from_company(c: &Company) -> Self {
        Self {
            name: c.name.clone(),
            domain: c.domain.clone(),
            industry: c.industry.clone(),
            size: c.size.clone(),
            address: c.address.clone(),
            owner: c.owner.map(|o| o.to_string()).unwrap_or_default(),
            tags: form::tags_text(&c.tags),
            notes: c.notes.clone(),
            custom: c.custom.clone(),
        }
    }

    /// Validates every field and writes them into `company` only when all
    /// are valid.
    ///
    /// # Errors
    /// Every invalid field with its message; `company` is left unchanged.
    pub fn apply(&self, company: &mut Company, ws: &Workspace) -> Result<(), FormErrors> {
        let mut c = Checker::default();
        let name = c.required("name", &self.name);
        let domain = c.check("domain", domain(&self.domain));
        let industry = c.short("industry", &self.industry);
        let size = self.size.trim().to_owned();
        if !size.is_empty() && !SIZES.contains(&size.as_str()) {
            c.errors.insert("size".into(), FieldError::NotAChoice { choices: SIZES.map(str::to_owned).to_vec() });
        }
        let mut address = Address::default();
        for f in Address::FIELDS {
            *address.get_mut(f) = c.short(&format!("address.{f}"), self.address.get(f));
        }
        let owner = c.check("owner", form::member(&self.owner));
        let tags = c.check("tags", form::tags(&self.tags));
        let notes = c.notes("notes", &self.notes);
        let custom = form::custom_values(&mut c, ws, RecordKind::Company, &self.custom, &company.custom);
        c.finish()?;
        company.name = name;
        company.domain = domain;
        company.industry = industry;
        company.size = size;
        company.address = address;
        company.owner = owner;
        company.tags = tags;
        company.notes = notes;
        company.custom = custom;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> MemberId {
        MemberId::from_bytes([1; 16])
    }

    fn ws() -> Workspace {
        Workspace::new(RecordId::from_bytes([9; 16]), "Acme", me(), "Sam", Timestamp::from_millis(1))
    }

    fn acme() -> Company {
        let mut c = Company::new(RecordId::from_bytes([2; 16]), Timestamp::from_millis(1), me());
        c.name = "Acme Ltd".into();
        c
    }

    #[test]
    fn domains_are_normalised_from_what_people_paste() {
        assert_eq!(domain("https://www.Example.com/about?x=1").unwrap(), "example.com");
        assert_eq!(domain(" shop.example.co.uk. ").unwrap(), "shop.example.co.uk");
        assert_eq!(domain("").unwrap(), "");
        assert_eq!(domain("bücher.de").unwrap(), "bücher.de");
        for bad in ["localhost", "exa mple.com", "-a.com", "a..com", "<script>.com"] {
            assert!(domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_company_round_trips_through_its_document_and_row() {
        let mut c = acme();
        c.domain = "acme.example".into();
        c.industry = "Manufacturing".into();
        c.size = SIZES[2].into();
        c.address.city = "Leeds".into();
        c.tags.insert("key account".into());
        c.notes = "Prefers email".into();
        let mut doc = AutoCommit::new();
        doc::init_root(&mut doc, "company", 1).unwrap();
        c.write_doc(&mut doc).unwrap();
        assert_eq!(Company::from_doc(&doc).unwrap(), c);
        let row = c.row();
        assert_eq!((row.title.as_str(), row.subtitle.as_str()), ("Acme Ltd", "Manufacturing · Leeds"));
        assert_eq!(row.column("domain"), "acme.example");
    }

    #[test]
    fn the_form_refuses_a_missing_name_and_a_bad_size_and_changes_nothing() {
        let mut c = acme();
        let form = CompanyForm { size: "huge".into(), domain: "nope".into(), ..CompanyForm::default() };
        let errors = form.apply(&mut c, &ws()).unwrap_err();
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["domain", "name", "size"]);
        assert_eq!(c, acme());
        let ok = CompanyForm { name: " Globex ".into(), tags: "a, b".into(), ..CompanyForm::from_company(&c) };
        ok.apply(&mut c, &ws()).unwrap();
        assert_eq!(c.name, "Globex");
        assert_eq!(c.tags.len(), 2);
    }

    #[test]
    fn a_typed_company_name_links_only_to_a_single_live_match() {
        let mut a = acme().row();
        let mut other = Company::new(RecordId::from_bytes([3; 16]), Timestamp::from_millis(1), me());
        other.name = "Globex".into();
        let b = other.row();
        assert_eq!(match_by_name([&a, &b], " acme LTD "), Some(a.id));
        assert_eq!(match_by_name([&a, &b], "Initech"), None);
        let mut twin = a.clone();
        twin.id = RecordId::from_bytes([4; 16]);
        assert_eq!(match_by_name([&a, &twin], "Acme Ltd"), None, "ambiguous");
        a.deleted = true;
        assert_eq!(match_by_name([&a, &b], "Acme Ltd"), None, "deleted companies are not linked");
    }
}
