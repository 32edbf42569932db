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

/// Decodes raw name bytes as text, one-to-one: see [`decode_name_borrowed`].
pub fn decode_name(raw: &[u8]) -> String {
    decode_name_borrowed(raw).into_owned()
}

/// A layer entry's name or link target as text, one-to-one (a path's text is
/// its identity in the layer logic): bytes that are not UTF-8 become `\xNN`
/// (lower-case hex), and a backslash that would read as such an escape (one
/// before `x` and two hex digits) becomes `\x5c`, so the name `a\xff` spelt
/// with a backslash and the name `a` + byte 0xFF never share a text (a
/// whiteout of one must not delete the other). Without a copy when the
/// bytes are valid UTF-8 and hold no such backslash (almost every name: the
/// layer walk decodes one per entry).
pub fn decode_name_borrowed(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(raw)
        && !(0..raw.len()).any(|i| escape_lookalike(raw, i))
    {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for chunk in raw.utf8_chunks() {
        let valid = chunk.valid();
        let mut from = 0;
        for i in (0..valid.len()).filter(|&i| escape_lookalike(valid.as_bytes(), i)) {
            out.push_str(&valid[from..i]);
            out.push_str("\\x5c");
            from = i + 1;
        }
        out.push_str(&valid[from..]);
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// True when `bytes[i]` is a backslash that starts `\x` and two hex digits.
fn escape_lookalike(bytes: &[u8], i: usize) -> bool {
    bytes[i] == b'\\'
        && bytes.get(i + 1) == Some(&b'x')
        && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        && bytes.get(i + 3).is_some_and(u8::is_ascii_hexdigit)
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
    build(raw, false)
}

/// [`normalize`] the way containerd extracts a layer: `..` at the root stays
/// at the root (`fs.RootPath` joins every name to `/`), so `../../etc/x` is
/// `/etc/x`. What a runtime writes there is what must be scanned there.
///
/// # Errors
/// [`PathProblem::Empty`] when the name names the root itself.
pub fn normalize_clamped(raw: &str) -> Result<String, PathProblem> {
    build(raw, true)
}

fn build(raw: &str, clamp: bool) -> Result<String, PathProblem> {
    if let Some(clean) = already_normal(raw) {
        let mut out = String::with_capacity(clean.len() + 1);
        out.push('/');
        out.push_str(clean);
        return Ok(out);
    }
    // Built in place, one component at a time: `..` cuts the last one off
    // (components hold no `/`). Runs once per layer entry.
    let mut out = String::with_capacity(raw.len() + 1);
    let bytes = raw.as_bytes();
    let mut from = 0;
    while from <= bytes.len() {
        // A plain loop to the next `/`: names are short, and a searcher's
        // set-up per component cost more than it saved.
        let mut end = from;
        while end < bytes.len() && bytes[end] != b'/' {
            end += 1;
        }
        let part = &raw[from..end];
        from = end + 1;
        match part {
            "" | "." => {}
            ".." => match out.rfind('/') {
                Some(i) => out.truncate(i),
                None if clamp => {}
                None => return Err(PathProblem::EscapesRoot),
            },
            part => {
                out.push('/');
                out.push_str(part);
            }
        }
    }
    if out.is_empty() {
        return Err(PathProblem::Empty);
    }
    Ok(out)
}

/// The name without its one trailing `/`, when that is all normalising
/// would change besides the leading `/` (what tar writers store: `usr/lib/`,
/// `usr/lib/x.so`): every component is a real name, none empty, `.` or `..`.
/// One pass over the bytes, so most entries skip the component-by-component build.
fn already_normal(raw: &str) -> Option<&str> {
    let name = raw.strip_suffix('/').unwrap_or(raw);
    let bytes = name.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'/' {
            if matches!(&bytes[start..i], b"" | b"." | b"..") {
                return None;
            }
            start = i + 1;
        }
    }
    (!matches!(&bytes[start..], b"" | b"." | b"..")).then_some(name)
}

/// The parent directory of an absolute image path (`/` for top-level names).
pub fn parent(path: &str) -> &str {
    match last_slash(path) {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of an absolute image path.
pub fn file_name(path: &str) -> &str {
    match last_slash(path) {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// The last `/` of a path. These run several times per file of every layer: most names are
/// short, but a hostile layer's are up to 64 KiB each, which a byte-at-a-time search from the
/// end crossed several times per entry.
fn last_slash(path: &str) -> Option<usize> {
    memchr::memrchr(b'/', path.as_bytes())
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
    // Every non-plain name has a component starting with `.wh.`: most paths
    // have no `.wh.` at all, which one substring search (vectorised for
    // short needles) tells.
    if !path.contains(WHITEOUT_PREFIX) {
        return WhiteoutName::None;
    }
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

    /// Normalising component by component, with nothing skipped.
    fn normalize_slowly(raw: &str) -> Result<String, PathProblem> {
        let mut parts: Vec<&str> = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop().ok_or(PathProblem::EscapesRoot)?;
                }
                part => parts.push(part),
            }
        }
        if parts.is_empty() {
            return Err(PathProblem::Empty);
        }
        Ok(parts.iter().map(|p| format!("/{p}")).collect())
    }

    proptest::proptest! {
        /// The fast path for names already normal gives what the full build does.
        #[test]
        fn normalize_matches_the_component_by_component_build(
            parts in proptest::collection::vec("(|\\.|\\.\\.|a|bc|\\.d|e\\.)", 0..6),
            lead in proptest::bool::ANY,
            trail in proptest::bool::ANY,
        ) {
            let raw = format!("{}{}{}", if lead { "/" } else { "" }, parts.join("/"), if trail { "/" } else { "" });
            proptest::prop_assert_eq!(normalize(&raw), normalize_slowly(&raw), "{:?}", raw);
        }
    }

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
            // Built in place: `..` cuts the last component, `.` and empty ones vanish.
            ("//a///b//", Ok("/a/b")),
            ("a/./b/..", Ok("/a")),
            ("a/b/../../c/./d", Ok("/c/d")),
            ("a/..", Err(PathProblem::Empty)),
            ("..", Err(PathProblem::EscapesRoot)),
            ("a/b/../../..", Err(PathProblem::EscapesRoot)),
            ("a/.../b", Ok("/a/.../b")),
            // Already normal but for the leading `/` (and a trailing one).
            ("usr/lib/x.so", Ok("/usr/lib/x.so")),
            ("usr/lib/", Ok("/usr/lib")),
            ("usr", Ok("/usr")),
            (".hidden/..x/x..", Ok("/.hidden/..x/x..")),
            ("a//", Ok("/a")),
            ("a/.", Ok("/a")),
            ("/", Err(PathProblem::Empty)),
            ("", Err(PathProblem::Empty)),
            (".", Err(PathProblem::Empty)),
            ("a/b/..", Ok("/a")),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw), want.map(str::to_owned), "{raw}");
        }
    }

    #[test]
    fn clamped_names_stay_under_the_root() {
        let cases = [
            ("../../escape.conf", Ok("/escape.conf")),
            ("a/../../b", Ok("/b")),
            ("/../etc/x", Ok("/etc/x")),
            ("..", Err(PathProblem::Empty)),
            ("../.wh.app", Ok("/.wh.app")),
            ("./app/x", Ok("/app/x")),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_clamped(raw), want.map(str::to_owned), "{raw}");
        }
    }

    #[test]
    fn classifies_whiteouts() {
        assert_eq!(classify("/app/.wh.secret"), WhiteoutName::Whiteout("/app/secret".into()));
        assert_eq!(classify("/.wh.etc"), WhiteoutName::Whiteout("/etc".into()));
        assert_eq!(classify("/app/.wh..wh..opq"), WhiteoutName::Opaque("/app".into()));
        assert_eq!(classify("/.wh..wh.plnk/123"), WhiteoutName::AufsMeta);
        assert_eq!(classify("/app/x"), WhiteoutName::None);
        // Dots that start no `.wh.` component.
        assert_eq!(classify("/a.wh/b.wh/.whx"), WhiteoutName::None);
        assert_eq!(classify("/a/x.wh.y"), WhiteoutName::None);
    }

    #[test]
    fn ancestors_and_prefixes() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), vec!["/a/b", "/a"]);
        assert!(is_same_or_under("/a/b", "/a"));
        assert!(!is_same_or_under("/ab", "/a"));
        assert!(is_same_or_under("/a", "/a"));
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(file_name("/a/b.txt"), "b.txt");
        assert_eq!(file_name("plain"), "plain");
        assert_eq!(decode_name(b"a\xffb"), "a\\xffb");
    }

    /// Names decode one-to-one: a backslash that reads as an escape is escaped itself.
    #[test]
    fn names_decode_one_to_one() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain/name", "plain/name"),
            (b"a\\b", "a\\b"),
            (b"a\\x", "a\\x"),
            (b"a\\xf", "a\\xf"),
            (b"a\\xfg", "a\\xfg"),
            (b"a\xff", "a\\xff"),
            (b"a\\xff", "a\\x5cxff"),
            (b"a\\x5c", "a\\x5cx5c"),
            (b"\\\\xff", "\\\\x5cxff"),
            (b"a\\\xff", "a\\\\xff"),
            (b"\xff\\xAB\xfe", "\\xff\\x5cxAB\\xfe"),
        ];
        let mut seen = std::collections::BTreeMap::new();
        for (raw, want) in cases {
            let got = decode_name(raw);
            assert_eq!(got, *want, "{raw:?}");
            if let Some(other) = seen.insert(got.clone(), *raw) {
                panic!("{raw:?} and {other:?} both decode to {got}");
            }
        }
    }
}
