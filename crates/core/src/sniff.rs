//! Magic bytes: what a stream holds, judged from its first bytes, never from a media type or
//! a file name (real tools label uncompressed layers `tar+gzip` and vice versa, and a file in
//! a layer may be named anything). This is the one table of magic numbers strata matches.
//!
//! Two layers ask, with two questions:
//! - `image` asks how a whole stream (a target file, a layer blob) is compressed:
//!   [`compression`], then [`looks_like_tar`] for what the plain bytes are.
//! - `scan` asks what a file inside a layer is, to open it: [`file_format`] (archives,
//!   compressed streams, SQLite databases, compiled Python).
//!
//! The answers differ in one place, on purpose: a whole stream is gzip from its two magic
//! bytes (a blob with another compression method then fails loudly as a corrupt layer),
//! while a file is gzip only with the deflate method byte too, because arbitrary file content
//! starts with `1f 8b` far more often than a layer blob does.
//!
//! It names nothing else of strata: a leaf, so both layers can use it.

/// A format recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PKZIP (local file header or empty archive).
    Zip,
    /// gzip stream.
    Gzip,
    /// xz stream.
    Xz,
    /// bzip2 stream.
    Bzip2,
    /// zstd frame.
    Zstd,
    /// LZ4 frame.
    Lz4,
    /// A legacy `.lzma` stream ("LZMA alone", `xz --format=lzma`): old `.deb` and `.rpm`
    /// payloads.
    Lzma,
    /// An lzip stream (`.lz`, `.tar.lz`): LZMA members with a CRC and sizes.
    Lzip,
    /// A compressed format strata does not decompress (named).
    Unsupported(&'static str),
    /// POSIX/GNU tar.
    Tar,
    /// A Unix `ar` archive (a `.deb` package, a static library).
    Ar,
    /// A cpio archive in the portable ASCII formats (`newc`, `crc`, `odc`): initramfs
    /// images, RPM payloads.
    Cpio,
    /// An RPM package: headers, then a compressed cpio payload.
    Rpm,
    /// SQLite 3 database.
    Sqlite,
    /// Compiled Python 3 (`.pyc`).
    Pyc,
    /// A compiled Java class (`.class`, alone or inside a jar).
    JavaClass,
}

impl Format {
    /// Whether what it holds can be an archive again: the members of an archive and the
    /// content of a compressed stream (a SQLite table's, a pyc's or a class file's strings are text, so they
    /// never add a level).
    pub fn nests(self) -> bool {
        matches!(
            self,
            Format::Zip
                | Format::Gzip
                | Format::Xz
                | Format::Bzip2
                | Format::Zstd
                | Format::Lz4
                | Format::Lzma
                | Format::Lzip
                | Format::Tar
                | Format::Ar
                | Format::Cpio
                | Format::Rpm
        )
    }

    /// File name suffixes of a compressed stream, stripped to name what it holds (`.tgz`
    /// and the like hold a tar, whose members are named themselves); empty for the others.
    pub fn suffixes(self) -> &'static [&'static str] {
        match self {
            Format::Gzip => &[".gz", ".tgz"],
            Format::Xz => &[".xz", ".txz"],
            Format::Bzip2 => &[".bz2", ".tbz2", ".tbz"],
            Format::Zstd => &[".zst", ".tzst"],
            Format::Lz4 => &[".lz4"],
            Format::Lzma => &[".lzma"],
            Format::Lzip => &[".lz", ".tlz"],
            _ => &[],
        }
    }
}

/// gzip's two magic bytes.
const GZIP: [u8; 2] = [0x1f, 0x8b];
/// A zstd frame's magic number.
const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The 16-byte magic string at the start of every SQLite 3 database.
pub const SQLITE: &[u8; 16] = b"SQLite format 3\0";

/// How a whole stream (a target file, a layer blob) is compressed: [`Format::Gzip`],
/// [`Format::Zstd`], [`Format::Xz`] or [`Format::Bzip2`] (the four Docker's loader accepts
/// for a layer), or `None` for anything else (plain bytes, to be read as they are).
pub fn compression(head: &[u8]) -> Option<Format> {
    if head.starts_with(&GZIP) {
        Some(Format::Gzip)
    } else if head.starts_with(&ZSTD) || is_zstd_skippable(head) {
        Some(Format::Zstd)
    } else if is_xz(head) {
        Some(Format::Xz)
    } else if is_bzip2(head) {
        Some(Format::Bzip2)
    } else {
        None
    }
}

