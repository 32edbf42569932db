//! The pattern engine: one aho-corasick DFA over every rule's keywords, then
//! each rule's regex only in windows around that rule's keyword hits.
//!
//! A match counts only if it contains one of its rule's keyword hits, so a
//! rule never fires where none of its keywords occurs.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::entropy::{self, shannon};
use super::filter;
use super::prefilter::Prefilter;
use crate::finding::Detector;
use crate::signatures::Signature;

/// A candidate secret found in one buffer.
#[derive(Debug, Clone)]
pub struct RawMatch {
    /// Index of the rule in the engine's rule list.
    pub rule: usize,
    /// Byte range of the whole regex match in the buffer.
    pub start: usize,
    /// End of the whole match.
    #[allow(
        dead_code,
        reason = "read by no caller since lib.rs stopped exporting scan::pattern; kept with `start`"
    )]
    pub end: usize,
    /// Byte range of the secret in the buffer.
    pub secret: (usize, usize),
    /// What the validator confirmed, or what it found wrong.
    pub validation: Option<String>,
    /// The rule's validator rejected the candidate: reported at a lower severity.
    pub failed_check: bool,
}

/// Keyword automaton plus compiled rules, immutable and shared by workers.
#[derive(Debug)]
pub struct PatternEngine {
    automaton: AhoCorasick,
    /// For each automaton pattern, the rules that listed that keyword.
    keyword_rules: Vec<Vec<usize>>,
    /// For each automaton pattern, the marker it is, if it is one.
    keyword_marker: Vec<Option<usize>>,
    rules: Vec<Signature>,
    prefilter: Prefilter,
    /// The providers and products the keywords of provider rules name
    /// ([`filter::provider_name`]).
    provider_names: std::collections::HashSet<Vec<u8>>,
    /// The names a section header may give to the keys below it
    /// ([`filter::section_name`]).
    section_names: std::collections::HashSet<Vec<u8>>,
}

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the keyword automaton: {0}")]
pub struct BuildError(#[from] aho_corasick::BuildError);

/// The per-rule budget callbacks of [`PatternEngine::find_within_budget`]: `full(rule)` when a
/// rule's budget is spent, `count(rule, start)` for each of its candidates then, and
/// `examined(rule, n)` for the candidates the other rules ran their gates on; and
/// `placeholders`, where the candidates set aside as placeholders are counted; `markers`,
/// where the marker keywords ([`PatternEngine::with_markers`]) start, as (marker, start).
pub struct Budget<'a> {
    pub full: &'a dyn Fn(usize) -> bool,
    pub count: &'a mut dyn FnMut(usize, usize),
    pub examined: &'a mut dyn FnMut(usize, usize),
    pub placeholders: &'a mut u64,
    pub markers: &'a mut Vec<(usize, usize)>,
}

/// The bytes the rules run over, and whether they are a binary file's (a
/// NUL among them), where token rules use their form for binaries.
#[derive(Clone, Copy)]
struct Buffer<'a> {
    bytes: &'a [u8],
    binary: bool,
}

impl PatternEngine {
    /// Builds the automaton over all rules' keywords (deduplicated,
    /// lower-cased; matching is ASCII case-insensitive).
    ///
    /// # Errors
    /// When the automaton exceeds aho-corasick's limits.
    #[cfg(test)]
    pub fn new(rules: Vec<Signature>) -> Result<Self, BuildError> {
        Self::with_markers(rules, &[])
    }

    /// Builds the automaton over all rules' keywords (deduplicated, lower-cased; matching
    /// is ASCII case-insensitive) and `markers`: keywords of no rule whose places
    /// [`PatternEngine::find_within_budget`] reports (`insert into` for `sqldump`), found by
    /// the same keyword search, so a pass that needs them costs nothing where they are not.
    ///
    /// # Errors
    /// When the automaton exceeds aho-corasick's limits.
    pub fn with_markers(rules: Vec<Signature>, markers: &[&str]) -> Result<Self, BuildError> {
        let mut keywords: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut position: std::collections::HashMap<String, usize> = Default::default();
        for (i, rule) in rules.iter().enumerate() {
            for kw in &rule.syntax.keywords {
                let kw = kw.to_ascii_lowercase();
                let slot = *position.entry(kw.clone()).or_insert_with(|| {
                    keywords.push(kw);
                    keyword_rules.push(Vec::new());
                    keywords.len() - 1
                });
                if !keyword_rules[slot].contains(&i) {
                    keyword_rules[slot].push(i);
                }
            }
        }
        let mut keyword_marker = vec![None; keywords.len()];
        for (k, marker) in markers.iter().enumerate() {
            let kw = marker.to_ascii_lowercase();
            let slot = *position.entry(kw.clone()).or_insert_with(|| {
                keywords.push(kw);
                keyword_rules.push(Vec::new());
                keyword_marker.push(None);
                keywords.len() - 1
            });
            keyword_marker[slot] = Some(k);
        }
        let automaton = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            // The regions it searches are already the prefilter's, a dozen
            // bytes each: its own prefilter would only add a start-up cost
            // per region.
            .prefilter(false)
            .build(&keywords)?;
        let prefilter = Prefilter::new(&keywords.iter().map(|k| k.as_bytes()).collect::<Vec<_>>());
        // The names the keywords of provider (not contextual) rules give.
        let names_of = |name: fn(&str) -> Option<String>| {
            rules
                .iter()
                .filter(|r| !is_contextual(r))
                .flat_map(|r| r.syntax.keywords.iter().filter_map(|k| name(k)))
                .map(String::into_bytes)
                .collect()
        };
        let provider_names = names_of(filter::provider_name);
        let section_names = names_of(filter::section_name);
        Ok(PatternEngine {
            automaton,
            keyword_rules,
            keyword_marker,
            rules,
            prefilter,
            provider_names,
            section_names,
        })
    }

