//! Everything strata prints: the scan report in each [`Format`] (human
//! text, the JSON contract, SARIF 2.1.0, HTML, GitLab, JUnit), the layer
//! timelines of `strata layers` ([`layers`]) and the rule list of
//! `strata signatures` ([`rules`]). Printers write to a `Write` and see
//! findings, image records and rule descriptions only, never rules'
//! regexes or tar. Secrets are redacted unless `show_secrets`.
//!
//! The policies every format shares are written once here: the failure
//! gate ([`gate`]), the JSON envelope ([`envelope`]), the finding order
//! ([`order`]), the redaction of instructions and tags ([`redaction`]) and
//! which findings belong to an image ([`Report::findings_in`]).

pub mod envelope;
pub mod gate;
pub mod gitlab;
pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod layers;
pub mod order;
pub mod redaction;
pub mod rules;
pub mod sarif;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::diagnostics::Diagnostic;
use crate::finding::{Finding, Severity, Status};
use crate::scan::RuleInfo;
use crate::timeline::ImageRecord;

/// Output format of `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Grouped by image, layer and path, for people.
    Human,
    /// The JSON contract of DESIGN.md.
    Json,
    /// SARIF 2.1.0, for code scanning dashboards.
    Sarif,
    /// A self-contained HTML incident report with the layer timeline.
    Html,
    /// GitLab's secret-detection report (schema 15.2.1).
    Gitlab,
    /// JUnit XML: one test case per finding, failing at or above `--fail-on`.
    Junit,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 6] =
        [Format::Human, Format::Json, Format::Sarif, Format::Html, Format::Gitlab, Format::Junit];
}

/// Everything a report shows.
#[derive(Debug)]
pub struct Report {
    /// Scanned images.
    pub images: Vec<ImageRecord>,
    /// Findings after filters, baseline and allowlist.
    pub findings: Vec<Finding>,
    /// Why candidates or findings were left out, with counts.
    pub suppressed: BTreeMap<String, u64>,
    /// Warnings and errors met.
    pub diagnostics: Vec<Diagnostic>,
    /// Every rule the scanner knows (SARIF lists the ones reported).
    pub rules: Vec<RuleInfo>,
    /// Applied to every path, member name and location a report prints
    /// (empty with `--show-secrets`). Instructions, tags and diagnostics
    /// are redacted already.
    pub redactor: crate::redact::TextRedactor,
}

/// How to render.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Print raw secrets.
    pub show_secrets: bool,
    /// Use ANSI colour (human format only).
    pub color: bool,
    /// List `info` findings one by one (human format only; the others
    /// always list every finding). Without it they are counted per image.
    pub show_info: bool,
    /// The `--fail-on` gate (JUnit fails test cases at or above it; HTML shows it).
    pub fail_on: Severity,
    /// When the scan started, in seconds since the Unix epoch (GitLab, HTML).
    pub started_at: u64,
    /// When the scan finished, in seconds since the Unix epoch.
    pub finished_at: u64,
    /// How the scan was run, for the HTML header: the command line, secrets redacted.
    pub command: String,
}

impl RenderOptions {
    /// Options for a report rendered now, with no run details (tests, `merge`).
    pub fn new(show_secrets: bool, color: bool) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        RenderOptions {
            show_secrets,
            color,
            show_info: true,
            fail_on: Severity::Low,
            started_at: now,
            finished_at: now,
            command: String::new(),
        }
    }
}

impl Report {
    /// Image-derived text (a path, a member name, a location) as the report may print it.
    pub fn redact<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        self.redactor.apply(text)
    }

    /// The findings of one scanned image (same target, same manifest digest),
    /// in report order.
    pub fn findings_in<'r>(
        &'r self,
        image: &'r ImageRecord,
    ) -> impl Iterator<Item = &'r Finding> + 'r {
        self.findings.iter().filter(move |f| belongs(f, image))
    }

    /// The position in `images` of the image a finding was found in.
    pub fn image_of(&self, f: &Finding) -> Option<usize> {
        self.images.iter().position(|image| belongs(f, image))
    }

    /// Findings per severity, most severe first, zeros included.
    pub fn by_severity(&self) -> Vec<(Severity, usize)> {
        Severity::ALL
            .iter()
            .map(|s| (*s, self.findings.iter().filter(|f| f.severity == *s).count()))
            .collect()
    }

    /// Findings per status.
    pub fn by_status(&self) -> Vec<(Status, usize)> {
        [Status::Present, Status::Deleted, Status::Overwritten, Status::Config]
            .iter()
            .map(|s| (*s, self.findings.iter().filter(|f| f.status == *s).count()))
            .collect()
    }

    /// Renders in `format`.
    ///
    /// # Errors
    /// When writing fails.
    pub fn write(
        &self,
        format: Format,
        opts: RenderOptions,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        match format {
            Format::Human => human::write(self, opts, out),
            Format::Json => json::write(self, opts, out),
            Format::Sarif => sarif::write(self, opts, out),
            Format::Html => html::write(self, opts, out),
            Format::Gitlab => gitlab::write(self, opts, out),
            Format::Junit => junit::write(self, opts, out),
        }
    }
}

/// True when `f` was found in `image`: a target can hold several images
/// (an index, a sweep), and one image can be scanned under several targets.
fn belongs(f: &Finding, image: &ImageRecord) -> bool {
    f.target == image.target && f.image_digest == image.digest
}

/// The Kubernetes containers that run a finding's image (`--k8s-pods`), as
/// `namespace/pod/container`: the first `shown` of them, then a count of the
/// rest. Empty when no inventory named the image.
pub fn run_by(f: &Finding, shown: usize) -> String {
    let names: Vec<String> = f
        .workloads
        .iter()
        .take(shown)
        .map(|w| format!("{}/{}/{}", w.namespace, w.pod, w.container))
        .collect();
    match f.workloads.len().saturating_sub(shown) {
        0 => names.join(", "),
        more => format!("{} and {more} more", names.join(", ")),
    }
}

/// Where a finding sits, as the human and SARIF reports name it (before redaction): the
/// path with its archive member, or with the header field that holds the secret
/// (`/app/x (entry name)`), or a config location; `None` for none of these.
pub fn place(f: &Finding) -> Option<String> {
    match (&f.path, &f.inner_path, &f.location) {
        (Some(p), Some(i), _) => Some(format!("{p}!{i}")),
        (Some(p), None, Some(loc)) => Some(format!("{p} ({loc})")),
        (Some(p), None, None) => Some(p.clone()),
        (None, _, Some(loc)) => Some(loc.clone()),
        _ => None,
    }
}

/// The secret as a report may show it: raw with `show_secrets`, else redacted.
pub fn shown_secret(f: &Finding, show: bool) -> String {
    if show { String::from_utf8_lossy(f.secret.expose()).into_owned() } else { f.secret.redacted() }
}
