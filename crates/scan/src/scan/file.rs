//! Credential files recognised by name and structure: the secrets in them
//! often have no recognisable format of their own (a docker `auth` blob, a
//! `.netrc` password, an `/etc/shadow` hash), so the file's grammar gives
//! the context. Runs on files small enough to be held whole.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;

use super::{Hit, RuleInfo, der_key, filter, keystore};
use crate::finding::{Detector, Secret, Severity};
use crate::image::path::{file_name, parent};

/// Files larger than this are not parsed as credential files.
pub const MAX_CREDENTIAL_FILE: usize = 1 << 20;

struct FileRule {
    id: &'static str,
    name: &'static str,
    severity: Severity,
    description: &'static str,
}

const RULES: &[FileRule] = &[
    FileRule {
        id: "file-docker-config-auth",
        name: "Registry credentials in docker config.json",
        severity: Severity::High,
        description: "A base64 user:password pair in the auths section of a Docker client config.",
    },
    FileRule {
        id: "file-git-credentials",
        name: "Password in .git-credentials",
        severity: Severity::High,
        description: "A URL with a password or token stored by git's credential store.",
    },
    FileRule {
        id: "file-netrc-password",
        name: "Password in .netrc",
        severity: Severity::High,
        description: "A machine login password in a .netrc file, or in apt's auth.conf (the same format).",
    },
    FileRule {
        id: "file-pypirc-password",
        name: "Password in .pypirc",
        severity: Severity::High,
        description: "A package index password in a .pypirc file.",
    },
    FileRule {
        id: "file-npmrc-auth",
        name: "Registry credentials in .npmrc",
        severity: Severity::High,
        description: "An _auth, _password or _authToken value in an .npmrc file.",
    },
    FileRule {
        id: "file-aws-credentials",
        name: "Secret in AWS credentials file",
        severity: Severity::Critical,
        description: "An aws_secret_access_key or session token in an AWS shared credentials file.",
    },
    FileRule {
        id: "file-shadow-hash",
        name: "Password hash in /etc/shadow",
        severity: Severity::Medium,
        description: "A crypt(3) password hash for an account; it can be cracked offline.",
    },
    FileRule {
        id: "file-htpasswd-hash",
        name: "Password hash in htpasswd",
        severity: Severity::Medium,
        description: "A password hash in an Apache htpasswd file.",
    },
    FileRule {
        id: "file-kubeconfig-credential",
        name: "Credential in kubeconfig",
        severity: Severity::Critical,
        description: "A token, password or client key in a Kubernetes client config.",
    },
    FileRule {
        id: "file-keystore",
        name: "Java or PKCS#12 keystore",
        severity: Severity::High,
        description: "A keystore file (JKS, JCEKS or PKCS#12) that holds a private or secret \
                      key entry; truststores of public certificates only are not reported.",
    },
    FileRule {
        id: "file-env-secret",
        name: "Secret in .env file",
        severity: Severity::Medium,
        description: "A high-entropy value assigned to a secret-named variable in a dotenv file.",
    },
    FileRule {
        id: "file-terraform-state-secret",
        name: "Sensitive value in Terraform state",
        severity: Severity::High,
        description: "A password, secret or private key attribute in terraform.tfstate.",
    },
    FileRule {
        id: "file-kubernetes-secret",
        name: "Value of a Kubernetes Secret manifest",
        severity: Severity::High,
        description: "A `data` (base64, decoded here) or `stringData` value of a Kubernetes \
                      Secret: secrets by definition, shipped in a manifest or Helm chart.",
    },
    FileRule {
        id: "file-pgpass-password",
        name: "Password in a PostgreSQL password file",
        severity: Severity::High,
        description: "A `host:port:database:user:password` line of ~/.pgpass (or PGPASSFILE), \
                      read by libpq clients without asking.",
    },
    FileRule {
        id: "file-htpasswd-plain-password",
        name: "Clear-text password in an htpasswd file",
        severity: Severity::High,
        description: "A `user:{PLAIN}password` line, nginx's clear-text scheme for \
                      `auth_basic_user_file`: the password itself, not a hash.",
    },
    FileRule {
        id: "file-der-private-key",
        name: "Private key in DER form",
        severity: Severity::Critical,
        description: "A whole file that is one DER-encoded private key (PKCS#8, SEC1 EC or \
                      PKCS#1 RSA), as `openssl … -outform DER` writes it and Java reads it.",
    },
    FileRule {
        id: "file-kerberos-keytab",
        name: "Kerberos keytab",
        severity: Severity::High,
        description: "A keytab file with at least one key entry: its keys authenticate as the \
                      principal without a password (kinit -k).",
    },
    FileRule {
        id: "file-curlrc-password",
        name: "Password in a curl config file",
        severity: Severity::High,
        description: "The password of a `user` or `proxy-user` option (`user = \"name:password\"`, \
                      `-u name:password`) in ~/.curlrc, sent by every curl the user runs.",
    },
    FileRule {
        id: "file-rails-master-key",
        name: "Rails master key",
        severity: Severity::Critical,
        description: "config/master.key (or config/credentials/<env>.key): the 32 hex \
                      characters that decrypt the app's credentials.yml.enc, and with it every \
                      secret the app holds.",
    },
    FileRule {
        id: "file-rclone-obscured-password",
        name: "rclone obscured password",
        severity: Severity::High,
        description: "A password of an rclone remote (`pass`, `password`, `password2`, \
                      `key_file_pass`…) in rclone.conf. rclone \"obscures\" it with AES-CTR under \
                      a key published in its source, so anyone reverses it (`rclone reveal`); \
                      the revealed password is the secret. A value that does not reveal to \
                      text is not reported.",
    },
    FileRule {
        id: "file-rclone-credential",
        name: "Credential of an rclone remote",
        severity: Severity::High,
        description: "A stored credential of an rclone remote in rclone.conf: an S3 \
                      `secret_access_key`, an OAuth `client_secret` or the `refresh_token` of \
                      its `token`, an Azure or B2 account `key`, a SAS URL, a service \
                      account's private key.",
    },
    FileRule {
        id: "file-smtp-relay-password",
        name: "Password of an SMTP relay login",
        severity: Severity::High,
        description: "The password a mail transfer agent in the image logs in to its relay with: \
                      postfix's `sasl_passwd` (`[host]:port user:password`), msmtp's \
                      `password` in msmtprc, sSMTP's `AuthPass=` in ssmtp.conf.",
    },
    FileRule {
        id: "file-ansible-vault-password",
        name: "Ansible Vault password file",
        severity: Severity::High,
        description: "A vault password file (`--vault-password-file ~/.vault_pass.txt`, \
                      `vault_password_file` in ansible.cfg): the password alone on its line, \
                      which decrypts every vault-encrypted variable and file of the project.",
    },
    FileRule {
        id: "file-redis-cli-history-password",
        name: "Password in redis-cli history",
        severity: Severity::High,
        description: "An `AUTH [user] password` or `CONFIG SET requirepass|masterauth password` \
                      typed at redis-cli, kept in ~/.rediscli_history.",
    },
    FileRule {
        id: "file-svn-password",
        name: "Subversion cached password",
        severity: Severity::High,
        description: "A password Subversion cached in clear text under \
                      ~/.subversion/auth/svn.simple/ (`store-plaintext-passwords`).",
    },
    FileRule {
        id: "file-pgbouncer-userlist-password",
        name: "Password in a PgBouncer auth file",
        severity: Severity::High,
        description: "A `\"user\" \"password\"` line of PgBouncer's auth_file (userlist.txt): a \
                      clear-text password, or an md5 or SCRAM secret that PgBouncer (and \
                      anyone holding it) logs in to PostgreSQL with.",
    },
    FileRule {
        id: "file-davfs2-password",
        name: "Password in davfs2 secrets",
        severity: Severity::High,
        description: "A WebDAV server or proxy password in davfs2's secrets file \
                      (`url user password`).",
    },
    FileRule {
        id: "file-s3fs-password",
        name: "Secret key in an s3fs password file",
        severity: Severity::High,
        description: "The secret key of an S3 (or S3-compatible) bucket mount in s3fs-fuse's \
                      password file (`[bucket:]ACCESS_KEY:SECRET_KEY`).",
    },
    FileRule {
        id: "file-jenkins-master-key",
        name: "Jenkins master key",
        severity: Severity::Critical,
        description: "JENKINS_HOME/secrets/master.key: the key that decrypts \
                      hudson.util.Secret and through it every credential, token and password \
                      Jenkins stores.",
    },
    FileRule {
        id: "file-jenkins-initial-admin-password",
        name: "Jenkins initial admin password",
        severity: Severity::High,
        description: "JENKINS_HOME/secrets/initialAdminPassword: the password of the `admin` \
                      account the setup wizard creates (32 hex digits), valid until someone \
                      changes it; an image built from a configured Jenkins home ships it.",
    },
    FileRule {
        id: "file-ldap-bind-password",
        name: "LDAP bind password file",
        severity: Severity::High,
        description: "/etc/ldap.secret, /etc/pam_ldap.secret or /etc/libnss-ldap.secret: the \
                      password of the LDAP `rootbinddn` that libpam-ldap and libnss-ldap bind \
                      with, alone on its line.",
    },
    FileRule {
        id: "file-snyk-configstore-token",
        name: "Snyk CLI token in its configstore file",
        severity: Severity::High,
        description: "~/.config/configstore/snyk.json: the API token `snyk auth` saved (the \
                      `api` value, a UUID), which acts as the user in Snyk's API.",
    },
    FileRule {
        id: "file-openvpn-auth-user-pass",
        name: "OpenVPN auth-user-pass file",
        severity: Severity::High,
        description: "The file an OpenVPN config names with `auth-user-pass FILE` (kept beside it, \
                      under an `openvpn` directory): the user name on the first line, the \
                      password on the second.",
    },
    FileRule {
        id: "file-erlang-cookie",
        name: "Erlang distribution cookie",
        severity: Severity::Critical,
        description: "`.erlang.cookie` (RabbitMQ's /var/lib/rabbitmq, CouchDB, any Erlang \
                      release): the shared secret of Erlang distribution; a node that knows it \
                      joins the cluster and runs any code on every node.",
    },
    FileRule {
        id: "file-nexus-admin-password",
        name: "Nexus initial admin password",
        severity: Severity::High,
        description: "`admin.password` in a Nexus Repository data directory: the generated \
                      password of the `admin` user, a UUID, valid until the setup wizard \
                      changes it.",
    },
    FileRule {
        id: "file-ppp-secret",
        name: "PPP CHAP/PAP secret",
        severity: Severity::High,
        description: "A secret in /etc/ppp/chap-secrets or pap-secrets (`client server secret \
                      [addresses]`): the password of a PPP, PPTP or L2TP login.",
    },
    FileRule {
        id: "file-ntp-symmetric-key",
        name: "NTP symmetric key",
        severity: Severity::Medium,
        description: "A key of ntpd's `ntp.keys` or chrony's `chrony.keys` (`ID TYPE KEY`): \
                      whoever has it authenticates time to the clients that trust it.",
    },
    FileRule {
        id: "file-zerotier-identity-secret",
        name: "ZeroTier node identity secret",
        severity: Severity::High,
        description: "`identity.secret` of a ZeroTier node (`address:0:public:private`): the \
                      private half lets another machine take the node's address and network \
                      memberships.",
    },
    FileRule {
        id: "file-solana-keypair",
        name: "Solana keypair file",
        severity: Severity::Critical,
        description: "A Solana CLI keypair (`~/.config/solana/id.json`, Anchor's \
                      `*-keypair.json`): a JSON array of the 64 bytes of an ed25519 key pair, \
                      the first 32 the secret; it moves the account's funds and upgrades its \
                      programs.",
    },
    FileRule {
        id: "file-vnc-password",
        name: "VNC password file",
        severity: Severity::High,
        description: "`~/.vnc/passwd` as vncpasswd writes it: the password DES-encrypted under \
                      a key printed in every VNC implementation's source, so anyone reads it \
                      back.",
    },
    FileRule {
        id: "file-tls-psk",
        name: "TLS pre-shared key file",
        severity: Severity::High,
        description: "A `*.psk` file holding one hex pre-shared key (Zabbix's `TLSPSKFile`, \
                      32 to 512 hex digits): with it and the PSK identity, anyone talks to \
                      the agent or server as a trusted peer.",
    },
    FileRule {
        id: "file-vault-token",
        name: "Vault token in ~/.vault-token",
        severity: Severity::Critical,
        description: "The token the Vault CLI saved at login (`vault login`), alone in the file: \
                      any token form, the pre-1.10 `s.` ones included.",
    },
];