/// A zstd skippable frame's header (magic 0x184D2A50 to 0x184D2A5F, then its size): a
/// stream may start with one, and containerd's and Docker's detection take it as zstd.
fn is_zstd_skippable(head: &[u8]) -> bool {
    matches!(head, [0x50..=0x5f, 0x2a, 0x4d, 0x18, _, _, _, _, ..])
}

/// An xz stream header's magic.
fn is_xz(head: &[u8]) -> bool {
    head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
}

/// A bzip2 stream: "BZh", the block size, then a block's or the end-of-stream marker's
/// magic ("BZh" alone is text).
fn is_bzip2(head: &[u8]) -> bool {
    matches!(
        head,
        [b'B', b'Z', b'h', b'1'..=b'9', 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, ..]
            | [b'B', b'Z', b'h', b'1'..=b'9', 0x17, 0x72, 0x45, 0x38, 0x50, 0x90, ..]
    )
}

/// What a file holds, from its first bytes (a tar needs its first 512): an archive or
/// compressed stream to open, a database or compiled Python or Java file to read, or `None` for
/// anything else.
pub fn file_format(head: &[u8]) -> Option<Format> {
    match head {
        [b'P', b'K', 3, 4, ..] => Some(Format::Zip),
        // A script with a zip appended (Spring Boot's "fully executable" jar, a
        // self-extracting installer): a zip reader finds its central directory at the end.
        [b'#', b'!', ..] if head.windows(4).any(|w| w == b"PK\x03\x04") => Some(Format::Zip),
        [0x1f, 0x8b, 8, ..] => Some(Format::Gzip),
        _ if is_xz(head) => Some(Format::Xz),
        _ if is_bzip2(head) => Some(Format::Bzip2),
        // A skippable frame may come first (zstd:chunked metadata, a producer's own header).
        _ if head.starts_with(&ZSTD) || is_zstd_skippable(head) => Some(Format::Zstd),
        [0x04, 0x22, 0x4d, 0x18, ..] => Some(Format::Lz4),
        _ if is_lzma(head) => Some(Format::Lzma),
        [b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c, ..] => Some(Format::Unsupported("7z")),
        [b'R', b'a', b'r', b'!', 0x1a, 0x07, ..] => Some(Format::Unsupported("rar")),
        [b'L', b'Z', b'I', b'P', 1, ..] => Some(Format::Lzip),
        [0x1f, 0x9d, ..] => Some(Format::Unsupported("Unix compress (.Z)")),
        _ if head.starts_with(SQLITE) => Some(Format::Sqlite),
        _ if is_pyc(head) => Some(Format::Pyc),
        _ if is_java_class(head) => Some(Format::JavaClass),
        _ if looks_like_tar(head) => Some(Format::Tar),
        _ if head.starts_with(b"!<arch>\n") => Some(Format::Ar),
        _ if is_cpio(head) => Some(Format::Cpio),
        [0xed, 0xab, 0xee, 0xdb, 3 | 4, ..] => Some(Format::Rpm),
        _ => None,
    }
}

/// An "LZMA alone" header as `xz --format=lzma` writes it: the default properties byte
/// (lc=3, lp=0, pb=2), a dictionary size of a power of two from 4 KiB to 1 GiB, and an
/// uncompressed size that is unknown (all ones) or under 1 TiB.
fn is_lzma(head: &[u8]) -> bool {
    let [0x5d, d0, d1, d2, d3, s0, s1, s2, s3, s4, s5, s6, s7, ..] = *head else {
        return false;
    };
    let dict = u32::from_le_bytes([d0, d1, d2, d3]);
    let size = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
    dict.is_power_of_two()
        && (4096..=1 << 30).contains(&dict)
        && (size == u64::MAX || size < 1 << 40)
}

/// A cpio header in one of the ASCII formats: `070701` (newc), `070702` (newc with
/// checksums) or `070707` (odc), then digits; or in the old binary format (see
/// [`is_binary_cpio`]).
pub fn is_cpio(head: &[u8]) -> bool {
    let hex = |b: &[u8]| b.iter().all(u8::is_ascii_hexdigit);
    match head {
        [b'0', b'7', b'0', b'7', b'0', b'1' | b'2', rest @ ..] if rest.len() >= 104 => {
            hex(&rest[..104])
        }
        [b'0', b'7', b'0', b'7', b'0', b'7', rest @ ..] if rest.len() >= 70 => {
            rest[..70].iter().all(|b| (b'0'..=b'7').contains(b))
        }
        _ => is_binary_cpio(head),
    }
}

