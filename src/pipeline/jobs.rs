//! Scan jobs: how a layer walk hands file contents to the scan workers.
//! Small files travel packed in batches; a bigger file is streamed in
//! blocks to one worker, which scans it with the same
//! [`ContentScanner::scan_file`] a single-threaded walk calls, so per-file
//! budgets (hits per rule, candidates examined, decoding work) see the file
//! in order and findings do not depend on the thread count. Buffers are
//! recycled through a pool, never zeroed per file; the worker reads a
//! streamed file through the same [`BlockReader`] as a layer's own stages.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::kept::Kept;
use crate::image::pipe::{BlockReader, Msg, Recycle};
use crate::scan::Scanner;
use crate::scan::content::{ContentScanner, Limits};
use crate::scan::packages::PackageRoots;
use crate::scan::stream::{BUFFER, fill};

/// Most files in one batch (bounds the bookkeeping of a batch of tiny files).
const BATCH_FILES: usize = 512;
/// Blocks of one streamed file in flight between its walker and its worker.
const STREAM_DEPTH: usize = 1;

/// Recycled [`BUFFER`]-byte buffers, shared by walkers and workers.
#[derive(Debug, Default)]
pub struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl Pool {
    fn take(&self) -> Vec<u8> {
        let kept = self.free.lock().ok().and_then(|mut f| f.pop());
        // Zeroed once, when first made; a kept buffer is reused as it is.
        kept.unwrap_or_else(|| vec![0; BUFFER])
    }

    fn give(&self, buffer: Vec<u8>) {
        if let Ok(mut f) = self.free.lock() {
            f.push(buffer);
        }
    }
}

/// One file of a batch.
#[derive(Debug)]
struct Packed {
    path: String,
    ordinal: u32,
    range: std::ops::Range<usize>,
}

/// Work for a scan worker.
pub struct Job {
    layer: usize,
    work: Work,
}

enum Work {
    /// Whole small files packed in one buffer.
    Files { data: Vec<u8>, files: Vec<Packed> },
    /// One file, arriving in blocks.
    Stream { path: String, ordinal: u32, blocks: Receiver<Msg> },
}

/// The queue from walkers to workers.
pub type Jobs = SyncSender<Job>;

fn stopped() -> io::Error {
    io::Error::other("the scan workers stopped")
}

/// Turns one layer walk's files into jobs (the walking thread's side).
pub struct Dispatch<'a> {
    layer: usize,
    jobs: &'a Jobs,
    pool: &'a Pool,
    batch: Option<(Vec<u8>, Vec<Packed>, usize)>,
}

impl<'a> Dispatch<'a> {
    /// A dispatcher for layer `layer`.
    pub fn new(layer: usize, jobs: &'a Jobs, pool: &'a Pool) -> Self {
        Dispatch { layer, jobs, pool, batch: None }
    }

    fn send(&self, work: Work) -> io::Result<()> {
        self.jobs.send(Job { layer: self.layer, work }).map_err(|_| stopped())
    }

    /// Reads one regular file of `size` bytes and queues its scan.
    ///
    /// # Errors
    /// Errors of the layer stream, or when no worker is left.
    pub fn file(
        &mut self,
        path: &str,
        ordinal: u32,
        size: u64,
        reader: &mut dyn Read,
    ) -> io::Result<()> {
        match usize::try_from(size) {
            Ok(size) if size < BUFFER => self.small(path, ordinal, size, reader),
            _ => self.stream(path, ordinal, reader),
        }
    }

    fn small(
        &mut self,
        path: &str,
        ordinal: u32,
        size: usize,
        reader: &mut dyn Read,
    ) -> io::Result<()> {
        let fits = self
            .batch
            .as_ref()
            .is_some_and(|(_, files, used)| used + size <= BUFFER && files.len() < BATCH_FILES);
        if !fits {
            self.flush()?;
            self.batch = Some((self.pool.take(), Vec::new(), 0));
        }
        let Some((data, files, used)) = self.batch.as_mut() else { return Ok(()) };
        let start = *used;
        let n = fill(reader, &mut data[start..start + size])?;
        *used += n;
        files.push(Packed { path: path.to_owned(), ordinal, range: start..start + n });
        Ok(())
    }

