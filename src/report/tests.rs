//! Every printer on hand-built reports: the structure each format promises,
//! which findings land under which image, redaction of secrets (in the
//! secret field, in paths, in instructions) and escaping of image text
//! for terminals, XML and HTML. Whole outputs are pinned by the snapshot
//! tests of `tests/it`; these check the invariants one by one.

use std::sync::Arc;

use serde_json::Value;

use super::redaction::{MAX_FINDING_INSTRUCTION, redact_instructions, redact_records};
use super::*;
use crate::diagnostics::{Diagnostic, Level};
use crate::finding::{Detector, Secret, Severity, Status};
use crate::redact::{Redactor, TextRedactor};
use crate::timeline::{ImageRecord, LayerRecord};

/// A fake, format-valid GitHub token.
const SECRET: &str = "ghp_FAKE0TEST0EXAMPLE00000000000000000000";
/// Image text that would drive a terminal, close markup or break XML.
const HOSTILE: &str = "/app/<b>&\"q'\u{1b}[31m\u{202e}.env";

const TARGET: &str = "reg.example/app:1";
const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn layer(index: usize, created_by: &str) -> LayerRecord {
    LayerRecord {
        index,
        digest: format!("sha256:{index:064}"),
        diff_id: None,
        created_by: Some(created_by.to_owned()),
        size: 1000 + index as u64,
        read: Some(crate::cache::LayerRead::Complete),
        files: None,
    }
}

fn image(target: &str, digest: &str) -> ImageRecord {
    ImageRecord {
        target: target.to_owned(),
        references: vec![format!("{target}-tag")],
        digest: digest.to_owned(),
        platform: Some("linux/amd64".into()),
        layers: vec![
            layer(0, "ADD rootfs.tar /"),
            layer(1, &format!("RUN echo {SECRET} > /root/.token")),
        ],
    }
}

fn finding(target: &str, digest: &str, layer: Option<usize>, path: Option<&str>) -> Finding {
    Finding {
        rule_id: "github-pat-classic".into(),
        rule_name: "GitHub personal access token".into(),
        severity: Severity::Critical,
        detector: if layer.is_some() { Detector::Pattern } else { Detector::Config },
        target: target.into(),
        image_digest: digest.into(),
        platform: Some("linux/amd64".into()),
        layer_index: layer,
        layer_digest: layer.map(|i| format!("sha256:{i:064}")),
        path: path.map(Into::into),
        inner_path: None,
        line: layer.map(|_| 3),
        status: if layer.is_some() { Status::Deleted } else { Status::Config },
        removed_in_layer: layer.map(|i| i + 1),
        created_by: layer.map(|_| Arc::from(format!("RUN echo {SECRET} > /root/.token"))),
        location: layer.is_none().then(|| "history[1].created_by".into()),
        secret: Secret::new(SECRET.as_bytes().to_vec()),
        validation: Some("github checksum ok".into()),
        context: None,
        rule_severity: Severity::Critical,
        decoding: Vec::new(),
        workloads: Vec::new(),
        verification: None,
        material: None,
    }
}

/// Two images of one target (an index) plus a clean one: image A has a
/// deleted file finding at a hostile path, a finding in a path that holds
/// the secret, and a config finding; image B has one low finding; the
/// third image has none. Redacted as `session::run` redacts.
fn report(with_error: bool) -> Report {
    let mut low = finding(TARGET, DIGEST_B, Some(0), Some("/etc/b.conf"));
    low.severity = Severity::Low;
    low.rule_id = "generic-api-key".into();
    let mut findings = vec![
        finding(TARGET, DIGEST_A, Some(1), Some(HOSTILE)),
        finding(TARGET, DIGEST_A, Some(1), Some(&format!("/cache/{SECRET}/token"))),
        finding(TARGET, DIGEST_A, None, None),
        low,
    ];
    order::sort(&mut findings);
    let mut images =
        vec![image(TARGET, DIGEST_A), image(TARGET, DIGEST_B), image("clean:1", DIGEST_A)];
    let redactor = TextRedactor::new(Redactor::new(findings.iter().map(|f| &f.secret)), None);
    redact_instructions(&redactor, &mut findings);
    redact_records(&redactor, &mut images);
    let mut diagnostics =
        vec![Diagnostic { level: Level::Warning, message: "a <warning> & more".into() }];
    if with_error {
        diagnostics
            .push(Diagnostic { level: Level::Error, message: "layer 2: unexpected EOF".into() });
    }
    Report {
        images,
        findings,
        suppressed: [("baseline".to_owned(), 2)].into_iter().collect(),
        diagnostics,
        rules: vec![
            rule("unused", Severity::Low),
            rule("generic-api-key", Severity::Low),
            rule("github-pat-classic", Severity::Critical),
        ],
        redactor,
    }
}

