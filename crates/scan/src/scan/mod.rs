//! Detectors. A [`Scanner`] is built once from the signatures and shared by
//! every worker; what changes in it during a run is only what the workers
//! share on purpose (the summary's counters, the content memo). It sees bytes
//! and paths, never tar: the layer walk hands it each file's reader.
//!
//! - `pattern`: keyword automaton + windowed regexes (signature rules);
//! - `entropy`: high-entropy assignments, as two built-in rules;
//! - `file`: credential files recognised by name and structure;
//! - `nested`: zip/jar/whl, tar and gzip members, recursively;
//! - `member`: one such member written back, for `extract --inner`;
//! - `names`: entry names and link targets, as text;
//! - `config`: the image config and build history;
//! - `sqldump`: SQL dumps' values read under their columns' names;
//! - `packages`: third-party package roots from package metadata (path context);
//! - `stream`: bounded windows with overlap, so memory stays flat;
//! - `memo`: pattern-scan results of whole files by content, so bytes met
//!   again in a run are not scanned again;
//! - `tally`: what scans set aside (placeholders, documented examples), counted.

pub mod attestation;
pub(crate) mod cap;
pub(crate) mod class;
pub mod config;
pub mod content;
pub mod context;
pub(crate) mod decode;
pub(crate) mod der_key;
pub(crate) mod entropy;
pub mod examples;
pub(crate) mod file;
pub(crate) mod filter;
pub mod git;
pub(crate) mod keystore;
pub(crate) mod material;
pub mod member;
pub(crate) mod memo;
pub mod names;
pub(crate) mod nested;
pub mod packages;
pub(crate) mod pattern;
pub(crate) mod prefilter;
pub(crate) mod pyc;
pub(crate) mod scrub;
pub(crate) mod sections;
pub(crate) mod sqldump;
pub(crate) mod sqlite;
pub mod stream;
pub mod tally;
#[cfg(test)]
mod test_support;

/// Offline validators now live with the rules they belong to.
pub use crate::signatures::validate;
/// The severity a hit is reported at: the one item of the placeholder and filler filters
/// (`filter`, private to this crate) that the pipeline uses.
pub use filter::reported_severity;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::finding::{Detector, Secret, Severity};
use crate::signatures::Signature;
use pattern::{PatternEngine, RawMatch};

/// A secret found in some bytes, before it is placed in an image.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Index into [`Scanner::rule`].
    pub rule: usize,
    /// Byte offset of the secret in its file (or string).
    pub offset: u64,
    /// 1-based line of the secret's first byte.
    pub line: u64,
    /// The secret.
    pub secret: Secret,
    /// What a validator confirmed, or what it found wrong.
    pub validation: Option<String>,
    /// The rule's validator rejected the secret: the finding is lowered.
    pub failed_check: bool,
    /// Decodings applied to reach the secret, outermost first (`base64`,
    /// `utf16le`…); empty when it was found in the bytes as stored.
    pub decoding: Vec<String>,
    /// What a live verifier needs beyond the secret (see `scan::material`); never reported.
    pub material: Option<Secret>,
}

/// What a rule is, for findings: pattern rules, entropy rules and the file
/// detectors' own rules share this shape.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    /// Kebab-case id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Severity.
    pub severity: Severity,
    /// Producing detector.
    pub detector: Detector,
    /// Description.
    pub description: String,
    /// Documentation links.
    pub references: Vec<String>,
    /// Specificity rank for de-duplication: higher wins. Entropy 0, generic
    /// rules 1, the `.env` catch-all file detector 2, provider rules and the
    /// other file detectors 3, rules with a validator 4.
    pub rank: u8,
    /// The rule's offline check verifies check digits (GitHub's and npm's
    /// CRC-32): a value that passes has a real token's shape, which neither
    /// a hand-written example nor a random string has by chance (1 in 2^32).
    pub checksummed: bool,
}

/// Counts of candidates dropped on purpose, for the summary.
#[derive(Debug, Default)]
pub struct Suppressed {
    /// Placeholders and documented example credentials the pattern and
    /// entropy rules set aside.
    pub set_aside: tally::Tally,
    /// Placeholder values the file detectors set aside.
    pub file_placeholders: AtomicU64,
    /// Findings over the per-rule budget of one file or config string.
    pub over_file_budget: AtomicU64,
    /// Findings over the per-run budget.
    pub over_run_budget: AtomicU64,
}

/// The compiled detectors.
#[derive(Debug)]
pub struct Scanner {
    engine: PatternEngine,
    rules: Vec<RuleInfo>,
    /// Suppression counters, shared by all workers.
    pub suppressed: Suppressed,
    /// Pattern-scan results of whole files by content, shared by all workers.
    memo: memo::Memo,
    /// Fixed at construction: the fingerprint covers them.
    options: ScannerOptions,
}

/// What a [`Scanner`] reports beyond its rules, fixed when it is built
/// ([`Scanner::with_options`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScannerOptions {
    /// Report documented example credentials too (`--include-examples`).
    pub report_examples: bool,
}

