//! `git_objects`: see `strata::fuzzing::git_objects` for the input and its invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata::fuzzing::git_objects(data));
