//! Bytes a layer blob ships outside its tar stream, and the decoders that
//! find them: a gzip member's header fields (`FNAME`, `FCOMMENT`, `FEXTRA`)
//! and the contents of zstd skippable frames. Everyone who pulls the image
//! receives them, so they are kept (within [`MAX_OUTSIDE_BYTES`] per layer)
//! for the layer walk to hand to its visitor, named in angle brackets
//! (`<gzip member 2 header: comment>`, `<zstd skippable frame 3>`), a
//! name no tar entry's normalised absolute path can take.
//!
//! The decoders read the same streams, and fail on the same input, as
//! flate2's `bufread::MultiGzDecoder` and the zstd crate's `read::Decoder`
//! did for the layer walk (same inflater and zstd context, the same
//! per-byte work), with two differences:
//! - header fields and skippable frames are captured rather than skipped;
//!   a gzip header field has no length limit of its own (flate2's 64 KiB
//!   made such a layer unreadable), only the per-layer budget;
//! - bytes after the last gzip member or zstd frame that do not start
//!   another are an error that says so (containerd reads a layer's stream
//!   to its end and fails the same way; no runtime extracts them).
//!
//! zstd:chunked layers (podman, buildah) keep their table of contents,
//! tar-split data and footer in skippable frames after the tar: they are
//! captured like any other, and scanning them as bytes finds what is there.

use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex, PoisonError};

use flate2::Decompress;
use zstd::stream::raw::{InBuffer, Operation, OutBuffer};

use super::gzip::{self, FieldSink, Members, Options};
// The tests set header flags by name.
#[cfg(test)]
use super::gzip::{FCOMMENT, FHCRC};

/// Bytes from outside the tar stream held per layer for scanning; what is
/// over it is skipped as it streams and reported as not read.
pub const MAX_OUTSIDE_BYTES: usize = 64 << 20;

/// One run of bytes from outside the tar stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Where it was, in angle brackets: `<gzip member 1 header: file name>`.
    pub name: String,
    /// The bytes (at most [`MAX_OUTSIDE_BYTES`] over all parts of a layer).
    pub bytes: Vec<u8>,
}

/// What a decoder found outside the tar stream: the parts held, and what
/// was not held, described.
#[derive(Debug, Default)]
pub struct Outside {
    /// Parts in stream order.
    pub parts: Vec<Part>,
    /// Bytes left unscanned by the budget, each described.
    pub unread: Vec<String>,
}

/// An [`Outside`] a decoder fills (maybe on another thread) and the walk
/// takes once the stream ended.
pub type Shared = Arc<Mutex<Outside>>;

/// Takes what a decoder has found so far.
pub fn take(shared: &Shared) -> Outside {
    std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner))
}

/// True when `path` names bytes from outside the tar stream rather than
/// an entry (entry paths are absolute: they start with `/`).
pub fn is_outside(path: &str) -> bool {
    path.starts_with('<')
}

/// Where a decoder reads: a layer blob, or a file inside a layer. It sets
/// the budget on bytes held and how the diagnostics name what they are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A layer blob: [`MAX_OUTSIDE_BYTES`] held; bytes after the last frame are named as
    /// bytes no runtime reads.
    Layer,
    /// A `.zst` file inside a layer, holding at most this many bytes of skippable frames.
    File(usize),
}

impl Source {
    fn max_held(self) -> usize {
        match self {
            Source::Layer => MAX_OUTSIDE_BYTES,
            Source::File(max) => max,
        }
    }
}

/// A decoder's capture of one part at a time, within the layer's budget.
#[derive(Debug)]
struct Capture {
    shared: Shared,
    source: Source,
    held: usize,
    name: String,
    bytes: Vec<u8>,
    dropped: u64,
}

impl Capture {
    fn new(shared: Shared, source: Source) -> Self {
        Capture { shared, source, held: 0, name: String::new(), bytes: Vec::new(), dropped: 0 }
    }

    fn start(&mut self, name: String) {
        self.name = name;
        self.bytes = Vec::new();
        self.dropped = 0;
    }

