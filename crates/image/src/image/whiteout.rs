//! The fate of every file version: does the final image still show what
//! layer N wrote at a path, or did a later layer delete or overwrite it?
//!
//! Each layer walk produces a [`LayerIndex`] (what it wrote, whited out, or
//! made opaque). [`Timeline`] answers, for any (layer, path) version, its
//! [`Fate`] by looking only at later layers' indexes, so layers can be walked
//! in parallel and resolved afterwards. The rules follow the OCI image spec's
//! changeset semantics: whiteouts and opaque markers apply to lower layers
//! only, and are applied before the layer's own writes.
//!
//! One exception follows the appliers instead: containerd (and Docker on
//! containerd) apply a layer's entries in tar order, so a hardlink made
//! *before* a removal marker in the same layer links the lower file while it
//! is still there, and keeps its bytes visible after the marker removes the
//! lower path. A marker therefore records its entry's ordinal, and a link
//! captures a lower node unless a marker *before* it removed it. (A marker
//! still never removes the layer's own entries, before or after it: the
//! spec's rule, and the conservative answer where appliers differ.)
//!
//! Below a symlink a lower layer left, appliers differ in where an entry
//! lands: a naive one (a full copy: umoci, the vfs drivers) follows the
//! chain of symlinks, overlay keeps the name as written. A version there is
//! held at both places, each for the appliers that look there (a whiteout
//! or hardlink named through the chain counts at the chain's end, for the
//! naive ones only), and stays `Present` while either shows it.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest as _, Sha256};

use super::path::is_same_or_under;

/// What one layer put at a path (not counting whiteouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum NodeKind {
    /// Regular file or hardlink; the key identifies its bytes.
    Content(ContentKey),
    /// Symbolic link; the key identifies its target text.
    Symlink(ContentKey),
    /// Directory.
    Dir,
    /// Device, fifo, or anything else without content.
    Other,
}

/// What identifies a file's bytes or a symlink's target: the first 128
/// bits of their SHA-256. Two versions at a path with the same key are
/// taken as the same bytes put back (`present`), so the key must be one no
/// layer author can match with other bytes: the 64-bit xxh3 it once was
/// let a crafted file replace a secret and leave it reported `present`.
/// Four 32-bit words, so a `Written` record stays 24 bytes (an index
/// entry 40) as with the 64-bit key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ContentKey([u32; 4]);

impl ContentKey {
    /// The key of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ContentKey::from_digest(Sha256::digest(bytes))
    }

    /// The key held in a SHA-256 digest (of bytes hashed as they streamed).
    pub fn from_digest(digest: impl AsRef<[u8]>) -> Self {
        let d = digest.as_ref();
        let word = |at: usize| u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
        ContentKey([word(0), word(4), word(8), word(12)])
    }
}

impl NodeKind {
    /// True for directories.
    pub fn is_dir(self) -> bool {
        matches!(self, NodeKind::Dir)
    }
}

/// A path as the index stores it: the first 128 bits of its SHA-256.
/// Millions of entries then cost a few dozen bytes each instead of a string
/// apiece, and two paths share a key only if they share a SHA-256 prefix of
/// 128 bits: no layer author can make one (a collision costs about 2^64
/// hashes), so a whiteout or a write at one path never stands for another.
/// (The key was once an unseeded 64-bit xxh3, whose collisions anyone can
/// compute: a whiteout of a crafted name then marked a secret that every
/// runtime still shows `deleted`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PathKey([u64; 2]);

fn key(path: &str) -> PathKey {
    key_of(Sha256::digest(path.as_bytes()))
}

/// The key held in a SHA-256 digest: its first 16 bytes.
fn key_of(digest: impl AsRef<[u8]>) -> PathKey {
    let d = digest.as_ref();
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&d[at..at + 8]);
        u64::from_be_bytes(w)
    };
    PathKey([word(0), word(8)])
}

/// Two words, not a `u128`: its 16-byte alignment padded every map entry and
/// event of the index (a third more memory for a layer of small files).
impl std::hash::Hash for PathKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0[0]);
    }
}

/// Stored as one number (a JSON map key in the layer cache).
impl serde::Serialize for PathKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u128((u128::from(self.0[0]) << 64) | u128::from(self.0[1]))
    }
}

impl<'de> serde::Deserialize<'de> for PathKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u128::deserialize(d)?;
        Ok(PathKey([(n >> 64) as u64, n as u64]))
    }
}

/// Keys are already uniform hashes: the map uses their first 64 bits as they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap<V> = HashMap<PathKey, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// A layer's hardlinks in entry order, their paths packed in one string:
/// one allocation for all of them, not one per link (a layer of 150,000
/// links held 150,000 strings, each also 24 bytes in its tuple).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Links {
    entries: Vec<LinkEntry>,
    /// The links' paths, back to back.
    paths: String,
}

/// One hardlink: where its path ends in [`Links::paths`] (it starts where
/// the one before ends), its target's key, and its entry's ordinal.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct LinkEntry {
    end: usize,
    target: PathKey,
    ordinal: u32,
}

impl Links {
    fn push(&mut self, path: &str, target: PathKey, ordinal: u32) {
        self.paths.push_str(path);
        self.entries.push(LinkEntry { end: self.paths.len(), target, ordinal });
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Link `n`: (its path, its target's key, its entry's ordinal).
    fn get(&self, n: usize) -> (&str, PathKey, u32) {
        let start = n.checked_sub(1).map_or(0, |p| self.entries[p].end);
        let e = self.entries[n];
        (&self.paths[start..e.end], e.target, e.ordinal)
    }

    fn ordinal(&self, n: usize) -> u32 {
        self.entries[n].ordinal
    }

    fn targets(&self) -> impl Iterator<Item = PathKey> + '_ {
        self.entries.iter().map(|e| e.target)
    }

    fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        self.paths.shrink_to_fit();
    }
}

/// One change, with its path spelled out, for [`Timeline::stats`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Change {
    Write(NodeKind),
    Whiteout,
    Opaque,
}

/// What the last entry at a path wrote, and which entry it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Written {
    kind: NodeKind,
    /// 1-based position of the entry in the layer's tar stream.
    ordinal: u32,
}

/// The keys of a path's strict ancestors, nearest first (excluding `/`),
/// computed in one pass over the path: a streaming hash is read out (a copy
/// of its state finished) at every `/`, so a path of depth d costs
/// O(length + d) blocks, not O(length × d).
fn ancestor_keys(path: &str) -> Vec<PathKey> {
    let mut h = Sha256::new();
    let bytes = path.as_bytes();
    // Enough for most paths without growing (a growth copies the keys).
    let mut keys = Vec::with_capacity(16);
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        if b == b'/' {
            h.update(&bytes[from..i]);
            from = i;
            keys.push(key_of(h.clone().finalize()));
        }
    }
    keys.reverse();
    keys
}

/// The changes one layer makes, as needed to resolve lower layers' files.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct LayerIndex {
    written: KeyMap<Written>,
    /// Earlier entries at a path that a later entry of the same layer
    /// replaced, with their ordinals (rare: only paths written twice).
    replaced: KeyMap<Vec<Written>>,
    /// Whited-out paths, with the ordinal of the first marker for each.
    whiteouts: KeyMap<u32>,
    /// Opaque directories, with the ordinal of the first marker for each.
    opaques: KeyMap<u32>,
    /// Directories that exist in this layer because something is under them,
    /// with the ordinal of the first entry that needed them.
    implied_dirs: KeyMap<u32>,
    /// Hardlinks in entry order.
    links: Links,
    /// Hardlinks whose target no earlier entry of this layer wrote, as
    /// (position in `links`, target path): the bytes they show are those a
    /// lower layer left at the target, resolved by [`Timeline::with_repeats`].
    #[serde(default)]
    lower_links: Vec<(u32, String)>,
    /// Symlinks this layer wrote, as (path, target as written): an entry of
    /// a later layer under one lands where it points in a naive applier
    /// (see [`Timeline::fate_of`]).
    #[serde(default)]
    symlinks: Vec<(String, String)>,
    /// Whiteouts as written: (path, ordinal), while their names fit in
    /// [`MAX_MARKER_BYTES`]. One under a lower layer's symlink removes, for a
    /// naive applier, what lies where that symlink points (see
    /// [`Timeline::fate_of`]). Opaque markers are not kept: Docker's and
    /// containers/storage's naive applier walks such a symlink itself
    /// (`filepath.Walk` does not follow its root) and removes nothing.
    #[serde(default)]
    markers: Vec<(String, u32)>,
    /// Bytes of names held in `markers`.
    #[serde(default)]
    marker_bytes: usize,
    /// The highest ordinal recorded.
    last_ordinal: u32,
    /// The changes with their paths, kept only when asked for (the `layers`
    /// command counts them; scans do not need them).
    #[serde(skip)]
    named: Option<Vec<(String, Change)>>,
    /// Bytes of names held in `named`.
    #[serde(skip)]
    named_bytes: usize,
    /// True when `named` was dropped for exceeding [`MAX_NAMED_BYTES`].
    #[serde(skip)]
    names_dropped: bool,
    /// The directory of the last entry recorded and its first ordinal in
    /// `implied_dirs` (or a later one): the next entry's is most often the same.
    #[serde(skip)]
    last_dir: (u32, String),
}

/// Bytes of path names one layer's index keeps for [`Timeline::stats`]; past
/// it the names are dropped and the layer's counts are unknown.
pub const MAX_NAMED_BYTES: usize = 16 << 20;

/// Bytes of whiteout names one layer's index keeps to resolve them through
/// lower layers' symlinks; past it, the later whiteouts are read as written
/// only (what overlay does).
pub const MAX_MARKER_BYTES: usize = 4 << 20;

/// Entries of one layer that may write the same path. Real layers write a
/// path once (twice at most, when a tool appends); each version's status is
/// resolved against the others and their hardlinks, so without a bound a
/// path written N times with N links costs N² work.
pub const MAX_VERSIONS: usize = 64;

/// Layers that may touch a hardlink's lower target before the link's
/// identity is left unresolved (taken as different bytes): resolving one
/// link visits each of them.
pub const MAX_LINK_OWNERS: usize = 256;

