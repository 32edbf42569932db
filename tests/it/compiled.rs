//! Credentials compiled into programs: a Go binary built by the Go toolchain keeps its string
//! literals back to back with no separator, and a class file written by javac puts a length
//! byte (often a letter or digit) right before each string. Rules that want a word boundary
//! around a token missed both; the tokens are found, with the exact secret, and a real
//! library full of glued capital words gives no finding.

use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// Fake tokens, format-valid: (name, token, fixed length).
fn tokens() -> Vec<(&'static str, String, bool)> {
    vec![
        ("GithubToken", ig::checksummed_token("ghp_", "FAKEC01Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd"), true),
        ("AwsKeyId", "AKIA2FAKE7QZXW4K2PQR".to_owned(), true),
        ("SlackBot", "xoxb-123456789012-1234567890123-FAKEq8Lm3Xv9Rt2Wp7Kc4Hs5".to_owned(), true),
        ("StripeLive", "sk_live_FAKE4eC39HqLyjWDarjtT1zdp7dc".to_owned(), false),
    ]
}

#[test]
fn tokens_compiled_into_go_and_java_programs_are_found() {
    let work = tmp();
    let dir = work.path();
    let mut go = String::from("package main\n\nvar (\n");
    let mut java = String::from("public class App {\n");
    for (name, token, _) in tokens() {
        go.push_str(&format!("\t{name} = \"{token}\"\n"));
        java.push_str(&format!("  static String {name} = \"{token}\";\n"));
    }
    let names: Vec<&str> = tokens().iter().map(|t| t.0).collect();
    go.push_str(&format!(")\n\nfunc main() {{\n\tprintln({})\n}}\n", names.join(", ")));
    java.push_str(&format!(
        "  public static void main(String[] a) {{ System.out.println({}); }}\n}}\n",
        names.join(" + ")
    ));
    std::fs::write(dir.join("main.go"), go).unwrap();
    std::fs::write(dir.join("go.mod"), "module leak\n\ngo 1.19\n").unwrap();
    std::fs::write(dir.join("App.java"), java).unwrap();
    let cache = dir.join("gocache");
    let go_env = [("GOCACHE", cache.as_path()), ("HOME", dir), ("GOPATH", cache.as_path())];
    if !ran("go", &["build", "-o", "server", "."], dir, &go_env)
        || !ran("javac", &["App.java"], dir, &[])
    {
        eprintln!(
            "skipping: the Go toolchain and javac are needed (tests/run.sh installs golang-go)"
        );
        return;
    }
    let mut files = vec![
        Entry::dir("app"),
        Entry::file("app/server", std::fs::read(dir.join("server")).unwrap()),
        Entry::file("app/App.class", std::fs::read(dir.join("App.class")).unwrap()),
    ];
    // Unicode character names glued into one table: capital words that fit `AKIA[A-Z2-7]{16}`.
    let words = Path::new("/usr/lib/x86_64-linux-gnu/libunistring.so.2");
    let library = std::fs::read(words).ok();
    if let Some(bytes) = &library {
        files.push(Entry::file("opt/lib/libunistring.so.2", bytes.clone()));
    }
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /", files)], ..ImageSpec::default() };
    let image = dir.join("image.tar");
    ig::write_image(&spec, Format::DockerLegacy, &image).unwrap();
    let (code, json, err) = scan_json(&image, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    let findings = json["findings"].as_array().unwrap();
    let in_file =
        |path: &str| -> Vec<&Value> { findings.iter().filter(|f| f["path"] == path).collect() };
    for path in ["/app/server", "/app/App.class"] {
        let found = in_file(path);
        for (name, token, fixed) in tokens() {
            let hit = found.iter().find(|f| f["secret"].as_str().unwrap().starts_with(&token));
            let hit = hit.unwrap_or_else(|| panic!("{path}: {name} not found: {found:#?}"));
            if fixed {
                assert_eq!(hit["secret"], token.as_str(), "{path}: {name} exactly");
            }
            assert_eq!(hit["status"], "present");
        }
    }
    if library.is_some() {
        assert_eq!(in_file("/opt/lib/libunistring.so.2"), Vec::<&Value>::new());
    } else {
        eprintln!("libunistring not on this machine: the glued-words check was not run");
    }
    // Without --show-secrets no output prints a token.
    let (_, plain, _) = parts(&run(&["scan", image.to_str().unwrap(), "--format", "json"]));
    for (name, token, _) in tokens() {
        assert!(!plain.contains(&token), "{name} printed");
    }
}
