//! Third-party code recognised from package metadata wherever it is
//! installed (issue 12 item 5): npm packages and npm's content-addressed
//! cache, jars told from applications by their manifests (in files, inside
//! other archives, and exploded), Composer and Go module trees. Packages and
//! jars are made by the real tools (npm, jar, zip); a token in a package is
//! reported at info with context `third-party package`, and the same kind of
//! token in the application's own files keeps its rule severity.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// A classic GitHub token with a valid checksum (FAKE, unique per tag).
fn ghp(tag: &str) -> String {
    ig::checksummed_token("ghp_", &format!("FAKE{tag}Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Ab")[..30])
}

/// Runs a tool in `dir`; panics with its stderr when it fails.
fn tool(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn has_tool(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success())
}

fn write(path: &Path, data: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn scan_layers(layers: Vec<Layer>) -> Value {
    let dir = tmp();
    let path = out_path(dir.path(), Format::OciArchive, "img");
    let spec = ImageSpec { layers, ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &[]);
    assert_eq!(code, 1, "findings expected: {err}");
    json
}

/// (severity, context) of the one GitHub-token finding at `path` and `inner`.
fn token_at(json: &Value, path: &str, inner: Option<&str>) -> (String, Value) {
    let found: Vec<&Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["rule_id"] == "github-pat-classic"
                && f["path"] == path
                && f["inner_path"].as_str() == inner
        })
        .collect();
    assert_eq!(found.len(), 1, "{path} {inner:?}: {found:?}\nall: {json:#}");
    (found[0]["severity"].as_str().unwrap().to_owned(), found[0]["context"].clone())
}

fn third_party() -> (String, Value) {
    ("info".to_owned(), Value::from("third-party package"))
}

fn own() -> (String, Value) {
    ("critical".to_owned(), Value::Null)
}