/// Lower layers' symlinks a naive applier follows while resolving one
/// entry's parent directory before it gives up: the kernel's limit
/// (`MAXSYMLINKS`), since Docker's and containers/storage's vfs drivers
/// extract in a chroot where the kernel resolves the path. (umoci's
/// `securejoin` allows 255; a chain that long is an image no
/// chroot-extracting runtime can run.)
pub const MAX_LOWER_HOPS: usize = 40;

impl LayerIndex {
    /// An index that also keeps every path, for [`Timeline::stats`].
    pub fn with_names() -> Self {
        LayerIndex { named: Some(Vec::new()), ..LayerIndex::default() }
    }

    /// Records a file, directory, link or special node written at `path`,
    /// as the next entry of the layer. A later record for the same path in
    /// the same layer replaces the earlier one (the last entry wins).
    #[cfg(test)]
    pub fn write(&mut self, path: String, kind: NodeKind) {
        let ordinal = self.last_ordinal.saturating_add(1);
        self.write_version(&path, kind, ordinal);
    }

    /// `LayerIndex::write` for the entry at 1-based position `ordinal`.
    /// Takes the path by reference: it is kept only when names are (once per
    /// entry of a layer of 300,000 files, a copy each was measurable).
    pub fn write_version(&mut self, path: &str, kind: NodeKind, ordinal: u32) {
        self.last_ordinal = self.last_ordinal.max(ordinal);
        self.imply_parents(path, ordinal);
        let k = key(path);
        if let Some(old) = self.written.insert(k, Written { kind, ordinal }) {
            self.replaced.entry(k).or_default().push(old);
        }
        self.name(path, Change::Write(kind));
    }

    /// Keeps a change's name for [`Timeline::stats`], within [`MAX_NAMED_BYTES`].
    fn name(&mut self, path: &str, change: Change) {
        let Some(n) = &mut self.named else { return };
        self.named_bytes += path.len() + 32;
        if self.named_bytes > MAX_NAMED_BYTES {
            self.named = None;
            self.names_dropped = true;
            return;
        }
        n.push((path.to_owned(), change));
    }

    /// True when the layer had more names than [`MAX_NAMED_BYTES`] allows:
    /// its [`Timeline::stats`] counts are not known.
    pub fn names_dropped(&self) -> bool {
        self.names_dropped
    }

    /// Keeps the target of the symlink just recorded at `path` (see
    /// `symlinks`).
    pub fn symlink_target(&mut self, path: &str, target: &str) {
        self.symlinks.push((path.to_owned(), target.to_owned()));
    }

    /// Records a hardlink at `path` to `target` (entry `ordinal`). The link
    /// shows the bytes at `target` and takes their identity, so a link that
    /// puts the same bytes back at a path is an identical re-add there, as a
    /// file entry would be. When an earlier entry of this layer wrote
    /// `target`, that is its identity now; otherwise the target is in a
    /// lower layer, `kind` stands in, and [`Timeline::with_repeats`]
    /// resolves it against the layers below.
    pub fn link(&mut self, path: &str, target: &str, kind: NodeKind, ordinal: u32) {
        let target_key = key(target);
        let kind = match self.written.get(&target_key) {
            Some(w) if !w.kind.is_dir() => w.kind,
            Some(_) => kind,
            None => {
                self.lower_links.push((self.links.len() as u32, target.to_owned()));
                kind
            }
        };
        self.write_version(path, kind, ordinal);
        self.links.push(path, target_key, ordinal);
    }

    /// Gives back the room its lists grew into but do not use (up to half
    /// of each, since a list doubles as it grows): called once the layer
    /// is walked, as the index is then kept until the findings are out.
    pub fn shrink_to_fit(&mut self) {
        self.links.shrink_to_fit();
        self.lower_links.shrink_to_fit();
        self.symlinks.shrink_to_fit();
        self.markers.shrink_to_fit();
    }

    /// The version at `k` that entry `ordinal` sees: the last write there
    /// before it, if any.
    fn version_before(&self, k: PathKey, ordinal: u32) -> Option<Written> {
        let last = self.written.get(&k)?;
        self.replaced
            .get(&k)
            .into_iter()
            .flatten()
            .chain([last])
            .filter(|w| w.ordinal < ordinal)
            .max_by_key(|w| w.ordinal)
            .copied()
    }

    /// Sets the identity of what entry `ordinal` wrote at `k`.
    fn set_kind(&mut self, k: PathKey, ordinal: u32, kind: NodeKind) {
        if let Some(w) = self.written.get_mut(&k)
            && w.ordinal == ordinal
        {
            w.kind = kind;
            return;
        }
        if let Some(w) =
            self.replaced.get_mut(&k).into_iter().flatten().find(|w| w.ordinal == ordinal)
        {
            w.kind = kind;
        }
    }

    /// True when this layer's own entries leave nothing a link at entry
    /// `ordinal` could show at the lower path `h`: a removal marker before
    /// it (appliers go in tar order), an entry below it, or a non-directory at one of its
    /// ancestors, up to and including the link itself (extraction clears
    /// the link's path and makes its parents before linking).
    fn hides_below(&self, h: &Holder, ordinal: u32) -> bool {
        self.removed_at(h).is_some_and(|w| w < ordinal)
            || self.implied_dirs.get(&h.key).is_some_and(|&o| o <= ordinal)
            || h.anc.iter().any(|d| self.non_dir_write(*d, 0, ordinal))
    }

    /// True when [`MAX_VERSIONS`] entries of this layer wrote `path`
    /// already: the walk reads no more of them. Asked before every entry,
    /// so it looks only at the paths written more than once (`replaced`,
    /// empty in most layers), never at the large map of every path.
    pub fn at_version_limit(&self, path: &str) -> bool {
        // A path with n replaced versions was written n + 1 times.
        !self.replaced.is_empty()
            && self.replaced.get(&key(path)).is_some_and(|r| r.len() + 1 >= MAX_VERSIONS)
    }

    /// Records a whiteout, entry `ordinal` of the layer, that deletes
    /// `path` from lower layers.
    pub fn whiteout(&mut self, path: String, ordinal: u32) {
        self.last_ordinal = self.last_ordinal.max(ordinal);
        self.imply_parents(&path, ordinal);
        let at = self.whiteouts.entry(key(&path)).or_insert(ordinal);
        *at = (*at).min(ordinal);
        self.keep_marker(&path, ordinal);
        self.name(&path, Change::Whiteout);
    }

    /// Records an opaque marker, entry `ordinal` of the layer: lower
    /// layers' contents of `dir` are hidden.
    pub fn opaque(&mut self, dir: String, ordinal: u32) {
        self.last_ordinal = self.last_ordinal.max(ordinal);
        self.imply_parents(&dir, ordinal);
        let k = key(&dir);
        let implied = self.implied_dirs.entry(k).or_insert(ordinal);
        *implied = (*implied).min(ordinal);
        let at = self.opaques.entry(k).or_insert(ordinal);
        *at = (*at).min(ordinal);
        self.name(&dir, Change::Opaque);
    }

    /// Keeps a whiteout's path for [`Timeline`], within [`MAX_MARKER_BYTES`].
    fn keep_marker(&mut self, path: &str, ordinal: u32) {
        if self.marker_bytes + path.len() <= MAX_MARKER_BYTES {
            self.marker_bytes += path.len();
            self.markers.push((path.to_owned(), ordinal));
        }
    }

    /// The node entry `ordinal` wrote at `path` (0: the last entry there).
    fn version(&self, k: PathKey, ordinal: u32) -> Option<NodeKind> {
        let last = self.written.get(&k)?;
        if ordinal == 0 || last.ordinal == ordinal {
            return Some(last.kind);
        }
        self.replaced.get(&k)?.iter().find(|w| w.ordinal == ordinal).map(|w| w.kind)
    }

