//! Integration tests: the built binary over images written by the corpus
//! generator (every format, every whiteout case, bad input) and by real
//! tools (umoci, skopeo) under corpus/real.

#![allow(clippy::unwrap_used, reason = "a test should fail loudly on any unexpected error")]

use strata_imagegen as imagegen;

mod action;
mod attestations;
mod bad_input;
mod cache;
mod compiled;
mod credential_classes;
mod credential_files;
mod credential_files_2;
mod credential_files_3;
mod decoding;
mod detection;
mod engines;
mod engines_storage;
mod extract;
mod formats;
mod framing;
mod fuzz_regressions;
mod git_history;
mod hostile;
mod hostile_files;
mod incident_reports;
mod layer_read;
mod leak_vectors;
mod materialise;
mod member_names;
mod noise;
mod noise_real;
mod packages;
mod providers;
mod real_tools;
mod redaction;
mod registry;
mod repeated_bytes;
mod reports;
mod rule_contexts;
mod sql_dumps;
mod threads;
mod unpackers;
mod util;
mod verify;
mod whiteouts;
