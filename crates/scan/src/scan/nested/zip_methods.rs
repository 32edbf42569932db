//! Zip members in the methods the `zip` crate is built without here:
//! Deflate64 (Windows' "compressed folders" write it past 2 GiB), LZMA (7-Zip,
//! Python's `ZIP_LZMA`) and xz. The crate's own decoders for them take the
//! dictionary size from the member unchecked (up to 4 GiB), so the member's
//! raw bytes are decoded here, under the xz decoder's memory limit, and
//! checked against the member's CRC-32 and size as the crate checks the rest.

use std::io::{self, Read};

use zip::CompressionMethod;

use super::LimitHit;
use crate::image::compression;

/// True for a method this module decodes.
pub(super) fn decodes(method: CompressionMethod) -> bool {
    [CompressionMethod::DEFLATE64, CompressionMethod::LZMA, CompressionMethod::XZ].contains(&method)
}

/// The decoded bytes of a member whose raw (compressed) bytes are `raw`, of
/// `size` bytes and checksum `crc` once decoded.
///
/// # Errors
/// An LZMA header that is not one, or a dictionary over the memory limit
/// (a [`LimitHit`]).
pub(super) fn decoder<'a>(
    method: CompressionMethod,
    raw: impl Read + 'a,
    size: u64,
    crc: u32,
) -> io::Result<Box<dyn Read + 'a>> {
    let decoded: Box<dyn Read + 'a> = if method == CompressionMethod::DEFLATE64 {
        Box::new(deflate64::Deflate64Decoder::new(raw))
    } else if method == CompressionMethod::XZ {
        Box::new(compression::xz(io::BufReader::new(raw)))
    } else {
        lzma(raw, size)?
    };
    Ok(Box::new(Checked { inner: decoded, hasher: crc32fast::Hasher::new(), crc, size, read: 0 }))
}

/// An LZMA member: a 2-byte version, the size of the properties (5), the
/// properties (the literal and position bits, the dictionary size), then
/// the LZMA data, ended by its size or an end marker.
fn lzma<'a>(mut raw: impl Read + 'a, size: u64) -> io::Result<Box<dyn Read + 'a>> {
    let mut header = [0u8; 9];
    raw.read_exact(&mut header)?;
    if u16::from_le_bytes([header[2], header[3]]) != 5 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not an LZMA member header"));
    }
    let props = header[4];
    let dict = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
    let need = lzma_rust2::lzma_get_memory_usage_by_props(dict, props)?;
    if need > compression::XZ_MEMORY_KIB {
        return Err(io::Error::other(LimitHit(format!(
            "an LZMA member whose dictionary is over the decoder's {} MiB memory limit, so it was not decompressed",
            compression::XZ_MEMORY_KIB >> 10
        ))));
    }
    Ok(Box::new(lzma_rust2::LzmaReader::new_with_props(raw, size, props, dict, None)?))
}

/// A member's decoded bytes, checked at their end against its size and CRC-32.
struct Checked<R> {
    inner: R,
    hasher: crc32fast::Hasher,
    crc: u32,
    size: u64,
    read: u64,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.size - self.read;
        if left == 0 {
            // At the size the archive says, the member must end. One that decodes to more
            // (corrupt, or a bomb declaring a small size to pass the ratio check) stops
            // here, not at the expansion budget.
            if self.inner.read(&mut [0u8; 1])? > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("more bytes decoded than the {} the archive says", self.size),
                ));
            }
            return self.check_end();
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return self.check_end();
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

impl<R> Checked<R> {
    /// At the end of the decoded bytes: their count and CRC-32 against the archive's.
    fn check_end(&self) -> io::Result<usize> {
        if self.read != self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} bytes decoded where the archive says {}", self.read, self.size),
            ));
        }
        if self.hasher.clone().finalize() != self.crc {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "Invalid checksum"));
        }
        Ok(0)
    }
}
