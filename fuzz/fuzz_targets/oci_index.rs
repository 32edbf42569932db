//! `oci_index`: see `strata::fuzzing::oci_index` for the input and its invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata::fuzzing::oci_index(data));
