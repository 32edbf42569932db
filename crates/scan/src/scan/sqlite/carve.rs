//! Deleted rows carved out of a database's free space, value by value.
//!
//! SQLite (without `secure_delete`) leaves a deleted row's bytes where they
//! were: in a freeblock of its page (whose 4-byte header overwrites the
//! start of the cell: its payload size, rowid and usually the record's
//! header size), in the page's unallocated area (the cell that was at the
//! start of the content area, left whole), or on a page that went to the
//! freelist (whole cells, page header and all). Scanned as raw bytes, a
//! row's columns run together (`admin` then `ghp_…` reads `adminghp_…`).
//!
//! So, conservatively, records are parsed where one plausibly starts, and
//! each value is scanned on its own line:
//! - anywhere in a free region: a record header (size 2..=[`MAX_HEADER`]
//!   bytes, valid serial types that fill it exactly) whose values fit in
//!   the region, whose text values are all printable, and with at least one
//!   text value of 4 bytes or more;
//! - in a freeblock, when no header survives: the serial types that follow
//!   the freeblock's header, whose values, laid out back to back, end
//!   exactly where the freeblock does (a freed cell's size is the block's),
//!   leaving at most [`MAX_LOST`] bytes for the columns whose serial types
//!   were overwritten.
//!
//! The text values found are blanked in the copy the raw scan reads, so a
//! token is reported once. Work is bounded like the b-tree walk: each try
//! is charged the header bytes it reads, each record its values, against a
//! budget of three times the file's size plus 1 MiB; a spent budget stops
//! carving (the raw scan still reads every byte).

use super::{INDEX_INTERIOR, INDEX_LEAF, TABLE_INTERIOR, TABLE_LEAF};
use std::collections::HashSet;

use sha2::{Digest as _, Sha256};

use super::{Kind, Layout, Marks, Table, u16_at, value_len, varint};

/// Longest record header tried, in bytes (64 one-byte serial types).
const MAX_HEADER: usize = 64;

/// Most serial types read after a freeblock's header.
const MAX_TAIL_COLUMNS: usize = 32;

/// Most bytes allowed for the values of columns whose serial types a
/// freeblock header overwrote (at most two, integers of up to 8 bytes, and
/// a float).
const MAX_LOST: usize = 24;

/// Where one carved record's values are, as (start, end, is text).
type Values = Vec<(usize, usize, bool)>;

struct Carver<'l, 'd> {
    layout: &'l Layout<'d>,
    /// Work left.
    budget: usize,
    /// Keys of the values reported already (live ones, and carved ones):
    /// a row copied when its page split, or updated in place, leaves stale
    /// copies of the same value, reported once.
    reported: HashSet<ValueKey>,
}

/// A value as [`Carver::reported`] holds it: the first 128 bits of its
/// SHA-256 (16 bytes a value, however long). A value whose key was seen is
/// not reported, so the key must be one no database author can match with
/// other bytes: with the 64-bit xxh3 it once was, a crafted value carved
/// first hid a deleted secret carved after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ValueKey([u8; 16]);

impl ValueKey {
    fn of(value: &[u8]) -> Self {
        let mut first = [0u8; 16];
        first.copy_from_slice(&Sha256::digest(value)[..16]);
        ValueKey(first)
    }
}

impl Carver<'_, '_> {
    fn charge(&mut self, n: usize) -> bool {
        let ok = self.budget >= n;
        self.budget = self.budget.saturating_sub(n);
        ok
    }

