//! strata's rules layer: the signature files (`signatures/*.toml` at the repository root,
//! embedded at build time) parsed, validated and compiled into [`signatures::Signature`]s.
//!
//! It is a crate of its own so the compiler keeps the layering: it depends only on
//! `strata-core` and can name nothing of the scan, report or command-line layers above it
//! (nor the image layer beside it: rules never see images). strata re-exports the module under
//! its old path (`crate::signatures`).

// strata-core's module under the path the rules code always used.
pub(crate) use strata_core::finding;

pub mod signatures;
