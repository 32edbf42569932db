//! A small client for the OCI distribution API: `/v2/` ping, manifests,
//! blobs (small ones read whole, layers streamed), tag lists and the
//! catalog with `Link` pagination, over blocking `ureq`.
//!
//! It owns the transport concerns: https (plain HTTP only for loopback or
//! `--insecure`), bearer-token and basic auth, bounded retries with backoff
//! before a response starts streaming, and digest checks. It knows nothing
//! of image layouts; `registry::remote` decides what to fetch.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use ureq::http::Response;
use ureq::{Agent, Body};

use super::Error;
use super::auth::{self, Challenge, Credentials, Secret};
use super::reference::registry_api_host;
use crate::image::store::MAX_JSON_BYTES;

/// Attempts per request, the first included, for connection failures,
/// timeouts, 429 and 5xx answers.
pub const MAX_TRIES: u32 = 3;

/// First retry delay; each further retry doubles it.
const BACKOFF: Duration = Duration::from_millis(250);

/// Longest `Retry-After` we honour; a registry asking for more gets this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Time to set up a connection (DNS, TCP, TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Time a single read may wait for bytes: a stalled stream becomes an error
/// instead of a hang, however large the blob.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Pages followed through `Link` headers before giving up on a loop.
const MAX_PAGES: usize = 100_000;

/// Page size asked of the catalog and tag lists.
const PAGE_SIZE: u32 = 1000;

/// A token is renewed this long before the registry says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// Lifetime assumed when a token endpoint does not say (the spec's default).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

/// Largest error body we read for its message.
const MAX_ERROR_BODY: u64 = 64 * 1024;

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

/// A bearer token for one scope.
#[derive(Debug, Clone)]
struct Token {
    value: String,
    renew_at: Instant,
}

/// What a request is, for messages and auth.
struct Ask<'a> {
    /// The reference the user named, leading every message.
    ctx: &'a str,
    /// What is fetched, in words (`manifest 1 of fixtures/app`).
    what: &'a str,
    /// The token scope it needs (`repository:fixtures/app:pull`).
    scope: Option<&'a str>,
    /// The `Accept` header.
    accept: Option<&'a str>,
}

/// A connection to one registry, shared by every image read from it in a
/// run, so tokens and pooled connections are reused.
pub struct Client {
    /// The registry as references name it (`docker.io`, `127.0.0.1:5000`).
    registry: String,
    /// `https://host` or `http://host`.
    base: String,
    agent: Agent,
    /// Plain HTTP and unverified TLS are allowed (loopback or `--insecure`).
    relaxed: bool,
    credentials: OnceLock<Result<Option<Credentials>, String>>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Token>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("base", &self.base)
            .finish()
    }
}

/// True for `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// CA bundles tried in order: an explicit one, then the system's (Debian,
/// RHEL). Private registries are signed by CAs the system trusts but
/// Mozilla's list does not.
fn ca_bundle_candidates() -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = ["STRATA_REGISTRY_CA_FILE", "SSL_CERT_FILE"]
        .iter()
        .filter_map(|k| std::env::var_os(k).filter(|s| !s.is_empty()).map(Into::into))
        .collect();
    v.push("/etc/ssl/certs/ca-certificates.crt".into());
    v.push("/etc/pki/tls/certs/ca-bundle.crt".into());
    v
}

/// The certificates of the first readable bundle, or Mozilla's roots.
pub fn root_certs() -> ureq::tls::RootCerts {
    for path in ca_bundle_candidates() {
        let Ok(pem) = std::fs::read(&path) else { continue };
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            return ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs));
        }
    }
    ureq::tls::RootCerts::WebPki
}

