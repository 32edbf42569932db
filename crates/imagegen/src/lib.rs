//! Deterministic generator of small container images for strata's tests and benchmarks.
//!
//! An [`ImageSpec`] describes an image as a list of [`Layer`]s (each a list of tar
//! [`Entry`]s) plus the bits of image configuration that matter for secret scanning (env,
//! labels, cmd, history). [`write_image`] and friends serialise a spec into every input format
//! strata reads (see [`Format`]):
//!
//! * classic `docker save` archives ([`Format::DockerLegacy`]),
//! * Docker >= 25 `docker save` archives, an OCI layout with a `manifest.json` on the side
//!   ([`Format::DockerOci`]),
//! * OCI image layout directories ([`Format::OciDir`]) and tarballs ([`Format::OciArchive`]).
//!
//! Output is byte-for-byte deterministic: every tar header has mtime 0, uid/gid 0 and empty
//! owner names, JSON objects are written from structs/`BTreeMap`s in a fixed order, history
//! timestamps are the Unix epoch and nothing reads the clock or the environment.
//!
//! Layers are streamed: a layer is written once through a compressor into a temporary file
//! while two SHA-256 hashers observe the uncompressed tar (diff_id) and the compressed blob
//! (blob digest). [`Entry::Zeros`] and [`Entry::Text`] produce their content on the fly, so a
//! layer holding a 2 GiB file needs only a few kilobytes of memory.
//!
//! Broken inputs for error-path tests are produced with [`write_image_with`] /
//! [`write_images_opts`] and a [`Fault`].

pub mod hostile;
pub mod layout;
pub mod raw;
pub mod retop;
pub mod wrap;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Media type of an OCI image manifest.
pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image config.
pub const MT_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of an uncompressed OCI layer.
pub const MT_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip-compressed OCI layer.
pub const MT_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd-compressed OCI layer.
pub const MT_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Media type of the in-toto statement layers in buildx attestation manifests.
pub const MT_IN_TOTO: &str = "application/vnd.in-toto+json";
/// Annotation holding the reference name of an OCI index entry.
pub const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation docker (containerd store) adds with the full image name.
pub const ANN_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Timestamp used everywhere a timestamp is required.
pub const EPOCH: &str = "1970-01-01T00:00:00Z";

// ---------------------------------------------------------------------------------------------
// Spec types
// ---------------------------------------------------------------------------------------------

/// Compression applied to a layer blob or to a whole archive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    #[default]
    None,
    /// gzip (flate2, default level, header mtime 0).
    Gzip,
    /// zstd (level 3, single-threaded).
    Zstd,
}

impl Compression {
    /// OCI layer media type for a layer compressed this way.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Compression::None => MT_OCI_LAYER_TAR,
            Compression::Gzip => MT_OCI_LAYER_GZIP,
            Compression::Zstd => MT_OCI_LAYER_ZSTD,
        }
    }
}

/// How entry names are spelled inside a layer tar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PathStyle {
    /// `app/x` (what BuildKit and `docker build` write).
    #[default]
    Plain,
    /// `./app/x` (what `tar -C dir .` writes).
    DotSlash,
}

/// One tar entry of a layer.
///
/// Paths are given without a leading `/` (one is stripped if present) and are spelled according
/// to the layer's [`PathStyle`]. Only the listed entries are written: parent directories are
/// *not* added implicitly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Regular file (mode 0644) with the given content.
    File {
        /// Path in the layer.
        path: String,
        /// Content.
        data: Vec<u8>,
    },
    /// Regular file of `size` zero bytes, streamed from `io::repeat` (never allocated).
    Zeros {
        /// Path in the layer.
        path: String,
        /// Bytes of zeros.
        size: u64,
    },
    /// Regular file of `size` bytes of deterministic pseudo-random printable text (see
    /// [`TextReader`]), streamed. Compresses roughly 3.5x with gzip.
    Text {
        /// Path in the layer.
        path: String,
        /// Bytes of text.
        size: u64,
        /// Seed of the text (the same seed gives the same bytes).
        seed: u64,
    },
    /// Directory (mode 0755); written with a trailing `/`.
    Dir {
        /// Path in the layer.
        path: String,
    },
    /// Symbolic link; `target` is written verbatim (may be absolute or contain `..`).
    Symlink {
        /// Path of the link.
        path: String,
        /// What it points to, verbatim.
        target: String,
    },
    /// Hard link (tar type `1`) to `target`, an earlier path of the same layer (path style is
    /// applied to the target too).
    Hardlink {
        /// Path of the link.
        path: String,
        /// The earlier path it names.
        target: String,
    },
    /// Whiteout of `path`: an empty regular file `<parent>/.wh.<name>`.
    Whiteout {
        /// The path removed.
        path: String,
    },
    /// Opaque-directory marker: an empty regular file `<dir>/.wh..wh..opq`.
    Opaque {
        /// The directory made opaque (empty: the root).
        dir: String,
    },
    /// Regular file whose header name bytes are written verbatim, bypassing the `tar` crate's
    /// path validation (e.g. `b"../../etc/evil"`, `b"/abs/path"`). Names longer than 100 bytes
    /// use a GNU long-name record.
    RawName {
        /// Name bytes, verbatim.
        name: Vec<u8>,
        /// Content.
        data: Vec<u8>,
    },
}

impl Entry {
    /// Convenience constructor for [`Entry::File`].
    pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry::File { path: path.to_string(), data: data.into() }
    }

    /// Convenience constructor for [`Entry::Dir`].
    pub fn dir(path: &str) -> Entry {
        Entry::Dir { path: path.to_string() }
    }

    /// Convenience constructor for [`Entry::Whiteout`].
    pub fn whiteout(path: &str) -> Entry {
        Entry::Whiteout { path: path.to_string() }
    }
}

/// One filesystem layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layer {
    /// Entries in archive order.
    pub entries: Vec<Entry>,
    /// `created_by` of the (non-empty) history entry for this layer.
    pub created_by: String,
    /// Compression of the layer blob.
    pub compression: Compression,
    /// Spelling of entry names.
    pub path_style: PathStyle,
}

impl Layer {
    /// A gzip-compressed, plain-path layer.
    pub fn new(created_by: &str, entries: Vec<Entry>) -> Layer {
        Layer {
            entries,
            created_by: created_by.to_string(),
            compression: Compression::Gzip,
            path_style: PathStyle::Plain,
        }
    }

    /// Returns the layer with another compression.
    pub fn with_compression(mut self, compression: Compression) -> Layer {
        self.compression = compression;
        self
    }

    /// Returns the layer with another path style.
    pub fn with_path_style(mut self, path_style: PathStyle) -> Layer {
        self.path_style = path_style;
        self
    }
}

