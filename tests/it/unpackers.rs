//! Differential check of the layer logic against real unpackers: images made
//! by real tools (buildah/podman and the Docker legacy builder from
//! Containerfiles, umoci over layers GNU tar wrote by hand) are unpacked by
//! umoci (`umoci unpack`: a full copy, parents resolved with securejoin),
//! podman's vfs driver (a full copy, extracted in a chroot) and podman's
//! overlay driver (each layer into its own directory, the kernel's overlayfs
//! merging them), and what each final root filesystem shows is compared
//! with strata's statuses, and with what `extract` recovers.
//!
//! One helper, [`differential`], checks any image: per planted secret,
//! - it ships (some unpacker shows it) exactly when strata reports it
//!   `present`;
//! - a path where an unpacker shows it and strata has a finding for it is a
//!   `present` finding;
//! - a `present` finding's path shows it in some unpacker, unless the bytes
//!   are visible only at paths strata has no finding for (a hardlink, or
//!   where a naive applier resolved a lower layer's symlink);
//! - `extract --layer N PATH` of every finding gives bytes holding it.
//!
//! Where the unpackers disagree (a lower layer's symlink: followed by the
//! copying ones, not by overlay), strata reports the path as written, what
//! overlay (containerd's and podman's default) shows; docs/leak-vectors.md,
//! "Layer lifecycle", says so.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::engines::{Dockerd, Podman, check, need};
use crate::util::*;

/// A real unpacker of an OCI layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Unpacker {
    /// `umoci unpack`.
    Umoci,
    /// podman's vfs driver (`podman image mount` of a full copy).
    PodmanVfs,
    /// podman's overlay driver (`podman image mount` of the overlay mount).
    PodmanOverlay,
}

const ALL: [Unpacker; 3] = [Unpacker::Umoci, Unpacker::PodmanVfs, Unpacker::PodmanOverlay];

/// The regular files of a root filesystem: path (as strata writes it) → bytes.
type Tree = BTreeMap<String, Vec<u8>>;

