//! A seeded, realistic workspace: the workspace document (five members, the
//! standard consent purposes, two custom fields), companies, contacts with
//! several emails and phones, tags, addresses, notes, custom values and
//! consent histories, deals moving through a pipeline, and activities on
//! contacts' timelines.
//!
//! Contacts and the workspace are rapport-core's own types, written with
//! `Record::write_doc` exactly as the app writes them, so the browser reads
//! them like any record. Companies, deals and activities have no record type
//! in rapport-core yet: they are written as documents of their kind with the
//! same conventions (`kind`/`schema` at the root, scalar strings, maps keyed
//! by id, notes as Text) and get rows of their kind, so they weigh on storage
//! and start-up as they will once the app has those screens.
//!
//! Every document has a history, not one big change: it is created by one
//! member, then edited by others over the following months (a phone added,
//! a new job title, tags, consent granted and withdrawn, a deal moving
//! stage), one Automerge change per edit with its author's actor and time.

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ObjType, ReadDoc, ROOT};
use rapport_core::consent::{ConsentAction, ConsentSource, LawfulBasis, NewConsentEvent, PurposeId};
use rapport_core::contact::{Address, Contact, Labeled};
use rapport_core::doc;
use rapport_core::ids::{EntryId, EventId, MemberId, RecordId};
use rapport_core::record::{Record, RecordKind, Row};
use rapport_core::repo::session_actor;
use rapport_core::search::fold;
use rapport_core::validate::{self, CustomFieldKind};
use rapport_core::workspace::{CustomFieldDef, Member, Workspace};
use rapport_core::Timestamp;

use crate::pools::*;
use crate::rng::Rng;

const DAY: i64 = 86_400_000;
/// The generated workspace's "now": 2026-06-01T00:00:00Z. Every record is
/// created in the three years before it.
pub const NOW: i64 = 1_780_272_000_000;
const HISTORY: i64 = 3 * 365 * DAY;

/// How big a workspace to generate.
#[derive(Debug, Clone)]
pub struct Params {
    pub seed: u64,
    pub contacts: usize,
    /// Companies per contact (0.1: ten contacts per company on average).
    pub companies_per_contact: f64,
    /// Deals per contact.
    pub deals_per_contact: f64,
    /// Generate activities (about one per contact on average).
    pub activities: bool,
}

impl Params {
    pub fn companies(&self) -> usize {
        ((self.contacts as f64 * self.companies_per_contact).round() as usize).max(1)
    }

    pub fn deals(&self) -> usize {
        (self.contacts as f64 * self.deals_per_contact).round() as usize
    }
}

/// One generated record: its kind, id, materialised row and document bytes.
#[derive(Debug, Clone)]
pub struct Generated {
    pub kind: RecordKind,
    pub id: RecordId,
    pub row: Row,
    pub doc: Vec<u8>,
    /// Automerge changes in the document's history.
    pub changes: usize,
}

/// Shared, cheap facts every generator needs: members and sizes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub params: Params,
    pub members: Vec<MemberId>,
    pub workspace: Workspace,
    pub companies: usize,
    pub deals: usize,
}

/// A company's identity (cheap: deals and contacts refer to it).
#[derive(Debug, Clone)]
pub struct CompanyBasics {
    pub id: RecordId,
    pub name: String,
    pub domain: String,
    pub place: usize,
    pub created_at: i64,
}

/// A contact's identity (cheap: deals and activities refer to it).
#[derive(Debug, Clone)]
pub struct ContactBasics {
    pub id: RecordId,
    pub given: &'static str,
    pub family: &'static str,
    pub company: usize,
    pub created_at: i64,
}

fn slug(s: &str) -> String {
    fold(s).chars().filter(char::is_ascii_alphanumeric).collect()
}

