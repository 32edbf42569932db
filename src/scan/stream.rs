//! Windowed scanning of a stream: fixed-size chunks that overlap by more
//! than any rule's window plus match, so memory does not grow with file
//! size and no match is lost or reported twice at a chunk edge.

use std::io::{self, Read};

use super::{Hit, Scanner, dedupe};

/// New bytes scanned per step.
pub const CHUNK: usize = 1 << 20;
/// Bytes kept from the previous step: at least twice the largest rule
/// window ([`crate::signatures::MAX_WINDOW`]) plus the longest match.
pub const OVERLAP: usize = 32 * 1024;
/// Size of the scratch buffer a worker keeps.
pub const BUFFER: usize = CHUNK + OVERLAP;

/// Line numbers of offsets in a sliding buffer, counted incrementally.
#[derive(Debug, Default)]
pub struct LineCounter {
    /// Newlines before the buffer's first byte.
    base: u64,
    /// Offset up to which newlines are counted.
    pos: usize,
    /// Newlines in `buf[..pos]`.
    counted: u64,
}

impl LineCounter {
    /// The 1-based line of `buf[offset]`. Cheapest when called with
    /// increasing offsets.
    pub fn line_at(&mut self, buf: &[u8], offset: usize) -> u64 {
        if offset < self.pos {
            self.pos = 0;
            self.counted = 0;
        }
        self.counted += memchr::memchr_iter(b'\n', &buf[self.pos..offset]).count() as u64;
        self.pos = offset;
        self.base + self.counted + 1
    }

    /// The buffer is about to drop its first `by` bytes.
    fn shift(&mut self, buf: &[u8], by: usize) {
        self.base += memchr::memchr_iter(b'\n', &buf[..by]).count() as u64;
        self.pos = 0;
        self.counted = 0;
    }
}

/// Reads until `buf` is full or the reader ends; returns bytes read.
///
/// # Errors
/// The reader's errors (interruptions are retried).
pub fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Scanner {
    /// Scans a stream whose first `filled` bytes are already in `buf`
    /// (`eof` when that is all of it). `buf` must be [`BUFFER`] bytes long.
    ///
    /// # Errors
    /// The reader's errors; hits found before one are lost with it.
    pub fn scan_stream(
        &self,
        buf: &mut [u8],
        mut filled: usize,
        mut eof: bool,
        reader: &mut dyn Read,
    ) -> io::Result<Vec<Hit>> {
        debug_assert_eq!(buf.len(), BUFFER);
        let mut base = 0u64;
        let mut report_from = 0usize;
        let mut lines = LineCounter::default();
        let mut hits = Vec::new();
        // Decoding work allowed for this whole stream (one file or member).
        let mut budget = super::decode::Budget::default();
        loop {
            if !eof {
                filled += fill(reader, &mut buf[filled..])?;
                eof = filled < buf.len();
            }
            let data = &buf[..filled];
            let cutoff = if eof { filled } else { filled - OVERLAP };
            let mut found = self.window_hits(data, base, report_from, cutoff, &mut budget);
            found.sort_by_key(|(pos, _)| *pos);
            for (pos, mut h) in found {
                h.line = lines.line_at(data, pos);
                hits.push(h);
            }
            if eof {
                break;
            }
            let shift = cutoff - OVERLAP;
            lines.shift(data, shift);
            buf.copy_within(shift..filled, 0);
            filled -= shift;
            base += shift as u64;
            report_from = OVERLAP;
        }
        Ok(dedupe(self, hits))
    }
}
