//! The findings budget of one file (or one config string): at most
//! `max` hits per rule are kept, the rest are only counted. A file of one
//! key repeated three million times yields a hundred findings and one note
//! with the count, in time and memory linear in the file, instead of three
//! million findings (gigabytes) the report would print in full.
//!
//! The cap applies while the file streams (per chunk), so memory is bounded
//! by `max` × rules, whatever the file size.

use std::collections::{BTreeMap, HashMap};

use super::Hit;

/// Hits kept per rule in one file, and how many were dropped beyond that.
#[derive(Debug, Clone)]
pub struct HitCap {
    max: usize,
    kept: HashMap<usize, usize>,
    dropped: BTreeMap<usize, u64>,
    /// Candidates a rule may run its gates (regex captures, validator,
    /// filters) on in one file; beyond that its matches are only counted.
    max_examined: usize,
    examined: HashMap<usize, usize>,
    /// The decoding budget of the same file (what it spent, and where it ran out).
    pub decode: super::decode::Budget,
    /// What the file's scan set aside (placeholders, documented examples).
    pub set_aside: super::tally::SetAside,
}

impl HitCap {
    /// A budget of `max` hits per rule (candidates examined: unbounded).
    pub fn new(max: usize) -> Self {
        HitCap::with_examined(max, usize::MAX)
    }

    /// A budget of `max` hits and `max_examined` examined candidates per rule.
    pub fn with_examined(max: usize, max_examined: usize) -> Self {
        HitCap {
            max,
            kept: HashMap::new(),
            dropped: BTreeMap::new(),
            max_examined,
            examined: HashMap::new(),
            decode: super::decode::Budget::default(),
            set_aside: super::tally::SetAside::default(),
        }
    }

    /// Records that `rule` ran its gates on `n` more candidates.
    pub fn add_examined(&mut self, rule: usize, n: usize) {
        let e = self.examined.entry(rule).or_default();
        *e = e.saturating_add(n);
    }

    /// Moves `hits` into `out` while their rule is under budget; counts the rest.
    pub fn admit(&mut self, hits: impl IntoIterator<Item = Hit>, out: &mut Vec<Hit>) {
        for h in hits {
            if self.keep(h.rule) {
                out.push(h);
            }
        }
    }

    /// Charges one hit of `rule`: true while the rule is under budget (keep the hit),
    /// false once it is spent (the hit is counted as dropped).
    pub fn keep(&mut self, rule: usize) -> bool {
        let kept = self.kept.entry(rule).or_default();
        if *kept < self.max {
            *kept += 1;
            true
        } else {
            *self.dropped.entry(rule).or_default() += 1;
            false
        }
    }

    /// Counts `n` hits of `rule` dropped without being examined (the rule's
    /// budget was already spent).
    pub fn add_dropped(&mut self, rule: usize, n: u64) {
        *self.dropped.entry(rule).or_default() += n;
    }

    /// `true` when a hit of `rule` would be dropped.
    pub fn is_full(&self, rule: usize) -> bool {
        self.kept.get(&rule).is_some_and(|k| *k >= self.max)
            || self.examined.get(&rule).is_some_and(|e| *e >= self.max_examined)
    }

    /// (rule, hits dropped) for every rule over budget, in rule order.
    pub fn dropped(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.dropped.iter().map(|(r, n)| (*r, *n))
    }

    /// The per-rule budget.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The per-rule budget of examined candidates.
    pub fn max_examined(&self) -> usize {
        self.max_examined
    }

    /// How many rules this cap keeps counts for (its tables' entries).
    pub fn rules_counted(&self) -> usize {
        self.kept.len() + self.dropped.len() + self.examined.len()
    }
}

/// A hit of `rule` at `offset` with a one-byte secret: what this cap's tests count and order.
#[cfg(test)]
impl Hit {
    pub(crate) fn budget_test(rule: usize, offset: u64) -> Hit {
        Hit {
            rule,
            offset,
            line: 1,
            secret: crate::finding::Secret::new(b"x".to_vec()),
            validation: None,
            failed_check: false,
            decoding: Vec::new(),
            material: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(rule: usize, offset: u64) -> Hit {
        Hit::budget_test(rule, offset)
    }

    #[test]
    fn keeps_max_per_rule_and_counts_the_rest() {
        let mut cap = HitCap::new(2);
        let mut out = Vec::new();
        cap.admit((0..5).map(|i| hit(7, i)), &mut out);
        cap.admit([hit(3, 9), hit(7, 10)], &mut out);
        let kept: Vec<(usize, u64)> = out.iter().map(|h| (h.rule, h.offset)).collect();
        assert_eq!(kept, [(7, 0), (7, 1), (3, 9)]);
        assert_eq!(cap.dropped().collect::<Vec<_>>(), [(7, 4)]);
        assert!(cap.is_full(7) && !cap.is_full(3));
    }
}