impl Plan {
    pub fn new(params: Params) -> Self {
        let mut r = Rng::stream(params.seed, "workspace", 0);
        let members: Vec<MemberId> = (0..MEMBER_NAMES.len())
            .map(|_| MemberId::new(Timestamp::from_millis(NOW - HISTORY - DAY), r.bytes()))
            .collect();
        let ws_id = RecordId::new(Timestamp::from_millis(NOW - HISTORY - DAY), r.bytes());
        let mut workspace = Workspace::new(
            ws_id,
            "Northwind Traders",
            members[0],
            MEMBER_NAMES[0],
            Timestamp::from_millis(NOW - HISTORY),
        );
        for (m, name) in members.iter().zip(MEMBER_NAMES).skip(1) {
            workspace.members.insert(*m, Member { name: (*name).to_owned() });
        }
        workspace.custom_fields.insert(
            "tier".into(),
            CustomFieldDef {
                label: "Tier".into(),
                kind: CustomFieldKind::Choice(vec!["Gold".into(), "Silver".into(), "Bronze".into()]),
                applies_to: RecordKind::Contact,
            },
        );
        workspace.custom_fields.insert(
            "lead_source".into(),
            CustomFieldDef {
                label: "Lead source".into(),
                kind: CustomFieldKind::Text,
                applies_to: RecordKind::Contact,
            },
        );
        let companies = params.companies();
        let deals = params.deals();
        Plan { params, members, workspace, companies, deals }
    }

    fn actor(&self, r: &mut Rng, member: usize) -> automerge::ActorId {
        // Each member works from two devices; each device session is an actor.
        let mut session = [0u8; 8];
        session[0] = member as u8;
        session[1] = r.below(2) as u8;
        session_actor(self.members[member], session)
    }

    pub fn company_basics(&self, c: usize) -> CompanyBasics {
        let mut r = Rng::stream(self.params.seed, "company-basics", c as u64);
        let combos = COMPANY_FIRST.len() * COMPANY_SECOND.len();
        let first = COMPANY_FIRST[c % COMPANY_FIRST.len()];
        let second = COMPANY_SECOND[(c / COMPANY_FIRST.len()) % COMPANY_SECOND.len()];
        let place = r.below(PLACES.len() as u64) as usize;
        let suffix = r.pick(COMPANY_SUFFIX);
        let mut name = format!("{first} {second}");
        let mut domain = format!("{}{}", slug(first), slug(second));
        if c >= combos {
            // Past the unique pairs, firms are told apart by their city.
            let round = c / combos;
            let city = PLACES[(place + round) % PLACES.len()].0;
            name = format!("{name} {city}");
            domain = format!("{domain}-{}{}", slug(city), round);
        }
        if !suffix.is_empty() {
            name = format!("{name} {suffix}");
        }
        let tld = match PLACES[place].2 {
            "United Kingdom" => ".co.uk",
            "Germany" => ".de",
            "France" => ".fr",
            "Spain" => ".es",
            "Italy" => ".it",
            "Netherlands" => ".nl",
            _ => ".com",
        };
        domain.push_str(tld);
        let created_at = NOW - HISTORY + r.below(HISTORY as u64 / 2) as i64;
        let id = RecordId::new(Timestamp::from_millis(created_at), r.bytes());
        CompanyBasics { id, name, domain, place, created_at }
    }

    pub fn contact_basics(&self, i: usize) -> ContactBasics {
        let mut r = Rng::stream(self.params.seed, "contact-basics", i as u64);
        let given = *r.pick_skewed(GIVEN);
        let family = *r.pick_skewed(FAMILY);
        let company = r.below_skewed(self.companies);
        let created_at = NOW - HISTORY + r.below((HISTORY - 30 * DAY) as u64) as i64;
        let id = RecordId::new(Timestamp::from_millis(created_at), r.bytes());
        ContactBasics { id, given, family, company, created_at }
    }

    /// A contact with its document history (and nothing else).
    pub fn contact(&self, i: usize) -> (Contact, Generated) {
        self.contact_with(i, true)
    }

    /// The contact alone, without writing its document (`doc` is empty):
    /// for native benchmarks of rows and search.
    pub fn contact_row(&self, i: usize) -> Row {
        self.contact_with(i, false).1.row
    }

