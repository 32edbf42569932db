//! Findings: everything a report needs to know about one secret in one
//! place, and nothing about rules or tar. Raw secret bytes live in
//! [`Secret`], whose `Debug` never prints them.

pub mod context;
pub mod verification;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How bad a leak of this kind is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, not a credential by itself.
    Info,
    /// Low impact or low confidence.
    Low,
    /// Limited scope credentials.
    Medium,
    /// Credentials with real access.
    High,
    /// Production credentials and private keys.
    Critical,
}

impl Severity {
    /// The lower-case word.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Two steps lower, at least info: the severity of a finding whose
    /// offline check failed (critical → medium, high → low, else info).
    pub fn lowered(self) -> Severity {
        match self {
            Severity::Critical => Severity::Medium,
            Severity::High => Severity::Low,
            Severity::Medium | Severity::Low | Severity::Info => Severity::Info,
        }
    }

    /// All severities, most severe first.
    pub const ALL: [Severity; 5] =
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info];
}

/// Which detector produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detector {
    /// A signature rule.
    Pattern,
    /// High-entropy value in a secret-like assignment.
    Entropy,
    /// A credential file recognised by name and structure.
    File,
    /// The image config or build history.
    Config,
}

/// Where a finding stands in the final image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Still shipped by the final image.
    Present,
    /// Removed by a later layer, but recoverable from this one.
    Deleted,
    /// Replaced by a later layer, but recoverable from this one.
    Overwritten,
    /// In the image config or history, visible to anyone who pulls.
    Config,
}

impl Status {
    /// The contract's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Present => "present",
            Status::Deleted => "deleted",
            Status::Overwritten => "overwritten",
            Status::Config => "config",
        }
    }
}

/// Raw secret bytes. `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.0.len())
    }
}

impl Secret {
    /// Wraps raw bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The raw bytes; only reports with `--show-secrets` may print them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Hex SHA-256 of the exact bytes, safe to print and to match on.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.0))
    }

    /// A redacted form: a few leading and trailing characters around `…`,
    /// never more than a quarter of the secret, and none for short secrets.
    pub fn redacted(&self) -> String {
        if std::str::from_utf8(&self.0).is_err() {
            return format!("[{} bytes of binary]", self.0.len());
        }
        let text = String::from_utf8_lossy(&self.0);
        let chars: Vec<char> = text.chars().filter(|c| !c.is_control()).collect();
        let n = chars.len();
        if let Some(armour) = armour_line(&text) {
            // Armoured keys: the armour line says what it is; no key material.
            return format!("{armour} … [{} bytes]", self.0.len());
        }
        let show = (n / 8).min(4);
        if show == 0 {
            return "…".into();
        }
        let head: String = chars[..show].iter().collect();
        let tail: String = chars[n - show..].iter().collect();
        format!("{head}…{tail}")
    }
}

/// `-----BEGIN … -----` at the start of a PEM block, however its lines are
/// written (real newlines, literal `\n`, CRLF or none): only the armour,
/// never the key material after it.
fn armour_line(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("-----BEGIN")?;
    let end = rest.find("-----")?;
    let label = &rest[..end];
    // A label is a few upper-case words (`RSA PRIVATE KEY`); anything else is not armour.
    let is_label = label.len() <= 40
        && label.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ');
    is_label.then(|| &text[..10 + end + 5])
}

/// A Kubernetes container that runs the image a finding is in
/// (`strata scan --k8s-pods`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Workload {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name in the pod.
    pub container: String,
}

/// One secret found in one place.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Rule id (kebab-case).
    pub rule_id: String,
    /// Rule name.
    pub rule_name: String,
    /// Severity.
    pub severity: Severity,
    /// Producing detector.
    pub detector: Detector,
    /// Target as given.
    pub target: String,
    /// Image manifest digest.
    pub image_digest: String,
    /// Image platform.
    pub platform: Option<String>,
    /// Layer index (None for config findings).
    pub layer_index: Option<usize>,
    /// Layer blob digest.
    pub layer_digest: Option<String>,
    /// Absolute image path (None for config findings).
    pub path: Option<String>,
    /// Path inside nested archives, levels joined with `!`.
    pub inner_path: Option<String>,
    /// 1-based line of the secret's first byte.
    pub line: Option<u64>,
    /// Status in the final image.
    pub status: Status,
    /// The layer that deleted or overwrote it.
    pub removed_in_layer: Option<usize>,
    /// The instruction that created the layer (or the history entry), shared
    /// by every finding from it (an instruction can be megabytes long).
    pub created_by: Option<std::sync::Arc<str>>,
    /// `config.env`, `history[3].created_by`… for config findings.
    pub location: Option<String>,
    /// The secret.
    pub secret: Secret,
    /// What an offline validator confirmed, if one ran.
    pub validation: Option<String>,
    /// Documentation, test or third-party path: severity is capped at info.
    pub context: Option<context::PathContext>,
    /// The rule's own severity, before any path-context cap.
    pub rule_severity: Severity,
    /// Decodings applied to reach the secret (`["base64"]`,
    /// `["base64", "utf16le"]`), outermost first; empty for stored bytes.
    pub decoding: Vec<String>,
    /// The Kubernetes containers that run this image (empty outside `--k8s-pods`).
    pub workloads: Vec<Workload>,
    /// The live check's outcome (`--verify` only).
    pub verification: Option<verification::Verification>,
    /// What a live verifier needs beyond the secret (a service-account key file's fields, the
    /// registry of a docker auth); never reported.
    pub material: Option<Secret>,
}

impl Finding {
    /// A fingerprint stable across runs and rebuilds: rule, secret, path and
    /// location only (no layer digest, index or timestamp).
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        let location = self.location.as_deref().map(strip_history_index).unwrap_or_default();
        for part in [
            self.rule_id.as_str(),
            &self.secret.sha256(),
            self.path.as_deref().unwrap_or(""),
            self.inner_path.as_deref().unwrap_or(""),
            &location,
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// `history[7].created_by` → `history.created_by` (and `.comment`,
/// `.author` likewise): a rebuild that adds an instruction earlier must not
/// change the fingerprint of a later one.
fn strip_history_index(location: &str) -> String {
    match location.strip_prefix("history[").and_then(|rest| rest.split_once(']')) {
        Some((_, field)) => format!("history{field}"),
        None => location.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_never_shows_most_of_the_secret() {
        let s = Secret::new(b"ghp_abcdefghijklmnopqrstuvwxyz0123456789".to_vec());
        let r = s.redacted();
        assert_eq!(r, "ghp_…6789");
        assert_eq!(Secret::new(b"short".to_vec()).redacted(), "…");
        assert!(!format!("{s:?}").contains("abc"));
    }

    #[test]
    fn pem_redaction_shows_only_the_armour_however_lines_are_written() {
        let body = "MIIEowIBAAKCAQEAFAKETESTKEYabcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
        for sep in ["\n", "\\n", "\r\n", ""] {
            let pem = format!(
                "-----BEGIN RSA PRIVATE KEY-----{sep}{body}{sep}{body}{sep}-----END RSA PRIVATE KEY-----"
            );
            let r = Secret::new(pem.clone().into_bytes()).redacted();
            assert_eq!(r, format!("-----BEGIN RSA PRIVATE KEY----- … [{} bytes]", pem.len()));
        }
        // No closing dashes: not armour, so the short head and tail only.
        let odd = format!("-----BEGIN {body}{body}");
        let r = Secret::new(odd.into_bytes()).redacted();
        assert_eq!(r, "----…GHIJ");
    }
}
