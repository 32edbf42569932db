//! Test support: the binary under test, temp dirs, JSON helpers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub(crate) use crate::imagegen::{self as ig, Compression, Entry, Format, ImageSpec, Layer};

/// The binary: `STRATA_TEST_BIN` retargets the suite at another build.
pub fn strata() -> Command {
    let bin = std::env::var_os("STRATA_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_strata")));
    let mut c = Command::new(bin);
    c.env_remove("NO_COLOR").stdin(Stdio::null());
    c
}

/// Runs strata with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    strata().args(args).output().expect("strata runs")
}

/// Exit code, stdout, stderr.
pub fn parts(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The test-only canary rule file.
pub fn canary_rules() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/canary.toml").to_owned()
}

/// Scans with the canary rule added and returns (code, parsed JSON, stderr).
pub fn scan_json(target: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let rules = canary_rules();
    let t = target.to_str().unwrap();
    let mut args = vec!["scan", "--format", "json", "--signatures", &rules, t];
    args.extend_from_slice(extra);
    let o = run(&args);
    let (code, out, err) = parts(&o);
    let json =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}\n{err}"));
    (code, json, err)
}

/// One line per finding (rule, path, layer, status), for assertion messages.
pub fn finding_lines(findings: &[serde_json::Value]) -> Vec<String> {
    findings
        .iter()
        .map(|f| format!("{} {} {} {}", f["rule_id"], f["path"], f["layer_index"], f["status"]))
        .collect()
}

/// Findings of one rule, as (path, layer_index, status, removed_in_layer, line).
pub fn findings_of(json: &serde_json::Value, rule: &str) -> Vec<serde_json::Value> {
    json["findings"].as_array().unwrap().iter().filter(|f| f["rule_id"] == rule).cloned().collect()
}

/// The platform of every image of a report, in report order.
pub fn platforms(json: &serde_json::Value) -> Vec<String> {
    json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["platform"].as_str().unwrap().to_owned())
        .collect()
}

/// A fresh temp dir.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The archive path to write a format to inside `dir`.
pub fn out_path(dir: &Path, format: Format, name: &str) -> PathBuf {
    match format {
        Format::OciDir => dir.join(format!("{name}-oci")),
        _ => dir.join(format!("{name}.tar")),
    }
}

/// Every archive format.
pub const FORMATS: [Format; 4] =
    [Format::DockerLegacy, Format::DockerOci, Format::OciDir, Format::OciArchive];

/// A canary value unique to `n`.
pub fn canary(n: u32) -> String {
    format!("CANARY_{:012}", n)
}

/// A layer with one file holding a canary on line 2.
pub fn canary_file(path: &str, n: u32) -> Entry {
    Entry::file(path, format!("# config\nkey = {}\n", canary(n)))
}

/// Every file under `dir`, as layer entries under the image directory `at` (`""`: the root),
/// sorted by path.
pub fn tree(dir: &Path, at: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_str().unwrap();
                let path = if at.is_empty() { rel.to_owned() } else { format!("{at}/{rel}") };
                out.push(Entry::file(&path, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort_by_key(|e| match e {
        Entry::File { path, .. } => path.clone(),
        _ => String::new(),
    });
    out
}

/// Runs `program` with `args` in `dir` (and `env` set): false when it is not installed, so
/// the test can say it skips; a run that fails fails the test with its stderr.
pub fn ran(program: &str, args: &[&str], dir: &Path, env: &[(&str, &Path)]) -> bool {
    let mut c = Command::new(program);
    c.args(args).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    match c.output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => panic!("{program} {args:?}: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => false,
    }
}

/// Runs `program` (found on PATH, else the test says what to install) in `dir` and
/// returns its stdout; the test fails with its stderr when it fails.
pub fn tool(dir: &Path, program: &str, args: &[&str]) -> Vec<u8> {
    let o = Command::new(crate::engines::need(program)).args(args).current_dir(dir).output();
    let o = o.unwrap();
    assert!(o.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// `n` bytes of lowercase words from a xorshift started at `seed`: text no compressor
/// shrinks much and no decoder takes for an encoded value.
pub fn noise_words(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 27 {
                26 => b' ',
                c => b'a' + c as u8,
            }
        })
        .collect()
}
