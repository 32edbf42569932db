//! Live verification (`--verify`) against a local HTTPS test double (tests/verify_server.py)
//! that answers as each provider documents: valid with identity, invalid, revoked, 429 with
//! Retry-After, 500, slow, redirect. strata reaches it through the loopback-only test override
//! `STRATA_TEST_VERIFY_ENDPOINT`; the double logs every request it gets.
//!
//! The fixtures are each verified rule's own first signature example, so every credential is
//! format-valid and actually found by the scanner; except a docker `config.json` with a Docker Hub
//! and a private registry entry, and a Google service-account key file made with a fresh RSA key
//! whose public half the double checks the JWT-bearer assertion with.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::util::*;

/// The test double, killed on drop.
struct Double {
    child: Child,
    port: u16,
    ca: PathBuf,
    /// PEM private key of the fake service account (PKCS#8), made by openssl for this double.
    sa_key: String,
    scenario: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Double {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Double {
    fn start() -> Double {
        let dir = tmp();
        let (ca, cert, key) = crate::registry::private_ca(dir.path());
        let sa_key = dir.path().join("sa.key");
        let sa_pub = dir.path().join("sa.pub");
        // The service account's key pair, fresh per run: no private key is committed.
        let openssl = |args: &[&str]| {
            let o = Command::new("openssl").current_dir(dir.path()).args(args).output().unwrap();
            assert!(o.status.success(), "openssl: {}", String::from_utf8_lossy(&o.stderr));
        };
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "sa.key",
        ]);
        openssl(&["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
        let scenario = dir.path().join("scenario.json");
        let log = dir.path().join("requests.jsonl");
        std::fs::write(&scenario, r#"{"mode":"valid"}"#).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_server.py");
        let mut child = Command::new("python3")
            .args([script.as_ref(), cert.as_os_str(), key.as_os_str()])
            .args([scenario.as_os_str(), log.as_os_str(), sa_pub.as_os_str()])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("test double did not start: {line:?}")
        });
        let sa_key = std::fs::read_to_string(&sa_key).unwrap();
        Double { child, port, ca, sa_key, scenario, log, _dir: dir }
    }

    /// Sets the answer mode for every credential, with per-needle exceptions; clears the log.
    fn set(&self, mode: &str, secrets: &[(&str, &str)]) {
        let secrets: BTreeMap<&str, &str> = secrets.iter().copied().collect();
        std::fs::write(&self.scenario, json!({"mode": mode, "secrets": secrets}).to_string())
            .unwrap();
        let _ = std::fs::remove_file(&self.log);
    }

    /// Every request received since the last [`Double::set`].
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// strata with the override pointed at this double and a short timeout.
    fn strata(&self) -> Command {
        let mut c = strata();
        c.env("STRATA_TEST_VERIFY_ENDPOINT", format!("https://127.0.0.1:{}", self.port))
            .env("STRATA_TEST_VERIFY_CA", &self.ca)
            .env("STRATA_TEST_VERIFY_TIMEOUT_MS", "600");
        c
    }
}

/// The first signature example of a rule (the signature files are read once).
fn example(rule: &str) -> String {
    static EXAMPLES: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    let all = EXAMPLES.get_or_init(|| {
        let mut all = BTreeMap::new();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/signatures");
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let doc: toml::Table = toml::from_str(&text).unwrap();
            for r in doc.get("rule").and_then(|r| r.as_array()).into_iter().flatten() {
                if let (Some(id), Some(first)) = (
                    r["id"].as_str(),
                    r.get("examples").and_then(|e| e.get(0)).and_then(|e| e.as_str()),
                ) {
                    all.insert(id.to_owned(), first.to_owned());
                }
            }
        }
        all
    });
    all.get(rule).unwrap_or_else(|| panic!("no example for {rule}")).clone()
}

