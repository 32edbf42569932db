//! The non-provider credential classes (issue 13) end to end, in the places
//! they really occur: shell history, build-instruction history, credential
//! files found by name, SQL init scripts, build files; and the placeholder
//! filter, whose set-aside values are counted in the summary.
//!
//! Every value is fake: passwords are random-looking strings made for these
//! tests, the hash is of the fake password `Not-A-Real-Pass-7` (salt `Strata01`).

use serde_json::Value;

use crate::util::*;

fn scan(spec: &ImageSpec) -> Value {
    let dir = tmp();
    let path = out_path(dir.path(), Format::OciArchive, "img");
    ig::write_image(spec, Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert!(code == 0 || code == 1, "scan failed ({code}): {err}");
    json
}

/// (rule_id, path or location, secret, severity) of every finding.
fn all(json: &Value) -> Vec<(String, String, String, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let place = f["path"].as_str().or(f["location"].as_str()).unwrap_or("").to_owned();
            (
                f["rule_id"].as_str().unwrap().to_owned(),
                place,
                f["secret"].as_str().unwrap_or("").to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_found(json: &Value, rule: &str, place: &str, secret: &str) {
    let found = all(json);
    assert!(
        found.iter().any(|(r, p, s, _)| r == rule && p == place && s == secret),
        "no {rule} at {place} for {secret}; found:\n{found:#?}"
    );
}

#[test]
fn command_lines_in_history_files_and_build_instructions() {
    let history = "ls -la\n\
        sshpass -p 'Jq7#vT2kLz9w' ssh deploy@10.0.4.17 uptime\n\
        mysqldump -uroot -pHx4vQ9zTm2Lk shop > /tmp/shop.sql\n\
        net use Z: \\\\fs01.corp.test\\drop Rk8!vW3qTz5m /user:CORP\\svc-drop\n\
        curl -u ci:$CI_TOKEN https://artifacts.corp.test/\n";
    let spec = ImageSpec {
        layers: vec![
            Layer::new("COPY history /root/", vec![Entry::file("root/.bash_history", history)]),
            Layer::new(
                "RUN PGPASSWORD=Lv8kQ2zWt7Rm psql -h pg.internal -U app -f /tmp/init.sql # buildkit",
                vec![Entry::file(
                    "docker-entrypoint-initdb.d/01-users.sql",
                    "CREATE ROLE reporting WITH LOGIN PASSWORD 'Tz3#kW9vQm2r';\n\
                     CREATE ROLE app WITH LOGIN PASSWORD :'app_password';\n",
                )],
            ),
            Layer::new(
                "COPY build.gradle .pgpass /",
                vec![
                    Entry::file(
                        "src/build.gradle",
                        "repositories {\n  maven {\n    url 'https://nexus.corp.test/releases'\n    \
                         credentials {\n      username 'ci'\n      password 'Wq7#kT2vLz9m'\n    }\n  }\n}\n",
                    ),
                    Entry::file("root/.pgpass", "pg.internal:6432:app:app:Mv4#qT9zKw2L\n"),
                ],
            ),
        ],
        ..ImageSpec::default()
    };
    let json = scan(&spec);
    assert_found(&json, "cmdline-sshpass-password", "/root/.bash_history", "Jq7#vT2kLz9w");
    assert_found(&json, "cmdline-mysql-password", "/root/.bash_history", "Hx4vQ9zTm2Lk");
    assert_found(&json, "cmdline-net-use-password", "/root/.bash_history", "Rk8!vW3qTz5m");
    assert_found(
        &json,
        "sql-create-user-password",
        "/docker-entrypoint-initdb.d/01-users.sql",
        "Tz3#kW9vQm2r",
    );
    assert_found(&json, "gradle-credentials-block-password", "/src/build.gradle", "Wq7#kT2vLz9m");
    assert_found(&json, "file-pgpass-password", "/root/.pgpass", "Mv4#qT9zKw2L");
    // The build instruction itself, from the image history.
    assert!(
        all(&json).iter().any(|(r, p, s, _)| r == "cmdline-password-env-var"
            && p.ends_with(".created_by")
            && s == "Lv8kQ2zWt7Rm"),
        "{:#?}",
        all(&json)
    );
    // Variable references are not reported.
    assert!(
        !all(&json).iter().any(|(_, _, s, _)| s.contains("CI_TOKEN") || s.contains("app_password"))
    );
}

#[test]
fn password_hashes_wherever_the_line_is() {
    let sha512 = "$6$Strata01$Bm63j7yZnWFKc6RUuwXKxK.16/qExPWqlX3Y6hqiJMpWbJIQikxV/fh4Fc4.xtEcrOTjhUjXy/whvuvDyxhRJ/";
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY backup /",
            vec![
                Entry::file(
                    "backup/etc/shadow",
                    format!("root:*:19700:0:99999:7:::\nops:{sha512}:19700:0:99999:7:::\n"),
                ),
                Entry::file(
                    "loot/secretsdump.txt",
                    "CORP\\svc-sql:1108:aad3b435b51404eeaad3b435b51404ee:eb0af5e60fbffc37860084f58e6dac4b:::\n\
                     Guest:501:aad3b435b51404eeaad3b435b51404ee:31d6cfe0d16ae931b73c59d7e0c089c0:::\n",
                ),
            ],
        )],
        ..ImageSpec::default()
    };
    let json = scan(&spec);
    let found = all(&json);
    assert!(
        found
            .iter()
            .any(|(_, p, s, sev)| p == "/backup/etc/shadow" && s == sha512 && sev != "info"),
        "{found:#?}"
    );
    assert_found(
        &json,
        "ntlm-hash-dump-line",
        "/loot/secretsdump.txt",
        "eb0af5e60fbffc37860084f58e6dac4b",
    );
    // The NT hash of the empty password is a documented non-secret: counted, not reported.
    assert!(!found.iter().any(|(_, _, s, _)| s == "31d6cfe0d16ae931b73c59d7e0c089c0"));
    assert!(json["summary"]["suppressed"]["documented example credentials"].as_u64().unwrap() >= 1);
}

