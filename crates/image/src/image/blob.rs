//! The blob-source interface every image source implements: members named
//! like an OCI layout (`index.json`, `blobs/sha256/<hex>`, or a docker-save
//! `manifest.json` and its members), each opened as a stream.
//!
//! `image::layout` finds the manifests through `index.json` or
//! `manifest.json` and asks for blobs by digest; it never learns whether
//! the bytes come from a file, memory, a registry or local engine storage.
//! [`MemorySource`] holds small documents that a source built or received
//! (a streamed export's metadata, a synthesized index).

use std::collections::HashMap;
use std::fmt;
use std::io::{Cursor, Read};

use super::Error;

/// A source of blobs addressed by member name.
pub trait BlobSource: Send + Sync + fmt::Debug {
    /// Size of the member at `name`, or `None` when absent.
    fn size(&self, name: &str) -> Option<u64>;

    /// Opens a member for streaming.
    ///
    /// # Errors
    /// [`Error::MissingBlob`] when absent; read failures name the source.
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, Error>;
}

/// Documents held in memory, by member name.
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    display: String,
    members: HashMap<String, Vec<u8>>,
}

impl MemorySource {
    /// An empty source; `display` names it in messages.
    pub fn new(display: &str) -> Self {
        MemorySource { display: display.to_owned(), members: HashMap::new() }
    }

    /// Adds (or replaces) a member.
    pub fn insert(&mut self, name: String, bytes: Vec<u8>) {
        self.members.insert(name, bytes);
    }

    /// The bytes of a member.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.members.get(name).map(Vec::as_slice)
    }
}

impl BlobSource for MemorySource {
    fn size(&self, name: &str) -> Option<u64> {
        self.members.get(name.trim_start_matches("./")).map(|b| b.len() as u64)
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, Error> {
        match self.members.get(name.trim_start_matches("./")) {
            Some(b) => Ok(Box::new(Cursor::new(b.clone()))),
            None => Err(Error::MissingBlob { file: self.display.clone(), blob: name.to_owned() }),
        }
    }
}
