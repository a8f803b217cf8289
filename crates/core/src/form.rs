//! What every record form shares: collecting field errors by key, tags typed
//! as a comma-separated list, an owner or assignee picked from members,
//! dates and times, and custom field values defined in the workspace.
//!
//! Forms validate everything first and write into the record only when all
//! fields are valid, so a refused form changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::ids::{MemberId, RecordId};
use crate::record::RecordKind;
use crate::validate::{self, FieldError};
use crate::workspace::Workspace;

/// The version of a record an edit form was opened on: its epoch
/// ([`crate::privacy::epoch`]) and the document's heads. Saving writes only
/// what the form changed since ([`crate::repo::Repo::save_since`]), and the
/// form can tell what changed elsewhere meanwhile
/// ([`crate::conflict::changed_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub epoch: u64,
    pub heads: Vec<automerge::ChangeHash>,
}

/// Field key (`name`, `emails.0`, `custom.tier`…) → what is wrong.
pub type FormErrors = BTreeMap<String, FieldError>;

/// Collects the errors of one form as its fields are checked.
#[derive(Debug, Default)]
pub struct Checker {
    pub errors: FormErrors,
}

impl Checker {
    /// The value, or the default after recording the error under `key`.
    pub fn check<T: Default>(&mut self, key: &str, result: Result<T, FieldError>) -> T {
        result.unwrap_or_else(|e| {
            self.errors.insert(key.to_owned(), e);
            T::default()
        })
    }

    /// A one-line text of at most [`validate::MAX_SHORT`] characters.
    pub fn short(&mut self, key: &str, input: &str) -> String {
        self.check(key, validate::short_text(input, validate::MAX_SHORT))
    }

    /// A one-line text that must not be empty.
    pub fn required(&mut self, key: &str, input: &str) -> String {
        let value = self.short(key, input);
        if value.is_empty() && !self.errors.contains_key(key) {
            self.errors.insert(key.to_owned(), FieldError::Required);
        }
        value
    }

    /// Free text of at most [`validate::MAX_NOTES`] characters.
    pub fn notes(&mut self, key: &str, input: &str) -> String {
        self.check(key, validate::short_text(input, validate::MAX_NOTES))
    }

    /// Ok with the checked values, or every error found.
    ///
    /// # Errors
    /// The errors recorded.
    pub fn finish(self) -> Result<(), FormErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

/// Tags typed as "a, b, c": trimmed, empty ones dropped, each at most 60
/// characters.
///
/// # Errors
/// [`FieldError::TooLong`] for a tag that is too long.
pub fn tags(input: &str) -> Result<BTreeSet<String>, FieldError> {
    let tags: BTreeSet<String> = input.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
    for t in &tags {
        validate::short_text(t, 60)?;
    }
    Ok(tags)
}

/// The form text of a tag set.
pub fn tags_text(tags: &BTreeSet<String>) -> String {
    tags.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// A member picked in a select: empty for none.
///
/// # Errors
/// [`FieldError::NotAChoice`] when it is not a member id.
pub fn member(input: &str) -> Result<Option<MemberId>, FieldError> {
    match input.trim() {
        "" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| FieldError::NotAChoice { choices: vec!["a member of this workspace".into()] }),
    }
}

/// A record picked in a select: empty for none.
///
/// # Errors
/// [`FieldError::NotAChoice`] when it is not a record id.
pub fn record(input: &str) -> Result<Option<RecordId>, FieldError> {
    match input.trim() {
        "" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| FieldError::NotAChoice { choices: vec!["a record in this workspace".into()] }),
    }
}

/// A date typed or picked as `YYYY-MM-DD`; empty for none.
///
/// # Errors
/// [`FieldError::InvalidDate`].
pub fn date(input: &str) -> Result<Option<NaiveDate>, FieldError> {
    match input.trim() {
        "" => Ok(None),
        s => NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some).map_err(|_| FieldError::InvalidDate),
    }
}

