//! Turns a local target the user named (a path, a directory, `-`) into a
//! [`BlobStore`], recognising the container by content: a tar (docker save, OCI archive),
//! compressed or not, or a directory (an OCI layout, an unpacked docker save, a `dir:` copy). Whether a target is a
//! path or a registry reference is decided before, by `session` (an
//! existing path always wins over a reference of the same spelling).
//!
//! Stdin and whole-archive compression are spooled once to a temporary file,
//! because blobs appear in any order and must be read by seeking.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::Error;
use super::compression::{Compression, decompress};
use super::dir_copy;
use super::store::BlobStore;
use crate::sniff::looks_like_tar;

/// Opens a target as a blob store.
///
/// # Errors
/// Unreadable paths, empty files, content that is not an image container,
/// and decompression failures, each naming the target.
pub fn open(target: &str) -> Result<BlobStore, Error> {
    if target == "-" {
        let spooled = Arc::new(spool(io::stdin().lock(), "<stdin>")?);
        return open_file(&spooled.to_path_buf(), "<stdin>", Some(spooled), true);
    }
    if target.starts_with("docker-daemon:") || target.starts_with("docker-container:") {
        // Engines are read through their API by `sources`, never as a file.
        return Err(Error::Unrecognised {
            file: target.to_owned(),
            reason: "an engine target is read through the engine's API (strata::sources::open), not as a blob store".into(),
        });
    }
    let path = Path::new(target);
    let meta = std::fs::metadata(path).map_err(|e| Error::io(target, e))?;
    if meta.is_dir() {
        if path.join("index.json").is_file() {
            return Ok(BlobStore::dir(path, target));
        }
        if dir_copy::is_dir_copy(path) {
            return dir_copy::open(path, target);
        }
        // An unpacked docker save: `image::layout` reads its manifest.json as in the archive.
        if path.join("manifest.json").is_file() {
            return Ok(BlobStore::dir(path, target));
        }
        return Err(Error::Unrecognised {
            file: target.to_owned(),
            reason: "directory is not an OCI image layout (no index.json), an unpacked docker \
                     save or a skopeo/podman dir: copy (no manifest.json)"
                .into(),
        });
    }
    open_file(path, target, None, true)
}

fn open_file(
    path: &Path,
    display: &str,
    spool_guard: Option<Arc<tempfile::TempPath>>,
    may_decompress: bool,
) -> Result<BlobStore, Error> {
    let mut head = [0u8; 512];
    let n = read_head(path, &mut head).map_err(|e| Error::io(display, e))?;
    if n == 0 {
        return Err(Error::Unrecognised {
            file: display.to_owned(),
            reason: "file is empty".into(),
        });
    }
    match Compression::sniff(&head[..n]) {
        Compression::None if looks_like_tar(&head[..n]) => {
            BlobStore::tar(path, display, spool_guard)
        }
        Compression::None => Err(Error::Unrecognised {
            file: display.to_owned(),
            reason: "not a tar, gzip, zstd, xz or bzip2 archive, nor an OCI layout directory"
                .into(),
        }),
        kind if may_decompress => {
            let f = File::open(path).map_err(|e| Error::io(display, e))?;
            let (_, stream) = decompress(BufReader::with_capacity(1 << 16, f))
                .map_err(|e| Error::io(display, e))?;
            let spooled = spool(stream, display).map_err(|e| match e {
                Error::Io { file, err } => Error::Invalid {
                    file,
                    what: format!("{}-compressed archive", kind.name()),
                    reason: err.to_string(),
                },
                other => other,
            })?;
            let spooled = Arc::new(spooled);
            open_file(&spooled.to_path_buf(), display, Some(spooled), false)
        }
        kind => Err(Error::Unrecognised {
            file: display.to_owned(),
            reason: format!("{}-compressed twice", kind.name()),
        }),
    }
}

fn read_head(path: &Path, head: &mut [u8]) -> io::Result<usize> {
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Copies a stream into a temporary file that is deleted when dropped.
fn spool(mut input: impl Read, display: &str) -> Result<tempfile::TempPath, Error> {
    let mut tmp = tempfile::NamedTempFile::new().map_err(|e| Error::io("temporary file", e))?;
    io::copy(&mut input, tmp.as_file_mut()).map_err(|e| Error::io(display, e))?;
    Ok(tmp.into_temp_path())
}

#[cfg(test)]
mod tests;
