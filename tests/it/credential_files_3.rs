//! Credentials the third red team found missed (session 12,
//! docs/detection.md "Red team, round 3"): JSON Web Keys with their private
//! part, a BIP-39 phrase, Jetty's `OBF:` passwords, systemd's
//! `SetCredential=`, Go MySQL DSNs, fallbacks of environment reads in code,
//! `jwt.sign` literals, `login()`/`getConnection()` literals, `user`/`pass`
//! pairs, Fluent Bit/Fluentd and Beats settings, Hibernate XML properties,
//! nginx proxy headers and `{PLAIN}` htpasswd lines, containerd's registry
//! `auth`, phpMyAdmin's and Moodle's PHP passwords, Keycloak import
//! credentials, a DER private key made by openssl, a Terraform
//! `random_password`, `NEO4J_AUTH`, and passwords on the command lines of a
//! `RUN` (`-Dgpg.passphrase=`, `openssl passwd`, `ssh-keygen -N`, `unzip -P`,
//! `rabbitmqctl add_user`, `mc alias set`, `lftp -u`, `influx setup -p`,
//! `aws configure set`), an Opsgenie key in a compact YAML sequence, a Google
//! app password, Magento's crypt key, a password column of a SQLite table,
//! a `less` search history line, a Composer `bearer` token and a password in
//! a Jupyter notebook cell. The image is built by the Docker legacy builder on a
//! private dockerd. Each must be reported by its rule at the rule's
//! severity, in the right layer, with the right status; the near misses
//! beside them (a public JWK, an encrypted DER key, a DER certificate,
//! `SetCredentialEncrypted=`, a forwarded `Authorization` header) must not
//! be; and no output without --show-secrets may print a secret.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::engines::{Dockerd, busybox_rootfs, check, messages, need};
use crate::util::*;

const EC_X: &str = "lxtDywi0F-rKNx8lfcmnhjGko64H_NnBRkqx0bBZKSk";
const EC_Y: &str = "IYDR9V2Ww_6_PlJj2Lz3YysVDTtHAMnE4E1s4J2xMjI";
const EC_D: &str = "n2O1eMZpX1r9qdCm9sqXTIEJ5bTXckUQR3gfb2eNe1U";
const OKP_D: &str = "CHwfQ2odS2J9sGdxvgu_iNBggWQM8a91KvF4wmGfLc4";
const OKP_X: &str = "2Os03sY_mYX_bSAoOff2zrdb28APhPzI0uThm3t3r3o";
const OCT_K: &str = "6v1ScFLGyumxNJNWIRly8x16QWr_RXlmZqtzwswI1bg";
const MNEMONIC: &str =
    "ladder river pencil gauge orbit velvet margin hockey drift tunnel spirit casual";
/// `Zr7!kWq2Lm8v` as Jetty's `Password.obfuscate` writes it (after `OBF:`).
const JETTY_OBF: &str = "1u8z1mt51ljd1aok1k8o1so51spl1k5i1aqy1lmd1mpx1uaj";
const SET_CREDENTIAL: &str = "zmpflo+Miy8qW";
const GO_DSN_PASSWORD: &str = "Kf+3nRjvD3lQ2";
const JS_FALLBACK: &str = "i*86nw4kDMdVT";
const RUBY_FALLBACK: &str = "m!5tja5vNizyH";
const JWT_SECRET: &str = "MLwjiBceIu9RJs1xlJvS9XSgUJscQ6vBmOkclOfE";
const SMTP_LOGIN: &str = "l5!MAAj8ghshl";
const JDBC_PASSWORD: &str = "80zvd*Za1Lvny";
const GHOST_PASS: &str = "tUPS!2o5uP3Ug";
const DBT_PASS: &str = "4+Y5EI4iBsAq7";
const FLUENT_BIT: &str = "9OksmQSY5Q28*";
const FLUENTD_KEY: &str = "zB3IIyxLP17yqg6nXwieqRg6";
const CLOUD_AUTH: &str = "R8qVZ8YkGn+7C";
const HIBERNATE: &str = "9JL8*TtxAKOd5";
const NGINX_API_KEY: &str = "iQ41isSQYX28bJGIqjpAHJiqtBVyf19w";
/// base64 of `puller:Hx4*qVz7Nk2w`.
const CONTAINERD_AUTH: &str = "cHVsbGVyOkh4NCpxVno3Tmsydw==";
const PMA_PASSWORD: &str = "rxqATKlJ8+Dn9";
const MOODLE_PASSWORD: &str = "KFr+vY2RePaUI";
const KEYCLOAK_PASSWORD: &str = "X*SG1kdsJCoW5";
const TF_RANDOM: &str = "f9P0SwXJIV3l+Wq2";
const HTPASSWD_PLAIN: &str = "dv85N+kXvMWN9";
const NEO4J_PASSWORD: &str = "Y3Yp!K4YfCUM4";
const ENV_DSN_PASSWORD: &str = "asZ!s8shB2F4J";
const OPSGENIE_KEY: &str = "e09de9e6-2186-4822-ae39-7fab1e1466e8";
const GMAIL_APP_PASSWORD: &str = "hixl pweu hmpc oxqa";
const MAGENTO_KEY: &str = "0666c7da4df3e1320b9f9cb989784d62";
const SQLITE_PASSWORD: &str = "Jm3!xRq8Vt5w";
const LESS_SEARCH: &str = "6iKwQpkOG51C-Z";
const COMPOSER_BEARER: &str = "c3e8a1f94b7d20e6a5c1f8b3d9e7a2046b1c5d8e";
const NOTEBOOK_PASSWORD: &str = "Wv5*qTk2Lz8m";

