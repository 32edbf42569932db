//! Helpers for this crate's unit tests: the built-in scanner and fake tokens that it finds.
//! (strata's pipeline tests have their own, over the same generator.)

use super::Scanner;

/// A fake GitHub token with a valid checksum, distinct per (alphanumeric, at most 26 bytes)
/// `tag`; the filler keeps it from looking like a mask.
pub(crate) fn token(tag: &str) -> String {
    const FILL: &str = "Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Bg0TyQa";
    strata_imagegen::checksummed_token("ghp_", &format!("FAKE{tag}{FILL}")[..30])
}

/// The scanner over the built-in rules.
pub(crate) fn scanner() -> Scanner {
    Scanner::new(crate::signatures::builtin().expect("built-in rules load"))
        .expect("built-in rules compile")
}