    fn contact_with(&self, i: usize, with_doc: bool) -> (Contact, Generated) {
        let b = self.contact_basics(i);
        let company = self.company_basics(b.company);
        let mut r = Rng::stream(self.params.seed, "contact", i as u64);
        let creator = r.below(self.members.len() as u64) as usize;
        let t0 = b.created_at;
        let place = if r.chance(0.8) { company.place } else { r.below(PLACES.len() as u64) as usize };
        let (city, region, country, cc, mobile) = PLACES[place];
        let entry = |r: &mut Rng, t: i64| EntryId::new(Timestamp::from_millis(t), r.bytes());

        let mut c = Contact::new(b.id, Timestamp::from_millis(t0), self.members[creator]);
        c.given_name = b.given.to_owned();
        c.family_name = b.family.to_owned();
        c.company_name = company.name.clone();
        let work_email = validate::email(&format!("{}.{}@{}", slug(b.given), slug(b.family), company.domain))
            .expect("generated emails are valid");
        let work_id = entry(&mut r, t0);
        c.emails.push(Labeled { id: work_id, label: "work".into(), value: work_email });
        c.primary_email = Some(work_id);
        if r.chance(0.75) {
            let digits: String =
                (0..(10 - mobile.len().min(4))).map(|_| char::from(b'0' + r.below(10) as u8)).collect();
            let phone = validate::phone(&format!("+{cc} {mobile} {digits}"), None).expect("generated phones are valid");
            let id = entry(&mut r, t0);
            c.phones.push(Labeled { id, label: "mobile".into(), value: phone });
            c.primary_phone = Some(id);
        }
        let final_title = if r.chance(0.85) { (*r.pick(TITLES)).to_owned() } else { String::new() };
        c.title = if r.chance(0.2) { (*r.pick(TITLES)).to_owned() } else { final_title.clone() };
        if r.chance(0.6) {
            c.address = Address {
                street: format!("{} {}", r.range(1, 240), r.pick(STREETS)),
                city: city.into(),
                region: region.into(),
                postal_code: format!("{:05}", r.below(99_999)),
                country: country.into(),
            };
        }
        let n_tags = [0, 0, 0, 1, 1, 1, 1, 2, 2, 3][r.below(10) as usize];
        for _ in 0..n_tags {
            c.tags.insert((*r.pick_skewed(TAGS)).to_owned());
        }
        c.owner = Some(self.members[r.below(self.members.len() as u64) as usize]);
        if r.chance(0.35) {
            let n = r.range(1, 3);
            c.notes = (0..n).map(|_| *r.pick(NOTES)).collect::<Vec<_>>().join(" ");
        }
        if r.chance(0.5) {
            c.custom.insert("tier".into(), (*r.pick(&["Gold", "Silver", "Bronze"])).to_owned());
        }
        if r.chance(0.4) {
            let src = *r.pick(&["Website", "Referral", "Trade show", "Cold call", "Partner", "Webinar"]);
            c.custom.insert("lead_source".into(), src.to_owned());
        }

        // Later edits and consent events, each one change by its author.
        enum Step {
            Email(Labeled),
            Phone(Labeled),
            Title(String),
            Tag(String),
            Consent(NewConsentEvent),
        }
        let mut steps: Vec<(i64, usize, Step)> = Vec::new();
        let later = |r: &mut Rng, from: i64| (from + DAY + r.below(400 * DAY as u64) as i64).min(NOW - DAY);
        let who = |r: &mut Rng| r.below(self.members.len() as u64) as usize;
        if r.chance(0.4) {
            let t = later(&mut r, t0);
            let value = validate::email(&format!(
                "{}{}{}@{}",
                slug(b.given),
                slug(b.family),
                r.below(100),
                r.pick(EMAIL_PROVIDERS)
            ))
            .expect("valid");
            steps.push((
                t,
                who(&mut r),
                Step::Email(Labeled { id: entry(&mut r, t), label: "personal".into(), value }),
            ));
        }
        if r.chance(0.3) {
            let t = later(&mut r, t0);
            let digits: String = (0..7).map(|_| char::from(b'0' + r.below(10) as u8)).collect();
            let value = validate::phone(&format!("+{cc} 20 {digits}"), None).expect("valid");
            steps.push((t, who(&mut r), Step::Phone(Labeled { id: entry(&mut r, t), label: "work".into(), value })));
        }
        if c.title != final_title {
            steps.push((later(&mut r, t0), who(&mut r), Step::Title(final_title)));
        }
        if r.chance(0.3) {
            steps.push((later(&mut r, t0), who(&mut r), Step::Tag((*r.pick_skewed(TAGS)).to_owned())));
        }
        // Consent: (purpose, chance asked, source when granted, chance withdrawn later)
        let purposes = [
            (PurposeId::MARKETING_EMAIL, 0.55, ConsentSource::Form, 0.25),
            (PurposeId::PHONE_SMS, 0.3, ConsentSource::Call, 0.2),
            (PurposeId::PROFILING, 0.2, ConsentSource::Form, 0.15),
            (PurposeId::THIRD_PARTY, 0.08, ConsentSource::InPerson, 0.3),
        ];
        for (purpose, asked, source, withdrawn) in purposes {
            if !r.chance(asked) {
                continue;
            }
            let purpose: PurposeId = purpose.parse().expect("standard purpose");
            let mut t = (t0 + r.below(30 * DAY as u64) as i64).min(NOW - DAY);
            let mut actions = vec![(ConsentAction::Granted, source)];
            if r.chance(withdrawn) {
                actions.push((
                    ConsentAction::Withdrawn,
                    if source == ConsentSource::Form { ConsentSource::Email } else { source },
                ));
                if r.chance(0.2) {
                    actions.push((ConsentAction::Granted, ConsentSource::Form));
                }
            }
            for (action, source) in actions {
                let by = who(&mut r);
                let note = if r.chance(0.4) { (*r.pick(CONSENT_NOTES)).to_owned() } else { String::new() };
                let event = NewConsentEvent {
                    id: EventId::new(Timestamp::from_millis(t), r.bytes()),
                    purpose: purpose.clone(),
                    action,
                    recorded_at: Timestamp::from_millis(t),
                    lawful_basis: LawfulBasis::Consent,
                    source,
                    recorded_by: self.members[by],
                    note,
                };
                steps.push((t, by, Step::Consent(event)));
                t = later(&mut r, t);
            }
        }
        steps.sort_by_key(|(t, _, _)| *t);

        let mut doc = with_doc.then(|| {
            let mut doc = AutoCommit::new().with_actor(self.actor(&mut r, creator));
            doc::init_root(&mut doc, RecordKind::Contact.as_str(), Contact::SCHEMA).expect("init");
            c.write_doc(&mut doc).expect("write");
            doc.commit_with(CommitOptions::default().with_time(t0));
            doc
        });
        let mut changes = 1;
        for (t, by, step) in steps {
            match step {
                Step::Email(e) => c.emails.push(e),
                Step::Phone(p) => c.phones.push(p),
                Step::Title(title) => c.title = title,
                Step::Tag(tag) => {
                    c.tags.insert(tag);
                }
                Step::Consent(event) => {
                    c.consent.record(event);
                }
            }
            c.touch(Timestamp::from_millis(t), self.members[by]);
            if let Some(doc) = doc.as_mut() {
                doc.set_actor(self.actor(&mut r, by));
                c.write_doc(doc).expect("write");
                if doc.commit_with(CommitOptions::default().with_time(t)).is_some() {
                    changes += 1;
                }
            }
        }
        let row = c.row();
        let doc = doc.map(|mut d| d.save()).unwrap_or_default();
        let generated = Generated { kind: RecordKind::Contact, id: c.id, row, doc, changes };
        (c, generated)
    }

