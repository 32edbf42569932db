//! The only way verification talks to the network: HTTPS with verified TLS, no redirects, a
//! timeout, one try, a host check before connecting, and errors scrubbed of the credential.

use std::net::{IpAddr, ToSocketAddrs};

use ureq::Agent;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::credential::Credential;
use super::{Error, VerifyOptions};
use crate::finding::Secret;

/// One header of a check; `secret` headers are redacted when described.
#[derive(Debug, Clone)]
pub struct Header {
    /// Header name.
    pub name: &'static str,
    /// Header value.
    pub value: String,
    /// Carries the credential.
    pub secret: bool,
}

/// A read-only request a verifier wants sent.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET` or `POST` (POST only where the provider's identity call is a POST with no effect).
    pub method: &'static str,
    /// `https://HOST/path?query`.
    pub url: String,
    /// Headers.
    pub headers: Vec<Header>,
    /// Body and its content type (JSON or form); `true` when it carries the credential.
    pub body: Option<(&'static str, Vec<u8>, bool)>,
    /// The host came from the scanned data (a self-hosted instance): needs `--verify-host`.
    pub host_from_data: bool,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Response {
    /// The URL asked (the provider's, not the test override's).
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body, at most [`BODY_MAX`] bytes.
    pub body: Vec<u8>,
}

/// Bytes of a response body kept.
pub const BODY_MAX: u64 = 1 << 20;

impl Response {
    /// A header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or `Null`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The HTTPS client verification uses.
pub struct SafeClient {
    agent: Agent,
    allowed_hosts: Vec<String>,
    /// `https://127.0.0.1:PORT` in tests.
    test_endpoint: Option<String>,
}

fn host_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    Some(authority)
}

/// True for addresses verification must never reach outside tests.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10 CGNAT
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// The resolver every connection uses: the addresses it returns are the ones ureq connects to,
/// so checking them here leaves no gap between the check and the connection (a name that
/// resolves to a public address for a pre-check and to a private one for the connection, DNS
/// rebinding, is refused too). A proxy the user configured is reached as configured; in tests
/// only loopback addresses are reachable.
#[derive(Debug)]
struct PublicOnly {
    test: bool,
}

impl Resolver for PublicOnly {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        let host = uri.host().unwrap_or_default();
        if config.proxy().is_some_and(|p| p.host().eq_ignore_ascii_case(host)) {
            return Ok(addrs);
        }
        let refused = |ip: IpAddr| if self.test { !ip.is_loopback() } else { is_forbidden(ip) };
        if addrs.iter().any(|a| refused(a.ip())) {
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{host} resolves to a private or local address; refused"),
            )));
        }
        Ok(addrs)
    }
}

