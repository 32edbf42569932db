//! Images made by real tools (umoci 0.4.7, skopeo 1.9.3; see
//! corpus/real/README.md for every planted secret): each variant of an
//! image must give the same findings at the same places.

use std::path::PathBuf;

use crate::util::*;

fn real(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/real").join(name)
}

/// (rule id, path, layer, line, status, removed_in_layer)
type Expect = (&'static str, &'static str, u64, u64, &'static str, Option<u64>);

fn assert_findings(json: &serde_json::Value, expected: &[Expect], what: &str) {
    let findings = json["findings"].as_array().unwrap();
    for (rule, path, layer, line, status, removed) in expected {
        let hit = findings.iter().find(|f| {
            f["rule_id"] == *rule
                && f["path"] == *path
                && f["layer_index"] == *layer
                && f["line"] == *line
        });
        let Some(f) = hit else {
            let here: Vec<String> = findings
                .iter()
                .map(|f| {
                    format!(
                        "{} {} L{} line {}",
                        f["rule_id"], f["path"], f["layer_index"], f["line"]
                    )
                })
                .collect();
            panic!(
                "{what}: no {rule} at {path}:{line} in layer {layer}; found:\n{}",
                here.join("\n")
            );
        };
        assert_eq!(f["status"], *status, "{what}: {rule} {path}");
        assert_eq!(f["removed_in_layer"].as_u64(), *removed, "{what}: {rule} {path}");
    }
}

const LEAKY: &[Expect] = &[
    ("aws-access-key-id", "/app/.env", 1, 3, "deleted", Some(3)),
    ("aws-secret-access-key", "/app/.env", 1, 4, "deleted", Some(3)),
    ("github-pat-classic", "/app/.env", 1, 5, "deleted", Some(3)),
    ("postgres-uri-password", "/app/.env", 1, 6, "deleted", Some(3)),
    ("stripe-secret-key-live", "/app/config.yaml", 1, 6, "overwritten", Some(4)),
    ("rsa-private-key", "/root/.ssh/id_rsa", 2, 1, "deleted", Some(3)),
    ("npm-access-token", "/root/.npmrc", 2, 2, "present", None),
];

#[test]
fn leaky_app_in_every_variant() {
    for variant in [
        "leaky-app-oci",
        "leaky-app.docker.tar",
        "leaky-app.oci.tar",
        "leaky-app.zstd.oci.tar",
        "leaky-app.zstd-chunked.oci.tar",
        "leaky-app.uncompressed.oci.tar",
    ] {
        let (code, json, err) = scan_json(&real(variant), &[]);
        assert_eq!(code, 1, "{variant}: {err}");
        assert_findings(&json, LEAKY, variant);
        let config: Vec<&serde_json::Value> = json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["status"] == "config")
            .collect();
        let at = |loc: &str| config.iter().any(|f| f["location"] == loc);
        assert!(at("config.env"), "{variant}: Slack token in Env");
        assert!(at("history[7].created_by"), "{variant}: ENV instruction in history");
        assert!(at("history[4].created_by"), "{variant}: build arg in history");
        let slack = config.iter().find(|f| f["location"] == "config.env").unwrap();
        assert_eq!(slack["rule_id"], "slack-bot-token");
        assert_eq!(slack["layer_index"], serde_json::Value::Null);
        assert_eq!(slack["path"], serde_json::Value::Null);
        assert!(!err.contains("error"), "{variant}: {err}");
    }
}

#[test]
fn whiteouts_as_umoci_writes_them() {
    let expected: &[Expect] = &[
        ("github-pat-classic", "/srv/keys/deploy.env", 0, 2, "deleted", Some(2)),
        ("aws-access-key-id", "/srv/creds/aws_credentials", 0, 2, "deleted", Some(2)),
        ("stripe-secret-key-live", "/srv/conf/app.env", 0, 1, "overwritten", Some(2)),
        ("postgres-uri-password", "/srv/data/db.env", 0, 1, "deleted", Some(2)),
        ("slack-bot-token", "/srv/cache/token.txt", 0, 1, "deleted", Some(4)),
        ("npm-access-token", "/srv/tokens/npm-link.txt", 1, 1, "present", None),
        // Deleted in layer 2; layer 3 adds the same bytes again, a version of its own.
        ("github-pat-classic", "/root/.git-credentials", 1, 1, "deleted", Some(2)),
        ("github-pat-classic", "/root/.git-credentials", 3, 1, "present", None),
    ];
    for variant in ["whiteouts-oci", "whiteouts.docker.tar", "whiteouts.oci.tar"] {
        let (code, json, err) = scan_json(&real(variant), &[]);
        assert_eq!(code, 1, "{variant}: {err}");
        assert_findings(&json, expected, variant);
        // umoci 0.4.7 writes layer 4 without the tar end blocks; it matches its diff_id.
        assert!(err.contains("tar stream ends early"), "{variant}: {err}");
        // Without diff_id checks the short stream is still judged, by a second pass.
        let (code, again, err) = scan_json(&real(variant), &["--no-diff-id-check"]);
        assert_eq!(code, 1, "{variant}: {err}");
        assert!(err.contains("tar stream ends early"), "{variant}: {err}");
        assert_eq!(again["findings"], json["findings"]);
    }
}