/// Everything needed to write one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
    /// History entries with `empty_layer: true`, as `(position, created_by)`: the entry is
    /// placed before the history entry of layer `position` (`position == layers.len()` puts it
    /// last). Entries with the same position keep their order.
    pub empty_history: Vec<(usize, String)>,
    /// `config.Env`.
    pub env: Vec<String>,
    /// `config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// `config.Cmd`.
    pub cmd: Vec<String>,
    /// `config.Entrypoint`.
    pub entrypoint: Vec<String>,
    /// Platform OS (`linux`).
    pub os: String,
    /// Platform architecture (`amd64`).
    pub architecture: String,
    /// Platform variant (`v8` for arm64), if any.
    pub variant: Option<String>,
    /// Tags such as `example.test/leaky:1`.
    pub repo_tags: Vec<String>,
    /// Build arguments recorded in the buildx provenance attestation
    /// ([`IndexLayout::NestedWithAttestation`]) as `build-arg:<KEY>`, as BuildKit does in
    /// `mode=max`. Not used elsewhere.
    pub build_args: BTreeMap<String, String>,
    /// Write the provenance as SLSA v1 (`predicate.buildDefinition.externalParameters.request.args`)
    /// instead of SLSA v0.2 (`predicate.invocation.parameters.args`).
    pub slsa_v1: bool,
    /// More in-toto statements in the attestation manifest, as `(predicate type, predicate)`
    /// (e.g. `https://spdx.dev/Document` and an SPDX document), one layer each.
    pub extra_attestations: Vec<(String, serde_json::Value)>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            layers: Vec::new(),
            empty_history: Vec::new(),
            env: Vec::new(),
            labels: BTreeMap::new(),
            cmd: Vec::new(),
            entrypoint: Vec::new(),
            os: "linux".to_string(),
            architecture: "amd64".to_string(),
            variant: None,
            repo_tags: Vec::new(),
            build_args: BTreeMap::new(),
            slsa_v1: false,
            extra_attestations: Vec::new(),
        }
    }
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic `docker save` tar: `manifest.json`, `<hex>.json` configs, `<id>/layer.tar`,
    /// `<id>/VERSION`, `<id>/json` and `repositories`. `<id>` is the layer's chain ID.
    /// `layer.tar` holds the layer blob as compressed by the spec (normally
    /// [`Compression::None`]).
    DockerLegacy,
    /// Docker >= 25 `docker save` tar: `oci-layout`, `index.json`, `blobs/sha256/*` plus a
    /// legacy `manifest.json` (with `LayerSources`) and `repositories` pointing into `blobs/`.
    DockerOci,
    /// OCI image layout directory. It is created if needed; files already in it are
    /// overwritten but never removed, so pass a fresh path.
    OciDir,
    /// Tar of an OCI image layout (`skopeo copy ... oci-archive:`).
    OciArchive,
}

impl Format {
    /// Whether the output is a tar file (rather than a directory).
    pub fn is_archive(self) -> bool {
        self != Format::OciDir
    }
}

/// Shape of the index for [`write_multiplatform`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexLayout {
    /// `index.json` lists the platform manifests directly.
    Flat,
    /// `index.json` -> one image index blob -> platform manifests (docker/buildx style).
    Nested,
    /// As [`IndexLayout::Nested`], plus one buildx attestation manifest per platform
    /// (platform `unknown/unknown`, annotations `vnd.docker.reference.type:
    /// attestation-manifest` and `vnd.docker.reference.digest`) whose layer is an in-toto
    /// SLSA provenance statement.
    NestedWithAttestation,
}

/// Deliberate defect for error-path tests.
///
/// Layer indices refer to the layers of the *first* image of the call (the first platform of
/// [`write_multiplatform_opts`]). A layer blob shared with other images is affected for all of
/// them. Faults that make no sense for a format (e.g. [`Fault::CorruptIndexJson`] for
/// [`Format::DockerLegacy`]) and out-of-range indices yield `ErrorKind::InvalidInput`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// No defect.
    #[default]
    None,
    /// Layer blob `i` is cut to half its size (mid-gzip/zstd/tar); metadata is unchanged.
    TruncateLayer(usize),
    /// Layer blob `i` is referenced but not written.
    MissingBlob(usize),
    /// The manifest references layer `i` under a wrong digest, and the blob is stored under
    /// that wrong name (so the file's content does not hash to its name). OCI formats only.
    WrongLayerDigest(usize),
    /// `rootfs.diff_ids[i]` in the config is wrong.
    WrongDiffId(usize),
    /// The OCI image manifest blob is truncated JSON (its digest is over the broken bytes).
    /// For [`Format::DockerLegacy`] this breaks `manifest.json` instead.
    CorruptManifestJson,
    /// `manifest.json` (docker formats) is truncated JSON.
    CorruptDockerManifestJson,
    /// The config blob is truncated JSON (its digest is over the broken bytes).
    CorruptConfigJson,
    /// `index.json` is truncated JSON. OCI-layout formats only.
    CorruptIndexJson,
    /// The output entry/file at this path (e.g. `"index.json"`, `"oci-layout"`,
    /// `"manifest.json"`, `"blobs/sha256/<hex>"`) is omitted.
    OmitPath(String),
}

/// Options for [`write_images_opts`] / [`write_multiplatform_opts`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Defect to inject.
    pub fault: Fault,
    /// Archive order. `false` (default, like docker and skopeo): blobs/layers first, then
    /// `index.json`/`manifest.json`. `true`: metadata files first, then blobs.
    pub metadata_first: bool,
}

/// Digests of a written image, as referenced by the written metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:<hex>` of the OCI image manifest blob. For [`Format::DockerLegacy`], which stores
    /// no manifest blob, it is the digest of the equivalent OCI manifest.
    pub manifest_digest: String,
    /// Size of the OCI image manifest.
    pub manifest_size: u64,
    /// `sha256:<hex>` of the config blob.
    pub config_digest: String,
    /// Layer blob digests (over the compressed bytes), bottom first.
    pub layer_digests: Vec<String>,
    /// Layer blob sizes.
    pub layer_sizes: Vec<u64>,
    /// `rootfs.diff_ids` (digests of the uncompressed layer tars).
    pub diff_ids: Vec<String>,
}

/// Result of [`write_multiplatform`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiInfo {
    /// Digest of the nested image index blob (`None` for [`IndexLayout::Flat`]).
    pub index_digest: Option<String>,
    /// One entry per platform spec, same order.
    pub images: Vec<ImageInfo>,
    /// Digests of the attestation manifests, one per platform
    /// ([`IndexLayout::NestedWithAttestation`] only).
    pub attestation_digests: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

/// Writes one image to `out` (a tar file, or a directory for [`Format::OciDir`]).
pub fn write_image(spec: &ImageSpec, format: Format, out: &Path) -> io::Result<ImageInfo> {
    write_image_with(spec, format, out, Fault::None)
}

/// Writes one image with a deliberate [`Fault`].
pub fn write_image_with(
    spec: &ImageSpec,
    format: Format,
    out: &Path,
    fault: Fault,
) -> io::Result<ImageInfo> {
    let opts = WriteOptions { fault, metadata_first: false };
    let mut infos = write_images_opts(std::slice::from_ref(spec), format, out, &opts)?;
    Ok(infos.remove(0))
}

