//! The in-memory row index behind lists and search: every materialised row
//! with a pre-normalised search text, a cached sort order per sort key, and
//! queries that filter that order (so a keystroke costs one pass over
//! pre-lowered strings, never a sort or a document load).
//!
//! Typing narrows a search: a query whose every term contains a term of an
//! earlier query can only match rows that the earlier one matched. The index
//! keeps the results of the last few queries and filters the smallest one
//! the new query narrows instead of the whole list, so after the first
//! keystroke or two a keystroke costs a pass over the current matches, not
//! over 100,000 rows. Backspace finds the earlier result in the same cache.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use memchr::memmem::Finder;

use crate::ids::RecordId;
use crate::record::{RecordKind, Row};

/// List orders users can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Name,
    Company,
    Email,
    Updated,
    /// A text column of the row (`industry`, `city`…), accents and case
    /// folded; for lists of record kinds other than contacts.
    Column(&'static str),
}

impl SortKey {
    pub const ALL: [SortKey; 4] = [SortKey::Name, SortKey::Company, SortKey::Email, SortKey::Updated];

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "Name",
            SortKey::Company => "Company",
            SortKey::Email => "Email",
            SortKey::Updated => "Last updated",
            SortKey::Column(column) => column,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Self { key: SortKey::Name, descending: false }
    }
}

/// Appends the lower-cased text searched for a row: name, emails, phones,
/// company, title, a company's web domain, and tags.
fn push_haystack(s: &mut String, row: &Row) {
    for part in [&row.title, &row.subtitle] {
        fold_into(s, part);
        s.push(' ');
    }
    for col in ["email", "other_emails", "phone", "other_phones", "company", "domain"] {
        fold_into(s, row.column(col));
        s.push(' ');
    }
    for t in &row.tags {
        fold_into(s, t);
        s.push(' ');
    }
}

/// Lower-cases and strips common accents so "jose" finds "José".
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    fold_into(&mut out, s);
    out
}

/// [`fold`], appending to `out`. ASCII text (most of it) takes a fast path.
fn fold_into(out: &mut String, s: &str) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        return;
    }
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        for c in c.to_lowercase() {
            out.push(match c {
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
                'ç' => 'c',
                'è' | 'é' | 'ê' | 'ë' => 'e',
                'ì' | 'í' | 'î' | 'ï' => 'i',
                'ñ' => 'n',
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
                'ù' | 'ú' | 'û' | 'ü' => 'u',
                'ý' | 'ÿ' => 'y',
                c => c,
            });
        }
    }
}

/// Appends the digits of a row's phone numbers (a space after each number).
fn push_digits(s: &mut String, row: &Row) {
    let (phone, other) = (row.column("phone"), row.column("other_phones"));
    if phone.is_empty() && other.is_empty() {
        return;
    }
    s.extend(
        [phone, other]
            .iter()
            .flat_map(|p| p.chars().chain(std::iter::once(' ')))
            .filter(|c| c.is_ascii_digit() || *c == ' '),
    );
}

/// A 64-bit summary of which characters a folded text holds: letters and
/// digits have a bit each, anything else shares the remaining bits. A row
/// whose summary lacks a bit of a term's summary cannot contain the term, so
/// most rows are rejected without reading their text.
fn signature(text: &str) -> u64 {
    text.bytes().fold(0, |sig, b| sig | bit(b))
}

fn bit(b: u8) -> u64 {
    match b {
        b'a'..=b'z' => 1 << (b - b'a'),
        b'0'..=b'9' => 1 << (26 + b - b'0'),
        b' ' => 0,
        other => 1 << (36 + other % 28),
    }
}

/// A parsed query: every term must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Text(String),
    /// Looks like a phone number: matched on digits only.
    Digits(String, String),
}

impl Term {
    /// Whether every row this term matches is also matched by `other`.
    fn implies(&self, other: &Term) -> bool {
        match (self, other) {
            (Term::Text(a), Term::Text(b)) => a.contains(b.as_str()),
            (Term::Digits(ad, ar), Term::Digits(bd, br)) => ad.contains(bd.as_str()) && ar.contains(br.as_str()),
            _ => false,
        }
    }
}

