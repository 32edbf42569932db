//! One image from layers to findings: walk every layer in parallel with a
//! content scanner per worker, resolve each hit's status from the later
//! layers' indexes, add the config detector's hits.

use std::sync::atomic::Ordering;

use rayon::prelude::*;

use crate::cache::LayerCache;
use crate::diagnostics::Diagnostics;
use crate::finding::{Detector, Finding, Severity, Status};
use crate::image::layer::{self, EntryKind, Flow};
use crate::image::whiteout::{Fate, LayerIndex, Timeline};
use crate::image::{Image, Layer};
use crate::progress::Progress;
use crate::scan::content::{ContentScanner, FileHit, Limits};
use crate::scan::packages::{self, PackageRoots};
use crate::scan::{Hit, Scanner, config, context, git};

/// What one layer's walk produced.
#[derive(Debug, Default, Clone)]
pub struct LayerScan {
    /// The layer's changes, for status resolution.
    pub index: LayerIndex,
    /// Hits with the image path and entry ordinal of the file they were in.
    pub hits: Vec<(String, u32, FileHit)>,
    /// Third-party package roots proven by package metadata in this layer.
    pub packages: PackageRoots,
    /// Uncompressed bytes read.
    pub bytes: u64,
    /// True when the whole layer was read without error (only such scans are cached).
    pub complete: bool,
    /// SHA-256 of the blob as read (what the cache keys on).
    pub blob_digest: Option<String>,
    /// Hits dropped by a findings budget (such scans are not cached, so a
    /// rescan reports the same counts).
    pub capped: u64,
}

/// Files up to this size are handed whole to scan workers; larger ones are
/// streamed by the walking thread itself, so memory stays bounded.
const JOB_MAX: u64 = 8 << 20;

/// A file read by the walking thread for a scan worker.
struct Job {
    path: String,
    ordinal: u32,
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
    scan_layer_blob(image, layer, None, scanner, limits, workers, progress, diag)
}