    fn stream(&mut self, path: &str, ordinal: u32, reader: &mut dyn Read) -> io::Result<()> {
        let (tx, blocks) = sync_channel(STREAM_DEPTH);
        self.send(Work::Stream { path: path.to_owned(), ordinal, blocks })?;
        loop {
            let mut block = self.pool.take();
            let n = match fill(reader, &mut block) {
                Ok(n) => n,
                Err(e) => {
                    self.pool.give(block);
                    let _ = tx.send(Msg::Fail(e.kind(), e.to_string()));
                    return Err(e);
                }
            };
            if n == 0 {
                self.pool.give(block);
                return Ok(());
            }
            let full = n == block.len();
            tx.send(Msg::Data(block, n)).map_err(|_| stopped())?;
            if !full {
                return Ok(());
            }
        }
    }

    /// Sends the batch being filled.
    ///
    /// # Errors
    /// When no worker is left.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.batch.take() {
            Some((data, files, _)) if !files.is_empty() => self.send(Work::Files { data, files }),
            Some((data, _, _)) => {
                self.pool.give(data);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A streamed file's blocks go back to the pool once read.
impl Recycle for &Pool {
    fn recycle(&mut self, block: Vec<u8>) {
        self.give(block);
    }
}

/// What a worker found in one layer.
#[derive(Debug)]
pub struct LayerOut {
    /// Hits within the run budget.
    pub kept: Kept,
    /// Notes of the files' scans.
    pub notes: Vec<String>,
    /// What the scans left unread, each described.
    pub unread: Vec<String>,
    /// Hits dropped by the per-file budget.
    pub capped: u64,
    /// Package roots proven inside archives the worker scanned.
    pub packages: PackageRoots,
}

/// A scan worker: takes jobs until every walker is done; returns what it
/// found per layer.
pub fn work(
    scanner: &Scanner,
    limits: Limits,
    jobs: &Mutex<Receiver<Job>>,
    pool: &Pool,
) -> BTreeMap<usize, LayerOut> {
    let mut cs = ContentScanner::new(scanner, limits);
    let mut out: BTreeMap<usize, LayerOut> = BTreeMap::new();
    loop {
        // The lock is held only to take one job.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok(Job { layer, work }) = job else { break };
        let o = out.entry(layer).or_insert_with(|| LayerOut {
            kept: Kept::new(limits.max_findings),
            notes: Vec::new(),
            unread: Vec::new(),
            capped: 0,
            packages: PackageRoots::default(),
        });
        match work {
            Work::Files { data, files } => {
                for f in files {
                    // In-memory reads cannot fail.
                    if let Ok(hits) = cs.scan_file(&f.path, &mut &data[f.range]) {
                        o.kept.add(&f.path, f.ordinal, hits);
                    }
                }
                pool.give(data);
            }
            Work::Stream { path, ordinal, blocks } => {
                let mut reader = BlockReader::new(blocks, pool);
                // The layer walk ends a file's bytes at a stream error (and then fails,
                // reporting it), so a scan here sees a short file, never a failed read.
                if let Ok(hits) = cs.scan_file(&path, &mut reader) {
                    o.kept.add(&path, ordinal, hits);
                }
                // What the scan left unread: the walker is never blocked on a file
                // nobody reads (the layer walk reads every entry to its end anyway).
                reader.drain();
            }
        }
        o.notes.append(&mut cs.notes);
        o.unread.append(&mut cs.unread);
        o.capped += std::mem::take(&mut cs.capped);
        o.packages.extend(&std::mem::take(&mut cs.packages));
    }
    out
}