    /// Number of entries held (writes, whiteouts, opaque markers, implied
    /// directories): a measure of the index's memory.
    #[expect(
        clippy::len_without_is_empty,
        reason = "a size measure for the layer cache's memory budget; nothing asks whether an index is empty"
    )]
    pub fn len(&self) -> usize {
        self.written.len() + self.whiteouts.len() + self.opaques.len() + self.implied_dirs.len()
    }

    fn imply_parents(&mut self, path: &str, ordinal: u32) {
        let dir = match path.rfind('/') {
            Some(i) if i > 0 => &path[..i],
            // A top-level name implies no directory.
            _ => return,
        };
        // Tar streams list a directory's entries together: most entries have
        // the directory of the entry before, whose first ordinal is known and
        // no later than this one, so nothing changes.
        if self.last_dir.0 <= ordinal && self.last_dir.1.as_bytes() == dir.as_bytes() {
            return;
        }
        // Else most entries' directory is known already, and then so are its
        // own ancestors: one hash and one lookup, before hashing every prefix.
        let first = if let Some(o) = self.implied_dirs.get_mut(&key(dir)) {
            *o = (*o).min(ordinal);
            *o
        } else {
            for anc in ancestor_keys(path) {
                match self.implied_dirs.entry(anc) {
                    std::collections::hash_map::Entry::Occupied(mut e) => {
                        // Its own ancestors are there already; keep the first ordinal.
                        let o = e.get_mut();
                        *o = (*o).min(ordinal);
                        break;
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(ordinal);
                    }
                }
            }
            ordinal
        };
        self.last_dir.1.clear();
        self.last_dir.1.push_str(dir);
        self.last_dir.0 = first;
    }

    /// True when this layer's whiteouts or opaque markers remove a lower
    /// node at `h` (they apply before the layer's own writes).
    fn removes(&self, h: &Holder) -> bool {
        self.removed_at(h).is_some()
    }

    /// The ordinal of the first of this layer's removal markers that
    /// removes a lower node at `h` (a whiteout of it or of an ancestor, an
    /// opaque ancestor or root), if any.
    fn removed_at(&self, h: &Holder) -> Option<u32> {
        if self.whiteouts.is_empty() && self.opaques.is_empty() {
            return None;
        }
        let root = ROOT.with(|r| *r);
        [self.whiteouts.get(&h.key), self.opaques.get(&root)]
            .into_iter()
            .chain(h.anc.iter().flat_map(|d| [self.whiteouts.get(d), self.opaques.get(d)]))
            .flatten()
            .min()
            .copied()
    }

    /// What this layer does to a lower node at `h` with identity `kind`.
    fn effect_on(&self, h: &Holder, kind: NodeKind) -> Option<Removal> {
        if let Some(new) = self.written.get(&h.key) {
            // A directory written again keeps its name: only names (and header
            // records) are found on directories, and they still show.
            let identical = new.kind == kind;
            return if identical { None } else { Some(Removal::Overwritten) };
        }
        if !kind.is_dir() && self.implied_dirs.contains_key(&h.key) {
            return Some(Removal::Overwritten);
        }
        let replaced_ancestor = h.anc.iter().any(|d| self.non_dir_write(*d, 0, u32::MAX));
        (self.removes(h) || replaced_ancestor).then_some(Removal::Deleted)
    }

    /// True when an entry after `since` and up to `until` wrote a
    /// non-directory at `k` (which removes whatever was below it).
    fn non_dir_write(&self, k: PathKey, since: u32, until: u32) -> bool {
        let Some(last) = self.written.get(&k) else { return false };
        self.replaced
            .get(&k)
            .into_iter()
            .flatten()
            .chain([last])
            .any(|w| !w.kind.is_dir() && w.ordinal > since && w.ordinal <= until)
    }

    /// When, after `since`, the node `h` shows (identity `kind`) is still
    /// there: the answer to [`LayerIndex::replaces`] for every `until`, in
    /// one pass over the path's versions (at most [`MAX_VERSIONS`]).
    /// With `removed_at`, this layer's removal marker at that ordinal took
    /// the lower node away: after it, it shows again only after an
    /// identical re-add (the layer's own entries, before or after the
    /// marker, are not removed by it).
    fn liveness(
        &self,
        h: &Holder,
        kind: NodeKind,
        since: u32,
        removed_at: Option<u32>,
    ) -> Liveness {
        let mut writes: Vec<Written> = Vec::new();
        if let Some(last) = self.written.get(&h.key) {
            writes.extend(self.replaced.get(&h.key).into_iter().flatten().copied());
            writes.push(*last);
            writes.retain(|w| w.ordinal > since);
            writes.sort_by_key(|w| w.ordinal);
        }
        // Monotone removals: an entry below the path, or an ancestor replaced.
        let mut dead_from = u32::MAX;
        if let Some(&o) = self.implied_dirs.get(&h.key)
            && o > since
            && !kind.is_dir()
        {
            dead_from = o;
        }
        for d in &h.anc {
            let Some(last) = self.written.get(d) else { continue };
            let first = self
                .replaced
                .get(d)
                .into_iter()
                .flatten()
                .chain([last])
                .filter(|w| !w.kind.is_dir() && w.ordinal > since)
                .map(|w| w.ordinal)
                .min();
            if let Some(o) = first {
                dead_from = dead_from.min(o);
            }
        }
        // Past the last identical write (or `since`), every later different
        // write leaves it dead for good.
        let identical = |w: &Written| w.kind == kind;
        let end = match writes.iter().rposition(identical) {
            Some(i) if i + 1 == writes.len() => u32::MAX,
            Some(i) => writes[i + 1].ordinal,
            None => {
                let first = writes.first().map_or(u32::MAX, |w| w.ordinal);
                first.min(removed_at.map_or(u32::MAX, |w| w.saturating_add(1)))
            }
        };
        Liveness { writes, kind, end: end.min(dead_from), removed_at }
    }

    /// The first way an entry of this layer after `since` and up to
    /// `until` replaces what `h` shows (a node of identity `kind`), for a
    /// node this same layer put there.
    fn replaces(&self, h: &Holder, kind: NodeKind, since: u32, until: u32) -> Option<Removal> {
        let in_window = |w: &Written| w.ordinal > since && w.ordinal <= until;
        if let Some(last) = self.written.get(&h.key) {
            let versions = self.replaced.get(&h.key).into_iter().flatten().chain([last]);
            // The node at the path at `until`: the last write in the window, if any.
            if let Some(now) = versions.filter(|w| in_window(w)).max_by_key(|w| w.ordinal) {
                let identical = now.kind == kind;
                if !identical {
                    return Some(Removal::Overwritten);
                }
            }
        }
        // An entry below the path made it a directory.
        if !kind.is_dir() && self.implied_dirs.get(&h.key).is_some_and(|&o| o > since && o <= until)
        {
            return Some(Removal::Overwritten);
        }
        let replaced_ancestor = h.anc.iter().any(|d| self.non_dir_write(*d, since, until));
        replaced_ancestor.then_some(Removal::Deleted)
    }
}

/// Where a node stays alive within its own layer (see [`LayerIndex::liveness`]).
struct Liveness {
    /// Writes at the path after `since`, in entry order.
    writes: Vec<Written>,
    kind: NodeKind,
    /// No entry at or after this one shows it.
    end: u32,
    /// The removal marker that took the lower node away (see [`LayerIndex::liveness`]).
    removed_at: Option<u32>,
}

impl Liveness {
    /// True when the node is still shown at entry `at` (after `since`).
    fn alive_at(&self, at: u32) -> bool {
        if at >= self.end {
            return false;
        }
        let before = self.writes.partition_point(|w| w.ordinal <= at);
        if before == 0 {
            // The lower node, unless a marker before this entry removed it.
            return self.removed_at.is_none_or(|w| w >= at);
        }
        let now = self.writes[before - 1];
        now.kind == self.kind && !now.kind.is_dir()
    }
}

thread_local! {
    /// The key of `/` (the root opaque marker `/.wh..wh..opq` names it).
    static ROOT: PathKey = key("/");
}

/// A path that shows a version's bytes (the version's own path, or a hardlink to it).
#[derive(Debug)]
struct Holder {
    key: PathKey,
    anc: Vec<PathKey>,
    /// The ordinal from which it holds the bytes in the layer being resolved (0: from below).
    since: u32,
    /// Which appliers show the bytes at this path.
    view: View,
}

impl Holder {
    fn new(path: &str, since: u32) -> Self {
        Holder { key: key(path), anc: ancestor_keys(path), since, view: View::Both }
    }
}

/// The appliers that show a holder's bytes at its path. They differ only
/// below a symlink a lower layer left: a naive applier (a full copy)
/// follows it, overlay extracts a layer alone, at the names as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// Every applier.
    Both,
    /// Overlay only: a naive applier put the bytes elsewhere, or removed them.
    AsWritten,
    /// A naive applier only: where it resolved a lower layer's symlink.
    Naive,
}

/// One layer's whiteouts as a naive applier places them, where that differs
/// from the path as written (under a lower layer's symlink), with their ordinals.
#[derive(Debug, Default)]
struct NaiveMarkers {
    whiteouts: KeyMap<u32>,
}

impl NaiveMarkers {
    /// True when these whiteouts remove a lower node at `h`.
    fn remove(&self, h: &Holder) -> bool {
        !self.whiteouts.is_empty()
            && (self.whiteouts.contains_key(&h.key)
                || h.anc.iter().any(|d| self.whiteouts.contains_key(d)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    Deleted,
    Overwritten,
}

/// Whether a file version is still visible in the final image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fate {
    /// The final image still shows these bytes at this path.
    Present,
    /// A whiteout, opaque directory or replaced ancestor in layer `.0` removed it.
    Deleted(usize),
    /// Layer `.0` wrote something else at this path.
    Overwritten(usize),
}

impl Fate {
    /// The layer that removed the version, if any.
    pub fn removed_in(self) -> Option<usize> {
        match self {
            Fate::Present => None,
            Fate::Deleted(n) | Fate::Overwritten(n) => Some(n),
        }
    }
}

/// Per-layer counts for the `layers` command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Non-directory paths that did not exist below this layer.
    pub added: usize,
    /// Non-directory paths that replaced something below this layer.
    pub changed: usize,
    /// Non-directory paths from lower layers that this layer removed.
    pub deleted: usize,
}

/// All layers' indexes of one image, in manifest order.
///
/// A blob listed at several positions is indexed once and shared (see
/// [`Timeline::with_repeats`]). Resolving a version visits only the later
/// layers that touch one of its holders' paths or their ancestors (found
/// through per-path lists of layers), so an image of many layers costs
/// each version only the layers that matter to it.
#[derive(Debug, Default)]
pub struct Timeline {
    /// Indexes by position; a repeated listing's slot is empty (see `slot`).
    layers: Vec<LayerIndex>,
    /// Per position: the position whose index it lists.
    slot: Vec<usize>,
    /// Per position that holds an index: every position listing it, ascending.
    listed_at: Vec<Vec<usize>>,
    /// Per position that holds an index: (hardlink target key, position in
    /// its `links`), sorted, so one target's links are a range in entry
    /// order (a map of lists cost a table slot and a list per target).
    links_by_target: Vec<Vec<(PathKey, u32)>>,
    /// (path key, index position) for every index that writes, implies,
    /// whites out or hardlinks to that very path; sorted, so one path's
    /// positions are a range (a flat list costs far less than a list per path).
    at_key: Vec<(PathKey, u32)>,
    /// The same for indexes that can remove what lies below the path (a
    /// whiteout, an opaque marker, a non-directory written there).
    below_key: Vec<(PathKey, u32)>,
    /// Symlinks by path key: (index position, path, target), for entries
    /// written through a lower layer's symlink.
    symlinks: KeyMap<Vec<(usize, String, String)>>,
    /// Per position that holds an index: its whiteouts that a naive applier
    /// resolves through a lower layer's symlink, where they land.
    naive_markers: Vec<NaiveMarkers>,
    /// The length of the longest symlink path in `symlinks`.
    longest_symlink: usize,
}

/// The index positions listed for `k` in a sorted event list.
fn owners(events: &[(PathKey, u32)], k: PathKey) -> &[(PathKey, u32)] {
    let from = events.partition_point(|e| e.0 < k);
    let to = from + events[from..].partition_point(|e| e.0 == k);
    &events[from..to]
}

impl Timeline {
    /// Builds a timeline from layer indexes in manifest order.
    pub fn new(layers: Vec<LayerIndex>) -> Self {
        let slot = (0..layers.len()).collect();
        Timeline::with_repeats(layers, slot)
    }

