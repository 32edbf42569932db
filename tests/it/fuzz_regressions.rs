//! Fuzzing results kept in the normal suite: every committed crash input
//! (`tests/fuzz-regressions/<target>/`) and every seed (`fuzz/seeds/<target>/`)
//! replayed through the same entry points the cargo-fuzz targets call
//! (`strata::fuzzing`), whose invariants panic on a defect.

use std::path::{Path, PathBuf};

use strata::fuzzing;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (target, file) for every file under `dir/<target>/`; an unknown target
/// directory fails, so a renamed target cannot silently drop its inputs.
fn inputs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(targets) = std::fs::read_dir(dir) else { return out };
    for t in targets {
        let t = t.unwrap();
        if !t.file_type().unwrap().is_dir() {
            continue;
        }
        let name = t.file_name().to_string_lossy().into_owned();
        assert!(fuzzing::TARGETS.contains(&name.as_str()), "{} is no fuzz target", name);
        for f in std::fs::read_dir(t.path()).unwrap() {
            let f = f.unwrap().path();
            if f.file_name().is_some_and(|n| n != "README.md") {
                out.push((name.clone(), f));
            }
        }
    }
    out.sort();
    out
}

/// Time one input may take: the campaign's `timeout-*` and `slow-unit-*`
/// inputs each took seconds under the fuzzer and take milliseconds now; a
/// bound far above that (the machine is shared) still catches a hang or a
/// return of the slowness.
const MAX_INPUT_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs each input, catching panics so one failure names its file, and
/// fails on an input slower than [`MAX_INPUT_TIME`].
fn replay(all: &[(String, PathBuf)]) {
    let scanner = fuzzing::scanner();
    let mut failed = Vec::new();
    for (target, file) in all {
        let data = std::fs::read(file).unwrap();
        let start = std::time::Instant::now();
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert!(fuzzing::run(target, &data, &scanner));
        }));
        let took = start.elapsed();
        if ok.is_err() {
            failed.push(format!("{target}: {}", file.display()));
        } else if took > MAX_INPUT_TIME {
            failed.push(format!("{target}: {} took {took:?}", file.display()));
        }
    }
    assert!(failed.is_empty(), "inputs that still fail:\n{}", failed.join("\n"));
}

#[test]
fn fuzz_crash_inputs_replay_clean() {
    let all = inputs(&root().join("tests/fuzz-regressions"));
    replay(&all);
}

#[test]
fn fuzz_seeds_are_current_and_replay_clean() {
    let dir = root().join("fuzz/seeds");
    let bless = std::env::var_os("STRATA_BLESS_FUZZ_SEEDS").is_some();
    for (target, name, bytes) in fuzzing::seeds() {
        let path = dir.join(target).join(name);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == bytes,
            "{} is stale: rerun with STRATA_BLESS_FUZZ_SEEDS=1",
            path.display()
        );
    }
    let all = inputs(&dir);
    for t in fuzzing::TARGETS {
        assert!(all.iter().any(|(target, _)| target == t), "no seed for {t}");
    }
    replay(&all);
}

/// The seeds reach the detectors: the fake token is found in each nested
/// archive seed, and the whole-scan seed reports it.
#[test]
fn fuzz_seeds_reach_the_detectors() {
    let scanner = fuzzing::scanner();
    for (target, name, bytes) in fuzzing::seeds() {
        if target != "nested_archive" {
            continue;
        }
        let mut cs = strata::scan::content::ContentScanner::new(&scanner, Default::default());
        let hits = cs.scan_file("/app/lib/app.jar", &mut bytes.as_slice()).unwrap();
        assert!(
            hits.iter().any(|h| h.hit.secret.expose() == fuzzing::FAKE_TOKEN.as_bytes()),
            "{name}: token not found"
        );
    }
    let (_, _, archive) =
        fuzzing::seeds().into_iter().find(|(t, _, _)| *t == "scan_archive").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    std::fs::write(&path, archive).unwrap();
    let (code, json, _) = crate::util::scan_json(&path, &["--no-cache"]);
    assert_eq!(code, 1, "{json}");
    let redacted = json["findings"][0]["redacted"].as_str().unwrap();
    assert!(redacted.starts_with("hf_F") && !redacted.contains("EXAMPLE"), "{redacted}");
}
