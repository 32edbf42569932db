//! A Kubernetes inventory as a source (`--k8s-pods FILE`): the output of
//! `kubectl get pods -A -o json` names which images run where; each
//! distinct image is scanned once from its registry, and its findings name
//! the namespaces, pods and containers that run it.
//!
//! An image is identified by the digest the kubelet resolved
//! (`status.containerStatuses[].imageID`, `repo@sha256:…`) when there is
//! one, so two tags of one image are scanned once and a moved tag does not
//! change what was scanned; otherwise by the image the pod spec names.
//! `--k8s-pull-secrets FILE` (`kubectl get secrets -o json`) lends the
//! `kubernetes.io/dockerconfigjson` (and legacy `dockercfg`) secrets as
//! registry credentials.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use crate::finding::Workload;
use crate::registry::auth::{self, Credentials, DockerConfig};
use crate::registry::client::Client;
use crate::registry::{Reference, Settings};

/// Largest inventory or secret list read (a cluster of many thousand pods
/// is a few hundred MB of JSON; this is far above that).
const MAX_FILE: u64 = 1 << 30;

/// Why an inventory or secret list is unusable.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct Error {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub reason: String,
}

/// The images an inventory runs, each with the containers that run it.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    /// Reference to scan → who runs it (sorted, deduplicated).
    pub images: BTreeMap<String, Vec<Workload>>,
}

#[derive(Deserialize)]
struct List<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct Pod {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: Option<PodSpec>,
    #[serde(default)]
    status: Option<PodStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    containers: Vec<Container>,
    #[serde(default)]
    init_containers: Vec<Container>,
    #[serde(default)]
    ephemeral_containers: Vec<Container>,
}

#[derive(Deserialize)]
struct Container {
    name: String,
    #[serde(default)]
    image: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    #[serde(default)]
    container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    init_container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    ephemeral_container_statuses: Vec<ContainerStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    name: String,
    #[serde(rename = "imageID", default)]
    image_id: Option<String>,
}

#[derive(Deserialize)]
struct Secret {
    #[serde(default)]
    metadata: Meta,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    data: HashMap<String, String>,
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    let err = |reason: String| Error { file: path.display().to_string(), reason };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_FILE {
        return Err(err(format!("{} bytes is too large", meta.len())));
    }
    std::fs::read(path).map_err(|e| err(e.to_string()))
}

/// Items of a `List`, or the one object when the file is a single item.
fn items<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    file: &Path,
    kind: &str,
) -> Result<Vec<T>, Error> {
    let err = |reason: String| Error { file: file.display().to_string(), reason };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        err(format!("not JSON (expected `kubectl get {kind} -o json` output): {e}"))
    })?;
    let parsed = if value.get("items").is_some() {
        serde_json::from_value::<List<T>>(value).map(|l| l.items)
    } else if value
        .get("kind")
        .and_then(|k| k.as_str())
        .is_some_and(|k| k.eq_ignore_ascii_case(kind.trim_end_matches('s')))
    {
        serde_json::from_value::<T>(value).map(|one| vec![one])
    } else {
        return Err(err(format!(
            "not a {kind} list (no \"items\"): expected `kubectl get {kind} -o json` output"
        )));
    };
    parsed.map_err(|e| err(format!("unexpected {kind} JSON: {e}")))
}

/// The reference to scan for a container: the resolved digest when the
/// kubelet reported one, else the spec's image.
fn reference_for(spec_image: Option<&str>, image_id: Option<&str>) -> Option<String> {
    let resolved = image_id.and_then(|id| {
        let id = id
            .strip_prefix("docker-pullable://")
            .or_else(|| id.strip_prefix("docker://"))
            .unwrap_or(id);
        // A bare `sha256:` is a local image ID, which no registry serves.
        id.split_once("@sha256:").filter(|(repo, _)| !repo.is_empty()).map(|_| id.to_owned())
    });
    resolved.or_else(|| spec_image.filter(|s| !s.is_empty()).map(str::to_owned))
}

/// Reads `kubectl get pods -A -o json` output.
///
/// # Errors
/// An unreadable file, or JSON that is not a pod list.
pub fn inventory(path: &Path) -> Result<Inventory, Error> {
    let bytes = read(path)?;
    let pods: Vec<Pod> = items(&bytes, path, "pods")?;
    let mut inv = Inventory::default();
    for pod in pods {
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let ids: HashMap<&str, &str> = status
            .container_statuses
            .iter()
            .chain(&status.init_container_statuses)
            .chain(&status.ephemeral_container_statuses)
            .filter_map(|s| s.image_id.as_deref().map(|id| (s.name.as_str(), id)))
            .collect();
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        for c in
            spec.containers.iter().chain(&spec.init_containers).chain(&spec.ephemeral_containers)
        {
            let Some(reference) =
                reference_for(c.image.as_deref(), ids.get(c.name.as_str()).copied())
            else {
                continue;
            };
            let who = Workload {
                namespace: namespace.clone(),
                pod: pod.metadata.name.clone(),
                container: c.name.clone(),
            };
            let list = inv.images.entry(reference).or_default();
            if !list.contains(&who) {
                list.push(who);
                list.sort();
            }
        }
    }
    Ok(inv)
}

