//! Sweeps: turn `--all-tags REPO` and `--catalog REGISTRY` into one
//! reference per tag, and `--shard K/N` into the part of them this machine
//! scans.
//!
//! Sharding hashes `repository:tag` (not the registry host), so N machines
//! given the same list each take a disjoint part whatever mirror they read.

use sha2::{Digest as _, Sha256};

use super::Error;
use super::reference::{self, Reference};
use crate::diagnostics::Diagnostics;

/// What the targets of a scan name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sweep {
    /// Each target is an image (file, directory or reference).
    #[default]
    Targets,
    /// Each target is a repository; scan every tag.
    AllTags,
    /// Each target is a registry; scan every tag of every repository.
    Catalog,
}

/// `--shard K/N`: this machine scans part K (1-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a shard of the form K/N with 1 <= K <= N");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// True when `key` (`repository:tag`) falls in this shard.
    pub fn contains(&self, key: &str) -> bool {
        shard_of(key, self.count) == self.index
    }
}

/// The 1-based shard of `key` among `count`: the first 8 bytes of
/// sha256(key), big-endian, modulo `count`. Stable across machines,
/// platforms and releases (changing it would split sweeps inconsistently).
///
/// # Panics
/// When `count` is 0.
pub fn shard_of(key: &str, count: u64) -> u64 {
    assert!(count > 0, "a shard count is at least 1");
    let hash = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first) % count + 1
}

/// The key `--shard` hashes for a target as given: `repository:tag` for a
/// registry reference, the target itself for a file.
fn shard_key(target: &str) -> String {
    match super::is_reference(target).then(|| Reference::parse(target)).and_then(Result::ok) {
        Some(r) => r.shard_key(),
        None => target.to_owned(),
    }
}

/// Expands the targets of a scan: every tag for [`Sweep::AllTags`], every
/// tag of every repository for [`Sweep::Catalog`], then keeps this shard's
/// part. Tags are sorted, so the list (and the report) is deterministic.
///
/// # Errors
/// A malformed repository or registry, an unreachable registry, a refused
/// catalog or tag list. With `--catalog`, one repository whose tags cannot
/// be listed is an error in `diag` and the others are still swept.
pub fn expand(
    targets: &[String],
    sweep: Sweep,
    shard: Option<&Shard>,
    registries: &super::Registries,
    diag: &Diagnostics,
) -> Result<Vec<String>, Error> {
    let keep = |key: &str| shard.is_none_or(|s| s.contains(key));
    let mut out = Vec::new();
    match sweep {
        Sweep::Targets => {
            out.extend(targets.iter().filter(|t| keep(&shard_key(t))).cloned());
        }
        Sweep::AllTags => {
            for target in targets {
                let repo = Reference::parse_repository(target)?;
                let client = registries.client_for(&repo.registry, target)?;
                let tags = client.tags(target, &repo.repository)?;
                if tags.is_empty() {
                    diag.warn(format!("{target}: the repository has no tags"));
                }
                push_tags(&mut out, &repo, &tags, &keep);
            }
        }
        Sweep::Catalog => {
            for target in targets {
                let registry = reference::parse_registry(target)?;
                let client = registries.client_for(&registry, target)?;
                for repository in client.catalog(target)? {
                    let repo = Reference {
                        registry: registry.clone(),
                        repository,
                        tag: None,
                        digest: None,
                    };
                    let ctx = repo.to_string();
                    match client.tags(&ctx, &repo.repository) {
                        Ok(tags) if tags.is_empty() => {
                            diag.note(format!("{ctx}: the repository has no tags, skipped"));
                        }
                        Ok(tags) => push_tags(&mut out, &repo, &tags, &keep),
                        Err(e) => diag.error(e.to_string()),
                    }
                }
            }
        }
    }
    Ok(out)
}

fn push_tags(
    out: &mut Vec<String>,
    repo: &Reference,
    tags: &[String],
    keep: &dyn Fn(&str) -> bool,
) {
    for tag in tags {
        let r = repo.with_tag(tag);
        if keep(&r.shard_key()) {
            out.push(r.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        let mut v = Vec::new();
        for repo in ["library/alpine", "team/api", "team/web", "ci/builder", "x"] {
            for tag in 0..60 {
                v.push(format!("{repo}:v{tag}"));
            }
        }
        v
    }

    #[test]
    fn every_name_in_exactly_one_shard() {
        let names = names();
        for n in 1..=5u64 {
            let shards: Vec<Shard> = (1..=n).map(|k| format!("{k}/{n}").parse().unwrap()).collect();
            let mut sizes = vec![0usize; n as usize];
            for name in &names {
                let owners: Vec<usize> =
                    (0..shards.len()).filter(|&i| shards[i].contains(name)).collect();
                assert_eq!(owners.len(), 1, "{name} with N={n}: shards {owners:?}");
                sizes[owners[0]] += 1;
            }
            assert_eq!(sizes.iter().sum::<usize>(), names.len());
            // 300 names: no shard should be starved (a broken hash would be).
            let fair = names.len() / n as usize;
            assert!(sizes.iter().all(|&s| s * 2 > fair), "N={n}: sizes {sizes:?}");
        }
    }

    #[test]
    fn shard_hash_is_pinned() {
        // Part of the contract between machines of one sweep (and between
        // strata versions): computed independently with Python's hashlib.
        for (key, of7, of3) in
            [("library/alpine:3.19", 7, 1), ("team/api:v1", 5, 3), ("fixtures/leaky-app:1", 3, 1)]
        {
            assert_eq!(
                (shard_of(key, 7), shard_of(key, 3), shard_of(key, 1)),
                (of7, of3, 1),
                "{key}"
            );
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/3".parse::<Shard>().unwrap().to_string(), "2/3");
        for bad in ["0/3", "4/3", "1/0", "1", "a/b", "1/2/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_ignore_the_registry() {
        assert_eq!(shard_key("127.0.0.1:5000/a/b:1"), "a/b:1");
        assert_eq!(shard_key("docker://mirror.example.com/a/b:1"), "a/b:1");
        assert_eq!(shard_key("alpine:3"), "library/alpine:3");
        assert_eq!(shard_key("no-such-file.tar"), "no-such-file.tar");
    }

    #[test]
    fn plain_targets_split_without_network() {
        let diag = Diagnostics::new(false);
        let targets: Vec<String> = (0..50).map(|i| format!("/nonexistent/img{i}.tar")).collect();
        let mut all = Vec::new();
        for k in 1..=3 {
            let shard: Shard = format!("{k}/3").parse().unwrap();
            all.extend(
                expand(&targets, Sweep::Targets, Some(&shard), &Default::default(), &diag).unwrap(),
            );
        }
        all.sort();
        let mut expected = targets.clone();
        expected.sort();
        assert_eq!(all, expected);
    }
}