/// An old binary cpio header (`cpio -H bin`): the magic 070707 as a 16-bit word in
/// either byte order, then 12 more words. Two magic bytes alone are common in other
/// data, so the header must also hold up: a file type cpio writes in its mode (or the
/// `TRAILER!!!` of an empty archive), and a name of 1 to 4096 bytes, all of it in
/// `head`, that ends at its first NUL.
pub fn is_binary_cpio(head: &[u8]) -> bool {
    let big = match head {
        [0x71, 0xc7, ..] => true,
        [0xc7, 0x71, ..] => false,
        _ => return false,
    };
    if head.len() < 26 {
        return false;
    }
    let word = |i: usize| {
        let b = [head[i * 2], head[i * 2 + 1]];
        if big { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
    };
    let (mode, namesize) = (word(3), usize::from(word(10)));
    let Some(name) = head.get(26..26 + namesize) else { return false };
    let ends_at_nul = name.iter().position(|&b| b == 0) == Some(namesize.wrapping_sub(1));
    // Regular file, directory, symlink, character and block device, fifo, socket.
    let typed = matches!(
        mode & 0o170000,
        0o100000 | 0o040000 | 0o120000 | 0o020000 | 0o060000 | 0o010000 | 0o140000
    );
    (1..=4096).contains(&namesize) && ends_at_nul && (typed || name == b"TRAILER!!!\0")
}

/// Whether `head` starts like a pyc of Python 3: a 16-bit magic number in the range
/// Python 3 uses (3000..4000), then `\r\n`.
pub fn is_pyc(head: &[u8]) -> bool {
    match head {
        [a, b, b'\r', b'\n', ..] => (3000..4000).contains(&u16::from_le_bytes([*a, *b])),
        _ => false,
    }
}

/// Whether `head` starts like a Java class file: `CAFEBABE`, a minor version, then a
/// major version Java has used (45 for 1.1 up to 90, well past today's). A Mach-O
/// universal binary starts with the same magic, but a count of architectures (a few)
/// where a class file has its major version.
pub fn is_java_class(head: &[u8]) -> bool {
    match head {
        [0xca, 0xfe, 0xba, 0xbe, _, _, hi, lo, ..] => {
            (45..=90).contains(&u16::from_be_bytes([*hi, *lo]))
        }
        _ => false,
    }
}

/// True when `block` (at least 512 bytes) starts with a tar header: the `ustar` magic, or a
/// header checksum that adds up (old v7 archives).
pub fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    if &block[257..262] == b"ustar" {
        return true;
    }
    // Every file of a layer is sniffed with this: decide by the stored
    // checksum field first (text files fail there), and sum the block only
    // when it holds a number.
    if block[0] == 0 {
        return false;
    }
    let Some(stored) = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok())
    else {
        return false;
    };
    // The checksum field counts as eight spaces; a branch-free sum vectorises.
    let field: u32 = block[148..156].iter().map(|&b| u32::from(b)).sum();
    let all: u32 = block[..512].iter().map(|&b| u32::from(b)).sum();
    all - field + 8 * 32 == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v7 tar header (no `ustar` magic) for a file named `a`, its checksum filled in.
    fn v7_header() -> [u8; 512] {
        let mut h = [0u8; 512];
        h[0] = b'a';
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(b"00000000000\0");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    #[test]
    fn stream_compression_by_magic() {
        assert_eq!(compression(&[0x1f, 0x8b, 8]), Some(Format::Gzip));
        // A whole stream needs no method byte: a bad one is a corrupt layer, said loudly.
        assert_eq!(compression(&[0x1f, 0x8b]), Some(Format::Gzip));
        assert_eq!(compression(&[0x28, 0xb5, 0x2f, 0xfd]), Some(Format::Zstd));
        // A skippable frame first (its magic and size), as containerd detects it.
        assert_eq!(compression(&[0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), Some(Format::Zstd));
        assert_eq!(compression(&[0x5e, 0x2a, 0x4d, 0x18]), None);
        assert_eq!(compression(&[0x60, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), None);
        assert_eq!(compression(b"hello"), None);
        assert_eq!(compression(b""), None);
        assert_eq!(compression(&v7_header()), None);
    }

    #[test]
    fn file_formats_by_magic() {
        let table: [(&[u8], Option<Format>); 17] = [
            (b"PK\x03\x04rest", Some(Format::Zip)),
            (&[0x1f, 0x8b, 8, 0], Some(Format::Gzip)),
            (&[0x1f, 0x8b, 7, 0], None),
            (b"\xfd7zXZ\0", Some(Format::Xz)),
            (b"BZh91AY&SY", Some(Format::Bzip2)),
            (b"BZh9 and then text", None),
            (&[0x28, 0xb5, 0x2f, 0xfd, 0], Some(Format::Zstd)),
            (&[0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0], Some(Format::Zstd)),
            (&[0x04, 0x22, 0x4d, 0x18], Some(Format::Lz4)),
            (b"7z\xbc\xaf\x27\x1c", Some(Format::Unsupported("7z"))),
            (b"Rar!\x1a\x07\x00", Some(Format::Unsupported("rar"))),
            (&[0x1f, 0x9d, 0x90], Some(Format::Unsupported("Unix compress (.Z)"))),
            (b"SQLite format 3\0....", Some(Format::Sqlite)),
            (&[0xa7, 0x0d, b'\r', b'\n', 0], Some(Format::Pyc)),
            (&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 61, 0, 9], Some(Format::JavaClass)),
            (&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2, 1, 0], None), // Mach-O universal, 2 archs
            (b"ab\r\nplain text", None),
        ];
        for (head, want) in table {
            assert_eq!(file_format(head), want, "{head:?}");
        }
        assert_eq!(file_format(&v7_header()), Some(Format::Tar));
        assert_eq!(file_format(b"#!/bin/sh\nexit 0\nPK\x03\x04\x14\0"), Some(Format::Zip));
        assert_eq!(file_format(b"#!/bin/sh\nexit 0\n"), None);
        let lzma = [0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0];
        assert_eq!(file_format(&lzma), Some(Format::Lzma));
        assert_eq!(file_format(&[0x5d, 0, 0, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(file_format(b"!<arch>\ndebian-binary   "), Some(Format::Ar));
        assert_eq!(file_format(&[0xed, 0xab, 0xee, 0xdb, 3, 0]), Some(Format::Rpm));
        let newc = format!("070701{}", "0".repeat(104));
        assert_eq!(file_format(newc.as_bytes()), Some(Format::Cpio));
        let odc = format!("070707{}", "0".repeat(70));
        assert_eq!(file_format(odc.as_bytes()), Some(Format::Cpio));
        assert_eq!(file_format(b"0707012 is a date, not a cpio header"), None);
        // Old binary cpio: a regular file `a` (mode 0100644, namesize 2), either order.
        let mut le = vec![0u8; 26];
        for (i, w) in [(0, 0o070707u16), (3, 0o100644), (10, 2), (12, 5)] {
            le[i * 2..i * 2 + 2].copy_from_slice(&w.to_le_bytes());
        }
        le.extend_from_slice(b"a\0hello");
        assert_eq!(file_format(&le), Some(Format::Cpio));
        let be: Vec<u8> =
            le[..26].chunks(2).flat_map(|w| [w[1], w[0]]).chain(le[26..].iter().copied()).collect();
        assert_eq!(file_format(&be), Some(Format::Cpio));
        // The magic alone, or with a name that does not end where its size says, is not one.
        let mut bad = le.clone();
        bad[26..28].copy_from_slice(b"ab");
        assert_eq!(file_format(&bad), None);
        assert_eq!(file_format(&[0xc7, 0x71, 1, 2, 3]), None);
        let mut no_type = le;
        no_type[6..8].copy_from_slice(&0o644u16.to_le_bytes());
        assert_eq!(file_format(&no_type), None);
    }

    #[test]
    fn recognises_tar_headers() {
        assert!(looks_like_tar(&v7_header()));
        let mut ustar = [0u8; 512];
        ustar[257..262].copy_from_slice(b"ustar");
        assert!(looks_like_tar(&ustar));
        let mut bad = v7_header();
        bad[1] = b'b';
        assert!(!looks_like_tar(&bad), "a checksum that does not add up");
        assert!(!looks_like_tar(&v7_header()[..511]));
        assert!(!looks_like_tar(&[7u8; 512]));
        assert!(!looks_like_tar(&[0u8; 512]));
    }

    #[test]
    fn only_archives_and_streams_nest() {
        assert!(Format::Tar.nests() && Format::Gzip.nests() && Format::Zip.nests());
        assert!(!Format::Sqlite.nests() && !Format::Pyc.nests() && !Format::JavaClass.nests());
        assert!(!Format::Unsupported("7z").nests());
        assert_eq!(Format::Gzip.suffixes(), &[".gz", ".tgz"]);
        assert!(Format::Tar.suffixes().is_empty());
    }
}