    fn add(&mut self, data: &[u8]) {
        let take = data.len().min(self.source.max_held() - self.held);
        self.bytes.extend_from_slice(&data[..take]);
        self.held += take;
        self.dropped += (data.len() - take) as u64;
    }

    fn end(&mut self) {
        let mut out = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if self.dropped > 0 {
            let limit = match self.source {
                Source::Layer => format!(
                    "the {} MiB limit on bytes held from outside the tar stream of one layer",
                    MAX_OUTSIDE_BYTES >> 20
                ),
                Source::File(max) => format!(
                    "the {} MiB limit on bytes of skippable frames held per zstd file",
                    max >> 20
                ),
            };
            out.unread.push(format!(
                "{} bytes of {} were not read: over {limit}",
                self.dropped, self.name
            ));
        }
        if !self.bytes.is_empty() {
            let name = std::mem::take(&mut self.name);
            out.parts.push(Part { name, bytes: std::mem::take(&mut self.bytes) });
        }
    }
}

/// A decoder's first error, repeated on every later read: a decoder that
/// failed part-way is in no state to go on.
#[derive(Debug, Default)]
struct Failed(Option<(io::ErrorKind, String)>);

impl Failed {
    fn check(&self) -> io::Result<()> {
        match &self.0 {
            Some((kind, text)) => Err(io::Error::new(*kind, text.clone())),
            None => Ok(()),
        }
    }

    fn keep(&mut self, read: io::Result<usize>) -> io::Result<usize> {
        if let Err(e) = &read
            && e.kind() != io::ErrorKind::Interrupted
        {
            self.0 = Some((e.kind(), e.to_string()));
        }
        read
    }
}

impl FieldSink for Capture {
    fn field_start(&mut self, member: u32, what: &'static str) {
        self.start(gzip::field_name(member, what));
    }

    fn field_bytes(&mut self, bytes: &[u8]) {
        self.add(bytes);
    }

    /// A field cut short is kept as far as it went.
    fn field_end(&mut self, _whole: bool) {
        self.end();
    }
}

/// How a layer blob's gzip stream is read: a header field has no bound
/// but the layer's budget, and bytes after the last member are named.
const LAYER: Options = Options { max_field: None, names_trailing_bytes: true };

/// A gzip stream of one or more members (RFC 1952), decoded as flate2's
/// `MultiGzDecoder` decodes it, each member's header fields captured.
pub struct GzMembers<R> {
    members: Members<R, Capture, Decompress>,
    failed: Failed,
}

impl<R> std::fmt::Debug for GzMembers<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzMembers").field("members", &self.members).finish_non_exhaustive()
    }
}

impl<R: BufRead> GzMembers<R> {
    /// A decoder of the gzip stream in `src`, capturing into `shared`.
    pub fn new(src: R, shared: Shared) -> Self {
        GzMembers {
            members: Members::new(
                src,
                Decompress::new(false),
                Capture::new(shared, Source::Layer),
                LAYER,
            ),
            failed: Failed::default(),
        }
    }

    /// The compressed stream, for reading what the decoder left.
    pub fn into_inner(self) -> R {
        self.members.into_inner()
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.failed.check()?;
        let read = self.members.read(buf);
        self.failed.keep(read)
    }
}

/// The magic number of a zstd frame, little-endian.
const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// True for the magic numbers of zstd skippable frames (0x184D2A50 to 0x184D2A5F).
fn is_skippable(magic: u32) -> bool {
    magic & 0xFFFF_FFF0 == 0x184D_2A50
}

/// A zstd stream of frames, decoded as the zstd crate's `read::Decoder`
/// decodes it, the contents of skippable frames captured.
pub struct ZstdFrames<R> {
    src: R,
    dec: zstd::stream::raw::Decoder<'static>,
    /// Inside a zstd frame (not between frames).
    in_frame: bool,
    /// Frames met so far, skippable ones included.
    frames: u32,
    /// Compressed bytes consumed.
    pos: u64,
    failed: Failed,
    capture: Capture,
}

impl<R> std::fmt::Debug for ZstdFrames<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstdFrames").field("frames", &self.frames).finish_non_exhaustive()
    }
}