#[test]
fn placeholders_are_set_aside_and_counted_real_looking_passwords_are_not() {
    let config = "DATABASE_URL=postgres://app:${DB_PASSWORD}@db.internal:5432/app\n\
                  SMTP_PASSWORD=changeme\n\
                  API_TOKEN=your_api_token_here\n\
                  REPLICA_URL=postgres://app:MyPassword!92kq@replica.internal:5432/app\n";
    let spec = ImageSpec {
        layers: vec![Layer::new("COPY .env /app/", vec![Entry::file("app/.env", config)])],
        ..ImageSpec::default()
    };
    let json = scan(&spec);
    let found = all(&json);
    // A real (if weak) password that merely contains a stock word is reported.
    assert!(found.iter().any(|(_, _, s, _)| s == "MyPassword!92kq"), "{found:#?}");
    for p in ["${DB_PASSWORD}", "changeme", "your_api_token_here"] {
        assert!(!found.iter().any(|(_, _, s, _)| s == p), "{p} reported: {found:#?}");
    }
    let counted = json["summary"]["suppressed"]["placeholders"].as_u64().unwrap();
    assert!(counted >= 3, "placeholders counted: {counted}");
    // The human report says what was set aside.
    let dir = tmp();
    let path = out_path(dir.path(), Format::OciArchive, "img");
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (_, out, _) = parts(&run(&["scan", path.to_str().unwrap()]));
    assert!(out.contains("placeholders"), "{out}");
}

