//! SQL dumps: a value read under its column's name. A dump stores a row's
//! values apart from the names of their columns (`INSERT INTO users (name,
//! password) VALUES ('admin', 'S3cr3t…')`, or the columns only in the
//! `CREATE TABLE` before it, as `sqlite3 .dump` and `mysqldump` write; pg_dump's
//! `COPY users (name, password) FROM stdin;` and its tab-separated rows), so a
//! bare password has nothing beside it that says what it is. Each value of a
//! credential-named column (the words of [`super::sqlite::columns`], as SQLite tables are
//! labelled) is read again as `password = "S3cr3t…"`, and the rules judge it as
//! they judge any assignment: an empty value, `NULL`, a placeholder, a bcrypt
//! hash (`$2y$…`) or a column named for a hash (`password_hash`, which no rule's
//! key ends in) gives nothing. A hit is placed at the value in the file.
//!
//! Cheap where there is no dump: the statements are found by the pattern
//! engine's own keyword search (its markers, [`MARKERS`]), and only the rows of
//! a statement whose table has a credential column are parsed, byte by byte,
//! across the stream's windows ([`Dump`] keeps where a statement stopped).
//! Bounded: a statement header is read up to [`MAX_HEADER`] bytes and at most
//! [`MAX_HEADER_BYTES`] of them per file, values over [`MAX_VALUE`] bytes are not
//! labelled, and at most [`MAX_TABLES`] tables' columns are kept per file.

use std::collections::HashMap;

use super::cap::HitCap;
use super::pattern::Budget;
use super::sqlite::columns::{declared_labels, key_value_columns};
use super::{Hit, Scanner};

/// The keywords that start what this module reads (the engine reports each by its index).
pub(crate) const MARKERS: &[&str] =
    &["insert into", "insert ignore into", "create table", "from stdin"];

/// Longest statement header read: a `CREATE TABLE`'s column list, an `INSERT`'s up to
/// `VALUES`, a `COPY` line.
const MAX_HEADER: usize = 16 << 10;
/// Longest value labelled (a password is short; a longer value is text or data).
const MAX_VALUE: usize = 512;
/// Tables whose credential columns are kept per file.
const MAX_TABLES: usize = 4096;
/// Bytes of statement headers looked at per file: real dumps' headers are a few dozen bytes
/// each, and a file of `insert into` with no end to its headers must not cost
/// [`MAX_HEADER`] bytes each.
const MAX_HEADER_BYTES: u64 = 256 << 20;

/// One step of a stream: `data`, the file's bytes from offset `base`, of which
/// `from..to` are this step's own (statements starting there are read here).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window<'a> {
    pub data: &'a [u8],
    pub base: u64,
    pub from: usize,
    pub to: usize,
}

/// Where the reading of a file's statements stands between windows.
#[derive(Debug, Default)]
pub(crate) struct Dump {
    /// Credential columns by table name (lower case, unquoted), from `CREATE TABLE`.
    tables: HashMap<String, Columns>,
    /// The statement being read, if any.
    rows: Option<Rows>,
    /// The file offset reading goes on from.
    resume: u64,
    /// Bytes of statement headers looked at so far, against [`MAX_HEADER_BYTES`].
    header_bytes: u64,
}

/// What a table's columns say of its values: which are credentials by their
/// column's name, and for a key-value table (`settings(name, value)`), which
/// column holds the names of the values in the other.
#[derive(Debug, Clone, Default)]
struct Columns {
    labels: Vec<Option<String>>,
    key_value: Option<(usize, usize)>,
}

impl Columns {
    /// From a column list or `CREATE TABLE` text.
    fn of(sql: &[u8]) -> Columns {
        let sql = String::from_utf8_lossy(sql);
        Columns { labels: declared_labels(&sql), key_value: key_value_columns(&sql) }
    }

    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.key_value.is_none()
    }
}

/// Longest key of a key-value row used as a label.
const MAX_KEY: usize = 64;

/// The rows of one statement, read byte by byte.
#[derive(Debug)]
struct Rows {
    columns: Columns,
    /// The current row's key, in a key-value table, once read (a label's bytes only).
    key: Option<String>,
    /// `COPY`'s text rows (tab-separated, a line each, `\.` ends them), else `VALUES` tuples.
    copy: bool,
    /// A backslash escapes the next byte in a string (MySQL's dumps, `COPY` rows).
    backslash: bool,
    state: State,
    /// The current value's field index in its row.
    field: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between rows: `(` starts one, `,` separates, anything else ends the statement.
    Between,
    /// At the start of a field.
    FieldStart,
    /// In a quoted string that started at this file offset.
    Quoted(u64),
    /// In an unquoted value (a number, `NULL`, a function call) at paren depth `n`.
    Bare(u32),
    /// After a quoted string, before `,` or `)`.
    AfterQuoted,
    /// In a `COPY` field that started at this file offset.
    CopyField(u64),
}

