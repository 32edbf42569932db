//! Names of members inside archives in a layer: a `.tar.gz` written by GNU tar (a directory,
//! a file, a symlink and a hard link named after tokens), a jar written by Info-ZIP's `zip`
//! and an initramfs-style `.cpio.gz` written by GNU cpio. Each name is scanned like a layer
//! entry's: the finding is at the archive's path, with `inner_path` naming the member and
//! `location` the part of its header that holds the token. A name whose token the content
//! holds too is reported once, at the content; an archive's names are one file for the
//! findings budget.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::engines::{messages, need};
use crate::util::*;

/// A classic GitHub token with a valid checksum (FAKE, unique per tag).
fn ghp(tag: &str) -> String {
    ig::checksummed_token("ghp_", &format!("FAKE{tag}Mq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Ab")[..30])
}

/// Writes `text` to `dir/name`, creating its directories.
fn put(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Scans a one-layer image of `files` with `--show-secrets`: (exit code, report).
fn scan_files(dir: &Path, files: Vec<Entry>) -> (i32, Value) {
    let path = out_path(dir, Format::OciArchive, "names");
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /", files)], ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, json, _) = scan_json(&path, &["--show-secrets"]);
    (code, json)
}

/// Every finding of `token` as (path, inner path, location) with the token as `T`; each has
/// no line (a name has none).
fn places(json: &Value, token: &str) -> Vec<[String; 3]> {
    let mut out: Vec<[String; 3]> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["secret"] == token)
        .map(|f| {
            let location = f["location"].as_str().unwrap_or("content").to_owned();
            if location != "content" {
                assert!(f["line"].is_null(), "{f:#}");
            }
            [
                f["path"].as_str().unwrap().to_owned(),
                f["inner_path"].as_str().unwrap_or("").replace(token, "T"),
                location,
            ]
        })
        .collect();
    out.sort();
    out
}

fn row(path: &str, inner: &str, location: &str) -> [String; 3] {
    [path, inner, location].map(str::to_owned)
}

#[test]
fn names_of_archive_members_are_scanned_like_entry_names() {
    let work = tmp();
    let d = work.path();
    let [dir, file, link, dup, jar_dir, jar_file, cpio_file] =
        ["MD1", "MF2", "ML3", "MU4", "MJ5", "MJ6", "MC7"].map(ghp);
    // The tar: a directory named after a token holding two files (reported once, at the
    // directory's own entry), a file, a symlink to a path with a token, a hard link to the
    // file (stored after it, `--sort=name`), and a file whose name and content hold the same token.
    let t = d.join("t");
    put(&t, &format!("app/{dir}/a.txt"), "nothing\n");
    put(&t, &format!("app/{dir}/b.txt"), "nothing\n");
    put(&t, &format!("app/keys/{file}.txt"), "nothing\n");
    put(&t, &format!("app/{dup}.env"), &format!("GITHUB_TOKEN={dup}\n"));
    std::os::unix::fs::symlink(format!("/run/secrets/{link}"), t.join("app/current")).unwrap();
    std::fs::hard_link(t.join(format!("app/keys/{file}.txt")), t.join("app/later")).unwrap();
    let tgz = tool(&t, "tar", &["--sort=name", "--mtime=@0", "-czf", "-", "app"]);
    // The jar: `zip -r` writes directory entries too.
    let j = d.join("j");
    put(&j, &format!("META-INF/{jar_dir}/x.properties"), "k=v\n");
    put(&j, &format!("{jar_file}.txt"), "nothing\n");
    tool(&j, "zip", &["-q", "-X", "-r", "app.jar", "META-INF", &format!("{jar_file}.txt")]);
    // The cpio: GNU cpio's newc format, as an initramfs holds it.
    let c = d.join("c");
    put(&c, &format!("etc/{cpio_file}"), "nothing\n");
    let mut cpio = Command::new(need("cpio"))
        .args(["--quiet", "-o", "-H", "newc"])
        .current_dir(&c)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        cpio.stdin.as_mut().unwrap(),
        format!("etc\netc/{cpio_file}\n").as_bytes(),
    )
    .unwrap();
    drop(cpio.stdin.take());
    let out = cpio.wait_with_output().unwrap();
    assert!(out.status.success());
    std::fs::write(c.join("initrd.cpio"), &out.stdout).unwrap();
    let cpio_gz = tool(&c, "gzip", &["-n", "-c", "initrd.cpio"]);
    let files = vec![
        Entry::file("srv/app.tar.gz", tgz),
        Entry::file("srv/app.jar", std::fs::read(j.join("app.jar")).unwrap()),
        Entry::file("boot/initrd.img", cpio_gz),
    ];
    let (code, json) = scan_files(d, files);
    assert_eq!(code, 1, "{json:#}");
    let tgz = "/srv/app.tar.gz";
    assert_eq!(places(&json, &dir), [row(tgz, "app/T", "entry name")]);
    assert_eq!(
        places(&json, &file),
        [row(tgz, "app/keys/T.txt", "entry name"), row(tgz, "app/later", "hardlink target")]
    );
    assert_eq!(places(&json, &link), [row(tgz, "app/current", "symlink target")]);
    // Once, where the content holds it.
    assert_eq!(places(&json, &dup), [row(tgz, "app/T.env", "content")]);
    let jar = "/srv/app.jar";
    assert_eq!(places(&json, &jar_dir), [row(jar, "META-INF/T", "entry name")]);
    assert_eq!(places(&json, &jar_file), [row(jar, "T.txt", "entry name")]);
    assert_eq!(places(&json, &cpio_file), [row("/boot/initrd.img", "etc/T", "entry name")]);
    assert!(messages(&json, "error").is_empty(), "{json:#}");
}

/// An archive of many members each named after a token keeps the findings budget per rule
/// (100 by default) and counts the rest in one note; its members' data is still read.
#[test]
fn an_archive_of_token_names_is_one_file_for_the_findings_budget() {
    let work = tmp();
    let d = work.path();
    let t = d.join("t");
    std::fs::create_dir_all(t.join("k")).unwrap();
    for i in 0..300 {
        std::fs::write(t.join("k").join(ghp(&format!("N{i:03}"))), "").unwrap();
    }
    let tar = tool(&t, "tar", &["--sort=name", "--mtime=@0", "-cf", "-", "k"]);
    let (code, json) = scan_files(d, vec![Entry::file("data/keys.tar", tar)]);
    assert_eq!(code, 1);
    let named: Vec<&Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["location"] == "entry name")
        .collect();
    assert_eq!(
        named.len(),
        100,
        "{}",
        finding_lines(&json["findings"].as_array().unwrap()[..5]).join("\n")
    );
    assert!(named.iter().all(|f| f["path"] == "/data/keys.tar"));
    let notes = messages(&json, "warning");
    assert!(
        notes.iter().any(|n| n.contains(
            "/data/keys.tar: 200 more github-pat-classic matches in member names not listed"
        )),
        "{notes:?}"
    );
    assert!(messages(&json, "error").is_empty(), "{json:#}");
}
