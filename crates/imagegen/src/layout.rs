//! A streaming OCI image layout writer for hand-made layers: a layer is whatever bytes a
//! closure writes (usually [`crate::raw`] blocks), compressed and hashed on the way to its blob
//! file, so a layer of gigabytes needs kilobytes of memory. The config and manifest are minimal
//! (`amd64`/`linux`, one `COPY x /` history entry per layer unless given), enough for strata
//! and for nothing that would hide what a test or a hostile shape is about.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{
    Compression, Enc, HashWriter, MT_OCI_CONFIG, MT_OCI_INDEX, MT_OCI_MANIFEST, sha256_digest,
};

/// One layer blob in a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>` of the stored (compressed) bytes.
    pub digest: String,
    /// Stored size.
    pub size: u64,
    /// `sha256:<hex>` of the uncompressed stream.
    pub diff_id: String,
    /// The OCI layer media type of its compression.
    pub media_type: &'static str,
}

/// An OCI image layout being written under `root`.
#[derive(Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Creates `root/blobs/sha256` and `root/oci-layout`.
    pub fn new(root: &Path) -> io::Result<Layout> {
        fs::create_dir_all(root.join("blobs/sha256"))?;
        fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Layout { root: root.to_owned() })
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }

    /// Stores bytes as a blob; returns its digest and size.
    pub fn put(&self, bytes: &[u8]) -> io::Result<(String, u64)> {
        let d = sha256_digest(bytes);
        fs::write(self.blob_path(&d), bytes)?;
        Ok((d, bytes.len() as u64))
    }

    /// A layer blob: `write` produces the uncompressed stream, stored with `compression`
    /// (gzip level 6, zstd level 3) and hashed on the way.
    pub fn layer(
        &self,
        compression: Compression,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<Blob> {
        let tmp = self.root.join("blobs/tmp");
        let file = BufWriter::with_capacity(1 << 16, File::create(&tmp)?);
        let mut plain = HashWriter::new(Enc::new(HashWriter::new(file), compression)?);
        write(&mut plain)?;
        let (enc, diff_id, _) = plain.finish();
        let (mut file, digest, size) = enc.finish()?.finish();
        file.flush()?;
        drop(file);
        fs::rename(&tmp, self.blob_path(&digest))?;
        Ok(Blob { digest, size, diff_id, media_type: compression.layer_media_type() })
    }

    /// Stores a config (with `extra` merged into its top level) and the manifest of `layers`;
    /// returns the manifest's digest and size. `history` defaults to one `COPY x /` entry
    /// per layer; the config's `rootfs.diff_ids` are the layers' own.
    pub fn manifest(
        &self,
        layers: &[Blob],
        history: Option<Vec<Value>>,
        extra: Option<Value>,
    ) -> io::Result<(String, u64)> {
        let diff_ids: Vec<&str> = layers.iter().map(|b| b.diff_id.as_str()).collect();
        self.manifest_claiming(layers, &diff_ids, history, extra)
    }

    /// As [`Layout::manifest`], with a config claiming these `diff_ids` whatever the layers
    /// hold.
    pub fn manifest_claiming(
        &self,
        layers: &[Blob],
        diff_ids: &[&str],
        history: Option<Vec<Value>>,
        extra: Option<Value>,
    ) -> io::Result<(String, u64)> {
        let history = history
            .unwrap_or_else(|| layers.iter().map(|_| json!({"created_by": "COPY x /"})).collect());
        let mut config = json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        if let (Some(Value::Object(extra)), Value::Object(c)) = (extra, &mut config) {
            c.extend(extra);
        }
        let (config_digest, config_size) = self.put(&to_vec(&config)?)?;
        let layer_descs: Vec<Value> = layers
            .iter()
            .map(|b| json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size}))
            .collect();
        let manifest = json!({
            "schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
            "config": {"mediaType": MT_OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layer_descs,
        });
        self.put(&to_vec(&manifest)?)
    }

    /// Stores an image index listing `(digest, size, media type)` entries; returns its digest
    /// and size.
    pub fn put_index(&self, entries: &[(String, u64, &str)]) -> io::Result<(String, u64)> {
        self.put(&to_vec(&index_json(entries, true))?)
    }

    /// Writes `index.json` listing `(digest, size, media type)` entries.
    pub fn index(&self, entries: &[(String, u64, &str)]) -> io::Result<()> {
        fs::write(self.root.join("index.json"), to_vec(&index_json(entries, false))?)
    }

    /// Finishes a one-image layout of `layers` (see [`Layout::manifest`]); returns the root.
    pub fn image(
        self,
        layers: &[Blob],
        history: Option<Vec<Value>>,
        extra: Option<Value>,
    ) -> io::Result<PathBuf> {
        let (d, s) = self.manifest(layers, history, extra)?;
        self.index(&[(d, s, MT_OCI_MANIFEST)])?;
        Ok(self.root)
    }
}

fn index_json(entries: &[(String, u64, &str)], typed: bool) -> Value {
    let manifests: Vec<Value> =
        entries.iter().map(|(d, s, mt)| json!({"mediaType": mt, "digest": d, "size": s})).collect();
    let mut index = json!({"schemaVersion": 2, "manifests": manifests});
    if typed && let Value::Object(i) = &mut index {
        i.insert("mediaType".into(), MT_OCI_INDEX.into());
    }
    index
}

fn to_vec(v: &Value) -> io::Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(io::Error::other)
}

/// A one-layer image under `root`: the layer is what `write` produces, gzip-compressed.
pub fn one_layer(
    root: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let layout = Layout::new(root)?;
    let blob = layout.layer(Compression::Gzip, write)?;
    layout.image(&[blob], None, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw;

    #[test]
    fn a_layer_is_hashed_before_and_after_compression() {
        let dir = std::env::temp_dir().join(format!("imagegen-layout-{}", std::process::id()));
        let layout = Layout::new(&dir).expect("layout");
        let tar = [raw::file("a.txt", b"hello\n"), raw::END.to_vec()].concat();
        let blob = layout.layer(Compression::Gzip, |w| w.write_all(&tar)).expect("layer");
        assert_eq!(blob.diff_id, sha256_digest(&tar));
        let stored = fs::read(layout.blob_path(&blob.digest)).expect("blob");
        assert_eq!((sha256_digest(&stored), stored.len() as u64), (blob.digest.clone(), blob.size));
        let mut plain = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&stored[..]), &mut plain)
            .expect("gunzip");
        assert_eq!(plain, tar);
        let root = layout.image(&[blob], None, None).expect("image");
        let index: Value =
            serde_json::from_slice(&fs::read(root.join("index.json")).expect("index"))
                .expect("json");
        assert_eq!(index["manifests"][0]["mediaType"], MT_OCI_MANIFEST);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
