//! Registry sources against a real registry (Debian's `docker-registry`,
//! images pushed with skopeo) and a tiny fake one for what a real registry
//! will not do on demand: die mid-blob, fail with 5xx, demand a bearer
//! token, paginate, serve a schema-1 manifest or the wrong bytes.
//!
//! Scanning by reference must give exactly the findings of scanning the
//! same image as an archive.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn real(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/real").join(name)
}

/// Fails (never skips) when a tool the registry tests need is missing.
fn need(tool: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    assert!(
        found,
        "{tool} is not installed: run tests/run.sh, which installs Debian's docker-registry, \
         skopeo and apache2-utils (for htpasswd)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `docker-registry serve` process on 127.0.0.1, killed on drop.
pub(crate) struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry; with `user`, behind htpasswd basic auth.
    pub(crate) fn start(user: Option<(&str, &str)>) -> Registry {
        Registry::start_with(user, "")
    }

    /// [`Registry::start`] with extra lines for the config's `http:` section (TLS).
    fn start_with(user: Option<(&str, &str)>, http_extra: &str) -> Registry {
        need("docker-registry");
        let mut dir = tmp();
        let auth = match user {
            Some((u, p)) => {
                need("htpasswd");
                let out = Command::new("htpasswd").args(["-Bbn", u, p]).output().unwrap();
                assert!(out.status.success(), "htpasswd failed");
                std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )
            }
            None => String::new(),
        };
        let mut log_text = String::new();
        // The port is free when picked but may be taken before the registry binds it.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n{http_extra}{auth}",
                dir.path().join("data").display()
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry starts");
            let mut reg = Registry { child, port, dir };
            if reg.wait_ready() {
                return reg;
            }
            let _ = reg.child.kill();
            let _ = reg.child.wait();
            log_text =
                std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default();
            dir = std::mem::replace(&mut reg.dir, tmp());
        }
        panic!("docker-registry did not come up:\n{log_text}");
    }

    /// Waits until `/v2/` answers, or the process exits.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!(
                    "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                    self.port
                );
                let mut head = [0u8; 12];
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_exact(&mut head).is_ok()
                    // A TLS listener answers plain HTTP with a 400: up all the same.
                    && head.starts_with(b"HTTP/1.")
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `skopeo copy` from an OCI layout in the corpus.
    pub(crate) fn push(&self, layout: &str, repo_tag: &str, all: bool, creds: Option<&str>) {
        need("skopeo");
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if all {
            c.arg("--all");
        }
        if let Some(cr) = creds {
            c.args(["--dest-creds", cr]);
        }
        let src = format!("oci:{}:latest", real(layout).display());
        let dest = format!("docker://{}/{repo_tag}", self.host());
        let out = c.arg(&src).arg(&dest).output().unwrap();
        assert!(
            out.status.success(),
            "skopeo copy {src} {dest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// strata with no credentials from the environment or the user's docker config.
pub(crate) fn strata_clean(docker_config: &Path) -> Command {
    let mut c = strata();
    c.env("DOCKER_CONFIG", docker_config)
        .env_remove("STRATA_REGISTRY_USERNAME")
        .env_remove("STRATA_REGISTRY_PASSWORD");
    c
}

/// Runs a JSON scan; returns (code, report, stderr).
fn scan_with(mut cmd: Command, args: &[&str]) -> (i32, Value, String) {
    let o = cmd.args(["scan", "--format", "json", "-q"]).args(args).output().unwrap();
    let (code, out, err) = parts(&o);
    let json =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}\n{err}"));
    (code, json, err)
}

/// What must match between a registry scan and an archive scan.
pub(crate) fn keys(json: &Value) -> BTreeSet<String> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let k: Vec<&Value> = [
                "rule_id",
                "path",
                "line",
                "status",
                "removed_in_layer",
                "layer_index",
                "fingerprint",
                "platform",
                "location",
            ]
            .iter()
            .map(|k| &f[*k])
            .collect();
            serde_json::to_string(&k).unwrap()
        })
        .collect()
}

