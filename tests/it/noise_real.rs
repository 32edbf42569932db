//! False alarms on real third-party trees, measured against peers
//! (docs/detection.md, "False alarms on a real image"): language runtimes
//! installed from their release tarballs, as the official images do, with no
//! package database to say the files are the runtime's; and source code whose
//! identifiers sit after a secret-named key; query strings whose next
//! parameter was read into a value. The content is the real toolchains' and
//! packages' own files: the Go tree of `go env GOROOT`, Ruby's standard
//! library and oauthlib from the Debian mirror (`apt-get download`,
//! `dpkg-deb -x`). A test whose tool or mirror is missing says so and skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

fn scan(files: Vec<Entry>) -> Value {
    let dir = tmp();
    let path = out_path(dir.path(), Format::DockerLegacy, "img");
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /", files)], ..ImageSpec::default() };
    ig::write_image(&spec, Format::DockerLegacy, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert!(code == 0 || code == 1, "scan failed ({code}): {err}");
    json
}

/// Findings whose path starts with `prefix`: (path, rule, severity, context).
fn under(json: &Value, prefix: &str) -> Vec<(String, String, String, Value)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().is_some_and(|p| p.starts_with(prefix)))
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["rule_id"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["context"].clone(),
            )
        })
        .collect()
}

/// Standard output of a command that succeeded, else None.
fn output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let o = Command::new(program).args(args).current_dir(dir).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

/// The `.go` files of one directory, as entries under `at`.
fn go_files(dir: &Path, at: &str) -> Vec<Entry> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "go"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            Entry::file(&format!("{at}/{name}"), std::fs::read(p).unwrap())
        })
        .collect()
}

#[test]
fn code_names_in_the_go_standard_library_are_not_secrets() {
    let work = tmp();
    let Some(root) = output("go", &["env", "GOROOT"], work.path()) else {
        eprintln!("skipping: the Go toolchain is needed (tests/run.sh installs golang-go)");
        return;
    };
    let x509 = Path::new(&root).join("src/crypto/x509");
    // `privKey.PrivateKey = MarshalPKCS1PrivateKey(k)`: a function's name after a
    // key named like a secret, which the entropy detector reported at medium.
    let pkcs8 = std::fs::read_to_string(x509.join("pkcs8.go")).unwrap();
    assert!(pkcs8.contains("PrivateKey = MarshalPKCS1PrivateKey("), "Go's pkcs8.go changed");
    // The official golang image's GOROOT, and a copy inside the application.
    let mut files = go_files(&x509, "usr/local/go/src/crypto/x509");
    files.extend(go_files(&x509, "app/internal/x509"));
    let json = scan(files);
    let loud: Vec<_> = under(&json, "/").into_iter().filter(|f| f.2 != "info").collect();
    assert!(loud.is_empty(), "findings above info in Go's own source: {loud:?}");
    // No path context helps the application's copy: the value itself is not a secret.
    assert!(under(&json, "/app/internal/x509/pkcs8.go").is_empty());
    // The test keys of the package are read, and capped as tests.
    let tests = under(&json, "/usr/local/go/src/crypto/x509/");
    assert!(tests.iter().all(|f| f.3 == "test"), "{tests:?}");
}

/// The newest Debian package whose name matches `pattern`, downloaded from
/// apt's mirror and unpacked into `dir/x`; None when the mirror or the tools
/// are missing.
fn debian_unpack(dir: &Path, pattern: &str) -> Option<PathBuf> {
    let found = output("apt-cache", &["search", "--names-only", pattern], dir)?;
    let package = found.lines().filter_map(|l| l.split_whitespace().next()).max()?.to_owned();
    output("apt-get", &["download", &package], dir)?;
    let deb = std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))?;
    output("dpkg-deb", &["-x", deb.to_str()?, "x"], dir)?;
    Some(dir.join("x"))
}

/// Ruby's standard library as Debian ships it: its version directory
/// (`usr/lib/ruby/3.1.0`).
fn debian_ruby_stdlib(dir: &Path) -> Option<PathBuf> {
    let lib = debian_unpack(dir, "^libruby[0-9.]+$")?.join("usr/lib/ruby");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(char::is_numeric))
        .collect();
    versions.sort();
    versions.pop()
}

#[test]
fn a_ruby_built_from_its_release_tarball_is_third_party() {
    let work = tmp();
    let Some(stdlib) = debian_ruby_stdlib(work.path()) else {
        eprintln!("skipping: needs apt's Debian mirror, apt-get and dpkg-deb");
        return;
    };
    let version = stdlib.file_name().unwrap().to_str().unwrap().to_owned();
    // `URI.parse("http://john:S3nsit1ve@my.example.com")`: the uri library's
    // documentation of `#password=`.
    let generic = std::fs::read(stdlib.join("uri/generic.rb")).unwrap();
    let files = vec![
        // The official ruby image: built from the tarball under /usr/local, no
        // package database lists the files.
        Entry::file(&format!("usr/local/lib/ruby/{version}/uri/generic.rb"), generic.clone()),
        // The same bytes as the application's own file keep their severity.
        Entry::file("app/lib/uri_generic.rb", generic),
    ];
    let json = scan(files);
    let own = under(&json, "/app/");
    assert!(own.iter().any(|f| f.2 != "info"), "Ruby's uri/generic.rb no longer noisy: {own:?}");
    let runtime = under(&json, "/usr/local/lib/ruby/");
    assert!(!runtime.is_empty());
    for f in &runtime {
        assert_eq!((f.2.as_str(), &f.3), ("info", &Value::from("third-party package")), "{f:?}");
    }
}

#[test]
fn a_value_in_a_query_string_ends_at_the_next_parameter() {
    let work = tmp();
    let Some(root) = debian_unpack(work.path(), "^python3-oauthlib$") else {
        eprintln!("skipping: needs apt's Debian mirror, apt-get and dpkg-deb");
        return;
    };
    let base = root.join("usr/lib/python3/dist-packages/oauthlib/oauth2/rfc6749/clients/base.py");
    let bytes = std::fs::read(&base).unwrap();
    // oauthlib's docstring of a revocation request body.
    let line = "token=45ghiukldjahdnhzdauz&token_type_hint=refresh_token";
    assert!(String::from_utf8_lossy(&bytes).contains(line), "oauthlib's base.py changed");
    let json = scan(vec![Entry::file("app/lib/oauth_base.py", bytes)]);
    let secrets: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "generic-high-entropy-assignment")
        .filter_map(|f| f["secret"].as_str())
        .collect();
    assert!(secrets.contains(&"45ghiukldjahdnhzdauz"), "{secrets:?}");
    assert!(secrets.iter().all(|s| !s.contains("&token_type_hint")), "{secrets:?}");
}
