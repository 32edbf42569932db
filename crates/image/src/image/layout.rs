//! Image metadata: finds the images in a store (OCI `index.json`, nested and
//! multi-platform indexes, or legacy docker-save `manifest.json`) and parses
//! manifests and configs into [`Image`]s.
//!
//! Documents are recognised by their content (`manifests` vs `layers`), not
//! by the media type a descriptor claims.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::store::BlobStore;
use super::{
    Attestation, AttestationLayer, Error, HistoryEntry, Image, ImageConfig, Layer, ReadOptions,
};
use crate::diagnostics::Diagnostics;

/// How deep indexes may nest before we call the target malformed.
const MAX_INDEX_DEPTH: usize = 4;

/// `--platform os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFilter {
    os: String,
    arch: String,
    variant: Option<String>,
}

impl std::str::FromStr for PlatformFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(PlatformFilter { os: (*os).into(), arch: (*arch).into(), variant: None })
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                Ok(PlatformFilter {
                    os: (*os).into(),
                    arch: (*arch).into(),
                    variant: Some((*v).into()),
                })
            }
            _ => Err(format!("'{s}' is not a platform of the form os/arch[/variant]")),
        }
    }
}

impl std::fmt::Display for PlatformFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl PlatformFilter {
    /// True when `platform` (`os/arch[/variant]`) is selected. A filter
    /// without variant accepts every variant.
    pub fn matches(&self, platform: &str) -> bool {
        let mut parts = platform.split('/');
        let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
        os == Some(self.os.as_str())
            && arch == Some(self.arch.as_str())
            && (self.variant.is_none() || variant == self.variant.as_deref())
    }
}

/// A walk of a target's indexes: the target and its store (the same at
/// every depth), what the walk found, and every digest read (true for
/// indexes), so each is read once.
struct Walked<'a> {
    target: &'a str,
    store: &'a BlobStore,
    diag: &'a Diagnostics,
    found: Found,
    seen: HashMap<String, bool>,
}

/// A manifest found while walking indexes.
struct ManifestRef {
    digest: String,
    platform: Option<String>,
    references: Vec<String>,
    /// The annotations of the index entries that list it.
    annotations: Vec<(String, String)>,
}

/// What walking the indexes found: image manifests and attestations, and the
/// annotations that ship with the indexes but belong to no one image: the indexes'
/// own, and those of entries that list an index or no scanned image (an
/// attestation's, a platform the archive leaves out). Each is kept once.
#[derive(Default)]
struct Found {
    images: Vec<ManifestRef>,
    attestations: Vec<Attestation>,
    index_annotations: Vec<(String, String)>,
}

/// Finds and parses every image in the store; they are to be read as
/// `read` says.
///
/// # Errors
/// Missing or corrupt top-level metadata, or no image left after the
/// platform filter.
pub fn images(
    target: &str,
    store: BlobStore,
    filter: Option<&PlatformFilter>,
    read: ReadOptions,
    diag: &Diagnostics,
) -> Result<Vec<Image>, Error> {
    let mut images = if store.contains("index.json") {
        oci_images(target, &store, diag)?
    } else if store.contains("manifest.json") {
        docker_images(target, &store)?
    } else {
        return Err(Error::Unrecognised {
            file: target.to_owned(),
            reason: "no index.json or manifest.json: not a docker-save archive or OCI layout"
                .into(),
        });
    };
    if let Some(filter) = filter {
        let available: Vec<String> = images.iter().filter_map(|i| i.platform.clone()).collect();
        images.retain(|i| i.platform.as_deref().is_some_and(|p| filter.matches(p)));
        if images.is_empty() {
            return Err(Error::NoPlatform {
                file: target.to_owned(),
                platform: filter.to_string(),
                available: if available.is_empty() { "none".into() } else { available.join(", ") },
            });
        }
    }
    for image in &mut images {
        image.verify_diff_ids = read.verify_diff_ids;
        image.index_names = read.index_names;
    }
    Ok(images)
}