pub(crate) fn archive_keys(archive: &str) -> BTreeSet<String> {
    let (code, json, err) = scan_with(strata(), &[real(archive).to_str().unwrap()]);
    assert_eq!(code, 1, "{archive}: {err}");
    let k = keys(&json);
    assert!(k.len() >= 3, "{archive}: the corpus image has findings");
    k
}

fn targets(json: &Value) -> Vec<String> {
    json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["target"].as_str().unwrap().to_owned())
        .collect()
}

fn errors(json: &Value) -> Vec<String> {
    json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["level"] == "error")
        .map(|d| d["message"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn reference_scan_matches_archive() {
    let reg = Registry::start(None);
    reg.push("leaky-app-oci", "fixtures/leaky-app:1", false, None);
    reg.push("multiarch-oci", "fixtures/multiarch:1", true, None);
    let cfg = tmp();
    let leaky = archive_keys("leaky-app.oci.tar");
    for target in [
        format!("{}/fixtures/leaky-app:1", reg.host()),
        format!("docker://{}/fixtures/leaky-app:1", reg.host()),
    ] {
        let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&target]);
        assert_eq!(code, 1, "{target}: {err}");
        assert_eq!(keys(&json), leaky, "{target}");
        assert_eq!(targets(&json), std::slice::from_ref(&target));
        let refs = &json["images"][0]["references"];
        assert_eq!(refs[0], format!("{}/fixtures/leaky-app:1", reg.host()), "{target}");
        assert!(errors(&json).is_empty(), "{target}: {:?}", errors(&json));
    }
    // By digest, as pulled by digest.
    let (_, by_tag, _) =
        scan_with(strata_clean(cfg.path()), &[&format!("{}/fixtures/leaky-app:1", reg.host())]);
    let digest = by_tag["images"][0]["digest"].as_str().unwrap().to_owned();
    let by_digest = format!("{}/fixtures/leaky-app@{digest}", reg.host());
    let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&by_digest]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(keys(&json), leaky);

    let multi = archive_keys("multiarch.oci.tar");
    let target = format!("{}/fixtures/multiarch:1", reg.host());
    let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&target]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(keys(&json), multi);
    let found: BTreeSet<String> = platforms(&json).into_iter().collect();
    assert_eq!(found, BTreeSet::from(["linux/amd64".to_owned(), "linux/arm64/v8".to_owned()]));
    let (code, json, err) =
        scan_with(strata_clean(cfg.path()), &["--platform", "linux/arm64", &target]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(json["images"].as_array().unwrap().len(), 1);
    assert_eq!(json["images"][0]["platform"], "linux/arm64/v8");

    // `layers` reads a reference too.
    let o = strata_clean(cfg.path())
        .args(["layers", &format!("{}/fixtures/leaky-app:1", reg.host())])
        .output()
        .unwrap();
    let (code, out, err) = parts(&o);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("COPY .env config.yaml /app/"), "{out}");
}

