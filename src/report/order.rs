//! The order reports list findings in, written once: by target, image,
//! layer (config findings after the layers), path, inner path, line,
//! location and rule. `scan` sorts its findings by it, the human report
//! sorts within a layer by it, and `merge` sorts findings read back from
//! JSON by it (the same fields, under their contract names).

use std::cmp::Ordering;

use serde_json::Value;

use crate::finding::Finding;

/// A finding's place in the order. Absent text sorts before any text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey<'a> {
    target: &'a str,
    image_digest: &'a str,
    /// Config findings (no layer) after every layer.
    is_config: bool,
    layer_index: Option<u64>,
    path: Option<&'a str>,
    inner_path: Option<&'a str>,
    line: Option<u64>,
    location: Option<&'a str>,
    rule_id: &'a str,
}

impl<'a> SortKey<'a> {
    /// The key of a finding.
    pub fn of(f: &'a Finding) -> Self {
        SortKey {
            target: &f.target,
            image_digest: &f.image_digest,
            is_config: f.layer_index.is_none(),
            layer_index: f.layer_index.map(|i| i as u64),
            path: f.path.as_deref(),
            inner_path: f.inner_path.as_deref(),
            line: f.line,
            location: f.location.as_deref(),
            rule_id: &f.rule_id,
        }
    }

    /// The key of a finding as the JSON contract spells it (a missing or
    /// mistyped field counts as absent).
    pub fn of_json(f: &'a Value) -> Self {
        let s = |k: &str| f.get(k).and_then(Value::as_str);
        let n = |k: &str| f.get(k).and_then(Value::as_u64);
        SortKey {
            target: s("target").unwrap_or(""),
            image_digest: s("image_digest").unwrap_or(""),
            is_config: n("layer_index").is_none(),
            layer_index: n("layer_index"),
            path: s("path"),
            inner_path: s("inner_path"),
            line: n("line"),
            location: s("location"),
            rule_id: s("rule_id").unwrap_or(""),
        }
    }
}

/// Sorts findings into report order (stable: equal keys keep their order).
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| SortKey::of(a).cmp(&SortKey::of(b)));
}

/// Report order for findings read back from JSON, then fingerprint, so
/// that the result does not depend on the order they were read in.
pub fn cmp_json(a: &Value, b: &Value) -> Ordering {
    SortKey::of_json(a).cmp(&SortKey::of_json(b)).then_with(|| fingerprint(a).cmp(&fingerprint(b)))
}

fn fingerprint(v: &Value) -> Option<&str> {
    v.get("fingerprint").and_then(Value::as_str)
}
