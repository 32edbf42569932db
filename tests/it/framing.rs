//! Bytes a layer blob ships outside its tar stream: a gzip member's header
//! fields (the file name `gzip` stores, a comment, an extra field) and zstd
//! skippable frames. Everyone who pulls the image gets them, so they are
//! scanned and reported at a pseudo-path of the layer; bytes after the last
//! member or frame, which no runtime reads, make the scan incomplete. Blobs
//! made by GNU tar, gzip and zstd, with a few header bytes set by hand where
//! the tools have no option for them.

use std::path::{Path, PathBuf};

use crate::util::*;
use ig::layout::{Blob, Layout};

/// A layer tar made by GNU tar: one harmless file.
fn layer_tar(dir: &Path) -> Vec<u8> {
    std::fs::create_dir_all(dir.join("tree/app")).unwrap();
    std::fs::write(dir.join("tree/app/readme.txt"), "nothing to see here\n".repeat(300)).unwrap();
    tool(dir, "tar", &["--sort=name", "--mtime=@0", "-cf", "-", "-C", "tree", "app"])
}

/// A one-layer OCI layout holding `blob`, a compressed form of `tar`.
fn image(dir: &Path, name: &str, tar: &[u8], blob: &[u8], media_type: &'static str) -> PathBuf {
    let layout = Layout::new(&dir.join(name)).unwrap();
    let (digest, size) = layout.put(blob).unwrap();
    let blob = Blob { digest, size, diff_id: ig::sha256_digest(tar), media_type };
    layout.image(&[blob], None, None).unwrap()
}

/// `gzip -n` output with a header field added by hand: `flag` set, `field` inserted after
/// the fixed 10-byte header (RFC 1952 puts FEXTRA, FNAME, FCOMMENT there, in that order).
fn with_field(mut gz: Vec<u8>, flag: u8, field: &[u8]) -> Vec<u8> {
    assert_eq!(gz[3], 0, "gzip -n writes no optional field");
    gz[3] |= flag;
    gz.splice(10..10, field.iter().copied());
    gz
}

/// A zstd skippable frame (magic 0x184D2A50 + `n`) holding `data`.
fn skippable(n: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x50 + n, 0x2a, 0x4d, 0x18];
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(data);
    f
}

