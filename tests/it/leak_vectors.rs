//! Leak vectors as real builders leave them (docs/leak-vectors.md): one
//! Dockerfile that adds fake tokens and then deletes, overwrites, touches,
//! moves and re-creates them, bakes others into build args, ENV, LABEL,
//! ONBUILD, HEALTHCHECK, ENTRYPOINT and CMD, and keeps one in a builder
//! stage that the final image must not ship; plus a `docker commit` whose
//! message and author carry tokens. Built by the Docker legacy builder (one
//! private dockerd for the file) and by buildah in Docker format; every
//! finding must name the layer, instruction and status the build gives it,
//! whichever tool built it, and no output may print a whole token.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::engines::{Dockerd, Podman, check, messages};
use crate::util::*;

/// A classic GitHub token with a valid checksum (FAKE, unique per tag).
fn ghp(tag: &str) -> String {
    ig::checksummed_token("ghp_", &format!("FAKE{tag}Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Ab")[..30])
}

fn npm(tag: &str) -> String {
    ig::checksummed_token("npm_", &format!("FAKE{tag}Yq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Ab")[..30])
}

/// The tool on PATH, or None (the test then says why it skips).
fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// A busybox root filesystem with every applet linked (`touch`, `chmod`,
/// `mv`… are steps of the build), as a tar to import as the base image.
pub(crate) fn rootfs(dir: &Path) -> Option<std::path::PathBuf> {
    let busybox = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("busybox")).find(|p| p.is_file()))?;
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy(&busybox, root.join("bin/busybox")).unwrap();
    let list = check(Command::new(&busybox).arg("--list").output().unwrap(), "busybox --list");
    for applet in list.lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    check(
        Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").output().unwrap(),
        "tar of the rootfs",
    );
    Some(tar)
}

/// The build context: files with tokens, and the Dockerfile.
fn context(dir: &Path, from: &str) -> std::path::PathBuf {
    let ctx = dir.join("ctx");
    let put = |name: &str, text: String| {
        let p = ctx.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put("builder.env", format!("GITHUB_TOKEN={}\n", ghp("M01")));
    put("shipped.env", format!("GITHUB_TOKEN={}\n", ghp("M02")));
    put("deleted.env", format!("GITHUB_TOKEN={}\n", ghp("L01")));
    put("over.conf", format!("token = {}\n", ghp("L02")));
    put("over2.conf", "token = none\n".into());
    put("touchme.env", format!("GITHUB_TOKEN={}\n", ghp("L04")));
    put("chmodme.env", format!("GITHUB_TOKEN={}\n", ghp("L05")));
    put("mvme.env", format!("GITHUB_TOKEN={}\n", ghp("L06")));
    put("dir/sub/a.env", format!("GITHUB_TOKEN={}\n", ghp("L07")));
    put("opq/b.env", format!("GITHUB_TOKEN={}\n", ghp("L08")));
    // A contextual password cannot say FAKE (that marks a placeholder): it is made up.
    put(
        "m2/settings.xml",
        "<settings>\n  <servers>\n    <server>\n      <id>releases</id>\n      \
         <username>deploy</username>\n      <password>Vq7Rm2-MvnPa55-Zq8x</password>\n    \
         </server>\n  </servers>\n</settings>\n"
            .into(),
    );
    let dockerfile = format!(
        r#"FROM {from} AS build
COPY builder.env shipped.env /src/
RUN echo "GITHUB_TOKEN={m03}" > /src/run.env
FROM {from}
ARG NPM_TOKEN
COPY deleted.env /app/deleted.env
COPY over.conf /app/over.conf
RUN echo "GITHUB_TOKEN={l03}" > /app/run.env && rm /app/run.env
COPY touchme.env chmodme.env mvme.env /app/
COPY dir/ /app/secretdir/
COPY opq/ /app/opq/
COPY m2/ /root/.m2/
COPY --from=build /src/shipped.env /app/shipped.env
RUN rm /app/deleted.env
COPY over2.conf /app/over.conf
RUN touch /app/touchme.env && chmod 600 /app/chmodme.env && mv /app/mvme.env /app/moved.env
RUN rm -rf /app/secretdir
RUN rm -rf /app/opq && mkdir /app/opq && echo hi > /app/opq/new
ENV GITHUB_TOKEN={l11}
LABEL deploy.token="{l12}"
ONBUILD RUN echo {l13} > /tmp/t
HEALTHCHECK CMD wget -q --header "Authorization: token {l14}" http://localhost/ || exit 1
ENTRYPOINT ["/bin/sh", "-c", "GITHUB_TOKEN={l15} exec sleep 1"]
CMD ["--token", "{l16}"]
"#,
        m03 = ghp("M03"),
        l03 = ghp("L03"),
        l11 = ghp("L11"),
        l12 = ghp("L12"),
        l13 = ghp("L13"),
        l14 = ghp("L14"),
        l15 = ghp("L15"),
        l16 = ghp("L16"),
    );
    put("Dockerfile", dockerfile);
    ctx
}

/// Every token the build handles, for the leak check.
fn all_tokens() -> Vec<String> {
    let mut t: Vec<String> = [
        "M01", "M02", "M03", "L01", "L02", "L03", "L04", "L05", "L06", "L07", "L08", "L11", "L12",
        "L13", "L14", "L15", "L16", "K01", "K02",
    ]
    .iter()
    .map(|tag| ghp(tag))
    .collect();
    t.push(npm("L10"));
    t
}

/// (report with secrets shown, human output without) of one archive.
fn scan_both(archive: &Path) -> (Value, String) {
    let a = archive.to_str().unwrap();
    let o = run(&["scan", "-q", "--format", "json", "--show-secrets", a]);
    let (code, out, err) = parts(&o);
    assert_eq!(code, 1, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let mut plain = String::new();
    for format in ["human", "json", "sarif"] {
        let (_, out, err) = parts(&run(&["scan", "--color", "never", "--format", format, a]));
        plain.push_str(&out);
        plain.push_str(&err);
    }
    (json, plain)
}

fn with_secret<'a>(json: &'a Value, secret: &str) -> Vec<&'a Value> {
    json["findings"].as_array().unwrap().iter().filter(|f| f["secret"] == secret).collect()
}

