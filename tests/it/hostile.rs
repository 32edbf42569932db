//! Hostile archives (issue 9): crafted layers that once made strata report
//! "clean" for bytes it never read, or take unbounded time and memory. Each
//! is built here from the image generator's raw tar blocks, streamed through
//! a compressor into an OCI layout (`strata_imagegen::{raw, layout}`, which
//! also write the full-size versions for `bench/hostile.py`), and must end
//! with the right exit code and diagnostic, in bounded memory and time.
//! See: #9

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::*;
use ig::layout::{Blob, Layout};
use ig::raw::{
    END, file, header, link_header, long_name, padding, pax, reseal, sparse_member, special,
};

// ---------------------------------------------------------------------------------------------
// Generator: the image generator's raw tar blocks and streaming OCI layout
// ---------------------------------------------------------------------------------------------

fn end() -> Vec<u8> {
    END.to_vec()
}

const MANIFEST: &str = ig::MT_OCI_MANIFEST;
const INDEX: &str = ig::MT_OCI_INDEX;

/// The generator's [`Layout`] as these tests use it: zstd layers (or stored as is), a
/// panic on any I/O error.
trait TestLayout {
    /// A zstd layer of what `write` produces.
    fn zstd_layer(&self, write: impl FnOnce(&mut dyn Write)) -> Blob;
    /// An uncompressed layer of what `write` produces.
    fn plain_layer(&self, write: impl FnOnce(&mut dyn Write)) -> Blob;
    /// The manifest of `layers`, its config claiming `diff_ids`.
    fn claiming(&self, layers: &[Blob], diff_ids: &[String]) -> (String, u64);
    /// Finishes a one-image layout of `layers`.
    fn finish(self, layers: &[Blob]) -> PathBuf;
}

impl TestLayout for Layout {
    fn zstd_layer(&self, write: impl FnOnce(&mut dyn Write)) -> Blob {
        self.layer(Compression::Zstd, |w| {
            write(w);
            Ok(())
        })
        .unwrap()
    }

    fn plain_layer(&self, write: impl FnOnce(&mut dyn Write)) -> Blob {
        self.layer(Compression::None, |w| {
            write(w);
            Ok(())
        })
        .unwrap()
    }

    fn claiming(&self, layers: &[Blob], diff_ids: &[String]) -> (String, u64) {
        let ids: Vec<&str> = diff_ids.iter().map(String::as_str).collect();
        self.manifest_claiming(layers, &ids, None, None).unwrap()
    }

    fn finish(self, layers: &[Blob]) -> PathBuf {
        self.image(layers, None, None).unwrap()
    }
}

/// A one-layer layout from a plain (uncompressed) layer.
fn one_layer(dir: &Path, name: &str, tar: &[u8]) -> PathBuf {
    let layout = Layout::new(&dir.join(name)).unwrap();
    let blob = layout.plain_layer(|w| w.write_all(tar).unwrap());
    layout.finish(&[blob])
}

/// Runs strata, returning its output, peak RSS (kB) and CPU time (user +
/// system: the test machine is shared, so wall time would measure the others).
fn measured(args: &[&str]) -> (std::process::Output, u64, Duration) {
    let mut child = strata()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes while polling, so a chatty child cannot block.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).unwrap();
        v
    });
    let status_file = format!("/proc/{}/status", child.id());
    let stat_file = format!("/proc/{}/stat", child.id());
    let mut peak = 0;
    let mut cpu = Duration::ZERO;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak = peak.max(line.split_whitespace().nth(1).unwrap().parse().unwrap());
        }
        // utime and stime (fields 14 and 15, in 1/100 s), after the command name.
        if let Ok(s) = std::fs::read_to_string(&stat_file)
            && let Some((_, rest)) = s.rsplit_once(')')
        {
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(u), Some(k)) = (f.get(11), f.get(12)) {
                let ticks: u64 = u.parse::<u64>().unwrap_or(0) + k.parse::<u64>().unwrap_or(0);
                cpu = cpu.max(Duration::from_millis(ticks * 10));
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output =
        std::process::Output { status, stdout: o.join().unwrap(), stderr: e.join().unwrap() };
    (output, peak, cpu)
}

/// Scans with the canary rule; asserts bounded memory and time.
fn scan_bounded(target: &Path, extra: &[&str]) -> (i32, String, String) {
    let rules = canary_rules();
    let mut args = vec!["scan", "--format", "json", "--signatures", &rules];
    args.push(target.to_str().unwrap());
    args.extend_from_slice(extra);
    let (o, peak_kb, took) = measured(&args);
    let (code, out, err) = parts(&o);
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB: {}", &err[..err.len().min(2000)]);
    assert!(took < Duration::from_secs(10), "took {took:?} of CPU");
    (code, out, err)
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

fn errors(json: &serde_json::Value) -> Vec<String> {
    json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["level"] == "error")
        .map(|d| d["message"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Completeness: what was not read is an error, never "clean"
// ---------------------------------------------------------------------------------------------

/// A legacy docker-save archive with a decoy image whose config claims the
/// victim layer's diff_id: the victim layer must still be read.
#[test]
fn decoy_config_claiming_a_victims_diff_id_does_not_hide_its_layer() {
    let dir = tmp();
    let victim =
        [file("secret.conf", format!("key = {}\n", canary(91)).as_bytes()), end()].concat();
    let decoy = [file("readme.txt", b"nothing here\n"), end()].concat();
    let claimed = ig::sha256_digest(&victim);
    let config = |diff_id: &str| {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "COPY x /"}],
        }))
        .unwrap()
    };
    let manifest = serde_json::json!([
        {"Config": "decoy.json", "RepoTags": ["decoy:1"], "Layers": ["decoy/layer.tar"]},
        {"Config": "victim.json", "RepoTags": ["victim:1"], "Layers": ["victim/layer.tar"]},
    ]);
    let path = dir.path().join("two.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("decoy/layer.tar", &decoy);
    add("victim/layer.tar", &victim);
    add("decoy.json", &config(&claimed));
    add("victim.json", &config(&claimed));
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.finish().unwrap();
    drop(b);
    for threads in ["1", "2"] {
        let (code, out, err) = scan_bounded(&path, &["--threads", threads]);
        assert_eq!(code, 1, "{err}");
        let json = json_of(&out);
        let found = findings_of(&json, "test-canary");
        assert!(
            found.iter().any(|f| f["path"] == "/secret.conf" && f["target"].is_string()),
            "the victim layer was read: {json:#}"
        );
    }
}