#[test]
fn missing_tag_and_repository() {
    let reg = Registry::start(None);
    reg.push("leaky-app-oci", "fixtures/leaky-app:1", false, None);
    let cfg = tmp();
    for target in [
        format!("{}/fixtures/leaky-app:nope", reg.host()),
        format!("{}/fixtures/absent:1", reg.host()),
    ] {
        let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&target]);
        assert_eq!(code, 2, "{target}: {err}");
        assert!(json["findings"].as_array().unwrap().is_empty());
        let msg = errors(&json).join("\n");
        assert!(msg.contains(&target), "names the reference: {msg}");
        assert!(msg.contains("404") && msg.to_lowercase().contains("not found"), "{msg}");
    }
    // Nothing listens: an error after bounded retries, not a hang.
    let dead = format!("127.0.0.1:{}/fixtures/leaky-app:1", free_port());
    let started = Instant::now();
    let (code, json, _) = scan_with(strata_clean(cfg.path()), &[&dead]);
    assert_eq!(code, 2);
    assert!(errors(&json).join("\n").contains(&dead));
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn sweeps_all_tags_catalog_and_shards() {
    let reg = Registry::start(None);
    reg.push("leaky-app-oci", "fixtures/leaky-app:1", false, None);
    reg.push("leaky-app-oci", "fixtures/leaky-app:2", false, None);
    reg.push("whiteouts-oci", "fixtures/whiteouts:latest", false, None);
    reg.push("multiarch-oci", "other/multiarch:v1", true, None);
    let cfg = tmp();
    let h = reg.host();

    let (code, json, err) =
        scan_with(strata_clean(cfg.path()), &["--all-tags", &format!("{h}/fixtures/leaky-app")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        targets(&json),
        [format!("{h}/fixtures/leaky-app:1"), format!("{h}/fixtures/leaky-app:2")]
    );
    let one = archive_keys("leaky-app.oci.tar");
    assert_eq!(json["findings"].as_array().unwrap().len(), 2 * one.len());
    assert_eq!(keys(&json), one, "each tag gives the archive's findings");

    let (code, all, err) = scan_with(strata_clean(cfg.path()), &["--catalog", &h]);
    assert_eq!(code, 1, "{err}");
    let expected = [
        format!("{h}/fixtures/leaky-app:1"),
        format!("{h}/fixtures/leaky-app:2"),
        format!("{h}/fixtures/whiteouts:latest"),
        format!("{h}/other/multiarch:v1"),
        format!("{h}/other/multiarch:v1"),
    ];
    assert_eq!(targets(&all), expected);
    assert!(errors(&all).is_empty(), "{:?}", errors(&all));

    // Shards: each image in exactly one; merged, they are the whole sweep.
    let dir = tmp();
    for n in [2u32, 3] {
        let mut files = Vec::new();
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        for k in 1..=n {
            let out = dir.path().join(format!("shard-{k}-of-{n}.json"));
            let o = strata_clean(cfg.path())
                .args([
                    "scan",
                    "-q",
                    "--format",
                    "json",
                    "--catalog",
                    &h,
                    "--shard",
                    &format!("{k}/{n}"),
                    "-o",
                ])
                .arg(&out)
                .output()
                .unwrap();
            let (code, _, err) = parts(&o);
            assert!(code == 0 || code == 1, "shard {k}/{n}: {err}");
            let json: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
            for t in targets(&json).into_iter().collect::<BTreeSet<_>>() {
                *seen.entry(t).or_default() += 1;
            }
            files.push(out);
        }
        assert!(seen.values().all(|&c| c == 1), "N={n}: {seen:?}");
        assert_eq!(seen.len(), 4, "N={n}: {seen:?}");
        let o = strata().arg("merge").args(&files).output().unwrap();
        let (code, out, err) = parts(&o);
        assert_eq!(code, 1, "merge: {err}");
        let merged: Value = serde_json::from_str(&out).unwrap();
        let mut got = targets(&merged);
        got.sort();
        assert_eq!(got, expected, "N={n}");
        let with_target = |j: &Value| -> BTreeSet<String> {
            j["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| format!("{} {}", f["target"], f["fingerprint"]))
                .collect()
        };
        assert_eq!(with_target(&merged), with_target(&all), "N={n}");
        assert_eq!(merged["summary"]["total"], all["summary"]["total"], "N={n}");
        assert_eq!(merged["summary"]["by_severity"], all["summary"]["by_severity"], "N={n}");
    }
}

#[test]
fn basic_auth_credentials() {
    let reg = Registry::start(Some(("alice", "s3cret")));
    reg.push("leaky-app-oci", "fixtures/leaky-app:1", false, Some("alice:s3cret"));
    let target = format!("{}/fixtures/leaky-app:1", reg.host());
    let leaky = archive_keys("leaky-app.oci.tar");
    let empty = tmp();

    let (code, json, err) = scan_with(strata_clean(empty.path()), &[&target]);
    assert_eq!(code, 2, "{err}");
    let msg = errors(&json).join("\n");
    assert!(msg.contains(&target) && msg.contains("401"), "{msg}");
    assert!(msg.contains("STRATA_REGISTRY_USERNAME"), "says how to give credentials: {msg}");

    let mut wrong = strata_clean(empty.path());
    wrong.env("STRATA_REGISTRY_USERNAME", "alice").env("STRATA_REGISTRY_PASSWORD", "wrong");
    let (code, json, err) = scan_with(wrong, &[&target]);
    assert_eq!(code, 2, "{err}");
    let msg = errors(&json).join("\n");
    assert!(msg.contains(&target), "{msg}");
    assert!(msg.contains("401") && msg.to_lowercase().contains("unauthorized"), "{msg}");
    assert!(!msg.contains("wrong") && !err.contains("wrong"), "the password is never printed");

    let mut right = strata_clean(empty.path());
    right.env("STRATA_REGISTRY_USERNAME", "alice").env("STRATA_REGISTRY_PASSWORD", "s3cret");
    let (code, json, err) = scan_with(right, &[&target]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(keys(&json), leaky);

    // ~/.docker/config.json `auths`, and the environment winning over it.
    let cfg = tmp();
    let auth = |u: &str, p: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    };
    let config = serde_json::json!({"auths": {reg.host(): {"auth": auth("alice", "s3cret")}}});
    std::fs::write(cfg.path().join("config.json"), config.to_string()).unwrap();
    let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&target]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(keys(&json), leaky);
    let bad = tmp();
    let config = serde_json::json!({"auths": {format!("http://{}", reg.host()): {"auth": auth("alice", "nope")}}});
    std::fs::write(bad.path().join("config.json"), config.to_string()).unwrap();
    let (code, _, _) = scan_with(strata_clean(bad.path()), &[&target]);
    assert_eq!(code, 2, "wrong password from the docker config");
    let mut env_wins = strata_clean(bad.path());
    env_wins.env("STRATA_REGISTRY_USERNAME", "alice").env("STRATA_REGISTRY_PASSWORD", "s3cret");
    let (code, _, err) = scan_with(env_wins, &[&target]);
    assert_eq!(code, 1, "{err}");

    // A credential helper (credsStore), run with the registry on stdin.
    let helper_dir = tmp();
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread server\nif [ \"$server\" = \"{}\" ]; then\n  \
         printf '%s' '{{\"ServerURL\":\"'\"$server\"'\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}}'\nelse\n  \
         echo 'credentials not found in native keychain'; exit 1\nfi\n",
        reg.host()
    );
    let helper = helper_dir.path().join("docker-credential-strata-test");
    std::fs::write(&helper, script).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let store = tmp();
    std::fs::write(store.path().join("config.json"), r#"{"credsStore":"strata-test"}"#).unwrap();
    let path =
        format!("{}:{}", helper_dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let mut with_helper = strata_clean(store.path());
    with_helper.env("PATH", &path);
    let (code, json, err) = scan_with(with_helper, &[&target]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(keys(&json), leaky);
    let helpers = tmp();
    let config = serde_json::json!({"credHelpers": {reg.host(): "strata-test"}});
    std::fs::write(helpers.path().join("config.json"), config.to_string()).unwrap();
    let mut with_helper = strata_clean(helpers.path());
    with_helper.env("PATH", &path);
    let (code, _, err) = scan_with(with_helper, &[&target]);
    assert_eq!(code, 1, "{err}");
}

// ---------------------------------------------------------------------------
// A fake registry for failures a real one will not produce on demand.

/// A request as the fake registry saw it.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What to answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then close (Content-Length stays full).
    cut_at: Option<usize>,
}

impl Reply {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply { status, headers: Vec::new(), body: body.into(), cut_at: None }
    }

    fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 that answers each connection once.
struct FakeRegistry {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    log: Arc<Mutex<Vec<Request>>>,
}

impl FakeRegistry {
    fn start(handler: Arc<Handler>) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stop2, log2) = (Arc::clone(&stop), Arc::clone(&log));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, l) = (Arc::clone(&handler), Arc::clone(&log2));
                std::thread::spawn(move || serve(conn, &*h, &l));
            }
        });
        FakeRegistry { port, stop, thread: Some(thread), log }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn requests(&self, path_prefix: &str) -> Vec<Request> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn);
    // strata first tries https on loopback: a TLS hello is not HTTP, hang up.
    match reader.fill_buf() {
        Ok(b) if b.first().is_some_and(u8::is_ascii_uppercase) => {}
        _ => return,
    }
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let req = Request { path, headers };
    log.lock().unwrap().push(req.clone());
    let reply = handler(&req);
    let mut conn = reader.into_inner();
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let body = &reply.body[..reply.cut_at.unwrap_or(reply.body.len()).min(reply.body.len())];
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
    let _ = conn.flush();
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

