//! `containers-storage:IMAGE`: an image in the local storage of Podman,
//! Buildah and CRI-O (containers/storage), read directly: no daemon, no
//! export.
//!
//! The storage keeps, per driver (`overlay`, `vfs`): image records in
//! `<driver>-images/images.json` with each image's documents ("big data")
//! beside them, layer records in `<driver>-layers/layers.json`, and for
//! each layer a tar-split record (`<id>.tar-split.gz`) of its original tar
//! next to the extracted files (`overlay/<id>/diff`, `vfs/dir/<id>`).
//! [`open`] finds the image, serves its config and a synthesized OCI
//! manifest from memory, and rebuilds each layer's tar on demand with
//! `tar_split::Rebuild`, which checks it against the layer's
//! recorded uncompressed digest.
//!
//! Without `--storage-root`, the root and driver are the ones
//! containers/storage would use (`storage.conf`, rootless defaults under
//! `$HOME`): see `storage_conf`.
//!
//! The storage is read without taking its locks: scan images that no
//! engine is removing at the same time.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::blob::{BlobSource, MemorySource};
use super::layout::{self, PlatformFilter};
use super::store::{BlobStore, MAX_JSON_BYTES};
use super::tar_split::Rebuild;
use super::{Error, Image, ReadOptions};
use crate::diagnostics::Diagnostics;

/// The target prefix.
pub const PREFIX: &str = "containers-storage:";

/// Drivers whose layers are directories of plain files strata can read.
const DRIVERS: [&str; 2] = ["overlay", "vfs"];

/// Layers followed through `parent` before calling the chain a loop.
const MAX_LAYERS: usize = 1000;

/// An `images.json` record.
#[derive(Debug, Deserialize)]
struct StoredImage {
    id: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    layer: Option<String>,
}

/// A `layers.json` record.
#[derive(Debug, Deserialize)]
struct StoredLayer {
    id: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(rename = "diff-digest", default)]
    diff_digest: Option<String>,
    #[serde(rename = "diff-size", default)]
    diff_size: Option<i64>,
}

/// The file name containers/storage gives a big-data item: the key itself
/// when it is only `[0-9a-z.]`, else `=` and its base64.
fn big_data_name(key: &str) -> String {
    if !key.is_empty()
        && key.bytes().all(|b| b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        key.to_owned()
    } else {
        format!("={}", base64::engine::general_purpose::STANDARD.encode(key))
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, target: &str) -> Result<T, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(&path.display().to_string(), e))?;
    if meta.len() > MAX_JSON_BYTES {
        return Err(Error::Invalid {
            file: target.to_owned(),
            what: path.display().to_string(),
            reason: format!("{} bytes is too large for storage metadata", meta.len()),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(&path.display().to_string(), e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Invalid {
        file: target.to_owned(),
        what: path.display().to_string(),
        reason: format!("corrupt JSON: {e}"),
    })
}

/// The names `wanted` may appear under: as given, with `:latest`, and
/// with the registries Podman puts in front of short names.
fn name_forms(wanted: &str) -> Vec<String> {
    let last = wanted.rsplit('/').next().unwrap_or(wanted);
    let tagged = if last.contains(':') || last.contains('@') {
        wanted.to_owned()
    } else {
        format!("{wanted}:latest")
    };
    let mut forms = vec![wanted.to_owned(), tagged.clone()];
    let first = wanted.split('/').next().unwrap_or("");
    let has_domain = wanted.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    if !has_domain {
        forms.push(format!("localhost/{tagged}"));
        if wanted.contains('/') {
            forms.push(format!("docker.io/{tagged}"));
        } else {
            forms.push(format!("docker.io/library/{tagged}"));
        }
    }
    forms
}

/// Finds `wanted` (a name or an ID prefix of at least 4 hex digits).
fn find_image<'a>(
    images: &'a [StoredImage],
    wanted: &str,
    target: &str,
) -> Result<Option<&'a StoredImage>, Error> {
    let forms = name_forms(wanted);
    if let Some(img) = images
        .iter()
        .find(|i| i.names.as_ref().is_some_and(|n| n.iter().any(|n| forms.contains(n))))
    {
        return Ok(Some(img));
    }
    let id = wanted.strip_prefix("sha256:").unwrap_or(wanted);
    if id.len() < 4 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let matches: Vec<&StoredImage> = images.iter().filter(|i| i.id.starts_with(id)).collect();
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(Error::Unrecognised {
            file: target.to_owned(),
            reason: format!("image ID prefix {id} is ambiguous ({} images match)", matches.len()),
        }),
    }
}

