//! Noise filters shared by every detector: placeholders, templated values,
//! and a shipped list of documented example credentials (found in SDKs and
//! docs), which are suppressed by default and counted.

/// Documented example credentials, one per line (`#` comments).
const KNOWN_EXAMPLES: &str = include_str!("known_examples.txt");

/// True for values that are obviously not real: templates (`${VAR}`,
/// `{{ x }}`, `<token>`, `%s`), masks (`****`, `xxxx`), one repeated byte.
pub fn is_placeholder(secret: &[u8]) -> bool {
    let s = secret;
    if s.is_empty() {
        return true;
    }
    let contains = |needle: &[u8]| s.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
    if contains(b"${") || contains(b"{{") || contains(b"}}") || contains(b"%s") || contains(b"$(") {
        return true;
    }
    if s[0] == b'<' && s.last() == Some(&b'>') {
        return true;
    }
    if contains(b"xxxxxx")
        || contains(b"******")
        || contains(b"......")
        || contains(b"000000000000")
    {
        return true;
    }
    let first = s[0];
    s.iter().all(|&b| b == first)
}

/// True for common placeholder words in contextual (keyword-less) values:
/// `changeme`, `your_api_key`, `password123`, `example`.
pub fn is_placeholder_word(secret: &[u8]) -> bool {
    const WORDS: &[&[u8]] = &[
        b"changeme",
        b"change_me",
        b"change-me",
        b"your_",
        b"your-",
        b"yourpassword",
        b"example",
        b"placeholder",
        b"dummy",
        b"redacted",
        b"replace",
        b"insert",
        b"sample",
        b"notreal",
        b"not-real",
        b"not_real",
        b"fake",
        b"secret123",
        b"password",
        b"passwd",
        b"foobar",
        b"abcdef",
        b"123456",
        b"qwerty",
        b"letmein",
        b"todo",
        b"fixme",
        b"none",
        b"null",
        b"undefined",
        b"test1234",
        b"mysecret",
        b"my-secret",
        b"supersecret",
    ];
    let lower = secret.to_ascii_lowercase();
    WORDS.iter().any(|w| lower.windows(w.len()).any(|x| x == *w))
}

/// True for identifiers built from words (`AuthLDAPCharsetConfig`,
/// `GetSecretValue`, `secret_key_base`): a contextual rule's value must look
/// generated, not named. Random letters (`cntgDIkHNOaMfPLk`) split into
/// one-letter pieces and are not word-like.
pub fn is_word_like(secret: &[u8]) -> bool {
    if !secret.iter().all(|b| b.is_ascii_alphabetic() || b"_-.".contains(b)) {
        return false;
    }
    let mut words: Vec<&[u8]> = Vec::new();
    for part in secret.split(|b| b"_-.".contains(b)).filter(|p| !p.is_empty()) {
        // Camel-case split: before an upper after a lower, and before the last
        // upper of an acronym that starts a capitalised word (`LDAPCharset`).
        let mut start = 0;
        for i in 1..part.len() {
            let (prev, cur) = (part[i - 1], part[i]);
            let next_lower = part.get(i + 1).is_some_and(u8::is_ascii_lowercase);
            let boundary = (prev.is_ascii_lowercase() && cur.is_ascii_uppercase())
                || (prev.is_ascii_uppercase() && cur.is_ascii_uppercase() && next_lower);
            if boundary {
                words.push(&part[start..i]);
                start = i;
            }
        }
        words.push(&part[start..]);
    }
    let is_word = |w: &&[u8]| {
        let lower = w.iter().filter(|b| b.is_ascii_lowercase()).count();
        let acronym = w.len() >= 2 && lower == 0;
        let capitalised = w.len() >= 3 && lower == w.len() - 1 && w[0].is_ascii_uppercase();
        let plain = w.len() >= 2 && lower == w.len();
        acronym || capitalised || plain
    };
    words.len() >= 2 && words.iter().all(is_word)
}

/// The documented example this secret is, if any (exact match, or an AWS
/// key id ending in `EXAMPLE`).
pub fn known_example(secret: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(secret).ok()?;
    for line in KNOWN_EXAMPLES.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == text {
            return Some("documented example credential");
        }
    }
    let aws_example = text.len() == 20 && text.starts_with("AKIA") && text.ends_with("EXAMPLE");
    let aws_secret_example = text.len() == 40 && text.ends_with("EXAMPLEKEY");
    (aws_example || aws_secret_example).then_some("documented example credential")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        for p in [
            &b"${GITHUB_TOKEN}"[..],
            b"<your-token>",
            b"xxxxxxxxxxxxxxxx",
            b"********",
            b"aaaaaaaa",
            b"{{ .Values.token }}",
        ] {
            assert!(is_placeholder(p), "{}", String::from_utf8_lossy(p));
        }
        assert!(!is_placeholder(b"ghp_R4nd0mLooking"));
        assert!(is_placeholder_word(b"ChangeMe123"));
        for w in [&b"AuthLDAPCharsetConfig"[..], b"GetSecretValue", b"secret_key_base"] {
            assert!(is_word_like(w), "{}", String::from_utf8_lossy(w));
        }
        for r in [
            &b"cntgDIkHNOaMfPLk"[..],
            b"kQbVHAxiupdQSqCxaWvcQDCQNCjNfBBG",
            b"BAcnPmPaUGxUghYe",
            b"kxqpzmtrwv",
        ] {
            assert!(!is_word_like(r), "{}", String::from_utf8_lossy(r));
        }
        assert!(known_example(b"AKIAIOSFODNN7EXAMPLE").is_some());
        assert!(known_example(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").is_some());
        assert!(known_example(b"AKIAYJK4RSVGBCMQOCPJ").is_none());
    }
}