/// A broken header before the secret entry, with the config's diff_id set to
/// match the blob: the bytes after it were not read, so the run is an error.
#[test]
fn a_bad_header_before_the_secret_is_an_error_whatever_the_diff_id() {
    let dir = tmp();
    let secret = file("app/secret.conf", format!("key = {}\n", canary(92)).as_bytes());
    let mut bad_checksum = header(b"evil", b'0', 10);
    bad_checksum[0] ^= 1;
    let mut garbage_size = header(b"evil", b'0', 0);
    garbage_size[124..136].copy_from_slice(b"zz9zz9zz9zz\0");
    let mut negative_size = header(b"evil", b'0', 0);
    negative_size[124..136].copy_from_slice(&[0xff; 12]);
    for (name, bad) in
        [("checksum", bad_checksum), ("garbage", garbage_size), ("negative", negative_size)]
    {
        let mut negative = bad;
        if name != "checksum" {
            // Keep the checksum valid so only the size field is wrong.
            reseal(&mut negative);
        }
        let tar = [file("ok.txt", b"fine\n"), negative.to_vec(), secret.clone(), end()].concat();
        let layout = one_layer(dir.path(), name, &tar);
        let (code, out, err) = scan_bounded(&layout, &[]);
        assert_eq!(code, 2, "{name}: {err}");
        let errs = errors(&json_of(&out));
        assert!(
            errs.iter().any(|e| e.contains("layer 0") && e.contains("were not read")),
            "{name}: {errs:?}"
        );
        assert!(!err.contains("every entry was read"), "{name}: {err}");
    }
    // Two GNU long names before one entry: the last one names it, as in Go's
    // archive/tar (what Docker extracts with), and the entry is read.
    let mut two = Vec::new();
    for n in [&b"decoy/name"[..], b"app/real.conf"] {
        two.extend(long_name(n));
    }
    let body = format!("key = {}\n", canary(93));
    two.extend(header(b"short", b'0', body.len() as u64));
    two.extend(body.as_bytes());
    two.resize(two.len() + padding(body.len() as u64), 0);
    two.extend(end());
    let layout = one_layer(dir.path(), "two-longnames", &two);
    let (code, out, err) = scan_bounded(&layout, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("two GNU long names"), "{err}");
    let json = json_of(&out);
    assert_eq!(findings_of(&json, "test-canary")[0]["path"], "/app/real.conf");
}

