//! One file's content, start to finish: recognise nested archives by their
//! first bytes and descend into them, otherwise stream the bytes through
//! the pattern engine and, for small files, the credential-file detectors.

use std::io::{self, Read};

use super::cap::HitCap;
use super::decode::{self, decode_utf16};
use super::git::{self, Collector, Item, names::BlobNames};
use super::names::{Link, NameScan};
use super::nested::gzip::Inflater;
use super::nested::{ArchiveLimits, Head, MemberLink, MemberName, Members};
use super::packages::PackageRoots;
use super::stream::{BUFFER, fill};
use super::{Hit, Scanner, dedupe, file, filter, nested};

/// UTF-16 files are decoded whole; larger ones are scanned only as raw bytes.
const MAX_UTF16: u64 = 32 << 20;

/// `Some(big_endian)` when the bytes start with a UTF-16 byte-order mark.
fn utf16_bom(head: &[u8]) -> Option<bool> {
    match head {
        [0xff, 0xfe, b, 0, ..] if *b != 0 => Some(false),
        [0xfe, 0xff, 0, b, ..] if *b != 0 => Some(true),
        _ => None,
    }
}

/// `Some((big_endian, bom_length))` for UTF-16 text: a byte-order mark, or
/// (without one) the NUL pattern of the first 4 KiB.
fn utf16_text(head: &[u8]) -> Option<(bool, usize)> {
    if let Some(be) = utf16_bom(head) {
        return Some((be, 2));
    }
    let sample = &head[..head.len().min(4096) & !1];
    // UTF-16 text has a NUL in most code units: a sample without one (most
    // files) is not, and one SIMD search says so before the pair count.
    memchr::memchr(0, sample)?;
    let be = decode::utf16_pattern(sample)?;
    // Binary data with many small 16-bit values has the same NUL pattern: require text.
    decode::is_text(decode_utf16(sample, be).as_bytes()).then_some((be, 0))
}

/// Limits on nested archives, so a bomb stops with a note instead of
/// exhausting time, memory or disk.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Archive levels opened below the layer (a `.tar.gz` counts once).
    pub max_depth: usize,
    /// Members read per archive.
    pub max_entries: usize,
    /// Bytes expanded out of the archives inside one layer file.
    pub max_expanded: u64,
    /// Largest expanded/compressed ratio accepted for a member.
    pub max_ratio: u64,
    /// Zip archives up to this size are read in memory; larger ones are spooled to a temp file.
    pub zip_in_memory: u64,
    /// Bounds on git object stores found in layers.
    pub git: git::Limits,
    /// Findings kept per rule in one file (or archive member, or config
    /// string); the rest are counted and reported as one note.
    pub max_hits_per_rule: usize,
    /// Candidates one rule may examine (captures, validator, filters) in one
    /// file; beyond that its matches are counted, not examined.
    pub max_candidates_per_rule: usize,
    /// Findings kept per run (per layer while walking, then per run); the
    /// rest are counted in the summary. A kept hit and its finding cost
    /// about 2.5 KB, and each worker keeps up to twice this while walking:
    /// at 50,000 a layer of 150k one-hit files peaked at 211 MB with two
    /// threads, over the 200 MB budget; at 25,000 it is 149 MB.
    pub max_findings: usize,
}

impl Limits {
    /// The limits nested reading applies itself.
    pub fn archive(&self) -> ArchiveLimits {
        ArchiveLimits {
            max_entries: self.max_entries,
            max_ratio: self.max_ratio,
            zip_in_memory: self.zip_in_memory,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 3,
            max_entries: 100_000,
            max_expanded: 1 << 30,
            max_ratio: 200,
            zip_in_memory: 32 << 20,
            git: git::Limits::default(),
            max_hits_per_rule: 100,
            max_candidates_per_rule: 10_000,
            max_findings: 25_000,
        }
    }
}

/// Which part of an entry's header held a secret: the name scan's, named by a [`FileHit`].
pub use super::names::NameField;

