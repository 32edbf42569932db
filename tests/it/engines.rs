//! Local engines as sources, against the real components: a private
//! `dockerd` (vfs storage, no iptables, its own socket and data root under
//! a temp dir), Podman with a private vfs storage root, Podman's
//! Docker-compatible API service, and the test registry for a Kubernetes
//! inventory. Images are built offline from a busybox rootfs, with `RUN`
//! steps that write and then delete fake secrets (the canary rule).
//!
//! A source that reads an engine must find exactly what a scan of the
//! engine's own export (`docker save`, `podman save`) finds.
//!
//! Every daemon is owned by a guard that stops it when the test ends,
//! failed or not. The Docker scenarios share one dockerd, so they run in
//! one test function, in order.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// Fails (never skips) when a tool these tests need is missing.
pub(crate) fn need(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "{tool} is not installed: run tests/run.sh, which installs Debian's docker.io, \
                 podman, buildah, busybox-static, docker-registry and skopeo"
            )
        })
}

pub(crate) fn check(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// A busybox root filesystem (a static busybox and its applet links) as a
/// tar, to import as the base image: no network needed.
pub(crate) fn busybox_rootfs(dir: &Path) -> PathBuf {
    let busybox = need("busybox");
    let ldd = Command::new("ldd").arg(&busybox).output();
    assert!(
        ldd.is_ok_and(|o| !o.status.success()),
        "{} is dynamically linked; install busybox-static",
        busybox.display()
    );
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(&busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "rm", "echo", "mkdir", "ln", "cat", "sleep", "ls"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    check(
        Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").output().unwrap(),
        "tar of the rootfs",
    );
    tar
}

/// The build: a secret written and deleted in two `RUN` steps (with a
/// hardlink to it), another overwritten, and one that stays.
const CONTAINERFILE: &str = "FROM base:1
RUN mkdir -p /app /opt/d && echo 'token = CANARY_000000000001' > /app/.env && ln /app/.env /opt/d/link \
 && echo 'key = CANARY_000000000002' > /app/over.conf && echo 'keep = CANARY_000000000003' > /app/kept
RUN rm /app/.env && rm -rf /opt/d && echo 'nothing here' > /app/over.conf
CMD [\"/bin/sh\"]
";

pub(crate) fn context_dir(dir: &Path, from: &str) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), CONTAINERFILE.replace("base:1", from)).unwrap();
    ctx
}

/// A JSON scan with the canary rule: (code, report, stderr).
pub(crate) fn scan(cmd: &mut Command, args: &[&str]) -> (i32, Value, String) {
    let rules = canary_rules();
    let o = cmd
        .args(["scan", "--format", "json", "-q", "--signatures", &rules])
        .args(args)
        .output()
        .unwrap();
    let (code, out, err) = parts(&o);
    let json =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}\n{err}"));
    (code, json, err)
}

/// Findings without the fields that name the target (and the image
/// digest, which differs between an export and engine storage).
pub(crate) fn comparable(json: &Value) -> Vec<Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut f = f.clone();
            let o = f.as_object_mut().unwrap();
            o.remove("target");
            o.remove("image_digest");
            f
        })
        .collect()
}

