//! Packfiles (`objects/pack/pack-*.pack`) and their version-2 indexes
//! (`*.idx`). A pack is read by positioned reads from a [`Source`], never
//! whole: entry headers are parsed where they start and each entry's zlib
//! stream is inflated on its own, up to a size bound. Without a usable
//! index the pack is walked entry by entry (see [`entry_offsets`]).

use std::io;

use flate2::{Decompress, FlushDecompress, Status};

use super::{Error, Kind, Oid};

/// Random-access bytes: a slice in memory or a region of a spool file.
pub trait Source {
    /// Length in bytes.
    #[allow(
        dead_code,
        reason = "part of the random-access source both readers implement; no caller yet"
    )]
    fn size(&self) -> u64;
    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end.
    ///
    /// # Errors
    /// I/O errors of the underlying file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// Bytes in memory as a [`Source`].
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Source for Bytes<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.0.len());
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
}

/// A region of a file.
#[derive(Debug, Clone, Copy)]
pub struct FileRegion<'a> {
    /// The file.
    pub file: &'a std::fs::File,
    /// Where the region starts.
    pub start: u64,
    /// Its length.
    pub len: u64,
}

impl Source for FileRegion<'_> {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        if offset >= self.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - offset) as usize;
        self.file.read_at(&mut buf[..n], self.start + offset)
    }
}

/// A sequential reader over a [`Source`].
pub struct SourceReader<'a> {
    src: &'a dyn Source,
    pos: u64,
}

impl<'a> SourceReader<'a> {
    /// Reads `src` from `pos` on.
    pub fn new(src: &'a dyn Source, pos: u64) -> Self {
        SourceReader { src, pos }
    }
}

impl io::Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// What a pack entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A whole object.
    Base(Kind),
    /// A delta against the entry at this pack offset.
    OfsDelta(u64),
    /// A delta against the object with this id.
    RefDelta(Oid),
}

/// A parsed entry header.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// What the entry holds.
    pub kind: EntryKind,
    /// Inflated size of the entry's data (the delta's size for deltas).
    pub size: u64,
    /// Where its zlib stream starts.
    pub data: u64,
}

/// Checks the 12-byte pack header; returns the object count.
///
/// # Errors
/// Not a pack, or a version other than 2 or 3.
pub fn header(src: &dyn Source) -> Result<u32, Error> {
    let mut h = [0u8; 12];
    if read_full(src, 0, &mut h)? < 12 || &h[..4] != b"PACK" {
        return Err(Error::Corrupt("not a git pack (no PACK signature)"));
    }
    let version = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    if version != 2 && version != 3 {
        return Err(Error::Corrupt("unsupported pack version"));
    }
    Ok(u32::from_be_bytes([h[8], h[9], h[10], h[11]]))
}

