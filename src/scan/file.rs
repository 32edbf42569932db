//! Credential files recognised by name and structure: the secrets in them
//! often have no recognisable format of their own (a docker `auth` blob, a
//! `.netrc` password, an `/etc/shadow` hash), so the file's grammar gives
//! the context. Runs on files small enough to be held whole.

use base64::Engine as _;

use super::{Hit, RuleInfo, filter};
use crate::finding::{Detector, Secret, Severity};
use crate::image::path::file_name;

/// Files larger than this are not parsed as credential files.
pub const MAX_CREDENTIAL_FILE: usize = 1 << 20;

struct FileRule {
    id: &'static str,
    name: &'static str,
    severity: Severity,
    description: &'static str,
}

const RULES: &[FileRule] = &[
    FileRule {
        id: "file-docker-config-auth",
        name: "Registry credentials in docker config.json",
        severity: Severity::High,
        description: "A base64 user:password pair in the auths section of a Docker client config.",
    },
    FileRule {
        id: "file-git-credentials",
        name: "Password in .git-credentials",
        severity: Severity::High,
        description: "A URL with a password or token stored by git's credential store.",
    },
    FileRule {
        id: "file-netrc-password",
        name: "Password in .netrc",
        severity: Severity::High,
        description: "A machine login password in a .netrc file.",
    },
    FileRule {
        id: "file-pypirc-password",
        name: "Password in .pypirc",
        severity: Severity::High,
        description: "A package index password in a .pypirc file.",
    },
    FileRule {
        id: "file-npmrc-auth",
        name: "Registry credentials in .npmrc",
        severity: Severity::High,
        description: "An _auth, _password or _authToken value in an .npmrc file.",
    },
    FileRule {
        id: "file-aws-credentials",
        name: "Secret in AWS credentials file",
        severity: Severity::Critical,
        description: "An aws_secret_access_key or session token in an AWS shared credentials file.",
    },
    FileRule {
        id: "file-shadow-hash",
        name: "Password hash in /etc/shadow",
        severity: Severity::Medium,
        description: "A crypt(3) password hash for an account; it can be cracked offline.",
    },
    FileRule {
        id: "file-htpasswd-hash",
        name: "Password hash in htpasswd",
        severity: Severity::Medium,
        description: "A password hash in an Apache htpasswd file.",
    },
    FileRule {
        id: "file-kubeconfig-credential",
        name: "Credential in kubeconfig",
        severity: Severity::Critical,
        description: "A token, password or client key in a Kubernetes client config.",
    },
    FileRule {
        id: "file-keystore",
        name: "Java or PKCS#12 keystore",
        severity: Severity::High,
        description: "A keystore file (JKS, JCEKS or PKCS#12) that holds private keys.",
    },
    FileRule {
        id: "file-env-secret",
        name: "Secret in .env file",
        severity: Severity::Medium,
        description: "A high-entropy value assigned to a secret-named variable in a dotenv file.",
    },
    FileRule {
        id: "file-terraform-state-secret",
        name: "Sensitive value in Terraform state",
        severity: Severity::High,
        description: "A password, secret or private key attribute in terraform.tfstate.",
    },
    FileRule {
        id: "file-kubernetes-secret",
        name: "Value of a Kubernetes Secret manifest",
        severity: Severity::High,
        description: "A `data` (base64, decoded here) or `stringData` value of a Kubernetes \
                      Secret: secrets by definition, shipped in a manifest or Helm chart.",
    },
];

/// The file detectors' rules, in the order [`detect`] refers to them.
pub fn rules() -> Vec<RuleInfo> {
    RULES
        .iter()
        .map(|r| RuleInfo {
            id: r.id.into(),
            name: r.name.into(),
            severity: r.severity,
            detector: Detector::File,
            description: r.description.into(),
            references: vec![],
            rank: 2,
        })
        .collect()
}

