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

use flate2::{Crc, Decompress, FlushDecompress, Status};
use zstd::stream::raw::{InBuffer, Operation, OutBuffer};

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

/// A decoder's capture of one part at a time, within the layer's budget.
#[derive(Debug)]
struct Capture {
    shared: Shared,
    held: usize,
    name: String,
    bytes: Vec<u8>,
    dropped: u64,
}

impl Capture {
    fn new(shared: Shared) -> Self {
        Capture { shared, held: 0, name: String::new(), bytes: Vec::new(), dropped: 0 }
    }

    fn start(&mut self, name: String) {
        self.name = name;
        self.bytes = Vec::new();
        self.dropped = 0;
    }

    fn add(&mut self, data: &[u8]) {
        let take = data.len().min(MAX_OUTSIDE_BYTES - self.held);
        self.bytes.extend_from_slice(&data[..take]);
        self.held += take;
        self.dropped += (data.len() - take) as u64;
    }

    fn end(&mut self) {
        let mut out = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if self.dropped > 0 {
            out.unread.push(format!(
                "{} bytes of {} were not read: over the {} MiB limit on bytes held from outside the tar stream of one layer",
                self.dropped,
                self.name,
                MAX_OUTSIDE_BYTES >> 20
            ));
        }
        if !self.bytes.is_empty() {
            let name = std::mem::take(&mut self.name);
            out.parts.push(Part { name, bytes: std::mem::take(&mut self.bytes) });
        }
    }
}

/// Reads exactly `buf.len()` bytes and counts them into `pos`.
fn read_exact_counted<R: BufRead>(r: &mut R, buf: &mut [u8], pos: &mut u64) -> io::Result<()> {
    r.read_exact(buf)?;
    *pos += buf.len() as u64;
    Ok(())
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

const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const FRESERVED: u8 = 1 << 5 | 1 << 6 | 1 << 7;

fn bad_header() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "invalid gzip header")
}

fn corrupt() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "corrupt gzip stream does not have a matching checksum",
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GzState {
    Header,
    Body,
    Trailer,
    End,
}

/// A gzip stream of one or more members (RFC 1952), decoded as flate2's
/// `MultiGzDecoder` decodes it, each member's header fields captured.
pub struct GzMembers<R> {
    src: R,
    z: Decompress,
    crc: Crc,
    state: GzState,
    /// 1-based number of the member being read (0 before the first).
    member: u32,
    /// Compressed bytes consumed.
    pos: u64,
    capture: Capture,
    failed: Failed,
}

impl<R> std::fmt::Debug for GzMembers<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzMembers").field("member", &self.member).finish_non_exhaustive()
    }
}

impl<R: BufRead> GzMembers<R> {
    /// A decoder of the gzip stream in `src`, capturing into `shared`.
    pub fn new(src: R, shared: Shared) -> Self {
        GzMembers {
            src,
            z: Decompress::new(false),
            crc: Crc::new(),
            state: GzState::Header,
            member: 0,
            pos: 0,
            capture: Capture::new(shared),
            failed: Failed::default(),
        }
    }

    /// The compressed stream, for reading what the decoder left.
    pub fn into_inner(self) -> R {
        self.src
    }

