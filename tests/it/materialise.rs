//! Layer semantics against a materialising model: images written by the
//! project's generator are extracted layer by layer with GNU tar, entry by
//! entry in tar order as containerd's applier goes (a whiteout removes its
//! path where it stands, an opaque marker what the layer has not unpacked
//! yet), and strata's status and `extract` must agree with the trees that
//! result.
//! Hardlinks are the point: they keep bytes alive across layers and through
//! chains, and a link that puts identical bytes back at a path re-adds them
//! there, as a file entry would.
//! See: #9

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// A regular file in a materialised tree: its inode and bytes.
#[derive(Clone, Debug, PartialEq)]
struct Node {
    ino: u64,
    bytes: Vec<u8>,
}

/// Every path of a tree (`/a/b`), with the regular files' inode and bytes.
type Tree = BTreeMap<String, Option<Node>>;

fn gnu_tar(args: &[&str]) -> std::process::Output {
    Command::new("tar").args(args).output().expect("GNU tar runs")
}

/// Reads a tree, pinning each file's inode with a link under `pins` so no
/// later file reuses its number (identity is the inode).
fn read_tree(root: &Path, pins: &Path) -> Tree {
    fn walk(dir: &Path, prefix: &str, out: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let path = format!("{prefix}/{}", e.file_name().to_string_lossy());
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                out.insert(path.clone(), None);
                walk(&e.path(), &path, out);
            } else if meta.is_file() {
                let node = Node { ino: meta.ino(), bytes: std::fs::read(e.path()).unwrap() };
                out.insert(path, Some(node));
            } else {
                out.insert(path, None);
            }
        }
    }
    let mut t = Tree::new();
    walk(root, "", &mut t);
    std::fs::create_dir_all(pins).unwrap();
    for (i, (path, node)) in t.iter().enumerate() {
        if node.is_some() {
            let pin = pins.join(format!("{}-{i}", pins.read_dir().unwrap().count()));
            std::fs::hard_link(root.join(&path[1..]), pin).unwrap();
        }
    }
    t
}

fn remove(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// Removes the children of `dir` (recursively) that are not in `unpacked`,
/// as containerd's opaque marker does (`filepath.Walk` over the directory).
fn remove_unpacked_not(dir: &Path, unpacked: &BTreeSet<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if !unpacked.contains(&p) {
            remove(&p);
        } else if p.is_dir() {
            remove_unpacked_not(&p, unpacked);
        }
    }
}

/// Writes `layers` (uncompressed, one `RUN x` each) as a docker-save archive in `dir` and
/// extracts it layer by layer: the archive and the tree after each layer.
fn build_and_materialise(dir: &Path, layers: &[Vec<Entry>]) -> (std::path::PathBuf, Vec<Tree>) {
    std::fs::create_dir_all(dir).unwrap();
    let spec = ImageSpec {
        layers: layers
            .iter()
            .map(|e| Layer::new("RUN x", e.clone()).with_compression(Compression::None))
            .collect(),
        ..ImageSpec::default()
    };
    let archive = dir.join("image.tar");
    ig::write_image(&spec, Format::DockerLegacy, &archive).unwrap();
    let trees = materialise(&archive, dir);
    (archive, trees)
}

/// Extracts every layer of a docker-save archive in order into `dir/root`
/// and returns the tree after each layer.
fn materialise(archive: &Path, dir: &Path) -> Vec<Tree> {
    let outer = dir.join("outer");
    let root = dir.join("root");
    std::fs::create_dir_all(&outer).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    let o = gnu_tar(&["-xf", archive.to_str().unwrap(), "-C", outer.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outer.join("manifest.json")).unwrap()).unwrap();
    let mut trees = Vec::new();
    for layer in manifest[0]["Layers"].as_array().unwrap() {
        let layer = outer.join(layer.as_str().unwrap());
        let layer = layer.to_str().unwrap();
        let list = gnu_tar(&["-tf", layer]);
        let mut unpacked = BTreeSet::new();
        for member in String::from_utf8(list.stdout).unwrap().lines() {
            let name = member.trim_start_matches("./").trim_end_matches('/');
            let (parent, base) = name.rsplit_once('/').unwrap_or(("", name));
            let parent = root.join(parent);
            if base == ".wh..wh..opq" {
                remove_unpacked_not(&parent, &unpacked);
            } else if let Some(target) = base.strip_prefix(".wh.") {
                remove(&parent.join(target));
            } else {
                // This entry alone (the members are unique in these cases). A link to a
                // target this layer removed before it fails, as it does in containerd.
                gnu_tar(&[
                    "-xf",
                    layer,
                    "-C",
                    root.to_str().unwrap(),
                    "--no-same-owner",
                    "--no-recursion",
                    member,
                ]);
                unpacked.insert(root.join(name));
            }
        }
        trees.push(read_tree(&root, &dir.join("pins")));
    }
    trees
}

