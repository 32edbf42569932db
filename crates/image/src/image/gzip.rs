//! The gzip member reader (RFC 1952) behind both of strata's gzip decoders:
//! a layer blob's ([`super::outside::GzMembers`]) and a `.gz` file's inside
//! a layer (strata-scan's `nested::gzip::GzReader`). It owns the framing:
//! each member's header (`FEXTRA`, `FNAME`, `FCOMMENT`, the header CRC-16),
//! its raw-deflate body through flate2's [`Decompress`] (flate2's
//! `zio::read` loop, so the same per-byte work), its CRC-32 and size
//! trailer, and the next member, up to the end of the input. It does not
//! own where header fields go ([`FieldSink`]), where the inflater lives
//! (any [`BorrowMut<Decompress>`], so a worker can keep one across
//! streams) nor the input buffer (any [`BufRead`]).
//!
//! What differs between the two callers is an [`Options`] value: whether a
//! header field has flate2's 64 KiB bound, and whether bytes after the last
//! member are flate2's "invalid gzip header" or an error naming them.

use std::borrow::BorrowMut;
use std::io::{self, BufRead, Read};

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// Header flag: a CRC-16 of the header follows its fields.
pub const FHCRC: u8 = 1 << 1;
/// Header flag: an extra field (`XLEN` bytes) follows the fixed header.
pub const FEXTRA: u8 = 1 << 2;
/// Header flag: a NUL-terminated file name follows.
pub const FNAME: u8 = 1 << 3;
/// Header flag: a NUL-terminated comment follows.
pub const FCOMMENT: u8 = 1 << 4;
/// Header flags RFC 1952 reserves; a header with one set is refused.
const FRESERVED: u8 = 1 << 5 | 1 << 6 | 1 << 7;

/// flate2's bound on a header file name or comment, in bytes before the NUL.
pub const FLATE2_MAX_FIELD: usize = 0xffff;

/// The name strata gives a header field's bytes: `<gzip member 2 header: comment>`.
pub fn field_name(member: u32, what: &str) -> String {
    format!("<gzip member {member} header: {what}>")
}

/// Where a member's header fields go as they are read.
pub trait FieldSink {
    /// A field of (1-based) member `member` starts; `what` is
    /// `extra field`, `file name` or `comment`.
    fn field_start(&mut self, member: u32, what: &'static str);
    /// The field's next bytes (a name's or comment's NUL not among them).
    fn field_bytes(&mut self, bytes: &[u8]);
    /// The field ended: whole, or (`whole` false) cut short by the end of
    /// the input or a bound. A read error from the source inside a file
    /// name or comment ends nothing: the next field's start follows.
    fn field_end(&mut self, whole: bool);
}

/// No sink: the fields are read and checked, not kept.
impl<S: FieldSink + ?Sized> FieldSink for Option<&mut S> {
    fn field_start(&mut self, member: u32, what: &'static str) {
        if let Some(s) = self {
            s.field_start(member, what);
        }
    }

    fn field_bytes(&mut self, bytes: &[u8]) {
        if let Some(s) = self {
            s.field_bytes(bytes);
        }
    }

    fn field_end(&mut self, whole: bool) {
        if let Some(s) = self {
            s.field_end(whole);
        }
    }
}

/// How a [`Members`] reader differs from flate2's `MultiGzDecoder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Longest file name or comment, in bytes before its NUL; a longer one
    /// is the error "gzip header field too long". `None`: no bound.
    pub max_field: Option<usize>,
    /// Bytes after the last member that are not a member are an error
    /// that names them and where they start, rather than flate2's.
    pub names_trailing_bytes: bool,
}

impl Options {
    /// flate2's `MultiGzDecoder` exactly: its bound, its errors.
    pub const FLATE2: Options =
        Options { max_field: Some(FLATE2_MAX_FIELD), names_trailing_bytes: false };
}

fn bad_header() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "invalid gzip header")
}

fn corrupt() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "corrupt gzip stream does not have a matching checksum",
    )
}

/// Where the reader is in the current member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Body,
    Trailer,
    End,
}

/// A gzip stream of one or more members read from `src`, inflated with
/// `z`, header fields handed to `sink`.
///
/// Truncated fixed-size parts (header, `XLEN`, extra field, header CRC,
/// trailer) fail with the error of `src`'s `read_exact`; a read after an
/// error in a header returns `Ok(0)`.
pub struct Members<R, S, Z> {
    src: R,
    z: Z,
    sink: S,
    options: Options,
    crc: Crc,
    state: State,
    /// 1-based number of the member being read (0 before the first).
    member: u32,
    /// Compressed bytes consumed.
    pos: u64,
}

impl<R, S, Z> std::fmt::Debug for Members<R, S, Z> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members").field("member", &self.member).finish_non_exhaustive()
    }
}