/// The `created_by` of layer `index`.
fn layer_instruction(json: &Value, index: &Value) -> String {
    let i = index.as_u64().unwrap_or_else(|| panic!("no layer index: {index}")) as usize;
    json["images"][0]["layers"][i]["created_by"].as_str().unwrap_or_default().to_owned()
}

/// A file finding a build must leave: `tag`'s token at `path`, with its
/// status, and words of the instructions that added and removed it (`removed`
/// empty: not removed).
struct FileFinding {
    tag: &'static str,
    path: &'static str,
    status: &'static str,
    added: &'static str,
    removed: &'static str,
}

/// The one file finding of `want.tag`'s token at `want.path`, as `want` says.
fn assert_file(json: &Value, what: &str, want: &FileFinding) {
    let FileFinding { tag, path, status, added, removed } = *want;
    let token = ghp(tag);
    let hits: Vec<&Value> =
        with_secret(json, &token).into_iter().filter(|f| f["path"] == path).collect();
    assert_eq!(hits.len(), 1, "{what}: {tag} at {path}: {hits:#?}");
    let f = hits[0];
    assert_eq!(f["status"], status, "{what}: {tag} {f:#}");
    assert_eq!(f["severity"], "critical", "{what}: {tag} {f:#}");
    let by = f["created_by"].as_str().unwrap_or_default();
    assert!(by.contains(added), "{what}: {tag} added by {by:?}, not {added:?}");
    assert_eq!(layer_instruction(json, &f["layer_index"]), by, "{what}: {tag}");
    if removed.is_empty() {
        assert!(f["removed_in_layer"].is_null(), "{what}: {tag} {f:#}");
    } else {
        let by = layer_instruction(json, &f["removed_in_layer"]);
        assert!(by.contains(removed), "{what}: {tag} removed by {by:?}, not {removed:?}");
    }
}

fn config_locations(json: &Value, secret: &str) -> Vec<String> {
    let mut at: Vec<String> = with_secret(json, secret)
        .iter()
        .map(|f| {
            assert_eq!(f["status"], "config", "{f:#}");
            assert!(f["path"].is_null(), "{f:#}");
            let loc = f["location"].as_str().unwrap();
            // History locations are checked by their field, not the index a builder gives.
            match loc.split_once("].") {
                Some((_, field)) if loc.starts_with("history[") => format!("history.{field}"),
                _ => loc.to_owned(),
            }
        })
        .collect();
    at.sort();
    at.dedup();
    at
}