/// The file detectors' rules, in the order [`detect`] refers to them.
pub fn rules() -> Vec<RuleInfo> {
    RULES
        .iter()
        .map(|r| RuleInfo {
            id: r.id.into(),
            name: r.name.into(),
            severity: r.severity,
            detector: Detector::File,
            description: r.description.into(),
            references: vec![],
            // Any KEY=value of a .env file is a catch-all: a provider rule on the
            // same bytes names the credential better, whatever its severity.
            rank: if r.id == "file-env-secret" { 2 } else { 3 },
            checksummed: false,
        })
        .collect()
}

/// A detector's finding: rule id, byte offset, secret.
type Found = (&'static str, usize, Vec<u8>);

/// A credential-file parser: raw bytes, the same as text, findings out.
type Parser = fn(&[u8], &str, &mut Vec<Found>);

/// Runs the detector the file's name calls for (if any) over its bytes.
/// `first_rule` is the scanner index of the first file rule.
/// Placeholder values are dropped and counted in `placeholders`.
pub fn detect(path: &str, data: &[u8], first_rule: usize, placeholders: &AtomicU64) -> Vec<Hit> {
    let name = file_name(path);
    let mut found: Vec<Found> = Vec::new();
    // Most files are none of these: decide by name before decoding any text.
    let is_env = name == ".env" || name.starts_with(".env.") || name.ends_with(".env");
    let parser: Option<Parser> = match name {
        "config.json" if path.contains("/.docker/") => Some(docker_config),
        ".git-credentials" => Some(|_, t, f| git_credentials(t, f)),
        ".netrc" | "_netrc" => Some(|_, t, f| netrc(t, f)),
        _ if is_apt_auth_conf(path) => Some(|_, t, f| netrc(t, f)),
        ".pypirc" => Some(|_, t, f| key_values(t, &["password"], "file-pypirc-password", f)),
        ".npmrc" => Some(|_, t, f| npmrc(t, f)),
        "credentials" if path.contains("/.aws/") => Some(|_, t, f| {
            key_values(
                t,
                &["aws_secret_access_key", "aws_session_token"],
                "file-aws-credentials",
                f,
            )
        }),
        "shadow" | "shadow-" | "gshadow" if path.starts_with("/etc/") => {
            Some(|_, t, f| shadow(t, f))
        }
        ".htpasswd" | "htpasswd" => Some(|_, t, f| htpasswd(t, f)),
        ".vault-token" => Some(|_, t, f| whole_file_token(t, "file-vault-token", f)),
        ".curlrc" | "_curlrc" => Some(|_, t, f| curlrc(t, f)),
        _ if is_rails_key_file(path) => Some(|_, t, f| {
            let key = t.trim();
            if key.len() == 32
                && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                whole_file_token(t, "file-rails-master-key", f);
            }
        }),
        ".pgpass" | "pgpass.conf" => Some(|_, t, f| pgpass(t, f)),
        "rclone.conf" | ".rclone.conf" => Some(|_, t, f| rclone_conf(t, f)),
        "sasl_passwd" => Some(|_, t, f| sasl_passwd(t, f)),
        "msmtprc" | ".msmtprc" => Some(|_, t, f| msmtprc(t, f)),
        "ssmtp.conf" => Some(|_, t, f| {
            key_values_exact(t, "AuthPass", '=', "file-smtp-relay-password", f);
        }),
        _ if is_ansible_vault_password_file(name) => {
            Some(|_, t, f| first_line_password(t, "file-ansible-vault-password", f))
        }
        ".rediscli_history" => Some(|_, t, f| rediscli_history(t, f)),
        // Named by the MD5 of the realm.
        _ if name.len() == 32 && path.contains("/svn.simple/") => Some(|_, t, f| svn_simple(t, f)),
        "userlist.txt" => Some(|_, t, f| pgbouncer_userlist(t, f)),
        "secrets" if matches!(file_name(parent(path)), "davfs2" | ".davfs2") => {
            Some(|_, t, f| davfs2_secrets(t, f))
        }
        "passwd-s3fs" | ".passwd-s3fs" => Some(|_, t, f| s3fs_passwd(t, f)),
        _ if may_be_openvpn_credentials(path) => Some(|_, t, f| openvpn_auth_user_pass(t, f)),
        _ if name.ends_with(".psk") => Some(|_, t, f| {
            let key = t.trim();
            if (32..=512).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_hexdigit()) {
                found_whole(t, "file-tls-psk", f);
            }
        }),
        ".erlang.cookie" => Some(|_, t, f| whole_file_token(t, "file-erlang-cookie", f)),
        "admin.password" => Some(|_, t, f| {
            if is_uuid(t.trim()) {
                found_whole(t, "file-nexus-admin-password", f);
            }
        }),
        "chap-secrets" | "pap-secrets" => Some(|_, t, f| ppp_secrets(t, f)),
        "ntp.keys" | "chrony.keys" => Some(|_, t, f| ntp_keys(t, f)),
        "identity.secret" => Some(|_, t, f| zerotier_identity(t, f)),
        _ if name.ends_with("keypair.json") || (name == "id.json" && path.contains("/solana/")) => {
            Some(|_, t, f| solana_keypair(t, f))
        }
        "passwd" if file_name(parent(path)) == ".vnc" => Some(|d, _, f| {
            // vncpasswd writes 8 bytes (16 with a view-only password).
            if matches!(d.len(), 8 | 16) {
                f.push(("file-vnc-password", 0, d.to_vec()));
            }
        }),
        "initialAdminPassword" if file_name(parent(path)) == "secrets" => Some(|_, t, f| {
            let key = t.trim();
            if key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
                found_whole(t, "file-jenkins-initial-admin-password", f);
            }
        }),
        "ldap.secret" | "pam_ldap.secret" | "libnss-ldap.secret" if path.starts_with("/etc/") => {
            Some(|_, t, f| first_line_password(t, "file-ldap-bind-password", f))
        }
        "snyk.json" if file_name(parent(path)) == "configstore" => {
            Some(|d, _, f| json_string_field(d, "api", "file-snyk-configstore-token", f))
        }
        "master.key" if file_name(parent(path)) == "secrets" => Some(|_, t, f| {
            let key = t.trim();
            if (64..=1024).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_hexdigit()) {
                found_whole(t, "file-jenkins-master-key", f);
            }
        }),
        _ if is_keytab(name, data) => {
            Some(|d, _, f| f.push(("file-kerberos-keytab", 0, d.to_vec())))
        }
        "terraform.tfstate" | "terraform.tfstate.backup" => Some(|d, _, f| tfstate(d, f)),
        _ if may_be_kubeconfig(path) => Some(|_, t, f| {
            if is_kubeconfig(t) {
                kubeconfig(t, f);
            }
        }),
        _ if is_env => Some(|_, t, f| dotenv(t, f)),
        // A Secret manifest says `kind: Secret`: JSON and YAML files without the
        // word (package.json, most of a node_modules tree) are not decoded as text.
        _ if [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e))
            && memchr::memmem::find(data, b"Secret").is_some() =>
        {
            Some(|_, t, f| kubernetes_secret(t, f))
        }
        _ => None,
    };
    if let Some(parse) = parser {
        parse(data, &String::from_utf8_lossy(data), &mut found);
    }
    // A truststore of public certificates (the JRE's cacerts) is not a credential.
    if let Some(kind) = keystore::kind(name, data)
        && keystore::holds_private_material(kind, data)
    {
        // The whole keystore is the secret; its bytes are what a responder must rotate.
        found.push(("file-keystore", 0, data.to_vec()));
    }
    if der_key::is_private_key(data) {
        found.push(("file-der-private-key", 0, data.to_vec()));
    }
    // Lines are counted in one pass over the file, in offset order.
    found.sort_by_key(|f| f.1);
    let (mut counted_to, mut newlines) = (0usize, 0u64);
    found
        .into_iter()
        // A keystore is binary: template-like bytes inside it mean nothing.
        .filter(|(id, _, s)| {
            // Binary stores are not text; a dotenv value is contextual, so stock and
            // template words count too (other credential files hold what they hold).
            let placeholder = match *id {
                "file-keystore" | "file-kerberos-keytab" | "file-der-private-key" => false,
                "file-env-secret" => filter::is_placeholder(s) || filter::is_placeholder_word(s),
                _ => filter::is_placeholder(s),
            };
            if placeholder {
                placeholders.fetch_add(1, Ordering::Relaxed);
            }
            !s.is_empty() && !placeholder
        })
        .filter_map(|(id, off, secret)| {
            let idx = RULES.iter().position(|r| r.id == id)?;
            let off_in = off.min(data.len());
            newlines += memchr::memchr_iter(b'\n', &data[counted_to..off_in]).count() as u64;
            counted_to = off_in;
            let line = newlines + 1;
            Some(Hit {
                rule: first_rule + idx,
                offset: off as u64,
                line,
                secret: Secret::new(secret),
                validation: None,
                failed_check: false,
                // The stored bytes hold the obscured form; the secret is what it reveals.
                decoding: if id == "file-rclone-obscured-password" {
                    vec!["rclone-obscure".to_owned()]
                } else {
                    Vec::new()
                },
                material: None,
            })
        })
        .collect()
}

