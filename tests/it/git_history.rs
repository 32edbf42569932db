//! Git object stores inside layers (issue 12, item 1): repos made by the
//! real `git` CLI, copied into image layers by the corpus generator, must
//! have every blob of their history scanned, loose or packed, inside
//! delta chains, and deleted by a later layer.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// Runs git in `repo` with a fixed identity and commit date, no user config.
fn git(repo: &Path, date: u64, args: &[&str]) -> String {
    let when = format!("@{date} +0000");
    let o = Command::new("git")
        .current_dir(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", &when)
        .env("GIT_COMMITTER_DATE", &when)
        .args(["-c", "user.name=Strata Test", "-c", "user.email=test@example.invalid"])
        .args(["-c", "init.defaultBranch=main", "-c", "gc.auto=0"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Commits `files` (path, content; `None` removes it) and returns the commit id.
fn commit(repo: &Path, date: u64, files: &[(&str, Option<&str>)], message: &str) -> String {
    for (path, content) in files {
        let p = repo.join(path);
        match content {
            Some(c) => {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, c).unwrap();
            }
            None => std::fs::remove_file(&p).unwrap(),
        }
    }
    git(repo, date, &["add", "-A"]);
    git(repo, date, &["commit", "-q", "-m", message]);
    git(repo, date, &["rev-parse", "HEAD"])
}

/// Every regular file under `dir`, as layer entries below `prefix`.
fn entries_of(dir: &Path, prefix: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut items: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect();
        items.sort();
        for p in items {
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_str().unwrap();
                out.push(Entry::file(&format!("{prefix}/{rel}"), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// A repo where `secret.env` held `canary(n)` in one commit and was removed
/// in the next; returns the repo dir and the commit that added the secret.
fn removed_secret_repo(dir: &Path, n: u32) -> (std::path::PathBuf, String) {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, 1_700_000_000, &["init", "-q"]);
    commit(&repo, 1_700_000_000, &[("README.md", Some("# app\n"))], "init");
    let added = commit(
        &repo,
        1_700_000_100,
        &[("config/secret.env", Some(&format!("TOKEN={}\n", canary(n))))],
        "add config",
    );
    commit(&repo, 1_700_000_200, &[("config/secret.env", None)], "remove secret");
    (repo, added)
}

fn image_of(dir: &Path, name: &str, layers: Vec<Layer>) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.tar"));
    let spec = ImageSpec { layers, ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    path
}

fn canary_findings(json: &serde_json::Value) -> Vec<serde_json::Value> {
    findings_of(json, "test-canary")
}

#[test]
fn loose_objects_in_history_are_scanned() {
    let dir = tmp();
    let (repo, added) = removed_secret_repo(dir.path(), 901);
    assert!(!repo.join("config/secret.env").exists());
    let img = image_of(
        dir.path(),
        "loose",
        vec![Layer::new("COPY . /app", entries_of(&repo.join(".git"), "app/.git"))],
    );
    let (code, json, err) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{err}");
    let found = canary_findings(&json);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f["inner_path"], format!("{added}:config/secret.env"));
    let path = f["path"].as_str().unwrap();
    assert!(path.starts_with("/app/.git/objects/") && !path.contains("/pack/"), "{path}");
    assert_eq!(f["status"], "present");
    assert_eq!(f["line"], 1);
}

#[test]
fn aggressively_packed_history_is_scanned() {
    let dir = tmp();
    let (repo, added) = removed_secret_repo(dir.path(), 902);
    git(&repo, 1_700_000_300, &["gc", "-q", "--aggressive", "--prune=now"]);
    let objects = repo.join(".git/objects");
    let loose = std::fs::read_dir(&objects)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().len() == 2)
        .count();
    assert_eq!(loose, 0, "gc left loose objects");
    let img = image_of(
        dir.path(),
        "packed",
        vec![Layer::new("COPY . /app", entries_of(&repo.join(".git"), "app/.git"))],
    );
    let (code, json, err) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{err}");
    let found = canary_findings(&json);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["inner_path"], format!("{added}:config/secret.env"));
    let path = found[0]["path"].as_str().unwrap();
    assert!(path.starts_with("/app/.git/objects/pack/pack-") && path.ends_with(".pack"), "{path}");
    // Without the index the pack is walked entry by entry, with the same result.
    let no_idx: Vec<Entry> = entries_of(&repo.join(".git"), "app/.git")
        .into_iter()
        .filter(|e| !matches!(e, Entry::File { path, .. } if path.ends_with(".idx")))
        .collect();
    let img = image_of(dir.path(), "packed-no-idx", vec![Layer::new("COPY . /app", no_idx)]);
    let (code, json, err) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(canary_findings(&json)[0]["inner_path"], format!("{added}:config/secret.env"));
}

/// Lines of pseudo-random text, so versions of the file delta well.
fn big_text(lines: usize) -> String {
    (0..lines)
        .map(|i| {
            format!("line {i:05} value {:016x}\n", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        })
        .collect()
}

#[test]
fn secret_only_inside_a_delta_is_found() {
    let dir = tmp();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, 1_700_000_000, &["init", "-q"]);
    let base = big_text(2000);
    commit(&repo, 1_700_000_000, &[("data/big.txt", Some(&base))], "big file");
    let with_secret = format!("{base}secret = {}\n", canary(903));
    let added = commit(&repo, 1_700_000_100, &[("data/big.txt", Some(&with_secret))], "tweak");
    // A later, larger version without the secret: git keeps the largest
    // version of a path whole and stores the others as deltas against it.
    let later = format!("{base}secret = removed; now read from the vault at start-up\n");
    commit(&repo, 1_700_000_200, &[("data/big.txt", Some(&later))], "remove");
    git(&repo, 1_700_000_300, &["gc", "-q", "--aggressive", "--prune=now"]);
    let blob = git(&repo, 0, &["rev-parse", &format!("{added}:data/big.txt")]);
    let idx = std::fs::read_dir(repo.join(".git/objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .unwrap();
    let verify = git(&repo, 0, &["verify-pack", "-v", idx.to_str().unwrap()]);
    let line = verify.lines().find(|l| l.starts_with(&blob)).unwrap();
    // `<id> blob <size> <packed> <offset> <depth> <base>`: a delta has a base.
    assert_eq!(line.split_whitespace().count(), 7, "the secret version is not a delta: {line}");
    let img = image_of(
        dir.path(),
        "delta",
        vec![Layer::new("COPY . /app", entries_of(&repo.join(".git"), "app/.git"))],
    );
    let (code, json, err) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{err}");
    let found = canary_findings(&json);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["inner_path"], format!("{added}:data/big.txt"));
    assert_eq!(found[0]["line"], 2001);
}

#[test]
fn git_dir_deleted_in_a_later_layer_keeps_deleted_status() {
    let dir = tmp();
    let (repo, added) = removed_secret_repo(dir.path(), 904);
    git(&repo, 1_700_000_300, &["gc", "-q", "--prune=now"]);
    let img = image_of(
        dir.path(),
        "deleted",
        vec![
            Layer::new("COPY . /app", entries_of(&repo.join(".git"), "app/.git")),
            Layer::new("RUN rm -rf /app/.git", vec![Entry::whiteout("app/.git")]),
        ],
    );
    let (code, json, err) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{err}");
    let found = canary_findings(&json);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["inner_path"], format!("{added}:config/secret.env"));
    assert_eq!(found[0]["status"], "deleted");
    assert_eq!(found[0]["removed_in_layer"], 1);
    assert_eq!(found[0]["layer_index"], 0);
}

#[test]
fn corrupt_pack_makes_the_scan_incomplete() {
    let dir = tmp();
    let (repo, _) = removed_secret_repo(dir.path(), 905);
    git(&repo, 1_700_000_300, &["gc", "-q", "--prune=now"]);
    let mut entries = entries_of(&repo.join(".git"), "app/.git");
    for e in &mut entries {
        if let Entry::File { path, data } = e
            && path.ends_with(".pack")
        {
            // Keep the header, garble every object after it.
            for b in data.iter_mut().skip(12) {
                *b ^= 0x5a;
            }
        }
    }
    let img = image_of(dir.path(), "corrupt", vec![Layer::new("COPY . /app", entries)]);
    let (code, json, err) = scan_json(&img, &[]);
    assert_eq!(code, 2, "{err}");
    let diags = json["diagnostics"].as_array().unwrap();
    assert!(
        diags.iter().any(|d| d["level"] == "error"
            && d["message"].as_str().unwrap().contains("git store /app/.git/objects")),
        "{diags:#?}"
    );
}

/// Packs the objects of `repo` whose type `keep` accepts into one pack (by
/// `git pack-objects`) and removes their loose copies (`git prune-packed`):
/// the store is then split between a pack and loose objects, as when they
/// are copied into an image in two steps.
fn split_store(repo: &Path, keep: impl Fn(&str) -> bool) {
    let listing = git(repo, 0, &["cat-file", "--batch-all-objects", "--batch-check"]);
    let ids: String = listing
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let (id, kind) = (parts.next()?, parts.next()?);
            keep(kind).then(|| format!("{id}\n"))
        })
        .collect();
    let mut child = Command::new("git")
        .current_dir(repo)
        .args(["pack-objects", "-q", ".git/objects/pack/pack"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), ids.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    git(repo, 0, &["prune-packed"]);
    git(repo, 0, &["fsck", "--no-dangling"]);
}

/// The store's files split in two: the pack (and everything outside
/// `objects/`), then the loose objects.
fn pack_then_loose(repo: &Path, prefix: &str) -> (Vec<Entry>, Vec<Entry>) {
    entries_of(&repo.join(".git"), prefix).into_iter().partition(|e| match e {
        Entry::File { path, .. } => !path.contains("/objects/") || path.contains("/objects/pack/"),
        _ => true,
    })
}

#[test]
fn repo_spread_over_layers_names_blobs_by_commit_and_path() {
    let dir = tmp();
    // Commits and trees packed, the secret's blob loose in a later layer.
    let a = dir.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    let (repo_a, added_a) = removed_secret_repo(&a, 907);
    split_store(&repo_a, |kind| kind != "blob");
    let (pack_a, loose_a) = pack_then_loose(&repo_a, "app/.git");
    // The other way round: blobs packed first, commits and trees loose later.
    let b = dir.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    let (repo_b, added_b) = removed_secret_repo(&b, 908);
    split_store(&repo_b, |kind| kind == "blob");
    let (pack_b, loose_b) = pack_then_loose(&repo_b, "srv/.git");
    let img = image_of(
        dir.path(),
        "spread",
        vec![
            Layer::new("COPY .git/objects/pack /app/.git/objects/pack", [pack_a, pack_b].concat()),
            Layer::new("COPY .git /app/.git", [loose_a, loose_b].concat()),
        ],
    );
    let (code, json, err) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{err}");
    let found = canary_findings(&json);
    assert_eq!(found.len(), 2, "{found:#?}");
    let of =
        |root: &str| found.iter().find(|f| f["path"].as_str().unwrap().starts_with(root)).unwrap();
    let (fa, fb) = (of("/app/"), of("/srv/"));
    assert_eq!(fa["layer_index"], 1, "the loose blob's layer");
    assert!(!fa["path"].as_str().unwrap().contains("/pack/"), "{fa}");
    assert_eq!(fa["inner_path"], format!("{added_a}:config/secret.env"));
    assert_eq!(fb["layer_index"], 0, "the packed blob's layer");
    assert!(fb["path"].as_str().unwrap().ends_with(".pack"), "{fb}");
    assert_eq!(fb["inner_path"], format!("{added_b}:config/secret.env"));
}
