//! Git object stores inside layers: a `.git` directory (or a bare repo)
//! shipped by `COPY . /app` keeps every committed version of every file,
//! including secrets removed from the working tree. This module reads the
//! store and hands each blob of its history to the content scanner.
//!
//! - `loose`: `objects/xx/…` zlib objects; `pack`: packfiles and their
//!   v2 `.idx`; `delta`: OFS/REF delta chains; `history`: commit → tree
//!   → blob naming (`<commit>:<path>`).
//! - [`Collector`] gathers one layer's object-store files during the walk by
//!   spooling them to one temporary file (no memory growth with repo size),
//!   then [`Collector::finish`] reads each repo from the spool.
//!
//! A repo is read from the files of one layer: a blob whose commit is in
//! another layer is scanned there and named across layers by [`names`].
//! Every bound (objects,
//! inflated bytes, object size, delta depth, spool size) that stops part of
//! a store from being read is reported as an error, so the scan is not clean.
//! Not owned here: what a blob's bytes contain (the content scanner decides).

pub(crate) mod delta;
#[doc(hidden)]
pub mod fuzz;
pub(crate) mod history;
pub(crate) mod loose;
pub mod names;
pub(crate) mod pack;

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, Write};

use self::pack::{FileRegion, Source};

/// Why part of a store could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed data.
    #[error("corrupt: {0}")]
    Corrupt(&'static str),
    /// A zlib stream did not inflate.
    #[error("zlib: {0}")]
    Zlib(String),
    /// An object larger than the per-object bound (its declared size).
    #[error("object of {0} bytes exceeds the size limit")]
    TooLarge(u64),
    /// A store-wide bound was hit.
    #[error("limit reached: {0}")]
    Limit(String),
    /// Reading the spooled file failed.
    #[error("read error: {0}")]
    Io(io::Error),
}

/// A git object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A commit.
    Commit,
    /// A tree (directory listing).
    Tree,
    /// File content.
    Blob,
    /// An annotated tag.
    Tag,
}

impl Kind {
    /// From the loose-object header word.
    pub fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "commit" => Kind::Commit,
            "tree" => Kind::Tree,
            "blob" => Kind::Blob,
            "tag" => Kind::Tag,
            _ => return None,
        })
    }

    /// The header word.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
            Kind::Tag => "tag",
        }
    }
}

/// A SHA-1 object id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(pub [u8; 20]);

impl Oid {
    /// From 40 hex digits.
    pub fn from_hex(hex_id: &str) -> Option<Oid> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(hex_id, &mut out).ok()?;
        Some(Oid(out))
    }

    /// The id git computes for an object: SHA-1 of `"<type> <len>\0"` + data.
    pub fn of(kind: Kind, data: &[u8]) -> Oid {
        use sha1::Digest as _;
        let mut h = sha1::Sha1::new();
        h.update(format!("{} {}\0", kind.name(), data.len()).as_bytes());
        h.update(data);
        Oid(h.finalize().into())
    }
}

impl std::fmt::Display for Oid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for Oid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Oid({self})")
    }
}

/// Bounds on reading one layer's object stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Objects per repo (loose plus packed).
    pub max_objects: usize,
    /// Bytes inflated per repo, deltas and their results included.
    pub max_inflated: u64,
    /// Largest single object (inflated) read.
    pub max_object_size: u64,
    /// Longest delta chain followed.
    pub max_delta_depth: usize,
    /// Bytes of object-store files spooled per layer.
    pub max_spool: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_objects: 1_000_000,
            max_inflated: 8 << 30,
            max_object_size: 64 << 20,
            max_delta_depth: 1_000,
            max_spool: 8 << 30,
        }
    }
}

/// What an object-store file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `objects/xx/yyyy…`: one loose object with this id.
    Loose(Oid),
    /// `objects/pack/*.pack`.
    Pack,
    /// `objects/pack/*.idx`.
    Index,
}

