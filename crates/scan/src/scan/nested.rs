//! Archives inside layer files: zip (jar, war, ear, whl, apk…), tar, the
//! archives of system packages (`ar` for `.deb`, cpio, RPM: see
//! [`packages`]), and gzip, xz, bzip2, zstd and lz4 streams (a `.tar.gz`,
//! `.tar.xz` or `.cpio.gz` is one level), and lzip. A file in a compression strata cannot
//! decompress (7z, rar, Unix `compress`) is scanned as raw bytes and recorded as not read. Members are scanned like files, with
//! their path inside the archive joined by `!` for each level. SQLite
//! databases are opened the same way, one member per table
//! (`table <name>`, see [`super::sqlite`]); a compiled Python or Java file
//! is read as its string constants (see [`super::pyc`] and
//! [`super::class`]). What a file is comes from
//! its magic bytes, judged by `strata-core`'s `sniff` (the one table of
//! them, shared with the image layer), never from its name.
//!
//! This module never names the content scanner: members go back to the
//! scanner that found the archive through the [`Members`] trait (which the
//! content scanner implements), so the dependency runs one way, content →
//! nested. Tar and zip members go through one loop (`scan_members`) over a
//! `MemberSource`.
//!
//! Members' names (and a nested tar's link targets and header records) are
//! scanned too, as a layer's entry names are: each source hands every
//! member's name, a directory's or link's included, to a name scan the
//! content scanner keeps per archive ([`Members::member_names`]), and its
//! hits come back named after the member.
//!
//! Every expanded byte is charged to a budget, and members whose expansion
//! ratio is absurd are skipped: a bomb ends with an "incomplete" record
//! naming the file and the limit (the run exits 2), not an OOM.

use std::io::{self, BufReader, Read, Seek};

pub(crate) mod gzip;
mod lz4;
mod lzip;
mod packages;
mod zip_methods;
mod zip_outside;

use super::packages::{PackageRoots, archive, java};
use super::stream::fill;
use crate::image::pipe::Fused;
use crate::image::tarstream::{Next, RawKind, TarError, TarLimits, TarReader};
use crate::image::{compression, outside};
use crate::sniff::{Format, looks_like_tar};

/// Marks errors raised by the limits, so they become notes, not failures.
#[derive(Debug)]
struct LimitHit(String);

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitHit {}

/// A reader that stops once `remaining` bytes were read.
struct Budgeted<'a, R> {
    inner: R,
    remaining: &'a mut u64,
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > *self.remaining {
            return Err(io::Error::other(LimitHit(
                "archive bomb stopped at the expansion limit (bytes expanded per layer file)"
                    .into(),
            )));
        }
        *self.remaining -= n as u64;
        Ok(n)
    }
}

/// Compressed bytes a [`Kept`] reader keeps: more than any decoder here
/// reads ahead of what it decoded (8 KiB buffers).
const KEPT_TAIL: usize = 64 << 10;

/// A reader that keeps the last [`KEPT_TAIL`] bytes pulled through it. When
/// a decoder fails (a corrupt member, bytes after the last frame), those
/// bytes and the rest of the stream hold whatever it did not decode.
struct Kept<R> {
    inner: R,
    /// A ring once full: the oldest byte is at `at`.
    ring: Vec<u8>,
    at: usize,
}

impl<R> Kept<R> {
    fn new(inner: R) -> Self {
        Kept { inner, ring: Vec::new(), at: 0 }
    }

    /// The kept bytes, oldest first.
    fn tail(&self) -> Vec<u8> {
        [&self.ring[self.at..], &self.ring[..self.at]].concat()
    }
}

impl<R: Read> Read for Kept<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut data = &buf[..n];
        if data.len() >= KEPT_TAIL {
            data = &data[data.len() - KEPT_TAIL..];
        }
        // Grow to the limit, then overwrite the oldest bytes.
        let grow = data.len().min(KEPT_TAIL - self.ring.len());
        self.ring.extend_from_slice(&data[..grow]);
        data = &data[grow..];
        while !data.is_empty() {
            let k = data.len().min(KEPT_TAIL - self.at);
            self.ring[self.at..self.at + k].copy_from_slice(&data[..k]);
            self.at = (self.at + k) % KEPT_TAIL;
            data = &data[k..];
        }
        Ok(n)
    }
}

/// The limits nested reading applies itself (the content scanner's own
/// limits, seen from here).
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Members read per archive.
    pub max_entries: usize,
    /// Largest expanded/compressed ratio accepted for a member.
    pub max_ratio: u64,
    /// Zip archives up to this size are read in memory; larger ones are spooled to a temp file.
    pub zip_in_memory: u64,
}