/// Why the scanner could not be built.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BuildError(#[from] pattern::BuildError);

impl Scanner {
    /// Compiles the detectors from signature rules (entropy rules and file
    /// detector rules are added here), with the default options.
    ///
    /// # Errors
    /// When the keyword automaton cannot be built.
    pub fn new(signatures: Vec<Signature>) -> Result<Self, BuildError> {
        Self::with_options(signatures, ScannerOptions::default())
    }

    /// [`Scanner::new`] with `options`.
    ///
    /// # Errors
    /// As [`Scanner::new`].
    pub fn with_options(
        signatures: Vec<Signature>,
        options: ScannerOptions,
    ) -> Result<Self, BuildError> {
        let mut all = signatures;
        all.extend(entropy::rules());
        let mut rules: Vec<RuleInfo> = all
            .iter()
            .map(|s| RuleInfo {
                id: s.syntax.id.clone(),
                name: s.syntax.name.clone(),
                severity: s.syntax.severity,
                detector: s.detector,
                description: s.syntax.description.clone(),
                references: s.syntax.references.clone(),
                rank: match (s.detector, s.validator.is_some(), s.is_generic()) {
                    (Detector::Entropy, _, _) => 0,
                    (_, _, true) => 1,
                    (_, false, false) => 3,
                    (_, true, false) => 4,
                },
                checksummed: s
                    .validator
                    .is_some_and(crate::signatures::validate::Validator::checks_digits),
            })
            .collect();
        rules.extend(file::rules());
        let engine = PatternEngine::with_markers(all, sqldump::MARKERS)?;
        Ok(Scanner {
            engine,
            rules,
            suppressed: Suppressed::default(),
            memo: memo::Memo::default(),
            options,
        })
    }

    /// Whether documented example credentials are reported too.
    pub fn reports_examples(&self) -> bool {
        self.options.report_examples
    }

    /// Every rule the scanner can report.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    /// The rule behind a hit.
    pub fn rule(&self, index: usize) -> &RuleInfo {
        &self.rules[index]
    }

