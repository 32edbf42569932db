//! A rule's compiled pattern and the search caches every worker shares.
//!
//! The regex semantics of `regex::bytes::Regex` with Unicode off (as if each
//! pattern began with `(?-u)`: bytes haystacks, leftmost-first), built on
//! `regex-automata`'s meta engine so that two things it holds per thread can
//! be held per *use* instead:
//!
//! - **ASCII classes.** `\w`, `\d`, `\s`, `\b` and case-insensitive matching
//!   are ASCII; `.` and negated classes match any byte (`.` but `\n`). The
//!   credentials the rules look for are ASCII, and Unicode made the built-in
//!   rules twice as big compiled (96 -> 50 MB) and twice as slow to compile,
//!   while a Unicode `\b` makes the lazy DFA give up at the first non-ASCII
//!   byte, which binaries are full of. A rule can still ask for Unicode in a
//!   part of its pattern with `(?u:...)`.
//! - **Search caches.** `regex::bytes::Regex` keeps one cache (lazy DFA
//!   states, PikeVM and backtracker scratch, ~60 KB on average for the
//!   built-in rules, far more for the big counted repetitions of key
//!   blocks) per rule per thread that ever ran it, so a second worker
//!   doubled the regex part of the peak RSS. Here a rule keeps at most
//!   [`KEPT_CACHES`]: a worker takes one, searches every window of one
//!   buffer, and puts it back; a worker that finds none idle (two workers on
//!   the same rule at the same moment) makes another. Sharing means the
//!   lazy DFA states one worker built serve the other. Until session 7 a
//!   second cache was dropped after use, and with 2 threads on the real
//!   tree the lazy DFA states it held were built again every time two
//!   workers met on a hot rule: keeping it halved the CPU time spent
//!   building states (perf samples 490-645 -> 226-274 on r1 and r4) for
//!   ~11 MB of peak RSS. The
//!   capture slots are pooled with the cache: a rule runs once per buffer
//!   that holds one of its keywords, and allocating them each time cost
//!   more than most of those searches.
//! - **The match first.** A search runs the pattern with its wide counted
//!   repetitions opened up (`relaxed`) to find where a match can start, then
//!   the exact pattern from there without groups, then the groups over the
//!   match's span: 2-20x faster than asking the meta engine for groups over a
//!   whole window, with the same matches (see [`Searcher::find_at`]).
//! - **The one-pass DFA.** Built per rule at compile time only to speed up
//!   capture-group extraction, which runs on a match (rare: a few per
//!   file at most), while its tables cost ~15% of a rule's compiled size.
//!   Without it captures come from the bounded backtracker or the PikeVM
//!   over the match span only.

use std::sync::Mutex;

use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

use regex_syntax::hir::Hir;

use super::{glued, relaxed};

/// A compiled rule pattern with its `secret` group and a cache pool.
pub struct Matcher {
    regex: Regex,
    /// The pattern with its wide repetitions opened up, when it has any
    /// (see `relaxed`): run first, it says where an exact match can start.
    relaxed: Option<Regex>,
    /// Index of the `secret` capture group.
    secret: usize,
    /// For a pattern unglued for binary files, the alphabets at the secret's
    /// ends (see [`Matcher::separated`]).
    edges: Option<glued::Edges>,
    /// The idle search caches with their capture slots (at most
    /// [`KEPT_CACHES`]), boxed: a cache is a large struct, and taking it out
    /// of the pool and putting it back then moves a pointer, not the struct.
    #[allow(
        clippy::vec_box,
        reason = "popped and pushed per search: a pointer moves, not a cache"
    )]
    idle: Mutex<Vec<Box<Scratch>>>,
}

impl Clone for Matcher {
    fn clone(&self) -> Self {
        // The regex is reference-counted; caches are scratch, not state.
        Matcher {
            regex: self.regex.clone(),
            relaxed: self.relaxed.clone(),
            secret: self.secret,
            edges: self.edges.clone(),
            idle: Mutex::new(Vec::new()),
        }
    }
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher").field("secret", &self.secret).finish_non_exhaustive()
    }
}

