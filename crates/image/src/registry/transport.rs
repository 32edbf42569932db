//! How the registry client reaches a registry: the `ureq` agent (https,
//! plain HTTP only for loopback or `--insecure`, the system's CA bundle,
//! timeouts, no proxy for loopback), bounded retries with backoff before a
//! response starts streaming, bounded body reads, and the error a non-2xx
//! answer becomes. It knows nothing of tokens, manifests or digests.

use std::io::{self, Read};
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use ureq::http::Response;
use ureq::{Agent, Body};

use super::Error;
use super::auth;

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

/// Largest error body we read for its message.
pub(super) const MAX_ERROR_BODY: u64 = 64 * 1024;

/// What a request is, for messages and auth.
pub(super) struct Ask<'a> {
    /// The reference the user named, leading every message.
    pub ctx: &'a str,
    /// What is fetched, in words (`manifest 1 of fixtures/app`).
    pub what: &'a str,
    /// The token scope it needs (`repository:fixtures/app:pull`).
    pub scope: Option<&'a str>,
    /// The `Accept` header.
    pub accept: Option<&'a str>,
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

/// The agent for one registry: `loopback` ones never go through a proxy,
/// `insecure` ones skip certificate checks.
pub(super) fn agent(loopback: bool, insecure: bool) -> Agent {
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

/// Sends a request, retrying connection failures, timeouts, 429 and 5xx
/// with backoff, at most [`MAX_TRIES`] times. Only requests whose body
/// has not been handed on are retried, so a retry never duplicates data.
pub(super) fn send(
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
pub(super) fn status_error(
    registry: &str,
    ask: &Ask<'_>,
    resp: Response<Body>,
    sent: Option<String>,
) -> Error {
    let status = resp.status().as_u16();
    let detail = read_limited(resp, MAX_ERROR_BODY)
        .ok()
        .and_then(|b| registry_errors(&b))
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
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
            let who =
                sent.map_or("anonymous access".to_owned(), |s| format!("the credentials from {s}"));
            format!("403 Forbidden: {registry} does not allow {who} to read {}{detail}", ask.what)
        }
        404 => format!("404 Not Found: {registry} has no {}{detail}", ask.what),
        s => format!("HTTP {s} from {registry} for {}{detail}", ask.what),
    };
    Error::Status { reference: ask.ctx.to_owned(), status, message }
}

/// A response header as text.
pub(super) fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The delay before retry `attempt` (from 0): doubling, or the registry's `Retry-After`, capped.
pub(super) fn backoff(attempt: u32, retry_after_secs: Option<u64>) -> Duration {
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
pub(super) fn read_limited(resp: Response<Body>, limit: u64) -> io::Result<Vec<u8>> {
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
