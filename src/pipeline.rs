//! One image from layers to findings: walk every layer in parallel with a
//! content scanner per worker, resolve each hit's status from the later
//! layers' indexes, add the config detector's hits.

use rayon::prelude::*;

use crate::cache::LayerCache;
use crate::diagnostics::Diagnostics;
use crate::finding::{Detector, Finding, Severity, Status};
use crate::image::layer::{self, EntryKind, Flow};
use crate::image::whiteout::{Fate, LayerIndex, Timeline};
use crate::image::{Image, Layer};
use crate::progress::Progress;
use crate::scan::content::{ContentScanner, FileHit, Limits};
use crate::scan::{Hit, Scanner, config, context, git};

/// What one layer's walk produced.
#[derive(Debug, Default, Clone)]
pub struct LayerScan {
    /// The layer's changes, for status resolution.
    pub index: LayerIndex,
    /// Hits with the image path of the file they were in.
    pub hits: Vec<(String, FileHit)>,
    /// Hardlinks in this layer: (link path, target path).
    pub links: Vec<(String, String)>,
    /// Uncompressed bytes read.
    pub bytes: u64,
    /// True when the whole layer was read without error (only such scans are cached).
    pub complete: bool,
}

/// Files up to this size are handed whole to scan workers; larger ones are
/// streamed by the walking thread itself, so memory stays bounded.
const JOB_MAX: u64 = 8 << 20;

/// A file read by the walking thread for a scan worker.
struct Job {
    path: String,
    data: Vec<u8>,
}

/// Walks and scans one layer. With `workers > 0`, the walking thread only
/// decompresses and reads, and `workers` threads scan the files, so one
/// large layer uses several cores. Problems go to `diag`; what was read
/// before an error is kept.
pub fn scan_layer(
    image: &Image,
    layer: &Layer,
    scanner: &Scanner,
    limits: Limits,
    workers: usize,
    progress: &Progress,
    diag: &Diagnostics,
) -> LayerScan {
    let bar = progress.layer(layer.index, layer.size);
    let mut cs = ContentScanner::new(scanner, limits);
    let mut hits = Vec::new();
    let mut links = Vec::new();
    let mut notes = Vec::new();
    let mut git = git::Collector::new(limits.git);
    let (summary, err) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(workers * 2);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let rx = std::sync::Arc::clone(&rx);
                scope.spawn(move || scan_jobs(scanner, limits, &rx))
            })
            .collect();
        let walked = layer::walk_with_progress(image, layer, diag, &bar, &mut |entry, content| {
            match (entry.kind, content) {
                // Git object stores are read whole after the walk (see scan::git).
                (EntryKind::File, Some(reader)) if git::classify(entry.path).is_some() => {
                    git.add(entry.path, reader)?;
                }
                (EntryKind::File, Some(reader)) if workers > 0 && entry.size <= JOB_MAX => {
                    let mut data = Vec::with_capacity(entry.size as usize);
                    std::io::Read::read_to_end(reader, &mut data)?;
                    // A closed channel means every worker died: scan here instead.
                    if let Err(std::sync::mpsc::SendError(job)) =
                        tx.send(Job { path: entry.path.to_owned(), data })
                    {
                        let found = cs.scan_file(&job.path, &mut job.data.as_slice())?;
                        hits.extend(found.into_iter().map(|h| (job.path.clone(), h)));
                    }
                }
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
        drop(tx);
        for h in handles {
            if let Ok((found, worker_notes)) = h.join() {
                hits.extend(found);
                notes.extend(worker_notes);
            }
        }
        walked
    });
    let (git_hits, git_errors) = git.scan(&mut cs);
    hits.extend(git_hits);
    bar.finish();
    progress.layer_done();
    hits.sort_by(|a, b| {
        (&a.0, a.1.hit.offset, a.1.hit.rule).cmp(&(&b.0, b.1.hit.offset, b.1.hit.rule))
    });
    for note in cs.notes.into_iter().chain(notes) {
        diag.warn(format!("{}: layer {}: {note}", image.target, layer.index));
    }
    // A git store read only in part is an incomplete scan, not a warning.
    for e in &git_errors {
        diag.error(format!("{}: layer {}: {e}", image.target, layer.index));
    }
    let complete = err.is_none() && git_errors.is_empty();
    if let Some(e) = err {
        diag.error(e.to_string());
    }
    LayerScan { index: summary.index, hits, links, bytes: summary.uncompressed_bytes, complete }
}

