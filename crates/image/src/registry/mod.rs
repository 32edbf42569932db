//! Images where they live: an OCI distribution registry as a source.
//!
//! [`mod@reference`] parses `registry/repository:tag` names, [`auth`] finds
//! credentials and reads challenges, [`client`] speaks the HTTP API over
//! [`transport`] (connections, retries), `token` (the challenge and bearer
//! token flow) and `digest` (digest checks),
//! [`remote`] serves one resolved reference as a blob store (so
//! `image::layout` and `image::layer` read it like an OCI layout), and
//! [`sweep`] expands `--all-tags`, `--catalog` and `--shard`.
//!
//! It owns nothing about layers or findings. Connections are shared per
//! registry for the whole run ([`Registries`], one value per run), so a
//! sweep of many tags pays for the token flow once.

pub mod auth;
pub mod client;
mod digest;
pub mod reference;
pub mod remote;
pub mod sweep;
mod token;
pub mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use client::Settings;
pub use reference::Reference;

use crate::image::store::BlobStore;

/// Why a registry image could not be read. Every variant names the
/// reference as the user gave it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target is not a valid reference.
    #[error(transparent)]
    Reference(#[from] reference::ParseError),
    /// The registry answered with an error status (401, 403, 404, 5xx…).
    #[error("{reference}: {message}")]
    Status {
        /// The reference.
        reference: String,
        /// The HTTP status.
        status: u16,
        /// Status, what was asked and the registry's own explanation.
        message: String,
    },
    /// The registry could not be reached, or the connection failed.
    #[error("{reference}: cannot reach {url}: {reason}")]
    Transport {
        /// The reference.
        reference: String,
        /// The URL requested.
        url: String,
        /// The failure.
        reason: String,
    },
    /// The manifest is of a kind strata does not read.
    #[error(
        "{reference}: unsupported manifest media type {media_type} (strata reads OCI and Docker schema 2 manifests and indexes)"
    )]
    MediaType {
        /// The reference.
        reference: String,
        /// The media type the registry declared.
        media_type: String,
    },
    /// A document is unusable: digest mismatch, oversized, malformed list.
    #[error("{reference}: {what}: {reason}")]
    Invalid {
        /// The reference.
        reference: String,
        /// The document.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// Credentials could not be read (docker config, helper, environment).
    #[error("{reference}: credentials for {registry}: {reason}")]
    Credentials {
        /// The reference.
        reference: String,
        /// The registry they were wanted for.
        registry: String,
        /// What went wrong.
        reason: String,
    },
}

/// The run's registry connections: one client per registry, connecting on
/// first use, with the run's [`Settings`]. Made once per run and passed down
/// (no process-wide state), so a sweep of many tags pays for the token flow
/// once.
#[derive(Debug, Default)]
pub struct Registries {
    settings: Settings,
    clients: Mutex<HashMap<String, Arc<client::Client>>>,
}

impl Registries {
    /// No connection yet; `settings` say how registries may be reached.
    pub fn new(settings: Settings) -> Self {
        Registries { settings, clients: Mutex::new(HashMap::new()) }
    }

    /// How registries may be reached in this run.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// The run's client for `registry`, connecting on first use.
    ///
    /// # Errors
    /// When the registry cannot be reached or does not serve the API.
    pub fn client_for(&self, registry: &str, ctx: &str) -> Result<Arc<client::Client>, Error> {
        // Held while connecting: targets are opened one at a time anyway, and
        // this keeps two connects to one registry from racing.
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(registry) {
            return Ok(Arc::clone(c));
        }
        let client = Arc::new(client::Client::connect(registry, self.settings, ctx)?);
        clients.insert(registry.to_owned(), Arc::clone(&client));
        Ok(client)
    }

    /// Resolves a reference and returns a store over its image(s): the
    /// metadata fetched, layers streamed on demand.
    ///
    /// # Errors
    /// A malformed reference; any registry failure, naming `target`.
    pub fn open(&self, target: &str) -> Result<BlobStore, Error> {
        let reference = Reference::parse(target)?;
        let client = self.client_for(&reference.registry, target)?;
        let remote = remote::Remote::resolve(client, &reference, target)?;
        Ok(BlobStore::source(Arc::new(remote), target))
    }
}

/// True when `target` names a registry image rather than a file: it has
/// the `docker://` prefix, or no such path exists and it is shaped like a
/// reference (see [`reference::looks_like_reference`]).
pub fn is_reference(target: &str) -> bool {
    target.starts_with(reference::SCHEME)
        || (!std::path::Path::new(target).exists() && reference::looks_like_reference(target))
}

/// A registry failure as an image error (its message names the reference).
impl From<Error> for crate::image::Error {
    fn from(e: Error) -> Self {
        crate::image::Error::Source(Box::new(e))
    }
}
