//! `layer_entries`: see `strata::fuzzing::layer_entries` for the input and its invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata::fuzzing::layer_entries(data));