/// The leaky-app image of the corpus: manifest digest, and every blob.
struct Fixture {
    manifest: String,
    blobs: BTreeMap<String, Vec<u8>>,
    layers: Vec<String>,
}

fn fixture() -> Fixture {
    let root = real("leaky-app-oci");
    let index: Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let mut blobs = BTreeMap::new();
    for e in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        blobs.insert(
            format!("sha256:{}", e.file_name().to_str().unwrap()),
            std::fs::read(e.path()).unwrap(),
        );
    }
    let m: Value = serde_json::from_slice(&blobs[&manifest]).unwrap();
    let layers = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    Fixture { manifest, blobs, layers }
}

const REPO: &str = "/v2/fixtures/leaky-app";

/// Serves the fixture like a registry would: `/v2/`, manifests by tag `1`
/// or digest, blobs by digest.
fn registry_reply(fx: &Fixture, req: &Request) -> Reply {
    let path = req.path.split('?').next().unwrap_or("");
    if path == "/v2/" {
        return Reply::new(200, "{}").header("Content-Type", "application/json");
    }
    if let Some(r) = path.strip_prefix(&format!("{REPO}/manifests/"))
        && (r == "1" || r == fx.manifest)
    {
        return Reply::new(200, fx.blobs[&fx.manifest].clone())
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .header("Docker-Content-Digest", &fx.manifest);
    }
    if let Some(d) = path.strip_prefix(&format!("{REPO}/blobs/"))
        && let Some(b) = fx.blobs.get(d)
    {
        return Reply::new(200, b.clone()).header("Content-Type", "application/octet-stream");
    }
    Reply::new(404, r#"{"errors":[{"code":"NOT_FOUND","message":"not here"}]}"#)
}

fn fake_target(fake: &FakeRegistry) -> String {
    format!("{}/fixtures/leaky-app:1", fake.host())
}

fn layout_keys() -> BTreeSet<String> {
    archive_keys("leaky-app-oci")
}

#[test]
fn dies_mid_layer_is_an_error() {
    let fx = Arc::new(fixture());
    let secret_layer = fx.layers[1].clone();
    let fx2 = Arc::clone(&fx);
    let fake = FakeRegistry::start(Arc::new(move |req: &Request| {
        let mut reply = registry_reply(&fx2, req);
        if req.path.ends_with(&secret_layer) {
            reply.cut_at = Some(reply.body.len() / 2);
        }
        reply
    }));
    let cfg = tmp();
    let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&fake_target(&fake)]);
    assert_eq!(code, 2, "{err}");
    let msg = errors(&json).join("\n");
    assert!(msg.contains("layer 1") && msg.contains(&fx.layers[1]), "{msg}");
    assert!(
        !(code == 0 && json["findings"].as_array().unwrap().is_empty()),
        "never a clean report"
    );
    // Streaming had started: the blob is not fetched again.
    assert_eq!(fake.requests(&format!("{REPO}/blobs/{}", fx.layers[1])).len(), 1);
}

