//! strata's scan layer: the detectors. A [`scan::Scanner`] compiled once from the rules finds
//! secrets in bytes; [`scan::content::ContentScanner`] runs every detector over one file
//! (rules, entropy, credential files, nested archives, git stores), and the image config and
//! attestations have scanners of their own.
//!
//! It is a crate of its own so the compiler keeps the layering: it depends on the rules, image
//! and core crates below it and can name nothing of the pipeline, report, session or
//! command-line layers above. strata re-exports the module under its old path (`crate::scan`).

// The lower layers' modules under the paths the scan code always used.
pub(crate) use strata_core::{finding, redact, sniff};
pub(crate) use strata_image::image;
pub(crate) use strata_rules::signatures;

pub mod scan;