    /// The rules, in engine order.
    pub fn rules(&self) -> &[Signature] {
        &self.rules
    }

    /// Finds every rule match in `hay`, calling `emit` for each, and counts
    /// the candidates set aside as placeholders in `placeholders`.
    pub fn find(&self, hay: &[u8], emit: &mut dyn FnMut(RawMatch), placeholders: &mut u64) {
        let mut budget = Budget {
            full: &|_| false,
            count: &mut |_, _| {},
            examined: &mut |_, _| {},
            placeholders,
            markers: &mut Vec::new(),
        };
        self.find_within_budget(hay, &mut budget, emit);
    }

    /// Like [`PatternEngine::find`], without counting placeholders: for
    /// text derived from bytes already scanned (a section's child line read
    /// under its section's name), whose placeholders were counted there.
    pub fn find_uncounted(&self, hay: &[u8], emit: &mut dyn FnMut(RawMatch)) {
        self.find(hay, emit, &mut 0);
    }

    /// The provider a section header names (`duo` of `[duo]`, `datadog` of
    /// `services.datadog:`), if a word of it is the name of a provider
    /// rule's keyword ([`filter::section_name`]).
    pub fn section_provider(&self, header: &[u8]) -> Option<Vec<u8>> {
        filter::find_key_word(header, |w| self.section_names.contains(w).then(|| w.to_vec()))
    }

    /// Like [`PatternEngine::find`], but for rules where `full(rule)` (their
    /// budget is spent) only counts candidates: `count(rule, start)` per
    /// keyword hit, without running the rule's regex, validator or filters.
    /// A file of millions of one key then costs one keyword pass, not
    /// millions of validated findings. `examined(rule, n)`
    /// reports how many candidates each other rule ran its gates on.
    pub fn find_within_budget(
        &self,
        hay: &[u8],
        budget: &mut Budget<'_>,
        emit: &mut dyn FnMut(RawMatch),
    ) {
        let Budget { full, count, examined, placeholders, markers } = budget;
        // Keyword hits per rule, in order of position.
        let mut hits: Vec<(usize, usize, usize)> = Vec::new();
        // The prefilter finds the few small regions that can hold a keyword, three
        // times faster than the automaton alone; the exact search runs only there.
        self.prefilter.regions(hay, &mut |start, end| {
            let input = aho_corasick::Input::new(hay).range(start..end);
            for m in self.automaton.find_overlapping_iter(input) {
                let pattern = m.pattern().as_usize();
                for &rule in &self.keyword_rules[pattern] {
                    hits.push((rule, m.start(), m.end()));
                }
                if let Some(marker) = self.keyword_marker[pattern] {
                    markers.push((marker, m.start()));
                }
            }
        });
        if hits.is_empty() {
            return;
        }
        hits.sort_unstable();
        // Bytes of a binary file: token rules run without the boundaries their
        // literal start and fixed end stand in for (see `Signature::regex_for_binary`).
        let binary = memchr::memchr(0, hay).is_some();
        let mut i = 0;
        while i < hits.len() {
            let rule = hits[i].0;
            let mut j = i;
            while j < hits.len() && hits[j].0 == rule {
                j += 1;
            }
            if full(rule) {
                self.count_rule(rule, &hits[i..j], count);
            } else {
                let buffer = Buffer { bytes: hay, binary };
                examined(rule, self.run_rule(rule, buffer, &hits[i..j], emit, placeholders));
            }
            i = j;
        }
    }

