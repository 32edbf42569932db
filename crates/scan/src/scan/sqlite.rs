//! SQLite database files: their rows, value by value.
//!
//! A row stores its columns back to back with no separator (`github_token`
//! then `ghp_…` reads `github_tokenghp_…`), so a token whose rule wants a
//! word boundary is invisible in the raw bytes. This module walks every
//! table's b-tree from `sqlite_master` (overflow chains included) and
//! returns each table's text and blob values one per line, then the
//! deleted rows it can carve out of the free space (`carve`: freeblocks,
//! unallocated areas and freelist pages, where SQLite leaves them), value
//! by value too, plus a copy of the file with the live cells and carved
//! text values blanked. The caller scans the values as the table's text
//! and the rest of the file as raw bytes, so nothing is reported twice
//! and whatever no parse understood is still read.
//!
//! Bounded by construction: each page is visited once, records never read
//! outside the file, and the work is charged to a budget of three times the
//! file's size plus 1 MiB (with a fixed cost per cell, so cells that all
//! point at the same bytes cannot multiply it): a file that spends it is
//! not parsed, and the caller scans it as raw bytes. Carving has a budget
//! of its own, the same size; spending it only ends the carving.

/// The 16-byte magic string at the start of every SQLite 3 database (the sniff table's).
pub use crate::sniff::SQLITE as MAGIC;

mod carve;
pub(crate) mod columns;

/// One table's values, one per line.
#[derive(Debug)]
pub struct Table {
    /// The table's name from `sqlite_master` (empty for free pages).
    pub name: String,
    /// Its text and blob values, each followed by a newline.
    pub values: Vec<u8>,
    /// Whose values they are.
    pub kind: Kind,
}

/// Where a [`Table`]'s values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The table's live rows.
    Live,
    /// Deleted rows carved from the free space of the table's pages.
    Deleted,
    /// Deleted rows carved from pages no table holds (the freelist).
    FreePages,
}

impl Table {
    /// The member name its values are scanned under (`inner_path`).
    pub fn member(&self) -> String {
        match self.kind {
            Kind::Live => format!("table {}", self.name),
            Kind::Deleted => format!("table {} (deleted rows)", self.name),
            Kind::FreePages => "free pages (deleted rows)".to_owned(),
        }
    }
}

/// What a database holds.
#[derive(Debug, Default)]
pub struct Database {
    /// Tables with at least one value, in `sqlite_master` order.
    pub tables: Vec<Table>,
    /// The file with its live cells (table and index) zeroed: what is left
    /// is free space, where deleted rows stay, for a raw scan.
    pub blanked: Vec<u8>,
}

/// Page layout of one database.
struct Layout<'a> {
    data: &'a [u8],
    page_size: usize,
    usable: usize,
    utf16: Option<bool>,
    /// Bytes of work left (see the module docs); none left stops the walk.
    budget: std::cell::Cell<usize>,
}

/// Work charged per cell on top of its bytes.
const CELL_COST: usize = 8;

const TABLE_LEAF: u8 = 13;
const TABLE_INTERIOR: u8 = 5;
const INDEX_LEAF: u8 = 10;
const INDEX_INTERIOR: u8 = 2;

/// Reads a big-endian SQLite varint at `at`: (value, length).
fn varint(d: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let b = *d.get(at + i)?;
        if i == 8 {
            return Some(((v << 8) | u64::from(b), 9));
        }
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The length of a value of serial type `s`; None for the reserved 10 and 11.
fn value_len(s: u64) -> Option<usize> {
    Some(match s {
        0 | 8 | 9 => 0,
        1..=4 => s as usize,
        5 => 6,
        6 | 7 => 8,
        10 | 11 => return None,
        s => usize::try_from((s - 12) / 2).ok()?,
    })
}

fn u16_at(d: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?)))
}

fn u32_at(d: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?) as usize)
}

