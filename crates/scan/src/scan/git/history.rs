//! One repo's objects, wherever they are stored (loose or in packs), read
//! with delta chains resolved; commits walked to name each blob
//! `<commit>:<path>` after the oldest commit (by committer time) whose tree
//! holds it.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::pack::{self, EntryKind, Source, SourceReader};
use super::{Blob, Error, FileKind, Kind, Limits, Oid, Outcome, RepoFile, delta, loose};

/// Where an object is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Loc {
    /// A loose object file (index into the files).
    Loose(usize),
    /// A pack (index into the files) and the entry's offset.
    Packed(usize, u64),
}

/// Resolved objects kept for reuse by later delta chains.
const CACHE_BYTES: usize = 64 << 20;

/// Error messages kept per repo; the rest are counted.
const MAX_MESSAGES: usize = 20;

/// A repo being read.
pub struct Repo<'a> {
    files: &'a [RepoFile<'a>],
    limits: Limits,
    objects: HashMap<Oid, Loc>,
    kinds: HashMap<Loc, Kind>,
    cache: HashMap<Loc, (Kind, Rc<Vec<u8>>)>,
    cached_bytes: usize,
    inflated: u64,
    outcome: Outcome,
    dropped: usize,
    /// Set once a store-wide bound stopped the reading.
    stopped: bool,
}