/// Values to read again, as `label = "value"` lines.
#[derive(Default)]
struct Batch {
    text: Vec<u8>,
    /// Per line: (where its value starts in `text`, its length, its place in the window).
    values: Vec<(usize, usize, usize)>,
}

impl Batch {
    fn push(&mut self, label: &str, value: &[u8], at: usize) {
        self.text.extend_from_slice(label.as_bytes());
        self.text.extend_from_slice(b" = \"");
        self.values.push((self.text.len(), value.len(), at));
        self.text.extend_from_slice(value);
        self.text.extend_from_slice(b"\"\n");
    }
}

impl Scanner {
    /// Hits in the credential columns' values of the SQL statements that `markers` (the
    /// engine's, in `window.data`) start or that `dump` was reading, with their place in
    /// `window.data`.
    pub(crate) fn dump_hits(
        &self,
        window: Window<'_>,
        markers: &[(usize, usize)],
        dump: &mut Dump,
        cap: &mut HitCap,
    ) -> Vec<(usize, Hit)> {
        if dump.rows.is_none() && markers.is_empty() {
            return Vec::new();
        }
        let mut batch = Batch::default();
        let mut pos = window
            .from
            .max(usize::try_from(dump.resume.saturating_sub(window.base)).unwrap_or(usize::MAX));
        let mut starts: Vec<(usize, usize)> =
            markers.iter().copied().filter(|&(_, s)| s >= window.from && s < window.to).collect();
        starts.sort_unstable_by_key(|&(_, s)| s);
        let mut next = starts.into_iter().peekable();
        while pos < window.to {
            if let Some(rows) = &mut dump.rows {
                let (end, done) = rows.read(window, pos, &mut batch);
                pos = end;
                if done {
                    dump.rows = None;
                }
                continue;
            }
            let Some((marker, at)) = next.find(|&(_, s)| s >= pos) else { break };
            pos = dump.start(marker, window.data, at);
        }
        dump.resume = window.base + pos as u64;
        self.batch_hits(&batch, window, cap)
    }

    /// The hits in the batch's values, placed in the window.
    fn batch_hits(&self, batch: &Batch, window: Window<'_>, cap: &mut HitCap) -> Vec<(usize, Hit)> {
        let mut found = Vec::new();
        if batch.values.is_empty() {
            return found;
        }
        let mut placeholders = 0;
        let mut raw = Vec::new();
        let mut over = Vec::new();
        {
            let full = |rule| cap.is_full(rule);
            let mut budget = Budget {
                full: &full,
                count: &mut |rule, _| over.push(rule),
                examined: &mut |_, _| {},
                placeholders: &mut placeholders,
                markers: &mut Vec::new(),
            };
            self.engine.find_within_budget(&batch.text, &mut budget, &mut |m| raw.push(m));
        }
        cap.set_aside.placeholders += placeholders;
        for rule in over {
            cap.add_dropped(rule, 1);
        }
        for m in raw {
            let (ss, se) = m.secret;
            let i = batch.values.partition_point(|&(start, _, _)| start <= ss).saturating_sub(1);
            let Some(&(start, len, at)) = batch.values.get(i) else { continue };
            // Only what lies in the value: the label is no secret.
            if ss < start || se > start + len {
                continue;
            }
            let pos = at + (ss - start);
            if let Some(mut h) = self.to_hit(&batch.text, 0, &m, &mut cap.set_aside) {
                h.offset = window.base + pos as u64;
                found.push((pos, h));
            }
        }
        found
    }
}

impl Dump {
    /// Reads the statement a marker starts at `at`; returns where reading goes on.
    fn start(&mut self, marker: usize, data: &[u8], at: usize) -> usize {
        let after = at + MARKERS[marker].len();
        // Headers are short; a file of markers with no end to their headers is not read
        // past the budget.
        if self.header_bytes >= MAX_HEADER_BYTES {
            return after;
        }
        let head = &data[after..data.len().min(after + MAX_HEADER)];
        let read = match MARKERS[marker] {
            "create table" => self.create_table(head),
            "from stdin" => self.copy(data, at),
            _ => self.insert(head),
        };
        self.header_bytes += read.examined as u64;
        read.rows_at.map_or(after, |r| match MARKERS[marker] {
            "from stdin" => r,
            _ => after + r,
        })
    }

