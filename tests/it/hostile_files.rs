//! Hostile files inside layers, round 2: archives and compressed files that
//! real tools write (zstd, gzip, zip, dpkg-deb, rpmbuild, cpio), shaped to
//! hide a secret from a reader that trusts their framing: a zstd skippable
//! frame, bytes after the last gzip member, a corrupt zip member before the
//! secret, a member only a local header lists, an encrypted member, and the
//! package archives (`.deb`, `.rpm`, initramfs cpio) a layer leaves behind.
//! Each secret must be found, or the scan must say what it did not read.

use std::path::Path;
use std::process::Command;

use crate::engines::{messages, need};
use crate::util::*;

/// Writes `text` to `dir/name` (creating its directories) and returns the path.
fn put(dir: &Path, name: &str, text: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

/// Scans a one-layer image of `files`: (exit code, report, stderr).
fn scan_files(dir: &Path, name: &str, files: Vec<Entry>) -> (i32, serde_json::Value, String) {
    let path = out_path(dir, Format::OciArchive, name);
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /", files)], ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    scan_json(&path, &[])
}

/// The canary findings as (path, inner path), sorted.
fn found(json: &serde_json::Value) -> Vec<(String, String)> {
    let mut v: Vec<_> = findings_of(json, "test-canary")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["inner_path"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn pair(path: &str, inner: &str) -> (String, String) {
    (path.to_owned(), inner.to_owned())
}

/// A zstd skippable frame (magic 0x184D2A50 + `n`) holding `data`.
fn skippable(n: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x50 + n, 0x2a, 0x4d, 0x18];
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(data);
    f
}

#[test]
fn zstd_skippable_frames_inside_a_zst_file_are_scanned() {
    let dir = tmp();
    let d = dir.path();
    put(d, "plain", "nothing to see here\n".repeat(100).as_bytes());
    put(d, "secret", format!("token = {}\n", canary(51)).as_bytes());
    let plain = tool(d, "zstd", &["-q", "-c", "plain"]);
    let secret = tool(d, "zstd", &["-q", "-c", "secret"]);
    let hidden = format!("hidden: {}\n", canary(52));
    let files = vec![
        // A skippable frame between two frames: `zstd -d` skips it, and so did strata.
        Entry::file(
            "app/mid.zst",
            [plain.clone(), skippable(3, hidden.as_bytes()), plain].concat(),
        ),
        // A file that starts with a skippable frame is still zstd.
        Entry::file("app/first.zst", [skippable(0, b"producer metadata"), secret].concat()),
    ];
    let (code, json, err) = scan_files(d, "zst", files);
    assert_eq!(code, 1, "{err}");
    assert!(err.is_empty(), "{err}");
    assert_eq!(
        found(&json),
        [pair("/app/first.zst", "first"), pair("/app/mid.zst", "<zstd skippable frame 2>")]
    );
}

#[test]
fn lz4_frames_after_the_first_and_tars_after_an_end_marker_are_read() {
    let dir = tmp();
    let d = dir.path();
    put(d, "plain", "nothing to see here\n".repeat(100).as_bytes());
    put(d, "secret", format!("token = {}\n", canary(56)).as_bytes());
    let plain = tool(d, "lz4", &["-q", "-c", "plain"]);
    let secret = tool(d, "lz4", &["-q", "-c", "secret"]);
    let hidden = format!("hidden: {}\n", canary(57));
    // Data after a tar's end-of-archive marker: text, and a second tar (`tar -i` reads it).
    put(d, "tree/a.txt", b"nothing\n");
    put(d, "more/b.conf", format!("key = {}\n", canary(59)).as_bytes());
    let first = tool(d, "tar", &["--mtime=@0", "-cf", "-", "-C", "tree", "a.txt"]);
    let second = tool(d, "tar", &["--mtime=@0", "-cf", "-", "-C", "more", "b.conf"]);
    let files = vec![
        // `lz4 -d` decodes concatenated frames and skips skippable ones.
        Entry::file("app/two.lz4", [plain.clone(), secret].concat()),
        Entry::file(
            "app/skip.lz4",
            [plain.clone(), skippable(1, hidden.as_bytes()), plain].concat(),
        ),
        Entry::file(
            "app/text.tar",
            [first.clone(), format!("after: {}\n", canary(58)).into_bytes()].concat(),
        ),
        Entry::file("app/cat.tar", [first, second].concat()),
    ];
    let (code, json, err) = scan_files(d, "frames", files);
    assert_eq!(code, 1, "{err}");
    assert!(err.is_empty(), "{err}");
    assert_eq!(
        found(&json),
        [
            pair("/app/cat.tar", "<after the tar end-of-archive marker>!b.conf"),
            pair("/app/skip.lz4", "<lz4 skippable frame 2>"),
            pair("/app/text.tar", "<after the tar end-of-archive marker>"),
            pair("/app/two.lz4", "two"),
        ]
    );
}

#[test]
fn bytes_after_a_stream_and_a_corrupt_member_are_scanned() {
    let dir = tmp();
    let d = dir.path();
    put(d, "plain", "nothing to see here\n".repeat(100).as_bytes());
    put(d, "secret", format!("token = {}\n", canary(55)).as_bytes());
    let gz = tool(d, "gzip", &["-n", "-c", "plain"]);
    let zst = tool(d, "zstd", &["-q", "-c", "plain"]);
    // gzip checks a member's CRC after its data: a small file is one read, once dropped whole.
    let mut bad_crc = tool(d, "gzip", &["-n", "-c", "secret"]);
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 0xff;
    let files = vec![
        Entry::file("app/a.gz", [gz, format!("\ntoken {}\n", canary(53)).into_bytes()].concat()),
        Entry::file("app/b.zst", [zst, format!("\ntoken {}\n", canary(54)).into_bytes()].concat()),
        Entry::file("app/c.gz", bad_crc),
    ];
    let (code, json, err) = scan_files(d, "trailing", files);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        found(&json),
        [
            pair("/app/a.gz", "<bytes not decoded>"),
            pair("/app/b.zst", "<bytes not decoded>"),
            pair("/app/c.gz", "c"),
        ]
    );
    let warnings = messages(&json, "warning").join("\n");
    assert!(
        warnings.contains("/app/a.gz: unreadable nested archive: invalid gzip header"),
        "{warnings}"
    );
    assert!(
        warnings.contains("/app/c.gz: unreadable nested archive: corrupt gzip stream"),
        "{warnings}"
    );
    assert!(!err.contains("CANARY_0000000000"), "no whole canary in a message: {err}");
}

/// `zip` output with the central directory's second entry taken out (the local header
/// and data stay where they are): what a central-directory reader never sees.
fn drop_second_central_entry(zip: &[u8]) -> Vec<u8> {
    let eocd = zip.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
    let u32_at = |i: usize| u32::from_le_bytes(zip[i..i + 4].try_into().unwrap()) as usize;
    let (cd_size, cd_off) = (u32_at(eocd + 12), u32_at(eocd + 16));
    let cd = &zip[cd_off..cd_off + cd_size];
    let second = cd[4..].windows(4).position(|w| w == b"PK\x01\x02").unwrap() + 4;
    let third =
        cd[second + 4..].windows(4).position(|w| w == b"PK\x01\x02").map(|p| p + second + 4);
    let kept = [&cd[..second], third.map_or(&[][..], |t| &cd[t..])].concat();
    let mut end = zip[eocd..].to_vec();
    let entries = u16::from_le_bytes([end[8], end[9]]) - 1;
    end[8..10].copy_from_slice(&entries.to_le_bytes());
    end[10..12].copy_from_slice(&entries.to_le_bytes());
    end[12..16].copy_from_slice(&(kept.len() as u32).to_le_bytes());
    [&zip[..cd_off], &kept, &end].concat()
}

/// Sets a zip's compression method (local header and central directory) to `method`.
fn set_method(mut zip: Vec<u8>, method: u16) -> Vec<u8> {
    let local = zip.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    zip[local + 8..local + 10].copy_from_slice(&method.to_le_bytes());
    let central = zip.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    zip[central + 10..central + 12].copy_from_slice(&method.to_le_bytes());
    zip
}

#[test]
fn zip_members_hidden_from_a_central_directory_reader_are_found() {
    let dir = tmp();
    let d = dir.path();
    put(d, "src/a.txt", "nothing to see here\n".repeat(50).as_bytes());
    put(d, "src/cfg.txt", format!("token = {}\n{}", canary(61), "filler\n".repeat(200)).as_bytes());
    let zip = |name: &str, args: &[&str]| {
        let mut a = vec!["-q", "-X", name];
        a.extend_from_slice(args);
        tool(d, "zip", &a);
        std::fs::read(d.join(name)).unwrap()
    };
    // bzip2, which `zip -Z bzip2` writes: read since zip's bzip2 support is on.
    let bzip2 = zip("bz.zip", &["-Z", "bzip2", "src/cfg.txt"]);
    // A corrupt first member (a stored byte changed: its CRC fails) before the secret.
    let mut corrupt = zip("bad.zip", &["-0", "src/a.txt", "src/cfg.txt"]);
    let at = corrupt.windows(7).position(|w| w == b"nothing").unwrap();
    corrupt[at] = b'N';
    // A member only its local header lists, as Java's ZipInputStream reads it.
    put(d, "src/hidden.txt", format!("token = {}\n", canary(62)).repeat(3).as_bytes());
    let local_only = drop_second_central_entry(&zip("local.zip", &["src/a.txt", "src/hidden.txt"]));
    // A comment, which `unzip -l` prints.
    put(d, "comment", format!("built with {}\n", canary(63)).as_bytes());
    let mut with_comment = Command::new(need("zip"));
    with_comment.args(["-q", "-X", "-z", "c2.zip", "src/a.txt"]).current_dir(d);
    with_comment.stdin(std::fs::File::open(d.join("comment")).unwrap());
    assert!(with_comment.status().unwrap().success());
    // Spring Boot's "fully executable" jar: a launch script, then the zip (offsets as
    // `zip` wrote them, not moved); and a jar cut short before its central directory.
    put(
        d,
        "boot/BOOT-INF/classes/application.properties",
        format!("spring.datasource.password={}\n", canary(65)).as_bytes(),
    );
    let mut boot_zip = Command::new(need("zip"));
    boot_zip.args(["-q", "-X", "-r", "../boot.zip", "."]).current_dir(d.join("boot"));
    assert!(boot_zip.status().unwrap().success());
    let boot = std::fs::read(d.join("boot.zip")).unwrap();
    let script = b"#!/bin/bash\n# launch script\nexec java -jar \"$0\" \"$@\"\n".to_vec();
    let cut = boot[..boot.len() - 30].to_vec();
    put(d, "bundle.zip", &bzip2);
    let zip_gz = tool(d, "gzip", &["-n", "-c", "bundle.zip"]);
    let files = vec![
        // A zip gzipped: opened one level down.
        Entry::file("app/bundle.zip.gz", zip_gz),
        Entry::file("app/bz.zip", bzip2),
        Entry::file("app/boot.jar", [script, boot].concat()),
        Entry::file("app/cut.jar", cut),
        Entry::file("app/bad.zip", corrupt),
        Entry::file("app/local.zip", local_only),
        Entry::file("app/c.zip", std::fs::read(d.join("c2.zip")).unwrap()),
    ];
    let (code, json, err) = scan_files(d, "zips", files);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        found(&json),
        [
            pair("/app/bad.zip", "src/cfg.txt"),
            pair("/app/boot.jar", "BOOT-INF/classes/application.properties"),
            pair("/app/bundle.zip.gz", "bundle.zip!src/cfg.txt"),
            pair("/app/bz.zip", "src/cfg.txt"),
            pair("/app/c.zip", "<bytes outside the zip's members>"),
            pair("/app/cut.jar", "BOOT-INF/classes/application.properties"),
            pair("/app/local.zip", "src/hidden.txt"),
        ]
    );
    let warnings = messages(&json, "warning").join("\n");
    assert!(warnings.contains("/app/bad.zip!src/a.txt: unreadable archive member"), "{warnings}");
    assert!(warnings.contains("/app/cut.jar: unreadable zip: invalid Zip archive"), "{warnings}");
    assert!(
        warnings.contains("/app/local.zip: zip member at byte")
            && warnings.contains("is not in the central directory"),
        "{warnings}"
    );
}

