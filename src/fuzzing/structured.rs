//! Bytes → a well-formed tar layer, for [`super::layer_entries`]. Each
//! entry is decoded from a few input bytes (kind, header format, name
//! components, link target, content length), and its raw header fields are
//! written by hand, so names with `..`, absolute names, long names (GNU
//! `L`/`K` records or PAX `path`/`linkpath`), whiteouts, opaque markers and
//! V7 headers all occur. Alongside the tar, the entries a correct walk must
//! report are recorded.

use crate::image::layer::EntryKind;
use crate::image::path::{WhiteoutName, classify, decode_name, normalize_clamped};
use crate::image::symlinks::LayerSymlinks;

/// Name components the decoder picks from; most of the interesting ones
/// for whiteout and path logic.
const COMPONENTS: &[&str] = &[
    "app",
    "etc",
    "a",
    "b",
    ".env",
    ".wh.a",
    ".wh.app",
    ".wh..wh..opq",
    ".wh..wh.plnk",
    "..",
    ".",
    "",
    "secret.txt",
    "dir",
    "ünï",
    "sp ace",
];

/// Most entries a built layer holds.
const MAX_ENTRIES: usize = 64;

/// A built layer and what its walk must report.
pub struct Built {
    /// The tar bytes, end-of-archive blocks included.
    pub tar: Vec<u8>,
    /// (normalised path, kind, content bytes) per entry a walk must visit.
    pub expected: Vec<(String, EntryKind, u64)>,
}

/// Reads the input a byte at a time; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// A name of 1-4 components, with a leading `/`/`./` or trailing `/` sometimes;
    /// one in eight names gets a long component, beyond the 100-byte header field.
    fn name(&mut self) -> String {
        let n = 1 + self.byte() % 4;
        let mut parts: Vec<String> = (0..n)
            .map(|_| COMPONENTS[usize::from(self.byte()) % COMPONENTS.len()].to_owned())
            .collect();
        let shape = self.byte();
        if shape % 8 == 7 {
            parts.push("long".repeat(20 + usize::from(self.byte() % 60)));
        }
        let mut name = parts.join("/");
        match shape / 8 % 4 {
            1 => name.insert(0, '/'),
            2 => name.insert_str(0, "./"),
            3 => name.push('/'),
            _ => {}
        }
        name
    }
}

/// Header formats the builder writes.
#[derive(Clone, Copy)]
enum Format {
    Gnu,
    Ustar,
    V7,
}

/// One entry before it is written.
struct Spec {
    format: Format,
    typeflag: u8,
    name: String,
    link: Option<String>,
    content: Vec<u8>,
    /// Long names go in PAX records instead of GNU ones.
    pax: bool,
}

/// Decodes entries from `data` and writes them as a tar.
pub fn build(data: &[u8]) -> Built {
    let mut input = Input(data);
    let mut tar = Vec::new();
    let mut expected = Vec::new();
    let mut names: Vec<String> = Vec::new();
    // The layer's symlinks so far: entries under one are read where it points.
    let mut symlinks = LayerSymlinks::default();
    while !input.0.is_empty() && expected.len() < MAX_ENTRIES {
        let op = input.byte();
        let format = match op / 16 % 3 {
            0 => Format::Gnu,
            1 => Format::Ustar,
            _ => Format::V7,
        };
        let name = input.name();
        let (typeflag, link, content) = match op % 8 {
            0 | 1 => {
                let len = usize::from(input.byte()) * (1 + usize::from(input.byte() % 8));
                let fill = input.byte();
                (b'0', None, (0..len).map(|i| fill.wrapping_add(i as u8)).collect())
            }
            2 => (b'5', None, Vec::new()),
            3 => (b'2', Some(input.name()), Vec::new()),
            4 => {
                let target = match names.len() {
                    0 => input.name(),
                    n => names[usize::from(input.byte()) % n].clone(),
                };
                (b'1', Some(target), Vec::new())
            }
            5 => (b'6', None, Vec::new()),
            6 => (b'3', None, Vec::new()),
            // V7 typeflag NUL: a regular file, or a directory when the name ends in '/'.
            _ => (0, None, if name.ends_with('/') { Vec::new() } else { b"v7".to_vec() }),
        };
        let pax = op & 0x80 != 0 && !matches!(format, Format::V7);
        let spec = Spec { format, typeflag, name: name.clone(), link, content, pax };
        if !write_entry(&mut tar, &spec) {
            continue;
        }
        names.push(name);
        if let Some(e) = expect(&spec, &mut symlinks) {
            expected.push(e);
        }
    }
    tar.extend_from_slice(&[0; 1024]);
    Built { tar, expected }
}

