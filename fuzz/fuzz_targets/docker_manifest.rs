//! `docker_manifest`: see `strata::fuzzing::docker_manifest` for the input and its invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata::fuzzing::docker_manifest(data));
