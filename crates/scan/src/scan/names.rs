//! Secrets in tar entry names and link targets: a file named after a token
//! (`/run/secrets/ghp_…`), a symlink whose target is one (`token ->
//! xoxb-…`), a whiteout that names the file it deletes (`.wh.ghp_…`). The
//! bytes are in the layer's tar headers (including PAX `path`/`linkpath`
//! records and GNU long names, which the tar reader has already joined),
//! whatever the file holds.
//!
//! Each entry's path (and symlink or hardlink target) is scanned as text
//! with the pattern engine, and a hit is attributed to the entry, so its
//! status comes from the later layers like a file's content (a name whose
//! entry a later layer deletes is `deleted`). Only the part of a path this
//! layer has not already shown is reported: the entry's own name, and
//! those of ancestor directories the layer holds no entry for (a
//! directory named after a token is reported once, at the directory, not
//! again for each file below it). The full path is scanned all the same,
//! so the `/` before a name gives rules their word boundary.
//!
//! Names are collected and scanned in batches of `BATCH` bytes: one
//! engine call per batch, not per entry, since layers hold many small
//! entries.
//!
//! The names of an archive's members inside a layer file (a `.tar.gz`, a
//! jar, a `.deb`'s data tar) go through the same scan, one [`NameScan`]
//! per archive ([`NameScan::capped`]), with the member's path inside the
//! archive in place of the image path: `nested` collects them, the content
//! scanner names the hits after their members. An archive's names are one
//! file for the findings budget: at most so many hits per rule are kept,
//! the rest counted.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use sha2::{Digest as _, Sha256};

use super::cap::HitCap;
use super::{Hit, Scanner};

/// Which part of an entry's header held the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameField {
    /// The entry's path (or a directory in it).
    Path,
    /// A symbolic link's target.
    SymlinkTarget,
    /// A hard link's target.
    HardlinkTarget,
    /// Other text of the entry's tar header: an extended attribute (PAX
    /// `SCHILY.xattr.*`), another PAX record, an owner name.
    HeaderRecord,
}

impl NameField {
    /// The finding's `location` for a hit in this field.
    pub fn as_str(self) -> &'static str {
        match self {
            NameField::Path => "entry name",
            NameField::SymlinkTarget => "symlink target",
            NameField::HardlinkTarget => "hardlink target",
            NameField::HeaderRecord => "tar header record",
        }
    }

    /// The field a `location` names, if it names one.
    pub fn parse(location: &str) -> Option<Self> {
        [
            NameField::Path,
            NameField::SymlinkTarget,
            NameField::HardlinkTarget,
            NameField::HeaderRecord,
        ]
        .into_iter()
        .find(|f| f.as_str() == location)
    }
}

/// A hit in an entry's header text.
#[derive(Debug)]
pub struct NameHit {
    /// The entry's path (an image path, or a member's path inside its archive).
    pub path: String,
    /// The entry's 1-based ordinal in its layer (or archive).
    pub ordinal: u32,
    /// Which text held the secret.
    pub field: NameField,
    /// The hit: its offset is within that text, its line 1.
    pub hit: Hit,
}

/// Text collected before a batch is scanned.
const BATCH: usize = 64 << 10;

/// The key of a directory's path: the first 128 bits of its SHA-256. A
/// layer author chooses every name, so a weaker hash let one directory
/// stand for another: with 64-bit FNV-1a, a directory whose path collided
/// with one shown before was taken as shown, and a secret in its name was
/// never scanned (two such paths cost a birthday search of 2^32 hashes).
fn dir_key(digest: impl AsRef<[u8]>) -> u128 {
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest.as_ref()[..16]);
    u128::from_be_bytes(first)
}

