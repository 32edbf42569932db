//! Naming blobs across layers. Each layer's object stores are read on their
//! own (layers are scanned in parallel and cached one by one), so a blob
//! stored in one layer whose commit and trees are in another is found
//! under its object id. While naming its own blobs, a store also records
//! `<commit>:<path>` for the blobs its trees reach but it does not hold;
//! the image pools these names from every layer, per repo (the object
//! directory's path), and a finding named by a bare id is renamed.
//!
//! Limit: a commit and its trees must be in one layer (they are, for
//! whatever git writes in one step: a pack, or one commit's loose objects).

use std::collections::HashMap;

use super::Oid;

/// Names recorded per repo at most (a hostile store could reference millions).
pub const MAX_NAMES_PER_REPO: usize = 200_000;

/// `<commit>:<path>` names of blobs, by object directory and blob id, with
/// the committer time of the naming commit (the oldest wins).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobNames {
    by_store: HashMap<String, HashMap<String, (i64, String)>>,
}

impl BlobNames {
    /// Records that `blob` is `name` in the repo whose object directory is
    /// `objects`, as of a commit made at `time`; false when the repo's
    /// bound is reached.
    pub fn insert(&mut self, objects: &str, blob: Oid, time: i64, name: String) -> bool {
        let names = self.by_store.entry(objects.to_owned()).or_default();
        let key = blob.to_string();
        if let Some(old) = names.get_mut(&key) {
            if time < old.0 {
                *old = (time, name);
            }
            return true;
        }
        if names.len() >= MAX_NAMES_PER_REPO {
            return false;
        }
        names.insert(key, (time, name));
        true
    }

    /// Adds every name of `other` (the oldest commit's name wins).
    pub fn extend(&mut self, other: &BlobNames) {
        for (objects, names) in &other.by_store {
            for (blob, (time, name)) in names {
                if let Some(oid) = Oid::from_hex(blob) {
                    self.insert(objects, oid, *time, name.clone());
                }
            }
        }
    }

    /// Names recorded, over all repos.
    pub fn len(&self) -> usize {
        self.by_store.values().map(HashMap::len).sum()
    }

    /// True when no name is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inner path a finding in the store file at image path `path`
    /// should have, when its `inner` path starts with a bare blob id that a
    /// commit of the same repo names (deeper archive levels are kept).
    pub fn rename(&self, path: &str, inner: &str) -> Option<String> {
        let (objects, _) = super::classify(path)?;
        let (head, rest) = match inner.split_once('!') {
            Some((h, r)) => (h, Some(r)),
            None => (inner, None),
        };
        if head.len() != 40 {
            return None;
        }
        let (_, name) = self.by_store.get(objects)?.get(head)?;
        Some(match rest {
            Some(r) => format!("{name}!{r}"),
            None => name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_ids_are_renamed_within_the_same_repo() {
        let blob = Oid([0xab; 20]);
        let mut a = BlobNames::default();
        a.insert("/app/.git/objects", blob, 200, "c2:late.env".into());
        let mut b = BlobNames::default();
        b.insert("/app/.git/objects", blob, 100, "c1:config/.env".into());
        a.extend(&b);
        let loose = format!("/app/.git/objects/ab/{}", &blob.to_string()[2..]);
        let id = blob.to_string();
        assert_eq!(a.rename(&loose, &id).as_deref(), Some("c1:config/.env"), "oldest commit");
        assert_eq!(
            a.rename("/app/.git/objects/pack/pack-1.pack", &format!("{id}!inner.txt")).as_deref(),
            Some("c1:config/.env!inner.txt")
        );
        assert_eq!(a.rename("/srv/.git/objects/pack/pack-1.pack", &id), None, "another repo");
        assert_eq!(a.rename(&loose, "c9:named.txt"), None, "already named");
        assert_eq!(a.rename("/app/blob.txt", &id), None, "not a store file");
    }
}
