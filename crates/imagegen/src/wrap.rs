//! Archives around layer tars made elsewhere: the real-content benchmark tars real trees with
//! GNU tar, and this wraps those tars into an image, as an OCI archive (each layer stored
//! gzip-, zstd- or un-compressed) or a classic `docker save` archive (layers uncompressed).
//! Each layer is streamed from its file, hashed (and compressed) on the way, so a layer of
//! gigabytes needs kilobytes of memory. The config is minimal and deterministic: `amd64` /
//! `linux`, `PATH` in `Env`, one `COPY part<N> /` history entry per layer, dated the epoch.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::layout::Layout;
use crate::{Compression, HashWriter, MT_OCI_MANIFEST, RawEntry, append_raw, sha256_digest};

/// One history entry per layer, dated the epoch.
fn history(layers: usize) -> Vec<Value> {
    (0..layers)
        .map(
            |i| json!({"created": "1970-01-01T00:00:00Z", "created_by": format!("COPY part{i} /")}),
        )
        .collect()
}

/// The run settings every wrapped image has.
fn run_config() -> Value {
    json!({"Env": ["PATH=/usr/bin:/bin"]})
}

fn to_vec(v: &Value) -> io::Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(io::Error::other)
}

/// Appends the file at `path` as `name`, streamed.
fn append_file<W: Write>(b: &mut tar::Builder<W>, name: &str, path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    append_raw(b, &RawEntry::file(name.as_bytes(), size), BufReader::new(file))
}

/// Writes an OCI archive at `out` of the uncompressed layer tars `layers` (bottom first), each
/// stored with `compression`, the image named `name` (`org.opencontainers.image.ref.name`).
/// Returns the manifest's digest.
///
/// # Errors
/// An unreadable layer, an unwritable `out` (or its `.layout` work directory beside it).
pub fn oci_archive(
    out: &Path,
    compression: Compression,
    layers: &[PathBuf],
    name: &str,
) -> io::Result<String> {
    let work = PathBuf::from(format!("{}.layout", out.display()));
    let _ = fs::remove_dir_all(&work);
    let layout = Layout::new(&work)?;
    let mut blobs = Vec::with_capacity(layers.len());
    for path in layers {
        let mut file = BufReader::new(File::open(path)?);
        blobs.push(layout.layer(compression, |w| io::copy(&mut file, w).map(|_| ()))?);
    }
    let extra = json!({"config": run_config()});
    let (digest, size) = layout.manifest(&blobs, Some(history(blobs.len())), Some(extra))?;
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": MT_OCI_MANIFEST, "digest": digest, "size": size,
        "annotations": {"org.opencontainers.image.ref.name": name},
    }]});
    fs::write(work.join("index.json"), to_vec(&index)?)?;
    let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 16, File::create(out)?));
    append_file(&mut b, "oci-layout", &work.join("oci-layout"))?;
    append_file(&mut b, "index.json", &work.join("index.json"))?;
    append_raw(&mut b, &RawEntry::dir(b"blobs/"), io::empty())?;
    append_raw(&mut b, &RawEntry::dir(b"blobs/sha256/"), io::empty())?;
    let mut names: Vec<String> = fs::read_dir(work.join("blobs/sha256"))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for n in names {
        append_file(&mut b, &format!("blobs/sha256/{n}"), &work.join("blobs/sha256").join(&n))?;
    }
    b.into_inner()?.flush()?;
    fs::remove_dir_all(&work)?;
    Ok(digest)
}