/// Writes several images into one archive/layout: several `manifest.json` entries for the
/// docker formats, one `index.json` entry per tag (annotated with
/// `org.opencontainers.image.ref.name`) for the OCI formats. Identical blobs are stored once.
pub fn write_images(specs: &[ImageSpec], format: Format, out: &Path) -> io::Result<Vec<ImageInfo>> {
    write_images_opts(specs, format, out, &WriteOptions::default())
}

/// [`write_images`] with [`WriteOptions`].
pub fn write_images_opts(
    specs: &[ImageSpec],
    format: Format,
    out: &Path,
    opts: &WriteOptions,
) -> io::Result<Vec<ImageInfo>> {
    if specs.is_empty() {
        return Err(invalid("no image specs given"));
    }
    check_fault(&opts.fault, format, specs[0].layers.len())?;
    // The blobs live in `_tmp` until the archive or layout is written.
    let (_tmp, images) = build_images(specs, out, opts)?;
    let entries = match format {
        Format::DockerLegacy => legacy_entries(specs, &images, opts)?,
        _ => {
            let mut manifests = Vec::new();
            for (spec, img) in specs.iter().zip(&images) {
                for tag in &spec.repo_tags {
                    manifests.push(manifest_descriptor(img, None, ref_annotations(tag, format)));
                }
                if spec.repo_tags.is_empty() {
                    manifests.push(manifest_descriptor(img, None, None));
                }
            }
            let index =
                OciIndex { schema_version: 2, media_type: MT_OCI_INDEX.to_string(), manifests };
            let docker = (format == Format::DockerOci).then(|| (specs, &images[..]));
            oci_entries(&images, Vec::new(), &index, docker, opts)?
        }
    };
    emit(format, out, entries, &opts.fault)?;
    Ok(images.into_iter().map(|i| i.info).collect())
}

/// Writes a multi-platform image (one spec per platform) as an OCI layout, OCI archive or
/// Docker-OCI archive. The reference name is the first tag of the first spec (for
/// [`IndexLayout::Flat`] every platform entry carries it). For [`Format::DockerOci`] the
/// `manifest.json` lists only the first platform, as `docker save` does for the host platform.
/// [`Format::DockerLegacy`] yields `ErrorKind::InvalidInput`.
pub fn write_multiplatform(
    specs: &[ImageSpec],
    layout: IndexLayout,
    format: Format,
    out: &Path,
) -> io::Result<MultiInfo> {
    write_multiplatform_opts(specs, layout, format, out, &WriteOptions::default())
}

/// [`write_multiplatform`] with [`WriteOptions`].
pub fn write_multiplatform_opts(
    specs: &[ImageSpec],
    layout: IndexLayout,
    format: Format,
    out: &Path,
    opts: &WriteOptions,
) -> io::Result<MultiInfo> {
    if specs.is_empty() {
        return Err(invalid("no image specs given"));
    }
    if format == Format::DockerLegacy {
        return Err(invalid("multi-platform images need an OCI-layout format"));
    }
    check_fault(&opts.fault, format, specs[0].layers.len())?;
    // The blobs live in `_tmp` until the archive or layout is written.
    let (_tmp, images) = build_images(specs, out, opts)?;
    let tag = specs[0].repo_tags.first().cloned();
    let annotations = tag.as_deref().and_then(|t| ref_annotations(t, format));
    let mut extra: Vec<(String, Src)> = Vec::new();
    let mut platform_descs = Vec::new();
    let mut attestation_digests = Vec::new();
    for (spec, img) in specs.iter().zip(&images) {
        platform_descs.push(manifest_descriptor(img, Some(platform_of(spec)), None));
    }
    if layout == IndexLayout::NestedWithAttestation {
        for (spec, img) in specs.iter().zip(&images) {
            let (desc, blobs) = attestation(spec, img, tag.as_deref())?;
            attestation_digests.push(desc.digest.clone());
            platform_descs.push(desc);
            extra.extend(blobs);
        }
    }
    let (top, index_digest) = match layout {
        IndexLayout::Flat => {
            let mut descs = platform_descs;
            for d in &mut descs {
                d.annotations = annotations.clone();
            }
            (descs, None)
        }
        IndexLayout::Nested | IndexLayout::NestedWithAttestation => {
            let inner = OciIndex {
                schema_version: 2,
                media_type: MT_OCI_INDEX.to_string(),
                manifests: platform_descs,
            };
            let bytes = to_json(&inner)?;
            let digest = sha256_digest(&bytes);
            let desc = Descriptor {
                media_type: MT_OCI_INDEX.to_string(),
                digest: digest.clone(),
                size: bytes.len() as u64,
                annotations,
                platform: None,
            };
            extra.push((digest.clone(), Src::Bytes(bytes)));
            (vec![desc], Some(digest))
        }
    };
    let index =
        OciIndex { schema_version: 2, media_type: MT_OCI_INDEX.to_string(), manifests: top };
    let docker = (format == Format::DockerOci).then(|| (&specs[..1], &images[..1]));
    let entries = oci_entries(&images, extra, &index, docker, opts)?;
    emit(format, out, entries, &opts.fault)?;
    Ok(MultiInfo {
        index_digest,
        images: images.into_iter().map(|i| i.info).collect(),
        attestation_digests,
    })
}

/// Compresses a whole file (e.g. `docker save | gzip`), streaming.
pub fn compress_whole(input: &Path, output: &Path, c: Compression) -> io::Result<()> {
    let mut src = io::BufReader::new(File::open(input)?);
    let dst = BufWriter::new(File::create(output)?);
    let mut enc = Enc::new(dst, c)?;
    io::copy(&mut src, &mut enc)?;
    enc.finish()?.flush()
}

/// Builds every image's blobs in a temporary directory beside `out`; the
/// fault, if any, applies to the first image only.
fn build_images(
    specs: &[ImageSpec],
    out: &Path,
    opts: &WriteOptions,
) -> io::Result<(TempDir, Vec<BuiltImage>)> {
    let tmp = TempDir::new(out)?;
    let mut images = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let fault = if i == 0 { &opts.fault } else { &Fault::None };
        images.push(build_image(spec, &tmp, fault)?);
    }
    Ok((tmp, images))
}

