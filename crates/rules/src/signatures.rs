//! Signature rules: the TOML syntax ([`SignatureSyntax`]), validation and
//! compilation into [`Signature`]s. Built-in files are embedded at build
//! time; `--signatures PATH` adds files or directories, and a rule with an
//! existing id replaces the built-in one.

mod glued;
pub mod matcher;
mod relaxed;
pub mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::finding::{Detector, Severity};
use matcher::Matcher;
use validate::Validator;

include!(concat!(env!("OUT_DIR"), "/builtin_signatures.rs"));

/// Default context, in bytes on each side of a keyword hit, that a rule's regex sees.
pub const DEFAULT_WINDOW: usize = 512;
/// Largest window a rule may ask for; the stream overlap is sized from it.
pub const MAX_WINDOW: usize = 8 * 1024;
/// Compiled-size limit per regex, so a hostile rule file cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 4 * 1024 * 1024;

/// Problems in a signature file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{file}: {err}")]
    Read {
        /// The file.
        file: String,
        /// The failure.
        err: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{file}: {reason}")]
    Syntax {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// One rule is invalid.
    #[error("{file}: rule {id}: {reason}")]
    Rule {
        /// The file.
        file: String,
        /// The rule id.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

/// A signature file: `[[rule]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    #[serde(default)]
    rule: Vec<SignatureSyntax>,
}

/// One rule as written in TOML.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSyntax {
    /// Unique kebab-case id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Severity of a finding.
    pub severity: Severity,
    /// Literals for the prefilter (ASCII, case-insensitive).
    pub keywords: Vec<String>,
    /// Regex with a `secret` named group.
    pub pattern: String,
    /// Offline validator name.
    #[serde(default)]
    pub validator: Option<String>,
    /// Minimum Shannon entropy of the secret, in bits per byte.
    #[serde(default)]
    pub min_entropy: Option<f64>,
    /// Context bytes each side of a keyword hit.
    #[serde(default)]
    pub window: Option<usize>,
    /// The context alone makes the value a credential (a command's password
    /// flag: `psexec -p`, `sshpass -p`): a value built from words
    /// (`dev_admin`) is accepted, unless it names what it stands for
    /// (`db_password`, `API_TOKEN`); a plain lowercase word that more words
    /// follow (`-p option to set it`) needs the generic password bar, since
    /// prose mentions flags too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strong_context: bool,
    /// What the credential is.
    #[serde(default)]
    pub description: String,
    /// Links to provider documentation.
    #[serde(default)]
    pub references: Vec<String>,
    /// Texts the rule must find.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Texts the rule must not find.
    #[serde(default)]
    pub negative_examples: Vec<String>,
}

/// A validated, compiled rule.
#[derive(Debug, Clone)]
pub struct Signature {
    /// The rule as written.
    pub syntax: SignatureSyntax,
    /// Compiled pattern and the index of its `secret` group, built on first
    /// use: most rules never see a keyword hit, and compiling all of them up
    /// front costs a fifth of a second and most of the memory of a small scan.
    compiled: std::sync::OnceLock<Option<Matcher>>,
    /// The pattern for binary files (see [`Signature::regex_for_binary`]),
    /// compiled on first use in one.
    unglued: std::sync::OnceLock<Option<Matcher>>,
    /// Offline check, if any.
    pub validator: Option<Validator>,
    /// Context bytes each side of a keyword hit.
    pub window: usize,
    /// The file it came from (`builtin:aws.toml` or a path).
    pub origin: String,
    /// Which detector this rule belongs to (entropy rules use their own gate).
    pub detector: Detector,
}

impl Signature {
    /// The compiled pattern (`None` only if a rule that was not compiled
    /// eagerly fails to compile).
    pub fn regex(&self) -> Option<&Matcher> {
        self.compiled.get_or_init(|| build_regex(&self.syntax.pattern).ok()).as_ref()
    }

    /// The compiled pattern for bytes of a binary file, where strings sit back
    /// to back: without the word boundaries the secret's own literal start
    /// and fixed end stand in for, when the pattern has such boundaries;
    /// else [`Signature::regex`].
    pub fn regex_for_binary(&self) -> Option<&Matcher> {
        let unglued = self.unglued.get_or_init(|| {
            Matcher::unglued(&self.syntax.pattern, REGEX_SIZE_LIMIT).ok().flatten()
        });
        unglued.as_ref().or_else(|| self.regex())
    }

    /// The rule id.
    pub fn id(&self) -> &str {
        &self.syntax.id
    }

    /// True for catch-all rules (ids starting `generic-`), which lose to any
    /// specific rule on the same bytes.
    pub fn is_generic(&self) -> bool {
        self.syntax.id.starts_with("generic-")
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Validates and compiles one rule.
///
/// # Errors
/// Bad id, no keyword, a regex that fails to compile or lacks the `secret`
/// group, an unknown validator, or a window over [`MAX_WINDOW`].
pub fn compile(syntax: SignatureSyntax, origin: &str) -> Result<Signature, Error> {
    compile_with(syntax, origin, true)
}

/// Compiles a regex with the size limits, and finds its `secret` group.
///
/// # Errors
/// A pattern that does not compile within the limits, or has no `secret` group.
pub fn build_regex(pattern: &str) -> Result<Matcher, String> {
    Matcher::new(pattern, REGEX_SIZE_LIMIT)
}

/// [`compile`], deferring the regex build to first use unless `eager`
/// (built-in rules are compiled and checked by the test suite).
fn compile_with(syntax: SignatureSyntax, origin: &str, eager: bool) -> Result<Signature, Error> {
    let bad =
        |reason: String| Error::Rule { file: origin.to_owned(), id: syntax.id.clone(), reason };
    if !valid_id(&syntax.id) {
        return Err(bad("id must be kebab-case: lowercase letters, digits and '-'".into()));
    }
    if syntax.keywords.is_empty() || syntax.keywords.iter().any(|k| k.len() < 2 || !k.is_ascii()) {
        return Err(bad("needs at least one ASCII keyword of 2 or more characters".into()));
    }
    let compiled = std::sync::OnceLock::new();
    if eager {
        let built = build_regex(&syntax.pattern).map_err(bad)?;
        let _ = compiled.set(Some(built));
    }
    let validator = match &syntax.validator {
        None => None,
        Some(name) => Some(
            name.parse::<Validator>().map_err(|_| bad(format!("unknown validator '{name}'")))?,
        ),
    };
    let window = syntax.window.unwrap_or(DEFAULT_WINDOW);
    if window > MAX_WINDOW {
        return Err(bad(format!("window {window} exceeds the maximum of {MAX_WINDOW}")));
    }
    if let Some(e) = syntax.min_entropy
        && !(0.0..=8.0).contains(&e)
    {
        return Err(bad(format!("min_entropy {e} is outside 0..=8 bits per byte")));
    }
    let detector = if origin == "builtin:entropy" { Detector::Entropy } else { Detector::Pattern };
    Ok(Signature {
        syntax,
        compiled,
        unglued: std::sync::OnceLock::new(),
        validator,
        window,
        origin: origin.to_owned(),
        detector,
    })
}

/// Parses and compiles a signature file's text.
///
/// # Errors
/// TOML syntax errors and invalid rules, naming the file.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Signature>, Error> {
    parse_with(text, origin, true)
}

fn parse_with(text: &str, origin: &str, eager: bool) -> Result<Vec<Signature>, Error> {
    let file: SignatureFile = toml::from_str(text)
        .map_err(|e| Error::Syntax { file: origin.to_owned(), reason: e.to_string() })?;
    file.rule.into_iter().map(|r| compile_with(r, origin, eager)).collect()
}

/// Reads `.toml` files from a file or directory path (sorted, not recursive).
///
/// # Errors
/// Unreadable paths and invalid files.
pub fn load_path(path: &Path) -> Result<Vec<Signature>, Error> {
    let read_err = |err| Error::Read { file: path.display().to_string(), err };
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(read_err)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_owned()]
    };
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|err| Error::Read { file: f.display().to_string(), err })?;
        out.extend(parse(&text, &f.display().to_string())?);
    }
    Ok(out)
}

