//! Images: from a target the user names to typed images with ordered
//! layers, each layer tied to the history entry that produced it.
//!
//! Submodules: `source` recognises the container, [`store`] reads blobs,
//! [`layout`] parses docker-save and OCI metadata, [`layer`] streams one
//! layer's tar entries, [`whiteout`] resolves what later layers did to each
//! file, [`path`] normalises entry names.

pub mod blob;
pub mod compression;
pub mod containers_storage;
pub(crate) mod dir_copy;
pub mod gzip;
pub mod layer;
pub mod layout;
pub mod outside;
pub mod path;
pub mod pipe;
pub mod repeats;
pub mod save_stream;
pub(crate) mod source;
pub(crate) mod storage_conf;
pub mod store;
pub mod symlinks;
pub(crate) mod tar_split;
pub mod tarstream;
pub mod whiteout;

use std::io;

use crate::diagnostics::Diagnostics;
pub use layout::PlatformFilter;
use store::BlobStore;

/// Errors that stop an image (or a layer) from being read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading failed.
    #[error("{file}: {err}")]
    Io {
        /// The file or member being read.
        file: String,
        /// The underlying failure.
        err: io::Error,
    },
    /// The target is not an image container strata knows.
    #[error("{file}: {reason}")]
    Unrecognised {
        /// What the user named.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A document or layer inside the target is malformed.
    #[error("{file}: {what}: {reason}")]
    Invalid {
        /// What the user named.
        file: String,
        /// The member or document at fault.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A blob the metadata refers to is absent.
    #[error("{file}: blob {blob} is missing from the archive")]
    MissingBlob {
        /// What the user named.
        file: String,
        /// The member name or digest.
        blob: String,
    },
    /// Nothing in the target matched `--platform`.
    #[error("{file}: no image for platform {platform} (available: {available})")]
    NoPlatform {
        /// What the user named.
        file: String,
        /// The requested platform.
        platform: String,
        /// The platforms the target holds.
        available: String,
    },
    /// Another blob source (a registry) could not serve the image; its
    /// message names the target.
    #[error("{0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// An I/O error about `file`.
    pub fn io(file: &str, err: io::Error) -> Self {
        Error::Io { file: file.to_owned(), err }
    }
}

/// One entry of the config's `history` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The instruction (`COPY .env /app/`, `RUN |1 TOKEN=… /bin/sh -c …`).
    pub created_by: Option<String>,
    /// True for entries that produced no layer (ENV, ARG, LABEL…).
    pub empty_layer: bool,
    /// `comment`: `docker commit -m`, `buildah commit -m`, `podman build --squash` notes.
    pub comment: Option<String>,
    /// `author`: `docker commit --author`, the Dockerfile `MAINTAINER`.
    pub author: Option<String>,
}

/// What the scanner needs from the image config.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// `config.Env`, `KEY=VALUE` strings.
    pub env: Vec<String>,
    /// `config.Labels`, sorted by key.
    pub labels: Vec<(String, String)>,
    /// `config.Cmd`.
    pub cmd: Vec<String>,
    /// `config.Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `config.OnBuild` (Docker only).
    pub onbuild: Vec<String>,
    /// `config.Healthcheck.Test` (Docker only): the probe's command line.
    pub healthcheck: Vec<String>,
    /// The config's top-level `author`.
    pub author: Option<String>,
    /// `history`, in order, empty-layer entries included.
    pub history: Vec<HistoryEntry>,
    /// `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
    /// Every other string of the config document, as (JSON path, text): fields no
    /// standard names (`container_config`, a builder's own keys), `User`, `Volumes`… A
    /// string field is `KEY=VALUE`, as labels are, so its key gives the value context.
    pub other: Vec<(String, String)>,
}

/// One layer of an image, in manifest order.
#[derive(Debug, Clone)]
pub struct Layer {
    /// 0-based position in the manifest's layer list.
    pub index: usize,
    /// Digest of the blob as stored (`sha256:…`).
    digest: String,
    /// Digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    diff_id: Option<String>,
    /// Media type the manifest claims. Compression is sniffed, never taken from it; it
    /// only says when a layer cannot be read at all ([`Layer::encrypted`],
    /// [`Layer::foreign`]).
    pub(crate) media_type: String,
    /// Size of the blob as stored, in bytes (0: unknown).
    size: u64,
    /// The history instruction that produced this layer.
    pub created_by: Option<String>,
    /// Index of that instruction in the config's `history` array.
    pub history_index: Option<usize>,
    /// Where the blob lives in the store.
    pub member: String,
    /// True when the manifest's digest is the blob's real digest to check
    /// (false for legacy docker-save layers, named by directory).
    pub verify_digest: bool,
}

