//! Streams one layer: decompresses it (compression from magic bytes), walks
//! its tar entries in one pass with constant memory, hands each regular
//! file's bytes to a visitor, builds the layer's [`LayerIndex`], and checks
//! the blob digest and diff_id on the way.

use std::io::{self, BufRead, BufReader, Read};

use sha2::{Digest as _, Sha256};
use xxhash_rust::xxh3::Xxh3;

use super::compression::Compression;
use super::path::{WhiteoutName, classify, decode_name, normalize};
use super::tarstream::{End, Next, RawEntry, RawKind, TarError, TarLimits, TarReader};
use super::whiteout::{LayerIndex, MAX_VERSIONS, NodeKind};
use super::{Error, Image, Layer};
use crate::diagnostics::Diagnostics;
use crate::progress::LayerProgress;

/// Read buffer between the decompressor and the tar parser.
const TAR_BUFFER: usize = 256 * 1024;

/// Deepest entry path read, in components: deeper entries are reported as
/// not read. Linux paths reach at most 2048 components within PATH_MAX, real
/// images a few dozen; the index holds one key per directory, so depth times
/// entries bounds its memory.
pub const MAX_PATH_DEPTH: usize = 1024;

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
    /// 1-based position of the entry in the layer (what [`LayerIndex`] records).
    pub ordinal: u32,
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
    /// Entries not read because a budget was exceeded, each described.
    pub unread: Vec<String>,
    /// SHA-256 of the blob as read, when the whole blob was read.
    pub blob_digest: Option<String>,
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
    let mut tar =
        TarReader::new(BufReader::with_capacity(TAR_BUFFER, uncompressed), TarLimits::default());
    let walked = walk_entries(&mut tar, image, layer, diag, &mut summary, visit);
    let end = match walked {
        Ok(Walked::Stopped) => return (summary, None),
        Ok(Walked::End(end)) => Ok(end),
        Err(e) => Err(e),
    };
    // Finish both digests: the tar parser stops at its end marker, the blob may go on.
    // Read the rest through the parser's buffer, which may hold some of it already.
    let parsed = tar.position();
    let mut buffered = tar.into_inner();
    let rest = match drain(&mut buffered, parsed) {
        Ok(rest) => rest,
        Err(e) => return (summary, Some(fail(describe(kind, &e)))),
    };
    let mut uncompressed = buffered.into_inner();
    summary.uncompressed_bytes = uncompressed.count;
    match end {
        Err(WalkError::Read(e)) => return (summary, Some(fail(describe(kind, &e)))),
        Err(WalkError::Tar(e)) => {
            if let Some(io) = &e.io {
                return (summary, Some(fail(describe(kind, io))));
            }
            // What was not parsed was not scanned: the layer is incomplete.
            let unread = uncompressed.count.saturating_sub(e.offset);
            return (
                summary,
                Some(fail(format!(
                    "{e}; the {unread} bytes from there on were not read (not a valid tar stream, {} compression)",
                    kind.name()
                ))),
            );
        }
        Ok(End::Marker) if rest.nonzero > 0 => {
            return (
                summary,
                Some(fail(format!(
                    "{} bytes of data follow the tar end-of-archive marker (first at byte {}) and were not read",
                    rest.nonzero,
                    rest.first_nonzero.unwrap_or_default()
                ))),
            );
        }
        Ok(End::Marker) => {}
        Ok(End::NoMarker) => {
            // Some builders (umoci before 0.5) omit the final padding and end-of-archive
            // blocks; the stream stopped at an entry boundary, so every entry was read.
            diag.warn(format!(
                "{}: {what}: tar stream ends early, without its end-of-archive marker, at an entry boundary: every entry was read",
                image.target
            ));
        }
    }
    let diff_id =
        uncompressed.hasher.take().map(|h| format!("sha256:{}", hex::encode(h.finalize())));
    let mut compressed = uncompressed.inner.into_inner();
    if let Err(e) = io::copy(&mut compressed, &mut io::sink()) {
        return (summary, Some(fail(describe(kind, &e))));
    }
    let blob_hash = compressed.into_inner().hasher.map(|h| hex::encode(h.finalize()));
    let blob_digest = format!("sha256:{}", blob_hash.unwrap_or_default());
    summary.blob_digest = Some(blob_digest.clone());
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

/// What followed the end of the tar archive in its stream.
struct Rest {
    /// Non-zero bytes.
    nonzero: u64,
    /// Offset (in the whole stream) of the first non-zero byte.
    first_nonzero: Option<u64>,
}

/// Reads the rest of a stream, noting any non-zero byte (zero padding is normal).
fn drain(r: &mut impl Read, from: u64) -> io::Result<Rest> {
    let mut rest = Rest { nonzero: 0, first_nonzero: None };
    let mut buf = vec![0u8; 64 << 10];
    let mut before = from;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(rest),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        if let Some(i) = chunk.iter().position(|&b| b != 0) {
            rest.first_nonzero.get_or_insert(before + i as u64);
            rest.nonzero += chunk.iter().filter(|&&b| b != 0).count() as u64;
        }
        before += n as u64;
    }
}