/// The descriptor of an OCI image config blob.
fn config_descriptor(config: &[u8], digest: &str) -> Descriptor {
    Descriptor {
        media_type: MT_OCI_CONFIG.to_string(),
        digest: digest.to_owned(),
        size: config.len() as u64,
        annotations: None,
        platform: None,
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// `sha256:<hex>` of a file's content, streamed.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut w = HashWriter::new(io::sink());
    io::copy(&mut File::open(path)?, &mut w)?;
    Ok(w.finish().1)
}

/// Chain IDs of a list of diff_ids (OCI image spec: `ChainID(L0..Ln) =
/// sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))`).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Fake-secret helpers
// ---------------------------------------------------------------------------------------------

/// CRC-32 (IEEE, reflected polynomial 0xEDB88320), as zlib's `crc32`.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Base62 alphabet used by GitHub/npm token checksums.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` in base62, most significant digit first, left-padded with `'0'` to `width`.
pub fn base62(mut n: u64, width: usize) -> String {
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// A checksummed token: `prefix` + `body` + base62(crc32(body)) padded to 6 chars. With a
/// 30-char base62 `body` this is a format-valid GitHub (`ghp_`, `gho_`, ...) or npm (`npm_`)
/// token.
pub fn checksummed_token(prefix: &str, body: &str) -> String {
    format!("{prefix}{body}{}", base62(u64::from(crc32(body.as_bytes())), 6))
}

/// A JKS keystore in the Sun layout, as keytool writes it (version 2): one entry per tag (1
/// private key, 2 trusted certificate, 3 secret key), aliases `fake-ca-<i>`, `cert` as the
/// DER of each certificate, and a zeroed integrity digest (strata does not check it).
pub fn jks(tags: &[u32], cert: &[u8]) -> Vec<u8> {
    let mut d = vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2];
    d.extend((tags.len() as u32).to_be_bytes());
    for (i, &tag) in tags.iter().enumerate() {
        d.extend(tag.to_be_bytes());
        let alias = format!("fake-ca-{i}");
        d.extend((alias.len() as u16).to_be_bytes());
        d.extend(alias.as_bytes());
        d.extend(1_700_000_000_000u64.to_be_bytes());
        if tag == 1 {
            let protected_key = [0x30, 0x03, 0x02, 0x01, 0x00];
            d.extend((protected_key.len() as u32).to_be_bytes());
            d.extend(protected_key);
            d.extend(1u32.to_be_bytes()); // chain length
        }
        d.extend(5u16.to_be_bytes());
        d.extend(b"X.509");
        d.extend((cert.len() as u32).to_be_bytes());
        d.extend(cert);
    }
    d.extend([0u8; 20]);
    d
}

// ---------------------------------------------------------------------------------------------
// Deterministic text
// ---------------------------------------------------------------------------------------------

/// xorshift64* pseudo-random generator.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a seed (0 is remapped).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// log2 of the number of words in [`TextReader`]'s vocabulary.
const VOCAB_BITS: u32 = 9;
/// Number of words in [`TextReader`]'s vocabulary.
const VOCAB: usize = 1 << VOCAB_BITS;

/// Endless (until `size`) reader of deterministic pseudo-random printable text: lines of words
/// from a fixed 512-word vocabulary, skewed towards frequent words, with occasional numbers
/// and punctuation. gzip compresses it about 3.5x, like real source trees and logs.
pub struct TextReader {
    rng: XorShift,
    vocab: Vec<Vec<u8>>,
    pending: Vec<u8>,
    pos: usize,
    remaining: u64,
    line_len: usize,
}

impl TextReader {
    /// `size` bytes of text for `seed`.
    pub fn new(seed: u64, size: u64) -> TextReader {
        let mut vrng = XorShift::new(0x5EED_7E47);
        const ALPHA: &[u8] = b"etaoinshrdlcumwfgypbvkjxqz_";
        let vocab = (0..VOCAB)
            .map(|_| {
                let len = 2 + (vrng.next_u64() % 9) as usize;
                (0..len).map(|_| ALPHA[(vrng.next_u64() % ALPHA.len() as u64) as usize]).collect()
            })
            .collect();
        TextReader {
            rng: XorShift::new(seed),
            vocab,
            pending: Vec::with_capacity(64),
            pos: 0,
            remaining: size,
            line_len: 0,
        }
    }

    fn refill(&mut self) {
        self.pending.clear();
        self.pos = 0;
        let r = self.rng.next_u64();
        // Skew: the product of three uniforms favours small indices (frequent words).
        let w = self.rng.next_u64();
        let (a, b, c) = (w & 0xFFFF, (w >> 16) & 0xFFFF, (w >> 32) & 0xFFFF);
        let idx = ((a * b * c) >> (48 - VOCAB_BITS)) as usize;
        match (r >> 32) % 32 {
            0 => {
                let n = (r >> 40) % 100_000;
                self.pending.extend_from_slice(n.to_string().as_bytes());
            }
            1 => self.pending.extend_from_slice(b"= "),
            2 => self.pending.push(b'.'),
            _ => self.pending.extend_from_slice(&self.vocab[idx % VOCAB]),
        }
        self.line_len += self.pending.len() + 1;
        if self.line_len > 60 + ((r >> 56) as usize % 40) {
            self.pending.push(b'\n');
            self.line_len = 0;
        } else {
            self.pending.push(b' ');
        }
    }
}

impl Read for TextReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.remaining > 0 {
            if self.pos == self.pending.len() {
                self.refill();
            }
            let take = (self.pending.len() - self.pos)
                .min(buf.len() - n)
                .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            buf[n..n + take].copy_from_slice(&self.pending[self.pos..self.pos + take]);
            self.pos += take;
            n += take;
            self.remaining -= take as u64;
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming plumbing
// ---------------------------------------------------------------------------------------------

/// Writer that hashes and counts what passes through it.
pub(crate) struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashWriter { inner, hasher: Sha256::new(), count: 0 }
    }

    /// Returns the inner writer, `sha256:<hex>` and byte count.
    pub(crate) fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest, self.count)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A compressing (or pass-through) writer.
pub(crate) enum Enc<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Enc<W> {
    pub(crate) fn new(w: W, c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Enc::Plain(w),
            Compression::Gzip => {
                Enc::Gzip(flate2::write::GzEncoder::new(w, flate2::Compression::default()))
            }
            Compression::Zstd => Enc::Zstd(zstd::stream::write::Encoder::new(w, 3)?),
        })
    }

    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Enc::Plain(w) => Ok(w),
            Enc::Gzip(e) => e.finish(),
            Enc::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Enc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Enc::Plain(w) => w.write(buf),
            Enc::Gzip(e) => e.write(buf),
            Enc::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Enc::Plain(w) => w.flush(),
            Enc::Gzip(e) => e.flush(),
            Enc::Zstd(e) => e.flush(),
        }
    }
}

/// Temporary directory next to the output, removed on drop.
struct TempDir {
    path: PathBuf,
    counter: AtomicU64,
}

impl TempDir {
    fn new(out: &Path) -> io::Result<TempDir> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = format!(".{name}.imagegen-tmp-{}-{seq}", std::process::id());
        let path = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.join(dir),
            _ => PathBuf::from(dir),
        };
        fs::create_dir_all(&path)?;
        Ok(TempDir { path, counter: AtomicU64::new(0) })
    }

    fn file(&self) -> PathBuf {
        self.path.join(format!("blob-{}", self.counter.fetch_add(1, Ordering::Relaxed)))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------
// Layer tars
// ---------------------------------------------------------------------------------------------

/// One tar entry's header fields, with verbatim name and link bytes.
struct RawEntry<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    mode: u32,
    link: Option<&'a [u8]>,
    size: u64,
}

impl<'a> RawEntry<'a> {
    /// A regular file of `size` bytes (mode 644).
    fn file(name: &'a [u8], size: u64) -> Self {
        RawEntry { name, kind: tar::EntryType::Regular, mode: 0o644, link: None, size }
    }

    /// A directory (mode 755).
    fn dir(name: &'a [u8]) -> Self {
        RawEntry { name, kind: tar::EntryType::Directory, mode: 0o755, link: None, size: 0 }
    }

