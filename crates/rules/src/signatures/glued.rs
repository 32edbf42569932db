//! A token rule's pattern without the word boundaries around its secret, for
//! binary files, where strings are stored back to back.
//!
//! A Go binary keeps its string literals in one run with no separator
//! (`…spanAKIA…QRSEgyptian_Hieroglyphs…`), and other formats put a length
//! byte that is often a letter or digit right before a string. A rule
//! written `\b(?P<secret>AKIA[A-Z2-7]{16})\b` then never matches there,
//! although the token is plainly in the file. For a token whose secret
//! starts with a literal of at least [`MIN_PREFIX`] bytes (`AKIA`, `xoxb-`,
//! `sk-proj-`; not a hex prefix before a class of hex digits, which hashes
//! are full of), that prefix already marks where it starts: the boundary
//! before it is dropped. The boundary after it is dropped only when the
//! secret ends in a fixed number of characters (`{16}`, `{24}`), which
//! then marks where it ends (from the literal start); a token of open
//! length keeps it (dropped, the token would run on into the next string).
//! Context rules (a key name, then a value) have no such prefix and are
//! left as they are.
//!
//! A match of the unglued pattern still needs to stand apart ([`Edges`]):
//! a change of alphabet at one of its ends (the byte before it outside the
//! class of the secret's first character after the prefix, or the byte
//! after it outside the class of its last one), or a mix of capitals, small
//! letters and digits in it, as random tokens have. Tables of words glued
//! together (the Unicode character names in `libunistring`:
//! `…ARA4DARGADASIADAVIDDDDHA…`) hold prefix-and-class runs of one case
//! with the same alphabet on both sides; a token in a Go binary is random,
//! or sits next to a string of another alphabet (`…spanAKIA…`,
//! `…=sk_live_…`).

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// Shortest literal start of a secret that stands in for the boundary before it.
pub const MIN_PREFIX: usize = 4;

/// A set of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    /// `[A-Za-z0-9_]`: taken when a secret's class at an end is not plain.
    fn word() -> ByteSet {
        let mut set = ByteSet([0; 4]);
        (0..=255u8).filter(|&b| is_word(b)).for_each(|b| set.insert(b));
        set
    }

    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    /// The bytes a class, or a literal's first or last byte, matches.
    fn of(hir: &Hir, last: bool) -> Option<ByteSet> {
        let mut set = ByteSet([0; 4]);
        match hir.kind() {
            HirKind::Repetition(r) => return ByteSet::of(&r.sub, last),
            HirKind::Class(Class::Bytes(c)) => {
                for r in c.iter() {
                    (r.start()..=r.end()).for_each(|b| set.insert(b));
                }
            }
            HirKind::Class(Class::Unicode(c)) => {
                for r in c.iter() {
                    let (lo, hi) = (u32::from(r.start()), u32::from(r.end()).min(255));
                    (lo..=hi).filter_map(|b| u8::try_from(b).ok()).for_each(|b| set.insert(b));
                }
            }
            HirKind::Literal(l) => set.insert(*if last { l.0.last() } else { l.0.first() }?),
            _ => return None,
        }
        Some(set)
    }
}

/// The alphabets at the ends of a secret, for the change-of-alphabet test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edges {
    /// The class of the secret's first character after its literal start.
    first: ByteSet,
    /// The class of its last character.
    last: ByteSet,
    /// Which boundaries were dropped.
    before: bool,
    after: bool,
}

impl Edges {
    /// Whether the match of `hay[start..end]` has a change of alphabet at one
    /// of its ends (the haystack's own ends count as one), or else the word
    /// boundaries the exact pattern asks for.
    pub fn separated(&self, hay: &[u8], start: usize, end: usize) -> bool {
        let before = start.checked_sub(1).and_then(|i| hay.get(i));
        let after = hay.get(end);
        let word = |b: Option<&u8>| b.is_some_and(|&b| is_word(b));
        let boundary = |outside: Option<&u8>, inside: Option<&u8>| word(outside) != word(inside);
        let exact = (!self.before || boundary(before, hay.get(start)))
            && (!self.after || boundary(after, end.checked_sub(1).and_then(|i| hay.get(i))));
        exact
            || before.is_none_or(|&b| !self.first.contains(b))
            || after.is_none_or(|&b| !self.last.contains(b))
            || mixed(&hay[start..end])
    }
}

