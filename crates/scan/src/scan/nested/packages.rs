//! The archives system packages come in: `ar` (a `.deb` holds
//! `control.tar.*` and `data.tar.*`), cpio in its ASCII formats (initramfs
//! images, RPM payloads) and RPM packages. A package left in a layer (an apt
//! cache, a `COPY`ed `.rpm`, an initramfs under `/boot`) holds files like
//! any archive, and they are read the same way: each member through the one
//! member loop, with the same budgets (members per archive, bytes expanded,
//! depth) and the same 64 KiB limit on a member's name as a tar's.
//!
//! All three are streams: a member's header says how long it is, and a
//! member's unread bytes are skipped before the next header.

use std::io::{self, Read};

use super::{
    LimitHit, Member, MemberLink, MemberSource, Members, Partial, add_name, join, scan_members,
};
use crate::sniff::Format;

/// Longest member name read (a tar entry's limit).
const MAX_NAME: u64 = 64 << 10;

/// Largest GNU `ar` long-name table held (`//`), to name the members after it.
const MAX_NAME_TABLE: u64 = 1 << 20;

/// Largest RPM header read past (the signature and main headers), in bytes: real ones
/// are a few MiB at most (file lists of large packages).
const MAX_RPM_HEADER: u64 = 256 << 20;

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads exactly `buf.len()` bytes; false at a clean end before the first byte.
fn read_header(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<bool> {
    let n = super::fill(reader, buf)?;
    if n == 0 {
        return Ok(false);
    }
    if n < buf.len() {
        return Err(invalid(format!("truncated header ({n} of {} bytes)", buf.len())));
    }
    Ok(true)
}

/// Skips `n` bytes of `reader`.
fn skip(reader: &mut dyn Read, n: u64) -> io::Result<()> {
    let skipped = io::copy(&mut reader.take(n), &mut io::sink())?;
    if skipped < n {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive cut short"));
    }
    Ok(())
}

/// A number in a header field (decimal, octal or hex, space-padded).
fn number(field: &[u8], radix: u32, what: &str) -> io::Result<u64> {
    std::str::from_utf8(field)
        .ok()
        .map(|s| s.trim_matches(|c| c == ' ' || c == '\0'))
        .and_then(|s| if s.is_empty() { Some(0) } else { u64::from_str_radix(s, radix).ok() })
        .ok_or_else(|| invalid(format!("the {what} field of a member header is not a number")))
}

/// A name read from the archive, within [`MAX_NAME`].
fn read_name(reader: &mut dyn Read, len: u64) -> io::Result<String> {
    if len > MAX_NAME {
        return Err(io::Error::other(LimitHit(format!(
            "a member name of {len} bytes exceeds the {MAX_NAME}-byte limit"
        ))));
    }
    let mut name = Vec::new();
    reader.take(len).read_to_end(&mut name)?;
    if (name.len() as u64) < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive cut short"));
    }
    while name.last() == Some(&0) {
        name.pop();
    }
    Ok(crate::image::path::decode_name(&name))
}

/// The member being read: the bytes of its data not yet consumed.
struct Section<'a> {
    reader: &'a mut dyn Read,
    left: &'a mut u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(*self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.reader.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive cut short"));
        }
        *self.left -= n as u64;
        Ok(n)
    }
}

/// What the stream and member loop of `ar` and cpio share: the reader, the
/// member being read (its bytes left, the padding after it), and the count.
struct Stream<'r, 'p> {
    reader: &'r mut dyn Read,
    inner: Option<&'p str>,
    /// Data bytes of the last member not read yet, then its padding.
    left: u64,
    pad: u64,
    seen: usize,
}

impl<'r, 'p> Stream<'r, 'p> {
    fn new(reader: &'r mut dyn Read, inner: Option<&'p str>) -> Self {
        Stream { reader, inner, left: 0, pad: 0, seen: 0 }
    }

    /// Skips what is left of the last member; counts this one against the limit.
    fn next<M: Members>(&mut self, cs: &mut M) -> io::Result<()> {
        skip(self.reader, self.left + self.pad)?;
        (self.left, self.pad) = (0, 0);
        let max = cs.archive_limits().max_entries;
        if self.seen >= max {
            return Err(io::Error::other(LimitHit(format!(
                "more than {max} members (the per-archive member limit)"
            ))));
        }
        self.seen += 1;
        Ok(())
    }