#[test]
fn zip_members_strata_cannot_read_leave_the_scan_incomplete() {
    let dir = tmp();
    let d = dir.path();
    put(d, "src/cfg.txt", format!("token = {}\n", canary(64)).as_bytes());
    tool(d, "zip", &["-q", "-X", "-P", "FAKE-password", "enc.zip", "src/cfg.txt"]);
    tool(d, "zip", &["-q", "-X", "-0", "stored.zip", "src/cfg.txt"]);
    // Method 98 (PPMd), which strata does not decompress, and method 14 (LZMA) on bytes
    // that are not LZMA.
    let ppmd = set_method(std::fs::read(d.join("stored.zip")).unwrap(), 98);
    let lzma = set_method(std::fs::read(d.join("stored.zip")).unwrap(), 14);
    // A zstd window of 2 GiB (`--long=31`) and an xz dictionary of 512 MiB: over the
    // decoders' 128 MiB, so neither is decompressed.
    put(d, "long", format!("token = {}\n{}", canary(66), "x".repeat(1 << 20)).as_bytes());
    // Piped, so that zstd does not size the window down to the input.
    need("zstd");
    let long = tool(d, "sh", &["-c", "cat long | zstd -q --long=31 -c"]);
    let big_dict = tool(d, "xz", &["-c", "--lzma2=dict=512MiB", "long"]);
    let files = vec![
        Entry::file("app/long.zst", long),
        Entry::file("app/dict.xz", big_dict),
        Entry::file("app/enc.zip", std::fs::read(d.join("enc.zip")).unwrap()),
        Entry::file("app/lzma.jar", lzma),
        Entry::file("app/ppmd.jar", ppmd),
    ];
    let (code, json, err) = scan_files(d, "unread", files);
    assert_eq!(code, 2, "{err}");
    let errors = messages(&json, "error").join("\n");
    assert!(
        errors.contains("/app/enc.zip: zip member 0: Password required to decrypt file; not read"),
        "{errors}"
    );
    for (file, what) in [("long.zst", "window"), ("dict.xz", "dictionary")] {
        assert!(
            errors.contains(&format!("/app/{file}: nested archive limit reached: its {what} is over the decoder's 128 MiB memory limit, so it was not decompressed")),
            "{errors}"
        );
    }
    assert!(
        errors.contains("/app/ppmd.jar: zip member 0: compressed with")
            && errors.contains("which strata does not decompress; not read"),
        "{errors}"
    );
    assert!(
        errors.contains("/app/lzma.jar: zip member 0: not an LZMA member header; not read"),
        "{errors}"
    );
}

