//! A scan run: every target, every image in it, then the filters that
//! decide what is reported (status, allowlist, baseline), with counts of
//! what was suppressed and why.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::allowlist::{Allowlist, Baseline};
use crate::cache::LayerCache;
use crate::diagnostics::Diagnostics;
use crate::finding::{Finding, Status};
use crate::image::{self, PlatformFilter};
use crate::pipeline;
use crate::progress::Progress;
use crate::redact::Redactor;
use crate::report::Report;
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
    /// Check compressed layers against their diff_ids.
    pub verify_diff_ids: bool,
    /// Persistent layer cache directory (`--cache-dir`, `--cache`).
    pub cache_dir: Option<std::path::PathBuf>,
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
    let cache = LayerCache::new(options.cache_dir.as_deref(), scanner, Limits::default())
        .map_err(|e| anyhow::anyhow!("cannot use cache directory: {e}"))?;
    let mut images = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    for target in targets {
        let opened = match image::open(target, options.platform.as_ref(), diag) {
            Ok(v) => v,
            Err(e) => {
                diag.error(e.to_string());
                continue;
            }
        };
        let mut opened = opened;
        for img in &mut opened {
            img.verify_diff_ids = options.verify_diff_ids;
        }
        for img in &opened {
            let use_context = !options.no_path_context;
            findings.extend(pipeline::scan_image(
                img,
                scanner,
                Limits::default(),
                use_context,
                &cache,
                &options.progress,
                diag,
            ));
            images.push(ImageRecord::new(img));
        }
    }
    if !options.show_secrets {
        // Instructions print verbatim and often carry the secret itself (build args).
        let redactor = Redactor::new(findings.iter().map(|f| &f.secret));
        for f in &mut findings {
            redactor.apply_opt(&mut f.created_by);
        }
        for image in &mut images {
            for layer in &mut image.layers {
                redactor.apply_opt(&mut layer.created_by);
            }
        }
    }
    let mut suppressed: BTreeMap<String, u64> = BTreeMap::new();
    suppressed.insert(
        "documented example credentials".into(),
        scanner.suppressed.known_examples.load(Ordering::Relaxed),
    );
    // Templates, masks and stock words (src/scan/filter.rs gives each one's reason).
    suppressed.insert("placeholders".into(), scanner.placeholders());
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
    findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            (
                f.target.clone(),
                f.image_digest.clone(),
                f.layer_index.is_none(),
                f.layer_index,
                f.path.clone(),
                f.inner_path.clone(),
                f.line,
                f.location.clone(),
                f.rule_id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(Report {
        images,
        findings,
        suppressed,
        diagnostics: diag.snapshot(),
        rules: scanner.rules().to_vec(),
    })
}
