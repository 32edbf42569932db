//! One image from layers to findings: walk the layers with every core busy
//! (decompression, walking and scanning overlap; see `walker` and `jobs`),
//! resolve each hit's status from the later layers' indexes, add the
//! config detector's and the attestations' hits.

mod jobs;
mod kept;
#[cfg(test)]
pub(crate) mod tests;
mod walker;

use std::sync::atomic::Ordering;

use crate::cache::LayerCache;
use crate::diagnostics::Diagnostics;
use crate::finding::context::PathContext;
use crate::finding::{Detector, Finding, Severity, Status};
use crate::image::whiteout::{Fate, Timeline};
use crate::image::{Image, Layer};
use crate::progress::Progress;
use crate::scan::content::Limits;
use crate::scan::git::names::BlobNames;
use crate::scan::packages::PackageRoots;
use crate::scan::{Hit, Scanner, config, context};

/// Defined by the cache, which stores it; the walk produces it.
pub use crate::cache::{LayerRead, LayerScan};

/// What scanning one image found.
#[derive(Debug, Default)]
pub struct ImageScan {
    /// Every finding of the image: its layers', its config's and its attestations'.
    pub findings: Vec<Finding>,
    /// How much of each layer was read, in manifest order (one per layer).
    pub layers: Vec<LayerRead>,
}

/// What a scan needs besides the image: the run's scanner, limits and
/// cache, where progress and problems go, and whether path context caps
/// severities. The number of threads is the run's thread pool size.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// The compiled rules.
    pub scanner: &'a Scanner,
    /// Nested-archive, git and findings budgets.
    pub limits: Limits,
    /// Findings in documentation, test and third-party paths are capped at info.
    pub use_context: bool,
    /// Scans of layers seen before.
    pub cache: &'a LayerCache,
    /// Progress display.
    pub progress: &'a Progress,
    /// Where problems go.
    pub diag: &'a Diagnostics,
}

/// Threads a scan uses: the run's thread pool size (`--threads`).
fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Walks and scans one layer whose blob the caller opened (a layer read
/// from a stream as it arrives). The walk reads on the calling thread;
/// with more than one thread, workers scan its files. Problems go to
/// `run.diag`; what was read before an error is kept.
pub fn scan_layer_blob(
    image: &Image,
    layer: &Layer,
    blob: Box<dyn std::io::Read + '_>,
    run: &Options<'_>,
) -> LayerScan {
    let threads = threads();
    if threads == 1 {
        let walked = walker::walk(image, layer, run, walker::Mode::Blob(blob, None));
        return walker::finish(image, layer, walked, Vec::new(), run);
    }
    let (walked, mut found) = walker::with_workers(run, threads, |tx, pool| {
        let dispatch = jobs::Dispatch::new(layer.index, tx, pool);
        walker::walk(image, layer, run, walker::Mode::Blob(blob, Some(dispatch)))
    });
    found.finish(image, layer, layer.index, walked, run)
}

/// Scans a whole image: every layer, then the config and attestations.
pub fn scan_image(image: &Image, run: &Options<'_>) -> ImageScan {
    scan_image_prescanned(image, run, &[])
}

/// [`scan_image`] with some layers already scanned (`prescanned[i]` for
/// layer `i`, when present): a streamed source scans layers as they arrive,
/// before it knows the image they belong to.
pub fn scan_image_prescanned(
    image: &Image,
    run: &Options<'_>,
    prescanned: &[Option<LayerScan>],
) -> ImageScan {
    let name = image.references().first().map_or(image.target(), String::as_str);
    run.progress.start_image(name, image.layers().len());
    // A blob listed more than once is scanned at its last listing only.
    let last = crate::image::repeats::last_listings(image);
    let mut scans: Vec<Option<LayerScan>> = image
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| match prescanned.get(i) {
            _ if last[i] != i => Some(LayerScan::default()),
            Some(Some(s)) => Some(s.clone()),
            _ => run.cache.get(image, l, run.scanner, run.diag),
        })
        .collect();
    for _ in scans.iter().flatten() {
        run.progress.layer_done();
    }
    // Largest first, so the longest walk starts at once and small ones fill in around it.
    let mut todo: Vec<usize> = (0..image.layers().len()).filter(|i| scans[*i].is_none()).collect();
    todo.sort_by_key(|i| std::cmp::Reverse(image.layers()[*i].size()));
    let threads = threads();
    let fresh: Vec<(usize, LayerScan)> = if threads == 1 {
        todo.iter()
            .map(|&i| {
                let layer = &image.layers()[i];
                let walked = walker::walk(image, layer, run, walker::Mode::Inline);
                (i, walker::finish(image, layer, walked, Vec::new(), run))
            })
            .collect()
    } else {
        walker::scan_parallel(image, &todo, run, threads)
    };
    for (i, scan) in fresh {
        run.cache.put(&image.layers()[i], &scan, run.scanner, run.diag);
        scans[i] = Some(scan);
    }
    // A layer no walk reported on (its walk failed) was not read: the default.
    let scans: Vec<LayerScan> = scans.into_iter().map(Option::unwrap_or_default).collect();
    // A repeated blob was read at its last listing, for every listing.
    let layers = (0..scans.len()).map(|i| scans[last[i]].read).collect();
    let mut findings = findings_from(image, run.scanner, scans, run.use_context);
    findings.extend(config_findings(image, run.scanner, run.limits, run.diag));
    findings.extend(attestation_findings(image, run.scanner, run.diag));
    ImageScan { findings, layers }
}