/// [`scan_layer`] over a blob the caller opened (`None`: open it from the
/// image's store), for layers read from a stream as they arrive.
#[allow(clippy::too_many_arguments)]
pub fn scan_layer_blob(
    image: &Image,
    layer: &Layer,
    blob: Option<Box<dyn std::io::Read + '_>>,
    scanner: &Scanner,
    limits: Limits,
    workers: usize,
    progress: &Progress,
    diag: &Diagnostics,
) -> LayerScan {
    let bar = progress.layer(layer.index, layer.size);
    let mut cs = ContentScanner::new(scanner, limits);
    let mut hits = Vec::new();
    let mut notes = Vec::new();
    let mut git = git::Collector::new(limits.git);
    // Entry ordinals of the git store files, for their hits.
    let mut git_ordinals: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut roots = PackageRoots::default();
    let mut unread = Vec::new();
    let mut capped = 0;
    let mut over_run = 0;
    let (summary, err) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(workers * 2);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let rx = std::sync::Arc::clone(&rx);
                scope.spawn(move || scan_jobs(scanner, limits, &rx))
            })
            .collect();
        let mut visit = |entry: &layer::Entry<'_>, content: Option<&mut dyn std::io::Read>| {
            match (entry.kind, content) {
                // Git object stores are read whole after the walk (see scan::git).
                (EntryKind::File, Some(reader)) if git::classify(entry.path).is_some() => {
                    packages::roots_from(entry.path, None, &mut roots);
                    git_ordinals.insert(entry.path.to_owned(), entry.ordinal);
                    git.add(entry.path, reader)?;
                }
                (EntryKind::File, Some(reader))
                    if (workers > 0 && entry.size <= JOB_MAX)
                        || (packages::wants_content(entry.path)
                            && entry.size <= packages::MAX_METADATA_FILE) =>
                {
                    let mut data = Vec::with_capacity(entry.size as usize);
                    std::io::Read::read_to_end(reader, &mut data)?;
                    let wants = packages::wants_content(entry.path);
                    packages::roots_from(entry.path, wants.then_some(&data[..]), &mut roots);
                    let job = Job { path: entry.path.to_owned(), ordinal: entry.ordinal, data };
                    if workers == 0 {
                        let found = cs.scan_file(&job.path, &mut job.data.as_slice())?;
                        over_run +=
                            keep(&mut hits, &job.path, job.ordinal, found, limits.max_findings);
                    } else if let Err(std::sync::mpsc::SendError(job)) = tx.send(job) {
                        // A closed channel means every worker died: scan here instead.
                        let found = cs.scan_file(&job.path, &mut job.data.as_slice())?;
                        over_run +=
                            keep(&mut hits, &job.path, job.ordinal, found, limits.max_findings);
                    }
                }
                (EntryKind::File, Some(reader)) => {
                    packages::roots_from(entry.path, None, &mut roots);
                    let found = cs.scan_file(entry.path, reader)?;
                    over_run +=
                        keep(&mut hits, entry.path, entry.ordinal, found, limits.max_findings);
                }
                _ => {}
            }
            Ok(Flow::Continue)
        };
        let walked = match blob {
            Some(b) => layer::walk_blob(image, layer, b, diag, &bar, &mut visit),
            None => layer::walk_with_progress(image, layer, diag, &bar, &mut visit),
        };
        drop(tx);
        for h in handles {
            if let Ok(w) = h.join() {
                hits.extend(w.hits);
                notes.extend(w.notes);
                unread.extend(w.unread);
                capped += w.capped;
                over_run += w.over_run;
            }
        }
        walked
    });
    let (git_hits, git_errors) = git.scan(&mut cs);
    for (path, fh) in git_hits {
        let ordinal = git_ordinals.get(&path).copied().unwrap_or_default();
        over_run += keep(&mut hits, &path, ordinal, vec![fh], limits.max_findings);
    }
    // A git store read only in part is an incomplete scan, not a warning.
    unread.extend(git_errors);
    bar.finish();
    progress.layer_done();
    hits.sort_by(|a, b| {
        (&a.0, a.1, a.2.hit.offset, a.2.hit.rule).cmp(&(&b.0, b.1, b.2.hit.offset, b.2.hit.rule))
    });
    capped += cs.capped;
    scanner.suppressed.over_file_budget.fetch_add(capped, Ordering::Relaxed);
    // The run budget, applied per layer (and per worker) already, so that one layer
    // cannot hold more than that in memory.
    if hits.len() > limits.max_findings {
        over_run += (hits.len() - limits.max_findings) as u64;
        hits.truncate(limits.max_findings);
    }
    if over_run > 0 {
        scanner.suppressed.over_run_budget.fetch_add(over_run, Ordering::Relaxed);
        capped += over_run;
        notes.push(format!(
            "{over_run} more findings not listed (budget: {} findings per run)",
            limits.max_findings
        ));
    }
    unread.extend(cs.unread);
    unread.extend(summary.unread);
    let complete = err.is_none() && unread.is_empty();
    for note in cs.notes.into_iter().chain(notes) {
        diag.warn(format!("{}: layer {}: {note}", image.target, layer.index));
    }
    // A git store read only in part is an incomplete scan, not a warning.
    for unread in unread {
        diag.error(format!("{}: layer {}: {unread}", image.target, layer.index));
    }
    if let Some(e) = err {
        diag.error(e.to_string());
    }
    LayerScan {
        index: summary.index,
        hits,
        packages: roots,
        bytes: summary.uncompressed_bytes,
        complete,
        blob_digest: summary.blob_digest,
        capped,
    }
}

/// Adds one file's hits to a layer's, within the run budget; returns how
/// many did not fit (they are counted, not kept).
fn keep(
    hits: &mut Vec<(String, u32, FileHit)>,
    path: &str,
    ordinal: u32,
    found: Vec<FileHit>,
    max: usize,
) -> u64 {
    let room = max.saturating_sub(hits.len());
    let n = found.len();
    hits.extend(found.into_iter().take(room).map(|h| (path.to_owned(), ordinal, h)));
    n.saturating_sub(room) as u64
}

