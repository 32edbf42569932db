//! `strata extract`: recover a file as stored in layer N, deleted or not,
//! writing nothing but the requested output.

use crate::util::*;

fn image(dir: &std::path::Path) -> std::path::PathBuf {
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY . /app",
                vec![
                    Entry::dir("app"),
                    Entry::file("app/.env", "TOKEN=one\n"),
                    Entry::Hardlink { path: "app/link".into(), target: "app/.env".into() },
                ],
            ),
            Layer::new(
                "RUN rm /app/.env",
                vec![Entry::whiteout("app/.env"), Entry::file("app/.env2", "")],
            ),
        ],
        ..ImageSpec::default()
    };
    let path = dir.join("x.tar");
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    path
}

#[test]
fn recovers_deleted_file_to_stdout_and_file() {
    let dir = tmp();
    let path = image(dir.path());
    let t = path.to_str().unwrap();
    let o = run(&["extract", t, "--layer", "0", "/app/.env"]);
    assert_eq!(parts(&o).0, 0);
    assert_eq!(o.stdout, b"TOKEN=one\n");
    let o = run(&["extract", t, "--layer", "0", "app/link"]);
    assert_eq!(o.stdout, b"TOKEN=one\n", "a hardlink yields its target's bytes");
    let dest = dir.path().join("recovered");
    let o = run(&["extract", t, "--layer", "0", "/app/.env", "-o", dest.to_str().unwrap()]);
    assert_eq!(parts(&o).0, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), b"TOKEN=one\n");
    let empty = dir.path().join("empty");
    let o = run(&["extract", t, "--layer", "1", "/app/.env2", "-o", empty.to_str().unwrap()]);
    assert_eq!(parts(&o).0, 0);
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
}

#[test]
fn clear_errors_and_nothing_written() {
    let dir = tmp();
    let path = image(dir.path());
    let t = path.to_str().unwrap();
    let out = dir.path().join("out");
    let o_arg = out.to_str().unwrap();
    for (args, words) in [
        (vec!["--layer", "1", "/app/.env"], "/app/.env is not in this layer"),
        (vec!["--layer", "7", "/app/.env"], "the image has 2 layers"),
        (vec!["--layer", "0", "/app"], "is a directory"),
        (vec!["--layer", "0", "../../etc/passwd"], "escapes"),
    ] {
        let mut full = vec!["extract", t];
        full.extend(args);
        full.extend(["-o", o_arg]);
        let (code, _, err) = parts(&run(&full));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(words), "{err}");
        assert!(!out.exists());
    }
    let before: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before.len(), 1, "only the image: {before:?}");
}

/// A GitHub token with a valid checksum (FAKE, unique per tag).
fn ghp(tag: &str) -> String {
    ig::checksummed_token("ghp_", &format!("FAKE{tag}Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Ab")[..30])
}

/// A responder recovers the member a finding names, not only the archive around it: a jar
/// written by `zip` and a `.tar.gz` by GNU tar, the jar deleted by a later layer. Every finding
/// with an `inner_path` is extracted with `--inner` and holds its secret.
#[test]
fn members_of_archives_are_recovered_as_findings_name_them() {
    let dir = tmp();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("BOOT-INF/classes")).unwrap();
    std::fs::create_dir_all(tree.join("app")).unwrap();
    let props = format!("spring.application.name=demo\ngithub.token={}\n", ghp("X01"));
    std::fs::write(tree.join("BOOT-INF/classes/application.properties"), &props).unwrap();
    let env = format!("GITHUB_TOKEN={}\n", ghp("X02"));
    std::fs::write(tree.join("app/.env"), &env).unwrap();
    if !ran("zip", &["-q", "-r", "app.jar", "BOOT-INF"], &tree, &[])
        || !ran("tar", &["-czf", "app.tar.gz", "app"], &tree, &[])
    {
        eprintln!("skipping: zip and GNU tar are needed (tests/run.sh installs zip)");
        return;
    }
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY app.jar app.tar.gz /srv/",
                vec![
                    Entry::dir("srv"),
                    Entry::file("srv/app.jar", std::fs::read(tree.join("app.jar")).unwrap()),
                    Entry::file("srv/app.tar.gz", std::fs::read(tree.join("app.tar.gz")).unwrap()),
                ],
            ),
            Layer::new("RUN rm /srv/app.jar", vec![Entry::whiteout("srv/app.jar")]),
        ],
        ..ImageSpec::default()
    };
    let image = dir.path().join("image.tar");
    ig::write_image(&spec, Format::OciArchive, &image).unwrap();
    let (code, json, err) = scan_json(&image, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    let nested: Vec<&serde_json::Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["inner_path"].is_string())
        .collect();
    let inner: Vec<&str> = nested.iter().map(|f| f["inner_path"].as_str().unwrap()).collect();
    assert_eq!(inner.len(), 2, "{inner:?}");
    assert!(inner.contains(&"BOOT-INF/classes/application.properties"), "{inner:?}");
    // A .tar.gz is one archive level.
    assert!(inner.contains(&"app/.env"), "{inner:?}");
    assert!(nested.iter().any(|f| f["status"] == "deleted"), "the jar's member: deleted");
    let t = image.to_str().unwrap();
    for f in nested {
        let (layer, path) = (f["layer_index"].to_string(), f["path"].as_str().unwrap());
        let member = f["inner_path"].as_str().unwrap();
        let o = run(&["extract", t, "--layer", &layer, path, "--inner", member]);
        let (code, out, err) = parts(&o);
        assert_eq!(code, 0, "{path} {member}: {err}");
        assert!(out.contains(f["secret"].as_str().unwrap()), "{member}: {out}");
        assert!(out == props || out == env, "{member}: the whole member, nothing else: {out}");
    }
    // The HTML report's "Recover the file" command, run as a responder pastes it.
    let html = dir.path().join("report.html");
    let (code, _, err) =
        parts(&run(&["scan", t, "--format", "html", "-o", html.to_str().unwrap()]));
    assert_eq!(code, 1, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    let start = page.find("id=\"strata-data\">").unwrap() + "id=\"strata-data\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
    let bin = strata().get_program().to_owned();
    let mut recovered = Vec::new();
    for f in data["findings"].as_array().unwrap() {
        let cmd = f["extract_command"].as_str().unwrap();
        if !cmd.contains("--inner") {
            continue;
        }
        let o = std::process::Command::new("sh")
            .args(["-c", &format!("strata() {{ \"$STRATA\" \"$@\"; }}; {cmd}")])
            .env("STRATA", &bin)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
        let name = cmd.rsplit(' ').next().unwrap();
        recovered.push(std::fs::read_to_string(dir.path().join(name)).unwrap());
    }
    recovered.sort();
    let mut want = vec![props.clone(), env.clone()];
    want.sort();
    assert_eq!(recovered, want, "each member's command writes that member");

    // A member that is not there: a clear error naming it, nothing written.
    let dest = dir.path().join("out");
    let o = run(&[
        "extract",
        t,
        "--layer",
        "0",
        "/srv/app.jar",
        "--inner",
        "BOOT-INF/classes/missing.properties",
        "-o",
        dest.to_str().unwrap(),
    ]);
    let (code, _, err) = parts(&o);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no member \"BOOT-INF/classes/missing.properties\""), "{err}");
    assert!(!dest.exists());
}
