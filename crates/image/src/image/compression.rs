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
}

impl Compression {
    /// Recognises compression from the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Compression {
        match sniff::compression(head) {
            Some(Format::Gzip) => Compression::Gzip,
            Some(Format::Zstd) => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// Lower-case name for messages and reports.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
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
    };
    Ok((kind, stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(Compression::sniff(b"hello"), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
    }
}