/// What any builder must leave in the image built from [`context`].
fn assert_build(json: &Value, plain: &str, what: &str) {
    let files = [
        FileFinding {
            tag: "L01",
            path: "/app/deleted.env",
            status: "deleted",
            added: "/app/deleted.env",
            removed: "rm /app/deleted.env",
        },
        FileFinding {
            tag: "L02",
            path: "/app/over.conf",
            status: "overwritten",
            added: "/app/over.conf",
            removed: "/app/over.conf",
        },
        FileFinding {
            tag: "L06",
            path: "/app/mvme.env",
            status: "deleted",
            added: "COPY",
            removed: "mv /app/mvme.env",
        },
        FileFinding {
            tag: "L06",
            path: "/app/moved.env",
            status: "present",
            added: "mv /app/mvme.env",
            removed: "",
        },
        FileFinding {
            tag: "L07",
            path: "/app/secretdir/sub/a.env",
            status: "deleted",
            added: "/app/secretdir",
            removed: "rm -rf /app/secretdir",
        },
        // Removed and recreated in one step: an opaque directory (or whiteouts) hides it.
        FileFinding {
            tag: "L08",
            path: "/app/opq/b.env",
            status: "deleted",
            added: "/app/opq",
            removed: "rm -rf /app/opq",
        },
        FileFinding {
            tag: "M02",
            path: "/app/shipped.env",
            status: "present",
            added: "/app/shipped.env",
            removed: "",
        },
    ];
    for want in &files {
        assert_file(json, what, want);
    }
    // `touch` and `chmod` copy the file up: the same bytes ship again in the later layer,
    // and both copies stay visible.
    for (tag, path) in [("L04", "/app/touchme.env"), ("L05", "/app/chmodme.env")] {
        let hits: Vec<&Value> =
            with_secret(json, &ghp(tag)).into_iter().filter(|f| f["path"] == path).collect();
        assert_eq!(hits.len(), 2, "{what}: {tag}: {hits:#?}");
        assert!(hits.iter().all(|f| f["status"] == "present"), "{what}: {tag}: {hits:#?}");
        assert!(
            hits.iter()
                .any(|f| f["created_by"].as_str().unwrap().contains("touch /app/touchme.env")),
            "{what}: {tag}: {hits:#?}"
        );
    }
    // The builder stage never ships; a token written and deleted in one RUN is only in
    // that RUN's instruction.
    for tag in ["M01", "M03"] {
        assert!(with_secret(json, &ghp(tag)).is_empty(), "{what}: {tag} is not in the image");
    }
    assert_eq!(config_locations(json, &ghp("L03")), ["history.created_by"], "{what}");
    // Build args are in every RUN's instruction after the ARG.
    assert_eq!(config_locations(json, &npm("L10")), ["history.created_by"], "{what}");
    for (tag, field) in [
        ("L11", "config.env"),
        ("L12", "config.labels"),
        ("L13", "config.onbuild"),
        ("L14", "config.healthcheck"),
        ("L15", "config.entrypoint"),
        ("L16", "config.cmd"),
    ] {
        let at = config_locations(json, &ghp(tag));
        assert_eq!(at, [field, "history.created_by"], "{what}: {tag}");
    }
    // ~/.m2/settings.xml is the user's own (only ~/.m2/repository is third-party).
    let m2: Vec<&Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] == "/root/.m2/settings.xml")
        .collect();
    assert!(!m2.is_empty(), "{what}: no finding in settings.xml");
    for f in m2 {
        assert!(f["context"].is_null(), "{what}: {f:#}");
        assert_ne!(f["severity"], "info", "{what}: {f:#}");
    }
    for token in all_tokens() {
        assert!(!plain.contains(&token), "{what}: output prints {token}");
    }
}

