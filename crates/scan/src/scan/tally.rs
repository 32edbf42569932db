//! Candidates a scan sets aside instead of reporting (placeholders and
//! documented example credentials), counted for the report's summary.
//!
//! A stream's scan counts into a tally of its own and keeps the counts with
//! its hits (`HitCap::set_aside`), so a result the content memo
//! hands out again for the same bytes is counted again: the summary does
//! not depend on which worker met the bytes first.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by the threads of one scan.
#[derive(Debug, Default)]
pub struct Tally {
    /// Values set aside as placeholders by the pattern and entropy rules.
    pub placeholders: AtomicU64,
    /// Documented example credentials (`AKIAIOSFODNN7EXAMPLE`, …).
    pub known_examples: AtomicU64,
}

/// A [`Tally`]'s counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetAside {
    /// As [`Tally::placeholders`].
    pub placeholders: u64,
    /// As [`Tally::known_examples`].
    pub known_examples: u64,
}

impl Tally {
    /// The counts so far.
    pub fn counts(&self) -> SetAside {
        SetAside {
            placeholders: self.placeholders.load(Ordering::Relaxed),
            known_examples: self.known_examples.load(Ordering::Relaxed),
        }
    }

    /// Adds `n` to the counts.
    pub fn add(&self, n: SetAside) {
        self.placeholders.fetch_add(n.placeholders, Ordering::Relaxed);
        self.known_examples.fetch_add(n.known_examples, Ordering::Relaxed);
    }
}

impl SetAside {
    /// What was counted after `earlier`.
    pub fn since(self, earlier: SetAside) -> SetAside {
        SetAside {
            placeholders: self.placeholders - earlier.placeholders,
            known_examples: self.known_examples - earlier.known_examples,
        }
    }
}