    pub fn workspace(&self) -> Generated {
        let mut r = Rng::stream(self.params.seed, "workspace-doc", 0);
        let mut doc = AutoCommit::new().with_actor(self.actor(&mut r, 0));
        doc::init_root(&mut doc, RecordKind::Workspace.as_str(), Workspace::SCHEMA).expect("init");
        self.workspace.write_doc(&mut doc).expect("write");
        doc.commit_with(CommitOptions::default().with_time(NOW - HISTORY));
        Generated {
            kind: RecordKind::Workspace,
            id: self.workspace.id,
            row: self.workspace.row(),
            doc: doc.save(),
            changes: 1,
        }
    }

    pub fn company(&self, c: usize) -> Generated {
        let b = self.company_basics(c);
        let mut r = Rng::stream(self.params.seed, "company", c as u64);
        let creator = r.below(self.members.len() as u64) as usize;
        let owner = r.below(self.members.len() as u64) as usize;
        let (city, region, country, cc, _) = PLACES[b.place];
        let industry = *r.pick(INDUSTRIES);
        let mut fields = vec![
            ("id", b.id.to_string()),
            ("name", b.name.clone()),
            ("domain", b.domain.clone()),
            ("website", format!("https://www.{}", b.domain)),
            ("industry", industry.to_owned()),
            ("phone", format!("+{cc}20{:07}", r.below(9_999_999))),
            ("owner", self.members[owner].to_string()),
            ("created_by", self.members[creator].to_string()),
            ("updated_by", self.members[creator].to_string()),
        ];
        let size = [10, 50, 200, 1000, 5000][r.below(5) as usize];
        let address = [
            ("street", format!("{} {}", r.range(1, 240), r.pick(STREETS))),
            ("city", city.to_owned()),
            ("region", region.to_owned()),
            ("postal_code", format!("{:05}", r.below(99_999))),
            ("country", country.to_owned()),
        ];
        let tags: Vec<&str> = (0..r.below(3))
            .map(|_| *r.pick(&["customer", "prospect", "partner", "enterprise", "smb", "reseller"]))
            .collect();
        let notes = if r.chance(0.3) { (*r.pick(NOTES)).to_owned() } else { String::new() };

        let mut doc = AutoCommit::new().with_actor(self.actor(&mut r, creator));
        doc::init_root(&mut doc, RecordKind::Company.as_str(), 1).expect("init");
        for (k, v) in &fields {
            doc::put_str(&mut doc, &ROOT, k, Some(v)).expect("put");
        }
        doc::put_i64(&mut doc, &ROOT, "employees", Some(size)).expect("put");
        let addr = doc::ensure_map(&mut doc, &ROOT, "address").expect("map");
        for (k, v) in &address {
            doc::put_str(&mut doc, &addr, k, Some(v)).expect("put");
        }
        let tag_map = doc::ensure_map(&mut doc, &ROOT, "tags").expect("map");
        for t in &tags {
            doc.put(&tag_map, *t, true).expect("put");
        }
        doc::put_text(&mut doc, &ROOT, "notes", &notes).expect("text");
        doc::put_i64(&mut doc, &ROOT, "created_at", Some(b.created_at)).expect("put");
        doc::put_i64(&mut doc, &ROOT, "updated_at", Some(b.created_at)).expect("put");
        doc::put_bool(&mut doc, &ROOT, "deleted", false).expect("put");
        doc.commit_with(CommitOptions::default().with_time(b.created_at));
        let mut changes = 1;
        let mut updated = b.created_at;
        if r.chance(0.5) {
            updated = (b.created_at + r.below(300 * DAY as u64) as i64).min(NOW - DAY);
            let editor = r.below(self.members.len() as u64) as usize;
            doc.set_actor(self.actor(&mut r, editor));
            fields[5].1 = format!("+{cc}20{:07}", r.below(9_999_999));
            doc::put_str(&mut doc, &ROOT, "phone", Some(&fields[5].1)).expect("put");
            doc::put_str(&mut doc, &ROOT, "updated_by", Some(&self.members[editor].to_string())).expect("put");
            doc::put_i64(&mut doc, &ROOT, "updated_at", Some(updated)).expect("put");
            doc.commit_with(CommitOptions::default().with_time(updated));
            changes += 1;
        }
        let mut columns = BTreeMap::new();
        columns.insert("domain".to_owned(), b.domain.clone());
        columns.insert("industry".to_owned(), industry.to_owned());
        columns.insert("city".to_owned(), city.to_owned());
        columns.insert("owner".to_owned(), self.members[owner].to_string());
        columns.insert("phone".to_owned(), fields[5].1.clone());
        let row = Row {
            id: b.id,
            kind: RecordKind::Company,
            title: b.name.clone(),
            subtitle: format!("{industry} · {city}"),
            columns,
            tags: tags.iter().map(|t| (*t).to_owned()).collect::<std::collections::BTreeSet<_>>().into_iter().collect(),
            updated_at: Timestamp::from_millis(updated),
            deleted: false,
        };
        Generated { kind: RecordKind::Company, id: b.id, row, doc: doc.save(), changes }
    }