    /// Counts one rule's keyword hits without running its regex: the rule's
    /// budget is spent, and a regex pass over a file of endless candidates
    /// costs more than the file is worth.
    fn count_rule(
        &self,
        rule: usize,
        hits: &[(usize, usize, usize)],
        count: &mut dyn FnMut(usize, usize),
    ) {
        let mut last_start = None;
        for &(_, s, _) in hits {
            // Two keywords of one rule at one place (`passwd`, `password`) count once.
            if last_start != Some(s) {
                count(rule, s);
            }
            last_start = Some(s);
        }
    }

    /// Runs one rule over merged windows around its keyword hits; returns
    /// how many candidates went through the rule's gates.
    fn run_rule(
        &self,
        rule: usize,
        buffer: Buffer<'_>,
        hits: &[(usize, usize, usize)],
        emit: &mut dyn FnMut(RawMatch),
        placeholders: &mut u64,
    ) -> usize {
        let (sig, hay) = (&self.rules[rule], buffer.bytes);
        let matcher = if buffer.binary { sig.regex_for_binary() } else { sig.regex() };
        let Some(matcher) = matcher else { return 0 };
        // One search cache for all of this buffer's windows (see `Matcher`).
        matcher.with_searcher(|search| {
            let mut candidates = 0;
            for (ws, we) in windows(hits, sig.window, hay.len()) {
                let mut at = ws;
                while at < we {
                    let Some(m) = search.find_at(&hay[..we], at) else { break };
                    let (ms, me) = (m.start, m.end);
                    at = if me > ms { me } else { me + 1 };
                    let Some((ss, se)) = m.secret else { continue };
                    // An assignment's value ends where a query string's next parameter starts.
                    let se = if sig.id() == entropy::ASSIGNMENT_RULE {
                        ss + entropy::value_end(&hay[ss..se])
                    } else {
                        se
                    };
                    if !contains_hit(hits, ms, me) || se <= ss || !matcher.separated(hay, ss, se) {
                        continue;
                    }
                    candidates += 1;
                    let secret = &hay[ss..se];
                    // Filler in a contextual value is kept only under a key that
                    // names a provider (`ALGOLIA_API_KEY=abcdef0123…`).
                    let named = match is_contextual(sig).then(|| filter::hand_typed_filler(secret))
                    {
                        Some(Some(why)) => self.provider_named(hay, ms, ss).map(|p| (why, p)),
                        _ => None,
                    };
                    // A plain word after a password flag, followed by more words, is
                    // prose about the flag (`-p followed by the password`).
                    let prose = sig.syntax.strong_context
                        && filter::is_plain_word(secret)
                        && filter::prose_follows(&hay[se..hay.len().min(se + 96)]);
                    let checked = accept(sig, secret, placeholders, named.is_some(), prose);
                    // A checksum token that fails its check must stand apart from the
                    // bytes around it; one that passes is reported even glued to them.
                    if let Some(Some(Err(_))) = &checked
                        && sig.validator.is_some_and(|v| v.is_checksum())
                        && glued(hay, ss, se)
                    {
                        continue;
                    }
                    if let Some(checked) = checked {
                        let (mut validation, mut failed_check) = match checked {
                            None => (None, false),
                            Some(Ok(note)) => (Some(note), false),
                            Some(Err(why)) => (Some(format!("check failed: {why}")), true),
                        };
                        if let Some((why, provider)) = named {
                            validation = Some(filter::provider_context_filler(why, &provider));
                            failed_check = true;
                        }
                        // A provider-format value that looks hand-typed is still
                        // reported (an auditor wants to see it), capped at low.
                        if let Some(why) = filler_in_format(sig, secret) {
                            let rest = validation.map(|v| format!("; {v}")).unwrap_or_default();
                            validation = Some(format!("{}: {why}{rest}", filter::FILLER_NOTE));
                            failed_check = true;
                        }
                        emit(RawMatch {
                            rule,
                            start: ms,
                            end: me,
                            secret: (ss, se),
                            validation,
                            failed_check,
                        });
                    }
                }
            }
            candidates
        })
    }
}

impl PatternEngine {
    /// The provider named by the key of a contextual match, if any: a word of
    /// the line before the secret (at most 64 bytes before the match) that a
    /// provider rule's keyword names ([`filter::provider_name`]): `upstage` in
    /// `upstage_api_key = "…"`, `datadog` in `DATADOG_APP_KEY=`, `pagerduty`
    /// in `pagerduty token=`; not `hook` in `WEBHOOK_TOKEN`.
    fn provider_named(&self, hay: &[u8], ms: usize, ss: usize) -> Option<String> {
        let floor = ms.saturating_sub(64);
        let start =
            hay[floor..ms].iter().rposition(|&b| b == b'\n').map_or(floor, |i| floor + i + 1);
        filter::find_key_word(&hay[start..ss], |w| {
            self.provider_names.contains(w).then(|| String::from_utf8_lossy(w).into_owned())
        })
    }
}

