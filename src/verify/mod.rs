//! Live verification, opt-in (`--verify`): each distinct credential found is checked once per
//! run against its provider's documented read-only identity endpoint, and the outcome (valid with
//! the identity the provider returns, invalid, unverifiable, or error with the reason) is attached
//! to every finding of that credential. A valid credential is raised to critical.
//!
//! Safety (see [`http`]): only each provider's fixed HTTPS host; a host taken from the scanned
//! data only with `--verify-host`; TLS always verified; no redirect followed; never a private,
//! loopback or link-local address (tests use a loopback override that strata refuses for any
//! other address); read-only requests; one try, a 429 is reported, never retried, and stops
//! further requests to that provider for the run (see `schedule.rs`); one request at a time per
//! provider, paced, and a concurrency cap across providers. The secret never appears in an error or a dry-run line.
//!
//! This module sits beside `report`: it takes findings and returns verifications; it knows nothing
//! of images or rules beyond rule ids.

pub mod credential;
pub mod http;
pub mod providers;
mod schedule;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::finding::{Finding, Severity};
use credential::Credential;
use providers::Provider;

pub use crate::finding::verification::{Verification, VerifyStatus};

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Hosts taken from the scanned data that may be contacted (`--verify-host`).
    pub allowed_hosts: Vec<String>,
    /// Print the requests instead of sending them (`--verify-dry-run`).
    pub dry_run: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Least time between two requests to one provider.
    pub pacing: Duration,
    /// Test-only: send every request to this loopback `https://127.0.0.1:PORT` instead, trusting
    /// the CA in `test_ca`. Refused for any non-loopback address.
    pub test_endpoint: Option<String>,
    /// Test-only CA certificate (PEM) for `test_endpoint`.
    pub test_ca: Option<std::path::PathBuf>,
}

impl VerifyOptions {
    /// The defaults: 10 s timeout, 4 requests in flight, 250 ms between calls to one provider;
    /// the test endpoint from `STRATA_TEST_VERIFY_ENDPOINT` / `STRATA_TEST_VERIFY_CA`.
    /// `STRATA_TEST_VERIFY_TIMEOUT_MS` shortens the timeout, and only together with the test
    /// endpoint: a real run always waits the full 10 s.
    pub fn new(allowed_hosts: Vec<String>, dry_run: bool) -> Self {
        let test_endpoint = std::env::var("STRATA_TEST_VERIFY_ENDPOINT").ok();
        let test_timeout = test_endpoint
            .as_ref()
            .and_then(|_| std::env::var("STRATA_TEST_VERIFY_TIMEOUT_MS").ok())
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis);
        VerifyOptions {
            allowed_hosts,
            dry_run,
            timeout: test_timeout.unwrap_or(Duration::from_secs(10)),
            concurrency: 4,
            pacing: Duration::from_millis(250),
            test_endpoint,
            test_ca: std::env::var_os("STRATA_TEST_VERIFY_CA").map(Into::into),
        }
    }
}

/// Problems that stop verification as a whole (a bad test override).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The test endpoint names a non-loopback address.
    #[error(
        "STRATA_TEST_VERIFY_ENDPOINT must be https://127.0.0.1:PORT or https://[::1]:PORT, not {0}"
    )]
    NotLoopback(String),
    /// The test CA file cannot be read.
    #[error("STRATA_TEST_VERIFY_CA {0}: {1}")]
    Ca(String, String),
}

/// `YYYY-MM-DDThh:mm:ssZ` now.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{}Z", crate::clock::utc_timestamp(secs))
}

/// One distinct credential to check, and the findings that carry it.
struct Job<'a> {
    provider: &'a Provider,
    credential: Credential,
    findings: Vec<usize>,
}

/// Pairs a finding with the other secrets found in the same file (an AWS secret key with its
/// key id, a Twilio auth token with its account SID).
fn partners(findings: &[Finding], i: usize) -> Vec<(String, String)> {
    let f = &findings[i];
    findings
        .iter()
        .enumerate()
        .filter(|(j, g)| {
            *j != i
                && g.image_digest == f.image_digest
                && g.layer_index == f.layer_index
                && g.path == f.path
                && g.inner_path == f.inner_path
                && g.location == f.location
        })
        .filter_map(|(_, g)| {
            std::str::from_utf8(g.secret.expose()).ok().map(|s| (g.rule_id.clone(), s.to_owned()))
        })
        .collect()
}

