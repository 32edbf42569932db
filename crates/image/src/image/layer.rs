//! Streams one layer: decompresses it (compression from magic bytes), walks
//! its tar entries in one pass with constant memory, hands each regular
//! file's bytes to a visitor, builds the layer's [`LayerIndex`], and checks
//! the blob digest and diff_id on the way.

use std::io::{self, BufRead, BufReader, Read};
use std::thread::ScopedJoinHandle;

use sha2::{Digest as _, Sha256};

use super::compression::{self, Compression};
use super::outside::{self, GzMembers, ZstdFrames};
use super::path::{
    PathProblem, WhiteoutName, classify, decode_name, decode_name_borrowed, normalize,
    normalize_clamped,
};
use super::pipe;
use super::symlinks::LayerSymlinks;
use super::tarstream::{End, Next, RawEntry, RawKind, TarError, TarLimits, TarReader};
use super::whiteout::{ContentKey, LayerIndex, MAX_VERSIONS, NodeKind};
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
    /// Bytes the layer blob ships outside its tar stream (a gzip member's
    /// header field, a zstd skippable frame; see [`outside`]), visited with
    /// their bytes after the tar's entries. The entry's path names them in
    /// angle brackets; they are no entry of the layer's filesystem.
    Outside,
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
    /// Header text beside the name and link ([`RawEntry::records`]): extended
    /// attributes, other PAX records, owner names. Scanned like names.
    pub records: &'a [u8],
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

/// One hasher reset per file instead of a new one (a layer walk hashes
/// every file, 300,000 in a layer of small files).
impl<H: Update> Update for &mut H {
    fn update(&mut self, bytes: &[u8]) {
        H::update(self, bytes);
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

/// Longest clamped path a "read as" warning quotes beside the entry's own name.
const QUOTED_PATH_MAX: usize = 256;

/// Reports bytes read to a progress bar.
struct Counted<R> {
    inner: R,
    progress: LayerProgress,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

type Compressed<R> = BufReader<Hashing<Counted<R>, Option<Sha256>>>;

/// The decompressor chosen by magic bytes, kept concrete so the compressed
/// stream can be drained and its digest finished after the tar ends.
enum Decoder<R: Read> {
    Plain(Compressed<R>),
    Gzip(Box<GzMembers<Compressed<R>>>),
    Zstd(Box<ZstdFrames<Compressed<R>>>),
    Xz(Box<lzma_rust2::XzReader<Compressed<R>>>),
    Bzip2(Box<bzip2::bufread::MultiBzDecoder<Compressed<R>>>),
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
            Decoder::Xz(r) => r.read(buf),
            Decoder::Bzip2(r) => r.read(buf),
        }
    }
}

impl<R: Read> Decoder<R> {
    /// Opens `blob`: counts its bytes into `progress`, hashes them, and
    /// picks the decompressor by magic bytes; what the blob holds outside
    /// its tar stream goes to `found`.
    fn start(
        blob: R,
        progress: &LayerProgress,
        found: &outside::Shared,
    ) -> io::Result<(Compression, Decoder<R>)> {
        let counted = Counted { inner: blob, progress: progress.clone() };
        let mut input = BufReader::with_capacity(
            TAR_BUFFER,
            Hashing { inner: counted, hasher: Some(Sha256::new()), count: 0 },
        );
        let kind = Compression::sniff(input.fill_buf()?);
        let decoder = match kind {
            Compression::None => Decoder::Plain(input),
            Compression::Gzip => Decoder::Gzip(Box::new(GzMembers::new(input, found.clone()))),
            Compression::Zstd => Decoder::Zstd(Box::new(ZstdFrames::new(input, found.clone())?)),
            Compression::Xz => Decoder::Xz(Box::new(compression::xz(input))),
            Compression::Bzip2 => {
                Decoder::Bzip2(Box::new(bzip2::bufread::MultiBzDecoder::new(input)))
            }
        };
        Ok((kind, decoder))
    }

    fn into_inner(self) -> Compressed<R> {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.into_inner(),
            Decoder::Zstd(r) => r.into_inner(),
            Decoder::Xz(r) => r.into_inner(),
            Decoder::Bzip2(r) => r.into_inner(),
        }
    }

    /// Reads the compressed stream to its end (the decompressor may stop
    /// before it does) and returns the blob's `sha256:` digest.
    fn finish_blob(self) -> io::Result<String> {
        let mut compressed = self.into_inner();
        io::copy(&mut compressed, &mut io::sink())?;
        Ok(sha256_name(compressed.into_inner().hasher))
    }
}

