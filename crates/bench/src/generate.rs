//! A seeded, realistic workspace: the workspace document (five members, the
//! standard consent purposes, the default sales pipeline, custom fields),
//! companies, contacts with several emails and phones, tags, addresses,
//! notes, custom values and consent histories, deals moving through the
//! pipeline, and activities on contacts', companies' and deals' timelines.
//!
//! Every record is rapport-core's own type (`Workspace`, `Contact`,
//! `Company`, `Deal`, `Activity`), written with `Record::write_doc` into a
//! document whose root is `init_root(kind, SCHEMA)` and whose row is
//! `Record::row()`, exactly as the app writes them, so the browser reads
//! them like any record. References hold: a contact's `company_id` is its
//! company, a deal's contact and company exist, an activity names its
//! contact, that contact's company and sometimes one of that contact's deals,
//! and every deal stands in a stage of the workspace's own pipeline.
//!
//! Every document has a history, not one big change: it is created by one
//! member, then edited by others over the following months (a phone added,
//! a new job title, tags, consent granted and withdrawn, a company's
//! switchboard number, a deal moving stage with `Deal::move_to` and its
//! value revised, a call's outcome filled in later), one Automerge change per
//! edit with its author's session actor and its time (`audit::commit`, as
//! the app stamps changes).
//!
//! Generation is a pure function of the seed and the sizes: record `i` of a
//! kind comes from its own random stream, so records are generated in any
//! order and on any number of threads with the same bytes.

use automerge::AutoCommit;
use chrono::NaiveDate;
use rapport_core::audit;
use rapport_core::consent::{ConsentAction, ConsentSource, LawfulBasis, NewConsentEvent, PurposeId};
use rapport_core::contact::{Address, Contact, Labeled};
use rapport_core::doc;
use rapport_core::ids::{EntryId, EventId, MemberId, RecordId};
use rapport_core::record::{Record, RecordKind, Row};
use rapport_core::repo::session_actor;
use rapport_core::sales::activity::{Activity, ActivityKind};
use rapport_core::sales::company::{self, Company, SIZES};
use rapport_core::sales::deal::Deal;
use rapport_core::sales::money;
use rapport_core::sales::pipeline::Outcome;
use rapport_core::search::fold;
use rapport_core::validate::{self, CustomFieldKind};
use rapport_core::workspace::{CustomFieldDef, Member, Workspace};
use rapport_core::Timestamp;

use crate::pools::*;
use crate::rng::Rng;

/// The generator's own version, part of the data file's fingerprint
/// (`Plan::fingerprint`). Bump it with any change to what is generated.
pub const GENERATOR: u32 = 2;

/// The workspace custom field that holds a company's phone number (a
/// `Company` has no phone of its own; teams add one as a custom field).
pub const COMPANY_PHONE_FIELD: &str = "switchboard";

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
    spread: Spread,
}

/// How deals are spread over contacts: deal `d` is with contact
/// `(a·d + b) mod n`, a seeded bijection, so a contact's deals are found
/// without generating every deal (activities link to them).
#[derive(Debug, Clone, Copy)]
struct Spread {
    n: u64,
    a: u64,
    a_inverse: u64,
    b: u64,
}

impl Spread {
    fn new(r: &mut Rng, contacts: usize) -> Self {
        let n = contacts.max(1) as u64;
        let mut a = r.below(n) | 1;
        while gcd(a, n) != 1 {
            a += 1;
        }
        let a_inverse = inverse(a % n, n);
        Spread { n, a: a % n, a_inverse, b: r.below(n) }
    }

    fn contact(&self, deal: usize) -> usize {
        ((u128::from(self.a) * u128::from(deal as u64 % self.n) + u128::from(self.b)) % u128::from(self.n)) as usize
    }

