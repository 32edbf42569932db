//! The JSON contract (DESIGN.md, docs/json-contract.md) inside the JSON
//! envelope. Fields may be added, never changed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::{RenderOptions, Report};
use crate::diagnostics::Diagnostic;
use crate::finding::{Detector, Finding, Severity, Status};
use crate::timeline::ImageRecord;

/// The scan report's fields, inside the envelope.
#[derive(Serialize)]
struct Document<'a> {
    images: &'a [ImageRecord],
    findings: Vec<FindingJson<'a>>,
    summary: Summary,
    diagnostics: &'a [Diagnostic],
}

#[derive(Serialize)]
struct Summary {
    total: usize,
    by_severity: BTreeMap<&'static str, usize>,
    by_status: BTreeMap<&'static str, usize>,
    suppressed: BTreeMap<String, u64>,
}

/// One finding as the contract spells it.
#[derive(Serialize)]
struct FindingJson<'a> {
    rule_id: &'a str,
    rule_name: &'a str,
    severity: Severity,
    detector: Detector,
    target: &'a str,
    image_digest: &'a str,
    platform: Option<&'a str>,
    layer_index: Option<usize>,
    layer_digest: Option<&'a str>,
    path: Option<Cow<'a, str>>,
    inner_path: Option<Cow<'a, str>>,
    line: Option<u64>,
    status: Status,
    removed_in_layer: Option<usize>,
    created_by: Option<&'a str>,
    location: Option<Cow<'a, str>>,
    redacted: String,
    secret_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    validation: Option<&'a str>,
    fingerprint: String,
    context: Option<&'static str>,
    rule_severity: Severity,
    decoding: Option<&'a [String]>,
    /// Kubernetes containers running the image (only with `--k8s-pods`).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    workloads: &'a [crate::finding::Workload],
    /// Only with `--verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<&'a crate::finding::verification::Verification>,
}

impl<'a> FindingJson<'a> {
    fn new(f: &'a Finding, show: bool, report: &Report) -> Self {
        let redact = |t: &'a Option<String>| t.as_deref().map(|t| report.redact(t));
        FindingJson {
            rule_id: &f.rule_id,
            rule_name: &f.rule_name,
            severity: f.severity,
            detector: f.detector,
            target: &f.target,
            image_digest: &f.image_digest,
            platform: f.platform.as_deref(),
            layer_index: f.layer_index,
            layer_digest: f.layer_digest.as_deref(),
            path: redact(&f.path),
            inner_path: redact(&f.inner_path),
            line: f.line,
            status: f.status,
            removed_in_layer: f.removed_in_layer,
            created_by: f.created_by.as_deref(),
            location: redact(&f.location),
            redacted: f.secret.redacted(),
            secret_sha256: f.secret.sha256(),
            secret: show.then(|| String::from_utf8_lossy(f.secret.expose()).into_owned()),
            validation: f.validation.as_deref(),
            fingerprint: f.fingerprint(),
            context: f.context.map(|c| c.as_str()),
            rule_severity: f.rule_severity,
            decoding: (!f.decoding.is_empty()).then_some(f.decoding.as_slice()),
            workloads: &f.workloads,
            verification: f.verification.as_ref(),
        }
    }
}

/// Writes the report as pretty JSON.
///
/// # Errors
/// When writing fails.
pub fn write(report: &Report, opts: RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let doc = Document {
        images: &report.images,
        findings: report
            .findings
            .iter()
            .map(|f| FindingJson::new(f, opts.show_secrets, report))
            .collect(),
        summary: Summary {
            total: report.findings.len(),
            by_severity: report.by_severity().into_iter().map(|(s, n)| (s.as_str(), n)).collect(),
            by_status: report.by_status().into_iter().map(|(s, n)| (s.as_str(), n)).collect(),
            suppressed: report.suppressed.clone(),
        },
        diagnostics: &report.diagnostics,
    };
    super::envelope::write(out, &doc)
}
