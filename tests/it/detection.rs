//! Detection end to end with the built-in rules: nested archives and their
//! limits, archive bombs, the image config and build args, every
//! credential-file detector, validators, decoys that must stay silent,
//! de-duplication, multi-platform images and the signature checker. (Secrets across the windows a large file is
//! scanned in: `scan::stream::tests`, a unit property test.)
//!
//! Every secret here is fake. GitHub and npm tokens carry a valid CRC32
//! checksum (the validators reject them otherwise) and start with `FAKE`.

use std::io::{self, Cursor, Read, Write};

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::util::*;

// ---------------------------------------------------------------------------------------------
// Fake secrets
// ---------------------------------------------------------------------------------------------

/// 30 base62 characters: `FAKE`, the tag, then filler.
fn body30(tag: &str) -> String {
    const FILL: &str = "Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Bg0TyQa";
    assert!(tag.len() <= 26 && tag.bytes().all(|b| b.is_ascii_alphanumeric()), "{tag}");
    format!("FAKE{tag}{FILL}")[..30].to_owned()
}

/// A checksummed (format-valid) GitHub classic PAT.
fn ghp(tag: &str) -> String {
    ig::checksummed_token("ghp_", &body30(tag))
}

/// A checksummed GitHub OAuth token.
fn gho(tag: &str) -> String {
    ig::checksummed_token("gho_", &body30(tag))
}

/// A checksummed npm token.
fn npm(tag: &str) -> String {
    ig::checksummed_token("npm_", &body30(tag))
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `len` deterministic characters from `alphabet`.
fn random_str(seed: u64, len: usize, alphabet: &[u8]) -> String {
    let mut rng = ig::XorShift::new(seed);
    (0..len).map(|_| alphabet[(rng.next_u64() % alphabet.len() as u64) as usize] as char).collect()
}

/// `len` deterministic pseudo-random bytes.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = ig::XorShift::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// An AWS access key id whose embedded account id is `account` (the
/// encoding the `aws-access-key-id` validator decodes: base32 body, bits
/// 7..47 of its first 48 bits).
fn aws_key_id(account: u64, seed: u64) -> String {
    const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let top48 = (account << 7) | 0x2b;
    let bits50 = (top48 << 2) | 0b01;
    let mut id = String::from("AKIA");
    for i in (0..10).rev() {
        id.push(B32[((bits50 >> (5 * i)) & 31) as usize] as char);
    }
    id.push_str(&random_str(seed, 6, B32));
    id
}

/// A JWT with an HS256 header and a small payload; the signature is random.
fn jwt() -> String {
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64url(br#"{"sub":"strata-fake-user","iat":1700000000}"#);
    format!("{header}.{payload}.{}", b64url(&random_bytes(77, 32)))
}

// ---------------------------------------------------------------------------------------------
// Archives
// ---------------------------------------------------------------------------------------------

/// A zip; each member is deflated or stored.
fn zip_of(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, deflate) in members {
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn gzip_of(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Scanning and assertions
// ---------------------------------------------------------------------------------------------

/// Writes `spec` as an OCI archive and scans it with secrets shown.
fn scan_spec(spec: &ImageSpec) -> (i32, Value, String) {
    let dir = tmp();
    let path = out_path(dir.path(), Format::OciArchive, "img");
    ig::write_image(spec, Format::OciArchive, &path).unwrap();
    scan_json(&path, &["--show-secrets"])
}

fn all(json: &Value) -> &Vec<Value> {
    json["findings"].as_array().unwrap()
}

/// Findings in the file at image path `path`.
fn at_path<'a>(json: &'a Value, path: &str) -> Vec<&'a Value> {
    all(json).iter().filter(|f| f["path"] == path).collect()
}

/// The one finding of exactly this secret.
fn one<'a>(json: &'a Value, secret: &str) -> &'a Value {
    let found: Vec<&Value> = all(json).iter().filter(|f| f["secret"] == secret).collect();
    assert_eq!(found.len(), 1, "exactly one finding of {secret}: {found:#?}\nall: {json:#}");
    found[0]
}

/// Every field of `want` equals the finding's.
fn assert_fields(f: &Value, want: Value) {
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&f[k], v, "field {k} of {f:#}");
    }
}

