//! strata finds credentials left in container image layer history.
//!
//! ```text
//! source ──► image ──► layer walk ──► detectors ──► findings ──► report
//! (open)    (manifest,  (tar entries,   (pattern,      (status,     (human, json,
//!            config,     whiteouts,      entropy,       dedupe,      sarif; exit
//!            layers)     nested arch.)   file, config)  redaction)   code)
//! ```
//!
//! [`image`] opens targets and walks layers, [`scan`] runs the detectors,
//! [`finding`] is what reports see, [`report`] renders them.

pub mod allowlist;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod diagnostics;
pub mod docker;
pub mod escape;
pub mod extract;
pub mod finding;
#[doc(hidden)]
pub mod fuzzing;
pub mod image;
pub mod merge;
pub mod pipeline;
pub mod progress;
pub mod redact;
pub mod registry;
pub mod report;
pub mod scan;
pub mod session;
pub mod signatures;
pub mod sources;
pub mod timeline;
pub mod verify;