/// What a member adds beside its path (see [`MemberName`]).
#[derive(Debug, Clone, Copy)]
pub enum MemberLink<'a> {
    /// Nothing: a file, a directory, a device.
    None,
    /// A nested tar's symbolic link: its target, as written.
    Symlink(&'a str),
    /// A nested tar's hard link: the member it names.
    Hardlink(&'a str),
}

/// One member's header text, for the name scan: its path inside the archive
/// (as its file is named in `inner_path`), whether it is a directory, its link
/// target and other header text (a nested tar's `KEY=VALUE` records).
#[derive(Debug, Clone, Copy)]
pub struct MemberName<'a> {
    /// The member's path inside its archive (no `./` before it, no `/` after a directory).
    pub path: &'a str,
    /// True for a directory.
    pub is_dir: bool,
    /// Its link target, if it is a link.
    pub link: MemberLink<'a>,
    /// Other header text, one `KEY=VALUE` per line (empty for most members).
    pub records: &'a [u8],
}

/// What reading an archive's members needs from the scanner that found the
/// archive: a member is scanned like a file (and may be an archive again,
/// one level deeper), its name is scanned as text, and what could not be
/// read is recorded there.
pub trait Members {
    /// What scanning a member yields.
    type Hit;
    /// The scan of one archive's member names.
    type Names;
    /// A new scan for the member names of one archive.
    fn member_names(&self) -> Self::Names;
    /// Adds one member's name to an archive's name scan.
    fn add_member_name(names: &mut Self::Names, member: &MemberName<'_>);
    /// The hits in an archive's member names (the archive at `path`, `inner` inside it), each
    /// named after its member.
    fn member_name_hits(
        &mut self,
        names: Self::Names,
        path: &str,
        inner: Option<&str>,
    ) -> Vec<Self::Hit>;
    /// The limits on archive members.
    fn archive_limits(&self) -> ArchiveLimits;
    /// Bytes that may still be expanded for the current top-level file.
    fn budget(&mut self) -> &mut u64;
    /// Records a problem that leaves nothing unread (a corrupt member, read as far as it goes).
    fn note(&mut self, note: String);
    /// Records bytes left unread (a limit reached): the layer's scan is incomplete.
    fn unread(&mut self, what: String);
    /// The archives known to be third-party packages.
    fn packages(&mut self) -> &mut PackageRoots;
    /// A window buffer to scan with; give it back with [`Members::give_buffer`].
    fn take_buffer(&mut self) -> Vec<u8>;
    /// Keeps a buffer from [`Members::take_buffer`].
    fn give_buffer(&mut self, buffer: Vec<u8>);
    /// An inflater for a gzip stream; give it back with [`Members::give_inflater`].
    fn take_inflater(&mut self) -> gzip::Inflater;
    /// Keeps an inflater from [`Members::take_inflater`] for the next stream.
    fn give_inflater(&mut self, inflater: gzip::Inflater);
    /// Scans a member at archive depth `depth`; `inner` is its path inside archives.
    ///
    /// # Errors
    /// Errors of `reader`.
    fn scan_member(
        &mut self,
        path: &str,
        inner: Option<&str>,
        depth: usize,
        reader: &mut dyn Read,
        scratch: &mut Vec<u8>,
    ) -> io::Result<Vec<Self::Hit>>;
    /// Scans bytes known not to be an archive: `head`, read already, then
    /// the rest from `reader` (nothing, when `head.eof`).
    ///
    /// # Errors
    /// Errors of `reader`.
    fn scan_plain(
        &mut self,
        path: &str,
        inner: Option<&str>,
        head: Head<'_>,
        reader: &mut dyn Read,
    ) -> io::Result<Vec<Self::Hit>>;
}

/// The first bytes of a file or member, read into a scan buffer: `buf[..filled]`, all of
/// its bytes when `eof` (the buffer's tail past `filled` is free for the scanner to use).
#[derive(Debug)]
pub struct Head<'a> {
    /// The scan buffer.
    pub buf: &'a mut [u8],
    /// How many bytes of `buf` were read.
    pub filled: usize,
    /// True when they are the whole file.
    pub eof: bool,
}

/// The text naming where a member is: the file, then `!` and its path inside archives.
fn at(path: &str, inner: Option<&str>) -> String {
    inner.map_or_else(|| path.to_owned(), |i| format!("{path}!{i}"))
}

fn join(prefix: Option<&str>, sep: &str, name: &str) -> String {
    match prefix {
        Some(p) => format!("{p}{sep}{name}"),
        None => name.to_owned(),
    }
}