    /// A symbolic link to `target` (mode 777).
    fn symlink(name: &'a [u8], target: &'a [u8]) -> Self {
        RawEntry { name, kind: tar::EntryType::Symlink, mode: 0o777, link: Some(target), size: 0 }
    }

    /// A hard link to `target` (mode 644).
    fn hardlink(name: &'a [u8], target: &'a [u8]) -> Self {
        RawEntry { name, kind: tar::EntryType::Link, mode: 0o644, link: Some(target), size: 0 }
    }
}

/// Appends one tar entry with verbatim name/link bytes (GNU long-name records if > 100 bytes).
fn append_raw<W: Write, R: Read>(
    b: &mut tar::Builder<W>,
    entry: &RawEntry<'_>,
    data: R,
) -> io::Result<()> {
    let RawEntry { name, kind, mode, link, size } = *entry;
    if name.len() > 100 {
        append_long(b, tar::EntryType::GNULongName, name)?;
    }
    if let Some(l) = link
        && l.len() > 100
    {
        append_long(b, tar::EntryType::GNULongLink, l)?;
    }
    b.append(&raw_header(name, kind, mode, link, size), data)
}

/// One GNU header block with verbatim name/link bytes (cut to the 100-byte
/// fields), owner 0, mtime 0 and a valid checksum: what `append_raw`
/// writes, and what hand-built hostile tars start from.
pub fn raw_header(
    name: &[u8],
    kind: tar::EntryType,
    mode: u32,
    link: Option<&[u8]>,
    size: u64,
) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    copy_field(&mut h.as_old_mut().name, name);
    if let Some(l) = link {
        copy_field(&mut h.as_old_mut().linkname, l);
    }
    h.set_cksum();
    h
}

fn append_long<W: Write>(
    b: &mut tar::Builder<W>,
    kind: tar::EntryType,
    value: &[u8],
) -> io::Result<()> {
    let mut data = value.to_vec();
    data.push(0);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    copy_field(&mut h.as_old_mut().name, b"././@LongLink");
    h.set_cksum();
    b.append(&h, &data[..])
}

fn copy_field(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Spells a spec path in the layer's style (`dir` adds a trailing slash).
fn styled(path: &str, style: PathStyle, dir: bool) -> Vec<u8> {
    let p = path.trim_start_matches('/').trim_end_matches('/');
    let mut s = match style {
        PathStyle::Plain => p.to_string(),
        PathStyle::DotSlash => format!("./{p}"),
    };
    if dir {
        s.push('/');
    }
    s.into_bytes()
}

fn split_parent(path: &str) -> (&str, &str) {
    let p = path.trim_start_matches('/').trim_end_matches('/');
    match p.rfind('/') {
        Some(i) => (&p[..=i], &p[i + 1..]),
        None => ("", p),
    }
}

fn write_entries<W: Write>(b: &mut tar::Builder<W>, layer: &Layer) -> io::Result<()> {
    let st = layer.path_style;
    let empty = io::empty();
    for e in &layer.entries {
        match e {
            Entry::File { path, data } => {
                let n = styled(path, st, false);
                append_raw(b, &RawEntry::file(&n, data.len() as u64), &data[..])?
            }
            Entry::Zeros { path, size } => {
                let n = styled(path, st, false);
                let data = io::repeat(0).take(*size);
                append_raw(b, &RawEntry::file(&n, *size), data)?
            }
            Entry::Text { path, size, seed } => {
                let n = styled(path, st, false);
                append_raw(b, &RawEntry::file(&n, *size), TextReader::new(*seed, *size))?
            }
            Entry::Dir { path } => append_raw(b, &RawEntry::dir(&styled(path, st, true)), empty)?,
            Entry::Symlink { path, target } => {
                let n = styled(path, st, false);
                append_raw(b, &RawEntry::symlink(&n, target.as_bytes()), empty)?
            }
            Entry::Hardlink { path, target } => {
                let n = styled(path, st, false);
                let t = styled(target, st, false);
                append_raw(b, &RawEntry::hardlink(&n, &t), empty)?
            }
            Entry::Whiteout { path } => {
                let (parent, name) = split_parent(path);
                let n = styled(&format!("{parent}.wh.{name}"), st, false);
                append_raw(b, &RawEntry::file(&n, 0), empty)?
            }
            Entry::Opaque { dir } => {
                let d = dir.trim_start_matches('/').trim_end_matches('/');
                let p = if d.is_empty() {
                    ".wh..wh..opq".to_string()
                } else {
                    format!("{d}/.wh..wh..opq")
                };
                append_raw(b, &RawEntry::file(&styled(&p, st, false), 0), empty)?
            }
            Entry::RawName { name, data } => {
                append_raw(b, &RawEntry::file(name, data.len() as u64), &data[..])?
            }
        }
    }
    Ok(())
}

/// A layer blob written to a temp file.
struct LayerBlob {
    path: PathBuf,
    digest: String,
    size: u64,
    diff_id: String,
    media_type: &'static str,
}

/// Streams a layer: tar -> diff_id hasher -> compressor -> blob hasher -> temp file.
fn build_layer(layer: &Layer, path: PathBuf) -> io::Result<LayerBlob> {
    let file = BufWriter::with_capacity(1 << 16, File::create(&path)?);
    let enc = Enc::new(HashWriter::new(file), layer.compression)?;
    let mut builder = tar::Builder::new(HashWriter::new(enc));
    write_entries(&mut builder, layer)?;
    let (enc, diff_id, _) = builder.into_inner()?.finish();
    let (mut file, digest, size) = enc.finish()?.finish();
    file.flush()?;
    Ok(LayerBlob { path, digest, size, diff_id, media_type: layer.compression.layer_media_type() })
}

// ---------------------------------------------------------------------------------------------
// JSON documents
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, Clone, Debug)]
struct Platform {
    architecture: String,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

#[derive(Serialize, Clone, Debug)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
}

#[derive(Serialize)]
struct OciManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
struct OciIndex {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: String,
    manifests: Vec<Descriptor>,
}

#[derive(Serialize)]
struct RunConfig<'a> {
    #[serde(rename = "Env", skip_serializing_if = "<[String]>::is_empty")]
    env: &'a [String],
    #[serde(rename = "Cmd", skip_serializing_if = "<[String]>::is_empty")]
    cmd: &'a [String],
    #[serde(rename = "Entrypoint", skip_serializing_if = "<[String]>::is_empty")]
    entrypoint: &'a [String],
    #[serde(rename = "Labels", skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
    created_by: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty_layer: bool,
}

#[derive(Serialize)]
struct ImageConfig<'a> {
    architecture: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    os: &'a str,
    created: &'static str,
    config: RunConfig<'a>,
    rootfs: RootFs,
    history: Vec<History>,
}

#[derive(Serialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
    #[serde(rename = "LayerSources", skip_serializing_if = "Option::is_none")]
    layer_sources: Option<BTreeMap<String, Descriptor>>,
}