/// A layer blob that is not a tar at all is an error, not a clean layer.
#[test]
fn a_layer_that_is_not_a_tar_is_an_error() {
    let dir = tmp();
    let text = format!("key = {}\n{}", canary(94), "just text, not a tar archive\n".repeat(40));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    zip.start_file("a.txt", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(text.as_bytes()).unwrap();
    let zip = zip.finish().unwrap().into_inner();
    let short = text.as_bytes()[..75].to_vec();
    for (name, blob) in [("text", text.into_bytes()), ("gzip", gz), ("zip", zip), ("short", short)]
    {
        let layout = one_layer(dir.path(), name, &blob);
        let (code, out, err) = scan_bounded(&layout, &[]);
        assert_eq!(code, 2, "{name}: {err}");
        let errs = errors(&json_of(&out));
        assert!(
            errs.iter().any(|e| e.contains("layer 0") && e.contains("not read")),
            "{name}: {errs:?}"
        );
    }
}

/// Data after the end-of-archive marker is never extracted by a runtime but
/// it was not read either: an error.
#[test]
fn data_after_the_end_of_archive_marker_is_an_error() {
    let dir = tmp();
    let hidden = file("hidden.conf", format!("key = {}\n", canary(95)).as_bytes());
    let tar = [file("ok.txt", b"fine\n"), end(), hidden, end()].concat();
    let layout = one_layer(dir.path(), "trailing", &tar);
    let (code, out, err) = scan_bounded(&layout, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(errors(&json_of(&out)).iter().any(|e| e.contains("follow the tar end-of-archive")));
}

/// A layer that fails part-way (a gzip CRC that does not match, a gzip or zstd stream
/// or a tar cut in the middle of a big file) is incomplete (exit 2, an error saying how
/// far it was read), yet every finding read before the failure is reported: the file
/// being read when it failed included, whatever the thread count (the decoding thread
/// once dropped the block it had read before the error), in an OCI layout and in a
/// docker-save archive.
#[test]
fn a_layer_that_fails_part_way_keeps_what_came_before() {
    let dir = tmp();
    let d = dir.path();
    std::fs::create_dir_all(d.join("app")).unwrap();
    std::fs::write(d.join("app/a.conf"), format!("key = {}\n", canary(301))).unwrap();
    let big = [
        format!("token = {}\n", canary(302)).into_bytes(),
        noise_words(3 << 20, 0x9e37_79b9_7f4a_7c15),
    ]
    .concat();
    std::fs::write(d.join("app/b.txt"), big).unwrap();
    std::fs::write(d.join("app/c.conf"), format!("key = {}\n", canary(303))).unwrap();
    let files = ["app/a.conf", "app/b.txt", "app/c.conf"];
    let tar = tool(d, "tar", &[&["--mtime=@0", "-cf", "-"][..], &files].concat());
    std::fs::write(d.join("layer.tar"), &tar).unwrap();
    let gz = tool(d, "gzip", &["-n", "-c", "layer.tar"]);
    let zst = tool(d, "zstd", &["-q", "-c", "layer.tar"]);
    let mut bad_crc = gz.clone();
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 0xff;
    let all = ["/app/a.conf", "/app/b.txt", "/app/c.conf"];
    let before = ["/app/a.conf", "/app/b.txt"];
    let cases = [
        ("gzip with a bad CRC", bad_crc, ig::MT_OCI_LAYER_GZIP, &all[..]),
        ("gzip cut short", gz[..gz.len() / 2].to_vec(), ig::MT_OCI_LAYER_GZIP, &before),
        ("zstd cut short", zst[..zst.len() / 2].to_vec(), ig::MT_OCI_LAYER_ZSTD, &before),
        ("tar cut mid-entry", tar[..2 << 20].to_vec(), ig::MT_OCI_LAYER_TAR, &before),
    ];
    for (i, (what, blob, media_type, want)) in cases.into_iter().enumerate() {
        let layout = Layout::new(&d.join(format!("oci{i}"))).unwrap();
        let (digest, size) = layout.put(&blob).unwrap();
        let diff_id = ig::sha256_digest(&tar);
        let layer = Blob { digest, size, diff_id: diff_id.clone(), media_type };
        let oci = layout.finish(&[layer]);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap();
        let manifest = serde_json::json!([{"Config": "c.json", "RepoTags": ["t:1"], "Layers": ["l/layer.tar"]}]);
        let save = d.join(format!("save{i}.tar"));
        docker_save(&save, blob, config, &manifest);
        for (target, threads) in [(&oci, "1"), (&oci, "2"), (&save, "1"), (&save, "2")] {
            let (code, out, err) = scan_bounded(target, &["--threads", threads]);
            let json = json_of(&out);
            let mut found: Vec<String> = json["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["rule_id"] == "test-canary")
                .map(|f| f["path"].as_str().unwrap().to_owned())
                .collect();
            found.sort();
            let at = format!("{what}, {}, {threads} threads", target.display());
            assert_eq!(code, 2, "{at}: {err}");
            assert_eq!(found, want, "{at}: {err}");
            let errors = errors(&json);
            assert!(
                errors.iter().any(|e| e.contains("the layer was read only up to there")
                    && e.contains("findings before it are reported")),
                "{at}: {errors:?}"
            );
            assert!(!err.contains(&canary(302)) && !out.contains(&canary(302)), "{at}");
        }
    }
}

/// A zip with more members than the per-archive limit leaves members unread.
#[test]
fn members_past_the_archive_limit_are_an_error() {
    let dir = tmp();
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..100_000 {
        zip.start_file(format!("m{i}"), opts).unwrap();
    }
    zip.start_file("last.properties", opts).unwrap();
    zip.write_all(format!("key = {}\n", canary(96)).as_bytes()).unwrap();
    let jar = zip.finish().unwrap().into_inner();
    let layout = Layout::new(&dir.path().join("jar")).unwrap();
    let blob = layout.zstd_layer(|w| {
        w.write_all(&file("app/app.jar", &jar)).unwrap();
        w.write_all(&end()).unwrap();
    });
    let layout = layout.finish(&[blob]);
    let (code, out, err) = scan_bounded(&layout, &[]);
    assert_eq!(code, 2, "{err}");
    let errs = errors(&json_of(&out));
    assert!(
        errs.iter().any(|e| e.contains("/app/app.jar") && e.contains("member limit")),
        "{errs:?}"
    );
}

/// Bytes a layer stores where no runtime looks (the data of a whiteout, a directory, a device
/// or an unknown typeflag; an entry named as the root; tar padding) were never scanned, and
/// the layer looked clean with exit 0. Each is now an error naming the entry.
#[test]
fn data_no_runtime_extracts_is_an_error_never_clean() {
    let dir = tmp();
    let secret = format!("key = {}\n", canary(311));
    let entry = |name: &[u8], flag: u8| {
        // The typeflag byte as given (the `tar` crate writes NUL as '0').
        let mut h = header(name, flag, secret.len() as u64);
        h[156] = flag;
        reseal(&mut h);
        let mut v = h.to_vec();
        v.extend(secret.as_bytes());
        v.resize(v.len() + padding(secret.len() as u64), 0);
        v
    };
    // Secret bytes in the padding after a one-byte file, and after a PAX header.
    let mut after_file = header(b"app/one", b'0', 1).to_vec();
    after_file.push(b'x');
    after_file.extend(secret.as_bytes());
    after_file.resize(1024, 0);
    let mut after_pax = pax(b'x', &[("path", b"app/named.conf")]);
    let body = ig::raw::pax_record("path", b"app/named.conf").len() as u64;
    let body_end = after_pax.len() - padding(body);
    after_pax[body_end..body_end + secret.len()].copy_from_slice(secret.as_bytes());
    after_pax.extend(file("plain", b"fine\n"));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dot", entry(b".", b'0'), "named \".\", the layer root"),
        ("slash", entry(b"/", b'0'), "named \"/\", the layer root"),
        ("whiteout", entry(b"app/.wh.secret", b'0'), "\"/app/.wh.secret\" is a whiteout"),
        ("opaque", entry(b"app/.wh..wh..opq", b'0'), "is an opaque-directory marker"),
        ("v7-dir", entry(b"app/v7dir/", b'\0'), "\"/app/v7dir\" is a directory"),
        ("dumpdir", entry(b"app/dump", b'D'), "\"/app/dump\" is a directory"),
        ("unknown", entry(b"app/z", b'Z'), "an unknown type"),
        ("multivolume", entry(b"app/m", b'M'), "an unknown type"),
        ("aufs-meta", entry(b".wh..wh.plnk/d", b'D'), "is aufs bookkeeping"),
        ("file-padding", after_file, "non-zero bytes in the padding"),
        ("pax-padding", after_pax, "non-zero bytes in the padding"),
    ];
    for (name, layer, says) in cases {
        let layout = one_layer(dir.path(), name, &[layer, end()].concat());
        let (code, out, err) = scan_bounded(&layout, &[]);
        assert_eq!(code, 2, "{name}: {err}");
        let errs = errors(&json_of(&out));
        assert!(
            errs.iter().any(|e| e.contains(says) && e.contains("not read")),
            "{name}: {errs:?}"
        );
        assert!(!out.contains(&canary(311)) && !err.contains(&canary(311)), "{name}");
    }
}

/// A name that climbs out with `..` is extracted by containerd under the root (its
/// `fs.RootPath`), and so is a hardlink target that does: the bytes were skipped before,
/// and a link that kept a deleted secret alive did not count.
#[test]
fn names_climbing_out_of_the_root_are_read_where_containerd_puts_them() {
    let dir = tmp();
    let layout = Layout::new(&dir.path().join("climb")).unwrap();
    let l0 = layout.zstd_layer(|w| {
        let tar = [
            file("../../escape.conf", format!("key = {}\n", canary(312)).as_bytes()),
            file("app/s.conf", format!("key = {}\n", canary(313)).as_bytes()),
            end(),
        ];
        w.write_all(&tar.concat()).unwrap();
    });
    let l1 = layout.zstd_layer(|w| {
        let tar = [link_header(b"keep", b"../../app/s.conf").to_vec(), end()];
        w.write_all(&tar.concat()).unwrap();
    });
    let l2 =
        layout.zstd_layer(|w| w.write_all(&[file("app/.wh.s.conf", b""), end()].concat()).unwrap());
    let target = layout.finish(&[l0, l1, l2]);
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("escapes the layer root") && err.contains("read as \"/escape.conf\""));
    let json = json_of(&out);
    let found = findings_of(&json, "test-canary");
    let status = |path: &str| {
        found.iter().find(|f| f["path"] == path).map(|f| f["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("/escape.conf").as_deref(), Some("present"), "{json:#}");
    assert_eq!(status("/app/s.conf").as_deref(), Some("present"), "the link keeps it: {json:#}");
}

/// aufs hardlink sources (`.wh..wh.plnk/INODE`, Docker's aufs driver) hold the bytes that
/// hardlinks elsewhere show; they were skipped as bookkeeping.
#[test]
fn aufs_hardlink_sources_are_read() {
    let dir = tmp();
    let tar = [
        file(".wh..wh.plnk/123.456", format!("key = {}\n", canary(314)).as_bytes()),
        link_header(b"app/linked.conf", b".wh..wh.plnk/123.456").to_vec(),
        end(),
    ];
    let layout = one_layer(dir.path(), "plnk", &tar.concat());
    let (code, out, err) = scan_bounded(&layout, &[]);
    assert_eq!(code, 1, "{err}");
    let json = json_of(&out);
    let found = findings_of(&json, "test-canary");
    assert_eq!(found.len(), 1, "{json:#}");
    assert_eq!(found[0]["path"], "/.wh..wh.plnk/123.456");
    assert_eq!(found[0]["status"], "present");
}

/// PAX headers as Go's archive/tar reads them (what Docker and containerd extract with): a
/// second `x` header replaces the first, a global `g` header ends what came before it, and a
/// malformed record or size stops the archive. strata once applied an `x` header across a
/// `g` one, so a file a runtime shows with its secret read as a whiteout, unscanned (exit 0).
#[test]
fn pax_headers_apply_as_go_reads_them() {
    let dir = tmp();
    let body = format!("key = {}\n", canary(315));
    let secret = |name: &str| file(name, body.as_bytes());
    let comment: (&str, &[u8]) = ("comment", b"hi");
    let read_as = [
        (
            "x-then-g",
            [pax(b'x', &[("path", b"app/.wh.plain")]), pax(b'g', &[comment]), secret("app/plain")]
                .concat(),
            "/app/plain",
        ),
        (
            "x-then-x",
            [pax(b'x', &[("path", b"decoy.conf")]), pax(b'x', &[comment]), secret("app/real")]
                .concat(),
            "/app/real",
        ),
        (
            "long-name-then-g",
            [long_name(b"app/.wh.x"), pax(b'g', &[comment]), secret("app/kept")].concat(),
            "/app/kept",
        ),
    ];
    for (name, layer, path) in read_as {
        let layout = one_layer(dir.path(), name, &[layer, end()].concat());
        let (code, out, err) = scan_bounded(&layout, &[]);
        assert_eq!(code, 1, "{name}: {err}");
        let json = json_of(&out);
        let found = findings_of(&json, "test-canary");
        assert_eq!(found.len(), 1, "{name}: {json:#}");
        assert_eq!(found[0]["path"], path, "{name}");
    }
    let refused = [
        ("length-past-the-end", special(b'x', b"999 path=app/a\n")),
        ("no-equals", special(b'x', b"11 pathapp\n")),
        ("no-newline", special(b'x', b"12 path=app/x")),
        ("bad-size", pax(b'x', &[("size", b"12abc")])),
        ("negative-size", pax(b'x', &[("size", b"-5")])),
    ];
    for (name, bad) in refused {
        let layout = one_layer(dir.path(), name, &[bad, secret("app/after"), end()].concat());
        let (code, out, err) = scan_bounded(&layout, &[]);
        assert_eq!(code, 2, "{name}: {err}");
        let errs = errors(&json_of(&out));
        assert!(
            errs.iter()
                .any(|e| e.contains("invalid PAX extended header") && e.contains("not read")),
            "{name}: {errs:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Budgets: linear time, flat memory
// ---------------------------------------------------------------------------------------------

/// A GNU long name of 1.5 GB (a 1.5 MB archive), and a PAX path of 2 GB: the
/// name is skipped as it streams, the entry counted as not read, and the
/// name never printed. `layers` stays flat too.
#[test]
fn huge_long_names_are_skipped_in_flat_memory() {
    let dir = tmp();
    let layout = Layout::new(&dir.path().join("longname")).unwrap();
    let blob = layout.zstd_layer(|w| {
        let size: u64 = 1_500_000_000;
        w.write_all(&header(b"././@LongLink", b'L', size)).unwrap();
        io::copy(&mut io::repeat(b'n').take(size), w).unwrap();
        w.write_all(&vec![0; padding(size)]).unwrap();
        w.write_all(&file("x", b"hidden behind the long name\n")).unwrap();
        w.write_all(&file("after.conf", format!("key = {}\n", canary(97)).as_bytes())).unwrap();
        w.write_all(&end()).unwrap();
    });
    let target = layout.finish(&[blob]);
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 2, "{}", &err[..err.len().min(2000)]);
    assert!(out.len() + err.len() < 64 << 10, "the name is never printed whole");
    let json = json_of(&out);
    assert!(
        errors(&json).iter().any(|e| e.contains("GNU long name of 1500000000 bytes")),
        "{:?}",
        errors(&json)
    );
    assert_eq!(findings_of(&json, "test-canary")[0]["path"], "/after.conf");
    let (o, peak_kb, took) = measured(&["layers", target.to_str().unwrap()]);
    assert!(peak_kb < 200 * 1024 && took < Duration::from_secs(10), "{peak_kb} kB {took:?}");
    assert_eq!(o.status.code(), Some(2));

    let layout = Layout::new(&dir.path().join("pax")).unwrap();
    let blob = layout.zstd_layer(|w| {
        let value: u64 = 2_000_000_000;
        let prefix = format!("{} path=", value + 17);
        let size = prefix.len() as u64 + value + 1;
        w.write_all(&header(b"PaxHeader", b'x', size)).unwrap();
        w.write_all(prefix.as_bytes()).unwrap();
        io::copy(&mut io::repeat(b'p').take(value), w).unwrap();
        w.write_all(b"\n").unwrap();
        w.write_all(&vec![0; padding(size)]).unwrap();
        w.write_all(&file("x", b"hidden\n")).unwrap();
        w.write_all(&end()).unwrap();
    });
    let target = layout.finish(&[blob]);
    let (code, out, _) = scan_bounded(&target, &[]);
    assert_eq!(code, 2);
    assert!(errors(&json_of(&out)).iter().any(|e| e.contains("PAX extended header")));
}

/// A GNU sparse file with one data block at offset 2^44: only the stored
/// block is read (holes are never streamed), and its secret is found.
#[test]
fn sparse_holes_are_never_streamed() {
    let dir = tmp();
    let tar = [sparse_member(b"sparse.conf", &format!("key = {}\n", canary(98))), end()].concat();
    let layout = one_layer(dir.path(), "sparse", &tar);
    let (code, out, err) = scan_bounded(&layout, &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(findings_of(&json_of(&out), "test-canary")[0]["path"], "/sparse.conf");
}

/// 20k entries named `../` + 10 KB: one kind of warning, kept a few times
/// and counted after; memory stays flat.
#[test]
fn diagnostics_volume_is_bounded() {
    let dir = tmp();
    let layout = Layout::new(&dir.path().join("dotdot")).unwrap();
    let blob = layout.zstd_layer(|w| {
        // Names that climb out are read under the root (as containerd extracts them), so
        // each costs what a file of that name costs: 10 KB each, still cut in messages.
        for i in 0..20_000 {
            let name = format!("../{}{i}", "n".repeat(10_000));
            w.write_all(&long_name(name.as_bytes())).unwrap();
            w.write_all(&header(b"short", b'0', 0)).unwrap();
        }
        w.write_all(&end()).unwrap();
    });
    let target = layout.finish(&[blob]);
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 0, "{}", &err[..err.len().min(2000)]);
    assert!(err.len() < 1 << 20, "stderr is {} bytes", err.len());
    let json = json_of(&out);
    let diags = json["diagnostics"].as_array().unwrap();
    assert!(diags.len() <= 60, "{} diagnostics", diags.len());
    assert!(diags.iter().any(|d| d["message"].as_str().unwrap().starts_with("and 19950 more")));
}

/// Deep paths: 1,500 files 1,000 directories deep are indexed in linear
/// time; 5,000 deep is past the depth budget, 50,000 deep past the name
/// budget: not read, an error.
#[test]
fn deep_paths_are_linear_and_bounded() {
    let dir = tmp();
    for (depth, files, want, words) in [
        (1_000, 1_500, 0, ""),
        (5_000, 20, 2, "1024-component limit"),
        (50_000, 20, 2, "exceeds the 65536-byte limit"),
    ] {
        let layout = Layout::new(&dir.path().join(format!("deep{depth}"))).unwrap();
        let blob = layout.zstd_layer(|w| {
            for i in 0..files {
                let name = format!("d{i}/{}f", "a/".repeat(depth));
                w.write_all(&long_name(name.as_bytes())).unwrap();
                w.write_all(&file("short", b"x\n")).unwrap();
            }
            w.write_all(&end()).unwrap();
        });
        let target = layout.finish(&[blob]);
        let (code, out, err) = scan_bounded(&target, &[]);
        assert_eq!(code, want, "{depth}: {}", &err[..err.len().min(2000)]);
        if want == 2 {
            assert!(errors(&json_of(&out)).iter().any(|e| e.contains(words)), "{depth}");
        }
    }
}

/// Four nested indexes, each listing the next 30 times: each digest is read once.
#[test]
fn index_fan_out_visits_each_digest_once() {
    let dir = tmp();
    let layout = Layout::new(&dir.path().join("fanout")).unwrap();
    let blob =
        layout.zstd_layer(|w| w.write_all(&[file("a.txt", b"hello\n"), end()].concat()).unwrap());
    let (mut digest, mut size) =
        layout.claiming(std::slice::from_ref(&blob), std::slice::from_ref(&blob.diff_id));
    let mut media = MANIFEST;
    for _ in 0..4 {
        let manifests: Vec<_> = (0..30)
            .map(|_| serde_json::json!({"mediaType": media, "digest": digest, "size": size}))
            .collect();
        let index = serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}),
        )
        .unwrap();
        size = index.len() as u64;
        digest = layout.put(&index).unwrap().0;
        media = INDEX;
    }
    layout.index(&[(digest, size, INDEX)]).unwrap();
    let (code, out, err) = scan_bounded(layout.root(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["images"].as_array().unwrap().len(), 1);
}

/// A nested index listing one manifest 30,000 times, every entry annotated, both indexes
/// with 20,000 annotations of their own: each annotation is scanned once, in flat memory
/// (index annotations were once copied into every entry below them: gigabytes).
#[test]
fn index_annotations_cost_linear_memory() {
    let dir = tmp();
    let layout = Layout::new(&dir.path().join("annotated")).unwrap();
    let blob =
        layout.zstd_layer(|w| w.write_all(&[file("a.txt", b"hello\n"), end()].concat()).unwrap());
    let (digest, size) =
        layout.claiming(std::slice::from_ref(&blob), std::slice::from_ref(&blob.diff_id));
    let many = |prefix: &str| -> serde_json::Map<String, serde_json::Value> {
        (0..20_000).map(|i| (format!("{prefix}{i}"), format!("v{i}").into())).collect()
    };
    let manifests: Vec<_> = (0..30_000)
        .map(|i| {
            let note = if i == 7 { format!("token = {}", canary(97)) } else { format!("{i}") };
            serde_json::json!({"mediaType": MANIFEST, "digest": digest, "size": size,
                "annotations": {"org.example.note": note}})
        })
        .collect();
    let nested = serde_json::json!({"schemaVersion": 2, "mediaType": INDEX,
        "manifests": manifests, "annotations": many("nested")});
    let nested = serde_json::to_vec(&nested).unwrap();
    let nested_digest = layout.put(&nested).unwrap().0;
    let mut top = many("top");
    top.insert("org.example.deploy".into(), format!("token = {}", canary(98)).into());
    let index = serde_json::json!({"schemaVersion": 2, "annotations": top, "manifests": [
        {"mediaType": INDEX, "digest": nested_digest, "size": nested.len()}]});
    std::fs::write(layout.root().join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let (code, out, err) = scan_bounded(layout.root(), &[]);
    assert_eq!(code, 1, "{err}");
    let json = json_of(&out);
    let mut locations: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["location"].as_str().unwrap())
        .collect();
    locations.sort();
    assert_eq!(locations, ["index.annotations", "index.manifests[0].manifests[7].annotations"]);
}

/// `manifest.json` with 4000 entries sharing a 1 MB config: parsed once, one image.
#[test]
fn shared_docker_configs_are_parsed_once() {
    let dir = tmp();
    let layer = [file("a.txt", b"hello\n"), end()].concat();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"padding": "p".repeat(1 << 20)}},
        "rootfs": {"type": "layers", "diff_ids": [ig::sha256_digest(&layer)]},
    }))
    .unwrap();
    let entries: Vec<_> = (0..4000)
        .map(|i| {
            serde_json::json!({"Config": "c.json", "RepoTags": [format!("t:{i}")],
                "Layers": ["l/layer.tar"]})
        })
        .collect();
    let path = dir.path().join("many.tar");
    docker_save(&path, layer, config, &entries);
    let (code, out, err) = scan_bounded(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["images"].as_array().unwrap().len(), 1);
}

