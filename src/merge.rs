//! `strata merge`: joins JSON reports (one per shard of a sweep) into one.
//!
//! It works on `serde_json::Value`, not on the report's types, so a field a
//! newer strata adds survives a merge by this one. Images, findings and
//! diagnostics are concatenated; findings are sorted as `scan` sorts them;
//! the summary is recomputed from the merged findings, and suppression
//! counts are added up.

use serde_json::{Map, Value};

use crate::finding::Severity;
use crate::report::envelope;
use crate::report::order;

/// The report version this merge understands (and writes).
const VERSION: u64 = envelope::VERSION as u64;

/// Why reports could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input is not a strata JSON report.
    #[error("{file}: not a strata JSON report: {reason}")]
    NotAReport {
        /// The input file.
        file: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// Nothing to merge.
    #[error("no reports to merge")]
    Empty,
    /// Added-up counts no longer fit in 64 bits.
    #[error("{what}: the merged count overflows")]
    Overflow {
        /// The summary field.
        what: String,
    },
}

/// Merges reports, in the order given, into one. Each input is
/// `(name for messages, parsed JSON)`. The result is the merged document's
/// body: [`write()`] puts it in the JSON envelope (`version`, and `tool`
/// naming this strata, which wrote the merged report).
///
/// Top-level fields other than the known ones are kept: arrays are
/// concatenated, anything else is taken from the first report that has it.
///
/// # Errors
/// An input that is not a version-1 report with `images` and `findings`
/// arrays; an empty input list.
pub fn merge(inputs: &[(String, Value)]) -> Result<Value, Error> {
    for (file, doc) in inputs {
        check(file, doc)?;
    }
    let (_, first) = inputs.first().ok_or(Error::Empty)?;
    let mut out: Map<String, Value> = first.as_object().cloned().unwrap_or_default();
    out.remove("version");
    out.remove("tool");
    let objects = || inputs.iter().filter_map(|(_, d)| d.as_object());
    for key in objects().flat_map(|o| o.keys().cloned()).collect::<Vec<_>>() {
        if matches!(key.as_str(), "version" | "tool" | "summary") {
            continue;
        }
        let values: Vec<&Value> = objects().filter_map(|o| o.get(&key)).collect();
        if values.iter().all(|v| v.is_array()) {
            let joined: Vec<Value> =
                values.iter().filter_map(|v| v.as_array()).flatten().cloned().collect();
            out.insert(key, Value::Array(joined));
        } else if !out.contains_key(&key) {
            out.insert(key, values[0].clone());
        }
    }
    let mut findings: Vec<Value> = match out.remove("findings") {
        Some(Value::Array(f)) => f,
        _ => Vec::new(),
    };
    findings.sort_by(order::cmp_json);
    let summaries: Vec<&Value> = objects().filter_map(|o| o.get("summary")).collect();
    out.insert("summary".into(), summary(&findings, &summaries)?);
    out.insert("findings".into(), Value::Array(findings));
    Ok(Value::Object(out))
}

fn check(file: &str, doc: &Value) -> Result<(), Error> {
    let bad = |reason: &str| Error::NotAReport { file: file.to_owned(), reason: reason.to_owned() };
    let obj = doc.as_object().ok_or_else(|| bad("not a JSON object"))?;
    match obj.get("version").and_then(Value::as_u64) {
        Some(VERSION) => {}
        Some(v) => return Err(bad(&format!("version {v}, this strata merges version {VERSION}"))),
        None => return Err(bad("no \"version\"")),
    }
    for key in ["images", "findings"] {
        if !obj.get(key).is_some_and(Value::is_array) {
            return Err(bad(&format!("no \"{key}\" array")));
        }
    }
    let findings = obj.get("findings").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (i, f) in findings.iter().enumerate() {
        check_finding(f).map_err(|reason| bad(&format!("findings[{i}]: {reason}")))?;
    }
    let images = obj.get("images").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (i, image) in images.iter().enumerate() {
        if !image.is_object() {
            return Err(bad(&format!("images[{i}] is not an object")));
        }
    }
    if let Some(diags) = obj.get("diagnostics") {
        let diags = diags.as_array().ok_or_else(|| bad("\"diagnostics\" is not an array"))?;
        for (i, d) in diags.iter().enumerate() {
            let level_ok = d
                .get("level")
                .is_some_and(|l| ["note", "warning", "error"].iter().any(|w| l == *w));
            if !level_ok || !d.get("message").is_some_and(Value::is_string) {
                return Err(bad(&format!(
                    "diagnostics[{i}] needs a \"level\" (note, warning or error) and a \"message\""
                )));
            }
        }
    }
    if let Some(summary) = obj.get("summary") {
        let summary = summary.as_object().ok_or_else(|| bad("\"summary\" is not an object"))?;
        if let Some(s) = summary.get("suppressed") {
            let counts = s.as_object().ok_or_else(|| bad("summary.suppressed is not an object"))?;
            if !counts.values().all(|v| v.as_u64().is_some()) {
                return Err(bad("summary.suppressed holds a count that is not a whole number"));
            }
        }
    }
    Ok(())
}