/// A term ready to run: its needles are searched with prepared finders.
enum Matcher<'a> {
    /// A single letter or digit: the row's signature already says whether
    /// its text holds it.
    InSignature,
    Text(Box<Finder<'a>>),
    Digits(Box<(Finder<'a>, Finder<'a>)>),
}

impl Matcher<'_> {
    fn matches(&self, hay: &str, digits: &str) -> bool {
        match self {
            Matcher::InSignature => true,
            Matcher::Text(t) => t.find(hay.as_bytes()).is_some(),
            Matcher::Digits(f) => f.0.find(digits.as_bytes()).is_some() || f.1.find(hay.as_bytes()).is_some(),
        }
    }
}

impl Query {
    pub fn parse(input: &str) -> Self {
        // A query that is all phone characters is one number, however it is
        // spaced: "020 7946 0958" finds +442079460958. Leading zeros (a
        // national trunk prefix or "00") are dropped before matching digits.
        let digits: String = input.chars().filter(char::is_ascii_digit).collect();
        let phone_only = input.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
        if phone_only && digits.len() >= 3 {
            let trimmed = digits.trim_start_matches('0').to_owned();
            return Self { terms: vec![Term::Digits(trimmed, fold(input.trim()))] };
        }
        let terms = input
            .split_whitespace()
            .map(|t| {
                let d: String = t.chars().filter(char::is_ascii_digit).collect();
                let phoney = t.chars().all(|c| c.is_ascii_digit() || "+-().".contains(c));
                if phoney && d.len() >= 3 {
                    Term::Digits(d, fold(t))
                } else {
                    Term::Text(fold(t))
                }
            })
            .collect();
        Self { terms }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether every row matching `self` also matches `wider` (each of its
    /// terms is implied by one of ours): typing more narrows a search.
    pub fn narrows(&self, wider: &Query) -> bool {
        wider.terms.iter().all(|w| self.terms.iter().any(|t| t.implies(w)))
    }

    /// Bits every matching row's [`signature`] has (text terms only: a
    /// phone term may match on digits the text lacks).
    fn signature(&self) -> u64 {
        self.terms.iter().fold(0, |sig, t| match t {
            Term::Text(t) => sig | signature(t),
            Term::Digits(..) => sig,
        })
    }

    fn matchers(&self) -> Vec<Matcher<'_>> {
        self.terms
            .iter()
            .map(|t| match t {
                Term::Text(t) if t.len() == 1 && t.as_bytes()[0].is_ascii_alphanumeric() => Matcher::InSignature,
                Term::Text(t) => Matcher::Text(Box::new(Finder::new(t.as_bytes()))),
                Term::Digits(d, raw) => {
                    Matcher::Digits(Box::new((Finder::new(d.as_bytes()), Finder::new(raw.as_bytes()))))
                }
            })
            .collect()
    }
}

/// Hashes record ids (random or time-ordered UUIDs: already well mixed)
/// without SipHash's cost, which shows when 100,000 rows load at start-up.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

type IdMap = HashMap<RecordId, usize, BuildHasherDefault<IdHasher>>;

/// Results of recent queries, newest first.
const RECENT_QUERIES: usize = 8;

#[derive(Debug)]
struct Recent {
    kind: RecordKind,
    sort: Sort,
    query: Query,
    positions: Vec<u32>,
}

/// Where a row's search text lives in the arena. `UNPREPARED` until the
/// first query of the row's kind.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    hay: u32,
    digits: u32,
}

const UNPREPARED: Span = Span { start: u32::MAX, hay: 0, digits: 0 };

/// The search text of every prepared row, in one buffer: each row's folded
/// haystack followed by its phone digits. Laid out in the order the list
/// shows, so a search over the whole list reads memory front to back.
#[derive(Debug, Default)]
struct Texts {
    arena: String,
    spans: Vec<Span>,
    /// [`signature`] of each haystack.
    sig: Vec<u64>,
    /// Bytes of the arena no row uses any more (edited or removed rows).
    garbage: usize,
    /// Kinds whose rows have their text (computed on the first query of the
    /// kind: the rows of kinds no screen searches cost nothing).
    prepared: Vec<RecordKind>,
    /// The order the arena is laid out in.
    layout: Option<(RecordKind, Sort)>,
}