#[test]
fn wrong_blob_bytes_are_an_error() {
    let fx = Arc::new(fixture());
    let fx2 = Arc::clone(&fx);
    let fake = FakeRegistry::start(Arc::new(move |req: &Request| {
        // Layer 4's valid bytes served under layer 3's digest.
        if req.path.ends_with(&fx2.layers[3]) {
            return Reply::new(200, fx2.blobs[&fx2.layers[4]].clone());
        }
        registry_reply(&fx2, req)
    }));
    let cfg = tmp();
    let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&fake_target(&fake)]);
    assert_eq!(code, 2, "{err}");
    let msg = errors(&json).join("\n");
    assert!(msg.contains("digest mismatch") && msg.contains(&fx.layers[3]), "{msg}");
}

#[test]
fn retries_server_errors_then_gives_up() {
    let fx = Arc::new(fixture());
    let fx2 = Arc::clone(&fx);
    let failures = Arc::new(Mutex::new(1u32));
    let f2 = Arc::clone(&failures);
    let fake = FakeRegistry::start(Arc::new(move |req: &Request| {
        if req.path.contains("/manifests/") {
            let mut left = f2.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Reply::new(503, "busy").header("Retry-After", "0");
            }
        }
        registry_reply(&fx2, req)
    }));
    let cfg = tmp();
    let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&fake_target(&fake)]);
    assert_eq!(code, 1, "one 503 is retried: {err}");
    assert_eq!(keys(&json), layout_keys());
    assert_eq!(fake.requests(&format!("{REPO}/manifests/")).len(), 2);

    *failures.lock().unwrap() = 100;
    let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&fake_target(&fake)]);
    assert_eq!(code, 2, "{err}");
    assert!(errors(&json).join("\n").contains("503"), "{:?}", errors(&json));
    // Three attempts for this run (two from the first run).
    assert_eq!(fake.requests(&format!("{REPO}/manifests/")).len(), 2 + 3);
}