    /// The text of a value as the database encodes it.
    fn text(&self, v: &[u8]) -> Option<String> {
        let s = match self.layout.utf16 {
            Some(be) => super::super::decode::decode_utf16(v, be),
            None => std::str::from_utf8(v).ok()?.to_owned(),
        };
        let printable = s.chars().all(|c| {
            c != char::REPLACEMENT_CHARACTER && (!c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        });
        printable.then_some(s)
    }

    /// Whether the values look like a row: every text printable, one of
    /// at least 4 bytes.
    fn plausible(&self, values: &Values) -> bool {
        let d = self.layout.data;
        let mut long = false;
        for &(a, b, text) in values {
            if text {
                if self.text(&d[a..b]).is_none() {
                    return false;
                }
                long |= b - a >= 4;
            }
        }
        long
    }

    /// A whole record (header included) starting at `p` and ending by `end`.
    fn record_at(&mut self, p: usize, end: usize) -> Option<(usize, Values)> {
        let d = self.layout.data;
        let (h, n) = varint(d, p)?;
        let h = usize::try_from(h).ok()?;
        if !(2..=MAX_HEADER).contains(&h) || p + h > end {
            return None;
        }
        if !self.charge(h) {
            return None;
        }
        let (mut q, mut body) = (p + n, p + h);
        let mut values = Values::new();
        while q < p + h {
            let (s, k) = varint(d, q)?;
            q += k;
            let len = value_len(s)?;
            if s >= 12 {
                values.push((body, body.checked_add(len)?, s % 2 == 1));
            }
            body = body.checked_add(len)?;
            if body > end {
                return None;
            }
        }
        (q == p + h && self.plausible(&values)).then_some((body, values))
    }

    /// Records anywhere in `[from, end)`, each value to `out`.
    fn scan(&mut self, from: usize, end: usize, out: &mut Vec<u8>, live: &mut [u8]) {
        let mut p = from;
        while p < end && self.budget > 0 {
            match self.record_at(p, end) {
                Some((next, values)) => {
                    self.emit(&values, out, live);
                    p = next;
                }
                None => {
                    self.budget = self.budget.saturating_sub(1);
                    p += 1;
                }
            }
        }
    }

    /// A freed cell in the freeblock `[start, end)` whose record header
    /// lost its start to the freeblock's header: the serial types from
    /// `start + 4` on, with their values ending at `end`.
    fn tail(&mut self, start: usize, end: usize) -> Option<Values> {
        let d = self.layout.data;
        let mut q = start + 4;
        let (mut sum, mut types) = (0usize, Vec::new());
        let mut best = None;
        for _ in 0..MAX_TAIL_COLUMNS {
            if !self.charge(1) {
                return None;
            }
            let (s, k) = varint(d, q)?;
            q += k;
            let len = value_len(s)?;
            sum = sum.checked_add(len)?;
            types.push((s, len));
            let Some(first) = end.checked_sub(sum) else { break };
            if first < q {
                break;
            }
            if first - q > MAX_LOST {
                continue;
            }
            let mut at = first;
            let mut values = Values::new();
            for &(s, len) in &types {
                if s >= 12 {
                    values.push((at, at + len, s % 2 == 1));
                }
                at += len;
            }
            if self.plausible(&values) {
                best = Some(values);
            }
        }
        best
    }

    /// A free region `[start, end)` of a b-tree page, which starts with a
    /// freed cell when `freeblock`. Freed cells keep the freeblock header
    /// they were given (stale once merged into a bigger block or the
    /// unallocated area), whose size, from where it stands, reaches the
    /// region's end for the last cell: those are carved from the end, one
    /// by one, then intact records anywhere in what is left.
    fn region(
        &mut self,
        start: usize,
        mut end: usize,
        freeblock: bool,
        out: &mut Vec<u8>,
        live: &mut [u8],
    ) {
        let d = self.layout.data;
        'cells: while end >= start + 4 {
            for q in start..=end - 4 {
                if !self.charge(1) {
                    return;
                }
                if q + u16_at(d, q + 2).unwrap_or(0) == end
                    && let Some(values) = self.tail(q, end)
                {
                    self.emit(&values, out, live);
                    end = q;
                    continue 'cells;
                }
            }
            break;
        }
        if freeblock && end >= start + 4 {
            if let Some(values) = self.tail(start, end) {
                self.emit(&values, out, live);
                return;
            }
            self.scan(start + 4, end, out, live);
        } else {
            self.scan(start, end, out, live);
        }
    }

    fn emit(&mut self, values: &Values, out: &mut Vec<u8>, live: &mut [u8]) {
        let d = self.layout.data;
        for &(a, b, text) in values {
            if !self.charge(b - a) {
                return;
            }
            let v = match (text, self.layout.utf16) {
                (true, Some(be)) => super::super::decode::decode_utf16(&d[a..b], be).into_bytes(),
                _ => d[a..b].to_vec(),
            };
            if !v.is_empty() && self.reported.insert(ValueKey::of(&v)) {
                out.extend_from_slice(&v);
                out.push(b'\n');
            }
            // A text value is whole on its line: the raw scan need not read it again.
            if text {
                live[a..b].fill(0);
            }
        }
    }

