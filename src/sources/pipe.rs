//! A bounded in-memory pipe between a thread that produces bytes (an engine
//! export being searched, a container layer being built) and the reader
//! that walks them. At most [`DEPTH`] chunks of [`CHUNK`] bytes wait in
//! it, so memory stays flat whatever flows through. The writer can end
//! the stream with an error, which the reader gets instead of a silent
//! short read; when the reader goes away, the writer's next write fails
//! with `BrokenPipe`, so the producer stops.
//!
//! This is the writing side only, pushed through `Write`, which is what
//! `tar::Builder` and `io::copy` need; the reading side is the same
//! [`BlockReader`] every block pipe uses (`image::pipe`), its chunks freed
//! once read.

use std::io::{self, Write};
use std::sync::mpsc::{SyncSender, sync_channel};

use crate::image::pipe::{BlockReader, Msg};

/// Bytes per message.
pub const CHUNK: usize = 256 * 1024;

/// Messages in flight before the writer waits.
pub const DEPTH: usize = 4;

/// A new pipe.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(DEPTH);
    (PipeWriter { tx, buf: Vec::with_capacity(CHUNK) }, BlockReader::new(rx, ()))
}

/// The writing half.
pub struct PipeWriter {
    tx: SyncSender<Msg>,
    buf: Vec<u8>,
}

impl PipeWriter {
    /// Ends the stream with `err`: the reader gets it after the bytes
    /// written so far.
    pub fn fail(mut self, err: io::Error) {
        let _ = self.flush();
        let _ = self.tx.send(Msg::Fail(err.kind(), err.to_string()));
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let len = chunk.len();
        self.tx
            .send(Msg::Data(chunk, len))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader stopped reading"))
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        // What was written is delivered even when the producer forgot to flush.
        let _ = self.flush();
    }
}

/// The reading half: ends when the writer is dropped, fails (on every read
/// from then on) when it failed.
pub type PipeReader = BlockReader<()>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn bytes_arrive_in_order_and_errors_after_them() {
        let (mut w, mut r) = pipe();
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let t = std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.fail(io::Error::other("export broke off"));
        });
        let mut got = vec![0u8; data.len()];
        r.read_exact(&mut got).unwrap();
        assert_eq!(got, data);
        let e = r.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.to_string(), "export broke off");
        // A failed stream never turns into a clean end.
        assert!(r.read(&mut [0u8; 8]).is_err());
        t.join().unwrap();
    }

    #[test]
    fn a_dropped_reader_stops_the_writer() {
        let (mut w, r) = pipe();
        drop(r);
        let e = w.write_all(&vec![0u8; 2 * CHUNK]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_dropped_writer_ends_the_stream() {
        let (mut w, mut r) = pipe();
        w.write_all(b"tail").unwrap();
        drop(w);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "tail");
    }
}
