//! Bad input: each case gets a clear message naming the file and the
//! problem and exit code 2, or a warning and the rest of the scan.

use std::path::Path;

use crate::util::*;

fn spec() -> ImageSpec {
    ImageSpec {
        layers: vec![
            Layer::new("COPY a /", vec![canary_file("a.conf", 1)]),
            Layer::new(
                "COPY b /",
                vec![
                    canary_file("b.conf", 2),
                    Entry::Text { path: "filler.txt".into(), size: 200_000, seed: 9 },
                ],
            ),
        ],
        ..ImageSpec::default()
    }
}

fn scan_plain(target: &Path) -> (i32, String, String) {
    scan_plain_with(target, &[])
}

fn scan_plain_with(target: &Path, extra: &[&str]) -> (i32, String, String) {
    let rules = canary_rules();
    let mut args =
        vec!["scan", "--format", "json", "--signatures", &rules, target.to_str().unwrap()];
    args.extend_from_slice(extra);
    parts(&run(&args))
}

#[test]
fn faults_in_metadata_are_errors_naming_the_problem() {
    let dir = tmp();
    let cases: Vec<(Format, ig::Fault, &str)> = vec![
        (Format::OciArchive, ig::Fault::MissingBlob(1), "missing"),
        (Format::OciDir, ig::Fault::MissingBlob(0), "missing"),
        (Format::DockerLegacy, ig::Fault::MissingBlob(1), "missing"),
        (Format::OciArchive, ig::Fault::CorruptManifestJson, "corrupt JSON"),
        (Format::OciArchive, ig::Fault::CorruptConfigJson, "corrupt JSON"),
        (Format::OciArchive, ig::Fault::CorruptIndexJson, "index.json: corrupt JSON"),
        (Format::OciDir, ig::Fault::CorruptIndexJson, "index.json: corrupt JSON"),
        (Format::DockerLegacy, ig::Fault::CorruptManifestJson, "manifest.json: corrupt JSON"),
        (Format::DockerLegacy, ig::Fault::CorruptConfigJson, "corrupt JSON"),
        (
            Format::OciArchive,
            ig::Fault::OmitPath("index.json".into()),
            "no index.json or manifest.json",
        ),
    ];
    for (i, (format, fault, words)) in cases.into_iter().enumerate() {
        let path = out_path(dir.path(), format, &format!("fault{i}"));
        ig::write_image_with(&spec(), format, &path, fault.clone()).unwrap();
        let (code, _, err) = scan_plain(&path);
        assert_eq!(code, 2, "{fault:?}: {err}");
        assert!(err.contains(words), "{fault:?}: {err}");
        assert!(err.contains(path.to_str().unwrap()), "{fault:?} must name the file: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn truncated_layer_is_an_error_but_other_layers_are_scanned() {
    let dir = tmp();
    for format in [Format::OciArchive, Format::DockerLegacy] {
        let path = out_path(dir.path(), format, "trunc");
        ig::write_image_with(&spec(), format, &path, ig::Fault::TruncateLayer(1)).unwrap();
        let (code, out, err) = scan_plain(&path);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("layer 1") && err.contains("truncated"), "{err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let found = findings_of(&json, "test-canary");
        assert!(found.iter().any(|f| f["path"] == "/a.conf"), "layer 0 still scanned: {json:#}");
    }
}

#[test]
fn digest_mismatches_are_warnings() {
    let dir = tmp();
    for (fault, words) in [
        (ig::Fault::WrongLayerDigest(0), "digest mismatch"),
        (ig::Fault::WrongDiffId(1), "diff_id mismatch"),
    ] {
        let path = dir.path().join(format!("{fault:?}.tar").replace(['(', ')'], ""));
        ig::write_image_with(&spec(), Format::OciArchive, &path, fault.clone()).unwrap();
        let (code, out, err) = scan_plain(&path);
        assert_eq!(code, 1, "{fault:?}: findings, not an error: {err}");
        assert!(err.contains("warning") && err.contains(words), "{fault:?}: {err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(findings_of(&json, "test-canary").len(), 2);
        // The blob digest is always checked; the diff_id only unless declined.
        let (_, _, err) = scan_plain_with(&path, &["--no-diff-id-check"]);
        assert!(!err.contains("diff_id mismatch"), "{err}");
        assert_eq!(err.contains("digest mismatch"), words == "digest mismatch", "{err}");
    }
}

/// A manifest whose layer descriptors state wrong sizes (0, or a few bytes more): the blobs
/// are read whole as before, and each mismatch is now a warning naming the layer (it was
/// silent; containerd refuses such a blob).
#[test]
fn descriptor_size_mismatches_are_warnings() {
    let dir = tmp();
    let path = out_path(dir.path(), Format::OciDir, "sizes");
    ig::write_image(&spec(), Format::OciDir, &path).unwrap();
    let blob = |digest: &str| path.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.join("index.json")).unwrap()).unwrap();
    let old = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&old)).unwrap()).unwrap();
    let second = manifest["layers"][1]["size"].as_u64().unwrap();
    manifest["layers"][0]["size"] = 0.into();
    manifest["layers"][1]["size"] = (second + 7).into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = ig::sha256_digest(&bytes);
    std::fs::write(blob(&digest), &bytes).unwrap();
    index["manifests"][0]["digest"] = digest.into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(path.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let (code, out, err) = scan_plain(&path);
    assert_eq!(code, 1, "{err}");
    for (layer, says) in [(0, "says 0 bytes".to_owned()), (1, format!("says {} bytes", second + 7))]
    {
        assert!(
            err.lines().any(|l| l.contains("warning")
                && l.contains(&format!("layer {layer} ("))
                && l.contains("size mismatch")
                && l.contains(&says)),
            "layer {layer}: {err}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(findings_of(&json, "test-canary").len(), 2, "both blobs read whole");
}

#[test]
fn unusable_targets() {
    let dir = tmp();
    let empty_file = dir.path().join("empty.tar");
    std::fs::write(&empty_file, b"").unwrap();
    let random = dir.path().join("random.bin");
    let mut rng = ig::XorShift::new(42);
    let bytes: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    std::fs::write(&random, bytes).unwrap();
    let empty_dir = dir.path().join("emptydir");
    std::fs::create_dir(&empty_dir).unwrap();
    let garbage_gz = dir.path().join("garbage.gz");
    std::fs::write(&garbage_gz, [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6]).unwrap();
    let missing = dir.path().join("does-not-exist.tar");
    for (target, words) in [
        (&empty_file, "file is empty"),
        (&random, "not a tar, gzip, zstd, xz or bzip2 archive"),
        (&empty_dir, "not an OCI image layout"),
        (&garbage_gz, "gzip-compressed archive"),
        (&missing, "No such file"),
    ] {
        for cmd in ["scan", "layers"] {
            let (code, _, err) = parts(&run(&[cmd, target.to_str().unwrap()]));
            assert_eq!(code, 2, "{cmd} {target:?}: {err}");
            assert!(err.contains(target.to_str().unwrap()) && err.contains(words), "{cmd}: {err}");
        }
    }
}

#[test]
fn path_traversal_and_symlink_escapes_are_never_followed() {
    let dir = tmp();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY evil /",
            vec![
                Entry::RawName {
                    name: b"../../escape.conf".to_vec(),
                    data: canary(5).into_bytes(),
                },
                Entry::RawName {
                    name: b"/abs/inside.conf".to_vec(),
                    data: format!("k={}\n", canary(6)).into_bytes(),
                },
                Entry::Symlink { path: "etc-link".into(), target: "../../../../etc/shadow".into() },
                Entry::Symlink { path: "abs-link".into(), target: "/etc/passwd".into() },
                canary_file("ok.conf", 7),
            ],
        )],
        ..ImageSpec::default()
    };
    let path = dir.path().join("evil.tar");
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let rules = canary_rules();
    let o = strata()
        .current_dir(&work)
        .args(["scan", "--format", "json", "--signatures", &rules, path.to_str().unwrap()])
        .output()
        .unwrap();
    let (code, out, err) = parts(&o);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("escapes the layer root"), "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut paths: Vec<String> = findings_of(&json, "test-canary")
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    paths.sort();
    // `../../escape.conf` is read where containerd extracts it, under the root.
    assert_eq!(paths, ["/abs/inside.conf", "/escape.conf", "/ok.conf"]);
    // Nothing was written anywhere near the work dir.
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
    assert!(!dir.path().join("escape.conf").exists());
    // A symlink is recorded, never followed: extracting it is an error and writes nothing.
    let dest = work.join("out");
    let o = run(&[
        "extract",
        path.to_str().unwrap(),
        "--layer",
        "0",
        "/etc-link",
        "-o",
        dest.to_str().unwrap(),
    ]);
    let (code, _, err) = parts(&o);
    assert_eq!(code, 2);
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

