//! gzip streams inside layer files, decoded with an inflater kept from one
//! stream to the next.
//!
//! A layer of small files holds thousands of `.gz` files (man pages,
//! changelogs, compressed assets) of a kilobyte or two each. flate2's
//! `MultiGzDecoder` makes a new inflater per stream, and setting one up
//! (its state and 32 KiB window, zeroed) cost as much as inflating the
//! stream. [`GzReader`] reads the same format with an [`Inflater`] the
//! worker keeps: the gzip framing here (header, CRC-32 and size trailer,
//! members one after another), the deflate data through the same
//! [`flate2::Decompress`], reset between streams. What it decodes, and its
//! errors and their texts, are those of `flate2::bufread::MultiGzDecoder`.
//! Each member's header fields (`FNAME`, `FCOMMENT`, `FEXTRA`), which are
//! in the file for anyone who reads it, are kept for scanning (see
//! [`HeaderFields`]).

use std::io::{self, Read};

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// Compressed bytes read from the source at a time.
const INPUT: usize = 8 * 1024;

/// Longest header file name or comment read (flate2's own bound).
const MAX_HEADER_FIELD: usize = 0xffff;

const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const FRESERVED: u8 = 1 << 5 | 1 << 6 | 1 << 7;

/// A raw-deflate inflater and its input buffer, kept by a worker across
/// the gzip streams it reads.
pub struct Inflater {
    z: Decompress,
    input: Vec<u8>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater { z: Decompress::new(false), input: vec![0; INPUT] }
    }
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

/// Header field bytes kept per stream for scanning; the fields past it are
/// counted, not kept.
pub const MAX_FIELD_BYTES: usize = 1 << 20;

/// The header fields of a gzip stream's members, as
/// (`<gzip member N header: comment>`, bytes), and the bytes past
/// [`MAX_FIELD_BYTES`] that were not kept.
#[derive(Debug, Default)]
pub struct HeaderFields {
    /// Fields in stream order, empty ones left out.
    pub fields: Vec<(String, Vec<u8>)>,
    /// Bytes of fields not kept.
    pub dropped: u64,
    held: usize,
}

impl HeaderFields {
    fn keep(&mut self, member: u32, what: &str, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let take = bytes.len().min(MAX_FIELD_BYTES - self.held);
        self.dropped += (bytes.len() - take) as u64;
        if take > 0 {
            self.held += take;
            let name = format!("<gzip member {member} header: {what}>");
            self.fields.push((name, bytes[..take].to_vec()));
        }
    }
}

/// Where the reader is in the current member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Body,
    Trailer,
    End,
}

/// Decompresses a gzip stream of one or more members read from `src`.
pub struct GzReader<'i, R> {
    src: R,
    inf: &'i mut Inflater,
    /// Unread input is `inf.input[pos..filled]`.
    pos: usize,
    filled: usize,
    crc: Crc,
    state: State,
    /// 1-based number of the member being read.
    member: u32,
    /// Where header fields go, when they are wanted.
    fields: Option<&'i mut HeaderFields>,
}

impl<'i, R: Read> GzReader<'i, R> {
    /// A reader of the gzip stream in `src`, decoding with `inf`.
    pub fn new(src: R, inf: &'i mut Inflater) -> Self {
        GzReader {
            src,
            inf,
            pos: 0,
            filled: 0,
            crc: Crc::new(),
            state: State::Header,
            member: 0,
            fields: None,
        }
    }

    /// Keeps each member's header fields in `fields`.
    pub fn keeping_fields(mut self, fields: &'i mut HeaderFields) -> Self {
        self.fields = Some(fields);
        self
    }

