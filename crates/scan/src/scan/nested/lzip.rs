//! lzip streams inside layer files (`.lz`, `.tar.lz`), read member after
//! member as `lzip -d` reads them, with lzma-rust2's push decoder under the
//! same memory limit as xz (a member's header names its dictionary, up to
//! 512 MiB). Bytes after the last member are an error that says so (the
//! caller scans them as they are), never dropped in silence.

use std::io::{self, Read};

use lzma_rust2::{Action, LzipStream, Status};

use crate::image::compression;

/// Compressed bytes read from the source per step.
const INPUT: usize = 64 << 10;

/// A [`Read`] over the decoded bytes of an lzip stream.
pub(super) struct LzipReader<R> {
    src: R,
    stream: LzipStream,
    input: Vec<u8>,
    /// The unread part of `input`.
    at: usize,
    len: usize,
    /// The source ended.
    eof: bool,
    /// The last member ended.
    done: bool,
    /// Bytes followed it that start no member.
    trailing: bool,
}

impl<R: Read> LzipReader<R> {
    pub(super) fn new(src: R) -> Self {
        LzipReader {
            src,
            // Several members, as `lzip -d` reads them; each within the memory limit.
            stream: LzipStream::new_mem_limit(true, compression::XZ_MEMORY_KIB),
            input: vec![0; INPUT],
            at: 0,
            len: 0,
            eof: false,
            done: false,
            trailing: false,
        }
    }

    /// Fills `input` when all of it was decoded.
    fn refill(&mut self) -> io::Result<()> {
        if self.at < self.len || self.eof {
            return Ok(());
        }
        let n = super::fill(&mut self.src, &mut self.input)?;
        self.at = 0;
        self.len = n;
        self.eof = n < self.input.len();
        Ok(())
    }
}

impl<R: Read> Read for LzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.done {
                return match self.trailing {
                    true => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "bytes after the last lzip member that start no other",
                    )),
                    false => Ok(0),
                };
            }
            self.refill()?;
            let action = if self.eof { Action::Finish } else { Action::Run };
            let r = self.stream.process(&self.input[self.at..self.len], buf, action)?;
            self.at += r.bytes_consumed;
            if r.status == Status::StreamEnd {
                self.done = true;
                // What follows the last member and starts no other (the decoder keeps it
                // aside): in the file for anyone to read, so the caller scans it.
                self.trailing = !self.stream.unused_input().is_empty()
                    || self.at < self.len
                    || (!self.eof && super::fill(&mut self.src, &mut [0u8; 1])? > 0);
                if r.bytes_produced > 0 {
                    return Ok(r.bytes_produced);
                }
                continue;
            }
            if r.bytes_produced > 0 {
                return Ok(r.bytes_produced);
            }
            if r.bytes_consumed == 0 && (self.eof || self.at < self.len) {
                // No progress with all the input there is: the stream ends mid-member.
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "lzip stream cut short"));
            }
        }
    }
}
