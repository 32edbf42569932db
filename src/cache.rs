//! Layer results, remembered: within a run (a sweep meets the same base
//! layers under every tag) and, with `--cache-dir`, across runs.
//!
//! An entry is keyed by the SHA-256 of the layer blob's bytes as strata
//! read them, the diff_id, the scanner's fingerprint (rules, detectors,
//! strata version) and the nested-archive limits, so a rule change or
//! upgrade never reuses stale results. Only layers read completely, whose
//! blob hashed to the digest the manifest names, are stored. Status
//! resolution always runs over the whole image; a cached layer supplies its
//! path index like a fresh one.
//!
//! A hit needs the blob digest, never only a claimed diff_id: a legacy
//! docker-save layer (named by directory, not by digest) is hashed before
//! it is looked up, so another image's config claiming its diff_id cannot
//! stand in for its bytes. Across runs, like Docker's own layer store, the
//! cache trusts that a blob named by its digest in an OCI layout or a
//! registry has those bytes. Entries hold raw secrets (reports need them to redact, hash and,
//! with `--show-secrets`, print them): files are created 0600 in a 0700
//! directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::diagnostics::Diagnostics;
use crate::finding::Secret;
use crate::image::whiteout::LayerIndex;
use crate::image::{Image, Layer};
use crate::scan::content::{FileHit, Limits};
use crate::scan::git::names::BlobNames;
use crate::scan::names::NameField;
use crate::scan::packages::PackageRoots;
use crate::scan::{Hit, Scanner};

/// What one layer's walk produced.
#[derive(Debug, Default, Clone)]
pub struct LayerScan {
    /// The layer's changes, for status resolution.
    pub index: LayerIndex,
    /// Hits with the image path and entry ordinal of the file they were in.
    pub hits: Vec<(String, u32, FileHit)>,
    /// Third-party package roots proven by package metadata in this layer.
    pub packages: PackageRoots,
    /// Names of blobs this layer's git commits reach but other layers hold.
    pub git_names: BlobNames,
    /// Uncompressed bytes read.
    pub bytes: u64,
    /// How much of the layer was read and scanned (only complete scans are cached).
    pub read: LayerRead,
    /// SHA-256 of the blob as read (what the cache keys on).
    pub blob_digest: Option<String>,
    /// Hits dropped by a findings budget (such scans are not cached, so a
    /// rescan reports the same counts).
    pub capped: u64,
}

/// How much of a layer a scan read: the `read` field of a layer in the JSON
/// report (docs/json-contract.md). Anything less than complete comes with an
/// `error` diagnostic naming the layer and says the scan was incomplete
/// (exit code 2).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerRead {
    /// The blob was read to its end without error and every file in it was
    /// scanned whole, archives and git stores inside it included.
    Complete,
    /// Some of the layer was scanned, some not: the stream failed part-way
    /// (bad checksum, cut short, not tar from some offset on), or a budget
    /// left entries, nested archive members or a git store unread.
    Partial,
    /// Nothing in the layer was scanned: its blob could not be opened or
    /// decompressed, or failed before its first entry.
    #[default]
    None,
}

/// Version of the entry format; part of every key.
/// 12: path keys (the index's, and the name scan's directories) are 128 bits of SHA-256.
/// 13: session 12's detection rounds (new rules and file detectors, third-party runtime
/// trees) on top of 12.
/// 14: content and symlink keys of the index are 128 bits of SHA-256; hardlinks packed;
/// archive members' names and SQL dumps' credential columns are scanned (session 13).
/// 15: SQL dumps' key-value rows are read under their keys.
const FORMAT: u32 = 15;

#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    index: LayerIndex,
    hits: Vec<CachedHit>,
    /// Third-party package roots from package metadata.
    #[serde(default)]
    packages: PackageRoots,
    /// Names of git blobs other layers hold.
    #[serde(default)]
    git_names: BlobNames,
    bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct CachedHit {
    path: String,
    ordinal: u32,
    inner_path: Option<String>,
    /// The entry's name or link target held the secret (`scan::names`).
    #[serde(default)]
    name: Option<String>,
    rule_id: String,
    offset: u64,
    line: u64,
    secret: String,
    validation: Option<String>,
    #[serde(default)]
    failed_check: bool,
    #[serde(default)]
    decoding: Vec<String>,
    /// Base64 of the hit's verification material, when it has any.
    #[serde(default)]
    material: Option<String>,
}

/// Per-run memory plus an optional directory of entries.
#[derive(Debug)]
pub struct LayerCache {
    dir: Option<PathBuf>,
    salt: String,
    memory: Mutex<Memory>,
    /// Whether the run may meet a layer again (more than one image): only
    /// then are scans kept in memory, where a copy of a big layer's index
    /// and hits would otherwise add to a one-image scan's peak for nothing.
    remember: std::sync::atomic::AtomicBool,
}

