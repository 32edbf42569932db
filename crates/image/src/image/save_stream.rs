//! A `docker save` archive read as a stream, in one pass, without seeking
//! and without a temporary file: the Docker Engine API export
//! (`GET /images/{name}/get`) arrives this way.
//!
//! The daemon writes members in lexical order, so the metadata that says
//! which member is which layer (`manifest.json`, `index.json`) arrives
//! *after* the layers. The reader therefore decides by content: a member
//! whose bytes start like JSON (and fit the metadata limit) is kept in
//! memory; every other regular file is a layer blob and is handed to the
//! caller while it streams by. Once the stream ends, the kept documents
//! form a [`MemorySource`] that `image::layout` reads like any archive, and
//! the caller matches the layers it already scanned by member name.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Cursor, Read};

use super::Error;
use super::blob::MemorySource;
use super::path::{decode_name, normalize};
use super::store::MAX_JSON_BYTES;

/// Symlinks followed when resolving a member alias, before giving up.
const MAX_LINKS: usize = 8;

/// What the stream held besides its layers.
#[derive(Debug)]
pub struct Streamed {
    /// The metadata documents, by member name.
    pub metadata: MemorySource,
    /// Member names that were links (docker links a layer shared by two
    /// images of one save), resolved to the member they point to.
    pub aliases: HashMap<String, String>,
    /// The members handed over as layers, in stream order.
    #[allow(
        dead_code,
        reason = "read by no caller since lib.rs stopped exporting image; kept for Debug"
    )]
    pub layers: Vec<String>,
}

impl Streamed {
    /// The member `name` stands for, following links.
    #[cfg(test)]
    pub fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        let name = name.trim_start_matches("./");
        self.aliases.get(name).map_or(name, String::as_str)
    }
}

/// The callback for each layer member: its name, size and bytes.
pub type OnLayer<'a> = dyn FnMut(&str, u64, &mut dyn Read) -> Result<(), Error> + 'a;