/// Byte offset of `needle` in `hay` at or after `from` (0 when absent).
fn offset_of(hay: &str, needle: &str, from: usize) -> usize {
    hay.get(from..).and_then(|h| h.find(needle)).map_or(from, |i| from + i)
}

fn docker_config(data: &[u8], text: &str, found: &mut Vec<Found>) {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else { return };
    for entry in auths.values() {
        for field in ["auth", "password", "identitytoken", "registrytoken"] {
            let Some(value) = entry.get(field).and_then(|v| v.as_str()) else { continue };
            let secret = if field == "auth" {
                let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(value) else {
                    continue;
                };
                // user:password; the password is the secret.
                match raw.iter().position(|&b| b == b':') {
                    Some(i) if i + 1 < raw.len() => raw[i + 1..].to_vec(),
                    _ => continue,
                }
            } else {
                value.as_bytes().to_vec()
            };
            found.push(("file-docker-config-auth", offset_of(text, value, 0), secret));
        }
    }
}

fn git_credentials(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim();
        if let Some((_, rest)) = l.split_once("://")
            && let Some((userinfo, _)) = rest.split_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            found.push((
                "file-git-credentials",
                offset_of(text, password, at),
                password.as_bytes().to_vec(),
            ));
        }
        at += line.len();
    }
}

/// apt's credentials for private repositories (`apt_auth.conf(5)`): netrc
/// grammar, in `/etc/apt/auth.conf` or any file of `/etc/apt/auth.conf.d/`
/// (where Dockerfiles put an Artifactory or Nexus mirror's login).
fn is_apt_auth_conf(path: &str) -> bool {
    path == "/etc/apt/auth.conf"
        || path
            .strip_prefix("/etc/apt/auth.conf.d/")
            .is_some_and(|n| !n.is_empty() && !n.contains('/'))
}

/// curl's config file (`curl(1)`, `-K`): one option a line, long or short,
/// with or without dashes, its value after whitespace, `=` or `:`, quoted or
/// not. `user`/`-u` and `proxy-user`/`-U` take `name:password`.
fn curlrc(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_end_matches(['\n', '\r']);
        let body = l.trim_start();
        let opt_end = body.find(|c: char| c.is_whitespace() || c == '=' || c == ':');
        if let Some(end) = opt_end
            && matches!(body[..end].trim_start_matches('-'), "user" | "u" | "proxy-user" | "U")
        {
            let value =
                body[end..].trim_start_matches(|c: char| c.is_whitespace() || c == '=' || c == ':');
            let value = value
                .strip_prefix('"')
                .map_or(value.split_whitespace().next().unwrap_or(""), |q| {
                    q.split('"').next().unwrap_or("")
                });
            if let Some((_, password)) = value.split_once(':')
                && !password.is_empty()
            {
                let off = at + (l.len() - body.len()) + offset_of(body, password, end);
                found.push(("file-curlrc-password", off, password.as_bytes().to_vec()));
            }
        }
        at += line.len();
    }
}

/// Rails keeps the key of `config/credentials.yml.enc` in `config/master.key`,
/// and of `config/credentials/<env>.yml.enc` in `config/credentials/<env>.key`.
fn is_rails_key_file(path: &str) -> bool {
    let name = file_name(path);
    let dir = parent(path);
    (name == "master.key" && file_name(dir) == "config")
        || (name.ends_with(".key")
            && file_name(dir) == "credentials"
            && file_name(parent(dir)) == "config")
}

/// A file that holds one token and nothing else (a trailing newline aside):
/// one line, no spaces, 16 to 512 printable characters.
fn whole_file_token(text: &str, rule: &'static str, found: &mut Vec<Found>) {
    let token = text.trim();
    let plain = token.bytes().all(|b| b.is_ascii_graphic());
    if plain && (16..=512).contains(&token.len()) {
        found.push((rule, offset_of(text, token, 0), token.as_bytes().to_vec()));
    }
}

fn netrc(text: &str, found: &mut Vec<Found>) {
    let tokens: Vec<(usize, &str)> = text
        .split_ascii_whitespace()
        .map(|t| (t.as_ptr() as usize - text.as_ptr() as usize, t))
        .collect();
    for pair in tokens.windows(2) {
        if pair[0].1 == "password" {
            found.push(("file-netrc-password", pair[1].0, pair[1].1.as_bytes().to_vec()));
        }
    }
}

/// `key = value` / `key: value` lines for the given keys (case-insensitive).
fn key_values(text: &str, keys: &[&str], rule: &'static str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some((k, v)) = line.split_once(['=', ':']) {
            let k = k.trim().trim_matches('"').to_ascii_lowercase();
            let v = v.trim().trim_matches(['"', '\'']);
            if keys.iter().any(|want| k == *want || k.ends_with(&format!(":{want}")))
                && !v.is_empty()
            {
                found.push((rule, offset_of(text, v, at), v.as_bytes().to_vec()));
            }
        }
        at += line.len();
    }
}

fn npmrc(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some((k, v)) = line.split_once('=') {
            let key = k.trim();
            let v = v.trim().trim_matches(['"', '\'']);
            let is_secret = ["_auth", "_authToken", "_password"]
                .iter()
                .any(|s| key == *s || key.ends_with(&format!(":{s}")));
            if is_secret && !v.is_empty() {
                found.push(("file-npmrc-auth", offset_of(text, v, at), v.as_bytes().to_vec()));
            }
        }
        at += line.len();
    }
}

/// crypt(3) hashes: `$id$…` with a known scheme, or 13-char DES.
fn is_password_hash(h: &str) -> bool {
    const SCHEMES: &[&str] = &[
        "$1$", "$2a$", "$2b$", "$2y$", "$5$", "$6$", "$y$", "$gy$", "$7$", "$apr1$", "{SHA}",
        "{SSHA}",
    ];
    SCHEMES.iter().any(|s| h.starts_with(s)) && h.len() >= 20
        || (h.len() == 13 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/'))
}

fn shadow(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let mut fields = line.split(':');
        if let (Some(_user), Some(hash)) = (fields.next(), fields.next())
            && is_password_hash(hash)
        {
            found.push(("file-shadow-hash", offset_of(text, hash, at), hash.as_bytes().to_vec()));
        }
        at += line.len();
    }
}