fn rule(id: &str, severity: Severity) -> RuleInfo {
    RuleInfo {
        id: id.into(),
        name: format!("{id} name"),
        severity,
        detector: Detector::Pattern,
        description: format!("{id} <description>"),
        references: vec!["https://example.com/docs".into()],
        rank: 1,
        checksummed: false,
    }
}

fn render(report: &Report, format: Format, show_secrets: bool) -> String {
    let mut opts = RenderOptions::new(show_secrets, false);
    opts.fail_on = Severity::Medium;
    let mut out = Vec::new();
    report.write(format, opts, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// No format prints the raw secret without `--show-secrets`, in any field,
/// path or instruction; each does print the redacted form somewhere.
#[test]
fn no_format_prints_a_secret_unless_asked() {
    let r = report(true);
    let redacted = Secret::new(SECRET.as_bytes().to_vec()).redacted();
    for format in Format::ALL {
        let text = render(&r, format, false);
        assert!(!text.contains(SECRET), "{format:?} leaks the secret");
        assert!(!text.contains("FAKE0TEST0EXAMPLE"), "{format:?} leaks part of the secret");
        assert!(text.contains(&redacted), "{format:?} shows the redacted form");
    }
    for format in [Format::Human, Format::Json, Format::Sarif, Format::Gitlab, Format::Junit] {
        assert!(render(&r, format, true).contains(SECRET), "{format:?} --show-secrets");
    }
}

#[test]
fn per_image_filter_splits_by_target_and_digest() {
    let r = report(false);
    let counts: Vec<usize> = r.images.iter().map(|i| r.findings_in(i).count()).collect();
    assert_eq!(counts, [3, 1, 0], "same digest under another target is another image");
    let owners: Vec<Option<usize>> = r.findings.iter().map(|f| r.image_of(f)).collect();
    assert_eq!(owners, [Some(0), Some(0), Some(0), Some(1)]);
    let stray = finding("elsewhere", DIGEST_A, Some(0), None);
    assert_eq!(r.image_of(&stray), None);
}

#[test]
fn human_groups_by_image_and_layer_and_escapes_image_text() {
    let text = render(&report(false), Format::Human, false);
    assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'), "{text}");
    assert!(text.contains("\\u{1b}[31m\\u{202e}.env"), "escaped, not dropped: {text}");
    let images: Vec<&str> = text.lines().filter(|l| l.starts_with("image ")).collect();
    assert_eq!(images.len(), 3, "{text}");
    // Image A: layer 1 then the config; image B: layer 0; the clean image.
    let a = text.find("image reg.example/app:1-tag  linux/amd64  sha256:aaaaaaaaaaaa").unwrap();
    let b = text.find("image reg.example/app:1-tag  linux/amd64  sha256:bbbbbbbbbbbb").unwrap();
    let clean = text.find("image clean:1-tag").unwrap();
    let (layer1, config) =
        (text.find("  layer 1  ").unwrap(), text.find("  image config and history").unwrap());
    assert!(a < layer1 && layer1 < config && config < b && b < clean, "{text}");
    assert_eq!(text[b..clean].matches("generic-api-key").count(), 1, "{text}");
    assert!(!text[a..b].contains("generic-api-key"), "B's finding not under A: {text}");
    assert!(text[clean..].contains("  no findings"), "{text}");
    assert!(text.contains("deleted in layer 2"), "{text}");
    assert!(text.contains("4 findings in 3 image(s): 3 critical, 1 low"), "{text}");
    assert!(text.contains("suppressed: 2 baseline"), "{text}");
}

/// The human report with the command line's defaults (`--fail-on low`, no
/// `--show-info`), changed by `tweak`.
fn render_human(report: &Report, tweak: impl FnOnce(&mut RenderOptions)) -> String {
    let mut opts = RenderOptions::new(false, false);
    opts.show_info = false;
    opts.fail_on = Severity::Low;
    tweak(&mut opts);
    let mut out = Vec::new();
    report.write(Format::Human, opts, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Image A's two layer findings made info (one capped by a third-party
/// path, one by a failed check), image B's made info by a test path.
fn report_with_info() -> Report {
    let mut r = report(false);
    for f in &mut r.findings {
        if f.layer_index.is_none() {
            continue;
        }
        f.severity = Severity::Info;
        f.context = Some(crate::finding::context::PathContext::ThirdParty);
    }
    r.findings[0].context = None;
    let b = r.findings.iter_mut().find(|f| f.image_digest == DIGEST_B).unwrap();
    b.context = Some(crate::finding::context::PathContext::Test);
    r
}

#[test]
fn human_folds_info_findings_into_a_count_per_image() {
    let r = report_with_info();
    let text = render_human(&r, |_| {});
    assert!(!text.contains("  layer "), "no layer holds a shown finding: {text}");
    let folds: Vec<&str> = text.lines().filter(|l| l.contains("not shown")).collect();
    assert_eq!(
        folds,
        [
            "  2 info findings not shown: 1 failed check, 1 third-party package (--show-info lists them)",
            "  1 info finding not shown: 1 test (--show-info lists them)",
        ],
        "{text}"
    );
    // The config finding is still listed; an image of only info findings is not "no findings".
    assert!(text.contains("  image config and history"), "{text}");
    assert_eq!(text.matches("  no findings").count(), 1, "only the clean image: {text}");
    assert!(text.contains("4 findings in 3 image(s): 1 critical, 3 info"), "{text}");

    for tweak in [(|o: &mut RenderOptions| o.show_info = true) as fn(&mut RenderOptions), |o| {
        o.fail_on = Severity::Info
    }] {
        let text = render_human(&r, tweak);
        assert!(!text.contains("not shown"), "{text}");
        assert_eq!(text.matches("      info     ").count(), 3, "{text}");
        assert!(text.contains("third-party package path: critical capped at info"), "{text}");
    }
}

#[test]
fn human_names_the_layers_not_read_whole() {
    let mut r = report(false);
    r.images[0].layers[0].read = Some(crate::cache::LayerRead::Partial);
    r.images[1].layers[1].read = Some(crate::cache::LayerRead::None);
    let text = render_human(&r, |_| {});
    let lines: Vec<String> =
        text.lines().filter(|l| l.starts_with("  incomplete:")).map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            format!(
                "  incomplete: layer 0  sha256:{:012}  read only in part: the rest of it was not scanned (the errors say why)",
                0
            ),
            format!(
                "  incomplete: layer 1  sha256:{:012}  not read: nothing in it was scanned (the errors say why)",
                0
            ),
        ],
        "{text}"
    );
    let a = text.find("image reg.example/app:1-tag  linux/amd64  sha256:aaaa").unwrap();
    assert_eq!(text[a..].lines().nth(1), Some(lines[0].as_str()), "under its image: {text}");
    assert!(
        text.lines().any(|l| l == "incomplete: 1 layer read only in part, 1 layer not read"),
        "in the summary: {text}"
    );
    assert!(text.contains("image clean:1-tag  linux/amd64  sha256:aaaaaaaaaaaa\n  no findings\n"));
    r.images[2].layers[0].read = Some(crate::cache::LayerRead::Partial);
    let text = render_human(&r, |_| {});
    assert!(text.contains("  no findings in what was read\n"), "{text}");
    let whole = render_human(&report(false), |_| {});
    assert!(!whole.contains("incomplete"), "{whole}");
}

#[test]
fn json_is_the_contract_in_the_envelope() {
    let r = report(false);
    let doc: Value = serde_json::from_str(&render(&r, Format::Json, false)).unwrap();
    assert_eq!(doc["version"], envelope::VERSION);
    assert_eq!(doc["tool"]["name"], "strata");
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 4);
    assert!(findings.iter().all(|f| f.get("secret").is_none()), "secret only when shown");
    assert_eq!(findings[0]["path"], HOSTILE, "JSON carries the path as is (its encoder escapes)");
    let redacted_path = findings[1]["path"].as_str().unwrap();
    assert!(redacted_path.starts_with("/cache/ghp_") && redacted_path.ends_with("/token"));
    assert_eq!(doc["summary"]["total"], 4);
    assert_eq!(doc["summary"]["by_severity"]["critical"], 3);
    assert_eq!(doc["summary"]["by_status"]["config"], 1);
    assert_eq!(doc["summary"]["suppressed"]["baseline"], 2);
    assert_eq!(doc["images"].as_array().unwrap().len(), 3);
    let shown: Value = serde_json::from_str(&render(&r, Format::Json, true)).unwrap();
    assert_eq!(shown["findings"][0]["secret"], SECRET);
}

/// The JSON order read back (what `merge` sorts by) is the order `scan` sorts in.
#[test]
fn json_sort_key_agrees_with_the_findings_order() {
    let r = report(false);
    let doc: Value = serde_json::from_str(&render(&r, Format::Json, false)).unwrap();
    let mut read_back = doc["findings"].as_array().unwrap().clone();
    read_back.reverse();
    read_back.sort_by(order::cmp_json);
    let got: Vec<&str> = read_back.iter().map(|f| f["fingerprint"].as_str().unwrap()).collect();
    let want: Vec<String> = r.findings.iter().map(Finding::fingerprint).collect();
    assert_eq!(got, want);
}

#[test]
fn sarif_lists_reported_rules_and_encodes_paths() {
    let doc: Value = serde_json::from_str(&render(&report(false), Format::Sarif, false)).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["github-pat-classic", "generic-api-key"], "reported rules, first use first");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for res in results {
        let index = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], res["ruleId"]);
    }
    let uri =
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap();
    assert_eq!(uri, "app/%3Cb%3E&%22q'%1B%5B31m%E2%80%AE.env");
    assert_eq!(results[0]["properties"]["status"], "deleted");
    assert_eq!(results[0]["properties"]["removedInLayer"], 2);
}