/// (rule, path, secret, status) of the files in the `COPY` (layer 1); the
/// `RUN` after it (layer 2) removes the JWKS.
const FILES: &[(&str, &str, &str, &str)] = &[
    ("jwk-private-key", "/app/keys/jwks.json", EC_D, "deleted"),
    ("jwk-private-key-d-first", "/etc/oidc/key.json", OKP_D, "present"),
    ("jwk-symmetric-key", "/app/keys/hmac.jwk", OCT_K, "present"),
    ("bip39-mnemonic-assignment", "/app/contracts/hardhat.env", MNEMONIC, "present"),
    ("jetty-obfuscated-password", "/opt/jetty/etc/realm.properties", JETTY_OBF, "present"),
    ("systemd-set-credential", "/etc/systemd/system/app.service", SET_CREDENTIAL, "present"),
    ("go-mysql-dsn-password", "/src/app/main.go", GO_DSN_PASSWORD, "present"),
    ("code-env-default-credential", "/app/src/db.js", JS_FALLBACK, "present"),
    ("code-env-default-credential", "/app/config/initializers/redis.rb", RUBY_FALLBACK, "present"),
    ("jwt-library-literal-secret", "/app/src/auth.js", JWT_SECRET, "present"),
    ("login-call-literal-password", "/app/mailer.py", SMTP_LOGIN, "present"),
    (
        "jdbc-getconnection-literal-password",
        "/src/main/java/corp/Db.java",
        JDBC_PASSWORD,
        "present",
    ),
    ("user-pass-pair", "/var/lib/ghost/config.production.json", GHOST_PASS, "present"),
    ("user-pass-pair", "/app/dbt/profiles.yml", DBT_PASS, "present"),
    ("whitespace-config-password", "/etc/fluent-bit/fluent-bit.conf", FLUENT_BIT, "present"),
    ("whitespace-config-password", "/etc/td-agent/td-agent.conf", FLUENTD_KEY, "present"),
    ("elastic-cloud-auth", "/etc/metricbeat/metricbeat.yml", CLOUD_AUTH, "present"),
    ("xml-property-password", "/app/hibernate.cfg.xml", HIBERNATE, "present"),
    ("nginx-proxy-header-credential", "/etc/nginx/conf.d/api.conf", NGINX_API_KEY, "present"),
    ("containerd-registry-auth", "/etc/containerd/config.toml", CONTAINERD_AUTH, "present"),
    ("generic-password-assignment", "/var/www/pma/config.inc.php", PMA_PASSWORD, "present"),
    ("generic-password-assignment", "/var/www/moodle/config.php", MOODLE_PASSWORD, "present"),
    (
        "generic-secret-name-value-json",
        "/opt/keycloak/import/users.json",
        KEYCLOAK_PASSWORD,
        "present",
    ),
    ("file-terraform-state-secret", "/infra/terraform.tfstate.backup", TF_RANDOM, "present"),
    ("file-htpasswd-plain-password", "/etc/nginx/.htpasswd", HTPASSWD_PLAIN, "present"),
    ("opsgenie-api-key", "/etc/alertmanager/alertmanager.yml", OPSGENIE_KEY, "present"),
    ("google-app-password", "/app/notify.py", GMAIL_APP_PASSWORD, "present"),
    ("magento-crypt-key", "/var/www/magento/app/etc/env.php", MAGENTO_KEY, "present"),
    ("generic-password-assignment", "/var/lib/app/app.db", SQLITE_PASSWORD, "present"),
    ("generic-password-unquoted", "/root/.lesshst", LESS_SEARCH, "present"),
    ("composer-auth-bearer", "/var/www/auth.json", COMPOSER_BEARER, "present"),
    ("generic-password-json-escaped", "/notebooks/etl.ipynb", NOTEBOOK_PASSWORD, "present"),
];

