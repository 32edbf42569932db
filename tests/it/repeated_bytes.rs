//! Bytes an image holds more than once are scanned once per run (the
//! content memo, `scan::memo`) and still reported wherever they are:
//! `RUN chown -R` and `RUN chmod -R` copy every file they touch into a
//! layer of their own, and a tree may hold one file under several names.
//! Every copy is a finding in its own layer, and the summary counts what
//! each copy set aside, whichever worker scanned the bytes first.

use std::path::Path;

use crate::engines::{Dockerd, busybox_rootfs, messages};
use crate::util::*;

/// The settings file, twice in the build context.
fn settings() -> String {
    format!(
        "# fake test settings\nDEPLOY_KEY = {}\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n\
         DB_PASSWORD=changeme\nAPI_TOKEN=${{API_TOKEN}}\n",
        canary(424_242)
    )
}

fn context(dir: &Path) -> std::path::PathBuf {
    let ctx = dir.join("ctx");
    for at in ["app/config.env", "app/copy/config.env"] {
        let p = ctx.join(at);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, settings()).unwrap();
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nCOPY app /app\nRUN chown -R 1000:1000 /app\nRUN chmod -R go-rwx /app\n",
    )
    .unwrap();
    ctx
}

#[test]
fn every_copy_of_repeated_bytes_is_reported_and_counted() {
    let work = tmp();
    let base = busybox_rootfs(work.path());
    let ctx = context(work.path());
    let archive = work.path().join("repeated.tar");
    Dockerd::start().import_build_save(&base, &ctx, "repeated:1", &archive);

    let mut runs = Vec::new();
    for threads in ["1", "2"] {
        let (code, json, err) = scan_json(&archive, &["--threads", threads, "--show-secrets"]);
        assert_eq!(code, 1, "{err}");
        assert!(messages(&json, "error").is_empty(), "{json:#}");
        runs.push(json);
    }
    let json = &runs[0];
    let mut copies: Vec<(String, u64)> = findings_of(json, "test-canary")
        .iter()
        .map(|f| {
            assert_eq!(f["secret"], canary(424_242), "{f:#}");
            (f["path"].as_str().unwrap().to_owned(), f["layer_index"].as_u64().unwrap())
        })
        .collect();
    copies.sort();
    let want: Vec<(String, u64)> = ["/app/config.env", "/app/copy/config.env"]
        .iter()
        .flat_map(|p| (1..=3).map(move |layer| (p.to_string(), layer)))
        .collect();
    assert_eq!(copies, want, "one finding per copy, in the layer that holds it");
    // The documented example key, set aside once per copy (six copies).
    let suppressed = &json["summary"]["suppressed"];
    assert_eq!(suppressed["documented example credentials"], 6, "{suppressed:#}");
    assert_eq!(runs[1]["findings"], json["findings"], "--threads 2 vs 1");
    assert_eq!(runs[1]["summary"], json["summary"], "--threads 2 vs 1");
}