impl<'a> Repo<'a> {
    /// Indexes the objects of `files` (loose ids from their names, packed ids
    /// from the `.idx` beside each pack, or by walking a pack without one).
    pub fn open(files: &'a [RepoFile<'a>], limits: Limits) -> Self {
        let mut repo = Repo {
            files,
            limits,
            objects: HashMap::new(),
            kinds: HashMap::new(),
            cache: HashMap::new(),
            cached_bytes: 0,
            inflated: 0,
            outcome: Outcome::default(),
            dropped: 0,
            stopped: false,
        };
        for (i, f) in files.iter().enumerate() {
            match f.kind {
                FileKind::Loose(oid) => {
                    repo.objects.insert(oid, Loc::Loose(i));
                }
                FileKind::Pack => repo.index_pack(i),
                FileKind::Index => {}
            }
            if repo.objects.len() > limits.max_objects {
                repo.stop(format!("more than {} objects; the rest not read", limits.max_objects));
                break;
            }
        }
        repo
    }

    fn error(&mut self, message: String) {
        if self.outcome.errors.len() < MAX_MESSAGES {
            self.outcome.errors.push(message);
        } else {
            self.dropped += 1;
        }
    }

    fn stop(&mut self, message: String) {
        if !self.stopped {
            self.stopped = true;
            self.error(message);
        }
    }

    fn index_pack(&mut self, i: usize) {
        let f = &self.files[i];
        if pack::header(f.src).is_err() {
            self.outcome.not_git.push(i);
            return;
        }
        let stem = f.path.strip_suffix(".pack").unwrap_or(f.path);
        let idx = self
            .files
            .iter()
            .find(|g| g.kind == FileKind::Index && g.path.strip_suffix(".idx") == Some(stem));
        let from_index = idx.map(|g| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut SourceReader::new(g.src, 0), &mut bytes)
                .map_err(Error::Io)
                .and_then(|_| pack::parse_index(&bytes, self.limits.max_objects))
        });
        match from_index {
            Some(Ok(entries)) => {
                for (oid, offset) in entries {
                    self.objects.entry(oid).or_insert(Loc::Packed(i, offset));
                }
            }
            Some(Err(Error::Limit(m))) => self.stop(format!("{}: {m}", f.path)),
            other => {
                if let Some(Err(e)) = other {
                    self.error(format!("{stem}.idx: {e}; reading the pack without it"));
                }
                self.index_by_walking(i);
            }
        }
    }

    /// Ids of a pack without an index: every entry resolved and hashed.
    fn index_by_walking(&mut self, i: usize) {
        let f = &self.files[i];
        let offsets = match pack::entry_offsets(
            f.src,
            self.limits.max_objects,
            self.limits.max_object_size,
        ) {
            Ok(o) => o,
            Err(e) => {
                self.error(format!("{}: {e}; pack not read", f.path));
                return;
            }
        };
        for offset in offsets {
            match self.load(Loc::Packed(i, offset), 0) {
                Ok((kind, data)) => {
                    self.objects.entry(Oid::of(kind, &data)).or_insert(Loc::Packed(i, offset));
                }
                Err(e) => self.object_error(Loc::Packed(i, offset), &e),
            }
            if self.stopped {
                return;
            }
        }
    }

    fn describe(&self, loc: Loc) -> String {
        match loc {
            Loc::Loose(i) => self.files[i].path.to_owned(),
            Loc::Packed(i, off) => format!("{} at offset {off}", self.files[i].path),
        }
    }

    fn object_error(&mut self, loc: Loc, e: &Error) {
        let at = self.describe(loc);
        match e {
            Error::Limit(m) => self.stop(format!("{at}: {m}")),
            _ => self.error(format!("{at}: {e}; object not read")),
        }
    }

    fn charge(&mut self, bytes: usize) -> Result<(), Error> {
        self.inflated += bytes as u64;
        if self.inflated > self.limits.max_inflated {
            return Err(Error::Limit(format!(
                "more than {} bytes inflated; the rest not read",
                self.limits.max_inflated
            )));
        }
        Ok(())
    }

    fn remember(&mut self, loc: Loc, kind: Kind, data: &Rc<Vec<u8>>) {
        if data.len() > CACHE_BYTES / 4 {
            return;
        }
        if self.cached_bytes + data.len() > CACHE_BYTES {
            self.cache.clear();
            self.cached_bytes = 0;
        }
        self.cached_bytes += data.len();
        self.cache.insert(loc, (kind, Rc::clone(data)));
    }

    fn src(&self, i: usize) -> &'a dyn Source {
        self.files[i].src
    }

    /// An object's kind and bytes, delta chains applied.
    fn load(&mut self, loc: Loc, depth: usize) -> Result<(Kind, Rc<Vec<u8>>), Error> {
        if let Some((k, d)) = self.cache.get(&loc) {
            return Ok((*k, Rc::clone(d)));
        }
        let (file, mut at) = match loc {
            Loc::Loose(i) => {
                let (k, d) =
                    loose::read(SourceReader::new(self.src(i), 0), self.limits.max_object_size)?;
                self.charge(d.len())?;
                return Ok((k, Rc::new(d)));
            }
            Loc::Packed(i, off) => (i, off),
        };
        let src = self.src(file);
        let max = self.limits.max_object_size;
        let mut chain: Vec<(u64, pack::Entry)> = Vec::new();
        let (kind, mut data) = loop {
            if let Some((k, d)) = self.cache.get(&Loc::Packed(file, at)) {
                break (*k, Rc::clone(d));
            }
            if depth + chain.len() > self.limits.max_delta_depth {
                return Err(Error::Limit(format!(
                    "delta chain deeper than {}",
                    self.limits.max_delta_depth
                )));
            }
            let e = pack::entry_at(src, at)?;
            match e.kind {
                EntryKind::Base(k) => {
                    let (d, _) = pack::inflate_at(src, e.data, e.size, max)?;
                    self.charge(d.len())?;
                    break (k, Rc::new(d));
                }
                EntryKind::OfsDelta(base) => {
                    chain.push((at, e));
                    at = base;
                }
                EntryKind::RefDelta(oid) => {
                    chain.push((at, e));
                    let base =
                        *self.objects.get(&oid).ok_or(Error::Corrupt("delta base not in store"))?;
                    break self.load(base, depth + chain.len())?;
                }
            }
        };
        for (at, e) in chain.into_iter().rev() {
            let (d, _) = pack::inflate_at(src, e.data, e.size, max)?;
            self.charge(d.len())?;
            let out = delta::apply(&data, &d, max)?;
            self.charge(out.len())?;
            data = Rc::new(out);
            self.remember(Loc::Packed(file, at), kind, &data);
        }
        Ok((kind, data))
    }

    /// An object's kind without inflating it (headers only; loose objects
    /// inflate a few bytes).
    fn kind(&mut self, loc: Loc, depth: usize) -> Result<Kind, Error> {
        if let Some(k) = self.kinds.get(&loc) {
            return Ok(*k);
        }
        if depth > self.limits.max_delta_depth {
            return Err(Error::Limit(format!(
                "delta chain deeper than {}",
                self.limits.max_delta_depth
            )));
        }
        let kind = match loc {
            Loc::Loose(i) => match loose::kind_of(SourceReader::new(self.src(i), 0)) {
                Ok((k, _)) => k,
                Err(e) => {
                    if !self.outcome.not_git.contains(&i) {
                        self.outcome.not_git.push(i);
                    }
                    return Err(e);
                }
            },
            Loc::Packed(i, off) => match pack::entry_at(self.src(i), off)?.kind {
                EntryKind::Base(k) => k,
                EntryKind::OfsDelta(base) => self.kind(Loc::Packed(i, base), depth + 1)?,
                EntryKind::RefDelta(oid) => {
                    let base =
                        *self.objects.get(&oid).ok_or(Error::Corrupt("delta base not in store"))?;
                    self.kind(base, depth + 1)?
                }
            },
        };
        self.kinds.insert(loc, kind);
        Ok(kind)
    }

    /// Reads every blob and calls `emit` with its name; returns what was
    /// left unread.
    pub fn read_blobs(mut self, emit: &mut dyn FnMut(Blob)) -> Outcome {
        let mut all: Vec<(Loc, Oid)> = self.objects.iter().map(|(o, l)| (*l, *o)).collect();
        // Storage order: pack neighbours share delta bases, so the cache serves them.
        all.sort_unstable();
        let mut commits = Vec::new();
        let mut blobs = Vec::new();
        for &(loc, oid) in &all {
            match self.kind(loc, 0) {
                Ok(Kind::Commit) => commits.push((loc, oid)),
                Ok(Kind::Blob) => blobs.push((loc, oid)),
                Ok(_) => {}
                // A loose file that is not git is handed back to be scanned raw.
                Err(_) if matches!(loc, Loc::Loose(i) if self.outcome.not_git.contains(&i)) => {}
                Err(e) => self.object_error(loc, &e),
            }
            if self.stopped {
                break;
            }
        }
        let names = if self.stopped { HashMap::new() } else { self.name_blobs(&commits) };
        for (loc, oid) in blobs {
            if self.stopped {
                break;
            }
            match self.load(loc, 0) {
                Ok((_, data)) => {
                    let file = match loc {
                        Loc::Loose(i) | Loc::Packed(i, _) => i,
                    };
                    let name = names.get(&oid).cloned().unwrap_or_else(|| oid.to_string());
                    let data = Rc::try_unwrap(data).unwrap_or_else(|rc| (*rc).clone());
                    emit(Blob { file, name, data });
                }
                Err(e) => self.object_error(loc, &e),
            }
        }
        if self.dropped > 0 {
            self.outcome.errors.push(format!("and {} more unreadable objects", self.dropped));
        }
        self.outcome
    }

    /// `<commit>:<path>` for every blob reachable from a commit, after the
    /// oldest such commit.
    fn name_blobs(&mut self, commits: &[(Loc, Oid)]) -> HashMap<Oid, String> {
        let mut dated: Vec<(i64, Oid, Oid)> = Vec::new();
        for &(loc, oid) in commits {
            match self.load(loc, 0) {
                Ok((_, data)) => match parse_commit(&data) {
                    Some((tree, time)) => dated.push((time, oid, tree)),
                    None => self.error(format!("{}: commit {oid} unparsable", self.describe(loc))),
                },
                Err(e) => self.object_error(loc, &e),
            }
            if self.stopped {
                return HashMap::new();
            }
        }
        dated.sort_unstable();
        let mut names: HashMap<Oid, String> = HashMap::new();
        let mut seen: HashSet<Oid> = HashSet::new();
        for (time, commit, root) in dated {
            let mut stack = vec![(root, String::new())];
            while let Some((tree, prefix)) = stack.pop() {
                if !seen.insert(tree) {
                    continue;
                }
                let Some(&loc) = self.objects.get(&tree) else { continue };
                let data = match self.load(loc, 0) {
                    Ok((Kind::Tree, d)) => d,
                    Ok(_) => continue,
                    Err(e) => {
                        self.object_error(loc, &e);
                        if self.stopped {
                            return names;
                        }
                        continue;
                    }
                };
                for (mode, name, oid) in TreeEntries::new(&data) {
                    let path = format!("{prefix}{name}");
                    match mode {
                        b"40000" => stack.push((oid, format!("{path}/"))),
                        // Submodule commits live in another store.
                        b"160000" => {}
                        _ => {
                            let name =
                                names.entry(oid).or_insert_with(|| format!("{commit}:{path}"));
                            // Another layer may hold it: keep its name for the image to pool.
                            if !self.objects.contains_key(&oid)
                                && self.outcome.foreign.len() < super::names::MAX_NAMES_PER_REPO
                                && name.starts_with(&commit.to_string())
                            {
                                self.outcome.foreign.push((oid, time, name.clone()));
                            }
                        }
                    }
                }
            }
        }
        names
    }
}

