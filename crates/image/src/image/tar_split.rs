//! Rebuilds a layer's original tar from containers/storage's tar-split
//! record plus the layer's extracted files, as a stream.
//!
//! The record (`<id>.tar-split.gz`) is gzip-compressed JSON lines, one
//! entry per line, in archive order (the format of vbatts/tar-split):
//! `{"type":2,"payload":"<base64>"}` is a *segment* of raw archive bytes
//! (headers, padding, the end-of-archive blocks), copied as they are;
//! `{"type":1,"name":"etc/passwd","size":N,"payload":"<crc64>"}` is a
//! *file* whose N content bytes are read from the layer's directory
//! (`name_raw`, base64, replaces `name` when it is not UTF-8). Whiteouts
//! are ordinary headers inside segments, so they come back byte for byte.
//!
//! The SHA-256 of the rebuilt stream must equal the layer's recorded
//! uncompressed digest; at its end the reader checks that and fails the
//! read when it does not, so a layer whose files changed since it was
//! stored never passes for the original.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// Longest JSON line accepted (segments carry headers and padding, and PAX
/// headers can be long, but never this long).
const MAX_LINE: u64 = 16 << 20;

/// One tar-split entry.
#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    payload: Option<String>,
}

const FILE_TYPE: u8 = 1;
const SEGMENT_TYPE: u8 = 2;

enum Current {
    None,
    Bytes(Cursor<Vec<u8>>),
    File { file: io::Take<File>, name: String },
}

/// The rebuilt layer tar, read as it is assembled.
pub struct Rebuild {
    lines: BufReader<flate2::read::MultiGzDecoder<BufReader<File>>>,
    /// The layer's files.
    root: PathBuf,
    /// `root` with symlinks resolved, to keep file reads inside it.
    canonical_root: PathBuf,
    current: Current,
    hasher: Option<Sha256>,
    /// `sha256:<hex>` the rebuilt stream must hash to.
    expected: Option<String>,
    /// The record, for messages.
    record: PathBuf,
    line_no: u64,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Rebuild {
    /// Starts rebuilding from `record` (the `.tar-split.gz` file) and the
    /// layer's files under `root`; `expected` is the recorded diff digest.
    ///
    /// # Errors
    /// When the record or the directory cannot be opened.
    pub fn open(record: &Path, root: &Path, expected: Option<String>) -> io::Result<Rebuild> {
        let f = File::open(record)?;
        let canonical_root = root.canonicalize()?;
        Ok(Rebuild {
            lines: BufReader::with_capacity(
                64 * 1024,
                flate2::read::MultiGzDecoder::new(BufReader::new(f)),
            ),
            root: root.to_owned(),
            canonical_root,
            current: Current::None,
            hasher: Some(Sha256::new()),
            expected,
            record: record.to_owned(),
            line_no: 0,
        })
    }

    /// Reads the next entry and makes it current; `false` at the end.
    fn advance(&mut self) -> io::Result<bool> {
        let mut line = Vec::new();
        let n = (&mut self.lines).take(MAX_LINE + 1).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        let at = || format!("{} line {}", self.record.display(), self.line_no);
        if n as u64 > MAX_LINE {
            return Err(invalid(format!("{}: entry longer than {MAX_LINE} bytes", at())));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            self.current = Current::None;
            return Ok(true);
        }
        let entry: Entry = serde_json::from_slice(&line)
            .map_err(|e| invalid(format!("{}: not a tar-split entry: {e}", at())))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        match entry.kind {
            SEGMENT_TYPE => {
                let bytes = match entry.payload.as_deref() {
                    Some(p) => b64
                        .decode(p)
                        .map_err(|e| invalid(format!("{}: bad segment payload: {e}", at())))?,
                    None => Vec::new(),
                };
                self.current = Current::Bytes(Cursor::new(bytes));
            }
            FILE_TYPE => {
                let size = entry.size.unwrap_or(0);
                let size = u64::try_from(size)
                    .map_err(|_| invalid(format!("{}: negative file size", at())))?;
                if size == 0 {
                    // Hardlinks, empty files, directories: the header segment is all there is.
                    self.current = Current::None;
                    return Ok(true);
                }
                let name: Vec<u8> = match (&entry.name_raw, &entry.name) {
                    (Some(raw), _) if !raw.is_empty() => b64
                        .decode(raw)
                        .map_err(|e| invalid(format!("{}: bad name_raw: {e}", at())))?,
                    (_, Some(name)) => name.as_bytes().to_vec(),
                    _ => return Err(invalid(format!("{}: file entry without a name", at()))),
                };
                let shown = String::from_utf8_lossy(&name).into_owned();
                let path = self.member_path(&name).ok_or_else(|| {
                    invalid(format!("{}: file name {shown:?} leaves the layer directory", at()))
                })?;
                let file = File::open(&path).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("layer file {} (from {}): {e}", path.display(), at()),
                    )
                })?;
                self.current = Current::File { file: file.take(size), name: shown };
            }
            other => {
                return Err(invalid(format!("{}: unknown entry type {other}", at())));
            }
        }
        Ok(true)
    }

    /// `root/name`, refused when the name or a symlink inside the layer
    /// directory would lead outside it.
    fn member_path(&self, name: &[u8]) -> Option<PathBuf> {
        let rel = Path::new(std::ffi::OsStr::from_bytes(name));
        let mut clean = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::Normal(p) => clean.push(p),
                Component::CurDir | Component::RootDir => {}
                Component::ParentDir | Component::Prefix(_) => return None,
            }
        }
        let joined = self.root.join(&clean);
        let canonical = joined.canonicalize().ok()?;
        canonical.starts_with(&self.canonical_root).then_some(canonical)
    }

    /// Checks the digest once the record is exhausted.
    fn finish(&mut self) -> io::Result<()> {
        let Some(hasher) = self.hasher.take() else { return Ok(()) };
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        match &self.expected {
            Some(expected) if *expected != actual => Err(invalid(format!(
                // The cause first: error texts are cut at their first ": " when printed.
                "its files changed since it was stored (the layer rebuilt from {} and {} hashes to {actual}; the storage records {expected})",
                self.record.display(),
                self.root.display()
            ))),
            _ => Ok(()),
        }
    }
}

