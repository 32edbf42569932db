//! Streams one layer: decompresses it (compression from magic bytes), walks
//! its tar entries in one pass with constant memory, hands each regular
//! file's bytes to a visitor, builds the layer's [`LayerIndex`], and checks
//! the blob digest and diff_id on the way.

use std::io::{self, BufRead, BufReader, Read};

use sha2::{Digest as _, Sha256};
use xxhash_rust::xxh3::Xxh3;

use super::compression::Compression;
use super::path::{WhiteoutName, classify, decode_name, normalize};
use super::whiteout::{LayerIndex, NodeKind};
use super::{Error, Image, Layer};
use crate::diagnostics::Diagnostics;
use crate::progress::LayerProgress;

/// Read buffer between the decompressor and the tar parser.
const TAR_BUFFER: usize = 256 * 1024;

/// What a tar entry is, after whiteout names are recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; its bytes follow.
    File,
    /// A hardlink to an earlier entry (absolute image path).
    Hardlink(String),
    /// A symbolic link, with its target as written (never followed).
    Symlink(String),
    /// A directory.
    Dir,
    /// `.wh.NAME`: deletes this absolute path from lower layers.
    Whiteout(String),
    /// `.wh..wh..opq`: hides lower layers' contents of this directory.
    Opaque(String),
    /// Device, fifo or other special file.
    Other,
}

/// One entry as the visitor sees it.
#[derive(Debug)]
pub struct Entry<'a> {
    /// Normalised absolute image path of the entry itself.
    pub path: &'a str,
    /// What the entry is.
    pub kind: &'a EntryKind,
    /// Size of the entry's content in bytes (0 for non-files).
    pub size: u64,
}

/// Whether the walk should go on after an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep walking.
    Continue,
    /// Stop here (the rest of the layer is not read, nor its digest checked).
    Stop,
}

/// What a completed (or interrupted) walk learned.
#[derive(Debug, Default)]
pub struct WalkSummary {
    /// The layer's changes, for status resolution.
    pub index: LayerIndex,
    /// Compression found by magic bytes.
    pub compression: Option<Compression>,
    /// Uncompressed bytes read.
    pub uncompressed_bytes: u64,
    /// Regular files seen.
    pub files: u64,
}

/// The callback a walk calls for every entry; regular files come with their bytes.
pub type Visitor<'v> = dyn FnMut(&Entry<'_>, Option<&mut dyn Read>) -> io::Result<Flow> + 'v;

/// A reader that feeds everything it reads to a hasher.
struct Hashing<R, H> {
    inner: R,
    hasher: H,
    count: u64,
}

trait Update {
    fn update(&mut self, bytes: &[u8]);
}

impl Update for Sha256 {
    fn update(&mut self, bytes: &[u8]) {
        sha2::Digest::update(self, bytes);
    }
}

/// No hashing (diff_id checks turned off for compressed layers).
impl Update for Option<Sha256> {
    fn update(&mut self, bytes: &[u8]) {
        if let Some(h) = self {
            sha2::Digest::update(h, bytes);
        }
    }
}

impl Update for Xxh3 {
    fn update(&mut self, bytes: &[u8]) {
        Xxh3::update(self, bytes);
    }
}

impl<R: Read, H: Update> Read for Hashing<R, H> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Reports bytes read to a progress bar.
struct Counted<'a> {
    inner: Box<dyn Read + 'a>,
    progress: LayerProgress,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

type Compressed<'a> = BufReader<Hashing<Box<dyn Read + 'a>, Option<Sha256>>>;

/// The decompressor chosen by magic bytes, kept concrete so the compressed
/// stream can be drained and its digest finished after the tar ends.
enum Decoder<'a> {
    Plain(Compressed<'a>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<Compressed<'a>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, Compressed<'a>>>),
}

impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

impl<'a> Decoder<'a> {
    fn new(mut input: Compressed<'a>) -> io::Result<(Compression, Decoder<'a>)> {
        let kind = Compression::sniff(input.fill_buf()?);
        let decoder = match kind {
            Compression::None => Decoder::Plain(input),
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(input)))
            }
            Compression::Zstd => {
                Decoder::Zstd(Box::new(zstd::stream::read::Decoder::with_buffer(input)?))
            }
        };
        Ok((kind, decoder))
    }

    fn into_inner(self) -> Compressed<'a> {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.into_inner(),
            Decoder::Zstd(r) => (*r).finish(),
        }
    }
}

/// Walks one layer of `image`, calling `visit` for every entry; regular
/// files come with a reader over their bytes (the visitor may read all,
/// some or none of them).
///
/// Entries whose names escape the root are reported to `diag` and skipped.
/// Digest mismatches are warnings. The summary is returned even when the
/// walk fails part-way, so what was read still counts.
pub fn walk(
    image: &Image,
    layer: &Layer,
    diag: &Diagnostics,
    visit: &mut Visitor<'_>,
) -> (WalkSummary, Option<Error>) {
    walk_with_progress(image, layer, diag, &LayerProgress::hidden(), visit)
}

