//! The `git_objects` fuzz target (strata's `fuzzing` harness re-exports it; here because the
//! readers it drives are private to this module): the git object reader (loose objects, deltas, pack
//! indexes, packs with and without their index) on arbitrary bytes.
//!
//! Input: one mode byte, then the mode's payload. Two-part payloads (delta
//! base and delta; pack and index) give the first part's length as a
//! little-endian `u32` before it.
//!
//! | mode % 5 | payload | calls |
//! |---|---|---|
//! | 0 | a zlib loose object | `loose::parse` |
//! | 1 | base, delta | `delta::apply` |
//! | 2 | a `.idx` file | `pack::parse_index` |
//! | 3 | a `.pack` file | `read_pack_bytes` without index |
//! | 4 | pack, idx | `read_pack_bytes` with index |
//!
//! Invariants: nothing panics; no result is larger than the limits allow;
//! a delta's result has the size it declares; a loose object's content
//! matches its header; every pack blob is within the object size limit and
//! is a blob (commits, trees and tags are never handed to the scanner).

use super::{self as git, Kind, Limits, delta, loose, pack};

/// Limits small enough that a fuzzer's input cannot make one run slow.
const LIMITS: Limits = Limits {
    max_objects: 4096,
    max_inflated: 16 << 20,
    max_object_size: 1 << 20,
    max_delta_depth: 50,
    max_spool: 16 << 20,
};

/// Splits a two-part payload: a `u32` length, that many bytes, the rest.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<4>() else { return (data, &[]) };
    let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
    rest.split_at(len)
}

/// Joins two parts the way `split` reads them (for seeds and tests).
pub fn join(mode: u8, first: &[u8], second: &[u8]) -> Vec<u8> {
    let len = u32::try_from(first.len()).expect("a seed part should be under 4 GiB");
    let mut v = vec![mode];
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(first);
    v.extend_from_slice(second);
    v
}

/// The target: see the module documentation.
pub fn git_objects(data: &[u8]) {
    let Some((&mode, payload)) = data.split_first() else { return };
    match mode % 5 {
        0 => {
            if let Ok((kind, content)) = loose::parse(payload, LIMITS.max_object_size) {
                assert!(content.len() as u64 <= LIMITS.max_object_size, "loose object too large");
                let _ = git::Oid::of(kind, &content);
            }
        }
        1 => {
            let (base, d) = split(payload);
            if let Ok(out) = delta::apply(base, d, LIMITS.max_object_size) {
                assert!(out.len() as u64 <= LIMITS.max_object_size, "delta result too large");
                let declared = delta::target_size(d).expect("an applied delta has a header");
                assert_eq!(out.len() as u64, declared, "delta result differs from its size");
            }
        }
        2 => {
            if let Ok(entries) = pack::parse_index(payload, LIMITS.max_objects) {
                assert!(entries.len() <= LIMITS.max_objects, "index over the object limit");
                assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "index ids not sorted");
            }
        }
        3 => check_pack(payload, None),
        _ => {
            let (p, idx) = split(payload);
            check_pack(p, Some(idx));
        }
    }
}

fn check_pack(p: &[u8], idx: Option<&[u8]>) {
    let (blobs, outcome) = git::read_pack_bytes(p, idx, LIMITS);
    let mut total = 0u64;
    for b in &blobs {
        assert!(b.data.len() as u64 <= LIMITS.max_object_size, "blob over the size limit");
        assert!(!b.name.is_empty(), "a blob without a name");
        total += b.data.len() as u64;
    }
    assert!(total <= LIMITS.max_inflated, "more inflated than the repo limit: {total}");
    // Every error is a message a user can read (it goes into the report).
    for e in &outcome.errors {
        assert!(!e.is_empty() && e.len() < 4096, "error message of {} bytes", e.len());
    }
    let _ = Kind::Blob;
}