/// A config of 400,000 tiny objects (4.4 MB, well inside the 64 MiB metadata limit) once
/// took ~280 MB to parse (a map node per object): metadata past the value limit is refused
/// before it is parsed, in flat memory, and the scan says so.
#[test]
fn metadata_of_too_many_json_values_is_refused_in_flat_memory() {
    let dir = tmp();
    let layer = [file("a.txt", b"hello\n"), end()].concat();
    let many: Vec<serde_json::Value> =
        (0..400_000).map(|_| serde_json::json!({"k": "v"})).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "x": many,
        "rootfs": {"type": "layers", "diff_ids": [ig::sha256_digest(&layer)]},
    }))
    .unwrap();
    let manifest =
        serde_json::json!([{"Config": "c.json", "RepoTags": ["t:1"], "Layers": ["l/layer.tar"]}]);
    let path = dir.path().join("values.tar");
    docker_save(&path, layer, config, &manifest);
    let (code, _, err) = scan_bounded(&path, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("JSON values, more than the 262144-value limit for image metadata"),
        "{err}"
    );

    // Just under the limit, 200,000 config keys holding a canary each: every one has a
    // location of its own, and they share one findings budget.
    let keys: serde_json::Map<String, serde_json::Value> =
        (0..200_000).map(|i| (format!("k{i}"), "value = CANARY_ABCDEF123456".into())).collect();
    let layer = [file("a.txt", b"hello\n"), end()].concat();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "x": keys,
        "rootfs": {"type": "layers", "diff_ids": [ig::sha256_digest(&layer)]},
    }))
    .unwrap();
    let path = dir.path().join("keys.tar");
    docker_save(&path, layer, config, &manifest);
    let (code, out, err) = scan_bounded(&path, &[]);
    assert_eq!(code, 1, "{err}");
    let json = json_of(&out);
    assert_eq!(json["summary"]["total"], 100, "{err}");
    assert_eq!(
        json["summary"]["suppressed"]["over the findings budget per rule and file"],
        199_900
    );
}

