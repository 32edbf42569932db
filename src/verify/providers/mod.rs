//! One module per provider: which rules it verifies, the read-only identity request it sends
//! (from the provider's documentation), and how it reads the answer. Shared here: the table,
//! request builders, and the status handling every provider has in common (401/403 invalid,
//! 429 and 5xx errors, never retried).

use base64::Engine;

use super::VerifyStatus;
use super::credential::Credential;
use super::http::{Header, Request, Response};

mod airtable;
mod anthropic;
mod asana;
mod aws;
mod buildkite;
mod circleci;
mod cloudflare;
mod datadog;
mod digitalocean;
mod discord;
mod docker_registry;
mod dropbox;
mod fastly;
mod github;
mod gitlab;
mod google_api_key;
mod google_service_account;
mod heroku;
mod huggingface;
mod linear;
mod mailchimp;
mod mailgun;
mod netlify;
mod newrelic;
mod notion;
mod npm;
mod openai;
mod postman;
mod sendgrid;
mod sentry;
mod slack;
mod stripe;
mod telegram;
mod terraform;
mod twilio;
mod vercel;

/// What a provider's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Valid, invalid, or error.
    pub status: VerifyStatus,
    /// Who it belongs to.
    pub identity: Option<String>,
    /// Why.
    pub reason: Option<String>,
}

impl Outcome {
    /// Valid, with what the provider said about its owner.
    pub fn valid(identity: Option<String>) -> Self {
        Outcome { status: VerifyStatus::Valid, identity, reason: None }
    }

    /// Rejected by the provider.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Outcome { status: VerifyStatus::Invalid, identity: None, reason: Some(reason.into()) }
    }

    /// Could not conclude.
    pub fn error(reason: impl Into<String>) -> Self {
        Outcome { status: VerifyStatus::Error, identity: None, reason: Some(reason.into()) }
    }
}

/// Given the credential, the request sent and its answer: the next request, if any.
pub type Follow = fn(&Credential, &Request, &Response) -> Option<Request>;

/// A verifier.
pub struct Provider {
    /// Short name (`github`).
    pub name: &'static str,
    /// Rule ids it checks.
    pub rules: &'static [&'static str],
    /// The request, or why it cannot be made (a missing partner).
    pub request: fn(&Credential) -> Result<Request, String>,
    /// Reads a 2xx (or provider-specific) answer.
    pub read: fn(&Credential, &Response) -> Outcome,
    /// A second request to send after this answer instead of judging it (Mailgun's EU region
    /// after the US one rejects the key, a registry's token service after its challenge), or
    /// none. At most [`MAX_STEPS`] requests are sent per credential.
    pub follow: Option<Follow>,
    /// What the check proves, for the README table.
    pub proves: &'static str,
    /// For a check made with a pair: the rule of the pair's secret half.
    pub pair_secret_rule: Option<&'static str>,
}

/// Requests one check may send, following [`Provider::follow`].
pub const MAX_STEPS: usize = 3;

/// Every verifier.
pub fn all() -> Vec<Provider> {
    vec![
        aws::provider(),
        github::provider(),
        gitlab::provider(),
        slack::provider(),
        stripe::provider(),
        npm::provider(),
        docker_registry::provider(),
        openai::provider(),
        anthropic::provider(),
        huggingface::provider(),
        sendgrid::provider(),
        twilio::provider(),
        mailgun::provider(),
        digitalocean::provider(),
        heroku::provider(),
        datadog::provider(),
        newrelic::provider(),
        google_api_key::provider(),
        google_service_account::provider(),
        telegram::provider(),
        discord::provider(),
        sentry::provider(),
        cloudflare::provider(),
        linear::provider(),
        notion::provider(),
        netlify::provider(),
        vercel::provider(),
        circleci::provider(),
        postman::provider(),
        airtable::provider(),
        asana::provider(),
        buildkite::provider(),
        dropbox::provider(),
        fastly::provider(),
        mailchimp::provider(),
        terraform::provider(),
    ]
}

/// What makes two findings one credential to check: the secret itself, except for a
/// provider whose check needs a pair, where it is the pair's secret half (so an AWS key id
/// and the secret key beside it make one request, not two).
pub fn identity_key(p: &Provider, c: &Credential) -> String {
    let secret = match p.pair_secret_rule {
        Some(rule) if c.rule_id != rule => c.partner(&[rule]).unwrap_or(&c.secret),
        _ => &c.secret,
    };
    // The same auth for two registries is two checks.
    let material = c.material.as_deref().unwrap_or_default();
    crate::finding::Secret::new(format!("{secret}\n{material}").into_bytes()).sha256()
}

/// Providers whose documentation answers 403 (not 401) to a credential it rejects: STS
/// `InvalidClientTokenId`/`SignatureDoesNotMatch`, Datadog's validate, Vercel's
/// `invalidToken`.
const FORBIDDEN_MEANS_REJECTED: &[&str] = &["aws", "datadog", "vercel"];

