//! Credential files the second red team found missed (session 11,
//! docs/detection.md "Red team, round 2"): an AWS key on a
//! `credential_process` command line, OCI's `pass_phrase`, a conda channel
//! token (in `.condarc`, removed by a later step, and in `ENV`), OpenVPN's
//! `auth-user-pass` file, the Snyk CLI's configstore, libpam-ldap's
//! `ldap.secret`, Jenkins' initial admin password, a gpg-agent key file
//! written by gpg itself for a key made without a passphrase, Tomcat's
//! `keystorePass` and a Consul agent's ACL tokens; and from the third wave,
//! a Slack token in a class compiled by javac inside a jar (the constant
//! pool glues it to its length byte), secrets set as name/value pairs (a
//! Kubernetes container's `env`, an ECS task definition, ARM parameters),
//! an Erlang cookie, Sentinel's `auth-pass`, PPP and ZeroTier secrets, a
//! Compose password of letters and `-`/`_` only. The image is built by the
//! Docker legacy builder on a private dockerd. Each must be reported by its
//! rule at the rule's severity, in the right layer, with the right status;
//! the near misses beside them (a passphrase-protected gpg key, an OpenVPN
//! config, a forum URL with `/t/`) must not be; and no output without
//! --show-secrets may print a secret.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::engines::{Dockerd, busybox_rootfs, check, messages, need};
use crate::util::*;

const AWS_SECRET: &str = "Tq8vLm3Zx7Kw9Rt2Wp7Kc4Hs5Jd6Nb1Vg0Yf3Xe8";
const OCI_PASS_PHRASE: &str = "Vt3kQ!wz8Rm2Lp";
const CONDA_TOKEN: &str = "gb-3f9a6c2e-8b1d-4e7f-a5c3-9d2b7e1f0a84";
const CONDA_ENV_TOKEN: &str = "Rk4Vx9Qm2zLpTq8vLm3Zx7Kw";
const OPENVPN_PASSWORD: &str = "Qm4vTz8Lk2Wx!";
const SNYK_TOKEN: &str = "7c1e9a52-4b3d-4f86-9e20-b5d8a6c3f174";
const LDAP_SECRET: &str = "Zq7vLm2Rk9Tx#";
const JENKINS_INITIAL: &str = "9b1f0c7e4d2a48e6b3c5a7f1d0e2c4b6";
const KEYSTORE_PASS: &str = "Kp7#wQz2Lm9v";
const CONSUL_TOKEN: &str = "85c2d9e4-1f7a-4b3c-9d6e-2a8f5c1b7e40";
/// 56 bytes: in the class file its length byte is `8`, glued to `xoxb-`.
const SLACK_BOT: &str = "xoxb-703627771243-6798176131173-ZMr3MCqA2StqdgmoQHvpAfj7";
const K8S_ENV_PASSWORD: &str = "Hv7!pQx2Lm9zRt";
const ECS_TOKEN: &str = "Wm3kTq8vLz2Xp7Rn4Jb6Hs1Fy9Kc5Qd0Vg8Yt2Ne";
const ARM_PASSWORD: &str = "Tz4#kLq9Wm2vXp";
const ERLANG_COOKIE: &str = "QWERTYZXCVBNMASDFGHJ";
const SENTINEL_PASSWORD: &str = "Jc5!rVx8Nq3wLb";
const CHAP_SECRET: &str = "Pk2#vHz7Qm4xTr";
/// Letters and `-`/`_` only, as `secrets.token_urlsafe()` sometimes gives.
const URLSAFE_PASSWORD: &str = "qRtXw_VbNkPz-HmLcJ";
const ZEROTIER_PRIVATE: &str = "9c1e5a7f3b2d8e4c6a0f1b3d5e7c9a2b4d6f8e0c1a3b5d7f9e2c4a6b8d0f1e3c5a7b9d2f4e6c8a0b1d3f5e7a9c2b4d6f8e0a1c3e5b7d9f2a4c6e8b0d1f3a5c7e9b";

