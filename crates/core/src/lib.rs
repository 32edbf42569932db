//! strata's lowest layer, the one every other layer shares: what a finding is ([`finding`]),
//! the warnings and errors of a run ([`diagnostics`]), redaction of known secrets
//! ([`redact`]), the progress display ([`progress`]), terminal escaping ([`escape`]),
//! content sniffing by magic bytes ([`sniff`]) and timestamps ([`clock`]).
//!
//! It is a crate of its own so the compiler keeps the layering: nothing here can name the
//! image, scan, report or command-line modules above it. strata re-exports each module under
//! its old path (`crate::finding`, …).

pub mod clock;
pub mod diagnostics;
pub mod escape;
pub mod finding;
pub mod progress;
pub mod redact;
pub mod sniff;