/// Scans the members of an archive read from `reader`.
///
/// # Errors
/// Only errors of the outer stream that are not the archive's own fault;
/// corrupt archives and limits become notes.
pub fn scan<M: Members>(
    cs: &mut M,
    kind: Format,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> io::Result<Vec<M::Hit>> {
    let result = match kind {
        Format::Tar => scan_tar(cs, path, inner, depth, reader),
        Format::Gzip
        | Format::Xz
        | Format::Bzip2
        | Format::Zstd
        | Format::Lz4
        | Format::Lzma
        | Format::Lzip => scan_compressed(cs, kind, path, inner, depth, reader),
        Format::Unsupported(format) => {
            cs.unread(format!(
                "{}: {format} data, which strata does not decompress: only its raw bytes were scanned",
                at(path, inner)
            ));
            scan_raw(cs, path, inner, &[], false, reader).map_err(|e| (Vec::new(), e))
        }
        Format::Zip => scan_zip(cs, path, inner, depth, reader),
        Format::Sqlite => scan_sqlite(cs, path, inner, reader),
        Format::Pyc => scan_compiled(cs, path, inner, reader, super::pyc::strings),
        Format::JavaClass => scan_compiled(cs, path, inner, reader, |data| {
            super::class::strings(data).unwrap_or_else(|| data.to_vec())
        }),
        Format::Ar => packages::scan_ar(cs, path, inner, depth, reader),
        Format::Cpio => packages::scan_cpio(cs, path, inner, depth, reader),
        Format::Rpm => packages::scan_rpm(cs, path, inner, depth, reader),
    };
    match result {
        Ok(hits) => Ok(hits),
        Err((hits, e)) => {
            let limit = is_limit(&e);
            // A nested tar's header bytes may be a file's content: never quote them.
            let e = crate::redact::io_error_text(&e);
            if limit {
                cs.unread(format!(
                    "{}: nested archive limit reached: {e}; the rest was not read",
                    at(path, inner)
                ));
            } else {
                cs.note(format!(
                    "{}: unreadable nested archive: {e}; scanned what came before",
                    at(path, inner)
                ));
            }
            Ok(hits)
        }
    }
}

/// True for an error raised by a limit (not the archive's own fault).
fn is_limit(e: &io::Error) -> bool {
    e.get_ref().and_then(|r| r.downcast_ref::<LimitHit>()).is_some()
}

/// Hits, or the hits found before an error ended the archive.
type Partial<H> = Result<Vec<H>, (Vec<H>, io::Error)>;

/// One member as an archive's [`MemberSource`] yields it.
enum Member<'a> {
    /// A file to scan: its path inside archives, and its bytes.
    File(String, Box<dyn Read + 'a>),
    /// Nothing to scan: a directory or link, or a member left unread (and
    /// recorded as such by the source).
    Skip,
}

/// The members of one archive in order. Each member borrows the archive
/// (a lending iterator), so this is not an [`Iterator`].
trait MemberSource {
    /// True when each member is read on its own (a zip's, found by seeking): an error in
    /// one member's data ends that member only, and the next is read. In a stream (a
    /// tar) the error leaves no way to find the next member, so it ends the archive.
    const INDEPENDENT: bool = false;
    /// The next member, `None` after the last; an error ends the archive. Every member's
    /// name (a skipped one's too, when it has one) goes to `names` first.
    fn next_member<M: Members>(
        &mut self,
        cs: &mut M,
        names: &mut M::Names,
    ) -> Option<io::Result<Member<'_>>>;
}

/// Hands a member's name to the archive's name scan: its path without `./` before it and
/// `/` after it (a directory's), as its file is named; its link and other header text.
fn add_name<M: Members>(
    names: &mut M::Names,
    raw: &str,
    is_dir: bool,
    link: MemberLink<'_>,
    records: &[u8],
) {
    let path = raw.trim_start_matches("./").trim_end_matches('/');
    if !path.is_empty() {
        M::add_member_name(names, &MemberName { path, is_dir, link, records });
    }
}

/// The one member loop of tar and zip archives: each member's expansion is
/// charged to the budget, and its hits are kept even when a later member
/// ends the archive with an error. The members' names are scanned at the
/// end, whatever ended the archive.
fn scan_members<M: Members, S: MemberSource>(
    cs: &mut M,
    members: &mut S,
    path: &str,
    inner: Option<&str>,
    depth: usize,
) -> Partial<M::Hit> {
    let mut names = cs.member_names();
    let result = scan_member_data(cs, members, &mut names, path, depth);
    let named = cs.member_name_hits(names, path, inner);
    match result {
        Ok(mut hits) => {
            hits.extend(named);
            Ok(hits)
        }
        Err((mut hits, e)) => {
            hits.extend(named);
            Err((hits, e))
        }
    }
}

/// The member loop of [`scan_members`], the names aside.
fn scan_member_data<M: Members, S: MemberSource>(
    cs: &mut M,
    members: &mut S,
    names: &mut M::Names,
    path: &str,
    depth: usize,
) -> Partial<M::Hit> {
    let mut scratch = cs.take_buffer();
    let mut hits = Vec::new();
    let end = loop {
        let (name, mut data) = match members.next_member(cs, names) {
            None => break None,
            Some(Err(e)) => break Some(e),
            Some(Ok(Member::Skip)) => continue,
            Some(Ok(Member::File(name, data))) => (name, data),
        };
        let mut budget = *cs.budget();
        let (found, failed) = {
            let mut limited = Fused::new(Budgeted { inner: &mut data, remaining: &mut budget });
            let result = cs.scan_member(path, Some(&name), depth + 1, &mut limited, &mut scratch);
            // A read error ends the member's data: what came before was scanned to its end,
            // and its hits are kept.
            match (result, limited.take_error()) {
                (Ok(h), failed) => (h, failed),
                (Err(e), failed) => (Vec::new(), Some(failed.unwrap_or(e))),
            }
        };
        *cs.budget() = budget;
        hits.extend(found);
        match failed {
            None => {}
            Some(e) if S::INDEPENDENT && !is_limit(&e) => {
                // A corrupt member (a bad CRC, broken deflate data) of a zip: read as far
                // as it goes; the members after it are still read.
                let e = crate::redact::io_error_text(&e);
                cs.note(format!(
                    "{}: unreadable archive member: {e}; scanned what came before",
                    at(path, Some(&name))
                ));
            }
            Some(e) => break Some(e),
        }
    };
    cs.give_buffer(scratch);
    match end {
        None => Ok(hits),
        Some(e) => Err((hits, e)),
    }
}

/// Skips zero bytes (an archive's padding after its end marker); the first bytes after
/// them, if any: what follows the archive (another archive, as `tar --ignore-zeros` and
/// an initramfs concatenate them, or anything else).
fn after_zeros(reader: &mut dyn Read) -> io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 4096];
    loop {
        let n = fill(reader, &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(first) = buf[..n].iter().position(|&b| b != 0) {
            return Ok(Some(buf[first..n].to_vec()));
        }
    }
}

