//! The bytes of a zip that its central directory does not describe. A
//! zip reader goes by the central directory, but a streaming reader (Java's
//! `ZipInputStream`, `jar`'s) walks the local headers: a member whose local
//! header is there but the central directory leaves out is extracted by one
//! and not the other. And a prefix, the gaps between members and the
//! archive comment are in the file for anyone to read.
//!
//! So after the central directory's members, the bytes before the central
//! directory that no member's header and data cover are searched for local
//! headers, each opened as a member (a note says the central directory
//! leaves it out), and those bytes and the archive comment are scanned as
//! they are, as the member `<bytes outside the zip's members>`. A file that
//! starts like a zip but has no usable central directory (cut short, or a
//! script with a zip appended) is read the same way, as one gap.

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom};

use super::{
    Member, MemberLink, MemberSource, Members, Partial, add_name, after, at, join, scan_members,
    scan_raw,
};

/// The signature of a local file header.
const LOCAL_HEADER: &[u8; 4] = b"PK\x03\x04";

/// Bytes read at a time when searching the gaps.
const CHUNK: usize = 64 << 10;

/// Byte ranges `[start, end)` before the central directory that no member
/// the central directory lists covers (its local header and data), in
/// order; and where those members' local headers start.
fn gaps<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    count: usize,
) -> (Vec<(u64, u64)>, HashSet<u64>) {
    let end = zip.central_directory_start();
    let mut covered = Vec::with_capacity(count);
    let mut starts = HashSet::with_capacity(count);
    for i in 0..count {
        let Ok(member) = zip.by_index_raw(i) else { continue };
        let start = member.header_start();
        let data_end =
            member.data_start().map_or(start, |d| d.saturating_add(member.compressed_size()));
        covered.push((start, data_end.max(start)));
        starts.insert(start);
    }
    covered.sort_unstable();
    let mut gaps = Vec::new();
    let mut at = 0u64;
    for (start, stop) in covered {
        if start >= end {
            break;
        }
        if start > at {
            gaps.push((at, start));
        }
        at = at.max(stop);
    }
    if at < end {
        gaps.push((at, end));
    }
    (gaps, starts)
}

/// The bytes of `ranges` of `reader` in order, a newline between two (so
/// that no value is glued together from two of them).
struct Ranges<'a, R> {
    reader: &'a mut R,
    ranges: &'a [(u64, u64)],
    /// Bytes left in the current range; `None` before it is sought.
    left: Option<u64>,
}

impl<R: Read + Seek> Read for Ranges<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(&(start, stop)) = self.ranges.first() else { return Ok(0) };
            let left = match self.left {
                Some(l) => l,
                None => {
                    self.reader.seek(SeekFrom::Start(start))?;
                    self.left = Some(stop - start);
                    stop - start
                }
            };
            if left == 0 {
                self.ranges = &self.ranges[1..];
                self.left = None;
                if !self.ranges.is_empty() && !buf.is_empty() {
                    buf[0] = b'\n';
                    return Ok(1);
                }
                continue;
            }
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = self.reader.read(&mut buf[..want])?;
            if n == 0 {
                // The file ends inside the range: nothing more to read there.
                self.left = Some(0);
                continue;
            }
            self.left = Some(left - n as u64);
            return Ok(n);
        }
    }
}

/// Where in `gaps` a local header signature starts, other than at `starts`.
fn local_headers<R: Read + Seek>(
    reader: &mut R,
    gaps: &[(u64, u64)],
    starts: &HashSet<u64>,
    max: usize,
) -> io::Result<Vec<u64>> {
    let mut found = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    for &(start, stop) in gaps {
        let mut pos = start;
        while pos < stop && found.len() < max {
            reader.seek(SeekFrom::Start(pos))?;
            let want = CHUNK.min(usize::try_from(stop - pos).unwrap_or(CHUNK));
            let n = super::fill(reader, &mut buf[..want])?;
            if n == 0 {
                break;
            }
            for i in memchr::memmem::find_iter(&buf[..n], LOCAL_HEADER) {
                let offset = pos + i as u64;
                if !starts.contains(&offset) && found.len() < max {
                    found.push(offset);
                }
            }
            // The next chunk overlaps this one by a signature less a byte.
            pos += if n > 3 && pos + (n as u64) < stop { n as u64 - 3 } else { n as u64 };
        }
    }
    Ok(found)
}

/// A reader that fails once `left` bytes were read through it. A streaming zip reader
/// reads a member's declared compressed size whatever its data holds, also when the member
/// is dropped half-read: local headers in a gap may each declare the rest of the file, so
/// what they read over all is capped.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other(super::LimitHit(
                "the members only local headers list read more than twice the zip's size".into(),
            )));
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Capped<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.inner.seek(to)
    }
}

/// A member as its local header describes it.
struct LocalHeader {
    name: String,
    /// Why it cannot be read, if it cannot (encrypted, a method strata does not decompress).
    why: Option<String>,
    /// Set for a method `zip_methods` decodes: the method, and the member's CRC-32,
    /// compressed and decoded sizes, from the header (and its Zip64 field).
    raw: Option<(zip::CompressionMethod, u32, u64, u64)>,
}