#[test]
fn npm_packages_and_the_npm_cache_are_third_party() {
    if !has_tool("npm", "--version") {
        eprintln!("npm not installed: skipped");
        return;
    }
    let dir = tmp();
    let d = dir.path();
    let vendored = ghp("NPMSDK");
    let mine = ghp("NPMAPPOWN");
    write(
        &d.join("pkg/package.json"),
        r#"{"name": "fake-sdk", "version": "1.0.0", "main": "lib/config.js"}"#,
    );
    write(
        &d.join("pkg/lib/config.js"),
        &format!("module.exports = {{ token: \"{vendored}\" }};\n"),
    );
    tool(&d.join("pkg"), "npm", &["pack", "--silent"]);
    write(&d.join("app/package.json"), r#"{"name": "web", "version": "1.0.0"}"#);
    // A real install from the tarball: node_modules under --prefix, and the tarball in npm's cache.
    let cache = d.join("npm-cache");
    tool(
        &d.join("app"),
        "npm",
        &[
            "install",
            "--offline",
            "--no-audit",
            "--no-fund",
            "--cache",
            cache.to_str().unwrap(),
            "../pkg/fake-sdk-1.0.0.tgz",
        ],
    );
    std::fs::remove_dir_all(cache.join("_logs")).ok();
    let blobs = tree(&cache, "root/.npm");
    assert!(
        blobs.iter().any(|e| matches!(e, Entry::File { path, .. } if path.contains("content-v2"))),
        "npm cached the tarball by its hash"
    );
    let tarball = std::fs::read(d.join("pkg/fake-sdk-1.0.0.tgz")).unwrap();
    let json = scan_layers(vec![
        Layer::new("RUN npm install", {
            let mut e = tree(&d.join("app/node_modules"), "srv/web/node_modules");
            e.extend(blobs.clone());
            e
        }),
        Layer::new(
            "COPY . /srv",
            vec![
                Entry::file("srv/dist/fake-sdk-1.0.0.tgz", tarball),
                Entry::file(
                    "srv/web/package.json",
                    std::fs::read(d.join("app/package.json")).unwrap(),
                ),
                Entry::file("srv/web/server.js", format!("const token = \"{mine}\";\n")),
            ],
        ),
    ]);
    assert_eq!(
        token_at(&json, "/srv/web/node_modules/fake-sdk/lib/config.js", None),
        third_party()
    );
    let Entry::File { path: blob, .. } = blobs
        .iter()
        .find(|e| matches!(e, Entry::File { path, .. } if path.contains("content-v2")))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(token_at(&json, &format!("/{blob}"), Some("package/lib/config.js")), third_party());
    assert_eq!(
        token_at(&json, "/srv/dist/fake-sdk-1.0.0.tgz", Some("package/lib/config.js")),
        third_party()
    );
    assert_eq!(token_at(&json, "/srv/web/server.js", None), own());
}

#[test]
fn jars_are_told_from_applications_by_their_manifests() {
    if !has_tool("jar", "--version") || !has_tool("zip", "-v") {
        eprintln!("jar or zip not installed: skipped");
        return;
    }
    let dir = tmp();
    let d = dir.path();
    let (lib_token, dep_token, app_token, war_token) =
        (ghp("JARLIBSDK"), ghp("JARDEPGRADLE"), ghp("JARAPPOWN"), ghp("JARWAROWN"));
    // A Maven-built library: pom.properties, no Main-Class.
    write(
        &d.join("lib/META-INF/maven/com.fake/fake-sdk/pom.properties"),
        "groupId=com.fake\nartifactId=fake-sdk\nversion=1.0\n",
    );
    write(&d.join("lib/com/fake/sdk/fixture.properties"), &format!("token={lib_token}\n"));
    tool(d, "jar", &["cf", "fake-sdk-1.0.jar", "-C", "lib", "."]);
    // A dependency without Maven metadata, known only from the application's Class-Path.
    write(&d.join("dep/com/dep/defaults.properties"), &format!("token={dep_token}\n"));
    tool(d, "jar", &["cf", "dep.jar", "-C", "dep", "."]);
    // The application: Main-Class and Class-Path; Maven writes its pom.properties too.
    write(&d.join("app/META-INF/maven/com.example/app/pom.properties"), "groupId=com.example\n");
    write(&d.join("app/application.properties"), &format!("github.token={app_token}\n"));
    write(&d.join("manifest.txt"), "Main-Class: com.example.Main\nClass-Path: lib/dep.jar\n");
    tool(d, "jar", &["cfm", "app.jar", "manifest.txt", "-C", "app", "."]);
    // A web application (no Main-Class, but WEB-INF).
    write(&d.join("war/META-INF/maven/com.example/shop/pom.properties"), "groupId=com.example\n");
    write(&d.join("war/WEB-INF/classes/app.properties"), &format!("token={war_token}\n"));
    tool(d, "jar", &["cf", "shop.war", "-C", "war", "."]);
    // A library jar inside a distribution zip, and both jars exploded.
    std::fs::create_dir_all(d.join("dist/lib")).unwrap();
    std::fs::copy(d.join("fake-sdk-1.0.jar"), d.join("dist/lib/fake-sdk-1.0.jar")).unwrap();
    tool(&d.join("dist"), "zip", &["-q", "-r", "../bundle.zip", "lib"]);
    for (jar, to) in [("fake-sdk-1.0.jar", "x-lib"), ("app.jar", "x-app")] {
        std::fs::create_dir_all(d.join(to)).unwrap();
        tool(&d.join(to), "jar", &["xf", d.join(jar).to_str().unwrap()]);
    }
    let file = |p: &str| std::fs::read(d.join(p)).unwrap();
    let mut files = vec![
        Entry::file("opt/app/app.jar", file("app.jar")),
        Entry::file("opt/app/lib/dep.jar", file("dep.jar")),
        Entry::file("opt/kafka/libs/fake-sdk-1.0.jar", file("fake-sdk-1.0.jar")),
        Entry::file("opt/dist/bundle.zip", file("bundle.zip")),
        Entry::file("srv/webapps/shop.war", file("shop.war")),
    ];
    files.extend(tree(&d.join("x-lib"), "srv/exploded-lib"));
    let json = scan_layers(vec![
        Layer::new("COPY jars /", files),
        // The exploded application in a later layer: its manifest decides wherever it is.
        Layer::new("COPY exploded /srv/exploded-app", tree(&d.join("x-app"), "srv/exploded-app")),
    ]);
    assert_eq!(token_at(&json, "/opt/app/app.jar", Some("application.properties")), own());
    assert_eq!(
        token_at(&json, "/opt/app/lib/dep.jar", Some("com/dep/defaults.properties")),
        third_party()
    );
    assert_eq!(
        token_at(
            &json,
            "/opt/kafka/libs/fake-sdk-1.0.jar",
            Some("com/fake/sdk/fixture.properties")
        ),
        third_party()
    );
    assert_eq!(
        token_at(
            &json,
            "/opt/dist/bundle.zip",
            Some("lib/fake-sdk-1.0.jar!com/fake/sdk/fixture.properties")
        ),
        third_party()
    );
    assert_eq!(
        token_at(&json, "/srv/webapps/shop.war", Some("WEB-INF/classes/app.properties")),
        own()
    );
    assert_eq!(
        token_at(&json, "/srv/exploded-lib/com/fake/sdk/fixture.properties", None),
        third_party()
    );
    assert_eq!(token_at(&json, "/srv/exploded-app/application.properties", None), own());
}

#[test]
fn composer_and_go_module_trees_are_third_party_wherever_installed() {
    // No composer or go binary here: the trees follow what Composer 2
    // (`config.vendor-dir: deps`, composer/installers) and `go mod download` write.
    let (plugin, lib, gomod, mine) =
        (ghp("COMPOSERPLUGIN"), ghp("COMPOSERLIB"), ghp("GOMODCACHE"), ghp("PHPAPPOWN"));
    let installed = r#"{"packages": [
        {"name": "fake/sdk", "version": "1.0.0", "install-path": "../fake/sdk"},
        {"name": "fake/wp-plugin", "version": "2.0.0", "type": "wordpress-plugin",
         "install-path": "../../wp-content/plugins/fake-plugin"}
    ], "dev": true, "dev-package-names": []}"#;
    let json = scan_layers(vec![
        Layer::new(
            "RUN composer install",
            vec![
                Entry::file("var/www/deps/composer/installed.json", installed),
                Entry::file("var/www/deps/fake/sdk/src/Fixture.php", format!("$t = '{lib}';\n")),
                Entry::file(
                    "var/www/wp-content/plugins/fake-plugin/config.php",
                    format!("$t = '{plugin}';\n"),
                ),
            ],
        ),
        Layer::new(
            "RUN go mod download",
            vec![Entry::file(
                "go/pkg/mod/github.com/fake/sdk@v1.2.3/internal/fixture.go",
                format!("const token = \"{gomod}\"\n"),
            )],
        ),
        Layer::new(
            "COPY . /var/www",
            vec![Entry::file("var/www/wp-config.php", format!("$t = '{mine}';\n"))],
        ),
    ]);
    assert_eq!(token_at(&json, "/var/www/deps/fake/sdk/src/Fixture.php", None), third_party());
    assert_eq!(
        token_at(&json, "/var/www/wp-content/plugins/fake-plugin/config.php", None),
        third_party()
    );
    assert_eq!(
        token_at(&json, "/go/pkg/mod/github.com/fake/sdk@v1.2.3/internal/fixture.go", None),
        third_party()
    );
    assert_eq!(token_at(&json, "/var/www/wp-config.php", None), own());
}
