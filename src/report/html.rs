//! The HTML incident report: one self-contained file (no network, no external script, font or
//! stylesheet) with, per image, a header, a layer timeline that shows where each secret was added
//! and which later layer deleted or overwrote it, the config findings, a findings table that sorts
//! and filters, and a detail panel with the `strata extract` command that recovers the file and,
//! for a Kubernetes inventory, the workloads that run the image.
//!
//! Safety: everything taken from the image (paths, instructions, tags) travels only inside one
//! JSON data block, whose `<`, `>` and `&` are written as `\u003c`-style escapes so no image text
//! can close the block; the page's script builds every element with `textContent`, never markup.
//! Secrets are redacted exactly as in the other formats unless `--show-secrets` is given.

use std::io::{self, Write};

use serde::Serialize;

use super::{RenderOptions, Report, shown_secret};
use crate::diagnostics::Diagnostic;
use crate::finding::Finding;
use crate::timeline::ImageRecord;

const STYLE: &str = include_str!("html_assets/report.css");
const SCRIPT: &str = include_str!("html_assets/report.js");

#[derive(Serialize)]
struct Page<'a> {
    tool_version: &'static str,
    scanned_at: String,
    finished_at: String,
    command: String,
    show_secrets: bool,
    fail_on: &'static str,
    images: Vec<ImageView<'a>>,
    findings: Vec<FindingView<'a>>,
    suppressed: &'a std::collections::BTreeMap<String, u64>,
    diagnostics: &'a [Diagnostic],
}

#[derive(Serialize)]
struct ImageView<'a> {
    #[serde(flatten)]
    record: &'a ImageRecord,
    total_size: u64,
}

#[derive(Serialize)]
struct FindingView<'a> {
    id: usize,
    image: usize,
    rule_id: &'a str,
    rule_name: &'a str,
    severity: &'static str,
    rule_severity: &'static str,
    detector: String,
    layer_index: Option<usize>,
    layer_digest: Option<&'a str>,
    path: Option<String>,
    inner_path: Option<String>,
    line: Option<u64>,
    status: &'static str,
    removed_in_layer: Option<usize>,
    created_by: Option<&'a str>,
    location: Option<String>,
    shown: String,
    secret_sha256: String,
    validation: Option<&'a str>,
    context: Option<&'static str>,
    fingerprint: String,
    extract_command: Option<String>,
    /// The Kubernetes containers that run the image (`--k8s-pods`).
    workloads: &'a [crate::finding::Workload],
}

/// Quotes a word for a POSIX shell, so a copied command is exactly one argument per word.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The `strata extract` command that recovers the file a finding is in, or
/// the archive member when `extract --inner` can read it back.
fn extract_command(f: &Finding) -> Option<String> {
    let (layer, path) = (f.layer_index?, f.path.as_deref()?);
    let member = f.inner_path.as_deref().filter(|i| member_extractable(i));
    let file = member.unwrap_or(path);
    let name = file.rsplit(['/', '!']).next().filter(|n| !n.is_empty()).unwrap_or("recovered");
    let inner = member.map(|m| format!(" --inner {}", shell_quote(m))).unwrap_or_default();
    Some(format!(
        "strata extract {} --layer {layer} {}{inner} -o {}",
        shell_quote(&f.target),
        shell_quote(path),
        shell_quote(&format!("{name}.layer{layer}"))
    ))
}

/// Whether an inner path names an archive member (which `extract --inner` writes), not a
/// gzip header field (`<gzip member 1 header: comment>`) or a git blob (`<commit>:<path>`,
/// or the blob's id), which only the whole file holds.
fn member_extractable(inner: &str) -> bool {
    let object = inner.split(':').next().unwrap_or(inner);
    let git = matches!(object.len(), 40 | 64) && object.bytes().all(|b| b.is_ascii_hexdigit());
    !inner.starts_with('<') && !git
}

fn view<'a>(i: usize, f: &'a Finding, report: &Report, show: bool) -> FindingView<'a> {
    let redact = |t: &Option<String>| t.as_deref().map(|t| report.redact(t).into_owned());
    let image = report.image_of(f).unwrap_or(usize::MAX);
    FindingView {
        id: i,
        image,
        rule_id: &f.rule_id,
        rule_name: &f.rule_name,
        severity: f.severity.as_str(),
        rule_severity: f.rule_severity.as_str(),
        detector: format!("{:?}", f.detector).to_lowercase(),
        layer_index: f.layer_index,
        layer_digest: f.layer_digest.as_deref(),
        path: redact(&f.path),
        inner_path: redact(&f.inner_path),
        line: f.line,
        status: f.status.as_str(),
        removed_in_layer: f.removed_in_layer,
        created_by: f.created_by.as_deref(),
        location: redact(&f.location),
        shown: shown_secret(f, show),
        secret_sha256: f.secret.sha256(),
        validation: f.validation.as_deref(),
        context: f.context.map(|c| c.as_str()),
        fingerprint: f.fingerprint(),
        extract_command: extract_command(f).map(|c| report.redact(&c).into_owned()),
        workloads: &f.workloads,
    }
}

/// JSON safe to place inside a `<script>` element: no `<`, `>` or `&` survives, and the line
/// separators JavaScript once treated as newlines are escaped too.
pub fn script_safe_json(value: &impl Serialize) -> serde_json::Result<String> {
    let raw = serde_json::to_string(value)?;
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Writes the HTML report.
///
/// # Errors
/// When writing fails.
pub fn write(report: &Report, opts: RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let page = Page {
        tool_version: env!("CARGO_PKG_VERSION"),
        scanned_at: super::gitlab::utc_timestamp(opts.started_at),
        finished_at: super::gitlab::utc_timestamp(opts.finished_at),
        command: report.redact(&opts.command).into_owned(),
        show_secrets: opts.show_secrets,
        fail_on: opts.fail_on.as_str(),
        images: report
            .images
            .iter()
            .map(|record| ImageView {
                record,
                total_size: record.layers.iter().map(|l| l.size).sum(),
            })
            .collect(),
        findings: report
            .findings
            .iter()
            .enumerate()
            .map(|(i, f)| view(i, f, report, opts.show_secrets))
            .collect(),
        suppressed: &report.suppressed,
        diagnostics: &report.diagnostics,
    };
    let data = script_safe_json(&page).map_err(io::Error::other)?;
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>strata incident report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <header class=\"top\"><h1>strata incident report</h1><p id=\"run\"></p></header>\n\
         <noscript><p class=\"warn\">This report draws its timeline and table with JavaScript; \
         the raw data is in the <code>strata-data</code> block of this file.</p></noscript>\n\
         <main id=\"app\"></main>\n\
         <script type=\"application/json\" id=\"strata-data\">{data}</script>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_block_cannot_be_closed_by_data() {
        let s = script_safe_json(&"</script><img src=x onerror=alert(1)>&\u{2028}").unwrap();
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "</script><img src=x onerror=alert(1)>&\u{2028}");
    }

    #[test]
    fn shell_quoting_keeps_one_word() {
        assert_eq!(shell_quote("/app/.env"), "/app/.env");
        assert_eq!(shell_quote("a b'c"), r"'a b'\''c'");
        assert_eq!(shell_quote(""), "''");
    }
}