/// A finding as `scan` writes it: the fields merge sorts and counts by,
/// with their types, and severity and status spelled as the contract does
/// (lower case). Values are never quoted back: a report can hold secrets.
fn check_finding(f: &Value) -> Result<(), String> {
    let obj = f.as_object().ok_or("not an object")?;
    for key in ["rule_id", "target", "fingerprint"] {
        if !obj.get(key).is_some_and(Value::is_string) {
            return Err(format!("\"{key}\" is missing or not a string"));
        }
    }
    let word = |key: &str, allowed: &[&str]| -> Result<(), String> {
        match obj.get(key).and_then(Value::as_str) {
            Some(v) if allowed.contains(&v) => Ok(()),
            _ => Err(format!("\"{key}\" is missing or not one of {}", allowed.join(", "))),
        }
    };
    let severities: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
    word("severity", &severities)?;
    word("status", &["present", "deleted", "overwritten", "config"])?;
    for key in ["layer_index", "line", "removed_in_layer"] {
        if obj.get(key).is_some_and(|v| !v.is_null() && v.as_u64().is_none()) {
            return Err(format!("\"{key}\" is not a whole number or null"));
        }
    }
    for key in ["path", "inner_path", "location", "image_digest"] {
        if obj.get(key).is_some_and(|v| !v.is_null() && !v.is_string()) {
            return Err(format!("\"{key}\" is not a string or null"));
        }
    }
    Ok(())
}

/// `total`, `by_severity` and `by_status` counted from the merged findings
/// (every key any input had stays, with 0 when nothing is left); numeric
/// maps such as `suppressed` added up; other fields kept from the first.
///
/// # Errors
/// A count that no longer fits in 64 bits.
fn summary(findings: &[Value], inputs: &[&Value]) -> Result<Value, Error> {
    let mut out: Map<String, Value> =
        inputs.first().and_then(|s| s.as_object()).cloned().unwrap_or_default();
    for key in inputs.iter().filter_map(|s| s.as_object()).flat_map(|o| o.keys()) {
        let all: Vec<&Value> = inputs.iter().filter_map(|s| s.get(key)).collect();
        if all.iter().all(|v| v.is_object()) {
            let mut sums: Map<String, Value> = Map::new();
            for (k, v) in all.iter().filter_map(|v| v.as_object()).flatten() {
                let prev = sums.get(k).and_then(Value::as_u64);
                match (prev, v.as_u64()) {
                    (Some(p), Some(x)) => {
                        let sum = p.checked_add(x).ok_or_else(|| Error::Overflow {
                            what: format!("summary.{key}.{k}"),
                        })?;
                        sums.insert(k.clone(), sum.into())
                    }
                    (None, _) => sums.insert(k.clone(), v.clone()),
                    (Some(_), None) => None,
                };
            }
            out.insert(key.clone(), Value::Object(sums));
        }
    }
    out.insert("total".into(), findings.len().into());
    for (field, key) in [("by_severity", "severity"), ("by_status", "status")] {
        let mut counts: Map<String, Value> = match out.get(field) {
            Some(Value::Object(m)) => m.keys().map(|k| (k.clone(), 0u64.into())).collect(),
            _ => Map::new(),
        };
        for f in findings {
            if let Some(k) = f.get(key).and_then(Value::as_str) {
                let n = counts.get(k).and_then(Value::as_u64).unwrap_or(0);
                counts.insert(k.to_owned(), (n + 1).into());
            }
        }
        out.insert(field.into(), Value::Object(counts));
    }
    Ok(Value::Object(out))
}