/// A hit and where inside nested archives it was.
#[derive(Debug, Clone)]
pub struct FileHit {
    /// Member path inside nested archives, levels joined with `!`.
    pub inner_path: Option<String>,
    /// Set when the secret is in the entry's name or link target rather
    /// than its bytes (see `scan::names`); offset is then within that text.
    pub name: Option<NameField>,
    /// The hit (offset and line are within the innermost member).
    pub hit: Hit,
}

/// The per-file scanning state of one worker.
#[derive(Debug)]
pub struct ContentScanner<'s> {
    /// The detectors.
    pub scanner: &'s Scanner,
    /// Nested archive limits.
    pub limits: Limits,
    /// Expansion budget left for the current top-level file.
    pub budget: u64,
    /// Problems met inside nested archives that leave nothing unread (a
    /// corrupt member, scanned as far as it goes), and files whose findings
    /// went over the per-rule budget.
    pub notes: Vec<String>,
    /// Hits dropped by the per-file budget so far (counted, not kept).
    pub capped: u64,
    /// Bytes left unread because a limit was reached (depth, members,
    /// expansion budget, ratio), each naming the file and the limit: the
    /// layer's scan is incomplete.
    pub unread: Vec<String>,
    /// Archives found to be third-party packages (npm tarballs, wheels,
    /// library jars), and the jars an application jar's manifest depends on.
    pub packages: PackageRoots,
    first_file_rule: usize,
    /// The file rule whose values (a Kubernetes Secret's data) are decoded and
    /// scanned again; looked up once, not per file (a search of every rule's id).
    kube_rule: Option<usize>,
    /// Window buffers kept for reuse, so no buffer is zeroed per file or member.
    buffers: Vec<Vec<u8>>,
    /// gzip inflaters kept for reuse: setting one up costs as much as
    /// inflating a small `.gz` file.
    inflaters: Vec<Inflater>,
}

impl<'s> ContentScanner<'s> {
    /// A worker's content scanner.
    pub fn new(scanner: &'s Scanner, limits: Limits) -> Self {
        let first_file_rule =
            scanner.rule_index("file-docker-config-auth").expect("file rules are always present");
        ContentScanner {
            scanner,
            limits,
            budget: limits.max_expanded,
            notes: Vec::new(),
            capped: 0,
            unread: Vec::new(),
            packages: PackageRoots::default(),
            first_file_rule,
            kube_rule: scanner.rule_index("file-kubernetes-secret"),
            buffers: Vec::new(),
            inflaters: Vec::new(),
        }
    }

