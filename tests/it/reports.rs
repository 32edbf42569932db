//! Reports and CI behaviour: the JSON contract, snapshots of every format,
//! SARIF validation, exit codes, filters, baseline and allowlist, colour,
//! and that no format prints a whole secret unless asked.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::util::*;

const LEAKY: &str = "corpus/real/leaky-app.docker.tar";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs strata from the repository root (so targets print as relative paths).
fn run_in_repo(args: &[&str]) -> (i32, String, String) {
    parts(&strata().current_dir(repo()).args(args).output().unwrap())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "fields exist to pin the contract")]
struct Report {
    version: u32,
    tool: Tool,
    images: Vec<ImageJson>,
    findings: Vec<FindingJson>,
    summary: serde_json::Value,
    diagnostics: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "fields exist to pin the contract")]
struct Tool {
    name: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "fields exist to pin the contract")]
struct ImageJson {
    target: String,
    references: Vec<String>,
    digest: String,
    platform: Option<String>,
    layers: Vec<LayerJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "fields exist to pin the contract")]
struct LayerJson {
    index: usize,
    digest: String,
    diff_id: Option<String>,
    created_by: Option<String>,
    size: u64,
    /// How much of the layer was read: complete, partial or none.
    read: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "fields exist to pin the contract")]
struct FindingJson {
    rule_id: String,
    rule_name: String,
    severity: String,
    detector: String,
    target: String,
    image_digest: String,
    platform: Option<String>,
    layer_index: Option<usize>,
    layer_digest: Option<String>,
    path: Option<String>,
    inner_path: Option<String>,
    line: Option<u64>,
    status: String,
    removed_in_layer: Option<usize>,
    created_by: Option<String>,
    location: Option<String>,
    redacted: String,
    secret_sha256: String,
    #[serde(default)]
    secret: Option<String>,
    validation: Option<String>,
    fingerprint: String,
    context: Option<String>,
    rule_severity: String,
    /// Decodings applied to reach the secret, outermost first; null when none.
    decoding: Option<Vec<String>>,
    verification: Option<serde_json::Value>,
    /// Only with `--k8s-pods`.
    #[serde(default)]
    workloads: Option<Vec<WorkloadJson>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "fields exist to pin the contract")]
struct WorkloadJson {
    namespace: String,
    pod: String,
    container: String,
}

#[test]
fn json_matches_the_contract() {
    let (code, out, err) = run_in_repo(&["scan", "--format", "json", LEAKY]);
    assert_eq!(code, 1, "{err}");
    let report: Report = serde_json::from_str(&out).expect("output follows the contract");
    assert_eq!(report.version, 1);
    assert_eq!(report.tool.name, "strata");
    assert_eq!(report.images.len(), 1);
    assert_eq!(report.images[0].layers.len(), 5);
    assert!(report.images[0].layers.iter().all(|l| l.read == "complete"));
    for f in &report.findings {
        assert!(["critical", "high", "medium", "low", "info"].contains(&f.severity.as_str()));
        assert!(["pattern", "entropy", "file", "config"].contains(&f.detector.as_str()));
        assert!(["present", "deleted", "overwritten", "config"].contains(&f.status.as_str()));
        assert_eq!(f.target, LEAKY);
        assert_eq!(f.secret_sha256.len(), 64);
        assert!(f.secret.is_none());
        match f.status.as_str() {
            "config" => {
                assert!(f.layer_index.is_none() && f.path.is_none() && f.location.is_some())
            }
            _ => assert!(f.layer_index.is_some() && f.path.as_deref().unwrap().starts_with('/')),
        }
        assert_eq!(
            f.removed_in_layer.is_some(),
            matches!(f.status.as_str(), "deleted" | "overwritten")
        );
    }
}