impl Layout<'_> {
    /// Takes `n` from the budget; false once it is spent.
    fn charge(&self, n: usize) -> bool {
        let left = self.budget.get();
        self.budget.set(left.saturating_sub(n));
        left >= n
    }

    /// The start of page `n` (1-based) and of its b-tree header.
    fn page(&self, n: usize) -> Option<(usize, usize)> {
        let start = n.checked_sub(1)?.checked_mul(self.page_size)?;
        if n == 0 || start + self.page_size > self.data.len() {
            return None;
        }
        Some((start, if n == 1 { start + 100 } else { start }))
    }

    /// A cell's payload, gathered from its page and overflow chain; the
    /// ranges it was read from go to `live`.
    fn payload(
        &self,
        at: usize,
        total: usize,
        index: bool,
        seen: &mut [bool],
        live: &mut [u8],
    ) -> Vec<u8> {
        let u = self.usable;
        let max_local = if index { (u - 12) * 64 / 255 - 23 } else { u - 35 };
        let min_local = (u - 12) * 32 / 255 - 23;
        let local = if total <= max_local {
            total
        } else {
            let k = min_local + (total - min_local) % (u - 4);
            if k <= max_local { k } else { min_local }
        };
        if !self.charge(CELL_COST.saturating_add(total.min(self.data.len()))) {
            return Vec::new();
        }
        let end = (at + local).min(self.data.len());
        let mut out = self.data[at.min(end)..end].to_vec();
        live[at.min(end)..end].fill(0);
        if local < total {
            let mut next = u32_at(self.data, end).unwrap_or(0);
            live[end..(end + 4).min(self.data.len())].fill(0);
            while out.len() < total && next != 0 {
                let Some((start, _)) = self.page(next) else { break };
                if std::mem::replace(&mut seen[next], true) {
                    break;
                }
                let take = (total - out.len()).min(u - 4);
                out.extend_from_slice(&self.data[start + 4..start + 4 + take]);
                live[start..start + 4 + take].fill(0);
                next = u32_at(self.data, start).unwrap_or(0);
            }
        }
        out
    }

    /// Appends the text and blob values of a record, one per line; a value
    /// of a column `labels` names is written `name = "value"`.
    fn record(
        &self,
        rec: &[u8],
        out: &mut Vec<u8>,
        labels: &[Option<String>],
    ) -> Vec<Option<Vec<u8>>> {
        let mut fields = Vec::new();
        let Some((header, mut h)) = varint(rec, 0) else { return fields };
        let header = (header as usize).min(rec.len());
        let mut body = header;
        while h < header {
            let Some((serial, n)) = varint(rec, h) else { break };
            h += n;
            // The reserved types 10 and 11 are read as empty, as before carving existed.
            let len = value_len(serial).unwrap_or(0);
            let Some(value) = rec.get(body..body.saturating_add(len)) else { break };
            body += len;
            if serial >= 12 {
                let v = match (serial % 2 == 1, self.utf16) {
                    (true, Some(be)) => super::decode::decode_utf16(value, be).into_bytes(),
                    _ => value.to_vec(),
                };
                if !v.is_empty() {
                    let label = labels.get(fields.len()).and_then(Option::as_ref);
                    if let Some(name) = label {
                        out.extend_from_slice(name.as_bytes());
                        out.extend_from_slice(b" = \"");
                    }
                    out.extend_from_slice(&v);
                    if label.is_some() {
                        out.push(b'"');
                    }
                    out.push(b'\n');
                }
                fields.push(Some(v));
            } else if (1..=6).contains(&serial) {
                let mut n: i64 = if value[0] & 0x80 != 0 { -1 } else { 0 };
                for b in value {
                    n = (n << 8) | i64::from(*b);
                }
                fields.push(Some(n.to_string().into_bytes()));
            } else {
                fields.push(None);
            }
        }
        fields
    }

    /// Walks the b-tree rooted at page `root`, marking its pages and cells
    /// in `marks` and writing its records to `sink`.
    fn walk(&self, root: usize, marks: &mut Marks, sink: &mut Sink) {
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            if self.budget.get() == 0 {
                return;
            }
            let Some((start, hdr)) = self.page(n) else { continue };
            if std::mem::replace(&mut marks.seen[n], true) {
                continue;
            }
            let kind = self.data[hdr];
            let interior = matches!(kind, TABLE_INTERIOR | INDEX_INTERIOR);
            if !matches!(kind, TABLE_LEAF | TABLE_INTERIOR | INDEX_LEAF | INDEX_INTERIOR) {
                continue;
            }
            marks.btree.push((n, sink.table));
            let cells = u16_at(self.data, hdr + 3).unwrap_or(0);
            let pointers = hdr + if interior { 12 } else { 8 };
            if interior && let Some(right) = u32_at(self.data, hdr + 8) {
                stack.push(right);
            }
            let index = matches!(kind, INDEX_LEAF | INDEX_INTERIOR);
            for c in 0..cells {
                let Some(off) = u16_at(self.data, pointers + 2 * c) else { break };
                let mut at = start + off;
                if interior {
                    if let Some(child) = u32_at(self.data, at) {
                        stack.push(child);
                    }
                    at += 4;
                    if kind == TABLE_INTERIOR {
                        continue; // a key only: no payload
                    }
                }
                let Some((total, n)) = varint(self.data, at) else { continue };
                at += n;
                if kind == TABLE_LEAF {
                    let Some((_, n)) = varint(self.data, at) else { continue };
                    at += n;
                }
                if at >= self.data.len() {
                    continue;
                }
                let rec = self.payload(at, total as usize, index, &mut marks.seen, &mut marks.live);
                let mut discard = Vec::new();
                let out = if sink.emit { &mut sink.out } else { &mut discard };
                let fields = self.record(&rec, out, &sink.labels);
                if let Some(rows) = &mut sink.rows {
                    rows.push(fields);
                }
            }
        }
    }
}