fn sha256_name(h: Option<Sha256>) -> String {
    format!("sha256:{}", h.map(|h| hex::encode(h.finalize())).unwrap_or_default())
}

/// The uncompressed stream a walk parses, and how its digests are
/// finished once it was read to the end.
trait Stream: Read {
    /// Uncompressed bytes read so far.
    fn count(&self) -> u64;
    /// The diff_id (when it was hashed) and the blob digest, after the
    /// uncompressed stream was read to its end.
    fn digests(self) -> io::Result<(Option<String>, String)>;
}

/// Decompression and hashing on the walking thread.
struct Inline<R: Read>(Hashing<Decoder<R>, Option<Sha256>>);

impl<R: Read> Read for Inline<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Stream for Inline<R> {
    fn count(&self) -> u64 {
        self.0.count
    }

    fn digests(mut self) -> io::Result<(Option<String>, String)> {
        let diff_id = self.0.hasher.take().map(|h| sha256_name(Some(h)));
        Ok((diff_id, self.0.inner.finish_blob()?))
    }
}

/// Decompression (with the blob's hash) on one thread, the diff_id's hash
/// on another; the walk reads what they pass on.
struct Threaded<'scope> {
    pipe: pipe::Pipe,
    count: u64,
    reading: ScopedJoinHandle<'scope, Option<io::Result<String>>>,
    hashing: Option<ScopedJoinHandle<'scope, Option<Sha256>>>,
}

impl Read for Threaded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl Stream for Threaded<'_> {
    fn count(&self) -> u64 {
        self.count
    }

    fn digests(self) -> io::Result<(Option<String>, String)> {
        let died = || io::Error::other("the decompression thread stopped early");
        drop(self.pipe);
        let blob = self.reading.join().map_err(|_| died())?.ok_or_else(died)??;
        let diff_id = match self.hashing {
            Some(h) => Some(sha256_name(Some(h.join().map_err(|_| died())?.ok_or_else(died)?))),
            None => None,
        };
        Ok((diff_id, blob))
    }
}

/// Repeats a stream's first error on every later read, so what a failed
/// walk reports does not depend on how a decompressor behaves after one.
struct Sticky<S> {
    inner: S,
    failed: Option<(io::ErrorKind, String)>,
}

impl<S: Read> Read for Sticky<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, text)) = &self.failed {
            return Err(io::Error::new(*kind, text.clone()));
        }
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.failed = Some((e.kind(), e.to_string()));
            }
        })
    }
}

/// Walks one layer of `image`, calling `visit` for every entry; regular
/// files come with a reader over their bytes (the visitor may read all,
/// some or none of them).
///
/// Entries whose names climb above the root with `..` are read under it, as
/// containerd extracts them, with a warning to `diag`; data no runtime
/// extracts (a whiteout's, a directory's, non-zero padding) is counted in the
/// summary's `unread`.
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
    match open_layer(image, layer) {
        Ok(blob) => walk_blob(image, layer, blob, diag, progress, visit),
        Err(e) => (WalkSummary::default(), Some(e)),
    }
}

/// The layer's blob, or why it cannot be read: encrypted, or a non-distributable layer
/// whose blob is missing (said as such, not as a broken archive).
fn open_layer(image: &Image, layer: &Layer) -> Result<Box<dyn Read + Send>, Error> {
    if let Some(why) = layer.encrypted() {
        return Err(invalid(image, layer, why));
    }
    image.store.open(&layer.member).map_err(|e| match (e, layer.foreign()) {
        (Error::MissingBlob { .. }, Some(why)) => invalid(image, layer, why),
        // Named by its layer, as every other reason a layer was not read is.
        (Error::MissingBlob { blob, .. }, None) => {
            invalid(image, layer, format!("blob {blob} is missing from the archive"))
        }
        (e, _) => e,
    })
}

fn new_summary(image: &Image) -> WalkSummary {
    let mut summary = WalkSummary::default();
    if image.index_names {
        summary.index = LayerIndex::with_names();
    }
    summary
}

fn invalid(image: &Image, layer: &Layer, reason: String) -> Error {
    let what = format!("layer {} ({})", layer.index, layer.digest);
    Error::Invalid { file: image.target.clone(), what, reason }
}

