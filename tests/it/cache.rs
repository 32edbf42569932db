//! The layer cache: a rescan reads only layers it has not seen, gives the
//! same findings, and survives (ignores) corrupt entries.

use crate::util::*;

/// The cache's entry directory, `layers-vN` for entry format N (whatever N is now).
fn entry_dir(cache: &std::path::Path) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("layers-v"))
        .collect();
    assert_eq!(dirs.len(), 1, "one entry directory in {}: {dirs:?}", cache.display());
    dirs[0].clone()
}

fn image(dir: &std::path::Path, top: &str, name: &str) -> std::path::PathBuf {
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "ADD base /",
                vec![
                    canary_file("base.conf", 1),
                    Entry::Text { path: "big.txt".into(), size: 2 << 20, seed: 3 },
                ],
            ),
            Layer::new("COPY app /", vec![canary_file("app.conf", 2)]),
            Layer::new(
                "RUN rm /base.conf",
                vec![Entry::whiteout("base.conf"), Entry::file("top.txt", top)],
            ),
        ],
        ..ImageSpec::default()
    };
    let path = dir.join(name);
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    path
}

fn findings(json: &serde_json::Value) -> Vec<(String, String, u64)> {
    let mut v: Vec<_> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].to_string(),
                f["status"].to_string(),
                f["layer_index"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn rescan_uses_cached_layers_and_gives_the_same_findings() {
    let dir = tmp();
    let cache = dir.path().join("cache");
    let c = cache.to_str().unwrap();
    let v1 = image(dir.path(), "one", "v1.tar");
    let (_, fresh, _) = scan_json(&v1, &[]);
    let (_, first, _) = scan_json(&v1, &["--cache-dir", c]);
    assert_eq!(findings(&first), findings(&fresh));
    let entries = |d: &std::path::Path| std::fs::read_dir(entry_dir(d)).unwrap().count();
    assert_eq!(entries(&cache), 3);
    // Only the top layer changed: one new entry; the status of the base file still
    // comes from the (new) top layer's whiteout.
    let v2 = image(dir.path(), "two", "v2.tar");
    let (_, second, err) = scan_json(&v2, &["--cache-dir", c]);
    assert_eq!(entries(&cache), 4, "{err}");
    assert_eq!(findings(&second), findings(&fresh));
    assert!(
        findings(&second).iter().any(|(p, s, _)| p.contains("base.conf") && s.contains("deleted"))
    );
    // --no-cache writes nothing.
    let other = dir.path().join("other");
    let (_, _, _) = scan_json(&v2, &["--cache-dir", other.to_str().unwrap(), "--no-cache"]);
    assert!(!other.exists());
}

#[test]
fn corrupt_entries_are_ignored_with_a_warning() {
    let dir = tmp();
    let cache = dir.path().join("cache");
    let c = cache.to_str().unwrap();
    let v1 = image(dir.path(), "one", "v1.tar");
    let (_, first, _) = scan_json(&v1, &["--cache-dir", c]);
    for e in std::fs::read_dir(entry_dir(&cache)).unwrap() {
        std::fs::write(e.unwrap().path(), b"{not json").unwrap();
    }
    let (code, again, err) = scan_json(&v1, &["--cache-dir", c]);
    assert_eq!(code, 1);
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(findings(&again), findings(&first));
}
