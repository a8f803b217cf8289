//! Field validation for forms and imports, with messages written for users.
//!
//! This module owns the rules for what a field may hold and its normal form:
//! email addresses, phone numbers (normalised to E.164), short and long text,
//! required fields, and the values of custom fields ([`CustomFieldKind`]).
//! Each validator takes what the user typed and returns either the value to
//! store or a [`FieldError`] whose `Display` is the message shown next to the
//! field. Validators never panic, whatever the input.
//!
//! ```
//! use rapport_core::validate::{self, FieldError};
//!
//! assert_eq!(validate::phone("020 7946 0958", Some("44")).unwrap(), "+442079460958");
//! assert_eq!(validate::email(" Ada@Example.COM ").unwrap(), "Ada@example.com");
//! let err = validate::email("ada@").unwrap_err();
//! assert_eq!(err, FieldError::InvalidEmail);
//! assert_eq!(err.to_string(), "Enter an email address like name@example.com");
//! ```

use std::fmt;

use email_address::{EmailAddress, Options};
use serde::{Deserialize, Serialize};

/// Why a field's value was refused. `Display` is the message for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("Required")]
    Required,
    #[error("Enter an email address like name@example.com")]
    InvalidEmail,
    /// The reason says what is wrong with the number.
    #[error("Enter a phone number with its country code, like +44 20 7946 0958 ({0})")]
    InvalidPhone(&'static str),
    #[error("Use at most {max} characters")]
    TooLong { max: usize },
    #[error("Enter a number")]
    InvalidNumber,
    #[error("Enter a date as YYYY-MM-DD")]
    InvalidDate,
    #[error("Enter a time as HH:MM")]
    InvalidTime,
    #[error("Enter a whole number from {min} to {max}")]
    OutOfRange { min: i64, max: i64 },
    /// A rule of the record itself (an amount, a currency, a stage), in words.
    #[error("{0}")]
    Invalid(String),
    #[error("Choose one of: {}", choices.join(", "))]
    NotAChoice { choices: Vec<String> },
}

/// Longest value of a one-line field (names, titles, custom text).
pub const MAX_SHORT: usize = 200;
/// Longest value of free-text notes.
pub const MAX_NOTES: usize = 20_000;
/// Longest email address that can be delivered (RFC 5321 path limit).
const MAX_EMAIL: usize = 254;

/// Checks an email address and returns it trimmed, with its domain in lower
/// case (the local part is kept as typed: some servers treat it as case
/// sensitive). Display names (`Ada <ada@example.com>`), IP-address domains and
/// domains without a dot are refused.
///
/// # Errors
/// [`FieldError::Required`] when empty, [`FieldError::InvalidEmail`] otherwise.
pub fn email(input: &str) -> Result<String, FieldError> {
    let input = required(input)?;
    if input.len() > MAX_EMAIL {
        return Err(FieldError::InvalidEmail);
    }
    let options = Options::default().without_display_text().without_domain_literal().with_required_tld();
    let parsed = EmailAddress::parse_with_options(&input, options).map_err(|_| FieldError::InvalidEmail)?;
    Ok(format!("{}@{}", parsed.local_part(), parsed.domain().to_lowercase()))
}

/// Reasons given with [`FieldError::InvalidPhone`].
mod phone_reason {
    pub const EXTENSION: &str = "extensions are not supported; put the extension in a note";
    pub const LETTERS: &str = "letters are not allowed";
    pub const CHARACTERS: &str = "use only digits, spaces, dashes, dots and brackets";
    pub const PLUS: &str = "a + can only come first";
    pub const NO_CODE: &str = "it has no country code and no default country code is set";
    pub const TOO_SHORT: &str = "too few digits";
    pub const TOO_LONG: &str = "too many digits";
    pub const ZERO: &str = "a country code never starts with 0";
}