/// A time of day as `HH:MM` (what `<input type=time>` gives); empty for none.
///
/// # Errors
/// [`FieldError::InvalidTime`].
pub fn time(input: &str) -> Result<Option<NaiveTime>, FieldError> {
    match input.trim() {
        "" => Ok(None),
        s => NaiveTime::parse_from_str(s, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
            .map(Some)
            .map_err(|_| FieldError::InvalidTime),
    }
}

/// A local date and time as `<input type=datetime-local>` gives it
/// (`YYYY-MM-DDTHH:MM`, seconds optional); empty for none.
///
/// # Errors
/// [`FieldError::Invalid`] saying what to enter.
pub fn date_time(input: &str) -> Result<Option<NaiveDateTime>, FieldError> {
    match input.trim() {
        "" => Ok(None),
        s => ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .map(Some)
            .ok_or_else(|| FieldError::Invalid("Enter a date and time like 2026-03-01 14:30".into())),
    }
}

/// A whole number within `range` typed by the user; empty for none.
///
/// # Errors
/// [`FieldError::OutOfRange`] or [`FieldError::InvalidNumber`].
pub fn whole_number(input: &str, min: i64, max: i64) -> Result<Option<i64>, FieldError> {
    match input.trim() {
        "" => Ok(None),
        s => {
            let n: i64 = s.parse().map_err(|_| FieldError::InvalidNumber)?;
            if (min..=max).contains(&n) {
                Ok(Some(n))
            } else {
                Err(FieldError::OutOfRange { min, max })
            }
        }
    }
}

/// Validates the custom values typed for a record of `kind`; values of
/// fields the workspace no longer defines are kept from `existing`.
pub fn custom_values(
    checker: &mut Checker,
    ws: &Workspace,
    kind: RecordKind,
    typed: &BTreeMap<String, String>,
    existing: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut custom = BTreeMap::new();
    for (field, def) in ws.fields_for(kind) {
        let input = typed.get(field).map(String::as_str).unwrap_or("");
        if let Some(v) = checker.check(&format!("custom.{field}"), validate::custom_value(&def.kind, input)) {
            custom.insert(field.clone(), v);
        }
    }
    for (k, v) in existing {
        if !ws.custom_fields.contains_key(k) {
            custom.insert(k.clone(), v.clone());
        }
    }
    custom
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_split_trimmed_and_deduplicated() {
        let t = tags(" vip, , key account,vip ").unwrap();
        assert_eq!(t.into_iter().collect::<Vec<_>>(), ["key account", "vip"]);
        assert!(tags(&"x".repeat(61)).is_err());
    }

    #[test]
    fn dates_times_and_numbers_are_checked() {
        assert_eq!(date("2026-02-28").unwrap(), NaiveDate::from_ymd_opt(2026, 2, 28));
        assert_eq!(date("2026-02-30"), Err(FieldError::InvalidDate));
        assert_eq!(date(" "), Ok(None));
        assert_eq!(time("09:30").unwrap(), NaiveTime::from_hms_opt(9, 30, 0));
        assert_eq!(time("25:00"), Err(FieldError::InvalidTime));
        assert_eq!(whole_number("75", 0, 100), Ok(Some(75)));
        assert_eq!(whole_number("101", 0, 100), Err(FieldError::OutOfRange { min: 0, max: 100 }));
        assert_eq!(whole_number("x", 0, 100), Err(FieldError::InvalidNumber));
    }

    #[test]
    fn date_times_come_as_the_browser_gives_them() {
        let expected = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap().and_hms_opt(14, 30, 0);
        assert_eq!(date_time("2026-03-01T14:30").unwrap(), expected);
        assert_eq!(date_time("2026-03-01T14:30:00").unwrap(), expected);
        assert_eq!(date_time(" 2026-03-01 14:30 ").unwrap(), expected);
        assert_eq!(date_time(""), Ok(None));
        assert!(date_time("2026-02-30T10:00").is_err());
        assert!(date_time("tomorrow").is_err());
    }

    #[test]
    fn a_checker_collects_every_error() {
        let mut c = Checker::default();
        assert_eq!(c.required("name", "  "), "");
        assert_eq!(c.short("title", "ok"), "ok");
        let _ = c.check("due", date("soon"));
        let errors = c.finish().unwrap_err();
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["due", "name"]);
    }
}