/// A nested tar, read with the layer walk's own reader ([`TarReader`]), so
/// it has the same budgets: names and PAX headers past their limits are
/// skipped as they stream (the entry is counted as not read), and sparse
/// files are read as their stored blocks, never their holes.
struct TarMembers<'p, R> {
    tar: TarReader<R>,
    path: &'p str,
    inner: Option<&'p str>,
    /// Entries seen so far, against the per-archive member limit.
    seen: usize,
    /// The end-of-archive marker was read.
    ended: bool,
    /// The entry read after non-zero padding, handed out once the padding was.
    deferred: Option<Result<Next, TarError>>,
}

/// Non-zero padding kept per nested tar to scan (what no extractor writes out,
/// but anyone holding the file can read): a few blocks' worth for a careless
/// writer, a bound for a hostile one.
const KEEP_STRAY: usize = 64 << 10;
/// Largest PAX header of a nested tar read (held whole while parsed): more
/// than the layer walk's 1 MiB, which Go's own test archives exceed by a
/// byte, and still a bound.
const NESTED_MAX_PAX: u64 = 8 << 20;

impl<R: Read> MemberSource for TarMembers<'_, R> {
    fn next_member<M: Members>(
        &mut self,
        cs: &mut M,
        names: &mut M::Names,
    ) -> Option<io::Result<Member<'_>>> {
        let next = match self.deferred.take() {
            Some(next) => next,
            None => {
                let next = self.tar.next_entry();
                if let Some((count, first)) = self.tar.take_stray_padding() {
                    let at = at(self.path, self.inner);
                    let what = format!(
                        "{at}: {count} non-zero bytes in the padding between nested tar entries (first at byte {first})"
                    );
                    match self.tar.take_stray_bytes() {
                        // Scanned as a member of their own, before the entry after them.
                        Some(bytes) => {
                            cs.note(format!("{what}; scanned as <tar padding>"));
                            self.deferred = Some(next);
                            let name = join(self.inner, "!", "<tar padding>");
                            return Some(Ok(Member::File(name, Box::new(io::Cursor::new(bytes)))));
                        }
                        None => cs.unread(format!(
                            "{what}, over the {KEEP_STRAY} bytes kept per tar; not read"
                        )),
                    }
                }
                next
            }
        };
        let entry = match next {
            Ok(Next::End(_)) if self.ended => return None,
            Ok(Next::End(_)) => {
                // What follows the marker is in the file for anyone to read: a member.
                self.ended = true;
                let inner = self.tar.inner_mut();
                return match after_zeros(inner) {
                    Ok(None) => None,
                    Ok(Some(head)) => {
                        let name = join(self.inner, "!", "<after the tar end-of-archive marker>");
                        Some(Ok(Member::File(name, Box::new(io::Cursor::new(head).chain(inner)))))
                    }
                    Err(e) => Some(Err(e)),
                };
            }
            Ok(Next::Entry(e)) => e,
            // The parse stopped: a reading error of the outer stream stays one.
            Err(e) => {
                return Some(Err(match e.io {
                    Some(io) => io,
                    None => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                }));
            }
        };
        let max_entries = cs.archive_limits().max_entries;
        if self.seen >= max_entries {
            return Some(Err(io::Error::other(LimitHit(format!(
                "more than {max_entries} members (the per-archive member limit)"
            )))));
        }
        self.seen += 1;
        if let Some(why) = &entry.unread {
            let what = format!(
                "{}: nested tar entry at byte {} ({} bytes): {why}",
                at(self.path, self.inner),
                entry.offset,
                entry.size
            );
            // Without data, the entry leaves nothing unread but its header (a name past
            // the name budget is not scanned): Go's own test archives hold such an entry.
            if entry.size == 0 {
                cs.note(format!("{what}; the entry holds no data"));
            } else {
                cs.unread(format!("{what}; not read"));
            }
            return Some(Ok(Member::Skip));
        }
        let name = crate::image::path::decode_name(&entry.name);
        let target = crate::image::path::decode_name(&entry.link);
        let link = match entry.kind {
            RawKind::Symlink => MemberLink::Symlink(&target),
            RawKind::Hardlink => MemberLink::Hardlink(&target),
            _ => MemberLink::None,
        };
        add_name::<M>(names, &name, entry.kind == RawKind::Dir, link, &entry.records);
        // A nested tar is never extracted by a runtime: whatever data an entry
        // stores (a directory's or an unknown type's too) is read like a file's.
        if entry.kind != RawKind::File && entry.size == 0 {
            return Some(Ok(Member::Skip));
        }
        if archive::marks_package(&name) {
            cs.packages().insert(archive::level(self.path, self.inner));
        }
        let name = join(self.inner, "!", name.trim_start_matches("./"));
        Some(Ok(Member::File(name, Box::new(self.tar.data()))))
    }
}

