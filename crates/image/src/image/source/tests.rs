//! Target recognition by content, on files written here: a tar plain or compressed as a
//! whole, a layout directory, and the inputs that are none of these, each refused with a
//! reason that names the target.

use std::io::Write;
use std::path::Path;

use super::*;

/// A tar holding `index.json` with `body`.
fn archive(body: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(body.len() as u64);
    b.append_data(&mut h, "index.json", body).unwrap();
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The reason `target` is refused.
fn refusal(target: &str) -> String {
    match open(target) {
        Ok(_) => panic!("{target} was opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_tar_is_read_plain_or_compressed_as_a_whole() {
    let dir = tempfile::tempdir().unwrap();
    let tar = archive(br#"{"schemaVersion":2}"#);
    let zstd = zstd::encode_all(&tar[..], 1).unwrap();
    for (name, bytes) in [("plain.tar", tar.clone()), ("a.tar.gz", gzip(&tar)), ("a.zst", zstd)] {
        let target = write(dir.path(), name, &bytes);
        let store = open(&target).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(store.contains("index.json"), "{name}");
        assert_eq!(store.read_small("index.json").unwrap(), br#"{"schemaVersion":2}"#, "{name}");
    }
}

#[test]
fn a_layout_directory_needs_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().to_str().unwrap().to_owned();
    let why = refusal(&target);
    assert!(why.starts_with(&target), "{why}");
    assert!(why.contains("not an OCI image layout (no index.json)"), "{why}");
    write(dir.path(), "index.json", b"{}");
    let store = open(&target).unwrap();
    assert_eq!(store.read_small("index.json").unwrap(), b"{}");
}

#[test]
fn what_is_no_image_container_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let tar = archive(b"{}");
    let cases = [
        ("empty", Vec::new(), "file is empty"),
        (
            "notes.txt",
            b"FAKE_EXAMPLE notes, not an archive\n".to_vec(),
            "not a tar, gzip, zstd, xz or bzip2",
        ),
        ("twice.tar.gz.gz", gzip(&gzip(&tar)), "gzip-compressed twice"),
        ("cut.tar.gz", gzip(&tar)[..20].to_vec(), "gzip-compressed archive"),
    ];
    for (name, bytes, reason) in cases {
        let target = write(dir.path(), name, &bytes);
        let why = refusal(&target);
        assert!(why.starts_with(&target), "{name}: {why}");
        assert!(why.contains(reason), "{name}: {why}");
    }
    let missing = dir.path().join("missing.tar");
    assert!(refusal(missing.to_str().unwrap()).contains("missing.tar"));
    assert!(refusal("docker-daemon:app:1").contains("read through the engine's API"));
}
