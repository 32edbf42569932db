//! The one redaction path for text that strata prints and that may hold
//! bytes from an image: instructions, paths, member names, tags,
//! diagnostics and error messages.
//!
//! Two tools, used together:
//! - [`Redactor`] replaces secrets already known (every finding's secret)
//!   wherever they occur in a string, with the secret's redacted form;
//! - [`json_error`] and [`io_error_text`] turn parser errors into messages
//!   that name the document, the field and the problem but never quote the
//!   value that caused it (serde_json writes `invalid type: string "…"`, the
//!   tar crate writes the header bytes it could not parse).
//!
//! Secrets found by detection in free text (a diagnostic naming a path that
//! holds a key) are redacted by the scanner's own text scrubber
//! (`scan::scrub`), which reuses [`Redactor`]. This module sees no rules.

use std::borrow::Cow;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::finding::Secret;

/// Replaces known secrets in text with their redacted form.
///
/// One aho-corasick automaton over every secret (leftmost-longest, so a
/// secret that contains another is replaced whole): linear in the text,
/// however many secrets a run found.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Automaton over the raw secrets (None when there are none).
    automaton: Option<AhoCorasick>,
    /// Redacted form of each pattern, in automaton order.
    replacements: Vec<String>,
}

impl Redactor {
    /// A redactor for these secrets. Secrets shorter than 4 bytes are left
    /// out: they would garble unrelated text and say little by themselves.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut pairs: Vec<(&[u8], &Secret)> = secrets
            .into_iter()
            .map(|s| (s.expose(), s))
            .filter(|(raw, _)| raw.len() >= 4)
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs.dedup_by(|a, b| a.0 == b.0);
        if pairs.is_empty() {
            return Redactor::default();
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(pairs.iter().map(|(raw, _)| raw));
        match automaton {
            Ok(a) => Redactor {
                automaton: Some(a),
                replacements: pairs.iter().map(|(_, s)| s.redacted()).collect(),
            },
            // Only past aho-corasick's size limits (millions of secrets, far beyond the
            // findings cap): replace the whole text rather than print a secret.
            Err(_) => Redactor { automaton: None, replacements: vec![String::new()] },
        }
    }

    /// The text with every known secret replaced.
    pub fn apply<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.automaton {
            None if self.replacements.is_empty() => Cow::Borrowed(text),
            None => Cow::Borrowed("[redacted]"),
            Some(a) => {
                if a.find(text).is_none() {
                    return Cow::Borrowed(text);
                }
                // The automaton matches bytes: a secret is valid UTF-8 wherever it occurs
                // in valid text at char boundaries, and replacement keeps the rest intact.
                let bytes = a.replace_all_bytes(text.as_bytes(), &self.replacements);
                Cow::Owned(String::from_utf8_lossy(&bytes).into_owned())
            }
        }
    }

    /// True when there is nothing to redact (`--show-secrets`, or no finding).
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.replacements.is_empty()
    }
}

/// Rewrites text so that secrets detected in it are redacted (the run's
/// scanner, which this module cannot see, supplies it).
pub type Scrubber = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// What a report applies to every image-derived string it prints: the
/// known secrets of the run, then detection of any other.
#[derive(Clone, Default)]
pub struct TextRedactor {
    known: Redactor,
    detect: Option<Scrubber>,
}

impl std::fmt::Debug for TextRedactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextRedactor")
            .field("known", &self.known.replacements.len())
            .field("detect", &self.detect.is_some())
            .finish()
    }
}

impl TextRedactor {
    /// Redacts `known` secrets, then whatever `detect` finds.
    pub fn new(known: Redactor, detect: Option<Scrubber>) -> Self {
        TextRedactor { known, detect }
    }

    /// The text as a report may print it.
    pub fn apply<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let known = self.known.apply(text);
        match &self.detect {
            Some(f) => {
                let scrubbed = f(&known);
                if scrubbed == text { Cow::Borrowed(text) } else { Cow::Owned(scrubbed) }
            }
            None => known,
        }
    }
}

/// Parses JSON into `T`; on failure, a message naming the field and the
/// problem but never the offending value.
///
/// # Errors
/// The sanitised message (see [`json_error`]).
pub fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(&e))?;
    de.end().map_err(|e| json_error_text(&e, None))?;
    Ok(value)
}

/// A serde_json error with its field path, as a message that quotes no
/// value: `config.Env: invalid type: string, expected a sequence (line 1, column 99)`.
pub fn json_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    json_error_text(e.inner(), Some(&field_path(e.path())))
}

/// The path of the field at fault, with map keys that do not look like
/// field names replaced by `…` (a key can be anything, a secret included).
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                let plain = key.len() <= 40
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
                // Field names of the formats are short words (`Env`, `empty_layer`); a key
                // with many digits or a run of capitals (`AKIA…`) is more likely a value.
                let digits = key.bytes().filter(u8::is_ascii_digit).count();
                let capitals_run =
                    key.as_bytes().windows(3).any(|w| w.iter().all(u8::is_ascii_uppercase));
                let looks_like_field = plain && digits < 4 && !capitals_run;
                out.push_str(if looks_like_field { key } else { "…" });
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

fn json_error_text(e: &serde_json::Error, path: Option<&str>) -> String {
    use serde_json::error::Category;
    let full = e.to_string();
    // serde_json appends " at line L column C"; keep the position, rewrite the rest.
    let message = full.rsplit_once(" at line ").map_or(full.as_str(), |(m, _)| m);
    let problem = match e.classify() {
        // Syntax and EOF messages describe the grammar, never the input.
        Category::Syntax | Category::Eof | Category::Io => message.to_owned(),
        Category::Data => data_problem(message),
    };
    let place = match path {
        Some(p) if !p.is_empty() && p != "?" => format!("{p}: "),
        _ => String::new(),
    };
    let position = if e.line() > 0 {
        format!(" (line {}, column {})", e.line(), e.column())
    } else {
        String::new()
    };
    format!("{place}{problem}{position}")
}