/// Writes zips whose members use the methods Python's zipfile writes beside deflate (LZMA),
/// or that a stored or deflated member becomes once relabelled: Deflate64 (method 9, which
/// decodes a deflate stream that uses no length code 285 the same) and xz (method 95, the
/// bytes of `xz -c` stored with the decoded size and CRC), and an LZMA member whose
/// dictionary is 1 GiB.
const ZIP_METHODS: &str = r#"
import sys, zipfile, zlib, lzma, struct
secret = open(sys.argv[1], 'rb').read()
def patch(path, method, crc=None, size=None):
    z = bytearray(open(path, 'rb').read())
    for sig, m, c, u in ((b'PK\x03\x04', 8, 14, 22), (b'PK\x01\x02', 10, 16, 24)):
        at = z.find(sig)
        z[at + m:at + m + 2] = struct.pack('<H', method)
        if crc is not None:
            z[at + c:at + c + 4] = struct.pack('<I', crc)
            z[at + u:at + u + 4] = struct.pack('<I', size)
    open(path, 'wb').write(z)
with zipfile.ZipFile('lzma.zip', 'w', zipfile.ZIP_LZMA) as z:
    z.writestr('conf/lzma.txt', secret)
with zipfile.ZipFile('d64.zip', 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('conf/d64.txt', secret)
patch('d64.zip', 9)
with zipfile.ZipFile('xz.zip', 'w', zipfile.ZIP_STORED) as z:
    z.writestr('conf/xz.txt', lzma.compress(secret, format=lzma.FORMAT_XZ))
patch('xz.zip', 95, zlib.crc32(secret), len(secret))
z = bytearray(open('lzma.zip', 'rb').read())
at = z.find(b'PK\x03\x04')
data = at + 30 + struct.unpack('<H', z[at + 26:at + 28])[0] + struct.unpack('<H', z[at + 28:at + 30])[0]
z[data + 5:data + 9] = struct.pack('<I', 1 << 30)
open('bigdict.zip', 'wb').write(z)
z = bytearray(open('d64.zip', 'rb').read())
for sig, u in ((b'PK\x03\x04', 22), (b'PK\x01\x02', 24)):
    at = z.find(sig)
    z[at + u:at + u + 4] = struct.pack('<I', 5)
open('small.zip', 'wb').write(z)
"#;

/// Zip members compressed with LZMA, Deflate64 or xz are decoded (they were errors, not
/// read), checked against their CRC, and held to the xz decoder's memory limit.
#[test]
fn zip_members_in_lzma_deflate64_and_xz_are_read() {
    let dir = tmp();
    let d = dir.path();
    put(d, "secret", format!("token = {}\nand some text after it\n", canary(67)).as_bytes());
    put(d, "methods.py", ZIP_METHODS.as_bytes());
    tool(d, "python3", &["methods.py", "secret"]);
    let read = |n: &str| std::fs::read(d.join(n)).unwrap();
    let mut bad_crc = read("lzma.zip");
    // The central directory's CRC of the member (after its signature, 16 bytes in).
    let central = bad_crc.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    bad_crc[central + 16] ^= 0xff;
    let files = vec![
        Entry::file("app/lzma.jar", read("lzma.zip")),
        Entry::file("app/d64.zip", read("d64.zip")),
        Entry::file("app/xz.zip", read("xz.zip")),
        Entry::file("app/big.zip", read("bigdict.zip")),
        Entry::file("app/crc.zip", bad_crc),
        // Decodes to more than the 5 bytes it declares: stopped there, not read on.
        Entry::file("app/small.zip", read("small.zip")),
    ];
    let (code, json, err) = scan_files(d, "methods", files);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        found(&json),
        [
            pair("/app/crc.zip", "conf/lzma.txt"),
            pair("/app/d64.zip", "conf/d64.txt"),
            pair("/app/lzma.jar", "conf/lzma.txt"),
            pair("/app/xz.zip", "conf/xz.txt"),
        ]
    );
    let errors = messages(&json, "error");
    assert_eq!(
        errors,
        [format!(
            "{}: layer 0: /app/big.zip: zip member 0: an LZMA member whose dictionary is over the decoder's 128 MiB memory limit, so it was not decompressed; not read",
            d.join("methods.tar").display()
        )]
    );
    let warnings = messages(&json, "warning").join("\n");
    assert!(
        warnings
            .contains("/app/crc.zip!conf/lzma.txt: unreadable archive member: Invalid checksum"),
        "{warnings}"
    );
    assert!(
        warnings.contains("/app/small.zip!conf/d64.txt: unreadable archive member: more bytes decoded than the 5 the archive says"),
        "{warnings}"
    );
}

