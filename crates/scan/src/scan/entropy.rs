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

/// Where the value of an assignment ends: at a `&` that starts the next
/// parameter of a query string (`token=hh5s93j4hdidpola&oauth_verifier=…`,
/// `secret=JBSWY3DPEHPK3PXP&digits=8` in an `otpauth://` URI), else at its
/// end. The value alphabet takes `&` (a password may hold one), so without
/// this the next parameter's name and value were read as part of the secret.
pub fn value_end(v: &[u8]) -> usize {
    (1..v.len())
        .find(|&i| {
            v[i] == b'&'
                && v[i + 1..].first().is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
                && v[i + 1..].iter().position(|&b| b == b'=').is_some_and(|e| {
                    v[i + 1..i + 1 + e].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
                })
        })
        .unwrap_or(v.len())
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
    // `tTOKEN_CLASS_END-1`: an enumerator or constant plus or minus a number.
    let offset_name = s.rsplit_once(['-', '+']).is_some_and(|(name, n)| {
        (1..=3).contains(&n.len())
            && n.bytes().all(|b| b.is_ascii_digit())
            && name.contains('_')
            && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
    });
    // `.base64_encode` (PHP's concatenation), `.v1_token_request_spec` (a
    // relative import): a member or module name after its dot.
    let member = s.strip_prefix('.').is_some_and(|m| {
        m.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            && (m.contains('_') || m.contains('.') || camel_case_name(m.as_bytes()))
    });
    tuple_field_path
        || reference
        || constant_name
        || offset_name
        || member
        || camel_case_name(v)
        || kebab_name(&s)
        || host_path(&s)
}

/// `Curve25519SeedBin`, `HmacSha256Key`, `MarshalPKCS1PrivateKey`,
/// `babel7CompatTokens`, `V1LocalObjectReference`: a type or variable name in
/// CamelCase or camelCase. Words are a capital and lowercase letters (`Key`,
/// `To`), one acronym (two to five capitals, whose last capital may start the
/// next word as in `ADCredentials`, or one capital before digits as in `V1`,
/// `P256`), or lowercase words of two letters or more (`to`, `default`,
/// `Base64url`); every lowercase part holds a vowel (`y` counts); digits come
/// in at most two runs. A generated token of that length breaks this
/// almost at once (`aB3dE6gH9jK2mN5p`, `Kq7vXmZ9pL4rT8wN`).
fn camel_case_name(v: &[u8]) -> bool {
    if !v.iter().all(u8::is_ascii_alphanumeric) || v.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let lower_run = |at: usize| v[at..].iter().take_while(|c| c.is_ascii_lowercase()).count();
    // Words are pronounceable: a vowel in every lowercase part.
    let voiced = |at: usize, n: usize| v[at..at + n].iter().any(|c| b"aeiouy".contains(c));
    let (mut digit_runs, mut words, mut acronyms) = (0, 0, 0);
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        let run = v[i..].iter().take_while(|c| class_of(**c) == class_of(b)).count();
        let next = i + run;
        match class_of(b) {
            0 if run == 1 => {
                let after = lower_run(next);
                // `Key`, `To` (a two-letter word holds a vowel), or `V1`, `P256`.
                let word = after >= 1 && voiced(next, after);
                let before_digits = after == 0 && v.get(next).is_some_and(u8::is_ascii_digit);
                if !word && !before_digits {
                    return false;
                }
                words += 1;
                acronyms += usize::from(before_digits);
                i = next + after;
                continue;
            }
            // An acronym: before a lowercase word its last capital starts that word.
            0 => {
                let after = lower_run(next);
                let acronym = if after > 0 { run - 1 } else { run };
                if acronym > 5 || (after > 0 && (after < 2 || !voiced(next, after))) {
                    return false;
                }
                words += 1 + usize::from(after > 0);
                acronyms += 1;
                i = next + after;
                continue;
            }
            1 if run < 2 || !voiced(i, run) => return false,
            1 => words += 1,
            2 => digit_runs += 1,
            _ => {}
        }
        i = next;
    }
    digit_runs <= 2 && acronyms <= 1 && words >= 2
}

