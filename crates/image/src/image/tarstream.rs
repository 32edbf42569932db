//! A streaming tar reader with budgets, for layer walks and nested tars.
//!
//! It reads entries the way Go's `archive/tar` does (what Docker and
//! containerd extract layers with), so strata sees the entries a runtime
//! would materialise, and it knows at every moment how far it has read:
//!
//! - header-only types (hardlink, symlink, device, directory, fifo) carry no
//!   data whatever their size field says; the next header follows directly;
//! - a V7 entry with typeflag NUL and a trailing slash is a directory;
//! - GNU long names and links, and PAX `path`/`linkpath`, are kept only up to
//!   [`TarLimits::max_name`] bytes; a longer name is skipped as it streams
//!   (never held in memory) and the entry it names is reported as not read;
//! - a PAX extended header is read into memory only up to
//!   [`TarLimits::max_pax`] bytes, otherwise skipped and the entry not read;
//! - a second GNU long name before one entry replaces the first (as Go does);
//! - sparse files (GNU `S`, PAX `GNU.sparse.*`) are read as their stored data
//!   blocks only: holes are never expanded;
//! - a missing end-of-archive marker (umoci before 0.5 omits it and the last
//!   padding) is an ordinary end when the stream stops at an entry boundary
//!   or inside padding; anything else that stops the parse is an error, and
//!   the caller learns how many bytes were left unread.
//!
//! It does not own what entries mean for the image (whiteouts, paths):
//! that is [`super::layer`]'s and [`super::path`]'s.

use std::io::{self, Read};

const BLOCK: usize = 512;

/// Budgets of the tar reader.
#[derive(Debug, Clone, Copy)]
pub struct TarLimits {
    /// Longest entry or link name kept, in bytes (GNU long name or PAX path).
    pub max_name: u64,
    /// Largest PAX extended header read, in bytes.
    pub max_pax: u64,
    /// Padding blocks holding non-zero bytes kept for the caller to scan
    /// ([`TarReader::take_stray_bytes`]), in bytes; none by default.
    pub keep_stray: usize,
}

impl Default for TarLimits {
    fn default() -> Self {
        TarLimits { max_name: 64 << 10, max_pax: 1 << 20, keep_stray: 0 }
    }
}

/// What an entry is, by its typeflag (whiteout names are not looked at here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    /// Regular file (also contiguous and sparse files): its data follows.
    File,
    /// Hardlink to [`RawEntry::link`].
    Hardlink,
    /// Symbolic link to [`RawEntry::link`].
    Symlink,
    /// Directory.
    Dir,
    /// Device, fifo, or a type runtimes do not extract.
    Other,
}

/// One entry header, with long names and PAX records applied.
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// Entry name bytes as stored (not normalised).
    pub name: Vec<u8>,
    /// Link target bytes (hardlinks and symlinks), else empty.
    pub link: Vec<u8>,
    /// What it is.
    pub kind: RawKind,
    /// Bytes of data stored in the archive for this entry (for sparse files,
    /// the data blocks only).
    pub size: u64,
    /// Offset of the entry's (first) header in the uncompressed stream.
    pub offset: u64,
    /// Why the entry cannot be read (a budget was exceeded), if so: its data
    /// is skipped and the caller must count it as not read.
    pub unread: Option<String>,
    /// Notes about the header that do not stop the read (a repeated long name).
    pub notes: Vec<String>,
    /// Header text that ships with the entry but is neither its name nor its link: PAX
    /// records other than the ones applied (`SCHILY.xattr.*` extended attributes, which
    /// runtimes set on the file, `comment`, vendor keys), those of a global header before
    /// it, and the ustar owner names. One `KEY=VALUE` per line; empty for most entries.
    pub records: Vec<u8>,
    /// Why header text before the entry was not read (a global header over the PAX
    /// limit): the entry itself is read, and the caller counts that text as not read.
    pub records_unread: Option<String>,
}

/// How a tar stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// An all-zero block: the end-of-archive marker.
    Marker,
    /// The stream stopped at an entry boundary or inside padding, without
    /// the marker (umoci < 0.5): every entry was read.
    NoMarker,
}

/// The next thing in the stream.
#[derive(Debug)]
pub enum Next {
    /// An entry; its data can be read with [`TarReader::data`].
    Entry(RawEntry),
    /// The archive ended.
    End(End),
}

/// Why the parse stopped: the stream is not a (complete) tar from `offset` on.
#[derive(Debug)]
pub struct TarError {
    /// Offset in the uncompressed stream where the problem is.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
    /// The underlying read error, when there was one.
    pub io: Option<io::Error>,
}

