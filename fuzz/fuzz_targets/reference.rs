//! `reference`: see `strata::fuzzing::reference` for the input and its invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata::fuzzing::reference(data));