    /// Builds a timeline where position `i` lists the index at position
    /// `slot[i]` (a blob listed more than once is walked once; the other
    /// positions' own entries in `layers` are ignored and may be empty).
    /// A `slot` that is not a valid position is taken as the position itself.
    pub fn with_repeats(mut layers: Vec<LayerIndex>, mut slot: Vec<usize>) -> Self {
        slot.resize(layers.len(), usize::MAX);
        let given = slot.clone();
        for (i, s) in slot.iter_mut().enumerate() {
            if given.get(*s) != Some(&*s) {
                *s = i;
            }
        }
        let mut listed_at = vec![Vec::new(); layers.len()];
        for (i, &s) in slot.iter().enumerate() {
            listed_at[s].push(i);
        }
        for (i, l) in layers.iter_mut().enumerate() {
            if slot[i] != i {
                *l = LayerIndex::default();
            }
        }
        for l in &mut layers {
            l.shrink_to_fit();
        }
        let links_by_target = layers
            .iter()
            .map(|l| {
                let mut m: Vec<(PathKey, u32)> =
                    l.links.targets().enumerate().map(|(i, t)| (t, i as u32)).collect();
                m.sort_unstable();
                m
            })
            .collect();
        let mut at_key: Vec<(PathKey, u32)> = Vec::new();
        let mut below_key: Vec<(PathKey, u32)> = Vec::new();
        for (pos, l) in layers.iter().enumerate() {
            let pos = pos as u32;
            for (k, w) in &l.written {
                at_key.push((*k, pos));
                let non_dir = !w.kind.is_dir()
                    || l.replaced.get(k).into_iter().flatten().any(|w| !w.kind.is_dir());
                if non_dir {
                    below_key.push((*k, pos));
                }
            }
            at_key.extend(l.implied_dirs.keys().map(|k| (*k, pos)));
            at_key.extend(l.whiteouts.keys().map(|k| (*k, pos)));
            below_key.extend(l.whiteouts.keys().map(|k| (*k, pos)));
            below_key.extend(l.opaques.keys().map(|k| (*k, pos)));
            at_key.extend(l.links.targets().map(|target| (target, pos)));
        }
        for events in [&mut at_key, &mut below_key] {
            events.sort_unstable();
            events.dedup();
            events.shrink_to_fit();
        }
        let mut symlinks: KeyMap<Vec<(usize, String, String)>> = KeyMap::default();
        for (pos, l) in layers.iter().enumerate() {
            for (path, target) in &l.symlinks {
                symlinks.entry(key(path)).or_default().push((pos, path.clone(), target.clone()));
            }
        }
        let mut t = Timeline {
            layers,
            slot,
            listed_at,
            links_by_target,
            at_key,
            below_key,
            longest_symlink: symlinks
                .values()
                .flatten()
                .map(|(_, p, _)| p.len())
                .max()
                .unwrap_or(0),
            symlinks,
            naive_markers: Vec::new(),
        };
        t.resolve_naive_markers();
        t.resolve_naive_link_targets();
        t.resolve_lower_links();
        t
    }

    /// Places each layer's whiteouts where a naive applier finds them
    /// when a lower layer's symlink is on their way (`lnk/.wh.s` removes
    /// `/real/s` after `lnk -> real`), and lists those layers for the paths
    /// there. A blob listed several times resolves at its index's own position.
    fn resolve_naive_markers(&mut self) {
        let mut all = Vec::with_capacity(self.layers.len());
        let mut events = Vec::new();
        for pos in 0..self.layers.len() {
            let mut m = NaiveMarkers::default();
            if !self.symlinks.is_empty() && self.slot[pos] == pos {
                for (path, ordinal) in &self.layers[pos].markers {
                    let Some(there) = self.through_lower_symlink(pos, path, *ordinal) else {
                        continue;
                    };
                    let k = key(&there);
                    let at = m.whiteouts.entry(k).or_insert(*ordinal);
                    *at = (*at).min(*ordinal);
                    events.push((k, pos as u32));
                }
            }
            all.push(m);
        }
        self.naive_markers = all;
        if !events.is_empty() {
            for list in [&mut self.at_key, &mut self.below_key] {
                list.extend(&events);
                list.sort_unstable();
                list.dedup();
            }
        }
    }

    /// Lists each hardlink to a lower layer's file named through a lower
    /// layer's symlink (`keep` → `lnk/s` after `lnk -> real`) under the path
    /// a naive applier links (`/real/s`) as well, so the bytes there stay
    /// present while the link shows them. (Overlay refuses such a link: the
    /// target is not in the layer's own directory.)
    fn resolve_naive_link_targets(&mut self) {
        if self.symlinks.is_empty() {
            return;
        }
        let mut events = Vec::new();
        for pos in 0..self.layers.len() {
            let idx = &self.layers[pos];
            let mut found = Vec::new();
            for (n, target) in &idx.lower_links {
                let ordinal = idx.links.ordinal(*n as usize);
                if let Some(there) = self.through_lower_symlink(pos, target, ordinal) {
                    found.push((key(&there), *n as usize));
                }
            }
            if !found.is_empty() {
                let list = &mut self.links_by_target[pos];
                list.extend(found.iter().map(|&(k, n)| (k, n as u32)));
                // A target's links are listed in entry order.
                list.sort_unstable();
                list.dedup();
                events.extend(found.iter().map(|&(k, _)| (k, pos as u32)));
            }
        }
        if !events.is_empty() {
            self.at_key.extend(events);
            self.at_key.sort_unstable();
            self.at_key.dedup();
        }
    }

    /// Gives each hardlink to a lower layer the identity of what it shows:
    /// the node the layers below left at its target, so a link that puts
    /// identical bytes back at a path keeps them present there, as a file
    /// entry would. Nothing there, a directory, or a path more than
    /// [`MAX_LINK_OWNERS`] layers touch leave the stand-in (never
    /// identical). Indexes resolve bottom first, so a link to a lower link
    /// sees it resolved; a later link of the same layer to a resolved link
    /// follows it. A blob listed several times resolves at the listing its
    /// findings are reported at (its index's own position).
    fn resolve_lower_links(&mut self) {
        for s in 0..self.layers.len() {
            let idx = &self.layers[s];
            if idx.lower_links.is_empty() {
                continue;
            }
            let mut lower: Vec<Option<Option<NodeKind>>> = vec![None; idx.links.len()];
            for (n, target) in &idx.lower_links {
                let ordinal = idx.links.ordinal(*n as usize);
                lower[*n as usize] = Some(self.node_below(s, target, ordinal));
            }
            let idx = &mut self.layers[s];
            for (n, resolved) in lower.into_iter().enumerate() {
                let (path, target, ordinal) = idx.links.get(n);
                let k = key(path);
                let kind = match resolved {
                    Some(below) => below,
                    // A link to an earlier entry of this layer, maybe a resolved link.
                    None => idx.version_before(target, ordinal).map(|w| w.kind),
                };
                if let Some(kind) = kind.filter(|k| !k.is_dir()) {
                    idx.set_kind(k, ordinal, kind);
                }
            }
        }
    }

    /// The node a hardlink at entry `ordinal` of the layer at position
    /// `pos` shows at the lower path `target`: the last write there below
    /// `pos`, if it is still there (and not a directory).
    fn node_below(&self, pos: usize, target: &str, ordinal: u32) -> Option<NodeKind> {
        let h = Holder::new(target, 0);
        if self.layers[self.slot[pos]].hides_below(&h, ordinal) {
            return None;
        }
        let writers = owners(&self.at_key, h.key);
        if writers.len() > MAX_LINK_OWNERS {
            return None;
        }
        // The highest position below `pos` whose index writes the path.
        let mut best: Option<(usize, usize)> = None;
        for &(_, o) in writers {
            let o = o as usize;
            if !self.layers[o].written.contains_key(&h.key) {
                continue;
            }
            let at = &self.listed_at[o];
            let i = at.partition_point(|&p| p < pos);
            if i > 0 && best.is_none_or(|(b, _)| at[i - 1] > b) {
                best = Some((at[i - 1], o));
            }
        }
        let (mut j, o) = best?;
        let w = *self.layers[o].written.get(&h.key)?;
        if w.kind.is_dir() || self.layers[o].replaces(&h, w.kind, w.ordinal, u32::MAX).is_some() {
            return None;
        }
        // No layer in between removed it.
        let holders = [h];
        let root = ROOT.with(|r| *r);
        while let Some(next) = self.next_layer(&holders, root, j)
            && next < pos
        {
            if self.layers[self.slot[next]].effect_on(&holders[0], w.kind).is_some() {
                return None;
            }
            j = next;
        }
        Some(w.kind)
    }

    /// The index of layer `n`, if it exists.
    pub fn layer(&self, n: usize) -> Option<&LayerIndex> {
        self.slot.get(n).and_then(|&s| self.layers.get(s))
    }

    /// The first position after `after` at which a layer touches one of
    /// the holders' paths or removes something above them.
    fn next_layer(&self, holders: &[Holder], root: PathKey, after: usize) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut consider = |owners: &[(PathKey, u32)]| {
            for &(_, o) in owners {
                let at = &self.listed_at[o as usize];
                let i = at.partition_point(|&p| p <= after);
                if let Some(&p) = at.get(i) {
                    best = Some(best.map_or(p, |b| b.min(p)));
                }
            }
        };
        consider(owners(&self.below_key, root));
        for h in holders {
            consider(owners(&self.at_key, h.key));
            for a in &h.anc {
                consider(owners(&self.below_key, *a));
            }
        }
        best
    }

    /// The fate of what the last entry at `path` in layer `layer` wrote.
    /// See [`Timeline::fate_of`].
    pub fn fate(&self, layer: usize, path: &str) -> Fate {
        self.fate_of(layer, path, 0)
    }