/// What an entry adds beside its path.
#[derive(Debug, Clone, Copy)]
pub enum Link<'a> {
    /// Nothing (a file, directory, whiteout, device).
    None,
    /// A symbolic link's target, as written.
    Symlink(&'a str),
    /// A hard link's target (an image path).
    Hardlink(&'a str),
}

/// A set of path keys: the keys are hashes already, so the set uses them
/// as they are (hashing them again with SipHash cost more than the rest of
/// the name scan).
type HashedSet = HashSet<u128, BuildHasherDefault<Prehashed>>;

/// The [`Hasher`] of [`HashedSet`]: the key is its own hash.
#[derive(Debug, Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else in all the same.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// One scanned piece of text and the entry it belongs to.
#[derive(Debug)]
struct Piece {
    /// The entry's path: a range of the batch (the text of the entry's
    /// `Path` piece), so collecting a name allocates nothing.
    path: (usize, usize),
    ordinal: u32,
    field: NameField,
    /// Start of the piece in the batch.
    start: usize,
    /// Hits ending at or before this offset were reported already (an
    /// ancestor directory's name).
    new_from: usize,
    /// End of the piece (before its newline).
    end: usize,
}

/// One layer's entry names, scanned in batches; hits are attributed to
/// the entry (image path, ordinal) that holds them.
#[derive(Debug)]
pub struct NameScan<'s> {
    scanner: &'s Scanner,
    text: Vec<u8>,
    pieces: Vec<Piece>,
    /// Directories of this layer whose names were scanned (as entries, or
    /// as ancestors of an entry), by the hash of their path: one word per
    /// directory, like the layer's index, however deep (a path is hashed in
    /// one pass, every ancestor's hash on the way).
    dirs: HashedSet,
    /// The ancestors' (end, hash) of the entry being added, reused.
    ancestors: Vec<(usize, u128)>,
    /// The directory of the last entry added (empty at the root): all its
    /// ancestors and itself are in `dirs`.
    last_dir: String,
    hits: Vec<NameHit>,
    /// The findings budget: unbounded for a layer (the run's budget applies), per rule for
    /// an archive's members.
    cap: HitCap,
}

impl<'s> NameScan<'s> {
    /// A scan of one layer's names.
    pub fn new(scanner: &'s Scanner) -> Self {
        Self::capped(scanner, usize::MAX)
    }

    /// A scan that keeps at most `max_per_rule` hits of each rule and counts the rest
    /// (see [`NameScan::finish_capped`]): one archive's member names.
    pub fn capped(scanner: &'s Scanner, max_per_rule: usize) -> Self {
        NameScan {
            scanner,
            text: Vec::new(),
            pieces: Vec::new(),
            dirs: HashedSet::default(),
            ancestors: Vec::new(),
            last_dir: String::new(),
            hits: Vec::new(),
            cap: HitCap::new(max_per_rule),
        }
    }

    /// Adds one entry: its normalised absolute `path`, its 1-based
    /// `ordinal` in the layer, whether it is a directory, its link, and the
    /// other text of its header (`KEY=VALUE` lines, see
    /// `tarstream::RawEntry::records`).
    pub fn add(&mut self, path: &str, ordinal: u32, is_dir: bool, link: Link<'_>, records: &[u8]) {
        let name_at = path.rfind('/').map_or(0, |i| i + 1);
        let dir = &path[..name_at.saturating_sub(1)];
        let mut new_from = name_at;
        // Tar streams list a directory's entries together: when this entry's
        // directory is the last one's, its ancestors were all shown already.
        // Else most entries' directory was shown already, and then so were its own
        // ancestors: one hash and one lookup, before hashing every prefix.
        if dir != self.last_dir
            && (dir.is_empty() || !self.dirs.contains(&dir_key(Sha256::digest(dir.as_bytes()))))
        {
            // The ancestors (the key of each prefix that ends before a `/`, the root's
            // excepted: one streaming hash, read out at each), then the first one, from
            // the root, this layer has not shown yet.
            self.ancestors.clear();
            let mut h = Sha256::new();
            let mut from = 0;
            for (i, &b) in dir.as_bytes().iter().enumerate() {
                if b == b'/' && i > 0 {
                    h.update(&dir.as_bytes()[from..i]);
                    from = i;
                    self.ancestors.push((i, dir_key(h.clone().finalize())));
                }
            }
            if !dir.is_empty() {
                h.update(&dir.as_bytes()[from..]);
                self.ancestors.push((dir.len(), dir_key(h.finalize())));
            }
            for &(end, hash) in self.ancestors.iter().rev() {
                if !self.dirs.insert(hash) {
                    break;
                }
                // Its name starts after the `/` before it.
                new_from = path[..end].rfind('/').map_or(0, |i| i + 1);
            }
        }
        if dir != self.last_dir {
            self.last_dir.clear();
            self.last_dir.push_str(dir);
        }
        if is_dir {
            self.dirs.insert(dir_key(Sha256::digest(path.as_bytes())));
        }
        let at = self.text.len();
        let path_range = (at, at + path.len());
        self.push(path_range, ordinal, NameField::Path, path, new_from);
        match link {
            Link::None => {}
            Link::Symlink(t) => self.push(path_range, ordinal, NameField::SymlinkTarget, t, 0),
            Link::Hardlink(t) => self.push(path_range, ordinal, NameField::HardlinkTarget, t, 0),
        }
        if !records.is_empty() {
            // Extended attributes may be binary (`security.capability`): lossy text is
            // enough to find a credential, which is text.
            let text = String::from_utf8_lossy(records);
            self.push(path_range, ordinal, NameField::HeaderRecord, &text, 0);
        }
        if self.text.len() >= BATCH {
            self.flush();
        }
    }