/// Contextual rules: the entropy detector and the `generic-*` rules, whose
/// values have no format of their own, so the key beside them is the context.
fn is_contextual(sig: &Signature) -> bool {
    sig.detector == Detector::Entropy || sig.is_generic()
}

/// Merged windows of `w` bytes around keyword hits (sorted by start).
/// Yielded as they are merged, not collected: a rule runs once per buffer
/// holding one of its keywords, tens of thousands of times in a layer.
fn windows(
    hits: &[(usize, usize, usize)],
    w: usize,
    len: usize,
) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut spans =
        hits.iter().map(move |&(_, s, e)| (s.saturating_sub(w), (e + w).min(len))).peekable();
    std::iter::from_fn(move || {
        let (ws, mut we) = spans.next()?;
        while let Some((_, next_end)) = spans.next_if(|&(next_start, _)| next_start <= we) {
            we = we.max(next_end);
        }
        Some((ws, we))
    })
}

/// True when the match `ms..me` contains one of the rule's keyword hits.
/// Hits are sorted by start: only those starting inside the match are
/// looked at (a scan of all of them made a file of repeated keys quadratic).
fn contains_hit(hits: &[(usize, usize, usize)], ms: usize, me: usize) -> bool {
    let first = hits.partition_point(|&(_, s, _)| s < ms);
    hits[first..].iter().take_while(|&&(_, s, _)| s < me).any(|&(_, _, e)| e <= me)
}

/// Applies the rule's gates to a candidate. `Some(validator outcome)` when
/// it passes the placeholder and entropy gates (`None` inside for rules
/// without a validator). A failed validator does not drop the candidate: a
/// truncated or mangled credential is still a leak, reported lower. Placeholders
/// are counted in `placeholders`: structural ones and stock words as the whole
/// value (`password`) for every rule, template words and hand-typed filler
/// for the entropy and `generic-*` rules, whose values have no format of
/// their own (a provider token with `FAKE` in it is still a token). For the
/// other rules the context vouches for the value, so a short value meets a
/// `min_entropy` bar scaled to its length ([`filter::entropy_bar`]).
/// `keep_filler`: the key names a provider, so hand-typed filler in a
/// contextual value is not set aside (it is reported low, marked). `prose`:
/// a plain word in a strong context that prose follows, which needs
/// [`filter::PLAIN_WORD_BAR`].
fn accept(
    sig: &Signature,
    secret: &[u8],
    placeholders: &mut u64,
    keep_filler: bool,
    prose: bool,
) -> Option<Option<Result<String, String>>> {
    let contextual = is_contextual(sig);
    let contextual_placeholder = contextual
        && (filter::template_or_stock_word(secret).is_some()
            || (!keep_filler && filter::hand_typed_filler(secret).is_some()));
    if filter::is_placeholder(secret)
        || filter::stock_word(secret).is_some()
        || contextual_placeholder
    {
        *placeholders += 1;
        return None;
    }
    if sig.detector == Detector::Entropy {
        return entropy::looks_random(sig.id(), secret).then_some(None);
    }
    if let Some(min) = sig.syntax.min_entropy {
        let strong = sig.syntax.strong_context;
        let bar = if contextual {
            min
        } else if prose {
            min.max(filter::PLAIN_WORD_BAR)
        } else {
            filter::entropy_bar(min, secret)
        };
        if shannon(secret) < bar {
            return None;
        }
        // In a strong context (a command's password flag) an identifier is the
        // password (`psexec -p dev_admin`), unless it names one (`-p DB_PASSWORD`)
        // or asks to be filled in (`-p changeme`).
        if strong
            && (filter::names_its_value(secret).is_some() || filter::fill_in_word(secret).is_some())
        {
            *placeholders += 1;
            return None;
        }
        if !strong && filter::is_word_like(secret) {
            return None;
        }
    }
    match sig.validator {
        None => Some(None),
        Some(v) => match v.check(secret) {
            Err(_) if v.is_required() => None,
            checked => Some(Some(checked)),
        },
    }
}

/// True when the secret at `ss..se` touches a word byte (letter, digit or
/// `_`) on either side.
fn glued(hay: &[u8], ss: usize, se: usize) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    ss.checked_sub(1).and_then(|i| hay.get(i)).is_some_and(word) || hay.get(se).is_some_and(word)
}

/// Why a value that passed a provider-format rule looks hand-typed, if it
/// does. Contextual rules (entropy, `generic-*`) never get here with such a
/// value: [`accept`] drops it as a placeholder.
fn filler_in_format(sig: &Signature, secret: &[u8]) -> Option<&'static str> {
    if is_contextual(sig) { None } else { filter::hand_typed_filler(secret) }
}

#[cfg(test)]
mod tests;