/// The same members when only their local headers name them (the central directory cut
/// off, as a streaming reader would still extract them): decoded too, from the sizes the
/// local header gives, under the same memory limit.
#[test]
fn zip_members_only_local_headers_name_are_decoded_in_every_method() {
    let dir = tmp();
    let d = dir.path();
    put(d, "secret", format!("token = {}\nand some text after it\n", canary(68)).as_bytes());
    put(d, "methods.py", ZIP_METHODS.as_bytes());
    tool(d, "python3", &["methods.py", "secret"]);
    let local_only = |n: &str| {
        let z = std::fs::read(d.join(n)).unwrap();
        let central = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        z[..central].to_vec()
    };
    let files = vec![
        Entry::file("app/lzma.jar", local_only("lzma.zip")),
        Entry::file("app/d64.zip", local_only("d64.zip")),
        Entry::file("app/xz.zip", local_only("xz.zip")),
        Entry::file("app/big.zip", local_only("bigdict.zip")),
    ];
    let (code, json, err) = scan_files(d, "local", files);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        found(&json),
        [
            pair("/app/d64.zip", "conf/d64.txt"),
            pair("/app/lzma.jar", "conf/lzma.txt"),
            pair("/app/xz.zip", "conf/xz.txt"),
        ]
    );
    let errors = messages(&json, "error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("/app/big.zip: zip member at byte 0 is not in the central directory"),
        "{errors:?}"
    );
    assert!(errors[0].contains("over the decoder's 128 MiB memory limit"), "{errors:?}");
}

