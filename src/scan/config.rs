//! The config detector: the image config's Env, Labels, Cmd, Entrypoint,
//! OnBuild and every history `created_by` (build args appear there as
//! `|N KEY=VALUE …`), run through the same engine as file contents.

use super::{Hit, Scanner};
use crate::image::ImageConfig;

/// A hit in the config, with the contract's `location`.
#[derive(Debug, Clone)]
pub struct ConfigHit {
    /// `config.env`, `config.labels`, `config.cmd`, `config.entrypoint`,
    /// `config.onbuild` or `history[N].created_by`.
    pub location: String,
    /// For history hits, the instruction itself.
    pub created_by: Option<String>,
    /// The hit (line is always 1; offset is within the string).
    pub hit: Hit,
}

/// Scans every string of the config that ships with the image.
pub fn scan(scanner: &Scanner, config: &ImageConfig) -> Vec<ConfigHit> {
    let mut out = Vec::new();
    let mut each = |location: String, created_by: Option<&String>, text: &str| {
        for hit in scanner.scan_bytes(text.as_bytes()) {
            out.push(ConfigHit {
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
    for (i, h) in config.history.iter().enumerate() {
        if let Some(created_by) = &h.created_by {
            each(format!("history[{i}].created_by"), Some(created_by), created_by);
        }
    }
    out
}