    /// Index of a rule by id.
    pub fn rule_index(&self, id: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.id == id)
    }

    /// A digest of everything that decides what the scanner finds: every
    /// rule's definition, the file detectors and strata's version. Cached
    /// layer results are valid only for the same fingerprint.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        for s in self.engine.rules() {
            h.update(serde_json::to_vec(&s.syntax).unwrap_or_default());
        }
        for r in &self.rules {
            h.update(r.id.as_bytes());
        }
        h.update([u8::from(self.options.report_examples)]);
        hex::encode(h.finalize())
    }

    /// Candidates set aside as placeholders so far (pattern and entropy
    /// rules, and the file detectors), for the summary.
    pub fn placeholders(&self) -> u64 {
        self.suppressed.set_aside.counts().placeholders
            + self.suppressed.file_placeholders.load(Ordering::Relaxed)
    }

    /// The signature rules with their examples.
    pub fn signatures(&self) -> &[Signature] {
        self.engine.rules()
    }

    /// Scans one in-memory buffer (a config string, a small file).
    pub fn scan_bytes(&self, data: &[u8]) -> Vec<Hit> {
        dedupe(self, self.scan_bytes_all(data))
    }

    /// Like [`Scanner::scan_bytes`] but keeps every rule's hit, even where a
    /// more specific rule matched the same bytes (for checking rule examples).
    pub fn scan_bytes_all(&self, data: &[u8]) -> Vec<Hit> {
        let mut cap = cap::HitCap::new(usize::MAX);
        let mut found = self.window_hits(data, 0, 0, data.len(), &mut cap);
        self.suppressed.set_aside.add(cap.set_aside);
        found.sort_by_key(|(pos, _)| *pos);
        let mut lines = stream::LineCounter::default();
        found
            .into_iter()
            .map(|(pos, mut h)| {
                h.line = lines.line_at(data, pos);
                h
            })
            .collect()
    }

    /// Hits whose match starts in `data[from..to]`, with their position in
    /// `data` (lines are left for the caller to count, in order): the
    /// engine's matches in the bytes as they are, then in the encoded runs
    /// found there, decoded within `cap`'s decoding budget. What is set
    /// aside is counted in `cap` (see [`HitCap::set_aside`](cap::HitCap)).
    pub(crate) fn window_hits(
        &self,
        data: &[u8],
        base: u64,
        from: usize,
        to: usize,
        cap: &mut cap::HitCap,
    ) -> Vec<(usize, Hit)> {
        let mut out = Vec::new();
        self.engine.find(
            data,
            &mut |m| {
                if m.start >= from && m.start < to {
                    out.push((m.secret.0, m));
                }
            },
            &mut cap.set_aside.placeholders,
        );
        let mut found: Vec<(usize, Hit)> = out
            .into_iter()
            .filter_map(|(pos, m)| {
                self.to_hit(data, base, &m, &mut cap.set_aside).map(|h| (pos, h))
            })
            .collect();
        found.extend(self.decoded_hits(data, base, from, to, cap));
        found.extend(self.section_hits(data, base, from, to, &mut cap.set_aside));
        found
    }

    /// Hits in the encoded runs found in `data[from..to]`, decoded within
    /// `cap`'s decoding budget, with the run's position in `data`.
    pub(crate) fn decoded_hits(
        &self,
        data: &[u8],
        base: u64,
        from: usize,
        to: usize,
        cap: &mut cap::HitCap,
    ) -> Vec<(usize, Hit)> {
        let mut found = Vec::new();
        let mut candidates = Vec::new();
        decode::find(data, from, to, &mut cap.decode, &mut candidates);
        // Where the budget ran out, as a file offset (runs inside decoded
        // values are placed at the value, like their hits).
        let mut stops = cap.decode.pending_stop.take().map(|i| base + i as u64);
        for c in candidates {
            self.scan_decoded(&c.decoded, &c.chain, 1, cap, &mut |h| {
                found.push((c.start, Hit { offset: base + c.start as u64, ..h }));
            });
            if cap.decode.pending_stop.take().is_some() {
                stops = Some(stops.map_or(base + c.start as u64, |s| s.min(base + c.start as u64)));
            }
        }
        if let Some(at) = stops {
            cap.decode.stop_at(at);
        }
        found
    }

    /// Scans decoded bytes, and the encoded runs inside them up to
    /// [`decode::MAX_DEPTH`] levels; each hit records the decodings.
    fn scan_decoded(
        &self,
        decoded: &[u8],
        chain: &[decode::Encoding],
        depth: usize,
        cap: &mut cap::HitCap,
        emit: &mut dyn FnMut(Hit),
    ) {
        let names: Vec<String> = chain.iter().map(|e| e.as_str().to_owned()).collect();
        let mut placeholders = 0;
        let set_aside = &mut cap.set_aside;
        let mut hit = |m: RawMatch| {
            if let Some(mut h) = self.to_hit(decoded, 0, &m, set_aside) {
                h.decoding = names.clone();
                emit(h);
            }
        };
        self.engine.find(decoded, &mut hit, &mut placeholders);
        cap.set_aside.placeholders += placeholders;
        if depth >= decode::MAX_DEPTH {
            return;
        }
        let mut inner = Vec::new();
        decode::find(decoded, 0, decoded.len(), &mut cap.decode, &mut inner);
        for c in inner {
            let deeper: Vec<decode::Encoding> = chain.iter().chain(&c.chain).copied().collect();
            self.scan_decoded(&c.decoded, &deeper, depth + 1, cap, emit);
        }
    }

    /// Turns an engine match into a hit (line 0: counted by the caller),
    /// dropping documented examples (counted in `set_aside`).
    fn to_hit(
        &self,
        buf: &[u8],
        base: u64,
        m: &RawMatch,
        set_aside: &mut tally::SetAside,
    ) -> Option<Hit> {
        let secret = &buf[m.secret.0..m.secret.1];
        if !self.options.report_examples && filter::known_example(secret).is_some() {
            set_aside.known_examples += 1;
            return None;
        }
        Some(Hit {
            rule: m.rule,
            offset: base + m.secret.0 as u64,
            line: 0,
            secret: Secret::new(secret.to_vec()),
            validation: m.validation.clone(),
            failed_check: m.failed_check,
            decoding: Vec::new(),
            material: material::extract(&self.rule(m.rule).id, buf, m.secret),
        })
    }
}

/// Keeps one hit per overlapping secret span: the most specific rule wins
/// (validated > specific > `.env` catch-all > generic > entropy), then the higher severity the
/// hit is reported at (a file-aware detector's `file-shadow-hash` over the
/// `shadow-password-hash` pattern on the same bytes), then the longer secret.
pub fn dedupe(scanner: &Scanner, mut hits: Vec<Hit>) -> Vec<Hit> {
    if hits.len() < 2 {
        return hits;
    }
    hits.sort_by_key(|h| (h.offset, std::cmp::Reverse(h.secret.expose().len())));
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        let end = h.offset + h.secret.expose().len() as u64;
        let overlapping = out.iter_mut().rev().take(8).find(|o| {
            let o_end = o.offset + o.secret.expose().len() as u64;
            h.offset < o_end && o.offset < end
        });
        match overlapping {
            None => out.push(h),
            Some(o) => {
                let key = |x: &Hit| {
                    let rule = scanner.rule(x.rule);
                    let severity = filter::reported_severity(
                        rule.severity,
                        x.failed_check,
                        x.validation.as_deref(),
                    );
                    (rule.rank, severity, x.secret.expose().len())
                };
                if key(&h) > key(o) {
                    *o = h;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_is_send_and_sync() {
        fn assert<T: Send + Sync>() {}
        assert::<Scanner>();
    }
}
