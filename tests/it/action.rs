//! The GitHub Action's scan step (`action/scan.sh`), run here as the action runs it: with the
//! action's environment, a GITHUB_OUTPUT file, and the built strata on STRATA_BIN.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> PathBuf {
    std::env::var_os("STRATA_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_strata")))
}

/// Runs the step; returns (exit code, stdout+stderr, GITHUB_OUTPUT contents).
fn step(dir: &Path, image: &str, envs: &[(&str, &str)]) -> (i32, String, String) {
    let outputs = dir.join("github_output");
    std::fs::write(&outputs, "").unwrap();
    let o = Command::new("bash")
        .arg(repo().join("action/scan.sh"))
        .current_dir(dir)
        .env("STRATA_BIN", bin())
        .env("STRATA_IMAGE", image)
        .env("GITHUB_OUTPUT", &outputs)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let log =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), log, std::fs::read_to_string(&outputs).unwrap())
}

#[test]
fn action_scan_step_writes_sarif_outputs_and_gates() {
    let dir = tmp();
    let leaky = repo().join("corpus/real/leaky-app.docker.tar");
    let leaky = leaky.to_str().unwrap();
    let (code, log, outputs) = step(dir.path(), leaky, &[("STRATA_FAIL_ON", "high")]);
    assert_eq!(code, 1, "{log}");
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("strata.sarif")).unwrap()).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap().len();
    assert!(results > 0);
    assert!(outputs.contains(&format!("findings={results}\n")), "{outputs}");
    assert!(outputs.contains("exit-code=1\n"), "{outputs}");

    // Deferred failure: the step passes so the SARIF can be uploaded, and reports the code.
    let (code, _, outputs) = step(
        dir.path(),
        leaky,
        &[("STRATA_DEFER_FAILURE", "true"), ("STRATA_SARIF", "out/x.sarif")],
    );
    assert_eq!(code, 0);
    assert!(outputs.contains("exit-code=1"), "{outputs}");

    // A gate above every finding passes; extra arguments reach strata.
    let (code, log, outputs) =
        step(dir.path(), leaky, &[("STRATA_FAIL_ON", "critical"), ("STRATA_ARGS", "--final-only")]);
    let json = scan_json_plain(leaky, &["--final-only"]);
    let critical =
        json["findings"].as_array().unwrap().iter().filter(|f| f["severity"] == "critical").count();
    assert_eq!(code, i32::from(critical > 0), "{log}");
    let total = json["findings"].as_array().unwrap().len();
    assert!(outputs.contains(&format!("findings={total}\n")), "{outputs}");
}

fn scan_json_plain(target: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["scan", "--format", "json", target];
    args.extend_from_slice(extra);
    serde_json::from_str(&parts(&run(&args)).1).unwrap()
}

#[test]
fn action_scan_step_reports_what_it_cannot_scan() {
    let dir = tmp();
    // Not a path, and no engine answers for it: exit 2, never a clean pass.
    let (code, log, outputs) = step(
        dir.path(),
        "no-such-image:latest",
        &[("DOCKER_HOST", &format!("unix://{}/none.sock", dir.path().display()))],
    );
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("no-such-image"), "{log}");
    assert!(!outputs.contains("exit-code=0"));
}

#[test]
fn action_definition_wires_the_scripts() {
    let action = std::fs::read_to_string(repo().join("action.yml")).unwrap();
    for needle in [
        "using: composite",
        "action/install.sh",
        "action/scan.sh",
        "github/codeql-action/upload-sarif",
        "STRATA_FAIL_ON: ${{ inputs.fail-on }}",
    ] {
        assert!(action.contains(needle), "action.yml: {needle}");
    }
    let script = std::fs::read_to_string(repo().join("action/scan.sh")).unwrap();
    for var in
        ["STRATA_IMAGE", "STRATA_FAIL_ON", "STRATA_SARIF", "STRATA_ARGS", "STRATA_DEFER_FAILURE"]
    {
        assert!(script.contains(var) && action.contains(&format!("{var}:")), "{var}");
    }
}