/// Verifies the findings in place: each gets `verification`, and a valid one becomes critical.
/// With `dry_run`, writes the request each check would send (secret redacted) to `dry_out` and
/// changes nothing.
///
/// # Errors
/// When the test override is misused; per-credential problems are `error` outcomes instead.
pub fn verify(
    findings: &mut [Finding],
    opts: &VerifyOptions,
    dry_out: &mut dyn std::io::Write,
) -> Result<(), Error> {
    let client = http::SafeClient::new(opts)?;
    let table = providers::all();
    let mut by_rule: HashMap<&str, &Provider> = HashMap::new();
    for p in &table {
        for r in p.rules {
            by_rule.insert(r, p);
        }
    }
    let mut jobs: Vec<Job> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    for i in 0..findings.len() {
        let f = &findings[i];
        let Some(provider) = by_rule.get(f.rule_id.as_str()) else {
            findings[i].verification = Some(Verification {
                status: VerifyStatus::Unverifiable,
                provider: None,
                identity: None,
                reason: Some(format!("no verifier for {}", f.rule_id)),
                checked_at: now_utc(),
            });
            continue;
        };
        let Ok(secret) = std::str::from_utf8(f.secret.expose()) else { continue };
        let credential = Credential {
            rule_id: f.rule_id.clone(),
            secret: secret.to_owned(),
            partners: partners(findings, i),
            material: f
                .material
                .as_ref()
                .and_then(|m| std::str::from_utf8(m.expose()).ok())
                .map(str::to_owned),
            allowed_hosts: opts.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        };
        // A paired credential (an AWS key id and its secret key) is one check, not two.
        let key = (provider.name.to_owned(), providers::identity_key(provider, &credential));
        if let Some(&j) = index.get(&key) {
            jobs[j].findings.push(i);
            continue;
        }
        index.insert(key, jobs.len());
        jobs.push(Job { provider, credential, findings: vec![i] });
    }
    if opts.dry_run {
        for job in &jobs {
            let line = match (job.provider.request)(&job.credential) {
                Ok(req) => http::describe(&req, &job.credential),
                Err(why) => format!("{}: unverifiable: {why}", job.provider.name),
            };
            let _ = writeln!(dry_out, "{line}");
        }
        return Ok(());
    }
    let outcomes = schedule::run(&jobs, &client, opts);
    for (job, outcome) in jobs.iter().zip(outcomes) {
        for &i in &job.findings {
            if outcome.status == VerifyStatus::Valid {
                findings[i].severity = Severity::Critical;
            }
            findings[i].verification = Some(outcome.clone());
        }
    }
    Ok(())
}

/// One credential's check; `true` beside it when the provider's last answer was a 429, so the
/// caller backs off from that provider.
fn check(job: &Job, client: &http::SafeClient) -> (Verification, bool) {
    let provider = Some(job.provider.name.to_owned());
    let done = |status, identity: Option<String>, reason: Option<String>| Verification {
        status,
        provider: provider.clone(),
        identity,
        reason,
        checked_at: now_utc(),
    };
    let mut request = match (job.provider.request)(&job.credential) {
        Ok(r) => r,
        Err(why) => return (done(VerifyStatus::Unverifiable, None, Some(why)), false),
    };
    // A provider may ask for one more request after an answer (another region, a token
    // service); each goes through the same client and host rules, and the last answer counts.
    let mut steps = 1;
    loop {
        let resp = match client.send(&request, &job.credential) {
            Ok(resp) => resp,
            Err(why) => return (done(VerifyStatus::Error, None, Some(why)), false),
        };
        let next = job
            .provider
            .follow
            .filter(|_| steps < providers::MAX_STEPS)
            .and_then(|follow| follow(&job.credential, &request, &resp));
        let Some(next) = next else {
            let o = providers::judge(job.provider, &job.credential, &resp);
            return (done(o.status, o.identity, o.reason), resp.status == 429);
        };
        request = next;
        steps += 1;
    }
}