#[test]
fn snapshots_of_every_format() {
    for (format, name) in
        [("human", "leaky_human"), ("json", "leaky_json"), ("sarif", "leaky_sarif")]
    {
        let (code, out, err) =
            run_in_repo(&["scan", "--format", format, "--color", "never", LEAKY]);
        assert_eq!(code, 1, "{err}");
        let out = out.replace(env!("CARGO_PKG_VERSION"), "[version]");
        insta::assert_snapshot!(name, out);
    }
    let (_, out, _) = run_in_repo(&["layers", LEAKY]);
    insta::assert_snapshot!("leaky_layers", out);
}

fn validator() -> PathBuf {
    let path = std::env::var_os("STRATA_SARIF_VALIDATOR").map(PathBuf::from).unwrap_or_else(|| {
        repo()
            .join("target/test-tools/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool")
    });
    assert!(
        path.exists(),
        "SARIF validator missing at {}: run tests/run.sh, which installs it",
        path.display()
    );
    path
}

/// The errors and warnings Microsoft's SARIF validator (with GitHub's rules) finds in a log.
pub(crate) fn sarif_problems(sarif: &Path) -> Vec<String> {
    let dir = tmp();
    let log = dir.path().join("validation.sarif");
    let o = std::process::Command::new(validator())
        .args(["validate", "--rule-kind", "Gh;Sarif", "--log", "ForceOverwrite", "-o"])
        .arg(&log)
        .arg(sarif)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(&log).unwrap()).unwrap();
    result["runs"][0]["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|x| x["level"] == "error" || x["level"] == "warning")
                .map(|x| format!("{} {}", x["ruleId"], x["message"]))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sarif_passes_the_validator_with_github_rules() {
    let dir = tmp();
    for target in [LEAKY, "corpus/real/whiteouts-oci", "corpus/real/multiarch-oci"] {
        let sarif = dir.path().join("out.sarif");
        let (code, _, err) =
            run_in_repo(&["scan", "--format", "sarif", "-o", sarif.to_str().unwrap(), target]);
        assert_eq!(code, 1, "{err}");
        let problems = sarif_problems(&sarif);
        assert!(problems.is_empty(), "{target}: {problems:#?}");
    }
}

fn planted(dir: &Path, extra_layer: bool) -> PathBuf {
    let token = ig::checksummed_token("ghp_", "FAKEt0kenForStrataTests0000abc");
    let mut layers = vec![
        Layer::new(
            "COPY .env /app/",
            vec![Entry::file("app/.env", format!("GITHUB_TOKEN={token}\n"))],
        ),
        Layer::new("RUN rm /app/.env", vec![Entry::whiteout("app/.env")]),
    ];
    if extra_layer {
        let npm = ig::checksummed_token("npm_", "FAKEt0kenForStrataTests1111xyz");
        layers.push(Layer::new(
            "COPY .npmrc /root/",
            vec![Entry::file("root/.npmrc", format!("//registry.npmjs.org/:_authToken={npm}\n"))],
        ));
    }
    let spec = ImageSpec { layers, ..ImageSpec::default() };
    let path = dir.join(if extra_layer { "v2.tar" } else { "v1.tar" });
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    path
}

#[test]
fn exit_codes_and_filters() {
    let dir = tmp();
    let image = planted(dir.path(), false);
    let t = image.to_str().unwrap();
    let clean = dir.path().join("clean.tar");
    ig::write_image(
        &ImageSpec {
            layers: vec![Layer::new("COPY x /", vec![Entry::file("x", "hello\n")])],
            ..ImageSpec::default()
        },
        Format::OciArchive,
        &clean,
    )
    .unwrap();
    assert_eq!(parts(&run(&["scan", clean.to_str().unwrap()])).0, 0);
    assert_eq!(parts(&run(&["scan", t])).0, 1);
    // The token is critical: --fail-on critical still fails, a status filter can clear it.
    assert_eq!(parts(&run(&["scan", "--fail-on", "critical", t])).0, 1);
    assert_eq!(parts(&run(&["scan", "--status", "present", t])).0, 0);
    assert_eq!(parts(&run(&["scan", "--final-only", t])).0, 0);
    assert_eq!(parts(&run(&["scan", "--status", "deleted,config", t])).0, 1);
    // Severity threshold: a medium-only image passes --fail-on high.
    let medium = dir.path().join("medium.tar");
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY x /",
            vec![Entry::file("app/settings.py", "API_SECRET = \"Zq8Lm3Xv9Rt2Wp7Kc4Hs\"\n")],
        )],
        ..ImageSpec::default()
    };
    ig::write_image(&spec, Format::OciArchive, &medium).unwrap();
    let (code, out, _) = parts(&run(&["scan", "--format", "json", medium.to_str().unwrap()]));
    assert_eq!(code, 1, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        json["findings"].as_array().unwrap().iter().all(|f| f["severity"] == "medium"),
        "{json:#}"
    );
    assert_eq!(parts(&run(&["scan", "--fail-on", "high", medium.to_str().unwrap()])).0, 0);
    // Errors: bad argument, bad file.
    assert_eq!(parts(&run(&["scan", "--fail-on", "nope", t])).0, 2);
    assert_eq!(parts(&run(&["scan", "/nonexistent.tar"])).0, 2);
    let (code, _, err) = parts(&run(&["scan", "-o", "/nonexistent-dir/report.json", t]));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent-dir/report.json"), "{err}");
}