#[test]
fn hand_typed_fillers_and_stock_words_are_counted_not_reported() {
    // Fillers in contextual values, and a stock word as a command-line
    // password, are set aside and counted; a generated value next to them
    // and the new credential shapes are reported.
    let env = "SESSION_SECRET=abcdefghijklmnopqrstuvwxyz123456\n\
               WEBHOOK_TOKEN=abcdefabcdefabcdefabcdefabcdef12\n\
               SESSION_TOKEN=Kq7vX2mZ9pL4rT8wQ3nB\n";
    let script = "sshpass -p admin123 ssh ops@10.0.0.5 uptime\n\
                  Connect-VIServer -Server vc01.corp.test -User svc -Password Rq4!vLz8Kt2w\n\
                  curl -u \"deploy:Qv7cDz0kC6tzhW\" https://repo.corp.test/upload\n";
    let yaml = "auth:\n  jwt:\n    secret: \"prod-signing#Kq7'Lm2`Zx\"\n";
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY . /app/",
            vec![
                Entry::file("app/.env", env),
                Entry::file("app/deploy.ps1", script),
                Entry::file("app/config.yml", yaml),
            ],
        )],
        ..ImageSpec::default()
    };
    let json = scan(&spec);
    let found = all(&json);
    for s in ["Kq7vX2mZ9pL4rT8wQ3nB", "Rq4!vLz8Kt2w", "Qv7cDz0kC6tzhW", "prod-signing#Kq7'Lm2`Zx"] {
        assert!(found.iter().any(|(_, _, v, _)| v == s), "{s} not reported: {found:#?}");
    }
    for p in ["abcdefghijklmnopqrstuvwxyz123456", "abcdefabcdefabcdefabcdefabcdef12", "admin123"] {
        assert!(!found.iter().any(|(_, _, v, _)| v == p), "{p} reported: {found:#?}");
    }
    let counted = json["summary"]["suppressed"]["placeholders"].as_u64().unwrap();
    assert!(counted >= 3, "placeholders counted: {counted}");
}

#[test]
fn provider_format_fillers_are_reported_low_short_strong_context_passwords_in_full() {
    // A token in a provider's exact format that looks hand-typed is reported,
    // capped at low and marked; a generated one of the same rule keeps its
    // severity. A six-character password in a `user:pass@host` URI is reported
    // although no six characters can reach the rule's 3.0 bits of entropy.
    let env = "LLM_KEY=tgp_v1_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ\n\
               LLM_FALLBACK_KEY=tgp_v1_q7Vb2Lm9Xz4Kc8Wt1Rp6Jd3Hs0Fy5Ng_Qe7Tu2Zi9Ao\n\
               DATABASE_URL=mysql://app:s3Xq9!@db.internal:3306/shop\n";
    let spec = ImageSpec {
        layers: vec![Layer::new("COPY .env /app/", vec![Entry::file("app/.env", env)])],
        ..ImageSpec::default()
    };
    let json = scan(&spec);
    let findings = json["findings"].as_array().unwrap();
    let by_secret = |s: &str| {
        findings.iter().find(|f| f["secret"] == s && f["rule_id"] == "together-api-key-v1").cloned()
    };
    let filler = by_secret("tgp_v1_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ")
        .expect("filler token reported");
    assert_eq!(filler["severity"], "low", "{filler:#}");
    assert!(
        filler["validation"].as_str().unwrap().starts_with("filler-looking value"),
        "{filler:#}"
    );
    let real = by_secret("tgp_v1_q7Vb2Lm9Xz4Kc8Wt1Rp6Jd3Hs0Fy5Ng_Qe7Tu2Zi9Ao")
        .expect("real token reported");
    assert_eq!(real["severity"], "high", "{real:#}");
    assert!(
        findings.iter().any(|f| f["rule_id"] == "mysql-uri-password" && f["secret"] == "s3Xq9!"),
        "{findings:#?}"
    );
}

#[test]
fn filler_under_a_provider_named_key_is_reported_low_generic_filler_is_counted() {
    // Hand-typed filler under a key that names a provider strata has rules for
    // is reported, capped at low and marked as a likely placeholder; the same
    // filler under a key that names no provider, and template or stock words
    // under a provider's key, are set aside and counted.
    let env = "PAGERDUTY_API_TOKEN=abcdefghij0123456789XyZw\n\
               SESSION_SECRET=abcdefghijklmnopqrstuvwxyz123456\n\
               WEBHOOK_TOKEN=abcdefabcdefabcdefabcdefabcdef12\n\
               DATADOG_API_KEY=changeme\n\
               DATADOG_API_KEY=${DD_API_KEY}\n\
               ALGOLIA_API_KEY=your_algolia_key_1234\n";
    let js = "const client = mailgun.client({ mailgunApiKey: 'mnopqrstuv9876543210QwEr' });\n";
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "COPY . /app/",
            vec![Entry::file("app/.env", env), Entry::file("app/mail.js", js)],
        )],
        ..ImageSpec::default()
    };
    let json = scan(&spec);
    let findings = json["findings"].as_array().unwrap();
    for (secret, provider) in
        [("abcdefghij0123456789XyZw", "pagerduty"), ("mnopqrstuv9876543210QwEr", "mailgun")]
    {
        let f = findings.iter().find(|f| f["secret"] == secret).unwrap_or_else(|| {
            panic!("{secret} not reported: {findings:#?}");
        });
        assert_eq!(f["severity"], "low", "{f:#}");
        let note = f["validation"].as_str().unwrap();
        assert!(note.starts_with("filler-looking value"), "{f:#}");
        assert!(note.contains(&format!("`{provider}` credential context")), "{f:#}");
    }
    assert_eq!(findings.len(), 2, "only the two provider-context fillers: {findings:#?}");
    let counted = json["summary"]["suppressed"]["placeholders"].as_u64().unwrap();
    assert!(counted >= 5, "placeholders counted: {counted}");
}