#[test]
fn multiarch_index_yields_one_image_per_platform() {
    for variant in ["multiarch-oci", "multiarch.oci.tar"] {
        let (code, json, err) = scan_json(&real(variant), &[]);
        assert_eq!(code, 1, "{variant}: {err}");
        assert_eq!(platforms(&json), ["linux/amd64", "linux/arm64/v8"]);
        let f = json["findings"].as_array().unwrap();
        assert!(f.iter().any(|f| f["rule_id"] == "aws-access-key-id"
            && f["platform"] == "linux/amd64"
            && f["path"] == "/opt/deploy/credentials"
            && f["line"] == 2));
        assert!(f.iter().any(|f| f["rule_id"] == "github-pat-classic"
            && f["platform"] == "linux/arm64/v8"
            && f["path"] == "/opt/deploy/github_token"
            && f["line"] == 1));
    }
}

#[test]
fn extract_recovers_the_deleted_key_from_a_real_image() {
    let o = run(&[
        "extract",
        real("leaky-app.docker.tar").to_str().unwrap(),
        "--layer",
        "2",
        "/root/.ssh/id_rsa",
    ]);
    let (code, out, err) = parts(&o);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert_eq!(out.lines().count(), 27);
}

/// Runs a command line tool, failing the test with its stderr when it fails.
fn tool(program: &str, args: &[&str], dir: &std::path::Path) {
    let o = std::process::Command::new(program).args(args).current_dir(dir).output().unwrap();
    assert!(o.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Docker's loader takes a layer compressed with xz or bzip2 as well as gzip and zstd, and a
/// `docker save` piped through either: the skopeo docker-archive with its secret-bearing layers
/// recompressed by the `xz` and `bzip2` tools (names unchanged, as a hand-made archive keeps
/// them) gives the same findings, and a cut xz layer is an incomplete scan that names it.
#[test]
fn layers_compressed_with_xz_and_bzip2_as_docker_loads_them() {
    let dir = tmp();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let archive = real("leaky-app.docker.tar");
    tool("tar", &["-xf", archive.to_str().unwrap(), "-C", tree.to_str().unwrap()], dir.path());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree.join("manifest.json")).unwrap()).unwrap();
    let layers: Vec<String> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    // Layer 1 holds /app/.env and /app/config.yaml, layer 2 the npmrc and the ssh key.
    for (layer, program) in [(&layers[1], "xz"), (&layers[2], "bzip2")] {
        let path = tree.join(layer);
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        tool(program, &["-9", "-f", layer], &tree);
        let suffix = if program == "xz" { ".xz" } else { ".bz2" };
        std::fs::rename(tree.join(format!("{layer}{suffix}")), &path).unwrap();
    }
    let packed = dir.path().join("xz-bzip2.docker.tar");
    tool("tar", &["-cf", packed.to_str().unwrap(), "-C", tree.to_str().unwrap(), "."], dir.path());
    let (code, json, err) = scan_json(&packed, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.is_empty(), "{err}");
    assert_findings(&json, LEAKY, "xz and bzip2 layers");
    let (_, layers_json, _) =
        parts(&run(&["layers", "--format", "json", packed.to_str().unwrap()]));
    let timeline: serde_json::Value = serde_json::from_str(&layers_json).unwrap();
    assert_eq!(timeline["images"][0]["layers"][1]["files"]["added"], 2, "{timeline:#}");

    // The whole archive piped through xz, and through bzip2.
    for program in ["xz", "bzip2"] {
        tool(program, &["-k", "-f", packed.to_str().unwrap()], dir.path());
        let suffix = if program == "xz" { "xz" } else { "bz2" };
        let whole = dir.path().join(format!("xz-bzip2.docker.tar.{suffix}"));
        let (code, json, err) = scan_json(&whole, &[]);
        assert_eq!(code, 1, "{program} whole archive: {err}");
        assert_findings(&json, LEAKY, program);
    }

    // An xz layer whose dictionary is over the decoder's memory limit is not decompressed (a
    // crafted header cannot make strata allocate what it names): incomplete, and said so.
    let path = tree.join(&layers[1]);
    let plain = dir.path().join("layer1.tar");
    let o = std::process::Command::new("xz").arg("-dc").arg(&path).output().unwrap();
    std::fs::write(&plain, o.stdout).unwrap();
    let big = std::process::Command::new("xz")
        .args(["--lzma2=dict=200MiB", "-c"])
        .arg(&plain)
        .output()
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, big.stdout).unwrap();
    let over = dir.path().join("over.docker.tar");
    tool("tar", &["-cf", over.to_str().unwrap(), "-C", tree.to_str().unwrap(), "."], dir.path());
    let (code, _, err) = scan_json(&over, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("layer 1") && err.contains("128 MiB memory limit"), "{err}");

    // A cut xz layer: the scan is incomplete, and says which layer and why.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let cut = dir.path().join("cut.docker.tar");
    tool("tar", &["-cf", cut.to_str().unwrap(), "-C", tree.to_str().unwrap(), "."], dir.path());
    let (code, _, err) = scan_json(&cut, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("layer 1") && err.contains("xz compression"), "{err}");
}

