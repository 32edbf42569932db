//! How a whole stream (a target file, a layer blob) is compressed, and its
//! decoder. Compression is recognised by magic bytes, never by media type or
//! file name (real tools label uncompressed layers `tar+gzip` and vice
//! versa); the magic bytes themselves are `strata-core`'s `sniff` table,
//! shared with the scan layer.

use std::io::{self, BufRead, Read};

use crate::sniff::{self, Format};

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain bytes.
    None,
    /// gzip (one or more members, as pigz writes).
    Gzip,
    /// Zstandard.
    Zstd,
    /// xz (one or more streams), which Docker's loader accepts for a layer.
    Xz,
    /// bzip2 (one or more streams), which Docker's loader accepts for a layer.
    Bzip2,
}

/// Memory an xz decoder may take (its dictionary), in KiB: `xz -9` needs 65 MiB; a header
/// asking for more is refused, not obeyed, so a crafted stream cannot make strata allocate
/// what it names.
pub const XZ_MEMORY_KIB: u32 = 128 << 10;

impl Compression {
    /// Recognises compression from the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Compression {
        match sniff::compression(head) {
            Some(Format::Gzip) => Compression::Gzip,
            Some(Format::Zstd) => Compression::Zstd,
            Some(Format::Xz) => Compression::Xz,
            Some(Format::Bzip2) => Compression::Bzip2,
            _ => Compression::None,
        }
    }

    /// Lower-case name for messages and reports.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
        }
    }
}

/// Wraps a buffered reader in the decoder its first bytes call for.
///
/// # Errors
/// When the first bytes cannot be read or the zstd decoder cannot start.
pub fn decompress<'a, R: BufRead + Send + 'a>(
    mut reader: R,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let kind = Compression::sniff(reader.fill_buf()?);
    let stream: Box<dyn Read + Send + 'a> = match kind {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
        Compression::Xz => Box::new(xz(reader)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
    };
    Ok((kind, stream))
}

/// An xz decoder of every stream in `reader`, within [`XZ_MEMORY_KIB`].
pub fn xz<R: Read>(reader: R) -> lzma_rust2::XzReader<R> {
    lzma_rust2::XzReader::new_mem_limit(reader, true, XZ_MEMORY_KIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(Compression::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Compression::Xz);
        let bzip2 = [b'B', b'Z', b'h', b'9', 0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
        assert_eq!(Compression::sniff(&bzip2), Compression::Bzip2);
        // "BZh9" alone is text, and so is a tar whose first file is named so.
        assert_eq!(Compression::sniff(b"BZh91AY&SX"), Compression::None);
        assert_eq!(Compression::sniff(b"hello"), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
    }
}