/// A docker-save archive holding two members of one name: `docker load` keeps the last, the
/// first stays in the archive. strata read the last only (a clean layer, exit 0) and never the
/// first, which held the secret; now a repeated name is an error naming it.
#[test]
fn repeated_archive_members_are_an_error() {
    let dir = tmp();
    let plain = dir.path().join("plain.tar");
    ig::write_image(&spec(), Format::DockerLegacy, &plain).unwrap();
    // The archive again, with a second copy of its first layer member holding other bytes.
    let mut archive = tar::Archive::new(std::fs::File::open(&plain).unwrap());
    let path = dir.path().join("repeated.tar");
    let mut out = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut layer_member = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().into_owned();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        out.append_data(&mut header, &name, data.as_slice()).unwrap();
        if layer_member.is_none() && name.to_string_lossy().ends_with("layer.tar") {
            layer_member = Some(name);
        }
    }
    let name = layer_member.expect("a layer member");
    let clean: Vec<u8> = [ig::raw::file("clean.txt", b"nothing\n"), ig::raw::END.to_vec()].concat();
    let mut header = tar::Header::new_gnu();
    header.set_size(clean.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    out.append_data(&mut header, &name, clean.as_slice()).unwrap();
    out.finish().unwrap();
    drop(out);
    let (code, _, err) = scan_plain(&path);
    assert_eq!(code, 2, "{err}");
    let name = name.to_string_lossy();
    assert!(err.contains(&*name) && err.contains("holds 2 members of this name"), "{err}");
}

/// Peak resident memory of a child, from /proc while it runs (kB).
fn run_measuring_rss(args: &[&str]) -> (std::process::Output, u64) {
    let mut child = strata()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            peak = peak.max(kb);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), peak)
}

#[test]
fn two_gib_of_zeros_streams_in_flat_memory() {
    let dir = tmp();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY big /",
            vec![
                Entry::Zeros { path: "data/zeros.bin".into(), size: 2 << 30 },
                canary_file("data/after.conf", 8),
            ],
        )],
        ..ImageSpec::default()
    };
    let path = dir.path().join("zeros.tar");
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < 16 << 20, "compressed to a few MB");
    let rules = canary_rules();
    let (o, peak_kb) = run_measuring_rss(&[
        "scan",
        "--format",
        "json",
        "--signatures",
        &rules,
        path.to_str().unwrap(),
    ]);
    let (code, out, err) = parts(&o);
    assert_eq!(code, 1, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(findings_of(&json, "test-canary")[0]["path"], "/data/after.conf");
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB");
}