type JobQueue = std::sync::Arc<std::sync::Mutex<std::sync::mpsc::Receiver<Job>>>;

/// A scan worker: takes whole files until the walking thread is done.
fn scan_jobs(
    scanner: &Scanner,
    limits: Limits,
    rx: &JobQueue,
) -> (Vec<(String, FileHit)>, Vec<String>) {
    let mut cs = ContentScanner::new(scanner, limits);
    let mut hits = Vec::new();
    loop {
        // The lock is held only to take one job.
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => break,
        };
        let Ok(job) = job else { break };
        // In-memory reads cannot fail, so only nested-archive notes can come out.
        if let Ok(found) = cs.scan_file(&job.path, &mut job.data.as_slice()) {
            hits.extend(found.into_iter().map(|h| (job.path.clone(), h)));
        }
    }
    (hits, cs.notes)
}

/// How many scan workers each layer still to scan gets: layers that hold
/// more than their share of the work are scanned one at a time with every
/// thread, the rest in parallel one thread each. (A rescan whose cache
/// holds all but the top layer gives that layer every thread.)
fn plan(image: &Image, todo: &[bool], threads: usize) -> Vec<usize> {
    let total: u64 = image.layers.iter().zip(todo).filter(|(_, t)| **t).map(|(l, _)| l.size).sum();
    let share = total / threads.max(1) as u64;
    image
        .layers
        .iter()
        .map(|l| if threads > 1 && l.size > share && l.size > (4 << 20) { threads - 1 } else { 0 })
        .collect()
}

/// Scans a whole image: every layer, then the config.
pub fn scan_image(
    image: &Image,
    scanner: &Scanner,
    limits: Limits,
    use_context: bool,
    cache: &LayerCache,
    progress: &Progress,
    diag: &Diagnostics,
) -> Vec<Finding> {
    let name = image.references.first().map_or(image.target.as_str(), String::as_str);
    progress.start_image(name, image.layers.len());
    let mut scans: Vec<Option<LayerScan>> =
        image.layers.iter().map(|l| cache.get(l, scanner, diag)).collect();
    let pending: Vec<bool> = scans.iter().map(Option::is_none).collect();
    let workers = plan(image, &pending, rayon::current_num_threads());
    for _ in scans.iter().flatten() {
        progress.layer_done();
    }
    let todo = |i: &usize| scans[*i].is_none();
    // Big layers first, one at a time, each with every thread.
    let big: Vec<usize> = (0..image.layers.len()).filter(|i| todo(i) && workers[*i] > 0).collect();
    let small: Vec<usize> =
        (0..image.layers.len()).filter(|i| todo(i) && workers[*i] == 0).collect();
    for i in big {
        let scan = scan_layer(image, &image.layers[i], scanner, limits, workers[i], progress, diag);
        cache.put(&image.layers[i], &scan, scanner, diag);
        scans[i] = Some(scan);
    }
    let fresh: Vec<(usize, LayerScan)> = small
        .into_par_iter()
        .map(|i| {
            let scan = scan_layer(image, &image.layers[i], scanner, limits, 0, progress, diag);
            cache.put(&image.layers[i], &scan, scanner, diag);
            (i, scan)
        })
        .collect();
    for (i, s) in fresh {
        scans[i] = Some(s);
    }
    let scans: Vec<LayerScan> = scans.into_iter().map(Option::unwrap_or_default).collect();
    let mut findings = findings_from(image, scanner, scans, use_context);
    findings.extend(attestation_findings(image, scanner, diag));
    findings
}

/// Attestation documents larger than this are not read (an error says so).
const MAX_ATTESTATION_BYTES: u64 = crate::image::store::MAX_JSON_BYTES;

/// Findings in the attestations beside an image (build provenance, SBOMs):
/// status `config` (published with the image), `location` naming the
/// attestation, the image it describes, the document and the JSON path.
fn attestation_findings(image: &Image, scanner: &Scanner, diag: &Diagnostics) -> Vec<Finding> {
    let mut findings = Vec::new();
    for a in &image.attestations {
        for layer in &a.layers {
            let what =
                format!("{}: attestation {} document {}", image.target, a.digest, layer.digest);
            let mut bytes = Vec::new();
            let read = image.store.open(&layer.member).and_then(|r| {
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
    // A failed offline check means a mangled or truncated credential: still reported, lower.
    let severity = if hit.failed_check { rule.severity.lowered() } else { rule.severity };
    Finding {
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        severity,
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
        decoding: hit.decoding,
    }
}
