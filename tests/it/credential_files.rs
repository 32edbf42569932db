//! Credential files the way real Dockerfiles ship them (session 10's red
//! team, docs/leak-vectors.md): an rclone.conf written by rclone itself
//! (passwords obscured, reversibly), a Django settings.py with a hand-made
//! SECRET_KEY, mail relay logins, an Ansible vault password file, history
//! files of redis-cli and mysql, caches and mount secrets, Jenkins' key,
//! VPN keys, k3s and Vault bootstrap secrets, a passphrase-protected PuTTY
//! key, all copied by the Docker legacy builder on a private dockerd, some
//! removed by a later step. Every one must be reported at its rule's
//! severity, in the right layer, with the right status, and no output
//! without --show-secrets may print one.

use std::path::Path;
use std::process::Command;

use crate::engines::{Dockerd, busybox_rootfs, check, messages, need};
use crate::util::*;

/// The passwords given to `rclone config create`, which stores them obscured.
const RCLONE_SFTP: &str = "Tq8vLm3Zx7Kw";
const RCLONE_CRYPT: &str = "Rk4Vx9Qm2zLp";
const RCLONE_CRYPT2: &str = "Hc8jYb3Fd6gK";
const RCLONE_S3: &str = "Vb7Hq2Lm9XpR4sT8wZ1cK5nJ3yF6gD0aE2uI7oPq";
const RCLONE_AZURE: &str =
    "nz3cMUAkzW+MtI6IljfAAHhZ50YLtSOzHT2vEQcDuyljGnsTGwVRqFH/3vLxl/TzKo3duJN2SdazZCVDK7x/6A==";
/// A SECRET_KEY typed by a person: upper case and symbols, not Django's alphabet.
const DJANGO_KEY: &str = "Xk9#mP2$vL7@qR4!nW8&zT3^bY6*cF1%Hd5Q";
const JENKINS_KEY: &str = "982c2aebe6798510c0473c763f9bdd68262374e10b2fedf6b06bc0b4c916e803997873ec44c6179634160d389c4ed1c89299cfddf171a01c3bcaab1ac325cbb5558f5adc2b828d95bd60ee5edebd22b3409874457947e71a83c2e1ab532ce3032f90d5e49775ba16445241cbfc66413871c4e5467150e347316917319c1925fc170a9f3d8d7dd7ab0692842d32fe0424f35c019054824a32169890b484405197e73cf0f2ed1ebb9d56d4029af7d2359a4473d565a8f3e0d6a8724156310f59be290cf75e26f93c3b4ce4cfe2c9cd48d29dca0b553ad51ea208eafcc020d95a5b8bc690bd28af658ddfe987f8119b3da520dc384fd7682a65ee834a4883838afd";
const JENKINS_SECRET: &str =
    "AQAAABAAAAAgbTqwGQBHHRBfWEkVqAoVBAIBLUr8d1aAX128yle52gkIGPbfittSBtn429/CYDhO";
/// The body of an OpenVPN static key (`openvpn --genkey` writes 16 such lines).
const OPENVPN_KEY: &str = "52689974adbcd58082035cbd702cf7da\n9eb6eb329c43689f3bf4bf5356df96a8\n\
                           dd5d0849396b7edd4ead1ad46534aa3f\n7a38d6e1a26743e6fba5f4db2c0cbe44";
const FERNET: &str = "doEcyvYU15jHVVZK-IzXdjfHqCFnlFQlXqRg22ltpVE=";
const UNSEAL: &str = "eUCxgWr2ZpwRpKEg2u7JheWAt3hQRsnyJHEOsG+3WTg=";
const K3S: &str = "K10b4290f61a096213ff8b358529513c507668b8eea8a8683147aa467dbb1c738e1::server:1cc9cd52881178ad13d8ab5b50e0db27";
const MAVEN_MASTER: &str = "{/WoKaf05ZPFh/DfHA8iY26ygRLPWDr5jm2EbM2XX/co=}";
const S3FS: &str = "hv1Nvzdv7OfFecs+6Tc1THctGfsEo8LSO2QL2hn9";

