//! Registry credentials and challenges: where a username and password come
//! from (`STRATA_REGISTRY_USERNAME`/`STRATA_REGISTRY_PASSWORD`, then
//! `~/.docker/config.json` with its credential helpers), and how a
//! `WWW-Authenticate` header is read.
//!
//! It does no HTTP; the client decides when to ask for credentials (only
//! after a registry demands them, so anonymous pulls never run a helper).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use super::reference::DOCKER_HUB;

/// Environment variable with the registry username (wins over docker config).
pub const ENV_USERNAME: &str = "STRATA_REGISTRY_USERNAME";
/// Environment variable with the registry password or token.
pub const ENV_PASSWORD: &str = "STRATA_REGISTRY_PASSWORD";

/// The key Docker uses for Docker Hub in `config.json` and helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What a registry accepts as proof.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A username and password (or personal access token).
    Basic {
        /// The username.
        username: String,
        /// The password or token.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`, or a helper's `<token>` user),
    /// exchanged at the token endpoint.
    IdentityToken(String),
}

/// Credentials for one registry, with where they came from for messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The secret itself.
    pub secret: Secret,
    /// Where it was found (`STRATA_REGISTRY_USERNAME/…`, `~/.docker/config.json`,
    /// `docker-credential-pass`), for error messages.
    pub source: String,
}

// Secrets never reach logs or panics.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.secret {
            Secret::Basic { username, .. } => format!("basic auth for {username}"),
            Secret::IdentityToken(_) => "identity token".to_owned(),
        };
        write!(f, "Credentials({kind} from {})", self.source)
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value, when these are a username and password.
    pub fn basic_header(&self) -> Option<String> {
        match &self.secret {
            Secret::Basic { username, password } => {
                let raw = format!("{username}:{password}");
                Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw)))
            }
            Secret::IdentityToken(_) => None,
        }
    }
}