/// A throwaway P-256 key made with `openssl ecparam -genkey` for these tests.
const EC_KEY_LINES: [&str; 3] = [
    "MHcCAQEEIHlaW7HRr7EA0li5yoZ/ss5wXqbYE9n1SgVihLJFCZM5oAoGCCqGSM49",
    "AwEHoUQDQgAERzMvqfxwDYcaR0qgHaOUY3um3b6TYoj9BBsjJNMnht3s0dZU6MZv",
    "dIP2BnKuBDy8SvqWtpbgcAU64V9Kxr3M+g==",
];

#[test]
fn keys_and_values_on_separate_lines_and_split_private_keys() {
    // A password whose value sits on the line below its key (Maven XML,
    // JSON, YAML), a `.pass` property, and a private key split across string
    // literals or flattened with `\r\n` escapes are reported; the same shapes
    // holding a reference, a nested mapping or a certificate are not.
    let settings = "<settings><servers><server>\n  <id>releases</id>\n  <password>\n    Tq7#vLm2Zx9k\n  </password>\n</server>\n<server><password>\n    ${env.NEXUS_PASSWORD}\n  </password></server></servers></settings>\n";
    let json = "{\n  \"adminPassword\":\n    \"Vq9#mTz4Lk2w\",\n  \"replicaPassword\":\n    \"${REPLICA_PASSWORD}\"\n}\n";
    let yaml = "datasource:\n  password:\n    Kq7#vLz2mW9x\nreplica:\n  password:\n    secretKeyRef:\n      name: db\n";
    let props = "as400.host=ibm.internal\nas400.pass=Wq4!zRt8Lm\n";
    let (a, b, c) = (EC_KEY_LINES[0], EC_KEY_LINES[1], EC_KEY_LINES[2]);
    let java = format!(
        "class Keys {{\n  static final String KEY = \"-----BEGIN EC PRIVATE KEY-----\\n\" +\n    \"{a}\\n\" +\n    \"{b}\\n\" +\n    \"{c}\\n\" +\n    \"-----END EC PRIVATE KEY-----\";\n  static final String CERT = \"-----BEGIN CERTIFICATE-----\\n\" +\n    \"MIIBszCCAVmgAwIBAgIUQ2hhbmdlIHRoaXMgdG8gYSByZWFsIGNlcnQgcGxlYXNl\\n\" +\n    \"-----END CERTIFICATE-----\";\n}}\n"
    );
    let csharp = format!(
        "const string Key = \"-----BEGIN EC PRIVATE KEY-----\\r\\n{a}\\r\\n{b}\\r\\n{c}\\r\\n-----END EC PRIVATE KEY-----\";\n"
    );
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY . /app/",
                vec![
                    Entry::file("root/.m2/settings.xml", settings),
                    Entry::file("app/config.json", json),
                    Entry::file("app/application.yml", yaml),
                    Entry::file("app/as400.properties", props),
                    Entry::file("app/src/Keys.java", java),
                    Entry::file("app/src/Keys.cs", csharp),
                ],
            ),
            Layer::new(
                "RUN rm -rf /app/src",
                vec![Entry::whiteout("app/src/Keys.java"), Entry::whiteout("app/src/Keys.cs")],
            ),
        ],
        ..ImageSpec::default()
    };
    let json = scan(&spec);
    assert_found(&json, "xml-password-element", "/root/.m2/settings.xml", "Tq7#vLm2Zx9k");
    assert_found(&json, "generic-password-assignment", "/app/config.json", "Vq9#mTz4Lk2w");
    assert_found(&json, "generic-password-next-line", "/app/application.yml", "Kq7#vLz2mW9x");
    assert_found(&json, "generic-password-unquoted", "/app/as400.properties", "Wq4!zRt8Lm");
    let findings = json["findings"].as_array().unwrap();
    for (path, rule) in [
        ("/app/src/Keys.java", "private-key-concatenated-strings"),
        ("/app/src/Keys.cs", "private-key-escaped-newlines"),
    ] {
        let key = findings
            .iter()
            .find(|f| f["path"] == path && f["rule_id"] == rule)
            .unwrap_or_else(|| panic!("no {rule} at {path}: {findings:#?}"));
        assert_eq!(key["status"], "deleted", "{key:#}");
        assert!(key["secret"].as_str().unwrap().contains(c), "{key:#}");
    }
    let found = all(&json);
    for not in ["${env.NEXUS_PASSWORD}", "${REPLICA_PASSWORD}", "secretKeyRef"] {
        assert!(!found.iter().any(|(_, _, s, _)| s.contains(not)), "{not}: {found:#?}");
    }
    assert!(!found.iter().any(|(_, _, s, _)| s.contains("CERTIFICATE")), "{found:#?}");
}