/// A docker-save archive at `path` of one layer (`l/layer.tar`), one config (`c.json`) and
/// the `manifest.json` given.
fn docker_save(path: &Path, layer: Vec<u8>, config: Vec<u8>, manifest: &impl serde::Serialize) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in [
        ("l/layer.tar", layer),
        ("c.json", config),
        ("manifest.json", serde_json::to_vec(manifest).unwrap()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

/// `layers` over 20k valid 50 KB names keeps bounded memory (counts dropped, said so).
#[test]
fn layers_on_long_names_is_bounded() {
    let dir = tmp();
    let layout = Layout::new(&dir.path().join("names")).unwrap();
    let blob = layout.zstd_layer(|w| {
        for i in 0..20_000 {
            let name = format!("{}{i}", "n".repeat(50_000));
            w.write_all(&long_name(name.as_bytes())).unwrap();
            w.write_all(&header(b"short", b'0', 0)).unwrap();
        }
        w.write_all(&end()).unwrap();
    });
    let target = layout.finish(&[blob]);
    let (o, peak_kb, took) = measured(&["layers", target.to_str().unwrap()]);
    let (code, _, err) = parts(&o);
    assert_eq!(code, 0, "{err}");
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(err.contains("file counts are not shown"), "{err}");
}

/// 150k hardlinks to one secret file in one layer: no quadratic work.
#[test]
fn many_hardlinks_are_linear() {
    let dir = tmp();
    let layout = Layout::new(&dir.path().join("links")).unwrap();
    let blob = layout.zstd_layer(|w| {
        w.write_all(&file("s.conf", format!("key = {}\n", canary(99)).as_bytes())).unwrap();
        for i in 0..150_000 {
            w.write_all(&link_header(format!("l{i}").as_bytes(), b"s.conf")).unwrap();
        }
        w.write_all(&end()).unwrap();
    });
    let del = layout.zstd_layer(|w| {
        let mut t = header(b".wh.s.conf", b'0', 0).to_vec();
        t.extend(end());
        w.write_all(&t).unwrap();
    });
    let target = layout.finish(&[blob, del]);
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 1, "{err}");
    let json = json_of(&out);
    // Deleted by its path, but still shown through its links.
    assert_eq!(findings_of(&json, "test-canary")[0]["status"], "present");
}

/// Absurd thread counts are clamped to the machine.
#[test]
fn thread_counts_are_clamped() {
    let dir = tmp();
    let target = one_layer(dir.path(), "threads", &[file("a.txt", b"hi\n"), end()].concat());
    for n in ["20000", "18446744073709551615"] {
        let (code, _, err) = scan_bounded(&target, &["--threads", n]);
        assert_eq!(code, 0, "{n}: {err}");
    }
}

/// Digests strata cannot verify are refused, never taken unchecked.
#[test]
fn unsupported_digest_algorithms_are_refused() {
    let dir = tmp();
    let layout = Layout::new(&dir.path().join("md5")).unwrap();
    let blob =
        layout.plain_layer(|w| w.write_all(&[file("a.txt", b"hi\n"), end()].concat()).unwrap());
    let md5 = Blob { digest: "md5:0123456789abcdef0123456789abcdef".into(), ..blob.clone() };
    let (d, s) = layout.claiming(&[md5], &[blob.diff_id]);
    layout.index(&[(d, s, MANIFEST)]).unwrap();
    let (code, _, err) = scan_bounded(layout.root(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unsupported digest algorithm \"md5\""), "{err}");
}

/// A blob, or the whole `blobs/` directory, that is a symlink is refused with
/// an error naming it; nothing is read through it.
#[cfg(unix)]
#[test]
fn symlinks_inside_an_oci_layout_are_never_followed() {
    let dir = tmp();
    let sentinel = "STRATA_TEST_ENV_SENTINEL_FAKE_0123";
    // A blob file linked to the process environment.
    let layout = Layout::new(&dir.path().join("blob-link")).unwrap();
    let blob =
        layout.plain_layer(|w| w.write_all(&[file("a.txt", b"hi\n"), end()].concat()).unwrap());
    let target = layout.finish(std::slice::from_ref(&blob));
    let blob_path = target.join("blobs/sha256").join(&blob.digest[7..]);
    std::fs::remove_file(&blob_path).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", &blob_path).unwrap();
    let rules = canary_rules();
    let o = strata()
        .env("STRATA_SENTINEL", sentinel)
        .args(["scan", "--signatures", &rules, target.to_str().unwrap()])
        .output()
        .unwrap();
    let (code, out, err) = parts(&o);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&blob.digest[7..]) && err.contains("symlink"), "{err}");
    assert!(!out.contains(sentinel) && !err.contains(sentinel));
    // The whole blobs/ directory linked elsewhere.
    let real = Layout::new(&dir.path().join("real")).unwrap();
    let blob =
        real.plain_layer(|w| w.write_all(&[file("a.txt", b"hi\n"), end()].concat()).unwrap());
    let real = real.finish(&[blob]);
    let linked = dir.path().join("dir-link");
    std::fs::create_dir(&linked).unwrap();
    std::fs::copy(real.join("index.json"), linked.join("index.json")).unwrap();
    std::fs::copy(real.join("oci-layout"), linked.join("oci-layout")).unwrap();
    std::os::unix::fs::symlink(real.join("blobs"), linked.join("blobs")).unwrap();
    let (code, _, err) = parts(&run(&["scan", linked.to_str().unwrap()]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("blobs is a symlink"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 3. Layer semantics a materialising model agrees with
// ---------------------------------------------------------------------------------------------

fn status_of(target: &Path, path: &str) -> (String, serde_json::Value) {
    let (code, out, err) = scan_bounded(target, &[]);
    assert_eq!(code, 1, "{err}");
    let json = json_of(&out);
    let f = findings_of(&json, "test-canary")
        .into_iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no finding at {path}: {json:#}"));
    (f["status"].as_str().unwrap().to_owned(), f["removed_in_layer"].clone())
}

#[test]
fn layer_semantics_match_extraction() {
    let dir = tmp();
    let secret = |n| format!("key = {}\n", canary(n));
    // A hardlink in a later layer keeps the bytes alive; so does a link of a link.
    let spec = ImageSpec {
        layers: vec![
            Layer::new("COPY s /", vec![Entry::file("app/s.conf", secret(101))]),
            Layer::new(
                "RUN ln",
                vec![Entry::Hardlink { path: "keep1".into(), target: "app/s.conf".into() }],
            ),
            Layer::new(
                "RUN ln",
                vec![Entry::Hardlink { path: "keep2".into(), target: "keep1".into() }],
            ),
            Layer::new("RUN rm", vec![Entry::whiteout("app"), Entry::whiteout("keep1")]),
        ],
        ..ImageSpec::default()
    };
    let p = dir.path().join("links.tar");
    ig::write_image(&spec, Format::OciArchive, &p).unwrap();
    assert_eq!(status_of(&p, "/app/s.conf").0, "present");
    // The same path twice in one layer: the last entry wins, for status and extract.
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY twice /",
            vec![Entry::file("twice.conf", secret(102)), Entry::file("twice.conf", "clean\n")],
        )],
        ..ImageSpec::default()
    };
    let p = dir.path().join("twice.tar");
    ig::write_image(&spec, Format::OciArchive, &p).unwrap();
    assert_eq!(status_of(&p, "/twice.conf"), ("overwritten".to_owned(), serde_json::json!(0)));
    let o = run(&["extract", p.to_str().unwrap(), "--layer", "0", "/twice.conf"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "clean\n");
    // An opaque marker at the layer root hides every lower file.
    let spec = ImageSpec {
        layers: vec![
            Layer::new("COPY s /", vec![Entry::file("etc/app/s.conf", secret(103))]),
            Layer::new("RUN reset", vec![Entry::Opaque { dir: String::new() }]),
        ],
        ..ImageSpec::default()
    };
    let p = dir.path().join("root-opaque.tar");
    ig::write_image(&spec, Format::OciArchive, &p).unwrap();
    assert_eq!(status_of(&p, "/etc/app/s.conf"), ("deleted".to_owned(), serde_json::json!(1)));
    // A V7 entry with typeflag NUL and a trailing slash is a directory: the file
    // below it is not "overwritten" by it.
    let layout = Layout::new(&dir.path().join("v7")).unwrap();
    let l0 = layout.zstd_layer(|w| {
        w.write_all(&[file("v7/s.conf", secret(104).as_bytes()), end()].concat()).unwrap()
    });
    // A real V7 header: no magic, no ustar fields.
    let mut v7 = tar::Header::new_old();
    v7.as_old_mut().name[..3].copy_from_slice(b"v7/");
    v7.set_mode(0o755);
    v7.set_size(0);
    v7.as_old_mut().linkflag = [0];
    v7.set_cksum();
    let l1 = layout.zstd_layer(|w| w.write_all(&[v7.as_bytes().to_vec(), end()].concat()).unwrap());
    let target = layout.finish(&[l0, l1]);
    assert_eq!(status_of(&target, "/v7/s.conf").0, "present");
}

// ---------------------------------------------------------------------------------------------
// 4. Nested tars have the layer walk's budgets
// ---------------------------------------------------------------------------------------------

/// A layer holding one file, `inner.tar`, whose bytes `write` produces.
/// Two names with one 64-bit xxh3 (found by a birthday search of 2^32 hashes): while the
/// layer index keyed paths by that hash, whiting out the second name, or writing a
/// directory there, marked a secret at the first `deleted` (or `overwritten`) while
/// every runtime still shows it.
#[test]
fn names_whose_hashes_collide_stay_apart() {
    let dir = tmp();
    let (a, b) = ("996b9092f3e9b70f", "ca436440b30c1e70");
    let secret = |n| format!("key = {}\n", canary(n));
    for (n, upper) in [
        (111, Entry::whiteout(b)),
        (112, Entry::file(&format!("{b}/x"), "clean\n")),
        (113, Entry::file(b, "clean\n")),
    ] {
        let spec = ImageSpec {
            layers: vec![
                Layer::new("COPY s /", vec![Entry::file(a, secret(n))]),
                Layer::new("RUN other", vec![upper]),
            ],
            ..ImageSpec::default()
        };
        let p = dir.path().join(format!("twins{n}.tar"));
        ig::write_image(&spec, Format::OciArchive, &p).unwrap();
        assert_eq!(status_of(&p, &format!("/{a}")).0, "present", "{n}");
    }
}

/// Two directory paths with one 64-bit FNV-1a (found by a birthday search of 2^32 hashes),
/// one of them a secret's name: while the entry-name scan knew the directories it had
/// shown by that hash, the second was taken as shown, and its name never scanned.
#[test]
fn directory_names_whose_hashes_collide_are_all_scanned() {
    let dir = tmp();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY . /",
            vec![
                Entry::file("d/7527ec797fca5f4e/a", "clean\n"),
                Entry::file("CANARY_000000000401/ab3d053bae99f691/b", "clean\n"),
            ],
        )],
        ..ImageSpec::default()
    };
    let p = dir.path().join("dirs.tar");
    ig::write_image(&spec, Format::OciArchive, &p).unwrap();
    let (code, out, err) = scan_bounded(&p, &[]);
    assert_eq!(code, 1, "{err}");
    let json = json_of(&out);
    let names: Vec<_> = findings_of(&json, "test-canary")
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_owned(), f["location"].clone()))
        .collect();
    assert_eq!(
        names,
        // The path is redacted in the report: the secret is in it.
        [("/CA…01/ab3d053bae99f691/b".to_owned(), serde_json::json!("entry name"))]
    );
}