impl<R: BufRead, S: FieldSink, Z: BorrowMut<Decompress>> Members<R, S, Z> {
    /// A reader of the gzip stream in `src`, inflating with `z` (reset at
    /// each member), header fields into `sink`.
    pub fn new(src: R, z: Z, sink: S, options: Options) -> Self {
        Members { src, z, sink, options, crc: Crc::new(), state: State::Header, member: 0, pos: 0 }
    }

    /// The compressed stream, for reading what the reader left.
    pub fn into_inner(self) -> R {
        self.src
    }

    /// Where header fields go.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Reads exactly `buf.len()` bytes and counts them.
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.src.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Reads a NUL-terminated header field, feeding it to the header CRC
    /// and the sink.
    fn field(&mut self, what: &'static str, crc: &mut Crc) -> io::Result<()> {
        self.sink.field_start(self.member, what);
        let mut len = 0usize;
        loop {
            let data = match self.src.fill_buf() {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if data.is_empty() {
                self.sink.field_end(false);
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let (n, done) = match memchr::memchr(0, data) {
                Some(i) => (i + 1, true),
                None => (data.len(), false),
            };
            let text = if done { &data[..n - 1] } else { &data[..n] };
            len += text.len();
            if self.options.max_field.is_some_and(|max| len > max) {
                self.sink.field_end(false);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "gzip header field too long",
                ));
            }
            crc.update(&data[..n]);
            self.sink.field_bytes(text);
            self.src.consume(n);
            self.pos += n as u64;
            if done {
                self.sink.field_end(true);
                return Ok(());
            }
        }
    }

    /// Reads the extra field of `XLEN` bytes, feeding it to the header CRC
    /// and the sink.
    fn extra(&mut self, crc: &mut Crc) -> io::Result<()> {
        let mut xlen = [0u8; 2];
        self.read_exact(&mut xlen)?;
        crc.update(&xlen);
        let mut left = usize::from(u16::from_le_bytes(xlen));
        let mut chunk = [0u8; 1024];
        self.sink.field_start(self.member, "extra field");
        while left > 0 {
            let n = left.min(chunk.len());
            if let Err(e) = self.read_exact(&mut chunk[..n]) {
                self.sink.field_end(false);
                return Err(e);
            }
            crc.update(&chunk[..n]);
            self.sink.field_bytes(&chunk[..n]);
            left -= n;
        }
        self.sink.field_end(true);
        Ok(())
    }

    /// Reads a member header (RFC 1952 section 2.3), checking its CRC-16
    /// when it has one.
    fn header(&mut self) -> io::Result<()> {
        let at = self.pos;
        let mut fixed = [0u8; 10];
        let read = self.read_exact(&mut fixed);
        let is_member = fixed[0] == 0x1f && fixed[1] == 0x8b && fixed[2] == 8;
        if self.options.names_trailing_bytes && self.member > 1 && (read.is_err() || !is_member) {
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
            self.extra(&mut crc)?;
        }
        if flags & FNAME != 0 {
            self.field("file name", &mut crc)?;
        }
        if flags & FCOMMENT != 0 {
            self.field("comment", &mut crc)?;
        }
        if flags & FHCRC != 0 {
            let mut stored = [0u8; 2];
            self.read_exact(&mut stored)?;
            if u16::from_le_bytes(stored) != crc.sum() as u16 {
                return Err(corrupt());
            }
        }
        Ok(())
    }

    /// Inflates into `dst` straight from the source's buffer (flate2's
    /// `zio::read`).
    fn inflate(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let z = self.z.borrow_mut();
        loop {
            let input = self.src.fill_buf()?;
            let eof = input.is_empty();
            let (before_out, before_in) = (z.total_out(), z.total_in());
            let flush = if eof { FlushDecompress::Finish } else { FlushDecompress::None };
            let ret = z.decompress(input, dst, flush);
            let read = (z.total_out() - before_out) as usize;
            let consumed = (z.total_in() - before_in) as usize;
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

impl<R: BufRead, S: FieldSink, Z: BorrowMut<Decompress>> Read for Members<R, S, Z> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                State::Header => {
                    self.member += 1;
                    if let Err(e) = self.header() {
                        self.state = State::End;
                        return Err(e);
                    }
                    self.z.borrow_mut().reset(false);
                    self.crc.reset();
                    self.state = State::Body;
                }
                State::Body => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    match self.inflate(buf)? {
                        0 => self.state = State::Trailer,
                        n => {
                            self.crc.update(&buf[..n]);
                            return Ok(n);
                        }
                    }
                }
                State::Trailer => {
                    let mut trailer = [0u8; 8];
                    self.read_exact(&mut trailer)?;
                    let sum = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
                    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
                    if sum != self.crc.sum() || size != self.crc.amount() {
                        self.state = State::End;
                        return Err(corrupt());
                    }
                    // Another member may follow, up to the end of the input.
                    self.state =
                        if self.src.fill_buf()?.is_empty() { State::End } else { State::Header };
                }
                State::End => return Ok(0),
            }
        }
    }
}
