//! One image from layers to findings: walk every layer in parallel with a
//! content scanner per worker, resolve each hit's status from the later
//! layers' indexes, add the config detector's hits.

use rayon::prelude::*;

use crate::diagnostics::Diagnostics;
use crate::finding::{Detector, Finding, Severity, Status};
use crate::image::layer::{self, EntryKind, Flow};
use crate::image::whiteout::{Fate, LayerIndex, Timeline};
use crate::image::{Image, Layer};
use crate::progress::Progress;
use crate::scan::content::{ContentScanner, FileHit, Limits};
use crate::scan::{Hit, Scanner, config, context};

/// What one layer's walk produced.
#[derive(Debug, Default)]
pub struct LayerScan {
    /// The layer's changes, for status resolution.
    pub index: LayerIndex,
    /// Hits with the image path of the file they were in.
    pub hits: Vec<(String, FileHit)>,
    /// Hardlinks in this layer: (link path, target path).
    pub links: Vec<(String, String)>,
    /// Uncompressed bytes read.
    pub bytes: u64,
}

/// Walks and scans one layer. Problems go to `diag`; what was read before
/// an error is kept.
pub fn scan_layer(
    image: &Image,
    layer: &Layer,
    scanner: &Scanner,
    limits: Limits,
    progress: &Progress,
    diag: &Diagnostics,
) -> LayerScan {
    let mut cs = ContentScanner::new(scanner, limits);
    let mut hits = Vec::new();
    let mut links = Vec::new();
    let bar = progress.layer(layer.index, layer.size);
    let (summary, err) =
        layer::walk_with_progress(image, layer, diag, &bar, &mut |entry, content| {
            match (entry.kind, content) {
                (EntryKind::File, Some(reader)) => {
                    let found = cs.scan_file(entry.path, reader)?;
                    hits.extend(found.into_iter().map(|h| (entry.path.to_owned(), h)));
                }
                (EntryKind::Hardlink(target), _) => {
                    links.push((entry.path.to_owned(), target.clone()))
                }
                _ => {}
            }
            Ok(Flow::Continue)
        });
    bar.finish();
    progress.layer_done();
    for note in cs.notes {
        diag.warn(format!("{}: layer {}: {note}", image.target, layer.index));
    }
    if let Some(e) = err {
        diag.error(e.to_string());
    }
    LayerScan { index: summary.index, hits, links, bytes: summary.uncompressed_bytes }
}

/// Scans a whole image: every layer, then the config.
pub fn scan_image(
    image: &Image,
    scanner: &Scanner,
    limits: Limits,
    use_context: bool,
    progress: &Progress,
    diag: &Diagnostics,
) -> Vec<Finding> {
    let name = image.references.first().map_or(image.target.as_str(), String::as_str);
    progress.start_image(name, image.layers.len());
    let scans: Vec<LayerScan> = image
        .layers
        .par_iter()
        .map(|l| scan_layer(image, l, scanner, limits, progress, diag))
        .collect();
    findings_from(image, scanner, scans, use_context)
}

/// Resolves statuses and builds findings from per-layer scans.
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
    for s in scans {
        indexes.push(s.index);
        rest.push((s.hits, s.links));
    }
    let timeline = Timeline::new(indexes);
    let mut findings = Vec::new();
    for (layer_index, (hits, links)) in rest.into_iter().enumerate() {
        let layer = &image.layers[layer_index];
        for (path, fh) in hits {
            let fate = fate_with_links(&timeline, layer_index, &path, &links);
            let (status, removed) = match fate {
                Fate::Present => (Status::Present, None),
                Fate::Deleted(n) => (Status::Deleted, Some(n)),
                Fate::Overwritten(n) => (Status::Overwritten, Some(n)),
            };
            let mut f = base_finding(image, scanner, fh.hit);
            f.layer_index = Some(layer_index);
            f.layer_digest = Some(layer.digest.clone());
            f.path = Some(path);
            f.inner_path = fh.inner_path;
            f.status = status;
            f.removed_in_layer = removed;
            f.created_by = layer.created_by.clone();
            if use_context {
                f.context =
                    context::classify(f.path.as_deref().unwrap_or(""), f.inner_path.as_deref());
                if f.context.is_some() {
                    f.severity = Severity::Info;
                }
            }
            findings.push(f);
        }
    }
    for ch in config::scan(scanner, &image.config) {
        let mut f = base_finding(image, scanner, ch.hit);
        f.line = None;
        f.detector = Detector::Config;
        f.location = Some(ch.location);
        f.created_by = ch.created_by;
        findings.push(f);
    }
    findings
}

/// A file's bytes stay visible while any hardlink to them does.
fn fate_with_links(
    timeline: &Timeline,
    layer: usize,
    path: &str,
    links: &[(String, String)],
) -> Fate {
    let own = timeline.fate(layer, path);
    if own == Fate::Present {
        return own;
    }
    let alias_alive = links
        .iter()
        .filter(|(_, target)| target == path)
        .any(|(link, _)| timeline.fate(layer, link) == Fate::Present);
    if alias_alive { Fate::Present } else { own }
}

fn base_finding(image: &Image, scanner: &Scanner, hit: Hit) -> Finding {
    let rule = scanner.rule(hit.rule);
    Finding {
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        severity: rule.severity,
        detector: rule.detector,
        target: image.target.clone(),
        image_digest: image.digest.clone(),
        platform: image.platform.clone(),
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
    }
}