/// Finds credentials for `registry` (as written in references, e.g.
/// `docker.io`, `ghcr.io`, `127.0.0.1:5000`). The environment wins, then
/// `credHelpers`, `credsStore`, and `auths` of the docker config.
///
/// # Errors
/// Half-set environment variables, an unreadable or corrupt docker config,
/// or a credential helper that fails for another reason than "not found".
pub fn lookup(registry: &str) -> Result<Option<Credentials>, String> {
    let user = std::env::var(ENV_USERNAME).ok().filter(|v| !v.is_empty());
    let pass = std::env::var(ENV_PASSWORD).ok();
    match (user, pass) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials {
                secret: Secret::Basic { username, password },
                source: format!("{ENV_USERNAME}/{ENV_PASSWORD}"),
            }));
        }
        (Some(_), None) => return Err(format!("{ENV_USERNAME} is set but {ENV_PASSWORD} is not")),
        (None, Some(p)) if !p.is_empty() => {
            return Err(format!("{ENV_PASSWORD} is set but {ENV_USERNAME} is not"));
        }
        _ => {}
    }
    let Some(path) = docker_config_path() else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    // The sanitised message: serde's own would quote a credential it could not parse.
    let config: DockerConfig = crate::redact::parse_json(text.as_bytes())
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    from_docker_config(&config, registry, &path.display().to_string(), &run_helper)
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The parts of `~/.docker/config.json` that hold credentials.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What a credential helper printed: `{"ServerURL", "Username", "Secret"}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperOutput {
    username: String,
    secret: String,
}

/// Runs a helper: `(name, server) -> Ok(None)` when it knows no credentials.
type HelperRunner<'a> = dyn Fn(&str, &str) -> Result<Option<Credentials>, String> + 'a;

/// Credentials for `registry` from the `auths` of a docker config that is
/// not the user's own (a Kubernetes pull secret's `.dockerconfigjson`):
/// no credential helpers are run for it. `source` names it in messages.
///
/// # Errors
/// An `auth` value that does not decode to `username:password`.
pub fn from_auths(
    config: &DockerConfig,
    registry: &str,
    source: &str,
) -> Result<Option<Credentials>, String> {
    let auths_only = DockerConfig { auths: config.auths.clone(), ..DockerConfig::default() };
    from_docker_config(&auths_only, registry, source, &|_, _| Ok(None))
}

fn from_docker_config(
    config: &DockerConfig,
    registry: &str,
    path: &str,
    helper: &HelperRunner<'_>,
) -> Result<Option<Credentials>, String> {
    let keys = candidate_keys(registry);
    // Helpers get the server as Docker names it: Hub by its v1 URL, others by host.
    let server = if registry == DOCKER_HUB { DOCKER_HUB_KEY } else { registry };
    if let Some(name) = keys.iter().find_map(|k| config.cred_helpers.get(k)) {
        return helper(name, server);
    }
    if let Some(name) = config.creds_store.as_deref().filter(|n| !n.is_empty())
        && let Some(found) = helper(name, server)?
    {
        return Ok(Some(found));
    }
    let entry = config.auths.iter().find(|(k, _)| keys.contains(&normalize_key(k)));
    let Some((key, entry)) = entry else { return Ok(None) };
    let source = format!("{path} (auths \"{key}\")");
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials { secret: Secret::IdentityToken(token.to_owned()), source }));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("{source}: \"auth\" is not base64: {e}"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| format!("{source}: \"auth\" is not UTF-8 once decoded"))?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err(format!("{source}: \"auth\" does not decode to username:password"));
        };
        let secret = Secret::Basic { username: username.into(), password: password.into() };
        return Ok(Some(Credentials { secret, source }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
            secret: Secret::Basic { username: u.clone(), password: p.clone() },
            source,
        })),
        // An empty entry is what `docker login` leaves beside a credsStore.
        _ => Ok(None),
    }
}

/// The names a registry may be filed under in `config.json`.
fn candidate_keys(registry: &str) -> Vec<String> {
    if registry == DOCKER_HUB {
        ["index.docker.io", "docker.io", "registry-1.docker.io", DOCKER_HUB_KEY]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        vec![registry.to_owned()]
    }
}

/// `https://host/v1/` → `host`, so `auths` keys written as URLs match.
fn normalize_key(key: &str) -> String {
    let rest = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// Runs `docker-credential-NAME get` with the server on stdin.
fn run_helper(name: &str, server: &str) -> Result<Option<Credentials>, String> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program} (named in the docker config): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is judged by its exit status below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| format!("{program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The helper protocol's "no credentials" answer is this message on stdout.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{program} get failed ({}): {}",
            out.status,
            format!("{} {}", stdout.trim(), stderr.trim()).trim()
        ));
    }
    let parsed: HelperOutput = crate::redact::parse_json(stdout.as_bytes())
        .map_err(|e| format!("{program} get printed something that is not credentials: {e}"))?;
    let secret = if parsed.username == "<token>" {
        Secret::IdentityToken(parsed.secret)
    } else {
        Secret::Basic { username: parsed.username, password: parsed.secret }
    };
    Ok(Some(Credentials { secret, source: program }))
}

/// An authentication challenge from `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="…"`: send the username and password with every request.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`: get a token from the realm.
    Bearer {
        /// The token endpoint URL.
        realm: String,
        /// The `service` parameter to pass on.
        service: Option<String>,
        /// The scope the registry asks for, when it says.
        scope: Option<String>,
    },
}

/// Reads a `WWW-Authenticate` value; Bearer wins when several are offered.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let mut found = None;
    for (scheme, params) in split_challenges(header) {
        if scheme.eq_ignore_ascii_case("bearer") {
            let get = |k: &str| {
                params.iter().find(|(pk, _)| pk.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone())
            };
            let realm = get("realm")?;
            return Some(Challenge::Bearer { realm, service: get("service"), scope: get("scope") });
        }
        if scheme.eq_ignore_ascii_case("basic") {
            found = Some(Challenge::Basic);
        }
    }
    found
}

type Params = Vec<(String, String)>;