fn read_full(src: &dyn Source, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
    let mut n = 0;
    while n < buf.len() {
        let k = src.read_at(offset + n as u64, &mut buf[n..]).map_err(Error::Io)?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// Parses the entry header at `offset`.
///
/// # Errors
/// A header past the end, a reserved type, or a delta base offset that does
/// not point before the entry.
pub fn entry_at(src: &dyn Source, offset: u64) -> Result<Entry, Error> {
    let mut buf = [0u8; 32];
    let n = read_full(src, offset, &mut buf)?;
    let buf = &buf[..n];
    let mut pos = 0;
    let mut next = || {
        let b = buf.get(pos).copied().ok_or(Error::Corrupt("pack entry header truncated"));
        pos += 1;
        b
    };
    let first = next()?;
    let type_bits = (first >> 4) & 7;
    let mut size = u64::from(first & 0x0f);
    let mut shift = 4;
    let mut byte = first;
    while byte & 0x80 != 0 {
        byte = next()?;
        if shift > 60 {
            return Err(Error::Corrupt("pack entry size varint too long"));
        }
        size |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    let kind = match type_bits {
        1 => EntryKind::Base(Kind::Commit),
        2 => EntryKind::Base(Kind::Tree),
        3 => EntryKind::Base(Kind::Blob),
        4 => EntryKind::Base(Kind::Tag),
        6 => {
            let mut c = next()?;
            let mut back = u64::from(c & 0x7f);
            while c & 0x80 != 0 {
                c = next()?;
                back = back
                    .checked_add(1)
                    .and_then(|b| b.checked_mul(128))
                    .ok_or(Error::Corrupt("delta base offset overflows"))?
                    | u64::from(c & 0x7f);
            }
            if back == 0 || back > offset {
                return Err(Error::Corrupt("delta base offset outside the pack"));
            }
            EntryKind::OfsDelta(offset - back)
        }
        7 => {
            let mut oid = [0u8; 20];
            for b in &mut oid {
                *b = next()?;
            }
            EntryKind::RefDelta(Oid(oid))
        }
        _ => return Err(Error::Corrupt("pack entry of reserved type")),
    };
    Ok(Entry { kind, size, data: offset + pos as u64 })
}

/// Inflates the zlib stream at `offset`, which must yield exactly `size`
/// bytes; returns them and the compressed length consumed.
///
/// # Errors
/// Corrupt zlib, a stream of another size, or more than `max_size` bytes.
pub fn inflate_at(
    src: &dyn Source,
    offset: u64,
    size: u64,
    max_size: u64,
) -> Result<(Vec<u8>, u64), Error> {
    if size > max_size {
        return Err(Error::TooLarge(size));
    }
    let mut out = Vec::with_capacity(size as usize);
    let mut z = Decompress::new(true);
    let mut input = vec![0u8; 64 * 1024];
    let mut pos = offset;
    loop {
        let n = src.read_at(pos, &mut input).map_err(Error::Io)?;
        if n == 0 {
            return Err(Error::Corrupt("pack entry's zlib stream truncated"));
        }
        let mut used = 0;
        while used < n {
            // One spare byte: a stream longer than declared shows up as an overfull buffer.
            if out.len() as u64 > size {
                return Err(Error::Corrupt("pack entry larger than its header says"));
            }
            out.reserve(((size + 1) as usize).saturating_sub(out.len()).max(1));
            let before = z.total_in();
            let status = z
                .decompress_vec(&input[used..n], &mut out, FlushDecompress::None)
                .map_err(|e| Error::Zlib(e.to_string()))?;
            let consumed = (z.total_in() - before) as usize;
            used += consumed;
            if status == Status::StreamEnd {
                if out.len() as u64 != size {
                    return Err(Error::Corrupt("pack entry size differs from its header"));
                }
                return Ok((out, z.total_in()));
            }
            if consumed == 0 && out.len() < out.capacity() {
                break;
            }
        }
        pos += used as u64;
        if used == 0 {
            return Err(Error::Corrupt("pack entry's zlib stream stalls"));
        }
    }
}

/// Parses a version-2 pack index: `(object id, pack offset)` for every
/// object, sorted by id. Indexes listing more than `max_objects` are refused.
///
/// # Errors
/// A bad signature or version, a truncated table, or [`Error::Limit`].
pub fn parse_index(idx: &[u8], max_objects: usize) -> Result<Vec<(Oid, u64)>, Error> {
    if idx.len() < 8 + 1024 || idx[..4] != [0xff, b't', b'O', b'c'] || idx[4..8] != [0, 0, 0, 2] {
        return Err(Error::Corrupt("not a version 2 pack index"));
    }
    let be32 = |at: usize| -> Result<u32, Error> {
        idx.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(Error::Corrupt("pack index truncated"))
    };
    let count = be32(8 + 255 * 4)? as usize;
    if count > max_objects {
        return Err(Error::Limit(format!(
            "pack index lists {count} objects (limit {max_objects})"
        )));
    }
    let names = 8 + 1024;
    let offsets = names + count * 24;
    let large = offsets + count * 4;
    if idx.len() < large + 40 {
        return Err(Error::Corrupt("pack index truncated"));
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let mut oid = [0u8; 20];
        oid.copy_from_slice(&idx[names + i * 20..names + i * 20 + 20]);
        let small = be32(offsets + i * 4)?;
        let offset = if small & 0x8000_0000 != 0 {
            let at = large + (small & 0x7fff_ffff) as usize * 8;
            let b = idx.get(at..at + 8).ok_or(Error::Corrupt("pack index truncated"))?;
            u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        } else {
            u64::from(small)
        };
        out.push((Oid(oid), offset));
    }
    if out.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(Error::Corrupt("pack index ids are not sorted"));
    }
    Ok(out)
}

/// Offsets of every entry, found by walking the pack from its header and
/// inflating each entry to learn where the next begins (for packs without a
/// usable index). Stops at `count` entries or `max_objects`.
///
/// # Errors
/// A corrupt entry (what came before is lost with it), or [`Error::Limit`].
pub fn entry_offsets(
    src: &dyn Source,
    max_objects: usize,
    max_size: u64,
) -> Result<Vec<u64>, Error> {
    let count = header(src)? as usize;
    if count > max_objects {
        return Err(Error::Limit(format!("pack holds {count} objects (limit {max_objects})")));
    }
    let mut offsets = Vec::with_capacity(count.min(1 << 16));
    let mut at = 12;
    for _ in 0..count {
        let e = entry_at(src, at)?;
        let (_, used) = inflate_at(src, e.data, e.size, max_size)?;
        offsets.push(at);
        at = e.data + used;
    }
    Ok(offsets)
}