    /// The fate of what entry `ordinal` of layer `layer` wrote at `path`
    /// (0: the last entry at that path). The bytes stay `Present` while any
    /// path shows them: the path itself, an identical re-add there (same
    /// bytes, or same symlink target, by a file entry or a hardlink), or a
    /// hardlink to them made in this or a later layer (chains included). A
    /// later entry of the same layer at the same path replaces it, as
    /// extraction does.
    pub fn fate_of(&self, layer: usize, path: &str, ordinal: u32) -> Fate {
        let Some(own) = self.layer(layer) else { return Fate::Present };
        let Some(kind) = own.version(key(path), ordinal) else { return Fate::Present };
        let since = if ordinal == 0 {
            own.written.get(&key(path)).map_or(0, |w| w.ordinal)
        } else {
            ordinal
        };
        let root = ROOT.with(|r| *r);
        let mut holders = vec![Holder::new(path, since)];
        // Holder key → its position in `holders`.
        let mut holding: KeyMap<usize> = KeyMap::default();
        holding.insert(holders[0].key, 0);
        // Written under a lower layer's symlink, the bytes are where it points for a naive
        // applier (and at the path as written for containerd's overlayfs one): either shows them.
        let naive_place = self.through_lower_symlink(layer, path, since);
        if let Some(there) = &naive_place {
            holding.insert(key(there), 1);
            holders[0].view = View::AsWritten;
            holders.push(Holder { view: View::Naive, ..Holder::new(there, since) });
        }
        let own_key = key(path);
        let mut j = layer;
        loop {
            let idx = &self.layers[self.slot[j]];
            let links = &self.links_by_target[self.slot[j]];
            let lower = j > layer;
            if lower {
                for h in &mut holders {
                    h.since = 0;
                }
            }
            // Hardlinks made while a holder still shows the bytes join the holders.
            let mut i = 0;
            let mut relinked = Vec::new();
            while i < holders.len() {
                let h = &holders[i];
                let (h_key, h_since) = (h.key, h.since);
                let list = owners(links, h_key);
                if !list.is_empty() {
                    // A marker removes the lower node where it stands in tar order:
                    // a link made before it took the bytes.
                    let removed_at = if lower && h_since == 0 { idx.removed_at(h) } else { None };
                    let live = idx.liveness(h, kind, h_since, removed_at);
                    // Links are in entry order: skip those made before the holder had the bytes.
                    let start =
                        list.partition_point(|&(_, n)| idx.links.ordinal(n as usize) <= h_since);
                    for &(_, n) in &list[start..] {
                        let (link, _, at) = idx.links.get(n as usize);
                        if at >= live.end {
                            break;
                        }
                        if !live.alive_at(at) {
                            continue;
                        }
                        let k = key(link);
                        if let std::collections::hash_map::Entry::Vacant(e) = holding.entry(k) {
                            e.insert(holders.len());
                            holders.push(Holder::new(link, at));
                        } else {
                            // Already a holder from below, re-linked to the same bytes in this
                            // layer: the new link, not a replacement, is what it shows now.
                            relinked.push((k, at));
                        }
                    }
                }
                for (k, at) in relinked.drain(..) {
                    if let Some(&x) = holding.get(&k)
                        && holders[x].since < at
                    {
                        holders[x].since = at;
                    }
                }
                i += 1;
            }
            let mut gone: Option<Removal> = None;
            let naive = &self.naive_markers[self.slot[j]];
            holders.retain_mut(|h| {
                let mut removal = if lower && h.since == 0 {
                    idx.effect_on(h, kind)
                } else {
                    idx.replaces(h, kind, h.since, u32::MAX)
                };
                // A whiteout under a lower symlink removes the bytes from a naive applier's
                // tree only: overlay still shows them at this path.
                if removal.is_none() && lower && h.view != View::AsWritten && naive.remove(h) {
                    match h.view {
                        View::Naive => removal = Some(Removal::Deleted),
                        _ => h.view = View::AsWritten,
                    }
                }
                // The same name written again through the same symlinks replaces the naive
                // place too (found while the name is a holder, which makes this layer visited).
                if removal.is_none()
                    && lower
                    && h.view == View::Naive
                    && let Some(w) = idx.written.get(&own_key)
                    && w.kind != kind
                    && self.through_lower_symlink(j, path, w.ordinal) == naive_place
                {
                    removal = Some(Removal::Overwritten);
                }
                if let Some(r) = removal {
                    gone = Some(match (gone, r) {
                        (Some(Removal::Overwritten), _) => Removal::Overwritten,
                        (_, r) => r,
                    });
                }
                removal.is_none()
            });
            if holders.is_empty() {
                return match gone {
                    Some(Removal::Overwritten) => Fate::Overwritten(j),
                    _ => Fate::Deleted(j),
                };
            }
            if gone.is_some() {
                holding = holders.iter().enumerate().map(|(i, h)| (h.key, i)).collect();
            }
            match self.next_layer(&holders, root, j) {
                Some(next) => j = next,
                None => return Fate::Present,
            }
        }
    }

    /// Where entry `ordinal` of layer `layer` at `path` lands when a naive
    /// applier (a full copy extracted in a chroot, umoci) resolves its
    /// parent directory through the symlinks lower layers left: component
    /// by component as the kernel does, chains of symlinks included (`..`
    /// after a symlink climbs from where it pointed, an absolute target
    /// starts again at the root, the root's `..` is the root). `None` when
    /// the path goes through no such symlink, or through more than
    /// [`MAX_LOWER_HOPS`] (the kernel then fails with `ELOOP`, and so does
    /// the naive applier: only the path as written is left).
    fn through_lower_symlink(&self, layer: usize, path: &str, ordinal: u32) -> Option<String> {
        if self.symlinks.is_empty() {
            return None;
        }
        let (parent, base) = path.rsplit_once('/')?;
        // Most paths go through no symlink of any layer: look at each directory first, hashed
        // in one pass (a 64 KiB name of 1,024 directories costs its length, not 1,024 times it).
        if !ancestor_keys(path).iter().any(|k| self.symlinks.contains_key(k)) {
            return None;
        }
        let lookup = |dir: &str| self.symlink_seen_at(layer, dir, ordinal);
        let cur =
            super::symlinks::walk_parent(parent, MAX_LOWER_HOPS, self.longest_symlink, lookup)?;
        super::path::normalize_clamped(&format!("{cur}/{base}")).ok().filter(|p| p != path)
    }

    /// The target of the symlink a naive applier finds at `dir` when it
    /// extracts entry `ordinal` of layer `layer`: one this layer wrote
    /// there before the entry, or else the one a lower layer left, if it is
    /// still there (no layer in between, and no entry of this one before
    /// the entry, put something else there, removed it or replaced a
    /// directory above it).
    fn symlink_seen_at(&self, layer: usize, dir: &str, ordinal: u32) -> Option<&str> {
        let k = key(dir);
        let list = self.symlinks.get(&k)?;
        let own = &self.layers[self.slot[layer]];
        let h = Holder::new(dir, 0);
        if let Some(w) = own.version_before(k, ordinal) {
            // This layer's own symlink (reached through a lower one's target).
            let NodeKind::Symlink(hash) = w.kind else { return None };
            let me = self.slot[layer];
            return list
                .iter()
                .rev()
                .find(|(o, _, t)| *o == me && ContentKey::of(t.as_bytes()) == hash)
                .map(|(_, _, t)| t.as_str());
        }
        if own.removed_at(&h).is_some_and(|w| w < ordinal)
            || h.anc.iter().any(|d| own.non_dir_write(*d, 0, ordinal))
        {
            return None;
        }
        // The nearest listing below `layer` of an index that wrote one (its last one).
        let mut best: Option<(usize, &str)> = None;
        for (o, _, target) in list {
            let at = &self.listed_at[*o];
            let i = at.partition_point(|&p| p < layer);
            if i > 0 && best.is_none_or(|(b, _)| at[i - 1] >= b) {
                best = Some((at[i - 1], target));
            }
        }
        let (below, target) = best?;
        // Still that symlink after its own layer, and through the layers in between
        // (entries under it in between went through it too).
        let sym = self.layers[self.slot[below]].written.get(&k).map(|w| w.kind)?;
        if !matches!(sym, NodeKind::Symlink(_)) {
            return None;
        }
        let root = ROOT.with(|r| *r);
        let mut j = below;
        while let Some(next) = self.next_layer(std::slice::from_ref(&h), root, j)
            && next < layer
        {
            let between = &self.layers[self.slot[next]];
            if between.written.get(&k).is_some_and(|w| w.kind != sym)
                || between.removes(&h)
                || h.anc.iter().any(|d| between.non_dir_write(*d, 0, u32::MAX))
            {
                return None;
            }
            j = next;
        }
        Some(target)
    }

    /// Added/changed/deleted counts per layer, by materialising the
    /// filesystem layer by layer (a sorted map makes subtree removal a range).
    /// Layers indexed without names ([`LayerIndex::with_names`]) count as empty.
    pub fn stats(&self) -> Vec<LayerStats> {
        let mut fs: BTreeMap<String, NodeKind> = BTreeMap::new();
        let mut out = Vec::with_capacity(self.layers.len());
        for &s in &self.slot {
            let layer = &self.layers[s];
            let mut stats = LayerStats::default();
            let mut changes: Vec<&(String, Change)> = layer.named.iter().flatten().collect();
            // Removals apply to lower layers first; then writes, parents before children.
            changes.sort_by(|a, b| {
                let rank = |c: &Change| match c {
                    Change::Whiteout => 0,
                    Change::Opaque => 1,
                    Change::Write(_) => 2,
                };
                (rank(&a.1), &a.0).cmp(&(rank(&b.1), &b.0))
            });
            // Within a layer the last entry for a path wins (the sort is stable).
            changes.reverse();
            changes.dedup_by(|x, y| {
                x.0 == y.0 && std::mem::discriminant(&x.1) == std::mem::discriminant(&y.1)
            });
            changes.reverse();
            for (path, change) in changes {
                match change {
                    Change::Whiteout => stats.deleted += remove_subtree(&mut fs, path, true),
                    Change::Opaque => stats.deleted += remove_subtree(&mut fs, path, false),
                    Change::Write(kind) => {
                        let before = fs.get(path).copied();
                        if !kind.is_dir() {
                            stats.deleted += remove_subtree(&mut fs, path, false);
                            match before {
                                Some(k) if !k.is_dir() => stats.changed += 1,
                                _ => stats.added += 1,
                            }
                        }
                        fs.insert(path.clone(), *kind);
                    }
                }
            }
            out.push(stats);
        }
        out
    }
}