#[test]
fn package_archives_left_in_a_layer_are_opened() {
    let dir = tmp();
    let d = dir.path();
    // .deb: an ar archive of control.tar.* and data.tar.*, as dpkg-deb builds it.
    put(d, "deb/DEBIAN/control", b"Package: fakepkg\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@example.com>\nDescription: test\n");
    put(d, "deb/etc/app/conf", format!("api_token = {}\n", canary(71)).as_bytes());
    tool(d, "dpkg-deb", &["--root-owner-group", "-Zxz", "--build", "deb", "xz.deb"]);
    tool(d, "dpkg-deb", &["--root-owner-group", "-Zzstd", "--build", "deb", "zst.deb"]);
    // .rpm: headers (a scriptlet is there, in plain text), then a compressed cpio payload.
    let top = d.join("rpm");
    for sub in ["SPECS", "BUILD", "RPMS", "SOURCES", "SRPMS"] {
        std::fs::create_dir_all(top.join(sub)).unwrap();
    }
    let spec = format!(
        "Name: fakepkg\nVersion: 1.0\nRelease: 1\nSummary: test\nLicense: MIT\nBuildArch: noarch\n\
         %description\ntest\n%install\nmkdir -p %{{buildroot}}/etc/app\n\
         printf 'api_token = {}\\n' > %{{buildroot}}/etc/app/conf\n\
         %post\necho 'REGISTRY_TOKEN={}' > /dev/null\n%files\n/etc/app/conf\n",
        canary(72),
        canary(73)
    );
    put(&top, "SPECS/fake.spec", spec.as_bytes());
    let define = format!("_topdir {}", top.display());
    tool(d, "rpmbuild", &["--define", &define, "-bb", "rpm/SPECS/fake.spec"]);
    let built = top.join("RPMS/noarch/fakepkg-1.0-1.noarch.rpm");
    let rpm = std::fs::read(&built).unwrap();
    // The same with a legacy LZMA payload (rpm's w9.lzdio), as old distributions shipped.
    tool(
        d,
        "rpmbuild",
        &[
            "--define",
            &define,
            "--define",
            "_binary_payload w9.lzdio",
            "-bb",
            "rpm/SPECS/fake.spec",
        ],
    );
    let rpm_lzma = std::fs::read(&built).unwrap();
    put(d, "notes", format!("token = {}\n", canary(75)).as_bytes());
    let lzma = tool(d, "xz", &["--format=lzma", "-c", "notes"]);
    // An initramfs: an uncompressed cpio (early microcode), then a gzipped one.
    put(d, "early/kernel/x86/microcode/GenuineIntel.bin", b"microcode");
    put(d, "main/etc/app.conf", format!("key = {}\n", canary(74)).as_bytes());
    need("cpio");
    let cpio = |from: &str, format: &str| {
        let list = Command::new("sh")
            .args(["-c", &format!("cd {from} && find . | sort | cpio -o --quiet -H {format}")])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
        list.stdout
    };
    put(d, "main.cpio", &cpio("main", "newc"));
    let initrd = [cpio("early", "newc"), tool(d, "gzip", &["-n", "-c", "main.cpio"])].concat();
    // A static library as GNU ar writes it: long names in its `//` table, odd sizes padded.
    put(d, "lib/a_very_very_long_member_name_one.txt", b"x");
    put(d, "lib/s.o", b"abc");
    put(
        d,
        "lib/another_long_member_name_secret.conf",
        format!("key = {}\n", canary(76)).as_bytes(),
    );
    let members =
        ["a_very_very_long_member_name_one.txt", "s.o", "another_long_member_name_secret.conf"];
    let mut ar = Command::new(need("ar"));
    ar.args(["rc", "../libx.a"]).args(members).current_dir(d.join("lib"));
    assert!(ar.status().unwrap().success());
    let files = vec![
        Entry::file("opt/app/lib/libx.a", std::fs::read(d.join("libx.a")).unwrap()),
        Entry::file("var/cache/apt/archives/xz.deb", std::fs::read(d.join("xz.deb")).unwrap()),
        Entry::file("var/cache/apt/archives/zst.deb", std::fs::read(d.join("zst.deb")).unwrap()),
        Entry::file("tmp/fakepkg.rpm", rpm),
        Entry::file("tmp/fakepkg-lzma.rpm", rpm_lzma),
        Entry::file("tmp/notes.lzma", lzma),
        Entry::file("boot/initrd.img", initrd),
        Entry::file("boot/odc.cpio", cpio("main", "odc")),
    ];
    let (code, json, err) = scan_files(d, "packages", files);
    assert_eq!(code, 1, "{err}");
    assert!(messages(&json, "error").is_empty(), "{json:#}");
    assert_eq!(
        found(&json),
        [
            pair("/boot/initrd.img", "<after the cpio trailer>!etc/app.conf"),
            pair("/boot/odc.cpio", "etc/app.conf"),
            pair("/opt/app/lib/libx.a", "another_long_member_name_secret.conf"),
            pair("/tmp/fakepkg-lzma.rpm", "<rpm header>"),
            pair("/tmp/fakepkg-lzma.rpm", "etc/app/conf"),
            pair("/tmp/fakepkg.rpm", "<rpm header>"),
            pair("/tmp/fakepkg.rpm", "etc/app/conf"),
            pair("/tmp/notes.lzma", "notes"),
            pair("/var/cache/apt/archives/xz.deb", "data.tar.xz!etc/app/conf"),
            pair("/var/cache/apt/archives/zst.deb", "data.tar.zst!etc/app/conf"),
        ]
    );
}

