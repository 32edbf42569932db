//! The layer walk on hand-built layer blobs held in memory: what the visitor sees, what the
//! summary records, and the completeness rules (digest checks, data after the tar, a stop),
//! for the inline walk and the overlapped one alike.

use std::io::{Read, Write};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::*;
use crate::diagnostics::{Diagnostic, Level};
use crate::image::ReadOptions;
use crate::image::blob::MemorySource;
use crate::image::store::BlobStore;

const MEMBER: &str = "blobs/sha256/layer";

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A layer tar with one entry of each kind the walk tells apart.
fn layer_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    };
    add("app/", tar::EntryType::Directory, None, b"");
    add("app/.env", tar::EntryType::Regular, None, b"TOKEN=FAKE_EXAMPLE_VALUE\n");
    add("app/hard", tar::EntryType::Link, Some("app/.env"), b"");
    add("app/link", tar::EntryType::Symlink, Some("../etc/passwd"), b"");
    add("app/.wh.old.env", tar::EntryType::Regular, None, b"");
    add("etc/.wh..wh..opq", tar::EntryType::Regular, None, b"");
    b.into_inner().unwrap()
}

/// An image whose only layer is `blob`, named `digest` and claiming `diff_id`.
fn image_of(blob: Vec<u8>, digest: String, diff_id: String) -> Image {
    let mut source = MemorySource::new("test.tar");
    source.insert(MEMBER.into(), blob);
    let store = BlobStore::source(Arc::new(source), "test.tar");
    let mut image = Image::new("test.tar", "sha256:image".into(), store, ReadOptions::default());
    image.push_layer(Layer::tar(0, MEMBER.into(), digest, true).with_diff_id(diff_id));
    image
}

/// What one walk produced.
struct Walk {
    /// Each entry: path, kind and the bytes read of it.
    seen: Vec<(String, EntryKind, Vec<u8>)>,
    summary: WalkSummary,
    error: Option<Error>,
    messages: Vec<Diagnostic>,
}

/// Walks the image's layer, inline or overlapped, stopping at the entry named `stop_at`.
fn walk_layer(image: &Image, overlapped: bool, stop_at: Option<&str>) -> Walk {
    let diag = Diagnostics::new(false);
    let mut seen = Vec::new();
    let mut visit = |e: &Entry<'_>, content: Option<&mut dyn Read>| {
        let mut bytes = Vec::new();
        if let Some(r) = content {
            r.read_to_end(&mut bytes)?;
        }
        seen.push((e.path.to_owned(), e.kind.clone(), bytes));
        Ok(if Some(e.path) == stop_at { Flow::Stop } else { Flow::Continue })
    };
    let layer = &image.layers()[0];
    let (summary, error) = if overlapped {
        walk_overlapped(image, layer, &diag, &LayerProgress::hidden(), &mut visit)
    } else {
        walk(image, layer, &diag, &mut visit)
    };
    Walk { seen, summary, error, messages: diag.snapshot() }
}

fn warnings(w: &Walk) -> Vec<&str> {
    w.messages.iter().filter(|m| m.level == Level::Warning).map(|m| m.message.as_str()).collect()
}

#[test]
fn every_entry_kind_reaches_the_visitor_and_the_digests_check_out() {
    let tar = layer_tar();
    let blob = gzip(&tar);
    let image = image_of(blob.clone(), sha(&blob), sha(&tar));
    for overlapped in [false, true] {
        let w = walk_layer(&image, overlapped, None);
        assert!(w.error.is_none(), "{:?}", w.error);
        assert!(w.messages.is_empty(), "{:?}", w.messages);
        let kinds: Vec<(&str, &EntryKind)> =
            w.seen.iter().map(|(p, k, _)| (p.as_str(), k)).collect();
        assert_eq!(
            kinds,
            [
                ("/app", &EntryKind::Dir),
                ("/app/.env", &EntryKind::File),
                ("/app/hard", &EntryKind::Hardlink("/app/.env".into())),
                ("/app/link", &EntryKind::Symlink("../etc/passwd".into())),
                ("/app/.wh.old.env", &EntryKind::Whiteout("/app/old.env".into())),
                ("/etc/.wh..wh..opq", &EntryKind::Opaque("/etc".into())),
            ],
            "overlapped: {overlapped}"
        );
        assert_eq!(w.seen[1].2, b"TOKEN=FAKE_EXAMPLE_VALUE\n");
        assert_eq!(w.summary.compression, Some(Compression::Gzip));
        assert_eq!(w.summary.files, 1);
        assert_eq!(w.summary.uncompressed_bytes, tar.len() as u64);
        assert_eq!(w.summary.blob_digest, Some(sha(&blob)));
        assert!(w.summary.unread.is_empty());
    }
}

