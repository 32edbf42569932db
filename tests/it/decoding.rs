//! Encoded values (issue 12, item 3): base64 and base64url runs (two levels
//! deep), UTF-16 without a byte-order mark, URL-encoding and JSON/JS
//! escapes are decoded and scanned with every rule; each finding records
//! the decodings in `decoding`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::util::*;

fn fake_pat() -> String {
    ig::checksummed_token("ghp_", "FAKEdecodeTESTa1B2c3D4e5F6g7H8")
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn utf16be(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn scan_files(files: Vec<Entry>) -> Value {
    let dir = tmp();
    let path = out_path(dir.path(), Format::OciArchive, "dec");
    let spec = ImageSpec { layers: vec![Layer::new("COPY . /app", files)], ..ImageSpec::default() };
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    json
}

/// The one finding at `path`, with its decoding.
fn at(json: &Value, path: &str) -> Value {
    let found: Vec<&Value> =
        json["findings"].as_array().unwrap().iter().filter(|f| f["path"] == path).collect();
    assert_eq!(found.len(), 1, "{path}: {found:#?}");
    found[0].clone()
}

#[test]
fn base64_values_are_decoded_and_scanned_with_every_rule() {
    let token = fake_pat();
    let once = STANDARD.encode(format!("{token}\n"));
    let twice = STANDARD.encode(STANDARD.encode(format!("api_token: {token}")));
    // `~~~?` encodes to `fn5-Pw`: a character only base64url has.
    let url = URL_SAFE_NO_PAD.encode(format!("key={} ~~~?", canary(71)).as_bytes());
    assert!(url.contains('-'));
    let json = scan_files(vec![
        Entry::file(
            "app/chart/values.yaml",
            format!("replicas: 2\nsecrets:\n  githubToken: {once}\n"),
        ),
        Entry::file("app/ci/vars.env", format!("WRAPPED={twice}\n")),
        Entry::file("app/url.txt", format!("header\nx-blob: {url}?v=1\n")),
    ]);
    let f = at(&json, "/app/chart/values.yaml");
    assert_eq!(f["rule_id"], "github-pat-classic");
    assert_eq!(f["secret"], token.as_str());
    assert_eq!(f["decoding"], serde_json::json!(["base64"]));
    assert_eq!(f["line"], 3);
    assert_eq!(f["severity"], "critical");
    let f = at(&json, "/app/ci/vars.env");
    assert_eq!(f["secret"], token.as_str());
    assert_eq!(f["decoding"], serde_json::json!(["base64", "base64"]));
    let f = at(&json, "/app/url.txt");
    assert_eq!(f["rule_id"], "test-canary");
    assert_eq!(f["decoding"], serde_json::json!(["base64url"]));
    assert_eq!(f["line"], 2);
}

#[test]
fn utf16_without_bom_is_decoded() {
    let text = |n| format!("[settings]\r\nname = app\r\npassword_key = {}\r\n", canary(n));
    let b64_utf16 = STANDARD.encode(utf16le(&format!("token={}", canary(74))));
    let json = scan_files(vec![
        Entry::file("app/le.ini", utf16le(&text(72))),
        Entry::file("app/be.ini", utf16be(&text(73))),
        Entry::file("app/ps.txt", format!("$blob = '{b64_utf16}'\n")),
    ]);
    let f = at(&json, "/app/le.ini");
    assert_eq!(f["secret"], canary(72));
    assert_eq!(f["decoding"], serde_json::json!(["utf16le"]));
    assert_eq!(f["line"], 3);
    let f = at(&json, "/app/be.ini");
    assert_eq!(f["secret"], canary(73));
    assert_eq!(f["decoding"], serde_json::json!(["utf16be"]));
    let f = at(&json, "/app/ps.txt");
    assert_eq!(f["secret"], canary(74));
    assert_eq!(f["decoding"], serde_json::json!(["base64", "utf16le"]));
}

#[test]
fn url_and_json_escapes_are_decoded() {
    let token = fake_pat();
    let escaped = token.replace('_', "\\u005f");
    let json = scan_files(vec![
        Entry::file(
            "app/redirect.txt",
            format!("next=/login%3Ftoken%3D{}\n", canary(75).replace('_', "%5F")),
        ),
        Entry::file(
            "app/bundle.js",
            format!("var cfg={{\"gh\":\"{escaped}\",\"u\":\"https:\\/\\/x.test\\/\"}};\n"),
        ),
    ]);
    let f = at(&json, "/app/redirect.txt");
    assert_eq!(f["secret"], canary(75));
    assert_eq!(f["decoding"], serde_json::json!(["url"]));
    let f = at(&json, "/app/bundle.js");
    assert_eq!(f["rule_id"], "github-pat-classic");
    assert_eq!(f["secret"], token.as_str());
    assert_eq!(f["decoding"], serde_json::json!(["json-escape"]));
}

#[test]
fn plain_findings_have_no_decoding() {
    let json = scan_files(vec![canary_file("app/plain.conf", 76)]);
    let f = at(&json, "/app/plain.conf");
    assert!(f["decoding"].is_null(), "{f:#}");
}

#[test]
fn utf16_strings_inside_a_compiled_binary_are_decoded() {
    // gcc stores a `u"…"` literal as UTF-16LE in the executable's read-only data.
    let dir = tmp();
    let token = fake_pat();
    let src = dir.path().join("tool.c");
    std::fs::write(
        &src,
        format!(
            "#include <uchar.h>\nconst char16_t *config = u\"github_token={token}\";\n\
             int main(void) {{ return config[0] == 0; }}\n"
        ),
    )
    .unwrap();
    let exe = dir.path().join("tool");
    let gcc = std::process::Command::new("gcc")
        .args(["-std=c11", "-O0", "-o"])
        .arg(&exe)
        .arg(&src)
        .output();
    let Ok(gcc) = gcc else {
        eprintln!("gcc not installed: skipped");
        return;
    };
    assert!(gcc.status.success(), "{}", String::from_utf8_lossy(&gcc.stderr));
    let bin = std::fs::read(&exe).unwrap();
    assert!(
        bin.starts_with(b"\x7fELF") && !bin.windows(token.len()).any(|w| w == token.as_bytes())
    );
    let json = scan_files(vec![Entry::file("app/bin/tool", bin)]);
    let f = at(&json, "/app/bin/tool");
    assert_eq!(f["rule_id"], "github-pat-classic");
    assert_eq!(f["secret"], token.as_str());
    assert_eq!(f["decoding"], serde_json::json!(["utf16le"]));
}

#[test]
fn a_spent_decoding_budget_is_reported() {
    // More base64 runs than one file may decode (20,000): the encoded token after
    // them is not found, and a warning names the file and where decoding stopped.
    let filler = STANDARD.encode("just FAKE filler text, nothing here");
    let mut text = format!("{filler}\n").repeat(20_001);
    text.push_str(&format!("blob {}\n", STANDARD.encode(fake_pat())));
    text.push_str(&format!("plain: {}\n", fake_pat()));
    let json = scan_files(vec![Entry::file("app/data/blobs.txt", text)]);
    let f = at(&json, "/app/data/blobs.txt");
    assert_eq!(f["decoding"], Value::Null, "only the stored token");
    let diags = json["diagnostics"].as_array().unwrap();
    let spent: Vec<&Value> = diags
        .iter()
        .filter(|d| d["message"].as_str().unwrap().contains("decoding budget spent"))
        .collect();
    assert_eq!(spent.len(), 1, "{diags:#?}");
    assert_eq!(spent[0]["level"], "warning");
    let message = spent[0]["message"].as_str().unwrap();
    let stop = 20_000 * (filler.len() + 1);
    assert!(
        message.contains("/app/data/blobs.txt") && message.contains(&format!("byte {stop} ")),
        "{message}"
    );
}