/// A compact list of (rule, path, inner, line, secret) for failure messages.
fn summary(json: &Value) -> String {
    all(json)
        .iter()
        .map(|f| {
            format!(
                "{} {} {} line {} [{}]",
                f["rule_id"], f["path"], f["inner_path"], f["line"], f["secret"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// 1. Nested archives
// ---------------------------------------------------------------------------------------------

/// The fourth-level zip of `/app/deep4-stored.zip`: its member is stored,
/// so its bytes are visible to a plain scan of the unopened archive.
fn level4_stored() -> Vec<u8> {
    let d4 = format!("token {}\n", ghp("depth4stored"));
    zip_of(&[("secret.txt", d4.as_bytes(), false)])
}

fn nested_spec() -> ImageSpec {
    let props =
        format!("spring.application.name=billing\nserver.port=8080\ngithub.token={}\n", ghp("jar"));
    let inner_jar = zip_of(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n", true),
        ("BOOT-INF/classes/application.properties", props.as_bytes(), true),
    ]);
    // Spring Boot stores nested jars uncompressed.
    let app_jar = zip_of(&[
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nMain-Class: x.Launcher\r\n", true),
        ("BOOT-INF/lib/inner.jar", &inner_jar, false),
    ]);

    let env = format!("NODE_ENV=production\nGITHUB_TOKEN={}\n", ghp("targz"));
    let bundle =
        gzip_of(&tar_of(&[("app/index.js", b"console.log(1)\n"), ("app/.env", env.as_bytes())]));

    let settings = gzip_of(format!("# settings\n\nnpm_token = {}\n", npm("gz")).as_bytes());

    let py = format!("API_BASE = 'https://api.example.test'\nGITHUB_TOKEN = \"{}\"\n", ghp("whl"));
    let wheel = zip_of(&[
        ("acme_client/__init__.py", b"", true),
        ("acme_client/settings.py", py.as_bytes(), true),
        ("acme_client-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\nTag: py3-none-any\n", true),
    ]);

    let d3 = format!("token {}\n", ghp("depth3"));
    let deep3 = zip_of(&[(
        "l2.zip",
        &zip_of(&[("l3.zip", &zip_of(&[("secret.txt", d3.as_bytes(), true)]), true)]),
        true,
    )]);
    let d4 = format!("token {}\n", ghp("depth4"));
    let l4 = zip_of(&[("secret.txt", d4.as_bytes(), true)]);
    let deep4 = zip_of(&[(
        "l2.zip",
        &zip_of(&[("l3.zip", &zip_of(&[("l4.zip", &l4, true)]), true)]),
        true,
    )]);
    let deep4_stored = zip_of(&[(
        "l2.zip",
        &zip_of(&[("l3.zip", &zip_of(&[("l4.zip", &level4_stored(), true)]), true)]),
        true,
    )]);

    ImageSpec {
        layers: vec![
            Layer::new("ADD rootfs.tar /", vec![Entry::file("etc/hostname", "build\n")]),
            Layer::new(
                "COPY build/ /",
                vec![
                    Entry::file("app/app.jar", app_jar),
                    Entry::file("srv/bundle.tar.gz", bundle),
                    Entry::file("var/backups/settings.conf.gz", settings),
                    Entry::file("opt/wheels/acme_client-1.0-py3-none-any.whl", wheel),
                    Entry::file("app/deep3.zip", deep3),
                    Entry::file("app/deep4.zip", deep4),
                    Entry::file("app/deep4-stored.zip", deep4_stored),
                ],
            ),
            Layer::new("RUN rm /app/app.jar", vec![Entry::whiteout("app/app.jar")]),
        ],
        ..ImageSpec::default()
    }
}

#[test]
fn nested_archives_report_the_member_path() {
    let (code, json, err) = scan_spec(&nested_spec());
    // The archive nested past the depth limit was not read: incomplete, exit 2.
    assert_eq!(code, 2, "{err}");
    assert!(
        err.lines().any(|l| l.contains("error")
            && l.contains("/app/deep4.zip")
            && l.contains("depth limit (3 levels)")),
        "{err}"
    );
    let common = |f: &Value| {
        assert_fields(
            f,
            json!({"layer_index": 1, "created_by": "COPY build/ /", "location": null,
                   "detector": "pattern"}),
        )
    };

    let jar = one(&json, &ghp("jar"));
    common(jar);
    assert_fields(
        jar,
        json!({"rule_id": "github-pat-classic", "path": "/app/app.jar",
               "inner_path": "BOOT-INF/lib/inner.jar!BOOT-INF/classes/application.properties",
               "line": 3, "status": "deleted", "removed_in_layer": 2}),
    );

    let targz = one(&json, &ghp("targz"));
    common(targz);
    assert_fields(
        targz,
        json!({"rule_id": "github-pat-classic", "path": "/srv/bundle.tar.gz",
               "inner_path": "app/.env", "line": 2, "status": "present",
               "removed_in_layer": null}),
    );

    let gz = one(&json, &npm("gz"));
    common(gz);
    assert_fields(
        gz,
        json!({"rule_id": "npm-access-token", "path": "/var/backups/settings.conf.gz",
               "inner_path": "settings.conf", "line": 3, "status": "present"}),
    );

    let whl = one(&json, &ghp("whl"));
    common(whl);
    assert_fields(
        whl,
        json!({"rule_id": "github-pat-classic",
               "path": "/opt/wheels/acme_client-1.0-py3-none-any.whl",
               "inner_path": "acme_client/settings.py", "line": 2, "status": "present"}),
    );

    // Three archive levels below the layer are opened...
    let d3 = one(&json, &ghp("depth3"));
    assert_fields(
        d3,
        json!({"rule_id": "github-pat-classic", "path": "/app/deep3.zip",
               "inner_path": "l2.zip!l3.zip!secret.txt", "line": 1}),
    );
    // ...a fourth is not (max_depth 3): its deflated member stays unread.
    assert!(at_path(&json, "/app/deep4.zip").is_empty(), "{}", summary(&json));
    assert!(all(&json).iter().all(|f| f["secret"] != ghp("depth4")));
    // A stored member of the unopened fourth level is still seen in its raw
    // bytes, reported against the archive itself.
    let l4 = level4_stored();
    let token = ghp("depth4stored");
    let off = l4.windows(token.len()).position(|w| w == token.as_bytes()).unwrap();
    let line = l4[..off].iter().filter(|&&b| b == b'\n').count() + 1;
    assert_fields(
        one(&json, &token),
        json!({"rule_id": "github-pat-classic", "path": "/app/deep4-stored.zip",
               "inner_path": "l2.zip!l3.zip!l4.zip", "line": line}),
    );

    assert_eq!(all(&json).len(), 6, "{}", summary(&json));
}

// ---------------------------------------------------------------------------------------------
// 2. Archive bombs
// ---------------------------------------------------------------------------------------------

/// gzip of `size` zero bytes, streamed (compressed it is about size/1000).
fn gzip_zeros(size: u64) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    io::copy(&mut io::repeat(0).take(size), &mut enc).unwrap();
    enc.finish().unwrap()
}

#[test]
fn archive_bombs_stop_with_an_error_and_the_layer_goes_on() {
    // Just over the 1 GiB expansion budget of one layer file.
    let bomb = gzip_zeros((1 << 30) + (1 << 20));
    assert!(bomb.len() < 4 << 20, "compressed bomb is {} bytes", bomb.len());
    let zeros = vec![0u8; 8 << 20];
    let notes = format!("release notes\ndeploy token {}\n", ghp("zipafter"));
    let zip_bomb = zip_of(&[("zeros.bin", &zeros, true), ("notes.txt", notes.as_bytes(), true)]);
    let after = format!("# after the bomb\nGITHUB_TOKEN={}\n", ghp("gzafter"));
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY data/ /data/",
                vec![
                    Entry::file("data/disk.img.gz", bomb),
                    Entry::file("data/after.env", after),
                    Entry::file("data/bundle.zip", zip_bomb),
                ],
            )
            .with_compression(Compression::None),
        ],
        ..ImageSpec::default()
    };
    let (code, json, err) = scan_spec(&spec);
    // A bomb leaves bytes unread: the scan is incomplete (exit 2), the rest goes on.
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("archive bomb")).collect();
    assert!(
        warnings.iter().any(|l| l.contains("/data/disk.img.gz") && l.contains("error")),
        "gzip bomb error: {err}"
    );
    assert!(
        warnings.iter().any(|l| l.contains("/data/bundle.zip") && l.contains("zeros.bin")),
        "zip ratio warning: {err}"
    );
    assert_fields(
        one(&json, &ghp("gzafter")),
        json!({"rule_id": "github-pat-classic", "path": "/data/after.env", "inner_path": null,
               "line": 2, "layer_index": 0, "status": "present"}),
    );
    assert_fields(
        one(&json, &ghp("zipafter")),
        json!({"rule_id": "github-pat-classic", "path": "/data/bundle.zip",
               "inner_path": "notes.txt", "line": 2}),
    );
    assert_eq!(all(&json).len(), 2, "{}", summary(&json));
    let diags = json["diagnostics"].as_array().unwrap();
    assert!(
        diags.iter().filter(|d| d["message"].as_str().unwrap().contains("archive bomb")).count()
            >= 2,
        "{diags:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Image config and build args
// ---------------------------------------------------------------------------------------------

#[test]
fn config_env_labels_cmd_entrypoint_and_build_args() {
    let run_args = format!(
        "RUN |2 NPM_TOKEN={} GH={} /bin/sh -c npm ci && npm run build",
        npm("buildarg"),
        ghp("buildarg")
    );
    let env_line = format!("ENV GITHUB_TOKEN={}", ghp("env"));
    let mut labels = std::collections::BTreeMap::new();
    labels
        .insert("org.opencontainers.image.source".to_owned(), "https://github.com/acme/app".into());
    labels.insert("ci.npm-token".to_owned(), npm("label"));
    let spec = ImageSpec {
        layers: vec![
            Layer::new("COPY app /app", vec![Entry::file("app/package.json", "{}\n")]),
            Layer::new(&run_args, vec![Entry::file("app/dist/index.js", "console.log(1)\n")]),
        ],
        // history: [0] ARG NPM_TOKEN, [1] ARG GH, [2] COPY, [3] ENV, [4] RUN
        empty_history: vec![
            (0, "ARG NPM_TOKEN".into()),
            (0, "ARG GH".into()),
            (1, env_line.clone()),
        ],
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            format!("GITHUB_TOKEN={}", ghp("env")),
        ],
        labels,
        cmd: vec![
            "/bin/sh".into(),
            "-c".into(),
            format!(
                "curl -fsS -H 'Authorization: token {}' https://api.github.com/user",
                ghp("cmd")
            ),
        ],
        entrypoint: vec!["/app/run".into(), "--gh-token".into(), gho("entrypoint")],
        ..ImageSpec::default()
    };
    let (code, json, err) = scan_spec(&spec);
    assert_eq!(code, 1, "{err}");
    let config = |f: &Value, rule: &str, location: &str, created_by: Value| {
        assert_fields(
            f,
            json!({"rule_id": rule, "location": location, "status": "config",
                   "detector": "config", "layer_index": null, "layer_digest": null,
                   "path": null, "inner_path": null, "removed_in_layer": null,
                   "created_by": created_by}),
        );
    };
    let env: Vec<&Value> = all(&json).iter().filter(|f| f["secret"] == ghp("env")).collect();
    assert_eq!(env.len(), 2, "config.env and the ENV history entry: {}", summary(&json));
    let in_env = env.iter().find(|f| f["location"] == "config.env").unwrap();
    config(in_env, "github-pat-classic", "config.env", Value::Null);
    let in_history = env.iter().find(|f| f["location"] != "config.env").unwrap();
    config(in_history, "github-pat-classic", "history[3].created_by", json!(env_line));

    config(one(&json, &npm("label")), "npm-access-token", "config.labels", Value::Null);
    config(one(&json, &ghp("cmd")), "github-pat-classic", "config.cmd", Value::Null);
    config(one(&json, &gho("entrypoint")), "github-oauth-token", "config.entrypoint", Value::Null);
    config(
        one(&json, &npm("buildarg")),
        "npm-access-token",
        "history[4].created_by",
        json!(run_args),
    );
    config(
        one(&json, &ghp("buildarg")),
        "github-pat-classic",
        "history[4].created_by",
        json!(run_args),
    );
    assert_eq!(all(&json).len(), 7, "{}", summary(&json));
}