/// Removes everything under `path` (and `path` itself when `inclusive`),
/// returning how many non-directories went.
fn remove_subtree(fs: &mut BTreeMap<String, NodeKind>, path: &str, inclusive: bool) -> usize {
    let mut count = 0;
    if inclusive && let Some(k) = fs.remove(path) {
        count += usize::from(!k.is_dir());
    }
    let prefix = format!("{path}/");
    let doomed: Vec<String> = fs
        .range(prefix.clone()..)
        .take_while(|(p, _)| is_same_or_under(p, path) && p.starts_with(&prefix))
        .map(|(p, _)| p.clone())
        .collect();
    for p in doomed {
        if let Some(k) = fs.remove(&p) {
            count += usize::from(!k.is_dir());
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::super::path::ancestors;
    use super::*;
    use proptest::prelude::*;

    const F1: NodeKind = NodeKind::Content(ContentKey([0, 0, 0, 1]));
    const F2: NodeKind = NodeKind::Content(ContentKey([0, 0, 0, 2]));

    fn timeline(layers: &[&[(&str, Op)]]) -> Timeline {
        Timeline::new(layers.iter().map(|ops| build(ops)).collect())
    }

    fn build(ops: &[(&str, Op)]) -> LayerIndex {
        let mut l = LayerIndex::with_names();
        for (p, op) in ops {
            apply_op(&mut l, p, *op);
        }
        l
    }

    fn apply_op(l: &mut LayerIndex, p: &str, op: Op) {
        match op {
            Op::Write(k) => l.write(p.to_owned(), k),
            Op::Link(t) => {
                let ordinal = l.last_ordinal + 1;
                l.link(p, PATHS[t], NodeKind::Other, ordinal);
            }
            Op::Whiteout => l.whiteout(p.to_owned(), l.last_ordinal + 1),
            Op::Opaque => l.opaque(p.to_owned(), l.last_ordinal + 1),
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Op {
        Write(NodeKind),
        /// A hardlink to `PATHS[i]`.
        Link(usize),
        Whiteout,
        Opaque,
    }

    #[test]
    fn version_limit_counts_the_writes_of_one_path() {
        let mut l = LayerIndex::default();
        l.write("/a/other".into(), F1);
        for n in 1..=MAX_VERSIONS {
            assert!(!l.at_version_limit("/a/p"), "after {} writes", n - 1);
            l.write("/a/p".into(), if n % 2 == 0 { F1 } else { F2 });
        }
        assert!(l.at_version_limit("/a/p"));
        assert!(!l.at_version_limit("/a/other"));
        assert!(!l.at_version_limit("/a"));
    }

    #[test]
    fn table() {
        use Op::*;
        const DIR: Op = Write(NodeKind::Dir);
        const LINK: Op = Write(NodeKind::Symlink(ContentKey([0, 0, 0, 9])));
        type Case<'a> = (Vec<&'a [(&'a str, Op)]>, Fate);
        let cases: Vec<Case> = vec![
            (vec![&[("/a/s", Write(F1))]], Fate::Present),
            (vec![&[("/a/s", Write(F1))], &[("/a/s", Whiteout)]], Fate::Deleted(1)),
            (vec![&[("/a/s", Write(F1))], &[("/a", Whiteout)]], Fate::Deleted(1)),
            (vec![&[("/a/s", Write(F1))], &[("/a", Opaque)]], Fate::Deleted(1)),
            (
                vec![&[("/a/s", Write(F1))], &[("/a", Opaque), ("/a/s", Write(F2))]],
                Fate::Overwritten(1),
            ),
            (vec![&[("/a/s", Write(F1))], &[("/a/s", Write(F2))]], Fate::Overwritten(1)),
            (vec![&[("/a/s", Write(F1))], &[("/a/s", Write(F1))]], Fate::Present),
            (
                vec![&[("/a/s", Write(F1))], &[("/a/s", Write(F1))], &[("/a/s", Whiteout)]],
                Fate::Deleted(2),
            ),
            (vec![&[("/a/s", Write(F1))], &[("/a", LINK)]], Fate::Deleted(1)),
            (vec![&[("/a/s", Write(F1))], &[("/a", Write(F2))]], Fate::Deleted(1)),
            (vec![&[("/a/s", Write(F1))], &[("/a", DIR)]], Fate::Present),
            (vec![&[("/a/s", Write(F1))], &[("/a/s/x", Write(F2))]], Fate::Overwritten(1)),
            (
                vec![&[("/a/s", Write(F1))], &[("/b", Whiteout)], &[("/a/s", DIR)]],
                Fate::Overwritten(2),
            ),
            (vec![&[("/a/s", Write(F1))], &[("/a/st", Whiteout)]], Fate::Present),
            // An opaque marker at the layer root hides every lower file.
            (vec![&[("/a/s", Write(F1))], &[("/", Opaque)]], Fate::Deleted(1)),
            // The same path twice in one layer: the last entry wins.
            (vec![&[("/a/s", Write(F2)), ("/a/s", Write(F1))]], Fate::Present),
        ];
        // A directory (whose name or header may hold the finding) stays when entries
        // are added below it or it is written again, in its own layer or a later one.
        let dir_cases: Vec<Case> = vec![
            (vec![&[("/a/s", DIR), ("/a/s/x", Write(F1))]], Fate::Present),
            (vec![&[("/a/s", DIR)], &[("/a/s", DIR), ("/a/s/x", Write(F1))]], Fate::Present),
            (vec![&[("/a/s", DIR)], &[("/a/s/x", Write(F1))]], Fate::Present),
            (vec![&[("/a/s", DIR)], &[("/a/s", Opaque)]], Fate::Present),
            (vec![&[("/a/s", DIR)], &[("/a/s", Whiteout)]], Fate::Deleted(1)),
            (vec![&[("/a/s", DIR)], &[("/a/s", Write(F1))]], Fate::Overwritten(1)),
            (vec![&[("/a/s", DIR), ("/a/s", Write(F1))]], Fate::Overwritten(0)),
        ];
        for (layers, want) in dir_cases {
            let t = timeline(&layers);
            assert_eq!(t.fate_of(0, "/a/s", 1), want, "{layers:?}");
        }
        for (layers, want) in cases {
            let t = timeline(&layers);
            assert_eq!(t.fate(0, "/a/s"), want, "{layers:?}");
        }
    }

    /// A layer index of symlinks `(path, target)`, then the `rest` of its ops.
    fn with_symlinks(links: &[(&str, &str)], rest: &[(&str, Op)]) -> LayerIndex {
        let mut l = LayerIndex::default();
        for (path, target) in links {
            l.write((*path).to_owned(), NodeKind::Symlink(ContentKey::of(target.as_bytes())));
            l.symlink_target(path, target);
        }
        for (p, op) in rest {
            apply_op(&mut l, p, *op);
        }
        l
    }

    /// An entry under a lower layer's symlink chain is shown at its name by
    /// overlay and where the chain ends by a naive applier (each hop resolved
    /// as the kernel does, `..` and absolute targets included, at most
    /// [`MAX_LOWER_HOPS`]); a whiteout through the chain removes it there.
    #[test]
    fn lower_symlink_chains_are_followed_to_their_end() {
        use Op::*;
        let links = [
            ("/real", "opt/r"),
            ("/l1", "real"),
            ("/l2", "l1"),
            // `..` climbs from where /l2 points (/opt/r), not lexically.
            ("/abs", "/l2/../../l1"),
            ("/loop", "loop"),
        ];
        let base = || with_symlinks(&links, &[("/opt/r", Write(NodeKind::Dir))]);
        let wrote = |p: &str| {
            let mut l = LayerIndex::default();
            apply_op(&mut l, p, Write(F1));
            l
        };
        let t = Timeline::new(vec![base(), wrote("/l2/s"), LayerIndex::default()]);
        assert_eq!(t.through_lower_symlink(1, "/l2/s", 1).as_deref(), Some("/opt/r/s"));
        assert_eq!(t.through_lower_symlink(1, "/abs/s", 1).as_deref(), Some("/opt/r/s"));
        assert_eq!(t.through_lower_symlink(1, "/loop/s", 1), None);
        assert_eq!(t.through_lower_symlink(1, "/opt/r/s", 1), None);
        let cases: Vec<(Vec<(&str, Op)>, Fate)> = vec![
            // Overlay shows /l2/s, a naive applier /opt/r/s: either keeps it present.
            (vec![("/l2", Whiteout)], Fate::Present),
            (vec![("/opt/r/s", Whiteout)], Fate::Present),
            // Both gone: the chain's end, three symlinks deep, is where the bytes were.
            (vec![("/l2", Whiteout), ("/opt/r/s", Whiteout)], Fate::Deleted(2)),
            // Whited out through the chain: gone for a naive applier and for overlay.
            (vec![("/l2/s", Whiteout)], Fate::Deleted(2)),
            // Through another chain to the same place: overlay still shows /l2/s.
            (vec![("/abs/s", Whiteout)], Fate::Present),
            (vec![("/abs/s", Whiteout), ("/l2", Whiteout)], Fate::Deleted(2)),
            // Written again through the chain: replaced at both places.
            (vec![("/l2/s", Write(F2))], Fate::Overwritten(2)),
            (vec![("/l2/s", Write(F1))], Fate::Present),
        ];
        for (last, want) in cases {
            let t = Timeline::new(vec![base(), wrote("/l2/s"), with_symlinks(&[], &last)]);
            assert_eq!(t.fate(1, "/l2/s"), want, "{last:?}");
        }
        // A lower file whited out through a symlink: overlay still shows it.
        let t = Timeline::new(vec![
            with_symlinks(&links, &[("/opt/r", Write(NodeKind::Dir)), ("/opt/r/f", Write(F1))]),
            with_symlinks(&[], &[("/l2/f", Whiteout)]),
        ]);
        assert_eq!(t.fate(0, "/opt/r/f"), Fate::Present);
        // A hardlink named through the chain keeps the bytes where it ends.
        let mut link = LayerIndex::default();
        link.link("/keep", "/l2/f", NodeKind::Other, 1);
        let t = Timeline::new(vec![
            with_symlinks(&links, &[("/opt/r", Write(NodeKind::Dir)), ("/opt/r/f", Write(F1))]),
            link,
            with_symlinks(&[], &[("/opt/r/f", Whiteout)]),
        ]);
        assert_eq!(t.fate(0, "/opt/r/f"), Fate::Present);
        // One hop past the kernel's limit: a naive applier fails, only the name is left.
        let long: Vec<(String, String)> = (0..=MAX_LOWER_HOPS)
            .map(|i| (format!("/c{i}"), format!("c{}", i + 1)))
            .chain([(format!("/c{}", MAX_LOWER_HOPS + 1), "opt".to_owned())])
            .collect();
        let long: Vec<(&str, &str)> = long.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
        // From /c1, MAX_LOWER_HOPS + 1 symlinks; from /c2, the limit exactly.
        let t = Timeline::new(vec![with_symlinks(&long, &[]), wrote("/c1/s")]);
        assert_eq!(t.through_lower_symlink(1, "/c1/s", 1), None);
        let t = Timeline::new(vec![with_symlinks(&long, &[]), wrote("/c2/s")]);
        assert_eq!(t.through_lower_symlink(1, "/c2/s", 1).as_deref(), Some("/opt/s"));
    }

    /// Hardlinks keep bytes alive across layers and through chains.
    #[test]
    fn hardlinks_keep_bytes_alive() {
        use Op::*;
        let a = 1; // PATHS[1] = "/a/b"
        let first = |t: &Timeline| t.fate_of(0, "/a/b", 1);
        // Layer 1 links /e to /a/b; layer 2 deletes /a/b: /e still shows the bytes.
        let t = timeline(&[&[("/a/b", Write(F1))], &[("/e", Link(a))], &[("/a/b", Whiteout)]]);
        assert_eq!(first(&t), Fate::Present);
        // A chain: /a/d -> /a/b (layer 1), /e -> /a/d (layer 2), then both originals go.
        let t = timeline(&[
            &[("/a/b", Write(F1))],
            &[("/a/d", Link(a))],
            &[("/e", Link(3))],
            &[("/a", Whiteout)],
        ]);
        assert_eq!(first(&t), Fate::Present);
        // ... until the last link goes too.
        let t = timeline(&[
            &[("/a/b", Write(F1))],
            &[("/a/d", Link(a))],
            &[("/e", Link(3))],
            &[("/a", Whiteout), ("/e", Write(F2))],
        ]);
        assert_eq!(first(&t), Fate::Overwritten(3));
        // A link made after its target was replaced links the new bytes.
        let t = timeline(&[&[("/a/b", Write(F1)), ("/a/b", Write(F2)), ("/e", Link(a))]]);
        assert_eq!(first(&t), Fate::Overwritten(0));
        // One made before keeps the old bytes.
        let t = timeline(&[&[("/a/b", Write(F1)), ("/e", Link(a)), ("/a/b", Write(F2))]]);
        assert_eq!(first(&t), Fate::Present);
    }

    /// containerd applies a layer's entries in tar order: a hardlink made
    /// before a marker of the same layer removes its lower target links the
    /// bytes while they are there, and shows them after. Made after it, the
    /// link has nothing to link (containerd fails on it).
    #[test]
    fn a_link_made_before_a_marker_of_its_layer_keeps_the_lower_bytes() {
        use Op::*;
        // Link(4): to PATHS[4] = "/e"; Link(1): to PATHS[1] = "/a/b".
        type Case<'a> = (Vec<&'a [(&'a str, Op)]>, Fate);
        let cases: Vec<Case> = vec![
            (vec![&[("/e", Write(F1))], &[("/a/b", Link(4)), ("/e", Whiteout)]], Fate::Present),
            (vec![&[("/e", Write(F1))], &[("/e", Whiteout), ("/a/b", Link(4))]], Fate::Deleted(1)),
            // An opaque parent: the link made first (outside the directory) keeps the bytes.
            (vec![&[("/e", Write(F1))], &[("/a/b", Link(4)), ("/", Opaque)]], Fate::Present),
            (vec![&[("/e", Write(F1))], &[("/", Opaque), ("/a/b", Link(4))]], Fate::Deleted(1)),
            // Until a later layer removes the link too.
            (
                vec![
                    &[("/e", Write(F1))],
                    &[("/a/b", Link(4)), ("/e", Whiteout)],
                    &[("/a", Whiteout)],
                ],
                Fate::Deleted(2),
            ),
        ];
        for (layers, want) in cases {
            let t = timeline(&layers);
            assert_eq!(t.fate_of(0, "/e", 1), want, "{layers:?}");
        }
        // A whiteout of an ancestor, the link inside the opaque directory it removes from.
        let t = timeline(&[&[("/a/b", Write(F1))], &[("/a/d", Link(1)), ("/a", Opaque)]]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Present);
        let t = timeline(&[&[("/a/b", Write(F1))], &[("/e", Link(1)), ("/a", Whiteout)]]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Present);
        // The link takes the identity of the bytes it caught: a later identical re-add at
        // the link's path keeps them present there.
        let t = timeline(&[
            &[("/e", Write(F1))],
            &[("/a/b", Link(4)), ("/e", Whiteout)],
            &[("/a/b", Write(F1))],
        ]);
        assert_eq!(t.fate_of(0, "/e", 1), Fate::Present);
    }

    /// A hardlink that puts the same bytes back at a path is an identical
    /// re-add there, like a file entry with those bytes: the version below
    /// stays present (it used to be reported overwritten).
    #[test]
    fn a_hardlink_to_identical_bytes_keeps_them_present() {
        use Op::*;
        let e = 4; // PATHS[4] = "/e"
        // Layer 1 writes the same bytes at /e and links /a/b to it.
        let t = timeline(&[&[("/a/b", Write(F1))], &[("/e", Write(F1)), ("/a/b", Link(e))]]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Present);
        // Other bytes behind the link overwrite it.
        let t = timeline(&[&[("/a/b", Write(F1))], &[("/e", Write(F2)), ("/a/b", Link(e))]]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Overwritten(1));
        // Within one layer, the same.
        let t = timeline(&[&[("/a/b", Write(F1)), ("/e", Write(F1)), ("/a/b", Link(e))]]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Present);
        // Across layers: a link to a lower path holding identical bytes.
        let t = timeline(&[&[("/a/b", Write(F1)), ("/e", Write(F1))], &[("/a/b", Link(e))]]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Present);
        // ... which stays there when the lower path goes.
        let t = timeline(&[
            &[("/a/b", Write(F1)), ("/e", Write(F1))],
            &[("/a/b", Link(e))],
            &[("/e", Whiteout)],
        ]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Present);
        // Through a chain of lower links (/a/d -> /e, then /a/b -> /a/d), and a
        // link of the same layer to a lower link (/a -> /a/d: a new path).
        let t = timeline(&[
            &[("/a/b", Write(F1)), ("/e", Write(F1))],
            &[("/a/d", Link(e))],
            &[("/a/b", Link(3)), ("/e", Whiteout)],
        ]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Present);
        // Other bytes below, or a target this layer removed first: overwritten.
        let t = timeline(&[&[("/a/b", Write(F1)), ("/e", Write(F2))], &[("/a/b", Link(e))]]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Overwritten(1));
        let t = timeline(&[
            &[("/a/b", Write(F1)), ("/e", Write(F1))],
            &[("/e", Whiteout), ("/a/b", Link(e))],
        ]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Overwritten(1));
        // A layer in between replaced the target: the link shows the new bytes.
        let t = timeline(&[
            &[("/a/b", Write(F1)), ("/e", Write(F1))],
            &[("/e", Write(F2))],
            &[("/a/b", Link(e))],
        ]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Overwritten(2));
        // Then deleted later: deleted, not overwritten.
        let t = timeline(&[
            &[("/a/b", Write(F1))],
            &[("/e", Write(F1)), ("/a/b", Link(e))],
            &[("/a", Whiteout), ("/e", Whiteout)],
        ]);
        assert_eq!(t.fate_of(0, "/a/b", 1), Fate::Deleted(2));
    }

    /// A blob listed at several positions: shared, and resolved as if each
    /// listing were its own copy.
    #[test]
    fn repeated_listings_resolve_like_copies() {
        use Op::*;
        let a: &[(&str, Op)] = &[("/a/b", Write(F1))];
        let rm: &[(&str, Op)] = &[("/a/b", Whiteout)];
        type Case<'a> = (Vec<&'a [(&'a str, Op)]>, Vec<usize>);
        let cases: Vec<Case> = vec![
            (vec![a, rm, a], vec![2, 1, 2]),
            (vec![a, a, rm], vec![1, 1, 2]),
            (vec![a, rm, a, rm], vec![2, 3, 2, 3]),
            (vec![rm, a, a, a], vec![0, 3, 3, 3]),
        ];
        for (layers, slot) in cases {
            let copies = timeline(&layers);
            let shared =
                Timeline::with_repeats(layers.iter().map(|ops| build(ops)).collect(), slot);
            for l in 0..layers.len() {
                assert_eq!(shared.fate(l, "/a/b"), copies.fate(l, "/a/b"), "{layers:?} {l}");
            }
        }
    }

    /// Two names whose 64-bit xxh3 (the index's key before it was SHA-256) is the same,
    /// found by a birthday search of 2^32 hashes: with that key, a whiteout or a write at
    /// one removed what the other holds.
    const XXH3_TWINS: (&str, &str) = ("/996b9092f3e9b70f", "/ca436440b30c1e70");

    #[test]
    fn names_with_one_xxh3_stay_apart() {
        use Op::*;
        let (a, b) = XXH3_TWINS;
        assert_eq!(
            xxhash_rust::xxh3::xxh3_64(a.as_bytes()),
            xxhash_rust::xxh3::xxh3_64(b.as_bytes())
        );
        assert_ne!(key(a), key(b));
        let below = format!("{a}/s.conf");
        for (upper, what) in
            [(Whiteout, "whiteout"), (Write(F2), "write"), (Opaque, "opaque marker")]
        {
            let t = timeline(&[&[(a, Write(F1))], &[(b, upper)]]);
            assert_eq!(t.fate(0, a), Fate::Present, "{what}");
            let t = timeline(&[&[(a, Write(NodeKind::Dir)), (&below, Write(F1))], &[(b, upper)]]);
            assert_eq!(t.fate(0, &below), Fate::Present, "{what} of the directory");
        }
    }

    #[test]
    fn ancestor_keys_match_hashing_each_prefix() {
        for p in ["/a", "/a/b", "/a/bb/ccc/d", &format!("/{}", "x/".repeat(200) + "f")] {
            let want: Vec<PathKey> = ancestors(p).map(key).collect();
            assert_eq!(ancestor_keys(p), want, "{p}");
        }
    }

    #[test]
    fn stats_count_changes() {
        use Op::*;
        let t = timeline(&[
            &[("/a", Write(NodeKind::Dir)), ("/a/x", Write(F1)), ("/a/y", Write(F1))],
            &[("/a/x", Write(F2)), ("/b", Write(F1))],
            &[("/a", Whiteout)],
        ]);
        let s = t.stats();
        assert_eq!(s[0], LayerStats { added: 2, changed: 0, deleted: 0 });
        assert_eq!(s[1], LayerStats { added: 1, changed: 1, deleted: 0 });
        assert_eq!(s[2], LayerStats { added: 0, changed: 0, deleted: 2 });
    }

    /// The naive model: materialise the filesystem entry by entry, each
    /// node carrying the set of versions whose bytes it shows, and watch a
    /// version disappear.
    mod naive {
        use super::*;
        use std::collections::BTreeSet;

        /// A version: (layer, index of the op in the layer).
        pub type Version = (usize, usize);

        #[derive(Clone, PartialEq, Debug)]
        pub struct Node {
            pub kind: NodeKind,
            pub ids: BTreeSet<Version>,
        }

        fn under(p: &str, dir: &str) -> bool {
            dir == "/" || p.starts_with(&format!("{dir}/"))
        }

        fn remove_under(fs: &mut Vec<(String, Node)>, dir: &str, inclusive: bool) {
            fs.retain(|(p, _)| !(under(p, dir) || (inclusive && p == dir)));
        }

        fn dir() -> Node {
            Node { kind: NodeKind::Dir, ids: BTreeSet::new() }
        }

        fn set(fs: &mut Vec<(String, Node)>, path: &str, node: Node) {
            make_parents(fs, path);
            if !node.kind.is_dir() {
                remove_under(fs, path, false);
            }
            let old = fs.iter().position(|(p, _)| p == path).map(|i| fs.remove(i).1);
            let node = match old {
                // A directory over a directory keeps it.
                Some(o) if o.kind.is_dir() && node.kind.is_dir() => o,
                _ => node,
            };
            fs.push((path.to_owned(), node));
        }

        /// A node needs its ancestors to be directories.
        fn make_parents(fs: &mut Vec<(String, Node)>, path: &str) {
            let mut anc: Vec<String> = ancestors(path).map(str::to_owned).collect();
            anc.reverse();
            for a in anc {
                match fs.iter().position(|(p, _)| *p == a) {
                    Some(i) if fs[i].1.kind.is_dir() => {}
                    Some(i) => {
                        fs.remove(i);
                        remove_under(fs, &a, false);
                        fs.push((a, dir()));
                    }
                    None => fs.push((a, dir())),
                }
            }
        }

        fn get<'a>(fs: &'a [(String, Node)], path: &str) -> Option<&'a Node> {
            fs.iter().find(|(p, _)| p == path).map(|(_, n)| n)
        }

        /// Applies one layer; returns the filesystem after each entry.
        fn apply_layer(
            fs: &mut Vec<(String, Node)>,
            j: usize,
            ops: &[(String, Op)],
        ) -> Vec<Vec<(String, Node)>> {
            let mut snapshots = vec![fs.clone()];
            // An identical re-add (a file entry, or a link to bytes of known
            // identity) keeps the bytes that were at the path before, below or
            // earlier in this layer: from then on it shows them again.
            let readd = |snapshots: &[Vec<(String, Node)>], p: &str, node: &mut Node| {
                let earlier = snapshots
                    .iter()
                    .filter_map(|f| get(f, p))
                    .filter(|n| n.kind == node.kind)
                    .flat_map(|n| n.ids.iter().copied())
                    .collect::<Vec<_>>();
                node.ids.extend(earlier);
            };
            // What each path was made of by this layer's own entries: a link to
            // one of them shows known bytes, and re-adds them like a file entry.
            let mut made: Vec<(String, NodeKind)> = Vec::new();
            // Directories this layer's markers made (a whiteout's parent, an opaque
            // directory): the layer's own, like `made`.
            let mut made_dirs: Vec<String> = Vec::new();
            // A marker removes, where it stands in tar order, what the layers below
            // left; never the layer's own entries (nor the directories above them).
            let remove_lower = |fs: &mut Vec<(String, Node)>,
                                made: &[(String, NodeKind)],
                                made_dirs: &[String],
                                dir: &str,
                                inclusive: bool| {
                fs.retain(|(q, _)| {
                    let hit = under(q, dir) || (inclusive && q == dir);
                    let own = made.iter().any(|(m, _)| m == q || under(m, q))
                        || made_dirs.iter().any(|m| m == q || under(m, q));
                    !hit || own
                });
            };
            for (i, (p, op)) in ops.iter().enumerate() {
                match op {
                    Op::Write(k) => {
                        made.retain(|(q, _)| q != p);
                        made.push((p.clone(), *k));
                        let mut node = Node { kind: *k, ids: BTreeSet::new() };
                        if !k.is_dir() {
                            node.ids.insert((j, i));
                            readd(&snapshots, p, &mut node);
                        }
                        set(fs, p, node);
                    }
                    Op::Link(t) => {
                        // Extraction clears the link's path first, then links.
                        remove_under(fs, p, true);
                        make_parents(fs, p);
                        // A target this layer made has that identity; one it did not is
                        // what the layers below left there (after this layer's removals).
                        let known = match made.iter().rev().find(|(q, _)| q == PATHS[*t]) {
                            Some((_, k)) => Some(*k),
                            None => get(fs, PATHS[*t]).map(|n| n.kind),
                        }
                        .filter(|k| !k.is_dir() && *k != NodeKind::Other);
                        let mut node = match get(fs, PATHS[*t]) {
                            Some(n) if !n.kind.is_dir() => n.clone(),
                            _ => Node { kind: NodeKind::Other, ids: BTreeSet::new() },
                        };
                        if let Some(k) = known {
                            node.kind = k;
                            readd(&snapshots, p, &mut node);
                        }
                        set(fs, p, node);
                        made.retain(|(q, _)| q != p);
                        made.push((p.clone(), known.unwrap_or(NodeKind::Other)));
                    }
                    Op::Opaque => {
                        remove_lower(fs, &made, &made_dirs, p, false);
                        if !get(fs, p).is_some_and(|n| n.kind.is_dir()) && p != "/" {
                            set(fs, p, dir());
                        }
                        made_dirs.push(p.clone());
                    }
                    Op::Whiteout => {
                        remove_lower(fs, &made, &made_dirs, p, true);
                        // A whiteout entry lives in its parent directory.
                        if let Some(parent) = ancestors(p).next() {
                            if !get(fs, parent).is_some_and(|n| n.kind.is_dir()) {
                                set(fs, parent, dir());
                            }
                            made_dirs.push(parent.to_owned());
                        }
                    }
                }
                snapshots.push(fs.clone());
            }
            snapshots.remove(0);
            snapshots
        }

        pub fn fate(layers: &[Vec<(String, Op)>], version: Version) -> Fate {
            let mut fs: Vec<(String, Node)> = Vec::new();
            for (j, ops) in layers.iter().enumerate() {
                let start = fs.clone();
                let snapshots = apply_layer(&mut fs, j, ops);
                if j < version.0 || fs.iter().any(|(_, n)| n.ids.contains(&version)) {
                    continue;
                }
                // Gone in this layer: overwritten if something now sits where it was.
                let places: BTreeSet<&String> = std::iter::once(&start)
                    .chain(&snapshots)
                    .flatten()
                    .filter(|(_, n)| n.ids.contains(&version))
                    .map(|(p, _)| p)
                    .collect();
                let overwritten = places.iter().any(|p| get(&fs, p).is_some());
                return if overwritten { Fate::Overwritten(j) } else { Fate::Deleted(j) };
            }
            Fate::Present
        }
    }

    const PATHS: &[&str] = &["/a", "/a/b", "/a/b/c", "/a/d", "/e"];

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..3).prop_map(|h| Op::Write(NodeKind::Content(ContentKey([0, 0, 0, h])))),
            Just(Op::Write(NodeKind::Dir)),
            Just(Op::Write(NodeKind::Symlink(ContentKey([0, 0, 0, 7])))),
            (0..PATHS.len()).prop_map(Op::Link),
            Just(Op::Whiteout),
            Just(Op::Opaque),
        ]
    }

    /// A layer as a real tool could write it: no entry below a path that
    /// the same layer makes a non-directory; a path may repeat (the last
    /// entry wins), and `/` may be made opaque.
    fn layer_strategy() -> impl Strategy<Value = Vec<(String, Op)>> {
        let entry = (0..PATHS.len() + 1, op_strategy()).prop_map(|(i, op)| match PATHS.get(i) {
            Some(p) => ((*p).to_owned(), op),
            None => ("/".to_owned(), Op::Opaque),
        });
        proptest::collection::vec(entry, 0..5).prop_map(|ops| {
            let blockers: Vec<String> = ops
                .iter()
                .filter(|(_, op)| {
                    matches!(op, Op::Write(k) if !k.is_dir()) || matches!(op, Op::Link(_))
                })
                .map(|(p, _)| p.clone())
                .collect();
            ops.into_iter()
                .filter(|(p, op)| {
                    let linked_to_self = matches!(op, Op::Link(t) if PATHS[*t] == p.as_str());
                    // An opaque marker is an entry inside its directory.
                    let inside = |b: &String| {
                        p.starts_with(&format!("{b}/")) || (matches!(op, Op::Opaque) && p == b)
                    };
                    !linked_to_self && !blockers.iter().any(inside)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn resolver_matches_naive_model(
            layers in proptest::collection::vec(layer_strategy(), 1..6),
        ) {
            let mut ordinals: Vec<Vec<u32>> = Vec::new();
            let t = Timeline::new(layers.iter().map(|ops| {
                let mut l = LayerIndex::default();
                let mut ords = Vec::new();
                for (p, op) in ops {
                    apply_op(&mut l, p, *op);
                    ords.push(l.last_ordinal);
                }
                ordinals.push(ords);
                l
            }).collect());
            for (i, ops) in layers.iter().enumerate() {
                for (n, (p, op)) in ops.iter().enumerate() {
                    if matches!(op, Op::Write(k) if !k.is_dir()) {
                        prop_assert_eq!(
                            t.fate_of(i, p, ordinals[i][n]),
                            naive::fate(&layers, (i, n)),
                            "layer {} entry {} path {}", i, n, p
                        );
                    }
                }
            }
        }
    }
}