fn scan_tar<M: Members>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> Partial<M::Hit> {
    let limits =
        TarLimits { keep_stray: KEEP_STRAY, max_pax: NESTED_MAX_PAX, ..TarLimits::default() };
    let tar = TarReader::new(reader, limits);
    let members = &mut TarMembers { tar, path, inner, seen: 0, ended: false, deferred: None };
    scan_members(cs, members, path, inner, depth)
}

/// A compressed stream (`kind` says which): a tar inside is one archive
/// level, anything else one member named after the file without its suffix.
/// What sits in the stream outside its compressed data (a gzip member's
/// header fields, zstd skippable frames) is scanned as members of its own.
/// When decoding fails part-way, what was decoded is scanned to its end, and
/// the bytes from the failure on (bytes after the last member, a corrupt
/// member) are scanned as they are.
fn scan_compressed<M: Members>(
    cs: &mut M,
    kind: Format,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> Partial<M::Hit> {
    let mut compressed = Kept::new(reader);
    // Taken for gzip only, and given back once the stream is read.
    let mut inflater = None;
    // A gzip member's header fields: in the file for anyone to read, scanned after it.
    let mut fields = gzip::HeaderFields::default();
    // zstd and lz4 skippable frames, the same.
    let frames = outside::Shared::default();
    let mut lz4_skipped = lz4::Skipped::default();
    let decoder: Box<dyn Read + '_> = match kind {
        Format::Xz => Box::new(compression::xz(&mut compressed)),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(&mut compressed)),
        Format::Zstd => {
            let source = outside::Source::File(gzip::MAX_FIELD_BYTES);
            match outside::ZstdFrames::reading(
                BufReader::new(&mut compressed),
                frames.clone(),
                source,
            ) {
                Ok(d) => Box::new(d),
                Err(e) => return Err((Vec::new(), e)),
            }
        }
        Format::Lz4 => Box::new(lz4::Lz4Frames::new(&mut compressed, &mut lz4_skipped)),
        Format::Lzip => Box::new(lzip::LzipReader::new(&mut compressed)),
        Format::Lzma => {
            let limit = compression::XZ_MEMORY_KIB;
            match lzma_rust2::LzmaReader::new_mem_limit(&mut compressed, limit, None) {
                Ok(d) => Box::new(d),
                Err(e) => return Err((Vec::new(), e)),
            }
        }
        // A layer holds thousands of small `.gz` files: one inflater serves them all.
        _ => Box::new(
            gzip::GzReader::new(&mut compressed, inflater.insert(cs.take_inflater()))
                .keeping_fields(&mut fields),
        ),
    };
    let mut budget = *cs.budget();
    let mut limited = Fused::new(Budgeted { inner: decoder, remaining: &mut budget });
    let mut scratch = cs.take_buffer();
    let filled = match fill(&mut limited, &mut scratch) {
        Ok(n) => n,
        Err(e) => {
            cs.give_buffer(scratch);
            return Err((Vec::new(), e));
        }
    };
    let eof = filled < scratch.len();
    // The member name: the file (or inner member) without its suffix.
    let base = inner.map_or(path, |i| i.rsplit('!').next().unwrap_or(i));
    let file = base.rsplit('/').next().unwrap_or(base);
    let stripped =
        kind.suffixes().iter().find_map(|s| file.strip_suffix(s)).unwrap_or(file).to_owned();
    let result = if looks_like_tar(&scratch[..filled]) {
        // A .tar.gz is one archive level: members sit directly under `inner`.
        let mut chained = io::Cursor::new(&scratch[..filled]).chain(&mut limited);
        scan_tar(cs, path, inner, depth, &mut chained)
    } else if crate::sniff::is_cpio(&scratch[..filled]) {
        // So is a compressed cpio (an initramfs, an RPM payload).
        let mut chained = io::Cursor::new(&scratch[..filled]).chain(&mut limited);
        packages::scan_cpio(cs, path, inner, depth, &mut chained)
    } else if crate::sniff::file_format(&scratch[..filled]).is_some() {
        // Another archive, a compressed stream or a database, compressed (a `.zip.gz`, a
        // `.gz.gz`): opened one level down, named after the file without its suffix.
        let name = join(inner, "!", &stripped);
        let mut chained = io::Cursor::new(&scratch[..filled]).chain(&mut limited);
        let mut member_scratch = cs.take_buffer();
        let r = cs.scan_member(path, Some(&name), depth + 1, &mut chained, &mut member_scratch);
        cs.give_buffer(member_scratch);
        r.map_err(|e| (Vec::new(), e))
    } else {
        let name = join(inner, "!", &stripped);
        let head = Head { buf: &mut scratch, filled, eof };
        cs.scan_plain(path, Some(&name), head, &mut limited).map_err(|e| (Vec::new(), e))
    };
    // The decoder's error, if it ended the stream, over what the reading of its output
    // made of that early end (a tar cut short).
    let failed = limited.take_error().map(over_memory);
    drop(limited);
    *cs.budget() = budget;
    cs.give_buffer(scratch);
    if let Some(inflater) = inflater {
        cs.give_inflater(inflater);
    }
    let undecoded = failed.as_ref().is_some_and(|e| !is_limit(e));
    let mut result = match (result, failed) {
        (Ok(hits) | Err((hits, _)), Some(e)) => Err((hits, e)),
        (result, None) => result,
    };
    if let Err((hits, e)) = &mut result
        && undecoded
    {
        // What the decoder did not decode: the bytes it held when it failed, then the rest.
        let tail = compressed.tail();
        let name = join(inner, "!", "<bytes not decoded>");
        match scan_raw(cs, path, Some(&name), &tail, false, &mut compressed.inner) {
            Ok(h) => hits.extend(h),
            Err(e2) => *e = e2,
        }
    }
    let mut parts: Vec<(String, Vec<u8>)> = std::mem::take(&mut fields.fields);
    let mut unread = Vec::new();
    if fields.dropped > 0 {
        unread.push(format!(
            "{}: {} bytes of gzip header fields past the {} MiB kept per stream were not read",
            at(path, inner),
            fields.dropped,
            gzip::MAX_FIELD_BYTES >> 20
        ));
    }
    if lz4_skipped.dropped > 0 {
        unread.push(format!(
            "{}: {} bytes of lz4 skippable frames past the {} MiB kept per file were not read",
            at(path, inner),
            lz4_skipped.dropped,
            gzip::MAX_FIELD_BYTES >> 20
        ));
    }
    parts.append(&mut lz4_skipped.parts);
    let found = outside::take(&frames);
    parts.extend(found.parts.into_iter().map(|p| (p.name, p.bytes)));
    unread.extend(found.unread.into_iter().map(|u| format!("{}: {u}", at(path, inner))));
    scan_outside(cs, path, inner, parts, unread, result)
}

