//! The run budget of one layer's hits: at most `max` are kept, the first
//! ones in (path, entry, offset, rule) order, whoever scanned them. Workers
//! each keep their own first `max`, so a layer never holds more than a few
//! times the budget in memory, and the union of those holds the layer's
//! first `max`: the kept hits do not depend on the number of threads.

use crate::scan::content::FileHit;

/// One kept hit: image path, entry ordinal, the hit.
pub type Located = (String, u32, FileHit);

/// Hits kept within a budget, and how many were dropped beyond it.
#[derive(Debug)]
pub struct Kept {
    hits: Vec<Located>,
    max: usize,
    dropped: u64,
    /// Once `max` hits are kept, the key of the last: a hit that sorts at
    /// or after it can never be among the first `max` (a later equal one
    /// sorts after it too), so it is counted as dropped and never held.
    cutoff: Option<(String, u32, u64, usize)>,
}

impl Kept {
    /// A budget of `max` hits.
    pub fn new(max: usize) -> Self {
        Kept { hits: Vec::new(), max, dropped: 0, cutoff: None }
    }

    /// Adds one file's hits (in the order its scan found them).
    pub fn add(&mut self, path: &str, ordinal: u32, found: Vec<FileHit>) {
        for h in found {
            let after_cutoff = self.cutoff.as_ref().is_some_and(|(p, o, offset, rule)| {
                (path, ordinal, h.hit.offset, h.hit.rule) >= (p.as_str(), *o, *offset, *rule)
            });
            if after_cutoff {
                self.dropped += 1;
            } else {
                self.hits.push((path.to_owned(), ordinal, h));
            }
        }
        self.bound();
    }

    /// Takes in what another part of the same layer kept. Both are cut to
    /// the budget first and the larger buffer takes the other's hits: a
    /// worker's buffer grew past the budget, so joining the parts
    /// allocates no third one (which once held every part's hits at once).
    pub fn merge(&mut self, mut other: Kept) {
        self.trim();
        other.trim();
        if other.hits.capacity() > self.hits.capacity() {
            std::mem::swap(&mut self.hits, &mut other.hits);
        }
        self.hits.append(&mut other.hits);
        self.dropped += other.dropped;
        self.trim();
    }

    /// Trims once the hits pass the budget by a quarter, so trimming costs
    /// amortised O(log n) per hit (and, with the cutoff, most hits past the
    /// first trim are never held): each worker's part holds at most 1.25
    /// times the budget (twice the budget, as it once was, made the largest
    /// part of a 2-thread scan's memory).
    fn bound(&mut self) {
        if self.hits.len() > self.max.saturating_add(self.max / 4).max(1024) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        // Stable: one file's hits with equal keys keep their scan order, and
        // equal keys only occur within one file (path and ordinal name it).
        self.hits.sort_by(|a, b| {
            (&a.0, a.1, a.2.hit.offset, a.2.hit.rule).cmp(&(
                &b.0,
                b.1,
                b.2.hit.offset,
                b.2.hit.rule,
            ))
        });
        if self.hits.len() > self.max {
            self.dropped += (self.hits.len() - self.max) as u64;
            self.hits.truncate(self.max);
        }
        if self.hits.len() == self.max
            && let Some((p, o, h)) = self.hits.last()
        {
            self.cutoff = Some((p.clone(), *o, h.hit.offset, h.hit.rule));
        }
    }

    /// The kept hits, sorted, and how many were dropped. The buffer is cut
    /// to the hits: they are kept until the image's findings are made.
    pub fn finish(mut self) -> (Vec<Located>, u64) {
        self.trim();
        self.hits.shrink_to_fit();
        (self.hits, self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Hit;

    /// A hit of rule 1 at `offset` with a one-byte secret.
    fn hit(offset: u64) -> FileHit {
        let secret = crate::finding::Secret::new(b"x".to_vec());
        let (validation, failed_check, decoding, material) = (None, false, Vec::new(), None);
        let hit =
            Hit { rule: 1, offset, line: 1, secret, validation, failed_check, decoding, material };
        FileHit { inner_path: None, name: None, hit }
    }

    fn keys(hits: &[Located]) -> Vec<(String, u32, u64)> {
        hits.iter().map(|(p, o, h)| (p.clone(), *o, h.hit.offset)).collect()
    }

    #[test]
    fn split_among_workers_keeps_the_same_first_hits() {
        let files: Vec<(String, u32)> =
            (0..3000).map(|i| (format!("/f{:05}", i * 7919 % 3000), i)).collect();
        let mut whole = Kept::new(1000);
        for (p, o) in &files {
            whole.add(p, *o, vec![hit(5), hit(1)]);
        }
        let mut parts = [Kept::new(1000), Kept::new(1000), Kept::new(1000)];
        for (i, (p, o)) in files.iter().enumerate() {
            parts[i % 3].add(p, *o, vec![hit(5), hit(1)]);
        }
        let mut joined = Kept::new(1000);
        for p in parts {
            joined.merge(p);
        }
        let (a, dropped_a) = whole.finish();
        let (b, dropped_b) = joined.finish();
        assert_eq!(keys(&a), keys(&b));
        assert_eq!((dropped_a, dropped_b), (5000, 5000));
        assert_eq!(a.len(), 1000);
        assert_eq!(keys(&a[..2]), [("/f00000".to_owned(), 0, 1), ("/f00000".to_owned(), 0, 5)]);
    }
}