/// What the local header at the reader's position describes: `None` for bytes that only
/// look like one (a name too short to be one, a directory). The reader is left at the
/// member's data.
fn local_header<R: Read>(reader: &mut R) -> io::Result<Option<LocalHeader>> {
    let mut h = [0u8; 30];
    if super::fill(reader, &mut h)? < h.len() {
        return Ok(None);
    }
    let word = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let flags = u16::from_le_bytes([h[6], h[7]]);
    let method = u16::from_le_bytes([h[8], h[9]]);
    let (crc, compressed, size) = (word(14), word(18), word(22));
    let mut name = vec![0u8; usize::from(u16::from_le_bytes([h[26], h[27]]))];
    if name.is_empty() || super::fill(reader, &mut name)? < name.len() || name.ends_with(b"/") {
        return Ok(None);
    }
    let mut extra = vec![0u8; usize::from(u16::from_le_bytes([h[28], h[29]]))];
    if super::fill(reader, &mut extra)? < extra.len() {
        return Ok(None);
    }
    let name = crate::image::path::decode_name(&name);
    #[allow(deprecated)] // the one public way from the number to the method
    let method = zip::CompressionMethod::from_u16(method);
    // Sizes written after the data (flag bit 3) are not in the header: such a member
    // can only be delimited by decoding it, which the methods decoded here do not promise.
    let sized = flags & 8 == 0 || compressed != 0;
    let sizes = sized.then(|| zip64_sizes(&extra, compressed, size)).flatten();
    let raw = match sizes {
        Some((compressed, size)) if super::zip_methods::decodes(method) => {
            Some((method, crc, compressed, size))
        }
        _ => None,
    };
    let why = if flags & 1 != 0 {
        Some("an encrypted member".to_owned())
    } else if raw.is_none() && !zip::SUPPORTED_COMPRESSION_METHODS.contains(&method) {
        Some(format!("compressed with {method}, which strata does not decompress"))
    } else {
        None
    };
    Ok(Some(LocalHeader { name, why, raw }))
}

/// The compressed and decoded sizes of a local header: its own, or where either is
/// 0xFFFFFFFF, the Zip64 extra field's (decoded size first, then compressed, each only
/// when the header's is 0xFFFFFFFF). `None` when that field is missing or short.
fn zip64_sizes(extra: &[u8], compressed: u32, size: u32) -> Option<(u64, u64)> {
    const FULL: u32 = u32::MAX;
    if compressed != FULL && size != FULL {
        return Some((u64::from(compressed), u64::from(size)));
    }
    let mut rest = extra;
    while rest.len() >= 4 {
        let id = u16::from_le_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
        let body = rest.get(4..4 + len)?;
        if id == 1 {
            let mut words = body.chunks_exact(8).map(|w| {
                u64::from_le_bytes(w.try_into().unwrap_or_else(|_| unreachable!("8 bytes")))
            });
            let size = if size == FULL { words.next()? } else { u64::from(size) };
            let compressed = if compressed == FULL { words.next()? } else { u64::from(compressed) };
            return Some((compressed, size));
        }
        rest = &rest[4 + len..];
    }
    None
}

/// The members only local headers name, read as a streaming reader reads them.
struct LocalMembers<'p, R> {
    reader: Capped<R>,
    offsets: std::vec::IntoIter<u64>,
    path: &'p str,
    inner: Option<&'p str>,
}

impl<R: Read + Seek> MemberSource for LocalMembers<'_, R> {
    const INDEPENDENT: bool = true;

    fn next_member<M: Members>(
        &mut self,
        cs: &mut M,
        names: &mut M::Names,
    ) -> Option<io::Result<Member<'_>>> {
        let offset = self.offsets.next()?;
        let header =
            self.reader.seek(SeekFrom::Start(offset)).and_then(|_| local_header(&mut self.reader));
        // The name is never quoted in a message: a hostile header's name runs on into the
        // file's content (a secret included); the byte offset says which member it is.
        let LocalHeader { name, why, raw } = match header {
            Ok(Some(h)) => h,
            Ok(None) => return Some(Ok(Member::Skip)),
            Err(e) => return Some(Err(e)),
        };
        add_name::<M>(names, &name, name.ends_with('/'), MemberLink::None, &[]);
        let place = at(self.path, self.inner);
        let hidden = "is not in the central directory (a streaming reader such as Java's ZipInputStream extracts it)";
        if let Some(why) = why {
            cs.unread(format!("{place}: zip member at byte {offset} {hidden}: {why}; not read"));
            return Some(Ok(Member::Skip));
        }
        // Deflate64, LZMA and xz: decoded here from the raw bytes the header sizes, as
        // the central directory's members in those methods are (see `zip_methods`).
        if let Some((method, crc, compressed, size)) = raw {
            let data = (&mut self.reader).take(compressed);
            return match super::zip_methods::decoder(method, data, size, crc) {
                Ok(decoded) => {
                    cs.note(format!("{place}: zip member at byte {offset} {hidden}; read"));
                    Some(Ok(Member::File(join(self.inner, "!", &name), decoded)))
                }
                Err(e) => {
                    let e = crate::redact::io_error_text(&e);
                    cs.unread(format!(
                        "{place}: zip member at byte {offset} {hidden}: {e}; not read"
                    ));
                    Some(Ok(Member::Skip))
                }
            };
        }
        if let Err(e) = self.reader.seek(SeekFrom::Start(offset)) {
            return Some(Err(e));
        }
        match zip::read::read_zipfile_from_stream(&mut self.reader) {
            Ok(Some(member)) => {
                cs.note(format!("{place}: zip member at byte {offset} {hidden}; read"));
                Some(Ok(Member::File(join(self.inner, "!", &name), Box::new(member))))
            }
            Ok(None) => Some(Ok(Member::Skip)),
            Err(zip::result::ZipError::Io(e)) if super::is_limit(&e) => Some(Err(e)),
            Err(e) => {
                let e = crate::redact::io_error_text(&io::Error::other(e));
                cs.note(format!("{place}: zip member at byte {offset} {hidden}: {e}; not read"));
                Some(Ok(Member::Skip))
            }
        }
    }
}

