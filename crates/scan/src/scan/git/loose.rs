//! Loose objects (`objects/ab/cdef…`): one zlib stream holding
//! `"<type> <size>\0"` and the object's bytes.

use std::io::Read;

use super::{Error, Kind};

/// Longest header accepted (`commit 18446744073709551615\0` fits).
const MAX_HEADER: usize = 32;

/// Parses the `"<type> <size>\0"` header at the start of inflated bytes;
/// returns the kind, the declared size and the header's length.
fn header(inflated: &[u8]) -> Result<(Kind, u64, usize), Error> {
    let nul = inflated
        .iter()
        .take(MAX_HEADER)
        .position(|&b| b == 0)
        .ok_or(Error::Corrupt("loose object header not terminated"))?;
    let text = std::str::from_utf8(&inflated[..nul])
        .map_err(|_| Error::Corrupt("loose object header not text"))?;
    let (kind, size) =
        text.split_once(' ').ok_or(Error::Corrupt("loose object header has no size"))?;
    let kind = Kind::from_name(kind).ok_or(Error::Corrupt("loose object of unknown type"))?;
    let size = size.parse().map_err(|_| Error::Corrupt("loose object size not a number"))?;
    Ok((kind, size, nul + 1))
}

/// Reads only a loose object's kind and declared size (inflates a few bytes).
///
/// # Errors
/// Not zlib, or not a git object header.
pub fn kind_of(reader: impl Read) -> Result<(Kind, u64), Error> {
    let mut head = Vec::with_capacity(MAX_HEADER);
    flate2::read::ZlibDecoder::new(reader)
        .take(MAX_HEADER as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::Zlib(e.to_string()))?;
    header(&head).map(|(k, s, _)| (k, s))
}

/// Inflates a whole loose object. Objects declaring more than `max_size`
/// bytes are refused before they are inflated.
///
/// # Errors
/// Not zlib, a bad header, more or fewer bytes than declared, or
/// [`Error::TooLarge`].
pub fn read(reader: impl Read, max_size: u64) -> Result<(Kind, Vec<u8>), Error> {
    let mut z = flate2::read::ZlibDecoder::new(reader);
    let mut head = Vec::with_capacity(MAX_HEADER);
    (&mut z)
        .take(MAX_HEADER as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::Zlib(e.to_string()))?;
    let (kind, size, start) = header(&head)?;
    if size > max_size {
        return Err(Error::TooLarge(size));
    }
    let mut data = head.split_off(start);
    data.reserve((size as usize).saturating_sub(data.len()));
    z.take(size.saturating_sub(data.len() as u64) + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::Zlib(e.to_string()))?;
    if data.len() as u64 != size {
        return Err(Error::Corrupt("loose object size differs from its header"));
    }
    Ok((kind, data))
}

/// [`read`] over bytes: the fuzzable entry point for loose objects.
///
/// # Errors
/// As [`read`].
pub fn parse(compressed: &[u8], max_size: u64) -> Result<(Kind, Vec<u8>), Error> {
    read(compressed, max_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(bytes: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(bytes).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn reads_objects_and_rejects_bad_ones() {
        let ok = deflate(b"blob 5\0hello");
        assert_eq!(parse(&ok, 100).unwrap(), (Kind::Blob, b"hello".to_vec()));
        assert_eq!(kind_of(ok.as_slice()).unwrap(), (Kind::Blob, 5));
        assert!(matches!(parse(&ok, 4), Err(Error::TooLarge(5))));
        for bad in [
            deflate(b"blob 6\0hello"),
            deflate(b"blob 4\0hello"),
            deflate(b"blub 5\0hello"),
            deflate(b"blob five\0hello"),
            deflate(b"blob 5 hello"),
            b"not zlib at all".to_vec(),
            Vec::new(),
        ] {
            assert!(parse(&bad, 100).is_err(), "{bad:?}");
        }
    }
}