/// [`walk`], counting stored (compressed) bytes read into `progress`.
pub fn walk_with_progress(
    image: &Image,
    layer: &Layer,
    diag: &Diagnostics,
    progress: &LayerProgress,
    visit: &mut Visitor<'_>,
) -> (WalkSummary, Option<Error>) {
    match image.store.open(&layer.member) {
        Ok(blob) => walk_blob(image, layer, blob, diag, progress, visit),
        Err(e) => (WalkSummary::default(), Some(e)),
    }
}

/// [`walk_with_progress`] over a blob the caller already opened: a layer
/// that arrives inside a stream (a `docker save` export read as it comes)
/// rather than from the image's store. `layer` still names it in messages
/// and gives the digests to check.
pub fn walk_blob(
    image: &Image,
    layer: &Layer,
    blob: Box<dyn Read + '_>,
    diag: &Diagnostics,
    progress: &LayerProgress,
    visit: &mut Visitor<'_>,
) -> (WalkSummary, Option<Error>) {
    let mut summary = WalkSummary::default();
    if image.index_names {
        summary.index = LayerIndex::with_names();
    }
    let what = format!("layer {} ({})", layer.index, layer.digest);
    let fail =
        |reason: String| Error::Invalid { file: image.target.clone(), what: what.clone(), reason };
    let blob: Box<dyn Read + '_> = Box::new(Counted { inner: blob, progress: progress.clone() });
    let compressed = BufReader::with_capacity(
        TAR_BUFFER,
        Hashing { inner: blob, hasher: Some(Sha256::new()), count: 0 },
    );
    let (kind, decoder) = match Decoder::new(compressed) {
        Ok(d) => d,
        Err(e) => return (summary, Some(fail(format!("cannot start decompression: {e}")))),
    };
    summary.compression = Some(kind);
    // An uncompressed blob's digest already covers its content; for compressed ones
    // the diff_id costs a second SHA-256 over every byte, which the user may decline.
    let hash_diff_id = image.verify_diff_ids || kind == Compression::None;
    let uncompressed = Hashing { inner: decoder, hasher: hash_diff_id.then(Sha256::new), count: 0 };
    let mut archive = tar::Archive::new(BufReader::with_capacity(TAR_BUFFER, uncompressed));
    let walked = walk_entries(&mut archive, image, layer, diag, &mut summary, visit);
    let tar_error = match walked {
        Ok(Flow::Stop) => return (summary, None),
        Ok(Flow::Continue) => None,
        Err(e) => Some(e),
    };
    // Finish both digests: the tar parser stops at its end marker, the blob may go on.
    let mut uncompressed = archive.into_inner().into_inner();
    if let Err(e) = io::copy(&mut uncompressed, &mut io::sink()) {
        let e = tar_error.unwrap_or(e);
        return (summary, Some(fail(describe(kind, &e))));
    }
    summary.uncompressed_bytes = uncompressed.count;
    let diff_id = match uncompressed.hasher.take() {
        Some(h) => Some(format!("sha256:{}", hex::encode(h.finalize()))),
        // Only a stream that ended early needs the diff_id to be judged: hash it again.
        None if tar_error.is_some() => diff_id_of(image, layer).ok(),
        None => None,
    };
    let diff_id_ok = diff_id.is_some() && layer.diff_id == diff_id;
    if let Some(e) = tar_error {
        if !diff_id_ok {
            return (summary, Some(fail(describe(kind, &e))));
        }
        // Some builders (umoci before 0.5) omit the final padding and end-of-archive
        // blocks. The bytes are exactly what the builder recorded, so nothing is lost.
        diag.warn(format!(
            "{}: {what}: tar stream ends early ({e}), but matches its diff_id: every entry was read",
            image.target
        ));
    }
    let mut compressed = uncompressed.inner.into_inner();
    if let Err(e) = io::copy(&mut compressed, &mut io::sink()) {
        return (summary, Some(fail(describe(kind, &e))));
    }
    let blob_hash = compressed.into_inner().hasher.map(|h| hex::encode(h.finalize()));
    let blob_digest = format!("sha256:{}", blob_hash.unwrap_or_default());
    if layer.verify_digest && layer.digest.starts_with("sha256:") && blob_digest != layer.digest {
        diag.warn(format!(
            "{}: {what}: digest mismatch, blob hashes to {blob_digest}",
            image.target
        ));
    }
    if let (Some(claimed), Some(diff_id)) = (&layer.diff_id, &diff_id)
        && claimed.starts_with("sha256:")
        && claimed != diff_id
    {
        diag.warn(format!(
            "{}: {what}: diff_id mismatch, config claims {claimed} but the uncompressed layer hashes to {diff_id}",
            image.target
        ));
    }
    (summary, None)
}