fn nested_tar_image(
    dir: &Path,
    name: &str,
    size: u64,
    write: impl FnOnce(&mut dyn Write),
) -> PathBuf {
    let layout = Layout::new(&dir.join(name)).unwrap();
    let blob = layout.zstd_layer(|w| {
        w.write_all(&header(b"app/inner.tar", b'0', size)).unwrap();
        write(w);
        w.write_all(&vec![0; padding(size)]).unwrap();
        w.write_all(&end()).unwrap();
    });
    layout.finish(&[blob])
}

/// A GNU long name of 1.5 GB inside a nested tar: skipped as it streams, the
/// entry it names counted as not read (exit 2), the entries after it read.
#[test]
fn nested_tar_long_names_are_skipped_in_flat_memory() {
    let dir = tmp();
    let name: u64 = 1_500_000_000;
    let after = file("after.conf", format!("key = {}\n", canary(105)).as_bytes());
    let hidden = file("x", b"hidden behind the long name\n");
    let size = 512 + name + padding(name) as u64 + (hidden.len() + after.len() + 1024) as u64;
    let target = nested_tar_image(dir.path(), "nested-longname", size, |w| {
        w.write_all(&header(b"././@LongLink", b'L', name)).unwrap();
        io::copy(&mut io::repeat(b'n').take(name), w).unwrap();
        w.write_all(&vec![0; padding(name)]).unwrap();
        w.write_all(&hidden).unwrap();
        w.write_all(&after).unwrap();
        w.write_all(&end()).unwrap();
    });
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 2, "{}", &err[..err.len().min(2000)]);
    assert!(out.len() + err.len() < 64 << 10, "the name is never printed whole");
    let json = json_of(&out);
    assert!(
        errors(&json).iter().any(|e| e.contains("/app/inner.tar")
            && e.contains("GNU long name of 1500000000 bytes")
            && e.contains("not read")),
        "{:?}",
        errors(&json)
    );
    let found = findings_of(&json, "test-canary");
    assert!(found.iter().any(|f| f["inner_path"] == "after.conf"), "{json:#}");
}