/// A decoder's refusal of a stream that needs more memory than its limit (an xz
/// dictionary, a zstd window over 128 MiB: `zstd --long=31`) as the limit it is: the
/// stream is not read, and the scan is incomplete. Other errors are kept as they are.
fn over_memory(e: io::Error) -> io::Error {
    let zstd = e.to_string().contains("too much memory");
    if e.kind() != io::ErrorKind::OutOfMemory && !zstd {
        return e;
    }
    let what = if zstd { "window" } else { "dictionary" };
    io::Error::other(LimitHit(format!(
        "its {what} is over the decoder's {} MiB memory limit, so it was not decompressed",
        compression::XZ_MEMORY_KIB >> 10
    )))
}

/// Adds the hits in the bytes of a compressed stream outside its data (a
/// gzip member's header fields, zstd skippable frames; each a member named
/// `<gzip member N header: comment>`, `<zstd skippable frame N>`) to what
/// its content gave, and records the bytes of them that were not kept.
fn scan_outside<M: Members>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    parts: Vec<(String, Vec<u8>)>,
    unread: Vec<String>,
    result: Partial<M::Hit>,
) -> Partial<M::Hit> {
    for u in unread {
        cs.unread(u);
    }
    if parts.is_empty() {
        return result;
    }
    let (mut hits, err) = match result {
        Ok(h) => (h, None),
        Err((h, e)) => (h, Some(e)),
    };
    for (name, bytes) in &parts {
        let member = join(inner, "!", name);
        match scan_held(cs, path, Some(&member), bytes) {
            Ok(h) => hits.extend(h),
            Err(e) => return Err((hits, e)),
        }
    }
    match err {
        Some(e) => Err((hits, e)),
        None => Ok(hits),
    }
}

/// Largest database parsed (held in memory whole); a larger one is scanned
/// as raw bytes only, which reads every byte but may miss a value glued to
/// its neighbour column.
const MAX_SQLITE: u64 = 32 << 20;

/// Scans bytes held in memory as a plain member.
fn scan_held<M: Members>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    bytes: &[u8],
) -> io::Result<Vec<M::Hit>> {
    scan_raw(cs, path, inner, bytes, true, &mut io::empty())
}

/// Reads a file to be parsed into memory, up to [`MAX_SQLITE`] bytes; true
/// when that is the whole file (a bigger one is scanned raw from there).
fn read_held(reader: &mut dyn Read) -> io::Result<(Vec<u8>, bool)> {
    let mut data = Vec::new();
    reader.take(MAX_SQLITE).read_to_end(&mut data)?;
    let whole = data.len() < MAX_SQLITE as usize;
    Ok((data, whole))
}

