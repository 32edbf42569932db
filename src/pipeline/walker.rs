//! One layer's walk and how walks share the cores: what the walker does
//! with each entry (its name and link target, git stores, package
//! metadata, files to scan), how a
//! layer's hits, notes and budgets are put together whoever scanned them,
//! and the schedule that walks several layers at once over one pool of
//! scan workers.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Mutex, OnceLock};

use super::jobs::{self, Dispatch, Jobs, LayerOut, Pool};
use super::kept::Kept;
use super::{LayerRead, LayerScan, Options};
use crate::image::layer::{self, EntryKind, Flow, WalkSummary};
use crate::image::{Image, Layer};
use crate::scan::content::{ContentScanner, FileHit};
use crate::scan::git::{self, names::BlobNames};
use crate::scan::names::{Link, NameScan};
use crate::scan::packages::{self, PackageRoots};

/// Where a layer's bytes come from and who scans its files.
pub(super) enum Mode<'a, 'b> {
    /// From the image's store; decompression and scanning on this thread.
    Inline,
    /// From the image's store, decompressed on threads of its own; files
    /// scanned by the workers.
    Overlapped(Dispatch<'a>),
    /// From a blob the caller opened, read on this thread; files scanned
    /// by the workers (or here, without them).
    Blob(Box<dyn Read + 'b>, Option<Dispatch<'a>>),
}

/// What a walker learned of one layer, before the workers' part is added.
pub(super) struct Walked {
    summary: WalkSummary,
    err: Option<crate::image::Error>,
    kept: Kept,
    roots: PackageRoots,
    /// Names of blobs this layer's git commits reach but other layers hold.
    git_names: BlobNames,
    notes: Vec<String>,
    unread: Vec<String>,
    capped: u64,
    /// Entries the walk handed on (tar entries and parts outside the tar):
    /// none means nothing of the layer was scanned.
    visited: u64,
}

/// Walks one layer; files are scanned here or handed on, as `mode` says.
pub(super) fn walk(image: &Image, layer: &Layer, run: &Options<'_>, mode: Mode<'_, '_>) -> Walked {
    let bar = run.progress.layer(layer.index, layer.size());
    let limits = run.limits;
    let mut cs = ContentScanner::new(run.scanner, limits);
    let mut kept = Kept::new(limits.max_findings);
    let mut git = git::Collector::new(limits.git);
    // Entry ordinals of the git store files, for their hits.
    let mut git_ordinals: HashMap<String, u32> = HashMap::new();
    let mut roots = PackageRoots::default();
    let (source, mut dispatch) = match mode {
        Mode::Inline => (None, None),
        Mode::Overlapped(d) => (None, Some(d)),
        Mode::Blob(b, d) => (Some(b), d),
    };
    let overlapped = source.is_none() && dispatch.is_some();
    let mut names = NameScan::new(run.scanner);
    let mut visited = 0u64;
    let mut visit = |entry: &layer::Entry<'_>, content: Option<&mut dyn Read>| {
        visited += 1;
        // Bytes from outside the tar stream: scanned as they are, named by a pseudo-path
        // that is no entry's (no name scan, no package or git store there).
        if *entry.kind == EntryKind::Outside {
            if let Some(reader) = content {
                hand_on(&mut dispatch, &mut kept, &mut cs, entry, reader)?;
            }
            return Ok(Flow::Continue);
        }
        let link = match entry.kind {
            EntryKind::Symlink(t) => Link::Symlink(t),
            EntryKind::Hardlink(t) => Link::Hardlink(t),
            _ => Link::None,
        };
        names.add(entry.path, entry.ordinal, *entry.kind == EntryKind::Dir, link, entry.records);
        let (EntryKind::File, Some(reader)) = (entry.kind, content) else {
            return Ok(Flow::Continue);
        };
        // Git object stores are read whole after the walk (see scan::git).
        if git::classify(entry.path).is_some() {
            packages::roots_from(entry.path, None, &mut roots);
            git_ordinals.insert(entry.path.to_owned(), entry.ordinal);
            git.add(entry.path, reader)?;
            return Ok(Flow::Continue);
        }
        let metadata;
        let reader: &mut dyn Read =
            if packages::wants_content(entry.path) && entry.size <= packages::MAX_METADATA_FILE {
                let mut data = Vec::with_capacity(entry.size as usize);
                reader.read_to_end(&mut data)?;
                packages::roots_from(entry.path, Some(&data), &mut roots);
                metadata = data;
                &mut metadata.as_slice()
            } else {
                packages::roots_from(entry.path, None, &mut roots);
                reader
            };
        hand_on(&mut dispatch, &mut kept, &mut cs, entry, reader)?;
        Ok(Flow::Continue)
    };
    let (summary, mut err) = match source {
        Some(blob) => layer::walk_blob(image, layer, blob, run.diag, &bar, &mut visit),
        None if overlapped => layer::walk_overlapped(image, layer, run.diag, &bar, &mut visit),
        None => layer::walk_with_progress(image, layer, run.diag, &bar, &mut visit),
    };
    if let Some(mut d) = dispatch
        && let Err(e) = d.flush()
        && err.is_none()
    {
        err = Some(crate::image::Error::io(image.target(), e));
    }
    for h in names.finish() {
        let fh = FileHit { inner_path: None, name: Some(h.field), hit: h.hit };
        kept.add(&h.path, h.ordinal, vec![fh]);
    }
    let (git_hits, git_errors, git_names) = cs.scan_git_stores(git);
    for (path, fh) in git_hits {
        let ordinal = git_ordinals.get(&path).copied().unwrap_or_default();
        kept.add(&path, ordinal, vec![fh]);
    }
    // A git store read only in part is an incomplete scan, not a warning.
    let mut unread = git_errors;
    unread.append(&mut cs.unread);
    bar.finish();
    run.progress.layer_done();
    roots.extend(&cs.packages);
    Walked {
        summary,
        err,
        kept,
        roots,
        git_names,
        notes: cs.notes,
        unread,
        capped: cs.capped,
        visited,
    }
}