    /// The deals with `contact`, given `deals` in all.
    fn deals(&self, contact: usize, deals: usize) -> impl Iterator<Item = usize> {
        let shifted = (contact as u64 % self.n + self.n - self.b) % self.n;
        let first = (u128::from(self.a_inverse) * u128::from(shifted) % u128::from(self.n)) as usize;
        (first..deals).step_by(self.n as usize)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `a`'s inverse modulo `n` (`a` and `n` coprime).
fn inverse(a: u64, n: u64) -> u64 {
    let (mut t, mut next_t, mut r, mut next_r) = (0i128, 1i128, i128::from(n), i128::from(a));
    while next_r != 0 {
        let q = r / next_r;
        (t, next_t) = (next_t, t - q * next_t);
        (r, next_r) = (next_r, r - q * next_r);
    }
    t.rem_euclid(i128::from(n)) as u64
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

/// A deal's identity (cheap: activities refer to it).
#[derive(Debug, Clone)]
pub struct DealBasics {
    pub id: RecordId,
    /// The contact index.
    pub contact: usize,
    pub owner: usize,
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
        workspace.custom_fields.insert(
            COMPANY_PHONE_FIELD.into(),
            CustomFieldDef {
                label: "Switchboard".into(),
                kind: CustomFieldKind::Text,
                applies_to: RecordKind::Company,
            },
        );
        let companies = params.companies();
        let deals = params.deals();
        let spread = Spread::new(&mut Rng::stream(params.seed, "deal-spread", 0), params.contacts);
        Plan { params, members, workspace, companies, deals, spread }
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
        c.company_id = Some(company.id);
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

        let mut doc = with_doc.then(|| self.created(&mut r, &c, creator, t0));
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
                if self.edited(&mut r, doc, &c, by, t) {
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
        let doc = self.created(&mut r, &self.workspace, 0, NOW - HISTORY);
        generated(&self.workspace, doc, 1)
    }

    /// A new record's document as the app creates it (`Repo::create`): the
    /// root's kind and schema, then the record, committed as one change by
    /// a session of member `by` stamped with `at`.
    fn created<R: Record>(&self, r: &mut Rng, record: &R, by: usize, at: i64) -> AutoCommit {
        let mut doc = AutoCommit::new().with_actor(self.actor(r, by));
        doc::init_root(&mut doc, R::KIND.as_str(), R::SCHEMA).expect("a new document takes its root");
        record.write_doc(&mut doc).expect("a new document takes the record");
        audit::commit(&mut doc, Timestamp::from_millis(at));
        doc
    }

    /// Writes `record` into `doc` as the app saves an edit (`Repo::save`):
    /// one change by a session of member `by` stamped with `at`. Whether it
    /// changed anything.
    fn edited<R: Record>(&self, r: &mut Rng, doc: &mut AutoCommit, record: &R, by: usize, at: i64) -> bool {
        doc.set_actor(self.actor(r, by));
        record.write_doc(doc).expect("the document takes the edit");
        audit::commit(doc, Timestamp::from_millis(at)).is_some()
    }

    fn member(&self, r: &mut Rng) -> usize {
        r.below(self.members.len() as u64) as usize
    }

    /// A company with its document history: created by one member, then
    /// its switchboard number changed, its size band grown, its owner
    /// reassigned or a tag added, each by someone, months later.
    pub fn company(&self, c: usize) -> (Company, Generated) {
        let b = self.company_basics(c);
        let mut r = Rng::stream(self.params.seed, "company", c as u64);
        let creator = self.member(&mut r);
        let owner = self.member(&mut r);
        let (city, region, country, cc, _) = PLACES[b.place];
        let t0 = b.created_at;
        let switchboard = |r: &mut Rng| {
            let digits: String = (0..7).map(|_| char::from(b'0' + r.below(10) as u8)).collect();
            validate::phone(&format!("+{cc} 20 {digits}"), None).expect("generated phones are valid")
        };

        let mut co = Company::new(b.id, Timestamp::from_millis(t0), self.members[creator]);
        co.name = b.name.clone();
        co.domain = company::domain(&b.domain).expect("generated domains are valid");
        co.industry = (*r.pick(INDUSTRIES)).to_owned();
        let mut size = r.below(SIZES.len() as u64 - 1) as usize;
        co.size = SIZES[size].to_owned();
        co.owner = Some(self.members[owner]);
        co.custom.insert(COMPANY_PHONE_FIELD.into(), switchboard(&mut r));
        co.address = Address {
            street: format!("{} {}", r.range(1, 240), r.pick(STREETS)),
            city: city.into(),
            region: region.into(),
            postal_code: format!("{:05}", r.below(99_999)),
            country: country.into(),
        };
        for _ in 0..r.below(3) {
            co.tags.insert((*r.pick(COMPANY_TAGS)).to_owned());
        }
        if r.chance(0.3) {
            co.notes = (*r.pick(NOTES)).to_owned();
        }

        enum Step {
            Phone(String),
            Grew,
            Owner(usize),
            Tag(String),
        }
        let later = |r: &mut Rng| (t0 + DAY + r.below(300 * DAY as u64) as i64).min(NOW - DAY);
        let mut steps: Vec<(i64, usize, Step)> = Vec::new();
        if r.chance(0.5) {
            steps.push((later(&mut r), self.member(&mut r), Step::Phone(switchboard(&mut r))));
        }
        if r.chance(0.25) {
            steps.push((later(&mut r), self.member(&mut r), Step::Grew));
        }
        if r.chance(0.2) {
            steps.push((later(&mut r), self.member(&mut r), Step::Owner(self.member(&mut r))));
        }
        if r.chance(0.2) {
            steps.push((later(&mut r), self.member(&mut r), Step::Tag((*r.pick(COMPANY_TAGS)).to_owned())));
        }
        steps.sort_by_key(|(t, _, _)| *t);

        let mut doc = self.created(&mut r, &co, creator, t0);
        let mut changes = 1;
        for (t, by, step) in steps {
            match step {
                Step::Phone(phone) => {
                    co.custom.insert(COMPANY_PHONE_FIELD.into(), phone);
                }
                Step::Grew => {
                    size = (size + 1).min(SIZES.len() - 1);
                    co.size = SIZES[size].to_owned();
                }
                Step::Owner(m) => co.owner = Some(self.members[m]),
                Step::Tag(tag) => {
                    co.tags.insert(tag);
                }
            }
            co.touch(Timestamp::from_millis(t), self.members[by]);
            if self.edited(&mut r, &mut doc, &co, by, t) {
                changes += 1;
            }
        }
        let g = generated(&co, doc, changes);
        (co, g)
    }

    /// The activities on contact `i`'s timeline (0 to 3, about one on
    /// average), each about the contact, naming its company and, for some,
    /// one of the contact's deals. A call or meeting's outcome is often
    /// filled in later, as a second change.
    pub fn activities(&self, i: usize) -> Vec<(Activity, Generated)> {
        if !self.params.activities {
            return Vec::new();
        }
        let b = self.contact_basics(i);
        let company = self.company_basics(b.company);
        let deals: Vec<DealBasics> = self.spread.deals(i, self.deals).map(|d| self.deal_basics(d)).collect();
        let mut r = Rng::stream(self.params.seed, "activity", i as u64);
        let n = [0, 0, 0, 1, 1, 1, 1, 2, 2, 3][r.below(10) as usize];
        (0..n)
            .map(|_| {
                let at = (b.created_at + r.below(500 * DAY as u64) as i64).min(NOW - DAY);
                let by = self.member(&mut r);
                let (kind, subject) = *r.pick(ACTIVITY_SUBJECTS);
                let kind = ActivityKind::parse(kind).expect("the pool's activity kinds are the app's");
                let id = RecordId::new(Timestamp::from_millis(at), r.bytes());
                let t = Timestamp::from_millis(at);
                let mut a = Activity::new(id, kind, t, t, self.members[by]);
                a.subject = subject.to_owned();
                a.body = (0..r.range(1, 3)).map(|_| *r.pick(NOTES)).collect::<Vec<_>>().join(" ");
                if matches!(kind, ActivityKind::Meeting | ActivityKind::Call) {
                    a.duration_minutes = Some(r.range(5, 90) as u32);
                }
                a.contacts.insert(b.id);
                a.company = Some(company.id);
                if let Some(deal) = deals.iter().find(|d| d.created_at <= at) {
                    if r.chance(0.6) {
                        a.deal = Some(deal.id);
                    }
                }
                if kind == ActivityKind::Meeting && r.chance(0.5) {
                    a.participants.insert(self.members[self.member(&mut r)]);
                }
                let outcomes = kind.outcomes();
                let mut later_outcome = None;
                if !outcomes.is_empty() {
                    if r.chance(0.5) {
                        a.outcome = (*r.pick(outcomes)).to_owned();
                    } else if r.chance(0.5) {
                        let t = (at + r.below(3 * DAY as u64) as i64).min(NOW - DAY).max(at);
                        later_outcome = Some((t, self.member(&mut r), *r.pick(outcomes)));
                    }
                }
                let mut doc = self.created(&mut r, &a, by, at);
                let mut changes = 1;
                if let Some((t, editor, outcome)) = later_outcome {
                    a.outcome = outcome.to_owned();
                    a.touch(Timestamp::from_millis(t), self.members[editor]);
                    if self.edited(&mut r, &mut doc, &a, editor, t) {
                        changes += 1;
                    }
                }
                let g = generated(&a, doc, changes);
                (a, g)
            })
            .collect()
    }

    pub fn deal_basics(&self, d: usize) -> DealBasics {
        let mut r = Rng::stream(self.params.seed, "deal-basics", d as u64);
        let contact = self.spread.contact(d);
        let owner = self.member(&mut r);
        let from = self.contact_basics(contact).created_at;
        let created_at = (from + r.below(200 * DAY as u64) as i64).min(NOW - 2 * DAY);
        let id = RecordId::new(Timestamp::from_millis(created_at), r.bytes());
        DealBasics { id, contact, owner, created_at }
    }

    /// A deal with its document history: created by its owner in the first
    /// open stage of the workspace's pipeline, then moved stage by stage
    /// with `Deal::move_to` (mostly by its owner) and sometimes closed won
    /// or lost, its value revised once at the proposal, each one change.
    pub fn deal(&self, d: usize) -> (Deal, Generated) {
        let b = self.deal_basics(d);
        let contact = self.contact_basics(b.contact);
        let company = self.company_basics(contact.company);
        let mut r = Rng::stream(self.params.seed, "deal", d as u64);
        let ws = &self.workspace;
        let (pipeline, first) = ws.default_stage().expect("the default pipeline has an open stage");
        let stages = ws.pipelines[&pipeline].ordered_stages(false);
        let open: Vec<&str> =
            stages.iter().filter(|(_, s)| s.outcome == Outcome::Open).map(|(id, _)| id.as_str()).collect();
        let closing = |outcome| {
            stages.iter().find(|(_, s)| s.outcome == outcome).map(|(id, _)| id.as_str()).expect("won and lost stages")
        };
        let entry = |r: &mut Rng, t: i64| EntryId::new(Timestamp::from_millis(t), r.bytes());
        let t0 = b.created_at;

        let mut deal = Deal::new(
            b.id,
            pipeline.clone(),
            first,
            entry(&mut r, t0),
            Timestamp::from_millis(t0),
            self.members[b.owner],
        );
        deal.title = format!("{} – {}", company.name, r.pick(DEAL_PRODUCTS));
        deal.currency = (*r.pick(&["EUR", "GBP", "USD"])).to_owned();
        // 1,000 to 250,000 in whole hundreds, in minor units.
        let unit = 10i64.pow(money::exponent(&deal.currency));
        deal.value = r.range(10, 2_500) * 100 * unit;
        deal.expected_close = Some(date(t0 + r.range(30, 120) * DAY));
        deal.contacts.insert(contact.id);
        deal.company = Some(company.id);
        if r.chance(0.4) {
            deal.tags.insert((*r.pick(DEAL_TAGS)).to_owned());
        }
        if r.chance(0.3) {
            deal.notes = (*r.pick(NOTES)).to_owned();
        }
        let mut doc = self.created(&mut r, &deal, b.owner, t0);
        let mut changes = 1;

        // lead → qualified → proposal → negotiation → won or lost
        let moves = r.below(open.len() as u64 + 1) as usize;
        let mut t = t0;
        for step in 1..=moves {
            let (stage, reason) = match open.get(step) {
                Some(stage) => (*stage, ""),
                None if r.chance(0.6) => (closing(Outcome::Won), if r.chance(0.5) { *r.pick(WON_REASONS) } else { "" }),
                None => (closing(Outcome::Lost), *r.pick(LOST_REASONS)),
            };
            t = (t + DAY + r.below(40 * DAY as u64) as i64).min(NOW - DAY);
            let by = if r.chance(0.8) { b.owner } else { self.member(&mut r) };
            let now = Timestamp::from_millis(t);
            deal.move_to(ws, &pipeline, stage, reason, entry(&mut r, t), now, date(t), self.members[by])
                .expect("the stages are the workspace's own");
            if self.edited(&mut r, &mut doc, &deal, by, t) {
                changes += 1;
            }
            if step == 2 && r.chance(0.4) {
                // The proposal's price, negotiated up or down.
                let t = (t + r.below(DAY as u64) as i64).min(NOW - DAY).max(t);
                deal.value = deal.value / 100 / unit * r.range(80, 120) * unit;
                deal.touch(Timestamp::from_millis(t), self.members[b.owner]);
                if self.edited(&mut r, &mut doc, &deal, b.owner, t) {
                    changes += 1;
                }
            }
        }
        let g = generated(&deal, doc, changes);
        (deal, g)
    }

    /// The records whose bytes and rows decide the data file's
    /// fingerprint: the workspace and the first few of every kind, enough
    /// that each kind, each kind of edit and each link is among them.
    pub fn fingerprint_samples(&self) -> Vec<Generated> {
        let contacts = self.params.contacts.min(16);
        let mut out = vec![self.workspace()];
        out.extend((0..self.companies.min(4)).map(|c| self.company(c).1));
        for i in 0..contacts {
            out.push(self.contact(i).1);
            out.extend(self.activities(i).into_iter().map(|(_, g)| g));
        }
        out.extend((0..self.deals.min(8)).map(|d| self.deal(d).1));
        out
    }

    /// What decides the data file's content: the format and generator
    /// versions, the parameters and a hash (FNV-1a) of the sample records'
    /// bytes and rows, so that a change to the generator or to how
    /// rapport-core writes records makes `rapport-bench-gen --if-changed`
    /// generate again.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
        };
        for g in self.fingerprint_samples() {
            feed(&g.doc);
            feed(rapport_core::storage::encode_row(&g.row).as_bytes());
        }
        let p = &self.params;
        format!(
            "v{}-g{GENERATOR}-seed{}-n{}-c{}-d{}-a{}-{h:016x}",
            crate::format::VERSION,
            p.seed,
            p.contacts,
            p.companies_per_contact,
            p.deals_per_contact,
            p.activities
        )
    }
}

fn generated<R: Record>(record: &R, mut doc: AutoCommit, changes: usize) -> Generated {
    Generated { kind: R::KIND, id: record.id(), row: record.row(), doc: doc.save(), changes }
}

/// The UTC calendar day of `ms`.
fn date(ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).expect("generated times are in range").date_naive()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use rapport_core::repo::{hydrate, materialise};