    /// Keeps a `CREATE TABLE`'s credential columns (`head` follows the keywords).
    fn create_table(&mut self, head: &[u8]) -> Header {
        let mut at = skip_blanks(head, 0);
        for word in ["if", "not", "exists"] {
            if starts_with_word(&head[at..], word) {
                at = skip_blanks(head, at + word.len());
            }
        }
        let (table, end) = identifier(head, at);
        let open = skip_blanks(head, end);
        let Some(close) = closing_paren(head, open) else {
            return Header { examined: head.len(), rows_at: None };
        };
        let columns = Columns::of(&head[open..=close]);
        if !columns.is_empty() && !table.is_empty() && self.tables.len() < MAX_TABLES {
            self.tables.insert(table, columns);
        }
        Header { examined: close, rows_at: None }
    }

    /// Starts reading an `INSERT`'s rows when its table has a credential column; `head`
    /// follows the keywords. `rows_at` is where its rows start in `head`.
    fn insert(&mut self, head: &[u8]) -> Header {
        let start = skip_blanks(head, 0);
        let backslash = head.get(start) == Some(&b'`');
        let (table, end) = identifier(head, start);
        let mut at = skip_blanks(head, end);
        let columns = if head.get(at) == Some(&b'(') {
            let Some(close) = closing_paren(head, at) else {
                return Header { examined: head.len(), rows_at: None };
            };
            let columns = Columns::of(&head[at..=close]);
            at = skip_blanks(head, close + 1);
            columns
        } else {
            self.tables.get(&table).cloned().unwrap_or_default()
        };
        if columns.is_empty() || !starts_with_word(&head[at..], "values") {
            return Header { examined: at, rows_at: None };
        }
        self.rows = Some(Rows::new(columns, false, backslash));
        Header { examined: at, rows_at: Some(at + "values".len()) }
    }

    /// Starts reading a `COPY … FROM stdin;`'s rows (`at`: where `from stdin` is), if its
    /// line starts with `COPY` and its table has a credential column. `rows_at` is where
    /// its rows start in `data`.
    fn copy(&mut self, data: &[u8], at: usize) -> Header {
        let floor = at.saturating_sub(MAX_HEADER);
        let line_start =
            data[floor..at].iter().rposition(|&b| b == b'\n').map_or(floor, |i| floor + i + 1);
        let examined = at - line_start;
        let line = &data[line_start..at];
        let start = skip_blanks(line, 0);
        if !starts_with_word(&line[start..], "copy") {
            return Header { examined, rows_at: None };
        }
        let (table, end) = identifier(line, skip_blanks(line, start + "copy".len()));
        let open = skip_blanks(line, end);
        let columns = if line.get(open) == Some(&b'(') {
            match closing_paren(line, open) {
                Some(close) => Columns::of(&line[open..=close]),
                None => Columns::default(),
            }
        } else {
            self.tables.get(&table).cloned().unwrap_or_default()
        };
        // The rows start on the line after the statement.
        let newline = memchr::memchr(b'\n', &data[at..data.len().min(at + MAX_HEADER)]);
        let (false, Some(newline)) = (columns.is_empty(), newline) else {
            return Header { examined, rows_at: None };
        };
        self.rows = Some(Rows::new(columns, true, true));
        Header { examined, rows_at: Some(at + newline + 1) }
    }
}

/// What reading a statement's header found: the bytes it looked at, and where the rows
/// start when they are to be read.
struct Header {
    examined: usize,
    rows_at: Option<usize>,
}

impl Rows {
    fn new(columns: Columns, copy: bool, backslash: bool) -> Rows {
        let state = if copy { State::FieldStart } else { State::Between };
        Rows { columns, key: None, copy, backslash, state, field: 0 }
    }