/// (rule, path, secret, layer, status); layer 1 is the `COPY`, layer 2 the
/// `RUN` that removes `.condarc`.
const EXPECTED: &[(&str, &str, &str, u64, &str)] = &[
    ("aws-secret-access-key-cli-flag", "/root/.aws/config", AWS_SECRET, 1, "present"),
    ("generic-password-unquoted", "/root/.oci/config", OCI_PASS_PHRASE, 1, "present"),
    ("conda-channel-token", "/opt/conda/.condarc", CONDA_TOKEN, 1, "deleted"),
    ("file-openvpn-auth-user-pass", "/etc/openvpn/client/auth.txt", OPENVPN_PASSWORD, 1, "present"),
    (
        "file-snyk-configstore-token",
        "/root/.config/configstore/snyk.json",
        SNYK_TOKEN,
        1,
        "present",
    ),
    ("file-ldap-bind-password", "/etc/ldap.secret", LDAP_SECRET, 1, "present"),
    (
        "file-jenkins-initial-admin-password",
        "/var/jenkins_home/secrets/initialAdminPassword",
        JENKINS_INITIAL,
        1,
        "present",
    ),
    (
        "xml-password-attribute-camel-case",
        "/usr/local/tomcat/conf/server.xml",
        KEYSTORE_PASS,
        1,
        "present",
    ),
    ("consul-acl-config-token", "/etc/consul.d/consul.hcl", CONSUL_TOKEN, 1, "present"),
    ("generic-secret-env-list-yaml", "/deploy/k8s/api.yaml", K8S_ENV_PASSWORD, 1, "present"),
    ("generic-secret-name-value-json", "/deploy/ecs/taskdef.json", ECS_TOKEN, 1, "present"),
    (
        "generic-secret-value-object-json",
        "/deploy/arm/azuredeploy.parameters.json",
        ARM_PASSWORD,
        1,
        "present",
    ),
    ("file-erlang-cookie", "/var/lib/rabbitmq/.erlang.cookie", ERLANG_COOKIE, 1, "present"),
    ("generic-password-unquoted", "/srv/docker-compose.yml", URLSAFE_PASSWORD, 1, "present"),
    ("redis-sentinel-auth-pass", "/etc/redis/sentinel.conf", SENTINEL_PASSWORD, 1, "present"),
    ("file-ppp-secret", "/etc/ppp/chap-secrets", CHAP_SECRET, 1, "present"),
    (
        "file-zerotier-identity-secret",
        "/var/lib/zerotier-one/identity.secret",
        ZEROTIER_PRIVATE,
        1,
        "present",
    ),
];

/// A jar holding one class, compiled by javac, with a Slack token constant
/// and a password a method returns.
fn jar(dir: &Path) -> Vec<u8> {
    let src = dir.join("java");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("Config.java"),
        format!(
            "package com.corp;\npublic class Config {{\n  public static final String SLACK = \
             \"{SLACK_BOT}\";\n  public static String name() {{ return \"api\"; }}\n}}\n"
        ),
    )
    .unwrap();
    let o = Command::new(need("javac")).arg("-d").arg(&src).arg(src.join("Config.java")).output();
    check(o.unwrap(), "javac");
    let class = std::fs::read(src.join("com/corp/Config.class")).unwrap();
    // The raw class file has the token right after its length byte.
    let glued = format!("8{SLACK_BOT}");
    assert!(class.windows(glued.len()).any(|w| w == glued.as_bytes()), "javac's layout changed");
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file("com/corp/Config.class", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut zip, &class).unwrap();
    zip.finish().unwrap();
    out.into_inner()
}

/// A gpg home with two ed25519 keys made by gpg itself: one without a
/// passphrase (its agent stores `(private-key …)` in clear) and one with
/// (`(protected-private-key …)`). Returns the key files, clear one first.
fn gpg_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gen_key = |uid: &str, passphrase: &str| {
        let o = Command::new(need("gpg"))
            .arg("--homedir")
            .arg(&home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase])
            .args(["--quick-gen-key", uid, "ed25519", "sign", "never"])
            .output()
            .unwrap();
        check(o, "gpg --quick-gen-key");
    };
    gen_key("Release Signer <release@corp.test>", "");
    gen_key("Protected Signer <protected@corp.test>", "Wv8#kLq2Zt5m");
    let _ = Command::new("gpgconf").arg("--homedir").arg(&home).args(["--kill", "all"]).output();
    let mut clear = None;
    let mut protected = None;
    for entry in std::fs::read_dir(home.join("private-keys-v1.d")).unwrap() {
        let path = entry.unwrap().path();
        // A protected key's file holds the ciphertext as raw bytes: not UTF-8 text.
        let bytes = std::fs::read(&path).unwrap();
        let has = |word: &[u8]| bytes.windows(word.len()).any(|w| w == word);
        if has(b"Key: (private-key") {
            clear = Some(path);
        } else if has(b"(protected-private-key") {
            protected = Some(path);
        }
    }
    (clear.expect("an unprotected key file"), protected.expect("a protected key file"))
}

/// The `d` scalar of a gpg-agent key file, as the file writes it.
fn secret_scalar(key_file: &Path) -> String {
    let text = std::fs::read_to_string(key_file).unwrap();
    let start = text.find("(d #").expect("a d scalar") + 4;
    let len = text[start..].find('#').unwrap();
    text[start..start + len].to_owned()
}