#[test]
fn baseline_round_trip_and_stable_fingerprints() {
    let dir = tmp();
    let v1 = planted(dir.path(), false);
    let baseline = dir.path().join("baseline.json");
    let (code, _, _) = parts(&run(&[
        "scan",
        "--format",
        "json",
        "-o",
        baseline.to_str().unwrap(),
        v1.to_str().unwrap(),
    ]));
    assert_eq!(code, 1);
    let (code, out, _) = parts(&run(&[
        "scan",
        "--format",
        "json",
        "--baseline",
        baseline.to_str().unwrap(),
        v1.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["findings"].as_array().unwrap().len(), 0);
    assert_eq!(json["summary"]["suppressed"]["baseline"], 1);
    // A rebuild that adds a layer with a new secret: the old one stays suppressed.
    let v2 = planted(dir.path(), true);
    let (code, out, _) = parts(&run(&[
        "scan",
        "--format",
        "json",
        "--baseline",
        baseline.to_str().unwrap(),
        v2.to_str().unwrap(),
    ]));
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let found = json["findings"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{json:#}");
    assert_eq!(found[0]["path"], "/root/.npmrc");
    // A malformed baseline is an error naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"nope\": 1}").unwrap();
    let (code, _, err) =
        parts(&run(&["scan", "--baseline", bad.to_str().unwrap(), v1.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(err.contains("bad.json") && err.contains("findings"), "{err}");
}

#[test]
fn allowlist_by_rule_path_secret_and_fingerprint() {
    let dir = tmp();
    let image = planted(dir.path(), true);
    let t = image.to_str().unwrap();
    let (_, out, _) = parts(&run(&["scan", "--format", "json", t]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let findings = json["findings"].as_array().unwrap().clone();
    assert_eq!(findings.len(), 2);
    let gh = findings.iter().find(|f| f["path"] == "/app/.env").unwrap();
    let entries = [
        format!("rule = \"{}\"", gh["rule_id"].as_str().unwrap()),
        "path = \"/app/**\"".to_owned(),
        format!("secret_sha256 = \"{}\"", gh["secret_sha256"].as_str().unwrap()),
        format!("fingerprint = \"{}\"", gh["fingerprint"].as_str().unwrap()),
    ];
    for entry in entries {
        let cfg = dir.path().join(".strata.toml");
        std::fs::write(&cfg, format!("[[allow]]\n{entry}\nreason = \"rotated on 2026-11-01\"\n"))
            .unwrap();
        // Found in the current directory, and by --config.
        for args in [
            vec!["scan", "--format", "json", t],
            vec!["scan", "--format", "json", "--config", cfg.to_str().unwrap(), t],
        ] {
            let o = strata().current_dir(dir.path()).args(&args).output().unwrap();
            let (code, out, err) = parts(&o);
            assert_eq!(code, 1, "{entry}: {err}");
            let json: serde_json::Value = serde_json::from_str(&out).unwrap();
            let left = json["findings"].as_array().unwrap();
            assert_eq!(left.len(), 1, "{entry}");
            assert_eq!(left[0]["path"], "/root/.npmrc");
            let suppressed: u64 = json["summary"]["suppressed"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with("allowlist"))
                .map(|(_, v)| v.as_u64().unwrap())
                .sum();
            assert_eq!(suppressed, 1, "{entry}");
        }
        let o = strata().current_dir(dir.path()).args(["scan", t]).output().unwrap();
        assert!(parts(&o).1.contains("suppressed: "), "human summary shows suppressions");
    }
    let cfg = dir.path().join("noreason.toml");
    std::fs::write(&cfg, "[[allow]]\nrule = \"x\"\nreason = \"\"\n").unwrap();
    let (code, _, err) = parts(&run(&["scan", "--config", cfg.to_str().unwrap(), t]));
    assert_eq!(code, 2);
    assert!(err.contains("noreason.toml") && err.contains("reason"), "{err}");
}

#[test]
fn no_format_prints_a_whole_secret_unless_asked() {
    for target in [LEAKY, "corpus/real/whiteouts.oci.tar", "corpus/real/multiarch-oci"] {
        let (_, out, _) = run_in_repo(&["scan", "--format", "json", "--show-secrets", target]);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let secrets: Vec<String> = json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["secret"].as_str().unwrap().to_owned())
            .collect();
        assert!(!secrets.is_empty());
        for format in ["human", "json", "sarif"] {
            let (_, out, err) = run_in_repo(&["scan", "--format", format, target]);
            for s in &secrets {
                // Every line of a multi-line key, and the whole secret.
                for piece in std::iter::once(s.as_str())
                    .chain(s.lines().filter(|l| l.len() >= 16 && !l.starts_with("-----")))
                {
                    assert!(
                        !out.contains(piece) && !err.contains(piece),
                        "{target} {format} leaks {piece}"
                    );
                }
            }
        }
        let (_, shown, _) = run_in_repo(&["scan", "--show-secrets", target]);
        assert!(secrets.iter().any(|s| shown.contains(s.lines().next().unwrap())));
    }
}

#[test]
fn colour_and_escaping() {
    let (_, plain, _) = run_in_repo(&["scan", LEAKY]);
    assert!(!plain.contains('\x1b'), "no colour when stdout is not a terminal");
    let (_, coloured, _) = run_in_repo(&["scan", "--color", "always", LEAKY]);
    assert!(coloured.contains("\x1b["));
    let o = strata()
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .args(["scan", "--color", "auto", LEAKY])
        .output()
        .unwrap();
    assert!(!parts(&o).1.contains('\x1b'));
    let dir = tmp();
    let path = dir.path().join("evil-name.tar");
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY \u{1b}[2J x /",
            vec![Entry::file("app/\u{1b}[31mred\u{202e}.env", "API_TOKEN=Zq8Lm3Xv9Rt2Wp7Kc4Hs\n")],
        )],
        ..ImageSpec::default()
    };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, out, _) = parts(&run(&["scan", path.to_str().unwrap()]));
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains('\x1b') && !out.contains('\u{202e}'), "{out:?}");
    assert!(out.contains("\\u{1b}[31mred"), "{out}");
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, _) = parts(&run(&["completions", shell]));
        assert_eq!(code, 0);
        assert!(out.contains("strata") && out.contains("show-secrets"), "{shell}");
    }
    let (code, out, _) = parts(&run(&["man"]));
    assert_eq!(code, 0);
    assert!(out.contains(".TH strata") && out.contains("layer history"));
}

#[test]
fn strata_own_binary_carries_no_secret() {
    // The rule examples are format-valid fake credentials: they are embedded
    // compressed so that strata's own image passes strata (and other scanners).
    let bin = std::env::var_os("STRATA_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_strata")));
    let dir = tmp();
    let image = dir.path().join("self.tar");
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY strata /strata",
            vec![Entry::file("strata", std::fs::read(bin).unwrap())],
        )],
        ..ImageSpec::default()
    };
    ig::write_image(&spec, Format::OciArchive, &image).unwrap();
    let (code, out, err) = parts(&run(&["scan", image.to_str().unwrap()]));
    assert_eq!(code, 0, "{out}{err}");
}