    /// Reads from `pos` until the statement ends or the window's own bytes do; returns
    /// where it stopped and whether the statement ended.
    fn read(&mut self, w: Window<'_>, mut pos: usize, batch: &mut Batch) -> (usize, bool) {
        let data = w.data;
        while pos < w.to {
            let b = data[pos];
            let abs = w.base + pos as u64;
            match self.state {
                State::Between => match b {
                    b'(' => {
                        self.state = State::FieldStart;
                        self.field = 0;
                        self.key = None;
                    }
                    b',' | b' ' | b'\t' | b'\r' | b'\n' => {}
                    _ => return (pos, true),
                },
                State::FieldStart if self.copy => {
                    if self.field == 0 && data[pos..].starts_with(b"\\.") {
                        return (pos + 2, true);
                    }
                    self.state = State::CopyField(abs);
                    continue;
                }
                State::FieldStart => match b {
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    b'\'' => self.state = State::Quoted(abs + 1),
                    b',' => self.field += 1,
                    b')' => self.state = State::Between,
                    b'(' => self.state = State::Bare(1),
                    _ => self.state = State::Bare(0),
                },
                State::Bare(depth) => match b {
                    b'\'' => self.state = State::Quoted(abs + 1),
                    b'(' => self.state = State::Bare(depth + 1),
                    b')' if depth == 0 => self.state = State::Between,
                    b')' => self.state = State::Bare(depth - 1),
                    b',' if depth == 0 => {
                        self.field += 1;
                        self.state = State::FieldStart;
                    }
                    _ => {}
                },
                // Most of a dump's bytes are in strings: skip to the next byte that matters.
                State::Quoted(_) if b != b'\'' && b != b'\\' => {
                    let next = memchr::memchr2(b'\'', b'\\', &data[pos..w.to]);
                    pos = next.map_or(w.to, |n| pos + n);
                    continue;
                }
                State::CopyField(_) if !matches!(b, b'\\' | b'\t' | b'\n') => {
                    let next = memchr::memchr3(b'\\', b'\t', b'\n', &data[pos..w.to]);
                    pos = next.map_or(w.to, |n| pos + n);
                    continue;
                }
                State::Quoted(start) => match b {
                    b'\\' if self.backslash => pos += 1,
                    b'\'' if data.get(pos + 1) == Some(&b'\'') => pos += 1,
                    b'\'' => {
                        self.value(w, start, abs, batch);
                        self.state = State::AfterQuoted;
                    }
                    _ => {}
                },
                State::AfterQuoted => match b {
                    b',' => {
                        self.field += 1;
                        self.state = State::FieldStart;
                    }
                    b')' => self.state = State::Between,
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    _ => self.state = State::Bare(0),
                },
                State::CopyField(start) => match b {
                    b'\\' => pos += 1,
                    b'\t' | b'\n' => {
                        if &data[pos.saturating_sub(2)..pos] != b"\\N" || start + 2 != abs {
                            self.value(w, start, abs, batch);
                        }
                        if b == b'\n' {
                            self.field = 0;
                            self.key = None;
                        } else {
                            self.field += 1;
                        }
                        self.state = State::FieldStart;
                    }
                    _ => {}
                },
            }
            pos += 1;
        }
        (pos, false)
    }

    /// Labels the value at file offsets `start..end` when its column is a credential's,
    /// or in a key-value table, with the row's key; keeps a key-value row's key.
    fn value(&mut self, w: Window<'_>, start: u64, end: u64, batch: &mut Batch) {
        let len = end.saturating_sub(start) as usize;
        if len == 0 || len > MAX_VALUE || start < w.base {
            return;
        }
        let at = (start - w.base) as usize;
        let Some(value) = w.data.get(at..at + len) else { return };
        if let Some(Some(label)) = self.columns.labels.get(self.field) {
            batch.push(label, value, at);
        } else if let Some((key, val)) = self.columns.key_value {
            if self.field == key {
                // Only a name can label a value: the rules read `name = "value"`.
                let name = value.len() <= MAX_KEY
                    && value.iter().all(|&b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
                self.key = name.then(|| String::from_utf8_lossy(value).into_owned());
            } else if self.field == val
                && let Some(label) = &self.key
            {
                batch.push(label, value, at);
            }
        }
    }
}

/// The index of the first byte of `bytes` from `at` on that is no blank.
fn skip_blanks(bytes: &[u8], at: usize) -> usize {
    let rest = bytes.get(at..).unwrap_or_default();
    at + rest.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(rest.len())
}

/// Whether `bytes` start with `word` (ASCII case-insensitive) followed by no word byte.
fn starts_with_word(bytes: &[u8], word: &str) -> bool {
    bytes.get(..word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
        && !bytes.get(word.len()).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// The table name at `bytes[at..]` (quotes removed, lower case; `schema.table` kept
/// whole, at most 256 bytes), and where it ends.
fn identifier(bytes: &[u8], at: usize) -> (String, usize) {
    let mut quote = None;
    let mut end = at;
    while let Some(&b) = bytes.get(end) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'`' | b'"') => quote = Some(b),
            (None, b'[') => quote = Some(b']'),
            (None, b) if b.is_ascii_whitespace() || b == b'(' || b == b';' => break,
            _ => {}
        }
        end += 1;
        if end - at > 256 {
            break;
        }
    }
    let name: Vec<u8> = bytes[at..end]
        .iter()
        .filter(|b| !matches!(b, b'`' | b'"' | b'[' | b']'))
        .copied()
        .collect();
    (String::from_utf8_lossy(&name).to_ascii_lowercase(), end)
}

