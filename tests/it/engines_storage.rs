//! `containers-storage:` found where Podman and Buildah put it, with no
//! `--storage-root`: the overlay driver chosen by a `storage.conf`
//! (`CONTAINERS_STORAGE_CONF`), and rootless storage under `$HOME`,
//! `$XDG_DATA_HOME` or a user `storage.conf` (`$XDG_CONFIG_HOME`), written
//! by Podman itself running as an unprivileged user. Also `strata layers`
//! and `strata extract` on the same targets.
//!
//! The tools get no storage flags: they find their storage from the same
//! files and variables strata reads, so a test passes only when strata
//! looks where the engine wrote.

use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::engines::{
    assert_build_findings, busybox_rootfs, check, comparable, context_dir, is_root, need, scan,
};
use crate::util::*;

/// Commands run the way a user runs them: a clean environment holding only
/// `PATH` and `vars`, as `uid` when given (through `setpriv`).
struct Session {
    vars: Vec<(String, OsString)>,
    uid: Option<u32>,
}

impl Session {
    fn cmd(&self, program: &Path) -> Command {
        let mut c = match self.uid {
            Some(uid) => {
                let mut c = Command::new(need("setpriv"));
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg(program);
                c
            }
            None => Command::new(program),
        };
        c.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        c.envs(self.vars.iter().map(|(k, v)| (k, v))).stdin(Stdio::null()).current_dir("/");
        c
    }

    fn tool(&self, name: &str) -> Command {
        self.cmd(&need(name))
    }

    fn strata(&self) -> Command {
        let bin = std::env::var_os("STRATA_TEST_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_strata")));
        self.cmd(&bin)
    }
}

/// Unmounts whatever a failed build left mounted under a directory, so the
/// temp dir can go.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| Path::new(m).starts_with(&self.0))
            .collect();
        for m in under.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

/// Rootless Podman leaves a pause process holding its user namespace, whose
/// pid it records under `$XDG_RUNTIME_DIR`; it ignores SIGTERM, so it is
/// killed when the test ends.
struct PauseProcess(PathBuf);

impl Drop for PauseProcess {
    fn drop(&mut self) {
        let file = self.0.join("libpod/tmp/pause.pid");
        let Ok(pid) = std::fs::read_to_string(&file) else { return };
        let pid = pid.trim();
        // Only the process the file names, and only while it is still Podman's.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "podman pause" {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

/// Builds the test image into the storage `s` finds by itself, saves it,
/// and returns the scan of the saved archive.
fn build_and_save(s: &Session, dir: &Path) -> (Value, PathBuf) {
    let rootfs = busybox_rootfs(dir);
    check(
        s.tool("podman").arg("import").arg(&rootfs).arg("localhost/base:1").output().unwrap(),
        "podman import",
    );
    let ctx = context_dir(dir, "localhost/base:1");
    check(
        s.tool("buildah")
            .args(["bud", "--layers", "--network", "none", "-q", "-t", "localhost/app:1"])
            .arg(&ctx)
            .output()
            .unwrap(),
        "buildah bud",
    );
    let archive = dir.join("app.tar");
    check(
        s.tool("podman")
            .args(["save", "-q", "-o"])
            .arg(&archive)
            .arg("localhost/app:1")
            .output()
            .unwrap(),
        "podman save",
    );
    let (code, saved, err) = scan(&mut strata(), &[archive.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_build_findings(&saved, "podman save");
    (saved, archive)
}

/// Files of one kind anywhere under `dir`.
fn find(dir: &Path, keep: &dyn Fn(&std::fs::FileType) -> bool, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            find(&e.path(), keep, out);
        } else if keep(&t) {
            out.push(e.path());
        }
    }
}

#[test]
fn overlay_storage_found_through_storage_conf() {
    let work = tmp();
    let _unmount = Unmount(work.path().to_owned());
    let graph = work.path().join("graph");
    let conf = work.path().join("storage.conf");
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            graph.display(),
            work.path().join("run").display()
        ),
    )
    .unwrap();
    let s = Session {
        vars: vec![
            ("CONTAINERS_STORAGE_CONF".into(), conf.clone().into()),
            ("HOME".into(), work.path().into()),
        ],
        uid: None,
    };
    let (saved, archive) = build_and_save(&s, work.path());

    // The engine used overlay: its layers are directories under overlay/<id>/diff, and a
    // deletion is a character-device whiteout there, which strata rebuilds from tar-split.
    assert!(graph.join("overlay-images/images.json").is_file());
    assert!(!graph.join("vfs-images").exists());
    let mut devices = Vec::new();
    find(&graph.join("overlay"), &|t| t.is_char_device(), &mut devices);
    assert!(devices.iter().any(|d| d.ends_with("diff/app/.env")), "overlay whiteouts: {devices:?}");

