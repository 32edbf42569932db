//! Archives inside layer files: zip (jar, war, ear, whl, apk…), tar, and
//! gzip (a `.tar.gz` is one level). Members are scanned like files, with
//! their path inside the archive joined by `!` for each level.
//!
//! Every expanded byte is charged to a budget, and members whose expansion
//! ratio is absurd are skipped: a bomb ends with an "incomplete" record
//! naming the file and the limit (the run exits 2), not an OOM.

use std::io::{self, BufReader, Read, Seek};

use super::content::{ContentScanner, FileHit};
use super::packages::{archive, java};
use super::stream::fill;
use crate::image::compression::looks_like_tar;
use crate::image::tarstream::{Next, RawKind, TarLimits, TarReader};

/// An archive format recognised by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PKZIP (local file header or empty archive).
    Zip,
    /// gzip stream.
    Gzip,
    /// POSIX/GNU tar.
    Tar,
}

/// Recognises an archive from its first bytes.
pub fn sniff(head: &[u8]) -> Option<Kind> {
    match head {
        [b'P', b'K', 3, 4, ..] => Some(Kind::Zip),
        [0x1f, 0x8b, 8, ..] => Some(Kind::Gzip),
        _ if looks_like_tar(head) => Some(Kind::Tar),
        _ => None,
    }
}

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