impl Texts {
    fn hay(&self, p: usize) -> &str {
        let s = self.spans[p];
        &self.arena[s.start as usize..(s.start + s.hay) as usize]
    }

    fn digits(&self, p: usize) -> &str {
        let s = self.spans[p];
        let at = (s.start + s.hay) as usize;
        &self.arena[at..at + s.digits as usize]
    }

    /// Appends the text of `row` (at position `p`) to the arena.
    fn put(&mut self, p: usize, row: &Row) {
        let old = self.spans[p];
        if old.start != u32::MAX {
            self.garbage += (old.hay + old.digits) as usize;
        }
        let start = self.arena.len();
        push_haystack(&mut self.arena, row);
        let hay = self.arena.len() - start;
        push_digits(&mut self.arena, row);
        let digits = self.arena.len() - start - hay;
        self.sig[p] = signature(&self.arena[start..start + hay]);
        self.spans[p] = Span { start: start as u32, hay: hay as u32, digits: digits as u32 };
    }

    /// Copies the text of the rows at `first` (in that order), then of every
    /// other prepared row, into a fresh arena without garbage.
    fn relayout(&mut self, first: &[u32]) {
        let mut arena = String::with_capacity(self.arena.len() - self.garbage);
        let mut spans = vec![UNPREPARED; self.spans.len()];
        let mut copy = |p: usize, arena: &mut String| {
            let s = self.spans[p];
            if s.start == u32::MAX || spans[p].start != u32::MAX {
                return;
            }
            let start = arena.len() as u32;
            arena.push_str(&self.arena[s.start as usize..(s.start + s.hay + s.digits) as usize]);
            spans[p] = Span { start, ..s };
        };
        for &p in first {
            copy(p as usize, &mut arena);
        }
        for p in 0..self.spans.len() {
            copy(p, &mut arena);
        }
        self.arena = arena;
        self.spans = spans;
        self.garbage = 0;
    }
}

/// The sort value of `row` for `key` (text borrowed from the row where it
/// can be), and its name, which breaks ties.
fn sort_key(row: &Row, key: SortKey) -> (SortValue<'_>, Cow<'_, str>) {
    let name: Cow<'_, str> = match row.column("sort_name") {
        "" => Cow::Owned(fold(&row.title)),
        s => Cow::Borrowed(s),
    };
    let primary = match key {
        SortKey::Name => SortValue::Text(name.clone()),
        SortKey::Company => SortValue::Text(match row.column("company") {
            c if c.is_ascii() && !c.bytes().any(|b| b.is_ascii_uppercase()) => Cow::Borrowed(c),
            c => Cow::Owned(fold(c)),
        }),
        SortKey::Email => SortValue::Text(Cow::Borrowed(row.column("email"))),
        SortKey::Updated => SortValue::Number(row.updated_at.as_millis().max(0)),
        SortKey::Column(column) => SortValue::Text(Cow::Owned(fold(row.column(column)))),
    };
    (primary, name)
}

/// A sort value: text, or a number (which is never empty).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue<'a> {
    Number(i64),
    Text(Cow<'a, str>),
}