fn agent(loopback: bool, insecure: bool) -> Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(root_certs())
        .disable_verification(insecure)
        .build();
    let mut config = Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
        .max_redirects(5)
        // Blob redirects to object storage must not carry the registry's token.
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
        .tls_config(tls);
    if loopback {
        // A proxy from the environment must never see a loopback registry.
        config = config.proxy(None);
    }
    Agent::new_with_config(config.build())
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
            relaxed,
            credentials: OnceLock::new(),
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
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
                client.send(ctx, &url, &|| client.agent.get(&url).call())?
            }
        };
        match resp.status().as_u16() {
            200..=299 => {}
            401 => {
                let challenge =
                    header(&resp, "www-authenticate").and_then(|h| auth::parse_challenge(&h));
                *client.challenge.lock().unwrap_or_else(|e| e.into_inner()) = challenge;
            }
            _ => {
                let ask = Ask { ctx, what: "the registry API (/v2/)", scope: None, accept: None };
                return Err(client.status_error(&ask, resp, None));
            }
        }
        Ok(client)
    }

    /// Uses `credentials` instead of looking them up (a Kubernetes pull
    /// secret). Only before the first request that needs them.
    pub fn with_credentials(self, credentials: Credentials) -> Self {
        let _ = self.credentials.set(Ok(Some(credentials)));
        self
    }

    /// The registry as references name it.
    pub fn registry(&self) -> &str {
        &self.registry
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
        let digest = sha256(&bytes);
        for claimed in
            [reference.starts_with("sha256:").then_some(reference), header_digest.as_deref()]
                .into_iter()
                .flatten()
        {
            if claimed.starts_with("sha256:") && claimed != digest {
                return Err(Error::Invalid {
                    reference: ctx.to_owned(),
                    what,
                    reason: format!(
                        "digest mismatch: expected {claimed}, content hashes to {digest}"
                    ),
                });
            }
        }
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
        let actual = sha256(&bytes);
        if digest.starts_with("sha256:") && actual != digest {
            return Err(Error::Invalid {
                reference: ctx.to_owned(),
                what,
                reason: format!("digest mismatch: content hashes to {actual}"),
            });
        }
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
        Ok(Box::new(VerifiedBlob {
            inner: resp.into_body().into_reader(),
            hasher: Some(Sha256::new()),
            read: 0,
            expected_len,
            digest: digest.to_owned(),
            failed: None,
        }))
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
                    std::thread::sleep(backoff(attempt, None));
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
            let authorization = self.authorization(ask)?;
            let resp = self.send(ask.ctx, url, &|| {
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
                let sent = authorization.as_ref().and_then(|_| self.credential_source());
                return Err(self.status_error(ask, resp, sent));
            }
            answered_challenge = true;
            let challenge =
                header(&resp, "www-authenticate").and_then(|h| auth::parse_challenge(&h));
            match challenge {
                Some(Challenge::Basic) if authorization.is_some() => {
                    return Err(self.status_error(ask, resp, self.credential_source()));
                }
                Some(Challenge::Basic) => {
                    if self.credentials(ask.ctx)?.is_none() {
                        return Err(self.status_error(ask, resp, None));
                    }
                    *self.challenge.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(Challenge::Basic);
                }
                Some(Challenge::Bearer { realm, service, scope }) => {
                    let wanted = scope.or(ask.scope.map(str::to_owned));
                    let token =
                        self.fetch_token(ask.ctx, &realm, service.as_deref(), wanted.as_deref())?;
                    self.tokens
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(ask.scope.unwrap_or_default().to_owned(), token);
                    *self.challenge.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(Challenge::Bearer { realm, service, scope: None });
                }
                None => return Err(self.status_error(ask, resp, None)),
            }
        }
    }

    /// The `Authorization` header for a request, fetching a bearer token for
    /// its scope first when the registry is known to want one.
    fn authorization(&self, ask: &Ask<'_>) -> Result<Option<String>, Error> {
        let challenge = self.challenge.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => {
                Ok(self.credentials(ask.ctx)?.and_then(Credentials::basic_header))
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = ask.scope.unwrap_or_default();
                let cached =
                    self.tokens.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned();
                let token = match cached.filter(|t| t.renew_at > Instant::now()) {
                    Some(t) => t,
                    None => {
                        let t = self.fetch_token(ask.ctx, &realm, service.as_deref(), ask.scope)?;
                        self.tokens
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(key.to_owned(), t.clone());
                        t
                    }
                };
                Ok(Some(format!("Bearer {}", token.value)))
            }
        }
    }

    /// Credentials for this registry, looked up once per run and only when
    /// a registry asks.
    fn credentials(&self, ctx: &str) -> Result<Option<&Credentials>, Error> {
        match self.credentials.get_or_init(|| auth::lookup(&self.registry)) {
            Ok(c) => Ok(c.as_ref()),
            Err(reason) => Err(Error::Credentials {
                reference: ctx.to_owned(),
                registry: self.registry.clone(),
                reason: reason.clone(),
            }),
        }
    }

    fn credential_source(&self) -> Option<String> {
        match self.credentials.get() {
            Some(Ok(Some(c))) => Some(c.source.clone()),
            _ => None,
        }
    }

    /// The token flow of the distribution spec: GET the realm with service
    /// and scope (basic auth when we have credentials), or POST a refresh
    /// token for identity tokens.
    fn fetch_token(
        &self,
        ctx: &str,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Token, Error> {
        let realm_host = realm
            .strip_prefix("https://")
            .or_else(|| realm.strip_prefix("http://"))
            .map(|r| r.split(['/', '?']).next().unwrap_or(r));
        let plain_ok = self.relaxed || realm_host.is_some_and(is_loopback);
        if !(realm.starts_with("https://") || (realm.starts_with("http://") && plain_ok)) {
            return Err(Error::Invalid {
                reference: ctx.to_owned(),
                what: "authentication".into(),
                reason: format!(
                    "the token service {realm} is not https (use --insecure to allow it)"
                ),
            });
        }
        let creds = self.credentials(ctx)?.cloned();
        let what = format!("a token from {realm}");
        let ask = Ask { ctx, what: &what, scope: None, accept: Some("application/json") };
        let resp = self.send(ctx, realm, &|| match creds.as_ref().map(|c| &c.secret) {
            Some(Secret::IdentityToken(t)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", t.as_str()),
                    ("client_id", "strata"),
                ];
                form.extend(service.map(|s| ("service", s)));
                form.extend(scope.map(|s| ("scope", s)));
                self.agent.post(realm).send_form(form)
            }
            _ => {
                let mut req = self.agent.get(realm);
                if let Some(s) = service {
                    req = req.query("service", s);
                }
                if let Some(s) = scope {
                    req = req.query("scope", s);
                }
                if let Some(b) = creds.as_ref().and_then(Credentials::basic_header) {
                    req = req.header("Authorization", b);
                }
                req.call()
            }
        })?;
        if !(200..300).contains(&resp.status().as_u16()) {
            let sent = creds.map(|c| c.source);
            return Err(self.status_error(&ask, resp, sent));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let invalid = |reason: String| Error::Invalid {
            reference: ctx.to_owned(),
            what: what.clone(),
            reason,
        };
        let bytes = read_limited(resp, MAX_ERROR_BODY).map_err(|e| invalid(e.to_string()))?;
        // The sanitised message: serde's own would quote the token it could not parse.
        let parsed: TokenResponse = crate::redact::parse_json(&bytes)
            .map_err(|e| invalid(format!("not a token response: {e}")))?;
        let value = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("the response holds no token".into()))?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME));
        let renew_at = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
        Ok(Token { value, renew_at })
    }

    /// Sends a request, retrying connection failures, timeouts, 429 and 5xx
    /// with backoff, at most [`MAX_TRIES`] times. Only requests whose body
    /// has not been handed on are retried, so a retry never duplicates data.
    fn send(
        &self,
        ctx: &str,
        url: &str,
        make: &dyn Fn() -> Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>, Error> {
        let mut attempt = 0;
        loop {
            let last = attempt + 1 >= MAX_TRIES;
            match make() {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if last || !(status == 429 || (500..600).contains(&status)) {
                        return Ok(resp);
                    }
                    let after = header(&resp, "retry-after").and_then(|v| v.trim().parse().ok());
                    std::thread::sleep(backoff(attempt, after));
                }
                Err(e) if !last && is_transient(&e) => std::thread::sleep(backoff(attempt, None)),
                Err(e) => {
                    let tries = if is_transient(&e) {
                        format!(" (after {MAX_TRIES} attempts)")
                    } else {
                        String::new()
                    };
                    return Err(Error::Transport {
                        reference: ctx.to_owned(),
                        url: url.to_owned(),
                        reason: format!("{e}{tries}"),
                    });
                }
            }
            attempt += 1;
        }
    }

    /// An error for a non-2xx answer, with the registry's own error code
    /// and a hint for auth failures.
    fn status_error(&self, ask: &Ask<'_>, resp: Response<Body>, sent: Option<String>) -> Error {
        let status = resp.status().as_u16();
        let detail = read_limited(resp, MAX_ERROR_BODY)
            .ok()
            .and_then(|b| registry_errors(&b))
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let registry = &self.registry;
        let message = match status {
            401 => match sent {
                Some(source) => format!(
                    "401 Unauthorized: {registry} rejected the credentials from {source} for {}{detail}",
                    ask.what
                ),
                None => format!(
                    "401 Unauthorized: {registry} needs credentials for {}{detail}; set {} and {}, or run `docker login {registry}`",
                    ask.what,
                    auth::ENV_USERNAME,
                    auth::ENV_PASSWORD
                ),
            },
            403 => {
                let who = sent
                    .map_or("anonymous access".to_owned(), |s| format!("the credentials from {s}"));
                format!(
                    "403 Forbidden: {registry} does not allow {who} to read {}{detail}",
                    ask.what
                )
            }
            404 => format!("404 Not Found: {registry} has no {}{detail}", ask.what),
            s => format!("HTTP {s} from {registry} for {}{detail}", ask.what),
        };
        Error::Status { reference: ask.ctx.to_owned(), status, message }
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn backoff(attempt: u32, retry_after_secs: Option<u64>) -> Duration {
    match retry_after_secs {
        Some(s) => Duration::from_secs(s).min(MAX_RETRY_AFTER),
        None => BACKOFF * 2u32.saturating_pow(attempt),
    }
}

/// Failures worth another attempt: the network, not the request.
fn is_transient(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed)
}

