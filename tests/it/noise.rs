//! Noise on real system and application trees (issue 12 item 5): static
//! archives and kernel modules in system library paths are capped like
//! shared libraries; truststores of public certificates are not keystores;
//! third-party code is recognised from the package metadata beside it
//! wherever it is installed; SDK model and example data is documentation.
//! Each test also checks that the same bytes in the application's own
//! files keep their rule severity.
//!
//! Keys and stores are made by the real tools (openssl, and the JRE's
//! keytool when it is installed); tokens are fake, checksummed, and say FAKE.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

fn scan_entries(entries: Vec<Entry>) -> Value {
    scan_layers(vec![Layer::new("COPY . /", entries)])
}

fn scan_layers(layers: Vec<Layer>) -> Value {
    let dir = tmp();
    let path = out_path(dir.path(), Format::OciArchive, "img");
    let spec = ImageSpec { layers, ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert!(code == 0 || code == 1, "scan failed ({code}): {err}");
    json
}

/// Findings at `path`: (rule_id, severity, rule_severity, context).
fn at(json: &Value, path: &str) -> Vec<(String, String, String, Value)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] == path)
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["rule_severity"].as_str().unwrap().to_owned(),
                f["context"].clone(),
            )
        })
        .collect()
}

/// Runs a tool; panics with its stderr when it fails.
fn tool(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn has_tool(program: &str) -> bool {
    Command::new(program).arg("-help").output().is_ok()
}

/// A fresh throwaway PKCS#8 private key in PEM, made by openssl.
fn openssl_key(dir: &Path) -> Vec<u8> {
    tool(
        dir,
        "openssl",
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.pem"],
    );
    std::fs::read(dir.join("k.pem")).unwrap()
}

/// A System V `ar` archive (the `.a` format) with one object member.
fn ar_archive(member: &str, data: &[u8]) -> Vec<u8> {
    let mut a = b"!<arch>\n".to_vec();
    let header = format!(
        "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
        format!("{member}/"),
        0,
        0,
        0,
        644,
        data.len()
    );
    assert_eq!(header.len(), 60);
    a.extend(header.as_bytes());
    a.extend(data);
    if data.len() % 2 == 1 {
        a.push(b'\n');
    }
    a
}

#[test]
fn static_archives_objects_and_modules_in_system_paths_are_capped() {
    let dir = tmp();
    let key = openssl_key(dir.path());
    // A self-test object file: some code bytes, then the test key, as in libgnutls.a.
    let mut object = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0 selftest ".to_vec();
    object.extend(&key);
    let archive = ar_archive("selftest.o", &object);
    let json = scan_entries(vec![
        Entry::file("usr/lib/x86_64-linux-gnu/libfaketls.a", archive.clone()),
        Entry::file("usr/lib/gcc/x86_64-linux-gnu/12/fake-selftest.o", object.clone()),
        Entry::file("lib/modules/6.1.0-fake/kernel/crypto/fake_selftest.ko", object.clone()),
        // The application's own build output keeps rule severity.
        Entry::file("opt/app/lib/libfaketls.a", archive),
        Entry::file("usr/local/lib/fake-selftest.o", object),
    ]);
    for path in [
        "/usr/lib/x86_64-linux-gnu/libfaketls.a",
        "/usr/lib/gcc/x86_64-linux-gnu/12/fake-selftest.o",
        "/lib/modules/6.1.0-fake/kernel/crypto/fake_selftest.ko",
    ] {
        let found = at(&json, path);
        assert!(!found.is_empty(), "{path}: the key is still reported");
        for (rule, sev, rule_sev, ctx) in found {
            assert_eq!(
                (sev.as_str(), ctx.as_str()),
                ("info", Some("system binary")),
                "{path} {rule}"
            );
            assert_eq!(rule_sev, "critical", "{path} {rule}");
        }
    }
    for path in ["/opt/app/lib/libfaketls.a", "/usr/local/lib/fake-selftest.o"] {
        let found = at(&json, path);
        assert!(
            found.iter().any(|(_, sev, _, ctx)| sev == "critical" && ctx.is_null()),
            "{path}: {found:?}"
        );
    }
}

#[test]
fn truststores_of_public_certificates_are_not_keystores() {
    let dir = tmp();
    let d = dir.path();
    tool(
        d,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-days",
            "2",
            "-subj",
            "/CN=FAKE strata test CA",
        ],
    );
    tool(d, "openssl", &["x509", "-in", "c.pem", "-outform", "DER", "-out", "c.der"]);
    tool(
        d,
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-nokeys",
            "-in",
            "c.pem",
            "-out",
            "trust.p12",
            "-passout",
            "pass:FAKE-pass",
        ],
    );
    tool(
        d,
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            "c.pem",
            "-inkey",
            "k.pem",
            "-out",
            "key.p12",
            "-passout",
            "pass:FAKE-pass",
        ],
    );
    let cert = std::fs::read(d.join("c.der")).unwrap();
    let read = |name: &str| std::fs::read(d.join(name)).unwrap();
    let mut entries = vec![
        Entry::file("etc/ssl/certs/java/cacerts", ig::jks(&[2, 2, 2], &cert)),
        Entry::file("srv/tls/truststore.p12", read("trust.p12")),
        Entry::file("srv/tls/server.p12", read("key.p12")),
        Entry::file("srv/tls/server.jks", ig::jks(&[2, 1], &cert)),
    ];
    let keytool = has_tool("keytool");
    if keytool {
        // The JRE's own tool: a truststore in both formats, and a key pair store.
        for (store, kind) in [("kt-trust.jks", "JKS"), ("kt-trust.p12", "PKCS12")] {
            tool(
                d,
                "keytool",
                &[
                    "-importcert",
                    "-noprompt",
                    "-alias",
                    "fake-ca",
                    "-file",
                    "c.pem",
                    "-keystore",
                    store,
                    "-storetype",
                    kind,
                    "-storepass",
                    "FAKE-pass",
                ],
            );
        }
        tool(
            d,
            "keytool",
            &[
                "-genkeypair",
                "-alias",
                "fake",
                "-keyalg",
                "EC",
                "-dname",
                "CN=FAKE",
                "-keystore",
                "kt-key.jks",
                "-storetype",
                "JKS",
                "-storepass",
                "FAKE-pass",
                "-keypass",
                "FAKE-pass",
            ],
        );
        entries.push(Entry::file("usr/lib/jvm/fake/lib/security/cacerts", read("kt-trust.jks")));
        entries.push(Entry::file("srv/tls/kt-trust.p12", read("kt-trust.p12")));
        entries.push(Entry::file("srv/tls/kt-key.jks", read("kt-key.jks")));
    } else {
        eprintln!("keytool not installed: only openssl-made and generated stores are checked");
    }
    let json = scan_entries(entries);
    let keystore_at = |p: &str| at(&json, p).iter().any(|(rule, ..)| rule == "file-keystore");
    for p in ["/etc/ssl/certs/java/cacerts", "/srv/tls/truststore.p12"] {
        assert!(!keystore_at(p), "{p}: certificates only");
    }
    for p in ["/srv/tls/server.p12", "/srv/tls/server.jks"] {
        assert!(keystore_at(p), "{p}: holds a private key entry");
    }
    if keytool {
        assert!(!keystore_at("/usr/lib/jvm/fake/lib/security/cacerts"));
        assert!(!keystore_at("/srv/tls/kt-trust.p12"));
        assert!(keystore_at("/srv/tls/kt-key.jks"));
    }
}