#[test]
fn docker_and_buildah_builds_attribute_every_vector() {
    if !on_path("dockerd") || !on_path("docker") || !on_path("busybox") {
        eprintln!("skipping: dockerd, docker and busybox are needed (tests/run.sh installs them)");
        return;
    }
    let work = tmp();
    let Some(base) = rootfs(work.path()) else {
        eprintln!("skipping: no busybox for the base image");
        return;
    };
    let ctx = context(work.path(), "base:1");
    let d = Dockerd::start();
    check(d.docker().arg("import").arg(&base).arg("base:1").output().unwrap(), "docker import");
    let build = d
        .docker()
        .args(["build", "--network", "none", "-q", "-t", "app:1", "--build-arg"])
        .arg(format!("NPM_TOKEN={}", npm("L10")))
        .arg(&ctx)
        .output()
        .unwrap();
    check(build, "docker build");
    let archive = work.path().join("app.tar");
    check(d.docker().args(["save", "-o"]).arg(&archive).arg("app:1").output().unwrap(), "save");
    let (json, plain) = scan_both(&archive);
    assert_build(&json, &plain, "docker build");

    // `docker commit -m … --author …`: the message and the author ship in the config.
    let id = check(
        d.docker().args(["create", "--network", "none", "base:1", "true"]).output().unwrap(),
        "docker create",
    );
    let commit = d
        .docker()
        .args(["commit", "-m", &format!("rotated {}", ghp("K01"))])
        .args(["--author", &format!("ci {}", ghp("K02")), &id, "committed:1"])
        .output()
        .unwrap();
    check(commit, "docker commit");
    let _ = d.docker().args(["rm", "-f", &id]).output();
    let committed = work.path().join("committed.tar");
    check(
        d.docker().args(["save", "-o"]).arg(&committed).arg("committed:1").output().unwrap(),
        "save",
    );
    let (json, plain) = scan_both(&committed);
    assert_eq!(config_locations(&json, &ghp("K01")), ["history.comment"]);
    assert_eq!(config_locations(&json, &ghp("K02")), ["config.author", "history.author"]);
    for token in [ghp("K01"), ghp("K02")] {
        assert!(!plain.contains(&token), "output prints {token}");
    }
    drop(d);

    if !on_path("buildah") || !on_path("podman") {
        eprintln!("skipping the buildah half: buildah and podman are needed");
        return;
    }
    let p = Podman { root: work.path().join("storage"), runroot: work.path().join("run") };
    check(
        p.cmd("podman").arg("import").arg(&base).arg("localhost/base:1").output().unwrap(),
        "podman import",
    );
    std::fs::write(
        ctx.join("Dockerfile"),
        std::fs::read_to_string(ctx.join("Dockerfile"))
            .unwrap()
            .replace("base:1", "localhost/base:1"),
    )
    .unwrap();
    // Docker format: the OCI config has no ONBUILD or HEALTHCHECK.
    let bud = p
        .cmd("buildah")
        .args(["bud", "--format", "docker", "--layers", "--network", "none", "-q"])
        .args(["-t", "localhost/app:1", "--build-arg"])
        .arg(format!("NPM_TOKEN={}", npm("L10")))
        .arg(&ctx)
        .output()
        .unwrap();
    check(bud, "buildah bud");
    let archive = work.path().join("app-buildah.tar");
    check(
        p.cmd("podman")
            .args(["save", "-q", "--format", "docker-archive", "-o"])
            .arg(&archive)
            .arg("localhost/app:1")
            .output()
            .unwrap(),
        "podman save",
    );
    let (json, plain) = scan_both(&archive);
    assert_build(&json, &plain, "buildah bud");
}

/// Runs the sqlite3 shell on `db` with `sql`.
fn sqlite3(db: &Path, sql: &str) {
    check(Command::new("sqlite3").arg(db).arg(sql).output().unwrap(), "sqlite3");
}