/// (provider, rules, expected identity when valid).
const PROVIDERS: &[(&str, &[&str], Option<&str>)] = &[
    (
        "aws",
        &["aws-access-key-id", "aws-secret-access-key"],
        Some("account 123456789012, arn:aws:iam::123456789012:user/fake-deployer"),
    ),
    (
        "github",
        &[
            "github-pat-classic",
            "github-oauth-token",
            "github-user-to-server-token",
            "github-fine-grained-pat",
        ],
        Some("octo-fake (scopes: repo, read:org)"),
    ),
    (
        "gitlab",
        &["gitlab-pat", "gitlab-pat-routable"],
        Some("fake-ci-token (scopes: api,read_user)"),
    ),
    (
        "slack",
        &["slack-bot-token", "slack-user-token", "slack-workspace-token", "slack-legacy-token"],
        Some("Fake Team, fakebot, https://fake-team.slack.com/"),
    ),
    (
        "stripe",
        &[
            "stripe-secret-key-live",
            "stripe-restricted-key-live",
            "stripe-secret-key-test",
            "stripe-restricted-key-test",
        ],
        Some("acct_FAKE, fake@example.com"),
    ),
    ("npm", &["npm-access-token"], Some("fake-npm-user")),
    // Two auths, two identities: see DOCKER_IDENTITIES.
    ("docker-registry", &["docker-config-auth"], None),
    (
        "openai",
        &[
            "openai-project-key",
            "openai-user-key",
            "openai-service-account-key",
            "openai-admin-key",
        ],
        None,
    ),
    ("anthropic", &["anthropic-api-key"], None),
    (
        "huggingface",
        &["huggingface-access-token", "huggingface-org-token"],
        Some("fake-hf-user, read"),
    ),
    ("sendgrid", &["sendgrid-api-key"], Some("2 scopes")),
    ("twilio", &["twilio-auth-token"], Some("Fake Account, active")),
    ("mailgun", &["mailgun-api-key"], Some("mg.fake.example")),
    (
        "digitalocean",
        &["digitalocean-pat", "digitalocean-oauth-token"],
        Some("fake@example.com, Fake Team"),
    ),
    ("heroku", &["heroku-api-key-v2", "heroku-api-key-legacy"], Some("fake@example.com")),
    ("datadog", &["datadog-api-key"], None),
    ("newrelic", &["newrelic-user-api-key"], Some("fake@example.com")),
    ("google-api-key", &["gcp-api-key"], Some("key accepted by the Geocoding API")),
    ("telegram", &["telegram-bot-token"], Some("@fake_bot")),
    ("discord", &["discord-bot-token"], Some("fakebot, 80351110224678912")),
    ("sentry", &["sentry-user-token", "sentry-auth-token-legacy"], Some("fake-org")),
    // The org token's payload names organization `acme` on us.sentry.io.
    ("sentry", &["sentry-org-token"], Some("organization acme (org auth token)")),
    (
        "google-service-account",
        &["gcp-service-account-key"],
        Some("strata-verify@fake-project-test.iam.gserviceaccount.com (project fake-project-test)"),
    ),
    ("cloudflare", &["cloudflare-api-token"], Some("token fake-token-id")),
    ("linear", &["linear-api-key"], Some("fake@example.com, Fake")),
    (
        "notion",
        &["notion-integration-token", "notion-integration-token-legacy"],
        Some("Fake Bot, Fake Workspace"),
    ),
    ("netlify", &["netlify-access-token"], Some("fake@example.com, Fake Person")),
    ("vercel", &["vercel-token"], Some("fake-vercel, fake@example.com")),
    ("circleci", &["circleci-personal-token"], Some("fake-circle, Fake")),
    ("postman", &["postman-api-key"], Some("fake-postman, fake@example.com")),
    ("airtable", &["airtable-pat"], Some("fake@example.com, usrFAKE")),
    ("asana", &["asana-pat"], Some("Fake Person, fake@example.com")),
    ("buildkite", &["buildkite-api-token"], Some("fake-uuid")),
    (
        "dropbox",
        &["dropbox-long-lived-token", "dropbox-short-lived-token"],
        Some("fake@example.com, Fake Person"),
    ),
    ("fastly", &["fastly-api-token"], Some("fake token, fakeuser")),
    ("mailchimp", &["mailchimp-api-key"], Some("Fake Co, fake@example.com")),
    ("terraform", &["terraform-cloud-token"], Some("fake-tf, fake@example.com")),
];