/// A classic GitHub token with a valid checksum.
fn ghp(tag: &str) -> String {
    ig::checksummed_token("ghp_", &format!("FAKE{tag}Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1")[..30])
}

#[test]
fn third_party_code_is_recognised_from_package_metadata_anywhere() {
    let vendored = ghp("VENDOREDSDK");
    let renamed = ghp("RENAMEDIMPORT");
    let own = ghp("APPOWN");
    let record = "fakesdk/__init__.py,sha256=x,10\nfakesdk/creds.py,sha256=y,20\n\
                  fakesdk-1.2.0.dist-info/RECORD,,\n../../bin/fakesdk,sha256=z,5\n";
    let json = scan_layers(vec![
        Layer::new(
            "COPY pylibs /app/pylibs",
            vec![
                Entry::file("app/pylibs/fakesdk/creds.py", format!("TOKEN = \"{vendored}\"\n")),
                Entry::file("app/pylibs/fakesdk-1.2.0.dist-info/RECORD", record),
                Entry::file("app/pylibs/fakesdk-1.2.0.dist-info/METADATA", "Name: fakesdk\n"),
            ],
        ),
        Layer::new(
            "RUN pip install --target /opt/libs python-fakeutil",
            vec![
                Entry::file("opt/libs/fakeutil/auth.py", format!("TOKEN = \"{renamed}\"\n")),
                // The import name differs from the project name: only top_level.txt knows.
                Entry::file("opt/libs/python_fakeutil-2.0.egg-info/top_level.txt", "fakeutil\n"),
            ],
        ),
        Layer::new(
            "COPY . /app",
            vec![Entry::file("app/settings.py", format!("GITHUB_TOKEN = \"{own}\"\n"))],
        ),
    ]);
    for path in ["/app/pylibs/fakesdk/creds.py", "/opt/libs/fakeutil/auth.py"] {
        let found = at(&json, path);
        assert_eq!(found.len(), 1, "{path}: {found:?}");
        let (rule, sev, rule_sev, ctx) = &found[0];
        assert_eq!(rule, "github-pat-classic");
        assert_eq!((sev.as_str(), rule_sev.as_str()), ("info", "critical"), "{path}");
        assert_eq!(ctx, "third-party package", "{path}");
    }
    let found = at(&json, "/app/settings.py");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].1.as_str(), &found[0].3), ("critical", &Value::Null));
}