/// The canary findings of a scan, as (path, location, status, layer).
fn canaries(json: &serde_json::Value) -> Vec<(String, String, String, u64)> {
    let mut v: Vec<_> = findings_of(json, "test-canary")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["location"].as_str().unwrap_or("").to_owned(),
                f["status"].as_str().unwrap().to_owned(),
                f["layer_index"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn outside(path: &str) -> (String, String, String, u64) {
    (path.to_owned(), "outside the tar".to_owned(), "present".to_owned(), 0)
}

#[test]
fn secrets_in_gzip_headers_and_zstd_skippable_frames_are_found() {
    let dir = tmp();
    let d = dir.path();
    let tar = layer_tar(d);
    std::fs::write(d.join("tar"), &tar).unwrap();
    // gzip -N stores the name of the file it compressed.
    let named = "build-CANARY_000000000001.tar";
    std::fs::write(d.join(named), &tar).unwrap();
    let fname = tool(d, "gzip", &["-N", "-c", named]);
    let plain = tool(d, "gzip", &["-n", "-c", "tar"]);
    let comment = with_field(plain.clone(), 1 << 4, b"built by CI with CANARY_000000000002\0");
    // FEXTRA: its length, then one subfield ('S', 'C', its length, its data).
    let mut field = vec![23, 0, b'S', b'C', 19, 0];
    field.extend_from_slice(b"CANARY_000000000007");
    let extra = with_field(plain.clone(), 1 << 2, &field);
    // Two members (the tar cut in two, each half gzipped), the second with a comment.
    let half = tar.len() / 2;
    std::fs::write(d.join("first"), &tar[..half]).unwrap();
    std::fs::write(d.join("second"), &tar[half..]).unwrap();
    let members = [
        tool(d, "gzip", &["-n", "-c", "first"]),
        with_field(tool(d, "gzip", &["-n", "-c", "second"]), 1 << 4, b"CANARY_000000000003\0"),
    ]
    .concat();
    // zstd frames (the tar cut in two), a skippable frame between them and one after,
    // where zstd:chunked keeps its table of contents.
    let frames = [
        tool(d, "zstd", &["-q", "-c", "first"]),
        skippable(0, b"between: CANARY_000000000004"),
        tool(d, "zstd", &["-q", "-19", "-c", "second"]),
        skippable(15, b"after: CANARY_000000000005\n"),
    ]
    .concat();
    let gz = ig::MT_OCI_LAYER_GZIP;
    let zst = ig::MT_OCI_LAYER_ZSTD;
    let cases: Vec<(&str, Vec<u8>, &str, Vec<&str>)> = vec![
        ("fname", fname, gz, vec!["<gzip member 1 header: file name>"]),
        ("fcomment", comment, gz, vec!["<gzip member 1 header: comment>"]),
        ("fextra", extra, gz, vec!["<gzip member 1 header: extra field>"]),
        ("members", members, gz, vec!["<gzip member 2 header: comment>"]),
        ("frames", frames, zst, vec!["<zstd skippable frame 2>", "<zstd skippable frame 4>"]),
    ];
    for (name, blob, media_type, paths) in cases {
        let img = image(d, name, &tar, &blob, media_type);
        let (code, json, err) = scan_json(&img, &[]);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.is_empty(), "{name}: {err}");
        let want: Vec<_> = paths.iter().map(|p| outside(p)).collect();
        assert_eq!(canaries(&json), want, "{name}");
        // The same findings whatever the thread count.
        for threads in ["1", "3"] {
            let (_, again, _) = scan_json(&img, &["--threads", threads]);
            assert_eq!(again["findings"], json["findings"], "{name} --threads {threads}");
        }
    }
}

#[test]
fn bytes_after_the_last_member_or_frame_leave_the_scan_incomplete() {
    let dir = tmp();
    let d = dir.path();
    let tar = layer_tar(d);
    std::fs::write(d.join("tar"), &tar).unwrap();
    let junk = b"junk after the stream: CANARY_000000000006".to_vec();
    let cases = [
        ("gzip", tool(d, "gzip", &["-n", "-c", "tar"]), ig::MT_OCI_LAYER_GZIP, "gzip member 1"),
        ("zstd", tool(d, "zstd", &["-q", "-c", "tar"]), ig::MT_OCI_LAYER_ZSTD, "zstd frame 1"),
    ];
    for (name, blob, media_type, after) in cases {
        let img = image(d, name, &tar, &[blob.clone(), junk.clone()].concat(), media_type);
        let (code, _, err) = scan_json(&img, &[]);
        assert_eq!(code, 2, "{name}: {err}");
        let at = blob.len();
        assert!(
            err.contains(&format!("the bytes after {after} (from byte {at} of the blob)"))
                && err.contains("no runtime reads them"),
            "{name}: {err}"
        );
        assert!(!err.contains("CANARY_000000000006"), "{name}: the junk is not quoted: {err}");
    }
}

/// A `.gz` file inside a layer carries the same header fields: the file name `gzip -N`
/// stored is scanned as a member of the file.
#[test]
fn header_fields_of_a_gzip_file_in_a_layer_are_found() {
    let dir = tmp();
    let d = dir.path();
    std::fs::create_dir_all(d.join("tree/app")).unwrap();
    let named = "CANARY_000000000008.log";
    std::fs::write(d.join(named), "nothing secret in here\n").unwrap();
    let gz = tool(d, "gzip", &["-N", "-c", named]);
    std::fs::write(d.join("tree/app/logs.gz"), gz).unwrap();
    let tar = tool(d, "tar", &["--sort=name", "--mtime=@0", "-cf", "-", "-C", "tree", "app"]);
    let img = image(d, "nested", &tar, &tar, ig::MT_OCI_LAYER_TAR);
    let (code, json, err) = scan_json(&img, &[]);
    assert_eq!((code, err.as_str()), (1, ""));
    let found = findings_of(&json, "test-canary");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["path"], "/app/logs.gz");
    assert_eq!(found[0]["inner_path"], "<gzip member 1 header: file name>");
    assert_eq!(found[0]["status"], "present");
}