#[test]
fn bearer_token_flow() {
    let fx = Arc::new(fixture());
    let fx2 = Arc::clone(&fx);
    let port = Arc::new(Mutex::new(0u16));
    let p2 = Arc::clone(&port);
    let fake = FakeRegistry::start(Arc::new(move |req: &Request| {
        let realm = format!("http://127.0.0.1:{}/token", p2.lock().unwrap());
        if req.path.starts_with("/token") {
            // alice:pw
            if req.header("Authorization") != Some("Basic YWxpY2U6cHc=") {
                return Reply::new(401, "{}");
            }
            let query = percent_decode(req.path.split_once('?').map_or("", |(_, q)| q));
            if !query.contains("scope=repository:fixtures/leaky-app:pull")
                || !query.contains("service=fake")
            {
                return Reply::new(400, "{}");
            }
            return Reply::new(200, r#"{"token":"T0K3N","expires_in":300}"#);
        }
        if req.header("Authorization") != Some("Bearer T0K3N") {
            let scope = if req.path == "/v2/" {
                String::new()
            } else {
                ",scope=\"repository:fixtures/leaky-app:pull\"".into()
            };
            return Reply::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
            .header(
                "WWW-Authenticate",
                &format!("Bearer realm=\"{realm}\",service=\"fake\"{scope}"),
            );
        }
        registry_reply(&fx2, req)
    }));
    *port.lock().unwrap() = fake.port;
    let cfg = tmp();
    let mut c = strata_clean(cfg.path());
    c.env("STRATA_REGISTRY_USERNAME", "alice").env("STRATA_REGISTRY_PASSWORD", "pw");
    let (code, json, err) = scan_with(c, &[&fake_target(&fake)]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(keys(&json), layout_keys());
    // One token serves the whole run.
    assert_eq!(fake.requests("/token").len(), 1);

    let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&fake_target(&fake)]);
    assert_eq!(code, 2, "{err}");
    let msg = errors(&json).join("\n");
    assert!(msg.contains("401") && msg.contains(&fake_target(&fake)), "{msg}");
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn unsupported_manifest_type() {
    let fake = FakeRegistry::start(Arc::new(|req: &Request| match req.path.as_str() {
        "/v2/" => Reply::new(200, "{}"),
        _ => Reply::new(
            200,
            r#"{"schemaVersion":1,"name":"fixtures/leaky-app","tag":"1","fsLayers":[]}"#,
        )
        .header("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws"),
    }));
    let cfg = tmp();
    let (code, json, err) = scan_with(strata_clean(cfg.path()), &[&fake_target(&fake)]);
    assert_eq!(code, 2, "{err}");
    let msg = errors(&json).join("\n");
    assert!(msg.contains(&fake_target(&fake)) && msg.contains("manifest.v1+prettyjws"), "{msg}");
    assert!(msg.contains("unsupported manifest media type"), "{msg}");
}

/// (image index, file findings) for each image of a report.
fn findings_per_image(json: &Value) -> Vec<(usize, usize)> {
    let images = json["images"].as_array().unwrap();
    images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let n = json["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["target"] == img["target"] && f["layer_index"].is_u64())
                .count();
            (i, n)
        })
        .collect()
}