/// The run's invocation fails on an error diagnostic (part of the input was
/// not read) and carries every diagnostic.
#[test]
fn sarif_invocation_says_whether_the_scan_was_complete() {
    let doc: Value = serde_json::from_str(&render(&report(true), Format::Sarif, false)).unwrap();
    let inv = &doc["runs"][0]["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let notes = inv["toolExecutionNotifications"].as_array().unwrap();
    let got: Vec<(&str, &str)> = notes
        .iter()
        .map(|n| (n["level"].as_str().unwrap(), n["message"]["text"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [("warning", "a <warning> & more"), ("error", "layer 2: unexpected EOF")]);
    let clean: Value = serde_json::from_str(&render(&report(false), Format::Sarif, false)).unwrap();
    assert_eq!(clean["runs"][0]["invocations"][0]["executionSuccessful"], true);
}

#[test]
fn gitlab_has_one_vulnerability_per_finding_with_stable_ids() {
    let r = report(true);
    let doc: Value = serde_json::from_str(&render(&r, Format::Gitlab, false)).unwrap();
    assert_eq!(doc["version"], gitlab::SCHEMA_VERSION);
    assert_eq!(doc["scan"]["status"], "failure", "an error diagnostic fails the scan");
    let vulns = doc["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulns.len(), 4);
    let ids: std::collections::BTreeSet<&str> =
        vulns.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "ids are distinct");
    assert!(ids.iter().all(|id| id.len() == 36 && id.matches('-').count() == 4));
    assert_eq!(vulns[2]["location"]["file"], "image-config/history[1].created_by");
    assert_eq!(vulns[0]["location"]["commit"]["sha"], format!("sha256:{:064}", 1));
    let again: Value = serde_json::from_str(&render(&r, Format::Gitlab, false)).unwrap();
    assert_eq!(again["vulnerabilities"][0]["id"], vulns[0]["id"]);
    let clean = report(false);
    let ok: Value = serde_json::from_str(&render(&clean, Format::Gitlab, false)).unwrap();
    assert_eq!(ok["scan"]["status"], "success");
}

#[test]
fn junit_fails_at_the_gate_per_image_and_escapes_xml() {
    let text = render(&report(true), Format::Junit, false);
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    // Critical findings fail at --fail-on medium; the low one passes.
    assert!(text.contains("tests=\"6\" failures=\"3\" errors=\"1\""), "{text}");
    assert_eq!(text.matches("<testsuite ").count(), 4, "3 images + completeness: {text}");
    assert_eq!(text.matches("<failure ").count(), 3);
    assert_eq!(text.matches("<system-out>").count(), 1);
    assert!(text.contains("name=\"no secrets found\" classname=\"clean:1\""), "{text}");
    assert!(text.contains("layer 2: unexpected EOF"), "the error names what was not read");
    assert!(!text.contains("<b>") && !text.contains('\u{1b}'), "{text}");
    assert!(text.contains("/app/&lt;b&gt;&amp;&quot;q&apos;\\u{1b}[31m"), "{text}");
    assert_eq!(text.matches("<testsuite ").count(), text.matches("</testsuite>").count());
}

#[test]
fn html_keeps_image_text_inside_the_data_block() {
    let r = report(false);
    let text = render(&r, Format::Html, false);
    assert_eq!(text.matches("<script").count(), 2, "the data block and the page script");
    assert_eq!(text.matches("</script>").count(), 2, "no image text closes a script");
    assert!(!text.contains("<b>"), "image markup never reaches the page");
    let start = text.find("id=\"strata-data\">").unwrap() + "id=\"strata-data\">".len();
    let end = start + text[start..].find("</script>").unwrap();
    let data: Value = serde_json::from_str(&text[start..end]).unwrap();
    let images: Vec<u64> =
        data["findings"].as_array().unwrap().iter().map(|f| f["image"].as_u64().unwrap()).collect();
    assert_eq!(images, [0, 0, 0, 1], "each finding points at its own image");
    assert_eq!(data["findings"][0]["path"], HOSTILE);
    assert_eq!(data["fail_on"], "medium");
    let cmd = data["findings"][0]["extract_command"].as_str().unwrap();
    assert!(cmd.starts_with("strata extract reg.example/app:1 --layer 1 '/app/<b>"), "{cmd}");
}

#[test]
fn instructions_are_redacted_and_clipped_once_per_layer() {
    let r = report(false);
    let redacted = Secret::new(SECRET.as_bytes().to_vec()).redacted();
    let want = format!("RUN echo {redacted} > /root/.token");
    assert_eq!(r.findings[0].created_by.as_deref(), Some(want.as_str()));
    assert_eq!(r.images[0].layers[1].created_by.as_deref(), Some(want.as_str()));
    assert_eq!(r.images[0].references, ["reg.example/app:1-tag"]);

    // A long instruction with a multi-byte character across the clip point.
    let long = format!("RUN {}é{SECRET}", "x".repeat(MAX_FINDING_INSTRUCTION - 5));
    let shared: Arc<str> = Arc::from(long.as_str());
    let mut findings = vec![finding(TARGET, DIGEST_A, Some(1), None); 3];
    for f in &mut findings {
        f.created_by = Some(Arc::clone(&shared));
    }
    let redactor = TextRedactor::new(Redactor::new([&findings[0].secret]), None);
    redact_instructions(&redactor, &mut findings);
    let first = findings[0].created_by.clone().unwrap();
    assert!(findings.iter().all(|f| Arc::ptr_eq(f.created_by.as_ref().unwrap(), &first)));
    let redacted_len = long.len() - SECRET.len() + redacted.len();
    assert!(first.ends_with(&format!("… [{redacted_len} bytes in all]")), "{first}");
    assert!(first.len() < MAX_FINDING_INSTRUCTION + 40 && !first.contains("ghp_FAKE0"));

    let mut images = vec![image(TARGET, DIGEST_A)];
    redact_records(&TextRedactor::default(), &mut images);
    assert!(images[0].layers[1].created_by.as_deref().unwrap().contains(SECRET), "no redactor");
}

#[test]
fn layers_prints_a_table_or_the_envelope() {
    let mut images = vec![image(TARGET, DIGEST_A)];
    images[0].layers[0].files =
        Some(crate::timeline::FileCounts { added: 3, changed: 1, deleted: 2 });
    images[0].layers[0].created_by = Some("RUN \u{1b}]0;title\u{7}".into());
    images[0].layers[1].size = 5 << 20;
    let diags = [Diagnostic { level: Level::Warning, message: "w".into() }];
    let mut human = Vec::new();
    layers::write(&mut human, layers::LayersFormat::Human, &images, &diags).unwrap();
    let human = String::from_utf8(human).unwrap();
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 3, "{human}");
    assert!(lines[0].starts_with("reg.example/app:1-tag  linux/amd64  sha256:aaaa"));
    assert!(lines[1].contains("[ 0] sha256:000000000000 ") && lines[1].contains("+3 ~1 -2"));
    assert!(lines[1].ends_with("RUN \\u{1b}]0;title\\u{7}"), "{human}");
    assert!(lines[2].contains("5.0 MiB"), "{human}");

    let mut json = Vec::new();
    layers::write(&mut json, layers::LayersFormat::Json, &images, &diags).unwrap();
    let doc: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(doc["version"], envelope::VERSION);
    assert_eq!(doc["images"][0]["layers"][0]["files"]["deleted"], 2);
    assert!(doc["images"][0]["layers"][1].get("files").is_none(), "counts only when known");
    assert_eq!(doc["diagnostics"][0]["message"], "w");
    assert!(doc.get("findings").is_none());
}

#[test]
fn rule_list_and_check_lines() {
    let mut out = Vec::new();
    rules::write_list(&mut out, &[rule("a-rule", Severity::High), rule("b", Severity::Info)])
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("a-rule ") && lines[0].ends_with(" high      pattern  a-rule name")
    );
    assert_eq!(lines[2], "2 rules");
    let mut out = Vec::new();
    rules::write_check(&mut out, 5, &["x: example missed".into()]).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "FAIL x: example missed\n5 rules checked, 1 problems\n"
    );
}
