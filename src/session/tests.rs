//! What a run promises on top of the pipeline, on generated images: every
//! filter (status, baseline, allowlist) removes findings and counts them by
//! reason; findings come out in report order; instructions, tags and
//! diagnostics are redacted unless `show_secrets`; a target that cannot be
//! opened is an error and the others are still scanned; the per-run budget
//! keeps the most severe findings.

use std::path::Path;

use super::*;
use crate::finding::Severity;
use crate::pipeline::tests::{layered_spec, scanner, token, write};
use crate::registry::{Registries, Settings};

fn options() -> ScanOptions {
    ScanOptions {
        platform: None,
        statuses: Vec::new(),
        allowlist: Allowlist::default(),
        baseline: None,
        no_path_context: false,
        progress: Progress::new(true),
        show_secrets: false,
        cache_dir: None,
        sources: crate::sources::SourceOptions {
            insecure: false,
            storage_root: None,
            read: Default::default(),
        },
        registries: Registries::new(Settings { insecure: false }),
        k8s: None,
    }
}

fn run_on(targets: &[&Path], options: &ScanOptions) -> (Report, Diagnostics) {
    let diag = Diagnostics::new(false);
    let targets: Vec<String> = targets.iter().map(|p| p.display().to_string()).collect();
    let report = run(&targets, &scanner(), options, &diag).unwrap();
    (report, diag)
}

fn places(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|f| f.path.clone().or_else(|| f.location.clone()).unwrap_or_default())
        .collect()
}

#[test]
fn findings_come_sorted_with_image_records() {
    let tmp = tempfile::tempdir().unwrap();
    let image = write(&layered_spec(), tmp.path());
    let (report, diag) = run_on(&[&image], &options());
    assert!(!diag.has_errors());
    assert_eq!(
        places(&report),
        ["/app/.env", "/app/keep.txt", "/usr/share/doc/tool/README", "config.env"]
    );
    assert_eq!(report.images.len(), 1);
    assert_eq!(report.images[0].layers.len(), 3);
    assert!(report.rules.iter().any(|r| r.id == "github-pat-classic"));
    assert!(report.suppressed.contains_key("placeholders"), "always counted: {report:?}");
}

#[test]
fn filters_remove_and_count_by_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let image = write(&layered_spec(), tmp.path());

    let only_present = ScanOptions { statuses: vec![Status::Present], ..options() };
    let (report, _) = run_on(&[&image], &only_present);
    assert_eq!(places(&report), ["/usr/share/doc/tool/README"]);
    assert_eq!(report.suppressed.get("status filter"), Some(&3));

    // A baseline of the first run's deleted finding, by fingerprint.
    let (all, _) = run_on(&[&image], &options());
    let baseline = tmp.path().join("baseline.json");
    let fp = all.findings[0].fingerprint();
    std::fs::write(&baseline, format!(r#"{{"findings": [{{"fingerprint": "{fp}"}}]}}"#)).unwrap();
    let allow = tmp.path().join("allow.toml");
    std::fs::write(&allow, "[[allow]]\npath = \"/usr/share/**\"\nreason = \"docs\"\n").unwrap();
    let filtered = ScanOptions {
        baseline: Some(Baseline::load(&baseline).unwrap()),
        allowlist: Allowlist::load(&allow).unwrap(),
        ..options()
    };
    let (report, _) = run_on(&[&image], &filtered);
    assert_eq!(places(&report), ["/app/keep.txt", "config.env"]);
    assert_eq!(report.suppressed.get("baseline"), Some(&1));
    assert_eq!(report.suppressed.get("allowlist:path"), Some(&1));
}

#[test]
fn instructions_tags_and_diagnostics_are_redacted_unless_shown() {
    let secret = token("arg");
    let mut spec = layered_spec();
    spec.layers[2].created_by = format!("RUN curl -H 'token {secret}' https://example.test/x");
    spec.repo_tags = vec![format!("example.test/app:{}", &secret[..12])];
    let tmp = tempfile::tempdir().unwrap();
    let image = write(&spec, tmp.path());
    let (report, diag) = run_on(&[&image], &options());
    diag.warn(format!("a note naming {secret}"));
    let from_history: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.location.as_deref().is_some_and(|l| l.starts_with("history")))
        .collect();
    assert_eq!(from_history.len(), 1, "the instruction's token is a config finding");
    let cb = from_history[0].created_by.as_deref().unwrap();
    assert!(cb.starts_with("RUN curl -H 'token ghp_") && !cb.contains(&secret), "{cb}");
    let layer_cb = report.images[0].layers[2].created_by.as_deref().unwrap();
    assert_eq!(layer_cb, cb);
    assert!(report.redact(&format!("/tmp/{secret}")).contains("ghp_…"));

    let shown = ScanOptions { show_secrets: true, ..options() };
    let (report, _) = run_on(&[&image], &shown);
    let layer_cb = report.images[0].layers[2].created_by.as_deref().unwrap();
    assert!(layer_cb.contains(&secret), "--show-secrets keeps instructions whole");
    assert_eq!(report.redact(&secret), secret, "and paths");
}

#[test]
fn an_unreadable_target_is_an_error_and_the_rest_is_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    let image = write(&layered_spec(), tmp.path());
    let missing = tmp.path().join("no-such-image.tar");
    let (report, diag) = run_on(&[&missing, &image], &options());
    assert!(diag.has_errors());
    let errors: Vec<&str> = report
        .diagnostics
        .iter()
        .filter(|d| d.level == crate::diagnostics::Level::Error)
        .map(|d| d.message.as_str())
        .collect();
    assert!(errors.iter().any(|m| m.contains("no-such-image.tar")), "{errors:?}");
    assert_eq!(report.images.len(), 1);
    assert_eq!(report.findings.len(), 4);
}

#[test]
fn run_budget_keeps_the_most_severe() {
    let tmp = tempfile::tempdir().unwrap();
    let image = write(&layered_spec(), tmp.path());
    let scanner = scanner();
    let (report, _) = run_on(&[&image], &options());
    let mut findings = report.findings;
    let diag = Diagnostics::new(false);
    within_run_budget(&mut findings, 2, &scanner, &diag);
    assert_eq!(findings.len(), 2);
    assert!(findings.iter().all(|f| f.severity == Severity::Critical));
    assert_eq!(scanner.suppressed.over_run_budget.load(Ordering::Relaxed), 2);
    let notes = diag.snapshot();
    assert!(notes[0].message.starts_with("2 findings of lowest severity not listed"), "{notes:?}");
    within_run_budget(&mut findings, 2, &scanner, &diag);
    assert_eq!(diag.snapshot().len(), 1, "within budget: nothing to say");
}

#[test]
fn thread_requests_are_clamped_to_the_cores() {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    assert_eq!(clamp_threads(None), 0);
    assert_eq!(clamp_threads(Some(0)), 0);
    assert_eq!(clamp_threads(Some(1)), 1);
    assert_eq!(clamp_threads(Some(usize::MAX)), cores);
}