/// Most values (objects, arrays, strings, numbers…) a metadata document may hold. A parsed
/// value costs up to ~700 bytes (an object's map node): a 25 MB config of 2.5 million tiny
/// objects once took 2.1 GB. Real configs and manifests hold a few thousand.
pub const MAX_JSON_VALUES: usize = 1 << 18;

/// How many values `bytes` holds, about: one plus its commas, brackets and braces outside
/// strings (every value but the first follows one of them). A linear pass, no allocation.
fn json_values(bytes: &[u8]) -> usize {
    let (mut n, mut in_string, mut escaped) = (1, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b'[' | b'{' => n += 1,
                _ => {}
            }
        }
    }
    n
}

fn parse_json<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    target: &str,
    what: &str,
) -> Result<T, Error> {
    let values = json_values(bytes);
    if values > MAX_JSON_VALUES {
        return Err(Error::Invalid {
            file: target.to_owned(),
            what: what.to_owned(),
            reason: format!(
                "about {values} JSON values, more than the {MAX_JSON_VALUES}-value limit for image metadata; not read"
            ),
        });
    }
    // Never serde's own message: it quotes the offending value, which may be a secret.
    crate::redact::parse_json(bytes).map_err(|e| Error::Invalid {
        file: target.to_owned(),
        what: what.to_owned(),
        reason: format!("corrupt JSON: {e}"),
    })
}

/// Refuses a digest strata cannot verify: only `sha256:` with 64 lowercase
/// hex digits is accepted, so no blob is ever taken unchecked.
fn check_algorithm(digest: &str, target: &str, what: &str) -> Result<(), Error> {
    let hex = digest.strip_prefix("sha256:");
    if hex
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        return Ok(());
    }
    let algorithm = digest.split_once(':').map_or("none", |(a, _)| a);
    let reason = if algorithm == "sha256" {
        "malformed sha256 digest (expected 64 lowercase hex digits)".to_owned()
    } else {
        format!("unsupported digest algorithm {algorithm:?} (only sha256 is verified)")
    };
    Err(Error::Invalid { file: target.to_owned(), what: what.to_owned(), reason })
}