/// A file's bytes to the workers, or scanned here when there are none.
fn hand_on(
    dispatch: &mut Option<Dispatch<'_>>,
    kept: &mut Kept,
    cs: &mut ContentScanner<'_>,
    entry: &layer::Entry<'_>,
    reader: &mut dyn Read,
) -> std::io::Result<()> {
    match dispatch {
        Some(d) => d.file(entry.path, entry.ordinal, entry.size, reader),
        None => {
            kept.add(entry.path, entry.ordinal, cs.scan_file(entry.path, reader)?);
            Ok(())
        }
    }
}

/// Puts a layer's walk and its workers' findings together, applies the
/// run budget, and reports the layer's notes and problems (sorted, so
/// they do not depend on which thread met them).
pub(super) fn finish(
    image: &Image,
    layer: &Layer,
    walked: Walked,
    outs: Vec<LayerOut>,
    run: &Options<'_>,
) -> LayerScan {
    let Walked {
        summary,
        err,
        mut kept,
        mut roots,
        git_names,
        mut notes,
        mut unread,
        mut capped,
        visited,
    } = walked;
    for o in outs {
        kept.merge(o.kept);
        roots.extend(&o.packages);
        notes.extend(o.notes);
        unread.extend(o.unread);
        capped += o.capped;
    }
    let (hits, over_run) = kept.finish();
    let limits = run.limits;
    run.scanner.suppressed.over_file_budget.fetch_add(capped, Ordering::Relaxed);
    notes.sort();
    if over_run > 0 {
        run.scanner.suppressed.over_run_budget.fetch_add(over_run, Ordering::Relaxed);
        capped += over_run;
        notes.push(format!(
            "{over_run} more findings not listed (budget: {} findings per run)",
            limits.max_findings
        ));
    }
    unread.sort();
    unread.extend(summary.unread);
    let read = match (err.is_none() && unread.is_empty(), visited) {
        (true, _) => LayerRead::Complete,
        (false, 0) => LayerRead::None,
        (false, _) => LayerRead::Partial,
    };
    for note in notes {
        run.diag.warn(format!("{}: layer {}: {note}", image.target(), layer.index));
    }
    for unread in unread {
        run.diag.error(format!("{}: layer {}: {unread}", image.target(), layer.index));
    }
    if let Some(e) = err {
        run.diag.error(e.to_string());
    }
    LayerScan {
        index: summary.index,
        hits,
        packages: roots,
        git_names,
        bytes: summary.uncompressed_bytes,
        read,
        blob_digest: summary.blob_digest,
        capped,
    }
}