#[test]
fn sqlite_rows_are_read_value_by_value() {
    if !on_path("sqlite3") {
        eprintln!("skipping: the sqlite3 shell is needed (apt-get install sqlite3)");
        return;
    }
    let work = tmp();
    let [kv, note, big, wide] = ["Q01", "Q02", "Q03", "Q05"].map(ghp);
    // A key-value table stores `github_token` and the token back to back: no word boundary
    // between them in the file. An indexed column is stored twice (table and index), a long
    // value spills into overflow pages, a UTF-16 database stores text as UTF-16, and 20,000
    // tiny rows (dense pages) stay within the parser's work budget.
    let db = work.path().join("app.db");
    sqlite3(
        &db,
        &format!(
            "create table settings(k text primary key, v text) without rowid;
             insert into settings values('github_token', '{kv}');
             create table users(id integer primary key, name text, note text);
             create index users_note on users(note);
             insert into users(name, note) values('bob', '{note}');
             insert into users(name, note) values('big', printf('%.*c', 9000, 'a') || ' {big}');
             create table hits(n integer, c text);
             with recursive i(n) as (select 1 union all select n + 1 from i where n < 20000)
               insert into hits select n, 'x' from i;"
        ),
    );
    let wide_db = work.path().join("wide.db");
    sqlite3(
        &wide_db,
        &format!(
            "PRAGMA encoding='UTF-16le'; create table t(k text, v text); insert into t values('tok', '{wide}');"
        ),
    );
    let files = vec![
        Entry::file("data/app.db", std::fs::read(&db).unwrap()),
        Entry::file("data/wide.db", std::fs::read(&wide_db).unwrap()),
    ];
    let path = out_path(work.path(), Format::OciArchive, "sqlite");
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /", files)], ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    for (token, file, table) in [
        (&kv, "/data/app.db", "table settings"),
        (&note, "/data/app.db", "table users"),
        (&big, "/data/app.db", "table users"),
        (&wide, "/data/wide.db", "table t"),
    ] {
        let hits = with_secret(&json, token);
        assert_eq!(hits.len(), 1, "{token}, once (not again from the index): {hits:#?}");
        assert_eq!(hits[0]["path"], file, "{hits:#?}");
        assert_eq!(hits[0]["inner_path"], table, "{hits:#?}");
        assert_eq!(hits[0]["severity"], "critical", "{hits:#?}");
    }
    assert!(messages(&json, "error").is_empty(), "{json:#}");
}

#[test]
fn python_bytecode_constants_are_read_as_strings() {
    if !on_path("python3") {
        eprintln!("skipping: python3 is needed to compile the module");
        return;
    }
    let work = tmp();
    // marshal writes the constant and then `N` (None) right after it: no word boundary.
    let token = ghp("P01");
    let src = work.path().join("settings.py");
    std::fs::write(&src, format!("GITHUB_TOKEN = \"{token}\"\n")).unwrap();
    let pyc = work.path().join("settings.pyc");
    let compile = Command::new("python3")
        .args(["-c", "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)"])
        .arg(&src)
        .arg(&pyc)
        .output()
        .unwrap();
    check(compile, "py_compile");
    let files =
        vec![Entry::file("app/__pycache__/settings.cpython-3.pyc", std::fs::read(&pyc).unwrap())];
    let path = out_path(work.path(), Format::OciArchive, "pyc");
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /", files)], ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    let hits = with_secret(&json, &token);
    assert_eq!(hits.len(), 1, "{json:#}");
    assert_eq!(hits[0]["path"], "/app/__pycache__/settings.cpython-3.pyc");
    assert_eq!(hits[0]["severity"], "critical");
    assert!(messages(&json, "error").is_empty(), "{json:#}");
}

/// Every finding of `token`, as (path with the token as `TOKEN`, location, status, the
/// instruction that removed it with the token as `TOKEN`); each is critical, has no line, and
/// names its layer's instruction. The `RUN` lines that made the files hold the tokens too:
/// config findings are left out.
fn name_findings(json: &Value, token: &str) -> Vec<[String; 4]> {
    let mut out: Vec<[String; 4]> = with_secret(json, token)
        .iter()
        .filter(|f| f["status"] != "config")
        .map(|f| {
            assert_eq!(f["severity"], "critical", "{f:#}");
            assert!(f["line"].is_null(), "{f:#}");
            assert_eq!(f["created_by"], layer_instruction(json, &f["layer_index"]), "{f:#}");
            let removed = match f["removed_in_layer"].is_null() {
                true => String::new(),
                false => layer_instruction(json, &f["removed_in_layer"]),
            };
            [
                f["path"].as_str().unwrap().replace(token, "TOKEN"),
                f["location"].as_str().unwrap_or("content").to_owned(),
                f["status"].as_str().unwrap().to_owned(),
                removed.replace(token, "TOKEN"),
            ]
        })
        .collect();
    out.sort();
    out
}

