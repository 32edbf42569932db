//! Image metadata targets: a docker-save `manifest.json`, an OCI image
//! manifest, an OCI index and an image config, each placed in an otherwise
//! valid layout (fixture blobs from [`fixture`]) and opened with
//! [`layout::images`], then every resulting layer walked.

use std::io::Read;

use super::{blob_path, digest, put, scratch};
use crate::diagnostics::Diagnostics;
use crate::image::layer::{self, Flow};
use crate::image::layout;
use crate::image::store::BlobStore;
use crate::image::{Image, Layer};
use crate::pipeline::config_findings;
use crate::redact::{Redactor, TextRedactor};
use crate::report::redaction::redact_instructions;
use crate::scan::Scanner;
use crate::scan::content::Limits;

/// The fixed blobs the metadata targets place beside the fuzzed document,
/// so that a mutation of a valid seed reaches config and layer parsing.
pub mod fixture {
    use super::digest;

    /// A two-entry layer (`app/`, `app/config.txt`), uncompressed.
    pub fn layer() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_ustar();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        b.append_data(&mut dir, "app/", std::io::empty()).expect("in-memory tar");
        let body = b"greeting=hello\n";
        let mut file = tar::Header::new_ustar();
        file.set_mode(0o644);
        file.set_size(body.len() as u64);
        b.append_data(&mut file, "app/config.txt", &body[..]).expect("in-memory tar");
        b.into_inner().expect("in-memory tar")
    }

    /// A config whose one diff_id is [`layer`]'s digest.
    pub fn config() -> Vec<u8> {
        format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/usr/bin"],"Labels":{{"a":"b"}},"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}},"history":[{{"created_by":"ARG X=1","empty_layer":true}},{{"created_by":"COPY app /app"}}]}}"#,
            digest(&layer())
        )
        .into_bytes()
    }

    /// An OCI image manifest naming `config` and one [`layer`].
    pub fn manifest(config: &[u8]) -> Vec<u8> {
        let layer = layer();
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
            digest(config),
            config.len(),
            digest(&layer),
            layer.len()
        )
        .into_bytes()
    }

    /// An OCI index listing `manifest` for linux/amd64 with a tag.
    pub fn index(manifest: &[u8]) -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"platform":{{"os":"linux","architecture":"amd64"}},"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]}}"#,
            digest(manifest),
            manifest.len()
        )
        .into_bytes()
    }

    /// A docker-save `manifest.json` naming `config.json` and `layer.tar`.
    pub fn docker_manifest() -> Vec<u8> {
        br#"[{"Config":"config.json","RepoTags":["example/app:latest"],"Layers":["layer.tar"]}]"#
            .to_vec()
    }
}

/// Writes the fixture blobs (layer, config, manifest, and an index
/// pointing at the manifest, stored as a blob too) under `dir`.
fn write_fixtures(dir: &std::path::Path) {
    let layer = fixture::layer();
    let config = fixture::config();
    let manifest = fixture::manifest(&config);
    let nested = fixture::index(&manifest);
    for blob in [&layer, &config, &manifest, &nested] {
        put(dir, &blob_path(&digest(blob)), blob);
    }
    put(dir, "layer.tar", &layer);
    put(dir, "config.json", &config);
}

/// A docker-save `manifest.json`.
pub fn docker_manifest(data: &[u8]) {
    let dir = scratch();
    write_fixtures(dir.path());
    put(dir.path(), "manifest.json", data);
    open_and_walk(dir.path());
}

/// An OCI image manifest, named by a valid index.
pub fn oci_manifest(data: &[u8]) {
    let dir = scratch();
    write_fixtures(dir.path());
    put(dir.path(), &blob_path(&digest(data)), data);
    put(dir.path(), "index.json", &fixture::index(data));
    open_and_walk(dir.path());
}

/// An OCI `index.json` (the fixture manifest and a nested index are in the store).
pub fn oci_index(data: &[u8]) {
    let dir = scratch();
    write_fixtures(dir.path());
    put(dir.path(), "index.json", data);
    open_and_walk(dir.path());
}

/// An image config behind a valid index and manifest; its strings go
/// through the config detector and the redaction of instructions a scan
/// applies (`report::redaction`).
pub fn image_config(data: &[u8], scanner: &Scanner) {
    let dir = scratch();
    write_fixtures(dir.path());
    let manifest = fixture::manifest(data);
    put(dir.path(), &blob_path(&digest(data)), data);
    put(dir.path(), &blob_path(&digest(&manifest)), &manifest);
    put(dir.path(), "index.json", &fixture::index(&manifest));
    let diag = Diagnostics::new(false);
    for image in open_and_walk(dir.path()) {
        // The config findings a scan reports, redacted as a scan redacts them.
        let mut findings = config_findings(&image, scanner, Limits::default(), &diag);
        let redactor = TextRedactor::new(Redactor::new(findings.iter().map(|f| &f.secret)), None);
        redact_instructions(&redactor, &mut findings);
        for f in &findings {
            let Some(shown) = &f.created_by else { continue };
            for other in &findings {
                if let Ok(raw) = std::str::from_utf8(other.secret.expose())
                    && raw.len() >= 8
                {
                    assert!(!shown.contains(raw), "redacted instruction still holds a secret");
                }
            }
        }
    }
}

/// Opens the layout, checks each image's invariants and walks its layers.
fn open_and_walk(dir: &std::path::Path) -> Vec<Image> {
    let diag = Diagnostics::new(false);
    let store = BlobStore::dir(dir, "fuzz");
    let Ok(images) = layout::images("fuzz", store, None, Default::default(), &diag) else {
        return Vec::new();
    };
    for image in &images {
        check_image(image);
        for layer in image.layers() {
            walk(image, layer, &diag);
        }
    }
    images
}

/// What every opened image promises the pipeline.
fn check_image(image: &Image) {
    let history = &image.config().history;
    let mut last = None;
    for (i, layer) in image.layers().iter().enumerate() {
        assert_eq!(layer.index, i, "layer indexes follow manifest order");
        if let Some(h) = layer.history_index {
            assert!(h < history.len(), "history index {h} out of range");
            assert!(!history[h].empty_layer, "a layer tied to an empty_layer history entry");
            assert!(last.is_none_or(|l| l < h), "history indexes increase with layers");
            assert_eq!(layer.created_by, history[h].created_by, "created_by from its history");
            last = Some(h);
        } else {
            assert!(layer.created_by.is_none(), "created_by without a history entry");
        }
    }
}

/// Walks a layer, reading every file fully.
fn walk(image: &Image, layer: &Layer, diag: &Diagnostics) {
    let _ = layer::walk(image, layer, diag, &mut |_, content| {
        if let Some(r) = content {
            std::io::copy(&mut r.take(1 << 20), &mut std::io::sink())?;
        }
        Ok(Flow::Continue)
    });
}