/// Recently scanned layers, bounded so a long sweep does not grow without limit.
#[derive(Debug)]
struct Memory {
    /// Most weight held.
    cap: usize,
    scans: HashMap<String, LayerScan>,
    /// Keys, oldest first.
    order: std::collections::VecDeque<String>,
    /// Index entries and hits held, summed.
    weight: usize,
}

/// Index entries and hits the per-run memory holds at most (tens of MB).
const MEMORY_WEIGHT: usize = 1 << 20;

fn weight(scan: &LayerScan) -> usize {
    scan.index.len() + scan.hits.len() + scan.packages.len() + scan.git_names.len() + 1
}

impl Memory {
    fn new(cap: usize) -> Self {
        Memory { cap, scans: HashMap::new(), order: Default::default(), weight: 0 }
    }

    fn get(&self, key: &str) -> Option<LayerScan> {
        self.scans.get(key).cloned()
    }

    fn is_empty(&self) -> bool {
        self.scans.is_empty()
    }

    fn insert(&mut self, key: String, scan: LayerScan) {
        let w = weight(&scan);
        if w > self.cap || self.scans.contains_key(&key) {
            return;
        }
        while self.weight + w > self.cap {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(s) = self.scans.remove(&old) {
                self.weight -= weight(&s);
            }
        }
        self.weight += w;
        self.order.push_back(key.clone());
        self.scans.insert(key, scan);
    }
}

/// The platform cache directory: `$XDG_CACHE_HOME/strata`, else `~/.cache/strata`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("strata"))
}

