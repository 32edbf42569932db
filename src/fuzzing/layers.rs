//! Layer walk targets: a fuzzed layer placed on top of a fixed base layer,
//! walked as the pipeline walks layers, then every visited path's status
//! resolved. [`layer_walk`] takes the blob bytes as they are (any
//! compression); [`layer_entries`] builds a valid tar from decoded entries
//! (see [`super::structured`]) so mutations reach whiteout and path logic,
//! and checks that the walk saw every entry that was written.

use std::io::Read;

use super::structured::{self, Built};
use super::{put, scratch};
use crate::diagnostics::Diagnostics;
use crate::image::layer::{self, EntryKind, Flow};
use crate::image::store::BlobStore;
use crate::image::whiteout::Timeline;
use crate::image::{Image, Layer, ReadOptions};

/// What the walk of the fuzzed layer saw.
struct Walked {
    /// (path, kind, bytes read) of every entry, in order.
    entries: Vec<(String, EntryKind, u64)>,
    /// Whether the walk ended without error.
    complete: bool,
}

/// Any bytes as the top layer of a two-layer image.
pub fn layer_walk(data: &[u8]) {
    let _ = walk_on_base(data);
}

/// Decoded entries, built into a tar, as the top layer of a two-layer image.
pub fn layer_entries(data: &[u8]) {
    let built = structured::build(data);
    let walked = walk_on_base(&built.tar);
    check_complete(&built, &walked);
}

/// Every entry the builder wrote under a usable name is seen, in order, with
/// its kind and full size; a tar that we built whole is read whole.
fn check_complete(built: &Built, walked: &Walked) {
    assert!(walked.complete, "a well-formed tar did not walk to its end");
    let seen: Vec<(&str, &EntryKind, u64)> =
        walked.entries.iter().map(|(p, k, n)| (p.as_str(), k, *n)).collect();
    let expected: Vec<(&str, &EntryKind, u64)> =
        built.expected.iter().map(|(p, k, n)| (p.as_str(), k, *n)).collect();
    assert_eq!(seen, expected, "the walk saw other entries than were written");
}

/// Builds the image, walks both layers and resolves statuses.
fn walk_on_base(top: &[u8]) -> Walked {
    let dir = scratch();
    put(dir.path(), "base.tar", &super::images::fixture::layer());
    put(dir.path(), "top.tar", top);
    let read = ReadOptions { verify_diff_ids: true, index_names: true };
    let mut image = Image::new("fuzz", "sha256:0".into(), BlobStore::dir(dir.path(), "fuzz"), read);
    for (index, member) in ["base.tar", "top.tar"].into_iter().enumerate() {
        let digest = format!("sha256:{index:064x}");
        image.push_layer(Layer::tar(index, member.into(), digest, false));
    }
    let diag = Diagnostics::new(false);
    let mut indexes = Vec::new();
    let mut walked = Walked { entries: Vec::new(), complete: true };
    for l in image.layers() {
        let mut entries = Vec::new();
        let (summary, err) = layer::walk(&image, l, &diag, &mut |entry, content| {
            let read = match content {
                Some(r) => std::io::copy(&mut r.take(entry.size), &mut std::io::sink())?,
                None => 0,
            };
            entries.push((entry.path.to_owned(), entry.kind.clone(), read));
            Ok(Flow::Continue)
        });
        if l.index == 1 {
            walked = Walked { entries, complete: err.is_none() };
        }
        indexes.push(summary.index);
    }
    let timeline = Timeline::new(indexes);
    let _ = timeline.stats();
    for (path, kind, _) in &walked.entries {
        if matches!(kind, EntryKind::Whiteout(_) | EntryKind::Opaque(_)) {
            continue;
        }
        // Nothing lies above the top layer: what it wrote is what the image shows,
        // unless a later entry of the same layer replaced it (the last entry wins).
        let fate = timeline.fate(1, path);
        assert!(fate.removed_in().is_none_or(|n| n == 1), "top layer's {path:?}: {fate:?}");
    }
    for path in ["/app", "/app/config.txt"] {
        let fate = timeline.fate(0, path);
        // A later entry of the same layer may replace it too (last entry wins).
        assert!(fate.removed_in().is_none_or(|n| n <= 1), "removed by a layer that doesn't exist");
    }
    walked
}
