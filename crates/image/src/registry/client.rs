//! A small client for the OCI distribution API: `/v2/` ping, manifests,
//! blobs (small ones read whole, layers streamed), tag lists and the
//! catalog with `Link` pagination, over blocking `ureq`.
//!
//! It says what to ask for and what an answer must be; the concerns below
//! it are each in their own module: [`super::transport`] (connections,
//! retries, error answers), `super::token` (the auth challenge, credentials
//! and the bearer token flow) and `super::digest` (digest checks of
//! documents and streamed blobs). It knows nothing of image layouts;
//! `registry::remote` decides what to fetch.

use std::io::{self, Read};

use serde::Deserialize;
use ureq::http::Response;
use ureq::{Agent, Body};

use super::Error;
use super::auth::{self, Credentials};
use super::digest::{self, VerifiedBlob};
use super::reference::registry_api_host;
use super::token::Auth;
use super::transport::{
    self, Ask, MAX_TRIES, agent, header, is_loopback, read_limited, send, status_error,
};
use crate::image::store::MAX_JSON_BYTES;

/// Pages followed through `Link` headers before giving up on a loop.
const MAX_PAGES: usize = 100_000;

/// Page size asked of the catalog and tag lists.
const PAGE_SIZE: u32 = 1000;

/// Manifest media types strata reads, in order of preference.
pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// How the client may connect.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// Allow plain HTTP and unverified TLS certificates for every registry
    /// (loopback registries may always use plain HTTP).
    pub insecure: bool,
}

/// A manifest or index as fetched, with its verified digest.
#[derive(Debug, Clone)]
pub struct Document {
    /// The exact bytes (they are what the digest covers).
    pub bytes: Vec<u8>,
    /// The media type the registry declared, or the document's own `mediaType`.
    pub media_type: String,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

/// A small document read whole, with the headers that describe it.
struct Small {
    bytes: Vec<u8>,
    /// `Content-Type`.
    content_type: Option<String>,
    /// `Docker-Content-Digest`.
    digest: Option<String>,
}

/// A connection to one registry, shared by every image read from it in a
/// run, so tokens and pooled connections are reused.
pub struct Client {
    /// The registry as references name it (`docker.io`, `127.0.0.1:5000`).
    registry: String,
    /// `https://host` or `http://host`.
    base: String,
    agent: Agent,
    auth: Auth,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("base", &self.base)
            .finish()
    }
}

impl Client {
    /// Connects to `registry` (as references name it): picks https or, when
    /// allowed and https does not answer, plain HTTP; then pings `/v2/` to
    /// learn how it authenticates. `ctx` names the reference in messages.
    ///
    /// # Errors
    /// When the registry cannot be reached or does not serve the API.
    pub fn connect(registry: &str, settings: Settings, ctx: &str) -> Result<Client, Error> {
        let host = registry_api_host(registry);
        let loopback = is_loopback(host);
        let relaxed = loopback || settings.insecure;
        let mut client = Client {
            registry: registry.to_owned(),
            base: format!("https://{host}"),
            agent: agent(loopback, settings.insecure),
            auth: Auth::new(registry, relaxed),
        };
        let ping_url = format!("{}/v2/", client.base);
        let first = if relaxed {
            // Like Docker with an insecure registry: https when it answers, else HTTP.
            match client.agent.get(&ping_url).call() {
                Ok(resp) => Some(resp),
                Err(_) => {
                    client.base = format!("http://{host}");
                    None
                }
            }
        } else {
            None
        };
        let resp = match first {
            Some(r) => r,
            None => {
                let url = format!("{}/v2/", client.base);
                send(ctx, &url, &|| client.agent.get(&url).call())?
            }
        };
        match resp.status().as_u16() {
            200..=299 => {}
            401 => {
                let challenge =
                    header(&resp, "www-authenticate").and_then(|h| auth::parse_challenge(&h));
                client.auth.set_challenge(challenge);
            }
            _ => {
                let ask = Ask { ctx, what: "the registry API (/v2/)", scope: None, accept: None };
                return Err(status_error(&client.registry, &ask, resp, None));
            }
        }
        Ok(client)
    }

    /// Uses `credentials` instead of looking them up (a Kubernetes pull
    /// secret). Only before the first request that needs them.
    pub fn with_credentials(self, credentials: Credentials) -> Self {
        self.auth.set_credentials(credentials);
        self
    }

    /// Fetches a manifest or index by tag or digest and checks its media type
    /// and digest (the digest it was asked by, and `Docker-Content-Digest`).
    ///
    /// # Errors
    /// HTTP failures, an unsupported media type, a digest mismatch.
    pub fn manifest(
        &self,
        ctx: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Document, Error> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let what = if reference.starts_with("sha256:") {
            format!("manifest {reference} in {repository}")
        } else {
            format!("tag {reference} in {repository}")
        };
        let scope = pull_scope(repository);
        let accept = MANIFEST_TYPES.join(", ");
        let ask = Ask { ctx, what: &what, scope: Some(&scope), accept: Some(&accept) };
        let Small { bytes, content_type: declared, digest: header_digest } =
            self.fetch_small(&ask, &url)?;
        let media_type = check_media_type(ctx, declared.as_deref(), &bytes)?;
        let claimed =
            [reference.starts_with("sha256:").then_some(reference), header_digest.as_deref()];
        let digest = digest::verify(ctx, &what, &bytes, claimed.into_iter().flatten())?;
        Ok(Document { bytes, media_type, digest })
    }