/// What the walks of one database share: the pages they reached and the
/// file with their cells blanked.
struct Marks {
    /// Pages reached (b-tree and overflow), by page number.
    seen: Vec<bool>,
    /// The file, live cells zeroed.
    live: Vec<u8>,
    /// B-tree pages reached: (page number, index of the table in the
    /// walk order, see [`Sink::table`]).
    btree: Vec<(usize, usize)>,
}

/// Where one walk's records go.
struct Sink {
    /// Which table is walked (0 is `sqlite_master`, then one per row of it).
    table: usize,
    /// Whether the values are written to `out` (an index's are not: they
    /// repeat its table's).
    emit: bool,
    /// Text and blob values, one per line.
    out: Vec<u8>,
    /// The records themselves, when kept (`sqlite_master`'s).
    rows: Option<Vec<Row>>,
    /// Per field, the credential column's name to write before its values.
    labels: Vec<Option<String>>,
}

/// A record's fields: text, blob or integer bytes, or None.
type Row = Vec<Option<Vec<u8>>>;

/// A value line as stored: without the `name = "…"` a credential column's
/// label wraps it in (see [`columns`]).
fn unlabelled(line: &[u8]) -> &[u8] {
    let Some(at) = memchr::memmem::find(line, b" = \"") else { return line };
    line[at + 4..].strip_suffix(b"\"").unwrap_or(line)
}