/// Recognises a file of a git object store by its path; returns the repo's
/// object directory (`/app/.git/objects`) and what the file is. Any
/// directory with this shape counts (bare repos, submodule stores under
/// `.git/modules`); content that turns out not to be git is scanned as a
/// plain file.
pub fn classify(path: &str) -> Option<(&str, FileKind)> {
    let (dir, name) = path.rsplit_once('/')?;
    // Every layer file comes here: most names are neither a loose object's
    // 38 hex digits nor a pack or its index.
    if name.len() != 38 && !name.ends_with(".pack") && !name.ends_with(".idx") {
        return None;
    }
    if let Some(objects) = dir.strip_suffix("/pack") {
        if objects.ends_with("/objects") {
            if name.ends_with(".pack") {
                return Some((objects, FileKind::Pack));
            }
            if name.ends_with(".idx") {
                return Some((objects, FileKind::Index));
            }
        }
        return None;
    }
    let (objects, fan) = dir.rsplit_once('/')?;
    let hexish = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if objects.ends_with("/objects")
        && fan.len() == 2
        && name.len() == 38
        && hexish(fan)
        && hexish(name)
    {
        let oid = Oid::from_hex(&format!("{fan}{name}"))?;
        return Some((objects, FileKind::Loose(oid)));
    }
    None
}

/// One object-store file: its image path, what it is, and its bytes.
pub(crate) struct RepoFile<'a> {
    /// Absolute image path of the file.
    pub path: &'a str,
    /// What it is.
    pub kind: FileKind,
    /// Its bytes.
    pub src: &'a dyn Source,
}

/// A blob read from a store, ready to scan.
#[derive(Debug)]
pub struct Blob {
    /// Index into the repo's files of the file that held it (loose object or pack).
    pub file: usize,
    /// `<commit>:<path>` of its first appearance in history, or its own id
    /// when no commit of the store reaches it.
    pub name: String,
    /// The content.
    pub data: Vec<u8>,
}

/// What reading one repo left unread.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Problems that left objects unread (each an error: the scan is incomplete).
    pub errors: Vec<String>,
    /// Files that are not git after all (indexes into the repo's files):
    /// the caller scans them as plain files.
    pub not_git: Vec<usize>,
    /// `(blob, committer time, <commit>:<path>)` for blobs the store's
    /// commits reach but it does not hold (another layer may): see [`names`].
    pub foreign: Vec<(Oid, i64, String)>,
}

