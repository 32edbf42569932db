//! SARIF 2.1.0: one run, the reported rules with full descriptions and
//! help, one result per finding located by image path (with the image,
//! digest and layer as a logical location), and partial fingerprints. With
//! a Kubernetes inventory, a result also names the workloads that run its
//! image (`properties.workloads`, and the first few in the message).
//! The run's one invocation says whether the scan was complete
//! (`executionSuccessful` is false after any `error` diagnostic: part of
//! the input was not read) and carries every diagnostic as a
//! `toolExecutionNotifications` entry.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{Value, json};

use super::{RenderOptions, Report, run_by, shown_secret};
use crate::diagnostics::Level;
use crate::finding::{Finding, Severity};

/// Workloads named in a result's message; `properties.workloads` lists all.
const WORKLOADS_IN_MESSAGE: usize = 5;

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score for a severity.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

/// A relative URI for an image path: percent-encode what URIs forbid.
fn uri_for(path: &str) -> String {
    let mut out = String::new();
    for b in path.trim_start_matches('/').bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() { "image".into() } else { out }
}

fn location(f: &Finding, report: &Report) -> Value {
    let (uri, line) = match (&f.path, &f.location) {
        (Some(p), _) => (uri_for(&report.redact(p)), f.line.unwrap_or(1).max(1)),
        (None, Some(loc)) => (format!("image-config/{}", uri_for(&report.redact(loc))), 1),
        _ => ("image".into(), 1),
    };
    let mut logical = vec![json!({
        "name": f.image_digest,
        "fullyQualifiedName": format!("{}@{}", f.target, f.image_digest),
        "kind": "image",
    })];
    if let (Some(i), Some(d)) = (f.layer_index, &f.layer_digest) {
        logical
            .push(json!({"name": format!("layer {i}"), "fullyQualifiedName": d, "kind": "layer"}));
    }
    json!({
        "physicalLocation": {
            "artifactLocation": {"uri": uri},
            "region": {"startLine": line},
        },
        "logicalLocations": logical,
    })
}

fn message(f: &Finding, show: bool, report: &Report) -> String {
    let place = super::place(f).unwrap_or_else(|| "the image".into());
    let place = report.redact(&place);
    let layer = f.layer_index.map(|i| format!(" in layer {i}")).unwrap_or_default();
    let status = match f.removed_in_layer {
        Some(n) => format!("{} in layer {n}", f.status.as_str()),
        None => f.status.as_str().to_owned(),
    };
    let runs = match f.workloads.is_empty() {
        true => String::new(),
        false => format!("; run by {}", run_by(f, WORKLOADS_IN_MESSAGE)),
    };
    format!(
        "{} ({}) at {place}{layer} of {}: {status}{runs}",
        f.rule_name,
        shown_secret(f, show),
        f.target
    )
}

/// Writes the SARIF log.
///
/// # Errors
/// When writing fails.
pub fn write(report: &Report, opts: RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let mut used: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &report.findings {
        let next = used.len();
        used.entry(f.rule_id.as_str()).or_insert(next);
    }
    let mut rules: Vec<(usize, Value)> = Vec::new();
    for (id, idx) in &used {
        let Some(r) = report.rules.iter().find(|r| r.id == *id) else { continue };
        let description =
            if r.description.is_empty() { r.name.clone() } else { r.description.clone() };
        let refs = r.references.join("\n");
        let help = format!(
            "{description}\n\nRotate or revoke the credential, then rebuild the image so that no layer \
             carries it: deleting a file in a later layer does not remove it from earlier layers.{}",
            if refs.is_empty() { String::new() } else { format!("\n\nReferences:\n{refs}") }
        );
        rules.push((
            *idx,
            json!({
                "id": r.id,
                "name": pascal(&r.id),
                "shortDescription": {"text": r.name},
                "fullDescription": {"text": description},
                "help": {"text": help, "markdown": help},
                "defaultConfiguration": {"level": level(r.severity)},
                "properties": {
                    "tags": ["security", "secret"],
                    "precision": "high",
                    "security-severity": security_severity(r.severity),
                },
            }),
        ));
    }
    rules.sort_by_key(|(i, _)| *i);
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut result = json!({
                "ruleId": f.rule_id,
                "ruleIndex": used[f.rule_id.as_str()],
                "level": level(f.severity),
                "message": {"text": message(f, opts.show_secrets, report)},
                "locations": [location(f, report)],
                "partialFingerprints": {"strataFingerprint/v1": f.fingerprint()},
                "properties": {
                    "status": f.status.as_str(),
                    "removedInLayer": f.removed_in_layer,
                    "layerIndex": f.layer_index,
                    "createdBy": f.created_by.as_deref(),
                    "secretSha256": f.secret.sha256(),
                },
            });
            // Only with --k8s-pods: the containers that run the image.
            if !f.workloads.is_empty() {
                result["properties"]["workloads"] = json!(f.workloads);
            }
            // Only with --verify: the live check's outcome.
            if let Some(v) = &f.verification {
                result["properties"]["verification"] = json!(v);
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "strata",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/strata-scanner/strata",
                "rules": rules.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
            }},
            "results": results,
            "invocations": [invocation(report)],
            "columnKind": "utf16CodeUnits",
            "properties": {"suppressed": report.suppressed},
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

/// The run's invocation: successful unless an `error` diagnostic says part
/// of the input was not read (the exit code is then 2), with every
/// diagnostic as a notification, in the report's order.
fn invocation(report: &Report) -> Value {
    let notifications: Vec<Value> = report
        .diagnostics
        .iter()
        .map(|d| {
            let level = match d.level {
                Level::Note => "note",
                Level::Warning => "warning",
                Level::Error => "error",
            };
            json!({"level": level, "message": {"text": d.message}})
        })
        .collect();
    json!({
        "executionSuccessful": !report.diagnostics.iter().any(|d| d.level == Level::Error),
        "toolExecutionNotifications": notifications,
    })
}

/// `github-pat-classic` → `GithubPatClassic` (SARIF rule names are identifiers).
fn pascal(id: &str) -> String {
    id.split('-')
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}
