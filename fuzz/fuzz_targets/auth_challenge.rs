//! `auth_challenge`: see `strata::fuzzing::auth_challenge` for the input and its invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata::fuzzing::auth_challenge(data));