    fn plan_of(seed: u64, contacts: usize) -> Plan {
        Plan::new(Params { seed, contacts, companies_per_contact: 0.1, deals_per_contact: 0.2, activities: true })
    }

    fn plan() -> Plan {
        plan_of(42, 200)
    }

    /// Reads `g`'s bytes back as the app does and checks they are `record`
    /// with `record`'s row, and that the row stored next to them is that row.
    fn reads_back<R: Record + PartialEq + std::fmt::Debug>(record: &R, g: &Generated) {
        let doc = hydrate(Some(&g.doc), &[]).expect("the document loads");
        let read = R::from_doc(&doc).unwrap_or_else(|e| panic!("{} {} does not decode: {e}", R::KIND, g.id));
        assert_eq!(&read, record, "{} {}", R::KIND, g.id);
        assert_eq!(read.row(), g.row, "{} {}: row", R::KIND, g.id);
        assert_eq!(materialise(&doc).expect("a row"), g.row, "{} {}: materialised row", R::KIND, g.id);
        assert_eq!((g.kind, g.id), (R::KIND, read.id()));
    }

    #[test]
    fn contacts_read_back_as_the_app_reads_them_and_their_rows_match() {
        let p = plan();
        for i in [0, 1, 17, 199] {
            let (contact, g) = p.contact(i);
            reads_back(&contact, &g);
        }
        let ws = p.workspace();
        let doc = hydrate(Some(&ws.doc), &[]).expect("loads");
        assert_eq!(Workspace::from_doc(&doc).expect("reads"), p.workspace);
    }