#[test]
fn sdk_model_and_example_data_is_documentation() {
    // Shaped like botocore's data/<service>/<version>/examples-1.json: a documented
    // request whose sample values look like credentials.
    let examples = r#"{"version": "1.0", "examples": {"CreateSecret": [{"input": {
  "Name": "MyTestDatabaseSecret",
  "SecretString": "{\"username\":\"david\",\"password\":\"Qm8vT2kWz9Lr4Xp7\"}",
  "ClientRequestToken": "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1"},
  "output": {"ARN": "arn:aws:secretsmanager:us-west-2:123456789012:secret:MyTestDatabaseSecret-a1b2c3"},
  "description": "The following example shows how to create a secret.",
  "id": "to-create-a-basic-secret-1523996473658"}]}}
"#;
    let api_key = "x-api-key: \"Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Bg0T\"\n";
    let json = scan_entries(vec![
        Entry::file("app/pylibs/botocore/data/secretsmanager/2017-10-17/examples-1.json", examples),
        Entry::file("srv/sdk/apis/secretsmanager-2017-10-17.examples.json", examples),
        Entry::file("srv/sdk/data/apigateway/2015-07-09/service-2.json", api_key),
        // The same text in the application's own config is reported at rule severity.
        Entry::file("srv/app/config/secrets.json", examples),
        Entry::file("srv/app/config/gateway.yaml", api_key),
    ]);
    for path in [
        "/app/pylibs/botocore/data/secretsmanager/2017-10-17/examples-1.json",
        "/srv/sdk/apis/secretsmanager-2017-10-17.examples.json",
        "/srv/sdk/data/apigateway/2015-07-09/service-2.json",
    ] {
        let found = at(&json, path);
        assert!(!found.is_empty(), "{path}: still reported, at info");
        for (rule, sev, _, ctx) in found {
            assert_eq!(
                (sev.as_str(), ctx.as_str()),
                ("info", Some("documentation")),
                "{path} {rule}"
            );
        }
    }
    for path in ["/srv/app/config/secrets.json", "/srv/app/config/gateway.yaml"] {
        let found = at(&json, path);
        assert!(
            found
                .iter()
                .any(|(_, sev, rule_sev, ctx)| sev == rule_sev && sev != "info" && ctx.is_null()),
            "{path}: {found:?}"
        );
    }
}