#[derive(Serialize)]
struct LegacyLayerJson<'a> {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    created: &'static str,
    container_config: LegacyContainerConfig<'a>,
    architecture: &'a str,
    os: &'a str,
}

#[derive(Serialize)]
struct LegacyContainerConfig<'a> {
    #[serde(rename = "Cmd")]
    cmd: Vec<&'a str>,
}

fn to_json<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(io::Error::other)
}

/// Truncates JSON to half its length (invalid JSON: unexpected EOF).
fn break_json(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.truncate(bytes.len() / 2);
    bytes
}

/// Changes the last hex digit of a digest.
fn wrong_digest(d: &str) -> String {
    let mut s = d.to_string();
    let last = if s.ends_with('0') { '1' } else { '0' };
    s.pop();
    s.push(last);
    s
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", hex_of(digest))
}

fn platform_of(spec: &ImageSpec) -> Platform {
    Platform {
        architecture: spec.architecture.clone(),
        os: spec.os.clone(),
        variant: spec.variant.clone(),
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

fn check_fault(fault: &Fault, format: Format, layers: usize) -> io::Result<()> {
    let idx = match fault {
        Fault::TruncateLayer(i)
        | Fault::MissingBlob(i)
        | Fault::WrongLayerDigest(i)
        | Fault::WrongDiffId(i) => Some(*i),
        _ => None,
    };
    if let Some(i) = idx
        && i >= layers
    {
        return Err(invalid("fault layer index out of range"));
    }
    let legacy = format == Format::DockerLegacy;
    match fault {
        Fault::WrongLayerDigest(_) | Fault::CorruptIndexJson if legacy => {
            Err(invalid("fault not applicable to the legacy docker format"))
        }
        Fault::CorruptDockerManifestJson
            if !matches!(format, Format::DockerLegacy | Format::DockerOci) =>
        {
            Err(invalid("manifest.json only exists in docker formats"))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Image assembly
// ---------------------------------------------------------------------------------------------

/// Content of an output entry.
enum Src {
    Dir,
    Bytes(Vec<u8>),
    /// A temp file, optionally cut to `limit` bytes.
    File {
        path: PathBuf,
        limit: Option<u64>,
    },
}

/// An image whose blobs are built.
struct BuiltImage {
    layers: Vec<LayerBlob>,
    /// Digest each layer is referenced by (differs from the real digest under a fault).
    claimed: Vec<String>,
    /// Layers not to write (MissingBlob).
    missing: BTreeSet<usize>,
    /// Layers to truncate.
    truncated: BTreeSet<usize>,
    config: Vec<u8>,
    manifest: Vec<u8>,
    info: ImageInfo,
}

impl BuiltImage {
    fn layer_src(&self, i: usize) -> Option<Src> {
        if self.missing.contains(&i) {
            return None;
        }
        let l = &self.layers[i];
        let limit = self.truncated.contains(&i).then_some(l.size / 2);
        Some(Src::File { path: l.path.clone(), limit })
    }
}

/// Streamed content (of [`Entry::Zeros`] and [`Entry::Text`]) from which an image's layers are
/// compressed in parallel: below it, threads cost more than they save, and the test suite
/// already runs many generators at once.
const PARALLEL_FROM: u64 = 64 << 20;

/// Bytes of content a layer produces on the fly.
fn streamed_bytes(layer: &Layer) -> u64 {
    layer
        .entries
        .iter()
        .map(|e| match e {
            Entry::Zeros { size, .. } | Entry::Text { size, .. } => *size,
            _ => 0,
        })
        .sum()
}

/// Builds every layer blob of `spec`, in parallel (one worker per core, at most one per layer)
/// when the layers are big. Each layer goes to its own file, so the bytes do not depend on
/// the order the workers finish in.
fn build_layers(spec: &ImageSpec, tmp: &TempDir) -> io::Result<Vec<LayerBlob>> {
    let paths: Vec<PathBuf> = spec.layers.iter().map(|_| tmp.file()).collect();
    let big = spec.layers.iter().map(streamed_bytes).sum::<u64>() >= PARALLEL_FROM;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = if big { cores.min(spec.layers.len()) } else { 1 };
    if workers <= 1 {
        return spec.layers.iter().zip(paths).map(|(l, p)| build_layer(l, p)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: Vec<std::sync::Mutex<Option<io::Result<LayerBlob>>>> =
        spec.layers.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(layer) = spec.layers.get(i) else { break };
                    let built = build_layer(layer, paths[i].clone());
                    if let Ok(mut slot) = done[i].lock() {
                        *slot = Some(built);
                    }
                }
            });
        }
    });
    done.into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(io::Error::other("a layer worker panicked")))
        })
        .collect()
}

fn build_image(spec: &ImageSpec, tmp: &TempDir, fault: &Fault) -> io::Result<BuiltImage> {
    let layers = build_layers(spec, tmp)?;
    let mut claimed: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
    let mut diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let mut missing = BTreeSet::new();
    let mut truncated = BTreeSet::new();
    match fault {
        Fault::WrongLayerDigest(i) => claimed[*i] = wrong_digest(&claimed[*i]),
        Fault::WrongDiffId(i) => diff_ids[*i] = wrong_digest(&diff_ids[*i]),
        Fault::MissingBlob(i) => {
            missing.insert(*i);
        }
        Fault::TruncateLayer(i) => {
            truncated.insert(*i);
        }
        _ => {}
    }

    let mut empties: Vec<&(usize, String)> = spec.empty_history.iter().collect();
    empties.sort_by_key(|(pos, _)| *pos);
    let mut history = Vec::new();
    let mut next_empty = empties.into_iter().peekable();
    for (i, layer) in spec.layers.iter().enumerate() {
        while let Some((_, created_by)) = next_empty.next_if(|(pos, _)| *pos <= i) {
            history.push(History {
                created: EPOCH,
                created_by: created_by.clone(),
                empty_layer: true,
            });
        }
        history.push(History {
            created: EPOCH,
            created_by: layer.created_by.clone(),
            empty_layer: false,
        });
    }
    for (_, created_by) in next_empty {
        history.push(History { created: EPOCH, created_by: created_by.clone(), empty_layer: true });
    }

    let config = ImageConfig {
        architecture: &spec.architecture,
        variant: spec.variant.as_deref(),
        os: &spec.os,
        created: EPOCH,
        config: RunConfig {
            env: &spec.env,
            cmd: &spec.cmd,
            entrypoint: &spec.entrypoint,
            labels: &spec.labels,
        },
        rootfs: RootFs { kind: "layers", diff_ids: diff_ids.clone() },
        history,
    };
    let mut config = to_json(&config)?;
    if *fault == Fault::CorruptConfigJson {
        config = break_json(config);
    }
    let config_digest = sha256_digest(&config);
    let manifest = OciManifest {
        schema_version: 2,
        media_type: MT_OCI_MANIFEST.to_string(),
        config: config_descriptor(&config, &config_digest),
        layers: layers
            .iter()
            .zip(&claimed)
            .map(|(l, d)| Descriptor {
                media_type: l.media_type.to_string(),
                digest: d.clone(),
                size: l.size,
                annotations: None,
                platform: None,
            })
            .collect(),
    };
    let mut manifest = to_json(&manifest)?;
    if *fault == Fault::CorruptManifestJson {
        manifest = break_json(manifest);
    }
    let info = ImageInfo {
        manifest_digest: sha256_digest(&manifest),
        manifest_size: manifest.len() as u64,
        config_digest,
        layer_digests: claimed.clone(),
        layer_sizes: layers.iter().map(|l| l.size).collect(),
        diff_ids,
    };
    Ok(BuiltImage { layers, claimed, missing, truncated, config, manifest, info })
}