#[test]
fn paginated_tag_list() {
    let fx = Arc::new(fixture());
    let fx2 = Arc::clone(&fx);
    let fake = FakeRegistry::start(Arc::new(move |req: &Request| {
        let p = req.path.as_str();
        if p.starts_with(&format!("{REPO}/tags/list")) {
            return if p.contains("last=a") {
                Reply::new(200, r#"{"name":"fixtures/leaky-app","tags":["b"]}"#)
            } else {
                Reply::new(200, r#"{"name":"fixtures/leaky-app","tags":["a"]}"#)
                    .header("Link", &format!("<{REPO}/tags/list?last=a&n=1>; rel=\"next\""))
            };
        }
        if p == "/v2/_catalog?n=1000" {
            return Reply::new(200, r#"{"repositories":["fixtures/leaky-app"]}"#)
                .header("Link", "</v2/_catalog?last=fixtures%2Fleaky-app&n=1000>; rel=\"next\"");
        }
        if p.starts_with("/v2/_catalog?last=") {
            return Reply::new(200, r#"{"repositories":[]}"#);
        }
        let tagless =
            p.replace("/manifests/a", "/manifests/1").replace("/manifests/b", "/manifests/1");
        registry_reply(&fx2, &Request { path: tagless, headers: req.headers.clone() })
    }));
    let cfg = tmp();
    let h = fake.host();
    let (code, json, err) =
        scan_with(strata_clean(cfg.path()), &["--all-tags", &format!("{h}/fixtures/leaky-app")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        targets(&json),
        [format!("{h}/fixtures/leaky-app:a"), format!("{h}/fixtures/leaky-app:b")]
    );
    // Both tags share every layer: a sweep reads each distinct layer once.
    for layer in &fx.layers {
        assert_eq!(fake.requests(&format!("{REPO}/blobs/{layer}")).len(), 1, "{layer}");
    }
    assert_eq!(findings_per_image(&json), [(0, 7), (1, 7)], "same findings under both tags");
    let (code, json, err) = scan_with(strata_clean(cfg.path()), &["--catalog", &h]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(targets(&json).len(), 2);
    assert_eq!(fake.requests("/v2/_catalog").len(), 2);
}

#[test]
fn merge_rejects_non_reports() {
    let dir = tmp();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"hello": 1}"#).unwrap();
    let (code, _, err) = parts(&run(&["merge", bad.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(err.contains("bad.json") && err.contains("not a strata JSON report"), "{err}");
}

/// Makes a CA and a server certificate for 127.0.0.1 with openssl (also used by the
/// verification tests' HTTPS double).
pub(crate) fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    need("openssl");
    let run = |args: &[&str]| {
        let o = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let subj_ca = "/CN=strata test CA";
    run(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", subj_ca,
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("srv.pem"), dir.join("srv.key"))
}

#[test]
fn https_registry_signed_by_a_private_ca() {
    let certs = tmp();
    let (ca, cert, key) = private_ca(certs.path());
    let tls = format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display());
    let reg = Registry::start_with(None, &tls);
    reg.push("leaky-app-oci", "fixtures/leaky-app:1", false, None);
    let target = format!("{}/fixtures/leaky-app:1", reg.host());
    let cfg = tmp();
    // Not trusted: an error, never a clean report.
    let mut untrusted = strata_clean(cfg.path());
    untrusted.env_remove("STRATA_REGISTRY_CA_FILE").env("SSL_CERT_FILE", &cert);
    let (code, _, err) = scan_with(untrusted, &[&target]);
    assert_eq!(code, 2, "{err}");
    // Trusted through the CA bundle: the archive's findings, over HTTPS.
    let mut trusted = strata_clean(cfg.path());
    trusted.env("STRATA_REGISTRY_CA_FILE", &ca);
    let (code, json, err) = scan_with(trusted, &[&target]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(keys(&json), layout_keys());
}
