//! GitLab's secret-detection report (schema 15.2.1, `secret-detection-report-format.json` of
//! GitLab's security-report-schemas): one vulnerability per finding.
//!
//! The format was made for repositories, so an image maps onto it like this: `location.file` is
//! the image path (with `!inner` for nested archives, or `image-config/<location>` for config
//! findings), `location.commit.sha` is the layer's blob digest (the "commit" that introduced the
//! secret; the image digest for config findings), `location.commit.message` the instruction that
//! created the layer. Status, removal layer and fingerprint go in `details`, and so do the
//! Kubernetes workloads (`namespace/pod/container`) that run the image when `--k8s-pods` named
//! them. The secret itself is never put in `raw_source_code_extract`; `description` carries the
//! redacted form.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::{RenderOptions, Report, run_by, shown_secret};
use crate::diagnostics::Level;
use crate::finding::{Finding, Severity};

/// The schema version the report conforms to.
pub const SCHEMA_VERSION: &str = "15.2.1";

/// Workloads named in a vulnerability's details before the rest are counted.
const WORKLOADS_SHOWN: usize = 100;

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
        Severity::Info => "Info",
    }
}

/// A UUID-shaped id, stable for the same finding in the same image layer.
fn vulnerability_id(f: &Finding) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        f.fingerprint().as_str(),
        &f.target,
        &f.image_digest,
        f.layer_digest.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let x = hex::encode(&h.finalize()[..16]);
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// Where the finding sits, as a file name GitLab can show (redacted like every printed path).
pub fn place(report: &Report, f: &Finding) -> String {
    let text = match (&f.path, &f.inner_path, &f.location) {
        (Some(p), Some(i), _) => format!("{p}!{i}"),
        (Some(p), None, _) => p.clone(),
        (None, _, Some(l)) => format!("image-config/{l}"),
        _ => "image".into(),
    };
    report.redact(&text).into_owned()
}

fn text(name: &str, value: impl Into<String>) -> (String, Value) {
    let key = name.to_lowercase().replace(' ', "_");
    (key, json!({"name": name, "type": "text", "value": value.into()}))
}

fn vulnerability(report: &Report, f: &Finding, show: bool) -> Value {
    let status = match f.removed_in_layer {
        Some(n) => format!("{} in layer {n}", f.status.as_str()),
        None => f.status.as_str().to_owned(),
    };
    let layer = f.layer_index.map_or_else(|| "config".to_owned(), |i| format!("layer {i}"));
    let runs = match f.workloads.is_empty() {
        true => String::new(),
        false => format!(" Run by {}.", run_by(f, 5)),
    };
    let description = format!(
        "{} ({}) in {} of image {} ({layer}); status: {status}.{runs} Rotate the credential, \
         then rebuild the image so that no layer carries it.",
        f.rule_name,
        shown_secret(f, show),
        place(report, f),
        f.target,
    );
    let mut details = serde_json::Map::new();
    for (k, v) in [
        text("Image", format!("{}@{}", f.target, f.image_digest)),
        text("Layer", layer.clone()),
        text("Status", status),
        text("Fingerprint", f.fingerprint()),
        text("Secret SHA-256", f.secret.sha256()),
    ] {
        details.insert(k, v);
    }
    if let Some(c) = &f.created_by {
        let (k, v) = text("Instruction", c.to_string());
        details.insert(k, v);
    }
    if let Some(v) = &f.validation {
        let (k, v) = text("Validation", v.clone());
        details.insert(k, v);
    }
    if !f.workloads.is_empty() {
        let (k, v) = text("Workloads", run_by(f, WORKLOADS_SHOWN));
        details.insert(k, v);
    }
    let mut commit = serde_json::Map::new();
    commit.insert("sha".into(), json!(f.layer_digest.as_deref().unwrap_or(&f.image_digest)));
    if let Some(c) = &f.created_by {
        commit.insert("message".into(), json!(c.as_ref()));
    }
    let mut location = serde_json::Map::new();
    location.insert("file".into(), json!(place(report, f)));
    location.insert("commit".into(), Value::Object(commit));
    if let Some(line) = f.line {
        location.insert("start_line".into(), json!(line));
        location.insert("end_line".into(), json!(line));
    }
    json!({
        "id": vulnerability_id(f),
        "name": truncate_chars(&f.rule_name, 255),
        "description": description,
        "severity": severity(f.severity),
        "solution": "Revoke or rotate the credential, remove it from the build (use build secrets, \
                     not files or build args), and rebuild the image from scratch: deleting a file \
                     in a later layer does not remove it from earlier layers.",
        "identifiers": [{
            "type": "strata_rule_id",
            "name": format!("strata rule {}", f.rule_id),
            "value": f.rule_id,
        }],
        "location": Value::Object(location),
        "details": Value::Object(details),
    })
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// `YYYY-MM-DDThh:mm:ss` in UTC for seconds since the Unix epoch (the schema's pattern).
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Writes the GitLab secret-detection report.
///
/// # Errors
/// When writing fails.
pub fn write(report: &Report, opts: RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let tool = json!({
        "id": "strata",
        "name": "strata",
        "version": env!("CARGO_PKG_VERSION"),
        "vendor": {"name": "strata"},
    });
    let failed = report.diagnostics.iter().any(|d| d.level == Level::Error);
    let messages: Vec<Value> = report
        .diagnostics
        .iter()
        .filter(|d| !d.message.is_empty())
        .map(|d| {
            let level = match d.level {
                Level::Note => "info",
                Level::Warning => "warn",
                Level::Error => "fatal",
            };
            json!({"level": level, "value": d.message})
        })
        .collect();
    let doc = json!({
        "version": SCHEMA_VERSION,
        "schema": "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/v15.2.1/dist/secret-detection-report-format.json",
        "scan": {
            "analyzer": tool,
            "scanner": tool,
            "type": "secret_detection",
            "start_time": utc_timestamp(opts.started_at),
            "end_time": utc_timestamp(opts.finished_at),
            "status": if failed { "failure" } else { "success" },
            "messages": messages,
        },
        "vulnerabilities": report
            .findings
            .iter()
            .map(|f| vulnerability(report, f, opts.show_secrets))
            .collect::<Vec<_>>(),
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_the_calendar() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (1_796_532_545, "2026-12-06T04:49:05"),
            (4_107_542_399, "2100-02-28T23:59:59"),
        ] {
            assert_eq!(utc_timestamp(secs), want, "{secs}");
        }
    }
}