/// The SHA-256 of a layer's uncompressed bytes, in a pass of its own.
fn diff_id_of(image: &Image, layer: &Layer) -> Result<String, Error> {
    let blob: Box<dyn Read> = image.store.open(&layer.member)?;
    let input =
        BufReader::with_capacity(TAR_BUFFER, Hashing { inner: blob, hasher: None, count: 0 });
    let (_, decoder) = Decoder::new(input).map_err(|e| Error::io(&image.target, e))?;
    let mut hashing = Hashing { inner: decoder, hasher: Sha256::new(), count: 0 };
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| Error::io(&image.target, e))?;
    Ok(format!("sha256:{}", hex::encode(hashing.hasher.finalize())))
}

fn describe(kind: Compression, e: &io::Error) -> String {
    let lead = match (kind, e.kind()) {
        (Compression::None, io::ErrorKind::UnexpectedEof) => "truncated tar stream",
        (Compression::None, _) => "unreadable tar stream",
        (_, io::ErrorKind::UnexpectedEof) => "truncated compressed stream",
        _ => "corrupt layer",
    };
    format!("{lead} ({} compression): {e}", kind.name())
}

fn walk_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    image: &Image,
    layer: &Layer,
    diag: &Diagnostics,
    summary: &mut WalkSummary,
    visit: &mut Visitor<'_>,
) -> io::Result<Flow> {
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = decode_name(&entry.path_bytes());
        let path = match normalize(&raw) {
            Ok(p) => p,
            Err(problem) => {
                if !matches!(problem, super::path::PathProblem::Empty) {
                    diag.warn(format!(
                        "{}: layer {}: entry {raw:?}: {problem}; ignored",
                        image.target, layer.index
                    ));
                }
                continue;
            }
        };
        let header_kind = entry.header().entry_type();
        let kind = match classify(&path) {
            WhiteoutName::AufsMeta => continue,
            WhiteoutName::Whiteout(target) => EntryKind::Whiteout(target),
            WhiteoutName::Opaque(dir) => EntryKind::Opaque(dir),
            WhiteoutName::None => entry_kind(header_kind, &entry, &raw),
        };
        let size = if kind == EntryKind::File { entry.size() } else { 0 };
        let view = Entry { path: &path, kind: &kind, size };
        let flow = match &kind {
            EntryKind::File => {
                summary.files += 1;
                let mut content = Hashing { inner: &mut entry, hasher: Xxh3::new(), count: 0 };
                let flow = visit(&view, Some(&mut content))?;
                io::copy(&mut content, &mut io::sink())?;
                summary.index.write(path.clone(), NodeKind::Content(content.hasher.digest()));
                flow
            }
            other => {
                let flow = visit(&view, None)?;
                record(&mut summary.index, &path, other);
                flow
            }
        };
        if flow == Flow::Stop {
            return Ok(Flow::Stop);
        }
    }
    Ok(Flow::Continue)
}

fn entry_kind<R: Read>(
    header_kind: tar::EntryType,
    entry: &tar::Entry<'_, R>,
    raw: &str,
) -> EntryKind {
    let link = || entry.link_name_bytes().map(|b| decode_name(&b)).unwrap_or_default();
    match header_kind {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            EntryKind::File
        }
        tar::EntryType::Link => match normalize(&link()) {
            Ok(target) => EntryKind::Hardlink(target),
            Err(_) => EntryKind::Other,
        },
        tar::EntryType::Symlink => EntryKind::Symlink(link()),
        tar::EntryType::Directory => EntryKind::Dir,
        // Pre-POSIX archives mark directories only by a trailing slash.
        _ if raw.ends_with('/') => EntryKind::Dir,
        _ => EntryKind::Other,
    }
}

fn record(index: &mut LayerIndex, path: &str, kind: &EntryKind) {
    match kind {
        EntryKind::File => {}
        EntryKind::Hardlink(target) => {
            // The link shares its target's bytes, so it has the same identity.
            let node = match index.written(target) {
                Some(NodeKind::Content(h)) => NodeKind::Content(h),
                _ => NodeKind::Other,
            };
            index.write(path.to_owned(), node);
        }
        EntryKind::Symlink(target) => {
            index.write(
                path.to_owned(),
                NodeKind::Symlink(xxhash_rust::xxh3::xxh3_64(target.as_bytes())),
            );
        }
        EntryKind::Dir => index.write(path.to_owned(), NodeKind::Dir),
        EntryKind::Whiteout(target) => index.whiteout(target.clone()),
        EntryKind::Opaque(dir) => index.opaque(dir.clone()),
        EntryKind::Other => index.write(path.to_owned(), NodeKind::Other),
    }
}
