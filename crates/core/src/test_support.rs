//! Helpers shared by this crate's tests.

/// How many cases a property test runs: `PROPTEST_CASES` when it is set to
/// a number (the bench command runs each with 10,000), else `default`, the
/// quick count of the test command. (`ProptestConfig::with_cases` alone
/// would ignore the variable.)
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}
