//! The fate of every file version: does the final image still show what
//! layer N wrote at a path, or did a later layer delete or overwrite it?
//!
//! Each layer walk produces a [`LayerIndex`] (what it wrote, whited out, or
//! made opaque). [`Timeline`] answers, for any (layer, path) version, its
//! [`Fate`] by looking only at later layers' indexes, so layers can be walked
//! in parallel and resolved afterwards. The rules follow the OCI image spec's
//! changeset semantics: whiteouts and opaque markers apply to lower layers
//! only, and are applied before the layer's own writes.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::path::{ancestors, is_same_or_under};

/// What one layer put at a path (not counting whiteouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum NodeKind {
    /// Regular file or hardlink; the hash identifies its bytes.
    Content(u64),
    /// Symbolic link; the hash identifies its target text.
    Symlink(u64),
    /// Directory.
    Dir,
    /// Device, fifo, or anything else without content.
    Other,
}

impl NodeKind {
    /// True for directories.
    pub fn is_dir(self) -> bool {
        matches!(self, NodeKind::Dir)
    }
}

/// A path as the index stores it: its 64-bit xxh3 hash. Millions of entries
/// then cost a few dozen bytes each instead of a string apiece; a collision
/// between two paths of one image is about as likely as 10^-8 for a million
/// paths, and would only blur one file's status.
type PathKey = u64;

fn key(path: &str) -> PathKey {
    xxhash_rust::xxh3::xxh3_64(path.as_bytes())
}

/// Keys are already hashes: the map uses them as they are.
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
type KeySet = HashSet<PathKey, std::hash::BuildHasherDefault<KeyHasher>>;

/// One change, with its path spelled out, for [`Timeline::stats`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Change {
    Write(NodeKind),
    Whiteout,
    Opaque,
}

/// The changes one layer makes, as needed to resolve lower layers' files.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct LayerIndex {
    written: KeyMap<NodeKind>,
    whiteouts: KeySet,
    opaques: KeySet,
    /// Directories that exist in this layer only because something is under them.
    implied_dirs: KeySet,
    /// The changes with their paths, kept only when asked for (the `layers`
    /// command counts them; scans do not need them).
    #[serde(skip)]
    named: Option<Vec<(String, Change)>>,
}

impl LayerIndex {
    /// An index that also keeps every path, for [`Timeline::stats`].
    pub fn with_names() -> Self {
        LayerIndex { named: Some(Vec::new()), ..LayerIndex::default() }
    }

    /// Records a file, directory, link or special node written at `path`.
    /// A later record for the same path in the same layer replaces the earlier one.
    pub fn write(&mut self, path: String, kind: NodeKind) {
        self.imply_parents(&path);
        self.written.insert(key(&path), kind);
        if let Some(n) = &mut self.named {
            n.push((path, Change::Write(kind)));
        }
    }

    /// Records a whiteout that deletes `path` from lower layers.
    pub fn whiteout(&mut self, path: String) {
        self.imply_parents(&path);
        self.whiteouts.insert(key(&path));
        if let Some(n) = &mut self.named {
            n.push((path, Change::Whiteout));
        }
    }

    /// Records an opaque marker: lower layers' contents of `dir` are hidden.
    pub fn opaque(&mut self, dir: String) {
        self.imply_parents(&dir);
        self.implied_dirs.insert(key(&dir));
        self.opaques.insert(key(&dir));
        if let Some(n) = &mut self.named {
            n.push((dir, Change::Opaque));
        }
    }

    /// The node this layer wrote at `path`, if any.
    pub fn written(&self, path: &str) -> Option<NodeKind> {
        self.written.get(&key(path)).copied()
    }

    /// Number of entries held (writes, whiteouts, opaque markers, implied
    /// directories): a measure of the index's memory.
    pub fn len(&self) -> usize {
        self.written.len() + self.whiteouts.len() + self.opaques.len() + self.implied_dirs.len()
    }

    /// True when the layer changes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of whiteout and opaque entries.
    pub fn removal_markers(&self) -> usize {
        self.whiteouts.len() + self.opaques.len()
    }