/// Most idle search caches a rule keeps: one per worker on a two-core
/// machine. More workers share them; a cache made beyond these is dropped
/// after use, so memory does not grow with the thread count.
pub const KEPT_CACHES: usize = 2;

/// What one search needs besides the regex: the engines' cache and the
/// capture slots, pooled together so that a search allocates neither.
struct Scratch {
    cache: meta::Cache,
    /// The relaxed pattern's cache, when the rule has one.
    relaxed: Option<meta::Cache>,
    caps: Captures,
}

/// One match: the whole match's byte range and the `secret` group's, if it
/// took part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Start of the whole match.
    pub start: usize,
    /// End of the whole match.
    pub end: usize,
    /// The `secret` group's range, when it participated.
    pub secret: Option<(usize, usize)>,
}

/// A borrowed cache: searches with one rule's regex.
pub struct Searcher<'a> {
    regex: &'a Regex,
    relaxed: Option<&'a Regex>,
    secret: usize,
    scratch: &'a mut Scratch,
}

impl Searcher<'_> {
    /// The leftmost-first match in `hay` starting at or after `at` (the
    /// bytes before `at` are still seen by look-behind assertions such as
    /// `\b`), as `regex::bytes::Regex::captures_read_at` finds it.
    pub fn find_at(&mut self, hay: &[u8], at: usize) -> Option<Found> {
        let mut input = Input::new(hay).span(at..hay.len());
        let Scratch { cache, relaxed: relaxed_cache, caps } = &mut *self.scratch;
        // No exact match starts before the relaxed pattern's first match, and
        // where it finds none, there is none.
        if let (Some(relaxed), Some(relaxed_cache)) = (self.relaxed, relaxed_cache.as_mut()) {
            input.set_start(relaxed.search_with(relaxed_cache, &input)?.start());
        }
        // The match first, then its groups over its own span. Asked for groups
        // straight away, the meta engine's reverse-inner strategy (a pattern
        // whose literal is in its middle: `[a-z_]{0,40}(?:password|token)…`)
        // gives up on a window it finds quadratic and runs the PikeVM over all
        // of it: 20-30x slower than its lazy DFA on the same bytes, and most
        // windows hold no match at all. The span search is what the engine
        // does itself after a DFA match, so the groups are the same.
        let m = self.regex.search_with(cache, &input)?;
        let exact = input.span(m.range()).anchored(Anchored::Pattern(m.pattern()));
        self.regex.search_captures_with(cache, &exact, caps);
        let whole = caps.get_match()?;
        let secret = caps.get_group(self.secret).map(|s| (s.start, s.end));
        Some(Found { start: whole.start(), end: whole.end(), secret })
    }
}

impl Matcher {
    /// Compiles `pattern` with `regex::bytes` semantics, Unicode off: at most
    /// `size_limit` bytes of compiled program, and as much for each lazy
    /// DFA cache.
    ///
    /// # Errors
    /// A pattern that does not compile or has no `secret` group.
    pub fn new(pattern: &str, size_limit: usize) -> Result<Matcher, String> {
        Self::from_hir(&parse(pattern)?, size_limit)
    }

    /// The pattern without the word boundaries its secret's own literal
    /// start and fixed end stand in for (see `glued`), for binary files;
    /// `None` when it keeps them all.
    ///
    /// # Errors
    /// As [`Matcher::new`].
    pub fn unglued(pattern: &str, size_limit: usize) -> Result<Option<Matcher>, String> {
        let Some((hir, edges)) = glued::unglue(&parse(pattern)?) else { return Ok(None) };
        let mut matcher = Self::from_hir(&hir, size_limit)?;
        matcher.edges = Some(edges);
        Ok(Some(matcher))
    }

    /// Whether a secret found at `hay[start..end]` stands apart from its
    /// neighbours: always for an exact pattern; for an unglued one, when the
    /// alphabet changes at one of its ends (see `glued`).
    pub fn separated(&self, hay: &[u8], start: usize, end: usize) -> bool {
        self.edges.as_ref().is_none_or(|e| e.separated(hay, start, end))
    }