/// Attestation documents larger than this are not read (an error says so).
const MAX_ATTESTATION_BYTES: u64 = crate::image::store::MAX_JSON_BYTES;

/// Findings in the attestations beside an image (build provenance, SBOMs):
/// status `config` (published with the image), `location` naming the
/// attestation, the image it describes, the document and the JSON path.
fn attestation_findings(image: &Image, scanner: &Scanner, diag: &Diagnostics) -> Vec<Finding> {
    let mut findings = Vec::new();
    for a in image.attestations() {
        for layer in &a.layers {
            let what =
                format!("{}: attestation {} document {}", image.target(), a.digest, layer.digest);
            let mut bytes = Vec::new();
            let read = image.store().open(&layer.member).and_then(|r| {
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(r, MAX_ATTESTATION_BYTES + 1),
                    &mut bytes,
                )
                .map_err(|e| crate::image::Error::io(&layer.member, e))
            });
            if let Err(e) = read {
                diag.error(format!("{what}: {e}; not scanned"));
                continue;
            }
            if bytes.len() as u64 > MAX_ATTESTATION_BYTES {
                diag.error(format!(
                    "{what}: larger than {MAX_ATTESTATION_BYTES} bytes; not scanned"
                ));
                continue;
            }
            let describes = a.describes.as_deref().unwrap_or("an unnamed image");
            for jh in crate::scan::attestation::scan_document(scanner, &bytes) {
                let mut f = base_finding(image, scanner, jh.hit);
                f.line = None;
                f.detector = Detector::Config;
                f.location = Some(format!(
                    "attestation {} for {describes}, document {}: {}",
                    a.digest, layer.digest, jh.json_path
                ));
                findings.push(f);
            }
        }
    }
    findings
}

/// The `location` of a finding in bytes a layer blob ships outside its tar
/// stream (its `path` names them: `<gzip member 1 header: comment>`).
pub const OUTSIDE_THE_TAR: &str = "outside the tar";

