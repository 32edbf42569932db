//! `nested_archive`: see `strata::fuzzing::nested_archive` for the input and its invariants.
#![no_main]

use std::sync::OnceLock;

use strata::scan::Scanner;

/// Compiling the rules takes seconds under ASan: once per process, in `init`,
/// so the build is never timed as part of the first input (which libFuzzer
/// then reports as a false timeout, once per fork-mode child).
fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(strata::fuzzing::scanner)
}

libfuzzer_sys::fuzz_target!(init: {
    scanner();
}, |data: &[u8]| {
    strata::fuzzing::nested_archive(data, scanner())
});