/// Status and removing layer of the version written at `path` by layer
/// `layer`, by following its inodes through the trees: the bytes stay while
/// a path shows that inode, or an identical re-add at a path that showed
/// it (new inode, same bytes, whether by a file entry or a link).
fn model_status(trees: &[Tree], layer: usize, path: &str) -> (String, Option<usize>) {
    let Some(Some(first)) = trees[layer].get(path) else { panic!("{path} in layer {layer}") };
    let mut held: BTreeSet<u64> = [first.ino].into();
    for j in layer + 1..trees.len() {
        let (prev, next) = (&trees[j - 1], &trees[j]);
        let places: Vec<&String> = prev
            .iter()
            .filter(|(_, n)| n.as_ref().is_some_and(|n| held.contains(&n.ino)))
            .map(|(p, _)| p)
            .collect();
        let mut now: BTreeSet<u64> =
            next.values().flatten().filter(|n| held.contains(&n.ino)).map(|n| n.ino).collect();
        for p in &places {
            if let (Some(Some(was)), Some(Some(is))) = (prev.get(*p), next.get(*p))
                && was.bytes == is.bytes
            {
                now.insert(is.ino);
            }
        }
        if now.is_empty() {
            let overwritten = places.iter().any(|p| next.contains_key(*p));
            let word = if overwritten { "overwritten" } else { "deleted" };
            return (word.to_owned(), Some(j));
        }
        held = now;
    }
    ("present".to_owned(), None)
}

fn link(path: &str, target: &str) -> Entry {
    Entry::Hardlink { path: path.into(), target: target.into() }
}

/// One secret file: `n` picks the canary (the same `n` gives identical bytes).
fn secret(path: &str, n: u32) -> Entry {
    Entry::file(path, format!("key = {}\n", canary(n)))
}

/// The cases: (name, layers).
fn cases() -> Vec<(&'static str, Vec<Vec<Entry>>)> {
    let wh = Entry::whiteout;
    vec![
        (
            "a link in a later layer, and a link of that link, outlive the original",
            vec![
                vec![secret("app/s.conf", 1)],
                vec![link("keep1", "app/s.conf")],
                vec![link("keep2", "keep1")],
                vec![wh("app"), wh("keep1")],
            ],
        ),
        (
            "... until the last link goes",
            vec![
                vec![secret("app/s.conf", 2)],
                vec![link("keep1", "app/s.conf")],
                vec![link("keep2", "keep1"), wh("app")],
                vec![wh("keep1"), Entry::file("keep2", "clean\n")],
            ],
        ),
        (
            "a link to identical bytes in a lower layer re-adds them",
            vec![vec![secret("a/b", 3), secret("e", 3)], vec![link("a/b", "e")], vec![wh("e")]],
        ),
        (
            "a link to other bytes in a lower layer overwrites",
            vec![vec![secret("a/b", 4), secret("e", 5)], vec![link("a/b", "e")]],
        ),
        (
            "docker's copy-up: the target re-added and linked in one layer",
            vec![vec![secret("a/b", 6)], vec![secret("a/b", 6), link("e", "a/b")], vec![wh("a/b")]],
        ),
        (
            "a link to a link to a lower path, in one layer",
            vec![
                vec![secret("a/b", 7), secret("e", 7)],
                vec![link("x", "e"), link("a/b", "x")],
                vec![wh("e"), wh("x")],
            ],
        ),
        (
            "a link to a target replaced in between shows the new bytes",
            vec![
                vec![secret("a/b", 8), secret("e", 8)],
                vec![secret("e", 9)],
                vec![link("a/b", "e")],
            ],
        ),
        (
            "a link made before its layer whites out the target keeps the bytes (tar order)",
            vec![
                vec![secret("app/s.conf", 12)],
                vec![link("keep", "app/s.conf"), wh("app/s.conf")],
            ],
        ),
        (
            "... and before its layer whites out the target's directory",
            vec![vec![secret("app/s.conf", 13)], vec![link("keep", "app/s.conf"), wh("app")]],
        ),
        (
            "... or makes it opaque, the link inside it",
            vec![
                vec![secret("app/s.conf", 14)],
                vec![link("app/keep", "app/s.conf"), Entry::Opaque { dir: "app".into() }],
            ],
        ),
        (
            "a link made after its layer whites out the target has nothing to link",
            vec![
                vec![secret("app/s.conf", 15)],
                vec![wh("app/s.conf"), link("keep", "app/s.conf")],
            ],
        ),
        (
            "a link to a link in a lower layer",
            vec![
                vec![secret("a/b", 10)],
                vec![link("c", "a/b")],
                vec![link("d", "c"), wh("a")],
                vec![wh("c")],
            ],
        ),
    ]
}

