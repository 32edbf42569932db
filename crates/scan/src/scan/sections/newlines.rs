//! The newlines of a buffer, in order, for walking short lines: 64 bytes
//! are compared at a time (a loop the compiler turns into vector compares)
//! and their newlines gathered into one bit mask, so a line of text costs a
//! bit scan rather than a `memchr` call (whose start-up costs more than a
//! 40-byte line). Past a block with no newline (a binary's lines are 250
//! bytes on average) `memchr` takes over to the next one.

/// Iterator over the offsets of the `\n` bytes of a buffer.
pub(super) struct Newlines<'a> {
    data: &'a [u8],
    /// Where the block `found` was taken from.
    base: usize,
    /// One bit per byte of the block at `base` that is a newline not yet
    /// returned (bit `i` for `data[base + i]`).
    found: u64,
}

impl<'a> Newlines<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Newlines { data, base: 0, found: block_at(data, 0) }
    }
}

/// The newline bits of the 64 bytes at `data[base..]` (fewer at the end):
/// a flag byte per byte, then each eight flags gathered into a byte by one
/// multiply (the flags are 0 or 1, so no product carries into another).
fn block_at(data: &[u8], base: usize) -> u64 {
    let rest = data.get(base..).unwrap_or_default();
    let mut padded = [0u8; 64];
    let block = match rest.first_chunk::<64>() {
        Some(block) => block,
        None => {
            padded[..rest.len()].copy_from_slice(rest);
            &padded
        }
    };
    let mut flags = [0u8; 64];
    for (f, &b) in flags.iter_mut().zip(block) {
        *f = u8::from(b == b'\n');
    }
    let mut found = 0u64;
    for (j, eight) in flags.chunks_exact(8).enumerate() {
        let eight = u64::from_le_bytes(eight.try_into().expect("8 bytes"));
        found |= (eight.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * j);
    }
    found
}

impl Iterator for Newlines<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.found == 0 {
            let next = self.base + 64;
            if next >= self.data.len() {
                self.base = self.data.len();
                return None;
            }
            self.base = next;
            self.found = block_at(self.data, next);
            if self.found == 0 {
                let rest = self.data.get(next + 64..).unwrap_or_default();
                let Some(at) = memchr::memchr(b'\n', rest) else {
                    self.base = self.data.len();
                    return None;
                };
                self.base = next + 64 + at;
                self.found = block_at(self.data, self.base);
            }
        }
        let at = self.base + self.found.trailing_zeros() as usize;
        self.found &= self.found - 1;
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The same offsets as `memchr`, for lines of any length and
        /// buffers ending anywhere in a block.
        #[test]
        fn newlines_are_memchrs(
            lines in proptest::collection::vec((0usize..300, any::<u8>()), 0..40),
            tail in 0usize..130,
        ) {
            let mut data = Vec::new();
            for (len, fill) in lines {
                data.extend(std::iter::repeat_n(if fill == b'\n' { b'x' } else { fill }, len));
                data.push(b'\n');
            }
            data.extend(std::iter::repeat_n(b'y', tail));
            let want: Vec<usize> = memchr::memchr_iter(b'\n', &data).collect();
            prop_assert_eq!(Newlines::new(&data).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn empty_and_edge_buffers() {
        assert_eq!(Newlines::new(b"").count(), 0);
        let mut data = vec![b'a'; 200];
        for at in [0, 63, 64, 127, 128, 199] {
            data[at] = b'\n';
        }
        assert_eq!(Newlines::new(&data).collect::<Vec<_>>(), [0, 63, 64, 127, 128, 199]);
    }
}
