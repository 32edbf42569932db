//! Suppressing known findings: a `.strata.toml` allowlist (by rule id, path
//! glob, secret sha256 or fingerprint, each with a required reason) and a
//! baseline (a previous JSON report, matched by fingerprint).

use std::collections::HashSet;
use std::path::Path;

use globset::{Glob, GlobMatcher};
use serde::Deserialize;

use crate::finding::Finding;

/// Problems reading an allowlist or baseline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unreadable file.
    #[error("{file}: {err}")]
    Read {
        /// The file.
        file: String,
        /// The failure.
        err: std::io::Error,
    },
    /// Malformed file.
    #[error("{file}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    allow: Vec<AllowSyntax>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowSyntax {
    rule: Option<String>,
    path: Option<String>,
    secret_sha256: Option<String>,
    fingerprint: Option<String>,
    reason: String,
}

/// One allowlist entry; every matcher it names must match.
#[derive(Debug)]
pub struct Allow {
    rule: Option<String>,
    path: Option<GlobMatcher>,
    secret_sha256: Option<String>,
    fingerprint: Option<String>,
    /// Why this is allowed (required).
    #[allow(dead_code, reason = "required and checked non-empty at load; read by no report yet")]
    pub reason: String,
}

impl Allow {
    fn matches(&self, f: &Finding) -> bool {
        self.rule.as_ref().is_none_or(|r| *r == f.rule_id)
            && self.path.as_ref().is_none_or(|g| f.path.as_deref().is_some_and(|p| g.is_match(p)))
            && self
                .secret_sha256
                .as_ref()
                .is_none_or(|h| h.eq_ignore_ascii_case(&f.secret.sha256()))
            && self.fingerprint.as_ref().is_none_or(|fp| *fp == f.fingerprint())
    }

    /// The kind of matcher, for suppression counts.
    fn kind(&self) -> &'static str {
        if self.fingerprint.is_some() {
            "allowlist:fingerprint"
        } else if self.secret_sha256.is_some() {
            "allowlist:secret"
        } else if self.path.is_some() {
            "allowlist:path"
        } else {
            "allowlist:rule"
        }
    }
}

/// A parsed `.strata.toml`.
#[derive(Debug, Default)]
pub struct Allowlist {
    entries: Vec<Allow>,
}

impl Allowlist {
    /// Reads an allowlist file.
    ///
    /// # Errors
    /// Unreadable file, bad TOML, an entry without a matcher or reason, a bad glob.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|err| Error::Read { file: file.clone(), err })?;
        let invalid = |reason: String| Error::Invalid { file: file.clone(), reason };
        let parsed: ConfigFile = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let mut entries = Vec::new();
        for (i, a) in parsed.allow.into_iter().enumerate() {
            if a.reason.trim().is_empty() {
                return Err(invalid(format!("allow entry {}: reason must not be empty", i + 1)));
            }
            if a.rule.is_none()
                && a.path.is_none()
                && a.secret_sha256.is_none()
                && a.fingerprint.is_none()
            {
                return Err(invalid(format!(
                    "allow entry {}: needs rule, path, secret_sha256 or fingerprint",
                    i + 1
                )));
            }
            let path = match &a.path {
                Some(p) => Some(
                    Glob::new(p)
                        .map_err(|e| invalid(format!("allow entry {}: bad glob: {e}", i + 1)))?
                        .compile_matcher(),
                ),
                None => None,
            };
            entries.push(Allow {
                rule: a.rule,
                path,
                secret_sha256: a.secret_sha256,
                fingerprint: a.fingerprint,
                reason: a.reason,
            });
        }
        Ok(Allowlist { entries })
    }

    /// The suppression kind of the first entry matching `f`, if any.
    pub fn suppresses(&self, f: &Finding) -> Option<&'static str> {
        self.entries.iter().find(|a| a.matches(f)).map(Allow::kind)
    }
}

/// Fingerprints from a previous JSON report.
#[derive(Debug, Default)]
pub struct Baseline {
    fingerprints: HashSet<String>,
}

impl Baseline {
    /// Reads a JSON report (or any JSON with `findings[].fingerprint`).
    ///
    /// # Errors
    /// Unreadable file or JSON without a findings array.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|err| Error::Read { file: file.clone(), err })?;
        let doc: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid { file: file.clone(), reason: format!("not JSON: {e}") })?;
        let findings =
            doc.get("findings").and_then(|f| f.as_array()).ok_or_else(|| Error::Invalid {
                file: file.clone(),
                reason: "no findings array: expected a strata JSON report".into(),
            })?;
        let fingerprints = findings
            .iter()
            .filter_map(|f| f.get("fingerprint").and_then(|v| v.as_str()).map(str::to_owned))
            .collect();
        Ok(Baseline { fingerprints })
    }

    /// True when the finding was in the baseline.
    pub fn contains(&self, f: &Finding) -> bool {
        self.fingerprints.contains(&f.fingerprint())
    }
}
