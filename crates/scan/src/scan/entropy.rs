//! The entropy detector: values assigned to secret-named keys
//! (`KEY=VALUE`, `key: value`, `"key": "value"`, `key="value"` attributes,
//! `<password>value</password>`) and URL userinfo, reported only when the
//! value looks random for its character set.
//!
//! It is expressed as two built-in rules run by the pattern engine (same
//! keyword automaton, same windows), with [`passes`] as their gate.

use super::filter;
use crate::finding::Severity;
use crate::signatures::{SignatureSyntax, compile};

/// Shannon entropy in bits per byte.
pub fn shannon(bytes: &[u8]) -> f64 {
    f64::from(::entropy::shannon_entropy(bytes))
}

/// Rule id of the assignment detector.
pub const ASSIGNMENT_RULE: &str = "generic-high-entropy-assignment";
/// Rule id of the URL userinfo detector.
pub const URL_RULE: &str = "generic-url-credentials";

const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "accesskey",
    "access_key",
    "access-key",
    "auth_key",
    "authkey",
    "private_key",
    "privatekey",
    "client_secret",
    "credential",
    "passphrase",
];

/// The two built-in rules, compiled.
///
/// # Panics
/// Never in practice: the patterns are constants covered by tests.
pub fn rules() -> Vec<crate::signatures::Signature> {
    let assignment = SignatureSyntax {
        id: ASSIGNMENT_RULE.into(),
        name: "High-entropy value assigned to a secret-named key".into(),
        severity: Severity::Medium,
        keywords: SECRET_WORDS.iter().map(|s| (*s).to_owned()).collect(),
        pattern: concat!(
            r#"(?i)(?P<key>[a-z0-9_.\-]{0,40}(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key|private[_\-]?key|credential|passphrase)[a-z0-9_.\-]{0,40})"#,
            r#"["']?[ \t]{0,4}(?:=|:=|:|=>|>)[ \t]{0,4}["'`]?"#,
            r#"(?P<secret>[A-Za-z0-9+/=_\-.~!@#%^&]{8,256})"#
        )
        .into(),
        validator: None,
        min_entropy: None,
        strong_context: false,
        window: Some(128),
        description: "A value with high entropy for its character set, assigned to a key \
                      whose name says it holds a password, secret, token or key."
            .into(),
        references: vec![],
        examples: vec![],
        negative_examples: vec![],
    };
    let url = SignatureSyntax {
        id: URL_RULE.into(),
        name: "Password in URL userinfo".into(),
        severity: Severity::Medium,
        keywords: vec!["://".into()],
        // The user starts with neither `[` nor `]`: RFC 3986 allows neither in
        // userinfo, and manuals write the syntax `scheme://[user[:password]@]host`
        // (git-config(1), apt-transport-http(1) in every Debian image).
        pattern: r#"(?i)(?-u:\b)[a-z][a-z0-9+.\-]{1,20}://[^\s:/@"'<>\[\]][^\s:/@"'<>]{0,63}:(?P<secret>[^\s:/@"'<>]{4,128})@[a-z0-9.\-\[\]_]+"#.into(),
        validator: None,
        min_entropy: None,
        strong_context: false,
        window: Some(256),
        description: "A URL with user:password@host credentials.".into(),
        references: vec![],
        examples: vec![],
        negative_examples: vec![],
    };
    [assignment, url]
        .into_iter()
        .map(|s| compile(s, "builtin:entropy").expect("built-in entropy rules compile"))
        .collect()
}

/// Character set of a value, which sets the entropy it must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    Hex,
    Alphanumeric,
    Base64,
    Printable,
}

fn charset(v: &[u8]) -> Charset {
    if v.iter().all(u8::is_ascii_hexdigit) {
        Charset::Hex
    } else if v.iter().all(u8::is_ascii_alphanumeric) {
        Charset::Alphanumeric
    } else if v.iter().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(b)) {
        Charset::Base64
    } else {
        Charset::Printable
    }
}

