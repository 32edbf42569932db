//! Small generated seed inputs for every target, committed under
//! `fuzz/seeds/<target>/` (a test checks they are current). `fuzz/run.sh`
//! adds the real-tool images of `corpus/real` at run time.

use std::io::Write;

use super::{digest, fixture};

/// A fake, format-valid Hugging Face token (found by `huggingface-token`).
pub const FAKE_TOKEN: &str = "hf_FAKEfuzzSEEDtokenEXAMPLExyzABCDEfg";

/// (target, file name, bytes) of every seed.
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let layer = fixture::layer();
    let config = fixture::config();
    let manifest = fixture::manifest(&config);
    let index = fixture::index(&manifest);
    let env = format!("HF_TOKEN={FAKE_TOKEN}\n").into_bytes();
    vec![
        ("docker_manifest", "fixture.json", fixture::docker_manifest()),
        ("oci_manifest", "fixture.json", manifest.clone()),
        ("oci_index", "fixture.json", index.clone()),
        ("oci_index", "nested.json", fixture::index(&index)),
        ("image_config", "fixture.json", config.clone()),
        ("image_config", "build-arg.json", secret_config()),
        ("layer_walk", "fixture.tar", layer.clone()),
        ("layer_walk", "fixture.tar.gz", gzip(&layer)),
        ("layer_walk", "whiteouts.tar", whiteout_layer()),
        ("layer_entries", "mixed.bin", (0u8..=255).collect()),
        ("layer_entries", "whiteouts.bin", vec![0, 1, 0, 5, 0, 1, 0, 1, 6, 0, 2, 1, 7, 0, 3, 1, 1, 8]),
        ("reference", "short.txt", b"alpine".to_vec()),
        ("reference", "full.txt", b"docker://ghcr.io:443/team/app:v1.2".to_vec()),
        ("reference", "digest.txt", format!("localhost:5000/a/b@{}", digest(b"x")).into_bytes()),
        (
            "auth_challenge",
            "bearer.txt",
            br#"Basic realm="r", Bearer realm="https://auth.example.test/token",service="registry.example.test",scope="repository:a/b:pull,push""#.to_vec(),
        ),
        ("auth_challenge", "escaped.txt", br#"Bearer realm="https://a/\"q\"",scope=x"#.to_vec()),
        ("nested_archive", "app.jar", zip(&[("BOOT-INF/classes/.env", &env)])),
        ("nested_archive", "inner.zip", zip(&[("lib/inner.jar", &zip(&[(".env", &env)]))])),
        ("nested_archive", "env.tar.gz", gzip(&tar(&[("app/.env", &env)]))),
        ("scan_archive", "docker-save.tar", docker_save(&env)),
        ("git_objects", "loose-blob.bin", loose_object(&env)),
        ("git_objects", "delta.bin", delta(&env)),
    ]
}

/// Mode 0 of `git_objects`: a loose blob object holding `body`.
fn loose_object(body: &[u8]) -> Vec<u8> {
    let mut object = format!("blob {}\0", body.len()).into_bytes();
    object.extend_from_slice(body);
    let mut z = flate2::write::ZlibEncoder::new(vec![0], flate2::Compression::default());
    z.write_all(&object).expect("in-memory zlib");
    z.finish().expect("in-memory zlib")
}

/// Mode 1 of `git_objects`: a base and a delta that copies from it and
/// inserts `insert` (under 128 bytes, one insert instruction).
fn delta(insert: &[u8]) -> Vec<u8> {
    let base = b"# settings\nDEBUG=0\n";
    let copied = 11;
    let target = copied + insert.len();
    assert!(insert.len() < 128 && target < 128, "one-byte sizes and one insert");
    // Source and target sizes, copy (offset 0, size byte present), insert.
    let mut d = vec![base.len() as u8, target as u8, 0x90, copied as u8, insert.len() as u8];
    d.extend_from_slice(insert);
    crate::scan::git::fuzz::join(1, base, &d)
}

/// A config whose build arg carries the fake token.
fn secret_config() -> Vec<u8> {
    let base = String::from_utf8(fixture::config()).expect("the fixture config is UTF-8");
    base.replace("ARG X=1", &format!("RUN |1 HF_TOKEN={FAKE_TOKEN} /bin/sh -c make")).into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("in-memory gzip");
    e.finish().expect("in-memory gzip")
}

fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        b.append_data(&mut h, name, *body).expect("in-memory tar");
    }
    b.into_inner().expect("in-memory tar")
}

fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in files {
        let options = zip::write::SimpleFileOptions::default();
        w.start_file(*name, options).expect("in-memory zip");
        w.write_all(body).expect("in-memory zip");
    }
    w.finish().expect("in-memory zip").into_inner()
}

/// A layer deleting the base layer's file and making `/app` opaque.
fn whiteout_layer() -> Vec<u8> {
    tar(&[("app/.wh.config.txt", b""), ("app/.wh..wh..opq", b""), ("app/new.txt", b"new\n")])
}

/// A legacy docker-save archive of the fixture config and a layer holding `env`.
fn docker_save(env: &[u8]) -> Vec<u8> {
    let layer = tar(&[("app/.env", env)]);
    let config = String::from_utf8(fixture::config())
        .expect("the fixture config is UTF-8")
        .replace(&digest(&fixture::layer()), &digest(&layer));
    tar(&[
        ("manifest.json", &fixture::docker_manifest()),
        ("config.json", config.as_bytes()),
        ("layer.tar", &layer),
    ])
}
