//! Every input format, whole-archive compression, layer compression, path
//! style, stdin, several images per archive and multi-platform indexes.

use crate::util::*;
use std::io::Write;

fn three_layer_spec() -> ImageSpec {
    ImageSpec {
        layers: vec![
            Layer::new("ADD rootfs.tar /", vec![Entry::dir("app"), canary_file("app/a.conf", 1)]),
            Layer::new("COPY b.conf /app/", vec![canary_file("app/b.conf", 2)])
                .with_compression(Compression::None),
            Layer::new("RUN rm /app/a.conf", vec![Entry::whiteout("app/a.conf")])
                .with_compression(Compression::Zstd),
        ],
        empty_history: vec![(1, "ENV MODE=prod".into())],
        repo_tags: vec!["example.test/three:1".into()],
        ..ImageSpec::default()
    }
}

fn check_scan(json: &serde_json::Value, target: &str) {
    let found = findings_of(json, "test-canary");
    assert_eq!(found.len(), 2, "{json:#}");
    let a = found.iter().find(|f| f["path"] == "/app/a.conf").unwrap();
    assert_eq!(a["layer_index"], 0);
    assert_eq!(a["line"], 2);
    assert_eq!(a["status"], "deleted");
    assert_eq!(a["removed_in_layer"], 2);
    assert_eq!(a["created_by"], "ADD rootfs.tar /");
    assert_eq!(a["target"], target);
    let b = found.iter().find(|f| f["path"] == "/app/b.conf").unwrap();
    assert_eq!(b["layer_index"], 1);
    assert_eq!(b["status"], "present");
    assert_eq!(b["removed_in_layer"], serde_json::Value::Null);
}

#[test]
fn every_format_and_whole_archive_compression() {
    let dir = tmp();
    for format in FORMATS {
        let path = out_path(dir.path(), format, &format!("{format:?}"));
        let info = ig::write_image(&three_layer_spec(), format, &path).unwrap();
        let mut targets = vec![path.clone()];
        if format != Format::OciDir {
            for c in [Compression::Gzip, Compression::Zstd] {
                let z = dir.path().join(format!("{format:?}-{c:?}.tar.z"));
                ig::compress_whole(&path, &z, c).unwrap();
                targets.push(z);
            }
        }
        for t in targets {
            let ts = t.to_str().unwrap();
            let o = run(&["layers", "--format", "json", ts]);
            let (code, out, err) = parts(&o);
            assert_eq!(code, 0, "{ts}: {err}");
            let j: serde_json::Value = serde_json::from_str(&out).unwrap();
            let image = &j["images"][0];
            let layers = image["layers"].as_array().unwrap();
            assert_eq!(layers.len(), 3, "{ts}");
            for (i, l) in layers.iter().enumerate() {
                assert_eq!(l["index"], i);
                assert_eq!(l["diff_id"], info.diff_ids[i].as_str(), "{ts}");
            }
            if format == Format::DockerLegacy {
                assert_eq!(image["digest"], info.config_digest.as_str());
            } else {
                assert_eq!(image["digest"], info.manifest_digest.as_str());
                for (i, l) in layers.iter().enumerate() {
                    assert_eq!(l["digest"], info.layer_digests[i].as_str());
                    assert_eq!(l["size"], info.layer_sizes[i]);
                }
            }
            assert_eq!(layers[0]["created_by"], "ADD rootfs.tar /");
            assert_eq!(layers[2]["created_by"], "RUN rm /app/a.conf");
            assert_eq!(layers[0]["files"]["added"], 1);
            assert_eq!(layers[2]["files"]["deleted"], 1);
            assert_eq!(image["platform"], "linux/amd64");
            let (code, json, err) = scan_json(&t, &[]);
            assert_eq!(code, 1, "{ts}: {err}");
            check_scan(&json, ts);
        }
    }
}

