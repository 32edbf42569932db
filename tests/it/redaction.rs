//! No output, error or diagnostic prints a whole secret unless
//! `--show-secrets`: every error path is fed a known fake secret through
//! tiny crafted images (issue 9), and the secret must not appear on stdout
//! or stderr in any format. Also the output hygiene that goes with it:
//! findings budgets, terminal escaping, `extract` destinations, `-q`, and
//! strict `merge` validation.
// See: #9

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::util::*;

/// The fake secret every case hides (an AWS key id the built-in rule and
/// its validator accept).
const SECRET: &str = "AKIAQFAKETESTKEY7XYZ";

/// A PEM key flattened with literal `\n`, as in `.env` files and JSON.
fn flat_pem() -> (String, &'static str) {
    let body = "MIIEowIBAAKCAQEAFAKETESTKEYabcdefghijklmnopqrstuvwxyzABCDEFGHIJK";
    let pem = format!(
        "-----BEGIN RSA PRIVATE KEY-----\\n{}\\n-----END RSA PRIVATE KEY-----",
        [body; 6].join("\\n")
    );
    (pem, "FAKETESTKEYabcdefghijklmnop")
}

/// A tar of `(name, bytes)` regular files.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Raw names, so a test can use names tar::Builder would refuse.
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A zip with one member.
fn zip_of(member: &str, data: &[u8]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file(member, zip::write::SimpleFileOptions::default()).unwrap();
    z.write_all(data).unwrap();
    z.finish().unwrap().into_inner()
}

fn put_blob(dir: &Path, data: &[u8]) -> (String, usize) {
    let digest = ig::sha256_digest(data);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&digest[7..]), data).unwrap();
    (digest, data.len())
}

fn config(layers: &[Vec<u8>], created_by: &str) -> Value {
    let diff_ids: Vec<String> = layers.iter().map(|l| ig::sha256_digest(l)).collect();
    json!({"architecture": "amd64", "os": "linux", "config": {},
           "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "history": layers.iter().map(|_| json!({"created_by": created_by})).collect::<Vec<_>>()})
}

/// An OCI layout by hand: `config` as given, uncompressed `layers`, and
/// `manifest_extra` merged into the manifest.
fn layout(dir: &Path, config: &Value, layers: &[Vec<u8>], manifest_extra: Value) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let descs: Vec<Value> = layers
        .iter()
        .map(|l| {
            let (digest, size) = put_blob(dir, l);
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size})
        })
        .collect();
    let (cd, cn) = put_blob(dir, config.to_string().as_bytes());
    let mut manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
        "layers": descs});
    if let (Some(m), Some(extra)) = (manifest.as_object_mut(), manifest_extra.as_object()) {
        m.extend(extra.clone());
    }
    let (md, mn) = put_blob(dir, manifest.to_string().as_bytes());
    let index = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    dir.to_path_buf()
}

/// A legacy docker-save archive by hand, with `repo_tags` as given.
fn docker_save(path: &Path, layer: &[u8], repo_tags: Value) -> PathBuf {
    let cfg = config(&[layer.to_vec()], "COPY a /").to_string();
    let manifest =
        json!([{"Config": "c.json", "RepoTags": repo_tags, "Layers": ["l/layer.tar"]}]).to_string();
    let archive = tar_of(&[
        ("c.json", cfg.as_bytes()),
        ("l/layer.tar", layer),
        ("manifest.json", manifest.as_bytes()),
    ]);
    std::fs::write(path, archive).unwrap();
    path.to_path_buf()
}

