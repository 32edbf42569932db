//! `nested_archive`: see `strata::fuzzing::nested_archive` for the input and its invariants.
#![no_main]

use std::sync::OnceLock;

use strata::scan::Scanner;

/// Compiling the rules takes longer than most inputs: once per process.
fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(strata::fuzzing::scanner)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata::fuzzing::nested_archive(data, scanner()));
