//! One image reference resolved against its registry, served as a blob
//! store: the metadata (manifests, indexes, configs) is fetched up front and
//! kept in memory, an `index.json` naming the top manifest is synthesized,
//! and layer blobs are streamed from the registry when a walk opens them.
//!
//! This is what lets `image::layout` and `image::layer` read a registry
//! image exactly as they read an OCI layout: they ask for members named
//! `blobs/sha256/<hex>` and never learn where the bytes come from.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::sync::Arc;

use oci_spec::image::ImageIndex;

use super::Error;
use super::client::{Client, Document};
use super::reference::Reference;
use crate::image::blob::BlobSource;

/// How deep indexes may nest (as in `image::layout`; deeper is left for
/// layout to reject).
const MAX_INDEX_DEPTH: usize = 4;

/// A resolved reference: its metadata documents and the client to stream
/// layers with.
#[derive(Debug)]
pub struct Remote {
    client: Arc<Client>,
    repository: String,
    /// The reference as the user named it, for messages.
    display: String,
    /// Member name (`index.json`, `blobs/sha256/<hex>`) → bytes.
    documents: HashMap<String, Vec<u8>>,
}

impl Remote {
    /// Fetches the manifest `reference` names, every platform manifest of an
    /// index (attestation manifests included), and every image config.
    ///
    /// # Errors
    /// HTTP, media type and digest failures, naming `display`. A platform
    /// manifest the registry does not have is left out (layout notes it).
    pub fn resolve(
        client: Arc<Client>,
        reference: &Reference,
        display: &str,
    ) -> Result<Remote, Error> {
        let mut remote = Remote {
            client,
            repository: reference.repository.clone(),
            display: display.to_owned(),
            documents: HashMap::new(),
        };
        let top =
            remote.client.manifest(display, &reference.repository, reference.manifest_ref())?;
        // The annotation gives the image its name in reports, as a tag does in a layout.
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": top.media_type,
                "digest": top.digest,
                "size": top.bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": reference.to_string()},
            }],
        });
        let index = serde_json::to_vec(&index).expect("a JSON value serializes");
        remote.documents.insert("index.json".into(), index);
        remote.fetch_tree(top, 0)?;
        Ok(remote)
    }

    /// Stores a document and fetches what it points to: child manifests of
    /// an index, the config of a manifest. Documents that do not parse are
    /// stored as they are; `image::layout` reports them with its own words.
    fn fetch_tree(&mut self, doc: Document, depth: usize) -> Result<(), Error> {
        let value: Option<serde_json::Value> = serde_json::from_slice(&doc.bytes).ok();
        self.documents.insert(member(&doc.digest), doc.bytes.clone());
        let Some(value) = value else { return Ok(()) };
        if value.get("manifests").is_some() {
            let Ok(index) = serde_json::from_slice::<ImageIndex>(&doc.bytes) else { return Ok(()) };
            if depth >= MAX_INDEX_DEPTH {
                return Ok(());
            }
            for desc in index.manifests() {
                let digest = desc.digest().to_string();
                // Attestation manifests are fetched too: their documents are scanned.
                if self.documents.contains_key(&member(&digest)) {
                    continue;
                }
                match self.client.manifest(&self.display, &self.repository, &digest) {
                    Ok(child) => self.fetch_tree(child, depth + 1)?,
                    // A partial mirror: layout notes the platform as skipped.
                    Err(Error::Status { status: 404, .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        } else if value.get("layers").is_some() {
            let config = value.pointer("/config/digest").and_then(|d| d.as_str());
            if let Some(digest) = config
                && !self.documents.contains_key(&member(digest))
            {
                let bytes = self.client.small_blob(&self.display, &self.repository, digest)?;
                self.documents.insert(member(digest), bytes);
            }
        }
        Ok(())
    }
}

impl BlobSource for Remote {
    /// Size of a metadata document; `None` for layers (never needed: the
    /// manifest gives their size) and for anything unknown.
    fn size(&self, name: &str) -> Option<u64> {
        self.documents.get(name).map(|d| d.len() as u64)
    }

    /// Opens a member: metadata from memory, layer blobs streamed from the
    /// registry with their digest checked on the way.
    ///
    /// # Errors
    /// A name that is not a sha256 blob, or an HTTP failure before the
    /// body starts.
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, crate::image::Error> {
        if let Some(doc) = self.documents.get(name) {
            return Ok(Box::new(Cursor::new(doc.clone())));
        }
        let digest = name
            .strip_prefix("blobs/sha256/")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|h| format!("sha256:{h}"));
        let Some(digest) = digest else {
            return Err(crate::image::Error::MissingBlob {
                file: self.display.clone(),
                blob: name.to_owned(),
            });
        };
        Ok(self.client.blob_reader(&self.display, &self.repository, &digest)?)
    }
}

/// `sha256:<hex>` → `blobs/sha256/<hex>`.
fn member(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}
