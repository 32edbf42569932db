//! gzip streams inside layer files, decoded with an inflater kept from one
//! stream to the next.
//!
//! A layer of small files holds thousands of `.gz` files (man pages,
//! changelogs, compressed assets) of a kilobyte or two each. flate2's
//! `MultiGzDecoder` makes a new inflater per stream, and setting one up
//! (its state and 32 KiB window, zeroed) cost as much as inflating the
//! stream. [`GzReader`] reads the same format with an [`Inflater`] the
//! worker keeps: the gzip framing is strata-image's
//! [`gzip::Members`] (the layer blobs' reader too), with
//! [`gzip::Options::FLATE2`], the deflate data through the same
//! [`flate2::Decompress`], reset between streams. What it decodes, and its
//! errors and their texts, are those of `flate2::bufread::MultiGzDecoder`.
//! Each member's header fields (`FNAME`, `FCOMMENT`, `FEXTRA`), which are
//! in the file for anyone who reads it, are kept for scanning (see
//! [`HeaderFields`]).

use std::io::{self, BufRead, Read};

use flate2::Decompress;
// The tests set header flags by name.
#[cfg(test)]
use strata_image::image::gzip::FHCRC;
use strata_image::image::gzip::{self, FieldSink, Members};

/// Compressed bytes read from the source at a time.
const INPUT: usize = 8 * 1024;

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
    /// The field being read: its member, what it is, its bytes so far.
    member: u32,
    what: &'static str,
    text: Vec<u8>,
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
            self.fields.push((gzip::field_name(member, what), bytes[..take].to_vec()));
        }
    }
}

/// A field is kept once read whole; one cut short is not.
impl FieldSink for HeaderFields {
    fn field_start(&mut self, member: u32, what: &'static str) {
        self.member = member;
        self.what = what;
        self.text.clear();
    }

    fn field_bytes(&mut self, bytes: &[u8]) {
        self.text.extend_from_slice(bytes);
    }

    fn field_end(&mut self, whole: bool) {
        let text = std::mem::take(&mut self.text);
        if whole {
            self.keep(self.member, self.what, &text);
        }
        self.text = text;
        self.text.clear();
    }
}

/// `src` buffered in a worker's [`Inflater`] input, as a `BufReader` would
/// buffer it.
struct Buffered<'i, R> {
    src: R,
    buf: &'i mut [u8],
    /// Unread input is `buf[pos..filled]`.
    pos: usize,
    filled: usize,
}

impl<R: Read> Read for Buffered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let data = self.fill_buf()?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.consume(n);
        Ok(n)
    }

    /// Fails at the end of the input as flate2's header and trailer reads
    /// do (`UnexpectedEof`, "unexpected end of file"), not as std's
    /// `read_exact` does.
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut at = 0;
        while at < buf.len() {
            let data = match self.fill_buf() {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if data.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = data.len().min(buf.len() - at);
            buf[at..at + n].copy_from_slice(&data[..n]);
            self.consume(n);
            at += n;
        }
        Ok(())
    }
}

impl<R: Read> BufRead for Buffered<'_, R> {
    /// The unread input, refilled from the source when it is all used
    /// (empty at the source's end).
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.filled = self.src.read(self.buf)?;
            self.pos = 0;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

/// Decompresses a gzip stream of one or more members read from `src`.
pub struct GzReader<'i, R> {
    members: Members<Buffered<'i, R>, Option<&'i mut HeaderFields>, &'i mut Decompress>,
}

impl<'i, R: Read> GzReader<'i, R> {
    /// A reader of the gzip stream in `src`, decoding with `inf`.
    pub fn new(src: R, inf: &'i mut Inflater) -> Self {
        let Inflater { z, input } = inf;
        let src = Buffered { src, buf: input, pos: 0, filled: 0 };
        GzReader { members: Members::new(src, z, None, gzip::Options::FLATE2) }
    }

    /// Keeps each member's header fields in `fields`.
    pub fn keeping_fields(mut self, fields: &'i mut HeaderFields) -> Self {
        *self.members.sink_mut() = Some(fields);
        self
    }
}

impl<R: Read> Read for GzReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.members.read(buf)
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