    /// Fetches a small blob (an image config) whole and checks its digest.
    ///
    /// # Errors
    /// HTTP failures, a blob over the metadata size limit, a digest mismatch.
    pub fn small_blob(&self, ctx: &str, repository: &str, digest: &str) -> Result<Vec<u8>, Error> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let what = format!("blob {digest} of {repository}");
        let scope = pull_scope(repository);
        let ask = Ask { ctx, what: &what, scope: Some(&scope), accept: None };
        let bytes = self.fetch_small(&ask, &url)?.bytes;
        digest::verify(ctx, &what, &bytes, [digest])?;
        Ok(bytes)
    }

    /// Opens a blob for streaming. The reader fails (never ends quietly) when
    /// the connection drops before `Content-Length` bytes, and at the end
    /// when the bytes do not hash to `digest`.
    ///
    /// # Errors
    /// HTTP failures before the body starts.
    pub fn blob_reader(
        &self,
        ctx: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Box<dyn Read + Send>, Error> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let what = format!("blob {digest} of {repository}");
        let scope = pull_scope(repository);
        let ask = Ask { ctx, what: &what, scope: Some(&scope), accept: None };
        let resp = self.get(&ask, &url)?;
        let expected_len = header(&resp, "content-length").and_then(|v| v.trim().parse().ok());
        Ok(Box::new(VerifiedBlob::new(resp.into_body().into_reader(), digest, expected_len)))
    }

    /// Every tag of a repository, following pagination, sorted.
    ///
    /// # Errors
    /// HTTP failures or a malformed list.
    pub fn tags(&self, ctx: &str, repository: &str) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let scope = pull_scope(repository);
        let first = format!("/v2/{repository}/tags/list?n={PAGE_SIZE}");
        let what = format!("tags of {repository}");
        let mut tags = self.paged(ctx, &what, &scope, &first, |b| {
            serde_json::from_slice::<Page>(b).map(|p| p.tags.unwrap_or_default())
        })?;
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Every repository in the registry's catalog, following pagination, sorted.
    ///
    /// # Errors
    /// HTTP failures (registries may refuse the catalog) or a malformed list.
    pub fn catalog(&self, ctx: &str) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            repositories: Option<Vec<String>>,
        }
        let first = format!("/v2/_catalog?n={PAGE_SIZE}");
        let mut repos = self.paged(ctx, "the catalog", "registry:catalog:*", &first, |b| {
            serde_json::from_slice::<Page>(b).map(|p| p.repositories.unwrap_or_default())
        })?;
        repos.sort();
        repos.dedup();
        Ok(repos)
    }

    fn paged(
        &self,
        ctx: &str,
        what: &str,
        scope: &str,
        first: &str,
        parse: impl Fn(&[u8]) -> serde_json::Result<Vec<String>>,
    ) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut next = Some(format!("{}{first}", self.base));
        let ask = Ask { ctx, what, scope: Some(scope), accept: Some("application/json") };
        while let Some(url) = next.take() {
            if !seen.insert(url.clone()) || seen.len() > MAX_PAGES {
                return Err(Error::Invalid {
                    reference: ctx.to_owned(),
                    what: what.to_owned(),
                    reason: format!("pagination does not end (page {url} again)"),
                });
            }
            let resp = self.get(&ask, &url)?;
            next = header(&resp, "link").and_then(|l| next_link(&l)).map(|l| self.resolve(&l));
            let bytes = read_limited(resp, MAX_JSON_BYTES).map_err(|e| Error::Transport {
                reference: ctx.to_owned(),
                url: url.clone(),
                reason: e.to_string(),
            })?;
            out.extend(parse(&bytes).map_err(|e| Error::Invalid {
                reference: ctx.to_owned(),
                what: what.to_owned(),
                reason: format!("not a valid list: {e}"),
            })?);
        }
        Ok(out)
    }

    /// A `Link` target made absolute against the registry.
    fn resolve(&self, link: &str) -> String {
        if link.starts_with("http://") || link.starts_with("https://") {
            link.to_owned()
        } else {
            format!("{}/{}", self.base, link.trim_start_matches('/'))
        }
    }

    /// GET that reads the whole (small) body, retrying body failures too:
    /// nothing has been handed on yet, so a retry loses nothing.
    fn fetch_small(&self, ask: &Ask<'_>, url: &str) -> Result<Small, Error> {
        let mut attempt = 0;
        loop {
            let resp = self.get(ask, url)?;
            let declared = header(&resp, "content-type");
            let digest = header(&resp, "docker-content-digest");
            match read_limited(resp, MAX_JSON_BYTES) {
                Ok(bytes) => return Ok(Small { bytes, content_type: declared, digest }),
                Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                    return Err(Error::Invalid {
                        reference: ask.ctx.to_owned(),
                        what: ask.what.to_owned(),
                        reason: format!("larger than {MAX_JSON_BYTES} bytes: not image metadata"),
                    });
                }
                Err(_) if attempt + 1 < MAX_TRIES => {
                    std::thread::sleep(transport::backoff(attempt, None));
                    attempt += 1;
                }
                Err(e) => {
                    return Err(Error::Transport {
                        reference: ask.ctx.to_owned(),
                        url: url.to_owned(),
                        reason: format!("{e} (after {MAX_TRIES} attempts)"),
                    });
                }
            }
        }
    }

    /// GET with auth: a 401 is answered once (token fetched, or credentials
    /// looked up), then any non-2xx status is an error naming the reference.
    fn get(&self, ask: &Ask<'_>, url: &str) -> Result<Response<Body>, Error> {
        let mut answered_challenge = false;
        loop {
            let authorization = self.auth.authorization(&self.agent, ask)?;
            let resp = send(ask.ctx, url, &|| {
                let mut req = self.agent.get(url);
                if let Some(a) = ask.accept {
                    req = req.header("Accept", a);
                }
                if let Some(v) = &authorization {
                    req = req.header("Authorization", v);
                }
                req.call()
            })?;
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(resp);
            }
            if status != 401 || answered_challenge {
                let sent = authorization.as_ref().and_then(|_| self.auth.credential_source());
                return Err(status_error(&self.registry, ask, resp, sent));
            }
            answered_challenge = true;
            self.auth.answer(&self.agent, ask, resp, authorization.as_deref())?;
        }
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// `<url>; rel="next"` from a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