/// The built-in rules.
///
/// # Errors
/// Only if a shipped file is broken, which the test suite prevents.
pub fn builtin() -> Result<Vec<Signature>, Error> {
    let mut out = Vec::new();
    for (name, packed) in BUILTIN_COMPRESSED {
        let origin = format!("builtin:{name}");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::DeflateDecoder::new(*packed), &mut text)
            .map_err(|err| Error::Read { file: origin.clone(), err })?;
        out.extend(parse_with(&text, &origin, false)?);
    }
    Ok(out)
}

/// Merges rule sets in order: a later rule with an existing id replaces it.
///
/// # Errors
/// Two rules with one id inside the same set.
pub fn merge(sets: Vec<Vec<Signature>>) -> Result<Vec<Signature>, Error> {
    let mut out: Vec<Signature> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for set in sets {
        let mut seen_here: HashMap<String, String> = HashMap::new();
        for sig in set {
            if let Some(first) = seen_here.insert(sig.id().to_owned(), sig.origin.clone()) {
                return Err(Error::Rule {
                    file: sig.origin.clone(),
                    id: sig.id().to_owned(),
                    reason: format!("duplicate id (also in {first})"),
                });
            }
            match by_id.get(sig.id()) {
                Some(&i) => out[i] = sig,
                None => {
                    by_id.insert(sig.id().to_owned(), out.len());
                    out.push(sig);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in token rules with a literal start get a binary form, which compiles; the
    /// catch-all and context rules (no literal start) keep their pattern in binaries.
    #[test]
    fn token_rules_have_a_binary_form_and_context_rules_do_not() {
        let rules = builtin().unwrap();
        let unglued: Vec<&str> = rules
            .iter()
            .filter(|r| {
                let u = Matcher::unglued(&r.syntax.pattern, REGEX_SIZE_LIMIT);
                u.unwrap_or_else(|e| panic!("{}: {e}", r.id())).is_some()
            })
            .map(Signature::id)
            .collect();
        for id in ["aws-access-key-id", "slack-bot-token", "stripe-secret-key-live"] {
            assert!(unglued.contains(&id), "{id} not among {} rules", unglued.len());
        }
        assert!(!unglued.iter().any(|id| id.starts_with("generic-")), "{unglued:?}");
        assert!(unglued.len() < rules.len() / 2, "{} of {}", unglued.len(), rules.len());
        eprintln!("{} of {} rules have a binary form", unglued.len(), rules.len());
    }

    #[test]
    fn rejects_bad_rules() {
        let base = r#"[[rule]]
id = "ID"
name = "n"
severity = "high"
keywords = ["KW"]
pattern = 'PAT'
"#;
        let case = |id: &str, kw: &str, pat: &str| {
            parse(&base.replace("ID", id).replace("KW", kw).replace("PAT", pat), "t.toml")
        };
        assert!(case("ok-id", "abc", "abc(?P<secret>[0-9]+)").is_ok());
        assert!(case("Bad_Id", "abc", "abc(?P<secret>[0-9]+)").is_err());
        assert!(case("ok-id", "abc", "abc([0-9]+)").is_err());
        assert!(case("ok-id", "abc", "abc(?P<secret>[0-9+)").is_err());
        assert!(case("ok-id", "a", "abc(?P<secret>[0-9]+)").is_err());
        assert!(parse("[[rule]]\nid = 3", "t.toml").is_err());
    }

    #[test]
    fn later_sets_override_by_id() {
        let rule = |sev: &str| {
            format!(
                "[[rule]]\nid = \"x\"\nname = \"n\"\nseverity = \"{sev}\"\nkeywords = [\"ab\"]\npattern = 'ab(?P<secret>c)'\n"
            )
        };
        let a = parse(&rule("low"), "a").unwrap();
        let b = parse(&rule("high"), "b").unwrap();
        let merged = merge(vec![a.clone(), b]).unwrap();
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].syntax.severity, Severity::High);
        assert!(merge(vec![[a.clone(), a].concat()]).is_err());
    }
}
