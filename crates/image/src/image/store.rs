//! Where an image's blobs live: a [`BlobStore`] over any [`BlobSource`]. The
//! two local sources are here: an OCI layout directory, and the members of a
//! tar archive that is indexed once and then read by seeking.
//!
//! The store hands out independent readers so layers can be read in
//! parallel; it never extracts anything to disk.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Error;
use super::blob::BlobSource;
use super::path::{decode_name, normalize};

/// Largest JSON document (manifest, index, config) we read into memory.
pub const MAX_JSON_BYTES: u64 = 64 * 1024 * 1024;

/// Symlinks followed when resolving an archive member, before giving up.
const MAX_MEMBER_LINKS: usize = 8;

/// Where a member's bytes sit in the archive file.
#[derive(Debug, Clone, Copy)]
struct Member {
    offset: u64,
    size: u64,
}

/// A source of blobs addressed by relative path (`blobs/sha256/<hex>`,
/// `<id>/layer.tar`, `manifest.json`): a [`BlobSource`] and the name the user
/// gave it, for messages.
#[derive(Debug, Clone)]
pub struct BlobStore {
    source: Arc<dyn BlobSource>,
    /// What the user named, for messages.
    display: String,
}

/// An image directory (an OCI layout, an unpacked docker save, a `dir:` copy's files), read as
/// a [`BlobSource`]: members are its files; a symlink inside it is an error, never followed.
#[derive(Debug)]
pub(crate) struct LayoutDir {
    root: PathBuf,
    display: String,
}

impl LayoutDir {
    pub(crate) fn new(root: &Path, display: &str) -> LayoutDir {
        LayoutDir { root: root.to_owned(), display: display.to_owned() }
    }

    /// What the user named, for messages.
    pub(crate) fn display(&self) -> &str {
        &self.display
    }
}

/// A tar archive (docker-save, OCI archive), indexed once and then read by
/// seeking, as a [`BlobSource`].
#[derive(Debug)]
struct TarArchive {
    file: PathBuf,
    members: HashMap<String, Member>,
    /// Names that more than one file member of the archive carries, and how many.
    repeated: HashMap<String, u32>,
    display: String,
    /// Keeps a spooled temporary file alive as long as any reader needs it.
    _spool: Option<Arc<tempfile::TempPath>>,
}

impl BlobSource for LayoutDir {
    fn size(&self, name: &str) -> Option<u64> {
        let p = safe_join(&self.root, name)?;
        // A symlinked member exists (so that opening it gives a clear error).
        let meta = std::fs::symlink_metadata(&p).ok()?;
        (meta.is_file() || meta.file_type().is_symlink()).then_some(meta.len())
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, Error> {
        let missing = || Error::MissingBlob { file: self.display.clone(), blob: name.to_owned() };
        let p = safe_join(&self.root, name).ok_or_else(missing)?;
        if let Some(link) = symlink_inside(&self.root, name) {
            return Err(Error::Invalid {
                file: self.display.clone(),
                what: name.to_owned(),
                reason: format!(
                    "{link} is a symlink; symlinks inside an image directory are never followed"
                ),
            });
        }
        if !p.is_file() {
            return Err(missing());
        }
        let f = File::open(&p).map_err(|e| Error::io(&p.display().to_string(), e))?;
        Ok(Box::new(f))
    }
}

impl BlobSource for TarArchive {
    fn size(&self, name: &str) -> Option<u64> {
        self.members.get(name.trim_start_matches("./")).map(|m| m.size)
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, Error> {
        let key = name.trim_start_matches("./");
        let Some(Member { offset, size }) = self.members.get(key).copied() else {
            return Err(Error::MissingBlob { file: self.display.clone(), blob: name.to_owned() });
        };
        // `docker load` keeps the last copy; the others stay in the archive for
        // anyone to read. Reading one copy would leave the rest unread, unnoticed.
        if let Some(n) = self.repeated.get(key) {
            return Err(Error::Invalid {
                file: self.display.clone(),
                what: name.to_owned(),
                reason: format!(
                    "the archive holds {n} members of this name, and a reader that extracts it keeps only the last; none was read"
                ),
            });
        }
        let mut f = File::open(&self.file).map_err(|e| Error::io(&self.display, e))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(&self.display, e))?;
        Ok(Box::new(f.take(size)))
    }
}

impl BlobStore {
    /// A store over an OCI image layout directory.
    pub fn dir(root: &Path, display: &str) -> Self {
        BlobStore::source(Arc::new(LayoutDir::new(root, display)), display)
    }

    /// Indexes a tar archive's members (one pass, seeking over contents).
    ///
    /// # Errors
    /// When the file cannot be read or is not a valid tar archive.
    pub fn tar(
        file: &Path,
        display: &str,
        spool: Option<Arc<tempfile::TempPath>>,
    ) -> Result<Self, Error> {
        let (members, repeated) = index_tar(file).map_err(|e| Error::io(display, e))?;
        if members.is_empty() {
            return Err(Error::Unrecognised {
                file: display.to_owned(),
                reason: "the tar archive has no files".into(),
            });
        }
        let archive = TarArchive {
            file: file.to_owned(),
            members,
            repeated,
            display: display.to_owned(),
            _spool: spool,
        };
        Ok(BlobStore::source(Arc::new(archive), display))
    }