/// Splits `repo:tag` (the tag defaults to `latest`).
fn split_tag(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "latest"),
    }
}

/// Index annotations for a tag: full reference for OCI layouts; docker 25 writes the full name
/// in `io.containerd.image.name` and only the tag in the OCI ref name.
fn ref_annotations(tag: &str, format: Format) -> Option<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    if format == Format::DockerOci {
        m.insert(ANN_CONTAINERD_NAME.to_string(), tag.to_string());
        m.insert(ANN_REF_NAME.to_string(), split_tag(tag).1.to_string());
    } else {
        m.insert(ANN_REF_NAME.to_string(), tag.to_string());
    }
    Some(m)
}

fn manifest_descriptor(
    img: &BuiltImage,
    platform: Option<Platform>,
    annotations: Option<BTreeMap<String, String>>,
) -> Descriptor {
    Descriptor {
        media_type: MT_OCI_MANIFEST.to_string(),
        digest: img.info.manifest_digest.clone(),
        size: img.info.manifest_size,
        annotations,
        platform,
    }
}

/// Builds a buildx-style attestation manifest for `img`; returns its index descriptor and blobs.
fn attestation(
    spec: &ImageSpec,
    img: &BuiltImage,
    tag: Option<&str>,
) -> io::Result<(Descriptor, Vec<(String, Src)>)> {
    let mut platform = format!("{}/{}", spec.os, spec.architecture);
    if let Some(v) = &spec.variant {
        platform.push('/');
        platform.push_str(v);
    }
    let name = tag.unwrap_or("example.test/unnamed:latest");
    let args: BTreeMap<String, String> =
        spec.build_args.iter().map(|(k, v)| (format!("build-arg:{k}"), v.clone())).collect();
    let subject = serde_json::json!([{
        "name": format!("pkg:docker/{name}?platform={}", platform.replace('/', "%2F")),
        "digest": { "sha256": hex_of(&img.info.manifest_digest) },
    }]);
    let (provenance_type, provenance) = if spec.slsa_v1 {
        (
            "https://slsa.dev/provenance/v1",
            serde_json::json!({
                "buildDefinition": {
                    "buildType": "https://mobyproject.org/buildkit@v1",
                    "externalParameters": {
                        "configSource": { "path": "Dockerfile" },
                        "request": { "frontend": "dockerfile.v0", "args": args },
                    },
                },
                "runDetails": {
                    "builder": { "id": "" },
                    "metadata": { "invocationID": "imagegen" },
                },
            }),
        )
    } else {
        (
            "https://slsa.dev/provenance/v0.2",
            serde_json::json!({
                "builder": { "id": "" },
                "buildType": "https://mobyproject.org/buildkit@v1",
                "invocation": {
                    "configSource": { "entryPoint": "Dockerfile" },
                    "parameters": { "frontend": "dockerfile.v0", "args": args },
                },
                "metadata": { "buildInvocationID": "imagegen", "reproducible": true },
            }),
        )
    };
    let mut statements = vec![(provenance_type.to_string(), provenance)];
    statements.extend(spec.extra_attestations.iter().cloned());
    let mut blobs = Vec::new();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (predicate_type, predicate) in statements {
        let statement = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": predicate_type,
            "subject": subject,
            "predicate": predicate,
        });
        let intoto = to_json(&statement)?;
        let intoto_digest = sha256_digest(&intoto);
        let mut layer_ann = BTreeMap::new();
        layer_ann.insert("in-toto.io/predicate-type".to_string(), predicate_type);
        layers.push(Descriptor {
            media_type: MT_IN_TOTO.to_string(),
            digest: intoto_digest.clone(),
            size: intoto.len() as u64,
            annotations: Some(layer_ann),
            platform: None,
        });
        diff_ids.push(intoto_digest.clone());
        blobs.push((intoto_digest, Src::Bytes(intoto)));
    }
    let config = serde_json::json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = to_json(&config)?;
    let config_digest = sha256_digest(&config);
    let manifest = OciManifest {
        schema_version: 2,
        media_type: MT_OCI_MANIFEST.to_string(),
        config: config_descriptor(&config, &config_digest),
        layers,
    };
    let manifest = to_json(&manifest)?;
    let manifest_digest = sha256_digest(&manifest);
    let mut ann = BTreeMap::new();
    ann.insert("vnd.docker.reference.digest".to_string(), img.info.manifest_digest.clone());
    ann.insert("vnd.docker.reference.type".to_string(), "attestation-manifest".to_string());
    let desc = Descriptor {
        media_type: MT_OCI_MANIFEST.to_string(),
        digest: manifest_digest.clone(),
        size: manifest.len() as u64,
        annotations: Some(ann),
        platform: Some(Platform {
            architecture: "unknown".into(),
            os: "unknown".into(),
            variant: None,
        }),
    };
    blobs.push((config_digest, Src::Bytes(config)));
    blobs.push((manifest_digest, Src::Bytes(manifest)));
    Ok((desc, blobs))
}