// ---------------------------------------------------------------------------------------------
// 4. Credential files
// ---------------------------------------------------------------------------------------------

/// One expected finding: rule, line, secret.
type Want = (&'static str, u64, Vec<u8>);

/// A JKS keystore: magic, version 2, one private-key entry, then noise.
/// With seed 0x10 the noise holds none of the byte pairs the placeholder
/// filter looks for (`{{`, `${`, `%s`, ...); with 0x15 it holds `{{`.
fn keystore(seed: u64) -> Vec<u8> {
    let mut k = vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 6];
    k.extend_from_slice(b"tomcat");
    k.extend(random_bytes(seed, 900));
    k
}

/// (image path, content, expected findings)
fn credential_files() -> Vec<(&'static str, Vec<u8>, Vec<Want>)> {
    let docker_auth = b64(b"robot$ci:Qm7vX2pL9kR4sT8wZ3");
    let npm_auth = b64(b"ci-bot:Np4Lx8Qr2Vz6Kt9Wb5");
    let aws_secret = random_str(0xA5, 40, B64);
    let aws_id = aws_key_id(210_987_654_321, 5);
    let crypt64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let shadow_hash = format!("$6$Qm7vX2pLk9${}", random_str(0x5AD, 86, crypt64));
    let htpasswd_hash = format!("$apr1$Xq3vLm9p${}", random_str(0xA9, 22, ALNUM));
    let ks = keystore(0x10);
    let openssh = {
        let mut raw = b"openssh-key-v1\0\0\0\0\x04none\0\0\0\x04none\0\0\0\0\0\0\0\x01".to_vec();
        raw.extend(random_bytes(0x55, 300));
        let body = b64(&raw);
        let lines: Vec<&str> =
            body.as_bytes().chunks(70).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            lines.join("\n")
        )
    };
    let w = |rule: &'static str, line: u64, secret: &[u8]| (rule, line, secret.to_vec());
    vec![
        (
            "/root/.docker/config.json",
            format!(
                "{{\n  \"auths\": {{\n    \"registry.example.test\": {{\n      \"auth\": \"{docker_auth}\"\n    }}\n  }},\n  \"credsStore\": \"\"\n}}\n"
            )
            .into_bytes(),
            vec![w("docker-config-auth", 4, docker_auth.as_bytes())],
        ),
        (
            "/root/.git-credentials",
            b"https://ci-bot:Hq7pW2xLk9vMz4Tb@git.example.test\nhttps://deploy:Vn3Rk8Yc1Qz6Lp0Xa@gitlab.example.test\n".to_vec(),
            vec![
                w("url-embedded-credentials", 1, b"Hq7pW2xLk9vMz4Tb"),
                w("url-embedded-credentials", 2, b"Vn3Rk8Yc1Qz6Lp0Xa"),
            ],
        ),
        (
            "/root/.netrc",
            b"machine api.example.test\n  login deploy\n  password Tr0ub4dor3xQ9vLm\n".to_vec(),
            vec![w("netrc-password", 3, b"Tr0ub4dor3xQ9vLm")],
        ),
        (
            "/root/.pypirc",
            b"[distutils]\nindex-servers =\n    internal\n\n[internal]\nrepository = https://pypi.example.test/\nusername = uploader\npassword = Pz7Kq2Wm9Xv4Lt8Rb3\n".to_vec(),
            vec![w("file-pypirc-password", 8, b"Pz7Kq2Wm9Xv4Lt8Rb3")],
        ),
        (
            "/home/node/.npmrc",
            format!("registry=https://registry.npmjs.org/\n_auth={npm_auth}\nalways-auth=true\n")
                .into_bytes(),
            vec![w("npmrc-auth-basic", 2, npm_auth.as_bytes())],
        ),
        (
            "/root/.aws/credentials",
            format!(
                "[default]\naws_access_key_id = {aws_id}\naws_secret_access_key = {aws_secret}\nregion = eu-west-1\n"
            )
            .into_bytes(),
            vec![
                w("aws-access-key-id", 2, aws_id.as_bytes()),
                w("aws-secret-access-key", 3, aws_secret.as_bytes()),
            ],
        ),
        (
            "/etc/shadow",
            format!(
                "root:*:19800:0:99999:7:::\ndaemon:*:19800:0:99999:7:::\nnobody:!:19800::::::\napp:{shadow_hash}:19800:0:99999:7:::\n"
            )
            .into_bytes(),
            vec![w("file-shadow-hash", 4, shadow_hash.as_bytes())],
        ),
        (
            "/etc/nginx/.htpasswd",
            format!("admin:{htpasswd_hash}\n").into_bytes(),
            vec![w("file-htpasswd-hash", 1, htpasswd_hash.as_bytes())],
        ),
        (
            "/root/.kube/config",
            b"apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://k8s.example.test:6443\n  name: prod\nusers:\n- name: ci\n  user:\n    token: Kx9mQ2vL7pR4tW8zB3nY6cF1hJ5sD0gA\n".to_vec(),
            vec![w("file-kubeconfig-credential", 10, b"Kx9mQ2vL7pR4tW8zB3nY6cF1hJ5sD0gA")],
        ),
        (
            "/app/.env",
            b"NODE_ENV=production\nPORT=8080\nSESSION_SECRET=w5ikLV8IBwFudikyowh89V13BnseO9ku\n"
                .to_vec(),
            vec![w("file-env-secret", 3, b"w5ikLV8IBwFudikyowh89V13BnseO9ku")],
        ),
        ("/opt/tomcat/conf/keystore.jks", ks.clone(), vec![w("file-keystore", 1, &ks)]),
        (
            "/root/.ssh/id_ed25519",
            openssh.clone().into_bytes(),
            vec![w("openssh-private-key", 1, openssh.trim_end().as_bytes())],
        ),
    ]
}