/// A throwaway RSA key as puttygen 0.78 writes it with a passphrase (PPK v3:
/// Argon2id parameters between the public and the private lines).
const PPK: &str = "PuTTY-User-Key-File-3: ssh-rsa\n\
Encryption: aes256-cbc\n\
Comment: rsa-key-20261207\n\
Public-Lines: 6\n\
AAAAB3NzaC1yc2EAAAADAQABAAABAQCj+s6prNieHf6h7XLeIBSmgrjgfpITQ6QV\n\
w2yfLhleHE9rnUY51al9vJ4tSAsRtV0pWKMeTCoLC5P/IdYodzg9gsvJNh+igM1r\n\
wZrzqgfl1mhYa2WtWUfBlbewneaHA3F6r315eEJbEvLvgF9XXCths7bh9qBeLrMi\n\
j17KUyIe/qCTwk7j6RVDoBnryMP7fdLzi+2Wa3J0gDbpnzBcG87MeHj1rsKYxoQh\n\
PvQCwGerMbHXQ9BfIt1UNBKtu8kKB/Yt7NHDXaMWg3Cmspwul+iyfHSf7j5SlC2z\n\
ctWyLHiEA+eZI0tl8WJhuld6EcQKhwJ/z9YFzB++sHJ2kx+Ebqr9\n\
Key-Derivation: Argon2id\n\
Argon2-Memory: 8192\n\
Argon2-Passes: 13\n\
Argon2-Parallelism: 1\n\
Argon2-Salt: 17986ea38ba54e7904bdacad959934ad\n\
Private-Lines: 14\n\
kMAUPMrcU1blq6bih5XO0BCKwE8V+9vxJLu5NjOT70RejK498a3bT++CNi7eJNcF\n\
2KACT/hw9XfDtqTOkESS/cca23y8AGeIsGjcyAvXRhjfmKt7M6t+iaEXUtwEo2T/\n\
rFuPTCm523B+i6Naxn9h7a3UhqvLnbKO+h0yU+ty9UxZYNhI94ElY4bQ92FE7Rfg\n\
OQtoXbqC45b/PYEZIgzaLYZZHAJJ0jbNX5k23FKkJiF6Z1bOjj1S/VbLAoYH5GIb\n\
utAUDdri9xeusQ3svMkaGfiI8SQ59FD854FE72xpsQdE4VG0d/jgtPEPOimlub/y\n\
3IB4CBoKQ3jichLJBlS+p9xZ2qS1BNH80X0rTDCqCwUS2iAISN8/elIeGFAUymfP\n\
ODvMKqAurJwkC98iWcRC+BeIKhocgiipDlyKAAQbW5IcIbGPWmjmKrNYHd0QXPov\n\
T5vdMKETwPZxcUidv3O3XwN84vRc4L2C+0oPlg9yusM3vIC5XtQeizXkOGcFIG3p\n\
utkn1G6we7wr7+USy4+NGY7T+42pE9cfPowXm+brmYRaQT24ALgdeC6FxmCWrn7C\n\
a9TtU9II/8Jd9GRAZI3WKGAhM2gOxkgpSpnHfAlEH+YisRCDh0gfV4EW+tY1r3dm\n\
k4pq2XG8bB+pNUFnV2mDM7i4y5o0hrA8stk+gmWBzUNmA/YjpLpi+x/91x/XRMzT\n\
Huo6TS2GsBN/xRaW26AMf34EhEIKKr5dwJnc6lhRahHeqK00S5eAA8g0OxPqU/ZW\n\
gz09h+4pvlMQQKw0mxRZTsWRP964409s4uZtmZr1YksT5EwDUPVweD2sGIUM8w+D\n\
RiHQK+WeQmew/UJ28LmZWy42JUCXTp7GM50etBxe0DeF6d3Zcp2MfoZcwYhQLG4j\n\
Private-MAC: 9c6d71017d4323c0eeb1e2af1017e011742f2a888ba0e85554bb37467418cc02\n";
/// The first of its private lines.
const PPK_PRIVATE: &str = "kMAUPMrcU1blq6bih5XO0BCKwE8V+9vxJLu5NjOT70RejK498a3bT++CNi7eJNcF";
/// (rule, path, secret, layer, status) of every planted credential; layer 1
/// is the first `COPY`, and the last step removes the rclone config and
/// the Django settings.
const EXPECTED: &[(&str, &str, &str, u64, &str)] = &[
    (
        "file-rclone-obscured-password",
        "/root/.config/rclone/rclone.conf",
        RCLONE_SFTP,
        1,
        "deleted",
    ),
    (
        "file-rclone-obscured-password",
        "/root/.config/rclone/rclone.conf",
        RCLONE_CRYPT,
        1,
        "deleted",
    ),
    (
        "file-rclone-obscured-password",
        "/root/.config/rclone/rclone.conf",
        RCLONE_CRYPT2,
        1,
        "deleted",
    ),
    ("aws-secret-access-key", "/root/.config/rclone/rclone.conf", RCLONE_S3, 1, "deleted"),
    ("file-rclone-credential", "/root/.config/rclone/rclone.conf", RCLONE_AZURE, 1, "deleted"),
    ("python-secret-key-literal", "/app/mysite/settings.py", DJANGO_KEY, 2, "deleted"),
    ("file-smtp-relay-password", "/etc/postfix/sasl_passwd", "fhD!4Ye0yIf9aH", 1, "present"),
    ("file-smtp-relay-password", "/etc/msmtprc", "0UJ%KE53fA8hWA", 1, "present"),
    ("file-smtp-relay-password", "/etc/ssmtp/ssmtp.conf", "2E0!z5bCDOKTFS", 1, "present"),
    ("file-ansible-vault-password", "/root/.vault_pass.txt", "HE1%fspnXrhdPOsEEH", 1, "present"),
    ("file-redis-cli-history-password", "/root/.rediscli_history", "Wq4!zRt8Lm7p", 1, "present"),
    ("redis-acl-password", "/etc/redis/users.acl", "xAz!z7HctpcoAGMb", 1, "present"),
    ("sql-create-user-password", "/root/.mysql_history", "U8Y%0TzpPa5Vs3", 1, "present"),
    ("generic-password-unquoted", "/root/.my.cnf", "I24%DdMSpO3383", 1, "present"),
    (
        "file-svn-password",
        "/root/.subversion/auth/svn.simple/5671adf2865e267db74f09ba6f872c28",
        "Mv4#qT9zKw2L",
        1,
        "present",
    ),
    (
        "file-pgbouncer-userlist-password",
        "/etc/pgbouncer/userlist.txt",
        "zPX!hUjfX8WPOR",
        1,
        "present",
    ),
    ("file-davfs2-password", "/etc/davfs2/secrets", "Lm3Zx7Kw9Rt2", 1, "present"),
    ("aws-key-pair-colon", "/etc/passwd-s3fs", S3FS, 1, "present"),
    ("file-jenkins-master-key", "/var/jenkins_home/secrets/master.key", JENKINS_KEY, 1, "present"),
    ("jenkins-encrypted-secret", "/var/jenkins_home/credentials.xml", JENKINS_SECRET, 1, "present"),
    ("ipsec-secrets-psk", "/etc/ipsec.secrets", "eF0#J16qFfXV6QNSfp3P", 1, "present"),
    ("openvpn-static-key", "/etc/openvpn/ta.key", OPENVPN_KEY, 1, "present"),
    ("fernet-key", "/opt/airflow/airflow.cfg", FERNET, 1, "present"),
    ("hashicorp-vault-unseal-key", "/root/vault-init.txt", UNSEAL, 1, "present"),
    ("k3s-cluster-token", "/var/lib/rancher/k3s/server/token", K3S, 1, "present"),
    ("maven-master-password", "/root/.m2/settings-security.xml", MAVEN_MASTER, 1, "present"),
    ("npmrc-auth-token", "/root/.yarnrc", "Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6", 1, "present"),
    ("ldap-bind-password", "/etc/sssd/sssd.conf", "Mv4#qT9zKw2L", 1, "present"),
    ("wifi-psk", "/etc/wpa_supplicant/wpa_supplicant.conf", "Kq7vX2mZ9pL4!x", 1, "present"),
    ("php-env-default-credential", "/app/config/database.php", "Fq2#vLm8Kz4Tw", 2, "present"),
];

