//! The formats for people and pipelines beyond JSON and SARIF: the HTML incident report (loaded
//! in a real headless Chromium), GitLab's secret-detection report (checked against the schema's
//! required fields), and JUnit XML (validated with xmllint against tests/schemas/junit.xsd).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

const LEAKY: &str = "corpus/real/leaky-app.docker.tar";
const TARGETS: [&str; 3] = [LEAKY, "corpus/real/whiteouts.oci.tar", "corpus/real/multiarch-oci"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_in_repo(args: &[&str]) -> (i32, String, String) {
    parts(&strata().current_dir(repo()).args(args).output().unwrap())
}

fn json_report(target: &str) -> Value {
    json_report_with(target, &["--show-secrets"])
}

fn json_report_with(target: &str, extra: &[&str]) -> Value {
    let mut args = vec!["scan", "--format", "json", target];
    args.extend_from_slice(extra);
    let (_, out, err) = run_in_repo(&args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
}

/// Every raw secret of a target, and each long line of a multi-line one.
fn secret_pieces(json: &Value) -> Vec<String> {
    let mut pieces = Vec::new();
    for f in json["findings"].as_array().unwrap() {
        let s = f["secret"].as_str().unwrap();
        pieces.push(s.to_owned());
        pieces.extend(
            s.lines().filter(|l| l.len() >= 16 && !l.starts_with("-----")).map(str::to_owned),
        );
    }
    pieces
}

#[test]
fn new_formats_never_print_a_whole_secret_unless_asked() {
    for target in TARGETS {
        let json = json_report(target);
        let pieces = secret_pieces(&json);
        assert!(!pieces.is_empty(), "{target}");
        for format in ["html", "gitlab", "junit"] {
            let (code, out, err) = run_in_repo(&["scan", "--format", format, target]);
            assert_eq!(code, 1, "{target} {format}: {err}");
            for p in &pieces {
                assert!(!out.contains(p) && !err.contains(p), "{target} {format} leaks {p}");
            }
        }
        let (_, shown, _) = run_in_repo(&["scan", "--format", "html", "--show-secrets", target]);
        let first = json["findings"][0]["secret"].as_str().unwrap().lines().next().unwrap();
        assert!(shown.contains(first), "--show-secrets shows the secret in HTML");
    }
}

// ---- GitLab -------------------------------------------------------------------------------------

/// The constraints of GitLab's secret-detection report schema, version 15.2.1
/// (`dist/secret-detection-report-format.json` of gitlab-org/security-products/
/// security-report-schemas, as vendored in GitLab's
/// `lib/gitlab/ci/parsers/security/validators/schemas/15.2.1/`): the required properties, enums
/// and patterns of every object strata writes. Returns every violation found.
pub(crate) fn gitlab_violations(doc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut need = |v: &Value, path: &str, keys: &[&str]| {
        for k in keys {
            if v.get(k).is_none() {
                bad.push(format!("{path}.{k} is required"));
            }
        }
    };
    need(doc, "$", &["scan", "version", "vulnerabilities"]);
    let scan = &doc["scan"];
    need(scan, "scan", &["analyzer", "end_time", "scanner", "start_time", "status", "type"]);
    for tool in ["analyzer", "scanner"] {
        need(&scan[tool], tool, &["id", "name", "version", "vendor"]);
        need(&scan[tool]["vendor"], tool, &["name"]);
    }
    let mut bad2 = Vec::new();
    let time = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$").unwrap();
    for t in ["start_time", "end_time"] {
        if !scan[t].as_str().is_some_and(|s| time.is_match(s)) {
            bad2.push(format!("scan.{t} must match yyyy-mm-ddThh:mm:ss"));
        }
    }
    if !["success", "failure"].contains(&scan["status"].as_str().unwrap_or("")) {
        bad2.push("scan.status must be success or failure".into());
    }
    if scan["type"] != "secret_detection" {
        bad2.push("scan.type must be secret_detection".into());
    }
    for m in scan["messages"].as_array().into_iter().flatten() {
        if !["info", "warn", "fatal"].contains(&m["level"].as_str().unwrap_or(""))
            || m["value"].as_str().is_none_or(str::is_empty)
        {
            bad2.push(format!("bad scan message {m}"));
        }
    }
    let version = regex::Regex::new(r"^[0-9]+\.[0-9]+\.[0-9]+$").unwrap();
    if !doc["version"].as_str().is_some_and(|v| version.is_match(v)) {
        bad2.push("version must be x.y.z".into());
    }
    for (i, v) in doc["vulnerabilities"].as_array().into_iter().flatten().enumerate() {
        let at = format!("vulnerabilities[{i}]");
        for k in ["id", "identifiers", "location"] {
            if v.get(k).is_none() {
                bad2.push(format!("{at}.{k} is required"));
            }
        }
        if v["id"].as_str().is_none_or(str::is_empty) {
            bad2.push(format!("{at}.id must be a non-empty string"));
        }
        if v["name"].as_str().is_some_and(|n| n.chars().count() > 255) {
            bad2.push(format!("{at}.name longer than 255"));
        }
        let severities = ["Info", "Unknown", "Low", "Medium", "High", "Critical"];
        if !severities.contains(&v["severity"].as_str().unwrap_or("")) {
            bad2.push(format!("{at}.severity not in the enum"));
        }
        let ids = v["identifiers"].as_array();
        if ids.is_none_or(|a| a.is_empty()) {
            bad2.push(format!("{at}.identifiers needs at least one item"));
        }
        for id in ids.into_iter().flatten() {
            for k in ["type", "name", "value"] {
                if id[k].as_str().is_none_or(str::is_empty) {
                    bad2.push(format!("{at}.identifiers.{k} must be a non-empty string"));
                }
            }
        }
        if v["location"]["commit"]["sha"].as_str().is_none_or(str::is_empty) {
            bad2.push(format!("{at}.location.commit.sha is required"));
        }
        for (k, d) in v["details"].as_object().into_iter().flatten() {
            if d["name"].as_str().is_none_or(str::is_empty) || d["type"] != "text" {
                bad2.push(format!("{at}.details.{k} is not a named text field"));
            }
        }
    }
    bad.extend(bad2);
    bad
}

#[test]
fn gitlab_report_meets_the_secret_detection_schema() {
    for target in TARGETS {
        let json = json_report_with(target, &[]);
        let (code, out, err) = run_in_repo(&["scan", "--format", "gitlab", target]);
        assert_eq!(code, 1, "{err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(gitlab_violations(&doc), Vec::<String>::new(), "{target}");
        let findings = json["findings"].as_array().unwrap();
        let vulns = doc["vulnerabilities"].as_array().unwrap();
        assert_eq!(vulns.len(), findings.len(), "{target}: one vulnerability per finding");
        for (f, v) in findings.iter().zip(vulns) {
            assert_eq!(v["identifiers"][0]["value"], f["rule_id"]);
            match f["path"].as_str() {
                Some(p) => {
                    assert!(v["location"]["file"].as_str().unwrap().starts_with(p));
                    assert_eq!(v["location"]["commit"]["sha"], f["layer_digest"], "layer digest");
                    assert_eq!(v["location"]["start_line"], f["line"]);
                }
                None => assert_eq!(v["location"]["commit"]["sha"], f["image_digest"]),
            }
            if let Some(c) = f["created_by"].as_str() {
                assert_eq!(v["location"]["commit"]["message"], c);
            }
        }
        let ids: std::collections::BTreeSet<&str> =
            vulns.iter().map(|v| v["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), vulns.len(), "ids are unique");
    }
    // The checker can say no: a report missing what the schema requires fails it.
    let (_, out, _) = run_in_repo(&["scan", "--format", "gitlab", LEAKY]);
    let mut broken: Value = serde_json::from_str(&out).unwrap();
    broken["vulnerabilities"][0]["location"]["commit"].as_object_mut().unwrap().remove("sha");
    broken["scan"]["start_time"] = "2026-12-06 10:00".into();
    broken["scan"].as_object_mut().unwrap().remove("analyzer");
    let found = gitlab_violations(&broken);
    for want in [
        "scan.analyzer is required",
        "scan.start_time must match yyyy-mm-ddThh:mm:ss",
        "vulnerabilities[0].location.commit.sha is required",
    ] {
        assert!(found.iter().any(|f| f == want), "{want} in {found:?}");
    }
}

#[test]
fn gitlab_report_marks_an_incomplete_scan_as_failure() {
    let dir = tmp();
    let path = dir.path().join("truncated.tar");
    let spec = ImageSpec {
        layers: vec![Layer::new("COPY a /", vec![canary_file("app/a.env", 1)])],
        ..ImageSpec::default()
    };
    ig::write_image(&spec, Format::DockerLegacy, &path).unwrap();
    // Cut a layer blob short: its layer cannot be read to the end.
    corrupt_first_layer(&path);
    let rules = canary_rules();
    let o = run(&["scan", "--format", "gitlab", "--signatures", &rules, path.to_str().unwrap()]);
    let (code, out, err) = parts(&o);
    assert_eq!(code, 2, "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(gitlab_violations(&doc), Vec::<String>::new());
    assert_eq!(doc["scan"]["status"], "failure");
    assert!(doc["scan"]["messages"].as_array().unwrap().iter().any(|m| m["level"] == "fatal"));
}

/// Rewrites a docker-save archive so that its first layer blob holds garbage of the same size.
fn corrupt_first_layer(path: &Path) {
    let data = std::fs::read(path).unwrap();
    let mut archive = tar::Archive::new(data.as_slice());
    let mut out = tar::Builder::new(Vec::new());
    let mut done = false;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut body).unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if !done && name.ends_with("layer.tar") {
            let half = body.len() / 2;
            body.truncate(half);
            header.set_size(body.len() as u64);
            header.set_cksum();
            done = true;
        }
        out.append(&header, body.as_slice()).unwrap();
    }
    assert!(done, "the archive has a layer.tar");
    std::fs::write(path, out.into_inner().unwrap()).unwrap();
}

// ---- JUnit --------------------------------------------------------------------------------------

fn xmllint_validates(xml: &str) -> (bool, String) {
    let dir = tmp();
    let file = dir.path().join("report.xml");
    std::fs::write(&file, xml).unwrap();
    let o = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(repo().join("tests/schemas/junit.xsd"))
        .arg(&file)
        .output()
        .expect("xmllint runs (tests/run.sh installs libxml2-utils)");
    (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn count(xml: &str, needle: &str) -> usize {
    xml.matches(needle).count()
}

#[test]
fn junit_report_validates_and_fails_cases_at_fail_on() {
    for target in TARGETS {
        let json = json_report(target);
        let findings = json["findings"].as_array().unwrap();
        for (gate, rank) in [("info", 0), ("high", 3), ("critical", 4)] {
            let (_, xml, err) =
                run_in_repo(&["scan", "--format", "junit", "--fail-on", gate, target]);
            let (ok, why) = xmllint_validates(&xml);
            assert!(ok, "{target}: {why}\n{xml}");
            let severity_rank = |s: &str| {
                ["info", "low", "medium", "high", "critical"].iter().position(|x| *x == s).unwrap()
            };
            let failing = findings
                .iter()
                .filter(|f| severity_rank(f["severity"].as_str().unwrap()) >= rank)
                .count();
            assert_eq!(count(&xml, "<testcase "), findings.len(), "{target} {err}");
            assert_eq!(count(&xml, "<failure "), failing, "{target} --fail-on {gate}");
            assert!(xml.contains(&format!("failures=\"{failing}\"")));
        }
    }
    // The schema can say no: a test case without a name is invalid.
    let (ok, _) = xmllint_validates(
        "<testsuites><testsuite name=\"x\" tests=\"1\"><testcase classname=\"c\"/></testsuite></testsuites>",
    );
    assert!(!ok, "xmllint rejects a testcase without a name");
}

#[test]
fn junit_shows_clean_images_and_incomplete_scans() {
    let dir = tmp();
    let clean = dir.path().join("clean.tar");
    let spec = ImageSpec {
        layers: vec![Layer::new("COPY a /", vec![Entry::file("app/readme", "nothing here\n")])],
        ..ImageSpec::default()
    };
    ig::write_image(&spec, Format::DockerLegacy, &clean).unwrap();
    let (code, xml, _) = parts(&run(&["scan", "--format", "junit", clean.to_str().unwrap()]));
    assert_eq!(code, 0);
    assert!(xmllint_validates(&xml).0, "{xml}");
    assert!(xml.contains("name=\"no secrets found\"") && !xml.contains("<failure"), "{xml}");
    corrupt_first_layer(&clean);
    let (code, xml, _) = parts(&run(&["scan", "--format", "junit", clean.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(xmllint_validates(&xml).0, "{xml}");
    assert!(xml.contains("<error message=\"the scan is incomplete\""), "{xml}");
}

// ---- HTML in a real browser ---------------------------------------------------------------------

/// Debian's Chromium, headless, with the flags that keep it off the (closed) network.
fn chromium(args: &[&str]) -> String {
    let profile = tmp();
    let bin = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("Chromium is installed (tests/run.sh installs Debian's chromium)");
    let o = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "chromium: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn dom(file: &Path, hash: &str) -> String {
    chromium(&["--dump-dom", &format!("file://{}{hash}", file.display())])
}

/// Screenshots are kept as test artifacts (not compared): target/test-artifacts/.
fn screenshot(file: &Path, hash: &str, name: &str) {
    let dir = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join(format!("{name}.png"));
    chromium(&[
        "--window-size=1400,1800",
        &format!("--screenshot={}", png.display()),
        &format!("file://{}{hash}", file.display()),
    ]);
    assert!(std::fs::metadata(&png).is_ok_and(|m| m.len() > 10_000), "screenshot {name}");
}

fn attr_values<'a>(dom: &'a str, attr: &str) -> Vec<&'a str> {
    let key = format!("{attr}=\"");
    dom.match_indices(&key)
        .map(|(i, _)| {
            let rest = &dom[i + key.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

fn table_rows(dom: &str) -> Vec<&str> {
    let body = &dom[dom.find("<tbody>").expect("table body")..];
    let body = &body[..body.find("</tbody>").unwrap()];
    attr_values(body, "data-fingerprint")
}

#[test]
fn html_report_in_a_real_browser() {
    let dir = tmp();
    let html = dir.path().join("leaky.html");
    let json = json_report(LEAKY);
    let findings = json["findings"].as_array().unwrap();
    let (code, _, err) =
        run_in_repo(&["scan", "--format", "html", "-o", html.to_str().unwrap(), LEAKY]);
    assert_eq!(code, 1, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    for needle in ["<link", "src=\"http", "@import", "url(http"] {
        assert!(!page.contains(needle), "self-contained: {needle}");
    }

    let all = dom(&html, "");
    for p in secret_pieces(&json) {
        assert!(!all.contains(&p), "the browser shows no planted secret");
    }
    // The table lists every finding; the timeline has a marker for every layer finding.
    let mut rows = table_rows(&all);
    rows.sort_unstable();
    let mut want: Vec<&str> = findings.iter().map(|f| f["fingerprint"].as_str().unwrap()).collect();
    want.sort_unstable();
    assert_eq!(rows, want);
    let timeline =
        &all[all.find("class=\"timeline\"").unwrap()..all.find("id=\"findings\"").unwrap()];
    let marked = attr_values(timeline, "data-finding").len();
    let in_layers = findings.iter().filter(|f| !f["layer_index"].is_null()).count();
    let config = findings.len() - in_layers;
    assert_eq!(
        marked,
        in_layers + config,
        "a timeline marker per layer finding, a line per config one"
    );
    assert!(
        timeline.contains("<line"),
        "a line from a deleted secret to the layer that deleted it"
    );
    assert!(all.contains("data-render-ms"));

    // Filters, set from the address, work in the browser.
    for (hash, field, value) in [
        ("#status=deleted", "status", "deleted"),
        ("#severity=high", "severity", "high"),
        ("#layer=1", "layer_index", "1"),
    ] {
        let d = dom(&html, hash);
        let got = table_rows(&d).len();
        let want =
            findings.iter().filter(|f| f[field].to_string().trim_matches('"') == value).count();
        assert!(want > 0 && want < findings.len(), "{hash} is a real filter");
        assert_eq!(got, want, "{hash}");
    }
    // The detail panel gives the extract command and a suppression entry.
    let idx = findings.iter().position(|f| f["status"] == "deleted").unwrap();
    let d = dom(&html, &format!("#finding={idx}"));
    let f = &findings[idx];
    let cmd = format!(
        "strata extract {LEAKY} --layer {} {}",
        f["layer_index"],
        f["path"].as_str().unwrap()
    );
    assert!(d.contains(&cmd), "extract command in the panel: {cmd}");
    assert!(d.contains(&format!("fingerprint = \"{}\"", f["fingerprint"].as_str().unwrap())));
    screenshot(&html, &format!("#finding={idx}"), "html-report-leaky-app");
}

/// Scans `image` with the canary rule into the HTML report `html`; the image must have findings.
fn scan_html_with_canary(image: &Path, html: &Path) {
    let rules = canary_rules();
    let o = run(&[
        "scan",
        "--format",
        "html",
        "--signatures",
        &rules,
        "-o",
        html.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert_eq!(parts(&o).0, 1, "{}", parts(&o).2);
}

#[test]
fn html_report_renders_image_content_as_text() {
    let dir = tmp();
    let image = dir.path().join("evil.tar");
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY </script><script>alert(1)</script> /app/",
                vec![canary_file("app/<img src=x onerror=alert(1)>.env", 7)],
            ),
            Layer::new(
                "RUN rm /app/*",
                vec![Entry::whiteout("app/<img src=x onerror=alert(1)>.env")],
            ),
        ],
        ..ImageSpec::default()
    };
    ig::write_image(&spec, Format::OciArchive, &image).unwrap();
    let html = dir.path().join("evil.html");
    scan_html_with_canary(&image, &html);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("<img src=x") && !page.contains("</script><script>alert"), "raw markup");
    let d = dom(&html, "#finding=0");
    assert!(!d.contains("<img src=\"x\""), "no img element was created");
    assert_eq!(count(&d, "<script"), 2, "only the report's own two script elements");
    assert!(d.contains("&lt;img src=x onerror=alert(1)&gt;.env"), "the path shows as text");
    assert!(d.contains("COPY &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; /app/"));
    assert!(!d.contains(&canary(7)));
    screenshot(&html, "#finding=0", "html-report-hostile-names");
}

#[test]
fn html_report_with_ten_thousand_findings_stays_responsive() {
    let dir = tmp();
    let image = dir.path().join("many.tar");
    let files: Vec<Entry> =
        (0..10_000).map(|i| canary_file(&format!("app/f{i:05}.conf"), 100_000 + i)).collect();
    let spec = ImageSpec {
        layers: vec![
            Layer::new("COPY app /app", files),
            Layer::new("RUN rm -rf /app", vec![Entry::whiteout("app")]),
        ],
        ..ImageSpec::default()
    };
    ig::write_image(&spec, Format::DockerLegacy, &image).unwrap();
    let html = dir.path().join("many.html");
    scan_html_with_canary(&image, &html);
    let started = std::time::Instant::now();
    let d = dom(&html, "");
    let wall = started.elapsed();
    assert_eq!(table_rows(&d).len(), 10_000, "every finding is in the table");
    let ms: u64 = attr_values(&d, "data-render-ms")[0].parse().unwrap();
    assert!(ms < 10_000, "the page built in {ms} ms");
    assert!(wall.as_secs() < 60, "chromium loaded it in {wall:?}");
    let d = dom(&html, "#text=f09999");
    assert_eq!(table_rows(&d).len(), 1, "the text filter narrows 10,000 rows to one");
}
