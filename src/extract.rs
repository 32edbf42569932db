//! The `extract` command: the bytes of one path as stored in one layer,
//! whether later layers deleted it or not. Writes only to the requested
//! output (or stdout).

use std::io::{self, Read, Write};
use std::path::Path;

use crate::diagnostics::Diagnostics;
use crate::image::layer::{self, EntryKind, Flow};
use crate::image::path::{is_same_or_under, normalize};
use crate::image::{Error, Image};
use crate::scan::member;

/// Hardlinks followed before giving up (a link to a link is legal in tar).
const MAX_LINK_HOPS: usize = 8;

/// What to recover: a file as one layer stored it, or a member of the
/// archive that file is.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// 0-based layer index.
    pub layer: usize,
    /// The file's path in the image.
    pub path: &'a str,
    /// A member inside the file, as a finding's `inner_path` names it.
    pub inner: Option<&'a str>,
}

/// Copies what `what` names, as stored in its layer of `image`, to `out`.
/// Returns the number of bytes written. A hardlink gives the bytes of its
/// target as extraction would: the entry its layer wrote there before it,
/// or else what the layers below left there.
///
/// # Errors
/// The layer, path or member does not exist, the entry is not a file, or
/// the layer cannot be read.
pub fn extract(
    image: &Image,
    what: &Wanted<'_>,
    diag: &Diagnostics,
    out: &mut dyn Write,
) -> Result<u64, Error> {
    let Wanted { layer: layer_index, path, inner } = *what;
    image.layers().get(layer_index).ok_or_else(|| Error::Invalid {
        file: image.target().to_owned(),
        what: format!("layer {layer_index}"),
        reason: format!(
            "the image has {} layers (0..{})",
            image.layers().len(),
            image.layers().len().saturating_sub(1)
        ),
    })?;
    let mut wanted = normalize(path).map_err(|p| Error::Invalid {
        file: image.target().to_owned(),
        what: format!("path {path:?}"),
        reason: p.to_string(),
    })?;
    let not_found = |wanted: &str| Error::Invalid {
        file: image.target().to_owned(),
        what: format!("layer {layer_index}"),
        reason: format!("{wanted} is not in this layer"),
    };
    let gone = |link: &str, target: &str, why: String| Error::Invalid {
        file: image.target().to_owned(),
        what: format!("layer {layer_index}: {link}"),
        reason: format!("is a hardlink to {target}, which {why}"),
    };
    // The layer being read, and (once a link was followed) the link's path.
    let mut at = layer_index;
    let mut link_path: Option<String> = None;
    // A hardlink names the entry at its target as it was when the link came.
    let mut before = u32::MAX;
    let mut hops = 0;
    loop {
        let layer = &image.layers()[at];
        let found = last_entry(image, layer, &wanted, before, diag)?;
        let Some(chosen) = found.ordinal else {
            let Some(link) = &link_path else { return Err(not_found(&wanted)) };
            // A link to a path this layer did not write shows what the layers
            // below left there, as extraction does; entries apply in tar order, so
            // only this layer's removals before the link count.
            if let Some(removed) = found.removed {
                return Err(gone(link, &wanted, format!("layer {at} {removed}")));
            }
            if at == 0 {
                return Err(gone(link, &wanted, "no layer below holds".into()));
            }
            at -= 1;
            before = u32::MAX;
            continue;
        };
        let mut outcome: Option<Result<u64, String>> = None;
        let mut link: Option<String> = None;
        let (_, err) = layer::walk(image, layer, diag, &mut |entry, content| {
            if entry.ordinal != chosen {
                return Ok(Flow::Continue);
            }
            match (entry.kind, content) {
                (EntryKind::File, Some(content)) => {
                    outcome = Some(match inner {
                        None => copy(content, out).map_err(|e| e.to_string()),
                        Some(inner) => member::copy_member(&wanted, inner, content, out)
                            .map_err(|e| e.to_string()),
                    });
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
                    file: image.target().to_owned(),
                    what: format!("layer {at}: {wanted}"),
                    reason,
                });
            }
            (None, Some(target), _) => {
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return Err(Error::Invalid {
                        file: image.target().to_owned(),
                        what: format!("layer {layer_index}: {path}"),
                        reason: "too many hardlink hops".into(),
                    });
                }
                link_path.get_or_insert_with(|| wanted.clone());
                wanted = target;
                before = chosen;
            }
            (None, None, Some(e)) => return Err(e),
            (None, None, None) => return Err(not_found(&wanted)),
        }
    }
}

