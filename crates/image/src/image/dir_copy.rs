//! A `dir:` copy of an image, as `skopeo copy … dir:PATH` and `podman save --format docker-dir`
//! write it: `manifest.json` (the image's manifest, or with `--all` its index), a `version` file,
//! every blob in a file named by its hex digest, and the manifests an index lists as
//! `<hex>.manifest.json`.
//!
//! It is served as an OCI layout, as the registry source serves a remote image: an `index.json`
//! naming `manifest.json` by its digest is synthesized, and `blobs/sha256/<hex>` is the file of
//! that digest. `image::layout` then reads it like any layout, checking every digest. Files are
//! read as a layout directory's are: inside the directory, symlinks never followed.

use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::Error;
use super::blob::BlobSource;
use super::store::{BlobStore, LayoutDir};

/// How the `version` file of a `dir:` copy starts (c/image writes "… 1.1").
const VERSION_MARK: &[u8] = b"Directory Transport Version:";

/// True when `root` holds a `dir:` copy: a `manifest.json` and a `version` file that says so.
pub(crate) fn is_dir_copy(root: &Path) -> bool {
    let mut head = Vec::new();
    let read = std::fs::File::open(root.join("version"))
        .and_then(|f| f.take(VERSION_MARK.len() as u64).read_to_end(&mut head));
    read.is_ok() && head == VERSION_MARK && root.join("manifest.json").is_file()
}

/// A `dir:` copy as a [`BlobSource`] with OCI layout member names.
#[derive(Debug)]
struct DirCopy {
    files: LayoutDir,
    /// The synthesized `index.json`.
    index: Vec<u8>,
    /// `blobs/sha256/<hex>` of `manifest.json`.
    top: String,
}

impl DirCopy {
    /// The file that holds member `name`, if the name is one a layout has.
    fn file_of(&self, name: &str) -> Option<String> {
        if name == self.top {
            return Some("manifest.json".to_owned());
        }
        let hex = name.strip_prefix("blobs/sha256/").filter(|h| {
            h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })?;
        let manifest = format!("{hex}.manifest.json");
        Some(if self.files.size(&manifest).is_some() { manifest } else { hex.to_owned() })
    }
}

impl BlobSource for DirCopy {
    fn size(&self, name: &str) -> Option<u64> {
        if name == "index.json" {
            return Some(self.index.len() as u64);
        }
        self.files.size(&self.file_of(name)?)
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, Error> {
        if name == "index.json" {
            return Ok(Box::new(Cursor::new(self.index.clone())));
        }
        match self.file_of(name) {
            Some(file) => self.files.open(&file),
            None => Err(Error::MissingBlob {
                file: self.files.display().to_owned(),
                blob: name.to_owned(),
            }),
        }
    }
}

/// Opens the `dir:` copy at `root` (see [`is_dir_copy`]).
///
/// # Errors
/// An unreadable or oversized `manifest.json`, naming `display`.
pub(crate) fn open(root: &Path, display: &str) -> Result<BlobStore, Error> {
    let files = BlobStore::dir(root, display);
    let manifest = files.read_small("manifest.json")?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
    // The media type only labels the descriptor: layout judges a document by its content, and
    // reports one that does not parse in its own words.
    let doc: Option<serde_json::Value> = serde_json::from_slice(&manifest).ok();
    let media_type = doc
        .as_ref()
        .and_then(|d| d.get("mediaType").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| {
            let is_index = doc.as_ref().is_some_and(|d| d.get("manifests").is_some());
            if is_index {
                "application/vnd.oci.image.index.v1+json"
            } else {
                "application/vnd.oci.image.manifest.v1+json"
            }
            .to_owned()
        });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": digest, "size": manifest.len()}],
    });
    let copy = DirCopy {
        files: LayoutDir::new(root, display),
        index: serde_json::to_vec(&index).expect("a JSON value serializes"),
        top: format!("blobs/{}", digest.replacen(':', "/", 1)),
    };
    Ok(BlobStore::source(Arc::new(copy), display))
}