#[test]
fn names_and_link_targets_are_scanned_like_content() {
    if !on_path("dockerd") || !on_path("docker") || !on_path("busybox") {
        eprintln!("skipping: dockerd, docker and busybox are needed (tests/run.sh installs them)");
        return;
    }
    let work = tmp();
    let Some(base) = rootfs(work.path()) else {
        eprintln!("skipping: no busybox for the base image");
        return;
    };
    let [kept, gone, link, hard, long] = ["N01", "N02", "N03", "N04", "N05"].map(ghp);
    // Long enough that the tar writer needs PAX `path` and `linkpath` records.
    let deep = format!("/app/{}/{}", "d".repeat(120), "e".repeat(120));
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM base:1
RUN mkdir -p /app/tok {deep} && touch /app/{kept} /app/tok/{gone} {deep}/{long}
RUN ln -s /run/secrets/{}/{link} /app/token-link && touch /app/{hard} && ln /app/{hard} /app/hl
RUN rm /app/tok/{gone}
",
            "x".repeat(100)
        ),
    )
    .unwrap();
    let d = Dockerd::start();
    check(d.docker().arg("import").arg(&base).arg("base:1").output().unwrap(), "docker import");
    let build =
        d.docker().args(["build", "--network", "none", "-q", "-t", "names:1"]).arg(&ctx).output();
    check(build.unwrap(), "docker build");
    let archive = work.path().join("names.tar");
    check(d.docker().args(["save", "-o"]).arg(&archive).arg("names:1").output().unwrap(), "save");
    drop(d);
    let (json, plain) = scan_both(&archive);
    let row = |p: &str, loc: &str, status: &str, rm: &str| [p, loc, status, rm].map(str::to_owned);
    assert_eq!(name_findings(&json, &kept), [row("/app/TOKEN", "entry name", "present", "")]);
    // The deleted file's name is also in the whiteout that deletes it, which ships.
    assert_eq!(
        name_findings(&json, &gone),
        [
            row("/app/tok/.wh.TOKEN", "entry name", "present", ""),
            row("/app/tok/TOKEN", "entry name", "deleted", "/bin/sh -c rm /app/tok/TOKEN"),
        ]
    );
    assert_eq!(
        name_findings(&json, &link),
        [row("/app/token-link", "symlink target", "present", "")]
    );
    assert_eq!(
        name_findings(&json, &hard),
        [
            row("/app/TOKEN", "entry name", "present", ""),
            row("/app/hl", "hardlink target", "present", ""),
        ]
    );
    assert_eq!(
        name_findings(&json, &long),
        [row(&format!("{deep}/TOKEN"), "entry name", "present", "")]
    );
    for token in [&kept, &gone, &link, &hard, &long] {
        assert!(!plain.contains(token.as_str()), "output prints {token}");
    }
    assert!(messages(&json, "error").is_empty(), "{json:#}");
}

/// Sets the extended attribute `name` of `file` (std has no setxattr; python3 does).
fn setxattr(file: &Path, name: &str, value: &str) {
    let set = Command::new("python3")
        .args(["-c", "import os, sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())"])
        .arg(file)
        .args([name, value])
        .output()
        .unwrap();
    check(set, "os.setxattr");
}