/// Parses a database held in memory; None when it is not one (a bad header).
pub fn parse(data: &[u8]) -> Option<Database> {
    if !data.starts_with(MAGIC) || data.len() < 100 {
        return None;
    }
    let page_size = match u16_at(data, 16)? {
        1 => 65536,
        n if n >= 512 && n.is_power_of_two() => n,
        _ => return None,
    };
    let reserved = usize::from(data[20]);
    let utf16 = match u32_at(data, 56)? {
        2 => Some(false),
        3 => Some(true),
        _ => None,
    };
    let budget = std::cell::Cell::new(data.len().saturating_mul(3).saturating_add(1 << 20));
    let layout =
        Layout { data, page_size, usable: page_size.checked_sub(reserved)?, utf16, budget };
    if layout.usable < 480 {
        return None;
    }
    let pages = data.len() / page_size;
    let mut marks = Marks { seen: vec![false; pages + 1], live: data.to_vec(), btree: Vec::new() };
    let mut db = Database::default();
    let mut master =
        Sink { table: 0, emit: true, out: Vec::new(), rows: Some(Vec::new()), labels: Vec::new() };
    layout.walk(1, &mut marks, &mut master);
    // `CREATE TABLE` text is schema, but a `DEFAULT 'token'` can sit in it: scanned too.
    let mut names = vec!["sqlite_master".to_owned()];
    if !master.out.is_empty() {
        db.tables.push(Table { name: names[0].clone(), values: master.out, kind: Kind::Live });
    }
    for row in master.rows.unwrap_or_default() {
        let text = |i: usize| {
            row.get(i).cloned().flatten().map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        let (Some(kind), Some(name), Some(root)) = (text(0), text(1), text(3)) else { continue };
        let Ok(root) = root.parse::<usize>() else { continue };
        // Index entries copy their table's columns: walked (so their cells are
        // blanked in the raw scan) but not reported again.
        let emit = kind == "table";
        let labels = text(4).map(|sql| columns::credential_labels(&sql)).unwrap_or_default();
        let mut sink = Sink { table: names.len(), emit, out: Vec::new(), rows: None, labels };
        names.push(name.clone());
        layout.walk(root, &mut marks, &mut sink);
        if !sink.out.is_empty() {
            db.tables.push(Table { name, values: sink.out, kind: Kind::Live });
        }
    }
    // A spent budget leaves the walk partial: better read it all as raw bytes.
    if layout.budget.get() == 0 {
        return None;
    }
    let deleted = carve::carve(&layout, &mut marks, &names, &db.tables);
    db.tables.extend(deleted);
    db.blanked = marks.live;
    Some(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_as_sqlite_writes_them() {
        assert_eq!(varint(&[0x05], 0), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9], 0), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81], 0), None);
    }

    #[test]
    fn garbage_is_not_a_database() {
        assert!(parse(b"SQLite format 3\0short").is_none());
        let mut d = MAGIC.to_vec();
        d.resize(4096, 0xff);
        // Page size 0xffff is not a power of two.
        assert!(parse(&d).is_none());
        d[16] = 0x10;
        d[17] = 0;
        // A 4 KiB page of 0xff: no b-tree page, no tables, no panic.
        let db = parse(&d).unwrap();
        assert!(db.tables.is_empty());
    }

    #[test]
    fn cells_that_share_their_bytes_spend_the_budget() {
        // Page 1 (8 KiB): a table leaf whose 3,000 cell pointers all name one cell that
        // claims a 1,000-byte payload: 3 MB of work from an 8 KiB file (over the budget:
        // 3 times 8 KiB plus 1 MiB).
        let mut d = MAGIC.to_vec();
        d.resize(8192, 0);
        d[16..18].copy_from_slice(&8192u16.to_be_bytes());
        d[56..60].copy_from_slice(&1u32.to_be_bytes());
        d[100] = TABLE_LEAF;
        d[103..105].copy_from_slice(&3000u16.to_be_bytes());
        for c in 0..3000 {
            d[108 + 2 * c..110 + 2 * c].copy_from_slice(&7000u16.to_be_bytes());
        }
        d[7000..7003].copy_from_slice(&[0x87, 0x68, 0x01]); // payload 1000, rowid 1
        assert!(parse(&d).is_none(), "not parsed: scanned as raw bytes instead");
    }
}