/// Writes a merged body (from [`merge`]) in the JSON envelope.
///
/// # Errors
/// When writing fails.
pub fn write(out: &mut dyn std::io::Write, merged: &Value) -> std::io::Result<()> {
    envelope::write(out, merged)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn finding(target: &str, layer: Option<u64>, path: &str, sev: &str, status: &str) -> Value {
        json!({"rule_id": "r", "target": target, "image_digest": "sha256:1", "layer_index": layer,
               "path": path, "line": 1, "location": null, "severity": sev, "status": status,
               "fingerprint": format!("{target}{path}"), "extra_field": "kept"})
    }

    fn report(target: &str, findings: Vec<Value>, suppressed: u64, diag: &[&str]) -> Value {
        json!({
            "version": 1,
            "tool": {"name": "strata", "version": "0.1.0"},
            "images": [{"target": target, "digest": "sha256:1", "layers": []}],
            "findings": findings,
            "summary": {"total": 99, "by_severity": {"critical": 0, "high": 0, "info": 0},
                        "by_status": {"present": 0, "deleted": 0, "config": 0},
                        "suppressed": {"baseline": suppressed, "status filter": 1}},
            "diagnostics": diag.iter().map(|m| json!({"level": "warning", "message": m})).collect::<Vec<_>>(),
            "future": [target],
        })
    }

    #[test]
    fn merges_shards() {
        let a = report(
            "reg/b:1",
            vec![
                finding("reg/b:1", None, "", "high", "config"),
                finding("reg/b:1", Some(2), "/x", "critical", "present"),
            ],
            2,
            &["w1"],
        );
        let b = report(
            "reg/a:1",
            vec![finding("reg/a:1", Some(0), "/y", "high", "deleted")],
            3,
            &["w2"],
        );
        let m = merge(&[("a.json".into(), a), ("b.json".into(), b)]).unwrap();
        let targets: Vec<&str> =
            m["images"].as_array().unwrap().iter().map(|i| i["target"].as_str().unwrap()).collect();
        assert_eq!(targets, ["reg/b:1", "reg/a:1"], "images keep input order");
        let order: Vec<(String, Value)> = m["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["target"].as_str().unwrap().to_owned(), f["layer_index"].clone()))
            .collect();
        assert_eq!(
            order,
            [
                ("reg/a:1".to_owned(), json!(0)),
                ("reg/b:1".into(), json!(2)),
                ("reg/b:1".into(), Value::Null)
            ]
        );
        assert_eq!(m["findings"][0]["extra_field"], "kept");
        assert_eq!(m["summary"]["total"], 3);
        assert_eq!(m["summary"]["by_severity"], json!({"critical": 1, "high": 2, "info": 0}));
        assert_eq!(m["summary"]["by_status"], json!({"present": 1, "deleted": 1, "config": 1}));
        assert_eq!(m["summary"]["suppressed"], json!({"baseline": 5, "status filter": 2}));
        assert_eq!(m["diagnostics"].as_array().unwrap().len(), 2);
        assert_eq!(m["future"], json!(["reg/b:1", "reg/a:1"]));
        assert!(m.get("version").is_none() && m.get("tool").is_none(), "the envelope's");
        let mut text = Vec::new();
        write(&mut text, &m).unwrap();
        let doc: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["tool"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(doc["findings"], m["findings"]);
    }

    #[test]
    fn order_of_inputs_does_not_matter_for_findings() {
        let a = report("t1", vec![finding("t1", Some(1), "/a", "low", "present")], 0, &[]);
        let b = report(
            "t1",
            vec![
                finding("t1", Some(1), "/a", "low", "present"),
                finding("t0", Some(0), "/b", "low", "present"),
            ],
            0,
            &[],
        );
        let ab = merge(&[("a".into(), a.clone()), ("b".into(), b.clone())]).unwrap();
        let ba = merge(&[("b".into(), b), ("a".into(), a)]).unwrap();
        assert_eq!(ab["findings"], ba["findings"]);
    }

    #[test]
    fn single_report_round_trips() {
        let a = report("t", vec![finding("t", Some(0), "/a", "high", "present")], 4, &["w"]);
        let m = merge(&[("a".into(), a.clone())]).unwrap();
        assert_eq!(m["findings"], a["findings"]);
        assert_eq!(m["summary"]["suppressed"], a["summary"]["suppressed"]);
        assert_eq!(m["summary"]["total"], 1);
    }

    #[test]
    fn rejects_non_reports() {
        assert!(matches!(merge(&[]), Err(Error::Empty)));
        for bad in [
            json!([]),
            json!({"version": 2, "images": [], "findings": []}),
            json!({"version": 1, "images": []}),
        ] {
            let e = merge(&[("x.json".into(), bad)]).unwrap_err().to_string();
            assert!(e.starts_with("x.json: not a strata JSON report"), "{e}");
        }
    }
}