/// Checks the findings in each file against the expectations; returns
/// one line per mismatch.
fn check_files(json: &Value, files: &[(&str, Vec<u8>, Vec<Want>)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, _, wants) in files {
        let found = at_path(json, path);
        let got: Vec<String> = found
            .iter()
            .map(|f| {
                let secret = f["secret"].as_str().unwrap();
                let secret = if secret.len() > 120 { "(long)" } else { secret };
                format!("{} line {} [{secret}]", f["rule_id"], f["line"])
            })
            .collect();
        let matches = |f: &Value, (rule, line, secret): &Want| {
            f["rule_id"] == *rule
                && f["line"] == *line
                && f["status"] == "present"
                && f["layer_index"] == 0
                && f["inner_path"].is_null()
                && f["secret_sha256"] == hex::encode(Sha256::digest(secret))
        };
        let ok =
            found.len() == wants.len() && wants.iter().all(|w| found.iter().any(|f| matches(f, w)));
        if !ok {
            let show = |s: &[u8]| match std::str::from_utf8(s) {
                Ok(t) => t.to_owned(),
                Err(_) => format!("{} binary bytes", s.len()),
            };
            let want: Vec<String> =
                wants.iter().map(|(r, l, s)| format!("{r} line {l} [{}]", show(s))).collect();
            problems.push(format!("{path}: want {want:?}, got {got:?}"));
        }
    }
    problems
}

fn files_spec(files: &[(&str, Vec<u8>, Vec<Want>)]) -> ImageSpec {
    ImageSpec {
        layers: vec![Layer::new(
            "COPY rootfs/ /",
            files.iter().map(|(p, data, _)| Entry::file(p, data.clone())).collect(),
        )],
        ..ImageSpec::default()
    }
}

#[test]
fn credential_files_are_recognised() {
    let files = credential_files();
    let (code, json, err) = scan_spec(&files_spec(&files));
    assert_eq!(code, 1, "{err}");
    let problems = check_files(&json, &files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let expected: usize = files.iter().map(|f| f.2.len()).sum();
    assert_eq!(all(&json).len(), expected, "{}", summary(&json));
}

/// A keystore is binary: the bytes `{{` somewhere in it say nothing about
/// it being a template.
#[test]
fn keystore_with_template_like_bytes_is_reported() {
    let ks = keystore(0x15);
    assert!(ks.windows(2).any(|w| w == b"{{"));
    let files = vec![("/opt/app/server.jks", ks.clone(), vec![("file-keystore", 1, ks)])];
    let (_, json, _) = scan_spec(&files_spec(&files));
    let problems = check_files(&json, &files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `terraform.tfstate` holds a sensitive attribute: one finding, on the
/// attribute's line.
#[test]
fn terraform_state_secret_is_reported_once_on_its_line() {
    let state = r#"{
  "version": 4,
  "terraform_version": "1.7.5",
  "resources": [
    {
      "mode": "managed",
      "type": "aws_db_instance",
      "name": "main",
      "instances": [
        {
          "attributes": {
            "username": "dbadmin",
            "password": "Rz8Kq3Vm7Xw2Lp9T"
          }
        }
      ]
    }
  ]
}
"#;
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY infra/ /srv/infra/",
            vec![Entry::file("srv/infra/terraform.tfstate", state)],
        )],
        ..ImageSpec::default()
    };
    let (_, json, _) = scan_spec(&spec);
    let found = at_path(&json, "/srv/infra/terraform.tfstate");
    assert_eq!(found.len(), 1, "{}", summary(&json));
    assert_fields(found[0], json!({"line": 13, "secret": "Rz8Kq3Vm7Xw2Lp9T"}));
}