/// One image's blobs: metadata in memory, layers rebuilt from storage.
#[derive(Debug)]
struct Storage {
    metadata: MemorySource,
    /// Member name → (tar-split record, layer directory, recorded diff digest).
    layers: HashMap<String, (PathBuf, PathBuf, String)>,
    display: String,
}

impl BlobSource for Storage {
    fn size(&self, name: &str) -> Option<u64> {
        self.metadata.size(name)
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, Error> {
        if self.metadata.size(name).is_some() {
            return self.metadata.open(name);
        }
        let Some((record, dir, digest)) = self.layers.get(name) else {
            return Err(Error::MissingBlob { file: self.display.clone(), blob: name.to_owned() });
        };
        let rebuilt = Rebuild::open(record, dir, Some(digest.clone())).map_err(|e| {
            Error::io(&format!("{}: {} and {}", self.display, record.display(), dir.display()), e)
        })?;
        Ok(Box::new(rebuilt))
    }
}

/// Opens `name` from the storage at `root` (or the default root).
///
/// # Errors
/// No storage there, no such image, unreadable or corrupt metadata, or a
/// layer without the records needed to rebuild it.
pub fn open(
    target: &str,
    name: &str,
    root: Option<&Path>,
    platform: Option<&PlatformFilter>,
    read: ReadOptions,
    diag: &Diagnostics,
) -> Result<Vec<Image>, Error> {
    // The configured driver is read first; an explicit root still uses it, as
    // `podman --root` does.
    let (root, origin, driver) = match root {
        Some(r) => {
            let driver = super::storage_conf::current().ok().and_then(|d| d.driver);
            (r.to_owned(), "--storage-root".to_owned(), driver)
        }
        None => {
            let d = super::storage_conf::current()?;
            (d.root, d.origin, d.driver)
        }
    };
    let mut drivers: Vec<&str> = DRIVERS
        .iter()
        .copied()
        .filter(|d| root.join(format!("{d}-images/images.json")).is_file())
        .collect();
    if let Some(configured) = driver.as_deref() {
        drivers.sort_by_key(|d| *d != configured);
    }
    if drivers.is_empty() {
        let configured = match driver.as_deref() {
            Some(d) if !DRIVERS.contains(&d) => {
                format!("; the configured driver is {d}, which strata cannot read")
            }
            _ => String::new(),
        };
        return Err(Error::Unrecognised {
            file: target.to_owned(),
            reason: format!(
                "no containers storage at {} (from {origin}: no overlay-images/images.json or vfs-images/images.json; strata reads the overlay and vfs drivers{configured}; use --storage-root for another location)",
                root.display()
            ),
        });
    }
    for driver in &drivers {
        let images: Vec<StoredImage> =
            read_json(&root.join(format!("{driver}-images/images.json")), target)?;
        let Some(image) = find_image(&images, name, target)? else { continue };
        let found = Found { target, root: &root, driver, image };
        return open_image(&found, platform, read, diag);
    }
    Err(Error::Unrecognised {
        file: target.to_owned(),
        reason: format!(
            "no image named {name} in the containers storage at {} ({} driver)",
            root.display(),
            drivers.join(", ")
        ),
    })
}

/// An image record found in a storage, and where: the storage's root and driver.
struct Found<'a> {
    /// The target as the user gave it.
    target: &'a str,
    root: &'a Path,
    driver: &'a str,
    image: &'a StoredImage,
}

