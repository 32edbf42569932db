//! Copies an OCI archive changing ONLY its top layer, for the cached-rescan benchmark: the
//! top layer's tar gets one small file appended (so its digest and diff_id change), and the
//! config, the manifest and `index.json` are rewritten to match. Every other member is copied
//! byte for byte, and the old top layer's entries are copied block for block (not re-encoded).
//! Streams: nothing larger than a JSON document is held in memory.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::raw::{BLOCK, END, file, padding};
use crate::{Compression, Enc, HashWriter, MT_OCI_INDEX, sha256_digest};

/// What [`retop`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retopped {
    /// `sha256:<hex>` of the new manifest (the first entry of `index.json`).
    pub manifest_digest: String,
    /// `sha256:<hex>` of the new config.
    pub config_digest: String,
    /// `sha256:<hex>` of the new top layer blob.
    pub layer_digest: String,
    /// The new top layer's diff_id.
    pub diff_id: String,
}

/// Writes `dst`, a copy of the OCI archive `src` whose top layer (of the first manifest in
/// `index.json`) has `data/retop-<tag>.txt` appended. The layer keeps its compression (gzip
/// level 6, zstd level 3 or none, from its media type).
pub fn retop(src: &Path, dst: &Path, tag: &str) -> io::Result<Retopped> {
    let bad = |what: String| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", src.display()))
    };
    let mut index = json_member(src, "index.json")?;
    let first = &index["manifests"][0];
    if first["mediaType"] == MT_OCI_INDEX {
        return Err(bad(
            "index.json's first entry is an image index; only an image manifest can be re-topped"
                .into(),
        ));
    }
    let manifest_name = blob_name(
        first["digest"]
            .as_str()
            .ok_or_else(|| bad("index.json names no manifest digest".into()))?,
    );
    let mut manifest = json_member(src, &manifest_name)?;
    let config_name = blob_name(
        manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| bad("the manifest names no config".into()))?,
    );
    let mut config = json_member(src, &config_name)?;
    let layers =
        manifest["layers"].as_array().ok_or_else(|| bad("the manifest has no layers".into()))?;
    let top = layers.last().ok_or_else(|| bad("the manifest has no layers".into()))?;
    let top_digest =
        top["digest"].as_str().ok_or_else(|| bad("the top layer has no digest".into()))?.to_owned();
    let shared = layers.iter().filter(|l| l["digest"] == top_digest.as_str()).count() > 1;
    let media_type = top["mediaType"].as_str().unwrap_or_default();
    let compression = if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
        Compression::Gzip
    } else if media_type.ends_with("+zstd") {
        Compression::Zstd
    } else {
        Compression::None
    };
    let old_top = blob_name(&top_digest);

    let part = with_suffix(dst, ".part");
    let new_layer = with_suffix(dst, ".layer");
    let result = (|| {
        let (layer_digest, layer_size, diff_id) =
            rewrite_layer(src, &old_top, compression, &new_layer, tag)?;
        let top = manifest["layers"]
            .as_array_mut()
            .and_then(|l| l.last_mut())
            .ok_or_else(|| bad("no top layer".into()))?;
        top["digest"] = layer_digest.clone().into();
        top["size"] = layer_size.into();
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array_mut()
            .and_then(|d| d.last_mut())
            .ok_or_else(|| bad("the config has no rootfs.diff_ids".into()))?;
        *diff_ids = diff_id.clone().into();
        let config_bytes = to_vec(&config)?;
        let config_digest = sha256_digest(&config_bytes);
        manifest["config"]["digest"] = config_digest.clone().into();
        manifest["config"]["size"] = config_bytes.len().into();
        let manifest_bytes = to_vec(&manifest)?;
        let manifest_digest = sha256_digest(&manifest_bytes);
        index["manifests"][0]["digest"] = manifest_digest.clone().into();
        index["manifests"][0]["size"] = manifest_bytes.len().into();
        let index_bytes = to_vec(&index)?;

        let mut out = tar::Builder::new(BufWriter::new(File::create(&part)?));
        let mut archive = tar::Archive::new(BufReader::new(File::open(src)?));
        for entry in archive.entries()? {
            let entry = entry?;
            let name = normalized(&entry.path()?.to_string_lossy());
            let replaced = name == "index.json"
                || name == manifest_name
                || name == config_name
                || (name == old_top && !shared);
            if !replaced {
                let mut header = entry.header().clone();
                let path = entry.path()?.into_owned();
                out.append_data(&mut header, path, entry)?;
            }
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(layer_size);
        out.append_data(&mut header, blob_name(&layer_digest), File::open(&new_layer)?)?;
        for (name, bytes) in [
            (blob_name(&config_digest), &config_bytes),
            (blob_name(&manifest_digest), &manifest_bytes),
            ("index.json".to_owned(), &index_bytes),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_size(bytes.len() as u64);
            out.append_data(&mut header, name, &bytes[..])?;
        }
        out.into_inner()?.flush()?;
        fs::rename(&part, dst)?;
        Ok(Retopped { manifest_digest, config_digest, layer_digest, diff_id })
    })();
    let _ = fs::remove_file(&new_layer);
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A member name without a leading `./` or `/` (skopeo writes `./`-less names, GNU tar may
/// not).
fn normalized(name: &str) -> String {
    let mut n = name;
    while let Some(rest) = n.strip_prefix("./") {
        n = rest;
    }
    n.trim_start_matches('/').to_owned()
}

fn blob_name(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

fn to_vec(v: &Value) -> io::Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(io::Error::other)
}

/// Runs `f` on the data of member `name` of the archive `src`.
fn with_member<T>(
    src: &Path,
    name: &str,
    f: impl FnOnce(&mut dyn Read) -> io::Result<T>,
) -> io::Result<T> {
    let mut archive = tar::Archive::new(File::open(src)?);
    for entry in archive.entries_with_seek()? {
        let mut entry = entry?;
        if normalized(&entry.path()?.to_string_lossy()) == name {
            return f(&mut entry);
        }
    }
    Err(io::Error::new(io::ErrorKind::NotFound, format!("{}: no member {name}", src.display())))
}

fn json_member(src: &Path, name: &str) -> io::Result<Value> {
    with_member(src, name, |r| {
        serde_json::from_reader(r).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {name}: {e}", src.display()))
        })
    })
}