impl<R: BufRead> ZstdFrames<R> {
    /// A decoder of the zstd stream of a layer blob in `src`, capturing into `shared`.
    ///
    /// # Errors
    /// When the zstd context cannot be made.
    pub fn new(src: R, shared: Shared) -> io::Result<Self> {
        Self::reading(src, shared, Source::Layer)
    }

    /// A decoder of the zstd stream in `src`, read from `source`, capturing into `shared`.
    ///
    /// # Errors
    /// When the zstd context cannot be made.
    pub fn reading(src: R, shared: Shared, source: Source) -> io::Result<Self> {
        Ok(ZstdFrames {
            src,
            dec: zstd::stream::raw::Decoder::new()?,
            in_frame: false,
            frames: 0,
            pos: 0,
            failed: Failed::default(),
            capture: Capture::new(shared, source),
        })
    }

    /// The compressed stream, for reading what the decoder left.
    pub fn into_inner(self) -> R {
        self.src
    }

    /// Reads up to `buf.len()` bytes; fewer only at the end of the input.
    fn read_up_to(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut at = 0;
        while at < buf.len() {
            match self.src.read(&mut buf[at..]) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += at as u64;
        Ok(at)
    }

    /// At a frame boundary: starts the next frame, or captures a skippable
    /// one. False at the clean end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        let at = self.pos;
        let mut magic = [0u8; 4];
        let got = self.read_up_to(&mut magic)?;
        if got == 0 {
            return Ok(false);
        }
        let number = u32::from_le_bytes(magic);
        if got == 4 && number == ZSTD_MAGIC {
            self.frames += 1;
            self.dec.reinit()?;
            // The magic is part of the frame: the context takes it as header bytes.
            let mut input = InBuffer::around(&magic);
            let mut none = [0u8; 0];
            let mut output = OutBuffer::around(&mut none[..]);
            self.dec.run(&mut input, &mut output)?;
            self.in_frame = true;
            return Ok(true);
        }
        if got == 4 && is_skippable(number) {
            self.frames += 1;
            let mut size = [0u8; 4];
            if self.read_up_to(&mut size)? < 4 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated zstd skippable frame header",
                ));
            }
            let mut left = u64::from(u32::from_le_bytes(size));
            self.capture.start(format!("<zstd skippable frame {}>", self.frames));
            while left > 0 {
                let data = match self.src.fill_buf() {
                    Ok(d) => d,
                    Err(e) => {
                        self.capture.end();
                        return Err(e);
                    }
                };
                if data.is_empty() {
                    self.capture.end();
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated zstd skippable frame",
                    ));
                }
                let n = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                self.capture.add(&data[..n]);
                self.src.consume(n);
                self.pos += n as u64;
                left -= n as u64;
            }
            self.capture.end();
            return Ok(true);
        }
        let what = if self.frames == 0 {
            "the stream's start".to_owned()
        } else {
            format!("zstd frame {}", self.frames)
        };
        let text = match self.capture.source {
            Source::Layer => format!(
                "the bytes after {what} (from byte {at} of the blob) are not a zstd frame; no runtime reads them"
            ),
            Source::File(_) => {
                format!("the bytes after {what} (from byte {at} of the file) are not a zstd frame")
            }
        };
        Err(io::Error::new(io::ErrorKind::InvalidData, text))
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.failed.check()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let read = self.read_on(buf);
        self.failed.keep(read)
    }
}

impl<R: BufRead> ZstdFrames<R> {
    fn read_on(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.in_frame && !self.next_frame()? {
                return Ok(0);
            }
            if !self.in_frame {
                continue;
            }
            let input = self.src.fill_buf()?;
            let eof = input.is_empty();
            let mut src = InBuffer::around(input);
            let mut dst = OutBuffer::around(&mut *buf);
            let hint = self.dec.run(&mut src, &mut dst)?;
            let (consumed, written) = (src.pos(), dst.pos());
            self.src.consume(consumed);
            self.pos += consumed as u64;
            if hint == 0 {
                // The frame ended here, flushed: what follows is the next frame's.
                self.in_frame = false;
            }
            if written > 0 {
                return Ok(written);
            }
            if eof && self.in_frame {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "incomplete frame"));
            }
        }
    }
}

#[cfg(test)]
mod tests;