    /// A `BUFFER`-byte window buffer: a kept one, or a new one (zeroed
    /// once, when first made). Give it back with [`ContentScanner::give_buffer`].
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        let mut b = self.buffers.pop().unwrap_or_default();
        if b.len() != BUFFER {
            b.resize(BUFFER, 0);
        }
        b
    }

    /// Keeps a buffer from [`ContentScanner::take_buffer`] for the next file.
    pub(crate) fn give_buffer(&mut self, buffer: Vec<u8>) {
        // A few per nesting level are enough; more would only hold memory.
        if self.buffers.len() < 8 {
            self.buffers.push(buffer);
        }
    }

    /// Scans one file of a layer at image path `path`.
    ///
    /// # Errors
    /// Only errors of `reader` itself (the layer stream); problems inside
    /// nested archives become [`ContentScanner::notes`].
    pub fn scan_file(&mut self, path: &str, reader: &mut dyn Read) -> io::Result<Vec<FileHit>> {
        self.budget = self.limits.max_expanded;
        let (notes, unread) = (self.notes.len(), self.unread.len());
        let mut scratch = self.take_buffer();
        let mut result = self.scan_member(path, None, 0, reader, &mut scratch);
        self.give_buffer(scratch);
        if let Ok(hits) = &mut result {
            drop_names_seen_in_content(hits);
            self.redact_messages(hits, notes, unread);
        }
        result
    }

    /// Redacts the file's own secrets in the messages its scan added (from
    /// index `notes` and `unread` on): a member's name in a crafted archive
    /// can hold anything, the file's content included, and messages name
    /// members.
    fn redact_messages(&mut self, hits: &[FileHit], notes: usize, unread: usize) {
        if hits.is_empty() || (self.notes.len() == notes && self.unread.len() == unread) {
            return;
        }
        let redactor = crate::redact::Redactor::new(hits.iter().map(|h| &h.hit.secret));
        for m in self.notes[notes..].iter_mut().chain(&mut self.unread[unread..]) {
            if let std::borrow::Cow::Owned(clean) = redactor.apply(m) {
                *m = clean;
            }
        }
    }

    /// Reads the git object stores `stores` collected and scans each blob,
    /// named `<commit>:<path>` (or its id) inside the store file that held
    /// it; files that are not git are scanned as they are. Returns the hits
    /// by image path, the errors (parts of stores left unread), and the
    /// names of blobs this layer's commits reach but other layers hold.
    pub fn scan_git_stores(
        &mut self,
        stores: Collector,
    ) -> (Vec<(String, FileHit)>, Vec<String>, BlobNames) {
        let mut hits = Vec::new();
        let mut failures = Vec::new();
        let mut scratch = Vec::new();
        let (errors, names) = stores.finish(&mut |item| {
            let (path, found) = match item {
                Item::Blob(path, blob) => {
                    self.budget = self.limits.max_expanded;
                    // The store is one archive level: archives inside blobs nest below it.
                    let mut found = self.scan_member(
                        path,
                        Some(&blob.name),
                        1,
                        &mut blob.data.as_slice(),
                        &mut scratch,
                    );
                    if let Ok(hits) = &mut found {
                        drop_names_seen_in_content(hits);
                    }
                    (path, found)
                }
                Item::Plain(path, reader) => (path, self.scan_file(path, reader)),
            };
            match found {
                Ok(found) => hits.extend(found.into_iter().map(|h| (path.to_owned(), h))),
                Err(e) => failures.push(format!("{path}: {e}")),
            }
        });
        failures.extend(errors);
        (hits, failures, names)
    }

    /// Records what the per-file budget dropped: one note per rule, with the
    /// count; and where the decoding budget ran out, if it did.
    fn note_capped(&mut self, path: &str, inner: Option<&str>, cap: &HitCap) {
        if let Some(at) = cap.decode.stopped_at {
            let at_file = inner.map_or_else(|| path.to_owned(), |i| format!("{path}!{i}"));
            self.notes.push(format!(
                "{at_file}: decoding budget spent ({} decoded bytes, {} runs per file): encoded values from byte {at} on were scanned only as stored, not decoded",
                decode::MAX_DECODED,
                decode::MAX_RUNS
            ));
        }
        for (rule, n) in cap.dropped() {
            self.capped += n;
            let at = inner.map_or_else(|| path.to_owned(), |i| format!("{path}!{i}"));
            self.notes.push(format!(
                "{at}: {n} more {} matches not listed (budget per rule and file: {} findings, {} candidates examined)",
                self.scanner.rule(rule).id,
                cap.max(),
                cap.max_examined()
            ));
        }
    }

    /// The pattern scan of a stream; a whole file already in `head` is
    /// scanned once per run (see [`memo`](super::memo)).
    fn scan_stream_once(
        &mut self,
        head: Head<'_>,
        reader: &mut dyn Read,
    ) -> io::Result<(Vec<Hit>, HitCap)> {
        let Head { buf, filled, eof } = head;
        let mut cap = HitCap::with_examined(
            self.limits.max_hits_per_rule,
            self.limits.max_candidates_per_rule,
        );
        let memo = &self.scanner.memo;
        let key = match eof.then(|| memo.get(&buf[..filled], &cap)) {
            Some(Ok((hits, kept))) => {
                self.scanner.suppressed.set_aside.add(kept.set_aside);
                return Ok((hits, kept));
            }
            Some(Err(key)) => key,
            None => None,
        };
        let hits = self.scanner.scan_stream(buf, filled, eof, reader, &mut cap)?;
        if let Some(key) = key {
            // `scan_stream` leaves a buffer that holds the whole file as it was.
            memo.put(key, &buf[..filled], &hits, &cap);
        }
        Ok((hits, cap))
    }
}