/// (rule, password) on the `RUN`'s command line: in the image history.
const COMMANDS: &[(&str, &str)] = &[
    ("cmdline-property-password-flag", "Y9tQ!vLm3Kz8"),
    ("cmdline-openssl-passwd-plaintext", "8!t9i1mlK65Ob"),
    ("cmdline-ssh-keygen-passphrase", "vNx6kGoi9fB+E"),
    ("cmdline-zip-password", "k!5ZGH3PI6eR2"),
    ("cmdline-rabbitmqctl-password", "dBbu6cYmg!78O"),
    ("cmdline-minio-client-secret", "4tpXGciDZYe7wJ9i9P7wXVIcea1nUV7aCmPHWDFO"),
    ("cmdline-lftp-password", "HCq97d!ymj8St"),
    ("cmdline-influx-password", "XNbvlqbn!2Weo"),
    ("aws-configure-set-secret-key", "TanUcMojOBl4i36ZJDs1MbX1U0ctdOcRpKz2x8WF"),
];

fn run_line() -> String {
    let pw = |rule: &str| COMMANDS.iter().find(|c| c.0 == rule).unwrap().1;
    [
        format!("mvn -B deploy -Dgpg.passphrase={}", pw("cmdline-property-password-flag")),
        format!(
            "useradd -m -p $(openssl passwd -6 '{}') deploy",
            pw("cmdline-openssl-passwd-plaintext")
        ),
        format!("ssh-keygen -t ed25519 -N '{}' -f /tmp/k", pw("cmdline-ssh-keygen-passphrase")),
        format!("unzip -P {} /tmp/s.zip -d /app", pw("cmdline-zip-password")),
        format!("rabbitmqctl add_user admin {}", pw("cmdline-rabbitmqctl-password")),
        format!(
            "mc alias set corp https://minio.corp.test minioadmin {}",
            pw("cmdline-minio-client-secret")
        ),
        format!("lftp -u deploy,{} sftp://files.corp.test", pw("cmdline-lftp-password")),
        format!("influx setup -u admin -p {} -o corp -b m -f", pw("cmdline-influx-password")),
        format!(
            "aws configure set aws_secret_access_key {} --profile ci",
            pw("aws-configure-set-secret-key")
        ),
        // The tools are not in the busybox base: each fails, the step goes on.
    ]
    .iter()
    .map(|c| format!("{c} || true"))
    .collect::<Vec<_>>()
    .join(" ; ")
}

/// A DER private key, the same key encrypted, and a DER certificate, by openssl.
fn der_files(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let openssl = need("openssl");
    let path = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let o = Command::new(&openssl).args(args).current_dir(dir).output().unwrap();
        check(o, &format!("openssl {}", args[0]));
    };
    run(&["genpkey", "-algorithm", "ed25519", "-out", "key.pem"]);
    run(&["pkey", "-in", "key.pem", "-outform", "DER", "-out", "key.der"]);
    run(&["pkcs8", "-topk8", "-in", "key.pem", "-outform", "DER", "-v2", "aes-256-cbc"]
        .iter()
        .copied()
        .chain(["-passout", "pass:Qv7mLz2Kx9", "-out", "enc.der"])
        .collect::<Vec<_>>());
    run(&["req", "-x509", "-new", "-key", "key.pem", "-subj", "/CN=app.corp.test"]
        .iter()
        .copied()
        .chain(["-days", "2", "-outform", "DER", "-out", "cert.der"])
        .collect::<Vec<_>>());
    let read = |n: &str| std::fs::read(path(n)).unwrap();
    (read("key.der"), read("enc.der"), read("cert.der"))
}