/// Reads a docker-save tar from `stream`, calling `on_layer` for each layer
/// member as it arrives.
///
/// # Errors
/// A stream that is not a tar, or that breaks off; an error the callback
/// returns.
pub fn read(
    stream: impl Read,
    target: &str,
    on_layer: &mut OnLayer<'_>,
) -> Result<Streamed, Error> {
    let broken = |e: io::Error| Error::Invalid {
        file: target.to_owned(),
        what: "image export stream".into(),
        reason: e.to_string(),
    };
    let mut archive = tar::Archive::new(stream);
    let mut metadata = MemorySource::new(target);
    let mut links: Vec<(String, String)> = Vec::new();
    let mut layers = Vec::new();
    let mut members = 0usize;
    for entry in archive.entries().map_err(broken)? {
        let entry = entry.map_err(broken)?;
        let Ok(name) = normalize(&decode_name(&entry.path_bytes())) else { continue };
        let name = name.trim_start_matches('/').to_owned();
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(link) = entry.link_name_bytes() {
                let link = decode_name(&link);
                let resolved = match (kind.is_symlink(), name.rfind('/')) {
                    (true, Some(i)) => format!("{}/{link}", &name[..i]),
                    _ => link,
                };
                let resolved = normalize(&resolved).unwrap_or_default();
                links.push((name, resolved.trim_start_matches('/').to_owned()));
            }
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        members += 1;
        let size = entry.size();
        let mut reader = BufReader::with_capacity(64 * 1024, entry);
        let head = reader.fill_buf().map_err(broken)?;
        let json_like = matches!(head.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{' | b'['));
        let small_text = size <= 64 && !name.ends_with(".tar");
        if (json_like && size <= MAX_JSON_BYTES) || small_text {
            let mut bytes = Vec::with_capacity(size as usize);
            reader.read_to_end(&mut bytes).map_err(broken)?;
            // Checked as JSON without building it: a tree of millions of tiny values costs
            // gigabytes (the layout refuses such metadata before parsing it).
            if !json_like || serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
                metadata.insert(name, bytes);
                continue;
            }
            // A layer whose first entry's name starts with `{`: it is already in memory.
            on_layer(&name, size, &mut Cursor::new(bytes))?;
        } else {
            on_layer(&name, size, &mut reader)?;
            // The tar reader skips whatever the callback left unread.
        }
        layers.push(name);
    }
    if members == 0 {
        return Err(Error::Unrecognised {
            file: target.to_owned(),
            reason: "the image export holds no files".into(),
        });
    }
    let link_map: HashMap<String, String> = links.into_iter().collect();
    let mut aliases = HashMap::new();
    for (name, first) in &link_map {
        let mut to = first.clone();
        for _ in 0..MAX_LINKS {
            match link_map.get(&to) {
                Some(next) => to = next.clone(),
                None => break,
            }
        }
        if let Some(bytes) = metadata.get(&to).map(<[u8]>::to_vec) {
            metadata.insert(name.clone(), bytes);
        } else {
            aliases.insert(name.clone(), to);
        }
    }
    Ok(Streamed { metadata, aliases, layers })
}

/// Reads a docker-save tar from `stream` until the regular-file member
/// `wanted`, and copies that member's bytes to `out`. The rest of the
/// stream is not read.
///
/// # Errors
/// A broken stream, a failed write, or [`Error::MissingBlob`] when the
/// stream ends without the member.
pub fn copy_member(
    stream: impl Read,
    target: &str,
    wanted: &str,
    out: &mut dyn io::Write,
) -> Result<u64, Error> {
    let broken = |e: io::Error| Error::Invalid {
        file: target.to_owned(),
        what: "image export stream".into(),
        reason: e.to_string(),
    };
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        let Ok(name) = normalize(&decode_name(&entry.path_bytes())) else { continue };
        if name.trim_start_matches('/') == wanted {
            return io::copy(&mut entry, out)
                .map_err(|e| Error::io(&format!("{target}: {wanted}"), e));
        }
    }
    Err(Error::MissingBlob { file: target.to_owned(), blob: wanted.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(members: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        for (name, to) in links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, to).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn layers_stream_by_and_metadata_is_kept() {
        let layer = tar_of(&[("etc/x", b"hello")], &[]);
        let brace_layer = tar_of(&[("{weird}", b"x")], &[]);
        let outer = tar_of(
            &[
                ("aaa/layer.tar", &layer),
                ("aaa/VERSION", b"1.0"),
                ("bbb/layer.tar", &brace_layer),
                ("cfg.json", br#"{"rootfs":{}}"#),
                ("manifest.json", br#"[{"Config":"cfg.json"}]"#),
            ],
            &[("ccc/layer.tar", "../aaa/layer.tar")],
        );
        let mut seen = Vec::new();
        let streamed = read(outer.as_slice(), "t", &mut |name, size, r| {
            let mut b = Vec::new();
            r.read_to_end(&mut b).unwrap();
            assert_eq!(b.len() as u64, size);
            seen.push((name.to_owned(), b));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![("aaa/layer.tar".into(), layer), ("bbb/layer.tar".into(), brace_layer)]
        );
        assert_eq!(streamed.metadata.get("aaa/VERSION"), Some(&b"1.0"[..]));
        assert!(streamed.metadata.get("manifest.json").is_some());
        assert_eq!(streamed.resolve("ccc/layer.tar"), "aaa/layer.tar");
    }

    #[test]
    fn one_member_is_copied_out_of_the_stream() {
        let outer = tar_of(&[("a/layer.tar", b"first"), ("b/layer.tar", b"second")], &[]);
        let mut out = Vec::new();
        assert_eq!(copy_member(outer.as_slice(), "t", "b/layer.tar", &mut out).unwrap(), 6);
        assert_eq!(out, b"second");
        let e = copy_member(outer.as_slice(), "t", "c/layer.tar", &mut Vec::new()).unwrap_err();
        assert!(matches!(e, Error::MissingBlob { .. }), "{e}");
    }

    #[test]
    fn broken_streams_are_errors() {
        assert!(read(&b"not a tar at all"[..], "t", &mut |_, _, _| Ok(())).is_err());
        let outer = tar_of(&[("a/layer.tar", &[7u8; 4096])], &[]);
        let cut = &outer[..2048];
        assert!(
            read(cut, "t", &mut |_, _, r| {
                io::copy(r, &mut io::sink()).map(|_| ()).map_err(|e| Error::io("t", e))
            })
            .is_err()
        );
    }
}