// ---------------------------------------------------------------------------------------------
// 5. Validators
// ---------------------------------------------------------------------------------------------

#[test]
fn validators_gate_and_annotate_findings() {
    let good = ghp("checksum");
    // Same length and charset, last check digit changed.
    let mut bad = good.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == 'a' { 'b' } else { 'a' });
    let key_id = aws_key_id(123_456_789_012, 9);
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY notes /srv/",
            vec![
                Entry::file("srv/notes.txt", format!("ok {good}\nbad {bad}\n")),
                Entry::file("srv/session.json", format!("{{\n  \"id_token\": \"{}\"\n}}\n", jwt())),
                Entry::file("srv/aws.txt", format!("access key: {key_id}\n")),
            ],
        )],
        ..ImageSpec::default()
    };
    let (code, json, err) = scan_spec(&spec);
    assert_eq!(code, 1, "{err}");

    // A failed checksum lowers the finding (critical -> medium), it does not drop it.
    let notes = at_path(&json, "/srv/notes.txt");
    assert_eq!(notes.len(), 2, "{}", summary(&json));
    assert_fields(
        notes[0],
        json!({"rule_id": "github-pat-classic", "line": 1, "secret": good,
               "validation": "github checksum ok", "severity": "critical"}),
    );
    assert_fields(
        notes[1],
        json!({"rule_id": "github-pat-classic", "line": 2, "secret": bad,
               "validation": "check failed: github checksum mismatch",
               "severity": "medium", "rule_severity": "critical"}),
    );

    let j = one(&json, &jwt());
    assert_fields(j, json!({"rule_id": "jwt", "path": "/srv/session.json", "line": 2}));
    let v = j["validation"].as_str().unwrap();
    assert!(v.contains("alg HS256"), "{v}");

    let a = one(&json, &key_id);
    assert_fields(
        a,
        json!({"rule_id": "aws-access-key-id", "path": "/srv/aws.txt", "line": 1,
               "validation": "aws account 123456789012"}),
    );
}

