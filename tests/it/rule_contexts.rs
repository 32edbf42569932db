//! Contexts that make a value a credential where the value alone does not
//! say so (issue 13): a command's password flag given an identifier, a
//! provider named by the section or parent key above a key, HTTP
//! authentication without the `Authorization` header name beside it,
//! checksummed tokens glued to the bytes around them in a compiled file,
//! and the file-aware `/etc/shadow` finding winning over the bare pattern.
//!
//! Every image is made by the project's generator, every secret in a layer
//! that a later layer deletes; every value is fake (made for these tests,
//! `FAKE` in it where the format allows).

use serde_json::Value;

use crate::util::*;

/// Scans an image whose first layer adds `files` and whose second deletes them.
fn scan_deleted(files: &[(&str, Vec<u8>)]) -> Value {
    let spec = ImageSpec {
        layers: vec![
            Layer::new("COPY . /", files.iter().map(|(p, d)| Entry::file(p, d.clone())).collect()),
            Layer::new("RUN rm -rf /work", files.iter().map(|(p, _)| Entry::whiteout(p)).collect()),
        ],
        ..ImageSpec::default()
    };
    let dir = tmp();
    let path = out_path(dir.path(), Format::OciArchive, "img");
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert!(code == 0 || code == 1, "scan failed ({code}): {err}");
    json
}

fn findings(json: &Value) -> &Vec<Value> {
    json["findings"].as_array().unwrap()
}

/// The finding whose secret is `secret`, if any.
fn with_secret<'a>(json: &'a Value, secret: &str) -> Option<&'a Value> {
    findings(json).iter().find(|f| f["secret"] == secret)
}

fn expect(json: &Value, secret: &str, rule: &str, severity: &str) {
    let f = with_secret(json, secret)
        .unwrap_or_else(|| panic!("{secret} not found: {:#?}", findings(json)));
    assert_eq!(f["rule_id"], rule, "{f:#}");
    assert_eq!(f["severity"], severity, "{f:#}");
    assert_eq!(f["status"], "deleted", "{f:#}");
}

fn placeholders(json: &Value) -> u64 {
    json["summary"]["suppressed"]["placeholders"].as_u64().unwrap()
}

#[test]
fn command_line_passwords_that_are_identifiers_and_placeholders_set_aside() {
    let history = "\
psexec \\\\fake-build01 -u Administrator -p fake_build_admin cmd /c whoami
sshpass -p fake_deploy_user ssh deploy@10.0.4.17 uptime
mysql -u root -pfake_dev_root -e 'show databases'
mysqladmin -u root --password=Wq4kFAKEz9Lm status
htpasswd -b -c /etc/nginx/.htpasswd admin Fq8kTz2FAKEv
redis-cli -a fake_cache_owner ping
";
    let placeholders_only = "\
psexec \\\\fake-build01 -u Administrator -p %ADMIN_PASSWORD% cmd
sshpass -p $SSH_PASSWORD ssh deploy@10.0.4.17
mysql -u root -p<password> shop
redis-cli -a ${REDIS_PASS} ping
smbclient //fs01/drop -U svc%******** -c ls
psexec \\\\fake-build01 -u Administrator -p admin_password cmd
To run psexec as another account, give -u and then -p followed by the password.
";
    let clean = scan_deleted(&[("work/notes.txt", placeholders_only.into())]);
    assert!(findings(&clean).is_empty(), "{:#?}", findings(&clean));
    // Six placeholders set aside and counted, the prose line not even a candidate.
    assert_eq!(placeholders(&clean), 6, "{:#}", clean["summary"]);

    let json = scan_deleted(&[("work/.bash_history", history.into())]);
    expect(&json, "fake_build_admin", "cmdline-psexec-password", "high");
    expect(&json, "fake_deploy_user", "cmdline-sshpass-password", "high");
    expect(&json, "fake_dev_root", "cmdline-mysql-password", "high");
    expect(&json, "Wq4kFAKEz9Lm", "cmdline-mysql-password", "high");
    expect(&json, "Fq8kTz2FAKEv", "cmdline-htpasswd-batch-password", "high");
    expect(&json, "fake_cache_owner", "cmdline-sql-client-password", "high");
}

#[test]
fn a_section_or_parent_key_names_the_provider_of_the_keys_below() {
    let duo_skey = "FAKE4N48BnQ9Nxq1s7HJx7vkk80Em0f4RqqxyDDt";
    let dd_key = "4306a9f8317b3fee572daa20ecee7809";
    let ini = format!("[general]\nlog = info\n\n[duo]\nikey = DIFAKE\nsecret_key = {duo_skey}\n");
    let yaml = format!("monitoring:\n  datadog:\n    site: datadoghq.eu\n    api_key: {dd_key}\n");
    // The same values under names that are no provider's: no provider finding.
    let other = format!("[ldap]\nsecret_key = {duo_skey}\nagent:\n  api_key: {dd_key}\n");
    let json = scan_deleted(&[
        ("work/duo.ini", ini.into()),
        ("work/values.yaml", yaml.into()),
        ("work/other.ini", other.into()),
    ]);
    let at = |path: &str, secret: &str| {
        findings(&json).iter().find(|f| f["path"] == path && f["secret"] == secret).cloned()
    };
    let duo = at("/work/duo.ini", duo_skey).expect("duo key");
    assert_eq!(
        (duo["rule_id"].as_str(), duo["severity"].as_str()),
        (Some("duo-secret-key"), Some("high"))
    );
    assert_eq!(duo["line"], 6, "{duo:#}");
    let dd = at("/work/values.yaml", dd_key).expect("datadog key");
    assert_eq!(dd["rule_id"], "datadog-api-key", "{dd:#}");
    assert_eq!(dd["line"], 4, "{dd:#}");
    for secret in [duo_skey, dd_key] {
        if let Some(f) = at("/work/other.ini", secret) {
            let rule = f["rule_id"].as_str().unwrap();
            assert!(!rule.starts_with("duo") && !rule.starts_with("datadog"), "{f:#}");
        }
    }
}