/// Writes the new top layer blob to `out`: the old layer's entries block for block, then
/// the retop file and the end-of-archive marker. Returns the blob's digest and size and the
/// new diff_id.
fn rewrite_layer(
    src: &Path,
    old_top: &str,
    compression: Compression,
    out: &Path,
    tag: &str,
) -> io::Result<(String, u64, String)> {
    with_member(src, old_top, |blob| {
        let mut tar: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(blob),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(blob))),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(blob)?),
        };
        let sink = BufWriter::with_capacity(1 << 16, File::create(out)?);
        let mut plain = HashWriter::new(Enc::new(HashWriter::new(sink), compression)?);
        copy_entries(&mut tar, &mut plain)?;
        let data = format!("changed top layer: {tag}\n");
        plain.write_all(&file(&format!("data/retop-{tag}.txt"), data.as_bytes()))?;
        plain.write_all(&END)?;
        let (enc, diff_id, _) = plain.finish();
        let (mut sink, digest, size) = enc.finish()?.finish();
        sink.flush()?;
        Ok((digest, size, diff_id))
    })
}

/// Copies tar entries (header and data blocks, whatever their type) up to the end-of-archive
/// marker or the end of the stream, leaving the marker out.
fn copy_entries(tar: &mut dyn Read, out: &mut dyn Write) -> io::Result<()> {
    let mut block = [0u8; BLOCK];
    loop {
        match read_block(tar, &mut block)? {
            false => return Ok(()),
            true if block.iter().all(|&b| b == 0) => return Ok(()),
            true => {}
        }
        let size = tar::Header::from_byte_slice(&block).entry_size()?;
        out.write_all(&block)?;
        let data = size + padding(size) as u64;
        let copied = io::copy(&mut tar.take(data), out)?;
        if copied != data {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the top layer's tar ends inside an entry",
            ));
        }
    }
}