/// A tar inside a layer file is never extracted by a runtime: the data of an entry of any
/// type is read (a directory's or an unknown typeflag's was skipped), and so are bytes in its
/// padding (scanned as `<tar padding>`, with a warning).
#[test]
fn nested_tar_data_of_every_entry_type_is_read() {
    let dir = tmp();
    let secret = format!("key = {}\n", canary(316));
    let mut odd = header(b"z", b'Z', secret.len() as u64).to_vec();
    odd.extend(secret.as_bytes());
    odd.resize(1024, 0);
    let inner = [odd, end()].concat();
    let target = nested_tar_image(dir.path(), "nested-odd", inner.len() as u64, |w| {
        w.write_all(&inner).unwrap()
    });
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 1, "{err}");
    let json = json_of(&out);
    let found = findings_of(&json, "test-canary");
    assert!(found.iter().any(|f| f["inner_path"] == "z"), "{json:#}");
    let mut padded = header(b"one", b'0', 1).to_vec();
    padded.push(b'x');
    padded.extend(secret.as_bytes());
    padded.resize(1024, 0);
    let inner = [padded, end()].concat();
    let target = nested_tar_image(dir.path(), "nested-padding", inner.len() as u64, |w| {
        w.write_all(&inner).unwrap()
    });
    // The padding no extractor writes out is scanned as a member of its own.
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 1, "{err}");
    let json = json_of(&out);
    assert!(errors(&json).is_empty(), "{json:#}");
    let found = findings_of(&json, "test-canary");
    assert!(found.iter().any(|f| f["inner_path"] == "<tar padding>"), "{json:#}");
    assert!(err.contains("/app/inner.tar") && err.contains("scanned as <tar padding>"), "{err}");
    assert!(!out.contains(&canary(316)) && !err.contains(&canary(316)));
}

