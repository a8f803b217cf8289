//! Amounts of money: integers in the currency's minor unit (cents), never
//! floats, so that totals add up exactly. Parsing what a user typed and
//! formatting for display live here too.

use std::collections::BTreeMap;

/// Why an amount or currency a user typed was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("Enter an amount like 12500 or 12,500.50")]
    NotANumber,
    #[error("Enter an amount that is not negative")]
    Negative,
    #[error("{currency} amounts have at most {digits} decimal places")]
    TooPrecise { currency: String, digits: u32 },
    #[error("That amount is too large")]
    TooLarge,
    #[error("Enter a three-letter currency code such as EUR, USD or GBP")]
    BadCurrency,
}

/// Decimal places of a currency's minor unit (ISO 4217; 2 unless listed).
pub fn exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "VND" | "VUV"
        | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Normalises a currency code ("eur " → "EUR").
///
/// # Errors
/// [`MoneyError::BadCurrency`] unless it is three ASCII letters.
pub fn currency(input: &str) -> Result<String, MoneyError> {
    let code = input.trim().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(MoneyError::BadCurrency)
    }
}

/// Parses an amount typed by a user into minor units of `currency`.
/// Accepts thousands separators (`,`, spaces, `'`), a `.` decimal point and
/// a leading currency symbol; empty input is zero.
///
/// # Errors
/// [`MoneyError`] naming what is wrong.
pub fn parse_amount(input: &str, currency: &str) -> Result<i64, MoneyError> {
    let digits = exponent(currency);
    let cleaned: String = input
        .trim()
        .trim_start_matches(['$', '€', '£', '¥'])
        .chars()
        .filter(|c| !matches!(c, ',' | ' ' | '\'' | '\u{a0}' | '_'))
        .collect();
    if cleaned.is_empty() {
        return Ok(0);
    }
    if cleaned.starts_with('-') {
        return Err(MoneyError::Negative);
    }
    let (whole, frac) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(MoneyError::NotANumber);
    }
    if frac.len() as u32 > digits {
        return Err(MoneyError::TooPrecise { currency: currency.to_owned(), digits });
    }
    let scale = 10i64.pow(digits);
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| MoneyError::TooLarge)? };
    let frac_value: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().map_err(|_| MoneyError::NotANumber)? * 10i64.pow(digits - frac.len() as u32)
    };
    whole.checked_mul(scale).and_then(|w| w.checked_add(frac_value)).ok_or(MoneyError::TooLarge)
}

fn symbol(currency: &str) -> Option<&'static str> {
    Some(match currency {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        _ => return None,
    })
}

fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "€12,500.50", "CHF 1,000.00": the full amount, for forms and pages.
pub fn format(minor: i64, currency: &str) -> String {
    let digits = exponent(currency);
    let scale = 10u64.pow(digits);
    let abs = minor.unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    let number = if digits == 0 {
        group_thousands(abs)
    } else {
        format!("{}.{:0width$}", group_thousands(abs / scale), abs % scale, width = digits as usize)
    };
    match symbol(currency) {
        Some(s) => format!("{sign}{s}{number}"),
        None => format!("{sign}{currency} {number}"),
    }
}

/// "12500.50": the amount as a form field shows it (parsed back by
/// [`parse_amount`]).
pub fn format_plain(minor: i64, currency: &str) -> String {
    let digits = exponent(currency);
    let scale = 10u64.pow(digits);
    let abs = minor.unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    if digits == 0 {
        format!("{sign}{abs}")
    } else {
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = digits as usize)
    }
}

/// "€12.5k", "$1.2M", "£900": short amounts for board columns and charts.
pub fn format_short(minor: i64, currency: &str) -> String {
    let whole = minor / 10i64.pow(exponent(currency));
    let abs = whole.unsigned_abs();
    let sign = if whole < 0 { "-" } else { "" };
    // One decimal, rounded half up in integers (floats would round 1.25 down).
    let tenths = |unit: u64| {
        let t = (abs * 10 + unit / 2) / unit;
        if t.is_multiple_of(10) {
            (t / 10).to_string()
        } else {
            format!("{}.{}", t / 10, t % 10)
        }
    };
    let number = if abs >= 1_000_000 {
        tenths(1_000_000) + "M"
    } else if abs >= 10_000 {
        format!("{}k", (abs + 500) / 1_000)
    } else if abs >= 1_000 {
        tenths(1_000) + "k"
    } else {
        abs.to_string()
    };
    match symbol(currency) {
        Some(s) => format!("{sign}{s}{number}"),
        None => format!("{sign}{currency} {number}"),
    }
}