/// A detector's finding: rule id, byte offset, secret.
type Found = (&'static str, usize, Vec<u8>);

/// A credential-file parser: raw bytes, the same as text, findings out.
type Parser = fn(&[u8], &str, &mut Vec<Found>);

/// Runs the detector the file's name calls for (if any) over its bytes.
/// `first_rule` is the scanner index of the first file rule.
pub fn detect(path: &str, data: &[u8], first_rule: usize) -> Vec<Hit> {
    let name = file_name(path);
    let mut found: Vec<Found> = Vec::new();
    // Most files are none of these: decide by name before decoding any text.
    let is_env = name == ".env" || name.starts_with(".env.") || name.ends_with(".env");
    let parser: Option<Parser> = match name {
        "config.json" if path.contains("/.docker/") => Some(docker_config),
        ".git-credentials" => Some(|_, t, f| git_credentials(t, f)),
        ".netrc" | "_netrc" => Some(|_, t, f| netrc(t, f)),
        ".pypirc" => Some(|_, t, f| key_values(t, &["password"], "file-pypirc-password", f)),
        ".npmrc" => Some(|_, t, f| npmrc(t, f)),
        "credentials" if path.contains("/.aws/") => Some(|_, t, f| {
            key_values(
                t,
                &["aws_secret_access_key", "aws_session_token"],
                "file-aws-credentials",
                f,
            )
        }),
        "shadow" | "shadow-" | "gshadow" if path.starts_with("/etc/") => {
            Some(|_, t, f| shadow(t, f))
        }
        ".htpasswd" | "htpasswd" => Some(|_, t, f| htpasswd(t, f)),
        "terraform.tfstate" | "terraform.tfstate.backup" => Some(|d, _, f| tfstate(d, f)),
        _ if may_be_kubeconfig(path) => Some(|_, t, f| {
            if is_kubeconfig(t) {
                kubeconfig(t, f);
            }
        }),
        _ if is_env => Some(|_, t, f| dotenv(t, f)),
        _ if [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e)) => {
            Some(|_, t, f| kubernetes_secret(t, f))
        }
        _ => None,
    };
    if let Some(parse) = parser {
        parse(data, &String::from_utf8_lossy(data), &mut found);
    }
    if let Some(kind) = keystore_kind(name, data) {
        // The whole keystore is the secret; its bytes are what a responder must rotate.
        let _ = kind;
        found.push(("file-keystore", 0, data.to_vec()));
    }
    found
        .into_iter()
        // A keystore is binary: template-like bytes inside it mean nothing.
        .filter(|(id, _, s)| {
            !s.is_empty() && (*id == "file-keystore" || !filter::is_placeholder(s))
        })
        .filter_map(|(id, off, secret)| {
            let idx = RULES.iter().position(|r| r.id == id)?;
            let line = memchr::memchr_iter(b'\n', &data[..off.min(data.len())]).count() as u64 + 1;
            Some(Hit {
                rule: first_rule + idx,
                offset: off as u64,
                line,
                secret: Secret::new(secret),
                validation: None,
                failed_check: false,
                decoding: Vec::new(),
            })
        })
        .collect()
}

/// Byte offset of `needle` in `hay` at or after `from` (0 when absent).
fn offset_of(hay: &str, needle: &str, from: usize) -> usize {
    hay.get(from..).and_then(|h| h.find(needle)).map_or(from, |i| from + i)
}

fn docker_config(data: &[u8], text: &str, found: &mut Vec<Found>) {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else { return };
    for entry in auths.values() {
        for field in ["auth", "password", "identitytoken", "registrytoken"] {
            let Some(value) = entry.get(field).and_then(|v| v.as_str()) else { continue };
            let secret = if field == "auth" {
                let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(value) else {
                    continue;
                };
                // user:password; the password is the secret.
                match raw.iter().position(|&b| b == b':') {
                    Some(i) if i + 1 < raw.len() => raw[i + 1..].to_vec(),
                    _ => continue,
                }
            } else {
                value.as_bytes().to_vec()
            };
            found.push(("file-docker-config-auth", offset_of(text, value, 0), secret));
        }
    }
}

fn git_credentials(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim();
        if let Some((_, rest)) = l.split_once("://")
            && let Some((userinfo, _)) = rest.split_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            found.push((
                "file-git-credentials",
                offset_of(text, password, at),
                password.as_bytes().to_vec(),
            ));
        }
        at += line.len();
    }
}

fn netrc(text: &str, found: &mut Vec<Found>) {
    let tokens: Vec<(usize, &str)> = text
        .split_ascii_whitespace()
        .map(|t| (t.as_ptr() as usize - text.as_ptr() as usize, t))
        .collect();
    for pair in tokens.windows(2) {
        if pair[0].1 == "password" {
            found.push(("file-netrc-password", pair[1].0, pair[1].1.as_bytes().to_vec()));
        }
    }
}