    #[test]
    fn every_company_deal_and_activity_reads_back_as_its_core_type_with_its_row() {
        let p = plan();
        for c in 0..p.companies {
            let (company, g) = p.company(c);
            reads_back(&company, &g);
        }
        for d in 0..p.deals {
            let (deal, g) = p.deal(d);
            reads_back(&deal, &g);
        }
        for i in 0..p.params.contacts {
            for (activity, g) in p.activities(i) {
                reads_back(&activity, &g);
            }
        }
    }

    #[test]
    fn deals_stand_in_stages_of_the_generated_workspace_and_every_reference_resolves() {
        let p = plan();
        let ws_doc = hydrate(Some(&p.workspace().doc), &[]).expect("loads");
        let ws = Workspace::from_doc(&ws_doc).expect("reads");
        let companies: BTreeSet<RecordId> = (0..p.companies).map(|c| p.company(c).0.id).collect();
        let contacts: Vec<Contact> = (0..p.params.contacts).map(|i| p.contact(i).0).collect();
        let contact_ids: BTreeSet<RecordId> = contacts.iter().map(|c| c.id).collect();
        assert!(contacts.iter().all(|c| c.company_id.is_some_and(|id| companies.contains(&id))));

        let deals: Vec<Deal> = (0..p.deals).map(|d| p.deal(d).0).collect();
        assert_eq!((companies.len(), deals.len()), (20, 40));
        let mut outcomes = BTreeSet::new();
        for deal in &deals {
            let s = &deal.standing;
            let stage = ws.stage(&s.pipeline, &s.stage).unwrap_or_else(|| panic!("{}: no stage {s:?}", deal.id));
            assert_eq!(stage.outcome, s.status, "{}", deal.id);
            assert!(s.status != Outcome::Lost || !s.reason.is_empty(), "a lost deal says why");
            assert!(deal.history.values().all(|h| ws.stage(&h.to.0, &h.to.1).is_some()));
            assert_eq!(deal.history.len(), deal.history_in_order().len());
            assert!(deal.value > 0 && deal.value % 100 == 0, "whole amounts in minor units: {}", deal.value);
            assert!(deal.company.is_some_and(|c| companies.contains(&c)));
            assert!(!deal.contacts.is_empty() && deal.contacts.is_subset(&contact_ids));
            outcomes.insert(s.status);
        }
        assert_eq!(outcomes.len(), 3, "open, won and lost deals: {outcomes:?}");

        let deal_ids: BTreeSet<RecordId> = deals.iter().map(|d| d.id).collect();
        let activities: Vec<Activity> = (0..p.params.contacts).flat_map(|i| p.activities(i)).map(|(a, _)| a).collect();
        assert!((150..=300).contains(&activities.len()), "{} activities for 200 contacts", activities.len());
        for a in &activities {
            assert!(!a.contacts.is_empty() && a.contacts.is_subset(&contact_ids));
            assert!(a.company.is_some_and(|c| companies.contains(&c)));
            assert!(a.deal.is_none_or(|d| deal_ids.contains(&d)), "{}: unknown deal", a.id);
        }
        assert!(activities.iter().filter(|a| a.deal.is_some()).count() >= 5, "some activities are on a deal");
    }