/// The manifest's media type, refusing what strata cannot read. A missing
/// or generic `Content-Type` falls back to the document's `mediaType`.
fn check_media_type(ctx: &str, declared: Option<&str>, bytes: &[u8]) -> Result<String, Error> {
    let declared = declared.map(|d| d.split(';').next().unwrap_or(d).trim().to_ascii_lowercase());
    if let Some(d) = declared.as_deref()
        && MANIFEST_TYPES.contains(&d)
    {
        return Ok(d.to_owned());
    }
    let generic = declared.as_deref().is_none_or(|d| {
        d.is_empty()
            || d == "application/json"
            || d == "text/plain"
            || d == "application/octet-stream"
    });
    let doc: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let own = doc.as_ref().and_then(|v| v.get("mediaType")).and_then(|m| m.as_str());
    let schema1 =
        doc.as_ref().and_then(|v| v.get("schemaVersion")).and_then(|s| s.as_u64()) == Some(1);
    if generic && !schema1 {
        if let Some(own) = own.filter(|o| MANIFEST_TYPES.contains(o)) {
            return Ok(own.to_owned());
        }
        // An OCI document may omit mediaType; its shape says what it is.
        if let Some(v) = &doc {
            if v.get("manifests").is_some() {
                return Ok(MANIFEST_TYPES[0].to_owned());
            }
            if v.get("layers").is_some() {
                return Ok(MANIFEST_TYPES[1].to_owned());
            }
        }
    }
    let shown = match (declared.as_deref(), schema1) {
        (Some(d), _) if !generic => d.to_owned(),
        (_, true) => "application/vnd.docker.distribution.manifest.v1+json (schema 1)".to_owned(),
        (Some(d), _) if !d.is_empty() => d.to_owned(),
        _ => own.unwrap_or("none").to_owned(),
    };
    Err(Error::MediaType { reference: ctx.to_owned(), media_type: shown })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r.io/v2/x/tags/list?last=1>; rel=next"#).as_deref(),
            Some("https://r.io/v2/x/tags/list?last=1")
        );
        assert_eq!(next_link(r#"</a>; rel="prev", </b>; rel="next""#).as_deref(), Some("/b"));
        assert_eq!(next_link(r#"</a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn media_types() {
        let oci = br#"{"schemaVersion":2,"layers":[]}"#;
        assert_eq!(
            check_media_type(
                "r",
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
                oci
            )
            .unwrap(),
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(check_media_type("r", None, oci).unwrap(), MANIFEST_TYPES[1]);
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            check_media_type("r", Some("application/json"), idx).unwrap(),
            MANIFEST_TYPES[0]
        );
        let v1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        let e = check_media_type(
            "reg/x:1",
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            v1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("reg/x:1") && e.contains("v1+prettyjws"), "{e}");
        let e = check_media_type("r", None, v1).unwrap_err().to_string();
        assert!(e.contains("schema 1"), "{e}");
        let e = check_media_type("r", Some("application/vnd.example+json"), oci)
            .unwrap_err()
            .to_string();
        assert!(e.contains("application/vnd.example+json"), "{e}");
    }
}