/// A database: each table's values as a member `table <name>`, then the
/// file's raw bytes with those live cells blanked (deleted rows stay in
/// free space and are found there).
fn scan_sqlite<M: Members>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    reader: &mut dyn Read,
) -> Partial<M::Hit> {
    let (data, whole) = read_held(reader).map_err(|e| (Vec::new(), e))?;
    let parsed = if whole { super::sqlite::parse(&data) } else { None };
    let Some(db) = parsed else {
        if whole {
            cs.note(format!(
                "{}: SQLite header not understood; scanned as raw bytes",
                at(path, inner)
            ));
        }
        return scan_raw(cs, path, inner, &data, whole, reader).map_err(|e| (Vec::new(), e));
    };
    let mut hits = Vec::new();
    for table in &db.tables {
        let name = join(inner, "!", &table.member());
        match scan_held(cs, path, Some(&name), &table.values) {
            Ok(h) => hits.extend(h),
            Err(e) => return Err((hits, e)),
        }
    }
    drop(data);
    match scan_held(cs, path, inner, &db.blanked) {
        Ok(h) => hits.extend(h),
        Err(e) => return Err((hits, e)),
    }
    Ok(hits)
}

/// A compiled file (Python's pyc, a Java class): its string constants, one
/// per line, scanned in place of the raw bytes (where they are glued to
/// type and length bytes). A file over [`MAX_SQLITE`] is scanned raw.
fn scan_compiled<M: Members>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    reader: &mut dyn Read,
    strings: impl Fn(&[u8]) -> Vec<u8>,
) -> Partial<M::Hit> {
    let (data, whole) = read_held(reader).map_err(|e| (Vec::new(), e))?;
    if whole {
        let text = strings(&data);
        return scan_held(cs, path, inner, &text).map_err(|e| (Vec::new(), e));
    }
    scan_raw(cs, path, inner, &data, false, reader).map_err(|e| (Vec::new(), e))
}

/// Scans as plain bytes a file whose first bytes were read into `held` to
/// be parsed (a database, a compiled file) but are scanned raw after all:
/// `held`, then the rest of `reader`. `whole` says `held` is the whole file.
fn scan_raw<M: Members>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    held: &[u8],
    whole: bool,
    reader: &mut dyn Read,
) -> std::io::Result<Vec<M::Hit>> {
    let mut scratch = cs.take_buffer();
    let mut held = held;
    let result = fill(&mut held, &mut scratch).and_then(|n| {
        let eof = whole && held.is_empty();
        let mut rest = held.chain(reader);
        cs.scan_plain(path, inner, Head { buf: &mut scratch, filled: n, eof }, &mut rest)
    });
    cs.give_buffer(scratch);
    result
}

fn scan_zip<M: Members>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> Partial<M::Hit> {
    // Zip needs random access: memory below the threshold, a temp file above.
    let mut head = Vec::new();
    let limit = cs.archive_limits().zip_in_memory;
    if let Err(e) = reader.take(limit + 1).read_to_end(&mut head) {
        return Err((Vec::new(), e));
    }
    if head.len() as u64 <= limit {
        return scan_zip_archive(cs, path, inner, depth, io::Cursor::new(head));
    }
    let spooled = (|| {
        let mut tmp = tempfile::tempfile()?;
        io::Write::write_all(&mut tmp, &head)?;
        io::copy(reader, &mut tmp)?;
        tmp.rewind()?;
        Ok::<_, io::Error>(tmp)
    })();
    drop(head);
    match spooled {
        Ok(f) => scan_zip_archive(cs, path, inner, depth, BufReader::new(f)),
        Err(e) => Err((Vec::new(), e)),
    }
}

/// A zip's members by index, up to the per-archive member limit; members
/// whose expansion ratio is absurd are skipped as bombs.
struct ZipMembers<'p, R> {
    zip: zip::ZipArchive<R>,
    path: &'p str,
    inner: Option<&'p str>,
    next: usize,
    /// `min(members, limit)`: how many are read.
    count: usize,
}