    fn from_hir(hir: &Hir, size_limit: usize) -> Result<Matcher, String> {
        // Each rule's lazy DFA states, per search cache: a secret pattern's hot states
        // are a few hundred, and hundreds of rules each filling 4 MiB over a long scan
        // once made tens of MB of a scan's peak memory.
        const HYBRID_CACHE: usize = 512 * 1024;
        let config = Regex::config()
            .match_kind(regex_automata::MatchKind::LeftmostFirst)
            .utf8_empty(false)
            .nfa_size_limit(Some(size_limit))
            .hybrid_cache_capacity(HYBRID_CACHE)
            .onepass(false);
        // The exact pattern and its relaxed form are built from one tree.
        let regex = Regex::builder()
            .configure(config.clone())
            .build_from_hir(hir)
            .map_err(|e| format!("pattern does not compile: {e}"))?;
        let secret = regex
            .group_info()
            .to_index(regex_automata::PatternID::ZERO, "secret")
            .ok_or_else(|| "pattern has no (?P<secret>…) group".to_owned())?;
        // Only a speed-up: a relaxed pattern over the size limit is left out. It only says
        // where a match starts, so it keeps no capture groups (a smaller NFA and caches).
        let config = config.which_captures(regex_automata::nfa::thompson::WhichCaptures::Implicit);
        let relaxed = relaxed::relax(hir)
            .and_then(|hir| Regex::builder().configure(config).build_from_hir(&hir).ok());
        Ok(Matcher { regex, relaxed, secret, edges: None, idle: Mutex::new(Vec::new()) })
    }

    /// Runs `f` with a search cache and capture slots: the rule's idle ones,
    /// or new ones when other workers hold them. Afterwards they are kept
    /// while the rule has fewer than [`KEPT_CACHES`] idle, and dropped
    /// otherwise.
    pub fn with_searcher<R>(&self, f: impl FnOnce(&mut Searcher<'_>) -> R) -> R {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut scratch = pooled.unwrap_or_else(|| {
            Box::new(Scratch {
                cache: self.regex.create_cache(),
                relaxed: self.relaxed.as_ref().map(Regex::create_cache),
                caps: self.regex.create_captures(),
            })
        });
        let mut searcher = Searcher {
            regex: &self.regex,
            relaxed: self.relaxed.as_ref(),
            secret: self.secret,
            scratch: &mut scratch,
        };
        let out = f(&mut searcher);
        // A cache made while another worker held the rule's is kept too, up to
        // KEPT_CACHES: dropped, it would be built again (lazy DFA states and all)
        // the next time two workers meet on the rule, which for a hot rule is
        // every few buffers.
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEPT_CACHES
        {
            idle.push(scratch);
        }
        out
    }
}

/// How patterns are parsed: bytes, ASCII classes.
fn syntax_config() -> syntax::Config {
    syntax::Config::new().utf8(false).unicode(false)
}