/// Every crafted case: (name, target, the strings that must never be printed).
fn cases(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let ok_layer = tar_of(&[("a.txt", b"hi")]);
    let with_secret = |name: &str| format!("aws_access_key_id = {SECRET}\n# {name}\n");
    let mut out = Vec::new();
    let d = |n: &str| dir.join(n);
    // Corrupt JSON whose value is the secret: config Env, empty_layer, manifest annotations.
    let mut c = config(std::slice::from_ref(&ok_layer), "COPY a /");
    c["config"]["Env"] = json!(format!("AWS_ACCESS_KEY_ID={SECRET}"));
    out.push((
        "config Env as a string",
        layout(&d("env"), &c, std::slice::from_ref(&ok_layer), json!({})),
    ));
    let mut c = config(std::slice::from_ref(&ok_layer), "COPY a /");
    c["history"][0]["empty_layer"] = json!(SECRET);
    out.push((
        "empty_layer as a string",
        layout(&d("empty"), &c, std::slice::from_ref(&ok_layer), json!({})),
    ));
    let c = config(std::slice::from_ref(&ok_layer), "COPY a /");
    out.push((
        "annotations as a string",
        layout(&d("ann"), &c, std::slice::from_ref(&ok_layer), json!({"annotations": SECRET})),
    ));
    out.push(("RepoTags as a string", docker_save(&d("tags.tar"), &ok_layer, json!(SECRET))));
    out.push((
        "RepoTags holding the secret",
        docker_save(&d("tags2.tar"), &ok_layer, json!([format!("reg.example/app:{SECRET}")])),
    ));
    // A layer that is not a tar: its "header" bytes are the secret.
    let not_tar = with_secret("x").repeat(60).into_bytes();
    let c = config(std::slice::from_ref(&not_tar), "COPY a /");
    out.push(("layer that is not a tar", layout(&d("nontar"), &c, &[not_tar], json!({}))));
    // A layer blob whose bytes do not match its digest (checksum errors).
    let layer = tar_of(&[("app/x.txt", with_secret("bad digest").as_bytes())]);
    let c = config(std::slice::from_ref(&layer), "COPY a /");
    let bad = layout(&d("badsum"), &c, std::slice::from_ref(&layer), json!({}));
    let blob = bad.join("blobs/sha256").join(&ig::sha256_digest(&layer)[7..]);
    std::fs::write(&blob, with_secret("tampered").repeat(40)).unwrap();
    out.push(("blob that fails its checksum", bad));
    // A blob symlinked to strata's own environment (which holds the secret).
    let c = config(std::slice::from_ref(&ok_layer), "COPY a /");
    let env = layout(&d("environ"), &c, std::slice::from_ref(&ok_layer), json!({}));
    let blob = env.join("blobs/sha256").join(&ig::sha256_digest(&ok_layer)[7..]);
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", &blob).unwrap();
    out.push(("blob symlinked to /proc/self/environ", env));
    // A path, a tar entry name with a warning, a zip member and an instruction with the secret.
    let layer = tar_of(&[
        (&format!("app/{SECRET}/x.txt"), with_secret("path").as_bytes()),
        (&format!("../{SECRET}/escape.txt"), with_secret("escape").as_bytes()),
        (
            "app/lib.jar",
            &zip_of(&format!("creds/{SECRET}.properties"), with_secret("zip").as_bytes()),
        ),
    ]);
    let c = config(std::slice::from_ref(&layer), &format!("RUN echo {SECRET} > /app/x.txt"));
    out.push(("path, member and instruction", layout(&d("names"), &c, &[layer], json!({}))));
    out
}

fn all_output(args: &[&str]) -> (i32, String) {
    let o = strata().args(args).env("STRATA_TEST_ENV_SECRET", SECRET).output().unwrap();
    let (code, out, err) = parts(&o);
    (code, format!("{out}\n{err}"))
}

#[test]
fn no_error_path_prints_the_secret() {
    let dir = tmp();
    for (name, target) in cases(dir.path()) {
        let t = target.to_str().unwrap();
        for format in ["human", "json", "sarif"] {
            let (code, text) = all_output(&["scan", "--format", format, t]);
            assert!(!text.contains(SECRET), "{name} ({format}) printed the secret:\n{text}");
            assert!(!text.contains("panicked"), "{name}: {text}");
            assert!((0..=2).contains(&code), "{name} ({format}): exit {code}\n{text}");
        }
        let (_, text) = all_output(&["layers", t]);
        assert!(!text.contains(SECRET), "{name} (layers) printed the secret:\n{text}");
        // The secret is what a corrupt-JSON error must not echo: it still names the field.
        if name.contains("as a string") {
            let (code, text) = all_output(&["scan", t]);
            assert_eq!(code, 2, "{text}");
            assert!(
                text.contains("corrupt JSON") && text.contains("invalid type: string"),
                "{text}"
            );
        }
    }
    // The same images with --show-secrets do print it: the check above can fail.
    let names = dir.path().join("names");
    let (_, text) = all_output(&["scan", "--show-secrets", names.to_str().unwrap()]);
    assert!(text.contains(SECRET), "{text}");
}

#[test]
fn corrupt_json_errors_name_file_and_field() {
    let dir = tmp();
    let all = cases(dir.path());
    for (name, field) in [
        ("config Env as a string", "config.Env"),
        ("empty_layer as a string", "history[0].empty_layer"),
        ("annotations as a string", "annotations"),
        ("RepoTags as a string", "RepoTags"),
    ] {
        let target = &all.iter().find(|(n, _)| *n == name).unwrap().1;
        let (code, _, err) = parts(&run(&["scan", target.to_str().unwrap()]));
        assert_eq!(code, 2);
        assert!(err.contains(target.to_str().unwrap()) && err.contains(field), "{name}: {err}");
    }
}

