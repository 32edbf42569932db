//! `layer_walk`: see `strata::fuzzing::layer_walk` for the input and its invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata::fuzzing::layer_walk(data));
