//! The in-memory row index behind lists and search: every materialised row
//! with a pre-normalised search text, a cached sort order per sort key, and
//! queries that filter that order (so a keystroke costs one pass over
//! pre-lowered strings, never a sort or a document load).

use std::cell::RefCell;
use std::collections::HashMap;

use crate::ids::RecordId;
use crate::record::{RecordKind, Row};

/// List orders users can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Name,
    Company,
    Email,
    Updated,
}

impl SortKey {
    pub const ALL: [SortKey; 4] = [SortKey::Name, SortKey::Company, SortKey::Email, SortKey::Updated];

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "Name",
            SortKey::Company => "Company",
            SortKey::Email => "Email",
            SortKey::Updated => "Last updated",
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

/// Lower-cased text searched for a row: name, emails, phones, company,
/// title and tags.
fn haystack(row: &Row) -> String {
    let mut s = String::with_capacity(96);
    for part in [&row.title, &row.subtitle] {
        s.push_str(part);
        s.push(' ');
    }
    for col in ["email", "other_emails", "phone", "other_phones", "company"] {
        s.push_str(row.column(col));
        s.push(' ');
    }
    for t in &row.tags {
        s.push_str(t);
        s.push(' ');
    }
    fold(&s)
}

/// Lower-cases and strips common accents so "jose" finds "José".
pub fn fold(s: &str) -> String {
    s.chars()
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
        .collect()
}

fn digits(row: &Row) -> String {
    [row.column("phone"), row.column("other_phones")]
        .iter()
        .flat_map(|p| p.chars().chain(std::iter::once(' ')))
        .filter(|c| c.is_ascii_digit() || *c == ' ')
        .collect()
}

/// A parsed query: every term must match.
#[derive(Debug, Clone, Default)]
pub struct Query {
    terms: Vec<Term>,
}

#[derive(Debug, Clone)]
enum Term {
    Text(String),
    /// Looks like a phone number: matched on digits only.
    Digits(String, String),
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

    fn matches(&self, hay: &str, digits: &str) -> bool {
        self.terms.iter().all(|t| match t {
            Term::Text(t) => hay.contains(t.as_str()),
            Term::Digits(d, raw) => digits.contains(d.as_str()) || hay.contains(raw.as_str()),
        })
    }
}

#[derive(Debug, Default)]
pub struct RowIndex {
    rows: Vec<Row>,
    hay: Vec<String>,
    digits: Vec<String>,
    by_id: HashMap<RecordId, usize>,
    orders: RefCell<HashMap<(RecordKind, Sort), Vec<u32>>>,
}

impl RowIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_rows(rows: impl IntoIterator<Item = Row>) -> Self {
        let mut index = Self::new();
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
        let (hay, digits) = (haystack(&row), digits(&row));
        match self.by_id.get(&row.id) {
            Some(&i) => {
                self.rows[i] = row;
                self.hay[i] = hay;
                self.digits[i] = digits;
            }
            None => {
                self.by_id.insert(row.id, self.rows.len());
                self.rows.push(row);
                self.hay.push(hay);
                self.digits.push(digits);
            }
        }
        self.orders.borrow_mut().clear();
    }

    pub fn remove(&mut self, id: RecordId) -> Option<Row> {
        let i = self.by_id.remove(&id)?;
        let row = self.rows.swap_remove(i);
        self.hay.swap_remove(i);
        self.digits.swap_remove(i);
        if let Some(moved) = self.rows.get(i) {
            self.by_id.insert(moved.id, i);
        }
        self.orders.borrow_mut().clear();
        Some(row)
    }

    /// Positions of the live (not deleted) rows of `kind` matching `query`,
    /// in `sort` order.
    pub fn query(&self, kind: RecordKind, query: &Query, sort: Sort) -> Vec<u32> {
        let mut orders = self.orders.borrow_mut();
        let order = orders.entry((kind, sort)).or_insert_with(|| self.sorted(kind, sort));
        if query.is_empty() {
            return order.clone();
        }
        order.iter().copied().filter(|&p| query.matches(&self.hay[p as usize], &self.digits[p as usize])).collect()
    }

    fn sorted(&self, kind: RecordKind, sort: Sort) -> Vec<u32> {
        let mut positions: Vec<u32> = (0..self.rows.len() as u32)
            .filter(|&p| {
                let r = &self.rows[p as usize];
                r.kind == kind && !r.deleted
            })
            .collect();
        let key = |p: &u32| -> (String, String) {
            let r = &self.rows[*p as usize];
            let name = match r.column("sort_name") {
                "" => fold(&r.title),
                s => s.to_owned(),
            };
            let primary = match sort.key {
                SortKey::Name => name.clone(),
                SortKey::Company => fold(r.column("company")),
                SortKey::Email => r.column("email").to_owned(),
                SortKey::Updated => format!("{:020}", r.updated_at.as_millis().max(0)),
            };
            (primary, name)
        };
        let mut keyed: Vec<((String, String), u32)> = positions.iter().map(|p| (key(p), *p)).collect();
        // Empty values sort last whichever the direction, as users expect.
        keyed.sort_by(|(a, pa), (b, pb)| {
            let empty = a.0.is_empty().cmp(&b.0.is_empty());
            let ord = if sort.descending { b.cmp(a) } else { a.cmp(b) };
            empty.then(ord).then(pa.cmp(pb))
        });
        positions.clear();
        positions.extend(keyed.into_iter().map(|(_, p)| p));
        positions
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
    fn removing_a_row_keeps_the_others_findable() {
        let mut i = index();
        i.remove(RecordId::from_bytes([1; 16]));
        assert_eq!(names(&i, ""), ["Grace Hopper", "José Núñez"]);
        assert_eq!(names(&i, "acme"), ["José Núñez"]);
        assert_eq!(i.len(), 2);
    }
}