#[test]
fn digest_mismatches_are_warnings_and_the_walk_completes() {
    let tar = layer_tar();
    let blob = gzip(&tar);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let image = image_of(blob.clone(), wrong.clone(), wrong.clone());
    for overlapped in [false, true] {
        let w = walk_layer(&image, overlapped, None);
        assert!(w.error.is_none(), "{:?}", w.error);
        assert_eq!(w.seen.len(), 6);
        let warned = warnings(&w);
        assert_eq!(warned.len(), 2, "{warned:?}");
        // Diagnostics are listed in the order of their text, not of the walk.
        let blob_warning = format!("digest mismatch, blob hashes to {}", sha(&blob));
        let tar_warning = format!(
            "diff_id mismatch, config claims {wrong} but the uncompressed layer hashes to {}",
            sha(&tar)
        );
        assert!(warned.iter().any(|m| m.contains(&blob_warning)), "{warned:?}");
        assert!(warned.iter().any(|m| m.contains(&tar_warning)), "{warned:?}");
    }
}

#[test]
fn data_after_the_tar_leaves_the_layer_incomplete() {
    let mut blob = layer_tar();
    blob.extend(b"TRAILING_FAKE_DATA");
    let image = image_of(blob.clone(), sha(&blob), sha(&blob));
    for overlapped in [false, true] {
        let w = walk_layer(&image, overlapped, None);
        assert_eq!(w.seen.len(), 6, "every entry before the end marker is read");
        let err = w.error.expect("trailing data is an error").to_string();
        assert!(err.contains("18 bytes of data follow the tar end-of-archive marker"), "{err}");
        assert_eq!(w.summary.compression, Some(Compression::None));
    }
}

#[test]
fn a_visitor_that_stops_ends_the_walk_without_digests() {
    let tar = layer_tar();
    let image = image_of(tar.clone(), sha(&tar), sha(&tar));
    for overlapped in [false, true] {
        let w = walk_layer(&image, overlapped, Some("/app/.env"));
        assert!(w.error.is_none(), "{:?}", w.error);
        assert_eq!(w.seen.len(), 2, "the walk ends at the entry that stopped it");
        assert_eq!(w.summary.blob_digest, None, "the rest of the blob is not read");
        assert!(w.messages.is_empty(), "{:?}", w.messages);
    }
}

/// The index of a one-entry layer: `path` holding `data`, or a symlink to it.
fn index_of(path: &str, data: &[u8], symlink: bool) -> crate::image::whiteout::LayerIndex {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    if symlink {
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_link_name(std::str::from_utf8(data).unwrap()).unwrap();
        b.append_data(&mut h, path, &b""[..]).unwrap();
    } else {
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }
    let blob = b.into_inner().unwrap();
    let image = image_of(blob.clone(), sha(&blob), sha(&blob));
    let w = walk_layer(&image, false, None);
    assert!(w.error.is_none(), "{:?}", w.error);
    w.summary.index
}

/// A file (or symlink target) replaced by other bytes with the same 64-bit xxh3 (the
/// content key before it was SHA-256; the pair was found by a birthday search of 2^32
/// hashes): the lower version is overwritten, not an identical re-add that leaves it
/// `present`. The same bytes again are a re-add.
#[test]
fn bytes_with_one_xxh3_are_not_a_re_add() {
    use crate::image::whiteout::{Fate, Timeline};
    let (a, b): (&[u8], &[u8]) = (b"/996b9092f3e9b70f", b"/ca436440b30c1e70");
    assert_eq!(xxhash_rust::xxh3::xxh3_64(a), xxhash_rust::xxh3::xxh3_64(b));
    for symlink in [false, true] {
        let t = Timeline::new(vec![index_of("app/x", a, symlink), index_of("app/x", b, symlink)]);
        assert_eq!(t.fate_of(0, "/app/x", 1), Fate::Overwritten(1), "symlink: {symlink}");
        let t = Timeline::new(vec![index_of("app/x", a, symlink), index_of("app/x", a, symlink)]);
        assert_eq!(t.fate_of(0, "/app/x", 1), Fate::Present, "symlink: {symlink}");
    }
}