    #[test]
    fn histories_are_several_changes_by_members_at_their_times() {
        let p = plan();
        let mut docs: Vec<Generated> = (0..p.companies).map(|c| p.company(c).1).collect();
        docs.extend((0..p.deals).map(|d| p.deal(d).1));
        docs.extend((0..p.params.contacts).flat_map(|i| p.activities(i)).map(|(_, g)| g));
        docs.extend((0..20).map(|i| p.contact(i).1));
        for kind in [RecordKind::Company, RecordKind::Deal, RecordKind::Activity, RecordKind::Contact] {
            assert!(docs.iter().any(|g| g.kind == kind && g.changes > 1), "a {kind} with a history");
        }
        for g in &docs {
            let mut doc = hydrate(Some(&g.doc), &[]).expect("loads");
            let trail = audit::history(&mut doc);
            assert_eq!(trail.len(), g.changes, "{} {}", g.kind, g.id);
            for entry in trail {
                let at = entry.at.as_millis();
                assert!(
                    (NOW - HISTORY - DAY..=NOW).contains(&at),
                    "{} {}: change at {}",
                    g.kind,
                    g.id,
                    entry.at.to_rfc3339()
                );
                assert!(entry.member.is_some_and(|m| p.members.contains(&m)), "{} {}: author", g.kind, g.id);
            }
        }
    }