    /// The free regions of b-tree page `n`: its unallocated area and its
    /// freeblocks, carved into `out`.
    fn btree_page(&mut self, n: usize, out: &mut Vec<u8>, live: &mut [u8]) {
        let layout = self.layout;
        let d = layout.data;
        let Some((start, hdr)) = layout.page(n) else { return };
        let page_end = start + layout.usable;
        let interior = matches!(d[hdr], TABLE_INTERIOR | INDEX_INTERIOR);
        debug_assert!(matches!(d[hdr], TABLE_LEAF | TABLE_INTERIOR | INDEX_LEAF | INDEX_INTERIOR));
        let cells = u16_at(d, hdr + 3).unwrap_or(0);
        let gap_start = hdr + if interior { 12 } else { 8 } + 2 * cells;
        let content = match u16_at(d, hdr + 5).unwrap_or(0) {
            0 => 65536,
            c => c,
        };
        let gap_end = (start + content).min(page_end);
        if gap_start < gap_end {
            self.region(gap_start, gap_end, false, out, live);
        }
        // Freeblocks: a chain of (next, size) headers at increasing offsets.
        let mut off = u16_at(d, hdr + 1).unwrap_or(0);
        let mut last = 0;
        while off > last && start + off + 4 <= page_end && self.budget > 0 {
            let at = start + off;
            let (next, size) = (u16_at(d, at).unwrap_or(0), u16_at(d, at + 2).unwrap_or(0));
            let end = (at + size.max(4)).min(page_end);
            self.region(at, end, true, out, live);
            last = off;
            off = next;
        }
    }
}

/// Carves deleted rows out of the free space the walks left: each b-tree
/// page's (its table is known: `names[table]`) and the pages no walk
/// reached (freelist pages). Values found are blanked in `marks.live`;
/// those equal to a value of `live` (one per line) or carved before are
/// not reported again.
pub(super) fn carve(
    layout: &Layout<'_>,
    marks: &mut Marks,
    names: &[String],
    live: &[Table],
) -> Vec<Table> {
    let budget = layout.data.len().saturating_mul(3).saturating_add(1 << 20);
    let reported = live
        .iter()
        .flat_map(|t| t.values.split(|&b| b == b'\n'))
        .filter(|v| !v.is_empty())
        .map(|v| ValueKey::of(super::unlabelled(v)))
        .collect();
    let mut c = Carver { layout, budget, reported };
    let mut per_table: Vec<Vec<u8>> = vec![Vec::new(); names.len()];
    for &(n, table) in &marks.btree {
        if let Some(out) = per_table.get_mut(table) {
            c.btree_page(n, out, &mut marks.live);
        }
    }
    let mut free = Vec::new();
    for n in 1..marks.seen.len() {
        if c.budget == 0 {
            break;
        }
        if !marks.seen[n]
            && let Some((start, _)) = layout.page(n)
        {
            // A freelist leaf page keeps whatever it held; a trunk page starts with page
            // numbers, which never parse as a plausible record.
            c.scan(start, start + layout.usable, &mut free, &mut marks.live);
        }
    }
    let mut tables: Vec<Table> = names
        .iter()
        .zip(per_table)
        .filter(|(_, v)| !v.is_empty())
        .map(|(name, values)| Table { name: name.clone(), values, kind: Kind::Deleted })
        .collect();
    if !free.is_empty() {
        tables.push(Table { name: String::new(), values: free, kind: Kind::FreePages });
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two text values whose 64-bit xxh3 (the dedup key before it was SHA-256) is the
    /// same, found by a birthday search of 2^32 hashes (the layer index's test pair).
    const XXH3_TWINS: (&[u8], &[u8]) = (b"/996b9092f3e9b70f", b"/ca436440b30c1e70");

    /// What `emit` writes for each of `values` (text values of `data`, in order).
    fn emitted(data: &[u8], values: &[(usize, usize)]) -> Vec<u8> {
        let layout = Layout {
            data,
            page_size: 512,
            usable: 512,
            utf16: None,
            budget: std::cell::Cell::new(1 << 20),
        };
        let mut c = Carver { layout: &layout, budget: 1 << 20, reported: HashSet::new() };
        let (mut out, mut live) = (Vec::new(), data.to_vec());
        for &(a, b) in values {
            let one: Values = vec![(a, b, true)];
            c.emit(&one, &mut out, &mut live);
        }
        out
    }

    #[test]
    fn values_with_one_xxh3_are_both_reported() {
        let (a, b) = XXH3_TWINS;
        assert_eq!(xxhash_rust::xxh3::xxh3_64(a), xxhash_rust::xxh3::xxh3_64(b));
        let data = [a, b, a].concat();
        let n = a.len();
        // The twins both, each once: the stale copy of the first is not reported again.
        let out = emitted(&data, &[(0, n), (n, 2 * n), (2 * n, 3 * n)]);
        assert_eq!(out, [a, b"\n", b, b"\n"].concat());
    }
}