/// What one layer holds at a path.
struct Lookup {
    /// The last entry at the path before the `before` ordinal.
    ordinal: Option<u32>,
    /// How the layer removes what lower layers had at the path, if it does.
    removed: Option<String>,
}

/// Finds the last entry at `wanted` before entry `before` of `layer` (the
/// last one wins, as extraction does), and whether the layer removes the
/// path from lower layers before that entry (containerd applies entries in
/// tar order): a whiteout or opaque marker over it, or a non-directory
/// written at one of its ancestors.
fn last_entry(
    image: &Image,
    layer: &crate::image::Layer,
    wanted: &str,
    before: u32,
    diag: &Diagnostics,
) -> Result<Lookup, Error> {
    let mut found = Lookup { ordinal: None, removed: None };
    let (_, err) = layer::walk(image, layer, diag, &mut |entry, _| {
        if entry.ordinal >= before {
            return Ok(Flow::Continue);
        }
        match entry.kind {
            EntryKind::Whiteout(p) if is_same_or_under(wanted, p) => {
                found.removed.get_or_insert_with(|| format!("whites out {p}"));
            }
            EntryKind::Opaque(dir) if wanted != dir && is_same_or_under(wanted, dir) => {
                found.removed.get_or_insert_with(|| format!("makes {dir} opaque"));
            }
            EntryKind::Whiteout(_) | EntryKind::Opaque(_) => {}
            _ if entry.path == wanted => {
                found.ordinal = Some(entry.ordinal);
            }
            EntryKind::Dir => {}
            _ if wanted != entry.path && is_same_or_under(wanted, entry.path) => {
                found.removed.get_or_insert_with(|| format!("replaces {} with a file", entry.path));
            }
            _ => {}
        }
        Ok(Flow::Continue)
    });
    match err {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

fn copy(content: &mut dyn Read, out: &mut dyn Write) -> io::Result<u64> {
    let n = io::copy(content, out)?;
    out.flush()?;
    Ok(n)
}

/// Checks that `path` may receive an extracted file: it does not exist, or
/// it is a regular file (not a symlink to one). A device (`/dev/full`), a
/// FIFO, a socket, a symlink or a directory is never replaced.
///
/// # Errors
/// A message naming the path and what it is.
pub fn check_destination(path: &Path) -> Result<(), DestinationError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => Ok(()),
        Ok(meta) => {
            Err(DestinationError { path: path.to_path_buf(), what: kind(&meta.file_type()) })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            Err(DestinationError { path: path.to_path_buf(), what: format!("unusable: {e}") })
        }
    }
}

/// Moves the finished temporary file to `path`, checking the destination
/// again just before (it may have changed during the extraction): an
/// existing regular file is replaced, nothing else is.
///
/// # Errors
/// The destination became something other than a regular file, or the
/// rename failed.
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), DestinationError> {
    check_destination(path)?;
    let exists = std::fs::symlink_metadata(path).is_ok();
    let result = if exists {
        tmp.persist(path).map(drop).map_err(|e| e.error)
    } else {
        // Nothing there a moment ago: never replace what appears meanwhile.
        tmp.persist_noclobber(path).map(drop).map_err(|e| e.error)
    };
    result.map_err(|e| DestinationError {
        path: path.to_path_buf(),
        what: format!("cannot be written: {e}"),
    })
}

/// Why `extract -o PATH` refused or failed to write PATH.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: {what}; extract writes only regular files and never replaces a device, link or directory",
    path.display()
)]
pub struct DestinationError {
    /// The requested output.
    pub path: std::path::PathBuf,
    /// What is there instead of a regular file.
    pub what: String,
}

fn kind(t: &std::fs::FileType) -> String {
    use std::os::unix::fs::FileTypeExt as _;
    let what = if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    format!("is {what}")
}
