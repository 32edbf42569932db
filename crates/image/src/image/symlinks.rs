//! Entries written through a symlink their own layer made: where an entry
//! really lands.
//!
//! containerd extracts an entry by resolving its *parent* directory within
//! the root, symlinks included (`fs.RootPath`: an absolute target starts
//! again at the root, `..` stops there), and joining the entry's own name
//! to it. So after `app -> opt/app` in a layer, the entry `app/secret`
//! creates `/opt/app/secret`, and `app/.wh.secret` removes it. Every
//! applier agrees when the symlink comes earlier in the *same* layer (it is
//! in the directory being extracted into, the overlay upper directory
//! included); those are the symlinks [`LayerSymlinks`] knows. A symlink
//! from a lower layer is seen by the naive applier (a full copy, rootless
//! containerd) but not by containerd's overlayfs path, which extracts into
//! the upper directory alone: there the entry lands at its own name and
//! hides the lower symlink. strata keeps the name as written for those, and
//! `whiteout::Timeline` follows lower chains for the naive appliers' view of
//! a version's status (see design-notes.md, "Status of a file version").

use std::collections::HashMap;

use super::path::normalize_clamped;

/// Symlinks a link may pass through before resolution gives up (containerd's
/// `fs.RootPath` allows 255).
pub const MAX_HOPS: usize = 255;

/// The symlinks one layer has written so far, by absolute path.
#[derive(Debug, Default)]
pub struct LayerSymlinks {
    targets: HashMap<String, String>,
}

impl LayerSymlinks {
    /// Notes a symlink the layer wrote at `path`, with its target as written.
    pub fn note_symlink(&mut self, path: &str, target: &str) {
        self.targets.insert(path.to_owned(), target.to_owned());
    }

    /// Forgets a symlink at `path`, replaced or removed by a later entry.
    pub fn forget(&mut self, path: &str) {
        if !self.targets.is_empty() {
            self.targets.remove(path);
        }
    }

    /// `path` (normalised, absolute) with its parent directory resolved
    /// through this layer's symlinks, where containerd extracts it; `None`
    /// when no directory of it is one of them (or past [`MAX_HOPS`]).
    /// Costs one hash lookup per directory of `path`, and nothing while the
    /// layer has no symlink.
    pub fn resolve(&self, path: &str) -> Option<String> {
        if self.targets.is_empty() {
            return None;
        }
        let slash = path.rfind('/')?;
        let (parent, base) = (&path[..slash], &path[slash + 1..]);
        // Most paths go through no symlink: look at each prefix before building anything.
        let hit = parent
            .match_indices('/')
            .map(|(i, _)| i)
            .skip(1)
            .chain([parent.len()])
            .any(|end| self.targets.contains_key(&parent[..end]));
        if !hit || parent.is_empty() {
            return None;
        }
        let lookup = |dir: &str| self.targets.get(dir).map(String::as_str);
        let cur = walk_parent(parent, MAX_HOPS, usize::MAX, lookup)?;
        normalize_clamped(&format!("{cur}/{base}")).ok()
    }
}

/// `parent` (a directory path) resolved component by component through the
/// symlinks `lookup` names (a directory's path to its symlink's target), as
/// the kernel walks a path: a chain of symlinks is followed, `..` after a
/// symlink climbs from where it pointed, an absolute target starts again at
/// the root, the root's `..` is the root. `None` past `max_hops` symlinks
/// (the kernel's `ELOOP`). `lookup` is asked only about directories of at
/// most `longest` bytes (no symlink path is longer), so a deep path costs
/// its length, not its length per directory. The result is not normalised.
pub(crate) fn walk_parent<'t>(
    parent: &str,
    max_hops: usize,
    longest: usize,
    mut lookup: impl FnMut(&str) -> Option<&'t str>,
) -> Option<String> {
    let mut stack: Vec<String> = parent.rsplit('/').map(str::to_owned).collect();
    let mut cur = String::new();
    let mut hops = 0;
    while let Some(c) = stack.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                let cut = cur.rfind('/').unwrap_or(0);
                cur.truncate(cut);
                continue;
            }
            _ => {}
        }
        // Extended in place; on a symlink, back to its directory before the target.
        let mark = cur.len();
        cur.push('/');
        cur.push_str(&c);
        let Some(target) = (cur.len() <= longest).then(|| lookup(&cur)).flatten() else {
            continue;
        };
        cur.truncate(mark);
        hops += 1;
        if hops > max_hops {
            return None;
        }
        if target.starts_with('/') {
            cur.clear();
        }
        stack.extend(target.rsplit('/').map(str::to_owned));
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_parents_as_containerd_does() {
        let mut s = LayerSymlinks::default();
        assert_eq!(s.resolve("/app/secret"), None, "no symlink yet");
        s.note_symlink("/app", "opt/app");
        s.note_symlink("/abs", "/srv/data");
        s.note_symlink("/up", "../../../etc");
        s.note_symlink("/opt/app/cfg", "../conf");
        s.note_symlink("/loop", "loop");
        s.note_symlink("/etc/file", "hosts");
        let cases: &[(&str, Option<&str>)] = &[
            ("/app/secret", Some("/opt/app/secret")),
            ("/app", None),
            ("/application/x", None),
            ("/abs/x/y", Some("/srv/data/x/y")),
            ("/up/passwd", Some("/etc/passwd")),
            // A chain: app -> opt/app, then opt/app/cfg -> ../conf.
            ("/app/cfg/key", Some("/opt/conf/key")),
            // The entry's own name is never resolved.
            ("/opt/app/cfg", None),
            ("/loop/x", None),
            // A symlink to a file as a parent: the path it names (extraction then fails).
            ("/etc/file/x", Some("/etc/hosts/x")),
        ];
        for (path, want) in cases {
            assert_eq!(s.resolve(path).as_deref(), *want, "{path}");
        }
        s.forget("/app");
        assert_eq!(s.resolve("/app/secret"), None);
    }
}
