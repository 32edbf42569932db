//! How much of each layer a scan read: `images[].layers[].read` in the JSON
//! report (`complete`, `partial`, `none`), the human report's `incomplete:`
//! lines, SARIF's `executionSuccessful`, the HTML timeline, and the cache, which keeps only
//! layers read whole. The broken layers are real blobs cut or corrupted
//! after GNU tar, gzip and the zip crate wrote them, in an OCI layout and
//! in a docker-save archive, scanned with one and with two threads.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;
use ig::layout::{Blob, Layout};

/// A stored zip of one member.
fn zip_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file(name, opts).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap().into_inner()
}

/// The tar GNU tar makes of `files` (written under `dir/name`).
fn gnu_tar(dir: &Path, name: &str, files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let root = dir.join(name);
    for (path, data) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let names: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
    tool(&root, "tar", &[&["--mtime=@0", "--sort=name", "-cf", "-"][..], &names].concat())
}

/// One layer as stored: its blob, media type and the diff_id of its whole tar.
struct Stored {
    blob: Vec<u8>,
    media_type: &'static str,
    diff_id: String,
}

/// Four layers, one of each kind:
/// 0. whole (gzip): `complete`;
/// 1. a gzip cut in the middle of a big file: `partial`, what came before reported;
/// 2. a gzip cut inside its first block, before any entry: `none`;
/// 3. whole, but a zip nested past the depth limit is not opened: `partial`.
fn layers(dir: &Path) -> Vec<Stored> {
    let gzip = |tar: &[u8], name: &str| {
        std::fs::write(dir.join(name), tar).unwrap();
        tool(dir, "gzip", &["-n", "-c", name])
    };
    let whole = gnu_tar(dir, "l0", &[("app/ok.conf", format!("key = {}\n", canary(501)).into())]);
    let big = [
        format!("token = {}\n", canary(503)).into_bytes(),
        noise_words(3 << 20, 0x2545_f491_4f6c_dd1d),
    ]
    .concat();
    let cut = gnu_tar(
        dir,
        "l1",
        &[
            ("app/a.conf", format!("key = {}\n", canary(502)).into()),
            ("app/b.txt", big),
            ("app/c.conf", format!("key = {}\n", canary(504)).into()),
        ],
    );
    let early =
        gnu_tar(dir, "l2", &[("app/never.conf", format!("key = {}\n", canary(505)).into())]);
    let deep = zip_of(
        "l2.zip",
        &zip_of("l3.zip", &zip_of("l4.zip", &zip_of("deep.conf", b"nothing here\n"))),
    );
    let nested = gnu_tar(
        dir,
        "l3",
        &[("app/deep.zip", deep), ("app/d.conf", format!("key = {}\n", canary(506)).into())],
    );
    let cut_gz = gzip(&cut, "l1.tar");
    let early_gz = gzip(&early, "l2.tar");
    vec![
        Stored {
            blob: gzip(&whole, "l0.tar"),
            media_type: ig::MT_OCI_LAYER_GZIP,
            diff_id: ig::sha256_digest(&whole),
        },
        Stored {
            blob: cut_gz[..cut_gz.len() / 2].to_vec(),
            media_type: ig::MT_OCI_LAYER_GZIP,
            diff_id: ig::sha256_digest(&cut),
        },
        Stored {
            // The 10-byte gzip header and 2 bytes of deflate data: no tar header decodes.
            blob: early_gz[..12].to_vec(),
            media_type: ig::MT_OCI_LAYER_GZIP,
            diff_id: ig::sha256_digest(&early),
        },
        Stored {
            blob: gzip(&nested, "l3.tar"),
            media_type: ig::MT_OCI_LAYER_GZIP,
            diff_id: ig::sha256_digest(&nested),
        },
    ]
}

/// The layers in an OCI layout.
fn oci(dir: &Path, layers: &[Stored]) -> PathBuf {
    let layout = Layout::new(&dir.join("oci")).unwrap();
    let blobs: Vec<Blob> = layers
        .iter()
        .map(|l| {
            let (digest, size) = layout.put(&l.blob).unwrap();
            Blob { digest, size, diff_id: l.diff_id.clone(), media_type: l.media_type }
        })
        .collect();
    layout.image(&blobs, None, None).unwrap()
}