impl LayerCache {
    /// A cache for one run with `scanner` and `limits`; `dir` adds the disk.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(dir: Option<&Path>, scanner: &Scanner, limits: Limits) -> std::io::Result<Self> {
        // Entries live in a directory of our own, never chmod-ing what the user named.
        let dir = dir.map(|d| d.join(format!("layers-v{FORMAT}")));
        if let Some(d) = &dir
            && !d.is_dir()
        {
            std::fs::create_dir_all(d)?;
            restrict(d, 0o700)?;
        }
        let salt = format!("{FORMAT}:{}:{limits:?}", scanner.fingerprint());
        Ok(LayerCache {
            dir,
            salt,
            memory: Mutex::new(Memory::new(MEMORY_WEIGHT)),
            remember: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Keep scans in memory for the rest of the run (the default), or not:
    /// a run of one image never reads them back.
    pub fn remember(&self, on: bool) {
        self.remember.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The key of a layer's scan, from the SHA-256 of its blob's bytes.
    fn key(&self, layer: &Layer, blob_digest: &str) -> Option<String> {
        let blob_digest = Some(blob_digest).filter(|d| d.starts_with("sha256:"))?;
        let diff_id = layer.diff_id().unwrap_or("-");
        let mut h = Sha256::new();
        for part in [self.salt.as_str(), blob_digest, diff_id] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        Some(hex::encode(h.finalize()))
    }

    /// The digest of the blob's bytes, to look a layer up: the manifest's
    /// digest when the walk verifies it, else (legacy docker-save layers)
    /// the blob hashed now, when the cache could hold it at all.
    fn lookup_digest(&self, image: &Image, layer: &Layer) -> Option<String> {
        if layer.verify_digest {
            return Some(layer.digest().to_owned());
        }
        let empty = self.memory.lock().map(|m| m.is_empty()).unwrap_or(true);
        if self.dir.is_none() && empty {
            return None;
        }
        let mut blob = image.store().open(&layer.member).ok()?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match std::io::Read::read(&mut blob, &mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(_) => return None,
            }
        }
        Some(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{key}.json")))
    }

    /// A stored scan of `layer` of `image`, from memory or disk. A corrupt
    /// entry is reported and ignored.
    pub fn get(
        &self,
        image: &Image,
        layer: &Layer,
        scanner: &Scanner,
        diag: &Diagnostics,
    ) -> Option<LayerScan> {
        let digest = self.lookup_digest(image, layer)?;
        let key = self.key(layer, &digest)?;
        if let Some(s) = self.memory.lock().ok()?.get(&key) {
            return Some(s);
        }
        let path = self.path(&key)?;
        let bytes = std::fs::read(&path).ok()?;
        match decode(&bytes, scanner) {
            Some(scan) => {
                if let Ok(mut m) = self.memory.lock() {
                    m.insert(key, scan.clone());
                }
                Some(scan)
            }
            None => {
                diag.warn(format!(
                    "layer cache entry {} is corrupt or from another version; rescanning",
                    path.display()
                ));
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Remembers a complete scan of `layer`, keyed by the blob digest the
    /// walk computed; a blob that did not hash to its manifest digest is
    /// never stored.
    pub fn put(&self, layer: &Layer, scan: &LayerScan, scanner: &Scanner, diag: &Diagnostics) {
        let Some(actual) = scan.blob_digest.as_deref() else { return };
        if scan.read != LayerRead::Complete
            || scan.capped > 0
            || (layer.verify_digest && actual != layer.digest())
        {
            return;
        }
        let Some(key) = self.key(layer, actual) else { return };
        if self.remember.load(std::sync::atomic::Ordering::Relaxed)
            && let Ok(mut m) = self.memory.lock()
        {
            m.insert(key.clone(), scan.clone());
        }
        let Some(path) = self.path(&key) else { return };
        if let Err(e) = write_entry(&path, scan, scanner) {
            diag.warn(format!("cannot write layer cache entry {}: {e}", path.display()));
        }
    }
}

fn write_entry(path: &Path, scan: &LayerScan, scanner: &Scanner) -> std::io::Result<()> {
    let entry = Entry {
        format: FORMAT,
        index: scan.index.clone(),
        hits: scan
            .hits
            .iter()
            .map(|(path, ordinal, fh)| CachedHit {
                path: path.clone(),
                ordinal: *ordinal,
                inner_path: fh.inner_path.clone(),
                name: fh.name.map(|n| n.as_str().to_owned()),
                rule_id: scanner.rule(fh.hit.rule).id.clone(),
                offset: fh.hit.offset,
                line: fh.hit.line,
                secret: base64::engine::general_purpose::STANDARD.encode(fh.hit.secret.expose()),
                validation: fh.hit.validation.clone(),
                failed_check: fh.hit.failed_check,
                decoding: fh.hit.decoding.clone(),
                material: fh
                    .hit
                    .material
                    .as_ref()
                    .map(|m| base64::engine::general_purpose::STANDARD.encode(m.expose())),
            })
            .collect(),
        packages: scan.packages.clone(),
        git_names: scan.git_names.clone(),
        bytes: scan.bytes,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    // tempfile creates 0600; rename makes the entry appear whole or not at all.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut tmp, &entry)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn decode(bytes: &[u8], scanner: &Scanner) -> Option<LayerScan> {
    let entry: Entry = serde_json::from_slice(bytes).ok()?;
    if entry.format != FORMAT {
        return None;
    }
    let mut hits = Vec::with_capacity(entry.hits.len());
    for h in entry.hits {
        let secret = base64::engine::general_purpose::STANDARD.decode(h.secret).ok()?;
        let hit = Hit {
            rule: scanner.rule_index(&h.rule_id)?,
            offset: h.offset,
            line: h.line,
            secret: Secret::new(secret),
            validation: h.validation,
            failed_check: h.failed_check,
            decoding: h.decoding,
            material: match h.material {
                Some(m) => {
                    Some(Secret::new(base64::engine::general_purpose::STANDARD.decode(m).ok()?))
                }
                None => None,
            },
        };
        let name = match h.name {
            Some(n) => Some(NameField::parse(&n)?),
            None => None,
        };
        hits.push((h.path, h.ordinal, FileHit { inner_path: h.inner_path, name, hit }));
    }
    Some(LayerScan {
        index: entry.index,
        hits,
        packages: entry.packages,
        git_names: entry.git_names,
        bytes: entry.bytes,
        read: LayerRead::Complete,
        capped: 0,
        blob_digest: None,
    })
}

#[cfg(unix)]
fn restrict(dir: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(entries: usize) -> LayerScan {
        let mut s = LayerScan::default();
        for i in 0..entries {
            let ordinal = u32::try_from(i + 1).expect("a test layer has few entries");
            s.index.write_version(
                &format!("/f{i}"),
                crate::image::whiteout::NodeKind::Dir,
                ordinal,
            );
        }
        s
    }

    #[test]
    fn memory_is_bounded_and_evicts_oldest() {
        let mut m = Memory::new(100);
        m.insert("a".into(), scan(40));
        m.insert("b".into(), scan(40));
        assert!(m.get("a").is_some() && m.get("b").is_some());
        m.insert("c".into(), scan(40));
        assert!(m.get("a").is_none(), "oldest evicted");
        assert!(m.get("b").is_some() && m.get("c").is_some());
        assert!(m.weight <= 100);
        m.insert("huge".into(), scan(200));
        assert!(m.get("huge").is_none(), "larger than the cap: not kept");
    }
}
