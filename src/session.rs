//! A scan run: every target, every image in it, then the filters that
//! decide what is reported (status, allowlist, baseline), with counts of
//! what was suppressed and why.

pub mod target;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::allowlist::{Allowlist, Baseline};
use crate::cache::LayerCache;
use crate::diagnostics::Diagnostics;
use crate::finding::{Finding, Status};
use crate::image::{self, PlatformFilter};
use crate::pipeline;
use crate::progress::Progress;
use crate::redact::{Redactor, TextRedactor};
use crate::report::{Report, redaction};
use crate::scan::Scanner;
use crate::scan::content::Limits;
use crate::timeline::ImageRecord;

/// What to scan and what to keep.
#[derive(Debug)]
pub struct ScanOptions {
    /// Only images of this platform.
    pub platform: Option<PlatformFilter>,
    /// Only findings with these statuses (empty: all).
    pub statuses: Vec<Status>,
    /// Suppressions by rule, path, secret or fingerprint.
    pub allowlist: Allowlist,
    /// Suppressions by fingerprint from a previous report.
    pub baseline: Option<Baseline>,
    /// Keep rule severity in documentation, test and third-party paths.
    pub no_path_context: bool,
    /// Progress bars (hidden unless stderr is a terminal).
    pub progress: Progress,
    /// Leave secrets in instructions (`--show-secrets`); otherwise they are redacted.
    pub show_secrets: bool,
    /// Persistent layer cache directory (`--cache-dir`, `--cache`).
    pub cache_dir: Option<std::path::PathBuf>,
    /// How local engines and storage are reached, and how images are read
    /// (diff_id checks).
    pub sources: crate::sources::SourceOptions,
    /// How registries are reached, and the run's connections to them.
    pub registries: crate::registry::Registries,
    /// `--k8s-pods` (and `--k8s-pull-secrets`): images to scan from their
    /// registries, with the workloads that run them.
    pub k8s: Option<(crate::sources::k8s::Inventory, crate::sources::k8s::PullSecrets)>,
}