/// The build context: the image's tree under `fs/` (one `COPY`) and the Dockerfile.
fn context(dir: &Path, gpg_clear: &Path, gpg_protected: &Path) -> PathBuf {
    let ctx = dir.join("ctx");
    let put = |name: &str, text: &str| {
        let p = ctx.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put(
        "fs/root/.aws/config",
        &format!(
            "[default]\nregion = eu-west-1\n\n[profile ci]\ncredential_process = \
             /usr/local/bin/static-creds --access-key-id AKIAQ3EGRTZ7LMNB5K2D \
             --secret-access-key {AWS_SECRET} --region eu-west-1\n"
        ),
    );
    put(
        "fs/root/.oci/config",
        &format!(
            "[DEFAULT]\nuser=ocid1.user.oc1..aaaaaaaatest\nkey_file=~/.oci/oci_api_key.pem\n\
             pass_phrase={OCI_PASS_PHRASE}\nregion=eu-frankfurt-1\n"
        ),
    );
    put(
        "fs/opt/conda/.condarc",
        &format!(
            "channels:\n  - https://conda.anaconda.org/t/{CONDA_TOKEN}/corp\n  - conda-forge\n"
        ),
    );
    put("fs/etc/openvpn/client/auth.txt", &format!("vpnuser\n{OPENVPN_PASSWORD}\n"));
    // The config that names it: not itself a credential file.
    put(
        "fs/etc/openvpn/client/client.conf",
        "client\nremote vpn.corp.test 1194\nauth-user-pass /etc/openvpn/client/auth.txt\n",
    );
    put("fs/root/.config/configstore/snyk.json", &format!("{{\n\t\"api\": \"{SNYK_TOKEN}\"\n}}"));
    put("fs/etc/ldap.secret", &format!("{LDAP_SECRET}\n"));
    put("fs/var/jenkins_home/secrets/initialAdminPassword", &format!("{JENKINS_INITIAL}\n"));
    put(
        "fs/usr/local/tomcat/conf/server.xml",
        &format!(
            "<Server port=\"8005\" shutdown=\"SHUTDOWN\">\n  <Service name=\"Catalina\">\n    \
             <Connector port=\"8443\" SSLEnabled=\"true\" keystoreFile=\"conf/keystore.jks\" \
             keystorePass=\"{KEYSTORE_PASS}\" />\n  </Service>\n</Server>\n"
        ),
    );
    put(
        "fs/etc/consul.d/consul.hcl",
        &format!(
            "datacenter = \"dc1\"\nacl {{\n  enabled = true\n  tokens {{\n    \
             initial_management = \"{CONSUL_TOKEN}\"\n  }}\n}}\n"
        ),
    );
    put(
        "fs/deploy/k8s/api.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      \
             containers:\n      - name: api\n        env:\n        - name: DB_HOST\n          \
             value: db\n        - name: DB_PASSWORD\n          value: \"{K8S_ENV_PASSWORD}\"\n"
        ),
    );
    // The same variable from a Secret: a reference, nothing to report.
    put(
        "fs/deploy/k8s/ref.yaml",
        "      containers:\n      - name: api\n        env:\n        - name: DB_PASSWORD\n          \
         valueFrom:\n            secretKeyRef:\n              name: db\n              key: password\n",
    );
    put(
        "fs/deploy/ecs/taskdef.json",
        &format!(
            "{{\"family\": \"api\", \"containerDefinitions\": [{{\"name\": \"api\", \"environment\": \
             [{{\"name\": \"LOG_LEVEL\", \"value\": \"info\"}}, {{\"name\": \"PAYMENT_API_TOKEN\", \
             \"value\": \"{ECS_TOKEN}\"}}]}}]}}\n"
        ),
    );
    put(
        "fs/deploy/arm/azuredeploy.parameters.json",
        &format!(
            "{{\n  \"parameters\": {{\n    \"adminUsername\": {{\"value\": \"azureuser\"}},\n    \
             \"adminPassword\": {{\"value\": \"{ARM_PASSWORD}\"}}\n  }}\n}}\n"
        ),
    );
    put("fs/var/lib/rabbitmq/.erlang.cookie", ERLANG_COOKIE);
    put(
        "fs/srv/docker-compose.yml",
        &format!(
            "services:\n  db:\n    image: postgres:16\n    environment:\n      \
             POSTGRES_PASSWORD: {URLSAFE_PASSWORD}\n"
        ),
    );
    put(
        "fs/etc/redis/sentinel.conf",
        &format!(
            "port 26379\nsentinel monitor mymaster 10.0.0.5 6379 2\n\
             sentinel auth-pass mymaster {SENTINEL_PASSWORD}\n"
        ),
    );
    put(
        "fs/etc/ppp/chap-secrets",
        &format!("# client server secret IP\nvpnuser * {CHAP_SECRET} *\n"),
    );
    put(
        "fs/var/lib/zerotier-one/identity.secret",
        &format!("a1b2c3d4e5:0:{}:{ZEROTIER_PRIVATE}", "4f".repeat(64)),
    );
    let jar_path = ctx.join("fs/app/lib/config.jar");
    std::fs::create_dir_all(jar_path.parent().unwrap()).unwrap();
    std::fs::write(&jar_path, jar(dir)).unwrap();
    // A forum link has /t/ in its path too.
    put(
        "fs/usr/share/doc/app/links.txt",
        "See https://discuss.corp.test/t/conda-setup-notes/4211/\n",
    );
    let keys = ctx.join("fs/root/.gnupg/private-keys-v1.d");
    std::fs::create_dir_all(&keys).unwrap();
    for key in [gpg_clear, gpg_protected] {
        std::fs::copy(key, keys.join(key.file_name().unwrap())).unwrap();
    }
    put(
        "Dockerfile",
        &format!(
            "FROM base:1\n\
             COPY fs/ /\n\
             RUN rm /opt/conda/.condarc\n\
             ENV CONDA_CHANNEL=https://repo.corp.test/api/repo/t/{CONDA_ENV_TOKEN}/internal\n"
        ),
    );
    ctx
}