/// Ruby's standard library documents `URI#password=` with a URL holding a
/// password (`/usr/lib/ruby/3.1.0/uri/generic.rb`, Debian's libruby3.1):
/// distribution code, which no path rule tells from an application's
/// `/usr/lib/…` files. The package is built and installed by the real
/// `dpkg-deb` and `dpkg`; their database (`*.md5sums`) names the file. The
/// same bytes in the application's tree, or the file rewritten by a later
/// layer, keep the rule's severity.
#[test]
fn files_a_distribution_package_installed_are_third_party() {
    let dir = tmp();
    let (pkg, root) = (dir.path().join("pkg"), dir.path().join("root"));
    let doc = "    #   require 'uri'\n    #\n\
               \x20   #   uri = URI.parse(\"http://john:S3nsit1ve@my.example.com\")\n\
               \x20   #   uri.password = \"V3ry_S3nsit1ve\"\n\
               \x20   #   uri.to_s  #=> \"http://john:V3ry_S3nsit1ve@my.example.com\"\n";
    let installed = "usr/lib/ruby/3.1.0/uri/generic.rb";
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join(installed).parent().unwrap()).unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        "Package: libruby-fake\nVersion: 1.0\nArchitecture: all\n\
         Maintainer: strata tests <tests@example.invalid>\nDescription: fake\n",
    )
    .unwrap();
    std::fs::write(pkg.join(installed), doc).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    tool(dir.path(), "dpkg-deb", &["--root-owner-group", "--build", "pkg", "fake.deb"]);
    let root_arg = format!("--root={}", root.display());
    tool(
        dir.path(),
        "dpkg",
        &[
            &root_arg,
            "--log=/dev/null",
            "--force-script-chrootless",
            "--force-not-root",
            "-i",
            "fake.deb",
        ],
    );
    let json = scan_layers(vec![
        Layer::new("RUN apt-get install -y libruby-fake", tree(&root, "")),
        Layer::new("COPY lib /app/lib", vec![Entry::file("app/lib/uri_doc.rb", doc)]),
        Layer::new(
            "RUN sed -i s/x/x/ /usr/lib/ruby/3.1.0/uri/generic.rb",
            vec![Entry::file(installed, doc)],
        ),
    ]);
    let by_layer = |path: &str, layer: u64| -> Vec<(String, String)> {
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["path"] == path && f["layer_index"] == layer)
            .map(|f| (f["severity"].as_str().unwrap().to_owned(), f["context"].to_string()))
            .collect()
    };
    let system = by_layer(&format!("/{installed}"), 0);
    assert!(!system.is_empty(), "the example URL is found");
    assert!(
        system.iter().all(|(sev, ctx)| sev == "info" && ctx == "\"third-party package\""),
        "{system:?}"
    );
    for (path, layer) in [("/app/lib/uri_doc.rb", 1), (&format!("/{installed}")[..], 2)] {
        let own = by_layer(path, layer);
        assert!(!own.is_empty(), "{path}");
        assert!(own.iter().any(|(sev, ctx)| sev != "info" && ctx == "null"), "{path}: {own:?}");
    }
}

/// Where the image has a package database, a binary in a system directory that no package
/// installed is the image's own (`COPY app /usr/bin/app`) and keeps its rule's severity;
/// one a package installed stays capped as a system binary. The package is built and
/// installed by the real `dpkg-deb` and `dpkg` into a root whose `/bin` links to
/// `usr/bin` (merged `/usr`): dpkg lists `bin/fake-selftool`, the layer holds
/// `usr/bin/fake-selftool`. Without a database, the path alone still caps.
#[test]
fn system_binaries_no_package_installed_keep_their_severity() {
    let dir = tmp();
    let key = openssl_key(dir.path());
    let mut binary = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0 selftest ".to_vec();
    binary.extend(&key);
    let (pkg, root) = (dir.path().join("pkg"), dir.path().join("root"));
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join("bin")).unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        "Package: fake-selftool\nVersion: 1.0\nArchitecture: all\n\
         Maintainer: strata tests <tests@example.invalid>\nDescription: fake\n",
    )
    .unwrap();
    std::fs::write(pkg.join("bin/fake-selftool"), &binary).unwrap();
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "usr/bin"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    tool(dir.path(), "dpkg-deb", &["--root-owner-group", "--build", "pkg", "fake.deb"]);
    let root_arg = format!("--root={}", root.display());
    let install = [
        &root_arg[..],
        "--log=/dev/null",
        "--force-script-chrootless",
        "--force-not-root",
        "-i",
        "fake.deb",
    ];
    tool(dir.path(), "dpkg", &install);
    let md5sums = std::fs::read_to_string(root.join("var/lib/dpkg/info/fake-selftool.md5sums"));
    assert!(md5sums.unwrap().contains("  bin/fake-selftool"), "dpkg lists the shipped name");
    assert!(root.join("usr/bin/fake-selftool").is_file(), "dpkg wrote through the link");
    let json = scan_layers(vec![
        Layer::new("RUN apt-get install -y fake-selftool", tree(&root, "")),
        Layer::new("COPY app /usr/bin/app", vec![Entry::file("usr/bin/app", binary.clone())]),
    ]);
    let installed = at(&json, "/usr/bin/fake-selftool");
    assert!(!installed.is_empty(), "the key is found");
    for (rule, sev, _, ctx) in &installed {
        assert_eq!((sev.as_str(), ctx.as_str()), ("info", Some("system binary")), "{rule}");
    }
    let own = at(&json, "/usr/bin/app");
    assert!(own.iter().any(|(_, sev, _, ctx)| sev == "critical" && ctx.is_null()), "{own:?}");

    // No package database: the path is all there is to go by.
    let json = scan_entries(vec![Entry::file("usr/bin/app", binary)]);
    let bare = at(&json, "/usr/bin/app");
    assert!(!bare.is_empty());
    assert!(
        bare.iter().all(|(_, sev, _, ctx)| sev == "info" && ctx.as_str() == Some("system binary"))
    );
}

