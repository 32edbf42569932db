//! `oci_manifest`: see `strata::fuzzing::oci_manifest` for the input and its invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata::fuzzing::oci_manifest(data));