/// A byte of `[A-Za-z0-9_]`, as `\b` (ASCII) sees word characters.
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `secret` mixes two of capitals, small letters and digits, as a
/// random token does and a run of glued words (`ASIADAVIDDDDHADDHAAD`) does not.
fn mixed(secret: &[u8]) -> bool {
    let kinds = [u8::is_ascii_uppercase, u8::is_ascii_lowercase, u8::is_ascii_digit];
    kinds.iter().filter(|is| secret.iter().any(is)).count() >= 2
}

/// `hir` without the word boundaries next to its `secret` group that the
/// module's rules allow dropping, with the secret's [`Edges`]; `None` when
/// none can be dropped.
pub fn unglue(hir: &Hir) -> Option<(Hir, Edges)> {
    let HirKind::Concat(items) = hir.kind() else { return None };
    let at = items.iter().position(is_secret)?;
    let HirKind::Capture(secret) = items[at].kind() else { return None };
    // Without a literal start nothing marks where the secret begins, and a fixed
    // count (`[a-f0-9]{32}`) would match inside any longer run.
    let mut edges = edges(&secret.sub);
    if !has_literal_start(&secret.sub, &edges.first) {
        return None;
    }
    let drop_before = at > 0 && is_word_boundary(&items[at - 1]);
    let drop_after = items.get(at + 1).is_some_and(is_word_boundary) && has_fixed_end(&secret.sub);
    if !drop_before && !drop_after {
        return None;
    }
    let kept = items
        .iter()
        .enumerate()
        .filter(|&(i, _)| !(drop_before && i + 1 == at || drop_after && i == at + 1));
    (edges.before, edges.after) = (drop_before, drop_after);
    Some((Hir::concat(kept.map(|(_, h)| h.clone()).collect()), edges))
}

/// The secret's end alphabets: after its literal start (the literal and
/// literal alternations it begins with), and at its end.
fn edges(secret: &Hir) -> Edges {
    let parts: &[Hir] = match secret.kind() {
        HirKind::Concat(parts) => parts,
        _ => std::slice::from_ref(secret),
    };
    let first = parts
        .iter()
        .find(|p| !p.properties().is_literal() && !p.properties().is_alternation_literal())
        .and_then(|p| ByteSet::of(p, false));
    let last = parts.last().and_then(|p| ByteSet::of(p, true));
    Edges {
        first: first.unwrap_or_else(ByteSet::word),
        last: last.unwrap_or_else(ByteSet::word),
        before: false,
        after: false,
    }
}

fn is_secret(hir: &Hir) -> bool {
    matches!(hir.kind(), HirKind::Capture(c) if c.name.as_deref() == Some("secret"))
}

fn is_word_boundary(hir: &Hir) -> bool {
    matches!(hir.kind(), HirKind::Look(Look::WordAscii | Look::WordUnicode))
}

/// Every string the secret can start with begins with a literal of
/// [`MIN_PREFIX`] bytes or more, and the secret cannot be a run of hex
/// digits: a hex prefix followed by a class that takes hex digits
/// (ClickHouse's `4b1d[A-Za-z0-9]{38}`) turns up by chance in the hashes
/// binaries hold.
fn has_literal_start(secret: &Hir, first: &ByteSet) -> bool {
    // Classes are not spelled out (`sk-[0-9]` is no 4-byte literal), but for case pairs.
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix).limit_class(2);
    let prefixes = extractor.extract(secret);
    let takes = |digits: &[u8]| digits.iter().all(|&b| first.contains(b));
    let hex_body = takes(b"0123456789abcdef") || takes(b"0123456789ABCDEF");
    let distinctive =
        |l: &[u8]| l.len() >= MIN_PREFIX && !(hex_body && l.iter().all(u8::is_ascii_hexdigit));
    prefixes
        .literals()
        .is_some_and(|ls| !ls.is_empty() && ls.iter().all(|l| distinctive(l.as_bytes())))
}