/// A path's bytes as strata writes them (docs/json-contract.md): UTF-8 as is,
/// other bytes `\xNN`, a backslash before `x` and two hex digits `\x5c`.
fn image_path(raw: &[u8]) -> String {
    let hex = |b: Option<&u8>| b.is_some_and(u8::is_ascii_hexdigit);
    let mut out = String::new();
    for chunk in raw.utf8_chunks() {
        let v = chunk.valid().as_bytes();
        for (i, c) in chunk.valid().char_indices() {
            let lookalike =
                c == '\\' && v.get(i + 1) == Some(&b'x') && hex(v.get(i + 2)) && hex(v.get(i + 3));
            if lookalike { out.push_str("\\x5c") } else { out.push(c) }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Every regular file under `root`, symlinks not followed.
fn read_tree(root: &Path) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![(root.to_path_buf(), Vec::<u8>::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let mut name = prefix.clone();
            name.push(b'/');
            name.extend_from_slice(e.file_name().as_bytes());
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push((e.path(), name));
            } else if t.is_file() {
                out.insert(image_path(&name), std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// The canary values in `bytes`.
fn canaries(bytes: &[u8]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = BTreeSet::new();
    let mut rest = &text[..];
    while let Some(i) = rest.find("CANARY_") {
        let cand = &rest[i..];
        let tail: String = cand[7..].chars().take(12).collect();
        if tail.len() == 12 && tail.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            out.insert(format!("CANARY_{tail}"));
        }
        rest = &cand[7..];
    }
    out
}

/// The final root filesystem `unpacker` makes of `layout:tag`, or its error.
fn unpack(unpacker: Unpacker, layout: &Path, tag: &str, work: &Path) -> Result<Tree, String> {
    let src = format!("{}:{tag}", layout.display());
    match unpacker {
        Unpacker::Umoci => {
            let bundle = work.join("umoci-bundle");
            let o = Command::new(need("umoci"))
                .args(["unpack", "--image", &src])
                .arg(&bundle)
                .output()
                .unwrap();
            if !o.status.success() {
                return Err(String::from_utf8_lossy(&o.stderr).into_owned());
            }
            Ok(read_tree(&bundle.join("rootfs")))
        }
        Unpacker::PodmanVfs | Unpacker::PodmanOverlay => {
            let driver = if unpacker == Unpacker::PodmanVfs { "vfs" } else { "overlay" };
            let root = work.join(format!("podman-{driver}"));
            let podman = || {
                let mut c = Command::new(need("podman"));
                c.arg("--storage-driver").arg(driver).arg("--root").arg(root.join("root"));
                c.arg("--runroot").arg(root.join("run")).stdin(std::process::Stdio::null());
                c
            };
            // skopeo, not `podman pull`: podman names an image after its layout's path.
            let id = "localhost/strata-differential:1";
            let store = format!(
                "containers-storage:[{driver}@{}+{}]{id}",
                root.join("root").display(),
                root.join("run").display()
            );
            // Whatever happens next, the storage's mounts go with it (see `StoreMounts`).
            let _mounts = StoreMounts { podman: podman(), graph: root.join("root").join(driver) };
            let o = Command::new(need("skopeo"))
                .args(["copy", "-q", &format!("oci:{src}"), &store])
                .output()
                .unwrap();
            if !o.status.success() {
                return Err(String::from_utf8_lossy(&o.stderr).into_owned());
            }
            let mount = check(podman().args(["image", "mount", id]).output().unwrap(), "mount");
            Ok(read_tree(Path::new(&mount)))
        }
    }
}

/// On drop, unmounts what a private podman storage left mounted: its images
/// (`podman image unmount --all`) and the overlay driver's own bind mount of
/// its directory, which outlives podman and would keep the temp dir.
struct StoreMounts {
    podman: Command,
    graph: PathBuf,
}

impl Drop for StoreMounts {
    fn drop(&mut self) {
        let _ = self.podman.args(["image", "unmount", "--all"]).output();
        if self.graph.ends_with("overlay") {
            let _ = Command::new("umount").arg(&self.graph).output();
        }
    }
}

/// GNU tar's `--quoting-style=escape` name back to bytes.
fn unescape(name: &str) -> Vec<u8> {
    let b = name.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        let octal = |x: &u8| (b'0'..=b'7').contains(x);
        if i + 3 < b.len() && b[i + 1..i + 4].iter().all(octal) {
            out.push(b[i + 1..i + 4].iter().fold(0u8, |n, d| n.wrapping_mul(8) + (d - b'0')));
            i += 4;
            continue;
        }
        out.push(match c {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'v' => 11,
            other => other,
        });
        i += 2;
    }
    out
}

/// The paths of every hardlink entry in the image's layers (as strata writes paths).
fn hardlink_paths(layout: &Path, tag: &str) -> BTreeSet<String> {
    let blob =
        |digest: &str| layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let json =
        |p: PathBuf| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let index = json(layout.join("index.json"));
    let manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"));
    let manifest = json(blob(manifest["digest"].as_str().unwrap()));
    let mut out = BTreeSet::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let list = check(
            Command::new("tar")
                .args(["--quoting-style=escape", "-tvf"])
                .arg(blob(layer["digest"].as_str().unwrap()))
                .output()
                .unwrap(),
            "tar -tv of a layer",
        );
        for line in list.lines().filter(|l| l.starts_with('h')) {
            // perms owner size date time NAME link to TARGET
            let mut rest = line;
            for _ in 0..5 {
                rest = rest.trim_start().split_once(' ').unwrap().1;
            }
            let name = rest.trim_start().split(" link to ").next().unwrap();
            let name = image_path(&unescape(name));
            out.insert(format!("/{}", name.trim_start_matches("./").trim_matches('/')));
        }
    }
    out
}

/// A content finding of a canary: (layer, path, status).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Found {
    layer: u64,
    path: String,
    status: String,
}

/// Unpacks `layout:tag` with every real unpacker and checks strata's
/// statuses and `extract` against the trees (see the module doc). Returns
/// the findings, for a case's own extra checks. Every secret of `planted`
/// (canary numbers) must have a finding, whatever its status; the unpackers
/// in `refuse` must fail on the image (a symlink loop, a chain longer than
/// they follow).
fn differential(
    layout: &Path,
    tag: &str,
    planted: &[u32],
    refuse: &[Unpacker],
    what: &str,
) -> Vec<(String, Found)> {
    let work = tempfile::tempdir_in(layout.parent().unwrap()).unwrap();
    let mut views: BTreeMap<Unpacker, Tree> = BTreeMap::new();
    for u in ALL {
        match (unpack(u, layout, tag, work.path()), refuse.contains(&u)) {
            (Ok(tree), false) => {
                views.insert(u, tree);
            }
            (Err(e), false) => panic!("{what}: {u:?} could not unpack the image: {e}"),
            (Ok(_), true) => panic!("{what}: {u:?} unpacked the image"),
            (Err(_), true) => {}
        }
    }
    // secret → unpacker → paths showing it
    let mut shown: BTreeMap<String, BTreeMap<Unpacker, BTreeSet<String>>> = BTreeMap::new();
    for (u, tree) in &views {
        for (path, bytes) in tree {
            for s in canaries(bytes) {
                shown.entry(s).or_default().entry(*u).or_default().insert(path.clone());
            }
        }
    }

    let rules = canary_rules();
    let target = layout.to_str().unwrap();
    let o = run(&["scan", "--format", "json", "--show-secrets", "--signatures", &rules, target]);
    let (code, out, err) = parts(&o);
    assert!(code == 0 || code == 1, "{what}: exit {code}: {err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let found: Vec<(String, Found)> = findings_of(&json, "test-canary")
        .iter()
        .filter(|f| f["location"].is_null() && f["path"].is_string())
        .map(|f| {
            let at = Found {
                layer: f["layer_index"].as_u64().unwrap(),
                path: f["path"].as_str().unwrap().to_owned(),
                status: f["status"].as_str().unwrap().to_owned(),
            };
            (f["secret"].as_str().unwrap().to_owned(), at)
        })
        .collect();
    let links = hardlink_paths(layout, tag);
    let mut problems = Vec::new();
    for n in planted {
        if !found.iter().any(|(s, _)| *s == canary(*n)) {
            problems.push(format!("{}: planted, not reported", canary(*n)));
        }
    }
    let secrets: BTreeSet<&String> = found.iter().map(|(s, _)| s).chain(shown.keys()).collect();
    for s in secrets {
        let mine: Vec<&Found> = found.iter().filter(|(x, _)| x == s).map(|(_, f)| f).collect();
        let all_paths: BTreeSet<&str> = mine.iter().map(|f| f.path.as_str()).collect();
        let present: BTreeSet<&str> =
            mine.iter().filter(|f| f.status == "present").map(|f| f.path.as_str()).collect();
        let views_of = shown.get(s).cloned().unwrap_or_default();
        let anywhere: BTreeSet<&str> = views_of.values().flatten().map(String::as_str).collect();
        let say = |problems: &mut Vec<String>, why: String| {
            problems.push(format!("{s}: {why}\n    unpackers: {views_of:?}\n    strata: {mine:?}"));
        };
        if anywhere.is_empty() != present.is_empty() {
            say(&mut problems, "ships exactly when strata says present".into());
        }
        for (u, paths) in &views_of {
            for p in paths {
                if all_paths.contains(p.as_str()) && !present.contains(p.as_str()) {
                    say(&mut problems, format!("{u:?} shows it at {p}, reported not present"));
                }
            }
        }
        // Bytes a present finding may stand for elsewhere: at a hardlink to them, or where
        // a naive applier resolved a lower layer's symlink (overlay does not show them there).
        let overlay = views_of.get(&Unpacker::PodmanOverlay);
        let elsewhere = anywhere.iter().any(|p| {
            !all_paths.contains(p)
                && (links.contains(*p) || overlay.is_none_or(|o| !o.contains(*p)))
        });
        for p in &present {
            if !anywhere.contains(p) && !elsewhere {
                say(&mut problems, format!("reported present at {p}, shown by no unpacker"));
            }
        }
        // `extract` recovers every version reported, and writes nothing but its output.
        for f in &mine {
            let out = tempfile::tempdir_in(work.path()).unwrap();
            let dest = out.path().join("recovered");
            let o = strata()
                .current_dir(out.path())
                .args(["extract", target, "--layer", &f.layer.to_string(), &f.path, "-o"])
                .arg(&dest)
                .output()
                .unwrap();
            let written: Vec<_> =
                std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            let bytes = std::fs::read(&dest).unwrap_or_default();
            if !canaries(&bytes).contains(s) || written.len() != 1 {
                let err = String::from_utf8_lossy(&o.stderr);
                say(&mut problems, format!("extract --layer {} {:?}: {err}", f.layer, f.path));
            }
        }
    }
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
    assert_extract_never_follows_the_destination(target, &found, work.path());
    found
}

/// `extract -o` to a symlink (to a file outside the output directory, or a
/// dangling one) refuses, and leaves the link and its target as they were.
fn assert_extract_never_follows_the_destination(
    target: &str,
    found: &[(String, Found)],
    work: &Path,
) {
    let Some((_, f)) = found.first() else { return };
    let out = tempfile::tempdir_in(work).unwrap();
    let outside = work.join("outside-file");
    std::fs::write(&outside, "untouched\n").unwrap();
    for pointee in [outside.clone(), work.join("dangling")] {
        let dest = out.path().join("recovered");
        let _ = std::fs::remove_file(&dest);
        std::os::unix::fs::symlink(&pointee, &dest).unwrap();
        let o = run(&[
            "extract",
            target,
            "--layer",
            &f.layer.to_string(),
            &f.path,
            "-o",
            dest.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "extract through a symlink to {pointee:?}");
        assert!(std::fs::symlink_metadata(&dest).unwrap().file_type().is_symlink());
        assert!(!work.join("dangling").exists());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched\n");
    }
}

/// One canary line (`n` picks the value).
fn secret(n: u32) -> String {
    format!("key = {}\n", canary(n))
}

/// A busybox base image tar with every applet linked.
fn busybox_tar(dir: &Path) -> PathBuf {
    need("busybox");
    crate::leak_vectors::rootfs(dir).expect("busybox is on PATH")
}

/// The secrets the Containerfile plants in the final image's layers (100,
/// only in the builder stage, is not one).
const BUILT: [u32; 18] =
    [101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118];

/// The Containerfile: each shape a build leaves, secrets 100 and up.
fn containerfile(from: &str) -> String {
    let s = |n: u32| canary(n);
    format!(
        r#"FROM {from} AS build
RUN mkdir /src && echo "key = {b1}" > /src/only-in-builder && echo "key = {b2}" > /src/shipped
FROM {from}
RUN mkdir -p /opt/real/c /d /sdir /tosym /hl && ln -s /opt/real /app && ln -s ../opt/real/c /opt/b \
 && ln -s /opt/b /chain && ln -s app /lnk1 && ln -s lnk1 /lnk2 && ln -s opt/real/c/../../real /up \
 && ln -s opt/real /symdir \
 && echo "key = {d1}" > /d/del && echo "key = {d2}" > /d/over && echo "key = {d3}" > /d/mv \
 && echo "key = {d4}" > /d/chmod && echo "key = {d5}" > /d/touch && echo "key = {d6}" > /sdir/x \
 && echo "key = {d7}" > /tosym/x && echo "key = {d8}" > /hl/orig && echo "key = {d9}" > /hl/orig2 \
 && echo "key = {d10}" > "/d/sp ace" && echo "key = {d11}" > "$(printf '/d/new\nline')" \
 && echo "key = {d12}" > "$(printf '/d/bad\377name')"
RUN echo "key = {w1}" > /lnk2/through-chain && echo "key = {w2}" > /chain/abs-chain \
 && echo "key = {w3}" > /up/dotdot && ln /hl/orig /keep && ln /hl/orig2 /keep2 \
 && echo "key = {w4}" > /opt/real/c/gone
RUN rm /d/del && echo clean > /d/over && mv /d/mv /d/moved && chmod 600 /d/chmod && touch /d/touch \
 && rm -rf /sdir && mkdir /sdir && echo clean > /sdir/y && rm -rf /tosym && ln -s /opt /tosym \
 && rm /symdir && mkdir /symdir && echo "key = {w5}" > /symdir/y && rm /hl/orig && rm /keep2 \
 && rm /chain/gone
COPY --from=build /src/shipped /shipped
"#,
        b1 = s(100),
        b2 = s(101),
        d1 = s(102),
        d2 = s(103),
        d3 = s(104),
        d4 = s(105),
        d5 = s(106),
        d6 = s(107),
        d7 = s(108),
        d8 = s(109),
        d9 = s(110),
        d10 = s(111),
        d11 = s(112),
        d12 = s(113),
        w1 = s(114),
        w2 = s(115),
        w3 = s(116),
        w4 = s(117),
        w5 = s(118),
    )
}

fn build_context(dir: &Path, from: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Containerfile"), containerfile(from)).unwrap();
    ctx
}

/// Checks the builder-only secret is in no finding, and the `COPY --from` one ships.
fn assert_stages(found: &[(String, Found)], what: &str) {
    assert!(found.iter().all(|(s, _)| *s != canary(100)), "{what}: builder-only secret reported");
    let shipped: Vec<&Found> =
        found.iter().filter(|(s, _)| *s == canary(101)).map(|(_, f)| f).collect();
    assert!(
        shipped.iter().any(|f| f.path == "/shipped" && f.status == "present"),
        "{what}: {shipped:?}"
    );
}

#[test]
fn buildah_builds_agree_with_real_unpackers() {
    let work = tmp();
    let p = Podman { root: work.path().join("storage"), runroot: work.path().join("run") };
    let base = busybox_tar(work.path());
    check(
        p.cmd("podman").arg("import").arg(&base).arg("localhost/base:1").output().unwrap(),
        "import",
    );
    let ctx = build_context(work.path(), "localhost/base:1");
    check(
        p.cmd("buildah")
            .args(["bud", "--layers", "--network", "none", "-q", "-f"])
            .arg(ctx.join("Containerfile"))
            .args(["-t", "localhost/shapes:1"])
            .arg(&ctx)
            .output()
            .unwrap(),
        "buildah bud",
    );
    let layout = work.path().join("layout");
    check(
        p.cmd("podman")
            .args(["push", "-q", "localhost/shapes:1"])
            .arg(format!("oci:{}:shapes", layout.display()))
            .output()
            .unwrap(),
        "podman push",
    );
    let found = differential(&layout, "shapes", &BUILT, &[], "buildah");
    assert_stages(&found, "buildah");
}

#[test]
fn docker_legacy_builds_agree_with_real_unpackers() {
    let work = tmp();
    let d = Dockerd::start();
    let base = busybox_tar(work.path());
    check(d.docker().arg("import").arg(&base).arg("base:1").output().unwrap(), "docker import");
    let ctx = build_context(work.path(), "base:1");
    check(
        d.docker()
            .args(["build", "--network", "none", "-q", "-f"])
            .arg(ctx.join("Containerfile"))
            .args(["-t", "shapes:1"])
            .arg(&ctx)
            .output()
            .unwrap(),
        "docker build",
    );
    let archive = work.path().join("shapes.tar");
    check(
        d.docker().args(["save", "-o"]).arg(&archive).arg("shapes:1").output().unwrap(),
        "docker save",
    );
    let layout = work.path().join("layout");
    check(
        Command::new(need("skopeo"))
            .arg("copy")
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("oci:{}:shapes", layout.display()))
            .output()
            .unwrap(),
        "skopeo copy",
    );
    let found = differential(&layout, "shapes", &BUILT, &[], "docker");
    assert_stages(&found, "docker");
}

/// A layer tar written by GNU tar, members in the order they are added, each
/// from its own staging directory (so a name may be a symlink in one member
/// and a directory in the next). Names are bytes (any but NUL).
struct TarLayer {
    stage: tempfile::TempDir,
    /// In order; member N is staged in directory N.
    members: Vec<Member>,
}

/// What one member adds to the tar.
struct Member {
    /// The names GNU tar adds from its staging directory.
    names: Vec<Vec<u8>>,
    /// A hardlink's target, deleted from the tar again: the link entry stays,
    /// naming the file an earlier entry or a lower layer holds.
    delete: Option<Vec<u8>>,
}

impl TarLayer {
    fn new() -> Self {
        TarLayer { stage: tmp(), members: Vec::new() }
    }

    /// A fresh staging directory for the next member, and `path` in it (parents made).
    fn at(&mut self, path: &[u8]) -> PathBuf {
        let n = self.members.len();
        let p = self.stage.path().join(n.to_string()).join(std::ffi::OsStr::from_bytes(path));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }

    fn push(mut self, names: Vec<Vec<u8>>, delete: Option<Vec<u8>>) -> Self {
        self.members.push(Member { names, delete });
        self
    }

    fn dir(mut self, path: &str) -> Self {
        std::fs::create_dir_all(self.at(path.as_bytes())).unwrap();
        self.push(vec![path.into()], None)
    }

    fn file(mut self, path: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Self {
        std::fs::write(self.at(path.as_ref()), data).unwrap();
        self.push(vec![path.as_ref().to_vec()], None)
    }

    fn symlink(mut self, path: &str, target: &str) -> Self {
        std::os::unix::fs::symlink(target, self.at(path.as_bytes())).unwrap();
        self.push(vec![path.into()], None)
    }

    /// A hardlink at `path` to `target` (a name of this layer or a lower one):
    /// GNU tar stores a link when it meets the target's inode first, so the
    /// target goes in with it and is deleted from the tar after.
    fn hardlink(mut self, path: &str, target: &str) -> Self {
        let t = self.at(target.as_bytes());
        std::fs::write(&t, "stand-in\n").unwrap();
        let l = self.at(path.as_bytes());
        std::fs::hard_link(&t, l).unwrap();
        self.push(vec![target.into(), path.into()], Some(target.into()))
    }

    fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let wh = if dir.is_empty() { format!(".wh.{name}") } else { format!("{dir}/.wh.{name}") };
        self.file(wh, "")
    }

    fn opaque(self, dir: &str) -> Self {
        self.file(format!("{dir}/.wh..wh..opq"), "")
    }

    /// Writes the tar to `out`.
    fn write(self, out: &Path) {
        let tar = |args: &[&std::ffi::OsStr]| {
            let mut c = Command::new("tar");
            c.args(["--format=pax", "--numeric-owner", "--owner=0", "--group=0"]);
            check(c.args(args).output().unwrap(), "GNU tar");
        };
        // How many times each name is in the tar so far (`--delete` needs the occurrence).
        let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for (i, Member { names, delete }) in self.members.iter().enumerate() {
            let dir = self.stage.path().join(i.to_string());
            let mut args: Vec<&std::ffi::OsStr> = vec![
                if i == 0 { "-cf".as_ref() } else { "-rf".as_ref() },
                out.as_os_str(),
                "--no-recursion".as_ref(),
                "-C".as_ref(),
                dir.as_os_str(),
                "--".as_ref(),
            ];
            args.extend(names.iter().map(|m| std::ffi::OsStr::from_bytes(m)));
            tar(&args);
            for m in names {
                *seen.entry(m.clone()).or_default() += 1;
            }
            if let Some(t) = delete {
                let occurrence = format!("--occurrence={}", seen[t]);
                tar(&[
                    "--delete".as_ref(),
                    occurrence.as_ref(),
                    "-f".as_ref(),
                    out.as_os_str(),
                    "--".as_ref(),
                    std::ffi::OsStr::from_bytes(t),
                ]);
                *seen.get_mut(t).unwrap() -= 1;
            }
        }
    }
}

/// An OCI layout with `layers` (bottom first) added by umoci, tagged `t`.
fn umoci_image(dir: &Path, layers: Vec<TarLayer>) -> PathBuf {
    let layout = dir.join("layout");
    let umoci = need("umoci");
    check(Command::new(&umoci).arg("init").arg("--layout").arg(&layout).output().unwrap(), "init");
    let image = format!("{}:t", layout.display());
    check(Command::new(&umoci).args(["new", "--image", &image]).output().unwrap(), "umoci new");
    for (i, l) in layers.into_iter().enumerate() {
        let tar = dir.join(format!("layer{i}.tar"));
        l.write(&tar);
        check(
            Command::new(&umoci)
                .args(["raw", "add-layer", "--image", &image])
                .arg(&tar)
                .output()
                .unwrap(),
            "umoci raw add-layer",
        );
    }
    layout
}

/// Layers no builder writes (they resolve symlinks while building): entries
/// and whiteouts under symlinks lower layers left, chains of them, `..` in
/// targets, hardlinks to lower files, whiteouts of links, opaque markers,
/// a directory and a symlink replacing each other, names that need escaping.
#[test]
fn hand_made_layers_agree_with_real_unpackers() {
    let work = tmp();
    let l0 = TarLayer::new()
        .dir("opt")
        .dir("opt/real")
        .dir("opt/real/c")
        .symlink("app0", "opt/real")
        .symlink("opt/b", "real/c")
        .symlink("chain", "/opt/b")
        .symlink("lnk1", "app0")
        .symlink("lnk2", "lnk1")
        .symlink("up", "opt/real/c/../../real")
        .symlink("esc", "../../../opt/real")
        .dir("d")
        .file("d/del", secret(200))
        .file("d/over", secret(201))
        .dir("sdir")
        .file("sdir/x", secret(204))
        .dir("tosym")
        .file("tosym/x", secret(205))
        .symlink("symdir", "opt/real")
        .dir("opt/real/o")
        .file("opt/real/o/x", secret(218))
        .symlink("oc", "opt/real/o")
        .file("d/sp ace", secret(206))
        .file("d/new\nline", secret(207))
        .file(b"d/bad\xffname", secret(208));
    let l1 = TarLayer::new()
        .file("app0/s1", secret(210))
        .file("lnk2/s2", secret(211))
        .file("chain/s3", secret(212))
        .file("up/s4", secret(213))
        .file("esc/s5", secret(214))
        .file("lnk2/s6", secret(217))
        .file("oc/s9", secret(219))
        .file("d/ln-src", secret(215))
        .hardlink("d/ln-dst", "d/ln-src");
    let l2 = TarLayer::new()
        .whiteout("d/del")
        .file("d/over", "clean\n")
        .opaque("sdir")
        .file("sdir/y", "clean\n")
        .whiteout("tosym")
        .symlink("tosym", "opt")
        .whiteout("symdir")
        .dir("symdir")
        .file("symdir/y", secret(216))
        .whiteout("lnk2/s2")
        .whiteout("chain")
        .whiteout("opt/real/s4")
        .whiteout("d/ln-src")
        .opaque("oc");
    let l3 = TarLayer::new()
        .whiteout("app0")
        .whiteout("opt/real/s1")
        .whiteout("lnk2")
        .whiteout("opt/real/s6");
    let layout = umoci_image(work.path(), vec![l0, l1, l2, l3]);
    let planted: Vec<u32> = (200..=219).filter(|n| ![202, 203, 209].contains(n)).collect();
    differential(&layout, "t", &planted, &[], "hand-made layers");
}

/// Hardlinks to a lower layer's file, which only the copying unpackers
/// apply (overlay extracts a layer alone, where the target is not):
/// the original whited out, the link whited out, a link to that link, a
/// link whose target is named through a lower layer's symlink.
#[test]
fn hardlinks_to_lower_files_agree_with_copying_unpackers() {
    let work = tmp();
    let l0 = TarLayer::new()
        .dir("d")
        .file("d/hl", secret(220))
        .file("d/hlw", secret(221))
        .file("d/chain", secret(222))
        .file("d/viasym", secret(223))
        .symlink("sym", "d");
    let l1 = TarLayer::new()
        .hardlink("keep1", "d/hl")
        .hardlink("keep2", "d/hlw")
        .hardlink("keep3", "d/chain")
        .hardlink("keep5", "sym/viasym");
    let l2 = TarLayer::new()
        .whiteout("d/hl")
        .whiteout("keep2")
        .hardlink("keep4", "keep3")
        .whiteout("d/viasym");
    let l3 = TarLayer::new().whiteout("d/chain").whiteout("keep3");
    let layout = umoci_image(work.path(), vec![l0, l1, l2, l3]);
    let refuse = [Unpacker::PodmanOverlay];
    differential(&layout, "t", &[220, 221, 222, 223], &refuse, "hardlinks to lower files");
}

/// Symlink loops, and a chain longer than the kernel follows (40 links):
/// the copying unpackers refuse an entry under them, overlay extracts it at
/// its name, and strata reports it there.
#[test]
fn entries_under_symlink_loops_are_where_overlay_puts_them() {
    let work = tmp();
    let mut l0 = TarLayer::new().dir("opt").symlink("loop1", "loop2").symlink("loop2", "/loop1");
    for i in 0..41 {
        l0 = l0.symlink(&format!("c{i}"), &format!("c{}", i + 1));
    }
    let l0 = l0.symlink("c41", "opt");
    let l1 = TarLayer::new().file("loop1/s", secret(300)).file("c0/s", secret(301));
    let layout = umoci_image(work.path(), vec![l0, l1]);
    let refuse = [Unpacker::Umoci, Unpacker::PodmanVfs];
    let found = differential(&layout, "t", &[300, 301], &refuse, "loops");
    let paths: BTreeSet<&str> = found.iter().map(|(_, f)| f.path.as_str()).collect();
    assert_eq!(paths, BTreeSet::from(["/loop1/s", "/c0/s"]));
}

/// More shapes every unpacker applies: a lower symlink replaced by a
/// directory before an entry goes under it, a symlink to the root, a file
/// replaced by a directory, a whiteout and an identical re-add in one layer,
/// a symlink chain whose last link a later layer points elsewhere.
#[test]
fn replaced_symlinks_and_re_adds_agree_with_real_unpackers() {
    let work = tmp();
    let l0 = TarLayer::new()
        .dir("opt")
        .dir("opt/a")
        .dir("opt/z")
        .symlink("x", "opt/a")
        .symlink("root", "/")
        .symlink("m1", "m2")
        .symlink("m2", "opt/a")
        .file("f", secret(400))
        .file("opt/a/same", secret(401));
    let l1 = TarLayer::new()
        .whiteout("x")
        .dir("x")
        .file("root/opt/r", secret(402))
        .whiteout("m2")
        .symlink("m2", "opt/z")
        .whiteout("opt/a/same")
        .file("opt/a/same", secret(401));
    let l2 = TarLayer::new()
        .file("x/s", secret(403))
        .dir("f")
        .file("f/inner", "clean\n")
        .file("m1/s", secret(404))
        .whiteout("opt/a/same");
    let l3 = TarLayer::new().whiteout("opt/z/s").whiteout("opt/r");
    let layout = umoci_image(work.path(), vec![l0, l1, l2, l3]);
    differential(&layout, "t", &[400, 401, 402, 403, 404], &[], "replaced symlinks");
}

/// An entry under a symlink its own layer wrote before it: the copying
/// unpackers put it where the symlink points, lower symlinks included;
/// containers/storage's overlay driver refuses the layer (the target is not
/// in the layer's own directory).
#[test]
fn entries_under_a_symlink_of_their_own_layer_agree_with_copying_unpackers() {
    let work = tmp();
    let l0 = TarLayer::new().dir("opt").dir("opt/real").symlink("lower", "opt/real");
    let l1 = TarLayer::new()
        .symlink("sl", "lower")
        .file("sl/s", secret(500))
        .symlink("abs", "/opt/real/../real")
        .file("abs/t", secret(501));
    let l2 = TarLayer::new().whiteout("sl").whiteout("opt/real/t");
    let layout = umoci_image(work.path(), vec![l0, l1, l2]);
    let refuse = [Unpacker::PodmanOverlay];
    let found = differential(&layout, "t", &[500, 501], &refuse, "own-layer symlinks");
    let paths: BTreeSet<&str> = found.iter().map(|(_, f)| f.path.as_str()).collect();
    // `sl/s` is read through `sl` to `lower/s`, where containerd extracts it (it resolves
    // the parent within the layer's own directory, which holds `sl` but not `lower`).
    assert_eq!(paths, BTreeSet::from(["/lower/s", "/opt/real/t"]));
}

/// A name with a byte that is not UTF-8 and a name spelling that byte's
/// escape (`\xff`) with a backslash are two files: a whiteout of one does
/// not delete the other.
#[test]
fn escaped_and_literal_names_stay_apart() {
    let work = tmp();
    let l0 = TarLayer::new().dir("d").file(b"d/e\xffz", secret(240)).file("d/f\\xffz", secret(241));
    let l1 = TarLayer::new().whiteout("d/e\\xffz").file(b"d/f\xffz", "clean\n");
    let layout = umoci_image(work.path(), vec![l0, l1]);
    differential(&layout, "t", &[240, 241], &[], "escaped names");
}

/// A later layer writing the same name through the same lower symlink
/// replaces the bytes at both places.
#[test]
fn a_write_through_a_lower_symlink_replaces_the_naive_place() {
    let work = tmp();
    let l0 = TarLayer::new().dir("opt").dir("opt/real").symlink("lnk", "opt/real");
    let l1 = TarLayer::new().file("lnk/s", secret(600));
    let l2 = TarLayer::new().file("lnk/s", "clean\n");
    let layout = umoci_image(work.path(), vec![l0, l1, l2]);
    differential(&layout, "t", &[600], &[], "a write through a lower symlink");
}
