//! A rule pattern with its wide counted repetitions opened up, used to find
//! where a match can start before the exact pattern runs.
//!
//! A bounded repetition over a wide range (`[a-z0-9_.-]{0,40}` before a
//! keyword, `{8,256}` for a value) makes the lazy DFA track every count at
//! once: on real text windows the entropy assignment rule's search ran at
//! ~8.4 ns/byte, and at ~3.2 with those ranges unbounded. The relaxed
//! pattern matches every string the exact one matches (only upper bounds are
//! removed), so its leftmost match in a window starts at or before the exact
//! pattern's, and no exact match starts before it: the exact search can
//! begin there. Most windows hold no match at all, and there only the
//! relaxed pattern runs.

use regex_syntax::hir::{Capture, Hir, HirKind, Repetition};

/// A repetition whose range (`max - min`) is at least this wide is opened
/// up; narrower ones (`[ \t]{0,4}`, `{36}`) cost the DFA little and are kept.
pub const WIDE: u32 = 8;

/// `hir` with every repetition of a range of [`WIDE`] or more unbounded
/// above, or `None` when it has none.
pub fn relax(hir: &Hir) -> Option<Hir> {
    let mut changed = false;
    let out = open(hir, &mut changed);
    changed.then_some(out)
}

fn open(hir: &Hir, changed: &mut bool) -> Hir {
    match hir.kind() {
        HirKind::Repetition(rep) => {
            let wide = rep.max.is_some_and(|max| max - rep.min >= WIDE);
            *changed |= wide;
            Hir::repetition(Repetition {
                min: rep.min,
                max: if wide { None } else { rep.max },
                greedy: rep.greedy,
                sub: Box::new(open(&rep.sub, changed)),
            })
        }
        HirKind::Capture(cap) => Hir::capture(Capture {
            index: cap.index,
            name: cap.name.clone(),
            sub: Box::new(open(&cap.sub, changed)),
        }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(|h| open(h, changed)).collect()),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.iter().map(|h| open(h, changed)).collect())
        }
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => hir.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_syntax::ParserBuilder;

    fn parse(p: &str) -> Hir {
        ParserBuilder::new().utf8(false).unicode(false).build().parse(p).expect("parses")
    }

    #[test]
    fn opens_wide_ranges_only() {
        let relaxed = relax(&parse(r"[a-z]{0,40}key[ \t]{0,4}=(?P<secret>\w{8,256})x{3}"));
        assert_eq!(relaxed, Some(parse(r"[a-z]*key[ \t]{0,4}=(?P<secret>\w{8,})x{3}")));
        assert_eq!(relax(&parse(r"ghp_[A-Za-z0-9]{36}|x{2,9}")), None);
        assert_eq!(relax(&parse(r"(?:a{0,8}b)+")), Some(parse(r"(?:a*b)+")));
    }
}