/// The build context: the image's tree under `fs/` (one `COPY`) and the Dockerfile.
fn context(dir: &Path) -> PathBuf {
    let ctx = dir.join("ctx");
    let put = |name: &str, bytes: &[u8]| {
        let p = ctx.join("fs").join(name.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    let text = |name: &str, t: String| put(name, t.as_bytes());
    text(
        "/app/keys/jwks.json",
        format!(
            r#"{{"keys": [{{"kty": "EC", "crv": "P-256", "use": "sig", "x": "{EC_X}", "y": "{EC_Y}", "d": "{EC_D}"}}]}}"#
        ),
    );
    text(
        "/etc/oidc/key.json",
        format!(r#"{{"crv": "Ed25519", "d": "{OKP_D}", "kty": "OKP", "x": "{OKP_X}"}}"#),
    );
    text("/app/keys/hmac.jwk", format!(r#"{{"kty": "oct", "alg": "HS256", "k": "{OCT_K}"}}"#));
    text(
        "/app/keys/public-jwks.json",
        format!(r#"{{"keys": [{{"kty": "EC", "crv": "P-256", "x": "{EC_X}", "y": "{EC_Y}"}}]}}"#),
    );
    text(
        "/app/contracts/hardhat.env",
        format!("RPC_URL=http://node:8545\nMNEMONIC=\"{MNEMONIC}\"\n"),
    );
    text("/opt/jetty/etc/realm.properties", format!("admin: OBF:{JETTY_OBF},admin,user\n"));
    text(
        "/etc/systemd/system/app.service",
        format!(
            "[Unit]\nDescription=App\n[Service]\nSetCredential=db-password:{SET_CREDENTIAL}\n\
             ExecStart=/usr/local/bin/app\n"
        ),
    );
    text(
        "/etc/systemd/system/worker.service",
        "[Service]\nSetCredentialEncrypted=db-password: \\\n        \
         k6iUCUh0RJCQyvL8k8q1UyAAAAABAAAADAAAAAAAAAAAAAAAAAAAAAAA\nExecStart=/usr/local/bin/w\n"
            .to_owned(),
    );
    text(
        "/src/app/main.go",
        format!(
            "package main\n\nconst dsn = \"app:{GO_DSN_PASSWORD}@tcp(db:3306)/app?parseTime=true\"\n"
        ),
    );
    text(
        "/app/src/db.js",
        format!(
            "const pool = new Pool({{\n  host: process.env.PGHOST,\n  \
             password: process.env.PGPASSWORD || '{JS_FALLBACK}',\n}});\n"
        ),
    );
    text(
        "/app/config/initializers/redis.rb",
        format!("REDIS = Redis.new(password: ENV.fetch('REDIS_PASSWORD', '{RUBY_FALLBACK}'))\n"),
    );
    text(
        "/app/src/auth.js",
        format!(
            "const jwt = require('jsonwebtoken');\nfunction sign(user) {{\n  \
             return jwt.sign({{ sub: user.id }}, '{JWT_SECRET}', {{ expiresIn: '1h' }});\n}}\n"
        ),
    );
    text(
        "/app/mailer.py",
        format!(
            "import smtplib\ns = smtplib.SMTP('smtp.corp.test', 587)\ns.starttls()\n\
             s.login('noreply@corp.test', '{SMTP_LOGIN}')\n"
        ),
    );
    text(
        "/src/main/java/corp/Db.java",
        format!(
            "package corp;\nclass Db {{\n  static java.sql.Connection open() throws Exception {{\n    \
             return java.sql.DriverManager.getConnection(\"jdbc:mysql://db/app\", \"app\", \
             \"{JDBC_PASSWORD}\");\n  }}\n}}\n"
        ),
    );
    text(
        "/var/lib/ghost/config.production.json",
        format!(
            "{{\n  \"mail\": {{\n    \"transport\": \"SMTP\",\n    \"options\": {{\n      \
             \"auth\": {{\n        \"user\": \"postmaster@mg.corp.test\",\n        \
             \"pass\": \"{GHOST_PASS}\"\n      }}\n    }}\n  }}\n}}\n"
        ),
    );
    text(
        "/app/dbt/profiles.yml",
        format!(
            "corp:\n  outputs:\n    dev:\n      type: postgres\n      host: db\n      \
             user: dbt\n      pass: {DBT_PASS}\n      dbname: analytics\n"
        ),
    );
    text(
        "/etc/fluent-bit/fluent-bit.conf",
        format!(
            "[OUTPUT]\n    Name        es\n    Match       *\n    HTTP_User   fluent\n    \
             HTTP_Passwd {FLUENT_BIT}\n"
        ),
    );
    text(
        "/etc/td-agent/td-agent.conf",
        format!(
            "<match **>\n  @type forward\n  <security>\n    self_hostname client\n    \
             shared_key {FLUENTD_KEY}\n  </security>\n</match>\n"
        ),
    );
    text("/etc/metricbeat/metricbeat.yml", format!("cloud.auth: \"elastic:{CLOUD_AUTH}\"\n"));
    text(
        "/app/hibernate.cfg.xml",
        format!(
            "<hibernate-configuration>\n  <session-factory>\n    \
             <property name=\"connection.username\">app</property>\n    \
             <property name=\"connection.password\">{HIBERNATE}</property>\n  \
             </session-factory>\n</hibernate-configuration>\n"
        ),
    );
    text(
        "/etc/nginx/conf.d/api.conf",
        format!(
            "location /api/ {{\n  proxy_pass https://api.partner.test;\n  \
             proxy_set_header X-Api-Key \"{NGINX_API_KEY}\";\n}}\n"
        ),
    );
    text(
        "/etc/nginx/conf.d/forward.conf",
        "location / {\n  proxy_set_header Authorization $http_authorization;\n}\n".to_owned(),
    );
    text(
        "/etc/containerd/config.toml",
        format!(
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\
             \"registry.corp.test\".auth]\n  auth = \"{CONTAINERD_AUTH}\"\n"
        ),
    );
    text(
        "/var/www/pma/config.inc.php",
        format!(
            "<?php\n$cfg['Servers'][$i]['user'] = 'root';\n\
             $cfg['Servers'][$i]['password'] = '{PMA_PASSWORD}';\n"
        ),
    );
    text(
        "/var/www/moodle/config.php",
        format!("<?php\n$CFG = new stdClass();\n$CFG->dbpass = '{MOODLE_PASSWORD}';\n"),
    );
    text(
        "/opt/keycloak/import/users.json",
        format!(
            "{{\"users\": [{{\"username\": \"admin\", \"credentials\": [{{\"type\": \"password\", \
             \"value\": \"{KEYCLOAK_PASSWORD}\", \"temporary\": false}}]}}]}}\n"
        ),
    );
    text(
        "/infra/terraform.tfstate.backup",
        format!(
            "{{\n  \"version\": 4,\n  \"resources\": [{{\"mode\": \"managed\", \"type\": \
             \"random_password\", \"name\": \"db\", \"instances\": [{{\"attributes\": \
             {{\"id\": \"none\", \"length\": 16, \"result\": \"{TF_RANDOM}\"}}, \
             \"sensitive_attributes\": [[{{\"type\": \"get_attr\", \"value\": \"result\"}}]]}}]}}]\n}}\n"
        ),
    );
    text("/etc/nginx/.htpasswd", format!("ops:{{PLAIN}}{HTPASSWD_PLAIN}\n"));
    // A compact YAML sequence: the list item sits at its parent's indent.
    text(
        "/etc/alertmanager/alertmanager.yml",
        format!(
            "receivers:\n- name: oncall\n  opsgenie_configs:\n  - api_key: {OPSGENIE_KEY}\n    \
             priority: P1\n"
        ),
    );
    text(
        "/app/notify.py",
        format!(
            "EMAIL_HOST = 'smtp.gmail.com'\nEMAIL_HOST_USER = 'alerts@corp.test'\n\
             EMAIL_HOST_PASSWORD = '{GMAIL_APP_PASSWORD}'\n"
        ),
    );
    text(
        "/var/www/magento/app/etc/env.php",
        format!(
            "<?php\nreturn [\n    'crypt' => [\n        'key' => '{MAGENTO_KEY}'\n    ],\n];\n"
        ),
    );
    // A notebook cell's source is code inside JSON strings: its quotes are `\"`.
    text(
        "/notebooks/etl.ipynb",
        format!(
            "{{\n \"cells\": [\n  {{\n   \"cell_type\": \"code\",\n   \"source\": [\n    \
             \"import sqlalchemy\\n\",\n    \"db_password = \\\"{NOTEBOOK_PASSWORD}\\\"\\n\"\n   \
             ]\n  }}\n ],\n \"nbformat\": 4\n}}\n"
        ),
    );
    // less starts each line of its search history with `"`.
    text("/root/.lesshst", format!(".less-history-file:\n.search\n\"password={LESS_SEARCH}\n"));
    text(
        "/var/www/auth.json",
        format!(
            "{{\n    \"bearer\": {{\n        \"satis.corp.test\": \"{COMPOSER_BEARER}\"\n    }}\n}}\n"
        ),
    );
    // A users table written by the sqlite3 shell: the password column's value is
    // read after its column's name.
    let db = dir.join("app.db");
    let sql = format!(
        "create table users(id integer primary key, username text, password text); \
         insert into users(username, password) values('admin', '{SQLITE_PASSWORD}');"
    );
    check(Command::new(need("sqlite3")).arg(&db).arg(sql).output().unwrap(), "sqlite3");
    put("/var/lib/app/app.db", &std::fs::read(&db).unwrap());
    let (key, encrypted, cert) = der_files(dir);
    put("/app/keys/signing.der", &key);
    put("/app/keys/encrypted.der", &encrypted);
    put("/app/certs/server.der", &cert);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM base:1\n\
             COPY fs/ /\n\
             RUN rm /app/keys/jwks.json && echo rotated > /app/keys/signing.der ; {}\n\
             ENV NEO4J_AUTH=neo4j/{NEO4J_PASSWORD} DB_DSN=orders:{ENV_DSN_PASSWORD}@tcp(mysql:3306)/orders\n",
            run_line()
        ),
    )
    .unwrap();
    ctx
}

#[test]
fn credential_files_round_3_real_dockerfile() {
    let work = tmp();
    let base = busybox_rootfs(work.path());
    let ctx = context(work.path());
    let archive = work.path().join("files3.tar");
    Dockerd::start().import_build_save(&base, &ctx, "files3:1", &archive);

    let (code, json, err) = scan_json(&archive, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    assert!(messages(&json, "error").is_empty(), "{json:#}");
    let findings = json["findings"].as_array().unwrap();
    let listed = || finding_lines(findings);
    let expect = |f: &serde_json::Value, layer: u64, status: &str| {
        assert_eq!((&f["layer_index"], &f["status"]), (&layer.into(), &status.into()), "{f:#}");
        assert_eq!(f["severity"], f["rule_severity"], "{f:#}");
        assert!(f["context"].is_null(), "{f:#}");
    };
    for &(rule, path, secret, status) in FILES {
        let f = findings
            .iter()
            .find(|f| f["rule_id"] == rule && f["path"] == path && f["secret"] == secret)
            .unwrap_or_else(|| panic!("no {rule} at {path}; found:\n{}", listed().join("\n")));
        expect(f, 1, status);
    }
    // The DER key made by openssl: its bytes are the secret; the RUN overwrote it.
    let der = findings
        .iter()
        .find(|f| f["rule_id"] == "file-der-private-key" && f["path"] == "/app/keys/signing.der")
        .unwrap_or_else(|| panic!("no DER key; found:\n{}", listed().join("\n")));
    expect(der, 1, "overwritten");
    // Command lines of the RUN ship in the history; ENV in the config.
    let config = |rule: &str, secret: &str, location: &dyn Fn(&str) -> bool| {
        let f = findings
            .iter()
            .find(|f| f["rule_id"] == rule && f["secret"] == secret)
            .unwrap_or_else(|| panic!("no {rule} in the config; found:\n{}", listed().join("\n")));
        assert_eq!(f["status"], "config", "{f:#}");
        assert!(location(f["location"].as_str().unwrap()), "{f:#}");
        assert_eq!(f["severity"], f["rule_severity"], "{f:#}");
    };
    for &(rule, secret) in COMMANDS {
        config(rule, secret, &|l| l.starts_with("history[") && l.ends_with("].created_by"));
    }
    config("neo4j-auth-env", NEO4J_PASSWORD, &|l| l == "config.env");
    config("go-mysql-dsn-password", ENV_DSN_PASSWORD, &|l| l == "config.env");
    // Near misses: nothing reported for them.
    for quiet in [
        "/app/keys/public-jwks.json",
        "/app/keys/encrypted.der",
        "/app/certs/server.der",
        "/etc/systemd/system/worker.service",
        "/etc/nginx/conf.d/forward.conf",
    ] {
        assert!(!findings.iter().any(|f| f["path"] == quiet), "{quiet}: {}", listed().join("\n"));
    }

    // Without --show-secrets no output prints a secret.
    let a = archive.to_str().unwrap();
    let all: Vec<&str> = FILES
        .iter()
        .map(|f| f.2)
        .chain(COMMANDS.iter().map(|c| c.1))
        .chain([NEO4J_PASSWORD, ENV_DSN_PASSWORD])
        .collect();
    for format in ["human", "json"] {
        let (_, out, err) = parts(&run(&["scan", "--format", format, a]));
        for secret in &all {
            assert!(!out.contains(secret) && !err.contains(secret), "{format} prints {secret}");
        }
    }
}
