//! Pattern-scan results of whole files, kept by content for the rest of the
//! run, so bytes met again are not scanned again.
//!
//! Images repeat bytes: `RUN chown -R` (or `chmod -R`) copies every file it
//! touches into a new layer, multi-stage builds copy trees from stage to
//! stage, and package trees vendor the same files many times over. The
//! pattern scan of a file depends on its bytes alone (what depends on its
//! path, the credential-file detectors and the nested readers, runs outside
//! the memo), so the same bytes give the same hits and the same set-aside
//! counts, which the memo keeps and counts again: the report is the same
//! whichever file, layer or worker met the bytes first.
//!
//! Entries are found by a seeded hash and confirmed by comparing the bytes
//! whole, so a crafted collision cannot give a file another file's (clean)
//! result. Memory is bounded: files of [`MIN_FILE`] to [`MAX_FILE`] bytes, at
//! most [`MAX_HITS`] hits each, [`MAX_BYTES`] in all (content plus a fixed
//! charge per entry and per hit, so a million tiny files cannot hold more);
//! once full, the memo keeps what it has and takes nothing new.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::Hit;
use super::cap::HitCap;

/// Largest file the memo keeps: the files that repeat most are small
/// (licences, package manifests, `__init__.py`, man pages), and room for
/// many of them beats room for a few large ones.
pub const MAX_FILE: usize = 256 << 10;
/// Smallest file the memo keeps: scanning a few dozen bytes costs less than
/// an entry's bookkeeping.
pub const MIN_FILE: usize = 64;
/// Memory the entries may take in all (part of the run's memory budget).
pub const MAX_BYTES: usize = 16 << 20;
/// What an entry is charged beyond its content: the entry and its map slot,
/// each hit with its secret, each rule its cap counts for, rounded up.
const ENTRY_COST: usize = 1024;
const HIT_COST: usize = 512;
const RULE_COUNT_COST: usize = 32;
/// A file with more hits is not kept (its hits would cost more memory than
/// its scan costs time).
pub const MAX_HITS: usize = 32;

/// Where [`Memo::get`] looked for bytes it did not have.
#[derive(Debug, Clone, Copy)]
pub struct Key(u64);

/// One file's bytes and what scanning them gave.
struct Entry {
    content: Box<[u8]>,
    hits: Vec<Hit>,
    cap: HitCap,
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<u64, Vec<Entry>>,
    bytes: usize,
}

/// The run's memo, shared by every worker.
pub struct Memo {
    seed: u64,
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo").finish_non_exhaustive()
    }
}

impl Default for Memo {
    fn default() -> Self {
        // A seed per run: which inputs share a hash cannot be known ahead.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        Memo { seed, entries: Mutex::new(Entries::default()) }
    }
}

impl Memo {
    /// The hits and cap a scan of `content` under a fresh `cap` gave, if
    /// kept; otherwise the key to [`Memo::put`] them under once scanned.
    pub fn get(&self, content: &[u8], cap: &HitCap) -> Result<(Vec<Hit>, HitCap), Option<Key>> {
        if !Self::fits(content) {
            return Err(None);
        }
        let key = Key(xxh3_64_with_seed(content, self.seed));
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = entries.by_hash.get(&key.0).and_then(|same| {
            same.iter().find(|e| {
                *e.content == *content
                    && e.cap.max() == cap.max()
                    && e.cap.max_examined() == cap.max_examined()
            })
        });
        match found {
            Some(e) => Ok((e.hits.clone(), e.cap.clone())),
            None => Err(Some(key)),
        }
    }

    /// Keeps what scanning `content` (found under `key`) gave, while there is room.
    pub fn put(&self, key: Key, content: &[u8], hits: &[Hit], cap: &HitCap) {
        if hits.len() > MAX_HITS {
            return;
        }
        let cost = content.len()
            + ENTRY_COST
            + hits.len() * HIT_COST
            + cap.rules_counted() * RULE_COUNT_COST;
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.bytes + cost > MAX_BYTES {
            return;
        }
        let Entries { by_hash, bytes } = &mut *entries;
        let same = by_hash.entry(key.0).or_default();
        // Two workers may scan the same bytes at once; one entry is enough.
        if same.iter().any(|e| *e.content == *content) {
            return;
        }
        *bytes += cost;
        same.push(Entry { content: content.into(), hits: hits.to_vec(), cap: cap.clone() });
    }