impl<R: Read + Seek> MemberSource for ZipMembers<'_, R> {
    const INDEPENDENT: bool = true;

    fn next_member<M: Members>(
        &mut self,
        cs: &mut M,
        names: &mut M::Names,
    ) -> Option<io::Result<Member<'_>>> {
        if self.next >= self.count {
            return None;
        }
        let (i, path) = (self.next, self.path);
        self.next += 1;
        // The central directory names every member, one strata cannot open too.
        // (A name is UTF-8 or CP437, which every byte string is.)
        if let Some(Ok(name)) = self.zip.name_for_index(i) {
            add_name::<M>(names, &name, name.ends_with('/'), MemberLink::None, &[]);
        }
        // Deflate64, LZMA and xz members are decoded here from their raw bytes (see
        // `zip_methods`); an encrypted one stays the zip crate's to refuse.
        let raw_method = match self.zip.by_index_raw(i) {
            Ok(m) if !m.encrypted() && zip_methods::decodes(m.compression()) => {
                Some(m.compression())
            }
            _ => None,
        };
        let opened = match raw_method {
            Some(_) => self.zip.by_index_raw(i),
            None => self.zip.by_index(i),
        };
        // A member is named by its index in messages, never by its name: a crafted name
        // can hold anything, a secret included (the name is scanned as a member path).
        let member = match opened {
            Ok(m) => m,
            Err(e) => {
                // Encrypted, or in a compression method strata does not decompress: none
                // of its bytes are read. The zip crate's texts for those are its own.
                let e = match e {
                    zip::result::ZipError::UnsupportedArchive(why) => why.to_owned(),
                    e => crate::redact::io_error_text(&io::Error::other(e)),
                };
                cs.unread(format!("{}: zip member {i}: {e}; not read", at(path, self.inner)));
                return Some(Ok(Member::Skip));
            }
        };
        if member.is_dir() {
            return Some(Ok(Member::Skip));
        }
        let method = member.compression();
        if raw_method.is_none() && !zip::SUPPORTED_COMPRESSION_METHODS.contains(&method) {
            cs.unread(format!(
                "{}: zip member {i}: compressed with {method}, which strata does not decompress; not read",
                at(path, self.inner)
            ));
            return Some(Ok(Member::Skip));
        }
        let member_name = member
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| crate::image::path::decode_name(member.name_raw()));
        let name = join(self.inner, "!", &member_name);
        let (size, packed) = (member.size(), member.compressed_size().max(1));
        let max_ratio = cs.archive_limits().max_ratio;
        if size > (1 << 20) && size / packed > max_ratio {
            cs.unread(format!(
                "{path}!{name}: archive bomb not read: {size} bytes from {packed} ({}:1, over the {max_ratio}:1 expansion-ratio limit)",
                size / packed,
            ));
            return Some(Ok(Member::Skip));
        }
        let Some(method) = raw_method else {
            return Some(Ok(Member::File(name, Box::new(member))));
        };
        let (size, crc) = (member.size(), member.crc32());
        match zip_methods::decoder(method, member, size, crc) {
            Ok(decoded) => Some(Ok(Member::File(name, decoded))),
            Err(e) => {
                let e = crate::redact::io_error_text(&e);
                cs.unread(format!("{}: zip member {i}: {e}; not read", at(path, self.inner)));
                Some(Ok(Member::Skip))
            }
        }
    }
}

fn scan_zip_archive<M: Members, R: Read + Seek>(
    cs: &mut M,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    mut reader: R,
) -> Partial<M::Hit> {
    let mut zip = match zip::ZipArchive::new(&mut reader) {
        Ok(z) => z,
        // No central directory (a zip cut short, a script that only holds one's local
        // headers): its bytes as they are, and its members as a streaming reader finds them.
        Err(e) => return zip_outside::scan_without_directory(cs, reader, &e, path, inner, depth),
    };
    mark_package(cs, &mut zip, path, inner);
    let max_entries = cs.archive_limits().max_entries;
    let total = zip.len();
    let count = total.min(max_entries);
    let mut members = ZipMembers { zip, path, inner, next: 0, count };
    let hits = scan_members(cs, &mut members, path, inner, depth)?;
    if total > max_entries {
        cs.unread(format!(
            "{path}: only the first {max_entries} of {total} zip members read (the per-archive member limit)"
        ));
    }
    after(hits, zip_outside::scan(cs, members.zip, count, path, inner, depth))
}

/// `hits`, then what `next` found (and its error).
fn after<H>(mut hits: Vec<H>, next: Partial<H>) -> Partial<H> {
    match next {
        Ok(h) => {
            hits.extend(h);
            Ok(hits)
        }
        Err((h, e)) => {
            hits.extend(h);
            Err((hits, e))
        }
    }
}

/// Records the zip as a package root when its members say it is one (a
/// wheel, an npm tarball's zip twin, a library jar), and, for a top-level
/// application jar, the dependencies its manifest's `Class-Path` names.
fn mark_package<M: Members, R: Read + Seek>(
    cs: &mut M,
    zip: &mut zip::ZipArchive<R>,
    path: &str,
    inner: Option<&str>,
) {
    let names: Vec<String> = zip
        .file_names()
        .take(cs.archive_limits().max_entries)
        .filter_map(|n| n.ok().map(std::borrow::Cow::into_owned))
        .collect();
    if names.iter().any(|n| archive::marks_package(n)) {
        cs.packages().insert(archive::level(path, inner));
        return;
    }
    let has_manifest = names.iter().any(|n| n == "META-INF/MANIFEST.MF");
    let pom = names.iter().any(|n| n.starts_with("META-INF/maven/"));
    if !has_manifest && !pom {
        return;
    }
    let manifest = has_manifest
        .then(|| {
            let member = zip.by_name("META-INF/MANIFEST.MF").ok()?;
            let mut bytes = Vec::new();
            member.take(java::MAX_MANIFEST).read_to_end(&mut bytes).ok()?;
            Some(java::parse_manifest(&bytes))
        })
        .flatten();
    if java::is_library(names.iter().map(String::as_str), manifest.as_ref()) {
        cs.packages().insert(archive::level(path, inner));
    } else if let (Some(m), None) = (&manifest, inner) {
        java::class_path_roots(path, m, cs.packages());
    }
}

#[cfg(test)]
mod tests;