#[test]
fn status_and_extract_match_a_materialised_tree() {
    let dir = tmp();
    for (i, (name, layers)) in cases().into_iter().enumerate() {
        let (archive, trees) = build_and_materialise(&dir.path().join(format!("case{i}")), &layers);

        // Every secret version strata reports has the model's status.
        let (code, json, err) = scan_json(&archive, &[]);
        assert_eq!(code, 1, "{name}: {err}");
        let reported: BTreeMap<(usize, String), (String, Option<usize>)> =
            findings_of(&json, "test-canary")
                .iter()
                .map(|f| {
                    let at = (
                        f["layer_index"].as_u64().unwrap() as usize,
                        f["path"].as_str().unwrap().to_owned(),
                    );
                    let removed = f["removed_in_layer"].as_u64().map(|n| n as usize);
                    (at, (f["status"].as_str().unwrap().to_owned(), removed))
                })
                .collect();
        let mut versions = BTreeSet::new();
        for (l, entries) in layers.iter().enumerate() {
            for e in entries {
                if let Entry::File { path, data } = e
                    && String::from_utf8_lossy(data).contains("CANARY")
                {
                    versions.insert((l, format!("/{path}")));
                }
            }
        }
        let found: BTreeSet<_> = reported.keys().cloned().collect();
        assert_eq!(found, versions, "{name}: every secret version is reported");
        for ((l, path), got) in &reported {
            let want = model_status(&trees, *l, path);
            assert_eq!(got, &want, "{name}: {path} written in layer {l}");
        }

        // `extract` of a hardlink gives what the tree shows at its path after its layer.
        for (l, entries) in layers.iter().enumerate() {
            for e in entries {
                let Entry::Hardlink { path, .. } = e else { continue };
                let path = format!("/{path}");
                let o =
                    run(&["extract", archive.to_str().unwrap(), "--layer", &l.to_string(), &path]);
                match trees[l].get(&path) {
                    Some(Some(node)) => {
                        assert_eq!(o.stdout, node.bytes, "{name}: extract {path} in layer {l}")
                    }
                    _ => assert_eq!(o.status.code(), Some(2), "{name}: {path} in layer {l}"),
                }
            }
        }
    }
}