fn blob_member(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Warns when a document's bytes do not hash to the digest that names it.
fn check_digest(bytes: &[u8], claimed: &str, target: &str, what: &str, diag: &Diagnostics) {
    if claimed.starts_with("sha256:") {
        let actual = sha256_of(bytes);
        if actual != claimed {
            diag.warn(format!(
                "{target}: {what} {claimed}: digest mismatch, content hashes to {actual}"
            ));
        }
    }
}

/// A descriptor whose size is not its blob's is malformed (containerd refuses
/// the blob); the whole blob is read all the same, so a warning says it.
fn check_size(claimed: u64, stored: u64, target: &str, what: &str, diag: &Diagnostics) {
    if claimed != stored {
        diag.warn(format!(
            "{target}: {what}: size mismatch, the manifest says {claimed} bytes but the blob has {stored}; all {stored} were read"
        ));
    }
}

fn descriptor_platform(desc: &Descriptor) -> Option<String> {
    desc.platform().as_ref().map(|p| {
        let mut s = format!("{}/{}", p.os(), p.architecture());
        if let Some(v) = p.variant() {
            s.push('/');
            s.push_str(v);
        }
        s
    })
}

/// True for attestation manifests (build provenance, SBOMs), which hold no
/// image to scan. The registry source skips them by the same rule.
pub(crate) fn is_attestation(desc: &Descriptor) -> bool {
    let annotated = desc.annotations().as_ref().is_some_and(|a| {
        a.get("vnd.docker.reference.type").is_some_and(|t| t == "attestation-manifest")
    });
    annotated || descriptor_platform(desc).is_some_and(|p| p.starts_with("unknown/unknown"))
}

fn reference_names(desc: &Descriptor) -> Vec<String> {
    let Some(a) = desc.annotations() else { return Vec::new() };
    ["io.containerd.image.name", "org.opencontainers.image.ref.name"]
        .iter()
        .filter_map(|k| a.get(*k).cloned())
        .take(1)
        .collect()
}

fn oci_images(target: &str, store: &BlobStore, diag: &Diagnostics) -> Result<Vec<Image>, Error> {
    let bytes = store.read_small("index.json")?;
    let index: ImageIndex = parse_json(&bytes, target, "index.json")?;
    let mut walked = Walked { target, store, diag, found: Found::default(), seen: HashMap::new() };
    add_annotations(&mut walked.found.index_annotations, "index.annotations", index.annotations());
    walk_index(&mut walked, &index, 0, &[], "index")?;
    let found = walked.found;
    // One image per manifest digest; tags pointing at the same manifest merge.
    let mut merged: BTreeMap<String, ManifestRef> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for m in found.images {
        match merged.get_mut(&m.digest) {
            Some(existing) => {
                for r in m.references {
                    if !existing.references.contains(&r) {
                        existing.references.push(r);
                    }
                }
                // Duplicates go when the image is made (an index lists millions at most).
                existing.annotations.extend(m.annotations);
            }
            None => {
                order.push(m.digest.clone());
                merged.insert(m.digest.clone(), m);
            }
        }
    }
    let mut images = Vec::new();
    for digest in order {
        if let Some(m) = merged.remove(&digest) {
            images.push(oci_image(target, store, m, diag)?);
        }
    }
    if images.is_empty() {
        return Err(Error::Invalid {
            file: target.to_owned(),
            what: "index.json".into(),
            reason: "lists no image manifest".into(),
        });
    }
    attach_attestations(target, &mut images, found.attestations, diag);
    // What belongs to no one image is scanned once, with the first.
    images[0].annotations.extend(found.index_annotations);
    images[0].annotations.sort();
    images[0].annotations.dedup();
    Ok(images)
}

/// Appends `map`'s pairs as `(location, "key=value")`, sorted.
fn add_annotations(
    out: &mut Vec<(String, String)>,
    location: &str,
    map: &Option<HashMap<String, String>>,
) {
    let mut pairs: Vec<_> = map.iter().flatten().collect();
    pairs.sort();
    out.extend(pairs.into_iter().map(|(k, v)| (location.to_owned(), format!("{k}={v}"))));
}

/// Gives each attestation to the image it describes; one that names no
/// image of the target goes to the first image, so it is still scanned.
fn attach_attestations(
    target: &str,
    images: &mut [Image],
    attestations: Vec<Attestation>,
    diag: &Diagnostics,
) {
    let mut seen = std::collections::HashSet::new();
    for a in attestations {
        if !seen.insert(a.digest.clone()) {
            continue;
        }
        let owner = a.describes.as_ref().and_then(|d| images.iter().position(|i| &i.digest == d));
        let owner = match owner {
            Some(i) => i,
            None => {
                diag.note(format!(
                    "{target}: attestation {} describes {}, not an image scanned here; scanned with the first image",
                    a.digest,
                    a.describes.as_deref().unwrap_or("no named image")
                ));
                0
            }
        };
        images[owner].attestations.push(a);
    }
}

/// Reads an attestation or referrer manifest into its documents.
fn attestation(
    target: &str,
    store: &BlobStore,
    digest: &str,
    describes: Option<String>,
    diag: &Diagnostics,
) -> Result<Attestation, Error> {
    let bytes = store.read_small(&blob_member(digest))?;
    check_digest(&bytes, digest, target, "attestation manifest", diag);
    let doc: serde_json::Value = parse_json(&bytes, target, &format!("attestation {digest}"))?;
    let describes = describes
        .or_else(|| doc.pointer("/subject/digest").and_then(|d| d.as_str()).map(str::to_owned));
    let layers = doc
        .get("layers")
        .and_then(|l| l.as_array())
        .map(|layers| {
            layers
                .iter()
                .filter_map(|l| {
                    let digest = l.get("digest")?.as_str()?.to_owned();
                    Some(AttestationLayer {
                        member: blob_member(&digest),
                        media_type: l
                            .get("mediaType")
                            .and_then(|m| m.as_str())
                            .unwrap_or("")
                            .into(),
                        predicate_type: l
                            .pointer("/annotations/in-toto.io~1predicate-type")
                            .and_then(|p| p.as_str())
                            .map(str::to_owned),
                        size: l.get("size").and_then(serde_json::Value::as_u64).unwrap_or(0),
                        digest,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Attestation { digest: digest.to_owned(), describes, layers })
}

/// True for a manifest that is not an image: an OCI 1.1 artifact or
/// referrer (`subject`, `artifactType`, or a config that is not an image config).
fn is_artifact(doc: &serde_json::Value) -> bool {
    const IMAGE_CONFIGS: [&str; 2] = [
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    ];
    let config_type = doc.pointer("/config/mediaType").and_then(|m| m.as_str());
    doc.get("subject").is_some()
        || doc.get("artifactType").is_some()
        || config_type.is_some_and(|t| !IMAGE_CONFIGS.contains(&t))
}

/// Walks `index` (at `depth` below index.json, at JSON path `path`: `index`,
/// `index.manifests[2]`, …) into `walked`; its manifests without names of their
/// own take the `inherited` ones.
fn walk_index(
    walked: &mut Walked<'_>,
    index: &ImageIndex,
    depth: usize,
    inherited: &[String],
    path: &str,
) -> Result<(), Error> {
    let (target, store, diag) = (walked.target, walked.store, walked.diag);
    if depth > MAX_INDEX_DEPTH {
        return Err(Error::Invalid {
            file: target.to_owned(),
            what: "index".into(),
            reason: format!("indexes nest deeper than {MAX_INDEX_DEPTH} levels"),
        });
    }
    for (i, desc) in index.manifests().iter().enumerate() {
        let digest = desc.digest().to_string();
        check_algorithm(&digest, target, "index entry")?;
        // An entry's annotations (`podman manifest annotate`) ship with the index: they
        // belong to the image it lists, or else to the target.
        let entry = format!("{path}.manifests[{i}]");
        let mut annotations = Vec::new();
        add_annotations(&mut annotations, &format!("{entry}.annotations"), desc.annotations());
        let platform = descriptor_platform(desc);
        let member = blob_member(&digest);
        if is_attestation(desc) {
            let describes = desc
                .annotations()
                .as_ref()
                .and_then(|a| a.get("vnd.docker.reference.digest").cloned());
            walked.found.index_annotations.extend(annotations);
            if !store.contains(&member) {
                diag.note(format!(
                    "{target}: attestation manifest {digest} is not in the archive, skipped"
                ));
                continue;
            }
            match attestation(target, store, &digest, describes, diag) {
                Ok(a) => walked.found.attestations.push(a),
                Err(e) => diag.error(format!("{e}; attestation not scanned")),
            }
            continue;
        }
        if !store.contains(&member) {
            if depth > 0 {
                // Single-platform saves keep the index but only one platform's blobs.
                let p = platform.as_deref().unwrap_or("unknown platform");
                diag.note(format!(
                    "{target}: {p} manifest {digest} is not in the archive, skipped"
                ));
                walked.found.index_annotations.extend(annotations);
                continue;
            }
            return Err(Error::MissingBlob { file: target.to_owned(), blob: digest });
        }
        let mut references = reference_names(desc);
        if references.is_empty() {
            references = inherited.to_vec();
        }
        // Each digest is read once, however often it is listed (fan-out): a nested
        // index is walked on its first visit only; a manifest listed again adds its names.
        if let Some(&is_index) = walked.seen.get(&digest) {
            if is_index {
                walked.found.index_annotations.extend(annotations);
            } else {
                walked.found.images.push(ManifestRef { digest, platform, references, annotations });
            }
            continue;
        }
        let bytes = store.read_small(&member)?;
        check_digest(&bytes, &digest, target, "manifest", diag);
        let doc: serde_json::Value = parse_json(&bytes, target, &format!("manifest {digest}"))?;
        // Artifacts (referrers) are read once too: only image manifests add names again.
        let skip_again =
            doc.get("manifests").is_some() || (doc.get("layers").is_some() && is_artifact(&doc));
        walked.seen.insert(digest.clone(), skip_again);
        if doc.get("manifests").is_some() {
            let nested: ImageIndex = parse_json(&bytes, target, &format!("index {digest}"))?;
            // The nested index's own annotations are its entry's, one more map of them.
            add_annotations(
                &mut annotations,
                &format!("{entry}.annotations"),
                nested.annotations(),
            );
            walked.found.index_annotations.extend(annotations);
            walk_index(walked, &nested, depth + 1, &references, &entry)?;
        } else if doc.get("layers").is_some() && is_artifact(&doc) {
            walked.found.index_annotations.extend(annotations);
            match attestation(target, store, &digest, None, diag) {
                Ok(a) => walked.found.attestations.push(a),
                Err(e) => diag.error(format!("{e}; referrer not scanned")),
            }
        } else if doc.get("layers").is_some() {
            walked.found.images.push(ManifestRef { digest, platform, references, annotations });
        } else {
            walked.found.index_annotations.extend(annotations);
            diag.warn(format!(
                "{target}: {digest} is neither an image manifest nor an index, skipped"
            ));
        }
    }
    Ok(())
}

fn oci_image(
    target: &str,
    store: &BlobStore,
    m: ManifestRef,
    diag: &Diagnostics,
) -> Result<Image, Error> {
    let bytes = store.read_small(&blob_member(&m.digest))?;
    let manifest: ImageManifest = parse_json(&bytes, target, &format!("manifest {}", m.digest))?;
    let config_digest = manifest.config().digest().to_string();
    check_algorithm(&config_digest, target, &format!("manifest {}: config", m.digest))?;
    for (i, d) in manifest.layers().iter().enumerate() {
        check_algorithm(d.digest().as_ref(), target, &format!("manifest {}: layer {i}", m.digest))?;
    }
    let config_bytes = store.read_small(&blob_member(&config_digest))?;
    check_digest(&config_bytes, &config_digest, target, "config", diag);
    let config_size = manifest.config().size();
    check_size(
        config_size,
        config_bytes.len() as u64,
        target,
        &format!("config {config_digest}"),
        diag,
    );
    for (i, d) in manifest.layers().iter().enumerate() {
        if let Some(stored) = store.size(&blob_member(d.digest().as_ref())) {
            check_size(d.size(), stored, target, &format!("layer {i} ({})", d.digest()), diag);
        }
    }
    let (config, config_platform) = parse_config(&config_bytes, target, &config_digest)?;
    let config = Arc::new(config);
    let layers = manifest
        .layers()
        .iter()
        .enumerate()
        .map(|(index, d)| {
            let digest = d.digest().to_string();
            Layer {
                index,
                member: blob_member(&digest),
                digest,
                diff_id: config.diff_ids.get(index).cloned(),
                media_type: d.media_type().to_string(),
                size: d.size(),
                created_by: None,
                history_index: None,
                verify_digest: true,
            }
        })
        .collect();
    let mut image = Image {
        target: target.to_owned(),
        references: m.references,
        digest: m.digest,
        platform: m.platform.or(config_platform),
        config,
        layers,
        store: store.clone(),
        verify_diff_ids: true,
        index_names: false,
        attestations: Vec::new(),
        annotations: {
            let mut own = m.annotations;
            own.sort();
            own.dedup();
            own.extend(manifest_annotations(&manifest));
            own
        },
    };
    attach_history(&mut image);
    Ok(image)
}

/// Every annotation a manifest carries, as `(location, "key=value")`: its own, its config
/// descriptor's and its layer descriptors'. They ship with the image as its config does.
fn manifest_annotations(manifest: &ImageManifest) -> Vec<(String, String)> {
    let mut out = Vec::new();
    add_annotations(&mut out, "manifest.annotations", manifest.annotations());
    add_annotations(&mut out, "manifest.config.annotations", manifest.config().annotations());
    for (i, layer) in manifest.layers().iter().enumerate() {
        add_annotations(
            &mut out,
            &format!("manifest.layers[{i}].annotations"),
            layer.annotations(),
        );
    }
    out
}

/// One entry of a legacy docker-save `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_images(target: &str, store: &BlobStore) -> Result<Vec<Image>, Error> {
    let bytes = store.read_small("manifest.json")?;
    let entries: Vec<DockerManifestEntry> = parse_json(&bytes, target, "manifest.json")?;
    if entries.is_empty() {
        return Err(Error::Invalid {
            file: target.to_owned(),
            what: "manifest.json".into(),
            reason: "lists no image".into(),
        });
    }
    let mut images: Vec<Image> = Vec::new();
    // Entries naming the same config and layers are one image with several tags;
    // a config shared by entries is read and parsed once.
    let mut by_content: HashMap<(String, Vec<String>), usize> = HashMap::new();
    type Parsed = (Arc<ImageConfig>, Option<String>, String);
    let mut configs: HashMap<String, Parsed> = HashMap::new();
    for entry in entries {
        let content = (entry.config.clone(), entry.layers.clone());
        if let Some(&i) = by_content.get(&content) {
            for tag in entry.repo_tags.unwrap_or_default() {
                if !images[i].references.contains(&tag) {
                    images[i].references.push(tag);
                }
            }
            continue;
        }
        let (config, platform, config_digest) = match configs.get(&entry.config) {
            Some(parsed) => parsed.clone(),
            None => {
                let config_bytes = store.read_small(&entry.config)?;
                let config_digest = sha256_of(&config_bytes);
                let (config, platform) = parse_config(&config_bytes, target, &entry.config)?;
                let parsed = (Arc::new(config), platform, config_digest);
                configs.insert(entry.config.clone(), parsed.clone());
                parsed
            }
        };
        by_content.insert(content, images.len());
        let layers = entry
            .layers
            .iter()
            .enumerate()
            .map(|(index, member)| {
                let diff_id = config.diff_ids.get(index).cloned();
                // Docker >= 25 names layers by blob digest; older saves by directory.
                let named = member
                    .strip_prefix("blobs/sha256/")
                    .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(|h| format!("sha256:{h}"));
                Layer {
                    index,
                    digest: named.clone().or_else(|| diff_id.clone()).unwrap_or_default(),
                    diff_id,
                    media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
                    size: store.size(member).unwrap_or(0),
                    created_by: None,
                    history_index: None,
                    member: member.clone(),
                    verify_digest: named.is_some(),
                }
            })
            .collect();
        let mut image = Image {
            target: target.to_owned(),
            references: entry.repo_tags.unwrap_or_default(),
            digest: config_digest,
            platform,
            config,
            layers,
            store: store.clone(),
            verify_diff_ids: true,
            index_names: false,
            attestations: Vec::new(),
            annotations: Vec::new(),
        };
        attach_history(&mut image);
        images.push(image);
    }
    Ok(images)
}

/// Parses a config; returns it with the platform it declares.
fn parse_config(
    bytes: &[u8],
    target: &str,
    name: &str,
) -> Result<(ImageConfig, Option<String>), Error> {
    let what = format!("config {name}");
    let typed: ImageConfiguration = parse_json(bytes, target, &what)?;
    for (i, d) in typed.rootfs().diff_ids().iter().enumerate() {
        check_algorithm(d, target, &format!("{what}: rootfs.diff_ids[{i}]"))?;
    }
    let raw: serde_json::Value = parse_json(bytes, target, &what)?;
    let c = typed.config().as_ref();
    let strings = |v: Option<&Vec<String>>| v.cloned().unwrap_or_default();
    let mut labels: Vec<(String, String)> = c
        .and_then(|c| c.labels().as_ref())
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    labels.sort();
    let onbuild = raw
        .pointer("/config/OnBuild")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    // Docker's HEALTHCHECK probe runs a command line that can carry a token; OCI has no field.
    let healthcheck = raw
        .pointer("/config/Healthcheck/Test")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let history = typed
        .history()
        .as_ref()
        .map(|h| {
            h.iter()
                .map(|e| HistoryEntry {
                    created_by: e.created_by().clone(),
                    empty_layer: e.empty_layer().unwrap_or(false),
                    comment: e.comment().clone(),
                    author: e.author().clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut platform = format!("{}/{}", typed.os(), typed.architecture());
    if let Some(v) = typed.variant() {
        platform.push('/');
        platform.push_str(v);
    }
    let config = ImageConfig {
        env: strings(c.and_then(|c| c.env().as_ref())),
        labels,
        cmd: strings(c.and_then(|c| c.cmd().as_ref())),
        entrypoint: strings(c.and_then(|c| c.entrypoint().as_ref())),
        onbuild,
        healthcheck,
        author: typed.author().clone(),
        history,
        diff_ids: typed.rootfs().diff_ids().clone(),
        other: other_strings(&raw),
    };
    Ok((config, Some(platform)))
}

/// Config fields read into [`ImageConfig`]'s own fields, or that hold no text a person
/// wrote (digests, times, the platform): [`other_strings`] leaves them out.
const READ_FIELDS: &[&str] = &[
    "config.Env",
    "config.Labels",
    "config.Cmd",
    "config.Entrypoint",
    "config.OnBuild",
    "config.Healthcheck.Test",
    "author",
    "history",
    "rootfs",
    "created",
    "architecture",
    "os",
    "variant",
];

/// The config's strings outside [`READ_FIELDS`] (see [`ImageConfig::other`]). Every
/// string of the document ships with the image, whatever field a tool put it in.
fn other_strings(raw: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(v: &serde_json::Value, path: &mut String, out: &mut Vec<(String, String)>) {
        if READ_FIELDS.contains(&path.as_str()) {
            return;
        }
        let len = path.len();
        match v {
            serde_json::Value::String(s) => out.push((path.clone(), s.clone())),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push_str(&format!("[{i}]"));
                    walk(item, path, out);
                    path.truncate(len);
                }
            }
            serde_json::Value::Object(fields) => {
                for (key, value) in fields {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    match value {
                        // Its key gives the value context (`password=…`).
                        serde_json::Value::String(s) if !READ_FIELDS.contains(&path.as_str()) => {
                            out.push((path.clone(), format!("{key}={s}")));
                        }
                        // A key with no text under it (`Volumes`, `ExposedPorts`) is the
                        // text, found at its map (the key would put it in the location).
                        serde_json::Value::Object(o) if o.is_empty() => {
                            out.push((path[..len].to_owned(), key.clone()));
                        }
                        _ => walk(value, path, out),
                    }
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(raw, &mut String::new(), &mut out);
    out
}

/// Maps non-empty history entries to layers, in order.
fn attach_history(image: &mut Image) {
    let producing = image
        .config
        .history
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.empty_layer)
        .map(|(i, h)| (i, h.created_by.clone()));
    for (layer, (i, created_by)) in image.layers.iter_mut().zip(producing) {
        layer.history_index = Some(i);
        layer.created_by = created_by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_are_counted_outside_strings() {
        assert_eq!(json_values(b"{}"), 2);
        assert_eq!(json_values(br#"{"a":[1,2,{"b":"x,y[{"}]}"#), 6);
        assert_eq!(json_values(br#"["a\",[", "b"]"#), 3);
        assert_eq!(json_values(b"\"s\""), 1);
    }

    #[test]
    fn platform_filter() {
        let f: PlatformFilter = "linux/arm64".parse().unwrap();
        assert!(f.matches("linux/arm64"));
        assert!(f.matches("linux/arm64/v8"));
        assert!(!f.matches("linux/amd64"));
        let v: PlatformFilter = "linux/arm/v7".parse().unwrap();
        assert!(v.matches("linux/arm/v7"));
        assert!(!v.matches("linux/arm/v6"));
        assert!("linux".parse::<PlatformFilter>().is_err());
        assert!("linux//".parse::<PlatformFilter>().is_err());
    }
}