#[test]
fn php_define_constants_in_a_deleted_wp_config() {
    // wp-config.php as WordPress writes it: the database password and the
    // authentication keys and salts are PHP constants. Shipped in one layer,
    // deleted in the next, they are still in the image.
    let wp = "<?php\n\
              define( 'DB_NAME', 'wordpress' );\n\
              define( 'DB_USER', 'wp_user' );\n\
              define( 'DB_PASSWORD', 'Tq8vLm3Zx7Kw' );\n\
              define('AUTH_KEY',         'Rk4#Vx9!Qm2zLp7tWn5@Hc8jYb3&Fd6gKs1uPe0rMa9xCv4T');\n\
              define('NONCE_SALT',       'put your unique phrase here');\n\
              define( 'WP_DEBUG_PASSWORD_HINT', getenv('WP_HINT') );\n";
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY wp-config.php /var/www/html/",
                vec![Entry::file("var/www/html/wp-config.php", wp)],
            ),
            Layer::new(
                "RUN rm /var/www/html/wp-config.php",
                vec![Entry::whiteout("var/www/html/wp-config.php")],
            ),
        ],
        ..ImageSpec::default()
    };
    let json = scan(&spec);
    for secret in ["Tq8vLm3Zx7Kw", "Rk4#Vx9!Qm2zLp7tWn5@Hc8jYb3&Fd6gKs1uPe0rMa9xCv4T"] {
        assert_found(&json, "php-define-credential", "/var/www/html/wp-config.php", secret);
        let f = json["findings"].as_array().unwrap().iter().find(|f| f["secret"] == secret);
        assert_eq!(f.unwrap()["status"], "deleted", "{secret}");
    }
    let found = all(&json);
    for not in ["put your unique phrase here", "wordpress", "wp_user", "getenv"] {
        assert!(!found.iter().any(|(_, _, s, _)| s.contains(not)), "{not}: {found:#?}");
    }
}