    /// The activities on contact `i`'s timeline (0 to 3, about one on average).
    pub fn activities(&self, i: usize) -> Vec<Generated> {
        if !self.params.activities {
            return Vec::new();
        }
        let b = self.contact_basics(i);
        let company = self.company_basics(b.company);
        let mut r = Rng::stream(self.params.seed, "activity", i as u64);
        let n = [0, 0, 0, 1, 1, 1, 1, 2, 2, 3][r.below(10) as usize];
        (0..n)
            .map(|_| {
                let at = (b.created_at + r.below(500 * DAY as u64) as i64).min(NOW - DAY);
                let by = r.below(self.members.len() as u64) as usize;
                let (kind, subject) = *r.pick(ACTIVITY_SUBJECTS);
                let id = RecordId::new(Timestamp::from_millis(at), r.bytes());
                let body = (0..r.range(1, 3)).map(|_| *r.pick(NOTES)).collect::<Vec<_>>().join(" ");
                let duration = if kind == "meeting" || kind == "call" { r.range(5, 90) } else { 0 };
                let mut doc = AutoCommit::new().with_actor(self.actor(&mut r, by));
                doc::init_root(&mut doc, RecordKind::Activity.as_str(), 1).expect("init");
                for (k, v) in [
                    ("id", id.to_string()),
                    ("type", kind.to_owned()),
                    ("subject", subject.to_owned()),
                    ("contact", b.id.to_string()),
                    ("company", company.id.to_string()),
                    ("created_by", self.members[by].to_string()),
                ] {
                    doc::put_str(&mut doc, &ROOT, k, Some(&v)).expect("put");
                }
                doc::put_text(&mut doc, &ROOT, "body", &body).expect("text");
                doc::put_i64(&mut doc, &ROOT, "at", Some(at)).expect("put");
                doc::put_i64(&mut doc, &ROOT, "duration_min", Some(duration)).expect("put");
                doc::put_i64(&mut doc, &ROOT, "created_at", Some(at)).expect("put");
                doc::put_bool(&mut doc, &ROOT, "deleted", false).expect("put");
                doc.commit_with(CommitOptions::default().with_time(at));
                let mut columns = BTreeMap::new();
                columns.insert("type".to_owned(), kind.to_owned());
                columns.insert("contact".to_owned(), b.id.to_string());
                columns.insert("company".to_owned(), company.id.to_string());
                columns.insert("owner".to_owned(), self.members[by].to_string());
                columns.insert("at".to_owned(), at.to_string());
                let row = Row {
                    id,
                    kind: RecordKind::Activity,
                    title: subject.to_owned(),
                    subtitle: format!("{kind} with {} {}", b.given, b.family),
                    columns,
                    tags: Vec::new(),
                    updated_at: Timestamp::from_millis(at),
                    deleted: false,
                };
                Generated { kind: RecordKind::Activity, id, row, doc: doc.save(), changes: 1 }
            })
            .collect()
    }