    /// Captures a NUL-terminated header field, feeding it to the header CRC.
    fn field(&mut self, what: &str, crc: &mut Crc) -> io::Result<()> {
        self.capture.start(format!("<gzip member {} header: {what}>", self.member));
        loop {
            let data = self.src.fill_buf()?;
            if data.is_empty() {
                self.capture.end();
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let (n, done) = match memchr::memchr(0, data) {
                Some(i) => (i + 1, true),
                None => (data.len(), false),
            };
            crc.update(&data[..n]);
            let text = if done { &data[..n - 1] } else { &data[..n] };
            self.capture.add(text);
            self.src.consume(n);
            self.pos += n as u64;
            if done {
                self.capture.end();
                return Ok(());
            }
        }
    }

    /// Reads a member header (RFC 1952 section 2.3), checking its CRC-16
    /// when it has one. After the first member, anything but a member is
    /// bytes no runtime reads, said so.
    fn header(&mut self) -> io::Result<()> {
        let at = self.pos;
        let mut fixed = [0u8; 10];
        let read = read_exact_counted(&mut self.src, &mut fixed, &mut self.pos);
        let is_member = fixed[0] == 0x1f && fixed[1] == 0x8b && fixed[2] == 8;
        if self.member > 1 && (read.is_err() || !is_member) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the bytes after gzip member {} (from byte {at} of the blob) are not a gzip member; no runtime reads them",
                    self.member - 1
                ),
            ));
        }
        read?;
        if !is_member {
            return Err(bad_header());
        }
        let flags = fixed[3];
        if flags & FRESERVED != 0 {
            return Err(bad_header());
        }
        let mut crc = Crc::new();
        crc.update(&fixed);
        if flags & FEXTRA != 0 {
            let mut xlen = [0u8; 2];
            read_exact_counted(&mut self.src, &mut xlen, &mut self.pos)?;
            crc.update(&xlen);
            let mut left = usize::from(u16::from_le_bytes(xlen));
            let mut chunk = [0u8; 1024];
            self.capture.start(format!("<gzip member {} header: extra field>", self.member));
            while left > 0 {
                let n = left.min(chunk.len());
                if let Err(e) = read_exact_counted(&mut self.src, &mut chunk[..n], &mut self.pos) {
                    self.capture.end();
                    return Err(e);
                }
                crc.update(&chunk[..n]);
                self.capture.add(&chunk[..n]);
                left -= n;
            }
            self.capture.end();
        }
        if flags & FNAME != 0 {
            self.field("file name", &mut crc)?;
        }
        if flags & FCOMMENT != 0 {
            self.field("comment", &mut crc)?;
        }
        if flags & FHCRC != 0 {
            let mut stored = [0u8; 2];
            read_exact_counted(&mut self.src, &mut stored, &mut self.pos)?;
            if u16::from_le_bytes(stored) != crc.sum() as u16 {
                return Err(corrupt());
            }
        }
        Ok(())
    }

    /// Inflates into `dst` straight from the source's buffer (flate2's
    /// `zio::read`).
    fn inflate(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            let input = self.src.fill_buf()?;
            let eof = input.is_empty();
            let (before_out, before_in) = (self.z.total_out(), self.z.total_in());
            let flush = if eof { FlushDecompress::Finish } else { FlushDecompress::None };
            let ret = self.z.decompress(input, dst, flush);
            let read = (self.z.total_out() - before_out) as usize;
            let consumed = (self.z.total_in() - before_in) as usize;
            self.src.consume(consumed);
            self.pos += consumed as u64;
            match ret {
                Ok(Status::Ok | Status::BufError) if read == 0 && !eof && !dst.is_empty() => {}
                Ok(Status::Ok | Status::BufError) if read == 0 && eof && !dst.is_empty() => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "incomplete deflate stream",
                    ));
                }
                Ok(_) => return Ok(read),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "corrupt deflate stream",
                    ));
                }
            }
        }
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.failed.check()?;
        let read = self.read_on(buf);
        self.failed.keep(read)
    }
}

impl<R: BufRead> GzMembers<R> {
    fn read_on(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                GzState::Header => {
                    self.member += 1;
                    if let Err(e) = self.header() {
                        self.state = GzState::End;
                        return Err(e);
                    }
                    self.z.reset(false);
                    self.crc.reset();
                    self.state = GzState::Body;
                }
                GzState::Body => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    match self.inflate(buf)? {
                        0 => self.state = GzState::Trailer,
                        n => {
                            self.crc.update(&buf[..n]);
                            return Ok(n);
                        }
                    }
                }
                GzState::Trailer => {
                    let mut trailer = [0u8; 8];
                    read_exact_counted(&mut self.src, &mut trailer, &mut self.pos)?;
                    let sum = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
                    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
                    if sum != self.crc.sum() || size != self.crc.amount() {
                        self.state = GzState::End;
                        return Err(corrupt());
                    }
                    // Another member may follow, up to the end of the input.
                    self.state = if self.src.fill_buf()?.is_empty() {
                        GzState::End
                    } else {
                        GzState::Header
                    };
                }
                GzState::End => return Ok(0),
            }
        }
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
    /// A decoder of the zstd stream in `src`, capturing into `shared`.
    ///
    /// # Errors
    /// When the zstd context cannot be made.
    pub fn new(src: R, shared: Shared) -> io::Result<Self> {
        Ok(ZstdFrames {
            src,
            dec: zstd::stream::raw::Decoder::new()?,
            in_frame: false,
            frames: 0,
            pos: 0,
            failed: Failed::default(),
            capture: Capture::new(shared),
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
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the bytes after {what} (from byte {at} of the blob) are not a zstd frame; no runtime reads them"
            ),
        ))
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