/// The common part of reading an answer: rate limits and server errors are errors (never
/// retried), 401 invalid, 403 invalid only where the provider uses it for a rejected credential,
/// anything else the provider's own reading.
pub fn judge(p: &Provider, c: &Credential, resp: &Response) -> Outcome {
    match resp.status {
        429 => Outcome::error(format!(
            "rate limited by {} (429{}); not retried",
            p.name,
            resp.header("retry-after").map(|r| format!(", retry after {r}")).unwrap_or_default()
        )),
        500..=599 => Outcome::error(format!("{} answered {}", p.name, resp.status)),
        403 if p.name == "stripe" && stripe::restricted_but_live(resp) => {
            Outcome::valid(Some("restricted key (no permission to read the account)".into()))
        }
        // A provider that says why (expired, revoked) reads its own 401; any other reading of
        // a 401 is still a rejection.
        401 => match (p.read)(c, resp) {
            o if o.status == VerifyStatus::Invalid => o,
            _ => Outcome::invalid(format!("{} answered 401", p.name)),
        },
        403 if FORBIDDEN_MEANS_REJECTED.contains(&p.name) => {
            Outcome::invalid(format!("{} answered 403", p.name))
        }
        // Elsewhere a 403 means authenticated but not allowed this call (a scoped token, a
        // Sentry org token) or GitHub's rate limit: the credential may well be live.
        403 => Outcome::error(format!(
            "{} answered 403 (forbidden: a token without permission for this call, or a rate \
             limit); not concluded",
            p.name
        )),
        300..=399 => {
            Outcome::error(format!("{} redirected ({}); not followed", p.name, resp.status))
        }
        _ => (p.read)(c, resp),
    }
}

/// `GET url` with `Authorization: Bearer secret`.
pub fn bearer(url: &str, secret: &str) -> Request {
    get(url, vec![secret_header("authorization", format!("Bearer {secret}"))])
}

/// `GET url` with these headers.
pub fn get(url: &str, headers: Vec<Header>) -> Request {
    Request { method: "GET", url: url.to_owned(), headers, body: None, host_from_data: false }
}

/// A header carrying the credential.
pub fn secret_header(name: &'static str, value: String) -> Header {
    Header { name, value, secret: true }
}

/// A header without the credential.
pub fn plain_header(name: &'static str, value: &str) -> Header {
    Header { name, value: value.to_owned(), secret: false }
}

/// `Authorization: Basic base64(user:pass)`.
pub fn basic(user: &str, pass: &str) -> Header {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    secret_header("authorization", format!("Basic {token}"))
}

/// The first string (or number) at these JSON pointers, joined with ", ".
pub fn pick(json: &serde_json::Value, pointers: &[&str]) -> Option<String> {
    let parts: Vec<String> = pointers
        .iter()
        .filter_map(|p| json.pointer(p))
        .filter_map(|v| match v {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A 2xx is valid, with identity from these pointers; anything else unexpected.
pub fn valid_if_2xx(resp: &Response, pointers: &[&str]) -> Outcome {
    if (200..300).contains(&resp.status) {
        Outcome::valid(pick(&resp.json(), pointers))
    } else if resp.status == 404 || resp.status == 400 {
        Outcome::invalid(format!("answered {}", resp.status))
    } else {
        Outcome::error(format!("unexpected answer {}", resp.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_one_verifier_and_the_rule_exists() {
        let rules: std::collections::HashSet<String> =
            crate::signatures::builtin().unwrap().into_iter().map(|s| s.syntax.id).collect();
        let mut seen = std::collections::HashSet::new();
        let table = all();
        assert!(table.len() >= 30, "{} providers", table.len());
        for p in &table {
            for r in p.rules {
                assert!(seen.insert(*r), "{r} verified twice");
                assert!(rules.contains(*r), "{}: no rule {r}", p.name);
            }
        }
    }

    #[test]
    fn common_statuses() {
        let p = github::provider();
        let resp = |status| Response {
            url: "https://api.github.com/user".into(),
            status,
            headers: vec![],
            body: b"{}".to_vec(),
        };
        let cred = Credential {
            rule_id: "github-pat-classic".into(),
            secret: "x".into(),
            partners: vec![],
            material: None,
            allowed_hosts: vec![],
        };
        assert_eq!(judge(&p, &cred, &resp(429)).status, VerifyStatus::Error);
        assert_eq!(judge(&p, &cred, &resp(503)).status, VerifyStatus::Error);
        assert_eq!(judge(&p, &cred, &resp(401)).status, VerifyStatus::Invalid);
        assert_eq!(judge(&p, &cred, &resp(403)).status, VerifyStatus::Error);
        assert_eq!(judge(&datadog::provider(), &cred, &resp(403)).status, VerifyStatus::Invalid);
        assert_eq!(judge(&p, &cred, &resp(302)).status, VerifyStatus::Error);
    }
}