#[test]
fn apt_login_app_keys_and_vault_token_deleted_in_a_later_step() {
    // A private apt mirror's login (apt_auth.conf(5), netrc grammar), a
    // proxy login in ~/.curlrc (curl's config grammar), a
    // Django SECRET_KEY (get_random_secret_key()'s alphabet, which the
    // generic rules' alphabets leave out), a Rails master key and a saved
    // pre-1.10 Vault token (files that hold the bare secret, nothing around
    // it), copied for the build and removed by the last step: still in the
    // image, `deleted`.
    let apt = "machine artifactory.corp.test/debian-remote\nlogin ci-apt\npassword Wn4vQ8zLk2Tx\n";
    let key = "$q=w(=^7b3)p^dkhx4py8g!pa_n0rl)yk+ei$$2iiaan)n0000";
    let settings = format!(
        "import os\nDEBUG = False\nSECRET_KEY = '{key}'\nALLOWED_HOSTS = ['*']\n\
         # SECRET_KEY = os.environ['DJANGO_SECRET_KEY']\n"
    );
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY auth.conf /etc/apt/auth.conf.d/artifactory.conf",
                vec![
                    Entry::file("etc/apt/auth.conf.d/artifactory.conf", apt),
                    Entry::file("root/.curlrc", "--proxy-user ci-proxy:Jm5wR9xKq3Vt\nretry = 3\n"),
                ],
            ),
            Layer::new(
                "COPY . /app",
                vec![
                    Entry::file("app/mysite/settings.py", settings.as_bytes().to_vec()),
                    Entry::file("app/config/master.key", "9c2e4f0000a1b7d3e8f6c5a4b3d2e1f0"),
                    Entry::file("root/.vault-token", "s.Tq8vLm3Zx7Kw0000Rk4Vx9Qm"),
                ],
            ),
            Layer::new(
                "RUN rm /etc/apt/auth.conf.d/artifactory.conf /app/mysite/settings.py \
                 /app/config/master.key /root/.vault-token /root/.curlrc",
                vec![
                    Entry::whiteout("etc/apt/auth.conf.d/artifactory.conf"),
                    Entry::whiteout("root/.curlrc"),
                    Entry::whiteout("app/mysite/settings.py"),
                    Entry::whiteout("app/config/master.key"),
                    Entry::whiteout("root/.vault-token"),
                ],
            ),
        ],
        ..ImageSpec::default()
    };
    let json = scan(&spec);
    for (rule, path, secret, layer) in [
        ("file-netrc-password", "/etc/apt/auth.conf.d/artifactory.conf", "Wn4vQ8zLk2Tx", 0),
        ("file-curlrc-password", "/root/.curlrc", "Jm5wR9xKq3Vt", 0),
        ("django-secret-key", "/app/mysite/settings.py", key, 1),
        ("file-rails-master-key", "/app/config/master.key", "9c2e4f0000a1b7d3e8f6c5a4b3d2e1f0", 1),
        ("file-vault-token", "/root/.vault-token", "s.Tq8vLm3Zx7Kw0000Rk4Vx9Qm", 1),
    ] {
        assert_found(&json, rule, path, secret);
        let f =
            json["findings"].as_array().unwrap().iter().find(|f| f["secret"] == secret).unwrap();
        assert_eq!(
            (&f["status"], &f["layer_index"], &f["removed_in_layer"]),
            (&"deleted".into(), &layer.into(), &2.into()),
            "{secret}"
        );
        assert_eq!(f["severity"], f["rule_severity"], "{secret}");
        assert!(matches!(f["severity"].as_str(), Some("high" | "critical")), "{secret}");
    }
}

#[test]
fn bundler_gem_server_login_in_bundle_config() {
    // What `bundle config set --global gems.corp-mirror.test USER:PASS` writes
    // (Bundler 2.3.7, Debian's ruby3.1: dots as `__`, the dash as `___`),
    // left in the image by the layer that ran `bundle install`.
    let config = "---\nBUNDLE_GEMS__CORP___MIRROR__TEST: \"builder:Vq7mL2zKt9wQ0000\"\n\
                  BUNDLE_PATH: \"/usr/local/bundle\"\n\
                  BUNDLE_BUILD__PG: \"--with-pg-config=/usr/bin/pg_config\"\n";
    let spec = ImageSpec {
        layers: vec![Layer::new(
            "RUN bundle config set --global gems.corp-mirror.test $GEM_LOGIN && bundle install",
            vec![Entry::file("root/.bundle/config", config)],
        )],
        ..ImageSpec::default()
    };
    let json = scan(&spec);
    assert_found(
        &json,
        "bundler-host-credentials",
        "/root/.bundle/config",
        "builder:Vq7mL2zKt9wQ0000",
    );
    assert_eq!(all(&json).len(), 1, "{:#?}", all(&json));
}