/// A link whose target its own layer whited out first shows nothing:
/// `extract` says why instead of giving the lower bytes.
#[test]
fn extract_refuses_a_link_to_a_target_its_layer_removed() {
    let dir = tmp();
    let spec = ImageSpec {
        layers: vec![
            Layer::new("COPY", vec![secret("a/b", 11), secret("e", 11)]),
            Layer::new("RUN", vec![Entry::whiteout("e"), link("a/b", "e")]),
        ],
        ..ImageSpec::default()
    };
    let archive = dir.path().join("image.tar");
    ig::write_image(&spec, Format::OciArchive, &archive).unwrap();
    let (code, _, err) =
        parts(&run(&["extract", archive.to_str().unwrap(), "--layer", "1", "/a/b"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a hardlink to /e, which layer 1 whites out /e"), "{err}");
}

fn symlink(path: &str, target: &str) -> Entry {
    Entry::Symlink { path: path.into(), target: target.into() }
}

/// An entry under a symlink its own layer wrote before it lands where the
/// symlink points (containerd resolves an entry's parent within the root,
/// and in every applier the layer's own symlink is there): its status and
/// path are those of that place, and a whiteout or hardlink target through
/// the symlink names it too. Compared with trees GNU tar extracts entry by
/// entry (the kernel follows the symlink).
#[test]
fn entries_under_a_symlink_of_their_layer_land_where_it_points() {
    let dir = tmp();
    let wh = Entry::whiteout;
    let d = Entry::dir;
    // (name, layers, (layer, path) of the secret version as strata must report it)
    type Case = (&'static str, Vec<Vec<Entry>>, (usize, &'static str));
    let cases: Vec<Case> = vec![
        (
            "written through the symlink, whited out at the real path",
            vec![
                vec![d("opt/app")],
                vec![symlink("app", "opt/app"), secret("app/s.conf", 20)],
                vec![wh("opt/app/s.conf")],
            ],
            (1, "/opt/app/s.conf"),
        ),
        (
            "written through the symlink, the symlink whited out: the file stays",
            vec![
                vec![d("opt/app")],
                vec![symlink("app", "opt/app"), secret("app/s.conf", 21)],
                vec![wh("app")],
            ],
            (1, "/opt/app/s.conf"),
        ),
        (
            "whited out through a symlink of the whiteout's layer",
            vec![
                vec![d("opt/app"), secret("opt/app/s.conf", 22)],
                vec![symlink("app", "opt/app"), wh("app/s.conf")],
            ],
            (0, "/opt/app/s.conf"),
        ),
        (
            "a hardlink through a symlink of its layer keeps the bytes",
            vec![
                vec![d("opt/app"), secret("opt/app/s.conf", 23)],
                vec![symlink("app", "opt/app"), link("keep", "app/s.conf")],
                vec![wh("opt")],
            ],
            (0, "/opt/app/s.conf"),
        ),
    ];
    for (i, (name, layers, (layer, path))) in cases.into_iter().enumerate() {
        let (archive, trees) = build_and_materialise(&dir.path().join(format!("case{i}")), &layers);
        let want = model_status(&trees, layer, path);
        let (code, json, err) = scan_json(&archive, &[]);
        assert_eq!(code, 1, "{name}: {err}");
        let got: Vec<(u64, String, String, Option<u64>)> = findings_of(&json, "test-canary")
            .iter()
            .map(|f| {
                (
                    f["layer_index"].as_u64().unwrap(),
                    f["path"].as_str().unwrap().to_owned(),
                    f["status"].as_str().unwrap().to_owned(),
                    f["removed_in_layer"].as_u64(),
                )
            })
            .collect();
        let want = vec![(layer as u64, path.to_owned(), want.0, want.1.map(|n| n as u64))];
        assert_eq!(got, want, "{name}");
        if layers[layer]
            .iter()
            .any(|e| matches!(e, Entry::File { path, .. } if path.starts_with("app/")))
        {
            assert!(err.contains("is under a symlink this layer wrote before it"), "{name}: {err}");
        }
    }
}

/// An entry under a symlink a *lower* layer left: a naive applier (a full
/// copy, rootless containerd) follows the symlink, as GNU tar does here;
/// containerd's overlayfs path extracts into the layer's upper directory
/// alone, where the entry lands at its own name. strata reports the name as
/// written and keeps the bytes `present` while either place still shows them.
#[test]
fn entries_under_a_lower_symlink_stay_present_while_either_applier_shows_them() {
    let dir = tmp();
    let wh = Entry::whiteout;
    let base = vec![Entry::dir("opt/app"), symlink("app", "opt/app")];
    // (name, the layer after the write, the naive model's status, strata's status)
    type Case = (&'static str, Vec<Entry>, &'static str, (&'static str, Option<u64>));
    let cases: Vec<Case> = vec![
        (
            "the symlink whited out: naive appliers still show it",
            vec![wh("app")],
            "present",
            ("present", None),
        ),
        (
            "the real path whited out: the overlayfs applier still shows it",
            vec![wh("opt/app/s.conf")],
            "deleted",
            ("present", None),
        ),
        ("both whited out", vec![wh("app"), wh("opt")], "deleted", ("deleted", Some(2))),
    ];
    for (i, (name, last, model, want)) in cases.into_iter().enumerate() {
        let layers = [base.clone(), vec![secret("app/s.conf", 30 + i as u32)], last];
        let (archive, trees) = build_and_materialise(&dir.path().join(format!("case{i}")), &layers);
        assert_eq!(model_status(&trees, 1, "/opt/app/s.conf").0, model, "{name}: the model");
        let (code, json, err) = scan_json(&archive, &[]);
        assert_eq!(code, 1, "{name}: {err}");
        let f = &findings_of(&json, "test-canary")[0];
        assert_eq!(f["path"], "/app/s.conf", "{name}");
        let got = (f["status"].as_str().unwrap(), f["removed_in_layer"].as_u64());
        assert_eq!(got, want, "{name}");
    }
}