/// Opens the image `found` names: its layer chain, its config and a
/// manifest synthesized over them, read as `read` says.
fn open_image(
    found: &Found<'_>,
    platform: Option<&PlatformFilter>,
    read: ReadOptions,
    diag: &Diagnostics,
) -> Result<Vec<Image>, Error> {
    let Found { target, root, driver, image } = *found;
    let invalid = |what: &str, reason: String| Error::Invalid {
        file: target.to_owned(),
        what: what.to_owned(),
        reason,
    };
    let layers_dir = root.join(format!("{driver}-layers"));
    let stored: Vec<StoredLayer> = read_json(&layers_dir.join("layers.json"), target)?;
    let by_id: HashMap<&str, &StoredLayer> = stored.iter().map(|l| (l.id.as_str(), l)).collect();
    // Top layer down to the base, then reversed into manifest order.
    let mut chain = Vec::new();
    let mut next = image.layer.clone();
    while let Some(id) = next {
        if chain.len() >= MAX_LAYERS {
            return Err(invalid("layers.json", format!("layer chain of {} is a loop", image.id)));
        }
        let layer = by_id.get(id.as_str()).ok_or_else(|| {
            invalid(
                "layers.json",
                format!("image {} needs layer {id}, which is not recorded", image.id),
            )
        })?;
        chain.push(*layer);
        next = layer.parent.clone();
    }
    chain.reverse();

    let config_key = format!("sha256:{}", image.id);
    let config_path =
        root.join(format!("{driver}-images")).join(&image.id).join(big_data_name(&config_key));
    let config = std::fs::read(&config_path)
        .map_err(|e| Error::io(&format!("{target}: image config {}", config_path.display()), e))?;
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&config)));
    if actual != config_key {
        diag.warn(format!(
            "{target}: image config {}: digest mismatch, content hashes to {actual}",
            config_path.display()
        ));
    }

    let mut layers = HashMap::new();
    let mut descriptors = Vec::new();
    for layer in &chain {
        let digest =
            layer.diff_digest.clone().filter(|d| d.starts_with("sha256:")).ok_or_else(|| {
                invalid(
                    "layers.json",
                    format!("layer {} has no uncompressed digest recorded", layer.id),
                )
            })?;
        let dir = match driver {
            "vfs" => root.join("vfs/dir").join(&layer.id),
            _ => root.join("overlay").join(&layer.id).join("diff"),
        };
        let record = layers_dir.join(format!("{}.tar-split.gz", layer.id));
        if !record.is_file() {
            return Err(Error::MissingBlob {
                file: target.to_owned(),
                blob: format!("{} (tar-split record of layer {})", record.display(), layer.id),
            });
        }
        let member = format!("blobs/{}", digest.replacen(':', "/", 1));
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest,
            "size": layer.diff_size.unwrap_or(0).max(0),
        }));
        layers.insert(member, (record, dir, digest));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_key,
            "size": config.len(),
        },
        "layers": descriptors,
    });
    let manifest = serde_json::to_vec(&manifest).expect("a JSON value serializes");
    let manifest_digest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
    let name = image.names.as_ref().and_then(|n| n.first()).cloned();
    let mut desc = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": manifest.len(),
    });
    if let Some(n) = &name {
        desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": n});
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [desc]});
    let mut metadata = MemorySource::new(target);
    metadata.insert("index.json".into(), serde_json::to_vec(&index).expect("JSON serializes"));
    metadata.insert(format!("blobs/{}", manifest_digest.replacen(':', "/", 1)), manifest);
    metadata.insert(format!("blobs/sha256/{}", image.id), config);
    let storage = Storage { metadata, layers, display: target.to_owned() };
    let store = BlobStore::source(Arc::new(storage), target);
    let images = layout::images(target, store, platform, read, diag)?;
    // The image as the engine names it: the digest it shows (`podman images --digests`),
    // when it has one, rather than the synthesized manifest's, and every name it records
    // (the synthesized index carries only the first).
    let digest = image.digest.as_ref().filter(|d| d.starts_with("sha256:"));
    let names = image.names.clone().unwrap_or_default();
    Ok(images
        .into_iter()
        .map(|img| {
            let img = img.with_references(names.clone());
            match digest {
                Some(d) => img.with_digest(d.clone()),
                None => img,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_data_names_match_containers_storage() {
        assert_eq!(big_data_name("manifest"), "manifest");
        assert_eq!(
            big_data_name("sha256:ab"),
            format!("={}", base64::engine::general_purpose::STANDARD.encode("sha256:ab"))
        );
        assert_eq!(big_data_name("Manifest"), "=TWFuaWZlc3Q=");
    }

    #[test]
    fn short_names_resolve_like_podman() {
        let f = name_forms("app");
        assert!(f.contains(&"localhost/app:latest".to_owned()));
        assert!(f.contains(&"docker.io/library/app:latest".to_owned()));
        let f = name_forms("team/app:1");
        assert!(f.contains(&"docker.io/team/app:1".to_owned()));
        assert!(f.contains(&"localhost/team/app:1".to_owned()));
        assert_eq!(name_forms("quay.io/x/y:2"), vec!["quay.io/x/y:2", "quay.io/x/y:2"]);
    }
}