/// What a correct walk reports for this entry (`None`: skipped), given the
/// symlinks the layer wrote before it (noted here as they come).
fn expect(spec: &Spec, symlinks: &mut LayerSymlinks) -> Option<(String, EntryKind, u64)> {
    let raw = decode_name(spec.name.as_bytes());
    // `..` above the root stays at the root, as containerd extracts it; a parent that is one
    // of the layer's symlinks is resolved, as containerd resolves it.
    let path = normalize_clamped(&raw).ok()?;
    let path = symlinks.resolve(&path).unwrap_or(path);
    let link = || decode_name(spec.link.as_deref().unwrap_or("").as_bytes());
    let plain = match spec.typeflag {
        0 if raw.ends_with('/') => EntryKind::Dir,
        b'0' | 0 => EntryKind::File,
        b'5' => EntryKind::Dir,
        b'2' => EntryKind::Symlink(link()),
        b'1' => match normalize_clamped(&link()) {
            Ok(t) => EntryKind::Hardlink(symlinks.resolve(&t).unwrap_or(t)),
            Err(_) => EntryKind::Other,
        },
        // Only typeflag NUL reads a trailing slash as a directory (Go's
        // archive/tar); a device or FIFO named `x/` stays a special file.
        _ => EntryKind::Other,
    };
    let kind = match classify(&path) {
        // aufs hardlink sources with bytes are read as files; other bookkeeping is skipped.
        WhiteoutName::AufsMeta if plain == EntryKind::File && !spec.content.is_empty() => plain,
        WhiteoutName::AufsMeta => return None,
        WhiteoutName::Whiteout(target) => EntryKind::Whiteout(target),
        WhiteoutName::Opaque(dir) => EntryKind::Opaque(dir),
        WhiteoutName::None => plain,
    };
    match &kind {
        EntryKind::Symlink(t) => symlinks.note_symlink(&path, t),
        EntryKind::Whiteout(p) => symlinks.forget(p),
        EntryKind::Opaque(_) => {}
        _ => symlinks.forget(&path),
    }
    let size = if kind == EntryKind::File { spec.content.len() as u64 } else { 0 };
    Some((path, kind, size))
}

/// Appends one entry (with its long-name records). False when the entry
/// cannot be expressed in its format (a V7 name or link over 100 bytes).
fn write_entry(tar: &mut Vec<u8>, spec: &Spec) -> bool {
    let name = spec.name.as_bytes();
    let link = spec.link.as_deref().unwrap_or("").as_bytes();
    let long = name.len() > 100 || link.len() > 100;
    if long && matches!(spec.format, Format::V7) {
        return false;
    }
    if long && spec.pax {
        let mut records = Vec::new();
        if name.len() > 100 {
            records.extend(pax_record("path", name));
        }
        if link.len() > 100 {
            records.extend(pax_record("linkpath", link));
        }
        push(tar, spec.format, b'x', b"PaxHeaders/entry", b"", &records);
    } else if long {
        if link.len() > 100 {
            push(tar, Format::Gnu, b'K', b"././@LongLink", b"", &nul_terminated(link));
        }
        if name.len() > 100 {
            push(tar, Format::Gnu, b'L', b"././@LongLink", b"", &nul_terminated(name));
        }
    }
    push(
        tar,
        spec.format,
        spec.typeflag,
        &name[..name.len().min(100)],
        &link[..link.len().min(100)],
        &spec.content,
    );
    true
}

fn nul_terminated(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.push(0);
    v
}

/// A PAX record `LEN key=value\n`, where LEN counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// Writes a header block with these raw fields, then the content padded to 512.
fn push(tar: &mut Vec<u8>, format: Format, typeflag: u8, name: &[u8], link: &[u8], content: &[u8]) {
    let mut header = match format {
        Format::Gnu => tar::Header::new_gnu(),
        Format::Ustar => tar::Header::new_ustar(),
        Format::V7 => tar::Header::new_old(),
    };
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    let bytes = header.as_mut_bytes();
    bytes[..name.len()].copy_from_slice(name);
    bytes[157..157 + link.len()].copy_from_slice(link);
    bytes[156] = typeflag;
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}