    for name in ["app:1", "localhost/app:1"] {
        let target = format!("containers-storage:{name}");
        let (code, json, err) = scan(&mut s.strata(), &[&target]);
        assert_eq!(code, 1, "{target}: {err}");
        assert_eq!(comparable(&json), comparable(&saved), "{target}");
    }

    // `layers` and `extract` read the same storage.
    let timeline = |cmd: &mut Command, target: &str| -> Value {
        let o = cmd.args(["layers", "--format", "json", target]).output().unwrap();
        let (code, out, err) = parts(&o);
        assert_eq!(code, 0, "{target}: {err}");
        let json: Value = serde_json::from_str(&out).unwrap();
        json["images"][0]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| serde_json::json!([l["diff_id"], l["files"], l["created_by"]]))
            .collect()
    };
    assert_eq!(
        timeline(&mut s.strata(), "containers-storage:app:1"),
        timeline(&mut strata(), archive.to_str().unwrap())
    );
    let out = work.path().join("env.recovered");
    let o = s
        .strata()
        .args(["extract", "containers-storage:app:1", "--layer", "1", "/app/.env", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(parts(&o).0, 0, "{}", parts(&o).2);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "token = CANARY_000000000001\n");

    // A storage.conf that is not TOML is an error naming it, not a silent default.
    std::fs::write(&conf, "[storage\n").unwrap();
    let (code, json, _) = scan(&mut s.strata(), &["containers-storage:app:1"]);
    assert_eq!(code, 2);
    let errs = crate::engines::messages(&json, "error");
    assert!(
        errs.iter().any(|e| e.contains("storage.conf") && e.contains("not valid TOML")),
        "{errs:?}"
    );
}

/// A directory the unprivileged user owns, inside a temp dir it may enter.
fn owned_dir(parent: &Path, name: &str, uid: Option<u32>) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(uid) = uid {
        std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    dir
}

#[test]
fn rootless_storage_found_under_home_and_xdg() {
    // As root, Podman runs rootless as `nobody`; otherwise as the user running the tests.
    let uid = is_root().then_some(65534);
    let work = tmp();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let _unmount = Unmount(work.path().to_owned());
    let home = owned_dir(work.path(), "home", uid);
    let runtime = owned_dir(work.path(), "runtime", uid);
    let _pause = PauseProcess(runtime.clone());
    let base = |extra: &[(&str, PathBuf)]| {
        let mut vars: Vec<(String, OsString)> = vec![
            ("HOME".into(), home.clone().into()),
            ("XDG_RUNTIME_DIR".into(), runtime.clone().into()),
        ];
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone().into())));
        Session { vars, uid }
    };

    // $HOME/.local/share/containers/storage: a full build, equal to `podman save`.
    let s = base(&[]);
    let build = owned_dir(&home, "build", uid);
    let (saved, _) = build_and_save(&s, &build);
    assert!(home.join(".local/share/containers/storage").is_dir(), "podman wrote rootless storage");
    let (code, json, err) = scan(&mut s.strata(), &["containers-storage:app:1"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(comparable(&json), comparable(&saved));

    // $XDG_DATA_HOME moves it; a user storage.conf under $XDG_CONFIG_HOME moves it again.
    let config = owned_dir(&home, "config", uid);
    owned_dir(&config, "containers", uid);
    let elsewhere = home.join("elsewhere");
    std::fs::write(
        config.join("containers/storage.conf"),
        format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\n", elsewhere.display()),
    )
    .unwrap();
    let cases = [
        (base(&[("XDG_DATA_HOME", home.join("data"))]), home.join("data/containers/storage")),
        (base(&[("XDG_CONFIG_HOME", config.clone())]), elsewhere.clone()),
    ];
    let layer = owned_dir(&home, "layer", uid);
    std::fs::create_dir_all(layer.join("etc")).unwrap();
    std::fs::write(layer.join("etc/app.conf"), "token = CANARY_000000000005\n").unwrap();
    let tar = home.join("layer.tar");
    check(
        // Owned by root: a rootless namespace without subuid ranges maps only that.
        Command::new("tar")
            .args(["--owner=0", "--group=0", "-C"])
            .arg(&layer)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap(),
        "tar",
    );
    for (s, root) in cases {
        check(
            s.tool("podman").arg("import").arg(&tar).arg("localhost/one:1").output().unwrap(),
            "podman import",
        );
        assert!(root.join("vfs-images/images.json").is_file(), "podman wrote {}", root.display());
        let (code, json, err) = scan(&mut s.strata(), &["containers-storage:one:1"]);
        assert_eq!(code, 1, "{}: {err}", root.display());
        let paths: Vec<&str> = json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["path"].as_str())
            .collect();
        assert_eq!(paths, ["/etc/app.conf"], "{}", root.display());
        // The image is only there: the $HOME default does not hold it.
        let (code, json, _) = scan(&mut base(&[]).strata(), &["containers-storage:one:1"]);
        assert_eq!(code, 2, "{json:#}");
    }
}