/// A serde data error without the value: `invalid type: string "x", expected
/// a map` → `invalid type: string, expected a map`. Messages of unknown shape
/// (custom errors of a type's own parser, which may quote its input) become
/// `invalid value` plus what was expected, if serde said.
fn data_problem(message: &str) -> String {
    let expected = message.rsplit_once(", expected ").map(|(_, e)| e);
    // What was expected comes from the type, not the input, but a custom message may
    // repeat the input there too: keep it only when it holds no quoted text.
    let expected = expected.filter(|e| !e.contains(['"', '`', '\'']) && e.len() < 120);
    let tail = expected.map(|e| format!(", expected {e}")).unwrap_or_default();
    for lead in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(lead) {
            let kind: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic() || *c == ' ')
                .collect::<String>()
                .trim()
                .to_owned();
            let kind = if kind.len() <= 20 && !kind.is_empty() { kind } else { "value".into() };
            return format!("{}{kind}{tail}", lead);
        }
    }
    for fixed in ["missing field", "duplicate field", "unknown field", "unknown variant"] {
        if message.starts_with(fixed) {
            // `missing field `config``: the name is the type's own; `unknown field `x``
            // is the input's, so only the former keeps its name.
            if fixed == "missing field" || fixed == "duplicate field" {
                return message.split(", expected").next().unwrap_or(fixed).to_owned();
            }
            return format!("{fixed}{tail}");
        }
    }
    if message.starts_with("invalid length ") {
        return message.to_owned();
    }
    format!("invalid value{tail}")
}

/// The text of a layer-reading error (tar, decompression, I/O) without the
/// bytes that caused it. The tar crate quotes header fields and entry names
/// (`numeric field was not a number: <bytes> when getting cksum for <name>`);
/// for a blob that is not a tar, those bytes are the file's content.
pub fn io_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    // `<problem>: <bytes> when getting <field> for <name>`
    if let Some((head, rest)) = text.split_once(" when getting ") {
        let field: String =
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let problem = head.split_once(':').map_or(head, |(p, _)| p);
        return format!(
            "{problem} in the {field} field of an entry header (not a valid tar header)"
        );
    }
    // Other messages are fixed text, possibly followed by `: <detail>` that may quote input.
    let problem = text.split_once(": ").map_or(text.as_str(), |(p, _)| p);
    let problem: String = problem.chars().take(200).collect();
    problem.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence() {
        let s = Secret::new(b"npm_abcdefghijklmnopqrstuvwxyz0123456789".to_vec());
        let r = Redactor::new([&s]);
        let out =
            r.apply("RUN |1 NPM_TOKEN=npm_abcdefghijklmnopqrstuvwxyz0123456789 /bin/sh -c npm ci");
        assert_eq!(out, "RUN |1 NPM_TOKEN=npm_…6789 /bin/sh -c npm ci");
    }

    #[test]
    fn longest_secret_wins_and_empty_redactor_is_identity() {
        let short = Secret::new(b"abcdefgh".to_vec());
        let long = Secret::new(b"abcdefgh-ijklmnop-qrstuvwx".to_vec());
        let r = Redactor::new([&short, &long]);
        assert_eq!(r.apply("x abcdefgh-ijklmnop-qrstuvwx y"), "x abc…vwx y");
        assert_eq!(Redactor::default().apply("abcdefgh"), "abcdefgh");
        assert!(Redactor::default().is_empty());
    }

    #[test]
    fn json_errors_never_quote_the_value() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Config {
            #[serde(rename = "Env")]
            env: Vec<String>,
            flag: Option<bool>,
        }
        let secret = "AKIAQFAKETESTKEY7XYZ";
        for (doc, field) in [
            (format!(r#"{{"Env": "KEY={secret}"}}"#), "Env"),
            (format!(r#"{{"Env": [], "flag": "{secret}"}}"#), "flag"),
            (format!(r#"{{"Env": [{{"{secret}": 1}}]}}"#), "Env[0]"),
        ] {
            let e = parse_json::<Config>(doc.as_bytes()).err().unwrap();
            assert!(!e.contains(secret) && !e.contains("FAKE"), "{e}");
            assert!(e.starts_with(field), "{e}");
            assert!(e.contains("invalid type") && e.contains("line 1"), "{e}");
        }
        let e = parse_json::<Config>(b"{\"Env\": [\"a\"").err().unwrap();
        assert!(e.contains("EOF"), "{e}");
        let e = parse_json::<Config>(b"{\"Env\": []} trailing").err().unwrap();
        assert!(e.contains("trailing"), "{e}");
    }

    #[test]
    fn map_keys_that_look_like_values_are_hidden() {
        let e = parse_json::<std::collections::BTreeMap<String, bool>>(
            br#"{"AKIAQFAKETESTKEY7XYZ": "x"}"#,
        )
        .err()
        .unwrap();
        assert!(!e.contains("AKIA"), "{e}");
    }

    #[test]
    fn tar_errors_lose_the_header_bytes() {
        let e = std::io::Error::other(
            "numeric field was not a number: KEY7XYZ when getting cksum for AWS=AKIAQFAKETESTKEY7XYZ",
        );
        let t = io_error_text(&e);
        assert_eq!(
            t,
            "numeric field was not a number in the cksum field of an entry header (not a valid tar header)"
        );
        let e = std::io::Error::other("failed to read entire block");
        assert_eq!(io_error_text(&e), "failed to read entire block");
    }
}
