//! Moves bytes between threads in blocks. [`BlockReader`] is the one reading
//! end of every such pipe in strata: a layer's stages here (reading and
//! decompressing, hashing the uncompressed stream, walking the tar run on
//! different cores), a big file streamed from a layer walk to its scan
//! worker (`pipeline::jobs`), and an engine export pushed through `Write`
//! (`sources::pipe`). Where the blocks go once read is the reader's
//! [`Recycle`]: back to this module's producer, to the scan workers' buffer
//! pool, or nowhere; recycled blocks are never allocated or zeroed per block.
//! [`Fused`] is the reading end's other half: a reader that stops at the
//! first error and keeps it, so what came before is scanned to its end.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};

/// Bytes per block.
pub const BLOCK: usize = 256 * 1024;
/// Blocks in flight between two stages (and so the most a pipe allocates).
const DEPTH: usize = 4;

/// What travels through a block pipe.
pub enum Msg {
    /// A block and how many of its bytes are data.
    Data(Vec<u8>, usize),
    /// The producer failed: the reader gets this error (every time it
    /// reads on), never a silent short stream.
    Fail(io::ErrorKind, String),
}

/// Where a [`BlockReader`] hands the blocks it has read.
pub trait Recycle {
    /// Takes back a block whose bytes were all read.
    fn recycle(&mut self, block: Vec<u8>);
}

/// Blocks go back to their producer (which may be gone: then they are freed).
impl Recycle for Sender<Vec<u8>> {
    fn recycle(&mut self, block: Vec<u8>) {
        let _ = self.send(block);
    }
}

/// Blocks are freed: the producer allocates each anew.
impl Recycle for () {
    fn recycle(&mut self, _: Vec<u8>) {}
}

/// The producing end: fills blocks and sends them on.
pub struct Source {
    tx: SyncSender<Msg>,
    pool: Receiver<Vec<u8>>,
    made: usize,
}

/// A [`Read`] over the blocks of a channel; each block, once read, goes to
/// the reader's [`Recycle`]. It ends when every sender is gone.
pub struct BlockReader<P: Recycle> {
    rx: Receiver<Msg>,
    pool: P,
    block: Vec<u8>,
    len: usize,
    pos: usize,
    failed: Option<(io::ErrorKind, String)>,
    done: bool,
}

/// The reading end of [`pipe`].
pub type Pipe = BlockReader<Sender<Vec<u8>>>;

/// The consumer went away (it stopped early or failed).
#[derive(Debug)]
pub struct Closed;

/// A connected source and pipe.
pub fn pipe() -> (Source, Pipe) {
    let (tx, rx) = sync_channel(DEPTH);
    let (pool_tx, pool_rx) = channel();
    (Source { tx, pool: pool_rx, made: 0 }, BlockReader::new(rx, pool_tx))
}

impl Source {
    /// An empty block to fill: one handed back, or a new one while fewer
    /// than the pipe's depth exist.
    ///
    /// # Errors
    /// [`Closed`] when the pipe was dropped.
    fn block(&mut self) -> Result<Vec<u8>, Closed> {
        match self.pool.try_recv() {
            Ok(b) => return Ok(b),
            Err(TryRecvError::Disconnected) => return Err(Closed),
            Err(TryRecvError::Empty) => {}
        }
        if self.made < DEPTH + 2 {
            self.made += 1;
            return Ok(vec![0; BLOCK]);
        }
        self.pool.recv().map_err(|_| Closed)
    }

    fn send(&self, msg: Msg) -> Result<(), Closed> {
        self.tx.send(msg).map_err(|_| Closed)
    }

    /// Reads `reader` to its end into blocks and sends them, calling
    /// `each` on every filled part first. A read error is passed on to the
    /// pipe (and returned).
    ///
    /// # Errors
    /// [`Closed`] (as an `Ok(Err)`) when the pipe was dropped; the reader's
    /// error as `Err`.
    pub fn pump(
        &mut self,
        reader: &mut dyn Read,
        each: &mut dyn FnMut(&[u8]),
    ) -> io::Result<Result<u64, Closed>> {
        let mut total = 0u64;
        loop {
            let Ok(mut block) = self.block() else { return Ok(Err(Closed)) };
            // The bytes read before an error go on first: a layer walk scans everything
            // decoded before a corrupt or truncated stream fails (issue: findings were lost
            // with the last block).
            let (n, failed) = fill_until_error(reader, &mut block);
            if n > 0 {
                each(&block[..n]);
                total += n as u64;
                if self.send(Msg::Data(block, n)).is_err() {
                    return Ok(Err(Closed));
                }
            }
            if let Some(e) = failed {
                let _ = self.send(Msg::Fail(e.kind(), e.to_string()));
                return Err(e);
            }
            if n == 0 {
                return Ok(Ok(total));
            }
        }
    }

