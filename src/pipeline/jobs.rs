//! Scan jobs: how a layer walk hands file contents to the scan workers so
//! that every core scans, whatever the image's shape. Small files travel
//! packed in batches; big files are cut into the same overlapping windows
//! a streaming scan would slide over, each window a job of its own; a big
//! file that must be read as one stream (an archive, UTF-16) is spooled to
//! a temporary file and scanned whole by one worker. Buffers are recycled
//! through a pool, never zeroed per file.

use std::io::{self, BufReader, Read, Seek, Write};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use crate::scan::content::{ContentScanner, FileHit, Limits};
use crate::scan::stream::{BUFFER, STEP, WindowHits, fill, window};
use crate::scan::{Scanner, dedupe};

/// Most files in one batch (bounds the bookkeeping of a batch of tiny files).
const BATCH_FILES: usize = 512;

/// Recycled [`BUFFER`]-byte job buffers, shared by walkers and workers.
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

/// One file of a batch: its entry number in the layer, path and bytes.
#[derive(Debug)]
pub struct Packed {
    seq: u64,
    path: String,
    range: std::ops::Range<usize>,
}

/// Work for a scan worker.
#[derive(Debug)]
pub enum Job {
    /// Whole small files packed in one buffer.
    Files {
        /// Layer index.
        layer: usize,
        /// The buffer ([`BUFFER`] bytes; the files' ranges say what is used).
        data: Vec<u8>,
        /// The files in it.
        files: Vec<Packed>,
    },
    /// One window of a big file.
    Window {
        /// Layer index.
        layer: usize,
        /// Entry number of the file in its layer.
        seq: u64,
        /// Image path.
        path: Arc<str>,
        /// Window number (0-based).
        index: u64,
        /// Whether no window follows.
        last: bool,
        /// The buffer; `len` bytes hold the window.
        data: Vec<u8>,
        /// Bytes in the window.
        len: usize,
    },
    /// A big file to read as one stream, copied to a temporary file.
    Spooled {
        /// Layer index.
        layer: usize,
        /// Entry number of the file in its layer.
        seq: u64,
        /// Image path.
        path: String,
        /// The copy, rewound.
        file: std::fs::File,
    },
}

/// What a worker found.
#[derive(Debug)]
pub enum Found {
    /// Hits of a whole file.
    File {
        /// Layer index.
        layer: usize,
        /// Entry number.
        seq: u64,
        /// Image path.
        path: String,
        /// Hits, de-duplicated.
        hits: Vec<FileHit>,
    },
    /// Hits of one window (kept even when empty: its newlines count).
    Window {
        /// Layer index.
        layer: usize,
        /// Entry number.
        seq: u64,
        /// Image path.
        path: Arc<str>,
        /// Window number.
        index: u64,
        /// What the window held.
        hits: WindowHits,
    },
    /// A note from inside a file (nested archive limits, corrupt members).
    Note {
        /// Layer index.
        layer: usize,
        /// The note.
        text: String,
        /// Whether bytes of the layer went unread because of it.
        unread: bool,
    },
}

/// Turns one layer walk's files into jobs (the walking thread's side).
pub struct Dispatch<'a> {
    layer: usize,
    jobs: &'a SyncSender<Job>,
    pool: &'a Pool,
    seq: u64,
    batch: Option<(Vec<u8>, Vec<Packed>, usize)>,
}

fn stopped() -> io::Error {
    io::Error::other("the scan workers stopped")
}

impl<'a> Dispatch<'a> {
    /// A dispatcher for layer `layer`.
    pub fn new(layer: usize, jobs: &'a SyncSender<Job>, pool: &'a Pool) -> Self {
        Dispatch { layer, jobs, pool, seq: 0, batch: None }
    }

    fn send(&self, job: Job) -> io::Result<()> {
        self.jobs.send(job).map_err(|_| stopped())
    }

    /// Reads one regular file of `size` bytes and queues its scan.
    ///
    /// # Errors
    /// Errors of the layer stream, of a spool file, or when no worker is left.
    pub fn file(&mut self, path: &str, size: u64, reader: &mut dyn Read) -> io::Result<()> {
        self.seq += 1;
        if size < BUFFER as u64 {
            return self.small(path, size as usize, reader);
        }
        self.big(path, size, reader)
    }

    fn small(&mut self, path: &str, size: usize, reader: &mut dyn Read) -> io::Result<()> {
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
        files.push(Packed { seq: self.seq, path: path.to_owned(), range: start..start + n });
        Ok(())
    }

    fn big(&mut self, path: &str, size: u64, reader: &mut dyn Read) -> io::Result<()> {
        let mut data = self.pool.take();
        let n = fill(reader, &mut data)?;
        if n < BUFFER || ContentScanner::needs_stream(&data[..n]) {
            return self.spool(path, data, n, reader);
        }
        let path: Arc<str> = Arc::from(path);
        let mut len = n;
        let mut index = 0;
        let mut ended = false;
        loop {
            let (base, last_by_size) = window(index, size);
            // A stream that ended early (the walk reports it) ends the windows too.
            let last = last_by_size || ended;
            let mut next = None;
            if !last {
                // The next window starts STEP bytes on: it shares this one's tail.
                let mut buf = self.pool.take();
                let keep = BUFFER - STEP;
                buf[..keep].copy_from_slice(&data[STEP..BUFFER]);
                let want = (size - base - STEP as u64).min(BUFFER as u64) as usize;
                let got = keep + fill(reader, &mut buf[keep..want])?;
                ended = got < want;
                next = Some((buf, got));
            }
            let job = Job::Window {
                layer: self.layer,
                seq: self.seq,
                path: Arc::clone(&path),
                index,
                last,
                data,
                len,
            };
            self.send(job)?;
            match next {
                Some((buf, got)) => {
                    data = buf;
                    len = got;
                    index += 1;
                }
                None => return Ok(()),
            }
        }
    }