/// Reads a body up to `limit` bytes; more is `FileTooLarge`.
fn read_limited(resp: Response<Body>, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    resp.into_body().into_reader().take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::FileTooLarge, "response too large"));
    }
    Ok(buf)
}

/// `errors[].code: message` from a distribution-spec error body.
fn registry_errors(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        errors: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let parsed: Body = serde_json::from_slice(body).ok()?;
    let parts: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", e.code, e.message),
            (false, true) => e.code.clone(),
            _ => e.message.clone(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
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

/// A streamed blob that fails instead of ending early, and checks its
/// digest at the end: from a registry, a mismatch means the content is not
/// what the manifest names, so the layer's result cannot be trusted.
struct VerifiedBlob {
    inner: ureq::BodyReader<'static>,
    /// `None` once the digest was checked.
    hasher: Option<Sha256>,
    read: u64,
    expected_len: Option<u64>,
    digest: String,
    /// The first failure, returned again on every later read.
    failed: Option<(io::ErrorKind, String)>,
}

impl VerifiedBlob {
    fn fail(&mut self, kind: io::ErrorKind, message: String) -> io::Error {
        self.failed = Some((kind, message.clone()));
        io::Error::new(kind, message)
    }

    fn of_len(&self) -> String {
        self.expected_len.map_or(String::new(), |n| format!(" of {n}"))
    }
}

impl Read for VerifiedBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, message)) = &self.failed {
            return Err(io::Error::new(*kind, message.clone()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(0) => {
                let Some(hasher) = self.hasher.take() else { return Ok(0) };
                if let Some(n) = self.expected_len
                    && self.read < n
                {
                    let msg = format!(
                        "the registry connection ended after {} of {n} bytes of blob {}",
                        self.read, self.digest
                    );
                    return Err(self.fail(io::ErrorKind::UnexpectedEof, msg));
                }
                let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
                if self.digest.starts_with("sha256:") && actual != self.digest {
                    let msg = format!(
                        "digest mismatch: blob {} from the registry hashes to {actual}",
                        self.digest
                    );
                    return Err(self.fail(io::ErrorKind::InvalidData, msg));
                }
                Ok(0)
            }
            Ok(n) => {
                if let Some(h) = self.hasher.as_mut() {
                    sha2::Digest::update(h, &buf[..n]);
                }
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                let msg = format!(
                    "the registry connection failed after {}{} bytes of blob {}: {e}",
                    self.read,
                    self.of_len(),
                    self.digest
                );
                Err(self.fail(e.kind(), msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for yes in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.1.2.3:1",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "example.com",
            "10.0.0.1:5000",
            "[::2]:1",
            "localhost.example.com",
            "registry-1.docker.io",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

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

    #[test]
    fn error_bodies() {
        let b = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"2"}}]}"#;
        assert_eq!(registry_errors(b).as_deref(), Some("MANIFEST_UNKNOWN: manifest unknown"));
        assert_eq!(registry_errors(b"<html>"), None);
        assert_eq!(registry_errors(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(backoff(0, None), BACKOFF);
        assert_eq!(backoff(2, None), BACKOFF * 4);
        assert_eq!(backoff(0, Some(3600)), MAX_RETRY_AFTER);
    }
}