fn is_loopback_endpoint(endpoint: &str) -> bool {
    let Some(authority) = host_of(endpoint) else { return false };
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl SafeClient {
    /// A client for `opts`.
    ///
    /// # Errors
    /// When the test override names a non-loopback address or its CA cannot be read.
    pub fn new(opts: &VerifyOptions) -> Result<Self, Error> {
        let mut roots = crate::registry::transport::root_certs();
        if let Some(endpoint) = &opts.test_endpoint {
            if !is_loopback_endpoint(endpoint) {
                return Err(Error::NotLoopback(endpoint.clone()));
            }
            if let Some(ca) = &opts.test_ca {
                let pem = std::fs::read(ca)
                    .map_err(|e| Error::Ca(ca.display().to_string(), e.to_string()))?;
                let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                    .filter_map(|i| match i {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                roots = ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs));
            }
        }
        let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(opts.timeout))
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION"), " (secret verification)"))
            .tls_config(tls);
        if opts.test_endpoint.is_some() {
            config = config.proxy(None);
        }
        let resolver = PublicOnly { test: opts.test_endpoint.is_some() };
        Ok(SafeClient {
            agent: Agent::with_parts(config.build(), DefaultConnector::default(), resolver),
            allowed_hosts: opts.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            test_endpoint: opts.test_endpoint.clone(),
        })
    }

    /// Sends one request, once.
    ///
    /// # Errors
    /// A reason with the credential scrubbed: a refused host, a forbidden address, a timeout.
    pub fn send(&self, req: &Request, cred: &Credential) -> Result<Response, String> {
        let scrub = |s: String| scrub(&s, cred);
        let host = host_of(&req.url).ok_or_else(|| "not an https URL".to_owned())?.to_owned();
        if req.host_from_data && !self.allowed_hosts.contains(&host.to_ascii_lowercase()) {
            return Err(format!(
                "{host} comes from the scanned data; allow it with --verify-host {host}"
            ));
        }
        let url = match &self.test_endpoint {
            Some(endpoint) => {
                format!("{}{}", endpoint.trim_end_matches('/'), &req.url[8 + host.len()..])
            }
            None => {
                let with_port =
                    if host.contains(':') { host.clone() } else { format!("{host}:443") };
                let addrs: Vec<_> = with_port
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .collect();
                if addrs.is_empty() || addrs.iter().any(|a| is_forbidden(a.ip())) {
                    return Err(format!("{host} resolves to a private or local address; refused"));
                }
                req.url.clone()
            }
        };
        let mut headers: Vec<(&str, String)> =
            req.headers.iter().map(|h| (h.name, h.value.clone())).collect();
        if self.test_endpoint.is_some() {
            headers.push(("x-strata-test-host", host.clone()));
        }
        let result = match (req.method, &req.body) {
            ("POST", Some((ctype, body, _))) => {
                let mut r = self.agent.post(&url).header("content-type", *ctype);
                for (k, v) in &headers {
                    r = r.header(*k, v.as_str());
                }
                r.send(&body[..])
            }
            ("POST", None) => {
                let mut r = self.agent.post(&url);
                for (k, v) in &headers {
                    r = r.header(*k, v.as_str());
                }
                r.send_empty()
            }
            _ => {
                let mut r = self.agent.get(&url);
                for (k, v) in &headers {
                    r = r.header(*k, v.as_str());
                }
                r.call()
            }
        };
        let mut resp = result.map_err(|e| scrub(format!("{host}: {e}")))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str().ok().map(|v| (k.as_str().to_ascii_lowercase(), v.to_owned()))
            })
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(BODY_MAX)
            .read_to_vec()
            .map_err(|e| scrub(format!("{host}: reading the answer: {e}")))?;
        Ok(Response { url: req.url.clone(), status, headers, body })
    }
}

/// Replaces the credential (and its partners) in text with their redacted forms.
pub fn scrub(text: &str, cred: &Credential) -> String {
    let mut out = text.to_owned();
    let all =
        std::iter::once(cred.secret.as_str()).chain(cred.partners.iter().map(|(_, s)| s.as_str()));
    for s in all.filter(|s| s.len() >= 4) {
        let shown = Secret::new(s.as_bytes().to_vec()).redacted();
        out = out.replace(s, &shown);
    }
    out
}

/// The request as `--verify-dry-run` prints it: method, URL and headers, secrets redacted.
pub fn describe(req: &Request, cred: &Credential) -> String {
    let mut line = format!("{} {}", req.method, scrub(&req.url, cred));
    for h in &req.headers {
        let value = if h.secret {
            format!("<credential: {}>", Secret::new(cred.secret.as_bytes().to_vec()).redacted())
        } else {
            scrub(&h.value, cred)
        };
        line.push_str(&format!(" | {}: {value}", h.name));
    }
    if let Some((ctype, body, secret)) = &req.body {
        if *secret {
            line.push_str(&format!(
                " | body ({ctype}, {} bytes, carries the credential)",
                body.len()
            ));
        } else {
            line.push_str(&format!(" | body: {}", scrub(&String::from_utf8_lossy(body), cred)));
        }
    }
    if req.host_from_data {
        line.push_str(" | host from the scanned data (needs --verify-host)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "10.0.0.1",
            "172.16.3.4",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fd00::1",
            "0.0.0.0",
            "100.64.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["140.82.112.6", "2606:4700::6810:84e5"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn test_endpoint_must_be_loopback() {
        assert!(is_loopback_endpoint("https://127.0.0.1:8443"));
        assert!(is_loopback_endpoint("https://[::1]:8443/"));
        assert!(!is_loopback_endpoint("https://10.0.0.1:8443"));
        assert!(!is_loopback_endpoint("https://example.com"));
        assert!(!is_loopback_endpoint("http://127.0.0.1:80"));
        assert!(!is_loopback_endpoint("https://127.0.0.1@evil.example:443"));
    }
}