/// The private registry of the docker config; its checks need `--verify-host` with it.
const CORP: &str = "registry.fake-corp.example";
/// The `user:password` logins of the docker config: Docker Hub's, then the private registry's.
const HUB_LOGIN: &str = "fake-hub-user:FAKE-hub-TEST-password-1234";
const CORP_LOGIN: &str = "fake-ci:FAKE-corp-TEST-password-5678";
/// What each docker auth is verified as.
const DOCKER_IDENTITIES: &[&str] =
    &["Docker Hub login fake-hub-user", "registry login fake-ci (registry.fake-corp.example)"];
/// The service account's key id (the secret the finding reports).
const SA_KEY_ID: &str = "5e7a1f0c9b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `~/.docker/config.json` with a Docker Hub and a private registry entry.
fn docker_config() -> String {
    format!(
        "{{\n  \"auths\": {{\n    \"https://index.docker.io/v1/\": {{\n      \"auth\": \"{}\"\n    }},\n    \
         \"{CORP}\": {{\n      \"auth\": \"{}\"\n    }}\n  }}\n}}\n",
        b64(HUB_LOGIN),
        b64(CORP_LOGIN)
    )
}

/// A service-account key file as Google writes it (field order included).
fn sa_key_file(private_key: &str, key_id: &str, token_uri: &str) -> String {
    let email = "strata-verify@fake-project-test.iam.gserviceaccount.com";
    format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"fake-project-test\",\n  \
         \"private_key_id\": \"{key_id}\",\n  \"private_key\": {},\n  \"client_email\": \"{email}\",\n  \
         \"client_id\": \"100000000000000000001\",\n  \
         \"auth_uri\": \"https://accounts.google.com/o/oauth2/auth\",\n  \"token_uri\": \"{token_uri}\"\n}}\n",
        serde_json::to_string(private_key).unwrap()
    )
}

/// Where each rule's example lives: realistic files, the AWS pair and the Twilio SID + token
/// each in one file, since those verifiers need the partner found beside the secret.
fn fixture_files(d: &Double) -> Vec<Entry> {
    let mut files = vec![
        Entry::file(
            "root/.aws/credentials",
            format!(
                "[default]\n{}\n{}\n",
                example("aws-access-key-id"),
                example("aws-secret-access-key")
            ),
        ),
        Entry::file(
            "srv/sms/.env",
            format!("{}\n{}\n", example("twilio-account-sid"), example("twilio-auth-token")),
        ),
        Entry::file("root/.docker/config.json", docker_config()),
        Entry::file(
            "etc/gcp/key.json",
            sa_key_file(&d.sa_key, SA_KEY_ID, "https://oauth2.googleapis.com/token"),
        ),
        Entry::file("root/.terraformrc", example("terraform-cloud-token")),
        // An .npmrc token for another registry (GitHub Packages): never sent to npmjs.org.
        Entry::file("home/app/.npmrc", example("npmrc-auth-token") + "\n"),
    ];
    for (provider, rules, _) in PROVIDERS {
        for rule in *rules {
            if rule.starts_with("aws-")
                || [
                    "twilio-auth-token",
                    "docker-config-auth",
                    "terraform-cloud-token",
                    "gcp-service-account-key",
                ]
                .contains(rule)
            {
                continue;
            }
            let name =
                if rule.starts_with("npm") { ".npmrc".to_owned() } else { ".env".to_owned() };
            files.push(Entry::file(&format!("srv/{provider}/{rule}/{name}"), example(rule) + "\n"));
        }
    }
    files
}