/// Sums kept per currency: Rapport never converts between currencies (it
/// has no exchange rates offline), so a total is one amount per currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals(pub BTreeMap<String, i64>);

impl Totals {
    pub fn add(&mut self, currency: &str, minor: i64) {
        let slot = self.0.entry(currency.to_owned()).or_insert(0);
        *slot = slot.saturating_add(minor);
    }

    pub fn get(&self, currency: &str) -> i64 {
        self.0.get(currency).copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(|v| *v == 0)
    }

    /// "€12.5k + $3k", or "0" in `fallback` currency when empty.
    pub fn short(&self, fallback: &str) -> String {
        let parts: Vec<String> = self.0.iter().filter(|(_, v)| **v != 0).map(|(c, v)| format_short(*v, c)).collect();
        if parts.is_empty() {
            format_short(0, fallback)
        } else {
            parts.join(" + ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amounts_parse_as_people_type_them() {
        assert_eq!(parse_amount("12,500.50", "EUR"), Ok(1_250_050));
        assert_eq!(parse_amount(" €12 500 ", "EUR"), Ok(1_250_000));
        assert_eq!(parse_amount("0.5", "USD"), Ok(50));
        assert_eq!(parse_amount("", "USD"), Ok(0));
        assert_eq!(parse_amount("1500", "JPY"), Ok(1500));
        assert_eq!(parse_amount("1.234", "KWD"), Ok(1234));
        assert_eq!(parse_amount("1.5", "JPY"), Err(MoneyError::TooPrecise { currency: "JPY".into(), digits: 0 }));
        assert_eq!(parse_amount("-5", "USD"), Err(MoneyError::Negative));
        assert_eq!(parse_amount("12a", "USD"), Err(MoneyError::NotANumber));
        assert_eq!(parse_amount(".", "USD"), Err(MoneyError::NotANumber));
        assert_eq!(parse_amount("1.2.3", "USD"), Err(MoneyError::NotANumber));
        assert_eq!(parse_amount("99999999999999999999", "USD"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn amounts_format_with_symbol_or_code() {
        assert_eq!(format(1_250_050, "EUR"), "€12,500.50");
        assert_eq!(format(100_000, "CHF"), "CHF 1,000.00");
        assert_eq!(format(1500, "JPY"), "¥1,500");
        assert_eq!(format_short(1_250_050, "EUR"), "€13k");
        assert_eq!(format_short(125_000, "USD"), "$1.3k");
        assert_eq!(format_short(120_000_000, "GBP"), "£1.2M");
        assert_eq!(format_short(90_000, "GBP"), "£900");
    }

    #[test]
    fn currency_codes_are_three_letters() {
        assert_eq!(currency(" eur"), Ok("EUR".into()));
        assert_eq!(currency("EURO"), Err(MoneyError::BadCurrency));
        assert_eq!(currency("€"), Err(MoneyError::BadCurrency));
    }

    #[test]
    fn totals_keep_currencies_apart() {
        let mut t = Totals::default();
        t.add("EUR", 100);
        t.add("USD", 50);
        t.add("EUR", 25);
        assert_eq!(t.get("EUR"), 125);
        assert_eq!(t.get("USD"), 50);
        assert_eq!(t.get("GBP"), 0);
    }

    proptest! {
        #[test]
        fn formatting_then_parsing_gives_the_amount_back(minor in 0i64..1_000_000_000_000, cur in prop::sample::select(vec!["EUR", "USD", "JPY", "KWD", "CHF"])) {
            prop_assert_eq!(parse_amount(&format(minor, cur).replace(cur, ""), cur), Ok(minor));
            prop_assert_eq!(parse_amount(&format_plain(minor, cur), cur), Ok(minor));
        }
    }
}