/// An image copied out of a registry or an engine as a directory is read as it is: a `dir:`
/// copy by skopeo (OCI and Docker schema 2 manifests, and with `--all` a multi-platform index
/// whose manifests are `<hex>.manifest.json`), and an unpacked docker save.
#[test]
fn image_directories_written_by_skopeo_and_tar() {
    let dir = tmp();
    let at = |name: &str| dir.path().join(name);
    let oci = format!("oci-archive:{}:latest", real("leaky-app.oci.tar").display());
    let copy = |args: &[&str], to: &std::path::Path| {
        let mut all = vec!["copy", "-q"];
        all.extend_from_slice(args);
        let dest = format!("dir:{}", to.display());
        all.push(&dest);
        tool("skopeo", &all, dir.path());
    };
    copy(&[&oci], &at("oci-manifest"));
    copy(&["--format", "v2s2", &oci], &at("docker-manifest"));
    tool("mkdir", &["unpacked"], dir.path());
    let save = real("leaky-app.docker.tar");
    tool("tar", &["-xf", save.to_str().unwrap(), "-C", "unpacked"], dir.path());
    for name in ["oci-manifest", "docker-manifest", "unpacked"] {
        let (code, json, err) = scan_json(&at(name), &[]);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.is_empty(), "{name}: {err}");
        assert_findings(&json, LEAKY, name);
        let config =
            json["findings"].as_array().unwrap().iter().filter(|f| f["status"] == "config");
        assert_eq!(config.count(), 3, "{name}");
    }
    let multi = format!("oci-archive:{}", real("multiarch.oci.tar").display());
    copy(&["--all", &multi], &at("multiarch"));
    let (code, json, err) = scan_json(&at("multiarch"), &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(platforms(&json), ["linux/amd64", "linux/arm64/v8"]);

    // A blob missing from the copy, or a symlink in its place, is an incomplete scan.
    let layer = |name: &str| -> std::path::PathBuf {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(at(name).join("manifest.json")).unwrap())
                .unwrap();
        let digest = manifest["layers"][1]["digest"].as_str().unwrap();
        at(name).join(digest.strip_prefix("sha256:").unwrap())
    };
    let missing = layer("oci-manifest");
    std::fs::remove_file(&missing).unwrap();
    let (code, _, err) = scan_json(&at("oci-manifest"), &[]);
    assert_eq!(code, 2, "{err}");
    let hex = missing.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(&format!("blob {hex} is missing")), "{err}");
    let target = layer("docker-manifest");
    std::fs::rename(&target, at("outside")).unwrap();
    std::os::unix::fs::symlink(at("outside"), &target).unwrap();
    let (code, _, err) = scan_json(&at("docker-manifest"), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a symlink"), "{err}");
}

