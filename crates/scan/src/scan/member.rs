//! One member of an archive inside a layer file, as the scan read it: what
//! `strata extract --inner` recovers.
//!
//! A finding inside an archive names the member by its `inner_path` (levels
//! joined by `!`, see the `nested` module). The member is found here by the same
//! archive reader the scan uses, under the same limits, so every inner path a
//! scan printed for a zip, jar or tar member, or for a compressed file's
//! contents, names bytes this can write back. A SQLite table or a compiled
//! Python file comes out as the text the scan read (its rows, its string
//! constants): that is where the secret was seen.

use std::io::{self, Read, Write};

use super::content::Limits;
use super::nested::{self, ArchiveLimits, Head, MemberName, Members, gzip::Inflater};
use super::packages::PackageRoots;
use super::stream::{BUFFER, fill};

/// Why a member could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// No member at that inner path; `why` says what was read instead.
    #[error("no member {inner:?} in this file ({why})")]
    NotFound {
        /// The inner path asked for.
        inner: String,
        /// How many members were read, and what was left unread.
        why: String,
    },
    /// Reading the layer file, or writing the output, failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Marks the error that stops the archive walk once the member is written.
#[derive(Debug)]
struct Written;

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("member written")
    }
}

impl std::error::Error for Written {}

/// Copies member `inner` of the archive file at image path `path`, read
/// from `reader`, to `out`; returns the bytes written. The first member at
/// that inner path wins (a nested tar may hold a name twice; the scan
/// reports both under one inner path).
///
/// # Errors
/// No such member (with how many were read and what was left unread), or
/// an I/O error of `reader` or `out`. Nothing is written unless the
/// member is found, but a failed write may leave part of it.
pub fn copy_member(
    path: &str,
    inner: &str,
    reader: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<u64, MemberError> {
    let limits = Limits::default();
    let mut finder = Finder {
        wanted: inner,
        out,
        written: None,
        write_error: None,
        members: 0,
        unread: Vec::new(),
        budget: limits.max_expanded,
        limits,
        packages: PackageRoots::default(),
        inflater: None,
    };
    let mut scratch = vec![0; BUFFER];
    match finder.scan_member(path, None, 0, reader, &mut scratch) {
        Err(e) if e.get_ref().is_some_and(|r| r.is::<Written>()) => {}
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    if let Some(e) = finder.write_error {
        return Err(e.into());
    }
    if let Some(n) = finder.written {
        return Ok(n);
    }
    let mut why = format!("{} archive members read", finder.members);
    if !finder.unread.is_empty() {
        why.push_str("; not read: ");
        why.push_str(&finder.unread.join("; "));
    }
    Err(MemberError::NotFound { inner: inner.to_owned(), why })
}

/// Walks archives down the levels of the wanted inner path and writes the
/// member that has it.
struct Finder<'o> {
    wanted: &'o str,
    out: &'o mut dyn Write,
    written: Option<u64>,
    /// A write to `out` that failed (the walk's own errors become notes).
    write_error: Option<io::Error>,
    /// Members and compressed streams looked at.
    members: usize,
    /// What the archive limits left unread.
    unread: Vec<String>,
    budget: u64,
    limits: Limits,
    packages: PackageRoots,
    inflater: Option<Inflater>,
}

impl Finder<'_> {
    /// Whether the member at `inner` may hold the wanted one below it.
    fn leads_to(&self, inner: Option<&str>) -> bool {
        inner.is_none_or(|i| self.wanted.strip_prefix(i).is_some_and(|rest| rest.starts_with('!')))
    }

    /// Writes `head` then the rest of `reader`, and stops the walk.
    fn write(&mut self, head: &[u8], reader: &mut dyn Read) -> io::Result<()> {
        let result = self.out.write_all(head).and_then(|()| io::copy(reader, &mut self.out));
        match result {
            Ok(n) => self.written = Some(head.len() as u64 + n),
            // Reported as it is: the walk would turn it into a note.
            Err(e) => self.write_error = Some(e),
        }
        Err(io::Error::other(Written))
    }
}

impl Members for Finder<'_> {
    type Hit = ();
    // Writing a member out looks for its data, not its name.
    type Names = ();

    fn member_names(&self) {}

    fn add_member_name(_names: &mut (), _member: &MemberName<'_>) {}

    fn member_name_hits(&mut self, _names: (), _path: &str, _inner: Option<&str>) -> Vec<()> {
        Vec::new()
    }

    fn archive_limits(&self) -> ArchiveLimits {
        self.limits.archive()
    }

    fn budget(&mut self) -> &mut u64 {
        &mut self.budget
    }

    fn note(&mut self, note: String) {
        // Once the member is written (or its write failed), the walk's notes are only its stop.
        if self.written.is_none() && self.write_error.is_none() {
            self.unread.push(note);
        }
    }

    fn unread(&mut self, what: String) {
        self.unread.push(what);
    }

    fn packages(&mut self) -> &mut PackageRoots {
        &mut self.packages
    }

    fn take_buffer(&mut self) -> Vec<u8> {
        vec![0; BUFFER]
    }

    fn give_buffer(&mut self, _buffer: Vec<u8>) {}

    fn take_inflater(&mut self) -> Inflater {
        self.inflater.take().unwrap_or_default()
    }

    fn give_inflater(&mut self, inflater: Inflater) {
        self.inflater = Some(inflater);
    }

    fn scan_member(
        &mut self,
        path: &str,
        inner: Option<&str>,
        depth: usize,
        reader: &mut dyn Read,
        scratch: &mut Vec<u8>,
    ) -> io::Result<Vec<()>> {
        if self.written.is_some() {
            return Err(io::Error::other(Written));
        }
        if inner.is_some() {
            self.members += 1;
        }
        if scratch.len() != BUFFER {
            scratch.resize(BUFFER, 0);
        }
        let filled = fill(reader, scratch)?;
        if inner == Some(self.wanted) {
            self.write(&scratch[..filled], reader)?;
        }
        if self.leads_to(inner)
            && let Some(kind) = crate::sniff::file_format(&scratch[..filled])
            && (depth < self.limits.max_depth || !kind.nests())
        {
            let mut chained = io::Cursor::new(&scratch[..filled]).chain(reader);
            nested::scan(self, kind, path, inner, depth, &mut chained)?;
        }
        if self.written.is_some() { Err(io::Error::other(Written)) } else { Ok(Vec::new()) }
    }

    fn scan_plain(
        &mut self,
        _path: &str,
        inner: Option<&str>,
        head: Head<'_>,
        reader: &mut dyn Read,
    ) -> io::Result<Vec<()>> {
        self.members += 1;
        if inner == Some(self.wanted) {
            let rest: &mut dyn Read = if head.eof { &mut io::empty() } else { reader };
            self.write(&head.buf[..head.filled], rest)?;
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests;