/// An image with one fixture file per verified rule; the GitHub classic token also sits in a
/// second file, to show a credential is checked once.
fn image(d: &Double, dir: &Path) -> PathBuf {
    let mut entries = fixture_files(d);
    entries.push(Entry::file("opt/ci/github.env", example("github-pat-classic") + "\n"));
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /", entries)], ..ImageSpec::default() };
    let out = dir.join("verify.tar");
    ig::write_image(&spec, Format::DockerOci, &out).unwrap();
    out
}

/// A scan's exit code, JSON report and stderr.
fn scan(d: &Double, target: &Path, extra: &[&str]) -> (i32, Value, String) {
    let o = d
        .strata()
        .args(["scan", "--format", "json", "--no-cache", target.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let (code, out, err) = parts(&o);
    assert_no_secret(d, &out, &err);
    let json =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}\n{err}"));
    (code, json, err)
}

/// Every secret of the fixtures, as the scanner reports it (from the findings of a
/// `--show-secrets` scan without verification).
fn secrets(target: &Path) -> BTreeMap<String, String> {
    let o = run(&[
        "scan",
        "--format",
        "json",
        "--no-cache",
        "--show-secrets",
        target.to_str().unwrap(),
    ]);
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| Some((f["rule_id"].as_str()?.to_owned(), f["secret"].as_str()?.to_owned())))
        .collect()
}

fn assert_no_secret(d: &Double, out: &str, err: &str) {
    // The fixtures that are not signature examples: the docker logins (encoded and not), the
    // service account's key id and a line of its private key.
    let key_line = d.sa_key.lines().nth(2).unwrap();
    for needle in [b64(HUB_LOGIN), b64(CORP_LOGIN), HUB_LOGIN.into(), CORP_LOGIN.into()]
        .iter()
        .map(String::as_str)
        .chain([SA_KEY_ID, key_line, "FAKE-hub-TEST-password-1234", "FAKE-corp-TEST-password-5678"])
    {
        assert!(!out.contains(needle), "{needle}: secret on stdout");
        assert!(!err.contains(needle), "{needle}: secret on stderr");
    }
    for (provider, rules, _) in PROVIDERS {
        for rule in *rules {
            let line = example(rule);
            // The value after `=`/`:` or the quoted value: long enough to be unique.
            let value = line
                .rsplit(['=', ' ', '"'])
                .find(|s| s.len() >= 20)
                .unwrap_or_else(|| panic!("{provider}: no value in {line}"));
            assert!(!out.contains(value), "{rule}: secret on stdout");
            assert!(!err.contains(value), "{rule}: secret on stderr");
        }
    }
}

/// The verification of every finding of `rule`.
fn verifications(json: &Value, rule: &str) -> Vec<Value> {
    let v: Vec<Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == rule)
        .map(|f| f["verification"].clone())
        .collect();
    assert!(!v.is_empty(), "no finding of {rule}: {json}");
    v
}

fn verified_rules() -> impl Iterator<Item = (&'static str, &'static str, Option<&'static str>)> {
    PROVIDERS.iter().flat_map(|(p, rules, id)| rules.iter().map(move |r| (*p, *r, *id)))
}

/// Checks every verified rule's outcome, and that the double saw no contract problem.
fn expect_all(d: &Double, json: &Value, status: &str, reason_has: &str) {
    for (provider, rule, identity) in verified_rules() {
        for v in verifications(json, rule) {
            assert_eq!(v["status"], status, "{rule}: {v}");
            assert_eq!(v["provider"], provider, "{rule}: {v}");
            if status == "valid" && rule == "docker-config-auth" {
                let id = v["identity"].as_str().unwrap_or_default();
                assert!(DOCKER_IDENTITIES.contains(&id), "{rule}: {v}");
            } else if status == "valid" {
                assert_eq!(v["identity"].as_str(), identity, "{rule}: {v}");
            } else {
                let reason = v["reason"].as_str().unwrap_or_default();
                assert!(reason.contains(reason_has), "{rule}: {reason_has:?} not in {v}");
            }
        }
    }
    for r in d.requests() {
        assert!(r["problem"].is_null(), "contract problem: {r}");
    }
}