#[test]
fn http_authentication_without_the_header_name() {
    // base64("fake_svc:Tq9zLm4Vx2Kp"); base64("foobarbazquxquux") is not a pair.
    let nginx = "location /api {\n  proxy_set_header X-Upstream-Auth \"Basic ZmFrZV9zdmM6VHE5ekxtNFZ4Mktw\";\n}\n\
                 # Basic authentication: Basic Zm9vYmFyYmF6cXV4cXV1eA==\n";
    let script = "import requests\n\
                  r = requests.get(URL, auth=(\"deploy\", \"Qz7FAKEw9xLm\"))\n\
                  h = {\"X-Client\": \"ci\"}\n\
                  curl = 'curl -H \"Bearer Ii2iYGPqjxTb82fVFAKEm5qvzuYAuWnQ2L77kI8iq\" https://api.internal.test'\n\
                  gh = \"token 8e3b1c77fc4c011f1bd38f1f34920fbd01f40072\"\n";
    let json =
        scan_deleted(&[("work/nginx.conf", nginx.into()), ("work/client.py", script.into())]);
    expect(&json, "ZmFrZV9zdmM6VHE5ekxtNFZ4Mktw", "http-basic-credentials", "medium");
    expect(&json, "Qz7FAKEw9xLm", "http-client-basic-auth-pair", "high");
    expect(&json, "Ii2iYGPqjxTb82fVFAKEm5qvzuYAuWnQ2L77kI8iq", "http-bearer-token-value", "medium");
    expect(&json, "8e3b1c77fc4c011f1bd38f1f34920fbd01f40072", "http-token-scheme-hex", "medium");
    assert!(with_secret(&json, "Zm9vYmFyYmF6cXV4cXV1eA==").is_none(), "{:#?}", findings(&json));
    assert!(with_secret(&json, "authentication").is_none(), "{:#?}", findings(&json));
}

/// `ghp_`/`npm_` + 30 random characters + base62(crc32) check digits.
fn checksummed(prefix: &str, random: &str) -> String {
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = crc32fast::hash(random.as_bytes());
    let mut check = [b'0'; 6];
    for d in check.iter_mut().rev() {
        *d = B62[(n % 62) as usize];
        n /= 62;
    }
    format!("{prefix}{random}{}", std::str::from_utf8(&check).unwrap())
}

#[test]
fn checksummed_tokens_glued_in_a_class_file_constant_pool() {
    let ghp = checksummed("ghp_", "FAKEclassPool7Qz2Lm9Vx4Kw8Rt3Y");
    let npm = checksummed("npm_", "FAKEgoStrTable5Hd8Jk2Np6Wq9Zc1");
    // The same shape with its last check digit changed: not a token.
    let mut bad = checksummed("ghp_", "FAKEbadCheck3Lm9Vx4Kw8Rt3YQz2P");
    let last = if bad.ends_with('A') { "B" } else { "A" };
    bad.replace_range(bad.len() - 1.., last);
    // A class file's constant pool: CONSTANT_Utf8 entries (tag 1, u16 length,
    // bytes) back to back; the token's entry runs straight into the next one's
    // text when a compiler concatenates constants.
    let mut class = vec![0xCA, 0xFE, 0xBA, 0xBE, 0x00, 0x00, 0x00, 0x41, 0x00, 0x1D];
    for text in [
        format!("{ghp}Ljava/lang/String;"),
        "java/lang/Object".to_owned(),
        format!("invalid token{npm}retry later"),
        format!("{bad}Ljava/lang/String;"),
    ] {
        class.push(1);
        class.extend_from_slice(&(text.len() as u16).to_be_bytes());
        class.extend_from_slice(text.as_bytes());
    }
    let json = scan_deleted(&[("work/app/Config.class", class)]);
    expect(&json, &ghp, "github-pat-classic", "critical");
    expect(&json, &npm, "npm-access-token", "critical");
    assert!(
        !findings(&json)
            .iter()
            .any(|f| f["secret"].as_str().is_some_and(|s| s.starts_with(&bad[..20]))),
        "a glued value failing its checksum is not reported: {:#?}",
        findings(&json)
    );
}

#[test]
fn the_shadow_file_detector_wins_over_the_bare_hash_pattern() {
    // crypt(3) SHA-512 of a fake password; the pattern rule (low) and the
    // /etc/shadow detector (medium) cover the same bytes.
    let hash = "$6$FAKEsalt01$Hrti0eUHef1JZ82nxjcByWH.X9AdIKK/93bLOqXZknwqMtOIYytqFWuSmVuF32xnKDVawG1ohVeQIZRkbVuOsp";
    let shadow = format!("root:*:19800:0:99999:7:::\napp:{hash}:19800:0:99999:7:::\n");
    let json = scan_deleted(&[("etc/shadow", shadow.into())]);
    let at_hash: Vec<&Value> = findings(&json).iter().filter(|f| f["secret"] == hash).collect();
    assert_eq!(at_hash.len(), 1, "one finding per hash: {at_hash:#?}");
    assert_eq!(at_hash[0]["rule_id"], "file-shadow-hash", "{:#}", at_hash[0]);
    assert_eq!(at_hash[0]["severity"], "medium", "{:#}", at_hash[0]);
}
