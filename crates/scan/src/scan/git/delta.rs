//! Git's delta format (the payload of `OFS_DELTA` and `REF_DELTA` pack
//! entries): two size varints, then copy-from-base and insert-literal
//! instructions. Every instruction is checked against the base and the
//! declared target size, so a hostile delta fails cleanly instead of reading
//! out of bounds or growing without limit.

use super::Error;

/// Reads a little-endian base-128 varint (the delta header's sizes).
fn varint(data: &[u8], pos: &mut usize) -> Result<u64, Error> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = *data.get(*pos).ok_or(Error::Corrupt("delta header truncated"))?;
        *pos += 1;
        if shift > 63 {
            return Err(Error::Corrupt("delta size varint too long"));
        }
        value |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// The target size a delta declares, without applying it (so a caller can
/// refuse an oversized result before allocating it).
///
/// # Errors
/// A truncated header.
pub fn target_size(delta: &[u8]) -> Result<u64, Error> {
    let mut pos = 0;
    varint(delta, &mut pos)?;
    varint(delta, &mut pos)
}

/// Applies `delta` to `base`. The result is refused when the delta declares
/// more than `max_size` bytes.
///
/// # Errors
/// A base of the wrong size, a copy outside the base, an insert past the
/// end of the delta, the reserved opcode 0, a result of another size than
/// declared, or one larger than `max_size` ([`Error::TooLarge`]).
pub fn apply(base: &[u8], delta: &[u8], max_size: u64) -> Result<Vec<u8>, Error> {
    let mut pos = 0;
    let source_size = varint(delta, &mut pos)?;
    let size = varint(delta, &mut pos)?;
    if source_size != base.len() as u64 {
        return Err(Error::Corrupt("delta base has the wrong size"));
    }
    if size > max_size {
        return Err(Error::TooLarge(size));
    }
    let size = size as usize;
    let mut out = Vec::with_capacity(size);
    while pos < delta.len() {
        let op = delta[pos];
        pos += 1;
        if op & 0x80 != 0 {
            // Copy: bits 0-3 say which offset bytes follow, bits 4-6 which size bytes.
            let mut offset = 0usize;
            let mut len = 0usize;
            for i in 0..4 {
                if op & (1 << i) != 0 {
                    let b = *delta.get(pos).ok_or(Error::Corrupt("delta copy truncated"))?;
                    pos += 1;
                    offset |= usize::from(b) << (8 * i);
                }
            }
            for i in 0..3 {
                if op & (0x10 << i) != 0 {
                    let b = *delta.get(pos).ok_or(Error::Corrupt("delta copy truncated"))?;
                    pos += 1;
                    len |= usize::from(b) << (8 * i);
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            let end = offset.checked_add(len).ok_or(Error::Corrupt("delta copy overflows"))?;
            let chunk = base.get(offset..end).ok_or(Error::Corrupt("delta copy outside base"))?;
            if out.len() + chunk.len() > size {
                return Err(Error::Corrupt("delta writes past its declared size"));
            }
            out.extend_from_slice(chunk);
        } else if op != 0 {
            let len = usize::from(op);
            let chunk =
                delta.get(pos..pos + len).ok_or(Error::Corrupt("delta insert truncated"))?;
            pos += len;
            if out.len() + chunk.len() > size {
                return Err(Error::Corrupt("delta writes past its declared size"));
            }
            out.extend_from_slice(chunk);
        } else {
            return Err(Error::Corrupt("delta uses reserved opcode 0"));
        }
    }
    if out.len() != size {
        return Err(Error::Corrupt("delta result is shorter than declared"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(src: usize, dst: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for mut n in [src, dst] {
            loop {
                let b = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    v.push(b);
                    break;
                }
                v.push(b | 0x80);
            }
        }
        v
    }

    #[test]
    fn copy_and_insert() {
        let base = b"hello world, this is the base";
        let mut d = header(base.len(), 11 + 4);
        d.extend([0x80 | 0x01 | 0x10, 0, 11]); // copy offset 0, len 11
        d.extend([4, b' ', b'F', b'A', b'K']); // insert 4
        assert_eq!(apply(base, &d, 1 << 20).unwrap(), b"hello world FAK");
        assert_eq!(target_size(&d).unwrap(), 15);
    }

    #[test]
    fn hostile_deltas_fail() {
        let base = b"0123456789";
        let cases: Vec<Vec<u8>> = vec![
            vec![],                                                   // no header
            [header(9, 1), vec![1, b'x']].concat(),                   // wrong base size
            [header(10, 4), vec![0x80 | 0x01 | 0x10, 8, 4]].concat(), // copy past base
            [header(10, 4), vec![5, b'a']].concat(),                  // insert truncated
            [header(10, 1), vec![0]].concat(),                        // reserved opcode
            [header(10, 3), vec![1, b'a']].concat(),                  // short result
            [header(10, 1), vec![2, b'a', b'b']].concat(),            // past declared size
        ];
        for (i, d) in cases.iter().enumerate() {
            assert!(apply(base, d, 1 << 20).is_err(), "case {i}");
        }
        assert!(matches!(
            apply(base, &[header(10, 100), vec![100]].concat(), 50),
            Err(Error::TooLarge(100))
        ));
    }
}
