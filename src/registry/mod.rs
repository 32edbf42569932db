//! Images where they live: an OCI distribution registry as a source.
//!
//! [`mod@reference`] parses `registry/repository:tag` names, [`auth`] finds
//! credentials and reads challenges, [`client`] speaks the HTTP API,
//! [`remote`] serves one resolved reference as a blob store (so
//! `image::layout` and `image::layer` read it like an OCI layout), and
//! [`sweep`] expands `--all-tags`, `--catalog` and `--shard`.
//!
//! It owns nothing about layers or findings. Connections are shared per
//! registry for the whole run, so a sweep of many tags pays for the token
//! flow once.

pub mod auth;
pub mod client;
pub mod reference;
pub mod remote;
pub mod sweep;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

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

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// One client per registry for the run. `image::open` has no room for
/// registry settings or shared state (every source goes through it), so
/// they live here, set once by the command line.
static CLIENTS: LazyLock<Mutex<HashMap<String, Arc<client::Client>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Sets how registries may be reached for the rest of the process. The
/// first call wins; without one, the defaults apply (https only, except
/// loopback registries).
pub fn configure(settings: Settings) {
    let _ = SETTINGS.set(settings);
}

/// The run's client for `registry`, connecting on first use.
///
/// # Errors
/// When the registry cannot be reached or does not serve the API.
pub fn client_for(registry: &str, ctx: &str) -> Result<Arc<client::Client>, Error> {
    // Held while connecting: targets are opened one at a time anyway, and
    // this keeps two connects to one registry from racing.
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = clients.get(registry) {
        return Ok(Arc::clone(c));
    }
    let settings = SETTINGS.get().copied().unwrap_or_default();
    let client = Arc::new(client::Client::connect(registry, settings, ctx)?);
    clients.insert(registry.to_owned(), Arc::clone(&client));
    Ok(client)
}

/// True when `target` names a registry image rather than a file: it has
/// the `docker://` prefix, or no such path exists and it is shaped like a
/// reference (see [`reference::looks_like_reference`]).
pub fn is_reference(target: &str) -> bool {
    target.starts_with(reference::SCHEME)
        || (!std::path::Path::new(target).exists() && reference::looks_like_reference(target))
}

/// Resolves a reference and returns a store over its image(s): the
/// metadata fetched, layers streamed on demand.
///
/// # Errors
/// A malformed reference; any registry failure, naming `target`.
pub fn open(target: &str) -> Result<BlobStore, Error> {
    let reference = Reference::parse(target)?;
    let client = client_for(&reference.registry, target)?;
    let remote = remote::Remote::resolve(client, &reference, target)?;
    Ok(BlobStore::registry(Arc::new(remote), target))
}