#[test]
fn flattened_pem_is_redacted_to_its_armour_in_every_format() {
    let dir = tmp();
    let (pem, body) = flat_pem();
    let layer = tar_of(&[
        ("app/.env", format!("PRIVATE_KEY=\"{pem}\"\n").as_bytes()),
        ("app/sa.json", format!("{{\"private_key\": \"{pem}\"}}").as_bytes()),
    ]);
    let c = config(std::slice::from_ref(&layer), "COPY . /app");
    let target = layout(&dir.path().join("pem"), &c, &[layer], json!({}));
    let t = target.to_str().unwrap();
    for format in ["human", "json", "sarif"] {
        let (code, text) = all_output(&["scan", "--format", format, t]);
        assert_eq!(code, 1, "{text}");
        assert!(!text.contains(body), "{format} shows key material:\n{text}");
        assert!(text.contains("-----BEGIN RSA PRIVATE KEY----- …"), "{format}: {text}");
    }
}

/// A distinct fake AWS key id for each `i` (the 16 characters are base32).
fn aws_key(i: usize) -> String {
    const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..7).map(|k| char::from(B32[(i >> (5 * k)) & 31])).collect();
    format!("AKIAQFAKETEST{tail}")
}

/// `n` lines of one AWS key each (distinct keys, so nothing is deduplicated).
fn key_lines(n: usize) -> String {
    (0..n).map(|i| format!("AWS_ACCESS_KEY_ID={}\n", aws_key(i))).collect()
}

#[test]
fn findings_over_the_per_file_budget_are_counted_not_listed() {
    let dir = tmp();
    let tfstate: Vec<Value> =
        (0..300).map(|i| json!({"password": format!("Zq8Lm3Xv9Rt2Wp7K{i:05}")})).collect();
    let tfstate = json!({"resources": [{"instances": tfstate}]}).to_string();
    let layer = tar_of(&[
        ("keys.txt", key_lines(250).as_bytes()),
        ("infra/terraform.tfstate", tfstate.as_bytes()),
    ]);
    let many: Vec<String> = (0..150).map(|i| format!("K{i}={}", aws_key(i))).collect();
    let c = config(std::slice::from_ref(&layer), &format!("RUN {}", many.join(" ")));
    let target = layout(&dir.path().join("many"), &c, &[layer], json!({}));
    let (code, json, err) = scan_json(&target, &[]);
    assert_eq!(code, 1, "{err}");
    let count = |path: Option<&str>, rule: &str| {
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule_id"] == rule && f["path"].as_str() == path)
            .count()
    };
    assert_eq!(count(Some("/keys.txt"), "aws-access-key-id"), 100);
    assert_eq!(count(Some("/infra/terraform.tfstate"), "file-terraform-state-secret"), 100);
    assert_eq!(count(None, "aws-access-key-id"), 100, "per instruction too");
    let over = json["summary"]["suppressed"]["over the findings budget per rule and file"]
        .as_u64()
        .unwrap();
    assert!(over >= 150 + 200 + 50, "{:#}", json["summary"]);
    assert!(err.contains("/keys.txt: 150 more aws-access-key-id matches not listed"), "{err}");
    assert!(err.contains("history[0].created_by: 50 more aws-access-key-id"), "{err}");
    // Each finding of the instruction shares it, clipped to the per-finding budget.
    let cb = json["findings"].as_array().unwrap().iter().find(|f| f["path"].is_null()).unwrap();
    assert!(!cb["created_by"].as_str().unwrap().contains("AKIAQFAKETEST"), "{cb:#}");
}