/// lzip files are read as `lzip -d` reads them: several members in a row, a tar inside
/// as one level, and bytes after the last member scanned as they are (a warning).
/// Formats strata does not decompress (7z, rar) leave the scan incomplete (exit 2), said
/// in words that name the file and what was done with it.
#[test]
fn lzip_is_read_and_7z_or_rar_leave_the_scan_incomplete() {
    let dir = tmp();
    let d = dir.path();
    put(d, "plain", "nothing to see here\n".repeat(100).as_bytes());
    put(d, "secret", format!("token = {}\n", canary(91)).as_bytes());
    put(d, "tree/etc/app.conf", format!("key = {}\n", canary(92)).as_bytes());
    let plain = tool(d, "lzip", &["-c", "plain"]);
    let secret = tool(d, "lzip", &["-c", "secret"]);
    tool(d, "tar", &["--mtime=@0", "--lzip", "-cf", "t.tar.lz", "-C", "tree", "etc"]);
    let tar_lz = std::fs::read(d.join("t.tar.lz")).unwrap();
    let files = vec![
        Entry::file("app/two.lz", [plain.clone(), secret].concat()),
        Entry::file("app/t.tar.lz", tar_lz),
        Entry::file(
            "app/after.lz",
            [plain, format!("\nafter {}\n", canary(93)).into_bytes()].concat(),
        ),
    ];
    let (code, json, err) = scan_files(d, "lzip", files);
    assert_eq!(code, 1, "{err}");
    assert!(messages(&json, "error").is_empty(), "{json:#}");
    assert_eq!(
        found(&json),
        [
            pair("/app/after.lz", "<bytes not decoded>"),
            pair("/app/t.tar.lz", "etc/app.conf"),
            pair("/app/two.lz", "two"),
        ]
    );
    let warnings = messages(&json, "warning").join("\n");
    assert!(
        warnings
            .contains("/app/after.lz: unreadable nested archive: bytes after the last lzip member"),
        "{warnings}"
    );

    // 7z and rar by their signatures (no tool here writes them): raw bytes only, exit 2.
    let hidden = format!(" key = {} ", canary(94));
    let files = vec![
        Entry::file("opt/a.7z", [&b"7z\xbc\xaf\x27\x1c\x00\x04"[..], hidden.as_bytes()].concat()),
        Entry::file("opt/b.rar", [&b"Rar!\x1a\x07\x01\x00"[..], hidden.as_bytes()].concat()),
    ];
    let (code, json, err) = scan_files(d, "unsupported", files);
    assert_eq!(code, 2, "{err}");
    let errors = messages(&json, "error");
    for (path, format) in [("/opt/a.7z", "7z"), ("/opt/b.rar", "rar")] {
        let want = format!(
            "{path}: {format} data, which strata does not decompress: only its raw bytes were scanned"
        );
        assert!(errors.iter().any(|e| e.contains(&want)), "{want}: {errors:?}");
    }
    assert_eq!(found(&json), [pair("/opt/a.7z", ""), pair("/opt/b.rar", "")]);
}