/// True when `value` looks like a generated secret rather than a word,
/// identifier, path, version, digest or placeholder.
pub fn passes(rule_id: &str, value: &[u8]) -> bool {
    !filter::is_placeholder_word(value) && looks_random(rule_id, value)
}

/// [`passes`] without the placeholder test: the value's shape alone (length,
/// entropy for its character set, mixed classes; not a UUID, digest or
/// dotted identifier). For callers that have judged placeholders themselves.
pub fn looks_random(rule_id: &str, value: &[u8]) -> bool {
    if looks_structured(value) {
        return false;
    }
    let e = shannon(value);
    let n = value.len();
    if rule_id == URL_RULE {
        // Any real password in a URL counts; only reject the trivial.
        return n >= 6 && e >= 2.5 && classes(value) >= 2;
    }
    if looks_like_code_name(value) {
        return false;
    }
    let (min_len, min_entropy, alphabet): (usize, f64, usize) = match charset(value) {
        // 20+ hex digits of a key, not a short id; digests are excluded below.
        Charset::Hex => (20, 3.0, 16),
        Charset::Alphanumeric => (12, 3.2, 62),
        Charset::Base64 => (16, 3.5, 64),
        Charset::Printable => (10, 3.0, 94),
    };
    // Random strings reach about log2(min(n, alphabet)) bits per byte; demand most of that.
    let expected = (n.min(alphabet) as f64).log2();
    // Generated secrets mix letters and digits; identifiers and words do not.
    let mixed = value.iter().any(u8::is_ascii_digit) && value.iter().any(u8::is_ascii_alphabetic);
    n >= min_len && e >= min_entropy.max(expected * 0.75) && classes(value) >= 2 && mixed
}

/// Number of character classes present (lower, upper, digit, symbol).
fn classes(v: &[u8]) -> usize {
    let has = |f: fn(&u8) -> bool| usize::from(v.iter().any(f));
    has(u8::is_ascii_lowercase)
        + has(u8::is_ascii_uppercase)
        + has(u8::is_ascii_digit)
        + has(|b| !b.is_ascii_alphanumeric())
}

/// Values with a shape that is not a secret: UUIDs, hex digests of standard
/// lengths with an algorithm prefix, SRI hashes, dotted identifiers,
/// versions, paths.
fn looks_structured(v: &[u8]) -> bool {
    let s = String::from_utf8_lossy(v);
    let is_uuid = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() }
        });
    let sri = ["sha1-", "sha256-", "sha384-", "sha512-", "sha256:", "sha512:", "md5:"]
        .iter()
        .any(|p| s.to_ascii_lowercase().starts_with(p));
    // `base64.b64decode`, `self.client_secret`: code, not a value.
    let dotted_identifier = s.contains('.')
        && s.split('.').all(|p| {
            p.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
    // `standard_b64encode`, `api_key_v2`: snake_case names.
    let snake_identifier = s.contains('_')
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let path = s.starts_with('/') || s.starts_with("./") || s.starts_with("../");
    // `4.13+dfsg1-1+deb12u2_amd64.deb` (a package file name, after `passwd_1%3a`
    // is percent-decoded in an apt log): a file name, not a value.
    let file_name = s.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && FILE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
    });
    let snake = s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-');
    is_uuid || sri || dotted_identifier || snake_identifier || path || snake || file_name
}