    pub fn deal(&self, d: usize) -> Generated {
        let mut r = Rng::stream(self.params.seed, "deal", d as u64);
        let contact = self.contact_basics(r.below(self.params.contacts.max(1) as u64) as usize);
        let company = self.company_basics(contact.company);
        let owner = r.below(self.members.len() as u64) as usize;
        let created = (contact.created_at + r.below(200 * DAY as u64) as i64).min(NOW - 2 * DAY);
        let id = RecordId::new(Timestamp::from_millis(created), r.bytes());
        let title = format!("{} – {}", company.name, r.pick(DEAL_PRODUCTS));
        let amount = r.range(10, 2_500) * 100;
        let currency = *r.pick(&["EUR", "GBP", "USD"]);
        let mut doc = AutoCommit::new().with_actor(self.actor(&mut r, owner));
        doc::init_root(&mut doc, RecordKind::Deal.as_str(), 1).expect("init");
        for (k, v) in [
            ("id", id.to_string()),
            ("title", title.clone()),
            ("company", company.id.to_string()),
            ("contact", contact.id.to_string()),
            ("pipeline", "default".to_owned()),
            ("stage", "lead".to_owned()),
            ("currency", currency.to_owned()),
            ("owner", self.members[owner].to_string()),
            ("created_by", self.members[owner].to_string()),
        ] {
            doc::put_str(&mut doc, &ROOT, k, Some(&v)).expect("put");
        }
        doc::put_i64(&mut doc, &ROOT, "amount", Some(amount)).expect("put");
        doc::put_i64(&mut doc, &ROOT, "created_at", Some(created)).expect("put");
        doc::put_i64(&mut doc, &ROOT, "updated_at", Some(created)).expect("put");
        doc::put_bool(&mut doc, &ROOT, "deleted", false).expect("put");
        let history = doc.put_object(&ROOT, "stage_history", ObjType::List).expect("list");
        doc.insert(&history, 0, format!("lead@{created}")).expect("insert");
        doc.commit_with(CommitOptions::default().with_time(created));
        // The deal moves through the pipeline, one change per move.
        let steps = r.below(5) as usize;
        let mut stage = "lead";
        let mut t = created;
        let mut changes = 1;
        // lead → qualified → proposal → negotiation → won or lost
        for (s, next) in DEAL_STAGES.iter().enumerate().take(steps + 1).skip(1) {
            stage = match s {
                4 if r.chance(0.6) => "won",
                4 => "lost",
                _ => next,
            };
            t = (t + DAY + r.below(40 * DAY as u64) as i64).min(NOW - DAY);
            let by = if r.chance(0.8) { owner } else { r.below(self.members.len() as u64) as usize };
            doc.set_actor(self.actor(&mut r, by));
            doc::put_str(&mut doc, &ROOT, "stage", Some(stage)).expect("put");
            doc::put_i64(&mut doc, &ROOT, "updated_at", Some(t)).expect("put");
            let len = doc.length(&history);
            doc.insert(&history, len, format!("{stage}@{t}")).expect("insert");
            doc.commit_with(CommitOptions::default().with_time(t));
            changes += 1;
        }
        let close = Timestamp::from_millis(t + 30 * DAY).to_rfc3339()[..10].to_owned();
        doc::put_str(&mut doc, &ROOT, "expected_close", Some(&close)).expect("put");
        doc.commit_with(CommitOptions::default().with_time(t));
        let mut columns = BTreeMap::new();
        columns.insert("stage".to_owned(), stage.to_owned());
        columns.insert("amount".to_owned(), amount.to_string());
        columns.insert("currency".to_owned(), currency.to_owned());
        columns.insert("company".to_owned(), company.name.clone());
        columns.insert("contact".to_owned(), contact.id.to_string());
        columns.insert("owner".to_owned(), self.members[owner].to_string());
        columns.insert("expected_close".to_owned(), close);
        let row = Row {
            id,
            kind: RecordKind::Deal,
            title,
            subtitle: format!("{} {} · {stage}", contact.given, contact.family),
            columns,
            tags: Vec::new(),
            updated_at: Timestamp::from_millis(t),
            deleted: false,
        };
        Generated { kind: RecordKind::Deal, id, row, doc: doc.save(), changes: changes + 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapport_core::repo::{hydrate, materialise};

    fn plan() -> Plan {
        Plan::new(Params {
            seed: 42,
            contacts: 200,
            companies_per_contact: 0.1,
            deals_per_contact: 0.2,
            activities: true,
        })
    }

    #[test]
    fn contacts_read_back_as_the_app_reads_them_and_their_rows_match() {
        let p = plan();
        for i in [0, 1, 17, 199] {
            let (contact, g) = p.contact(i);
            let doc = hydrate(Some(&g.doc), &[]).expect("loads");
            assert_eq!(Contact::from_doc(&doc).expect("reads"), contact);
            assert_eq!(materialise(&doc).expect("row"), g.row);
        }
        let ws = p.workspace();
        let doc = hydrate(Some(&ws.doc), &[]).expect("loads");
        assert_eq!(Workspace::from_doc(&doc).expect("reads"), p.workspace);
    }

    #[test]
    fn a_row_alone_is_the_row_of_the_full_record() {
        let p = plan();
        for i in [0, 3, 150] {
            assert_eq!(p.contact_row(i), p.contact(i).1.row);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_records() {
        let (a, b) = (plan(), plan());
        assert_eq!(a.contact(5).1.doc, b.contact(5).1.doc);
        assert_eq!(a.deal(3).doc, b.deal(3).doc);
        assert_eq!(a.company(2).doc, b.company(2).doc);
        assert_eq!(a.activities(9).len(), b.activities(9).len());
    }

    #[test]
    fn histories_have_several_changes_and_consent_events() {
        let p = plan();
        let contacts: Vec<_> = (0..200).map(|i| p.contact(i)).collect();
        let changes: usize = contacts.iter().map(|(_, g)| g.changes).sum();
        let events: usize = contacts.iter().map(|(c, _)| c.consent.len()).sum();
        assert!(changes > 300, "{changes} changes");
        assert!(events > 150, "{events} consent events");
    }
}