/// `x-aws-ec2-metadata-token`, `tls_v13_cipher_suite`: lowercase words
/// joined by `-` or `_`, a word ending in at most two digits. A header,
/// option or key name, not a value.
fn kebab_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split(['-', '_']).collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            let letters = p.bytes().take_while(u8::is_ascii_lowercase).count();
            letters >= 1
                && p.len() - letters <= 2
                && p[letters..].bytes().all(|b| b.is_ascii_digit())
        })
        && parts.iter().any(|p| p.len() >= 4)
}

/// `github.com/jcmturner/gokrb5/v8/sessionCredentials`: a Go import path
/// or a host and path without a scheme. The first segment is a host name
/// (lowercase labels, the last one letters only); base64 never holds a dot.
fn host_path(s: &str) -> bool {
    let Some((host, rest)) = s.split_once('/') else { return false };
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && labels.last().is_some_and(|t| {
            (2..=6).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_lowercase())
        })
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
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
            // Near the new code-name shapes, still random.
            "kqzVx7LmNpRt2Wb9",
            "abcXYZQWE9rt7PLmnb",
            "k3j-h5g-x9v-q2m-w8z",
            "Kq7vX2mZ9pL4rT8w-1",
            "Fp3BenchOnly9xQ2mK7vR4tLpWz8/NcYh3JdQb5Tg",
            ".Kq7vX2mZ9pL4rT8w",
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
            // Code names met in real trees (Go, Node, Ruby, PHP sources).
            "MarshalPKCS1PrivateKey",
            "babel7CompatTokens",
            "gokrb5AttributeKeyADCredentials",
            "x-aws-ec2-metadata-token",
            "github.com/jcmturner/gokrb5/v8/sessionCredentials",
            "tTOKEN_CLASS_END-1",
            ".base64_encode",
            ".v1_token_request_spec",
            "defaultToConfig2",
            "toUint8Array",
            "V1LocalObjectReference",
            "testP256PrivateKey",
        ];
        for v in no {
            assert!(!passes(ASSIGNMENT_RULE, v.as_bytes()), "{v}");
        }
        // A capitalised word is a code name after `secret =`, a password in a URL.
        assert!(passes(URL_RULE, b"Welcome2"));
        assert!(passes(URL_RULE, b"Passwort"));
        assert!(rules().len() == 2);
    }

    #[test]
    fn a_query_string_value_ends_at_the_next_parameter() {
        let cases: [(&str, &str); 5] = [
            ("hh5s93j4hdidpola&oauth_verifier=hfdp7dh39dks9884", "hh5s93j4hdidpola"),
            ("JBSWY3DPEHPK3PXP&digits=8", "JBSWY3DPEHPK3PXP"),
            ("Kq7&vX2m!Z9pL4r", "Kq7&vX2m!Z9pL4r"),
            ("Kq7vX2mZ9pL4r&", "Kq7vX2mZ9pL4r&"),
            ("&Kq7vX2m=Z9pL4r", "&Kq7vX2m=Z9pL4r"),
        ];
        for (v, want) in cases {
            assert_eq!(&v[..value_end(v.as_bytes())], want, "{v}");
        }
    }

    /// The code-name shapes must not swallow generated tokens: of 20,000
    /// random base62 strings of 16 to 40 characters, almost none pass as one.
    #[test]
    fn code_names_rarely_match_random_tokens() {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut named = 0;
        for _ in 0..20_000 {
            let n = 16 + (next() % 25) as usize;
            let v: Vec<u8> = (0..n).map(|_| ALPHABET[(next() % 62) as usize]).collect();
            named += usize::from(looks_like_code_name(&v));
        }
        assert!(named <= 4, "{named} of 20000 random tokens taken for code names");
    }
}