    fn fits(content: &[u8]) -> bool {
        (MIN_FILE..=MAX_FILE).contains(&content.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(memo: &Memo, content: &[u8], hits: &[Hit], cap: &HitCap) {
        if let Err(Some(key)) = memo.get(content, cap) {
            memo.put(key, content, hits, cap);
        }
    }

    const SOME: &[u8] = b"some bytes, as many as a file the memo keeps must hold at the least";
    const OTHER: &[u8] = b"some bytes, as many as a file the memo keeps must hold at the lease";

    #[test]
    fn gives_back_only_for_the_same_bytes_and_budget() {
        let memo = Memo::default();
        let cap = HitCap::with_examined(5, 50);
        let hit = Hit::budget_test(3, 7);
        put(&memo, SOME, std::slice::from_ref(&hit), &cap);
        let (hits, _) = memo.get(SOME, &cap).expect("kept");
        assert_eq!((hits[0].rule, hits[0].offset), (3, 7));
        assert!(memo.get(OTHER, &cap).is_err());
        assert!(memo.get(SOME, &HitCap::with_examined(6, 50)).is_err());
        assert!(matches!(memo.get(&SOME[..MIN_FILE - 1], &cap), Err(None)), "too small to keep");
    }

    #[test]
    fn same_hash_other_bytes_is_a_miss() {
        // Force a collision: one bucket, two contents.
        let memo = Memo { seed: 0, entries: Mutex::new(Entries::default()) };
        let cap = HitCap::new(5);
        put(&memo, SOME, &[], &cap);
        let hash = xxh3_64_with_seed(OTHER, 0);
        {
            let mut e = memo.entries.lock().expect("lock");
            let clean = e.by_hash.values_mut().next().expect("entry").pop().expect("entry");
            e.by_hash.clear();
            e.by_hash.insert(hash, vec![clean]);
        }
        assert!(memo.get(OTHER, &cap).is_err(), "a hash match alone is not a hit");
    }

    #[test]
    fn a_file_met_again_gives_the_same_hits_and_counts_again() {
        use crate::scan::content::{ContentScanner, Limits};
        let scanner = crate::scan::Scanner::new(crate::signatures::builtin().unwrap()).unwrap();
        let mut cs = ContentScanner::new(&scanner, Limits::default());
        let text = b"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nDB_PASSWORD=changeme\n\
                     GITHUB_TOKEN=ghp_FAKEtest0000000000000000000000000000\n";
        let once = |cs: &mut ContentScanner<'_>, path: &str| {
            let hits = cs.scan_file(path, &mut text.as_slice()).unwrap();
            let found: Vec<_> =
                hits.iter().map(|h| (h.hit.rule, h.hit.offset, h.hit.line)).collect();
            (found, scanner.suppressed.set_aside.counts())
        };
        let (first, after_one) = once(&mut cs, "/a/settings");
        assert!(after_one.known_examples >= 1 && after_one.placeholders >= 1, "{after_one:?}");
        assert!(scanner.memo.get(text, &HitCap::with_examined(100, 10_000)).is_ok(), "kept");
        // Another scanner (another worker) meets the same bytes under another name.
        let mut other = ContentScanner::new(&scanner, Limits::default());
        let (again, after_two) = once(&mut other, "/b/copy");
        assert_eq!(again, first);
        assert_eq!(after_two.known_examples, 2 * after_one.known_examples);
        assert_eq!(after_two.placeholders, 2 * after_one.placeholders);
    }

    #[test]
    fn stops_taking_entries_when_full() {
        let memo = Memo::default();
        let cap = HitCap::new(5);
        let big = vec![b'a'; MAX_FILE];
        let mut kept = 0;
        for i in 0..(MAX_BYTES / MAX_FILE + 4) {
            let mut c = big.clone();
            c[..8].copy_from_slice(&(i as u64).to_le_bytes());
            put(&memo, &c, &[], &cap);
            kept += usize::from(memo.get(&c, &cap).is_ok());
        }
        assert_eq!(kept, MAX_BYTES / (MAX_FILE + ENTRY_COST));
        assert!(memo.entries.lock().expect("lock").bytes <= MAX_BYTES);
    }
}