/// A reader that counts the bytes pulled through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
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
pub fn scan(
    cs: &mut ContentScanner<'_>,
    kind: Kind,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> io::Result<Vec<FileHit>> {
    let where_ = || match inner {
        Some(i) => format!("{path}!{i}"),
        None => path.to_owned(),
    };
    let result = match kind {
        Kind::Tar => scan_tar(cs, path, inner, depth, reader),
        Kind::Gzip => scan_gzip(cs, path, inner, depth, reader),
        Kind::Zip => scan_zip(cs, path, inner, depth, reader),
    };
    match result {
        Ok(hits) => Ok(hits),
        Err((hits, e)) => {
            let limit = e.get_ref().and_then(|r| r.downcast_ref::<LimitHit>()).is_some();
            // A nested tar's header bytes may be a file's content: never quote them.
            let e = crate::redact::io_error_text(&e);
            if limit {
                cs.unread.push(format!(
                    "{}: nested archive limit reached: {e}; the rest was not read",
                    where_()
                ));
            } else {
                cs.notes.push(format!(
                    "{}: unreadable nested archive: {e}; scanned what came before",
                    where_()
                ));
            }
            Ok(hits)
        }
    }
}

type Partial = Result<Vec<FileHit>, (Vec<FileHit>, io::Error)>;

/// Scans one archive member, charging what it expands to against the budget.
fn scan_budgeted(
    cs: &mut ContentScanner<'_>,
    path: &str,
    name: &str,
    depth: usize,
    member: &mut dyn Read,
    scratch: &mut Vec<u8>,
) -> io::Result<Vec<FileHit>> {
    let mut budget = cs.budget;
    let result = {
        let mut limited = Budgeted { inner: member, remaining: &mut budget };
        cs.scan_member(path, Some(name), depth + 1, &mut limited, scratch)
    };
    cs.budget = budget;
    result
}

fn scan_tar(
    cs: &mut ContentScanner<'_>,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> Partial {
    let mut scratch = cs.take_buffer();
    let result = scan_tar_members(cs, path, inner, depth, reader, &mut scratch);
    cs.give_buffer(scratch);
    result
}

/// Reads a nested tar with the layer walk's own reader ([`TarReader`]), so
/// it has the same budgets: names and PAX headers past their limits are
/// skipped as they stream (the entry is counted as not read), and sparse
/// files are read as their stored blocks, never their holes.
fn scan_tar_members(
    cs: &mut ContentScanner<'_>,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
    scratch: &mut Vec<u8>,
) -> Partial {
    let mut hits = Vec::new();
    let mut tar = TarReader::new(reader, TarLimits::default());
    let mut n = 0;
    loop {
        let entry = match tar.next_entry() {
            Ok(Next::End(_)) => return Ok(hits),
            Ok(Next::Entry(e)) => e,
            // The parse stopped: a reading error of the outer stream stays one.
            Err(e) => {
                let e = match e.io {
                    Some(io) => io,
                    None => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                };
                return Err((hits, e));
            }
        };
        if n >= cs.limits.max_entries {
            let e = io::Error::other(LimitHit(format!(
                "more than {} members (the per-archive member limit)",
                cs.limits.max_entries
            )));
            return Err((hits, e));
        }
        n += 1;
        if let Some(why) = &entry.unread {
            let at = inner.map_or_else(|| path.to_owned(), |i| format!("{path}!{i}"));
            cs.unread.push(format!(
                "{at}: nested tar entry at byte {} ({} bytes): {why}; not read",
                entry.offset, entry.size
            ));
            continue;
        }
        if entry.kind != RawKind::File {
            continue;
        }
        let name = crate::image::path::decode_name(&entry.name);
        if archive::marks_package(&name) {
            cs.packages.insert(archive::level(path, inner));
        }
        let name = join(inner, "!", name.trim_start_matches("./"));
        match scan_budgeted(cs, path, &name, depth, &mut tar.data(), scratch) {
            Ok(h) => hits.extend(h),
            Err(e) => return Err((hits, e)),
        }
    }
}

fn scan_gzip(
    cs: &mut ContentScanner<'_>,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> Partial {
    let mut compressed = Counting { inner: reader, count: 0 };
    let decoder = flate2::read::MultiGzDecoder::new(&mut compressed);
    let mut budget = cs.budget;
    let mut limited = Budgeted { inner: decoder, remaining: &mut budget };
    let mut scratch = cs.take_buffer();
    let filled = match fill(&mut limited, &mut scratch) {
        Ok(n) => n,
        Err(e) => {
            cs.give_buffer(scratch);
            return Err((Vec::new(), e));
        }
    };
    let eof = filled < scratch.len();
    // The member name: the file (or inner member) without its .gz suffix.
    let base = inner.map_or(path, |i| i.rsplit('!').next().unwrap_or(i));
    let file = base.rsplit('/').next().unwrap_or(base);
    let stripped =
        file.strip_suffix(".gz").or_else(|| file.strip_suffix(".tgz")).unwrap_or(file).to_owned();
    let result = if looks_like_tar(&scratch[..filled]) {
        // A .tar.gz is one archive level: members sit directly under `inner`.
        let mut chained = io::Cursor::new(&scratch[..filled]).chain(&mut limited);
        scan_tar(cs, path, inner, depth, &mut chained)
    } else {
        let name = join(inner, "!", &stripped);
        cs.scan_plain(path, Some(&name), &mut scratch, filled, eof, &mut limited)
            .map_err(|e| (Vec::new(), e))
    };
    drop(limited);
    cs.budget = budget;
    cs.give_buffer(scratch);
    result
}

fn scan_zip(
    cs: &mut ContentScanner<'_>,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: &mut dyn Read,
) -> Partial {
    // Zip needs random access: memory below the threshold, a temp file above.
    let mut head = Vec::new();
    let limit = cs.limits.zip_in_memory;
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

fn scan_zip_archive<R: Read + Seek>(
    cs: &mut ContentScanner<'_>,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: R,
) -> Partial {
    let mut scratch = cs.take_buffer();
    let result = scan_zip_members(cs, path, inner, depth, reader, &mut scratch);
    cs.give_buffer(scratch);
    result
}

fn scan_zip_members<R: Read + Seek>(
    cs: &mut ContentScanner<'_>,
    path: &str,
    inner: Option<&str>,
    depth: usize,
    reader: R,
    scratch: &mut Vec<u8>,
) -> Partial {
    let mut hits = Vec::new();
    let mut zip = match zip::ZipArchive::new(reader) {
        Ok(z) => z,
        Err(e) => return Err((hits, io::Error::other(e))),
    };
    mark_package(cs, &mut zip, path, inner);
    for i in 0..zip.len().min(cs.limits.max_entries) {
        let mut member = match zip.by_index(i) {
            Ok(m) => m,
            Err(e) => {
                let e = crate::redact::io_error_text(&io::Error::other(e));
                cs.notes.push(format!("{path}: zip member {i}: {e}; skipped"));
                continue;
            }
        };
        if member.is_dir() {
            continue;
        }
        let member_name = member
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| crate::image::path::decode_name(member.name_raw()));
        let name = join(inner, "!", &member_name);
        let (size, packed) = (member.size(), member.compressed_size().max(1));
        if size > (1 << 20) && size / packed > cs.limits.max_ratio {
            cs.unread.push(format!(
                "{path}!{name}: archive bomb not read: {size} bytes from {packed} ({}:1, over the {}:1 expansion-ratio limit)",
                size / packed,
                cs.limits.max_ratio
            ));
            continue;
        }
        match scan_budgeted(cs, path, &name, depth, &mut member, scratch) {
            Ok(h) => hits.extend(h),
            Err(e) => return Err((hits, e)),
        }
    }
    if zip.len() > cs.limits.max_entries {
        cs.unread.push(format!(
            "{path}: only the first {} of {} zip members read (the per-archive member limit)",
            cs.limits.max_entries,
            zip.len()
        ));
    }
    Ok(hits)
}

/// Records the zip as a package root when its members say it is one (a
/// wheel, an npm tarball's zip twin, a library jar), and, for a top-level
/// application jar, the dependencies its manifest's `Class-Path` names.
fn mark_package<R: Read + Seek>(
    cs: &mut ContentScanner<'_>,
    zip: &mut zip::ZipArchive<R>,
    path: &str,
    inner: Option<&str>,
) {
    let names: Vec<String> = zip
        .file_names()
        .take(cs.limits.max_entries)
        .filter_map(|n| n.ok().map(std::borrow::Cow::into_owned))
        .collect();
    if names.iter().any(|n| archive::marks_package(n)) {
        cs.packages.insert(archive::level(path, inner));
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
        cs.packages.insert(archive::level(path, inner));
    } else if let (Some(m), None) = (&manifest, inner) {
        java::class_path_roots(path, m, &mut cs.packages);
    }
}