/// One layer's walk: what is walked, where its warnings go and who sees its
/// entries. The same for every stage of the walk, so the stages
/// (`walk_stream`, `walk_entries`) take it whole rather than field by field.
struct LayerWalk<'a, 'v> {
    image: &'a Image,
    layer: &'a Layer,
    diag: &'a Diagnostics,
    visit: &'a mut Visitor<'v>,
    /// What the decoder finds outside the tar stream.
    found: &'a outside::Shared,
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
    if let Some(why) = layer.encrypted() {
        return (WalkSummary::default(), Some(invalid(image, layer, why)));
    }
    let mut summary = new_summary(image);
    let found = outside::Shared::default();
    let (kind, decoder) = match Decoder::start(blob, progress, &found) {
        Ok(d) => d,
        Err(e) => {
            let why = format!("cannot start decompression: {e}");
            return (summary, Some(invalid(image, layer, why)));
        }
    };
    summary.compression = Some(kind);
    // An uncompressed blob's digest is its diff_id: hashed once. For compressed ones
    // the diff_id costs a second SHA-256 over every byte, which the user may decline.
    let hash_diff_id = image.verify_diff_ids && kind != Compression::None;
    let stream =
        Inline(Hashing { inner: decoder, hasher: hash_diff_id.then(Sha256::new), count: 0 });
    let mut walk = LayerWalk { image, layer, diag, visit, found: &found };
    let err = walk_stream(&mut walk, kind, stream, &mut summary);
    (summary, err)
}

/// [`walk_with_progress`] with reading, blob hashing and decompression on
/// a thread of their own and the diff_id's SHA-256 on another, so they
/// overlap with the tar walk and the visitor (which run on the caller's
/// thread). Same checks, same summary, same errors.
pub fn walk_overlapped(
    image: &Image,
    layer: &Layer,
    diag: &Diagnostics,
    progress: &LayerProgress,
    visit: &mut Visitor<'_>,
) -> (WalkSummary, Option<Error>) {
    let blob = match open_layer(image, layer) {
        Ok(blob) => blob,
        Err(e) => return (WalkSummary::default(), Some(e)),
    };
    let mut summary = new_summary(image);
    let found = outside::Shared::default();
    let (kind, mut decoder) = match Decoder::start(blob, progress, &found) {
        Ok(d) => d,
        Err(e) => {
            let why = format!("cannot start decompression: {e}");
            return (summary, Some(invalid(image, layer, why)));
        }
    };
    summary.compression = Some(kind);
    let hash_diff_id = image.verify_diff_ids && kind != Compression::None;
    let err = std::thread::scope(|scope| {
        let (mut source, first) = pipe::pipe();
        let (last, hashing) = if hash_diff_id {
            let (relay, mut last) = pipe::pipe();
            source.route_back(&mut last);
            let hashing = scope.spawn(move || {
                let mut h = Sha256::new();
                relay.relay(first, &mut |b| sha2::Digest::update(&mut h, b)).ok().map(|_| h)
            });
            (last, Some(hashing))
        } else {
            (first, None)
        };
        let reading = scope.spawn(move || {
            // A read error reaches the walk through the pipe; a closed pipe means the
            // walk is over early, and then no digest is wanted.
            match source.pump(&mut decoder, &mut |_| {}) {
                Ok(Ok(_)) => Some(decoder.finish_blob()),
                Ok(Err(pipe::Closed)) | Err(_) => None,
            }
        });
        let stream = Threaded { pipe: last, count: 0, reading, hashing };
        let mut walk = LayerWalk { image, layer, diag, visit, found: &found };
        walk_stream(&mut walk, kind, stream, &mut summary)
    });
    (summary, err)
}