    /// Passes every block of `from` on unchanged, calling `each` on its
    /// bytes (a middle stage: hashing). Errors are passed on too.
    pub fn relay(self, from: Pipe, each: &mut dyn FnMut(&[u8])) -> Result<u64, Closed> {
        let mut total = 0u64;
        // The blocks are the first producer's: the last pipe hands them back there.
        let Pipe { rx, .. } = from;
        for msg in rx {
            if let Msg::Data(block, n) = &msg {
                each(&block[..*n]);
                total += *n as u64;
            }
            self.send(msg)?;
        }
        Ok(total)
    }

    /// Lets the pipe at the end of a relay hand its blocks back to this
    /// source (call on the first stage's source before relaying).
    pub fn route_back(&mut self, last: &mut Pipe) {
        let (tx, rx) = channel();
        self.pool = rx;
        last.pool = tx;
    }
}

/// Reads until `buf` is full or the reader ends; returns bytes read.
///
/// # Errors
/// The reader's errors (interruptions are retried); the bytes read before
/// one are lost (see [`fill_until_error`] to keep them).
pub fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    match fill_until_error(reader, buf) {
        (_, Some(e)) => Err(e),
        (n, None) => Ok(n),
    }
}

/// Reads until `buf` is full, the reader ends or it fails: the bytes read
/// (`buf[..n]` holds them, whether or not an error followed) and the error.
pub fn fill_until_error(reader: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

impl<P: Recycle> BlockReader<P> {
    /// A reader over `rx`'s blocks, handing them to `pool` once read.
    pub fn new(rx: Receiver<Msg>, pool: P) -> Self {
        BlockReader { rx, pool, block: Vec::new(), len: 0, pos: 0, failed: None, done: false }
    }

    /// Hands every block still queued (and the one being read) to the pool
    /// unread, until the producer is done: a producer is never left blocked
    /// on a stream nobody reads.
    pub fn drain(self) {
        let BlockReader { rx, mut pool, block, .. } = self;
        if !block.is_empty() {
            pool.recycle(block);
        }
        for msg in rx {
            if let Msg::Data(block, _) = msg {
                pool.recycle(block);
            }
        }
    }
}

impl<P: Recycle> Read for BlockReader<P> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.len {
                let n = buf.len().min(self.len - self.pos);
                buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some((kind, msg)) = &self.failed {
                return Err(io::Error::new(*kind, msg.clone()));
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            let old = std::mem::take(&mut self.block);
            if !old.is_empty() {
                self.pool.recycle(old);
            }
            self.pos = 0;
            self.len = 0;
            match self.rx.recv() {
                Ok(Msg::Data(block, n)) => {
                    self.block = block;
                    self.len = n;
                }
                Ok(Msg::Fail(kind, msg)) => self.failed = Some((kind, msg)),
                // The producer finished (or died, which its join reports).
                Err(_) => self.done = true,
            }
        }
    }
}

/// A reader that ends at its inner reader's first error and keeps it: a scan
/// over it reads what came before to its end (a file's last window and the
/// hits found in it are not dropped), and the error is told after, by
/// [`Fused::take_error`]. The layer walk gives a file's bytes to the visitor
/// this way, and the nested readers a member's.
pub struct Fused<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R> Fused<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Fused { inner, error: None }
    }

    /// The error that ended the bytes, if one did.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }
}

impl<R: Read> Read for Fused<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                self.error = Some(e);
                Ok(0)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_through_a_relay() {
        let data: Vec<u8> = (0..3 * BLOCK + 123).map(|i| (i % 251) as u8).collect();
        let (mut first, pipe1) = pipe();
        let (second, mut pipe2) = pipe();
        first.route_back(&mut pipe2);
        let mut seen = 0u64;
        let mut out = Vec::new();
        std::thread::scope(|s| {
            let d = &data;
            s.spawn(move || first.pump(&mut d.as_slice(), &mut |_| {}).unwrap().unwrap());
            let relay = s.spawn(move || second.relay(pipe1, &mut |b| seen += b.len() as u64));
            pipe2.read_to_end(&mut out).unwrap();
            assert_eq!(relay.join().unwrap().unwrap(), data.len() as u64);
        });
        assert_eq!(out, data);
    }

    #[test]
    fn a_read_error_reaches_the_reader() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt deflate"));
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
        }
        let (mut source, mut p) = pipe();
        let producer = std::thread::spawn(move || source.pump(&mut Broken(1000), &mut |_| {}));
        let mut out = vec![0u8; 4096];
        // The 1000 bytes before the error arrive first (a walk scans them), then the error.
        let (n, err) = fill_until_error(&mut p, &mut out);
        assert_eq!(n, 1000);
        let err = err.unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("corrupt deflate"));
        assert!(producer.join().unwrap().is_err());
    }
}