/// A copy of the real umoci layout `leaky-app-oci` in `dir`, for umoci to change.
fn umoci_copy(dir: &std::path::Path) -> PathBuf {
    let image = dir.join("img");
    tool("cp", &["-r", real("leaky-app-oci").to_str().unwrap(), image.to_str().unwrap()], dir);
    image
}

/// Manifest annotations ship with the image as its labels do: umoci writes one holding a
/// GitLab token, and it is a config-status finding at `manifest.annotations`.
#[test]
fn manifest_annotations_are_scanned() {
    let dir = tmp();
    let image = umoci_copy(dir.path());
    let token = "glpat-FAKEannTESTq7Xk2Wm01";
    let annotation =
        format!("--manifest.annotation=org.opencontainers.image.description=CI deploy key {token}");
    let at = format!("{}:latest", image.display());
    tool("umoci", &["config", "--image", &at, "--no-history", &annotation], dir.path());
    let (code, json, err) = scan_json(&image, &[]);
    assert_eq!(code, 1, "{err}");
    assert_findings(&json, LEAKY, "annotated");
    let f = json["findings"].as_array().unwrap();
    let hit =
        f.iter().find(|f| f["location"] == "manifest.annotations").expect("annotation finding");
    assert_eq!(hit["rule_id"], "gitlab-pat");
    assert_eq!(hit["status"], "config");
    assert_eq!(hit["path"], serde_json::Value::Null);
    let human = run(&["scan", image.to_str().unwrap()]);
    let (_, out, _) = parts(&human);
    assert!(out.contains("in the image manifest (visible to anyone who pulls)"), "{out}");
    assert!(!out.contains(token), "{out}");
}

/// Index annotations ship with the index: podman's `manifest annotate` writes a GitHub token
/// on a manifest list's entry, `manifest push --all` nests that list under the layout's
/// index.json, and the token is a config-status finding at the entry's JSON path. An
/// annotation of index.json itself is found at `index.annotations`.
#[test]
fn index_annotations_are_scanned() {
    use crate::engines::{Podman, check};
    let work = tmp();
    let p = Podman { root: work.path().join("storage"), runroot: work.path().join("run") };
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("notes.txt"), "nothing to see\n").unwrap();
    std::fs::write(ctx.join("Containerfile"), "FROM scratch\nCOPY notes.txt /notes.txt\n").unwrap();
    let build = ["bud", "-q", "--network", "none", "-t", "localhost/app:1"];
    check(p.cmd("buildah").args(build).arg(&ctx).output().unwrap(), "buildah bud");
    let list = "localhost/list:1";
    check(p.cmd("podman").args(["manifest", "create", list]).output().unwrap(), "create");
    let add = ["manifest", "add", list, "containers-storage:localhost/app:1"];
    check(p.cmd("podman").args(add).output().unwrap(), "manifest add");
    let inspect =
        check(p.cmd("podman").args(["manifest", "inspect", list]).output().unwrap(), "inspect");
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let instance = inspect["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let token = crate::imagegen::checksummed_token("ghp_", "FAKEidxTESTr7Kq2Wm9Xp4Lz8Vb3Nc");
    let annotation = format!("org.example.deploy-token={token}");
    let annotate = ["manifest", "annotate", "--annotation", &annotation, list, &instance];
    check(p.cmd("podman").args(annotate).output().unwrap(), "manifest annotate");
    let layout = work.path().join("layout");
    let dest = format!("oci:{}", layout.display());
    let push = ["manifest", "push", "-q", "--all", list, &dest];
    check(p.cmd("podman").args(push).output().unwrap(), "manifest push");

    let (code, json, err) = scan_json(&layout, &[]);
    assert_eq!(code, 1, "{err}");
    let f = json["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["location"], "index.manifests[0].manifests[0].annotations", "{f:#?}");
    assert_eq!(f[0]["rule_id"], "github-pat-classic");
    assert_eq!(f[0]["status"], "config");
    let human = run(&["scan", layout.to_str().unwrap()]);
    let (_, out, _) = parts(&human);
    assert!(out.contains("in the image index (visible to anyone who pulls)"), "{out}");
    assert!(!out.contains(&token), "{out}");

    // index.json is not content-addressed: anyone may annotate it, and it ships too.
    let npm = crate::imagegen::checksummed_token("npm_", "FAKEtopTESTh3Jd8Qs5Tw1Ye6Ru0Pa");
    let index_json = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_json).unwrap()).unwrap();
    index["annotations"] = serde_json::json!({"org.example.publish": npm});
    std::fs::write(&index_json, serde_json::to_vec(&index).unwrap()).unwrap();
    let (code, json, err) = scan_json(&layout, &[]);
    assert_eq!(code, 1, "{err}");
    let locations: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["location"].as_str().unwrap())
        .collect();
    assert!(locations.contains(&"index.annotations"), "{locations:?}");
    assert_eq!(locations.len(), 2, "{locations:?}");
}