    fn imply_parents(&mut self, path: &str) {
        for dir in ancestors(path) {
            if !self.implied_dirs.insert(key(dir)) {
                break;
            }
        }
    }

    /// What this layer does to a lower version at `path` with identity `kind`.
    fn effect_on(&self, path: &str, kind: NodeKind) -> Option<Removal> {
        let k = key(path);
        if let Some(new) = self.written.get(&k) {
            let identical = *new == kind && !new.is_dir();
            return if identical { None } else { Some(Removal::Overwritten) };
        }
        if self.implied_dirs.contains(&k) {
            return Some(Removal::Overwritten);
        }
        if self.whiteouts.contains(&k) {
            return Some(Removal::Deleted);
        }
        for dir in ancestors(path) {
            let d = key(dir);
            if self.whiteouts.contains(&d) || self.opaques.contains(&d) {
                return Some(Removal::Deleted);
            }
            if self.written.get(&d).is_some_and(|k| !k.is_dir()) {
                return Some(Removal::Deleted);
            }
        }
        None
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

    /// The contract's status word.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Present => "present",
            Fate::Deleted(_) => "deleted",
            Fate::Overwritten(_) => "overwritten",
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
#[derive(Debug, Default)]
pub struct Timeline {
    layers: Vec<LayerIndex>,
}

impl Timeline {
    /// Builds a timeline from layer indexes in manifest order.
    pub fn new(layers: Vec<LayerIndex>) -> Self {
        Timeline { layers }
    }

    /// The index of layer `n`, if it exists.
    pub fn layer(&self, n: usize) -> Option<&LayerIndex> {
        self.layers.get(n)
    }

    /// The fate of what layer `layer` wrote at `path`. An identical re-add
    /// (same bytes, or same symlink target) keeps the version alive, so a
    /// secret copied in twice is `Present` while either copy is.
    pub fn fate(&self, layer: usize, path: &str) -> Fate {
        let Some(kind) = self.layers.get(layer).and_then(|l| l.written(path)) else {
            return Fate::Present;
        };
        for (j, later) in self.layers.iter().enumerate().skip(layer + 1) {
            match later.effect_on(path, kind) {
                None => {}
                Some(Removal::Deleted) => return Fate::Deleted(j),
                Some(Removal::Overwritten) => return Fate::Overwritten(j),
            }
        }
        Fate::Present
    }

    /// Added/changed/deleted counts per layer, by materialising the
    /// filesystem layer by layer (a sorted map makes subtree removal a range).
    /// Layers indexed without names ([`LayerIndex::with_names`]) count as empty.
    pub fn stats(&self) -> Vec<LayerStats> {
        let mut fs: BTreeMap<String, NodeKind> = BTreeMap::new();
        let mut out = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
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
    use super::*;
    use proptest::prelude::*;

    const F1: NodeKind = NodeKind::Content(1);
    const F2: NodeKind = NodeKind::Content(2);

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
            Op::Whiteout => l.whiteout(p.to_owned()),
            Op::Opaque => l.opaque(p.to_owned()),
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Op {
        Write(NodeKind),
        Whiteout,
        Opaque,
    }

    #[test]
    fn table() {
        use Op::*;
        const DIR: Op = Write(NodeKind::Dir);
        const LINK: Op = Write(NodeKind::Symlink(9));
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
        ];
        for (layers, want) in cases {
            let t = timeline(&layers);
            assert_eq!(t.fate(0, "/a/s"), want, "{layers:?}");
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

    /// The naive model: materialise the filesystem after each layer, keep
    /// which version every node came from, and watch a version disappear.
    mod naive {
        use super::*;

        #[derive(Clone, Copy, PartialEq, Debug)]
        pub struct Node {
            pub kind: NodeKind,
        }

        fn remove_under(fs: &mut Vec<(String, Node)>, dir: &str, inclusive: bool) {
            fs.retain(|(p, _)| {
                let under = p.starts_with(&format!("{dir}/"));
                !(under || (inclusive && p == dir))
            });
        }

        fn set(fs: &mut Vec<(String, Node)>, path: &str, node: Node) {
            // A node needs its ancestors to be directories.
            let mut anc: Vec<String> = ancestors(path).map(str::to_owned).collect();
            anc.reverse();
            for a in anc {
                match fs.iter().position(|(p, _)| *p == a) {
                    Some(i) if fs[i].1.kind.is_dir() => {}
                    Some(i) => {
                        fs.remove(i);
                        fs.push((a, Node { kind: NodeKind::Dir }));
                    }
                    None => fs.push((a, Node { kind: NodeKind::Dir })),
                }
            }
            if !node.kind.is_dir() {
                remove_under(fs, path, false);
            }
            fs.retain(|(p, _)| p != path);
            fs.push((path.to_owned(), node));
        }

        pub fn fate(layers: &[Vec<(String, Op)>], layer: usize, path: &str) -> Fate {
            let mut fs: Vec<(String, Node)> = Vec::new();
            let mut mine: Option<NodeKind> = None;
            for (j, ops) in layers.iter().enumerate() {
                for (p, op) in ops {
                    match op {
                        Op::Whiteout => remove_under(&mut fs, p, true),
                        Op::Opaque => remove_under(&mut fs, p, false),
                        Op::Write(_) => {}
                    }
                }
                for (p, op) in ops {
                    match op {
                        Op::Write(k) => set(&mut fs, p, Node { kind: *k }),
                        Op::Opaque => {
                            let keep = fs.iter().any(|(q, n)| q == p && n.kind.is_dir());
                            if !keep {
                                set(&mut fs, p, Node { kind: NodeKind::Dir });
                            }
                        }
                        Op::Whiteout => {
                            // A whiteout entry lives in its parent directory.
                            if let Some(parent) = ancestors(p).next() {
                                let keep = fs.iter().any(|(q, n)| q == parent && n.kind.is_dir());
                                if !keep {
                                    set(&mut fs, parent, Node { kind: NodeKind::Dir });
                                }
                            }
                        }
                    }
                }
                let now = fs.iter().find(|(p, _)| p == path).map(|(_, n)| n.kind);
                if j == layer {
                    mine = now;
                } else if j > layer {
                    let Some(k) = mine else { return Fate::Present };
                    match now {
                        None => return Fate::Deleted(j),
                        Some(n) if n == k && !n.is_dir() => {}
                        Some(_) => return Fate::Overwritten(j),
                    }
                }
            }
            Fate::Present
        }
    }

    const PATHS: &[&str] = &["/a", "/a/b", "/a/b/c", "/a/d", "/e"];

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..3).prop_map(|h| Op::Write(NodeKind::Content(h))),
            Just(Op::Write(NodeKind::Dir)),
            Just(Op::Write(NodeKind::Symlink(7))),
            Just(Op::Whiteout),
            Just(Op::Opaque),
        ]
    }

    /// A layer as a real tool writes it: each path at most once, and no
    /// entry below a path that the same layer makes a non-directory.
    fn layer_strategy() -> impl Strategy<Value = Vec<(String, Op)>> {
        proptest::collection::btree_map(0..PATHS.len(), op_strategy(), 0..4).prop_map(|m| {
            let ops: Vec<(String, Op)> =
                m.into_iter().map(|(i, op)| (PATHS[i].to_owned(), op)).collect();
            let blockers: Vec<String> = ops
                .iter()
                .filter(|(_, op)| matches!(op, Op::Write(k) if !k.is_dir()))
                .map(|(p, _)| p.clone())
                .collect();
            ops.into_iter()
                .filter(|(p, op)| {
                    let _ = op;
                    !blockers.iter().any(|b| p.starts_with(&format!("{b}/")))
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn resolver_matches_naive_model(
            layers in proptest::collection::vec(layer_strategy(), 1..6),
        ) {
            let t = Timeline::new(layers.iter().map(|ops| {
                let mut l = LayerIndex::default();
                for (p, op) in ops { apply_op(&mut l, p, *op); }
                l
            }).collect());
            for (i, ops) in layers.iter().enumerate() {
                for (p, op) in ops {
                    if matches!(op, Op::Write(k) if !k.is_dir()) {
                        prop_assert_eq!(t.fate(i, p), naive::fate(&layers, i, p), "layer {} path {}", i, p);
                    }
                }
            }
        }
    }
}