    /// The member `name` of `size` bytes, then `pad` bytes of padding.
    fn member(&mut self, name: &str, size: u64, pad: u64) -> Member<'_> {
        (self.left, self.pad) = (size, pad);
        if size == 0 {
            return Member::Skip;
        }
        let name = join(self.inner, "!", name.trim_start_matches("./"));
        Member::File(name, Box::new(Section { reader: self.reader, left: &mut self.left }))
    }
}

/// An `ar` archive: a 60-byte header per member (name, size in decimal), data padded to
/// an even length. GNU long names (`/N`, from the `//` table) and BSD ones (`#1/LEN`,
/// the name first in the data) are resolved.
struct ArMembers<'r, 'p> {
    stream: Stream<'r, 'p>,
    /// GNU's `//` member: the long names, each ended by `/\n`.
    names: Vec<u8>,
}

impl MemberSource for ArMembers<'_, '_> {
    fn next_member<M: Members>(
        &mut self,
        cs: &mut M,
        names: &mut M::Names,
    ) -> Option<io::Result<Member<'_>>> {
        let r = (|| {
            self.stream.next(cs)?;
            let mut h = [0u8; 60];
            if !read_header(self.stream.reader, &mut h)? {
                return Ok(None);
            }
            if &h[58..60] != b"`\n" {
                return Err(invalid(
                    "a member header without its end marker (not an ar archive)".into(),
                ));
            }
            let mut size = number(&h[48..58], 10, "size")?;
            // Data is padded to an even length: the name of a BSD member counts.
            let pad = size % 2;
            let raw = String::from_utf8_lossy(&h[..16]).trim_end().to_owned();
            let name = if raw == "//" {
                if size > MAX_NAME_TABLE {
                    return Err(io::Error::other(LimitHit(format!(
                        "a long-name table of {size} bytes exceeds the {MAX_NAME_TABLE}-byte limit"
                    ))));
                }
                self.names.clear();
                self.stream.reader.take(size).read_to_end(&mut self.names)?;
                size = 0;
                "//".to_owned()
            } else if let Some(len) = raw.strip_prefix("#1/") {
                let len = number(len.as_bytes(), 10, "name length")?;
                if len > size {
                    return Err(invalid("a BSD long name longer than its member".into()));
                }
                size -= len;
                read_name(self.stream.reader, len)?
            } else if raw == "/" || raw == "/SYM64/" {
                // The symbol table of a static library.
                "<ar symbol table>".to_owned()
            } else if let Some(at) = raw
                .strip_prefix('/')
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            {
                let at = usize::try_from(number(at.as_bytes(), 10, "long name offset")?)
                    .unwrap_or(usize::MAX);
                let rest = self.names.get(at..).unwrap_or_default();
                let end = rest.windows(2).position(|w| w == b"/\n").unwrap_or(rest.len());
                crate::image::path::decode_name(&rest[..end])
            } else {
                raw.strip_suffix('/').unwrap_or(&raw).to_owned()
            };
            Ok(Some((name, size, pad)))
        })();
        match r {
            Ok(None) => None,
            Err(e) => Some(Err(e)),
            Ok(Some((name, size, pad))) => {
                // The long-name table and the symbol table are no members of their own.
                if name != "//" && !name.starts_with('<') {
                    add_name::<M>(names, &name, false, MemberLink::None, &[]);
                }
                Some(Ok(self.stream.member(&name, size, pad)))
            }
        }
    }
}

/// A cpio archive in an ASCII format: `newc` (`070701`, `070702`: a 110-byte header of
/// hex fields, name and data each padded to 4 bytes) or `odc` (`070707`: 76 bytes of
/// octal fields, no padding), or the old binary one (`cpio -H bin`: 26 bytes, the magic
/// 070707 a 16-bit word in either byte order), up to its `TRAILER!!!` member. What follows the trailer
/// (an initramfs puts a compressed archive after an uncompressed one) is one more member,
/// read as a file of its own.
struct CpioMembers<'r, 'p> {
    stream: Stream<'r, 'p>,
    /// Bytes read so far, for the padding to 4 of `newc`.
    at: u64,
    ended: bool,
}