/// Header text ships with the layer and is scanned: an extended attribute (PAX
/// `SCHILY.xattr.*`, which podman's `COPY` keeps and runtimes set on the file), a PAX record
/// of the entry's own and one of a global header (GNU tar's `--pax-option`). A finding there
/// has location `tar header record` and the entry's status.
#[test]
fn extended_attributes_and_pax_records_are_scanned() {
    let work = tmp();
    let [attr, global, own, copied] = ["X01", "X02", "X03", "X04"].map(ghp);
    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/data.txt"), "hello\n").unwrap();
    setxattr(&root.join("app/data.txt"), "user.deploy_token", &attr);
    let layer = work.path().join("layer.tar");
    let tar = Command::new("tar")
        .args(["--format=pax", "--xattrs", "--xattrs-include=user.*", "--sort=name"])
        .arg(format!("--pax-option=comment={global}"))
        .arg(format!("--pax-option=note:={own}"))
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&layer)
        .arg("app")
        .output()
        .unwrap();
    check(tar, "GNU tar");
    let archive = work.path().join("img.tar");
    crate::imagegen::wrap::oci_archive(
        &archive,
        crate::imagegen::Compression::Gzip,
        &[layer],
        "hdr:1",
    )
    .unwrap();
    let (json, plain) = scan_both(&archive);
    let row = |p: &str, status: &str| [p, "tar header record", status, ""].map(str::to_owned);
    assert_eq!(name_findings(&json, &attr), [row("/app/data.txt", "present")]);
    // The global header comes before the first entry, `app/`.
    assert_eq!(name_findings(&json, &global), [row("/app", "present")]);
    // GNU tar writes `note:=` into the global header too: `/app` may show it twice.
    let mut rows = name_findings(&json, &own);
    rows.dedup();
    assert_eq!(rows, [row("/app", "present"), row("/app/data.txt", "present")]);
    for token in [&attr, &global, &own] {
        assert!(!plain.contains(token.as_str()), "output prints {token}");
    }
    assert!(messages(&json, "error").is_empty(), "{json:#}");

    if !on_path("podman") || !on_path("busybox") {
        eprintln!("skipping the podman half: podman and busybox are needed");
        return;
    }
    let Some(base) = rootfs(work.path()) else { return };
    let p = Podman { root: work.path().join("storage"), runroot: work.path().join("run") };
    check(
        p.cmd("podman").arg("import").arg(&base).arg("localhost/base:1").output().unwrap(),
        "import",
    );
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("data.txt"), "hello\n").unwrap();
    setxattr(&ctx.join("data.txt"), "user.deploy_token", &copied);
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM localhost/base:1\nCOPY data.txt /app/data.txt\nRUN rm /app/data.txt\n",
    )
    .unwrap();
    let mut build = p.cmd("podman");
    build.args(["build", "-q", "--network", "none", "-t", "localhost/x:1"]).arg(&ctx);
    check(build.output().unwrap(), "podman build");
    let saved = work.path().join("x.oci.tar");
    let mut save = p.cmd("podman");
    save.args(["save", "-q", "--format", "oci-archive", "-o"]).arg(&saved).arg("localhost/x:1");
    check(save.output().unwrap(), "podman save");
    let (json, plain) = scan_both(&saved);
    let removed = "/bin/sh -c rm /app/data.txt";
    assert_eq!(
        name_findings(&json, &copied),
        [["/app/data.txt", "tar header record", "deleted", removed].map(str::to_owned)]
    );
    assert!(!plain.contains(copied.as_str()), "output prints {copied}");
}

#[test]
fn deleted_sqlite_rows_are_carved_value_by_value() {
    if !on_path("sqlite3") {
        eprintln!("skipping: the sqlite3 shell is needed (apt-get install sqlite3)");
        return;
    }
    let work = tmp();
    let [mid, last, paged, dropped, live] = ["D01", "D02", "D03", "D05", "D04"].map(ghp);
    // `admin` then the token: no word boundary between the columns in the file. Row 2 is
    // freed into a freeblock (its first bytes overwritten by the block's header), row 5 was
    // the last one written, at the start of the page's content (which grows over it), the
    // rows of `old`, which spans several pages, are all deleted, and the pages of the
    // dropped table `sessions` all go to the freelist.
    let db = work.path().join("app.db");
    sqlite3(
        &db,
        &format!(
            "PRAGMA secure_delete=OFF;
             create table users(id integer primary key, name text, token text);
             insert into users(name, token) values('admin', 'none'), ('admin', '{mid}'),
               ('admin', 'none'), ('admin', '{live}'), ('admin', '{last}');
             create table old(n integer, name text, token text);
             with recursive i(n) as (select 1 union all select n + 1 from i where n < 300)
               insert into old select n, 'admin', case when n = 150 then '{paged}' else 'none' end from i;
             create table sessions(n integer, name text, token text);
             with recursive i(n) as (select 1 union all select n + 1 from i where n < 300)
               insert into sessions select n, 'admin', case when n = 99 then '{dropped}' else 'none' end from i;
             delete from users where id in (2, 5);
             delete from old;
             drop table sessions;"
        ),
    );
    let raw = std::fs::read(&db).unwrap();
    for token in [&mid, &last, &paged, &dropped] {
        let glued = format!("admin{token}");
        assert!(raw.windows(glued.len()).any(|w| w == glued.as_bytes()), "{token} left in place");
    }
    let files = vec![Entry::file("data/app.db", raw)];
    let path = out_path(work.path(), Format::OciArchive, "sqlite-deleted");
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /", files)], ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    // The emptied table's first page keeps stale copies of its rows from before it split:
    // carved there or on a freed page, but reported once.
    for (token, members) in [
        (&mid, &["table users (deleted rows)"][..]),
        (&last, &["table users (deleted rows)"]),
        (&paged, &["table old (deleted rows)", "free pages (deleted rows)"]),
        (&dropped, &["free pages (deleted rows)"]),
        (&live, &["table users"]),
    ] {
        let hits = with_secret(&json, token);
        assert_eq!(hits.len(), 1, "{token}, once: {hits:#?}");
        assert_eq!(hits[0]["path"], "/data/app.db", "{hits:#?}");
        let member = hits[0]["inner_path"].as_str().unwrap_or_default();
        assert!(members.contains(&member), "{token} in {member:?}, not {members:?}");
        assert_eq!(hits[0]["severity"], "critical", "{hits:#?}");
    }
    assert!(messages(&json, "error").is_empty(), "{json:#}");
}