/// An image whose first layer holds `files` (each a canary config file).
fn canary_image(dir: &Path, name: &str, files: &[(&str, u32)]) -> PathBuf {
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY . /",
            files.iter().map(|(path, n)| canary_file(path, *n)).collect(),
        )],
        ..ImageSpec::default()
    };
    let path = out_path(dir, Format::OciArchive, name);
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    path
}

/// Canaries in documentation, test and third-party package paths (capped at info).
const INFO_FILES: [(&str, u32); 3] = [
    ("usr/share/doc/acme/README.conf", 602),
    ("app/node_modules/acme/lib/settings.conf", 603),
    ("usr/lib/python3.11/test/certdata/k.conf", 604),
];

fn scan_canaries(target: &Path, args: &[&str]) -> (i32, String, String) {
    let rules = canary_rules();
    let mut all = vec!["scan", "--signatures", &rules, "--color", "never"];
    all.extend_from_slice(args);
    all.push(target.to_str().unwrap());
    parts(&run(&all))
}

/// The human report folds info findings into one line per image; `--show-info`
/// (or `--fail-on info`, which makes them fail the run) lists them; the
/// machine formats list them whatever the flag; the exit code follows `--fail-on` alone.
#[test]
fn human_report_folds_info_findings_into_a_count() {
    let dir = tmp();
    let mixed =
        canary_image(dir.path(), "mixed", &[&[("app/app.conf", 601)][..], &INFO_FILES].concat());
    let fold = "  3 info findings not shown: 1 documentation, 1 test, 1 third-party package \
                (--show-info lists them)";
    let (code, out, err) = scan_canaries(&mixed, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("    /app/app.conf\n      high     test-canary"), "{out}");
    assert!(out.lines().any(|l| l == fold), "{out}");
    assert!(!out.contains("/usr/share/doc") && !out.contains("node_modules"), "{out}");
    assert!(out.contains("4 findings in 1 image(s): 1 high, 3 info"), "{out}");

    let (code, listed, err) = scan_canaries(&mixed, &["--show-info"]);
    assert_eq!(code, 1, "{err}");
    assert!(!listed.contains("not shown"), "{listed}");
    for (path, _) in INFO_FILES {
        assert!(listed.contains(&format!("    /{path}\n      info     test-canary")), "{listed}");
    }
    assert_eq!(listed.matches("capped at info").count(), 3, "{listed}");

    // Every other format carries every finding, with or without the flag.
    for format in ["json", "sarif"] {
        let (_, plain, _) = scan_canaries(&mixed, &["--format", format]);
        let (_, flagged, _) = scan_canaries(&mixed, &["--format", format, "--show-info"]);
        assert_eq!(plain, flagged, "{format}");
        assert_eq!(plain.matches("CANARY_").count(), 0, "{format} redacts");
    }
    let (_, json, _) = scan_canaries(&mixed, &["--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["summary"]["by_severity"]["info"], 3);
}

/// An image with only info findings still says it has findings, and exits
/// 0 under the default gate (1 with `--fail-on info`, which also lists them).
#[test]
fn only_info_findings_are_still_shown_as_findings() {
    let dir = tmp();
    let image = canary_image(dir.path(), "info-only", &INFO_FILES);
    let (code, out, err) = scan_canaries(&image, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("no findings"), "{out}");
    assert!(out.contains("  3 info findings not shown: "), "{out}");
    assert!(out.contains("3 findings in 1 image(s): 3 info"), "{out}");
    let (code, out, err) = scan_canaries(&image, &["--fail-on", "info"]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.contains("not shown"), "{out}");
    assert_eq!(out.matches("      info     test-canary").count(), 3, "{out}");
}