    fn spool(
        &mut self,
        path: &str,
        head: Vec<u8>,
        n: usize,
        reader: &mut dyn Read,
    ) -> io::Result<()> {
        let spooled = (|| {
            let mut file = tempfile::tempfile()?;
            file.write_all(&head[..n])?;
            Ok::<_, io::Error>(file)
        })();
        self.pool.give(head);
        let mut file = spooled.map_err(|e| io::Error::other(format!("{path}: spool file: {e}")))?;
        io::copy(reader, &mut file)?;
        file.rewind()?;
        self.send(Job::Spooled { layer: self.layer, seq: self.seq, path: path.to_owned(), file })
    }

    /// Sends the batch being filled.
    ///
    /// # Errors
    /// When no worker is left.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.batch.take() {
            Some((data, files, _)) if !files.is_empty() => {
                self.send(Job::Files { layer: self.layer, data, files })
            }
            Some((data, _, _)) => {
                self.pool.give(data);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A scan worker: takes jobs until every walker is done.
pub fn work(
    scanner: &Scanner,
    limits: Limits,
    jobs: &Mutex<Receiver<Job>>,
    pool: &Pool,
) -> Vec<Found> {
    let mut cs = ContentScanner::new(scanner, limits);
    let mut found = Vec::new();
    loop {
        // The lock is held only to take one job.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok(job) = job else { break };
        let layer = match job {
            Job::Files { layer, data, files } => {
                for f in files {
                    // In-memory reads cannot fail, so only nested-archive notes can come out.
                    if let Ok(hits) = cs.scan_file(&f.path, &mut &data[f.range])
                        && !hits.is_empty()
                    {
                        found.push(Found::File { layer, seq: f.seq, path: f.path, hits });
                    }
                }
                pool.give(data);
                layer
            }
            Job::Window { layer, seq, path, index, last, data, len } => {
                let hits = scanner.scan_window(&data[..len], index == 0, last);
                pool.give(data);
                found.push(Found::Window { layer, seq, path, index, hits });
                layer
            }
            Job::Spooled { layer, seq, path, file } => {
                match cs.scan_file(&path, &mut BufReader::new(file)) {
                    Ok(hits) if !hits.is_empty() => {
                        found.push(Found::File { layer, seq, path, hits })
                    }
                    Ok(_) => {}
                    Err(e) => found.push(Found::Note {
                        layer,
                        text: format!("{path}: cannot read its spooled copy: {e}"),
                        unread: true,
                    }),
                }
                layer
            }
        };
        found.extend(cs.notes.drain(..).map(|text| Found::Note { layer, text, unread: false }));
    }
    found
}

/// Hits and notes of one layer, put back together from every worker.
#[derive(Debug, Default)]
pub struct Collected {
    /// `(entry number, path, hit)`.
    pub hits: Vec<(u64, String, FileHit)>,
    /// Notes, sorted.
    pub notes: Vec<String>,
    /// Whether some file could not be read back.
    pub unread: bool,
}

/// Sorts what the workers found into layers, joining big files' windows:
/// offsets and lines become the file's, then overlapping hits are
/// de-duplicated as one streaming scan of the file would.
pub fn collect(scanner: &Scanner, found: Vec<Found>, layers: usize) -> Vec<Collected> {
    let mut out: Vec<Collected> = (0..layers).map(|_| Collected::default()).collect();
    let mut windows =
        std::collections::BTreeMap::<(usize, u64), Vec<(u64, Arc<str>, WindowHits)>>::new();
    for f in found {
        match f {
            Found::File { layer, seq, path, hits } => {
                out[layer].hits.extend(hits.into_iter().map(|h| (seq, path.clone(), h)));
            }
            Found::Window { layer, seq, path, index, hits } => {
                windows.entry((layer, seq)).or_default().push((index, path, hits));
            }
            Found::Note { layer, text, unread } => {
                out[layer].notes.push(text);
                out[layer].unread |= unread;
            }
        }
    }
    for ((layer, seq), mut parts) in windows {
        parts.sort_by_key(|p| p.0);
        let Some(path) = parts.first().map(|p| p.1.to_string()) else { continue };
        let mut lines_before = 0u64;
        let mut hits = Vec::new();
        for (index, _, w) in parts {
            let base = index * STEP as u64;
            hits.extend(w.hits.into_iter().map(|mut h| {
                h.offset += base;
                h.line += lines_before;
                h
            }));
            lines_before += w.newlines;
        }
        let hits = dedupe(scanner, hits);
        out[layer].hits.extend(
            hits.into_iter().map(|hit| (seq, path.clone(), FileHit { inner_path: None, hit })),
        );
    }
    for c in &mut out {
        c.notes.sort();
    }
    out
}