impl SortValue<'_> {
    fn is_empty(&self) -> bool {
        matches!(self, SortValue::Text(t) if t.is_empty())
    }

    /// The first eight bytes as a number: most comparisons end there.
    fn prefix(&self) -> u64 {
        match self {
            SortValue::Number(n) => (*n as u64) ^ (1 << 63),
            SortValue::Text(t) => {
                let mut word = [0u8; 8];
                let b = t.as_bytes();
                word[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
                u64::from_be_bytes(word)
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct RowIndex {
    rows: Vec<Row>,
    by_id: IdMap,
    texts: RefCell<Texts>,
    orders: RefCell<HashMap<(RecordKind, Sort), Vec<u32>>>,
    recent: RefCell<Vec<Recent>>,
}

impl RowIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_rows(rows: impl IntoIterator<Item = Row>) -> Self {
        let rows = rows.into_iter();
        let mut index = Self::new();
        let (lower, _) = rows.size_hint();
        index.rows.reserve(lower);
        index.by_id.reserve(lower);
        for row in rows {
            index.upsert(row);
        }
        index
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn get(&self, id: RecordId) -> Option<&Row> {
        self.by_id.get(&id).map(|&i| &self.rows[i])
    }

    pub fn row_at(&self, pos: u32) -> &Row {
        &self.rows[pos as usize]
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn upsert(&mut self, row: Row) {
        let texts = self.texts.get_mut();
        let p = match self.by_id.get(&row.id) {
            Some(&p) => {
                // Cached orders stay valid when the row keeps its place in them.
                let old = &self.rows[p];
                self.orders.get_mut().retain(|(kind, sort), _| {
                    let concerned = *kind == old.kind || *kind == row.kind;
                    !concerned
                        || (old.kind == row.kind
                            && old.deleted == row.deleted
                            && sort_key(old, sort.key) == sort_key(&row, sort.key))
                });
                self.rows[p] = row;
                p
            }
            None => {
                let p = self.rows.len();
                self.by_id.insert(row.id, p);
                let kind = row.kind;
                self.orders.get_mut().retain(|(k, _), _| *k != kind);
                self.rows.push(row);
                texts.spans.push(UNPREPARED);
                texts.sig.push(0);
                p
            }
        };
        let row = &self.rows[p];
        if texts.prepared.contains(&row.kind) {
            texts.put(p, row);
            if texts.garbage > texts.arena.len() / 2 {
                texts.relayout(&[]);
                texts.layout = None;
            }
        } else if texts.spans[p].start != u32::MAX {
            texts.garbage += (texts.spans[p].hay + texts.spans[p].digits) as usize;
            texts.spans[p] = UNPREPARED;
        }
        self.recent.get_mut().clear();
    }

    pub fn remove(&mut self, id: RecordId) -> Option<Row> {
        let i = self.by_id.remove(&id)?;
        let row = self.rows.swap_remove(i);
        let texts = self.texts.get_mut();
        let span = texts.spans.swap_remove(i);
        texts.sig.swap_remove(i);
        if span.start != u32::MAX {
            texts.garbage += (span.hay + span.digits) as usize;
        }
        if let Some(moved) = self.rows.get(i) {
            self.by_id.insert(moved.id, i);
        }
        // Positions moved: every cached order and result is stale.
        self.orders.get_mut().clear();
        self.recent.get_mut().clear();
        Some(row)
    }

    /// Positions of the live (not deleted) rows of `kind` matching `query`,
    /// in `sort` order.
    pub fn query(&self, kind: RecordKind, query: &Query, sort: Sort) -> Vec<u32> {
        let mut orders = self.orders.borrow_mut();
        let order = orders.entry((kind, sort)).or_insert_with(|| self.sorted(kind, sort));
        let mut texts = self.texts.borrow_mut();
        if !texts.prepared.contains(&kind) {
            // First query of this kind: its rows' text (laid out in list
            // order by the first search that reads all of it).
            for (p, row) in self.rows.iter().enumerate() {
                if row.kind == kind && !row.deleted {
                    texts.put(p, row);
                }
            }
            texts.prepared.push(kind);
        }
        if query.is_empty() {
            return order.clone();
        }
        let mut recent = self.recent.borrow_mut();
        if let Some(i) = recent.iter().position(|r| r.kind == kind && r.sort == sort && r.query == *query) {
            let hit = recent.remove(i);
            let positions = hit.positions.clone();
            recent.insert(0, hit);
            return positions;
        }
        // The smallest earlier result this query narrows, else the whole list.
        let base = recent
            .iter()
            .filter(|r| r.kind == kind && r.sort == sort && query.narrows(&r.query))
            .min_by_key(|r| r.positions.len())
            .map_or(order.as_slice(), |r| r.positions.as_slice());
        if base.len() == order.len() && texts.layout != Some((kind, sort)) {
            // A pass over the whole list: read the text in list order.
            texts.relayout(order);
            texts.layout = Some((kind, sort));
        }
        let matchers = query.matchers();
        let need = query.signature();
        let positions: Vec<u32> = base
            .iter()
            .copied()
            .filter(|&p| {
                let p = p as usize;
                texts.sig[p] & need == need && {
                    let (hay, digits) = (texts.hay(p), texts.digits(p));
                    matchers.iter().all(|m| m.matches(hay, digits))
                }
            })
            .collect();
        recent.insert(0, Recent { kind, sort, query: query.clone(), positions: positions.clone() });
        recent.truncate(RECENT_QUERIES);
        positions
    }

    fn sorted(&self, kind: RecordKind, sort: Sort) -> Vec<u32> {
        let mut keyed: Vec<(u64, SortValue<'_>, Cow<'_, str>, u32)> = (0..self.rows.len() as u32)
            .filter_map(|p| {
                let r = &self.rows[p as usize];
                if r.kind != kind || r.deleted {
                    return None;
                }
                let (primary, name) = sort_key(r, sort.key);
                Some((primary.prefix(), primary, name, p))
            })
            .collect();
        // Empty values sort last whichever the direction, as users expect.
        keyed.sort_unstable_by(|(ax, a, an, pa), (bx, b, bn, pb)| {
            let empty = a.is_empty().cmp(&b.is_empty());
            let ord = if sort.descending {
                bx.cmp(ax).then_with(|| (b, bn).cmp(&(a, an)))
            } else {
                ax.cmp(bx).then_with(|| (a, an).cmp(&(b, bn)))
            };
            empty.then(ord).then(pa.cmp(pb))
        });
        keyed.into_iter().map(|(_, _, _, p)| p).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn row(n: u8, name: &str, email: &str, phone: &str, company: &str, tags: &[&str]) -> Row {
        let mut columns = std::collections::BTreeMap::new();
        for (k, v) in [("email", email), ("phone", phone), ("company", company)] {
            if !v.is_empty() {
                columns.insert(k.to_owned(), v.to_owned());
            }
        }
        Row {
            id: RecordId::from_bytes([n; 16]),
            kind: RecordKind::Contact,
            title: name.into(),
            subtitle: String::new(),
            columns,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            updated_at: Timestamp::from_millis(i64::from(n)),
            deleted: false,
        }
    }

    fn index() -> RowIndex {
        RowIndex::from_rows([
            row(1, "Ada Lovelace", "ada@engine.org", "+442079460958", "Analytical Engines", &["vip"]),
            row(2, "José Núñez", "jose@example.es", "+34911234567", "Acme", &[]),
            row(3, "Grace Hopper", "grace@navy.mil", "", "", &["navy", "vip"]),
        ])
    }

    fn names(index: &RowIndex, q: &str) -> Vec<String> {
        index
            .query(RecordKind::Contact, &Query::parse(q), Sort::default())
            .into_iter()
            .map(|p| index.row_at(p).title.clone())
            .collect()
    }

    #[test]
    fn search_finds_rows_by_name_email_phone_company_and_tag() {
        let i = index();
        assert_eq!(names(&i, "lovelace"), ["Ada Lovelace"]);
        assert_eq!(names(&i, "NAVY.MIL"), ["Grace Hopper"]);
        assert_eq!(names(&i, "020 7946"), ["Ada Lovelace"]);
        assert_eq!(names(&i, "acme"), ["José Núñez"]);
        assert_eq!(names(&i, "vip"), ["Ada Lovelace", "Grace Hopper"]);
    }

    #[test]
    fn every_term_must_match_and_accents_fold() {
        let i = index();
        assert_eq!(names(&i, "vip grace"), ["Grace Hopper"]);
        assert_eq!(names(&i, "jose nunez"), ["José Núñez"]);
        assert!(names(&i, "ada navy").is_empty());
    }

    #[test]
    fn deleted_rows_and_other_kinds_are_not_listed() {
        let mut i = index();
        let mut r = i.get(RecordId::from_bytes([1; 16])).unwrap().clone();
        r.deleted = true;
        i.upsert(r);
        let mut other = row(9, "A deal", "", "", "", &[]);
        other.kind = RecordKind::Deal;
        i.upsert(other);
        assert_eq!(names(&i, ""), ["Grace Hopper", "José Núñez"]);
    }

    #[test]
    fn sorting_by_company_puts_empty_values_last_in_both_directions() {
        let i = index();
        for descending in [false, true] {
            let order: Vec<_> = i
                .query(RecordKind::Contact, &Query::default(), Sort { key: SortKey::Company, descending })
                .into_iter()
                .map(|p| i.row_at(p).title.clone())
                .collect();
            assert_eq!(order.last().unwrap(), "Grace Hopper");
        }
    }

    #[test]
    fn companies_are_found_by_domain_and_sorted_by_a_column() {
        let company = |n: u8, name: &str, domain: &str, city: &str| {
            let mut r = row(n, name, "", "", "", &[]);
            r.kind = RecordKind::Company;
            for (k, v) in [("domain", domain), ("city", city)] {
                if !v.is_empty() {
                    r.columns.insert(k.into(), v.into());
                }
            }
            r
        };
        let i = RowIndex::from_rows([
            company(1, "Acme", "acme.example", "Zürich"),
            company(2, "Globex", "globex.example", "Aachen"),
            company(3, "Initech", "", ""),
        ]);
        let found: Vec<_> = i
            .query(RecordKind::Company, &Query::parse("globex.ex"), Sort::default())
            .into_iter()
            .map(|p| i.row_at(p).title.clone())
            .collect();
        assert_eq!(found, ["Globex"]);
        for descending in [false, true] {
            let order: Vec<_> = i
                .query(RecordKind::Company, &Query::default(), Sort { key: SortKey::Column("city"), descending })
                .into_iter()
                .map(|p| i.row_at(p).title.clone())
                .collect();
            let expected = if descending { ["Acme", "Globex", "Initech"] } else { ["Globex", "Acme", "Initech"] };
            assert_eq!(order, expected, "empty last, accents folded (descending: {descending})");
        }
    }

    #[test]
    fn removing_a_row_keeps_the_others_findable() {
        let mut i = index();
        i.remove(RecordId::from_bytes([1; 16]));
        assert_eq!(names(&i, ""), ["Grace Hopper", "José Núñez"]);
        assert_eq!(names(&i, "acme"), ["José Núñez"]);
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn typing_narrows_and_backspace_widens_with_the_same_results_as_a_fresh_index() {
        let i = index();
        let typed = [
            "j", "jo", "jos", "jose", "jose ", "jose n", "jos", "", "v", "vi", "vip", "vip g", "vi", "0", "02", "020",
            "020 7", "020", "a", "ad", "a",
        ];
        for q in typed {
            let fresh = index();
            let expected = fresh.query(RecordKind::Contact, &Query::parse(q), Sort::default());
            assert_eq!(i.query(RecordKind::Contact, &Query::parse(q), Sort::default()), expected, "{q:?}");
        }
    }

    #[test]
    fn a_query_narrows_another_only_when_every_row_it_matches_matches_the_other() {
        let q = Query::parse;
        assert!(q("jose").narrows(&q("jos")));
        assert!(q("jose n").narrows(&q("jose")));
        assert!(q("jose n").narrows(&q("n")));
        assert!(!q("jos").narrows(&q("jose")));
        assert!(!q("jose").narrows(&q("jose n")));
        assert!(q("020 79").narrows(&q("020 7")));
        // "07" is text, "077" a phone number (digits or text): not comparable.
        assert!(!q("077").narrows(&q("07")));
        assert!(q("anything").narrows(&q("")));
    }

    #[test]
    fn an_edit_is_seen_by_the_next_query_even_after_cached_results() {
        let mut i = index();
        assert_eq!(names(&i, "gra"), ["Grace Hopper"]);
        let mut r = row(4, "Graham Bell", "", "", "", &[]);
        r.updated_at = crate::Timestamp::from_millis(9);
        i.upsert(r);
        assert_eq!(names(&i, "gra"), ["Grace Hopper", "Graham Bell"]);
        assert_eq!(names(&i, "grah"), ["Graham Bell"]);
    }

    #[test]
    fn folding_matches_the_character_by_character_rule() {
        for s in ["Ada LOVELACE", "José Núñez", "ÅSA Øster", "Straße", "İstanbul", "ΣΟΦΙΑ", ""] {
            let slow: String = s
                .chars()
                .flat_map(char::to_lowercase)
                .map(|c| match c {
                    'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
                    'ç' => 'c',
                    'è' | 'é' | 'ê' | 'ë' => 'e',
                    'ì' | 'í' | 'î' | 'ï' => 'i',
                    'ñ' => 'n',
                    'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
                    'ù' | 'ú' | 'û' | 'ü' => 'u',
                    'ý' | 'ÿ' => 'y',
                    c => c,
                })
                .collect();
            assert_eq!(fold(s), slow, "{s:?}");
        }
    }

    #[test]
    fn sorting_by_every_key_and_direction_is_total_and_stable() {
        let mut rows = Vec::new();
        for n in 0..40u8 {
            let mut r = row(
                n,
                ["Zoë Adams", "adam smith", "Émile Zola", ""][n as usize % 4],
                "",
                "",
                ["Acme", "", "beta"][n as usize % 3],
                &[],
            );
            r.updated_at = crate::Timestamp::from_millis(i64::from(n % 5));
            rows.push(r);
        }
        let i = RowIndex::from_rows(rows);
        for key in SortKey::ALL {
            for descending in [false, true] {
                let sort = Sort { key, descending };
                let order = i.query(RecordKind::Contact, &Query::default(), sort);
                assert_eq!(order.len(), 40);
                let again = RowIndex::from_rows(i.rows().to_vec()).query(RecordKind::Contact, &Query::default(), sort);
                assert_eq!(order, again, "{sort:?}");
            }
        }
        let by_company =
            i.query(RecordKind::Contact, &Query::default(), Sort { key: SortKey::Company, descending: true });
        assert!(i.row_at(*by_company.last().unwrap()).column("company").is_empty());
    }

    #[test]
    fn rows_of_a_kind_no_one_searched_cost_no_search_text() {
        let mut i = index();
        let mut deal = row(9, "Big deal", "", "", "Acme", &[]);
        deal.kind = RecordKind::Deal;
        i.upsert(deal);
        assert_eq!(names(&i, "acme"), ["José Núñez"]);
        assert!(!i.texts.borrow().prepared.contains(&RecordKind::Deal));
        let deals = i.query(RecordKind::Deal, &Query::parse("acme"), Sort::default());
        assert_eq!(deals.len(), 1);
    }

    /// Edits, inserts and removals interleaved with queries give the same
    /// results as an index built from scratch (caches, kept orders and the
    /// text arena never go stale).
    #[test]
    fn random_edits_and_queries_agree_with_a_fresh_index() {
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let names_pool = ["Ada Lovelace", "José Núñez", "Grace Hopper", "Alan Turing", "Zoë Adams", "Ana Ruiz"];
        let companies = ["Acme", "", "Engines", "Navy"];
        let queries = ["a", "ad", "ada", "", "an", "ana r", "0", "020", "020 7", "acme", "e", "en", "zo", "x"];
        let mut index = RowIndex::new();
        for step in 0..600 {
            let id = next(40) as u8;
            match next(10) {
                0 => {
                    index.remove(RecordId::from_bytes([id; 16]));
                }
                1..=5 => {
                    let phone = if next(2) == 0 { "+442079460958" } else { "" };
                    let mut r = row(id, names_pool[next(6) as usize], "", phone, companies[next(4) as usize], &[]);
                    r.deleted = next(8) == 0;
                    r.updated_at = crate::Timestamp::from_millis(next(50) as i64);
                    if next(6) == 0 {
                        r.kind = RecordKind::Deal;
                    }
                    index.upsert(r);
                }
                _ => {
                    let q = Query::parse(queries[next(queries.len() as u64) as usize]);
                    let sort = Sort { key: SortKey::ALL[next(4) as usize], descending: next(2) == 0 };
                    let kind = if next(5) == 0 { RecordKind::Deal } else { RecordKind::Contact };
                    let got: Vec<RecordId> = index.query(kind, &q, sort).iter().map(|&p| index.row_at(p).id).collect();
                    let fresh = RowIndex::from_rows(index.rows().to_vec());
                    let want: Vec<RecordId> = fresh.query(kind, &q, sort).iter().map(|&p| fresh.row_at(p).id).collect();
                    assert_eq!(got, want, "step {step}: {q:?} {sort:?} {kind:?}");
                }
            }
        }
    }
}