/// Normalises a phone number to E.164 (`+442079460958`).
///
/// Spaces, dashes, dots, slashes and brackets are dropped, as is a `(0)`
/// trunk prefix written after an international code (`+44 (0)20…`). A
/// leading `00` becomes `+`. A number without `+` or `00` is national: it
/// gets `default_calling_code` (digits, e.g. `"44"`; a leading `+` is
/// accepted) with its single trunk `0` dropped. The result is `+` and 8 to
/// 15 digits, the first not 0.
///
/// # Errors
/// [`FieldError::Required`] when empty; [`FieldError::InvalidPhone`] with the
/// reason otherwise (letters, an extension, a missing country code, too few
/// or too many digits…).
pub fn phone(input: &str, default_calling_code: Option<&str>) -> Result<String, FieldError> {
    let input = required(input)?;
    if has_extension(&input) {
        return Err(FieldError::InvalidPhone(phone_reason::EXTENSION));
    }
    if input.chars().any(char::is_alphabetic) {
        return Err(FieldError::InvalidPhone(phone_reason::LETTERS));
    }
    let international = input.starts_with('+') || input.starts_with("00");
    let input = if international { input.replacen("(0)", "", 1) } else { input };
    let mut compact = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '0'..='9' | '+' => compact.push(c),
            c if is_separator(c) => {}
            _ => return Err(FieldError::InvalidPhone(phone_reason::CHARACTERS)),
        }
    }
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest.to_owned()
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest.to_owned()
    } else {
        let code = default_calling_code
            .map(|c| c.trim().trim_start_matches('+'))
            .filter(|c| (1..=3).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()) && !c.starts_with('0'))
            .ok_or(FieldError::InvalidPhone(phone_reason::NO_CODE))?;
        let national = compact.strip_prefix('0').unwrap_or(&compact);
        format!("{code}{national}")
    };
    if digits.contains('+') {
        return Err(FieldError::InvalidPhone(phone_reason::PLUS));
    }
    if digits.starts_with('0') {
        return Err(FieldError::InvalidPhone(phone_reason::ZERO));
    }
    match digits.len() {
        0..=7 => Err(FieldError::InvalidPhone(phone_reason::TOO_SHORT)),
        8..=15 => Ok(format!("+{digits}")),
        _ => Err(FieldError::InvalidPhone(phone_reason::TOO_LONG)),
    }
}

/// Characters people put between the digits of a phone number.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '.' | '/' | '(' | ')' | '\u{2010}'..='\u{2015}' | '\u{2212}')
}

/// Whether a number ends in an extension: digits, then `ext`, `x`, `#` or
/// `;ext=`, then the extension's digits.
fn has_extension(input: &str) -> bool {
    let lower = input.to_lowercase();
    ["extension", "ext", "x", "#"].iter().any(|marker| {
        lower.match_indices(marker).any(|(at, m)| {
            let before = &lower[..at];
            let after = lower[at + m.len()..]
                .trim_start_matches(|c: char| c == '.' || c == '=' || c == ':' || c.is_whitespace());
            before.chars().any(|c| c.is_ascii_digit())
                && !after.is_empty()
                && after.chars().all(|c| c.is_ascii_digit() || c.is_whitespace())
        })
    })
}

/// Groups an E.164 number for display: the country code, then the national
/// number in groups of three with the last four digits together
/// (`+1 202 555 0123`, `+44 207 946 0958`). Anything that is not E.164 is
/// returned as it is.
pub fn format_phone(e164: &str) -> String {
    let Some(digits) = e164.strip_prefix('+') else {
        return e164.to_owned();
    };
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return e164.to_owned();
    }
    let (code, national) = digits.split_at(calling_code_len(digits));
    let mut groups = Vec::new();
    let mut rest = national;
    if rest.len() > 4 {
        let (head, last) = rest.split_at(rest.len() - 4);
        groups.push(last);
        rest = head;
        while rest.len() > 3 {
            let (head, group) = rest.split_at(rest.len() - 3);
            groups.push(group);
            rest = head;
        }
    }
    if !rest.is_empty() {
        groups.push(rest);
    }
    groups.reverse();
    format!("+{code} {}", groups.join(" "))
}

/// Length of the ITU country calling code at the start of `digits`:
/// zone 1 (North America) and 7 (Russia, Kazakhstan) use one digit; the
/// two-digit codes are listed; every other code has three digits.
fn calling_code_len(digits: &str) -> usize {
    const TWO_DIGITS: &[&str] = &[
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
        "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84",
        "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if TWO_DIGITS.iter().any(|code| digits.starts_with(code)) {
        2
    } else {
        3
    }
}

/// A one-line or free text, trimmed, of at most `max` characters (not bytes).
/// Empty is allowed.
///
/// # Errors
/// [`FieldError::TooLong`] when longer than `max` characters.
pub fn short_text(input: &str, max: usize) -> Result<String, FieldError> {
    let input = input.trim();
    if input.chars().count() > max {
        return Err(FieldError::TooLong { max });
    }
    Ok(input.to_owned())
}