fn describe(kind: Compression, e: &io::Error) -> String {
    let lead = match (kind, e.kind()) {
        (Compression::None, io::ErrorKind::UnexpectedEof) => "truncated tar stream",
        (Compression::None, _) => "unreadable tar stream",
        (_, io::ErrorKind::UnexpectedEof) => "truncated compressed stream",
        _ => "corrupt layer",
    };
    // The tar crate's messages quote header bytes: for a blob that is not a tar, its content.
    format!("{lead} ({} compression): {}", kind.name(), crate::redact::io_error_text(e))
}

/// How the entry loop ended.
enum Walked {
    /// The visitor asked to stop.
    Stopped,
    /// The archive ended.
    End(End),
}

/// Why the entry loop failed.
enum WalkError {
    /// The stream is not a valid tar from some offset on.
    Tar(TarError),
    /// Reading an entry's data failed (decompression, truncation).
    Read(io::Error),
}

fn walk_entries<R: Read>(
    tar: &mut TarReader<R>,
    image: &Image,
    layer: &Layer,
    diag: &Diagnostics,
    summary: &mut WalkSummary,
    visit: &mut Visitor<'_>,
) -> Result<Walked, WalkError> {
    let mut ordinal: u32 = 0;
    loop {
        let raw = match tar.next_entry().map_err(WalkError::Tar)? {
            Next::End(end) => return Ok(Walked::End(end)),
            Next::Entry(e) => e,
        };
        ordinal = ordinal.saturating_add(1);
        for note in &raw.notes {
            diag.warn(format!("{}: layer {}: {note}", image.target, layer.index));
        }
        let name = decode_name(&raw.name);
        if let Some(why) = &raw.unread {
            summary.unread.push(format!(
                "entry at byte {} ({} bytes): {why}; not read",
                raw.offset, raw.size
            ));
            continue;
        }
        let path = match normalize(&name) {
            Ok(p) => p,
            Err(problem) => {
                if !matches!(problem, super::path::PathProblem::Empty) {
                    diag.warn(format!(
                        "{}: layer {}: entry {name:?}: {problem}; ignored",
                        image.target, layer.index
                    ));
                }
                continue;
            }
        };
        let depth = path.bytes().filter(|&b| b == b'/').count();
        if depth > MAX_PATH_DEPTH {
            summary.unread.push(format!(
                "entry at byte {} ({} bytes): its path has {depth} components, more than the {MAX_PATH_DEPTH}-component limit; not read",
                raw.offset, raw.size
            ));
            continue;
        }
        if summary.index.versions(&path) >= MAX_VERSIONS {
            summary.unread.push(format!(
                "entry at byte {} ({} bytes): {path:?} is written more than {MAX_VERSIONS} times in this layer (the per-path limit); not read",
                raw.offset, raw.size
            ));
            continue;
        }
        let kind = match classify(&path) {
            WhiteoutName::AufsMeta => continue,
            WhiteoutName::Whiteout(target) => EntryKind::Whiteout(target),
            WhiteoutName::Opaque(dir) => EntryKind::Opaque(dir),
            WhiteoutName::None => entry_kind(&raw),
        };
        let size = if kind == EntryKind::File { raw.size } else { 0 };
        let view = Entry { path: &path, kind: &kind, size, ordinal };
        let flow = match &kind {
            EntryKind::File => {
                summary.files += 1;
                let mut data = tar.data();
                let mut content = Hashing { inner: &mut data, hasher: Xxh3::new(), count: 0 };
                let flow = visit(&view, Some(&mut content)).map_err(WalkError::Read)?;
                io::copy(&mut content, &mut io::sink()).map_err(WalkError::Read)?;
                let node = NodeKind::Content(content.hasher.digest());
                summary.index.write_version(path.clone(), node, ordinal);
                flow
            }
            other => {
                let flow = visit(&view, None).map_err(WalkError::Read)?;
                record(&mut summary.index, &path, other, ordinal);
                flow
            }
        };
        if flow == Flow::Stop {
            return Ok(Walked::Stopped);
        }
    }
}

fn entry_kind(raw: &RawEntry) -> EntryKind {
    let link = || decode_name(&raw.link);
    match raw.kind {
        RawKind::File => EntryKind::File,
        RawKind::Hardlink => match normalize(&link()) {
            Ok(target) => EntryKind::Hardlink(target),
            Err(_) => EntryKind::Other,
        },
        RawKind::Symlink => EntryKind::Symlink(link()),
        RawKind::Dir => EntryKind::Dir,
        RawKind::Other => EntryKind::Other,
    }
}

fn record(index: &mut LayerIndex, path: &str, kind: &EntryKind, ordinal: u32) {
    match kind {
        EntryKind::File => {}
        EntryKind::Hardlink(target) => {
            // Which bytes the link shows is resolved through the link list
            // (`Timeline::fate_of`); as an entry it is never an identical re-add.
            index.link(path.to_owned(), target, NodeKind::Other, ordinal);
        }
        EntryKind::Symlink(target) => {
            let node = NodeKind::Symlink(xxhash_rust::xxh3::xxh3_64(target.as_bytes()));
            index.write_version(path.to_owned(), node, ordinal);
        }
        EntryKind::Dir => index.write_version(path.to_owned(), NodeKind::Dir, ordinal),
        EntryKind::Whiteout(target) => index.whiteout(target.clone()),
        EntryKind::Opaque(dir) => index.opaque(dir.clone()),
        EntryKind::Other => index.write_version(path.to_owned(), NodeKind::Other, ordinal),
    }
}
