//! The two local blob sources on files written here: a tar archive's members (by seeking,
//! links resolved) and a layout directory's files (never leaving the directory, never
//! following a symlink), and the metadata size limit every store applies.

use std::io::Read;

use super::*;

/// A tar of `(name, kind, link target or content)` entries.
fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        if kind.is_symlink() || kind.is_hard_link() {
            h.set_link_name(std::str::from_utf8(data).unwrap()).unwrap();
            h.set_size(0);
            b.append_data(&mut h, name, &[][..]).unwrap();
        } else {
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, *data).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn read(store: &BlobStore, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    store.open(name).unwrap_or_else(|e| panic!("{name}: {e}")).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn tar_members_are_read_by_seeking_with_links_resolved() {
    use tar::EntryType::{Link, Regular, Symlink};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("save.tar");
    let bytes = archive(&[
        ("./manifest.json", Regular, b"[FAKE_MANIFEST]"),
        ("aaa/layer.tar", Regular, b"first layer bytes"),
        ("bbb/layer.tar", Symlink, b"../aaa/layer.tar"),
        ("ccc/layer.tar", Link, b"aaa/layer.tar"),
        ("loop1", Symlink, b"loop2"),
        ("loop2", Symlink, b"loop1"),
        ("zzz.json", Regular, b"{}"),
    ]);
    std::fs::write(&path, bytes).unwrap();
    let store = BlobStore::tar(&path, "save.tar", None).unwrap();
    assert_eq!(store.read_small("manifest.json").unwrap(), b"[FAKE_MANIFEST]");
    assert_eq!(read(&store, "./zzz.json"), b"{}");
    for name in ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"] {
        assert_eq!(read(&store, name), b"first layer bytes", "{name}");
        assert_eq!(store.size(name), Some(17), "{name}");
    }
    // A link cycle resolves to nothing: the member is missing, and said so.
    assert!(!store.contains("loop1"));
    let Err(e) = store.open("loop1") else { panic!("a link cycle was opened") };
    assert_eq!(e.to_string(), "save.tar: blob loop1 is missing from the archive");
}

#[test]
fn a_tar_without_files_is_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dirs.tar");
    std::fs::write(&path, archive(&[("only/", tar::EntryType::Directory, b"")])).unwrap();
    let Err(e) = BlobStore::tar(&path, "dirs.tar", None) else { panic!("opened") };
    assert_eq!(e.to_string(), "dirs.tar: the tar archive has no files");
}

#[test]
fn a_layout_directory_stays_inside_itself_and_follows_no_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    std::fs::write(root.join("index.json"), b"{}").unwrap();
    std::fs::write(dir.path().join("outside.json"), b"FAKE_OUTSIDE").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.json"), root.join("blobs/sha256/ab"))
        .unwrap();
    let store = BlobStore::dir(&root, "layout");
    assert_eq!(store.read_small("index.json").unwrap(), b"{}");
    assert!(!store.contains("../outside.json"), "a name that leaves the layout is no member");
    let Err(e) = store.open("blobs/sha256/ab") else { panic!("a symlink was followed") };
    assert!(e.to_string().contains("blobs/sha256/ab is a symlink"), "{e}");
    let Err(e) = store.open("blobs/sha256/cd") else { panic!("a missing blob was opened") };
    assert_eq!(e.to_string(), "layout: blob blobs/sha256/cd is missing from the archive");
}

#[test]
fn metadata_larger_than_the_limit_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse: the size is what is refused, so nothing of it is written or read.
    let big = std::fs::File::create(dir.path().join("index.json")).unwrap();
    big.set_len(MAX_JSON_BYTES + 1).unwrap();
    let store = BlobStore::dir(dir.path(), "layout");
    let Err(e) = store.read_small("index.json") else { panic!("read") };
    assert_eq!(
        e.to_string(),
        format!("layout: index.json: {} bytes is too large for image metadata", MAX_JSON_BYTES + 1)
    );
}

#[test]
fn long_member_names_are_bounded_in_the_archive_index() {
    let dir = tempfile::tempdir().unwrap();
    // A name of `n` bytes (components of 100), in a GNU long-name record.
    let named = |n: usize| {
        let name: String = (0..n).map(|i| if i % 101 == 100 { '/' } else { 'a' }).collect();
        let path = dir.path().join(format!("long-{n}.tar"));
        let bytes = archive(&[
            (&name, tar::EntryType::Regular, b"[FAKE]"),
            ("manifest.json", tar::EntryType::Regular, b"[FAKE_MANIFEST]"),
        ]);
        std::fs::write(&path, bytes).unwrap();
        (BlobStore::tar(&path, "long.tar", None), name)
    };
    // 100 KB: within the limit, and read.
    let (store, name) = named(100_000);
    let store = store.unwrap();
    assert_eq!(read(&store, &name), b"[FAKE]");
    // 3 MB: refused with the reason, never held whole.
    let (store, _) = named(3_000_000);
    let e = store.map(drop).unwrap_err().to_string();
    assert!(e.contains("long.tar") && e.contains("longer than the 2097152-byte limit"), "{e}");
}