fn htpasswd(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let Some((_, hash)) = line.trim_end().split_once(':') else {
            at += line.len();
            continue;
        };
        // nginx's `{PLAIN}` scheme keeps the password itself.
        if let Some(plain) = hash.strip_prefix("{PLAIN}").filter(|p| !p.is_empty()) {
            let secret = plain.as_bytes().to_vec();
            found.push(("file-htpasswd-plain-password", offset_of(text, plain, at), secret));
        } else if is_password_hash(hash) {
            found.push(("file-htpasswd-hash", offset_of(text, hash, at), hash.as_bytes().to_vec()));
        }
        at += line.len();
    }
}

/// rclone's config (`rclone.conf`, `~/.rclone.conf`): an INI section per
/// remote, each with a `type`. Passwords are stored obscured and revealed
/// here; the other credentials are stored as they are.
fn rclone_conf(text: &str, found: &mut Vec<Found>) {
    // (key, value, offset of the value) of the current section, and whether it has a type.
    let mut section: Vec<(&str, &str, usize)> = Vec::new();
    let mut typed = false;
    let mut flush = |section: &mut Vec<(&str, &str, usize)>, typed: bool| {
        if typed {
            for &(key, value, at) in section.iter() {
                rclone_value(key, value, at, found);
            }
        }
        section.clear();
    };
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim();
        if l.starts_with('[') && l.ends_with(']') {
            flush(&mut section, typed);
            typed = false;
        } else if !l.starts_with('#')
            && !l.starts_with(';')
            && let Some((k, v)) = l.split_once('=')
        {
            let (key, value) = (k.trim(), v.trim());
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
            typed |= key == "type" && !value.is_empty();
            if !value.is_empty() {
                section.push((key, value, offset_of(text, value, at)));
            }
        }
        at += line.len();
    }
    flush(&mut section, typed);
}

/// Options rclone stores as they are and that are credentials by themselves.
const RCLONE_PLAIN: &[&str] = &[
    "secret_access_key",
    "session_token",
    "client_secret",
    "key",
    "sas_url",
    "connection_string",
    "account_key",
    "api_key",
    "access_grant",
    "bearer_token",
];

fn rclone_value(key: &str, value: &str, at: usize, found: &mut Vec<Found>) {
    // rclone obscures every option it marks as a password: `pass`, `password`,
    // `password2`, `key_file_pass`, `api_password`, `mailbox_password`…
    let obscured = key == "pass" || key.ends_with("_pass") || key.contains("password");
    if obscured {
        if let Some(password) = rclone_reveal(value) {
            found.push(("file-rclone-obscured-password", at, password));
        }
    } else if RCLONE_PLAIN.contains(&key) {
        if value.len() >= 8 {
            found.push(("file-rclone-credential", at, value.as_bytes().to_vec()));
        }
    } else if key == "token" || key == "service_account_credentials" {
        // JSON: an OAuth token (its refresh token outlives the access token) or a
        // service account key file.
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(value) else { return };
        let field = ["refresh_token", "private_key", "access_token"]
            .into_iter()
            .find_map(|f| doc.get(f).and_then(|v| v.as_str()).filter(|v| v.len() >= 8));
        if let Some(secret) = field {
            // The offset of the field's JSON string (escapes make it differ from `secret`).
            let raw = serde_json::to_string(secret).unwrap_or_default();
            let off = value.find(raw.trim_matches('"')).map_or(at, |i| at + i);
            found.push(("file-rclone-credential", off, secret.as_bytes().to_vec()));
        }
    }
}

/// The key rclone's `lib/obscure` encrypts with (AES-256-CTR); public in its source.
const RCLONE_OBSCURE_KEY: [u8; 32] = [
    0x9c, 0x93, 0x5b, 0x48, 0x73, 0x0a, 0x55, 0x4d, 0x6b, 0xfd, 0x7c, 0x63, 0xc8, 0x86, 0xa9, 0x2b,
    0xd3, 0x90, 0x19, 0x8e, 0xb8, 0x12, 0x8a, 0xfb, 0xf4, 0xde, 0x16, 0x2b, 0x8b, 0x95, 0xf6, 0x38,
];

/// `rclone reveal`: base64url without padding of a 16-byte IV and the
/// AES-256-CTR ciphertext. `None` unless the result is text: at least 4
/// characters, valid UTF-8, no control characters (a value that is not
/// obscured decodes to random bytes, which almost never pass).
fn rclone_reveal(value: &str) -> Option<Vec<u8>> {
    use aes::cipher::{KeyIvInit, StreamCipher};
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .ok()?;
    if raw.len() < 16 + 4 {
        return None;
    }
    let (iv, body) = raw.split_at(16);
    let mut plain = body.to_vec();
    let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(&RCLONE_OBSCURE_KEY, iv).ok()?;
    cipher.apply_keystream(&mut plain);
    let text = std::str::from_utf8(&plain).ok()?;
    (!text.chars().any(char::is_control)).then_some(plain)
}

/// The whole text, trimmed, as one secret.
fn found_whole(text: &str, rule: &'static str, found: &mut Vec<Found>) {
    let value = text.trim();
    found.push((rule, offset_of(text, value, 0), value.as_bytes().to_vec()));
}

/// Lines' non-comment fields, with the byte offset of each field.
fn fields(text: &str) -> impl Iterator<Item = Vec<(usize, &str)>> {
    let base = text.as_ptr() as usize;
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(move |l| l.split_ascii_whitespace().map(|f| (f.as_ptr() as usize - base, f)).collect())
}

/// `KEY<sep>value` lines for one key, exactly as written (sSMTP's `AuthPass=`).
fn key_values_exact(text: &str, key: &str, sep: char, rule: &'static str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some((k, v)) = line.split_once(sep)
            && k.trim() == key
        {
            let v = v.trim();
            if !v.is_empty() {
                found.push((rule, offset_of(text, v, at), v.as_bytes().to_vec()));
            }
        }
        at += line.len();
    }
}

/// postfix's `smtp_sasl_password_maps` source: `destination user:password`.
fn sasl_passwd(text: &str, found: &mut Vec<Found>) {
    for line in fields(text) {
        if let [_, (at, login)] = line[..]
            && let Some((user, password)) = login.split_once(':')
            && !user.is_empty()
            && !password.is_empty()
        {
            let off = at + user.len() + 1;
            found.push(("file-smtp-relay-password", off, password.as_bytes().to_vec()));
        }
    }
}

/// msmtp's configuration: `password VALUE` (quoted when it holds spaces).
fn msmtprc(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim();
        if let Some(rest) = body.strip_prefix("password")
            && rest.starts_with([' ', '\t'])
        {
            let v = rest.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            if !v.is_empty() {
                found.push((
                    "file-smtp-relay-password",
                    offset_of(text, v, at),
                    v.as_bytes().to_vec(),
                ));
            }
        }
        at += line.len();
    }
}

/// The names Ansible's documentation and users give a vault password file:
/// `.vault_pass`, `vault_pass.txt`, `.vault-password`, `vault_passwd`…
fn is_ansible_vault_password_file(name: &str) -> bool {
    // Asked of every file: nothing is built unless the name could be one.
    if !name.contains("vault_pass") && !name.contains("vault-pass") {
        return false;
    }
    let stem = name.strip_prefix('.').unwrap_or(name);
    let stem = stem.strip_suffix(".txt").unwrap_or(stem);
    matches!(
        stem.replace('-', "_").as_str(),
        "vault_pass"
            | "vault_password"
            | "vault_passwd"
            | "ansible_vault_pass"
            | "ansible_vault_password"
    )
}

/// A file that holds one password on its only line: an Ansible vault
/// password file, libpam-ldap's `ldap.secret`. An executable one is a script
/// that prints it: not a secret by itself.
fn first_line_password(text: &str, rule: &'static str, found: &mut Vec<Found>) {
    let value = text.trim();
    let one_line = !value.contains('\n');
    let printable = value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if one_line && printable && !value.starts_with("#!") && (6..=256).contains(&value.len()) {
        found.push((rule, offset_of(text, value, 0), value.as_bytes().to_vec()));
    }
}

/// A file below an `openvpn` directory (`/etc/openvpn/client/auth.txt`,
/// `~/.config/openvpn/creds`) that is not one of OpenVPN's other kinds of
/// file (configs, keys, certificates, scripts); its documentation under
/// `/usr/share` is not configuration.
fn may_be_openvpn_credentials(path: &str) -> bool {
    const OTHER_KINDS: &[&str] =
        &[".conf", ".ovpn", ".crt", ".pem", ".key", ".csr", ".p12", ".sh", ".py", ".md", ".gz"];
    path.contains("/openvpn/")
        && !path.starts_with("/usr/share/")
        && !OTHER_KINDS.iter().any(|e| file_name(path).ends_with(e))
}