/// What one scan worker found.
struct WorkerOut {
    /// (path, entry ordinal, hit).
    hits: Vec<(String, u32, FileHit)>,
    notes: Vec<String>,
    /// What it left unread.
    unread: Vec<String>,
    /// Dropped by the per-file budget.
    capped: u64,
    /// Dropped by the run budget.
    over_run: u64,
}

type JobQueue = std::sync::Arc<std::sync::Mutex<std::sync::mpsc::Receiver<Job>>>;

/// A scan worker: takes whole files until the walking thread is done.
fn scan_jobs(scanner: &Scanner, limits: Limits, rx: &JobQueue) -> WorkerOut {
    let mut cs = ContentScanner::new(scanner, limits);
    let mut hits = Vec::new();
    let mut over_run = 0;
    loop {
        // The lock is held only to take one job.
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => break,
        };
        let Ok(job) = job else { break };
        // In-memory reads cannot fail, so only nested-archive notes can come out.
        if let Ok(found) = cs.scan_file(&job.path, &mut job.data.as_slice()) {
            over_run += keep(&mut hits, &job.path, job.ordinal, found, limits.max_findings);
        }
    }
    WorkerOut { hits, notes: cs.notes, unread: cs.unread, capped: cs.capped, over_run }
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
    scan_image_prescanned(image, scanner, limits, use_context, cache, progress, diag, &[])
}

/// [`scan_image`] with some layers already scanned (`prescanned[i]` for
/// layer `i`, when present): a streamed source scans layers as they arrive,
/// before it knows the image they belong to.
#[allow(clippy::too_many_arguments)]
pub fn scan_image_prescanned(
    image: &Image,
    scanner: &Scanner,
    limits: Limits,
    use_context: bool,
    cache: &LayerCache,
    progress: &Progress,
    diag: &Diagnostics,
    prescanned: &[Option<LayerScan>],
) -> Vec<Finding> {
    let name = image.references.first().map_or(image.target.as_str(), String::as_str);
    progress.start_image(name, image.layers.len());
    // A blob listed more than once is scanned at its last listing only.
    let last = crate::image::repeats::last_listings(image);
    let mut scans: Vec<Option<LayerScan>> = image
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| match prescanned.get(i) {
            _ if last[i] != i => Some(LayerScan::default()),
            Some(Some(s)) => Some(s.clone()),
            _ => cache.get(image, l, scanner, diag),
        })
        .collect();
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
    findings.extend(config_findings(image, scanner, limits, diag));
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
    for s in scans {
        roots.extend(&s.packages);
        indexes.push(s.index);
        rest.push(s.hits);
    }
    let timeline = Timeline::with_repeats(indexes, crate::image::repeats::last_listings(image));
    let mut findings = Vec::new();
    for (layer_index, hits) in rest.into_iter().enumerate() {
        let layer = &image.layers[layer_index];
        // One copy per layer, shared by its findings.
        let created_by: Option<std::sync::Arc<str>> = layer.created_by.as_deref().map(Into::into);
        // Many hits in one file share its fate: resolve each (path, entry) once.
        let mut last: Option<(String, u32, Fate)> = None;
        for (path, ordinal, fh) in hits {
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
            f.layer_digest = Some(layer.digest.clone());
            f.path = Some(path);
            f.inner_path = fh.inner_path;
            f.status = status;
            f.removed_in_layer = removed;
            f.created_by = created_by.clone();
            if use_context {
                f.context = context::classify_in(
                    f.path.as_deref().unwrap_or(""),
                    f.inner_path.as_deref(),
                    &roots,
                );
                if f.context.is_some() {
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
    let scan = config::scan_capped(scanner, &image.config, limits.max_hits_per_rule);
    for (location, rule, n) in scan.over_budget {
        scanner.suppressed.over_file_budget.fetch_add(n, Ordering::Relaxed);
        diag.warn(format!(
            "{}: {location}: {n} more {} matches not listed (budget: {} findings per rule and file)",
            image.target,
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
        workloads: Vec::new(),
        verification: None,
    }
}