#[test]
fn stdin_is_spooled() {
    let dir = tmp();
    for format in [Format::DockerLegacy, Format::OciArchive] {
        let path = out_path(dir.path(), format, "stdin");
        ig::write_image(&three_layer_spec(), format, &path).unwrap();
        let gz = dir.path().join("stdin.tar.gz");
        ig::compress_whole(&path, &gz, Compression::Gzip).unwrap();
        for input in [&path, &gz] {
            let rules = canary_rules();
            let mut child = strata()
                .args(["scan", "--format", "json", "--signatures", &rules, "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let bytes = std::fs::read(input).unwrap();
            child.stdin.take().unwrap().write_all(&bytes).unwrap();
            let o = child.wait_with_output().unwrap();
            let (code, out, err) = parts(&o);
            assert_eq!(code, 1, "{err}");
            check_scan(&serde_json::from_str(&out).unwrap(), "-");
        }
    }
}

#[test]
fn dot_slash_paths_and_several_images() {
    let dir = tmp();
    let mut a = three_layer_spec();
    a.layers = a.layers.into_iter().map(|l| l.with_path_style(ig::PathStyle::DotSlash)).collect();
    let mut b = ImageSpec {
        layers: vec![Layer::new("COPY x /", vec![canary_file("x.conf", 7)])],
        repo_tags: vec!["example.test/other:2".into()],
        ..ImageSpec::default()
    };
    b.env = vec!["PATH=/bin".into()];
    for format in FORMATS {
        let path = out_path(dir.path(), format, &format!("multi-{format:?}"));
        ig::write_images(&[a.clone(), b.clone()], format, &path).unwrap();
        let (code, json, err) = scan_json(&path, &[]);
        assert_eq!(code, 1, "{format:?}: {err}");
        assert_eq!(json["images"].as_array().unwrap().len(), 2, "{format:?}");
        let found = findings_of(&json, "test-canary");
        assert_eq!(found.len(), 3, "{format:?}: {json:#}");
        assert!(found.iter().any(|f| f["path"] == "/x.conf" && f["status"] == "present"));
        assert!(found.iter().any(|f| f["path"] == "/app/a.conf" && f["status"] == "deleted"));
    }
}

#[test]
fn multi_platform_indexes() {
    let dir = tmp();
    let amd = ImageSpec {
        layers: vec![Layer::new("COPY a /", vec![canary_file("amd.conf", 11)])],
        ..ImageSpec::default()
    };
    let arm = ImageSpec {
        layers: vec![Layer::new("COPY a /", vec![canary_file("arm.conf", 12)])],
        architecture: "arm64".into(),
        variant: Some("v8".into()),
        ..ImageSpec::default()
    };
    for layout in
        [ig::IndexLayout::Flat, ig::IndexLayout::Nested, ig::IndexLayout::NestedWithAttestation]
    {
        for format in [Format::OciDir, Format::OciArchive, Format::DockerOci] {
            let path = out_path(dir.path(), format, &format!("mp-{layout:?}-{format:?}"));
            ig::write_multiplatform(&[amd.clone(), arm.clone()], layout, format, &path).unwrap();
            let (code, json, err) = scan_json(&path, &[]);
            assert_eq!(code, 1, "{layout:?} {format:?}: {err}");
            assert_eq!(
                platforms(&json),
                ["linux/amd64", "linux/arm64/v8"],
                "{layout:?} {format:?}"
            );
            let found = findings_of(&json, "test-canary");
            assert!(
                found.iter().any(|f| f["path"] == "/arm.conf" && f["platform"] == "linux/arm64/v8")
            );
            let (code, json, _) = scan_json(&path, &["--platform", "linux/arm64"]);
            assert_eq!(code, 1);
            assert_eq!(json["images"].as_array().unwrap().len(), 1);
            assert_eq!(findings_of(&json, "test-canary")[0]["path"], "/arm.conf");
            let o = run(&["scan", "--platform", "linux/s390x", path.to_str().unwrap()]);
            let (code, _, err) = parts(&o);
            assert_eq!(code, 2);
            assert!(
                err.contains("no image for platform linux/s390x") && err.contains("linux/amd64"),
                "{err}"
            );
        }
    }
}