/// Drops the hits in archive members' names whose secret the file's content holds too
/// (a `.deb`'s `md5sums` lists its files, an RPM header names them, a zip's local headers
/// are scanned as bytes where the central directory leaves them out): the secret is
/// reported once, where the content holds it.
fn drop_names_seen_in_content(hits: &mut Vec<FileHit>) {
    if !hits.iter().any(|h| h.name.is_some()) {
        return;
    }
    let content: std::collections::HashSet<Vec<u8>> =
        hits.iter().filter(|h| h.name.is_none()).map(|h| h.hit.secret.expose().to_vec()).collect();
    hits.retain(|h| h.name.is_none() || !content.contains(h.hit.secret.expose()));
}

/// Members of nested archives come back here: this is the only link between
/// the content scanner and [`nested`], which never names it.
impl<'s> Members for ContentScanner<'s> {
    type Hit = FileHit;
    type Names = NameScan<'s>;

    fn member_names(&self) -> NameScan<'s> {
        NameScan::capped(self.scanner, self.limits.max_hits_per_rule)
    }

    fn add_member_name(names: &mut NameScan<'s>, member: &MemberName<'_>) {
        let link = match member.link {
            MemberLink::None => Link::None,
            MemberLink::Symlink(t) => Link::Symlink(t),
            MemberLink::Hardlink(t) => Link::Hardlink(t),
        };
        // The ordinal names no layer entry here: the member's path does.
        names.add(member.path, 0, member.is_dir, link, member.records);
    }

    fn member_name_hits(
        &mut self,
        names: NameScan<'s>,
        path: &str,
        inner: Option<&str>,
    ) -> Vec<FileHit> {
        let (hits, cap) = names.finish_capped();
        let archive = inner.map_or_else(|| path.to_owned(), |i| format!("{path}!{i}"));
        for (rule, n) in cap.dropped() {
            self.capped += n;
            self.notes.push(format!(
                "{archive}: {n} more {} matches in member names not listed (budget per rule and archive: {} findings)",
                self.scanner.rule(rule).id,
                cap.max(),
            ));
        }
        hits.into_iter()
            .map(|h| {
                let member = inner.map_or_else(|| h.path.clone(), |i| format!("{i}!{}", h.path));
                FileHit { inner_path: Some(member), name: Some(h.field), hit: h.hit }
            })
            .collect()
    }

    fn archive_limits(&self) -> ArchiveLimits {
        self.limits.archive()
    }

    fn budget(&mut self) -> &mut u64 {
        &mut self.budget
    }

    fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn unread(&mut self, what: String) {
        self.unread.push(what);
    }

    fn packages(&mut self) -> &mut PackageRoots {
        &mut self.packages
    }

    fn take_buffer(&mut self) -> Vec<u8> {
        ContentScanner::take_buffer(self)
    }

    fn give_buffer(&mut self, buffer: Vec<u8>) {
        ContentScanner::give_buffer(self, buffer);
    }

    fn take_inflater(&mut self) -> Inflater {
        self.inflaters.pop().unwrap_or_default()
    }

    fn give_inflater(&mut self, inflater: Inflater) {
        // One per nesting level is enough.
        if self.inflaters.len() < 4 {
            self.inflaters.push(inflater);
        }
    }

    /// Scans a file or archive member; `inner` is its path inside archives.
    fn scan_member(
        &mut self,
        path: &str,
        inner: Option<&str>,
        depth: usize,
        reader: &mut dyn Read,
        scratch: &mut Vec<u8>,
    ) -> io::Result<Vec<FileHit>> {
        if scratch.len() != BUFFER {
            scratch.resize(BUFFER, 0);
        }
        let filled = fill(reader, scratch)?;
        let eof = filled < scratch.len();
        if let Some(kind) = crate::sniff::file_format(&scratch[..filled]) {
            // A database or a pyc opens no further level: read it at any depth.
            if depth < self.limits.max_depth || !kind.nests() {
                let mut chained = io::Cursor::new(&scratch[..filled]).chain(reader);
                return nested::scan(self, kind, path, inner, depth, &mut chained);
            }
            let at = inner.map_or_else(|| path.to_owned(), |i| format!("{path}!{i}"));
            self.unread.push(format!(
                "{at}: {kind:?} archive nested deeper than the nested-archive depth limit ({} levels) not opened; only its raw bytes were scanned",
                self.limits.max_depth
            ));
        }
        if let Some((big_endian, bom)) = utf16_text(&scratch[..filled]) {
            // Windows tools write UTF-16 (.reg exports, PowerShell output, some
            // .config files), often without a BOM: no keyword matches its bytes
            // until it is decoded.
            let mut raw = scratch[..filled].to_vec();
            (&mut *reader).take(MAX_UTF16).read_to_end(&mut raw)?;
            let mut text = decode_utf16(&raw[bom..], big_endian).into_bytes();
            let n = fill(&mut text.as_slice(), scratch)?;
            let rest = text.split_off(n.min(text.len()));
            let head = Head { buf: scratch, filled: n, eof: rest.is_empty() };
            let mut hits = self.scan_plain(path, inner, head, &mut rest.as_slice())?;
            let word = if big_endian { "utf16be" } else { "utf16le" };
            for h in &mut hits {
                h.hit.decoding.insert(0, word.to_owned());
            }
            // The raw bytes too: a file may only look like UTF-16. Their UTF-16
            // strings are the text just decoded whole: not reported twice.
            let mut raw_scratch = self.take_buffer();
            let m = fill(&mut raw.as_slice(), &mut raw_scratch)?;
            let head = Head { buf: &mut raw_scratch, filled: m, eof: true };
            let raw_hits = self.scan_plain(path, inner, head, &mut io::empty());
            self.give_buffer(raw_scratch);
            hits.extend(raw_hits?.into_iter().filter(|h| {
                !h.hit.decoding.first().is_some_and(|d| d == "utf16le" || d == "utf16be")
            }));
            return Ok(hits);
        }
        self.scan_plain(path, inner, Head { buf: scratch, filled, eof }, reader)
    }

    /// Scans bytes that are not an archive.
    fn scan_plain(
        &mut self,
        path: &str,
        inner: Option<&str>,
        head: Head<'_>,
        reader: &mut dyn Read,
    ) -> io::Result<Vec<FileHit>> {
        let Head { buf: scratch, filled, eof } = head;
        let (mut hits, mut cap) =
            self.scan_stream_once(Head { buf: scratch, filled, eof }, reader)?;
        if eof && filled <= file::MAX_CREDENTIAL_FILE {
            let as_path: std::borrow::Cow<'_, str> = match inner {
                Some(i) => {
                    format!("/{}", i.rsplit('!').next().unwrap_or(i).trim_start_matches('/')).into()
                }
                None => path.into(),
            };
            let mut found = file::detect(
                &as_path,
                &scratch[..filled],
                self.first_file_rule,
                &self.scanner.suppressed.file_placeholders,
            );
            // Not counted again: the pattern rules see (and count) the same bytes.
            if !self.scanner.reports_examples() {
                found.retain(|h| filter::known_example(h.secret.expose()).is_none());
            }
            // Decoded Secret values may be credentials a rule recognises: scan them too,
            // placed where their base64 form is.
            let kube = self.kube_rule;
            let decoded: Vec<Hit> = found
                .iter()
                .filter(|h| Some(h.rule) == kube)
                .flat_map(|h| {
                    self.scanner.scan_bytes(h.secret.expose()).into_iter().map(|inner| {
                        let mut decoding = vec!["base64".to_owned()];
                        decoding.extend(inner.decoding.iter().cloned());
                        Hit { offset: h.offset, line: h.line, decoding, ..inner }
                    })
                })
                .collect();
            found.extend(decoded);
            if !found.is_empty() {
                cap.admit(found, &mut hits);
                hits = dedupe(self.scanner, hits);
            }
        }
        self.note_capped(path, inner, &cap);
        Ok(hits
            .into_iter()
            .map(|hit| FileHit { inner_path: inner.map(str::to_owned), name: None, hit })
            .collect())
    }
}