impl MemberSource for CpioMembers<'_, '_> {
    fn next_member<M: Members>(
        &mut self,
        cs: &mut M,
        names: &mut M::Names,
    ) -> Option<io::Result<Member<'_>>> {
        if self.ended {
            return None;
        }
        let r = (|| {
            self.stream.next(cs)?;
            let mut magic = [0u8; 6];
            if !read_header(self.stream.reader, &mut magic[..2])? {
                return Ok(None);
            }
            if let Some(big_endian) = binary_magic(&magic[..2]) {
                return self.binary_member(big_endian);
            }
            read_header(self.stream.reader, &mut magic[2..])?;
            let (namesize, size, mode, newc) = match &magic {
                b"070701" | b"070702" => {
                    let mut h = [0u8; 104];
                    read_header(self.stream.reader, &mut h)?;
                    let field = |i: usize| number(&h[i * 8..i * 8 + 8], 16, "cpio");
                    (field(11)?, field(6)?, field(1)?, true)
                }
                b"070707" => {
                    let mut h = [0u8; 70];
                    read_header(self.stream.reader, &mut h)?;
                    (
                        number(&h[53..59], 8, "name size")?,
                        number(&h[59..70], 8, "file size")?,
                        number(&h[12..18], 8, "mode")?,
                        false,
                    )
                }
                _ => return Err(invalid("not a cpio header where one should start".into())),
            };
            let header = if newc { 110 } else { 76 };
            let name = read_name(self.stream.reader, namesize)?;
            self.at += header + namesize;
            let pad4 = |n: u64| if newc { (4 - n % 4) % 4 } else { 0 };
            let name_pad = pad4(self.at);
            skip(self.stream.reader, name_pad)?;
            self.at += name_pad + size;
            let data_pad = pad4(self.at);
            self.at += data_pad;
            if name == "TRAILER!!!" {
                self.ended = true;
                let rest = super::after_zeros(self.stream.reader)?;
                return Ok(rest.map(|head| ("<after the cpio trailer>".to_owned(), None, head)));
            }
            Ok(Some((name, Some((size, data_pad, is_dir(mode))), Vec::new())))
        })();
        match r {
            Ok(None) => None,
            Err(e) => Some(Err(e)),
            Ok(Some((name, Some((size, pad, dir)), _))) => {
                add_name::<M>(names, &name, dir, MemberLink::None, &[]);
                Some(Ok(self.stream.member(&name, size, pad)))
            }
            Ok(Some((name, None, head))) => {
                let name = join(self.stream.inner, "!", &name);
                let rest = io::Cursor::new(head).chain(&mut *self.stream.reader);
                Some(Ok(Member::File(name, Box::new(rest))))
            }
        }
    }
}

/// What a member of a cpio archive is, once its header and name are read:
/// its name and, for a member with data, its size, padding and whether it is a
/// directory; `None` for the trailer (what follows it is read as one more member,
/// whose first bytes come with it).
type CpioEntry = Option<(String, Option<(u64, u64, bool)>, Vec<u8>)>;

/// Whether a cpio member's mode (`st_mode`: the file type in bits 12-15) is a directory's.
fn is_dir(mode: u64) -> bool {
    mode & 0o170_000 == 0o040_000
}

/// The byte order of an old binary cpio header (`cpio -H bin`) from its first two
/// bytes, the 16-bit magic 070707 in the writer's order: `Some(true)` big-endian.
fn binary_magic(first: &[u8]) -> Option<bool> {
    match first {
        [0x71, 0xc7] => Some(true),
        [0xc7, 0x71] => Some(false),
        _ => None,
    }
}