/// See: #12. A private key block whose body does not decode is still a leak
/// (truncated, mangled in transit), reported lower; documented example keys
/// stay suppressed even when their check would fail.
#[test]
fn undecodable_private_key_is_reported_lower() {
    // Base64 that decodes, but not to a DER structure (no leading SEQUENCE).
    let mut body = b64(&random_bytes(77, 900));
    body.replace_range(..1, "Q");
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let key = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let good = pem("RSA PRIVATE KEY", &der(0x51, 1100));
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY keys /srv/",
            vec![
                Entry::file("srv/mangled.pem", key.clone()),
                Entry::file("srv/good.pem", good),
                Entry::file("srv/aws.ini", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"),
            ],
        )],
        ..ImageSpec::default()
    };
    let (code, json, err) = scan_spec(&spec);
    assert_eq!(code, 1, "{err}");
    let mangled = at_path(&json, "/srv/mangled.pem");
    assert_eq!(mangled.len(), 1, "{}", summary(&json));
    assert_fields(
        mangled[0],
        json!({"rule_id": "rsa-private-key", "severity": "medium", "rule_severity": "critical",
               "validation": "check failed: private key body does not decode to a key"}),
    );
    let good = at_path(&json, "/srv/good.pem");
    assert_fields(good[0], json!({"rule_id": "rsa-private-key", "severity": "critical"}));
    assert!(at_path(&json, "/srv/aws.ini").is_empty(), "{}", summary(&json));
    assert_eq!(json["summary"]["suppressed"]["documented example credentials"], 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Decoys
// ---------------------------------------------------------------------------------------------

fn pem(label: &str, der: &[u8]) -> String {
    let body = b64(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// DER-looking bytes: a SEQUENCE header, then noise.
fn der(seed: u64, len: usize) -> Vec<u8> {
    let mut d = vec![0x30, 0x82, (len >> 8) as u8, len as u8];
    d.extend(random_bytes(seed, len));
    d
}

fn lockfiles() -> Vec<(&'static str, String)> {
    let pkgs = ["lodash@4.17.21", "react@18.3.1", "express@4.19.2", "axios@1.7.2", "zod@3.23.8"];
    let sri = |p: &str| format!("sha512-{}", b64(&Sha512::digest(p.as_bytes())));
    let mut lock = String::from(
        "{\n  \"name\": \"web\",\n  \"version\": \"1.0.0\",\n  \"lockfileVersion\": 3,\n  \"requires\": true,\n  \"packages\": {\n",
    );
    let mut yarn = String::from(
        "# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.\n# yarn lockfile v1\n\n",
    );
    for (i, p) in pkgs.iter().enumerate() {
        let (name, version) = p.split_once('@').unwrap();
        let comma = if i + 1 < pkgs.len() { "," } else { "" };
        lock.push_str(&format!(
            "    \"node_modules/{name}\": {{\n      \"version\": \"{version}\",\n      \"resolved\": \"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz\",\n      \"integrity\": \"{}\",\n      \"license\": \"MIT\"\n    }}{comma}\n",
            sri(p)
        ));
        let sha1ish = hex::encode(&Sha256::digest(p.as_bytes())[..20]);
        yarn.push_str(&format!(
            "{name}@^{version}:\n  version \"{version}\"\n  resolved \"https://registry.yarnpkg.com/{name}/-/{name}-{version}.tgz#{sha1ish}\"\n  integrity {}\n\n",
            sri(p)
        ));
    }
    lock.push_str("  }\n}\n");
    let crates = ["serde 1.0.219", "regex 1.11.1", "tokio 1.45.0", "anyhow 1.0.98"];
    let mut cargo = String::from(
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n",
    );
    for c in crates {
        let (name, version) = c.split_once(' ').unwrap();
        cargo.push_str(&format!(
            "[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n\n",
            hex::encode(Sha256::digest(c.as_bytes()))
        ));
    }
    let mods = [
        "github.com/spf13/cobra v1.8.0",
        "golang.org/x/crypto v0.24.0",
        "github.com/aws/aws-sdk-go-v2 v1.30.0",
    ];
    let mut gosum = String::new();
    for m in mods {
        gosum.push_str(&format!("{m} h1:{}\n", b64(&Sha256::digest(m.as_bytes()))));
        gosum.push_str(&format!(
            "{m}/go.mod h1:{}\n",
            b64(&Sha256::digest(format!("{m}/go.mod").as_bytes()))
        ));
    }
    vec![
        ("app/package-lock.json", lock),
        ("app/yarn.lock", yarn),
        ("app/Cargo.lock", cargo),
        ("app/go.sum", gosum),
    ]
}

fn ssh_public_keys() -> Vec<(&'static str, String)> {
    let mut rsa = b"\0\0\0\x07ssh-rsa\0\0\0\x03\x01\x00\x01\0\0\x01\x01\x00".to_vec();
    rsa.extend(random_bytes(0x55A, 256));
    let mut ed = b"\0\0\0\x0bssh-ed25519\0\0\0\x20".to_vec();
    ed.extend(random_bytes(0xED, 32));
    let rsa_line = format!("ssh-rsa {} deploy@build-host\n", b64(&rsa));
    vec![
        ("root/.ssh/id_rsa.pub", rsa_line.clone()),
        (
            "root/.ssh/authorized_keys",
            format!("{rsa_line}ssh-ed25519 {} ops@bastion.example.test\n", b64(&ed)),
        ),
    ]
}

fn png_data_uri() -> String {
    let mut png =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x40\0\0\0\x40\x08\x06\0\0\0\xaa\x69\x71\xde".to_vec();
    png.extend_from_slice(b"\0\0\x05\xdcIDAT");
    png.extend(random_bytes(0x9E6, 1500));
    png.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    format!("data:image/png;base64,{}", b64(&png))
}

/// About 50 KB of minified JavaScript: short identifiers, and names like
/// token/secret/password assigned identifiers, members and short strings.
fn minified_js() -> String {
    const IDS: &[&str] = &[
        "e", "t", "n", "r", "o", "i", "a", "s", "c", "u", "l", "d", "f", "p", "h", "m", "g", "v",
        "y", "b", "w", "x", "k", "E", "S", "C", "T", "O", "_", "$", "Ae", "Qt", "Rn", "ut",
    ];
    const TEMPLATES: &[&str] = &[
        "function A(B,C){var D=B.token||C.token;return D?B.headers.Authorization=\"Bearer \"+D:delete B.headers.Authorization,B}",
        "var A=B.secret,C=B.password,D=B.apiKey;",
        "A.prototype.setPassword=function(B){this.password=B,this.passwordConfirm=B.trim()};",
        "const A={token:null,refreshToken:null,expiresAt:0,secret:\"\",password:\"\"};",
        "A.exports={apiKey:B.apiKey,clientSecret:B.clientSecret,accessToken:B.accessToken};",
        "if(!A.password||A.password.length<8)throw new Error(\"password too short\");",
        "A=(B,C)=>({...B,token:C.payload.token,secretKey:C.secretKey});",
        "B.createElement(\"input\",{type:\"password\",name:\"password\",placeholder:\"Password\",autoComplete:\"current-password\",value:A.password,onChange:C});",
        "localStorage.setItem(\"token\",A.token),sessionStorage.getItem(\"auth_token\");",
        "fetch(\"/api/v1/session\",{method:\"POST\",headers:{\"Content-Type\":\"application/json\",\"X-CSRF-Token\":A},body:JSON.stringify({username:B,password:C})}).then(function(D){return D.json()});",
        "case\"token\":return A.token=B,A;case\"secret\":return A.secret=B.secret,A;",
        "var A=function(){function B(C){this.token=C.token,this.secret=C.secret}return B.prototype.isExpired=function(){return Date.now()>this.expiresAt},B}();",
        "A[B]=\"token\"===C?D:A[B];",
        "const{password:A,token:B,...C}=D;",
        "A.interceptors.request.use(function(B){var C=D.getState().auth.token;return C&&(B.headers[\"x-access-token\"]=C),B});",
        "(0,A.default)(B,{secret:C,expiresIn:\"1h\",algorithm:\"HS256\"});",
        "A.passwordHash=B(C.password,D.salt);",
        "var A=/^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$/,B=/(?=.*[0-9])(?=.*[a-z]).{8,}/;",
        "Object.defineProperty(A,\"__esModule\",{value:!0}),A.getToken=A.setToken=void 0;",
        "A.tokenType=\"Bearer\",A.grantType=\"password\",A.scope=\"openid profile\";",
    ];
    let mut rng = ig::XorShift::new(0x15B);
    let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
    let mut out = String::from(
        "/*! For license information please see main.3f9a1c2b.js.LICENSE.txt */\n(self.webpackChunkweb=self.webpackChunkweb||[]).push([[179],{",
    );
    let mut module = 1000;
    while out.len() < 50_000 {
        module += 1 + pick(97);
        out.push_str(&format!("{module}:function(e,t,n){{\"use strict\";"));
        for _ in 0..(3 + pick(6)) {
            let mut s = TEMPLATES[pick(TEMPLATES.len())].to_owned();
            for placeholder in ["A", "B", "C", "D"] {
                let id = IDS[pick(IDS.len())];
                s = s.replace(placeholder, id);
            }
            out.push_str(&s);
        }
        out.push_str("},");
    }
    out.push_str("}]);\n//# sourceMappingURL=main.3f9a1c2b.js.map\n");
    out
}

fn decoy_spec() -> ImageSpec {
    let mut files: Vec<(&str, String)> = vec![
        (
            "app/config/aws.ini",
            "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n".into(),
        ),
        (
            "app/settings.py",
            "import os\n\nSECRET_KEY = os.environ[\"DJANGO_SECRET_KEY\"]\nDATABASES = {\"default\": {\"PASSWORD\": os.environ.get(\"DB_PASSWORD\", \"\")}}\nauth_token = request.headers.get(\"Authorization\")\nTOKEN_URL = \"https://oauth2.example.test/token\"\npassword_reset_timeout = 259200\n".into(),
        ),
        (
            "app/config/application.properties",
            "spring.datasource.url=jdbc:postgresql://db:5432/app\nspring.datasource.username=app\nspring.datasource.password=${DB_PASSWORD}\njwt.secret=${JWT_SECRET:}\n".into(),
        ),
        (
            "usr/local/bin/entrypoint.sh",
            "#!/bin/sh\nset -eu\nmysql -u root --password=\"$MYSQL_PASSWORD\" < /schema.sql\necho \"$GITHUB_TOKEN\" | docker login ghcr.io -u ci --password-stdin\nexec \"$@\"\n".into(),
        ),
        (
            "app/docker-compose.yml",
            format!("services:\n  web:\n    image: nginx@sha256:{}\n    environment:\n      API_TOKEN: ${{API_TOKEN}}\n      GIT_COMMIT: {}\n", hex::encode(Sha256::digest(b"nginx")), &hex::encode(Sha256::digest(b"commit"))[..40]),
        ),
        (
            "root/.kube/config",
            format!("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://k8s.example.test:6443\n  name: prod\nusers:\n- name: ci\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n      args: [\"eks\", \"get-token\", \"--cluster-name\", \"prod\"]\n", b64(pem("CERTIFICATE", &der(0xCA, 600)).as_bytes())),
        ),
        (
            "root/.docker/config.json",
            "{\n  \"auths\": {\n    \"registry.example.test\": {}\n  },\n  \"credsStore\": \"desktop\"\n}\n".into(),
        ),
        ("home/node/.npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n".into()),
        (
            "etc/shadow",
            "root:*:19800:0:99999:7:::\ndaemon:*:19800:0:99999:7:::\nnobody:!:19800::::::\n".into(),
        ),
        (
            "app/config/app.yaml",
            "github_token: ${GITHUB_TOKEN}\npassword: <your-password>\napi_key = \"changeme\"\ntoken: xxxxxxxxxxxxxxxxxxxx\n".into(),
        ),
        (
            "app/.env",
            "GITHUB_TOKEN=${GITHUB_TOKEN}\nDB_PASSWORD=<your-password>\nAPI_KEY=\"changeme\"\nTOKEN=xxxxxxxxxxxxxxxxxxxx\n".into(),
        ),
        (
            "app/config/oauth.properties",
            "client_id = 123e4567-e89b-12d3-a456-426614174000\ntenant_id = 7c9e6679-7425-40de-944b-e07fc1f90ae7\n".into(),
        ),
        ("etc/ssl/certs/acme-ca.pem", pem("CERTIFICATE", &der(0xCE, 700))),
        ("app/keys/jwt-public.pem", pem("PUBLIC KEY", &der(0x9B, 290))),
        (
            "app/static/css/app.css",
            format!(".logo{{width:64px;height:64px;background-image:url(\"{}\")}}\n", png_data_uri()),
        ),
        (
            "app/static/index.html",
            format!("<!doctype html><html><head><title>Web</title></head><body><img alt=\"logo\" src=\"{}\"><script src=\"/static/js/main.3f9a1c2b.js\" integrity=\"sha384-{}\" crossorigin=\"anonymous\"></script></body></html>\n", png_data_uri(), b64(&Sha512::digest(b"main.js")[..48])),
        ),
        ("app/static/js/main.3f9a1c2b.js", minified_js()),
    ];
    files.extend(lockfiles());
    files.extend(ssh_public_keys());
    ImageSpec {
        layers: vec![Layer::new(
            "COPY . /",
            files.into_iter().map(|(p, c)| Entry::file(p, c)).collect(),
        )],
        ..ImageSpec::default()
    }
}

/// The file detector does not apply the documented-example list that the
/// pattern rules use.
#[test]
fn documented_example_in_aws_credentials_file_is_suppressed() {
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY credentials /root/.aws/",
            vec![Entry::file(
                "root/.aws/credentials",
                "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
            )],
        )],
        ..ImageSpec::default()
    };
    let (code, json, err) = scan_spec(&spec);
    assert!(all(&json).is_empty(), "false positives:\n{}", summary(&json));
    assert_eq!(code, 0, "{err}");
    let examples = &json["summary"]["suppressed"]["documented example credentials"];
    assert_eq!(examples, 2, "{:#}", json["summary"]);
}