    /// The unread input, refilled from the source when it is all used
    /// (empty at the source's end), as a `BufReader` would.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.filled = self.src.read(&mut self.inf.input)?;
            self.pos = 0;
        }
        Ok(&self.inf.input[self.pos..self.filled])
    }

    /// Reads into `buf`: some bytes, or an error at the end of the input.
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let data = match self.fill_buf() {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e),
        };
        if data.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.pos += n;
        Ok(n)
    }

    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut at = 0;
        while at < buf.len() {
            at += self.read_some(&mut buf[at..])?;
        }
        Ok(())
    }

    fn read_byte(&mut self) -> io::Result<u8> {
        let mut b = [0u8];
        loop {
            match self.read_some(&mut b) {
                Ok(0) => {}
                Ok(_) => return Ok(b[0]),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads a NUL-terminated header field, feeding it to the header CRC
    /// (and to the kept fields, when they are kept).
    fn skip_field(&mut self, crc: &mut Crc, what: &str) -> io::Result<()> {
        let mut len = 0;
        let mut text = Vec::new();
        loop {
            match self.read_byte()? {
                0 => {
                    crc.update(&[0]);
                    if let Some(f) = self.fields.as_deref_mut() {
                        f.keep(self.member, what, &text);
                    }
                    return Ok(());
                }
                _ if len == MAX_HEADER_FIELD => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "gzip header field too long",
                    ));
                }
                b => {
                    crc.update(&[b]);
                    if self.fields.is_some() {
                        text.push(b);
                    }
                    len += 1;
                }
            }
        }
    }

    /// Reads a member header (RFC 1952 section 2.3), checking its CRC-16 when it has one.
    fn header(&mut self) -> io::Result<()> {
        let mut fixed = [0u8; 10];
        self.read_full(&mut fixed)?;
        if fixed[0] != 0x1f || fixed[1] != 0x8b || fixed[2] != 8 {
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
            self.read_full(&mut xlen)?;
            crc.update(&xlen);
            let mut left = usize::from(u16::from_le_bytes(xlen));
            let mut chunk = [0u8; 256];
            let mut extra = Vec::new();
            while left > 0 {
                let n = left.min(chunk.len());
                self.read_full(&mut chunk[..n])?;
                crc.update(&chunk[..n]);
                if self.fields.is_some() {
                    extra.extend_from_slice(&chunk[..n]);
                }
                left -= n;
            }
            if let Some(f) = self.fields.as_deref_mut() {
                f.keep(self.member, "extra field", &extra);
            }
        }
        if flags & FNAME != 0 {
            self.skip_field(&mut crc, "file name")?;
        }
        if flags & FCOMMENT != 0 {
            self.skip_field(&mut crc, "comment")?;
        }
        if flags & FHCRC != 0 {
            let mut stored = [0u8; 2];
            self.read_full(&mut stored)?;
            if u16::from_le_bytes(stored) != crc.sum() as u16 {
                return Err(corrupt());
            }
        }
        Ok(())
    }

    /// Inflates into `dst` (flate2's `zio::read` over a buffered input).
    fn inflate(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            self.fill_buf()?;
            let input = &self.inf.input[self.pos..self.filled];
            let eof = input.is_empty();
            let (before_out, before_in) = (self.inf.z.total_out(), self.inf.z.total_in());
            let flush = if eof { FlushDecompress::Finish } else { FlushDecompress::None };
            let ret = self.inf.z.decompress(input, dst, flush);
            let read = (self.inf.z.total_out() - before_out) as usize;
            self.pos += (self.inf.z.total_in() - before_in) as usize;
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

impl<R: Read> Read for GzReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                State::Header => {
                    self.member += 1;
                    if let Err(e) = self.header() {
                        self.state = State::End;
                        return Err(e);
                    }
                    self.inf.z.reset(false);
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
                    self.read_full(&mut trailer)?;
                    let sum = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
                    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
                    if sum != self.crc.sum() || size != self.crc.amount() {
                        self.state = State::End;
                        return Err(corrupt());
                    }
                    // Another member may follow, up to the end of the input.
                    self.state =
                        if self.fill_buf()?.is_empty() { State::End } else { State::Header };
                }
                State::End => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::{Compression, GzBuilder};

    use super::*;

    /// What flate2's own multi-member decoder makes of `data`: its bytes,
    /// or the bytes before its error and the error's text.
    fn flate2_reads(data: &[u8]) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        let mut d = flate2::bufread::MultiGzDecoder::new(io::BufReader::new(data));
        let e = read_all(&mut d, &mut out);
        (out, e)
    }

    fn ours_reads(data: &[u8], inf: &mut Inflater) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        let e = read_all(&mut GzReader::new(data, inf), &mut out);
        (out, e)
    }

    /// Reads in uneven steps, as a scanner's window does, to the end or an error.
    fn read_all(r: &mut dyn Read, out: &mut Vec<u8>) -> Option<String> {
        let mut buf = [0u8; 1000];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return Some(format!("{:?}: {e}", e.kind())),
            }
        }
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn decodes_and_fails_as_flate2_does() {
        let text: Vec<u8> = (0..40_000u32)
            .flat_map(|i| format!("line {i} of a FAKE manual page\n").into_bytes())
            .collect();
        let one = gz(&text);
        let mut named = GzBuilder::new()
            .filename("page.1")
            .comment("a comment")
            .extra(vec![7u8; 300])
            .write(Vec::new(), Compression::best());
        named.write_all(b"hello from a named member").unwrap();
        let named = named.finish().unwrap();
        let two = [one.clone(), named.clone()].concat();
        let mut bad_crc = one.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        let mut bad_deflate = one.clone();
        bad_deflate[12] ^= 0xff;
        let mut reserved = one.clone();
        reserved[3] |= 0x80;
        let mut header_crc = named.clone();
        header_crc[3] |= FHCRC;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("one member", one.clone()),
            ("named, extra and comment", named.clone()),
            ("two members", two.clone()),
            ("empty", Vec::new()),
            ("header only", one[..10].to_vec()),
            ("truncated body", one[..one.len() / 2].to_vec()),
            ("truncated trailer", one[..one.len() - 3].to_vec()),
            ("bad checksum", bad_crc),
            ("bad deflate data", bad_deflate),
            ("reserved flag", reserved),
            ("header CRC missing", header_crc),
            ("garbage after a member", [one.clone(), b"not gzip".to_vec()].concat()),
            ("not gzip", b"plain text, no gzip here".to_vec()),
        ];
        // One inflater for every case, reused as a worker reuses it.
        let mut inf = Inflater::default();
        for (what, data) in cases {
            let (want, want_err) = flate2_reads(&data);
            let (got, got_err) = ours_reads(&data, &mut inf);
            assert_eq!(got_err, want_err, "{what}");
            assert!(got == want, "{what}: {} bytes, flate2 {}", got.len(), want.len());
        }
        assert_eq!(
            ours_reads(&two, &mut inf).0,
            [text.as_slice(), b"hello from a named member"].concat()
        );
    }

    #[test]
    fn header_fields_are_kept_with_their_member() {
        let mut named = GzBuilder::new()
            .filename("page.1")
            .comment("a comment")
            .extra(vec![7u8; 300])
            .write(Vec::new(), Compression::best());
        named.write_all(b"second").unwrap();
        let two = [gz(b"first"), named.finish().unwrap()].concat();
        let mut inf = Inflater::default();
        let mut fields = HeaderFields::default();
        let mut out = Vec::new();
        GzReader::new(&two[..], &mut inf)
            .keeping_fields(&mut fields)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"firstsecond");
        let got: Vec<(&str, &[u8])> =
            fields.fields.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        assert_eq!(
            got,
            [
                ("<gzip member 2 header: extra field>", &[7u8; 300][..]),
                ("<gzip member 2 header: file name>", b"page.1"),
                ("<gzip member 2 header: comment>", b"a comment"),
            ]
        );
        assert_eq!(fields.dropped, 0);
    }
}