/// `key = value` / `key: value` lines for the given keys (case-insensitive).
fn key_values(text: &str, keys: &[&str], rule: &'static str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some((k, v)) = line.split_once(['=', ':']) {
            let k = k.trim().trim_matches('"').to_ascii_lowercase();
            let v = v.trim().trim_matches(['"', '\'']);
            if keys.iter().any(|want| k == *want || k.ends_with(&format!(":{want}")))
                && !v.is_empty()
            {
                found.push((rule, offset_of(text, v, at), v.as_bytes().to_vec()));
            }
        }
        at += line.len();
    }
}

fn npmrc(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some((k, v)) = line.split_once('=') {
            let key = k.trim();
            let v = v.trim().trim_matches(['"', '\'']);
            let is_secret = ["_auth", "_authToken", "_password"]
                .iter()
                .any(|s| key == *s || key.ends_with(&format!(":{s}")));
            if is_secret && !v.is_empty() {
                found.push(("file-npmrc-auth", offset_of(text, v, at), v.as_bytes().to_vec()));
            }
        }
        at += line.len();
    }
}

/// crypt(3) hashes: `$id$…` with a known scheme, or 13-char DES.
fn is_password_hash(h: &str) -> bool {
    const SCHEMES: &[&str] = &[
        "$1$", "$2a$", "$2b$", "$2y$", "$5$", "$6$", "$y$", "$gy$", "$7$", "$apr1$", "{SHA}",
        "{SSHA}",
    ];
    SCHEMES.iter().any(|s| h.starts_with(s)) && h.len() >= 20
        || (h.len() == 13 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/'))
}

fn shadow(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let mut fields = line.split(':');
        if let (Some(_user), Some(hash)) = (fields.next(), fields.next())
            && is_password_hash(hash)
        {
            found.push(("file-shadow-hash", offset_of(text, hash, at), hash.as_bytes().to_vec()));
        }
        at += line.len();
    }
}

fn htpasswd(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some((_, hash)) = line.trim_end().split_once(':')
            && is_password_hash(hash)
        {
            found.push(("file-htpasswd-hash", offset_of(text, hash, at), hash.as_bytes().to_vec()));
        }
        at += line.len();
    }
}

fn may_be_kubeconfig(path: &str) -> bool {
    path.contains("/.kube/") || file_name(path).contains("kubeconfig")
}

fn is_kubeconfig(text: &str) -> bool {
    text.contains("apiVersion")
        && (text.contains("kind: Config") || text.contains("\"kind\": \"Config\""))
}

fn kubeconfig(text: &str, found: &mut Vec<Found>) {
    key_values(
        text,
        &["token", "password", "client-key-data", "id-token", "refresh-token"],
        "file-kubeconfig-credential",
        found,
    );
}

fn dotenv(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_start().trim_start_matches("export ");
        if let Some((k, v)) = l.split_once('=') {
            let key = k.trim().to_ascii_lowercase();
            let v = v.trim().trim_matches(['"', '\'']);
            let secretish = ["pass", "secret", "token", "key", "credential", "auth"]
                .iter()
                .any(|w| key.contains(w));
            if secretish && super::entropy::passes(super::entropy::ASSIGNMENT_RULE, v.as_bytes()) {
                found.push(("file-env-secret", offset_of(text, v, at), v.as_bytes().to_vec()));
            }
        }
        at += line.len();
    }
}

fn tfstate(data: &[u8], found: &mut Vec<Found>) {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let mut stack = vec![&doc];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                for (k, val) in map {
                    let key = k.to_ascii_lowercase();
                    let sensitive = ["password", "secret", "private_key", "access_key", "token"]
                        .iter()
                        .any(|w| key.contains(w));
                    match val {
                        serde_json::Value::String(s)
                            if sensitive
                                && s.len() >= 8
                                && !filter::is_placeholder_word(s.as_bytes()) =>
                        {
                            let at = offset_of(&String::from_utf8_lossy(data), s, 0);
                            found.push(("file-terraform-state-secret", at, s.as_bytes().to_vec()));
                        }
                        other => stack.push(other),
                    }
                }
            }
            serde_json::Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
}