/// One image (one platform of one manifest) inside a target.
///
/// Its fields are private and read through accessors: an image is what its opener read
/// (`layout::images` and the sources built on it). The only changes after that are the
/// documented steps a source that assembles or completes an image takes, each a method
/// here: [`Image::push_layer`], [`Image::fill_layer_sizes`], [`Image::with_references`]
/// and [`Image::with_digest`]. A [`Layer`] is likewise built whole ([`Layer::tar`] and
/// its `with_*` steps) before it is pushed, and reached only by `&` once it is in an image.
#[derive(Debug, Clone)]
pub struct Image {
    /// The target as the user gave it.
    target: String,
    /// Tags or reference names recorded in the archive.
    references: Vec<String>,
    /// Manifest digest (the config digest for legacy docker-save images).
    digest: String,
    /// `os/arch[/variant]`, when known.
    platform: Option<String>,
    /// The parsed config (shared by images of one archive that name the same config).
    config: std::sync::Arc<ImageConfig>,
    /// Layers in manifest order.
    layers: Vec<Layer>,
    /// Where the blobs are.
    store: BlobStore,
    /// Check each compressed layer's uncompressed digest against the config's
    /// diff_id (a second SHA-256 over every byte; blob digests are always
    /// checked). Set when the image is opened ([`ReadOptions`]).
    pub(crate) verify_diff_ids: bool,
    /// Keep every path in the layer indexes (the `layers` command counts
    /// changes; scans resolve status from path hashes alone). Set when the
    /// image is opened ([`ReadOptions`]).
    pub(crate) index_names: bool,
    /// Attestation and referrer manifests that describe this image (build
    /// provenance, SBOMs), in index order.
    attestations: Vec<Attestation>,
    /// The annotations of its manifest, config descriptor and layer descriptors, which ship
    /// with the manifest: `(location, "key=value")`, locations as the JSON contract names them
    /// (`manifest.annotations`, `manifest.config.annotations`, `manifest.layers[N].annotations`).
    annotations: Vec<(String, String)>,
}

/// The media type of an uncompressed layer tar outside any manifest.
const TAR_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar";

impl Layer {
    /// A layer that no manifest describes: an uncompressed tar stored in the image's store as
    /// `member`, at position `index`, named by `digest` (checked against the blob's own digest
    /// when `verify_digest`). Its size is 0 (unknown) and it has no diff_id or instruction
    /// until the caller sets them.
    pub fn tar(index: usize, member: String, digest: String, verify_digest: bool) -> Layer {
        Layer {
            index,
            digest,
            diff_id: None,
            media_type: TAR_MEDIA_TYPE.into(),
            size: 0,
            created_by: None,
            history_index: None,
            member,
            verify_digest,
        }
    }

    /// This layer with its stored size, in bytes, when the source knows it.
    #[must_use]
    pub fn with_size(mut self, size: u64) -> Layer {
        self.size = size;
        self
    }

    /// This layer with the digest of its uncompressed tar (checked against what the walk
    /// hashes, like a config's diff_id).
    #[must_use]
    pub fn with_diff_id(mut self, diff_id: String) -> Layer {
        self.diff_id = Some(diff_id);
        self
    }

    /// This layer with the instruction that produced it (no history entry names it).
    #[must_use]
    pub fn with_created_by(mut self, created_by: String) -> Layer {
        self.created_by = Some(created_by);
        self
    }

    /// Digest of the blob as stored (`sha256:…`; for a layer that no manifest describes,
    /// what its source named it).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Digest of the uncompressed tar, when the config (or the source) states it.
    pub fn diff_id(&self) -> Option<&str> {
        self.diff_id.as_deref()
    }

    /// Size of the blob as stored, in bytes; 0 when unknown.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Why the layer cannot be read whatever its bytes: its manifest says it is encrypted
    /// (ocicrypt's `…+encrypted` media types). Its blob is ciphertext, and a scan of it
    /// would find nothing and say nothing useful.
    pub fn encrypted(&self) -> Option<String> {
        self.media_type.ends_with("+encrypted").then(|| {
            format!(
                "an encrypted layer ({}): strata cannot decrypt ocicrypt layers, so none of its bytes were read (decrypt the image first, e.g. `skopeo copy --decryption-key KEY …`)",
                self.media_type
            )
        })
    }

    /// Why a missing blob is expected: the manifest marks the layer non-distributable
    /// (Docker's `foreign` or OCI's `nondistributable` media types, Windows base layers),
    /// which archives and registries may leave out. strata never downloads it from the
    /// manifest's URLs.
    pub fn foreign(&self) -> Option<String> {
        let m = &self.media_type;
        (m.contains(".foreign.") || m.contains(".nondistributable.")).then(|| {
            format!(
                "a non-distributable layer ({m}) whose blob the image does not ship; strata does not download it from the URLs its manifest gives, so it was not read"
            )
        })
    }
}

