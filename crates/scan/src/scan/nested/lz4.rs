//! lz4 streams inside layer files, read frame after frame as `lz4 -d` reads
//! them. lz4_flex's `FrameDecoder` ends at the end of its first frame: the
//! frames concatenated after it, and skippable frames (whose bytes anyone
//! can read), were never seen. Here each frame gets a decoder of its own,
//! the contents of skippable frames are kept for scanning (within
//! [`super::gzip::MAX_FIELD_BYTES`] per file), and bytes that start no
//! frame are an error that says so (the caller scans them as they are).

use std::io::{self, Read};

use lz4_flex::frame::FrameDecoder;

/// An lz4 frame's magic number.
const MAGIC: u32 = 0x184D_2204;

/// The contents of an lz4 stream's skippable frames, as
/// (`<lz4 skippable frame N>`, bytes), and the bytes past the budget not kept.
#[derive(Debug, Default)]
pub(super) struct Skipped {
    pub parts: Vec<(String, Vec<u8>)>,
    pub dropped: u64,
    held: usize,
}

/// The source of a frame: its magic number, read already, then the stream.
type Source<R> = io::Chain<io::Cursor<[u8; 4]>, R>;

/// An lz4 stream of frames.
pub(super) struct Lz4Frames<'s, R: Read> {
    /// Between frames: the stream. In a frame: its decoder.
    src: Option<R>,
    dec: Option<FrameDecoder<Source<R>>>,
    /// Frames met so far, skippable ones included.
    frames: u32,
    skipped: &'s mut Skipped,
}

impl<'s, R: Read> Lz4Frames<'s, R> {
    pub(super) fn new(src: R, skipped: &'s mut Skipped) -> Self {
        Lz4Frames { src: Some(src), dec: None, frames: 0, skipped }
    }

    /// At a frame boundary: starts the next frame, or keeps a skippable one. False at the
    /// end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        let Some(mut src) = self.src.take() else { return Ok(false) };
        let mut magic = [0u8; 4];
        let got = super::fill(&mut src, &mut magic)?;
        if got == 0 {
            return Ok(false);
        }
        let number = u32::from_le_bytes(magic);
        if got == 4 && number == MAGIC {
            self.frames += 1;
            self.dec = Some(FrameDecoder::new(io::Cursor::new(magic).chain(src)));
            return Ok(true);
        }
        if got == 4 && number & 0xFFFF_FFF0 == 0x184D_2A50 {
            self.frames += 1;
            let mut size = [0u8; 4];
            if super::fill(&mut src, &mut size)? < 4 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated lz4 skippable frame",
                ));
            }
            let size = u64::from(u32::from_le_bytes(size));
            let room = (super::gzip::MAX_FIELD_BYTES - self.skipped.held) as u64;
            let mut kept = Vec::new();
            (&mut src).take(size.min(room)).read_to_end(&mut kept)?;
            let rest = io::copy(&mut (&mut src).take(size.saturating_sub(room)), &mut io::sink())?;
            if (kept.len() as u64) + rest < size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated lz4 skippable frame",
                ));
            }
            self.skipped.held += kept.len();
            self.skipped.dropped += rest;
            if !kept.is_empty() {
                self.skipped.parts.push((format!("<lz4 skippable frame {}>", self.frames), kept));
            }
            self.src = Some(src);
            return Ok(true);
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the bytes after lz4 frame {} are not an lz4 frame", self.frames),
        ))
    }
}

impl<R: Read> Read for Lz4Frames<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(dec) = &mut self.dec {
                let n = dec.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                // The frame ended: the stream goes on after it.
                if let Some(dec) = self.dec.take() {
                    self.src = Some(dec.into_inner().into_inner().1);
                }
            }
            if !self.next_frame()? {
                return Ok(0);
            }
        }
    }
}