#[test]
fn credential_files_round_2_real_dockerfile() {
    let work = tmp();
    let base = busybox_rootfs(work.path());
    let (gpg_clear, gpg_protected) = gpg_keys(work.path());
    let gpg_secret = secret_scalar(&gpg_clear);
    let gpg_path = format!(
        "/root/.gnupg/private-keys-v1.d/{}",
        gpg_clear.file_name().unwrap().to_str().unwrap()
    );
    let gpg_protected_path = format!(
        "/root/.gnupg/private-keys-v1.d/{}",
        gpg_protected.file_name().unwrap().to_str().unwrap()
    );
    let ctx = context(work.path(), &gpg_clear, &gpg_protected);
    let archive = work.path().join("files2.tar");
    Dockerd::start().import_build_save(&base, &ctx, "files2:1", &archive);

    let (code, json, err) = scan_json(&archive, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    assert!(messages(&json, "error").is_empty(), "{json:#}");
    let findings = json["findings"].as_array().unwrap();
    let listed = || finding_lines(findings);
    let gpg =
        ("gnupg-unprotected-secret-key-file", gpg_path.as_str(), gpg_secret.as_str(), 1, "present");
    for (rule, path, secret, layer, status) in EXPECTED.iter().copied().chain([gpg]) {
        let f = findings
            .iter()
            .find(|f| f["rule_id"] == rule && f["path"] == path && f["secret"] == secret)
            .unwrap_or_else(|| panic!("no {rule} at {path}; found:\n{}", listed().join("\n")));
        assert_eq!((&f["layer_index"], &f["status"]), (&layer.into(), &status.into()), "{f:#}");
        assert_eq!(f["severity"], f["rule_severity"], "{f:#}");
        assert!(f["context"].is_null(), "{f:#}");
    }
    // The class in the jar is read as its strings: the token stands alone.
    let slack = findings
        .iter()
        .find(|f| f["rule_id"] == "slack-bot-token" && f["secret"] == SLACK_BOT)
        .unwrap_or_else(|| panic!("no slack token in the jar; found:\n{}", listed().join("\n")));
    assert_eq!(
        (&slack["path"], &slack["inner_path"], &slack["layer_index"], &slack["status"]),
        (
            &"/app/lib/config.jar".into(),
            &"com/corp/Config.class".into(),
            &1.into(),
            &"present".into()
        ),
        "{slack:#}"
    );
    // The token in ENV ships in the config, seen by anyone who pulls.
    let env = findings
        .iter()
        .find(|f| f["rule_id"] == "conda-channel-token" && f["secret"] == CONDA_ENV_TOKEN)
        .unwrap_or_else(|| panic!("no conda token in ENV; found:\n{}", listed().join("\n")));
    assert_eq!((&env["status"], &env["location"]), (&"config".into(), &"config.env".into()));
    // Near misses: nothing reported for them.
    for quiet in [
        gpg_protected_path.as_str(),
        "/etc/openvpn/client/client.conf",
        "/usr/share/doc/app/links.txt",
        "/deploy/k8s/ref.yaml",
    ] {
        assert!(!findings.iter().any(|f| f["path"] == quiet), "{quiet}: {}", listed().join("\n"));
    }

    // Without --show-secrets no output prints a secret.
    let a = archive.to_str().unwrap();
    for format in ["human", "json", "sarif"] {
        let (_, out, err) = parts(&run(&["scan", "--format", format, a]));
        let all =
            EXPECTED.iter().map(|e| e.2).chain([CONDA_ENV_TOKEN, SLACK_BOT, gpg_secret.as_str()]);
        for secret in all {
            assert!(!out.contains(secret) && !err.contains(secret), "{format} prints {secret}");
        }
    }
}