/// Pull secrets from `kubectl get secrets -o json`: every
/// `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg` secret, as
/// docker configs with the secret's name for messages. Other secrets are
/// ignored (and never printed).
///
/// # Errors
/// An unreadable file, JSON that is not a secret list, or a pull secret
/// whose data does not decode.
pub fn pull_secrets(path: &Path) -> Result<PullSecrets, Error> {
    let bytes = read(path)?;
    let secrets: Vec<Secret> = items(&bytes, path, "secrets")?;
    let err = |reason: String| Error { file: path.display().to_string(), reason };
    let mut configs = Vec::new();
    for s in secrets {
        let (key, legacy) = match s.kind.as_str() {
            "kubernetes.io/dockerconfigjson" => (".dockerconfigjson", false),
            "kubernetes.io/dockercfg" => (".dockercfg", true),
            _ => continue,
        };
        let ns = s.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = format!("pull secret {ns}/{}", s.metadata.name);
        let Some(data) = s.data.get(key) else {
            return Err(err(format!("{name}: no {key} in its data")));
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| err(format!("{name}: {key} is not base64: {e}")))?;
        // The legacy format is the `auths` map alone.
        let config: Result<DockerConfig, _> = if legacy {
            serde_json::from_slice::<serde_json::Value>(&decoded)
                .and_then(|v| serde_json::from_value(serde_json::json!({"auths": v})))
        } else {
            serde_json::from_slice(&decoded)
        };
        let config =
            config.map_err(|e| err(format!("{name}: {key} is not a docker config: {e}")))?;
        configs.push((format!("{} ({name})", path.display()), config));
    }
    Ok(PullSecrets { configs })
}

/// Docker configs from pull secrets, tried in file order.
#[derive(Debug, Default, Clone)]
pub struct PullSecrets {
    configs: Vec<(String, DockerConfig)>,
}

impl PullSecrets {
    /// The first pull secret with credentials for `registry`.
    ///
    /// # Errors
    /// A secret whose `auth` does not decode.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>, String> {
        for (source, config) in &self.configs {
            if let Some(c) = auth::from_auths(config, registry, source)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

/// Registry clients for one inventory scan, one per registry, carrying
/// the pull-secret credentials for it.
#[derive(Default)]
pub struct Clients {
    clients: HashMap<String, Arc<Client>>,
}

impl Clients {
    /// Opens `reference` from its registry as a blob store.
    ///
    /// # Errors
    /// A malformed reference, a pull secret that does not decode, or any
    /// registry failure.
    pub fn open(
        &mut self,
        reference: &str,
        secrets: &PullSecrets,
        settings: Settings,
    ) -> Result<crate::image::store::BlobStore, crate::registry::Error> {
        let parsed = Reference::parse(reference)?;
        let client = match self.clients.get(&parsed.registry) {
            Some(c) => Arc::clone(c),
            None => {
                let creds = secrets.credentials(&parsed.registry).map_err(|reason| {
                    crate::registry::Error::Credentials {
                        reference: reference.to_owned(),
                        registry: parsed.registry.clone(),
                        reason,
                    }
                })?;
                let client = match creds {
                    Some(c) => {
                        Client::connect(&parsed.registry, settings, reference)?.with_credentials(c)
                    }
                    // No pull secret for it: the usual lookup (environment, docker config).
                    None => Client::connect(&parsed.registry, settings, reference)?,
                };
                let client = Arc::new(client);
                self.clients.insert(parsed.registry.clone(), Arc::clone(&client));
                client
            }
        };
        let remote = crate::registry::remote::Remote::resolve(client, &parsed, reference)?;
        Ok(crate::image::store::BlobStore::source(Arc::new(remote), reference))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_prefer_the_resolved_digest() {
        let d = "sha256:".to_owned() + &"a".repeat(64);
        let cases: &[(Option<&str>, Option<String>, Option<String>)] = &[
            (
                Some("nginx:1"),
                Some(format!("docker-pullable://nginx@{d}")),
                Some(format!("nginx@{d}")),
            ),
            (
                Some("app:1"),
                Some(format!("docker.io/library/app@{d}")),
                Some(format!("docker.io/library/app@{d}")),
            ),
            (Some("app:1"), Some(d.clone()), Some("app:1".into())),
            (Some("app:1"), None, Some("app:1".into())),
            (None, None, None),
        ];
        for (spec, id, want) in cases {
            assert_eq!(&reference_for(*spec, id.as_deref()), want, "{spec:?} {id:?}");
        }
    }

    #[test]
    fn bad_files_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pods.json");
        std::fs::write(&p, b"{\"kind\":\"Service\"}").unwrap();
        let e = inventory(&p).unwrap_err().to_string();
        assert!(e.contains("pods.json") && e.contains("not a pods list"), "{e}");
        std::fs::write(&p, b"[oops").unwrap();
        assert!(inventory(&p).unwrap_err().to_string().contains("not JSON"));
        let s = dir.path().join("secrets.json");
        std::fs::write(
            &s,
            br#"{"items":[{"metadata":{"name":"pull","namespace":"ci"},"type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"!!"}}]}"#,
        )
        .unwrap();
        let e = pull_secrets(&s).unwrap_err().to_string();
        assert!(e.contains("pull secret ci/pull") && e.contains("not base64"), "{e}");
    }
}