/// Names and expressions from source code, which an assignment detector
/// meets in code (`private_key: Curve25519SeedBin`, `secret = self.0.clone`)
/// but a URL's password field does not, where `Welcome` is a password.
fn looks_like_code_name(v: &[u8]) -> bool {
    let s = String::from_utf8_lossy(v);
    // `self.0.clone`: a tuple field is part of the same expression.
    let tuple_field_path = s.contains('.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.split('.').any(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && s.split('.').all(|p| {
            p.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && (p.bytes().all(|b| b.is_ascii_digit())
                    || (!p.as_bytes()[0].is_ascii_digit()
                        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')))
        });
    // `&Aligned64`, `*mut_ptr`: a reference or dereference in code.
    let reference = s.len() > 1
        && matches!(s.as_bytes()[0], b'&' | b'*')
        && s.as_bytes()[1].is_ascii_alphabetic()
        && s[1..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    // `TLS13_CHACHA20_POLY1305_SHA256_INTERNAL`: a constant's name, each part
    // a word that starts with a letter.
    let constant_name = s.contains('_')
        && s.split('_').all(|p| {
            p.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
                && p.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
    tuple_field_path || reference || constant_name || camel_case_name(v)
}

/// `Curve25519SeedBin`, `HmacSha256Key`: a type or variable name in
/// CamelCase. Every capital starts a lowercase word of two or more letters,
/// and digits come in at most two runs; a generated token of that length
/// breaks this almost at once (`aB3dE6gH9jK2mN5p`).
fn camel_case_name(v: &[u8]) -> bool {
    if !v.iter().all(u8::is_ascii_alphanumeric) || !v.first().is_some_and(u8::is_ascii_uppercase) {
        return false;
    }
    let mut digit_runs = 0;
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        let run = v[i..].iter().take_while(|c| class_of(**c) == class_of(b)).count();
        match class_of(b) {
            // A capital must be followed by at least two lowercase letters.
            0 if run != 1
                || v[i + 1..].iter().take_while(|c| c.is_ascii_lowercase()).count() < 2 =>
            {
                return false;
            }
            1 if run < 2 => return false,
            2 => digit_runs += 1,
            _ => {}
        }
        i += run;
    }
    digit_runs <= 2
}

/// 0 for an uppercase letter, 1 for lowercase, 2 for a digit.
fn class_of(b: u8) -> u8 {
    if b.is_ascii_uppercase() {
        0
    } else if b.is_ascii_lowercase() {
        1
    } else {
        2
    }
}

/// Extensions that make a value a file name (packages, archives, sources,
/// configs, logs): what a key like `passwd_1` or `token_file` points at.
const FILE_EXTENSIONS: &[&str] = &[
    "deb", "rpm", "apk", "whl", "egg", "gem", "jar", "war", "nupkg", "tgz", "gz", "xz", "bz2",
    "zst", "zip", "tar", "so", "dll", "exe", "py", "pyc", "js", "ts", "rb", "go", "java", "json",
    "yaml", "yml", "toml", "xml", "txt", "log", "conf", "cfg", "ini", "md", "html", "sh",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate() {
        let yes = [
            "Xk9#mP2$vL8qR4tW",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
            "aB3dE6gH9jK2mN5p",
            // Shapes near the code-name tests that are still random.
            "Kq7vXmZ9pL4rT8wN",
            "AKX9_2MZQ7_LP4T8W3R9",
            "&Kq7#vX2m!Z9pL4r",
        ];
        for v in yes {
            assert!(passes(ASSIGNMENT_RULE, v.as_bytes()), "{v}");
        }
        let no = [
            "changeme",
            "password_reset_token",
            "self.password",
            "0123456789abcdef",
            "123e4567-e89b-12d3-a456-426614174000",
            "sha512-abcdefABCDEF0123456789+/",
            "/etc/secrets/token",
            "your_api_key_here",
            "os.environ",
            "standard_b64encode",
            "base64.b64decode",
            "4.13+dfsg1-1+deb12u2_amd64.deb",
            "Kq7vX2mZ9pL4rT8w-1_amd64.deb",
            "self.0.clone",
            "self.0.to_token_stream",
            "&Aligned64",
            "TLS13_CHACHA20_POLY1305_SHA256_INTERNAL",
            "Curve25519SeedBin",
            "HmacSha256SigningKey",
        ];
        for v in no {
            assert!(!passes(ASSIGNMENT_RULE, v.as_bytes()), "{v}");
        }
        // A capitalised word is a code name after `secret =`, a password in a URL.
        assert!(passes(URL_RULE, b"Welcome2"));
        assert!(passes(URL_RULE, b"Passwort"));
        assert!(rules().len() == 2);
    }
}
