//! Image paths: turning raw tar entry names into absolute image paths, and
//! recognising whiteout names.
//!
//! This module owns the text of paths only; deciding what a whiteout does to
//! earlier layers belongs to [`crate::image::whiteout`].

/// Prefix that marks a whiteout entry (`.wh.NAME` deletes `NAME`).
const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker: hides everything lower layers put in its directory.
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Prefix of aufs bookkeeping names (`.wh..wh.plnk`, `.wh..wh.aufs`) that carry no meaning for us.
const AUFS_META_PREFIX: &str = ".wh..wh.";

/// Why a raw entry name cannot be used as an image path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    /// `..` components climb above the layer root.
    EscapesRoot,
    /// Nothing is left after normalisation (`.`, `./`, empty).
    Empty,
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathProblem::EscapesRoot => f.write_str("path escapes the layer root with '..'"),
            PathProblem::Empty => f.write_str("empty path"),
        }
    }
}

/// Decodes raw name bytes as text, escaping invalid UTF-8 as `\xNN` so the
/// result is deterministic and never loses which bytes were there.
pub fn decode_name(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            let mut out = String::with_capacity(raw.len() + 8);
            for chunk in raw.utf8_chunks() {
                out.push_str(chunk.valid());
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out
        }
    }
}

/// Normalises a tar entry name to an absolute image path: `./app/x`,
/// `app/x/`, `/app//x` all become `/app/x`. A leading `/` is taken as the
/// layer root (that is what container runtimes do). `..` is resolved
/// lexically and may not climb above the root.
///
/// # Errors
/// [`PathProblem::EscapesRoot`] when `..` would leave the root, and
/// [`PathProblem::Empty`] when the name names the root itself.
pub fn normalize(raw: &str) -> Result<String, PathProblem> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathProblem::EscapesRoot);
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(PathProblem::Empty);
    }
    let mut out = String::with_capacity(raw.len() + 1);
    for part in parts {
        out.push('/');
        out.push_str(part);
    }
    Ok(out)
}

/// The parent directory of an absolute image path (`/` for top-level names).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of an absolute image path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Joins a directory and a name into an absolute image path.
pub fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

/// Iterates the strict ancestors of an absolute path, nearest first,
/// excluding `/` itself: `/a/b/c` yields `/a/b`, `/a`.
#[cfg(test)]
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || {
        let i = rest.rfind('/')?;
        if i == 0 {
            return None;
        }
        rest = &rest[..i];
        Some(rest)
    })
}

/// What a (normalised) entry name means for the layer filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhiteoutName {
    /// An ordinary name.
    None,
    /// `.wh.NAME`: deletes the named path (the payload is the deleted path).
    Whiteout(String),
    /// `.wh..wh..opq`: makes the directory opaque (the payload is the directory).
    Opaque(String),
    /// aufs bookkeeping (`.wh..wh.plnk/...`), to be ignored.
    AufsMeta,
}

/// Classifies a normalised absolute path as whiteout, opaque marker or plain name.
pub fn classify(path: &str) -> WhiteoutName {
    if path.split('/').any(|c| c.starts_with(AUFS_META_PREFIX) && c != OPAQUE_MARKER) {
        return WhiteoutName::AufsMeta;
    }
    let name = file_name(path);
    if name == OPAQUE_MARKER {
        WhiteoutName::Opaque(parent(path).to_owned())
    } else if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
        WhiteoutName::Whiteout(join(parent(path), target))
    } else {
        WhiteoutName::None
    }
}

/// True when `ancestor` is `path` itself or one of its directories.
pub fn is_same_or_under(path: &str, ancestor: &str) -> bool {
    ancestor == "/"
        || path == ancestor
        || (path.starts_with(ancestor) && path.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        let cases = [
            ("./app/x", Ok("/app/x")),
            ("app/x/", Ok("/app/x")),
            ("/app//x", Ok("/app/x")),
            ("a/../b", Ok("/b")),
            ("../etc/passwd", Err(PathProblem::EscapesRoot)),
            ("a/../../b", Err(PathProblem::EscapesRoot)),
            ("./", Err(PathProblem::Empty)),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw), want.map(str::to_owned), "{raw}");
        }
    }

    #[test]
    fn classifies_whiteouts() {
        assert_eq!(classify("/app/.wh.secret"), WhiteoutName::Whiteout("/app/secret".into()));
        assert_eq!(classify("/.wh.etc"), WhiteoutName::Whiteout("/etc".into()));
        assert_eq!(classify("/app/.wh..wh..opq"), WhiteoutName::Opaque("/app".into()));
        assert_eq!(classify("/.wh..wh.plnk/123"), WhiteoutName::AufsMeta);
        assert_eq!(classify("/app/x"), WhiteoutName::None);
    }

    #[test]
    fn ancestors_and_prefixes() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), vec!["/a/b", "/a"]);
        assert!(is_same_or_under("/a/b", "/a"));
        assert!(!is_same_or_under("/ab", "/a"));
        assert!(is_same_or_under("/a", "/a"));
        assert_eq!(parent("/a"), "/");
        assert_eq!(decode_name(b"a\xffb"), "a\\xffb");
    }
}