/// A token whose check digits pass (GitHub's, npm's CRC-32) is a token as issued, whatever
/// the path: in the application's docs or tests it keeps its rule's severity (the context
/// is still named). One whose digits fail is capped there as before, and a third-party
/// package's copy of the valid one stays capped.
#[test]
fn checksummed_tokens_in_docs_and_tests_keep_their_severity() {
    let ghp = ig::checksummed_token("ghp_", "FAKEdocsTESTq4Lw8Zr2Xm6Vb1Nc9K");
    let npm = ig::checksummed_token("npm_", "FAKEtestsTESTh5Tp3Wq7Ys1Ud8Rf2");
    let bad = format!("{}aaaaaa", &ghp[..ghp.len() - 6]);
    let json = scan_entries(vec![
        Entry::file("app/docs/deploy.md", format!("Use `GH_TOKEN={ghp}` for the release job.\n")),
        Entry::file(
            "app/tests/fixtures/npmrc",
            format!("//registry.npmjs.org/:_authToken={npm}\n"),
        ),
        Entry::file("app/docs/bad.md", format!("GH_TOKEN={bad}\n")),
        Entry::file("app/node_modules/gh-lib/README.md", format!("GH_TOKEN={ghp}\n")),
    ]);
    let severities = |path: &str| -> Vec<(String, Value)> {
        at(&json, path).into_iter().map(|(_, sev, _, ctx)| (sev, ctx)).collect()
    };
    assert!(
        severities("/app/docs/deploy.md").contains(&("critical".into(), "documentation".into())),
        "{:?}",
        severities("/app/docs/deploy.md")
    );
    let tests = severities("/app/tests/fixtures/npmrc");
    assert!(tests.iter().any(|(sev, ctx)| sev == "critical" && ctx == "test"), "{tests:?}");
    let bad = severities("/app/docs/bad.md");
    assert!(!bad.is_empty() && bad.iter().all(|(sev, _)| sev == "info"), "{bad:?}");
    let vendored = severities("/app/node_modules/gh-lib/README.md");
    assert!(!vendored.is_empty() && vendored.iter().all(|(sev, _)| sev == "info"), "{vendored:?}");
}

/// Manuals write a URL's optional parts in brackets,
/// `[protocol://][user[:password]@]proxyhost` (git-config(1)) and
/// `scheme://[[user][:pass]@]host` (apt-transport-http(1), shipped in every
/// Debian image with its translations): syntax, not a password. These are
/// the lines as Debian bookworm's man pages hold them; a real URL with a
/// password beside them is still found.
#[test]
fn url_syntax_in_manuals_is_not_a_password_in_a_url() {
    let git = "for more information\\&. The syntax thus is\n\
               \\fI[protocol://][user[:password]@]proxyhost[:port]\\fR\\&. This can be overridden\n";
    let apt = "All these options use the URI format\n\
               \\fIscheme\\fR://[[\\fIuser\\fR][:\\fIpass\\fR]@]\\fIhost\\fR[:\\fIport\\fR]/\\&. \
               Supported URI schemes are\n";
    let real = "export https_proxy=http://proxyuser:Qx7vL2mKt9Wz@proxy.example.test:3128\n";
    let json = scan_entries(vec![
        Entry::file("usr/share/man/man1/git-config.1", git),
        Entry::file("usr/share/man/man1/apt-transport-http.1", apt),
        Entry::file("app/proxy.sh", real),
    ]);
    for page in ["/usr/share/man/man1/git-config.1", "/usr/share/man/man1/apt-transport-http.1"] {
        assert_eq!(at(&json, page), vec![], "{page}");
    }
    let found = at(&json, "/app/proxy.sh");
    assert!(found.iter().any(|(rule, ..)| rule.contains("url")), "{found:?}");
}