/// An old binary cpio (`cpio -H bin`, little-endian here) with its 16-bit header words
/// byte-swapped: the same archive as a big-endian machine writes it.
fn swap_binary_cpio(mut cpio: Vec<u8>) -> Vec<u8> {
    let mut at = 0;
    while at + 26 <= cpio.len() {
        let word = |c: &[u8], i: usize| {
            usize::from(u16::from_le_bytes([c[at + i * 2], c[at + i * 2 + 1]]))
        };
        let (namesize, size) = (word(&cpio, 10), (word(&cpio, 11) << 16) | word(&cpio, 12));
        let trailer = cpio[at + 26..].starts_with(b"TRAILER!!!");
        for i in 0..13 {
            cpio.swap(at + i * 2, at + i * 2 + 1);
        }
        at += 26 + namesize + namesize % 2 + size + size % 2;
        if trailer {
            break;
        }
    }
    cpio
}

/// The old binary cpio format (`cpio -H bin`), in both byte orders, was scanned as raw
/// bytes: a compressed member's secret went unseen. Its members are read now, names of
/// odd length and data of odd size padded as the format pads them.
#[test]
fn old_binary_cpio_archives_are_read() {
    let dir = tmp();
    let d = dir.path();
    put(d, "tree/etc/a.conf", format!("key = {}\n", canary(81)).as_bytes());
    put(d, "notes", format!("token = {}\n", canary(82)).as_bytes());
    let gz = tool(d, "gzip", &["-n", "-c", "notes"]);
    put(d, "tree/var/n.gz", &gz);
    put(d, "tree/odd", b"odd");
    need("cpio");
    let o = Command::new("sh")
        .args(["-c", "cd tree && find . | sort | cpio -o --quiet -H bin"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let le = o.stdout;
    assert_eq!(&le[..2], &[0xc7, 0x71], "cpio -H bin writes this machine's order");
    let be = swap_binary_cpio(le.clone());
    put(d, "be.cpio", &be);
    let be_gz = tool(d, "gzip", &["-n", "-c", "be.cpio"]);
    let files = vec![
        Entry::file("boot/le.cpio", le),
        Entry::file("boot/be.cpio", be),
        Entry::file("boot/be.cpio.gz", be_gz),
    ];
    let (code, json, err) = scan_files(d, "bincpio", files);
    assert_eq!(code, 1, "{err}");
    assert!(messages(&json, "error").is_empty(), "{json:#}");
    assert_eq!(
        found(&json),
        [
            pair("/boot/be.cpio", "etc/a.conf"),
            pair("/boot/be.cpio", "var/n.gz!n"),
            pair("/boot/be.cpio.gz", "etc/a.conf"),
            pair("/boot/be.cpio.gz", "var/n.gz!n"),
            pair("/boot/le.cpio", "etc/a.conf"),
            pair("/boot/le.cpio", "var/n.gz!n"),
        ]
    );
}

/// A newc cpio header for a member `name` of `size` bytes (`namesize` as given).
fn newc_header(name: &[u8], namesize: usize, size: usize) -> Vec<u8> {
    let mut h = b"070701".to_vec();
    let fields = [1, 0o100644, 0, 0, 1, 0, size, 0, 0, 0, 0, namesize, 0];
    for f in fields {
        h.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    h.extend_from_slice(name);
    while !h.len().is_multiple_of(4) {
        h.push(0);
    }
    h
}

#[test]
fn package_archives_are_held_to_the_nested_budgets() {
    let dir = tmp();
    let d = dir.path();
    // A cpio member whose name is over the 64 KiB name limit: the archive stops there.
    let long = vec![b'n'; 70_000];
    let mut big_name = newc_header(&long, long.len() + 1, 0);
    big_name.extend_from_slice(&newc_header(b"TRAILER!!!\0", 11, 0));
    // An ar archive of more members than the per-archive limit (100,000).
    let mut many = b"!<arch>\n".to_vec();
    for i in 0..100_010u32 {
        many.extend_from_slice(
            format!("{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", format!("m{i}/"), 0, 0, 0, 644, 2)
                .as_bytes(),
        );
        many.extend_from_slice(b"x\n");
    }
    let files = vec![Entry::file("boot/long.cpio", big_name), Entry::file("lib/libmany.a", many)];
    let start = std::time::Instant::now();
    let (code, json, err) = scan_files(d, "budgets", files);
    assert_eq!(code, 2, "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(60), "{:?}", start.elapsed());
    let errors = messages(&json, "error").join("\n");
    assert!(
        errors.contains("/boot/long.cpio: nested archive limit reached: a member name of 70001 bytes exceeds the 65536-byte limit"),
        "{errors}"
    );
    assert!(
        errors.contains("/lib/libmany.a: nested archive limit reached: more than 100000 members"),
        "{errors}"
    );
}

/// A stored local header for `name` declaring `size` bytes of data (none follow).
fn local_header(name: &[u8], size: u32) -> Vec<u8> {
    let mut h = b"PK\x03\x04".to_vec();
    h.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(name);
    h
}

#[test]
fn local_headers_outside_the_central_directory_are_read_in_bounded_time() {
    let dir = tmp();
    let d = dir.path();
    // 8 MB of local headers before a real zip, each declaring 4 MB of stored data: read as
    // a streaming reader reads them, each would read on through the others (quadratic).
    let one = local_header(b"a.txt", 4 << 20);
    let prefix = one.repeat((8 << 20) / one.len());
    put(d, "src/a.txt", b"nothing to see here\n");
    tool(d, "zip", &["-q", "-X", "real.zip", "src/a.txt"]);
    let mut zip = [prefix, std::fs::read(d.join("real.zip")).unwrap()].concat();
    put(d, "prefixed.zip", &zip);
    // `zip -A` fixes the offsets for the prefix, as for a self-extracting archive.
    tool(d, "zip", &["-q", "-A", "prefixed.zip"]);
    zip = std::fs::read(d.join("prefixed.zip")).unwrap();
    let start = std::time::Instant::now();
    let (code, json, err) = scan_files(d, "gaps", vec![Entry::file("app/x.zip", zip)]);
    assert!(start.elapsed() < std::time::Duration::from_secs(60), "{:?}", start.elapsed());
    assert_eq!(code, 2, "{err}");
    let errors = messages(&json, "error").join("\n");
    assert!(
        errors.contains("/app/x.zip: nested archive limit reached: the members only local headers list read more than twice the zip's size"),
        "{errors}"
    );
}

/// A tar made by GNU tar with a secret written into the padding after a
/// member's data: no extractor writes it out, but anyone holding the file reads
/// it. It is scanned (a warning says where), not left unread.
#[test]
fn non_zero_padding_of_a_nested_tar_is_scanned() {
    let dir = tmp();
    let d = dir.path();
    put(d, "tree/a.txt", b"ten bytes\n");
    put(d, "tree/b.txt", b"nothing\n");
    let mut tar = tool(d, "tar", &["--mtime=@0", "-cf", "-", "-C", "tree", "a.txt", "b.txt"]);
    let hidden = format!("\nkey = {}\n", canary(61));
    // a.txt's header is block 0, its 10 bytes of data start block 1; the rest of
    // block 1 is padding.
    tar[512 + 10..512 + 10 + hidden.len()].copy_from_slice(hidden.as_bytes());
    let (code, json, err) = scan_files(d, "padding", vec![Entry::file("app/bundle.tar", tar)]);
    assert_eq!(code, 1, "scanned, so complete: {err}");
    assert_eq!(found(&json), [pair("/app/bundle.tar", "<tar padding>")]);
    let warnings = messages(&json, "warning");
    assert!(
        warnings.iter().any(|w| w.contains("non-zero bytes in the padding")
            && w.contains("scanned as <tar padding>")),
        "{warnings:?}"
    );
    assert!(messages(&json, "error").is_empty(), "{json:#}");
}

/// A nested tar entry whose PAX path is over the name limit but that holds no
/// data (Go's `archive/tar` test archives carry one) leaves nothing unread: a
/// warning, and the members after it are read.
#[test]
fn an_empty_nested_entry_with_an_over_long_name_leaves_nothing_unread() {
    let dir = tmp();
    let d = dir.path();
    put(d, "secret.conf", format!("key = {}\n", canary(62)).as_bytes());
    let script = "import tarfile, sys\n\
        t = tarfile.open(fileobj=sys.stdout.buffer, mode='w|', format=tarfile.PAX_FORMAT)\n\
        t.addfile(tarfile.TarInfo('a/' + 'n' * 70000))\n\
        t.add('secret.conf')\n\
        t.close()\n";
    let tar = tool(d, "python3", &["-c", script]);
    let (code, json, err) = scan_files(d, "longname", vec![Entry::file("app/go.tar", tar)]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(found(&json), [pair("/app/go.tar", "secret.conf")]);
    assert!(messages(&json, "error").is_empty(), "{json:#}");
    let warnings = messages(&json, "warning");
    assert!(warnings.iter().any(|w| w.contains("the entry holds no data")), "{warnings:?}");
}