/// `auth-user-pass`'s format: exactly two lines, user then password, each
/// one word (OpenVPN reads them whole; a longer file is something else).
fn openvpn_auth_user_pass(text: &str, found: &mut Vec<Found>) {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let [user, password] = lines.as_slice() else {
        return;
    };
    let word = |w: &str| (1..=256).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_graphic());
    if word(user) && word(password) && password.len() >= 6 {
        let at = offset_of(text, password, user.len());
        found.push(("file-openvpn-auth-user-pass", at, password.as_bytes().to_vec()));
    }
}

/// A UUID in its 8-4-4-4-12 hex form.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// pppd's secrets files: `client server secret [addresses]`; a word may be
/// quoted, spaces and all.
fn ppp_secrets(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if !line.trim_start().starts_with('#')
            && let Some(&(from, secret)) = quoted_words(line).get(2)
            && !matches!(secret, "" | "*" | "-")
        {
            found.push(("file-ppp-secret", at + from, secret.as_bytes().to_vec()));
        }
        at += line.len();
    }
}

/// A line's words with their offsets: runs of non-space, or a `"…"` run
/// whose quotes are not part of the word.
fn quoted_words(line: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut i = 0;
    let b = line.as_bytes();
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
        } else if b[i] == b'"' {
            let end = line[i + 1..].find('"').map_or(b.len(), |e| i + 1 + e);
            words.push((i + 1, &line[i + 1..end]));
            i = end + 1;
        } else {
            let end = line[i..].find(|c: char| c.is_ascii_whitespace()).map_or(b.len(), |e| i + e);
            words.push((i, &line[i..end]));
            i = end;
        }
    }
    words
}

/// ntpd's and chrony's key files: `ID TYPE KEY` (chrony may write the key
/// as `HEX:…`).
fn ntp_keys(text: &str, found: &mut Vec<Found>) {
    for line in fields(text) {
        if let [(_, id), (_, _kind), (at, key), ..] = line.as_slice()
            && id.bytes().all(|b| b.is_ascii_digit())
            && key.len() >= 8
        {
            found.push(("file-ntp-symmetric-key", *at, key.as_bytes().to_vec()));
        }
    }
}

/// ZeroTier's `identity.secret`: `address:0:public:private`, hex.
fn zerotier_identity(text: &str, found: &mut Vec<Found>) {
    let value = text.trim();
    let parts: Vec<&str> = value.split(':').collect();
    if let [address, "0", public, private] = parts.as_slice()
        && address.len() == 10
        && public.len() >= 64
        && private.len() >= 64
        && private.bytes().all(|b| b.is_ascii_hexdigit())
    {
        let at = offset_of(text, private, value.len() - private.len());
        found.push(("file-zerotier-identity-secret", at, private.as_bytes().to_vec()));
    }
}

/// A Solana keypair file: a JSON array of exactly 64 numbers of 0 to 255.
fn solana_keypair(text: &str, found: &mut Vec<Found>) {
    let value = text.trim();
    let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) else {
        return;
    };
    let bytes: Vec<Option<u8>> = inner.split(',').map(|n| n.trim().parse().ok()).collect();
    if bytes.len() == 64 && bytes.iter().all(Option::is_some) {
        found_whole(text, "file-solana-keypair", found);
    }
}

/// The string value of a top-level `field` of a JSON object (a configstore
/// file: `{"api": "…"}`), at the offset of its first byte.
fn json_string_field(data: &[u8], field: &str, rule: &'static str, found: &mut Vec<Found>) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(data)
    else {
        return;
    };
    let Some(serde_json::Value::String(value)) = map.get(field) else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let key = format!("\"{field}\"");
    let after_key = offset_of(&text, &key, 0);
    found.push((rule, offset_of(&text, value, after_key), value.as_bytes().to_vec()));
}

/// redis-cli's history: `AUTH [user] password`, `CONFIG SET requirepass|masterauth password`.
fn rediscli_history(text: &str, found: &mut Vec<Found>) {
    for line in fields(text) {
        let word = |i: usize| line.get(i).map(|f| f.1.to_ascii_lowercase());
        let value = match (word(0).as_deref(), line.len()) {
            (Some("auth"), 2 | 3) => line.last(),
            (Some("config"), 4)
                if word(1).as_deref() == Some("set")
                    && matches!(word(2).as_deref(), Some("requirepass" | "masterauth")) =>
            {
                line.last()
            }
            _ => None,
        };
        if let Some(&(at, v)) = value {
            let v = v.trim_matches(['"', '\'']);
            let off = if v.len() < line.last().map_or(0, |l| l.1.len()) { at + 1 } else { at };
            found.push(("file-redis-cli-history-password", off, v.as_bytes().to_vec()));
        }
    }
}

/// Subversion's auth cache: a hash dump, `K <len>\nkey\nV <len>\nvalue\n`
/// items up to `END`.
fn svn_simple(text: &str, found: &mut Vec<Found>) {
    let (mut i, mut key) = (0, "");
    while let Some(nl) = text.get(i..).and_then(|t| t.find('\n')) {
        let Some((kind, len)) = text[i..i + nl].split_once(' ') else { break };
        let Ok(len) = len.parse::<usize>() else { break };
        let start = i + nl + 1;
        let Some(item) = text.get(start..start + len) else { break };
        match kind {
            "K" => key = item,
            "V" if key == "password" && !item.is_empty() => {
                found.push(("file-svn-password", start, item.as_bytes().to_vec()));
            }
            "V" => {}
            _ => break,
        }
        i = start + len + 1;
    }
}

/// PgBouncer's auth_file: `"user" "password"` per line (`""` escapes a quote).
fn pgbouncer_userlist(text: &str, found: &mut Vec<Found>) {
    let mut hits = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim();
        if !l.is_empty() && !l.starts_with(';') && !l.starts_with('#') {
            // Both fields quoted, or this is not an auth file.
            let quoted: Vec<&str> = l.split('"').collect();
            if quoted.len() != 5 || !quoted[0].is_empty() || !quoted[2].trim().is_empty() {
                return;
            }
            let password = quoted[3];
            if !password.is_empty() {
                hits.push((
                    "file-pgbouncer-userlist-password",
                    offset_of(text, password, at),
                    password.as_bytes().to_vec(),
                ));
            }
        }
        at += line.len();
    }
    found.extend(hits);
}

/// davfs2's secrets: `url-or-mount-point user password` (or `proxy user password`).
fn davfs2_secrets(text: &str, found: &mut Vec<Found>) {
    for line in fields(text) {
        if let [_, _, (at, password)] = line[..] {
            let v = password.trim_matches('"');
            let off = if v.len() < password.len() { at + 1 } else { at };
            found.push(("file-davfs2-password", off, v.as_bytes().to_vec()));
        }
    }
}

/// s3fs-fuse's password file: `ACCESS_KEY:SECRET_KEY` or `bucket:ACCESS_KEY:SECRET_KEY`.
fn s3fs_passwd(text: &str, found: &mut Vec<Found>) {
    for line in fields(text) {
        if let [(at, entry)] = line[..]
            && let Some(i) = entry.rfind(':')
            && matches!(entry.matches(':').count(), 1 | 2)
            && i + 1 < entry.len()
        {
            found.push(("file-s3fs-password", at + i + 1, entry.as_bytes()[i + 1..].to_vec()));
        }
    }
}

/// `hostname:port:database:username:password`, with `\:` and `\\` escapes;
/// `#` starts a comment line.
fn pgpass(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_end_matches(['\n', '\r']);
        if !l.trim_start().starts_with('#') {
            // Split on unescaped colons, keeping where the fifth field starts.
            let (mut fields, mut escaped, mut start) = (0, false, None);
            for (i, c) in l.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    ':' => {
                        fields += 1;
                        if fields == 4 {
                            start = Some(i + 1);
                        }
                    }
                    _ => {}
                }
            }
            if let Some(s) = start.filter(|_| fields == 4)
                && s < l.len()
            {
                let password = l[s..].replace("\\:", ":").replace("\\\\", "\\");
                found.push(("file-pgpass-password", at + s, password.into_bytes()));
            }
        }
        at += line.len();
    }
}

/// A keytab by name (`*.keytab`, `krb5.keytab`) and structure: version
/// 0x0502 (or the older 0x0501) and a first entry of plausible size.
fn is_keytab(name: &str, data: &[u8]) -> bool {
    let named = name.ends_with(".keytab") || name == "keytab";
    match data {
        [0x05, 0x01 | 0x02, a, b, c, d, ..] if named => {
            let size = i32::from_be_bytes([*a, *b, *c, *d]);
            // An entry holds at least a principal, a timestamp and a key block.
            size > 16 && (size as usize) <= data.len() - 6
        }
        _ => false,
    }
}

fn may_be_kubeconfig(path: &str) -> bool {
    // Asked of every file: look only where a `.` or a `k` starts the word.
    let has = |hay: &[u8], first: u8, needle: &[u8]| {
        memchr::memchr_iter(first, hay).any(|i| hay[i..].starts_with(needle))
    };
    has(path.as_bytes(), b'.', b".kube/") && path.contains("/.kube/")
        || has(file_name(path).as_bytes(), b'k', b"kubeconfig")
}

fn is_kubeconfig(text: &str) -> bool {
    text.contains("apiVersion")
        && (text.contains("kind: Config") || text.contains("\"kind\": \"Config\""))
}