/// The build context: the files of the image's tree under `fs/` (one `COPY`),
/// the application under `app/` (a second one), and the Dockerfile.
fn context(dir: &Path) -> std::path::PathBuf {
    let ctx = dir.join("ctx");
    let put = |name: &str, text: &str| {
        let p = ctx.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    // rclone's own config, made by rclone: it obscures every password it stores.
    let conf = ctx.join("fs/root/.config/rclone/rclone.conf");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    for args in [
        vec!["backup", "sftp", "host=sftp.corp.test", "user=deploy"],
        vec!["vault", "crypt", "remote=backup:enc"],
        vec!["s3prod", "s3", "provider=AWS", "access_key_id=AKIAQ3FAKETESTKEY7QA"],
        vec!["blob", "azureblob", "account=faketestacct"],
    ] {
        let extra: Vec<String> = match args[0] {
            "backup" => vec![format!("pass={RCLONE_SFTP}")],
            "vault" => {
                vec![format!("password={RCLONE_CRYPT}"), format!("password2={RCLONE_CRYPT2}")]
            }
            "s3prod" => vec![format!("secret_access_key={RCLONE_S3}")],
            _ => vec![format!("key={RCLONE_AZURE}")],
        };
        let o = Command::new(need("rclone"))
            .arg("--config")
            .arg(&conf)
            .args(["config", "create"])
            .args(&args)
            .args(&extra)
            .arg("--non-interactive")
            .env("HOME", dir)
            .output()
            .unwrap();
        check(o, "rclone config create");
    }
    let written = std::fs::read_to_string(&conf).unwrap();
    assert!(!written.contains(RCLONE_SFTP) && written.contains("pass = "), "{written}");

    put(
        "app/mysite/settings.py",
        &format!("from pathlib import Path\nSECRET_KEY = '{DJANGO_KEY}'\nDEBUG = False\n"),
    );
    // What a settings.py that reads its key looks like: nothing to report.
    put(
        "app/other/settings.py",
        "import os\nfrom django.core.management.utils import get_random_secret_key\n\
         SECRET_KEY = os.environ['DJANGO_SECRET_KEY']\n\
         SECRET_KEY = os.environ.get('DJANGO_SECRET_KEY', get_random_secret_key())\n\
         SECRET_KEY = config('SECRET_KEY')\n",
    );
    put("fs/etc/postfix/sasl_passwd", "[smtp.corp.test]:587 relay@corp.test:fhD!4Ye0yIf9aH\n");
    put(
        "fs/etc/msmtprc",
        "defaults\nauth on\naccount corp\nhost smtp.corp.test\nuser app@corp.test\n\
         password 0UJ%KE53fA8hWA\naccount default : corp\n",
    );
    put(
        "fs/etc/ssmtp/ssmtp.conf",
        "mailhub=smtp.corp.test:587\nAuthUser=app@corp.test\nAuthPass=2E0!z5bCDOKTFS\n",
    );
    put("fs/root/.vault_pass.txt", "HE1%fspnXrhdPOsEEH\n");
    put("fs/root/.rediscli_history", "PING\nAUTH Wq4!zRt8Lm7p\nKEYS *\n");
    put("fs/etc/redis/users.acl", "user default off\nuser app on >xAz!z7HctpcoAGMb ~app:* +@all\n");
    // mysql's client history (libedit) writes each space as \040.
    put(
        "fs/root/.mysql_history",
        "_HiStOrY_V2_\nshow\\040databases;\n\
         CREATE\\040USER\\040'app'@'%'\\040IDENTIFIED\\040BY\\040'U8Y%0TzpPa5Vs3';\n",
    );
    put("fs/root/.my.cnf", "[client]\nuser=root\npassword=I24%DdMSpO3383\n");
    put(
        "fs/root/.subversion/auth/svn.simple/5671adf2865e267db74f09ba6f872c28",
        "K 8\npasscred\nV 6\nsimple\nK 8\npassword\nV 12\nMv4#qT9zKw2L\nK 15\nsvn:realmstring\n\
         V 35\n<https://svn.corp.test:443> Subversion\nK 8\nusername\nV 2\nci\nEND\n",
    );
    put("fs/etc/pgbouncer/userlist.txt", "\"app\" \"zPX!hUjfX8WPOR\"\n");
    put("fs/etc/davfs2/secrets", "https://dav.corp.test/remote.php/webdav ops Lm3Zx7Kw9Rt2\n");
    put("fs/etc/passwd-s3fs", &format!("AKIAX736WEKMUSMA3CKK:{S3FS}\n"));
    put("fs/var/jenkins_home/secrets/master.key", JENKINS_KEY);
    put(
        "fs/var/jenkins_home/credentials.xml",
        &format!(
            "<?xml version='1.1' encoding='UTF-8'?>\n<com.cloudbees.plugins.credentials.impl.\
             UsernamePasswordCredentialsImpl>\n  <id>nexus</id>\n  <username>ci</username>\n  \
             <password>{{{JENKINS_SECRET}}}</password>\n</com.cloudbees.plugins.credentials.impl.\
             UsernamePasswordCredentialsImpl>\n"
        ),
    );
    put("fs/etc/ipsec.secrets", "# ipsec.secrets\n: PSK \"eF0#J16qFfXV6QNSfp3P\"\n");
    put(
        "fs/etc/openvpn/ta.key",
        &format!(
            "#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n\
             {OPENVPN_KEY}\n-----END OpenVPN Static key V1-----\n"
        ),
    );
    put(
        "fs/opt/airflow/airflow.cfg",
        &format!("[core]\nexecutor = LocalExecutor\nfernet_key = {FERNET}\n"),
    );
    put("fs/root/vault-init.txt", &format!("Unseal Key 1: {UNSEAL}\n"));
    put("fs/var/lib/rancher/k3s/server/token", &format!("{K3S}\n"));
    put(
        "fs/root/.m2/settings-security.xml",
        &format!("<settingsSecurity>\n  <master>{MAVEN_MASTER}</master>\n</settingsSecurity>\n"),
    );
    put("fs/root/.ssh/deploy.ppk", PPK);
    // Yarn 1's .yarnrc: key and value separated by a space.
    put(
        "fs/root/.yarnrc",
        "registry \"https://npm.corp.test/\"\n\"//npm.corp.test/:_authToken\" \"Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6\"\n",
    );
    put(
        "fs/etc/sssd/sssd.conf",
        "[domain/corp]\nldap_default_authtok_type = password\nldap_default_authtok = Mv4#qT9zKw2L\n",
    );
    put(
        "fs/etc/wpa_supplicant/wpa_supplicant.conf",
        "network={\n  ssid=\"corp\"\n  psk=\"Kq7vX2mZ9pL4!x\"\n}\n",
    );
    put(
        "app/config/database.php",
        "<?php\nreturn ['connections' => ['mysql' => [\n    'host' => env('DB_HOST', '127.0.0.1'),\n    \
         'password' => env('DB_PASSWORD', 'Fq2#vLm8Kz4Tw'),\n]]];\n",
    );
    put(
        "Dockerfile",
        "FROM base:1\n\
         COPY fs/ /\n\
         COPY app/ /app/\n\
         RUN rm -rf /root/.config/rclone /app/mysite/settings.py\n",
    );
    ctx
}

#[test]
fn credential_files_real_dockerfiles_ship() {
    let work = tmp();
    let base = busybox_rootfs(work.path());
    let ctx = context(work.path());
    let archive = work.path().join("files.tar");
    Dockerd::start().import_build_save(&base, &ctx, "files:1", &archive);

    let (code, json, err) = scan_json(&archive, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    assert!(messages(&json, "error").is_empty(), "{json:#}");
    let findings = json["findings"].as_array().unwrap();
    let listed = || finding_lines(findings);
    for (rule, path, secret, layer, status) in EXPECTED {
        let f = findings
            .iter()
            .find(|f| f["rule_id"] == *rule && f["path"] == *path && f["secret"] == *secret)
            .unwrap_or_else(|| panic!("no {rule} at {path}; found:\n{}", listed().join("\n")));
        assert_eq!(
            (&f["layer_index"], &f["status"]),
            (&(*layer).into(), &(*status).into()),
            "{f:#}"
        );
        assert_eq!(f["severity"], f["rule_severity"], "{f:#}");
        assert!(f["context"].is_null(), "{f:#}");
    }
    let ppk = findings
        .iter()
        .find(|f| f["rule_id"] == "putty-private-key" && f["path"] == "/root/.ssh/deploy.ppk")
        .unwrap_or_else(|| panic!("no putty-private-key; found:\n{}", listed().join("\n")));
    assert!(ppk["secret"].as_str().unwrap().starts_with(PPK_PRIVATE), "{ppk:#}");
    assert_eq!((&ppk["severity"], &ppk["layer_index"]), (&"critical".into(), &1.into()), "{ppk:#}");
    // The revealed password says how it was reached.
    let revealed = findings.iter().find(|f| f["secret"] == RCLONE_SFTP).unwrap();
    assert_eq!(revealed["decoding"], serde_json::json!(["rclone-obscure"]), "{revealed:#}");
    // A settings.py that reads its key from the environment has nothing to report.
    assert!(
        !findings.iter().any(|f| f["path"] == "/app/other/settings.py"),
        "{}",
        listed().join("\n")
    );

    // Without --show-secrets no output prints a secret, nor rclone's obscured
    // form of one (anyone reverses it).
    let obscured: Vec<String> =
        std::fs::read_to_string(ctx.join("fs/root/.config/rclone/rclone.conf"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                l.split_once(" = ")
                    .filter(|(k, _)| k.starts_with("pass"))
                    .map(|(_, v)| v.to_owned())
            })
            .collect();
    assert_eq!(obscured.len(), 3, "{obscured:?}");
    let a = archive.to_str().unwrap();
    for format in ["human", "json", "sarif"] {
        let (_, out, err) = parts(&run(&["scan", "--format", format, a]));
        let all = EXPECTED.iter().map(|e| e.2).chain([PPK_PRIVATE]);
        for secret in all.chain(obscured.iter().map(String::as_str)) {
            assert!(!out.contains(secret) && !err.contains(secret), "{format} prints {secret}");
        }
    }
}