/// Reads every blob of one repo's files and calls `emit` for each; the
/// fuzzable entry point over any `pack::Source`s. Problems are collected in the
/// outcome; nothing panics or grows past `limits`.
pub(crate) fn read_repo(
    files: &[RepoFile<'_>],
    limits: Limits,
    emit: &mut dyn FnMut(Blob),
) -> Outcome {
    history::Repo::open(files, limits).read_blobs(emit)
}

/// `read_repo` over one pack (and its index, if any) in memory.
pub fn read_pack_bytes(pack: &[u8], idx: Option<&[u8]>, limits: Limits) -> (Vec<Blob>, Outcome) {
    let (pack, idx) = (pack::Bytes(pack), idx.map(pack::Bytes));
    let mut files =
        vec![RepoFile { path: "/objects/pack/p.pack", kind: FileKind::Pack, src: &pack }];
    if let Some(idx) = &idx {
        files.push(RepoFile { path: "/objects/pack/p.idx", kind: FileKind::Index, src: idx });
    }
    let mut blobs = Vec::new();
    let outcome = read_repo(&files, limits, &mut |b| blobs.push(b));
    (blobs, outcome)
}

/// One spooled file.
#[derive(Debug)]
struct Spooled {
    path: String,
    objects: String,
    kind: FileKind,
    start: u64,
    len: u64,
}

/// Gathers the object-store files of one layer during its walk.
#[derive(Debug)]
pub struct Collector {
    limits: Limits,
    spool: Option<std::fs::File>,
    written: u64,
    files: Vec<Spooled>,
    errors: Vec<String>,
    /// Names of blobs held by other layers, filled by [`Collector::finish`].
    names: names::BlobNames,
}

/// A blob to scan, or a non-git file to scan raw, from [`Collector::finish`].
pub enum Item<'a> {
    /// A blob from history: the store file that held it, and the blob.
    Blob(&'a str, Blob),
    /// A file shaped like a store file whose content is not git.
    Plain(&'a str, &'a mut dyn Read),
}

impl Collector {
    /// An empty collector.
    pub fn new(limits: Limits) -> Self {
        Collector {
            limits,
            spool: None,
            written: 0,
            files: Vec::new(),
            errors: Vec::new(),
            names: names::BlobNames::default(),
        }
    }

    /// True when nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.errors.is_empty()
    }

    /// Spools one store file (the caller checked it with [`classify`]).
    ///
    /// # Errors
    /// Errors of `reader` (the layer stream). Spool failures and the spool
    /// bound become errors of the outcome instead.
    pub fn add(&mut self, path: &str, reader: &mut dyn Read) -> io::Result<()> {
        let Some((objects, kind)) = classify(path) else { return Ok(()) };
        if self.spool.is_none() {
            match tempfile::tempfile() {
                Ok(f) => self.spool = Some(f),
                Err(e) => {
                    self.errors.push(format!("{path}: cannot spool git object store file: {e}"));
                    return Ok(());
                }
            }
        }
        let room = self.limits.max_spool.saturating_sub(self.written);
        let Some(spool) = self.spool.as_mut() else { return Ok(()) };
        let start = self.written;
        let mut buf = vec![0u8; 64 * 1024];
        let mut len = 0u64;
        let mut spool_error = None;
        loop {
            // Reader errors are the layer's and end the walk; spool errors only this file.
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if len + n as u64 > room {
                self.errors.push(format!(
                    "{path}: git object store files exceed {} bytes in this layer; not read",
                    self.limits.max_spool
                ));
                self.written += len;
                return Ok(());
            }
            if let Err(e) = spool.write_all(&buf[..n]) {
                spool_error = Some(e);
                break;
            }
            len += n as u64;
        }
        self.written += len;
        if let Some(e) = spool_error {
            self.errors.push(format!("{path}: cannot spool git object store file: {e}"));
            // The spool's length is unknown now: no later file could be placed in it.
            self.written = self.limits.max_spool;
            return Ok(());
        }
        self.files.push(Spooled {
            path: path.to_owned(),
            objects: objects.to_owned(),
            kind,
            start,
            len,
        });
        Ok(())
    }

    /// Reads every repo collected and calls `visit` for each blob and each
    /// non-git file; returns the errors (every one means something was not
    /// read) and the names of blobs held by other layers ([`names`]).
    pub fn finish(mut self, visit: &mut dyn FnMut(Item<'_>)) -> (Vec<String>, names::BlobNames) {
        let mut errors = std::mem::take(&mut self.errors);
        let mut foreign = std::mem::take(&mut self.names);
        let Some(mut spool) = self.spool.take() else { return (errors, foreign) };
        if let Err(e) = spool.flush().and_then(|()| spool.rewind()) {
            errors.push(format!("git object store spool unreadable: {e}"));
            return (errors, foreign);
        }
        let mut repos: BTreeMap<&str, Vec<&Spooled>> = BTreeMap::new();
        for f in &self.files {
            repos.entry(f.objects.as_str()).or_default().push(f);
        }
        for (objects, spooled) in repos {
            let regions: Vec<FileRegion<'_>> = spooled
                .iter()
                .map(|f| FileRegion { file: &spool, start: f.start, len: f.len })
                .collect();
            let files: Vec<RepoFile<'_>> = spooled
                .iter()
                .zip(&regions)
                .map(|(f, r)| RepoFile { path: &f.path, kind: f.kind, src: r })
                .collect();
            let outcome = read_repo(&files, self.limits, &mut |blob| {
                let path = files[blob.file].path;
                visit(Item::Blob(path, blob));
            });
            for (blob, time, name) in outcome.foreign {
                foreign.insert(objects, blob, time, name);
            }
            for i in outcome.not_git {
                let mut reader = pack::SourceReader::new(files[i].src, 0);
                visit(Item::Plain(files[i].path, &mut reader));
            }
            errors.extend(outcome.errors.into_iter().map(|e| format!("git store {objects}: {e}")));
        }
        (errors, foreign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn git(repo: &Path, args: &[&str]) {
        let o = Command::new("git")
            .current_dir(repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["-c", "user.name=T", "-c", "user.email=t@example.invalid", "-c", "gc.auto=0"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// A packed repo (by the real git CLI) whose file went through three versions.
    fn packed_repo() -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        git(repo, &["init", "-q"]);
        let base: String = (0..500).map(|i| format!("line {i} of the FAKE test file\n")).collect();
        for (i, tail) in ["", "FAKE_EXTRA_ONE\n", "FAKE_EXTRA_TWO_LONGER\n"].iter().enumerate() {
            std::fs::write(repo.join("f.txt"), format!("{base}{tail}")).unwrap();
            git(repo, &["add", "f.txt"]);
            git(repo, &["commit", "-q", "-m", &format!("v{i}")]);
        }
        git(repo, &["gc", "-q", "--aggressive", "--prune=now"]);
        let pack_dir = repo.join(".git/objects/pack");
        let find = |ext: &str| {
            let p = std::fs::read_dir(&pack_dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == ext))
                .unwrap();
            std::fs::read(p).unwrap()
        };
        (find("pack"), find("idx"))
    }

    #[test]
    fn classifies_store_paths() {
        let loose = "/app/.git/objects/ab/0123456789abcdef0123456789abcdef012345";
        assert!(matches!(classify(loose), Some(("/app/.git/objects", FileKind::Loose(_)))));
        assert_eq!(
            classify("/srv/r.git/objects/pack/pack-1.pack"),
            Some(("/srv/r.git/objects", FileKind::Pack))
        );
        assert_eq!(
            classify("/srv/r.git/objects/pack/pack-1.idx").map(|c| c.1),
            Some(FileKind::Index)
        );
        for no in [
            "/app/objects/AB/0123456789abcdef0123456789abcdef012345",
            "/app/objects/ab/0123",
            "/app/.git/objects/info/packs",
            "/app/pack/x.pack",
            "/app/.git/HEAD",
        ] {
            assert!(classify(no).is_none(), "{no}");
        }
    }

    #[test]
    fn pack_with_and_without_index_gives_every_version() {
        let (pack, idx) = packed_repo();
        let limits = Limits::default();
        let (with, outcome) = read_pack_bytes(&pack, Some(&idx), limits);
        assert!(outcome.errors.is_empty() && outcome.not_git.is_empty(), "{outcome:?}");
        let mut names: Vec<&str> = with.iter().map(|b| b.name.split(':').nth(1).unwrap()).collect();
        names.sort();
        assert_eq!(names, ["f.txt", "f.txt", "f.txt"]);
        assert!(with.iter().any(|b| b.data.ends_with(b"FAKE_EXTRA_ONE\n")));
        let (without, outcome) = read_pack_bytes(&pack, None, limits);
        assert!(outcome.errors.is_empty(), "{outcome:?}");
        let mut a: Vec<_> = with.iter().map(|b| (&b.name, &b.data)).collect();
        let mut b: Vec<_> = without.iter().map(|b| (&b.name, &b.data)).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn bounds_are_reported_as_errors() {
        let (pack, idx) = packed_repo();
        let cases = [
            Limits { max_objects: 2, ..Limits::default() },
            Limits { max_delta_depth: 0, ..Limits::default() },
            Limits { max_object_size: 1000, ..Limits::default() },
            Limits { max_inflated: 20_000, ..Limits::default() },
        ];
        for limits in cases {
            let (_, outcome) = read_pack_bytes(&pack, Some(&idx), limits);
            assert!(!outcome.errors.is_empty(), "{limits:?}");
        }
    }

    #[test]
    fn mangled_packs_never_panic() {
        let (pack, idx) = packed_repo();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..300usize {
            let mut p = pack.clone();
            let mut x = idx.clone();
            for _ in 0..(1 + round % 8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let target = if state.is_multiple_of(3) { &mut x } else { &mut p };
                let at = (state >> 8) as usize % target.len();
                target[at] = (state >> 32) as u8;
            }
            if round.is_multiple_of(5) {
                p.truncate((state as usize) % p.len());
            }
            let _ = read_pack_bytes(&p, Some(&x), Limits::default());
            let _ = read_pack_bytes(&p, None, Limits::default());
        }
    }
}
