//! Helpers shared by this crate's tests.

/// How many cases a property test runs: `PROPTEST_CASES` when it is set to
/// a number (the bench command runs each with 10,000), else `default`, the
/// quick count of the test command. (`ProptestConfig::with_cases` alone
/// would ignore the variable.)
pub(crate) fn cases(default: u32) -> u32 {
    cases_from(std::env::var("PROPTEST_CASES").ok().as_deref(), default)
}

fn cases_from(var: Option<&str>, default: u32) -> u32 {
    var.and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::cases_from;

    #[test]
    fn the_case_count_comes_from_the_environment_when_it_is_a_number() {
        assert_eq!(cases_from(Some("10000"), 64), 10_000);
        assert_eq!(cases_from(Some(" 500\n"), 64), 500);
        assert_eq!(cases_from(None, 64), 64);
        assert_eq!(cases_from(Some("many"), 64), 64);
    }
}
