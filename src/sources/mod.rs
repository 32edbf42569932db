//! Sources that are more than a blob store: a local engine whose export is
//! scanned as it streams (`docker-daemon:`), a running container's
//! writable layer on top of its image (`docker-container:`), and a
//! Kubernetes inventory that names which workloads run which image
//! (`--k8s-pods`).
//!
//! These sit above `pipeline` because a stream cannot be read twice: each
//! layer is scanned while it passes by, before the metadata that places it
//! in the image has arrived, and the image is assembled afterwards
//! (see `docs/sources.md`). For `layers` and `extract`, which read one
//! layer at a time, [`export`] serves each layer from a fresh export.
//! Sources that can seek (`containers-storage:`,
//! archives, layouts, registries) stay in `image` behind its blob-source
//! interface.

pub mod daemon;
pub mod export;
pub mod k8s;
pub mod pipe;

use std::path::PathBuf;

use crate::image::{Image, PlatformFilter};
use crate::pipeline::{self, ImageScan};

/// How targets are reached, and how their images are read.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// Allow a non-loopback `tcp://` `DOCKER_HOST` (plain HTTP).
    pub insecure: bool,
    /// `--storage-root`: where `containers-storage:` looks instead of the
    /// default (rootless under `$HOME`, else `/var/lib/containers/storage`).
    pub storage_root: Option<PathBuf>,
    /// How opened images read their layers (diff_id checks, name indexes).
    pub read: crate::image::ReadOptions,
}

/// Target prefix for an image in a Docker (or Podman) daemon.
pub const DOCKER_DAEMON: &str = "docker-daemon:";
/// Target prefix for a container's writable layer.
pub const DOCKER_CONTAINER: &str = "docker-container:";

/// What one scan run lends a streamed source: the pipeline's own options
/// (the layers are scanned by the same pipeline as any image's), and what
/// choosing and opening the images needs.
pub struct Context<'a> {
    /// Scanner, limits, cache, progress and diagnostics of the run.
    pub run: pipeline::Options<'a>,
    /// `--platform`.
    pub platform: Option<&'a PlatformFilter>,
    /// Engine options, and how images are read.
    pub options: &'a SourceOptions,
}

/// Why a streamed source could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine failed.
    #[error(transparent)]
    Docker(#[from] crate::docker::Error),
    /// The image it served is unusable.
    #[error(transparent)]
    Image(#[from] crate::image::Error),
}

/// True when `target` is read by this module rather than `image::open`.
pub fn is_streamed(target: &str) -> bool {
    target.starts_with(DOCKER_DAEMON) || target.starts_with(DOCKER_CONTAINER)
}

/// Scans a streamed target: its images and their findings.
///
/// # Errors
/// When the engine cannot serve the target at all; problems with single
/// layers go to `ctx.run.diag`.
pub fn scan(target: &str, ctx: &Context<'_>) -> Result<Vec<(Image, ImageScan)>, Error> {
    if let Some(name) = target.strip_prefix(DOCKER_DAEMON) {
        return daemon::scan_image(target, name, ctx);
    }
    if let Some(id) = target.strip_prefix(DOCKER_CONTAINER) {
        return daemon::scan_container(target, id, ctx);
    }
    Err(Error::Image(crate::image::Error::Unrecognised {
        file: target.to_owned(),
        reason: "not a streamed source".into(),
    }))
}