/// Scans what the zip holds outside its central directory's first `count`
/// members (see the module's text); `seen` members were read already,
/// against the per-archive member limit.
pub(super) fn scan<M: Members, R: Read + Seek>(
    cs: &mut M,
    mut zip: zip::ZipArchive<R>,
    count: usize,
    path: &str,
    inner: Option<&str>,
    depth: usize,
) -> Partial<M::Hit> {
    let (gaps, starts) = gaps(&mut zip, count);
    let comment = zip.comment().to_vec();
    let mut reader = zip.into_inner();
    let max = cs.archive_limits().max_entries.saturating_sub(count);
    let mut hits = Vec::new();
    let mut ranges = Ranges { reader: &mut reader, ranges: &gaps, left: None };
    let tail = if comment.is_empty() { Vec::new() } else { [&b"\n"[..], &comment].concat() };
    let name = join(inner, "!", "<bytes outside the zip's members>");
    if !gaps.is_empty() || !tail.is_empty() {
        let mut chained = (&mut ranges).chain(tail.as_slice());
        match scan_raw(cs, path, Some(&name), &[], false, &mut chained) {
            Ok(h) => hits.extend(h),
            Err(e) => return Err((hits, e)),
        }
    }
    let offsets = match local_headers(&mut reader, &gaps, &starts, max) {
        Ok(o) => o,
        Err(e) => return Err((hits, e)),
    };
    after(hits, read_local(cs, reader, offsets, path, inner, depth))
}

/// Scans a file that starts like a zip but has no central directory a reader can use
/// (`error` says why): a note, its bytes as they are (`<bytes outside the zip's members>`),
/// and the members its local headers describe.
pub(super) fn scan_without_directory<M: Members, R: Read + Seek>(
    cs: &mut M,
    reader: R,
    error: &zip::result::ZipError,
    path: &str,
    inner: Option<&str>,
    depth: usize,
) -> Partial<M::Hit> {
    let e = crate::redact::io_error_text(&io::Error::other(error.to_string()));
    cs.note(format!(
        "{}: unreadable zip: {e}; its bytes and the members its local headers describe were read",
        at(path, inner)
    ));
    let mut reader = reader;
    let end = match reader.seek(SeekFrom::End(0)) {
        Ok(n) => n,
        Err(e) => return Err((Vec::new(), e)),
    };
    let whole = [(0, end)];
    let max = cs.archive_limits().max_entries;
    let mut hits = Vec::new();
    let name = join(inner, "!", "<bytes outside the zip's members>");
    let mut ranges = Ranges { reader: &mut reader, ranges: &whole, left: None };
    match scan_raw(cs, path, Some(&name), &[], false, &mut ranges) {
        Ok(h) => hits.extend(h),
        Err(e) => return Err((hits, e)),
    }
    let offsets = match local_headers(&mut reader, &whole, &HashSet::new(), max) {
        Ok(o) => o,
        Err(e) => return Err((hits, e)),
    };
    after(hits, read_local(cs, reader, offsets, path, inner, depth))
}

/// Reads the members at `offsets` (local headers).
fn read_local<M: Members, R: Read + Seek>(
    cs: &mut M,
    mut reader: R,
    offsets: Vec<u64>,
    path: &str,
    inner: Option<&str>,
    depth: usize,
) -> Partial<M::Hit> {
    if offsets.is_empty() {
        return Ok(Vec::new());
    }
    let size = reader.seek(SeekFrom::End(0)).unwrap_or(0);
    let reader = Capped { inner: reader, left: size.saturating_mul(2) };
    let mut local = LocalMembers { reader, offsets: offsets.into_iter(), path, inner };
    scan_members(cs, &mut local, path, inner, depth)
}