/// A value that must not be empty, trimmed.
///
/// # Errors
/// [`FieldError::Required`] when empty or only whitespace.
pub fn required(input: &str) -> Result<String, FieldError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(FieldError::Required);
    }
    Ok(input.to_owned())
}

/// The type of a custom field, defined in the workspace. Serialized with a
/// `type` tag: `{"type":"text"}`, `{"type":"choice","options":["Gold","Silver"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "options", rename_all = "snake_case")]
pub enum CustomFieldKind {
    Text,
    Number,
    Date,
    /// One of a fixed list of options.
    Choice(Vec<String>),
}

impl CustomFieldKind {
    /// Words for the UI.
    pub fn label(&self) -> &'static str {
        match self {
            CustomFieldKind::Text => "Text",
            CustomFieldKind::Number => "Number",
            CustomFieldKind::Date => "Date",
            CustomFieldKind::Choice(_) => "Choice",
        }
    }
}

impl fmt::Display for CustomFieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Checks a custom field's value and returns its stored form: `None` when
/// empty; text trimmed (at most [`MAX_SHORT`] characters); a number in a
/// normal form (`1.50` → `1.5`, `-0` → `0`, exponent form beyond 10^15 or
/// below 10^-6); a date as `YYYY-MM-DD`; a choice as the option's own
/// spelling (matched ignoring case).
///
/// # Errors
/// [`FieldError::TooLong`], [`FieldError::InvalidNumber`],
/// [`FieldError::InvalidDate`] or [`FieldError::NotAChoice`].
pub fn custom_value(kind: &CustomFieldKind, input: &str) -> Result<Option<String>, FieldError> {
    let input = input.trim();
    if input.is_empty() {
        return Ok(None);
    }
    let value = match kind {
        CustomFieldKind::Text => short_text(input, MAX_SHORT)?,
        CustomFieldKind::Number => number(input)?,
        CustomFieldKind::Date => date(input)?,
        CustomFieldKind::Choice(options) => options
            .iter()
            .find(|o| o.as_str() == input)
            .or_else(|| {
                let wanted = input.to_lowercase();
                options.iter().find(|o| o.trim().to_lowercase() == wanted)
            })
            .cloned()
            .ok_or_else(|| FieldError::NotAChoice { choices: options.clone() })?,
    };
    Ok(Some(value))
}

fn number(input: &str) -> Result<String, FieldError> {
    // `parse` also reads "inf" and "NaN" (refused: only finite numbers are
    // kept) and exponents like "1e5". Thousands separators ("1,000") are
    // refused rather than guessed, since a comma is a decimal mark in many
    // countries.
    let value: f64 = input.parse().map_err(|_| FieldError::InvalidNumber)?;
    if !value.is_finite() {
        return Err(FieldError::InvalidNumber);
    }
    let value = if value == 0.0 { 0.0 } else { value };
    let magnitude = value.abs();
    Ok(if magnitude != 0.0 && !(1e-6..1e15).contains(&magnitude) { format!("{value:e}") } else { value.to_string() })
}

