//! Attestation documents (in-toto statements: SLSA provenance, SPDX and
//! CycloneDX SBOMs; DSSE envelopes around them; any JSON a referrer holds).
//! BuildKit's max-mode provenance records build arguments
//! (`predicate.invocation.parameters.args`, or
//! `predicate.buildDefinition.externalParameters.request.args` in SLSA v1),
//! so a token passed with `--build-arg` is published beside the image.
//!
//! Every string of the document is scanned as `key=value` (its own key, so
//! contextual rules see `build-arg:TOKEN=…`), all in one buffer, and each hit
//! is mapped back to the JSON path of its value. Not owned here: finding
//! the documents in an index (`image::layout`) and placing hits in a report.

use base64::Engine as _;

use super::{Hit, Scanner};

/// DSSE payloads decoded and walked, nested envelopes included.
const MAX_ENVELOPE_DEPTH: usize = 2;

/// A hit inside a JSON document.
#[derive(Debug, Clone)]
pub struct JsonHit {
    /// Where the value is: `$.predicate.invocation.parameters.args["build-arg:TOKEN"]`.
    pub json_path: String,
    /// The hit; its offset is within the value.
    pub hit: Hit,
}

/// One string value placed in the scan buffer.
struct Leaf {
    /// Where its value starts in the buffer.
    start: usize,
    path: String,
}

fn push_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !key.as_bytes()[0].is_ascii_digit();
    if plain { format!("{path}.{key}") } else { format!("{path}[{}]", serde_json::json!(key)) }
}

fn flatten(
    value: &serde_json::Value,
    path: String,
    key: &str,
    depth: usize,
    buf: &mut Vec<u8>,
    leaves: &mut Vec<Leaf>,
) {
    match value {
        serde_json::Value::Object(map) => {
            // A DSSE envelope: the statement is the base64 payload.
            if depth < MAX_ENVELOPE_DEPTH
                && let (Some(t), Some(p)) = (map.get("payloadType"), map.get("payload"))
                && t.as_str().is_some_and(|t| t.contains("json"))
                && let Some(decoded) = p
                    .as_str()
                    .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
                && let Ok(inner) = serde_json::from_slice::<serde_json::Value>(&decoded)
            {
                flatten(&inner, format!("{path}.payload"), "payload", depth + 1, buf, leaves);
            }
            for (k, v) in map {
                flatten(v, push_key(&path, k), k, depth, buf, leaves);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, format!("{path}[{i}]"), key, depth, buf, leaves);
            }
        }
        serde_json::Value::String(s) => {
            buf.extend_from_slice(key.as_bytes());
            buf.push(b'=');
            leaves.push(Leaf { start: buf.len(), path });
            buf.extend_from_slice(s.as_bytes());
            buf.push(b'\n');
        }
        _ => {}
    }
}

/// Scans every string value of a JSON document.
pub fn scan_json(scanner: &Scanner, doc: &serde_json::Value) -> Vec<JsonHit> {
    let mut buf = Vec::new();
    let mut leaves = Vec::new();
    flatten(doc, "$".into(), "", 0, &mut buf, &mut leaves);
    scanner
        .scan_bytes(&buf)
        .into_iter()
        .filter_map(|mut hit| {
            let at = leaves.partition_point(|l| l.start as u64 <= hit.offset).checked_sub(1)?;
            let leaf = &leaves[at];
            hit.offset -= leaf.start as u64;
            hit.line = 1;
            Some(JsonHit { json_path: leaf.path.clone(), hit })
        })
        .collect()
}

/// Scans one attestation document: JSON is walked value by value; anything
/// else is scanned as it is (with `json_path` `$`).
pub fn scan_document(scanner: &Scanner, bytes: &[u8]) -> Vec<JsonHit> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(doc) => scan_json(scanner, &doc),
        Err(_) => scanner
            .scan_bytes(bytes)
            .into_iter()
            .map(|hit| JsonHit { json_path: "$".into(), hit })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_each_value() {
        let mut buf = Vec::new();
        let mut leaves = Vec::new();
        let doc = serde_json::json!({"predicate": {"args": {"build-arg:TOKEN": "v", "n": ["a"]}}});
        flatten(&doc, "$".into(), "", 0, &mut buf, &mut leaves);
        let paths: Vec<&str> = leaves.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, ["$.predicate.args[\"build-arg:TOKEN\"]", "$.predicate.args.n[0]"]);
        assert_eq!(String::from_utf8(buf).unwrap(), "build-arg:TOKEN=v\nn=a\n");
    }
}