/// Resolves statuses and builds findings from per-layer scans (the config's
/// findings come from [`config_findings`]).
/// With `use_context`, findings in documentation, test and third-party
/// paths are capped at info.
pub fn findings_from(
    image: &Image,
    scanner: &Scanner,
    scans: Vec<LayerScan>,
    use_context: bool,
) -> Vec<Finding> {
    let mut indexes = Vec::with_capacity(scans.len());
    let mut rest = Vec::with_capacity(scans.len());
    // Installed packages are recognised from the whole image's metadata.
    let mut roots = PackageRoots::default();
    // Git blobs are named from the commits of every layer.
    let mut git_names = BlobNames::default();
    for (layer_index, s) in scans.into_iter().enumerate() {
        roots.extend_from_layer(&s.packages, layer_index);
        git_names.extend(&s.git_names);
        indexes.push(s.index);
        rest.push(s.hits);
    }
    let timeline = Timeline::with_repeats(indexes, crate::image::repeats::last_listings(image));
    // One finding per hit: made to size, not doubled into (a finding is half a KiB).
    let mut findings = Vec::with_capacity(rest.iter().map(Vec::len).sum());
    for (layer_index, hits) in rest.into_iter().enumerate() {
        let layer = &image.layers()[layer_index];
        // One copy per layer, shared by its findings.
        let created_by: Option<std::sync::Arc<str>> = layer.created_by.as_deref().map(Into::into);
        // Many hits in one file share its fate: resolve each (path, entry) once.
        let mut last: Option<(String, u32, Fate)> = None;
        for (path, ordinal, fh) in hits {
            let checksummed = scanner.rule(fh.hit.rule).checksummed && !fh.hit.failed_check;
            let fate = match &last {
                Some((p, o, f)) if *p == path && *o == ordinal => *f,
                _ => {
                    let f = timeline.fate_of(layer_index, &path, ordinal);
                    last = Some((path.clone(), ordinal, f));
                    f
                }
            };
            let (status, removed) = match fate {
                Fate::Present => (Status::Present, None),
                Fate::Deleted(n) => (Status::Deleted, Some(n)),
                Fate::Overwritten(n) => (Status::Overwritten, Some(n)),
            };
            let mut f = base_finding(image, scanner, fh.hit);
            f.layer_index = Some(layer_index);
            f.layer_digest = Some(layer.digest().to_owned());
            f.inner_path = match fh.inner_path {
                Some(inner) => git_names.rename(&path, &inner).or(Some(inner)),
                None => None,
            };
            if let Some(name) = fh.name {
                // In the entry's header, not its bytes: no line to point at.
                f.line = None;
                f.location = Some(name.as_str().to_owned());
            } else if crate::image::outside::is_outside(&path) {
                // In the layer blob's compression framing, not in any entry.
                f.location = Some(OUTSIDE_THE_TAR.to_owned());
            }
            f.path = Some(path);
            f.status = status;
            f.removed_in_layer = removed;
            f.created_by = created_by.clone();
            // A context is a place in the image's filesystem; blob framing is none.
            if use_context && f.location.as_deref() != Some(OUTSIDE_THE_TAR) {
                f.context = context::classify_in(
                    f.path.as_deref().unwrap_or(""),
                    f.inner_path.as_deref(),
                    layer_index,
                    &roots,
                );
                // Check digits outweigh a documentation or test path: what passes them is
                // a token as issued (fake fixtures are made to pass them too, as leaks are).
                let vouched = checksummed
                    && matches!(f.context, Some(PathContext::Documentation | PathContext::Test))
                    && context::is_own(
                        f.path.as_deref().unwrap_or(""),
                        f.inner_path.as_deref(),
                        layer_index,
                        &roots,
                    );
                if f.context.is_some() && !vouched {
                    f.severity = Severity::Info;
                }
            }
            findings.push(f);
        }
    }
    findings
}

/// The config detector's findings, within the per-rule budget of each
/// config string; what goes over it is a warning with the count.
pub fn config_findings(
    image: &Image,
    scanner: &Scanner,
    limits: Limits,
    diag: &Diagnostics,
) -> Vec<Finding> {
    let scan = config::scan_capped(scanner, image, limits.max_hits_per_rule);
    for (location, rule, n) in scan.over_budget {
        scanner.suppressed.over_file_budget.fetch_add(n, Ordering::Relaxed);
        diag.warn(format!(
            "{}: {location}: {n} more {} matches not listed (budget: {} findings per rule and file)",
            image.target(),
            scanner.rule(rule).id,
            limits.max_hits_per_rule
        ));
    }
    let mut findings = Vec::with_capacity(scan.hits.len());
    for ch in scan.hits {
        let mut f = base_finding(image, scanner, ch.hit);
        f.line = None;
        f.detector = Detector::Config;
        f.location = Some(ch.location);
        f.created_by = ch.created_by;
        findings.push(f);
    }
    findings
}

fn base_finding(image: &Image, scanner: &Scanner, hit: Hit) -> Finding {
    let rule = scanner.rule(hit.rule);
    // A failed offline check means a mangled or truncated credential, and a hand-typed-looking
    // provider token is likely documentation: both still reported, lower.
    let severity =
        crate::scan::reported_severity(rule.severity, hit.failed_check, hit.validation.as_deref());
    Finding {
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        severity,
        detector: rule.detector,
        target: image.target().to_owned(),
        image_digest: image.digest().to_owned(),
        platform: image.platform().map(str::to_owned),
        layer_index: None,
        layer_digest: None,
        path: None,
        inner_path: None,
        line: Some(hit.line),
        status: Status::Config,
        removed_in_layer: None,
        created_by: None,
        location: None,
        secret: hit.secret,
        validation: hit.validation,
        context: None,
        rule_severity: rule.severity,
        decoding: hit.decoding,
        workloads: Vec::new(),
        verification: None,
        material: hit.material,
    }
}