/// The `data` (base64) and `stringData` values of a Kubernetes Secret
/// manifest (YAML block style, as `kubectl` and Helm write it).
fn kubernetes_secret(text: &str, found: &mut Vec<Found>) {
    let is_secret = text.lines().any(|l| {
        let l = l.trim();
        l == "kind: Secret" || l.starts_with("\"kind\": \"Secret\"")
    });
    if !is_secret {
        return;
    }
    let mut at = 0;
    // (indentation of the `data:`/`stringData:` key, values are base64)
    let mut section: Option<(usize, bool)> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let content = line.trim();
        match content {
            "data:" => section = Some((indent, true)),
            "stringData:" => section = Some((indent, false)),
            _ if content.is_empty() || content.starts_with('#') => {}
            _ => match section {
                Some((base, base64)) if indent > base => {
                    if let Some((_, value)) = content.split_once(':') {
                        let value = value.trim().trim_matches(['"', '\'']);
                        let secret = if base64 {
                            base64::engine::general_purpose::STANDARD.decode(value).ok()
                        } else {
                            Some(value.as_bytes().to_vec())
                        };
                        if let Some(secret) = secret.filter(|s| s.len() >= 6) {
                            found.push((
                                "file-kubernetes-secret",
                                offset_of(text, value, at),
                                secret,
                            ));
                        }
                    }
                }
                _ => section = None,
            },
        }
        at += line.len();
    }
}

/// JKS/JCEKS by magic number; PKCS#12 by extension plus DER structure.
fn keystore_kind(name: &str, data: &[u8]) -> Option<&'static str> {
    match data {
        [0xfe, 0xed, 0xfe, 0xed, ..] => Some("jks"),
        [0xce, 0xce, 0xce, 0xce, ..] => Some("jceks"),
        [0x30, 0x82, ..] | [0x30, 0x80, ..] => {
            let lower = name.to_ascii_lowercase();
            let by_name = [".p12", ".pfx", ".keystore"].iter().any(|e| lower.ends_with(e));
            // PKCS#12 PFX: version INTEGER 3 right after the outer SEQUENCE header.
            let version_3 = data.windows(3).take(8).any(|w| w == [0x02, 0x01, 0x03]);
            (by_name && version_3).then_some("pkcs12")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(path: &str, data: &str) -> Vec<(String, String)> {
        let rules = rules();
        detect(path, data.as_bytes(), 0)
            .into_iter()
            .map(|h| {
                (rules[h.rule].id.clone(), String::from_utf8_lossy(h.secret.expose()).into_owned())
            })
            .collect()
    }

    #[test]
    fn credential_files() {
        let auth = base64::engine::general_purpose::STANDARD.encode("robot:Zx8vQ2mLp9sKd4Rt");
        let docker = format!(r#"{{"auths":{{"registry.example.test":{{"auth":"{auth}"}}}}}}"#);
        assert_eq!(
            ids("/root/.docker/config.json", &docker),
            vec![("file-docker-config-auth".into(), "Zx8vQ2mLp9sKd4Rt".into())]
        );
        assert_eq!(
            ids("/root/.git-credentials", "https://bob:Hq7pW2xLk9vM@git.example.test\n")[0].1,
            "Hq7pW2xLk9vM"
        );
        assert_eq!(
            ids("/root/.netrc", "machine h login bob password Tr0ub4dor3xQ\n")[0].1,
            "Tr0ub4dor3xQ"
        );
        assert_eq!(
            ids(
                "/etc/shadow",
                "root:*:19000:0:99999:7:::\nbob:$6$salt$abcdefghijklmnopqrstuv:19000::::::\n"
            )
            .len(),
            1
        );
        assert!(ids("/etc/shadow", "root:!:19000::::::\nnobody:*:1::::::\n").is_empty());
        assert_eq!(
            ids("/srv/.npmrc", "//registry.npmjs.org/:_authToken=Qm9iOlNlY3JldFRva2Vu9x\n").len(),
            1
        );
        assert_eq!(
            ids(
                "/root/.aws/credentials",
                "[default]\naws_secret_access_key = Vb7Hq2Lm9XpR4sT8wZ1cK5nJ3yF6gD0aE2uI7oPq\n"
            )
            .len(),
            1
        );
        assert!(ids("/app/.env", "DEBUG=true\nAPI_TOKEN=changeme\n").is_empty());
        assert_eq!(ids("/app/.env", "API_TOKEN=Zq8Lm3Xv9Rt2Wp7Kc4Hs\n").len(), 1);
    }
}
