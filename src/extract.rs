//! The `extract` command: the bytes of one path as stored in one layer,
//! whether later layers deleted it or not. Writes only to the requested
//! output (or stdout).

use std::io::{self, Read, Write};

use crate::diagnostics::Diagnostics;
use crate::image::layer::{self, EntryKind, Flow};
use crate::image::path::normalize;
use crate::image::{Error, Image};

/// Hardlinks followed before giving up (a link to a link is legal in tar).
const MAX_LINK_HOPS: usize = 8;

/// Copies `path` as stored in layer `layer_index` of `image` to `out`.
/// Returns the number of bytes written.
///
/// # Errors
/// The layer or path does not exist, the entry is not a file, or the layer
/// cannot be read.
pub fn extract(
    image: &Image,
    layer_index: usize,
    path: &str,
    diag: &Diagnostics,
    out: &mut dyn Write,
) -> Result<u64, Error> {
    let layer = image.layers.get(layer_index).ok_or_else(|| Error::Invalid {
        file: image.target.clone(),
        what: format!("layer {layer_index}"),
        reason: format!(
            "the image has {} layers (0..{})",
            image.layers.len(),
            image.layers.len().saturating_sub(1)
        ),
    })?;
    let mut wanted = normalize(path).map_err(|p| Error::Invalid {
        file: image.target.clone(),
        what: format!("path {path:?}"),
        reason: p.to_string(),
    })?;
    let not_found = |wanted: &str| Error::Invalid {
        file: image.target.clone(),
        what: format!("layer {layer_index}"),
        reason: format!("{wanted} is not in this layer"),
    };
    // A hardlink names the entry at its target as it was when the link came.
    let mut before = u32::MAX;
    for _ in 0..MAX_LINK_HOPS {
        // The last entry at a path wins, as extraction does: find it first.
        let mut last: Option<u32> = None;
        let (_, err) = layer::walk(image, layer, diag, &mut |entry, _| {
            let marker = matches!(entry.kind, EntryKind::Whiteout(_) | EntryKind::Opaque(_));
            if entry.path == wanted && !marker && entry.ordinal < before {
                last = Some(entry.ordinal);
            }
            Ok(Flow::Continue)
        });
        if let Some(e) = err {
            return Err(e);
        }
        let Some(chosen) = last else { return Err(not_found(&wanted)) };
        let mut outcome: Option<Result<u64, String>> = None;
        let mut link: Option<String> = None;
        let (_, err) = layer::walk(image, layer, diag, &mut |entry, content| {
            if entry.ordinal != chosen {
                return Ok(Flow::Continue);
            }
            match (entry.kind, content) {
                (EntryKind::File, Some(content)) => {
                    outcome = Some(copy(content, out).map_err(|e| e.to_string()));
                }
                (EntryKind::Hardlink(target), _) => link = Some(target.clone()),
                (EntryKind::Symlink(target), _) => {
                    outcome = Some(Err(format!("is a symlink to {target:?} (not followed)")));
                }
                (EntryKind::Dir, _) => outcome = Some(Err("is a directory".into())),
                _ => outcome = Some(Err("is not a regular file".into())),
            }
            Ok(Flow::Stop)
        });
        match (outcome, link.take(), err) {
            (Some(Ok(n)), _, _) => return Ok(n),
            (Some(Err(reason)), _, _) => {
                return Err(Error::Invalid {
                    file: image.target.clone(),
                    what: format!("layer {layer_index}: {wanted}"),
                    reason,
                });
            }
            (None, Some(target), _) => {
                wanted = target;
                before = chosen;
            }
            (None, None, Some(e)) => return Err(e),
            (None, None, None) => return Err(not_found(&wanted)),
        }
    }
    Err(Error::Invalid {
        file: image.target.clone(),
        what: format!("layer {layer_index}: {path}"),
        reason: "too many hardlink hops".into(),
    })
}

fn copy(content: &mut dyn Read, out: &mut dyn Write) -> io::Result<u64> {
    let n = io::copy(content, out)?;
    out.flush()?;
    Ok(n)
}