/// The layers in a classic docker-save archive (`lN/layer.tar`, `c.json`, `manifest.json`).
fn docker_save(dir: &Path, layers: &[Stored]) -> PathBuf {
    let path = dir.join("save.tar");
    let names: Vec<String> = (0..layers.len()).map(|i| format!("l{i}/layer.tar")).collect();
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config": "c.json", "RepoTags": ["t:1"], "Layers": names}]),
    )
    .unwrap();
    let mut members: Vec<(&str, &[u8])> =
        names.iter().map(String::as_str).zip(layers.iter().map(|l| &l.blob[..])).collect();
    members.push(("c.json", &config));
    members.push(("manifest.json", &manifest));
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    b.finish().unwrap();
    path
}

/// Scans `target` with the canary rule: exit code, stdout, stderr.
fn scan(target: &Path, args: &[&str]) -> (i32, String, String) {
    let rules = canary_rules();
    let mut all = vec!["scan", "--signatures", &rules, target.to_str().unwrap()];
    all.extend_from_slice(args);
    parts(&run(&all))
}

fn reads(json: &Value) -> Vec<String> {
    json["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["read"].as_str().unwrap().to_owned())
        .collect()
}

fn canaries(json: &Value) -> Vec<String> {
    let mut v: Vec<String> = findings_of(json, "test-canary")
        .iter()
        .map(|f| format!("{} {}", f["layer_index"], f["path"].as_str().unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn each_layer_says_how_much_of_it_was_read() {
    let dir = tmp();
    let layers = layers(dir.path());
    let targets = [oci(dir.path(), &layers), docker_save(dir.path(), &layers)];
    for target in &targets {
        let mut outputs = Vec::new();
        for threads in ["1", "2"] {
            let at = format!("{}, {threads} threads", target.display());
            let (code, out, err) = scan(target, &["--format", "json", "--threads", threads]);
            assert_eq!(code, 2, "{at}: {err}");
            let json: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(reads(&json), ["complete", "partial", "none", "partial"], "{at}: {err}");
            assert_eq!(
                canaries(&json),
                ["0 /app/ok.conf", "1 /app/a.conf", "1 /app/b.txt", "3 /app/d.conf"],
                "{at}"
            );
            // Each layer not read whole has its error, naming it; the complete one none.
            let errors = crate::engines::messages(&json, "error");
            for (layer, says) in [
                (1, "the layer was read only up to there"),
                (2, "truncated compressed stream"),
                (3, "depth limit (3 levels)"),
            ] {
                assert!(
                    errors
                        .iter()
                        .any(|e| e.contains(&format!("layer {layer}")) && e.contains(says)),
                    "{at}: layer {layer}: {errors:#?}"
                );
            }
            assert!(!errors.iter().any(|e| e.contains("layer 0")), "{at}: {errors:#?}");
            outputs.push(out);
        }
        assert_eq!(
            outputs[0],
            outputs[1],
            "{}: the same report for every --threads",
            target.display()
        );
    }
}

#[test]
fn human_sarif_and_html_reports_name_the_incomplete_scan() {
    let dir = tmp();
    let target = oci(dir.path(), &layers(dir.path()));
    let (code, out, err) = scan(&target, &["--color", "never"]);
    assert_eq!(code, 2, "{err}");
    let incomplete: Vec<&str> = out.lines().filter(|l| l.contains("incomplete")).collect();
    assert_eq!(incomplete.len(), 4, "{out}");
    assert!(incomplete[0].starts_with("  incomplete: layer 1  sha256:"), "{out}");
    assert!(
        incomplete[0]
            .ends_with("  read only in part: the rest of it was not scanned (the errors say why)")
    );
    assert!(incomplete[1].starts_with("  incomplete: layer 2  sha256:"), "{out}");
    assert!(incomplete[1].ends_with("  not read: nothing in it was scanned (the errors say why)"));
    assert!(incomplete[2].starts_with("  incomplete: layer 3  sha256:"), "{out}");
    assert_eq!(incomplete[3], "incomplete: 2 layers read only in part, 1 layer not read", "{out}");

    let sarif = dir.path().join("out.sarif");
    let (code, _, err) = scan(&target, &["--format", "sarif", "-o", sarif.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    let inv = &doc["runs"][0]["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false, "{inv:#}");
    let notes = inv["toolExecutionNotifications"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n["level"] == "error"
                && n["message"]["text"].as_str().unwrap().contains("layer 2")),
        "{inv:#}"
    );
    let problems = crate::reports::sarif_problems(&sarif);
    assert!(problems.is_empty(), "{problems:#?}");

    // The HTML timeline marks the layers before their instructions, as the browser draws it.
    let html = dir.path().join("out.html");
    let (code, _, err) = scan(&target, &["--format", "html", "-o", html.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let dom = crate::incident_reports::dom(&html, "");
    let marks: Vec<&str> =
        dom.match_indices("<b class=\"unread\">").map(|(i, _)| &dom[i..]).collect();
    assert_eq!(marks.len(), 3, "{dom}");
    for (mark, words) in marks.iter().zip(["read only in part", "not read", "read only in part"]) {
        assert!(mark.starts_with(&format!("<b class=\"unread\">{words} — </b>")), "{mark:.80}");
    }
}

/// Only layers read whole are cached: a rescan reads the others again, with
/// the same errors and the same `read` values, and never reports them clean.
#[test]
fn only_complete_layers_are_cached() {
    let dir = tmp();
    let target = oci(dir.path(), &layers(dir.path()));
    let cache = dir.path().join("cache");
    let c = cache.to_str().unwrap();
    let (code, first, err) = scan(&target, &["--format", "json", "--cache-dir", c]);
    assert_eq!(code, 2, "{err}");
    let entries: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "only layer 0 is stored: {entries:?}");
    for threads in ["1", "2"] {
        let (code, again, err) =
            scan(&target, &["--format", "json", "--cache-dir", c, "--threads", threads]);
        assert_eq!(code, 2, "{err}");
        let (first, again): (Value, Value) =
            (serde_json::from_str(&first).unwrap(), serde_json::from_str(&again).unwrap());
        assert_eq!(reads(&again), ["complete", "partial", "none", "partial"]);
        assert_eq!(canaries(&again), canaries(&first));
        assert_eq!(
            crate::engines::messages(&again, "error"),
            crate::engines::messages(&first, "error")
        );
    }
}

/// A layer whose blob the image does not ship is `none`, in every archive
/// format, and its error names it; the layers around it are `complete`.
#[test]
fn a_missing_blob_is_a_layer_not_read() {
    let dir = tmp();
    let spec = ImageSpec {
        layers: vec![
            Layer::new("ADD a /", vec![canary_file("a.conf", 511)]),
            Layer::new("ADD b /", vec![canary_file("b.conf", 512)]),
            Layer::new("ADD c /", vec![canary_file("c.conf", 513)]),
        ],
        ..ImageSpec::default()
    };
    for format in FORMATS {
        let path = out_path(dir.path(), format, &format!("{format:?}"));
        ig::write_image_with(&spec, format, &path, ig::Fault::MissingBlob(1)).unwrap();
        let (code, out, err) = scan(&path, &["--format", "json"]);
        assert_eq!(code, 2, "{format:?}: {err}");
        let json: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(reads(&json), ["complete", "none", "complete"], "{format:?}: {err}");
        assert_eq!(canaries(&json), ["0 /a.conf", "2 /c.conf"], "{format:?}");
        let errors = crate::engines::messages(&json, "error");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("layer 1 (") && e.contains("missing from the archive")),
            "{format:?}: {errors:#?}"
        );
    }
}

/// A blob listed twice is scanned once, at its last listing: both listings
/// carry that scan's `read`, whatever the other layers'.
#[test]
fn a_repeated_blob_has_the_read_of_its_last_listing() {
    let dir = tmp();
    let layers = layers(dir.path());
    let layout = Layout::new(&dir.path().join("repeated")).unwrap();
    let blob = |l: &Stored| {
        let (digest, size) = layout.put(&l.blob).unwrap();
        Blob { digest, size, diff_id: l.diff_id.clone(), media_type: l.media_type }
    };
    let (whole, cut) = (blob(&layers[0]), blob(&layers[1]));
    let target = layout.image(&[cut.clone(), whole.clone(), cut, whole], None, None).unwrap();
    for threads in ["1", "2"] {
        let (code, out, err) = scan(&target, &["--format", "json", "--threads", threads]);
        assert_eq!(code, 2, "{err}");
        let json: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(reads(&json), ["partial", "complete", "partial", "complete"], "{err}");
        assert_eq!(canaries(&json), ["2 /app/a.conf", "2 /app/b.txt", "3 /app/ok.conf"]);
    }
}