/// The index of the `)` that closes the `(` at `bytes[open]`, outside quotes.
fn closing_paren(bytes: &[u8], open: usize) -> Option<usize> {
    let (mut depth, mut quote) = (0i32, None);
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"' | b'`') => quote = Some(b),
            (None, b'(') => depth += 1,
            (None, b')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::scan::cap::HitCap;
    use crate::scan::stream::BUFFER;
    use crate::scan::test_support::scanner;

    /// The secrets a stream scan finds in `text` (read window by window), with the line of each.
    fn found(text: &str) -> Vec<(String, u64)> {
        let s = scanner();
        let mut buf = vec![0u8; BUFFER];
        let mut cap = HitCap::new(100);
        let hits = s.scan_stream(&mut buf, 0, false, &mut text.as_bytes(), &mut cap);
        let secret = |h: &crate::scan::Hit| String::from_utf8_lossy(h.secret.expose()).into_owned();
        hits.unwrap().iter().map(|h| (secret(h), h.line)).collect()
    }

    #[test]
    fn values_of_credential_columns_are_found_under_their_names() {
        let text = "-- dump\n\
            CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, password TEXT, password_hash TEXT);\n\
            INSERT INTO users VALUES(1,'admin','Kq8vLm2Zx9T!',NULL);\n\
            INSERT INTO users VALUES(2,'bob','','$2y$10$abcdefghijklmnopqrstuv'),(3,'eve','changeme','x');\n\
            INSERT INTO `accounts` (`id`, `user`, `db_password`) VALUES (1,'O\\'Brien','Tw4kLq9Zm2!v'),(2,'b','Rm4!sPq8Zt');\n\
            COPY public.tokens (id, api_key) FROM stdin;\n\
            1\tqhG2MRfCOLWHNWiMVdhV2zW7BEyyqgJj\n\
            2\t\\N\n\
            \\.\n";
        let want = [
            ("Kq8vLm2Zx9T!", 3),
            ("Tw4kLq9Zm2!v", 5),
            ("Rm4!sPq8Zt", 5),
            ("qhG2MRfCOLWHNWiMVdhV2zW7BEyyqgJj", 7),
        ];
        assert_eq!(found(text), want.map(|(s, l)| (s.to_owned(), l)));
    }

    #[test]
    fn values_without_a_credential_column_are_not_labelled() {
        let text = "INSERT INTO notes (id, body) VALUES (1,'Kq8vLm2Zx9T!');\n\
            COPY public.t (a, b) FROM stdin;\n1\tKq8vLm2Zx9T!\n\\.\n";
        assert_eq!(found(text), []);
    }

    #[test]
    fn a_statement_is_read_across_windows() {
        // Rows over three windows (1 MiB each), a password in the first, one where a
        // window ends inside its string, and one in the last row; the statement's header
        // is only in the first window.
        let mut text = String::from("CREATE TABLE u(id INT, note TEXT, pwd TEXT);\n");
        text.push_str("INSERT INTO u VALUES (0,'a','Kq8vLm2Zx9T!')");
        let filler = "x".repeat(40);
        let mut i = 1;
        while text.len() < (1 << 20) - 200 {
            text.push_str(&format!(",({i},'{filler}','')"));
            i += 1;
        }
        // The first window's own bytes end at 1 MiB: five bytes into the next password.
        let pad = (1 << 20) - 5 - text.len() - ",(8,'','')".len() - ",(7,'it''s','".len();
        text.push_str(&format!(",(8,'{}','')", "y".repeat(pad)));
        text.push_str(",(7,'it''s','Rm4!sPq8Zt7#')");
        assert_eq!(text.find("Rm4!"), Some((1 << 20) - 5));
        while text.len() < 3 << 20 {
            text.push_str(&format!(",\n({i},'{filler}',NULL)"));
            i += 1;
        }
        text.push_str(",(9,'b','Tw4kLq9Zm2!v');\n");
        let lines = text.lines().count() as u64;
        let got = found(&text);
        let want = [("Kq8vLm2Zx9T!", 2), ("Rm4!sPq8Zt7#", 2), ("Tw4kLq9Zm2!v", lines)];
        assert_eq!(got, want.map(|(s, l)| (s.to_owned(), l)));
    }
}