/// Reads one whole block; `false` at a clean end of stream.
fn read_block(r: &mut dyn Read, block: &mut [u8; BLOCK]) -> io::Result<bool> {
    let mut n = 0;
    while n < BLOCK {
        match r.read(&mut block[n..])? {
            0 if n == 0 => return Ok(false),
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the top layer's tar ends inside a header",
                ));
            }
            k => n += k,
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, Format, ImageSpec, Layer, write_image};

    fn members(archive: &Path) -> Vec<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(File::open(archive).expect("archive"));
        a.entries()
            .expect("entries")
            .map(|e| {
                let mut e = e.expect("entry");
                let name = normalized(&e.path().expect("path").to_string_lossy());
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("data");
                (name, data)
            })
            .collect()
    }

    #[test]
    fn only_the_top_layer_and_the_documents_change() {
        let dir = std::env::temp_dir().join(format!("imagegen-retop-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let spec = ImageSpec {
            layers: vec![
                Layer::new("COPY a /", vec![Entry::file("a.txt", "a\n")]),
                Layer::new("COPY b /", vec![Entry::file("b.txt", "b\n"), Entry::whiteout("a.txt")]),
            ],
            ..ImageSpec::default()
        };
        let src = dir.join("in.oci.tar");
        let info = write_image(&spec, Format::OciArchive, &src).expect("image");
        let dst = dir.join("out.oci.tar");
        let new = retop(&src, &dst, "t").expect("retop");

        let before = members(&src);
        let after = members(&dst);
        let kept = |name: &str| after.iter().find(|(n, _)| n == name).map(|(_, d)| d.clone());
        // The bottom layer and oci-layout are the same bytes; the old top layer is gone.
        let bottom = blob_name(&info.layer_digests[0]);
        assert_eq!(
            kept(&bottom),
            before.iter().find(|(n, _)| *n == bottom).map(|(_, d)| d.clone())
        );
        assert_eq!(kept("oci-layout").as_deref(), Some(&br#"{"imageLayoutVersion":"1.0.0"}"#[..]));
        assert_eq!(kept(&blob_name(&info.layer_digests[1])), None);
        // The new top layer: the old entries, then the added file; its digests are what the
        // documents claim.
        let blob = kept(&blob_name(&new.layer_digest)).expect("new top layer");
        assert_eq!(sha256_digest(&blob), new.layer_digest);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&blob[..]).read_to_end(&mut plain).expect("gunzip");
        assert_eq!(sha256_digest(&plain), new.diff_id);
        let names: Vec<String> = tar::Archive::new(&plain[..])
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["b.txt", ".wh.a.txt", "data/retop-t.txt"]);
        let index: Value =
            serde_json::from_slice(&kept("index.json").expect("index")).expect("json");
        assert_eq!(index["manifests"][0]["digest"], new.manifest_digest.as_str());
        let manifest: Value =
            serde_json::from_slice(&kept(&blob_name(&new.manifest_digest)).expect("manifest"))
                .expect("json");
        assert_eq!(manifest["config"]["digest"], new.config_digest.as_str());
        assert_eq!(manifest["layers"][1]["digest"], new.layer_digest.as_str());
        let config: Value =
            serde_json::from_slice(&kept(&blob_name(&new.config_digest)).expect("config"))
                .expect("json");
        assert_eq!(config["rootfs"]["diff_ids"][0], info.diff_ids[0].as_str());
        assert_eq!(config["rootfs"]["diff_ids"][1], new.diff_id.as_str());
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