    fn push(
        &mut self,
        path: (usize, usize),
        ordinal: u32,
        field: NameField,
        text: &str,
        new_from: usize,
    ) {
        let start = self.text.len();
        self.text.extend_from_slice(text.as_bytes());
        let end = self.text.len();
        self.text.push(b'\n');
        self.pieces.push(Piece { path, ordinal, field, start, new_from: start + new_from, end });
    }

    /// Scans the collected text and attributes its hits.
    fn flush(&mut self) {
        if self.pieces.is_empty() {
            return;
        }
        for mut hit in self.scanner.scan_bytes(&self.text) {
            let at = hit.offset as usize;
            let end = at + hit.secret.expose().len();
            let i = self.pieces.partition_point(|p| p.start <= at).saturating_sub(1);
            let Some(p) = self.pieces.get(i) else { continue };
            // A match across two pieces is no name's; one in an ancestor shown already is
            // reported there.
            if at < p.start || end > p.end || end <= p.new_from || !self.cap.keep(hit.rule) {
                continue;
            }
            hit.offset = (at - p.start) as u64;
            hit.line = 1;
            // The batch holds `&str`s only, so the path's bytes are UTF-8.
            let path = String::from_utf8_lossy(&self.text[p.path.0..p.path.1]).into_owned();
            self.hits.push(NameHit { path, ordinal: p.ordinal, field: p.field, hit });
        }
        self.text.clear();
        self.pieces.clear();
    }

    /// Scans what is left and returns every hit, with the entry's image
    /// path and ordinal.
    pub fn finish(self) -> Vec<NameHit> {
        self.finish_capped().0
    }

    /// Like [`NameScan::finish`], with the budget that says how many hits of each rule
    /// were dropped.
    pub fn finish_capped(mut self) -> (Vec<NameHit>, HitCap) {
        self.flush();
        (self.hits, self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_name_is_reported_once_at_its_shallowest_entry() {
        let scanner = crate::scan::test_support::scanner();
        let t = crate::scan::test_support::token("NAMES");
        let mut names = NameScan::new(&scanner);
        // No entry for /run or /run/secrets: the first file reports the directory's name.
        names.add(&format!("/run/{t}/a"), 1, false, Link::None, b"");
        names.add(&format!("/run/{t}/b"), 2, false, Link::None, b"");
        names.add("/app/link", 3, false, Link::Symlink(&t), b"");
        names.add("/app/hard", 4, false, Link::Hardlink(&format!("/run/{t}/a")), b"");
        names.add(&format!("/etc/{t}"), 5, true, Link::None, b"");
        names.add(&format!("/etc/{t}/c"), 6, false, Link::None, b"");
        names.add("/app/x", 7, false, Link::None, format!("SCHILY.xattr.user.k={t}\n").as_bytes());
        let hits = names.finish();
        let got: Vec<(&str, u32, NameField)> =
            hits.iter().map(|h| (h.path.as_str(), h.ordinal, h.field)).collect();
        let a = format!("/run/{t}/a");
        let etc = format!("/etc/{t}");
        assert_eq!(
            got,
            [
                (a.as_str(), 1, NameField::Path),
                ("/app/link", 3, NameField::SymlinkTarget),
                ("/app/hard", 4, NameField::HardlinkTarget),
                (etc.as_str(), 5, NameField::Path),
                ("/app/x", 7, NameField::HeaderRecord),
            ]
        );
        assert!(hits.iter().all(|h| h.hit.secret.expose() == t.as_bytes()));
    }
}