impl CpioMembers<'_, '_> {
    /// A member of an old binary cpio (its magic read already): 13 16-bit
    /// words, 32-bit fields as two words high first, the name (with its NUL)
    /// and the data each padded to an even length.
    fn binary_member(&mut self, big_endian: bool) -> io::Result<CpioEntry> {
        let mut h = [0u8; 24];
        read_header(self.stream.reader, &mut h)?;
        let word = |i: usize| {
            let b = [h[i * 2], h[i * 2 + 1]];
            u64::from(if big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
        };
        // Words after the magic: dev, ino, mode, uid, gid, nlink, rdev, mtime (2),
        // namesize, filesize (2).
        let namesize = word(9);
        let size = (word(10) << 16) | word(11);
        let name = read_name(self.stream.reader, namesize)?;
        skip(self.stream.reader, namesize % 2)?;
        if name == "TRAILER!!!" {
            self.ended = true;
            let rest = super::after_zeros(self.stream.reader)?;
            return Ok(rest.map(|head| ("<after the cpio trailer>".to_owned(), None, head)));
        }
        Ok(Some((name, Some((size, size % 2, is_dir(word(2)))), Vec::new())))
    }
}

/// Scans an `ar` archive's members.
pub(super) fn scan_ar<M: Members>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> Partial<M::Hit> {
    let mut magic = [0u8; 8];
    if let Err(e) = read_header(reader, &mut magic) {
        return Err((Vec::new(), e));
    }
    let stream = Stream::new(reader, inner);
    scan_members(cs, &mut ArMembers { stream, names: Vec::new() }, path, inner, depth)
}

/// Scans a cpio archive's members.
pub(super) fn scan_cpio<M: Members>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> Partial<M::Hit> {
    let stream = Stream::new(reader, inner);
    scan_members(cs, &mut CpioMembers { stream, at: 0, ended: false }, path, inner, depth)
}

/// Scans an RPM package: its headers (the signature and the main header, which hold the
/// scriptlets, the description and the file list) as the member `<rpm header>`, then its
/// payload (a compressed cpio archive) at this level: its members are named under the
/// package, as a `.tar.gz`'s are.
pub(super) fn scan_rpm<M: Members>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> Partial<M::Hit> {
    // The 96-byte lead, then the signature header (padded to 8 bytes), then the header.
    let headers = (|| {
        skip(reader, 96)?;
        let mut held = Vec::new();
        for padded in [true, false] {
            let mut intro = [0u8; 16];
            if !read_header(reader, &mut intro)? || intro[..4] != [0x8e, 0xad, 0xe8, 0x01] {
                return Err(invalid("an RPM header without its magic number".into()));
            }
            let count = u64::from(u32::from_be_bytes([intro[8], intro[9], intro[10], intro[11]]));
            let store = u64::from(u32::from_be_bytes([intro[12], intro[13], intro[14], intro[15]]));
            let mut len = count * 16 + store;
            if padded {
                len += (8 - (16 + len) % 8) % 8;
            }
            if held.len() as u64 + len > MAX_RPM_HEADER {
                return Err(io::Error::other(LimitHit(format!(
                    "an RPM header of more than {} MiB",
                    MAX_RPM_HEADER >> 20
                ))));
            }
            held.extend_from_slice(&intro);
            let start = held.len();
            reader.take(len).read_to_end(&mut held)?;
            if ((held.len() - start) as u64) < len {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "RPM header cut short"));
            }
        }
        Ok(held)
    })();
    let headers = match headers {
        Ok(h) => h,
        Err(e) => return Err((Vec::new(), e)),
    };
    let name = join(inner, "!", "<rpm header>");
    let hits = match super::scan_held(cs, path, Some(&name), &headers) {
        Ok(h) => h,
        Err(e) => return Err((Vec::new(), e)),
    };
    drop(headers);
    // The payload: sniffed like any file, opened at this level.
    let mut head = [0u8; 512];
    let n = match super::fill(reader, &mut head) {
        Ok(n) => n,
        Err(e) => return Err((hits, e)),
    };
    let mut payload = io::Cursor::new(&head[..n]).chain(reader);
    let result = match crate::sniff::file_format(&head[..n]) {
        Some(
            kind @ (Format::Gzip
            | Format::Xz
            | Format::Bzip2
            | Format::Zstd
            | Format::Lz4
            | Format::Lzma
            | Format::Lzip),
        ) => super::scan_compressed(cs, kind, path, inner, depth, &mut payload),
        Some(Format::Cpio) => scan_cpio(cs, path, inner, depth, &mut payload),
        _ => {
            // No runtime or package manager reads a payload strata cannot open: it is
            // scanned as it is, and said so.
            cs.unread(format!(
                "{}: an RPM payload in a format strata does not read: only its raw bytes were scanned",
                super::at(path, inner)
            ));
            let name = join(inner, "!", "<rpm payload>");
            super::scan_raw(cs, path, Some(&name), &[], false, &mut payload)
                .map_err(|e| (Vec::new(), e))
        }
    };
    super::after(hits, result)
}
