//! strata finds credentials left in container image layer history.
//!
//! ```text
//! source ──► image ──► layer walk ──► detectors ──► findings ──► report
//! (open)    (manifest,  (tar entries,   (pattern,      (status,     (human, json,
//!            config,     whiteouts,      entropy,       dedupe,      sarif; exit
//!            layers)     nested arch.)   file, config)  redaction)   code)
//! ```
//!
//! `image` opens targets and walks layers, [`scan`] runs the detectors,
//! `finding` is what reports see, `report` renders them.
//!
//! This crate holds the upper layers (command line, session, report,
//! pipeline). The lower ones are crates of their own, so the compiler keeps
//! the layering: `strata-scan` (`scan`), `strata-rules` (`signatures`),
//! `strata-image` (`image`, `registry`, `docker`) and `strata-core`
//! (`finding`, `diagnostics`, …), re-exported here under their module names
//! (docs/architecture.md draws them).
//!
//! Only what the binary, the fuzz targets and the integration tests use is
//! public: [`cli`] (the binary calls [`cli::main`]), [`fuzzing`] (the fuzz
//! targets' harness) and [`scan`] (the [`scan::Scanner`] the fuzz targets
//! build, and [`scan::content::ContentScanner`]); every other module is
//! `pub(crate)`, so the compiler reports what nothing uses.

// The lowest layer is the strata-core crate (crates/core); its modules keep their paths here.
pub(crate) use strata_core::{clock, diagnostics, escape, finding, progress, redact};
// The image layer is the strata-image crate (crates/image), under the same paths.
pub(crate) use strata_image::{docker, image, registry};
// The rules layer is the strata-rules crate (crates/rules), under the same path.
pub(crate) use strata_rules::signatures;
// The scan layer is the strata-scan crate (crates/scan), under the same path; public, because
// the fuzz targets and the integration tests build its `Scanner`.
pub use strata_scan::scan;

pub(crate) mod allowlist;
pub(crate) mod cache;
pub mod cli;
pub(crate) mod extract;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod merge;
pub(crate) mod pipeline;
pub(crate) mod report;
pub(crate) mod session;
pub(crate) mod sources;
pub(crate) mod timeline;
pub(crate) mod verify;