/// The secret ends in a fixed count of something (`[A-Z2-7]{16}`) or a literal.
fn has_fixed_end(secret: &Hir) -> bool {
    let last = match secret.kind() {
        HirKind::Concat(parts) => parts.last(),
        _ => Some(secret),
    };
    last.is_some_and(|h| match h.kind() {
        HirKind::Repetition(r) => r.max == Some(r.min) && r.min > 0,
        HirKind::Literal(_) => true,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &str) -> Hir {
        regex_syntax::ParserBuilder::new().utf8(false).unicode(false).build().parse(p).unwrap()
    }

    fn unglued(p: &str) -> Option<String> {
        unglue(&parse(p)).map(|(h, _)| h.to_string())
    }

    #[test]
    fn drops_the_boundaries_a_literal_start_and_a_fixed_end_stand_in_for() {
        let aws = r"(?-u:\b)(?P<secret>(?:AKIA|ASIA)[A-Z2-7]{16})(?-u:\b)";
        assert_eq!(unglued(aws), Some(parse(r"(?P<secret>(?:AKIA|ASIA)[A-Z2-7]{16})").to_string()));
        let slack = r"(?-u:\b)(?P<secret>xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24})(?-u:\b)";
        assert!(!unglued(slack).unwrap().contains(r"\b"));
        // Open length: the boundary after stays, the one before goes.
        let stripe = r"(?-u:\b)(?P<secret>sk_live_[A-Za-z0-9]{24,247})(?-u:\b)";
        assert_eq!(
            unglued(stripe),
            Some(parse(r"(?P<secret>sk_live_[A-Za-z0-9]{24,247})(?-u:\b)").to_string())
        );
    }

    #[test]
    fn a_match_stands_apart_by_its_alphabet_or_its_mix() {
        let aws = r"(?-u:\b)(?P<secret>(?:AKIA|ASIA)[A-Z2-7]{16})(?-u:\b)";
        let (_, edges) = unglue(&parse(aws)).unwrap();
        let at = |hay: &[u8], token: &[u8]| {
            let start = hay.windows(token.len()).position(|w| w == token).unwrap();
            edges.separated(hay, start, start + token.len())
        };
        let token = b"AKIAFAKEQZ7XW4K2PQRS";
        // A Go binary's strings: lowercase before, a capital after.
        assert!(at(b"unallocated spanAKIAFAKEQZ7XW4K2PQRSEgyptian_Hieroglyphs", token));
        assert!(at(b"\0AKIAFAKEQZ7XW4K2PQRSEGYPTIAN", token));
        assert!(at(token, token), "the haystack's ends");
        // Capitals glued on both sides: a table of words; a random token is kept.
        assert!(!at(b"RTINSIDEISAKIAISLANDISSHARITALIC", b"AKIAISLANDISSHARIT"));
        assert!(at(b"span0625AKIAFAKEQZ7XW4K2PQRSEgyptian", token));
        // What the exact pattern matches is kept, whatever the alphabets.
        let base64ish = r"(?-u:\b)(?P<secret>tok_[A-Za-z0-9/+]{8})(?-u:\b)";
        let (_, edges) = unglue(&parse(base64ish)).unwrap();
        assert!(edges.separated(b"/+tok_ab/+ab/c+", 2, 14));
        assert!(!edges.separated(b"/+tok_ab/+ab/ca+", 2, 14));
        let slack = r"(?-u:\b)(?P<secret>xoxb-[0-9]{10,13}-[A-Za-z0-9]{24})(?-u:\b)";
        let (_, edges) = unglue(&parse(slack)).unwrap();
        let hay = b"SA_ONSTACK flagxoxb-1234567890-FAKEJ05abcdEFGHijklMNOPQgentraceback";
        let start = hay.windows(5).position(|w| w == b"xoxb-").unwrap();
        assert!(edges.separated(hay, start, start + 40), "a letter before a digit class");
    }

    #[test]
    fn context_rules_and_short_prefixes_keep_their_boundaries() {
        for p in [
            r"(?i)password\s*=\s*(?-u:\b)(?P<secret>[a-z0-9]{16,})",
            r"(?-u:\b)(?P<secret>[a-f0-9]{32})(?-u:\b)",
            r"(?-u:\b)(?P<secret>sk-[a-z0-9]{20,})",
            r"(?P<secret>ghp_[A-Za-z0-9]{36})",
            r"(?-u:\b)(?P<secret>4b1d[A-Za-z0-9]{38})(?-u:\b)",
            r"token (?P<secret>[a-z]{8})",
        ] {
            assert_eq!(unglued(p), None, "{p}");
        }
    }
}