#[test]
fn decoys_give_no_findings() {
    let (code, json, err) = scan_spec(&decoy_spec());
    assert!(all(&json).is_empty(), "false positives:\n{}", summary(&json));
    assert_eq!(code, 0, "{err}");
    let examples = &json["summary"]["suppressed"]["documented example credentials"];
    assert_eq!(examples, 2, "the two AWS example values: {:#}", json["summary"]);
}

// ---------------------------------------------------------------------------------------------
// 7. De-duplication
// ---------------------------------------------------------------------------------------------

#[test]
fn one_secret_matched_by_several_rules_is_one_finding() {
    let aws_secret = random_str(0xDED, 40, B64);
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY config /app/config/",
            vec![
                Entry::file(
                    "app/config/prod.ini",
                    format!("[aws]\naws_secret_access_key = {aws_secret}\n"),
                ),
                Entry::file(
                    "app/config/.env",
                    format!("LOG_LEVEL=info\nGITHUB_TOKEN={}\n", ghp("dedupe")),
                ),
            ],
        )],
        ..ImageSpec::default()
    };
    let (code, json, err) = scan_spec(&spec);
    assert_eq!(code, 1, "{err}");
    assert_eq!(all(&json).len(), 2, "{}", summary(&json));
    assert_fields(
        one(&json, &aws_secret),
        json!({"rule_id": "aws-secret-access-key", "path": "/app/config/prod.ini", "line": 2}),
    );
    assert_fields(
        one(&json, &ghp("dedupe")),
        json!({"rule_id": "github-pat-classic", "path": "/app/config/.env", "line": 2}),
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Multi-platform
// ---------------------------------------------------------------------------------------------

#[test]
fn each_platform_reports_its_own_secrets() {
    let spec = |arch: &str, variant: Option<&str>, tag: &str| ImageSpec {
        layers: vec![Layer::new(
            "COPY .env /app/",
            vec![Entry::file("app/.env", format!("# {arch}\nGITHUB_TOKEN={}\n", ghp(tag)))],
        )],
        architecture: arch.into(),
        variant: variant.map(str::to_owned),
        repo_tags: vec!["example.test/multi:1".into()],
        ..ImageSpec::default()
    };
    let dir = tmp();
    let path = dir.path().join("multi.tar");
    ig::write_multiplatform(
        &[spec("amd64", None, "amd64"), spec("arm64", Some("v8"), "arm64")],
        ig::IndexLayout::Nested,
        Format::OciArchive,
        &path,
    )
    .unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(all(&json).len(), 2, "{}", summary(&json));
    assert_fields(
        one(&json, &ghp("amd64")),
        json!({"platform": "linux/amd64", "path": "/app/.env", "line": 2,
               "rule_id": "github-pat-classic"}),
    );
    assert_fields(
        one(&json, &ghp("arm64")),
        json!({"platform": "linux/arm64/v8", "path": "/app/.env", "line": 2,
               "rule_id": "github-pat-classic"}),
    );
    assert_ne!(
        one(&json, &ghp("amd64"))["image_digest"],
        one(&json, &ghp("arm64"))["image_digest"]
    );
}

// ---------------------------------------------------------------------------------------------
// 9. The signature checker and user rules
// ---------------------------------------------------------------------------------------------

fn rule_toml(id: &str, pattern: &str, example: &str) -> String {
    format!(
        "[[rule]]\nid = \"{id}\"\nname = \"Acme deploy key\"\nseverity = \"high\"\nkeywords = [\"acmedk_\"]\npattern = '''{pattern}'''\ndescription = \"A fake test credential.\"\nreferences = [\"https://acme.example.test/docs/keys\"]\nexamples = ['''{example}''']\nnegative_examples = ['''acmedk_short''']\n"
    )
}

const GOOD_PATTERN: &str = r"(?-u:\b)(?P<secret>acmedk_[A-Za-z0-9]{24})(?-u:\b)";

#[test]
fn builtin_signatures_check_clean() {
    let (code, out, err) = parts(&run(&["signatures", "check"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" 0 problems"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn bad_user_rules_fail_the_check_naming_file_and_rule() {
    let dir = tmp();
    let example = "ACME_KEY=acmedk_Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6";
    let cases = [
        (
            "bad-regex.toml",
            rule_toml("acme-bad-regex", r"acmedk_(?P<secret>[a-z+)", example),
            "acme-bad-regex",
        ),
        (
            "failing-example.toml",
            rule_toml("acme-failing-example", GOOD_PATTERN, "ACME_KEY=acmedk_tooShort"),
            "acme-failing-example",
        ),
        (
            "duplicate.toml",
            format!(
                "{}\n{}",
                rule_toml("acme-dup", GOOD_PATTERN, example),
                rule_toml("acme-dup", GOOD_PATTERN, example)
            ),
            "acme-dup",
        ),
    ];
    for (file, text, id) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let (code, out, err) = parts(&run(&["signatures", "check", path.to_str().unwrap()]));
        let both = format!("{out}{err}");
        assert_ne!(code, 0, "{file}: {both}");
        assert!(both.contains(path.to_str().unwrap()), "{file} must be named: {both}");
        assert!(both.contains(id), "{id} must be named: {both}");
        assert!(!both.contains("panicked"), "{both}");
    }
}

#[test]
fn user_rule_file_is_checked_and_used_by_scan() {
    let dir = tmp();
    let example = "ACME_KEY=acmedk_Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6";
    let rules = dir.path().join("acme.toml");
    std::fs::write(&rules, rule_toml("acme-deploy-key", GOOD_PATTERN, example)).unwrap();
    let (code, out, err) = parts(&run(&["signatures", "check", rules.to_str().unwrap()]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 rules checked, 0 problems"), "{out}");

    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY deploy.sh /usr/local/bin/",
            vec![Entry::file("usr/local/bin/deploy.sh", format!("#!/bin/sh\n{example}\n"))],
        )],
        ..ImageSpec::default()
    };
    let img = out_path(dir.path(), Format::OciArchive, "custom");
    ig::write_image(&spec, Format::OciArchive, &img).unwrap();
    let (code, json, err) =
        scan_json(&img, &["--show-secrets", "--signatures", rules.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_fields(
        one(&json, "acmedk_Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6"),
        json!({"rule_id": "acme-deploy-key", "path": "/usr/local/bin/deploy.sh", "line": 2,
               "severity": "high"}),
    );
    assert_eq!(all(&json).len(), 1, "{}", summary(&json));
}

#[test]
fn utf16_text_is_decoded() {
    let token = ghp("UTF16");
    let text = format!(
        "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Deploy]\r\n\"Token\"=\"{token}\"\r\n"
    );
    let le: Vec<u8> =
        [0xff, 0xfe].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    let be: Vec<u8> =
        [0xfe, 0xff].into_iter().chain(text.encode_utf16().flat_map(u16::to_be_bytes)).collect();
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY deploy.reg C:/",
            vec![Entry::file("deploy/le.reg", le), Entry::file("deploy/be.reg", be)],
        )],
        ..ImageSpec::default()
    };
    let (code, json, err) = scan_spec(&spec);
    assert_eq!(code, 1, "{err}");
    for path in ["/deploy/le.reg", "/deploy/be.reg"] {
        let found = at_path(&json, path);
        assert_eq!(found.len(), 1, "{path}: {}", summary(&json));
        assert_eq!(found[0]["rule_id"], "github-pat-classic");
        assert_eq!(found[0]["line"], 4);
        assert_eq!(found[0]["secret"], token.as_str());
    }
}

#[test]
fn kubernetes_secret_values_are_decoded() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let token = ghp("KUBE");
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\ntype: Opaque\ndata:\n  GITHUB_TOKEN: {}\n  DB_PASSWORD: {}\nstringData:\n  api-key: Wq9Lm2Xv8Rt3Zp7Kc4Hs\n",
        b64(&token),
        b64("Vx8!qLm2#Tr9Kp4z")
    );
    let config_map = format!(
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  greeting: {}\n",
        b64("hello there, world")
    );
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY chart /chart",
            vec![
                Entry::file("chart/templates/secret.yaml", manifest),
                Entry::file("chart/templates/cm.yaml", config_map),
            ],
        )],
        ..ImageSpec::default()
    };
    let (code, json, err) = scan_spec(&spec);
    assert_eq!(code, 1, "{err}");
    let found = at_path(&json, "/chart/templates/secret.yaml");
    let by_line = |line: u64| {
        found
            .iter()
            .find(|f| f["line"] == line)
            .copied()
            .unwrap_or_else(|| panic!("line {line}: {}", summary(&json)))
    };
    assert_eq!(by_line(7)["rule_id"], "github-pat-classic");
    assert_eq!(by_line(7)["secret"], token.as_str());
    assert_eq!(by_line(8)["rule_id"], "file-kubernetes-secret");
    assert_eq!(by_line(8)["secret"], "Vx8!qLm2#Tr9Kp4z");
    assert_eq!(by_line(10)["secret"], "Wq9Lm2Xv8Rt3Zp7Kc4Hs");
    assert_eq!(found.len(), 3, "{}", summary(&json));
    assert!(at_path(&json, "/chart/templates/cm.yaml").is_empty());
}
