//! strata's image layer: from a target the user names (an archive, an OCI layout, a registry
//! reference, a container engine's image) to typed images whose layers can be walked entry by
//! entry, each entry's fate in the final filesystem resolved.
//!
//! - [`image`]: images, their layers and the blob-source interface ([`image::blob::BlobSource`])
//!   every source implements; archives and layouts are read here.
//! - [`registry`]: the registry client, a blob source of its own, with per-run settings
//!   ([`registry::Registries`]).
//! - [`docker`]: the container engine API client.
//!
//! It is a crate of its own so the compiler keeps the layering: it depends only on
//! `strata-core` and can name nothing of the rules, scan, report or command-line layers
//! above it. strata re-exports each module under its old path (`crate::image`, …).

// strata-core's modules under the paths the image modules have always used.
pub(crate) use strata_core::{diagnostics, progress, redact, sniff};

pub mod docker;
pub mod image;
pub mod registry;