/// A GNU sparse member with one data block at offset 2^44 inside a nested
/// tar: only the stored block is read, its secret found, no hole streamed.
#[test]
fn nested_tar_sparse_holes_are_never_streamed() {
    let dir = tmp();
    let inner =
        [sparse_member(b"sparse.conf", &format!("key = {}\n", canary(106))), end()].concat();
    let target = nested_tar_image(dir.path(), "nested-sparse", inner.len() as u64, |w| {
        w.write_all(&inner).unwrap();
    });
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 1, "{err}");
    let json = json_of(&out);
    let found = findings_of(&json, "test-canary");
    assert_eq!(found[0]["inner_path"], "sparse.conf", "{json:#}");
    assert!(errors(&json).is_empty(), "{:?}", errors(&json));
}

// ---------------------------------------------------------------------------------------------
// 5. Repeated layers and repeated paths stay linear
// ---------------------------------------------------------------------------------------------

/// One layer blob listed 20,000 times: walked once, its secret reported once
/// (at its last listing, which the final image shows), in linear time.
#[test]
fn a_layer_listed_many_times_is_scanned_once() {
    let dir = tmp();
    let layout = Layout::new(&dir.path().join("listed")).unwrap();
    let blob = layout.zstd_layer(|w| {
        for i in 0..50 {
            w.write_all(&file(
                &format!("app/{i}.conf"),
                format!("key = {}\n", canary(200 + i)).as_bytes(),
            ))
            .unwrap();
        }
        w.write_all(&end()).unwrap();
    });
    let times = 20_000;
    let layers = vec![blob; times];
    let target = layout.finish(&layers);
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 1, "{}", &err[..err.len().min(2000)]);
    let json = json_of(&out);
    let found = findings_of(&json, "test-canary");
    assert_eq!(found.len(), 50, "each secret once");
    assert!(found.iter().all(|f| f["layer_index"] == times - 1 && f["status"] == "present"));
}

/// A path written 150,000 times in one layer, each version kept alive by a
/// hardlink made right after it: past the per-path limit the entries are
/// not read (exit 2, said so), and what was read resolves in linear time.
#[test]
fn a_path_written_over_and_over_is_bounded() {
    let dir = tmp();
    let layout = Layout::new(&dir.path().join("samepath")).unwrap();
    let blob = layout.zstd_layer(|w| {
        for i in 0..150_000u32 {
            w.write_all(&file("s.conf", format!("key = {}\n", canary(1_000_000 + i)).as_bytes()))
                .unwrap();
            w.write_all(&link_header(format!("l/{i}").as_bytes(), b"s.conf")).unwrap();
        }
        w.write_all(&end()).unwrap();
    });
    let target = layout.finish(&[blob]);
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 2, "{}", &err[..err.len().min(2000)]);
    let json = json_of(&out);
    assert!(
        errors(&json).iter().any(|e| e.contains("\"/s.conf\" is written more than 64 times")),
        "{:?}",
        &errors(&json)[..3]
    );
    // The versions that were read are held by their links: present.
    let found = findings_of(&json, "test-canary");
    assert_eq!(found.len(), 64);
    assert!(found.iter().all(|f| f["status"] == "present"), "{json:#}");
}

// ---------------------------------------------------------------------------------------------
// 6. Many matches: cost per finding kept, the rest counted
// ---------------------------------------------------------------------------------------------

/// The table rows whose cost once grew with every match (a file of one
/// repeated line, an instruction holding thousands of secrets, tfstate
/// files of tens of thousands of values), at a quarter of the issue's
/// sizes or less: the findings budget lists 100 per rule and file, and
/// memory and time stay bounded.
#[test]
fn many_matches_cost_linear_time_and_flat_memory() {
    let dir = tmp();
    // 24 MB of one line (the issue's 200 MB made 3.08M findings in 3.4 GB).
    let line = format!("aws_access_key_id = AKIAZTESTFAKEEXAMPLE key = {}\n", canary(110));
    let n = (24 << 20) / line.len();
    let size = (n * line.len()) as u64;
    let layout = Layout::new(&dir.path().join("lines")).unwrap();
    let blob = layout.zstd_layer(|w| {
        w.write_all(&header(b"app/keys.txt", b'0', size)).unwrap();
        let block = line.repeat(10_000);
        for _ in 0..n / 10_000 {
            w.write_all(block.as_bytes()).unwrap();
        }
        w.write_all(line.repeat(n % 10_000).as_bytes()).unwrap();
        w.write_all(&vec![0; padding(size)]).unwrap();
        w.write_all(&end()).unwrap();
    });
    let target = layout.finish(&[blob]);
    let (code, out, err) = scan_bounded(&target, &[]);
    assert_eq!(code, 1, "{}", &err[..err.len().min(2000)]);
    let found = findings_of(&json_of(&out), "test-canary");
    assert!(!found.is_empty() && found.len() <= 100, "{} findings", found.len());

    // A 1 MB instruction holding 16,000 secrets (once cloned into every hit: 15.8 GB).
    let mut instr: String = (0..16_000).map(|i| format!(" key={}", canary(120_000 + i))).collect();
    instr = format!("RUN echo{instr} {}", "x".repeat((1 << 20) - instr.len()));
    // Two tfstate files of 37,000 passwords each (once quadratic per match).
    let state = |f: u32| {
        let values: Vec<String> = (0..37_000)
            .map(|i| format!(r#"{{"password": "Tst{:07}Qz"}}"#, f * 37_000 + i))
            .collect();
        format!(r#"{{"version": 4, "resources": [{}]}}"#, values.join(","))
    };
    let spec = ImageSpec {
        layers: vec![Layer::new(
            &instr,
            vec![
                Entry::file("infra/0/terraform.tfstate", state(0)),
                Entry::file("infra/1/terraform.tfstate", state(1)),
            ],
        )],
        ..ImageSpec::default()
    };
    let p = dir.path().join("many.tar");
    ig::write_image(&spec, Format::OciArchive, &p).unwrap();
    let (code, out, err) = scan_bounded(&p, &[]);
    assert_eq!(code, 1, "{}", &err[..err.len().min(2000)]);
    let json = json_of(&out);
    let listed = |path: Option<&str>| {
        json["findings"].as_array().unwrap().iter().filter(|f| f["path"].as_str() == path).count()
    };
    for path in [None, Some("/infra/0/terraform.tfstate"), Some("/infra/1/terraform.tfstate")] {
        let n = listed(path);
        assert!((1..=100).contains(&n), "{path:?}: {n} findings");
    }
}