impl Image {
    /// An image with no layers, config, platform or references yet, read from `store` as
    /// `read` says: the start of an image a source assembles itself (an engine export read
    /// as a stream, a test harness), which adds its layers with [`Image::push_layer`].
    pub fn new(target: &str, digest: String, store: BlobStore, read: ReadOptions) -> Image {
        Image {
            target: target.to_owned(),
            references: Vec::new(),
            digest,
            platform: None,
            config: Default::default(),
            layers: Vec::new(),
            store,
            verify_diff_ids: read.verify_diff_ids,
            index_names: read.index_names,
            attestations: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// This image under the reference names its engine records (Podman's names, the
    /// daemon's tags), replacing those its metadata recorded: for a source whose metadata
    /// the engine's records complete.
    #[must_use]
    pub fn with_references(mut self, references: Vec<String>) -> Image {
        self.references = references;
        self
    }

    /// This image under the digest its engine shows (`podman images --digests`): for a
    /// source that synthesizes the manifest, whose own digest nobody else knows.
    #[must_use]
    pub fn with_digest(mut self, digest: String) -> Image {
        self.digest = digest;
        self
    }

    /// The target as the user gave it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// `os/arch[/variant]`, when known.
    pub fn platform(&self) -> Option<&str> {
        self.platform.as_deref()
    }

    /// The parsed config (shared by images of one archive that name the same config).
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// Where the blobs are.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// The manifest's annotations as `(location, "key=value")`, sorted within each location.
    pub fn annotations(&self) -> &[(String, String)] {
        &self.annotations
    }

    /// Attestation and referrer manifests that describe this image (build provenance,
    /// SBOMs), in index order.
    pub fn attestations(&self) -> &[Attestation] {
        &self.attestations
    }

    /// Tags or reference names recorded for the image.
    pub fn references(&self) -> &[String] {
        &self.references
    }

    /// Manifest digest (the config digest for legacy docker-save images; what the engine
    /// shows for engine sources).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Layers in manifest order (a layer's `index` is its position here).
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Adds a layer on top, at the next position (its `index` is set to it), and returns
    /// that position. For a source that assembles its image itself (an engine export read
    /// as a stream, a container's writable layer on top of its image).
    pub fn push_layer(&mut self, mut layer: Layer) -> usize {
        let index = self.layers.len();
        layer.index = index;
        self.layers.push(layer);
        index
    }

    /// Gives each layer of unknown size (0: metadata held in memory names no sizes) the size
    /// `size_of` knows for it (a source that learns sizes as it streams the layers), if any.
    /// Only unknown sizes change: a size the metadata states stays.
    pub fn fill_layer_sizes(&mut self, size_of: impl Fn(&Layer) -> Option<u64>) {
        for layer in &mut self.layers {
            if layer.size == 0 {
                layer.size = size_of(layer).unwrap_or(0);
            }
        }
    }
}

/// An attestation manifest (BuildKit `vnd.docker.reference.type:
/// attestation-manifest`) or an OCI referrer (a manifest with a `subject`)
/// stored beside an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The attestation manifest's digest.
    pub digest: String,
    /// The manifest it describes (`vnd.docker.reference.digest` or the
    /// referrer's `subject`), when it says.
    pub describes: Option<String>,
    /// Its layers: in-toto statements, SBOMs, signatures.
    pub layers: Vec<AttestationLayer>,
}

/// One document of an attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationLayer {
    /// Blob digest.
    pub digest: String,
    /// Media type as the manifest states it (`application/vnd.in-toto+json`).
    pub media_type: String,
    /// The in-toto predicate type annotation, when present.
    pub predicate_type: Option<String>,
    /// Where the blob lives in the store.
    pub member: String,
    /// Size the manifest states.
    pub size: u64,
}

/// How an image's layers are to be read, given when it is opened (the
/// openers take it; nothing changes an [`Image`] afterwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Check each compressed layer's uncompressed digest against the config's diff_id (a
    /// second SHA-256 over every byte; blob digests are always checked). On by default.
    pub verify_diff_ids: bool,
    /// Keep every path in the layer indexes (the `layers` command counts changes; scans
    /// resolve status from path hashes alone). Off by default.
    pub index_names: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { verify_diff_ids: true, index_names: false }
    }
}

/// Opens every image a target holds, filtered by platform, with the
/// storage root `containers-storage:` targets use instead of the default
/// (`--storage-root`), and how layers are to be read.
///
/// # Errors
/// When the target cannot be opened or its metadata is unusable. Problems
/// that leave the rest readable (a skipped attestation, a digest mismatch)
/// go to `diag` instead.
pub fn open_with(
    target: &str,
    platform: Option<&PlatformFilter>,
    storage_root: Option<&std::path::Path>,
    read: ReadOptions,
    diag: &Diagnostics,
) -> Result<Vec<Image>, Error> {
    if let Some(name) = target.strip_prefix(containers_storage::PREFIX) {
        return containers_storage::open(target, name, storage_root, platform, read, diag);
    }
    let store = source::open(target)?;
    layout::images(target, store, platform, read, diag)
}