fn kubeconfig(text: &str, found: &mut Vec<Found>) {
    key_values(
        text,
        &["token", "password", "client-key-data", "id-token", "refresh-token"],
        "file-kubeconfig-credential",
        found,
    );
}

fn dotenv(text: &str, found: &mut Vec<Found>) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_start().trim_start_matches("export ");
        if let Some((k, v)) = l.split_once('=') {
            let key = k.trim().to_ascii_lowercase();
            let v = v.trim().trim_matches(['"', '\'']);
            let secretish = ["pass", "secret", "token", "key", "credential", "auth"]
                .iter()
                .any(|w| key.contains(w));
            // Placeholder words are kept here so that `detect` counts them when it drops them.
            let candidate = super::entropy::passes(super::entropy::ASSIGNMENT_RULE, v.as_bytes())
                || filter::is_placeholder_word(v.as_bytes());
            if secretish && candidate {
                found.push(("file-env-secret", offset_of(text, v, at), v.as_bytes().to_vec()));
            }
        }
        at += line.len();
    }
}

/// Sensitive string attributes of a Terraform state, in one pass over the
/// text: a state holds tens of thousands of them, so each value's offset
/// comes from where the tokenizer met it, never from a search.
fn tfstate(data: &[u8], found: &mut Vec<Found>) {
    // Only valid JSON is a state (checked without building a tree).
    if serde_json::from_slice::<serde::de::IgnoredAny>(data).is_err() {
        return;
    }
    let sensitive = |key: &str| {
        let key = key.to_ascii_lowercase();
        ["password", "secret", "private_key", "access_key", "token"].iter().any(|w| key.contains(w))
    };
    // Some(is the key sensitive) between `"key":` and its value.
    let mut pending: Option<bool> = None;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'"' => {
                let end = json_string_end(data, i);
                let mut next = end;
                while next < data.len() && data[next].is_ascii_whitespace() {
                    next += 1;
                }
                let text = || serde_json::from_slice::<String>(&data[i..end]).ok();
                if data.get(next) == Some(&b':') {
                    pending = Some(text().is_some_and(|k| sensitive(&k)));
                    i = next + 1;
                    continue;
                }
                if pending == Some(true)
                    && let Some(s) = text()
                    && s.len() >= 8
                    && !filter::is_placeholder_word(s.as_bytes())
                {
                    found.push(("file-terraform-state-secret", i + 1, s.into_bytes()));
                }
                pending = None;
                i = end;
            }
            b'{' | b'[' | b',' | b'}' | b']' => {
                pending = None;
                i += 1;
            }
            _ => i += 1,
        }
    }
    sensitive_attributes(data, found);
}