    #[test]
    fn a_row_alone_is_the_row_of_the_full_record() {
        let p = plan();
        for i in [0, 3, 150] {
            assert_eq!(p.contact_row(i), p.contact(i).1.row);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_records_and_fingerprint() {
        let (a, b) = (plan(), plan());
        assert_eq!(a.contact(5).1.doc, b.contact(5).1.doc);
        for d in 0..a.deals {
            assert_eq!(a.deal(d).1.doc, b.deal(d).1.doc);
        }
        for c in 0..a.companies {
            assert_eq!(a.company(c).1.doc, b.company(c).1.doc);
        }
        for i in 0..a.params.contacts {
            let docs = |p: &Plan| p.activities(i).into_iter().map(|(_, g)| (g.doc, g.row)).collect::<Vec<_>>();
            assert_eq!(docs(&a), docs(&b));
        }
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), plan_of(43, 200).fingerprint());
    }

    #[test]
    fn the_fingerprint_samples_every_kind_and_closed_deals() {
        for contacts in [200, 1_000] {
            let p = plan_of(20_261_123, contacts);
            let samples = p.fingerprint_samples();
            for kind in [
                RecordKind::Workspace,
                RecordKind::Company,
                RecordKind::Contact,
                RecordKind::Deal,
                RecordKind::Activity,
            ] {
                assert!(samples.iter().any(|g| g.kind == kind), "{contacts}: no {kind} sampled");
            }
            let closed = (0..p.deals.min(8)).filter(|d| p.deal(*d).0.standing.status != Outcome::Open).count();
            assert!(closed > 0, "{contacts}: no closed deal sampled");
        }
    }

    #[test]
    fn a_contacts_deals_are_the_deals_spread_to_it() {
        for (contacts, deals) in [(200, 40), (7, 20), (1, 3), (1_000, 200)] {
            let p = Plan::new(Params {
                seed: 9,
                contacts,
                companies_per_contact: 0.1,
                deals_per_contact: deals as f64 / contacts as f64,
                activities: true,
            });
            assert_eq!(p.deals, deals);
            for i in 0..contacts {
                let found: Vec<usize> = p.spread.deals(i, deals).collect();
                let expected: Vec<usize> = (0..deals).filter(|d| p.spread.contact(*d) == i).collect();
                assert_eq!(found, expected, "contact {i} of {contacts}");
            }
        }
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