    /// A store over any [`BlobSource`].
    pub fn source(source: Arc<dyn BlobSource>, display: &str) -> Self {
        BlobStore { source, display: display.to_owned() }
    }

    /// Size of the member at `name`, or `None` when absent.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.source.size(name)
    }

    /// True when the member exists.
    pub fn contains(&self, name: &str) -> bool {
        self.size(name).is_some()
    }

    /// Opens a member for streaming.
    ///
    /// # Errors
    /// [`Error::MissingBlob`] when absent; I/O errors name the source.
    pub fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, Error> {
        self.source.open(name)
    }

    /// Reads a small member (JSON) fully, refusing anything over
    /// [`MAX_JSON_BYTES`].
    ///
    /// # Errors
    /// Missing member, I/O failure, or a member too large to be metadata.
    pub fn read_small(&self, name: &str) -> Result<Vec<u8>, Error> {
        let size = self.size(name).ok_or_else(|| Error::MissingBlob {
            file: self.display.clone(),
            blob: name.to_owned(),
        })?;
        if size > MAX_JSON_BYTES {
            return Err(Error::Invalid {
                file: self.display.clone(),
                what: name.to_owned(),
                reason: format!("{size} bytes is too large for image metadata"),
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        self.open(name)?
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(&format!("{}: {name}", self.display), e))?;
        Ok(buf)
    }
}

/// The first component of `name` under `root` that is a symlink (`blobs`,
/// `blobs/sha256`, or the blob itself), if any: a layout's blobs must be its
/// own files, never links to elsewhere (`/proc/self/environ`, another tree).
fn symlink_inside(root: &Path, name: &str) -> Option<String> {
    let clean = normalize(name).ok()?;
    let mut at = root.to_path_buf();
    let mut shown = String::new();
    for part in clean.trim_start_matches('/').split('/') {
        at.push(part);
        if !shown.is_empty() {
            shown.push('/');
        }
        shown.push_str(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Some(shown),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Joins a relative member name under `root`, refusing anything that could
/// leave it (`..`, absolute names).
fn safe_join(root: &Path, name: &str) -> Option<PathBuf> {
    let clean = normalize(name).ok()?;
    Some(root.join(clean.trim_start_matches('/')))
}

/// Member names → where their bytes are, and the names several file
/// members carry (with how many).
type Index = (HashMap<String, Member>, HashMap<String, u32>);

/// Bytes the archive index may read between two seeks. The `tar` crate seeks
/// to every header and over every member's data, so between seeks it reads a
/// header, or a GNU long name or PAX header, which it holds whole in memory:
/// this bounds them (a 600 MB long name once took 2 GB).
pub const MAX_INDEX_RUN: u64 = 2 << 20;

/// A file the archive index reads, failing once more than [`MAX_INDEX_RUN`]
/// bytes are read without a seek.
struct Bounded {
    file: File,
    run: u64,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.run += n as u64;
        if self.run > MAX_INDEX_RUN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a member's GNU long name or PAX header is longer than the {MAX_INDEX_RUN}-byte limit of the archive index; the archive was not read"
                ),
            ));
        }
        Ok(n)
    }
}

impl Seek for Bounded {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.run = 0;
        self.file.seek(pos)
    }
}

/// One pass over the archive: member name → where its bytes are. Symlinked
/// members (docker save links duplicate layers) resolve to their target.
fn index_tar(file: &Path) -> io::Result<Index> {
    let f = Bounded { file: File::open(file)?, run: 0 };
    let mut archive = tar::Archive::new(f);
    let mut members = HashMap::new();
    let mut repeated: HashMap<String, u32> = HashMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    for entry in archive.entries_with_seek()? {
        let entry = entry?;
        let Ok(name) = normalize(&decode_name(&entry.path_bytes())) else { continue };
        let name = name.trim_start_matches('/').to_owned();
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(target) = entry.link_name_bytes() {
                let target = decode_name(&target);
                let base = if kind.is_symlink() {
                    match name.rfind('/') {
                        Some(i) => format!("{}/{target}", &name[..i]),
                        None => target,
                    }
                } else {
                    target
                };
                links.push((name, base));
            }
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let member = Member { offset: entry.raw_file_position(), size: entry.size() };
            if members.insert(name.clone(), member).is_some() {
                *repeated.entry(name).or_insert(1) += 1;
            }
        }
    }
    // Chains of links resolve one step per pass; cycles simply stay unresolved.
    for _ in 0..MAX_MEMBER_LINKS {
        let before = links.len();
        links.retain(|(name, target)| {
            let key = normalize(target).unwrap_or_default();
            let key = key.trim_start_matches('/');
            match members.get(key).copied() {
                Some(m) => {
                    members.insert(name.clone(), m);
                    // A link to a repeated name is as ambiguous as the name.
                    if let Some(&n) = repeated.get(key) {
                        repeated.insert(name.clone(), n);
                    }
                    false
                }
                None => true,
            }
        });
        if links.len() == before {
            break;
        }
    }
    Ok((members, repeated))
}

#[cfg(test)]
mod tests;