pub(crate) fn canaries(json: &Value) -> BTreeSet<(String, String, u64, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "test-canary" && f["path"].is_string())
        .map(|f| {
            (
                f["redacted"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap().to_owned(),
                f["layer_index"].as_u64().unwrap(),
                f["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub(crate) fn messages(json: &Value, level: &str) -> Vec<String> {
    json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["level"] == level)
        .map(|d| d["message"].as_str().unwrap().to_owned())
        .collect()
}

/// What the build must leave, as seen by any correct source: the three
/// canaries in layer 1, one deleted, one overwritten, one present.
pub(crate) fn assert_build_findings(json: &Value, what: &str) {
    let statuses: BTreeSet<(String, u64, String)> =
        canaries(json).into_iter().map(|(_, p, l, s)| (p, l, s)).collect();
    let want: BTreeSet<(String, u64, String)> = [
        ("/app/.env", 1, "deleted"),
        ("/app/over.conf", 1, "overwritten"),
        ("/app/kept", 1, "present"),
    ]
    .iter()
    .map(|(p, l, s)| ((*p).to_owned(), *l, (*s).to_owned()))
    .collect();
    assert_eq!(statuses, want, "{what}: {json:#}");
}

/// A process owned by the test: SIGTERM (so dockerd stops its containerd),
/// then SIGKILL if it lingers; always waited for.
struct Daemon {
    child: Child,
    name: &'static str,
}

impl Daemon {
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits for a unix socket to accept connections, or the daemon to die.
fn wait_for_socket(daemon: &mut Daemon, sock: &Path, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!(
                "{} exited ({status}) before serving:\n{}",
                daemon.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if std::os::unix::net::UnixStream::connect(sock).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{} did not listen on {} in time:\n{}",
        daemon.name,
        sock.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Waits for a loopback TCP port to accept connections, or the daemon to die.
fn wait_for_tcp(daemon: &mut Daemon, port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!(
                "{} exited ({status}) before serving:\n{}",
                daemon.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} did not listen on port {port} in time", daemon.name);
}

/// A private dockerd. Fields drop in order: containers are removed by the
/// test, the daemon stops, then its directory goes.
pub(crate) struct Dockerd {
    daemon: Daemon,
    sock: PathBuf,
    dir: tempfile::TempDir,
}

impl Dockerd {
    pub(crate) fn start() -> Dockerd {
        let dockerd = need("dockerd");
        need("docker");
        let dir = tmp();
        let sock = dir.path().join("docker.sock");
        let log = dir.path().join("dockerd.log");
        let child = Command::new(dockerd)
            .args(["--storage-driver", "vfs", "--iptables=false", "--bridge=none"])
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("dockerd.err")).unwrap())
            .spawn()
            .expect("dockerd starts");
        let mut daemon = Daemon { child, name: "dockerd" };
        wait_for_socket(&mut daemon, &sock, &dir.path().join("dockerd.err"));
        Dockerd { daemon, sock, dir }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    pub(crate) fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host()).env("DOCKER_BUILDKIT", "0").stdin(Stdio::null());
        c
    }

    fn strata(&self) -> Command {
        let mut c = strata();
        c.env("DOCKER_HOST", self.host());
        c
    }

    /// Imports `base` as `base:1`, builds `ctx` (whose Dockerfile starts `FROM base:1`) as
    /// `tag` with the legacy builder and no network, and saves it to `out` (`docker save`).
    pub(crate) fn import_build_save(&self, base: &Path, ctx: &Path, tag: &str, out: &Path) {
        check(self.docker().arg("import").arg(base).arg("base:1").output().unwrap(), "import");
        let build =
            self.docker().args(["build", "--network", "none", "-q", "-t", tag]).arg(ctx).output();
        check(build.unwrap(), "docker build");
        check(self.docker().args(["save", "-o"]).arg(out).arg(tag).output().unwrap(), "save");
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.daemon.stop();
        if std::thread::panicking() {
            for log in ["dockerd.log", "dockerd.err"] {
                let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("{log} (last lines, newest first):\n{}", tail.join("\n"));
            }
        }
    }
}

/// Removes a container even when the test fails before it would.
struct Container<'a> {
    dockerd: &'a Dockerd,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.dockerd.docker().args(["rm", "-f", &self.id]).output();
    }
}

#[test]
fn docker_engine_sources() {
    let work = tmp();
    let d = Dockerd::start();
    let rootfs = busybox_rootfs(work.path());
    check(d.docker().arg("import").arg(&rootfs).arg("base:1").output().unwrap(), "docker import");
    let ctx = context_dir(work.path(), "base:1");
    check(
        d.docker()
            .args(["build", "--network", "none", "-q", "-t", "app:1"])
            .arg(&ctx)
            .output()
            .unwrap(),
        "docker build",
    );
    let archive = work.path().join("app.tar");
    check(
        d.docker().args(["save", "-o"]).arg(&archive).arg("app:1").output().unwrap(),
        "docker save",
    );

    // The daemon's export, streamed, equals the saved archive.
    let (code, saved, err) = scan(&mut strata(), &[archive.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_build_findings(&saved, "docker save");
    let (code, daemon, err) = scan(&mut d.strata(), &["docker-daemon:app:1"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(comparable(&daemon), comparable(&saved));
    assert_eq!(daemon["images"][0]["layers"], saved["images"][0]["layers"]);
    assert!(messages(&daemon, "warning").is_empty(), "{daemon:#}");

    // By image ID too.
    let id =
        check(d.docker().args(["inspect", "-f", "{{.Id}}", "app:1"]).output().unwrap(), "inspect");
    let short = &id["sha256:".len().."sha256:".len() + 12];
    let (code, by_id, err) = scan(&mut d.strata(), &[&format!("docker-daemon:{short}")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(comparable(&by_id), comparable(&saved));

    // `layers` and `extract` read the daemon too: the same timeline as the archive, and
    // the deleted file back, written only where asked.
    assert_eq!(
        layers_json(&mut d.strata(), "docker-daemon:app:1"),
        layers_json(&mut strata(), archive.to_str().unwrap())
    );
    let out = work.path().join("recovered");
    std::fs::create_dir(&out).unwrap();
    let env = extract_to(&mut d.strata(), "docker-daemon:app:1", 1, "/app/.env", &out.join("env"));
    assert_eq!(env, "token = CANARY_000000000001\n");
    let names: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["env"], "nothing but the output is written");

    // Clear errors: no such image, no daemon, a remote tcp host, no permission.
    let (code, json, _) = scan(&mut d.strata(), &["docker-daemon:nope:1"]);
    assert_eq!(code, 2);
    let errs = messages(&json, "error");
    assert!(errs.iter().any(|e| e.contains("docker-daemon:nope:1: not found")), "{errs:?}");
    let missing = work.path().join("no.sock");
    let (code, json, _) = scan(
        strata().env("DOCKER_HOST", format!("unix://{}", missing.display())),
        &["docker-daemon:app:1"],
    );
    assert_eq!(code, 2);
    let errs = messages(&json, "error");
    assert!(errs.iter().any(|e| e.contains("cannot connect to the Docker daemon")), "{errs:?}");
    let (code, json, _) =
        scan(strata().env("DOCKER_HOST", "tcp://192.0.2.1:2375"), &["docker-daemon:app:1"]);
    assert_eq!(code, 2);
    assert!(messages(&json, "error").iter().any(|e| e.contains("not a loopback address")));
    if is_root() {
        // The socket is root's alone (0660 root:root); another user may not connect.
        let o = Command::new(need("setpriv"))
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(
                std::env::var_os("STRATA_TEST_BIN")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_strata"))),
            )
            .args(["scan", "-q", "--format", "json", "docker-daemon:app:1"])
            .env("DOCKER_HOST", d.host())
            .env("HOME", "/")
            .current_dir("/")
            .output()
            .unwrap();
        let (code, out, err) = parts(&o);
        assert_eq!(code, 2, "{err}");
        let json: Value = serde_json::from_str(&out).unwrap();
        let errs = messages(&json, "error");
        assert!(
            errs.iter().any(|e| e.contains("permission denied on the Docker socket")),
            "{errs:?}"
        );
    }

    // A running container: its writable layer is one more layer.
    let id = check(
        d.docker()
            .args(["run", "-d", "--network", "none", "app:1", "sleep", "300"])
            .output()
            .unwrap(),
        "docker run",
    );
    let container = Container { dockerd: &d, id };
    check(
        d.docker()
            .args(["exec", &container.id, "sh", "-c"])
            .arg("mkdir -p /root && echo 'stolen = CANARY_000000000004' > /root/notes.txt && rm /app/kept")
            .output()
            .unwrap(),
        "docker exec",
    );
    let target = format!("docker-container:{}", container.id);
    let (code, json, err) = scan(&mut d.strata(), &[&target]);
    assert_eq!(code, 1, "{err}");
    let layers = json["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4, "three image layers and the container's");
    let top = layers[3]["created_by"].as_str().unwrap();
    assert!(top.contains("writable layer: 2 added, 1 changed, 1 deleted"), "{top}");
    let found = canaries(&json);
    assert!(
        found.iter().any(|(r, p, l, s)| r.ends_with("04")
            && p == "/root/notes.txt"
            && *l == 3
            && s == "present"),
        "{found:?}"
    );
    // The container deleted what the image still ships.
    assert!(
        found.iter().any(|(_, p, l, s)| p == "/app/kept" && *l == 1 && s == "deleted"),
        "{found:?}"
    );
    let f = json["findings"].as_array().unwrap().iter().find(|f| f["path"] == "/app/kept").unwrap();
    assert_eq!(f["removed_in_layer"], 3);
    let notes = messages(&json, "note");
    for change in ["added /root/notes.txt", "deleted /app/kept", "changed /app"] {
        assert!(notes.iter().any(|n| n.ends_with(change)), "{change}: {notes:?}");
    }
    // `layers` shows the writable layer on top; `extract` recovers from it and from below.
    let timeline = layers_json(&mut d.strata(), &target);
    assert_eq!(timeline.len(), 4);
    assert_eq!(timeline[..3], layers_json(&mut strata(), archive.to_str().unwrap())[..]);
    assert!(timeline[3]["created_by"].as_str().unwrap().contains("writable layer"));
    assert_eq!(timeline[3]["files"]["deleted"], 1, "{timeline:#?}");
    let notes = extract_to(&mut d.strata(), &target, 3, "/root/notes.txt", &out.join("notes"));
    assert_eq!(notes, "stolen = CANARY_000000000004\n");
    let kept = extract_to(&mut d.strata(), &target, 1, "/app/kept", &out.join("kept"));
    assert_eq!(kept, "keep = CANARY_000000000003\n");
    drop(container);
    let (code, json, _) = scan(&mut d.strata(), &[&target]);
    assert_eq!(code, 2);
    assert!(messages(&json, "error").iter().any(|e| e.contains("not found")), "{json:#}");
}

/// `strata layers --format json`: the layers of the one image.
pub(crate) fn layers_json(cmd: &mut Command, target: &str) -> Vec<Value> {
    let o = cmd.args(["layers", "--format", "json", target]).output().unwrap();
    let (code, out, err) = parts(&o);
    assert_eq!(code, 0, "layers {target}: {err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["images"].as_array().unwrap().len(), 1, "{json:#}");
    json["images"][0]["layers"].as_array().unwrap().clone()
}

/// `strata extract … -o out`: the recovered file's text.
pub(crate) fn extract_to(
    cmd: &mut Command,
    target: &str,
    layer: u32,
    path: &str,
    out: &Path,
) -> String {
    let o = cmd
        .args(["extract", target, "--layer", &layer.to_string(), path, "-o"])
        .arg(out)
        .output()
        .unwrap();
    let (code, _, err) = parts(&o);
    assert_eq!(code, 0, "extract {path} from {target}: {err}");
    std::fs::read_to_string(out).unwrap()
}

pub(crate) fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Podman with a private vfs storage root.
pub(crate) struct Podman {
    pub(crate) root: PathBuf,
    pub(crate) runroot: PathBuf,
}

impl Podman {
    pub(crate) fn cmd(&self, tool: &str) -> Command {
        let mut c = Command::new(need(tool));
        c.arg("--storage-driver").arg("vfs").arg("--root").arg(&self.root);
        c.arg("--runroot").arg(&self.runroot).stdin(Stdio::null());
        c
    }
}

#[test]
fn containers_storage_and_podman_api() {
    let work = tmp();
    let p = Podman { root: work.path().join("storage"), runroot: work.path().join("run") };
    let rootfs = busybox_rootfs(work.path());
    check(
        p.cmd("podman").arg("import").arg(&rootfs).arg("localhost/base:1").output().unwrap(),
        "podman import",
    );
    let ctx = context_dir(work.path(), "localhost/base:1");
    // buildah builds, podman reads the same storage.
    check(
        p.cmd("buildah")
            .args(["bud", "--layers", "--network", "none", "-q", "-t", "localhost/app:1"])
            .arg(&ctx)
            .output()
            .unwrap(),
        "buildah bud",
    );
    let archive = work.path().join("app.tar");
    check(
        p.cmd("podman")
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

    let root = p.root.to_str().unwrap();
    for name in ["app:1", "localhost/app:1"] {
        let target = format!("containers-storage:{name}");
        let (code, json, err) = scan(&mut strata(), &["--storage-root", root, &target]);
        assert_eq!(code, 1, "{target}: {err}");
        assert_eq!(comparable(&json), comparable(&saved), "{target}");
        assert!(messages(&json, "warning").is_empty(), "{json:#}");
    }
    let (code, json, _) = scan(&mut strata(), &["--storage-root", root, "containers-storage:nope"]);
    assert_eq!(code, 2);
    assert!(messages(&json, "error").iter().any(|e| e.contains("no image named nope")), "{json:#}");
    let empty = work.path().join("empty");
    let (code, json, _) = scan(
        &mut strata(),
        &["--storage-root", empty.to_str().unwrap(), "containers-storage:app:1"],
    );
    assert_eq!(code, 2);
    assert!(messages(&json, "error").iter().any(|e| e.contains("no containers storage at")));

    // Podman's Docker-compatible API serves docker-daemon: the same way.
    let sock = work.path().join("podman.sock");
    let child = p
        .cmd("podman")
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", sock.display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.path().join("service.log")).unwrap())
        .spawn()
        .unwrap();
    let mut service = Daemon { child, name: "podman system service" };
    wait_for_socket(&mut service, &sock, &work.path().join("service.log"));
    let (code, json, err) = scan(
        strata().env("DOCKER_HOST", format!("unix://{}", sock.display())),
        &["docker-daemon:localhost/app:1"],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(comparable(&json), comparable(&saved));
    let podman_host = format!("unix://{}", sock.display());
    assert_eq!(
        layers_json(strata().env("DOCKER_HOST", &podman_host), "docker-daemon:localhost/app:1"),
        layers_json(&mut strata(), archive.to_str().unwrap())
    );
    let env = extract_to(
        strata().env("DOCKER_HOST", &podman_host),
        "docker-daemon:localhost/app:1",
        1,
        "/app/.env",
        &work.path().join("env"),
    );
    assert_eq!(env, "token = CANARY_000000000001\n");
    drop(service);

    // DOCKER_HOST=tcp:// on loopback: the same API over TCP, no --insecure needed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = p
        .cmd("podman")
        .args(["system", "service", "--time=0"])
        .arg(format!("tcp://127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.path().join("tcp.log")).unwrap())
        .spawn()
        .unwrap();
    let mut tcp = Daemon { child, name: "podman system service (tcp)" };
    wait_for_tcp(&mut tcp, port, &work.path().join("tcp.log"));
    let (code, json, err) = scan(
        strata().env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}")),
        &["docker-daemon:localhost/app:1"],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(comparable(&json), comparable(&saved));
    drop(tcp);

    // A layer whose files changed since it was stored cannot pass for the original.
    let layers: Value =
        serde_json::from_slice(&std::fs::read(p.root.join("vfs-layers/layers.json")).unwrap())
            .unwrap();
    let images: Value =
        serde_json::from_slice(&std::fs::read(p.root.join("vfs-images/images.json")).unwrap())
            .unwrap();
    let app = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["names"].as_array().is_some_and(|n| n.contains(&"localhost/app:1".into())))
        .unwrap();
    let top = app["layer"].as_str().unwrap();
    let parent = layers
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == top)
        .and_then(|l| l["parent"].as_str())
        .unwrap()
        .to_owned();
    let kept = p.root.join("vfs/dir").join(&parent).join("app/kept");
    let mut f = std::fs::OpenOptions::new().write(true).open(&kept).unwrap();
    f.write_all(b"KEEP").unwrap();
    drop(f);
    let (code, json, _) =
        scan(&mut strata(), &["--storage-root", root, "containers-storage:localhost/app:1"]);
    assert_eq!(code, 2);
    let errs = messages(&json, "error");
    assert!(errs.iter().any(|e| e.contains("files changed since it was stored")), "{errs:?}");
}

#[test]
fn kubernetes_inventory_from_the_registry() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let reg = crate::registry::Registry::start(Some(("puller", "FAKE-pull-password")));
    reg.push("leaky-app-oci", "k8s/app:1", false, Some("puller:FAKE-pull-password"));
    let host = reg.host();
    let o = Command::new(need("skopeo"))
        .args(["inspect", "--tls-verify=false", "--creds", "puller:FAKE-pull-password"])
        .args(["--format", "{{.Digest}}"])
        .arg(format!("docker://{host}/k8s/app:1"))
        .output()
        .unwrap();
    let digest = check(o, "skopeo inspect");
    let pinned = format!("{host}/k8s/app@{digest}");
    let tagged = format!("{host}/k8s/app:1");
    let container = |name: &str, image: &str| serde_json::json!({"name": name, "image": image});
    let pods = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"metadata": {"namespace": "prod", "name": "web-1"},
         "spec": {"containers": [container("web", &tagged)]},
         "status": {"containerStatuses": [
            {"name": "web", "image": tagged, "imageID": format!("docker-pullable://{pinned}")}]}},
        {"metadata": {"namespace": "prod", "name": "web-2"},
         "spec": {"containers": [container("web", &tagged)]},
         "status": {"containerStatuses": [{"name": "web", "image": tagged, "imageID": pinned}]}},
        // Pending: no status yet, so the spec's reference (a tag here) is scanned.
        {"metadata": {"namespace": "batch", "name": "job-1"},
         "spec": {"containers": [container("main", &pinned)],
                  "initContainers": [container("init", &tagged)]}},
    ]});
    let work = tmp();
    let pods_file = work.path().join("pods.json");
    std::fs::write(&pods_file, serde_json::to_vec(&pods).unwrap()).unwrap();
    let docker_config = work.path().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let pods_arg = pods_file.to_str().unwrap();

    // Without the pull secret the registry refuses, and the scan says so.
    let (code, json, _) =
        scan(&mut crate::registry::strata_clean(&docker_config), &["--k8s-pods", pods_arg]);
    assert_eq!(code, 2);
    assert!(messages(&json, "error").iter().any(|e| e.contains("401")), "{json:#}");

    let dockerconfig = serde_json::json!({"auths": {
        "registry.example.com": {"auth": b64("other:FAKE-other")},
        host.clone(): {"auth": b64("puller:FAKE-pull-password")},
    }});
    let secrets = serde_json::json!({"kind": "List", "items": [
        {"metadata": {"namespace": "prod", "name": "tls"}, "type": "kubernetes.io/tls",
         "data": {"tls.key": b64("not a pull secret")}},
        {"metadata": {"namespace": "prod", "name": "regcred"},
         "type": "kubernetes.io/dockerconfigjson",
         "data": {".dockerconfigjson": b64(&dockerconfig.to_string())}},
    ]});
    let secrets_file = work.path().join("secrets.json");
    std::fs::write(&secrets_file, serde_json::to_vec(&secrets).unwrap()).unwrap();
    let (code, json, err) = scan(
        &mut crate::registry::strata_clean(&docker_config),
        &["--k8s-pods", pods_arg, "--k8s-pull-secrets", secrets_file.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(json["images"].as_array().unwrap().len(), 1, "one image, scanned once: {json:#}");
    assert_eq!(crate::registry::keys(&json), crate::registry::archive_keys("leaky-app-oci"));
    let want = serde_json::json!([
        {"namespace": "batch", "pod": "job-1", "container": "init"},
        {"namespace": "batch", "pod": "job-1", "container": "main"},
        {"namespace": "prod", "pod": "web-1", "container": "web"},
        {"namespace": "prod", "pod": "web-2", "container": "web"},
    ]);
    for f in json["findings"].as_array().unwrap() {
        assert_eq!(f["workloads"], want, "{f:#}");
    }
    assert!(!json.to_string().contains("FAKE-pull-password"));
    let o = crate::registry::strata_clean(&docker_config)
        .args(["scan", "-q", "--k8s-pods", pods_arg, "--k8s-pull-secrets"])
        .arg(&secrets_file)
        .output()
        .unwrap();
    let (code, out, err) = parts(&o);
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("run by: batch/job-1/init, batch/job-1/main, prod/web-1/web, prod/web-2/web"),
        "{out}"
    );

    // Every other format names the workloads too.
    let names = ["batch/job-1/init", "batch/job-1/main", "prod/web-1/web", "prod/web-2/web"];
    let render = |format: &str| {
        let file = work.path().join(format!("report.{format}"));
        let o = crate::registry::strata_clean(&docker_config)
            .args(["scan", "-q", "--format", format, "-o"])
            .arg(&file)
            .args(["--k8s-pods", pods_arg, "--k8s-pull-secrets"])
            .arg(&secrets_file)
            .output()
            .unwrap();
        let (code, _, err) = parts(&o);
        assert_eq!(code, 1, "{format}: {err}");
        file
    };
    let sarif_file = render("sarif");
    assert_eq!(crate::reports::sarif_problems(&sarif_file), Vec::<String>::new());
    let sarif: Value = serde_json::from_slice(&std::fs::read(&sarif_file).unwrap()).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), json["findings"].as_array().unwrap().len());
    for r in results {
        assert_eq!(r["properties"]["workloads"], want, "{r:#}");
        let text = r["message"]["text"].as_str().unwrap();
        assert!(text.ends_with(&format!("; run by {}", names.join(", "))), "{text}");
    }
    let gitlab: Value = serde_json::from_slice(&std::fs::read(render("gitlab")).unwrap()).unwrap();
    assert_eq!(crate::incident_reports::gitlab_violations(&gitlab), Vec::<String>::new());
    let vulns = gitlab["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulns.len(), results.len());
    for v in vulns {
        assert_eq!(v["details"]["workloads"]["value"], names.join(", "), "{v:#}");
    }
    let junit = std::fs::read_to_string(render("junit")).unwrap();
    assert_eq!(junit.matches(&format!("run by: {}", names.join(", "))).count(), results.len());
    // The HTML detail panel lists them, one per line, in a real browser.
    let html = render("html");
    let dom = crate::incident_reports::dom(&html, "#finding=0");
    let panel = &dom[dom.find("id=\"workloads\"").expect("a run-by row in the detail panel")..];
    let panel = &panel[..panel.find("</dd>").unwrap()];
    let shown: Vec<&str> =
        panel.split("<div>").skip(1).map(|d| &d[..d.find("</div>").unwrap()]).collect();
    assert_eq!(shown, names);
}
