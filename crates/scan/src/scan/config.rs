//! The config detector: the image config's Env, Labels, Cmd, Entrypoint,
//! OnBuild, Healthcheck and author, every history entry's `created_by`
//! (build args appear there as `|N KEY=VALUE …`), `comment` (`docker commit
//! -m`) and `author`, and the manifest's annotations (`docker buildx build
//! --annotation`), run through the same engine as file contents.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cap::HitCap;
use super::{Hit, Scanner};
use crate::image::Image;

/// A hit in the config, with the contract's `location`.
#[derive(Debug, Clone)]
pub struct ConfigHit {
    /// `config.env`, `config.labels`, `config.cmd`, `config.entrypoint`,
    /// `config.onbuild`, `config.healthcheck`, `config.author`,
    /// `history[N].created_by`, `history[N].comment`, `history[N].author`, or
    /// `manifest.annotations`, `manifest.config.annotations`,
    /// `manifest.layers[N].annotations`, or for any other string of the config its JSON
    /// path as written (`container_config.Cmd[3]`, `config.User`).
    pub location: String,
    /// For history hits, the entry's instruction (shared by its hits).
    pub created_by: Option<Arc<str>>,
    /// The hit (line is always 1; offset is within the string).
    pub hit: Hit,
}

/// What the config detector found, within its budget.
#[derive(Debug, Clone, Default)]
pub struct ConfigScan {
    /// Hits kept.
    pub hits: Vec<ConfigHit>,
    /// (location, rule index, hits dropped) where a location went over the
    /// per-rule budget.
    pub over_budget: Vec<(String, usize, u64)>,
}

/// Scans every string of the config and manifest that ships with the image,
/// keeping every hit.
pub fn scan(scanner: &Scanner, image: &Image) -> Vec<ConfigHit> {
    scan_capped(scanner, image, usize::MAX).hits
}

/// Scans every string of the config and manifest that ships with the image,
/// keeping at most `max_per_rule` hits per rule and location (a megabyte
/// instruction can hold thousands of keys); the rest are counted.
pub fn scan_capped(scanner: &Scanner, image: &Image, max_per_rule: usize) -> ConfigScan {
    let config = image.config();
    let mut out = ConfigScan::default();
    let mut caps: BTreeMap<String, HitCap> = BTreeMap::new();
    let mut each = |location: String, created_by: Option<&Arc<str>>, text: &str| {
        let cap = caps.entry(location.clone()).or_insert_with(|| HitCap::new(max_per_rule));
        let mut kept = Vec::new();
        cap.admit(scanner.scan_bytes(text.as_bytes()), &mut kept);
        for hit in kept {
            out.hits.push(ConfigHit {
                location: location.clone(),
                created_by: created_by.cloned(),
                hit,
            });
        }
    };
    for env in &config.env {
        each("config.env".into(), None, env);
    }
    for (k, v) in &config.labels {
        each("config.labels".into(), None, &format!("{k}={v}"));
    }
    if !config.cmd.is_empty() {
        each("config.cmd".into(), None, &config.cmd.join(" "));
    }
    if !config.entrypoint.is_empty() {
        each("config.entrypoint".into(), None, &config.entrypoint.join(" "));
    }
    for o in &config.onbuild {
        each("config.onbuild".into(), None, o);
    }
    if !config.healthcheck.is_empty() {
        each("config.healthcheck".into(), None, &config.healthcheck.join(" "));
    }
    if let Some(author) = &config.author {
        each("config.author".into(), None, author);
    }
    for (i, h) in config.history.iter().enumerate() {
        // One shared copy of the instruction for every hit in this entry.
        let shared: Option<Arc<str>> = h.created_by.as_deref().map(Arc::from);
        if let Some(created_by) = &h.created_by {
            each(format!("history[{i}].created_by"), shared.as_ref(), created_by);
        }
        // A `docker commit -m` message or an author string ships like the instruction.
        if let Some(comment) = &h.comment {
            each(format!("history[{i}].comment"), shared.as_ref(), comment);
        }
        if let Some(author) = &h.author {
            each(format!("history[{i}].author"), shared.as_ref(), author);
        }
    }
    for (location, annotation) in image.annotations() {
        each(location.clone(), None, annotation);
    }
    // The rest of the config: a secret there that a field above already shows (Docker's
    // `container_config` repeats `Env` and the last instruction) is reported there only.
    // They share one budget: each has a location of its own, and a config of 200,000
    // keys holding a password each must not keep 200,000 findings in memory.
    let mut other_cap = HitCap::new(max_per_rule);
    let mut other = Vec::new();
    for (path, text) in &config.other {
        let mut kept = Vec::new();
        other_cap.admit(scanner.scan_bytes(text.as_bytes()), &mut kept);
        other.extend(kept.into_iter().map(|hit| (path, hit)));
    }
    let shown: std::collections::HashSet<&[u8]> =
        out.hits.iter().map(|h| h.hit.secret.expose()).collect();
    let other: Vec<ConfigHit> = other
        .into_iter()
        .filter(|(_, hit)| !shown.contains(hit.secret.expose()))
        .map(|(path, hit)| ConfigHit { location: path.clone(), created_by: None, hit })
        .collect();
    out.hits.extend(other);
    for (rule, n) in other_cap.dropped() {
        out.over_budget.push(("config (other fields)".into(), rule, n));
    }
    for (location, cap) in caps {
        for (rule, n) in cap.dropped() {
            out.over_budget.push((location.clone(), rule, n));
        }
    }
    out
}