/// Scans every target. A target that cannot be opened is an error in
/// `diag` and the others are still scanned.
///
/// # Errors
/// None at present; kept fallible for sources that can fail as a whole.
pub fn run(
    targets: &[String],
    scanner: &Scanner,
    options: &ScanOptions,
    diag: &Diagnostics,
) -> anyhow::Result<Report> {
    let limits = Limits::default();
    let cache = LayerCache::new(options.cache_dir.as_deref(), scanner, limits)
        .map_err(|e| anyhow::anyhow!("cannot use cache directory: {e}"))?;
    let mut images = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    // One set of pipeline options for every image of the run, whatever its source.
    let run = pipeline::Options {
        scanner,
        limits,
        use_context: !options.no_path_context,
        cache: &cache,
        progress: &options.progress,
        diag,
    };
    for target in targets {
        if crate::sources::is_streamed(target) {
            let ctx = crate::sources::Context {
                run,
                platform: options.platform.as_ref(),
                options: &options.sources,
            };
            match crate::sources::scan(target, &ctx) {
                Ok(scanned) => {
                    for (img, scan) in scanned {
                        findings.extend(scan.findings);
                        images.push(ImageRecord::scanned(&img, &scan.layers));
                    }
                }
                Err(e) => diag.error(e.to_string()),
            }
            continue;
        }
        let platform = options.platform.as_ref();
        let opened =
            match self::target::open(target, platform, &options.sources, &options.registries, diag)
            {
                Ok(v) => v,
                Err(e) => {
                    diag.error(e.to_string());
                    continue;
                }
            };
        // One image in the whole run meets no layer twice: nothing to remember.
        cache.remember(targets.len() > 1 || opened.len() > 1 || options.k8s.is_some());
        for img in &opened {
            let scan = pipeline::scan_image(img, &run);
            findings.extend(scan.findings);
            within_run_budget(&mut findings, limits.max_findings, scanner, diag);
            images.push(ImageRecord::scanned(img, &scan.layers));
        }
    }
    if let Some((inventory, secrets)) = &options.k8s {
        let mut clients = crate::sources::k8s::Clients::default();
        let settings = options.registries.settings();
        // A tag and a digest (or two tags) of one image are scanned once; the
        // findings of the first scan gain the workloads of the others.
        let mut scanned: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (reference, workloads) in &inventory.images {
            let opened = clients
                .open(reference, secrets, settings)
                .map_err(image::Error::from)
                .and_then(|store| {
                    image::layout::images(
                        reference,
                        store,
                        options.platform.as_ref(),
                        options.sources.read,
                        diag,
                    )
                });
            let opened = match opened {
                Ok(v) => v,
                Err(e) => {
                    diag.error(e.to_string());
                    continue;
                }
            };
            for img in opened {
                if let Some(earlier) = scanned.get(img.digest()) {
                    for &i in earlier {
                        let f: &mut Finding = &mut findings[i];
                        f.workloads.extend(workloads.iter().cloned());
                        f.workloads.sort();
                        f.workloads.dedup();
                    }
                    diag.note(format!(
                        "{reference}: same image as an earlier reference ({}), not scanned again",
                        img.digest()
                    ));
                    continue;
                }
                let scan = pipeline::scan_image(&img, &run);
                let first = findings.len();
                findings.extend(scan.findings.into_iter().map(|mut f| {
                    f.workloads = workloads.clone();
                    f
                }));
                scanned.insert(img.digest().to_owned(), (first..findings.len()).collect());
                images.push(ImageRecord::scanned(&img, &scan.layers));
            }
        }
    }
    let redactor = if options.show_secrets {
        TextRedactor::default()
    } else {
        TextRedactor::new(Redactor::new(findings.iter().map(|f| &f.secret)), diag.scrubber())
    };
    redaction::redact_instructions(&redactor, &mut findings);
    redaction::redact_records(&redactor, &mut images);
    let mut suppressed: BTreeMap<String, u64> = BTreeMap::new();
    suppressed.insert(
        "documented example credentials".into(),
        scanner.suppressed.set_aside.counts().known_examples,
    );
    // Templates, masks and stock words (crates/scan/src/scan/filter.rs gives each one's reason).
    suppressed.insert("placeholders".into(), scanner.placeholders());
    for (key, counter) in [
        (OVER_FILE_BUDGET, &scanner.suppressed.over_file_budget),
        (OVER_RUN_BUDGET, &scanner.suppressed.over_run_budget),
    ] {
        let n = counter.load(Ordering::Relaxed);
        if n > 0 {
            suppressed.insert(key.into(), n);
        }
    }
    findings.retain(|f| {
        let reason = if !options.statuses.is_empty() && !options.statuses.contains(&f.status) {
            Some("status filter")
        } else if options.baseline.as_ref().is_some_and(|b| b.contains(f)) {
            Some("baseline")
        } else {
            options.allowlist.suppresses(f)
        };
        match reason {
            Some(r) => {
                *suppressed.entry(r.to_owned()).or_default() += 1;
                false
            }
            None => true,
        }
    });
    crate::report::order::sort(&mut findings);
    let mut diagnostics = diag.snapshot();
    for d in &mut diagnostics {
        if let Cow::Owned(m) = redactor.apply(&d.message) {
            d.message = m;
        }
    }
    Ok(Report {
        images,
        findings,
        suppressed,
        diagnostics,
        rules: scanner.rules().to_vec(),
        redactor,
    })
}

/// Summary key for findings dropped by the per-rule budget of a file.
pub const OVER_FILE_BUDGET: &str = "over the findings budget per rule and file";
/// Summary key for findings dropped by the per-run budget.
pub const OVER_RUN_BUDGET: &str = "over the findings budget per run";

/// Keeps the run's findings within `max`, most severe first; the rest are
/// counted (the summary reports them) and named in one warning.
fn within_run_budget(
    findings: &mut Vec<Finding>,
    max: usize,
    scanner: &Scanner,
    diag: &Diagnostics,
) {
    if findings.len() <= max {
        return;
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let over = findings.len() - max;
    findings.truncate(max);
    scanner.suppressed.over_run_budget.fetch_add(over as u64, Ordering::Relaxed);
    diag.warn(format!(
        "{over} findings of lowest severity not listed (budget: {max} findings per run)"
    ));
}

/// The worker threads a run uses: `requested` clamped to the machine's
/// available parallelism (`--threads 20000` or `2^64-1` would otherwise
/// spawn that many threads); 0 or none means all cores (rayon's default).
pub fn clamp_threads(requested: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    match requested {
        None | Some(0) => 0,
        Some(n) => n.min(cores),
    }
}