/// Writes a classic `docker save` archive at `out` of the uncompressed layer tars `layers`
/// (bottom first): `<diff_id hex>/layer.tar` each, `<config hex>.json`, and `manifest.json`
/// naming `tag`. Returns the config's digest (the image ID).
///
/// # Errors
/// An unreadable layer or an unwritable `out`.
pub fn docker_archive(out: &Path, layers: &[PathBuf], tag: &str) -> io::Result<String> {
    let mut diff_ids = Vec::with_capacity(layers.len());
    for path in layers {
        let mut hashing = HashWriter::new(io::sink());
        io::copy(&mut BufReader::new(File::open(path)?), &mut hashing)?;
        diff_ids.push(hashing.finish().1);
    }
    let config = to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": run_config(),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history(diff_ids.len()),
    }))?;
    let config_digest = sha256_digest(&config);
    let hex = |d: &str| d.trim_start_matches("sha256:").to_owned();
    let members: Vec<String> = diff_ids.iter().map(|d| format!("{}/layer.tar", hex(d))).collect();
    let manifest = json!([{
        "Config": format!("{}.json", hex(&config_digest)),
        "RepoTags": [tag],
        "Layers": members,
    }]);
    let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 16, File::create(out)?));
    let config_name = format!("{}.json", hex(&config_digest));
    append_raw(&mut b, &RawEntry::file(config_name.as_bytes(), config.len() as u64), &config[..])?;
    let mut written = std::collections::BTreeSet::new();
    for (path, member) in layers.iter().zip(&members) {
        // A layer listed twice is stored once, as docker save does.
        if written.insert(member.clone()) {
            let dir = format!("{}/", member.trim_end_matches("layer.tar").trim_end_matches('/'));
            append_raw(&mut b, &RawEntry::dir(dir.as_bytes()), io::empty())?;
            append_file(&mut b, member, path)?;
        }
    }
    let manifest = to_vec(&manifest)?;
    append_raw(&mut b, &RawEntry::file(b"manifest.json", manifest.len() as u64), &manifest[..])?;
    b.into_inner()?.flush()?;
    Ok(config_digest)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::raw;

    /// Every member of the tar at `path`, with its bytes.
    fn members(path: &Path) -> Vec<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(File::open(path).expect("archive"));
        let mut out = Vec::new();
        for e in a.entries().expect("entries") {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).expect("read");
            out.push((name, bytes));
        }
        out
    }

    fn member<'a>(all: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
        &all.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}")).1
    }

    /// A fresh directory for one test (removed by the test when it passes).
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("imagegen-wrap-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("json")
    }

    /// Two layer tars written into `dir`.
    fn layer_files(dir: &Path) -> (Vec<PathBuf>, Vec<Vec<u8>>) {
        let tars = [
            [raw::file("etc/a.conf", b"FAKE_EXAMPLE=1\n"), raw::END.to_vec()].concat(),
            [raw::file("app/b.txt", b"hello\n"), raw::END.to_vec()].concat(),
        ];
        let paths: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("layer{i}.tar"))).collect();
        for (p, t) in paths.iter().zip(&tars) {
            fs::write(p, t).expect("layer");
        }
        (paths, tars.to_vec())
    }

    #[test]
    fn an_oci_archive_holds_the_layers_as_given() {
        let dir = scratch("oci");
        let (paths, tars) = layer_files(&dir);
        let out = dir.join("img.oci.tar");
        let digest = oci_archive(&out, Compression::Gzip, &paths, "bench").expect("wrap");
        assert!(!dir.join("img.oci.tar.layout").exists(), "the work directory is gone");
        let all = members(&out);
        let blob = |d: &str| member(&all, &format!("blobs/sha256/{}", &d[7..])).to_vec();
        let index = json_of(member(&all, "index.json"));
        assert_eq!(index["manifests"][0]["digest"], digest.as_str());
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "bench"
        );
        let manifest = json_of(&blob(&digest));
        let config = json_of(&blob(manifest["config"]["digest"].as_str().expect("config")));
        assert_eq!(config["history"][1]["created_by"], "COPY part1 /");
        assert_eq!(config["config"]["Env"][0], "PATH=/usr/bin:/bin");
        for (i, tar) in tars.iter().enumerate() {
            let layer = &manifest["layers"][i];
            assert_eq!(layer["mediaType"], crate::MT_OCI_LAYER_GZIP);
            let stored = blob(layer["digest"].as_str().expect("digest"));
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&stored[..]).read_to_end(&mut plain).expect("gunzip");
            assert_eq!(&plain, tar);
            assert_eq!(config["rootfs"]["diff_ids"][i], sha256_digest(tar).as_str());
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_docker_archive_holds_the_layers_uncompressed() {
        let dir = scratch("docker");
        let (paths, tars) = layer_files(&dir);
        let out = dir.join("img.docker.tar");
        let id = docker_archive(&out, &paths, "bench/real:latest").expect("wrap");
        let all = members(&out);
        let manifest = json_of(member(&all, "manifest.json"));
        assert_eq!(manifest[0]["RepoTags"][0], "bench/real:latest");
        let config_name = manifest[0]["Config"].as_str().expect("config");
        assert_eq!(sha256_digest(member(&all, config_name)), id);
        for (i, tar) in tars.iter().enumerate() {
            let name = manifest[0]["Layers"][i].as_str().expect("layer");
            assert_eq!(name, format!("{}/layer.tar", &sha256_digest(tar)[7..]));
            assert_eq!(member(&all, name), &tar[..]);
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