/// Walks the tar in `stream`, then reads what follows it and finishes
/// both digests: the completeness rules of every walk.
fn walk_stream<S: Stream>(
    walk: &mut LayerWalk<'_, '_>,
    kind: Compression,
    stream: S,
    summary: &mut WalkSummary,
) -> Option<Error> {
    let (image, layer, diag) = (walk.image, walk.layer, walk.diag);
    let what = format!("layer {} ({})", layer.index, layer.digest);
    let fail = |reason: String| Some(invalid(image, layer, reason));
    let sticky = Sticky { inner: stream, failed: None };
    let mut tar =
        TarReader::new(BufReader::with_capacity(TAR_BUFFER, sticky), TarLimits::default());
    let walked = walk_entries(walk, &mut tar, summary);
    summary.index.shrink_to_fit();
    let end = match walked {
        Ok(Walked::Stopped) => return None,
        Ok(Walked::End(end)) => Ok(end),
        Err(e) => Err(e),
    };
    // Finish both digests: the tar parser stops at its end marker, the blob may go on.
    // Read the rest through the parser's buffer, which may hold some of it already.
    let parsed = tar.position();
    let mut buffered = tar.into_inner();
    let rest = drain(&mut buffered, parsed);
    // The decoder has met the end of its input or an error: every part it
    // found outside the tar stream is there.
    if let Err(e) = visit_outside(walk, summary) {
        return fail(describe(kind, &e));
    }
    let uncompressed = buffered.into_inner().inner;
    let count = uncompressed.count();
    summary.uncompressed_bytes = count;
    // A stream that fails part-way was read up to there: say so, since what came
    // before is scanned and reported (an incident responder needs those findings).
    let cut_short = |e: &io::Error| match count {
        0 => format!("{}; none of the layer was read", describe(kind, e)),
        n => format!(
            "{}; the layer was read only up to there ({n} bytes of its tar stream): findings before it are reported, the rest of the layer was not read",
            describe(kind, e)
        ),
    };
    // After a failed read the stream repeats its error (`Sticky`): the same failure.
    let rest = match rest {
        Ok(rest) => rest,
        Err(e) => return fail(cut_short(&e)),
    };
    match end {
        Err(WalkError::Read(e)) => return fail(cut_short(&e)),
        Err(WalkError::Tar(e)) => {
            if let Some(io) = &e.io {
                return fail(cut_short(io));
            }
            // What was not parsed was not scanned: the layer is incomplete.
            let unread = count.saturating_sub(e.offset);
            return fail(format!(
                "{e}; the {unread} bytes from there on were not read (not a valid tar stream, {} compression)",
                kind.name()
            ));
        }
        Ok(End::Marker) if rest.nonzero > 0 => {
            return fail(format!(
                "{} bytes of data follow the tar end-of-archive marker (first at byte {}) and were not read",
                rest.nonzero,
                rest.first_nonzero.unwrap_or_default()
            ));
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
    let (diff_id, blob_digest) = match uncompressed.digests() {
        Ok(d) => d,
        Err(e) => return fail(describe(kind, &e)),
    };
    // An uncompressed layer's bytes are its blob's: the blob digest is its diff_id.
    let diff_id = if kind == Compression::None { Some(blob_digest.clone()) } else { diff_id };
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
    None
}

/// Hands the visitor what the decoder found outside the tar stream, each
/// part as an [`EntryKind::Outside`] entry with its bytes, and counts what
/// went over the budget as unread.
fn visit_outside(walk: &mut LayerWalk<'_, '_>, summary: &mut WalkSummary) -> io::Result<()> {
    let found = outside::take(walk.found);
    summary.unread.extend(found.unread);
    for part in found.parts {
        let view = Entry {
            path: &part.name,
            kind: &EntryKind::Outside,
            size: part.bytes.len() as u64,
            ordinal: 0,
            records: &[],
        };
        if (walk.visit)(&view, Some(&mut part.bytes.as_slice()))? == Flow::Stop {
            break;
        }
    }
    Ok(())
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
    let over_limit;
    let lead = match (kind, e.kind()) {
        (Compression::None, io::ErrorKind::UnexpectedEof) => "truncated tar stream",
        (Compression::None, _) => "unreadable tar stream",
        (_, io::ErrorKind::UnexpectedEof) => "truncated compressed stream",
        // Only the xz decoder has a memory limit (its dictionary size comes from the stream).
        (_, io::ErrorKind::OutOfMemory) => {
            over_limit = format!(
                "layer not decompressed: its dictionary is over the decoder's {} MiB memory limit",
                compression::XZ_MEMORY_KIB >> 10
            );
            &over_limit
        }
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

/// Reads the tar's entries: hands each to the visitor and records it in
/// the summary's index, until the archive ends or the visitor stops.
fn walk_entries<R: Read>(
    walk: &mut LayerWalk<'_, '_>,
    tar: &mut TarReader<R>,
    summary: &mut WalkSummary,
) -> Result<Walked, WalkError> {
    let (image, layer, diag) = (walk.image, walk.layer, walk.diag);
    let visit = &mut *walk.visit;
    let mut ordinal: u32 = 0;
    // Reused for every file: its hasher, and a buffer for what the visitor left unread.
    let mut hasher = Sha256::new();
    let mut rest = vec![0u8; 8 << 10];
    // This layer's symlinks so far: an entry below one lands where it points.
    let mut symlinks = LayerSymlinks::default();
    loop {
        let next = tar.next_entry();
        if let Some((count, first)) = tar.take_stray_padding() {
            summary.unread.push(format!(
                "{count} non-zero bytes in the padding between tar entries (first at byte {first}), which no runtime reads; not read"
            ));
        }
        let raw = match next.map_err(WalkError::Tar)? {
            Next::End(end) => return Ok(Walked::End(end)),
            Next::Entry(e) => e,
        };
        ordinal = ordinal.saturating_add(1);
        for note in &raw.notes {
            diag.warn(format!("{}: layer {}: {note}", image.target, layer.index));
        }
        if let Some(why) = &raw.records_unread {
            summary.unread.push(format!("{why}; not read"));
        }
        let name = decode_name_borrowed(&raw.name);
        if let Some(why) = &raw.unread {
            summary.unread.push(format!(
                "entry at byte {} ({} bytes): {why}; not read",
                raw.offset, raw.size
            ));
            continue;
        }
        let path = match normalize(&name) {
            Ok(p) => Some(p),
            Err(PathProblem::Empty) => None,
            Err(problem @ PathProblem::EscapesRoot) => {
                // containerd extracts such a name under the root (Docker's classic
                // store refuses the layer): its bytes are there for anyone to read.
                let clamped = normalize_clamped(&name).ok();
                // The name is quoted once: every message is scrubbed for secrets whole, and a
                // second 64 KiB copy of it doubled that work for each such entry.
                let read_as = match clamped.as_deref() {
                    None => "the root".into(),
                    Some(p) => quoted(p, "the name without its climbing components"),
                };
                diag.warn(format!(
                    "{}: layer {}: entry {name:?}: {problem}; read as {read_as}, where containerd extracts it",
                    image.target, layer.index
                ));
                clamped
            }
        };
        let Some(path) = path else {
            // The root itself (`.`, `/`): runtimes skip it, so data stored under it
            // is seen by no one but a reader of the blob, and not by this walk.
            if raw.size > 0 {
                summary.unread.push(format!(
                    "entry at byte {} ({} bytes): an entry named {name:?}, the layer root, stores data that no runtime extracts; not read",
                    raw.offset, raw.size
                ));
            }
            continue;
        };
        let (path, through_symlink) = match symlinks.resolve(&path) {
            Some(resolved) => (resolved, true),
            None => (path, false),
        };
        let depth = path.bytes().filter(|&b| b == b'/').count();
        if depth > MAX_PATH_DEPTH {
            summary.unread.push(format!(
                "entry at byte {} ({} bytes): its path has {depth} components, more than the {MAX_PATH_DEPTH}-component limit; not read",
                raw.offset, raw.size
            ));
            continue;
        }
        if summary.index.at_version_limit(&path) {
            summary.unread.push(format!(
                "entry at byte {} ({} bytes): {path:?} is written more than {MAX_VERSIONS} times in this layer (the per-path limit); not read",
                raw.offset, raw.size
            ));
            continue;
        }
        let kind = match classify(&path) {
            // aufs hardlink sources (`.wh..wh.plnk/INODE`) hold real file bytes that
            // hardlinks elsewhere show: read like files. Other aufs bookkeeping is skipped.
            WhiteoutName::AufsMeta if raw.kind == RawKind::File && raw.size > 0 => EntryKind::File,
            WhiteoutName::AufsMeta => {
                if raw.size > 0 {
                    summary.unread.push(format!(
                        "entry at byte {} ({} bytes): {path:?} is aufs bookkeeping of another type than a file, yet stores data that no runtime extracts; not read",
                        raw.offset, raw.size
                    ));
                }
                continue;
            }
            WhiteoutName::Whiteout(target) => EntryKind::Whiteout(target),
            WhiteoutName::Opaque(dir) => EntryKind::Opaque(dir),
            WhiteoutName::None => match entry_kind(&raw) {
                // containerd resolves a hardlink target's parent like an entry's.
                EntryKind::Hardlink(t) => EntryKind::Hardlink(symlinks.resolve(&t).unwrap_or(t)),
                k => k,
            },
        };
        // A file, link or directory under such a symlink is reported where it lands: the
        // warning keeps the name as written. (A marker there is no finding's place; umoci
        // writes `dir/.wh.x` after replacing `dir` with a symlink.)
        if through_symlink && !matches!(kind, EntryKind::Whiteout(_) | EntryKind::Opaque(_)) {
            diag.warn(format!(
                "{}: layer {}: entry {name:?} is under a symlink this layer wrote before it; read as {}, where containerd extracts it",
                image.target,
                layer.index,
                quoted(&path, "the path the symlink names")
            ));
        }
        match &kind {
            EntryKind::Symlink(t) => symlinks.note_symlink(&path, t),
            EntryKind::Whiteout(p) => symlinks.forget(p),
            EntryKind::Opaque(_) => {}
            _ => symlinks.forget(&path),
        }
        // Data that only a file's entry carries to the scanner: anything else storing
        // bytes (a whiteout with content, a directory or device with a data body, a
        // typeflag no runtime extracts) hides them from every runtime, not from a
        // reader of the blob. Its meaning for the layer still counts.
        if kind != EntryKind::File && raw.size > 0 {
            summary.unread.push(format!(
                "entry at byte {} ({} bytes): {path:?} is {}, yet stores data that no runtime extracts; not read",
                raw.offset,
                raw.size,
                hidden_kind(&kind)
            ));
        }
        let size = if kind == EntryKind::File { raw.size } else { 0 };
        let view = Entry { path: &path, kind: &kind, size, ordinal, records: &raw.records };
        let flow = match &kind {
            EntryKind::File => {
                summary.files += 1;
                // The stream's first error ends the file's bytes (a clean end), so the visitor
                // scans what came before and keeps its findings; the walk then fails.
                let mut data = super::pipe::Fused::new(tar.data());
                sha2::Digest::reset(&mut hasher);
                let mut content = Hashing { inner: &mut data, hasher: &mut hasher, count: 0 };
                let flow = visit(&view, Some(&mut content)).map_err(WalkError::Read)?;
                // Not io::copy: it zeroes an 8 KiB buffer per call through a reader
                // without `read_buf`, and most visitors have read everything already.
                loop {
                    match content.read(&mut rest) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(WalkError::Read(e)),
                    }
                }
                let node = NodeKind::Content(ContentKey::from_digest(hasher.finalize_reset()));
                summary.index.write_version(&path, node, ordinal);
                // The stream failed inside this file: its findings so far are the
                // visitor's; the layer ends here.
                if let Some(e) = data.take_error() {
                    return Err(WalkError::Read(e));
                }
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

/// A path for a warning that names the entry too: quoted once (every message
/// is scrubbed for secrets whole), and `too_long` in its place when long.
fn quoted(path: &str, too_long: &str) -> String {
    if path.len() <= QUOTED_PATH_MAX { format!("{path:?}") } else { too_long.into() }
}

/// What an entry that should carry no data is, for the message about its data.
fn hidden_kind(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::Whiteout(_) => "a whiteout",
        EntryKind::Opaque(_) => "an opaque-directory marker",
        EntryKind::Dir => "a directory",
        EntryKind::Hardlink(_) | EntryKind::Symlink(_) => "a link",
        EntryKind::File | EntryKind::Other | EntryKind::Outside => {
            "a device, fifo or entry of an unknown type"
        }
    }
}

fn entry_kind(raw: &RawEntry) -> EntryKind {
    let link = || decode_name(&raw.link);
    match raw.kind {
        RawKind::File => EntryKind::File,
        // containerd resolves a link's target under the root, `..` included.
        RawKind::Hardlink => match normalize_clamped(&link()) {
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
        EntryKind::File | EntryKind::Outside => {}
        EntryKind::Hardlink(target) => {
            // Which bytes the link shows is resolved through the link list
            // (`Timeline::fate_of`); as an entry it is never an identical re-add.
            index.link(path, target, NodeKind::Other, ordinal);
        }
        EntryKind::Symlink(target) => {
            let node = NodeKind::Symlink(ContentKey::of(target.as_bytes()));
            index.write_version(path, node, ordinal);
            index.symlink_target(path, target);
        }
        EntryKind::Dir => index.write_version(path, NodeKind::Dir, ordinal),
        EntryKind::Whiteout(target) => index.whiteout(target.clone(), ordinal),
        EntryKind::Opaque(dir) => index.opaque(dir.clone(), ordinal),
        EntryKind::Other => index.write_version(path, NodeKind::Other, ordinal),
    }
}

#[cfg(test)]
mod tests;