/// Values Terraform itself marks sensitive (each instance's
/// `sensitive_attributes`, paths of `get_attr`/`index` steps into its
/// `attributes`): `random_password`'s `result`, a provider's `sensitive`
/// attribute, whatever their names. Placed at the value's first occurrence;
/// a value the name test above already reported there is not added twice.
fn sensitive_attributes(data: &[u8], found: &mut Vec<Found>) {
    if memchr::memmem::find(data, b"\"sensitive_attributes\"").is_none() {
        return;
    }
    let Ok(state) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let instances = state["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["instances"].as_array().into_iter().flatten());
    for instance in instances {
        for path in instance["sensitive_attributes"].as_array().into_iter().flatten() {
            let mut value = &instance["attributes"];
            for step in path.as_array().into_iter().flatten() {
                value = match (step["type"].as_str(), &step["value"]) {
                    (Some("get_attr"), serde_json::Value::String(name)) => &value[name.as_str()],
                    (Some("index"), index) => match &index["value"] {
                        serde_json::Value::String(key) => &value[key.as_str()],
                        n => n.as_u64().map_or(&serde_json::Value::Null, |i| {
                            value.get(i as usize).unwrap_or(&serde_json::Value::Null)
                        }),
                    },
                    _ => &serde_json::Value::Null,
                };
            }
            let Some(secret) = value.as_str() else { continue };
            if secret.len() < 8 || filter::is_placeholder_word(secret.as_bytes()) {
                continue;
            }
            let Ok(quoted) = serde_json::to_string(secret) else { continue };
            let Some(at) = memchr::memmem::find(data, quoted.as_bytes()) else { continue };
            if !found.iter().any(|f| f.1 == at + 1) {
                found.push(("file-terraform-state-secret", at + 1, secret.as_bytes().to_vec()));
            }
        }
    }
}

/// The index just past the closing quote of the JSON string opening at `start`.
fn json_string_end(data: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(k) = memchr::memchr2(b'"', b'\\', &data[i..]) {
        let at = i + k;
        if data[at] == b'\\' {
            i = at + 2;
            if i >= data.len() {
                return data.len();
            }
        } else {
            return at + 1;
        }
    }
    data.len()
}

/// The `data` (base64) and `stringData` values of a Kubernetes Secret
/// manifest (YAML block style, as `kubectl` and Helm write it).
fn kubernetes_secret(text: &str, found: &mut Vec<Found>) {
    let is_secret = text.lines().any(|l| {
        let l = l.trim();
        l == "kind: Secret" || l.starts_with("\"kind\": \"Secret\"")
    });
    if !is_secret {
        return;
    }
    let mut at = 0;
    // (indentation of the `data:`/`stringData:` key, values are base64)
    let mut section: Option<(usize, bool)> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let content = line.trim();
        match content {
            "data:" => section = Some((indent, true)),
            "stringData:" => section = Some((indent, false)),
            _ if content.is_empty() || content.starts_with('#') => {}
            _ => match section {
                Some((base, base64)) if indent > base => {
                    if let Some((_, value)) = content.split_once(':') {
                        let value = value.trim().trim_matches(['"', '\'']);
                        let secret = if base64 {
                            base64::engine::general_purpose::STANDARD.decode(value).ok()
                        } else {
                            Some(value.as_bytes().to_vec())
                        };
                        if let Some(secret) = secret.filter(|s| s.len() >= 6) {
                            found.push((
                                "file-kubernetes-secret",
                                offset_of(text, value, at),
                                secret,
                            ));
                        }
                    }
                }
                _ => section = None,
            },
        }
        at += line.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(path: &str, data: &str) -> Vec<(String, String)> {
        let rules = rules();
        detect(path, data.as_bytes(), 0, &AtomicU64::new(0))
            .into_iter()
            .map(|h| {
                (rules[h.rule].id.clone(), String::from_utf8_lossy(h.secret.expose()).into_owned())
            })
            .collect()
    }

    #[test]
    fn credential_files() {
        let auth = base64::engine::general_purpose::STANDARD.encode("robot:Zx8vQ2mLp9sKd4Rt");
        let docker = format!(r#"{{"auths":{{"registry.example.test":{{"auth":"{auth}"}}}}}}"#);
        assert_eq!(
            ids("/root/.docker/config.json", &docker),
            vec![("file-docker-config-auth".into(), "Zx8vQ2mLp9sKd4Rt".into())]
        );
        assert_eq!(
            ids("/root/.git-credentials", "https://bob:Hq7pW2xLk9vM@git.example.test\n")[0].1,
            "Hq7pW2xLk9vM"
        );
        assert_eq!(
            ids("/root/.netrc", "machine h login bob password Tr0ub4dor3xQ\n")[0].1,
            "Tr0ub4dor3xQ"
        );
        for apt in ["/etc/apt/auth.conf", "/etc/apt/auth.conf.d/mirror.conf"] {
            let conf = "machine apt.example.test/debian\nlogin ci\npassword Kv7qL2xWm9Rt\n";
            assert_eq!(ids(apt, conf), vec![("file-netrc-password".into(), "Kv7qL2xWm9Rt".into())]);
        }
        assert!(ids("/etc/apt/apt.conf.d/mirror.conf", "password Kv7qL2xWm9Rt\n").is_empty());
        // nginx's clear-text scheme, beside a hash.
        let htpasswd =
            "ops:{PLAIN}Wq4!kTz8vLm2\nweb:$apr1$Xx0Yy1Zz$0123456789abcdefghijkl\nnone:{PLAIN}\n";
        assert_eq!(
            ids("/etc/nginx/.htpasswd", htpasswd),
            vec![
                ("file-htpasswd-plain-password".into(), "Wq4!kTz8vLm2".into()),
                ("file-htpasswd-hash".into(), "$apr1$Xx0Yy1Zz$0123456789abcdefghijkl".into())
            ]
        );
        for curlrc in [
            "user = \"ci:Hn3vQ8zLk2Tx\"\n",
            "# proxy login\n--proxy-user ci:Hn3vQ8zLk2Tx\n",
            "-u ci:Hn3vQ8zLk2Tx\n",
            "user: ci:Hn3vQ8zLk2Tx\n",
        ] {
            let got = ids("/root/.curlrc", curlrc);
            assert_eq!(
                got,
                vec![("file-curlrc-password".into(), "Hn3vQ8zLk2Tx".into())],
                "{curlrc}"
            );
        }
        assert!(ids("/root/.curlrc", "user = \"ci\"\nuser-agent = \"x:y\"\n").is_empty());
        let vault = ids("/root/.vault-token", "s.Qm7vL2xKt9Wz4Rp8Nc3Hj6Bd\n");
        assert_eq!(vault, vec![("file-vault-token".into(), "s.Qm7vL2xKt9Wz4Rp8Nc3Hj6Bd".into())]);
        let psk = "7d3e9a1c5b2f80461e9d3c7a5b1f2e8d4c6a0b9e7f1d3c5a";
        assert_eq!(
            ids("/etc/zabbix/zabbix_agentd.psk", psk),
            vec![("file-tls-psk".into(), psk.into())]
        );
        assert!(ids("/etc/zabbix/notes.psk", "not hex at all, a note").is_empty());
        let cookie = "QWERTYZXCVBNMASDFGHJ";
        assert_eq!(
            ids("/var/lib/rabbitmq/.erlang.cookie", cookie),
            vec![("file-erlang-cookie".into(), cookie.into())]
        );
        let uuid = "3b7e4c1a-9f2d-4e8b-a6c5-1d0f7e2b9a43";
        assert_eq!(
            ids("/nexus-data/admin.password", uuid),
            vec![("file-nexus-admin-password".into(), uuid.into())]
        );
        assert!(ids("/srv/admin.password", "see the manual").is_empty());
        let ppp = "# client server secret IP\nvpnuser * Rk4!vQz8Lm2 *\nother pptpd \"Tq8 vLm\" *\n";
        assert_eq!(
            ids("/etc/ppp/chap-secrets", ppp),
            vec![
                ("file-ppp-secret".into(), "Rk4!vQz8Lm2".into()),
                ("file-ppp-secret".into(), "Tq8 vLm".into())
            ],
            "a quoted secret is taken whole, spaces and all"
        );
        let ntp = "# ntp keys\n1 SHA1 9f2c4e7a1b3d5f60718293a4b5c6d7e8f9012345\n";
        assert_eq!(
            ids("/etc/ntp.keys", ntp),
            vec![(
                "file-ntp-symmetric-key".into(),
                "9f2c4e7a1b3d5f60718293a4b5c6d7e8f9012345".into()
            )]
        );
        let public = "ab".repeat(64);
        let private = "cd".repeat(64);
        let zt = format!("a1b2c3d4e5:0:{public}:{private}");
        assert_eq!(
            ids("/var/lib/zerotier-one/identity.secret", &zt),
            vec![("file-zerotier-identity-secret".into(), private.clone())]
        );
        let pair: Vec<String> = (0..64).map(|i| (i * 37 % 256).to_string()).collect();
        let pair = format!("[{}]", pair.join(","));
        for path in ["/root/.config/solana/id.json", "/app/target/deploy/prog-keypair.json"] {
            assert_eq!(ids(path, &pair)[0].0, "file-solana-keypair", "{path}");
        }
        assert!(ids("/root/.config/solana/id.json", "[1,2,3]").is_empty());
        assert!(ids("/app/data/id.json", &pair).is_empty(), "not a solana directory");
        let vpn = "vpnuser\nQm4vTz8Lk2Wx\n";
        for path in ["/etc/openvpn/client/auth.txt", "/root/.config/openvpn/creds"] {
            let got = ids(path, vpn);
            assert_eq!(got, vec![("file-openvpn-auth-user-pass".into(), "Qm4vTz8Lk2Wx".into())]);
        }
        assert!(ids("/etc/openvpn/client/client.conf", vpn).is_empty(), "a config");
        assert!(ids("/usr/share/doc/openvpn/README", vpn).is_empty(), "documentation");
        assert!(ids("/etc/openvpn/update-resolv-conf", "#!/bin/sh\nexit 0\nfoo\n").is_empty());
        assert!(ids("/etc/openvpn/notes", "two words\nhere now\n").is_empty());
        let initial = "9b1f0c7e4d2a48e6b3c5a7f1d0e2c4b6\n";
        assert_eq!(
            ids("/var/jenkins_home/secrets/initialAdminPassword", initial),
            vec![("file-jenkins-initial-admin-password".into(), initial.trim().into())]
        );
        assert!(ids("/var/jenkins_home/secrets/initialAdminPassword", "see the log\n").is_empty());
        assert!(ids("/app/initialAdminPassword", initial).is_empty(), "not in secrets/");
        for name in ["/etc/ldap.secret", "/etc/pam_ldap.secret", "/etc/libnss-ldap.secret"] {
            let got = ids(name, "Zq7vLm2Rk9Tx\n");
            assert_eq!(got, vec![("file-ldap-bind-password".into(), "Zq7vLm2Rk9Tx".into())]);
        }
        assert!(ids("/srv/ldap.secret", "Zq7vLm2Rk9Tx\n").is_empty(), "outside /etc");
        assert!(ids("/etc/ldap.secret", "one\ntwo lines\n").is_empty());
        let snyk = "{\n\t\"api\": \"3f9a6c2e-8b1d-4e7f-a5c3-9d2b7e1f0a84\",\n\t\"org\": \"ci\"\n}";
        let got = ids("/root/.config/configstore/snyk.json", snyk);
        assert_eq!(
            got,
            vec![(
                "file-snyk-configstore-token".into(),
                "3f9a6c2e-8b1d-4e7f-a5c3-9d2b7e1f0a84".into()
            )]
        );
        assert!(ids("/root/.config/configstore/snyk.json", "{\"org\": \"ci\"}").is_empty());
        assert!(ids("/root/.config/configstore/other.json", snyk).is_empty());
        let rails = "0f343b0931126a20f133d67c2b018a3b\n";
        for key_file in ["/app/config/master.key", "/app/config/credentials/production.key"] {
            assert_eq!(ids(key_file, rails)[0].0, "file-rails-master-key", "{key_file}");
        }
        assert!(ids("/app/master.key", rails).is_empty(), "not in config/");
        assert!(ids("/app/config/master.key", "-----BEGIN RSA PRIVATE KEY-----\n").is_empty());
        assert_eq!(
            ids(
                "/etc/shadow",
                "root:*:19000:0:99999:7:::\nbob:$6$salt$abcdefghijklmnopqrstuv:19000::::::\n"
            )
            .len(),
            1
        );
        assert!(ids("/etc/shadow", "root:!:19000::::::\nnobody:*:1::::::\n").is_empty());
        assert_eq!(
            ids("/srv/.npmrc", "//registry.npmjs.org/:_authToken=Qm9iOlNlY3JldFRva2Vu9x\n").len(),
            1
        );
        assert_eq!(
            ids(
                "/root/.aws/credentials",
                "[default]\naws_secret_access_key = Vb7Hq2Lm9XpR4sT8wZ1cK5nJ3yF6gD0aE2uI7oPq\n"
            )
            .len(),
            1
        );
        assert!(ids("/app/.env", "DEBUG=true\nAPI_TOKEN=changeme\n").is_empty());
        assert_eq!(
            ids(
                "/root/.pgpass",
                "# comment\ndb.corp.test:6432:app:app:Vq8\\:kT2zLm4w\n*:*:*:ro:${PW}\nbad:line\n"
            ),
            vec![("file-pgpass-password".into(), "Vq8:kT2zLm4w".into())]
        );
        assert_eq!(ids("/app/.env", "API_TOKEN=Zq8Lm3Xv9Rt2Wp7Kc4Hs\n").len(), 1);
    }

    #[test]
    fn rclone_passwords_are_revealed_other_credentials_kept() {
        // `rclone obscure Tq8vLm3Zx7Kw` (rclone v1.60.1).
        let obscured = "WiL50jrcGtWFg7KUdqn3IDh_8CP2UXMy2xDuGQ";
        assert_eq!(rclone_reveal(obscured).as_deref(), Some(&b"Tq8vLm3Zx7Kw"[..]));
        let conf = format!(
            "[backup]\ntype = sftp\nhost = h.corp.test\npass = {obscured}\nask_password = false\n\n\
             [plain]\ntype = ftp\npass = Tq8vLm3Zx7Kw9000\n\n\
             [s3]\ntype = s3\nsecret_access_key = Vb7Hq2Lm9XpR4sT8wZ1cK5nJ3yF6gD0aE2uI7oPq\n\
             [drive]\ntype = drive\nclient_secret = Qm7vL2xKt9Wz4Rp8\n\
             token = {{\"access_token\":\"ya29.x\",\"refresh_token\":\"1//0gRk4Vx9Qm2zLp7tWn5\"}}\n\
             [notaremote]\npass = {obscured}\n"
        );
        let hits =
            detect("/root/.config/rclone/rclone.conf", conf.as_bytes(), 0, &AtomicU64::new(0));
        let rules = rules();
        let got: Vec<(&str, String, usize)> = hits
            .iter()
            .map(|h| {
                let id = rules[h.rule].id.as_str();
                (id, String::from_utf8_lossy(h.secret.expose()).into_owned(), h.offset as usize)
            })
            .collect();
        let at = |needle: &str| conf.find(needle).unwrap();
        assert_eq!(
            got,
            [
                ("file-rclone-obscured-password", "Tq8vLm3Zx7Kw".to_owned(), at(obscured)),
                (
                    "file-rclone-credential",
                    "Vb7Hq2Lm9XpR4sT8wZ1cK5nJ3yF6gD0aE2uI7oPq".to_owned(),
                    at("Vb7Hq")
                ),
                ("file-rclone-credential", "Qm7vL2xKt9Wz4Rp8".to_owned(), at("Qm7vL")),
                ("file-rclone-credential", "1//0gRk4Vx9Qm2zLp7tWn5".to_owned(), at("1//0g")),
            ]
        );
        assert_eq!(hits[0].decoding, ["rclone-obscure"]);
        // A value that is not obscured (rclone itself refuses it) reveals nothing.
        for not in ["Tq8vLm3Zx7Kw9000", "short", "WiL50jrcGtWFg7KUdqn3IDh", "!!not base64!!"] {
            assert_eq!(rclone_reveal(not), None, "{not}");
        }
    }

    #[test]
    fn mail_relay_vault_history_cache_and_mount_files() {
        let svn = "K 8\npasscred\nV 6\nsimple\nK 8\npassword\nV 12\nHq7pW 2xLk9v\nK 8\nusername\nV 2\nci\nEND\n";
        for (path, text, rule, secret) in [
            (
                "/etc/postfix/sasl_passwd",
                "# relay\n[smtp.corp.test]:587 relay@corp.test:Wn4v:Q8zLk2Tx\n",
                "file-smtp-relay-password",
                "Wn4v:Q8zLk2Tx",
            ),
            (
                "/etc/msmtprc",
                "account corp\nuser app\npassword \"Jm5w R9xKq3Vt\"\npasswordeval gpg -d x\n",
                "file-smtp-relay-password",
                "Jm5w R9xKq3Vt",
            ),
            (
                "/root/.msmtprc",
                "password Jm5wR9xKq3Vt\n",
                "file-smtp-relay-password",
                "Jm5wR9xKq3Vt",
            ),
            (
                "/etc/ssmtp/ssmtp.conf",
                "AuthUser=app\nAuthPass=Tq8vLm3Zx7Kw\n",
                "file-smtp-relay-password",
                "Tq8vLm3Zx7Kw",
            ),
            (
                "/root/.vault_pass.txt",
                "Rk4#Vx9 Qm2zLp\n",
                "file-ansible-vault-password",
                "Rk4#Vx9 Qm2zLp",
            ),
            (
                "/srv/ansible/.vault-password",
                "Rk4Vx9Qm2zLp\n",
                "file-ansible-vault-password",
                "Rk4Vx9Qm2zLp",
            ),
            (
                "/root/.rediscli_history",
                "PING\nauth Kq7vX2mZ9pL4\n",
                "file-redis-cli-history-password",
                "Kq7vX2mZ9pL4",
            ),
            (
                "/root/.rediscli_history",
                "AUTH app \"Kq7vX2mZ9pL4\"\n",
                "file-redis-cli-history-password",
                "Kq7vX2mZ9pL4",
            ),
            (
                "/root/.rediscli_history",
                "CONFIG SET requirepass Kq7vX2mZ9pL4\n",
                "file-redis-cli-history-password",
                "Kq7vX2mZ9pL4",
            ),
            (
                "/root/.subversion/auth/svn.simple/5671adf2865e267db74f09ba6f872c28",
                svn,
                "file-svn-password",
                "Hq7pW 2xLk9v",
            ),
            (
                "/etc/pgbouncer/userlist.txt",
                "\"app\" \"Zq8Lm3Xv9Rt2\"\n\"stats\" \"\"\n",
                "file-pgbouncer-userlist-password",
                "Zq8Lm3Xv9Rt2",
            ),
            (
                "/etc/davfs2/secrets",
                "# comment\nhttps://dav.corp.test/dav ops \"Lm3Zx7Kw9Rt2\"\n",
                "file-davfs2-password",
                "Lm3Zx7Kw9Rt2",
            ),
            (
                "/etc/passwd-s3fs",
                "backups:MINIOKEY0001:Vb7Hq2Lm9XpR4sT8wZ1c\n",
                "file-s3fs-password",
                "Vb7Hq2Lm9XpR4sT8wZ1c",
            ),
        ] {
            let got = detect(path, text.as_bytes(), 0, &AtomicU64::new(0));
            let rules = rules();
            let ids: Vec<(&str, &[u8])> =
                got.iter().map(|h| (rules[h.rule].id.as_str(), h.secret.expose())).collect();
            assert_eq!(ids, [(rule, secret.as_bytes())], "{path}: {text}");
            // The offset is where the stored secret starts.
            assert_eq!(
                &text.as_bytes()[got[0].offset as usize..][..secret.len()],
                secret.as_bytes(),
                "{path}"
            );
        }
        let key = "a1".repeat(256);
        assert_eq!(
            ids("/var/jenkins_home/secrets/master.key", &key),
            [("file-jenkins-master-key".into(), key)]
        );
        for (path, text) in [
            ("/etc/postfix/sasl_passwd", "[smtp.corp.test]:587 relay@corp.test\n"),
            ("/etc/msmtprc", "passwordeval \"gpg -d ~/.pw.gpg\"\n"),
            ("/root/.vault_pass.txt", "#!/bin/sh\necho $VAULT_PASSWORD\n"),
            ("/root/.vault_pass", "short\n"),
            ("/root/.rediscli_history", "PING\nAUTH\nSET auth Kq7vX2mZ9pL4 EX 60\n"),
            ("/srv/app/userlist.txt", "alice\nbob\n\"carol\" \"Zq8Lm3Xv9Rt2\"\n"),
            ("/etc/passwd-s3fs", "just-a-line\n"),
            ("/var/jenkins_home/secrets/master.key", "not hex at all, not a key"),
            ("/app/config/secrets", "https://dav.corp.test/dav ops Lm3Zx7Kw9Rt2\n"),
        ] {
            assert!(ids(path, text).is_empty(), "{path}: {text}");
        }
    }

    #[test]
    fn terraform_state_values_nested_escaped_and_placed() {
        let state = r#"{"resources": [{"instances": [{"attributes": {
            "db_password": "Hq7\"pW2xLk9vM",
            "name": "not-a-secret-value",
            "tokens": ["x"],
            "nested": {"api_token": "Zq8Lm3Xv9Rt2Wp7"}
        }}]}]}"#;
        let hits = detect("/srv/terraform.tfstate", state.as_bytes(), 0, &AtomicU64::new(0));
        let got: Vec<(u64, String)> = hits
            .iter()
            .map(|h| (h.line, String::from_utf8_lossy(h.secret.expose()).into_owned()))
            .collect();
        assert_eq!(got, [(2, "Hq7\"pW2xLk9vM".to_owned()), (5, "Zq8Lm3Xv9Rt2Wp7".to_owned())]);
        assert_eq!(&state[hits[1].offset as usize..][..15], "Zq8Lm3Xv9Rt2Wp7");
        // random_password's result is named by sensitive_attributes, not by its key.
        let state = r#"{"version": 4, "resources": [{"type": "random_password", "instances": [{
            "attributes": {"id": "none", "length": 16, "result": "Wq4!kTz8vLm2Xp7R"},
            "sensitive_attributes": [[{"type": "get_attr", "value": "result"}]]}]}]}"#;
        let hits = detect("/srv/terraform.tfstate.backup", state.as_bytes(), 0, &AtomicU64::new(0));
        let got: Vec<&[u8]> = hits.iter().map(|h| h.secret.expose()).collect();
        assert_eq!(got, [b"Wq4!kTz8vLm2Xp7R"]);
        assert_eq!(&state[hits[0].offset as usize..][..16], "Wq4!kTz8vLm2Xp7R");
        assert!(
            detect(
                "/srv/terraform.tfstate",
                b"{\"password\": \"Hq7pW2xLk9vM\"",
                0,
                &AtomicU64::new(0)
            )
            .is_empty()
        );
    }
}