/// What the scan workers found, per layer.
pub(super) struct Found {
    per_layer: HashMap<usize, Vec<LayerOut>>,
    /// A worker died: what it had found is gone, in whichever layers.
    lost: bool,
}

impl Found {
    /// Puts `layer`'s walk together with what the workers found in it (its
    /// jobs were dispatched under `key`; see [`finish`]). A layer the walk
    /// read whole is still partial when a worker's share of it may be lost.
    pub(super) fn finish(
        &mut self,
        image: &Image,
        layer: &Layer,
        key: usize,
        walked: Walked,
        run: &Options<'_>,
    ) -> LayerScan {
        let outs = self.per_layer.remove(&key).unwrap_or_default();
        let mut scan = finish(image, layer, walked, outs, run);
        if self.lost && scan.read == LayerRead::Complete {
            scan.read = LayerRead::Partial;
        }
        scan
    }
}

/// Runs `body` with `threads` scan workers taking jobs from the queue it
/// is given; returns its result and what the workers found, per layer.
/// Without a live worker, a walk fails with an error rather than hang.
pub(super) fn with_workers<T>(
    run: &Options<'_>,
    threads: usize,
    body: impl FnOnce(&Jobs, &Pool) -> T,
) -> (T, Found) {
    let pool = Pool::default();
    let (tx, rx) = sync_channel::<jobs::Job>(threads);
    let rx = Mutex::new(rx);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (rx, pool) = (&rx, &pool);
                scope.spawn(move || jobs::work(run.scanner, run.limits, rx, pool))
            })
            .collect();
        let out = body(&tx, &pool);
        drop(tx);
        let mut found = Found { per_layer: HashMap::new(), lost: false };
        for w in workers {
            match w.join() {
                Ok(per_layer) => {
                    for (layer, o) in per_layer {
                        found.per_layer.entry(layer).or_default().push(o);
                    }
                }
                Err(_) => found.lost = true,
            }
        }
        if found.lost {
            run.diag.error("a scan worker failed: some files were not scanned".to_owned());
        }
        (out, found)
    })
}

/// Scans the layers `todo` (largest first) with `threads` threads, all at
/// once: up to `threads` layers are walked at a time, each decompressing
/// on threads of its own, and `threads` workers scan what every walk hands
/// them, so big and small layers share the cores with no serial phase.
pub(super) fn scan_parallel(
    image: &Image,
    todo: &[usize],
    run: &Options<'_>,
    threads: usize,
) -> Vec<(usize, LayerScan)> {
    let next = AtomicUsize::new(0);
    let failed = OnceLock::new();
    let (walks, mut found) = with_workers(run, threads, |tx, pool| {
        std::thread::scope(|scope| {
            let walkers: Vec<_> = (0..threads.min(todo.len()))
                .map(|_| {
                    let next = &next;
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        while let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
                            let layer = &image.layers()[i];
                            let mode = Mode::Overlapped(Dispatch::new(i, tx, pool));
                            done.push((i, walk(image, layer, run, mode)));
                        }
                        done
                    })
                })
                .collect();
            let mut walks = Vec::new();
            for w in walkers {
                match w.join() {
                    Ok(done) => walks.extend(done),
                    Err(_) => {
                        let _ = failed.set(());
                    }
                }
            }
            walks
        })
    });
    if failed.get().is_some() {
        run.diag
            .error(format!("{}: a layer walk failed; its layers were not scanned", image.target()));
    }
    let mut walks: Vec<(usize, Walked)> = walks;
    walks.sort_by_key(|w| w.0);
    walks
        .into_iter()
        .map(|(i, w)| (i, found.finish(image, &image.layers()[i], i, w, run)))
        .collect()
}