impl std::fmt::Display for TarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for TarError {}

/// The reader. Call [`TarReader::next_entry`] until it returns [`Next::End`] or an
/// error; between calls, [`TarReader::data`] reads the current entry's data.
#[derive(Debug)]
pub struct TarReader<R> {
    inner: R,
    limits: TarLimits,
    /// Bytes consumed from `inner`.
    pos: u64,
    /// Data bytes of the current entry not yet consumed.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    /// Non-zero padding bytes not yet reported: (count, offset of the first).
    stray: Option<(u64, u64)>,
    /// The padding blocks that held them, while they fit `limits.keep_stray`.
    stray_bytes: Vec<u8>,
    /// Some of them did not fit.
    stray_lost: bool,
}

fn err(offset: u64, reason: impl Into<String>) -> TarError {
    TarError { offset, reason: reason.into(), io: None }
}

/// Parses a numeric header field: octal text, or GNU base-256.
fn numeric(field: &[u8]) -> Option<u64> {
    if let Some((&first, rest)) = field.split_first()
        && first & 0x80 != 0
    {
        // Base-256; a set sign bit (0xff) is a negative number.
        if first == 0xff {
            return None;
        }
        let mut v = u64::from(first & 0x7f);
        for &b in rest {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = field.split(|&b| b == 0).next().unwrap_or(&[]);
    let text = text.trim_ascii();
    if text.is_empty() {
        return Some(0);
    }
    let mut v: u64 = 0;
    for &b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

fn cstr(field: &[u8]) -> &[u8] {
    field.split(|&b| b == 0).next().unwrap_or(&[])
}

fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let Some(stored) = numeric(&block[148..156]) else { return false };
    // The checksum field counts as eight spaces.
    let field: u64 = block[148..156].iter().map(|&b| u64::from(b)).sum();
    let unsigned = byte_sum(block) - field + 8 * u64::from(b' ');
    if stored == unsigned {
        return true;
    }
    // As signed chars (old tar writers), every byte >= 0x80 counts 256 less. Counted
    // only here: nearly every header matches the POSIX (unsigned) sum above.
    let high = |bytes: &[u8]| bytes.iter().filter(|&&b| b >= 0x80).count() as i64;
    let signed = unsigned as i64 - 256 * (high(block) - high(&block[148..156]));
    i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// The sum of a block's bytes. This runs once per member (300,000 times in
/// a layer of small files), so it adds eight bytes at a time: the even and
/// odd bytes of each little-endian word go into four 16-bit lanes, which
/// the block's 64 words cannot overflow (64 × 2 × 255 < 2^16).
fn byte_sum(block: &[u8; BLOCK]) -> u64 {
    const EVEN: u64 = 0x00ff_00ff_00ff_00ff;
    let (words, _) = block.as_chunks::<8>();
    let lanes = words.iter().fold(0u64, |acc, w| {
        let w = u64::from_le_bytes(*w);
        acc + (w & EVEN) + ((w >> 8) & EVEN)
    });
    (lanes & 0xffff) + ((lanes >> 16) & 0xffff) + ((lanes >> 32) & 0xffff) + (lanes >> 48)
}

/// The header's own name: ustar joins the prefix field, GNU and V7 do not.
fn header_name(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = cstr(&block[0..100]);
    let ustar = &block[257..263] == b"ustar\0" && &block[263..265] == b"00";
    let prefix = if ustar { cstr(&block[345..500]) } else { &[] };
    if prefix.is_empty() {
        name.to_vec()
    } else {
        let mut full = prefix.to_vec();
        full.push(b'/');
        full.extend_from_slice(name);
        full
    }
}

/// A long name or PAX value held, or why it was not.
enum Held {
    Value(Vec<u8>),
    TooLong(String),
}

/// PAX records that change the next entry.
#[derive(Default)]
struct Pax {
    /// The records not applied below, as `KEY=VALUE` lines (see [`RawEntry::records`]).
    other: Vec<u8>,
    path: Option<Held>,
    link: Option<Held>,
    size: Option<u64>,
    sparse_name: Option<Held>,
    /// `GNU.sparse.major` and `.minor`, as written.
    sparse_version: (Option<Vec<u8>>, Option<Vec<u8>>),
    /// A sparse map was given (`GNU.sparse.map`, or 0.0's `offset`/`numbytes`).
    sparse_map: bool,
}

impl Pax {
    /// Whether Go's reader takes the entry for a PAX sparse file, the only case in
    /// which it renames it to `GNU.sparse.name` (a known version, or a map without one).
    fn is_sparse(&self) -> bool {
        match &self.sparse_version {
            (Some(major), Some(minor)) => matches!(
                (major.as_slice(), minor.as_slice()),
                (b"0", b"0") | (b"0", b"1") | (b"1", b"0")
            ),
            (None, None) => self.sparse_map,
            _ => false,
        }
    }
}

impl<R: Read> TarReader<R> {
    /// A reader over an uncompressed tar stream.
    pub fn new(inner: R, limits: TarLimits) -> Self {
        TarReader {
            inner,
            limits,
            pos: 0,
            remaining: 0,
            padding: 0,
            stray: None,
            stray_bytes: Vec::new(),
            stray_lost: false,
        }
    }

    /// Bytes consumed from the underlying stream so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The underlying stream, positioned after what was consumed.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The underlying stream, positioned after what was consumed: after the end-of-archive
    /// marker, what follows it.
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// A reader over the rest of the current entry's data.
    pub fn data(&mut self) -> Data<'_, R> {
        Data { reader: self }
    }

    /// Reads up to a full block; returns how many bytes were read.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<usize, TarError> {
        let mut n = 0;
        while n < BLOCK {
            match self.inner.read(&mut block[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(TarError {
                        offset: self.pos + n as u64,
                        reason: "read error".into(),
                        io: Some(e),
                    });
                }
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    /// Consumes `n` bytes; returns how many were there before the stream ended.
    fn skip(&mut self, n: u64) -> Result<u64, TarError> {
        // Called twice per entry (the data the visitor left, then the
        // padding): the first is nearly always nothing.
        if n == 0 {
            return Ok(0);
        }
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())
            .map_err(|e| TarError { offset: self.pos, reason: "read error".into(), io: Some(e) })?;
        self.pos += copied;
        Ok(copied)
    }

    /// Consumes the `n` (< 512) padding bytes after an entry's data, noting
    /// any that are not zero: no reader (Go's archive/tar included) looks at
    /// them, so bytes stored there are hidden from every runtime. Returns how
    /// many were there before the stream ended.
    fn skip_padding(&mut self, n: u64) -> Result<u64, TarError> {
        if n == 0 {
            return Ok(0);
        }
        let start = self.pos;
        let mut block = [0u8; BLOCK];
        let want = (n as usize).min(BLOCK);
        let mut got = 0;
        while got < want {
            match self.inner.read(&mut block[got..want]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(TarError {
                        offset: start,
                        reason: "read error".into(),
                        io: Some(e),
                    });
                }
            }
        }
        self.pos += got as u64;
        let nonzero = block[..got].iter().filter(|&&b| b != 0).count() as u64;
        if nonzero > 0 {
            let first = block.iter().position(|&b| b != 0).unwrap_or_default() as u64;
            let (count, _) = self.stray.get_or_insert((0, start + first));
            *count += nonzero;
            if self.stray_bytes.len() + got <= self.limits.keep_stray {
                self.stray_bytes.extend_from_slice(&block[..got]);
            } else {
                self.stray_lost = true;
            }
        }
        Ok(got as u64)
    }

    /// The padding blocks behind the last [`TarReader::take_stray_padding`],
    /// when all of them were kept (see [`TarLimits::keep_stray`]).
    pub fn take_stray_bytes(&mut self) -> Option<Vec<u8>> {
        let kept = std::mem::take(&mut self.stray_bytes);
        let lost = std::mem::take(&mut self.stray_lost);
        (!lost && !kept.is_empty()).then_some(kept)
    }

    /// Non-zero padding met since the last call: how many bytes, and where
    /// the first one is. The caller counts them as not read.
    pub fn take_stray_padding(&mut self) -> Option<(u64, u64)> {
        self.stray.take()
    }

    /// Reads a special entry's data (long name, PAX) of `size` bytes if it
    /// fits `max`, else skips it as it streams.
    fn special(&mut self, size: u64, max: u64, what: &str) -> Result<Held, TarError> {
        let start = self.pos;
        let held =
            if size <= max {
                let mut buf = Vec::with_capacity(size as usize);
                let got = (&mut self.inner).take(size).read_to_end(&mut buf).map_err(|e| {
                    TarError { offset: self.pos, reason: "read error".into(), io: Some(e) }
                })?;
                self.pos += got as u64;
                if (got as u64) < size {
                    return Err(err(start, format!("truncated {what}")));
                }
                Held::Value(buf)
            } else {
                if self.skip(size)? < size {
                    return Err(err(start, format!("truncated {what}")));
                }
                Held::TooLong(format!("{what} of {size} bytes exceeds the {max}-byte limit"))
            };
        self.skip_padding(padding(size))?;
        Ok(held)
    }

    /// The next entry, or the end of the archive.
    ///
    /// # Errors
    /// When the stream is not a valid tar from the current position on; the
    /// error's offset says where.
    pub fn next_entry(&mut self) -> Result<Next, TarError> {
        // Finish the previous entry.
        let (data, pad) = (self.remaining, self.padding);
        self.remaining = 0;
        self.padding = 0;
        let start = self.pos;
        if self.skip(data)? < data {
            return Err(err(start, "truncated tar stream: an entry's data ends early"));
        }
        if self.skip_padding(pad)? < pad {
            // umoci < 0.5: the last entry's padding and the end blocks are missing.
            return Ok(Next::End(End::NoMarker));
        }
        let mut long_name: Option<Held> = None;
        let mut long_link: Option<Held> = None;
        let mut pax = Pax::default();
        let mut notes = Vec::new();
        // Global headers met before the entry: their text, or why it was not read.
        let mut global = Vec::new();
        let mut global_unread = None;
        loop {
            let offset = self.pos;
            let mut block = [0u8; BLOCK];
            let n = self.read_block(&mut block)?;
            if n == 0 {
                return if long_name.is_some() || long_link.is_some() || pax.size.is_some() {
                    Err(err(offset, "tar stream ends after an extended header, before its entry"))
                } else {
                    Ok(Next::End(End::NoMarker))
                };
            }
            if block.iter().all(|&b| b == 0) {
                return Ok(Next::End(if n == BLOCK { End::Marker } else { End::NoMarker }));
            }
            if n < BLOCK {
                return Err(err(offset, "truncated tar header"));
            }
            if !checksum_ok(&block) {
                return Err(err(offset, "not a tar header (checksum mismatch)"));
            }
            let Some(size) = numeric(&block[124..136]) else {
                return Err(err(offset, "invalid size field in tar header"));
            };
            let flag = block[156];
            match flag {
                b'L' => {
                    if long_name.is_some() {
                        notes.push(format!(
                            "entry at byte {offset}: two GNU long names; the last one is used, as Go's archive/tar does"
                        ));
                    }
                    long_name = Some(self.special(size, self.limits.max_name, "GNU long name")?);
                    continue;
                }
                b'K' => {
                    long_link = Some(self.special(size, self.limits.max_name, "GNU long link")?);
                    continue;
                }
                b'x' => {
                    // A second extended header replaces the first whole, as Go's
                    // archive/tar does (its records are not merged).
                    pax = Pax::default();
                    match self.special(size, self.limits.max_pax, "PAX extended header")? {
                        Held::Value(bytes) => {
                            self.parse_pax(&bytes, &mut pax).map_err(|why| err(offset, why))?;
                        }
                        Held::TooLong(why) => pax.path = Some(Held::TooLong(why)),
                    }
                    continue;
                }
                b'g' => {
                    // Runtimes ignore global headers. Go's reader returns one as an entry
                    // of its own, so the long names and PAX records before it describe
                    // nothing: they are dropped. Its text still ships in the layer (`git
                    // archive` writes its commit there), so it goes with the next entry's
                    // records to be scanned.
                    (long_name, long_link, pax) = (None, None, Pax::default());
                    match self.special(size, self.limits.max_pax, "PAX global header")? {
                        Held::Value(bytes) => {
                            global.extend_from_slice(b"global ");
                            global.extend(bytes.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
                            global.push(b'\n');
                        }
                        Held::TooLong(why) => {
                            global_unread = Some(format!("header at byte {offset}: {why}"));
                        }
                    }
                    continue;
                }
                _ => {}
            }
            // The last long name or PAX value held replaces the header's own
            // (which is then never copied out); one too long leaves the entry unread.
            let mut unread = None;
            let mut take = |held: Option<Held>, into: &mut Option<Vec<u8>>| match held {
                Some(Held::Value(mut v)) => {
                    v.truncate(cstr(&v).len());
                    *into = Some(v);
                }
                Some(Held::TooLong(why)) => unread = Some(why),
                None => {}
            };
            let (mut name, mut link) = (None, None);
            // Go's order: the PAX path, then a GNU long name, then (for a sparse file
            // only) the sparse name.
            let sparse_name = if pax.is_sparse() { pax.sparse_name.take() } else { None };
            for held in [pax.path.take(), long_name.take(), sparse_name] {
                take(held, &mut name);
            }
            for held in [pax.link.take(), long_link.take()] {
                take(held, &mut link);
            }
            let name = name.unwrap_or_else(|| header_name(&block));
            let link = link.unwrap_or_else(|| cstr(&block[157..257]).to_vec());
            let kind = match flag {
                b'0' | b'7' | b'S' => RawKind::File,
                b'\0' if name.ends_with(b"/") => RawKind::Dir,
                b'\0' => RawKind::File,
                b'1' => RawKind::Hardlink,
                b'2' => RawKind::Symlink,
                b'5' | b'D' => RawKind::Dir,
                _ => RawKind::Other,
            };
            // Go's archive/tar gives header-only types no data, whatever the size says.
            let header_only = matches!(flag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6');
            let size = if header_only { 0 } else { pax.size.unwrap_or(size) };
            if flag == b'S' && block[482] != 0 {
                self.skip_sparse_extensions()?;
            }
            self.remaining = size;
            self.padding = padding(size);
            let mut records = global;
            records.append(&mut pax.other);
            for (key, field) in [(&b"uname"[..], &block[265..297]), (b"gname", &block[297..329])] {
                let owner = cstr(field);
                if !owner.is_empty() && owner != b"root" {
                    records.extend_from_slice(key);
                    records.push(b'=');
                    records.extend_from_slice(owner);
                    records.push(b'\n');
                }
            }
            return Ok(Next::Entry(RawEntry {
                name,
                link,
                kind,
                size,
                offset,
                unread,
                notes,
                records,
                records_unread: global_unread,
            }));
        }
    }

    /// Old GNU sparse headers continue in extension blocks before the data.
    fn skip_sparse_extensions(&mut self) -> Result<(), TarError> {
        loop {
            let offset = self.pos;
            let mut block = [0u8; BLOCK];
            if self.read_block(&mut block)? < BLOCK {
                return Err(err(offset, "truncated GNU sparse extension header"));
            }
            if block[504] == 0 {
                return Ok(());
            }
        }
    }

    /// Applies the PAX records we use; others are ignored.
    ///
    /// # Errors
    /// A record that is not `LEN KEY=VALUE\n` (its length wrong, no `=`, no
    /// newline), or a `size` that is not a decimal number: Go's archive/tar
    /// refuses the whole archive then (`ErrHeader`), so no runtime extracts it.
    fn parse_pax(&self, mut bytes: &[u8], pax: &mut Pax) -> Result<(), String> {
        let max = self.limits.max_name as usize;
        let hold = |v: &[u8], what: &str| {
            if v.len() > max {
                Held::TooLong(format!(
                    "PAX {what} of {} bytes exceeds the {max}-byte limit",
                    v.len()
                ))
            } else {
                Held::Value(v.to_vec())
            }
        };
        let mut at = 0;
        while !bytes.is_empty() {
            let bad = move |what: &str| {
                format!("invalid PAX extended header (its record at byte {at} {what})")
            };
            let space =
                bytes.iter().position(|&b| b == b' ').ok_or_else(|| bad("has no length"))?;
            let len: usize = std::str::from_utf8(&bytes[..space])
                .ok()
                .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("has no decimal length"))?;
            if len <= space + 1 || len > bytes.len() {
                return Err(bad(&format!("claims {len} bytes, but {} remain", bytes.len())));
            }
            let record = bytes[space + 1..len]
                .strip_suffix(b"\n")
                .ok_or_else(|| bad("does not end with a newline where its length says"))?;
            bytes = &bytes[len..];
            at += len;
            let eq = record.iter().position(|&b| b == b'=').ok_or_else(|| bad("has no '='"))?;
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            // Go's validPAXRecord: a key, and no NUL in it or in a name.
            let names_a_path = matches!(key, b"path" | b"linkpath" | b"uname" | b"gname");
            if key.is_empty() || key.contains(&0) || (names_a_path && value.contains(&0)) {
                return Err(bad("has an empty key or a NUL byte"));
            }
            match key {
                b"path" => pax.path = Some(hold(value, "path")),
                b"linkpath" => pax.link = Some(hold(value, "linkpath")),
                b"GNU.sparse.name" => pax.sparse_name = Some(hold(value, "sparse name")),
                b"GNU.sparse.major" => pax.sparse_version.0 = Some(value.to_vec()),
                b"GNU.sparse.minor" => pax.sparse_version.1 = Some(value.to_vec()),
                b"GNU.sparse.map" => pax.sparse_map |= !value.is_empty(),
                b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => pax.sparse_map = true,
                // Numbers and times: nothing to scan.
                b"mtime" | b"atime" | b"ctime" | b"uid" | b"gid" => {}
                _ if key.starts_with(b"GNU.sparse.") => {}
                b"size" => {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|s| s.parse::<u64>().ok())
                        .filter(|&n| i64::try_from(n).is_ok());
                    // The value itself is not shown: it is the archive's text, not ours.
                    pax.size =
                        Some(size.ok_or_else(|| bad("has a size that is not a count of bytes"))?);
                }
                _ => {
                    pax.other.extend_from_slice(key);
                    pax.other.push(b'=');
                    // One record per line: a value's own newlines are not record ends.
                    pax.other.extend(value.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
                    pax.other.push(b'\n');
                }
            }
        }
        Ok(())
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// The current entry's data.
#[derive(Debug)]
pub struct Data<'a, R> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        if r.remaining == 0 {
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(r.remaining).unwrap_or(usize::MAX));
        let n = r.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated tar stream: an entry's data ends early",
            ));
        }
        r.remaining -= n as u64;
        r.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (Vec<u8>, RawKind, Vec<u8>);

    #[test]
    fn checksum_unsigned_and_signed() {
        // Bytes >= 0x80 in the name and the checksum field itself: both the
        // POSIX (unsigned) and the old signed-char sums are accepted, and
        // nothing else.
        let mut block = [0u8; BLOCK];
        for (i, b) in block.iter_mut().enumerate() {
            *b = if i % 16 == 0 { 0xe9 } else { b'a' + (i % 26) as u8 };
        }
        let naive = |block: &[u8; BLOCK], signed: bool| -> i64 {
            let field = |i: usize| (148..156).contains(&i);
            let b = |i: usize, v: u8| {
                if field(i) {
                    i64::from(b' ')
                } else if signed {
                    i64::from(v as i8)
                } else {
                    i64::from(v)
                }
            };
            block.iter().enumerate().map(|(i, &v)| b(i, v)).sum()
        };
        for signed in [false, true] {
            let want = naive(&block, signed);
            let text = format!("{want:06o}\0 ");
            block[148..156].copy_from_slice(text.as_bytes());
            assert!(want > 0 && checksum_ok(&block), "signed {signed}: {want}");
            block[0] ^= 1;
            assert!(!checksum_ok(&block));
            block[0] ^= 1;
        }
    }

    #[test]
    fn byte_sum_of_any_block() {
        // Every byte at its largest value fills the 16-bit lanes most.
        for fill in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let block = [fill; BLOCK];
            assert_eq!(byte_sum(&block), u64::from(fill) * BLOCK as u64);
        }
        let mut block = [0u8; BLOCK];
        for (i, b) in block.iter_mut().enumerate() {
            *b = (i * 37 % 251) as u8;
        }
        assert_eq!(byte_sum(&block), block.iter().map(|&b| u64::from(b)).sum::<u64>());
    }

    fn header(name: &[u8], flag: u8, size: u64) -> [u8; BLOCK] {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        h.set_size(size);
        h.set_mode(0o644);
        h.as_old_mut().linkflag = [flag];
        h.set_cksum();
        *h.as_bytes()
    }

    fn entries(bytes: &[u8]) -> (Vec<Parsed>, Result<End, TarError>) {
        let mut r = TarReader::new(bytes, TarLimits { max_name: 64, max_pax: 256, keep_stray: 0 });
        let mut out = Vec::new();
        loop {
            match r.next_entry() {
                Ok(Next::Entry(e)) => {
                    let mut data = Vec::new();
                    r.data().read_to_end(&mut data).unwrap();
                    out.push((e.name, e.kind, data));
                }
                Ok(Next::End(end)) => return (out, Ok(end)),
                Err(e) => return (out, Err(e)),
            }
        }
    }

    fn padded(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.resize(data.len() + padding(data.len() as u64) as usize, 0);
        v
    }

    #[test]
    fn numbers() {
        assert_eq!(numeric(b"0000644\0"), Some(0o644));
        assert_eq!(numeric(b"  12 \0"), Some(0o12));
        assert_eq!(numeric(b"\0\0\0"), Some(0));
        assert_eq!(numeric(b"12x4\0"), None);
        assert_eq!(numeric(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(numeric(&[0xff, 0xff, 0xff]), None, "negative");
        assert_eq!(numeric(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn reads_files_and_header_only_types() {
        let mut tar = Vec::new();
        tar.extend(header(b"a", b'0', 3));
        tar.extend(padded(b"abc"));
        // A symlink whose size field lies: the next header follows directly.
        tar.extend(header(b"l", b'2', 512));
        tar.extend(header(b"b", b'0', 2));
        tar.extend(padded(b"hi"));
        tar.extend(header(b"v7dir/", b'\0', 0));
        tar.extend([0u8; 1024]);
        let (got, end) = entries(&tar);
        assert!(matches!(end, Ok(End::Marker)));
        let names: Vec<_> = got.iter().map(|(n, k, d)| (n.as_slice(), *k, d.as_slice())).collect();
        assert_eq!(
            names,
            [
                (&b"a"[..], RawKind::File, &b"abc"[..]),
                (b"l", RawKind::Symlink, b""),
                (b"b", RawKind::File, b"hi"),
                (b"v7dir/", RawKind::Dir, b""),
            ]
        );
    }

    #[test]
    fn long_names_are_bounded_and_the_last_wins() {
        let mut tar = Vec::new();
        for name in [&b"first"[..], b"second"] {
            tar.extend(header(b"././@LongLink", b'L', name.len() as u64));
            tar.extend(padded(name));
        }
        tar.extend(header(b"short", b'0', 1));
        tar.extend(padded(b"x"));
        let huge = vec![b'a'; 1000];
        tar.extend(header(b"././@LongLink", b'L', huge.len() as u64));
        tar.extend(padded(&huge));
        tar.extend(header(b"short2", b'0', 1));
        tar.extend(padded(b"y"));
        let mut r =
            TarReader::new(&tar[..], TarLimits { max_name: 64, max_pax: 256, keep_stray: 0 });
        let Ok(Next::Entry(e)) = r.next_entry() else { panic!() };
        assert_eq!(e.name, b"second");
        assert_eq!(e.notes.len(), 1);
        let Ok(Next::Entry(e)) = r.next_entry() else { panic!() };
        assert!(e.unread.unwrap().contains("1000 bytes exceeds the 64-byte limit"));
        assert!(matches!(r.next_entry(), Ok(Next::End(End::NoMarker))));
    }

    #[test]
    fn stops_on_a_bad_header_and_says_where() {
        let mut tar = Vec::new();
        tar.extend(header(b"a", b'0', 1));
        tar.extend(padded(b"x"));
        let mut bad = header(b"b", b'0', 1);
        bad[0] = b'c';
        tar.extend(bad);
        let (got, end) = entries(&tar);
        assert_eq!(got.len(), 1);
        let e = end.unwrap_err();
        assert_eq!(e.offset, 1024);
        assert!(e.reason.contains("checksum"));
        // Plain text is not a tar.
        let (got, end) = entries(b"just some text that is not a tar archive at all\n");
        assert!(got.is_empty());
        assert!(end.is_err());
    }

    #[test]
    fn missing_end_blocks_and_padding_is_an_ordinary_end() {
        let mut tar = Vec::new();
        tar.extend(header(b"a", b'0', 3));
        tar.extend(b"abc");
        let (got, end) = entries(&tar);
        assert_eq!(got.len(), 1);
        assert!(matches!(end, Ok(End::NoMarker)));
        // Data cut short is not.
        let mut tar = Vec::new();
        tar.extend(header(b"a", b'0', 3000));
        tar.extend([b'z'; 100]);
        let mut r = TarReader::new(&tar[..], TarLimits::default());
        let Ok(Next::Entry(_)) = r.next_entry() else { panic!() };
        assert!(r.data().read_to_end(&mut Vec::new()).is_err());
    }

    fn pax_block(flag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = header(b"PaxHeader", flag, body.len() as u64).to_vec();
        v.extend(padded(body));
        v
    }

    #[test]
    fn pax_headers_replace_and_globals_end_them() {
        // A second `x` replaces the first; a `g` drops what came before it (Go's reader).
        let mut tar = pax_block(b'x', b"18 path=from/pax1\n");
        tar.extend(pax_block(b'x', b"12 comment=\n"));
        tar.extend(header(b"own", b'0', 0));
        tar.extend(pax_block(b'x', b"18 path=from/pax2\n"));
        tar.extend(header(b"././@LongLink", b'L', 4));
        tar.extend(padded(b"long"));
        tar.extend(pax_block(b'g', b"12 comment=\n"));
        tar.extend(header(b"own2", b'0', 0));
        let (got, end) = entries(&tar);
        assert!(end.is_ok(), "{end:?}");
        let names: Vec<&[u8]> = got.iter().map(|(n, _, _)| n.as_slice()).collect();
        assert_eq!(names, [&b"own"[..], b"own2"]);
    }

    /// One PAX record, `"<length> key=value\n"`, its length counting its own digits.
    fn pax_record(k: &str, v: &str) -> String {
        let body = format!(" {k}={v}\n");
        let mut n = body.len() + 1;
        while n != body.len() + n.to_string().len() {
            n = body.len() + n.to_string().len();
        }
        format!("{n}{body}")
    }

    #[test]
    fn the_sparse_name_names_sparse_files_only() {
        let rec = pax_record;
        let name_of = |records: &str| {
            let mut tar = pax_block(b'x', records.as_bytes());
            tar.extend(header(b"own", b'0', 0));
            let (got, end) = entries(&tar);
            assert!(end.is_ok(), "{end:?}");
            String::from_utf8(got[0].0.clone()).unwrap()
        };
        let named = rec("GNU.sparse.name", "sparse/name");
        assert_eq!(name_of(&named), "own", "no sparse version or map: not a sparse file");
        let v10 = rec("GNU.sparse.major", "1") + &rec("GNU.sparse.minor", "0");
        assert_eq!(name_of(&(named.clone() + &v10)), "sparse/name");
        let v99 = rec("GNU.sparse.major", "9") + &rec("GNU.sparse.minor", "9");
        assert_eq!(name_of(&(named.clone() + &v99)), "own", "an unknown version");
        let map = rec("GNU.sparse.map", "0,1");
        let path = rec("path", "pax/path");
        assert_eq!(name_of(&(path.clone() + &named + &map)), "sparse/name");
        assert_eq!(name_of(&(path + &named)), "pax/path");
    }

    #[test]
    fn malformed_pax_records_stop_the_archive() {
        for body in [
            &b"99 path=x\n"[..],
            b"x path=a\n",
            b"10 patha\n\n",
            b"9 path=ab",
            b"9 size=x\n",
            b"10 size=-1\n",
            b"nospace",
            b"9 =value\n",
            b"17 path=a\0hidden\n",
        ] {
            let mut tar = pax_block(b'x', body);
            tar.extend(header(b"after", b'0', 0));
            let (got, end) = entries(&tar);
            let e = end.expect_err(&String::from_utf8_lossy(body));
            assert!(got.is_empty() && e.reason.contains("invalid PAX extended header"), "{e}");
            assert_eq!(e.offset, 0);
        }
    }

    #[test]
    fn non_zero_padding_is_reported_once_with_where_it_starts() {
        let mut tar = header(b"a", b'0', 1).to_vec();
        tar.extend(b"xSECRET");
        tar.resize(1024, 0);
        tar.extend(header(b"b", b'0', 1));
        tar.extend(padded(b"y"));
        let mut r = TarReader::new(&tar[..], TarLimits::default());
        assert!(matches!(r.next_entry(), Ok(Next::Entry(_))));
        assert_eq!(r.take_stray_padding(), None);
        assert!(matches!(r.next_entry(), Ok(Next::Entry(_))));
        assert_eq!(r.take_stray_padding(), Some((6, 513)));
        assert!(matches!(r.next_entry(), Ok(Next::End(End::NoMarker))));
        assert_eq!(r.take_stray_padding(), None, "zero padding is padding");
    }

    #[test]
    fn pax_path_size_and_budget() {
        let rec = pax_record;
        let pax = rec("path", "from/pax") + &rec("size", "2");
        let mut tar = Vec::new();
        tar.extend(header(b"PaxHeader", b'x', pax.len() as u64));
        tar.extend(padded(pax.as_bytes()));
        tar.extend(header(b"short", b'0', 0));
        tar.extend(padded(b"ok"));
        let (got, end) = entries(&tar);
        assert!(end.is_ok(), "{end:?}");
        assert_eq!(got, [(b"from/pax".to_vec(), RawKind::File, b"ok".to_vec())]);
        let big = rec("comment", &"c".repeat(400));
        let mut tar = Vec::new();
        tar.extend(header(b"PaxHeader", b'x', big.len() as u64));
        tar.extend(padded(big.as_bytes()));
        tar.extend(header(b"short", b'0', 0));
        let mut r =
            TarReader::new(&tar[..], TarLimits { max_name: 64, max_pax: 256, keep_stray: 0 });
        let Ok(Next::Entry(e)) = r.next_entry() else { panic!() };
        assert!(e.unread.is_some());
    }
}