#[cfg(test)]
mod keytab_tests {
    use super::*;

    /// A keytab with one entry for `FAKE/host@CORP.TEST` (layout of MIT krb5's
    /// keytab file format, version 0x0502).
    fn keytab() -> Vec<u8> {
        let mut entry = Vec::new();
        entry.extend(1u16.to_be_bytes()); // components
        for s in ["CORP.TEST", "FAKE"] {
            entry.extend((s.len() as u16).to_be_bytes());
            entry.extend(s.as_bytes());
        }
        entry.extend(1u32.to_be_bytes()); // name type
        entry.extend(0u32.to_be_bytes()); // timestamp
        entry.push(1); // kvno
        entry.extend(18u16.to_be_bytes()); // aes256-cts-hmac-sha1-96
        entry.extend(32u16.to_be_bytes());
        entry.extend([0x5a; 32]);
        let mut d = vec![0x05, 0x02];
        d.extend((entry.len() as i32).to_be_bytes());
        d.extend(entry);
        d
    }

    #[test]
    fn keytabs_by_name_and_structure() {
        let hits = |path: &str, data: &[u8]| detect(path, data, 0, &AtomicU64::new(0)).len();
        assert_eq!(hits("/etc/krb5.keytab", &keytab()), 1);
        assert_eq!(hits("/srv/http.keytab", &keytab()), 1);
        assert_eq!(hits("/srv/http.bin", &keytab()), 0, "not named like a keytab");
        assert_eq!(hits("/etc/krb5.keytab", &[0x05, 0x02]), 0, "no entries");
        assert_eq!(hits("/etc/krb5.keytab", b"not a keytab"), 0);
    }
}
