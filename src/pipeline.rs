//! One image from layers to findings: walk every layer in parallel with a
//! content scanner per worker, resolve each hit's status from the later
//! layers' indexes, add the config detector's hits.

mod jobs;

use crate::cache::LayerCache;
use crate::diagnostics::Diagnostics;
use crate::finding::{Detector, Finding, Severity, Status};
use crate::image::layer::{self, EntryKind, Flow};
use crate::image::whiteout::{Fate, LayerIndex, Timeline};
use crate::image::{Image, Layer};
use crate::progress::Progress;
use crate::scan::content::{ContentScanner, FileHit, Limits};
use crate::scan::{Hit, Scanner, config, context};

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

/// Walks and scans one layer on the calling thread alone (`--threads 1`).
/// Problems go to `diag`; what was read before an error is kept.
pub fn scan_layer(
    image: &Image,
    layer: &Layer,
    scanner: &Scanner,
    limits: Limits,
    progress: &Progress,
    diag: &Diagnostics,
) -> LayerScan {
    let bar = progress.layer(layer.index, layer.size);
    let mut cs = ContentScanner::new(scanner, limits);
    let mut hits = Vec::new();
    let mut links = Vec::new();
    let mut seq = 0u64;
    let (summary, err) =
        layer::walk_with_progress(image, layer, diag, &bar, &mut |entry, content| {
            match (entry.kind, content) {
                (EntryKind::File, Some(reader)) => {
                    seq += 1;
                    let found = cs.scan_file(entry.path, reader)?;
                    hits.extend(found.into_iter().map(|h| (seq, entry.path.to_owned(), h)));
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
    let mut notes = std::mem::take(&mut cs.notes);
    notes.sort();
    let walked = Walked { summary, links, err };
    finish_layer(image, layer, walked, jobs::Collected { hits, notes, unread: false }, diag)
}

/// One layer's walk, before its files' hits are added.
struct Walked {
    summary: layer::WalkSummary,
    links: Vec<(String, String)>,
    err: Option<crate::image::Error>,
}

/// Puts a layer's walk and hits together, in an order that does not depend
/// on which thread scanned what, and reports its notes and error.
fn finish_layer(
    image: &Image,
    layer: &Layer,
    walked: Walked,
    found: jobs::Collected,
    diag: &Diagnostics,
) -> LayerScan {
    let mut hits = found.hits;
    hits.sort_by(|a, b| {
        (&a.1, a.0, a.2.hit.offset, a.2.hit.rule, &a.2.inner_path).cmp(&(
            &b.1,
            b.0,
            b.2.hit.offset,
            b.2.hit.rule,
            &b.2.inner_path,
        ))
    });
    for note in found.notes {
        diag.warn(format!("{}: layer {}: {note}", image.target, layer.index));
    }
    let complete = walked.err.is_none() && !found.unread;
    if let Some(e) = walked.err {
        diag.error(e.to_string());
    }
    LayerScan {
        index: walked.summary.index,
        hits: hits.into_iter().map(|(_, path, h)| (path, h)).collect(),
        links: walked.links,
        bytes: walked.summary.uncompressed_bytes,
        complete,
    }
}

/// Scans the layers `todo` of an image with `threads` threads, all at once:
/// up to `threads` layers are walked at a time (largest first), each walk
/// decompressing and hashing on threads of its own, and `threads` workers
/// scan what every walk hands them, so big and small layers share the
/// cores with no serial phase.
fn scan_layers_parallel(
    image: &Image,
    todo: &[usize],
    scanner: &Scanner,
    limits: Limits,
    threads: usize,
    progress: &Progress,
    diag: &Diagnostics,
) -> Vec<(usize, LayerScan)> {
    let pool = jobs::Pool::default();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::sync_channel::<jobs::Job>(threads * 2);
    let rx = std::sync::Mutex::new(rx);
    let (walks, found) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (rx, pool) = (&rx, &pool);
                scope.spawn(move || jobs::work(scanner, limits, rx, pool))
            })
            .collect();
        let walkers: Vec<_> = (0..threads.min(todo.len()))
            .map(|_| {
                let (tx, pool, next) = (tx.clone(), &pool, &next);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&i) = todo.get(k) else { break };
                        done.push((
                            i,
                            walk_to_jobs(image, &image.layers[i], &tx, pool, progress, diag),
                        ));
                    }
                    done
                })
            })
            .collect();
        drop(tx);
        let walks: Vec<(usize, Walked)> =
            walkers.into_iter().filter_map(|h| h.join().ok()).flatten().collect();
        let found: Vec<jobs::Found> =
            workers.into_iter().filter_map(|h| h.join().ok()).flatten().collect();
        (walks, found)
    });
    let mut collected = jobs::collect(scanner, found, image.layers.len());
    let mut walks = walks;
    walks.sort_by_key(|w| w.0);
    walks
        .into_iter()
        .map(|(i, w)| {
            let found = std::mem::take(&mut collected[i]);
            (i, finish_layer(image, &image.layers[i], w, found, diag))
        })
        .collect()
}

/// Walks one layer, handing its files to the scan workers.
fn walk_to_jobs(
    image: &Image,
    layer: &Layer,
    jobs: &std::sync::mpsc::SyncSender<jobs::Job>,
    pool: &jobs::Pool,
    progress: &Progress,
    diag: &Diagnostics,
) -> Walked {
    let bar = progress.layer(layer.index, layer.size);
    let mut dispatch = jobs::Dispatch::new(layer.index, jobs, pool);
    let mut links = Vec::new();
    let (summary, mut err) =
        layer::walk_overlapped(image, layer, diag, &bar, &mut |entry, content| {
            match (entry.kind, content) {
                (EntryKind::File, Some(reader)) => dispatch.file(entry.path, entry.size, reader)?,
                (EntryKind::Hardlink(target), _) => {
                    links.push((entry.path.to_owned(), target.clone()))
                }
                _ => {}
            }
            Ok(Flow::Continue)
        });
    if let Err(e) = dispatch.flush()
        && err.is_none()
    {
        err = Some(crate::image::Error::io(&image.target, e));
    }
    bar.finish();
    progress.layer_done();
    Walked { summary, links, err }
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
    for _ in scans.iter().flatten() {
        progress.layer_done();
    }
    // Largest first, so the longest walk starts at once and small ones fill in around it.
    let mut todo: Vec<usize> = (0..image.layers.len()).filter(|i| scans[*i].is_none()).collect();
    todo.sort_by_key(|i| std::cmp::Reverse(image.layers[*i].size));
    let threads = rayon::current_num_threads().max(1);
    let fresh: Vec<(usize, LayerScan)> = if threads == 1 {
        todo.iter()
            .map(|&i| (i, scan_layer(image, &image.layers[i], scanner, limits, progress, diag)))
            .collect()
    } else {
        scan_layers_parallel(image, &todo, scanner, limits, threads, progress, diag)
    };
    for (i, scan) in fresh {
        cache.put(&image.layers[i], &scan, scanner, diag);
        scans[i] = Some(scan);
    }
    let scans: Vec<LayerScan> = scans.into_iter().map(Option::unwrap_or_default).collect();
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