impl Read for Rebuild {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = match &mut self.current {
                Current::None => 0,
                Current::Bytes(c) => c.read(buf)?,
                Current::File { file, name } => {
                    let left = file.limit();
                    let n = file.read(buf)?;
                    if n == 0 && left > 0 {
                        return Err(invalid(format!(
                            "layer file {name} is {left} bytes shorter than its tar-split record says"
                        )));
                    }
                    n
                }
            };
            if n > 0 {
                if let Some(h) = &mut self.hasher {
                    h.update(&buf[..n]);
                }
                return Ok(n);
            }
            if !self.advance()? {
                self.finish()?;
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn record(dir: &Path, lines: &[String]) -> PathBuf {
        let path = dir.join("l.tar-split.gz");
        let mut gz =
            flate2::write::GzEncoder::new(File::create(&path).unwrap(), Default::default());
        for l in lines {
            writeln!(gz, "{l}").unwrap();
        }
        gz.finish().unwrap();
        path
    }

    /// A tar made by the tar crate, split by hand the way tar-split does
    /// (headers as segments, contents as file entries), then rebuilt.
    #[test]
    fn rebuilds_byte_for_byte_and_checks_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("diff");
        std::fs::create_dir_all(files.join("app")).unwrap();
        std::fs::write(files.join("app/a.txt"), b"hello world").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(11);
        h.set_mode(0o644);
        b.append_data(&mut h, "app/a.txt", &b"hello world"[..]).unwrap();
        let mut w = tar::Header::new_gnu();
        w.set_size(0);
        w.set_mode(0o644);
        b.append_data(&mut w, "app/.wh.gone", io::empty()).unwrap();
        let tar = b.into_inner().unwrap();
        let b64 = |x: &[u8]| base64::engine::general_purpose::STANDARD.encode(x);
        let lines = vec![
            format!(r#"{{"type":2,"payload":"{}","position":0}}"#, b64(&tar[..512])),
            r#"{"type":1,"name":"app/a.txt","size":11,"payload":"AAAAAAAAAAA=","position":1}"#
                .to_owned(),
            format!(r#"{{"type":2,"payload":"{}","position":2}}"#, b64(&tar[523..1536])),
            r#"{"type":1,"name":"app/.wh.gone","payload":null,"position":3}"#.to_owned(),
            format!(r#"{{"type":2,"payload":"{}","position":4}}"#, b64(&tar[1536..])),
        ];
        let rec = record(dir.path(), &lines);
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
        let mut out = Vec::new();
        Rebuild::open(&rec, &files, Some(digest.clone())).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, tar);

        // Same record, a file that changed since: the read fails at the end.
        std::fs::write(files.join("app/a.txt"), b"HELLO world").unwrap();
        let err = Rebuild::open(&rec, &files, Some(digest.clone()))
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("files changed since it was stored"), "{err}");

        // A file that shrank.
        std::fs::write(files.join("app/a.txt"), b"hello").unwrap();
        let err = Rebuild::open(&rec, &files, Some(digest))
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("6 bytes shorter"), "{err}");
    }

    #[test]
    fn names_cannot_leave_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("diff");
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(dir.path().join("outside"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.path(), files.join("up")).unwrap();
        for name in ["../outside", "up/outside"] {
            let line = format!(r#"{{"type":1,"name":"{name}","size":6}}"#);
            let rec = record(dir.path(), &[line]);
            let err = Rebuild::open(&rec, &files, None)
                .unwrap()
                .read_to_end(&mut Vec::new())
                .unwrap_err();
            assert!(err.to_string().contains("leaves the layer directory"), "{name}: {err}");
        }
        let rec = record(dir.path(), &["{not json".to_owned()]);
        let err =
            Rebuild::open(&rec, &files, None).unwrap().read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("line 1: not a tar-split entry"), "{err}");
    }
}