/// Output entries of an OCI layout (optionally with docker's `manifest.json`/`repositories`).
fn oci_entries(
    images: &[BuiltImage],
    extra: Vec<(String, Src)>,
    index: &OciIndex,
    docker: Option<(&[ImageSpec], &[BuiltImage])>,
    opts: &WriteOptions,
) -> io::Result<Vec<(String, Src)>> {
    let mut blobs: Vec<(String, Src)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |digest: &str, src: Option<Src>, blobs: &mut Vec<(String, Src)>| {
        if let Some(src) = src
            && seen.insert(digest.to_string())
        {
            blobs.push((blob_path(digest), src));
        }
    };
    for img in images {
        for i in 0..img.layers.len() {
            push(&img.claimed[i], img.layer_src(i), &mut blobs);
        }
        push(&img.info.config_digest, Some(Src::Bytes(img.config.clone())), &mut blobs);
        push(&img.info.manifest_digest, Some(Src::Bytes(img.manifest.clone())), &mut blobs);
    }
    for (digest, src) in extra {
        push(&digest, Some(src), &mut blobs);
    }

    let mut meta: Vec<(String, Src)> = Vec::new();
    let mut index_json = to_json(index)?;
    if opts.fault == Fault::CorruptIndexJson {
        index_json = break_json(index_json);
    }
    meta.push(("index.json".into(), Src::Bytes(index_json)));
    if let Some((specs, imgs)) = docker {
        let mut entries = Vec::new();
        let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (spec, img) in specs.iter().zip(imgs) {
            let mut sources = BTreeMap::new();
            for (i, l) in img.layers.iter().enumerate() {
                sources.insert(
                    img.info.diff_ids[i].clone(),
                    Descriptor {
                        media_type: l.media_type.to_string(),
                        digest: img.claimed[i].clone(),
                        size: l.size,
                        annotations: None,
                        platform: None,
                    },
                );
            }
            entries.push(DockerManifestEntry {
                config: blob_path(&img.info.config_digest),
                repo_tags: (!spec.repo_tags.is_empty()).then(|| spec.repo_tags.clone()),
                layers: img.claimed.iter().map(|d| blob_path(d)).collect(),
                layer_sources: Some(sources),
            });
            for tag in &spec.repo_tags {
                let (repo, t) = split_tag(tag);
                let top = img.claimed.last().map_or("", |d| hex_of(d)).to_string();
                repos.entry(repo.to_string()).or_default().insert(t.to_string(), top);
            }
        }
        let mut manifest_json = to_json(&entries)?;
        if opts.fault == Fault::CorruptDockerManifestJson {
            manifest_json = break_json(manifest_json);
        }
        meta.push(("manifest.json".into(), Src::Bytes(manifest_json)));
        meta.push(("oci-layout".into(), Src::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec())));
        if !repos.is_empty() {
            meta.push(("repositories".into(), Src::Bytes(to_json(&repos)?)));
        }
    } else {
        meta.push(("oci-layout".into(), Src::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec())));
    }

    let dirs = vec![("blobs/".to_string(), Src::Dir), ("blobs/sha256/".to_string(), Src::Dir)];
    let mut out = Vec::new();
    if opts.metadata_first {
        meta.sort_by(|a, b| {
            let rank = |p: &str| if p == "oci-layout" { 0 } else { 1 };
            rank(&a.0).cmp(&rank(&b.0))
        });
        out.extend(meta);
        out.extend(dirs);
        out.extend(blobs);
    } else {
        out.extend(dirs);
        out.extend(blobs);
        out.extend(meta);
    }
    Ok(out)
}

/// Output entries of a classic `docker save` archive.
fn legacy_entries(
    specs: &[ImageSpec],
    images: &[BuiltImage],
    opts: &WriteOptions,
) -> io::Result<Vec<(String, Src)>> {
    let mut layer_entries = Vec::new();
    let mut config_entries = Vec::new();
    let mut seen = BTreeSet::new();
    let mut manifest = Vec::new();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (spec, img) in specs.iter().zip(images) {
        let real_diff_ids: Vec<String> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
        let ids: Vec<String> =
            chain_ids(&real_diff_ids).iter().map(|c| hex_of(c).to_string()).collect();
        let mut layer_paths = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            layer_paths.push(format!("{id}/layer.tar"));
            if !seen.insert(id.clone()) {
                continue;
            }
            let json = LegacyLayerJson {
                id: id.clone(),
                parent: i.checked_sub(1).map(|p| ids[p].clone()),
                created: EPOCH,
                container_config: LegacyContainerConfig {
                    cmd: vec![spec.layers[i].created_by.as_str()],
                },
                architecture: &spec.architecture,
                os: &spec.os,
            };
            layer_entries.push((format!("{id}/"), Src::Dir));
            layer_entries.push((format!("{id}/VERSION"), Src::Bytes(b"1.0".to_vec())));
            layer_entries.push((format!("{id}/json"), Src::Bytes(to_json(&json)?)));
            if let Some(src) = img.layer_src(i) {
                layer_entries.push((format!("{id}/layer.tar"), src));
            }
        }
        let config_name = format!("{}.json", hex_of(&img.info.config_digest));
        if seen.insert(config_name.clone()) {
            config_entries.push((config_name.clone(), Src::Bytes(img.config.clone())));
        }
        manifest.push(DockerManifestEntry {
            config: config_name,
            repo_tags: (!spec.repo_tags.is_empty()).then(|| spec.repo_tags.clone()),
            layers: layer_paths,
            layer_sources: None,
        });
        for tag in &spec.repo_tags {
            let (repo, t) = split_tag(tag);
            let top = ids.last().cloned().unwrap_or_default();
            repos.entry(repo.to_string()).or_default().insert(t.to_string(), top);
        }
    }
    let mut manifest_json = to_json(&manifest)?;
    if matches!(opts.fault, Fault::CorruptManifestJson | Fault::CorruptDockerManifestJson) {
        manifest_json = break_json(manifest_json);
    }
    let mut meta = vec![("manifest.json".to_string(), Src::Bytes(manifest_json))];
    if !repos.is_empty() {
        meta.push(("repositories".to_string(), Src::Bytes(to_json(&repos)?)));
    }
    let mut out = Vec::new();
    if opts.metadata_first {
        out.extend(meta);
        out.extend(config_entries);
        out.extend(layer_entries);
    } else {
        out.extend(layer_entries);
        out.extend(config_entries);
        out.extend(meta);
    }
    Ok(out)
}

/// Writes the entries to a tar file or a directory.
fn emit(format: Format, out: &Path, entries: Vec<(String, Src)>, fault: &Fault) -> io::Result<()> {
    let omit = match fault {
        Fault::OmitPath(p) => Some(p.trim_end_matches('/')),
        _ => None,
    };
    let entries = entries.into_iter().filter(|(p, _)| Some(p.trim_end_matches('/')) != omit);
    if format.is_archive() {
        let file = BufWriter::with_capacity(1 << 16, File::create(out)?);
        let mut b = tar::Builder::new(file);
        for (path, src) in entries {
            let name = path.as_bytes();
            match src {
                Src::Dir => append_raw(&mut b, &RawEntry::dir(name), io::empty())?,
                Src::Bytes(data) => {
                    append_raw(&mut b, &RawEntry::file(name, data.len() as u64), &data[..])?
                }
                Src::File { path: src, limit } => {
                    let f = File::open(&src)?;
                    let len = f.metadata()?.len();
                    let size = limit.unwrap_or(len).min(len);
                    let r = io::BufReader::new(f).take(size);
                    append_raw(&mut b, &RawEntry::file(name, size), r)?
                }
            }
        }
        b.into_inner()?.flush()
    } else {
        fs::create_dir_all(out)?;
        // Temp file -> first destination, so a blob referenced twice can be copied.
        let mut moved: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
        for (path, src) in entries {
            let dest = out.join(&path);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            match src {
                Src::Dir => fs::create_dir_all(&dest)?,
                Src::Bytes(data) => fs::write(&dest, &data)?,
                Src::File { path: src, limit: Some(limit) } => {
                    let mut r = File::open(&src)?.take(limit);
                    let mut w = BufWriter::new(File::create(&dest)?);
                    io::copy(&mut r, &mut w)?;
                    w.flush()?;
                }
                Src::File { path: src, limit: None } => match moved.get(&src) {
                    Some(first) => {
                        fs::copy(first, &dest)?;
                    }
                    None => {
                        if fs::rename(&src, &dest).is_err() {
                            fs::copy(&src, &dest)?;
                        }
                        moved.insert(src, dest);
                    }
                },
            }
        }
        Ok(())
    }
}