/// Every string of the config ships, whatever field holds it: umoci writes a working
/// directory and a volume named after tokens, and they are config findings at their JSON
/// path. A token a standard field already shows (`Env`) is reported there only.
#[test]
fn every_config_string_is_scanned() {
    let dir = tmp();
    let image = umoci_copy(dir.path());
    let [workdir, volume, env] =
        ["glpat-FAKEwdrTESTq7Xk2Wm01", "glpat-FAKEvolTESTq7Xk2Wm01", "glpat-FAKEenvTESTq7Xk2Wm01"];
    let at = format!("{}:latest", image.display());
    let args = [
        format!("--config.workingdir=/srv/{workdir}"),
        format!("--config.volume=/data/{volume}"),
        format!("--config.env=GITLAB_TOKEN={env}"),
    ];
    let mut all = vec!["config", "--image", &at, "--no-history"];
    all.extend(args.iter().map(String::as_str));
    tool("umoci", &all, dir.path());
    let (code, json, err) = scan_json(&image, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    assert_findings(&json, LEAKY, "configured");
    let at_of = |token: &str| -> Vec<String> {
        let f = json["findings"].as_array().unwrap();
        let mut at: Vec<String> = f
            .iter()
            .filter(|f| f["secret"] == token)
            .map(|f| format!("{} {}", f["status"], f["location"]))
            .collect();
        at.sort();
        at
    };
    assert_eq!(at_of(workdir), [r#""config" "config.WorkingDir""#]);
    assert_eq!(at_of(volume), [r#""config" "config.Volumes""#]);
    assert_eq!(at_of(env), [r#""config" "config.env""#]);
}

/// A layer strata cannot read whatever its bytes says why, and the scan is incomplete: one
/// that skopeo encrypted with ocicrypt (`--encryption-key jwe:…`), and a non-distributable
/// (foreign) layer whose blob the copy leaves out. The other layers are still read.
#[test]
fn encrypted_and_foreign_layers_are_unread_and_say_why() {
    let dir = tmp();
    let at = |name: &str| dir.path().join(name);
    tool("openssl", &["genrsa", "-out", "key.pem", "2048"], dir.path());
    tool("openssl", &["rsa", "-in", "key.pem", "-pubout", "-out", "pub.pem"], dir.path());
    let oci = format!("oci-archive:{}:latest", real("leaky-app.oci.tar").display());
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--encryption-key",
            "jwe:pub.pem",
            "--encrypt-layer",
            "1",
            &oci,
            "oci:enc:1",
        ],
        dir.path(),
    );
    let (code, json, err) = scan_json(&at("enc"), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("layer 1 (sha256:"), "{err}");
    assert!(
        err.contains("an encrypted layer (application/vnd.oci.image.layer.v1.tar+gzip+encrypted)"),
        "{err}"
    );
    let errors: Vec<&serde_json::Value> =
        json["diagnostics"].as_array().unwrap().iter().filter(|d| d["level"] == "error").collect();
    assert!(errors.iter().any(|d| d["message"].as_str().unwrap().contains("encrypted layer")));
    // Layer 2's key is read; nothing of layer 1's `.env` is reported.
    assert_findings(&json, &LEAKY[5..], "encrypted");
    assert!(json["findings"].as_array().unwrap().iter().all(|f| f["layer_index"] != 1));

    let dest = format!("dir:{}", at("foreign").display());
    tool("skopeo", &["copy", "-q", "--format", "v2s2", &oci, &dest], dir.path());
    let manifest_path = at("foreign").join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let digest = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
    manifest["layers"][1]["mediaType"] =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip".into();
    manifest["layers"][1]["urls"] = serde_json::json!(["https://example.invalid/base.tar.gz"]);
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    std::fs::remove_file(at("foreign").join(digest.strip_prefix("sha256:").unwrap())).unwrap();
    let (code, json, err) = scan_json(&at("foreign"), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("layer 1 ({digest}): a non-distributable layer")), "{err}");
    assert!(!err.contains("missing from the archive"), "{err}");
    assert_findings(&json, &LEAKY[5..], "foreign");
}
