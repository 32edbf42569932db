//! Windowed scanning of a stream: fixed-size chunks that overlap by more
//! than any rule's window plus match, so memory does not grow with file
//! size and no match is lost or reported twice at a chunk edge.

use std::io::{self, Read};

use super::cap::HitCap;
use super::pattern::Budget;
use super::sqldump::{Dump, Window};
use super::{Hit, Scanner, dedupe};

#[cfg(test)]
mod tests;

/// New bytes scanned per step.
pub const CHUNK: usize = 1 << 20;
/// Bytes kept from the previous step: at least twice the largest rule
/// window ([`crate::signatures::MAX_WINDOW`]) plus the longest match.
pub(crate) const OVERLAP: usize = 32 * 1024;
/// Size of the scratch buffer a worker keeps.
pub const BUFFER: usize = CHUNK + OVERLAP;

/// Line numbers of offsets in a sliding buffer, counted incrementally.
#[derive(Debug, Default)]
pub(crate) struct LineCounter {
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

/// Reads until `buf` is full or the reader ends (the image layer's block
/// pipe reads the same way).
pub use crate::image::pipe::fill;

impl Scanner {
    /// Scans a stream whose first `filled` bytes are already in `buf`
    /// (`eof` when that is all of it). `buf` is `BUFFER` bytes long (any
    /// length over twice `OVERLAP` works: each step reports the bytes past
    /// the first `OVERLAP` and before the last).
    /// Each step's hits are charged to `cap`, so a file of endless matches
    /// holds at most the cap in memory.
    ///
    /// # Errors
    /// The reader's errors; hits found before one are lost with it.
    pub fn scan_stream(
        &self,
        buf: &mut [u8],
        mut filled: usize,
        mut eof: bool,
        reader: &mut dyn Read,
        cap: &mut HitCap,
    ) -> io::Result<Vec<Hit>> {
        debug_assert!(buf.len() > 2 * OVERLAP, "a step needs new bytes past the overlaps");
        let mut base = 0u64;
        let mut report_from = 0usize;
        let mut lines = LineCounter::default();
        let mut hits = Vec::new();
        let counted_before = cap.set_aside;
        // SQL statements may run on over many steps (a dump's long `INSERT`).
        let mut dump = Dump::default();
        let mut markers = Vec::new();
        loop {
            if !eof {
                filled += fill(reader, &mut buf[filled..])?;
                eof = filled < buf.len();
            }
            let data = &buf[..filled];
            let cutoff = if eof { filled } else { filled - OVERLAP };
            let mut raw = Vec::new();
            // Rules whose budget is spent are only counted, not validated.
            let mut over: Vec<usize> = Vec::new();
            let mut examined: Vec<(usize, usize)> = Vec::new();
            let mut placeholders = 0;
            let mut budget = Budget {
                full: &|rule| cap.is_full(rule),
                count: &mut |rule, start| {
                    if start >= report_from && start < cutoff {
                        over.push(rule);
                    }
                },
                examined: &mut |rule, n| examined.push((rule, n)),
                placeholders: &mut placeholders,
                markers: &mut markers,
            };
            self.engine.find_within_budget(data, &mut budget, &mut |m| {
                if m.start >= report_from && m.start < cutoff {
                    raw.push(m);
                }
            });
            cap.set_aside.placeholders += placeholders;
            for (rule, n) in examined.drain(..) {
                cap.add_examined(rule, n);
            }
            for rule in over {
                cap.add_dropped(rule, 1);
            }
            let mut found: Vec<(usize, Hit)> = raw
                .iter()
                .filter_map(|m| {
                    self.to_hit(data, base, m, &mut cap.set_aside).map(|h| (m.secret.0, h))
                })
                .collect();
            // Decoding work allowed for this whole stream (one file or member) is the cap's.
            found.extend(self.decoded_hits(data, base, report_from, cutoff, cap));
            found.extend(self.section_hits(data, base, report_from, cutoff, &mut cap.set_aside));
            let window = Window { data, base, from: report_from, to: cutoff };
            found.extend(self.dump_hits(window, &markers, &mut dump, cap));
            markers.clear();
            found.sort_by_key(|(pos, _)| *pos);
            let step: Vec<Hit> = found
                .into_iter()
                .map(|(pos, mut h)| {
                    h.line = lines.line_at(data, pos);
                    h
                })
                .collect();
            cap.admit(dedupe(self, step), &mut hits);
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
        self.suppressed.set_aside.add(cap.set_aside.since(counted_before));
        Ok(dedupe(self, hits))
    }
}