/// Distinct credentials in the fixture image, so requests when each gets one: every verified
/// rule's example, the AWS pair counted once, and a second docker auth.
fn distinct() -> usize {
    verified_rules().filter(|(_, r, _)| *r != "aws-access-key-id").count() + 1
}

/// Requests the double saw per provider route.
fn per_route(d: &Double) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in d.requests() {
        *m.entry(r["provider"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
    }
    m
}

#[test]
fn every_provider_valid_invalid_ratelimit_error_and_timeout() {
    let d = Double::start();
    let dir = tmp();
    let img = image(&d, dir.path());
    let secrets = secrets(&img);
    let host = ["--verify", "--verify-host", CORP];

    // Valid: documented identity, raised to critical, one request per distinct credential
    // (the private registry: its challenge, then its token service).
    d.set("valid", &[]);
    let (code, json, err) = scan(&d, &img, &host);
    assert_eq!(code, 1, "{err}");
    expect_all(&d, &json, "valid", "");
    for f in json["findings"].as_array().unwrap() {
        if f["verification"]["status"] == "valid" {
            assert_eq!(f["severity"], "critical", "{f}");
        }
    }
    let reqs = d.requests();
    let npmrc = &verifications(&json, "npmrc-auth-token")[0];
    assert_eq!(npmrc["status"], "unverifiable", "{npmrc}");
    let npmrc_secret = &secrets["npmrc-auth-token"];
    assert!(reqs.iter().all(|r| !r.to_string().contains(npmrc_secret.as_str())));
    assert_eq!(reqs.len(), distinct() + 1, "one check per distinct credential: {reqs:#?}");
    let docker: BTreeSet<String> = verifications(&json, "docker-config-auth")
        .iter()
        .map(|v| v["identity"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = DOCKER_IDENTITIES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(docker, want, "{json}");
    assert_eq!(verifications(&json, "github-pat-classic").len(), 2);
    let gh = &secrets["github-pat-classic"];
    let gh_reqs = reqs.iter().filter(|r| r["headers"]["authorization"] == format!("token {gh}"));
    assert_eq!(gh_reqs.count(), 1, "the same token in two files is checked once");
    // AWS: SigV4 for the key id found beside the secret (the double checks the form).
    let aws: Vec<_> = reqs.iter().filter(|r| r["provider"] == "aws").collect();
    assert_eq!(aws.len(), 1, "the pair is one credential");
    let auth = aws[0]["headers"]["authorization"].as_str().unwrap();
    let key_id = &secrets["aws-access-key-id"];
    assert!(auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={key_id}/")), "{auth}");
    assert!(!auth.contains(&secrets["aws-secret-access-key"]));
    // Twilio: the account SID beside the token is the path and the basic-auth user.
    let sid = &secrets["twilio-account-sid"];
    let tw: Vec<_> = reqs.iter().filter(|r| r["provider"] == "twilio").collect();
    assert_eq!(tw[0]["path"], format!("/2010-04-01/Accounts/{sid}.json"));
    // Google: one JWT-bearer grant whose RS256 signature the double checked with the account's
    // public key; the private key itself never leaves.
    let gcp: Vec<_> = reqs.iter().filter(|r| r["provider"] == "google-service-account").collect();
    assert_eq!(gcp.len(), 1);
    assert_eq!(gcp[0]["host"], "oauth2.googleapis.com");
    assert!(!gcp[0].to_string().contains(d.sa_key.lines().nth(2).unwrap()));

    // Invalid: also the Mailgun key in the EU region, and the registry's token service.
    d.set("invalid", &[]);
    let (code, json, err) = scan(&d, &img, &host);
    assert_eq!(code, 1, "the findings are still reported: {err}");
    expect_all(&d, &json, "invalid", "");
    assert_eq!(d.requests().len(), distinct() + 2);
    assert_eq!(per_route(&d)["mailgun"], 2, "US, then EU, then no more");

    // Revoked/expired where the provider says so in its own form.
    d.set("revoked", &[]);
    let (_, json, _) = scan(&d, &img, &host);
    for (rule, why) in [
        ("gitlab-pat", "revoked or expired"),
        ("slack-bot-token", "token_revoked"),
        ("stripe-secret-key-live", "401"),
        ("datadog-api-key", "valid false"),
        ("cloudflare-api-token", "disabled"),
        ("dropbox-long-lived-token", "401"),
        ("gcp-service-account-key", "disabled_client"),
    ] {
        let v = &verifications(&json, rule)[0];
        assert_eq!(v["status"], "invalid", "{rule}: {v}");
        assert!(v["reason"].as_str().unwrap().contains(why), "{rule}: {v}");
    }

    // 429: an error with Retry-After, and exactly one request per credential (no retry, no
    // second region or step).
    d.set("ratelimit", &[]);
    let (_, json, _) = scan(&d, &img, &host);
    expect_all(&d, &json, "error", "429");
    expect_all(&d, &json, "error", "retry after 30");
    assert_eq!(d.requests().len(), distinct(), "a 429 is never retried");

    d.set("boom", &[]);
    let (_, json, _) = scan(&d, &img, &host);
    expect_all(&d, &json, "error", "500");
    assert_eq!(d.requests().len(), distinct());

    // 403: a rejection only where the provider documents it so; elsewhere not concluded.
    d.set("forbidden", &[]);
    let (_, json, _) = scan(&d, &img, &host);
    for (provider, rule, _) in verified_rules() {
        let v = &verifications(&json, rule)[0];
        let want =
            if ["aws", "datadog", "vercel"].contains(&provider) { "invalid" } else { "error" };
        assert_eq!(v["status"], want, "{rule}: {v}");
        assert!(v["reason"].as_str().unwrap().contains("403"), "{rule}: {v}");
    }

    // Slow: the double sleeps 3 s, strata gives up after 600 ms.
    d.set("slow", &[]);
    let started = std::time::Instant::now();
    let (_, json, _) = scan(&d, &img, &host);
    expect_all(&d, &json, "error", "");
    for (_, rule, _) in verified_rules() {
        for v in verifications(&json, rule) {
            let reason = v["reason"].as_str().unwrap().to_ascii_lowercase();
            assert!(reason.contains("timeout") || reason.contains("timed out"), "{rule}: {v}");
        }
    }
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

#[test]
fn mailgun_eu_region_and_sentry_org_token() {
    let d = Double::start();
    let dir = tmp();
    let img = image(&d, dir.path());
    let secrets = secrets(&img);
    let mailgun = secrets["mailgun-api-key"].as_str();

    // A key of an EU account: the US host rejects it, the EU host (fixed too) accepts it.
    d.set("valid", &[(mailgun, "eu")]);
    let (_, json, _) = scan(&d, &img, &["--verify"]);
    let v = &verifications(&json, "mailgun-api-key")[0];
    assert_eq!(v["status"], "valid", "{v}");
    assert_eq!(v["identity"], "mg.fake.example (EU region)");
    let hosts: Vec<String> = d
        .requests()
        .iter()
        .filter(|r| r["provider"] == "mailgun")
        .map(|r| r["host"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hosts, ["api.mailgun.net", "api.eu.mailgun.net"]);

    // A US key is checked once, on the US host.
    d.set("valid", &[]);
    let (_, json, _) = scan(&d, &img, &["--verify"]);
    assert_eq!(verifications(&json, "mailgun-api-key")[0]["identity"], "mg.fake.example");
    assert_eq!(per_route(&d)["mailgun"], 1);

    // The org token: its organization's releases on its region host (the double checks that
    // the path and host are the ones the token names), valid with the organization; revoked:
    // invalid.
    let org = secrets["sentry-org-token"].as_str();
    let req: Vec<Value> =
        d.requests().into_iter().filter(|r| r["provider"] == "sentry-org").collect();
    assert_eq!(req.len(), 1, "{req:?}");
    assert_eq!(req[0]["host"], "us.sentry.io");
    assert_eq!(req[0]["path"], "/api/0/organizations/acme/releases/");
    assert_eq!(
        verifications(&json, "sentry-org-token")[0]["identity"],
        "organization acme (org auth token)"
    );
    d.set("valid", &[(org, "invalid")]);
    let (_, json, _) = scan(&d, &img, &["--verify"]);
    let v = &verifications(&json, "sentry-org-token")[0];
    assert_eq!(v["status"], "invalid", "{v}");
    assert_eq!(verifications(&json, "sentry-user-token")[0]["status"], "valid");
}

#[test]
fn google_service_account_token_uri_only_with_verify_host() {
    let d = Double::start();
    let dir = tmp();
    let custom = "https://oauth2.fake-corp.example/token";
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY key.json /",
            vec![Entry::file("key.json", sa_key_file(&d.sa_key, SA_KEY_ID, custom))],
        )],
        ..ImageSpec::default()
    };
    let img = dir.path().join("sa.tar");
    ig::write_image(&spec, Format::DockerOci, &img).unwrap();

    // The file's token_uri names another host: Google's fixed host is asked instead.
    d.set("valid", &[]);
    let (code, json, _) = scan(&d, &img, &["--verify"]);
    assert_eq!(code, 1);
    let v = &verifications(&json, "gcp-service-account-key")[0];
    assert_eq!(v["status"], "valid", "{v}");
    let hosts: Vec<Value> = d.requests().iter().map(|r| r["host"].clone()).collect();
    assert_eq!(hosts, [json!("oauth2.googleapis.com")]);
    expect_no_problem(&d);

    // Allowed: the file's own endpoint, with the assertion's audience to match.
    d.set("valid", &[]);
    let (_, json, _) = scan(&d, &img, &["--verify", "--verify-host", "oauth2.fake-corp.example"]);
    assert_eq!(verifications(&json, "gcp-service-account-key")[0]["status"], "valid");
    let hosts: Vec<Value> = d.requests().iter().map(|r| r["host"].clone()).collect();
    assert_eq!(hosts, [json!("oauth2.fake-corp.example")]);
    expect_no_problem(&d);

    // Google's answer for a deleted key.
    d.set("invalid", &[]);
    let (_, json, _) = scan(&d, &img, &["--verify"]);
    let v = &verifications(&json, "gcp-service-account-key")[0];
    assert_eq!(v["status"], "invalid", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("Invalid JWT Signature"), "{v}");

    // The dry run shows the POST without the assertion.
    let (_, _, err) = scan(&d, &img, &["--verify", "--verify-dry-run"]);
    assert!(
        err.contains("POST https://oauth2.googleapis.com/token")
            && err.contains("carries the credential"),
        "{err}"
    );
    assert!(!err.contains("eyJ"), "no JWT in the dry run: {err}");
}

fn expect_no_problem(d: &Double) {
    for r in d.requests() {
        assert!(r["problem"].is_null(), "contract problem: {r}");
    }
}

#[test]
fn exit_codes_only_verified_and_fail_on_verified() {
    let d = Double::start();
    let dir = tmp();
    let img = image(&d, dir.path());
    let secrets = secrets(&img);
    let gh = secrets["github-pat-classic"].as_str();

    // Everything invalid: --fail-on-verified passes, --only-verified reports nothing.
    d.set("invalid", &[]);
    let (code, json, _) = scan(&d, &img, &["--fail-on-verified"]);
    assert_eq!(code, 0);
    assert!(!json["findings"].as_array().unwrap().is_empty());
    let (code, json, _) = scan(&d, &img, &["--only-verified"]);
    assert_eq!(json["findings"].as_array().unwrap().len(), 0, "{json}");
    assert_eq!(code, 0);

    // One live token: only it is reported, and --fail-on-verified fails.
    d.set("invalid", &[(gh, "valid")]);
    let (code, json, _) = scan(&d, &img, &["--only-verified"]);
    let rules: BTreeSet<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, BTreeSet::from(["github-pat-classic"]));
    assert_eq!(code, 1);
    let (code, _, _) = scan(&d, &img, &["--fail-on-verified"]);
    assert_eq!(code, 1);
}

#[test]
fn dry_run_and_no_verify_send_nothing() {
    let d = Double::start();
    let dir = tmp();
    let img = image(&d, dir.path());
    d.set("valid", &[]);

    let (code, json, _) = scan(&d, &img, &[]);
    assert_eq!(code, 1);
    assert!(json["findings"].as_array().unwrap().iter().all(|f| f["verification"].is_null()));
    assert!(d.requests().is_empty(), "no request without --verify");

    let (_, _, err) = scan(&d, &img, &["--verify", "--verify-dry-run"]);
    assert!(d.requests().is_empty(), "the dry run sent {:?}", d.requests());
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("GET ") || l.starts_with("POST ") || l.contains(": unverifiable"))
        .collect();
    assert_eq!(lines.len(), distinct(), "one line per credential:\n{err}");
    assert!(err.contains("GET https://api.github.com/user | authorization: <credential:"), "{err}");
    assert!(err.contains(&format!("GET https://{CORP}/v2/")), "{err}");
    assert!(err.contains("needs --verify-host"), "{err}");
}

#[test]
fn safety_override_redirects_and_hosts_from_data() {
    let d = Double::start();
    let dir = tmp();
    let img = image(&d, dir.path());

    // The override is refused for a non-loopback address.
    let o = strata()
        .env("STRATA_TEST_VERIFY_ENDPOINT", "https://10.0.0.1:8443")
        .args(["scan", "--format", "json", "--no-cache", "--verify", img.to_str().unwrap()])
        .output()
        .unwrap();
    let (code, out, err) = parts(&o);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("STRATA_TEST_VERIFY_ENDPOINT must be https://127.0.0.1:PORT"), "{err}");
    assert_no_secret(&d, &out, &err);

    // A redirect is an error and is not followed.
    d.set("redirect", &[]);
    let (_, json, _) = scan(&d, &img, &["--verify", "--verify-host", CORP]);
    expect_all(&d, &json, "error", "redirected (302); not followed");
    assert!(d.requests().iter().all(|r| r["host"] != "elsewhere.example"));

    // Docker Hub's own entry is checked by default at Docker's fixed token service; the private
    // registry's entry is a host from the data: not contacted without --verify-host.
    d.set("valid", &[]);
    let (_, json, _) = scan(&d, &img, &["--verify"]);
    let by_identity = |json: &Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = verifications(json, "docker-config-auth")
            .iter()
            .map(|v| (v["status"].as_str().unwrap().into(), v["reason"].to_string()))
            .collect();
        v.sort();
        v
    };
    let docker = by_identity(&json);
    assert_eq!(docker[0].0, "error", "{docker:?}");
    assert!(docker[0].1.contains(&format!("--verify-host {CORP}")), "{docker:?}");
    assert_eq!(docker[1].0, "valid", "{docker:?}");
    assert_eq!(per_route(&d)["docker-registry"], 1, "Docker Hub, by default");
    assert!(d.requests().iter().all(|r| r["host"] != CORP));
    // Never Docker Hub for the private registry's login.
    let corp = b64(CORP_LOGIN);
    assert!(d.requests().iter().all(|r| !r["headers"].to_string().contains(&corp)));

    d.set("valid", &[]);
    let (_, json, _) = scan(&d, &img, &["--verify", "--verify-host", CORP]);
    assert!(by_identity(&json).iter().all(|(s, _)| s == "valid"), "{json}");
    assert_eq!(d.requests().iter().filter(|r| r["host"] == CORP).count(), 2);
    expect_no_problem(&d);
}