/// Runs `tool args… file` in `dir` (the compressors write `file.EXT` beside it; lz4 is
/// given the output name, as it writes to a stdout that is not a terminal otherwise).
fn compress(dir: &Path, tool: &str, args: &[&str], file: &str) {
    check(Command::new(tool).current_dir(dir).args(args).arg(file).output().unwrap(), tool);
}

#[test]
fn compressed_files_are_opened_or_counted_as_not_read() {
    let tools = ["xz", "bzip2", "zstd", "lz4", "tar", "lzip"];
    if let Some(t) = tools.iter().find(|t| !on_path(t)) {
        eprintln!(
            "skipping: {t} is needed (tests/run.sh installs lzip; the rest ship with Debian)"
        );
        return;
    }
    let work = tmp();
    let dir = work.path();
    let [xz, bz2, zst, lz4, txz, lz] = ["C01", "C02", "C03", "C04", "C05", "C06"].map(ghp);
    for (name, token) in
        [("a.log", &xz), ("b.log", &bz2), ("c.log", &zst), ("d.log", &lz4), ("f.log", &lz)]
    {
        std::fs::write(dir.join(name), format!("GITHUB_TOKEN={token}\n")).unwrap();
    }
    std::fs::create_dir_all(dir.join("t/conf")).unwrap();
    std::fs::write(dir.join("t/conf/app.env"), format!("GITHUB_TOKEN={txz}\n")).unwrap();
    compress(dir, "xz", &["-k"], "a.log");
    compress(dir, "bzip2", &["-k"], "b.log");
    compress(dir, "zstd", &["-q", "-k"], "c.log");
    compress(dir, "lz4", &["-q", "-k", "d.log"], "d.log.lz4");
    compress(dir, "lzip", &["-k"], "f.log");
    check(
        Command::new("tar")
            .current_dir(dir)
            .args(["-cJf", "t.tar.xz", "-C", "t", "conf"])
            .output()
            .unwrap(),
        "tar -J",
    );
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let files = vec![
        Entry::file("var/log/a.log.xz", read("a.log.xz")),
        Entry::file("var/log/b.log.bz2", read("b.log.bz2")),
        Entry::file("var/log/c.log.zst", read("c.log.zst")),
        Entry::file("var/log/d.log.lz4", read("d.log.lz4")),
        Entry::file("opt/t.tar.xz", read("t.tar.xz")),
        Entry::file("var/log/f.log.lz", read("f.log.lz")),
    ];
    let path = out_path(dir, Format::OciArchive, "compressed");
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /", files)], ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    for (token, file, member) in [
        (&xz, "/var/log/a.log.xz", "a.log"),
        (&bz2, "/var/log/b.log.bz2", "b.log"),
        (&zst, "/var/log/c.log.zst", "c.log"),
        (&lz4, "/var/log/d.log.lz4", "d.log"),
        (&txz, "/opt/t.tar.xz", "conf/app.env"),
        (&lz, "/var/log/f.log.lz", "f.log"),
    ] {
        let hits = with_secret(&json, token);
        assert_eq!(hits.len(), 1, "{token} in {file}: {json:#}");
        assert_eq!(hits[0]["path"], file, "{hits:#?}");
        assert_eq!(hits[0]["inner_path"], member, "{hits:#?}");
    }
    // lzip is decompressed too (it once was not: an error and exit 2).
    assert_eq!(code, 1, "{err}");
    assert!(messages(&json, "error").is_empty(), "{json:#}");
}