/// The tree id and committer time of a commit.
fn parse_commit(data: &[u8]) -> Option<(Oid, i64)> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\n\n").next()?;
    let mut tree = None;
    let mut time = 0;
    for line in head.lines() {
        if let Some(t) = line.strip_prefix("tree ") {
            tree = Oid::from_hex(t.trim());
        } else if let Some(c) = line.strip_prefix("committer ") {
            let mut parts = c.rsplit(' ');
            let _tz = parts.next();
            time = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
        }
    }
    Some((tree?, time))
}

/// Iterates `<mode> <name>\0<20-byte id>` tree entries; stops at the first
/// malformed one.
struct TreeEntries<'d> {
    data: &'d [u8],
}

impl<'d> TreeEntries<'d> {
    fn new(data: &'d [u8]) -> Self {
        TreeEntries { data }
    }
}

impl<'d> Iterator for TreeEntries<'d> {
    type Item = (&'d [u8], String, Oid);

    fn next(&mut self) -> Option<Self::Item> {
        let space = memchr::memchr(b' ', self.data)?;
        let nul = space + memchr::memchr(0, &self.data[space..])?;
        let id = self.data.get(nul + 1..nul + 21)?;
        let mode = &self.data[..space];
        let name = crate::image::path::decode_name(&self.data[space + 1..nul]);
        let mut oid = [0u8; 20];
        oid.copy_from_slice(id);
        self.data = &self.data[nul + 21..];
        Some((mode, name, Oid(oid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_and_trees_parse() {
        let c = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent 1111111111111111111111111111111111111111\nauthor A <a@x> 1700000000 +0000\ncommitter C <c@x> 1700000123 +0100\n\nmsg\n";
        let (tree, time) = parse_commit(c).unwrap();
        assert_eq!(tree.to_string(), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
        assert_eq!(time, 1_700_000_123);
        assert!(parse_commit(b"no tree here").is_none());
        let mut t = b"100644 a.txt\0".to_vec();
        t.extend([7u8; 20]);
        t.extend(b"40000 dir\0");
        t.extend([9u8; 20]);
        t.extend(b"100644 trunc\0abc");
        let entries: Vec<_> = TreeEntries::new(&t).collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].0, b"40000");
        assert_eq!(entries[1].1, "dir");
    }
}