#[test]
fn terminal_controls_in_platform_and_digests_are_escaped() {
    let dir = tmp();
    let layer = tar_of(&[("app/x.txt", key_lines(1).as_bytes())]);
    let mut c = config(std::slice::from_ref(&layer), "COPY \u{1b}[2J x /");
    c["os"] = json!("linux\u{1b}]0;pwned\u{7}");
    c["architecture"] = json!("amd64\u{202e}");
    c["variant"] = json!("v\u{9b}8");
    let target = layout(&dir.path().join("esc"), &c, &[layer], json!({}));
    for cmd in ["scan", "layers"] {
        let o = run(&[cmd, target.to_str().unwrap()]);
        let (_, out, err) = parts(&o);
        for text in [&out, &err] {
            assert!(!text.contains(['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}']), "{cmd}: {text:?}");
        }
        assert!(
            out.contains("linux\\u{1b}]0;pwned\\u{7}/amd64\\u{202e}/v\\u{9b}8"),
            "{cmd}: {out}"
        );
    }
    // A layer listed under a diff_id with control characters (legacy save names layers by it).
    let layer = tar_of(&[("app/x.txt", key_lines(1).as_bytes())]);
    let mut c = config(std::slice::from_ref(&layer), "COPY x /");
    c["rootfs"]["diff_ids"] = json!(["sha256:\u{1b}]0;t\u{7}\u{202e}"]);
    let cfg = c.to_string();
    let manifest = json!([{"Config": "c.json", "Layers": ["l/layer.tar"]}]).to_string();
    let path = dir.path().join("diffid.tar");
    std::fs::write(
        &path,
        tar_of(&[
            ("c.json", cfg.as_bytes()),
            ("l/layer.tar", &layer),
            ("manifest.json", manifest.as_bytes()),
        ]),
    )
    .unwrap();
    for cmd in ["scan", "layers"] {
        let (_, out, err) = parts(&run(&[cmd, path.to_str().unwrap()]));
        for text in [&out, &err] {
            assert!(!text.contains(['\u{1b}', '\u{7}', '\u{202e}']), "{cmd}: {text:?}");
        }
    }
}

#[test]
fn extract_never_replaces_a_link_a_fifo_or_a_directory() {
    let dir = tmp();
    let layer = tar_of(&[("app/.env", b"TOKEN=one\n")]);
    let c = config(std::slice::from_ref(&layer), "COPY . /app");
    let target = layout(&dir.path().join("img"), &c, &[layer], json!({}));
    let t = target.to_str().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let subdir = dir.path().join("sub");
    std::fs::create_dir(&subdir).unwrap();
    for (dest, what) in [(&link, "a symbolic link"), (&fifo, "a FIFO"), (&subdir, "a directory")] {
        let o = run(&["extract", t, "--layer", "0", "/app/.env", "-o", dest.to_str().unwrap()]);
        let (code, _, err) = parts(&o);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(dest.to_str().unwrap()) && err.contains(what), "{err}");
        assert!(err.contains("never replaces"), "{err}");
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    let fifo_type = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo_type));
    assert!(std::fs::symlink_metadata(&subdir).unwrap().is_dir());
    // A regular file is still replaced, and a new one created.
    let (code, _, err) =
        parts(&run(&["extract", t, "--layer", "0", "/app/.env", "-o", victim.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "TOKEN=one\n");
}

#[test]
fn quiet_still_prints_errors() {
    let dir = tmp();
    let missing = dir.path().join("missing.tar");
    let (code, out, err) = parts(&run(&["scan", "-q", missing.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(err.contains("missing.tar") && err.contains("error"), "stderr: {err:?} stdout: {out}");
}

fn merge_of(dir: &Path, doc: &Value) -> (i32, String) {
    let path = dir.join("r.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let (code, _, err) = parts(&run(&["merge", path.to_str().unwrap()]));
    (code, err)
}

#[test]
fn merge_rejects_malformed_findings_and_overflowing_counts() {
    let dir = tmp();
    let finding = json!({"rule_id": "r", "target": "t", "fingerprint": "f", "severity": "high",
                         "status": "present", "layer_index": 0, "line": 1, "path": "/x"});
    let report = |findings: Value, suppressed: u64| {
        json!({"version": 1, "images": [], "findings": findings,
               "summary": {"suppressed": {"baseline": suppressed}}, "diagnostics": []})
    };
    assert_eq!(merge_of(dir.path(), &report(json!([finding.clone()]), 1)).0, 1, "a good report");
    let mut upper = finding.clone();
    upper["severity"] = json!("High");
    let mut no_rule = finding.clone();
    no_rule.as_object_mut().unwrap().remove("rule_id");
    let mut bad_line = finding.clone();
    bad_line["line"] = json!("3");
    for (bad, words) in [
        (upper, "severity"),
        (no_rule, "rule_id"),
        (bad_line, "line"),
        (json!("not an object"), "not an object"),
    ] {
        let (code, err) = merge_of(dir.path(), &report(json!([bad]), 0));
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("r.json") && err.contains("findings[0]") && err.contains(words),
            "{err}"
        );
    }
    let a = dir.path().join("a.json");
    std::fs::write(&a, report(json!([]), u64::MAX).to_string()).unwrap();
    let o = run(&["merge", a.to_str().unwrap(), a.to_str().unwrap()]);
    let (code, _, err) = parts(&o);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("suppressed") && err.contains("overflows"), "{err}");
}