/// Splits `Scheme k=v, k="v,w", Scheme2 k=v` into challenges. Quoted values
/// may hold commas (`scope="repository:a:pull,push"`) and `\"` escapes.
fn split_challenges(header: &str) -> Vec<(String, Params)> {
    let mut out: Vec<(String, Params)> = Vec::new();
    let mut chars = header.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut token = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ',' {
                break;
            }
            token.push(c);
            chars.next();
        }
        if token.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| *c == ' ') {
            chars.next();
        }
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| *c == ' ') {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
            match out.last_mut() {
                Some((_, params)) => params.push((token, value)),
                None => out.push((String::new(), vec![(token, value)])),
            }
        } else {
            out.push((token, Vec::new()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            parse_challenge(h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            })
        );
        let h = r#"Bearer realm="http://127.0.0.1:1/t",scope="repository:a/b:pull,push",error="insufficient_scope""#;
        let Some(Challenge::Bearer { scope, service, .. }) = parse_challenge(h) else { panic!() };
        assert_eq!((scope.as_deref(), service), (Some("repository:a/b:pull,push"), None));
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        let both = r#"Basic realm="x", Bearer realm="https://t/",service=s"#;
        assert!(matches!(parse_challenge(both), Some(Challenge::Bearer { .. })));
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(""), None);
        let esc = r#"Bearer realm="https://a/\"q\"""#;
        assert!(
            matches!(parse_challenge(esc), Some(Challenge::Bearer { realm, .. }) if realm == "https://a/\"q\"")
        );
    }

    fn cfg(json: &str) -> DockerConfig {
        serde_json::from_str(json).unwrap()
    }

    fn no_helper(_: &str, _: &str) -> Result<Option<Credentials>, String> {
        panic!("no helper should run")
    }

    fn basic(c: Option<Credentials>) -> (String, String) {
        match c.map(|c| c.secret) {
            Some(Secret::Basic { username, password }) => (username, password),
            other => panic!("expected basic credentials, got {}", other.is_some()),
        }
    }

    #[test]
    fn auths_entries() {
        // "alice:s3cr:et" — the password may contain a colon.
        let c = cfg(r#"{"auths":{"https://ghcr.io/v2/":{"auth":"YWxpY2U6czNjcjpldA=="}}}"#);
        let got = from_docker_config(&c, "ghcr.io", "cfg", &no_helper).unwrap();
        assert_eq!(basic(got), ("alice".into(), "s3cr:et".into()));
        assert_eq!(from_docker_config(&c, "quay.io", "cfg", &no_helper).unwrap(), None);
        let hub = cfg(r#"{"auths":{"https://index.docker.io/v1/":{"auth":"Ym9iOnB3"}}}"#);
        let got = from_docker_config(&hub, DOCKER_HUB, "cfg", &no_helper).unwrap();
        assert_eq!(basic(got), ("bob".into(), "pw".into()));
        let split = cfg(r#"{"auths":{"127.0.0.1:5000":{"username":"u","password":"p"}}}"#);
        let got = from_docker_config(&split, "127.0.0.1:5000", "cfg", &no_helper).unwrap();
        assert_eq!(basic(got), ("u".into(), "p".into()));
        let token = cfg(r#"{"auths":{"r.io":{"identitytoken":"tok"}}}"#);
        let got = from_docker_config(&token, "r.io", "cfg", &no_helper).unwrap().unwrap();
        assert!(got.secret == Secret::IdentityToken("tok".into()));
        let empty = cfg(r#"{"auths":{"r.io":{}}}"#);
        assert_eq!(from_docker_config(&empty, "r.io", "cfg", &no_helper).unwrap(), None);
        let bad = cfg(r#"{"auths":{"r.io":{"auth":"%%%"}}}"#);
        assert!(
            from_docker_config(&bad, "r.io", "cfg", &no_helper).unwrap_err().contains("base64")
        );
    }

    #[test]
    fn helpers_take_precedence() {
        let c = cfg(r#"{"auths":{"r.io":{"auth":"dTpw"},"other.io":{"auth":"dTpw"}},
                "credsStore":"desktop","credHelpers":{"r.io":"ecr-login"}}"#);
        let calls = std::cell::RefCell::new(Vec::new());
        let helper = |name: &str, server: &str| {
            calls.borrow_mut().push(format!("{name} {server}"));
            Ok(if name == "ecr-login" {
                Some(Credentials {
                    secret: Secret::Basic { username: "AWS".into(), password: "x".into() },
                    source: name.into(),
                })
            } else {
                None
            })
        };
        let got = from_docker_config(&c, "r.io", "cfg", &helper).unwrap();
        assert_eq!(basic(got).0, "AWS");
        // The store knows nothing for other.io: the file's entry is used.
        let got = from_docker_config(&c, "other.io", "cfg", &helper).unwrap();
        assert_eq!(basic(got), ("u".into(), "p".into()));
        let _ = from_docker_config(&c, DOCKER_HUB, "cfg", &helper).unwrap();
        assert_eq!(
            *calls.borrow(),
            ["ecr-login r.io", "desktop other.io", "desktop https://index.docker.io/v1/"]
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials {
            secret: Secret::Basic { username: "u".into(), password: "hunter2".into() },
            source: "env".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.basic_header().unwrap(), "Basic dTpodW50ZXIy");
    }
}