/// Parses a rule pattern.
fn parse(pattern: &str) -> Result<Hir, String> {
    syntax::parse_with(pattern, &syntax_config()).map_err(|e| {
        // The parser's own message points at the offending part; a
        // Unicode class gets how to ask for Unicode.
        if e.to_string().contains("Unicode not allowed") {
            format!(
                "pattern does not compile (patterns match with Unicode off: write `(?u:...)` around a Unicode class): {e}"
            )
        } else {
            format!("pattern does not compile: {e}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every match (whole and `secret` group) as `regex::bytes` with Unicode
    /// off finds them.
    fn same_as_regex_crate(pattern: &str, hay: &[u8]) {
        let m = Matcher::new(pattern, 1 << 22).expect("compiles");
        let r = regex::bytes::RegexBuilder::new(pattern).unicode(false).build().expect("compiles");
        let group = r.capture_names().position(|n| n == Some("secret")).expect("group");
        let mut locs = r.capture_locations();
        for at in 0..=hay.len() {
            let want = r.captures_read_at(&mut locs, hay, at).map(|w| Found {
                start: w.start(),
                end: w.end(),
                secret: locs.get(group),
            });
            let got = m.with_searcher(|s| s.find_at(hay, at));
            assert_eq!(got, want, "{pattern} at {at}");
        }
    }

    #[test]
    fn matches_like_regex_bytes() {
        // ASCII classes against UTF-8 and invalid UTF-8, word boundaries,
        // empty matches, an optional group that does not take part, a part
        // that asks for Unicode.
        let hay: &[u8] =
            b"tok=ab\xc3\xa9cd \xff\xfe key: x9\xe2\x80\x83zz\n\xffpassword=hunter22;\xffq\x80w";
        for p in [
            r"(?P<secret>\w+)",
            r"\b(?P<secret>[^\s;]{2,})",
            r"(?i)password\s*=\s*(?P<secret>[^;]+);",
            r"(?P<secret>.)",
            r"x(?P<secret>9)?|(?P<other>zz)",
            r"(?P<secret>)",
            r"(?i)TOK=(?P<secret>[a-z]+)",
            r"(?u:\w)(?P<secret>\w+)",
            // A literal in the middle (the engine's reverse-inner strategy).
            r"(?i)(?P<key>[a-z_.]{0,10}(?:password|key)[a-z_]{0,4})\s*[:=]\s*(?P<secret>[^;\s]{3,})",
        ] {
            same_as_regex_crate(p, hay);
        }
    }

    /// Patterns with wide counted repetitions run their relaxed form first:
    /// the matches stay the exact pattern's where keys and values are longer
    /// than its bounds allow, and where they only fit the relaxed form.
    #[test]
    fn relaxed_first_search_finds_the_exact_matches() {
        let hay: &[u8] = b"x a_very_long_prefix_db_password = s3cr3tvalue; token:ab \
            key=0123456789abcdefXYZ tokentokentoken=zz9 api_key:  shortv";
        for p in [
            r"(?i)(?P<key>[a-z_]{0,10}(?:password|token|key))\s{0,9}[:=]\s{0,9}(?P<secret>[0-9a-z]{4,12})",
            r"(?P<secret>[a-z]{2,10})=",
            r"(?:token){1,9}=(?P<secret>\w{0,8})",
        ] {
            assert!(Matcher::new(p, 1 << 22).expect("compiles").relaxed.is_some(), "{p}");
            same_as_regex_crate(p, hay);
        }
    }

    #[test]
    fn errors_and_shared_caches() {
        assert!(Matcher::new("(", 1 << 20).unwrap_err().contains("does not compile"));
        // A Unicode class is refused with the parser's message and how to ask for Unicode.
        let err = Matcher::new(r"(?P<secret>\p{L}+)", 1 << 20).unwrap_err();
        assert!(err.contains("(?u:") && err.contains("Unicode"), "{err}");
        assert!(Matcher::new(r"(?P<secret>(?u:\p{L})+)", 1 << 20).is_ok());
        assert!(Matcher::new("a+", 1 << 20).unwrap_err().contains("secret"));
        let m = Matcher::new(r"k=(?P<secret>\d+)", 1 << 20).expect("compiles");
        // Nested use (as two workers at once): a second cache is made, and
        // both are kept.
        let (a, b) = m.with_searcher(|outer| {
            let inner = m.with_searcher(|s| s.find_at(b"k=12", 0));
            (outer.find_at(b"xk=7", 0), inner)
        });
        assert_eq!(a, Some(Found { start: 1, end: 4, secret: Some((3, 4)) }));
        assert_eq!(b, Some(Found { start: 0, end: 4, secret: Some((2, 4)) }));
        assert_eq!(m.idle.lock().map(|v| v.len()).unwrap_or(0), 2);
        assert_eq!(m.clone().idle.lock().map(|v| v.len()).unwrap_or(9), 0);
        // Three at once (more workers than kept caches): the third is dropped.
        m.with_searcher(|_| m.with_searcher(|_| m.with_searcher(|_| ())));
        assert_eq!(m.idle.lock().map(|v| v.len()).unwrap_or(0), KEPT_CACHES);
    }
}