fn date(input: &str) -> Result<String, FieldError> {
    let shaped = input.len() == 10
        && input.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(FieldError::InvalidDate);
    }
    let date = chrono::NaiveDate::parse_from_str(input, "%Y-%m-%d").map_err(|_| FieldError::InvalidDate)?;
    Ok(date.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_read_as_instructions_for_the_user() {
        let cases = [
            (FieldError::Required, "Required"),
            (FieldError::InvalidEmail, "Enter an email address like name@example.com"),
            (
                FieldError::InvalidPhone(phone_reason::TOO_SHORT),
                "Enter a phone number with its country code, like +44 20 7946 0958 (too few digits)",
            ),
            (FieldError::TooLong { max: 200 }, "Use at most 200 characters"),
            (FieldError::InvalidNumber, "Enter a number"),
            (FieldError::InvalidDate, "Enter a date as YYYY-MM-DD"),
            (FieldError::NotAChoice { choices: vec!["a".into(), "b".into()] }, "Choose one of: a, b"),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn valid_email_addresses_are_trimmed_with_the_domain_in_lower_case() {
        let cases = [
            ("ada@example.com", "ada@example.com"),
            ("  ada@example.com\t", "ada@example.com"),
            ("Ada.Lovelace@Example.CO.UK", "Ada.Lovelace@example.co.uk"),
            ("first+tag@sub.example.org", "first+tag@sub.example.org"),
            ("o'brien@example.ie", "o'brien@example.ie"),
            ("\"quoted local\"@example.com", "\"quoted local\"@example.com"),
            ("josé@exämple.com", "josé@exämple.com"),
            ("user@EXÄMPLE.com", "user@exämple.com"),
        ];
        for (input, expected) in cases {
            assert_eq!(email(input).as_deref(), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn invalid_email_addresses_are_refused() {
        let cases = [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada example@example.com",
            "ada@exa mple.com",
            "Ada <ada@example.com>",
            "<ada@example.com>",
            "ada@[127.0.0.1]",
            "ada@example..com",
            ".ada@example.com",
            "ada.@example.com",
        ];
        for input in cases {
            assert_eq!(email(input), Err(FieldError::InvalidEmail), "{input:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(email(&long), Err(FieldError::InvalidEmail));
    }

    #[test]
    fn an_empty_email_is_required() {
        assert_eq!(email(""), Err(FieldError::Required));
        assert_eq!(email("   "), Err(FieldError::Required));
    }

    #[test]
    fn phone_numbers_are_normalised_to_e164() {
        let uk = Some("44");
        let cases = [
            ("+44 20 7946 0958", uk, "+442079460958"),
            ("+44 (0)20 7946 0958", uk, "+442079460958"),
            ("+44(0)20-7946-0958", None, "+442079460958"),
            ("0044 20 7946 0958", None, "+442079460958"),
            ("020 7946 0958", uk, "+442079460958"),
            ("(020) 7946.0958", uk, "+442079460958"),
            ("2079460958", uk, "+442079460958"),
            ("020 7946 0958", Some("+44"), "+442079460958"),
            ("020 7946 0958", Some(" 44 "), "+442079460958"),
            ("(202) 555-0123", Some("1"), "+12025550123"),
            ("+1 202-555-0123", uk, "+12025550123"),
            ("+1\u{a0}202\u{2013}555\u{2013}0123", None, "+12025550123"),
            ("030/1234567", Some("49"), "+49301234567"),
            ("06 12 34 56 78", Some("33"), "+33612345678"),
            ("+353 1 234 5678", uk, "+35312345678"),
            ("+1 234 5678", None, "+12345678"),
            ("+123456789012345", None, "+123456789012345"),
        ];
        for (input, code, expected) in cases {
            assert_eq!(phone(input, code).as_deref(), Ok(expected), "{input:?} with {code:?}");
        }
    }

    #[test]
    fn invalid_phone_numbers_are_refused_with_a_reason() {
        use phone_reason::*;
        let uk = Some("44");
        let cases = [
            ("+44 20 7946 0958 ext 12", uk, EXTENSION),
            ("+44 20 7946 0958 ext. 12", uk, EXTENSION),
            ("+44 20 7946 0958 x12", uk, EXTENSION),
            ("020 7946 0958 X 12", uk, EXTENSION),
            ("+44 20 7946 0958 #12", uk, EXTENSION),
            ("+442079460958;ext=12", uk, EXTENSION),
            ("+44 20 7946 0958 extension 12", uk, EXTENSION),
            ("call me", uk, LETTERS),
            ("+44 20 FLOWERS", uk, LETTERS),
            ("0800 ABC DEF", uk, LETTERS),
            ("+44 20 7946 0958, +44 20 7946 0959", uk, CHARACTERS),
            ("+44_20_7946_0958", uk, CHARACTERS),
            ("+44 20 ٧٩٤٦ 0958", uk, CHARACTERS),
            ("44+20 7946 0958", uk, PLUS),
            ("++44 20 7946 0958", uk, PLUS),
            ("020 7946 0958", None, NO_CODE),
            ("020 7946 0958", Some(""), NO_CODE),
            ("020 7946 0958", Some("abc"), NO_CODE),
            ("020 7946 0958", Some("0044"), NO_CODE),
            ("+44 123", None, TOO_SHORT),
            ("+1234567", None, TOO_SHORT),
            ("123", uk, TOO_SHORT),
            ("+1234567890123456", None, TOO_LONG),
            ("+0 20 7946 0958", None, ZERO),
            ("000 20 7946 0958", None, ZERO),
            ("+", None, TOO_SHORT),
            ("-", uk, TOO_SHORT),
        ];
        for (input, code, reason) in cases {
            assert_eq!(phone(input, code), Err(FieldError::InvalidPhone(reason)), "{input:?} with {code:?}");
        }
    }

    #[test]
    fn an_empty_phone_number_is_required() {
        assert_eq!(phone("", Some("44")), Err(FieldError::Required));
        assert_eq!(phone(" \t ", None), Err(FieldError::Required));
    }

    #[test]
    fn phone_numbers_are_grouped_for_display_after_their_country_code() {
        let cases = [
            ("+442079460958", "+44 207 946 0958"),
            ("+12025550123", "+1 202 555 0123"),
            ("+35312345678", "+353 1 234 5678"),
            ("+12345678", "+1 234 5678"),
            ("+33612345678", "+33 61 234 5678"),
            ("+74951234567", "+7 495 123 4567"),
            ("+123456789012345", "+1 2 345 678 901 2345"),
            ("not a number", "not a number"),
            ("+0123456789", "+0123456789"),
            ("+12", "+12"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(format_phone(input), expected, "{input:?}");
        }
    }

    #[test]
    fn short_text_is_trimmed_and_limited_in_characters_not_bytes() {
        assert_eq!(short_text("  Ada  ", 10).as_deref(), Ok("Ada"));
        assert_eq!(short_text("", 10).as_deref(), Ok(""));
        assert_eq!(short_text("ééééé", 5).as_deref(), Ok("ééééé"));
        assert_eq!(short_text("éééééé", 5), Err(FieldError::TooLong { max: 5 }));
        assert_eq!(short_text(&"a".repeat(MAX_SHORT), MAX_SHORT).map(|s| s.len()), Ok(MAX_SHORT));
        assert_eq!(short_text(&"a".repeat(MAX_NOTES + 1), MAX_NOTES), Err(FieldError::TooLong { max: MAX_NOTES }));
    }

    #[test]
    fn required_refuses_empty_and_whitespace_and_trims_the_rest() {
        assert_eq!(required(""), Err(FieldError::Required));
        assert_eq!(required(" \n\t"), Err(FieldError::Required));
        assert_eq!(required(" Ada ").as_deref(), Ok("Ada"));
    }

    #[test]
    fn an_empty_custom_value_is_none_for_every_kind() {
        let kinds = [
            CustomFieldKind::Text,
            CustomFieldKind::Number,
            CustomFieldKind::Date,
            CustomFieldKind::Choice(vec!["Gold".into()]),
        ];
        for kind in &kinds {
            assert_eq!(custom_value(kind, ""), Ok(None), "{kind}");
            assert_eq!(custom_value(kind, "   "), Ok(None), "{kind}");
        }
    }

    #[test]
    fn custom_numbers_are_kept_in_a_normal_form() {
        let cases = [
            ("42", "42"),
            (" 1.50 ", "1.5"),
            ("-3", "-3"),
            ("+7", "7"),
            ("-0", "0"),
            ("0.000", "0"),
            (".5", "0.5"),
            ("1e3", "1000"),
            ("123456789012345", "123456789012345"),
            ("1e15", "1e15"),
            ("1e300", "1e300"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("-2.5e-9", "-2.5e-9"),
        ];
        for (input, expected) in cases {
            assert_eq!(custom_value(&CustomFieldKind::Number, input), Ok(Some(expected.into())), "{input:?}");
        }
        for input in ["abc", "1,000", "1 000", "12abc", "inf", "-infinity", "NaN", "1e400", "0x10", "--1"] {
            assert_eq!(custom_value(&CustomFieldKind::Number, input), Err(FieldError::InvalidNumber), "{input:?}");
        }
    }

    #[test]
    fn custom_numbers_read_back_as_the_same_value() {
        for input in ["0.1", "1e-7", "123.456", "-1e20", "9007199254740993"] {
            let stored = custom_value(&CustomFieldKind::Number, input).unwrap().unwrap();
            assert_eq!(stored.parse::<f64>().unwrap(), input.parse::<f64>().unwrap());
            assert_eq!(custom_value(&CustomFieldKind::Number, &stored), Ok(Some(stored.clone())));
        }
    }

    #[test]
    fn custom_dates_must_be_real_days_written_as_yyyy_mm_dd() {
        assert_eq!(custom_value(&CustomFieldKind::Date, " 2024-02-29 "), Ok(Some("2024-02-29".into())));
        assert_eq!(custom_value(&CustomFieldKind::Date, "1999-12-31"), Ok(Some("1999-12-31".into())));
        for input in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-01-32",
            "2024-1-5",
            "24-01-05",
            "05/01/2024",
            "2024/01/05",
            "2024-01-05T10:00",
            "tomorrow",
            "+2024-01-05",
            "2024-01-0５",
        ] {
            assert_eq!(custom_value(&CustomFieldKind::Date, input), Err(FieldError::InvalidDate), "{input:?}");
        }
    }

    #[test]
    fn custom_choices_must_match_an_option_and_keep_its_spelling() {
        let kind = CustomFieldKind::Choice(vec!["Gold".into(), "Silver".into(), "Ünter".into()]);
        assert_eq!(custom_value(&kind, "Gold"), Ok(Some("Gold".into())));
        assert_eq!(custom_value(&kind, " silver "), Ok(Some("Silver".into())));
        assert_eq!(custom_value(&kind, "ÜNTER"), Ok(Some("Ünter".into())));
        let err = custom_value(&kind, "Bronze").unwrap_err();
        assert_eq!(err.to_string(), "Choose one of: Gold, Silver, Ünter");
        let empty = CustomFieldKind::Choice(vec![]);
        assert_eq!(custom_value(&empty, "x"), Err(FieldError::NotAChoice { choices: vec![] }));
    }

    #[test]
    fn custom_text_is_trimmed_and_limited() {
        assert_eq!(custom_value(&CustomFieldKind::Text, "  VIP "), Ok(Some("VIP".into())));
        assert_eq!(
            custom_value(&CustomFieldKind::Text, &"a".repeat(MAX_SHORT + 1)),
            Err(FieldError::TooLong { max: MAX_SHORT })
        );
    }

    #[test]
    fn custom_field_kinds_serialize_with_a_type_tag_and_have_labels() {
        let cases = [
            (CustomFieldKind::Text, r#"{"type":"text"}"#, "Text"),
            (CustomFieldKind::Number, r#"{"type":"number"}"#, "Number"),
            (CustomFieldKind::Date, r#"{"type":"date"}"#, "Date"),
            (
                CustomFieldKind::Choice(vec!["Gold".into(), "Silver".into()]),
                r#"{"type":"choice","options":["Gold","Silver"]}"#,
                "Choice",
            ),
        ];
        for (kind, json, label) in cases {
            assert_eq!(serde_json::to_string(&kind).unwrap(), json);
            assert_eq!(serde_json::from_str::<CustomFieldKind>(json).unwrap(), kind);
            assert_eq!(kind.label(), label);
        }
        assert!(serde_json::from_str::<CustomFieldKind>(r#"{"type":"colour"}"#).is_err());
    }

    fn phone_like() -> impl Strategy<Value = String> {
        prop_oneof!["[+0-9 ()./x#-]{0,30}", "(\\+|00)?[0-9]{0,3}[ -]?(\\(0\\))?[0-9 .-]{0,20}", any::<String>(),]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn phone_never_panics_and_only_returns_e164(
            input in phone_like(),
            code in proptest::option::of("\\+?[0-9]{0,4}|.{0,4}"),
        ) {
            if let Ok(number) = phone(&input, code.as_deref()) {
                let digits = number.strip_prefix('+').unwrap();
                prop_assert!((8..=15).contains(&digits.len()), "{number}");
                prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{number}");
                prop_assert!(!digits.starts_with('0'), "{number}");
                // Normalising is idempotent, and display grouping keeps the digits.
                prop_assert_eq!(phone(&number, None), Ok(number.clone()));
                let shown = format_phone(&number);
                prop_assert_eq!(shown.replace(' ', ""), number.clone());
                prop_assert_eq!(phone(&shown, None), Ok(number));
            }
        }

        #[test]
        fn email_never_panics_and_is_idempotent(
            input in prop_oneof![
                "[a-zA-Z0-9.+_\"@ <>\\[\\]-]{0,40}",
                "[a-zA-Z0-9._%+-]{1,20}@[a-zA-Z0-9-]{1,10}(\\.[a-zA-Z]{2,5}){1,2}",
                any::<String>(),
            ]
        ) {
            if let Ok(address) = email(&input) {
                prop_assert_eq!(email(&address), Ok(address.clone()));
                prop_assert!(address.contains('@'));
            }
        }

        #[test]
        fn custom_values_never_panic_and_are_stable(input in any::<String>(), kind in 0..4usize) {
            let kind = [
                CustomFieldKind::Text,
                CustomFieldKind::Number,
                CustomFieldKind::Date,
                CustomFieldKind::Choice(vec!["Gold".into(), "Silver".into()]),
            ][kind]
                .clone();
            if let Ok(Some(value)) = custom_value(&kind, &input) {
                prop_assert_eq!(custom_value(&kind, &value), Ok(Some(value.clone())));
            }
        }
    }
}
