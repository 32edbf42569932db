//! Warnings and errors met during a run that do not stop it: a corrupt
//! layer, a digest mismatch, a skipped attestation. They are echoed to
//! stderr as they happen and kept for the report and the exit code.
//!
//! Messages can quote image bytes (paths, names): each one goes through the
//! run's scrubber (secrets detected in the text are redacted) before it is
//! echoed or kept, and the echo escapes terminal control characters.
//!
//! Their volume is bounded whatever the input: a message is cut to
//! [`MAX_MESSAGE`] bytes, and of each kind of message (the text with its
//! quoted names and numbers taken out) the first [`PER_KIND`] are kept
//! verbatim; the rest are counted and reported as one "and K more" line.
//! An error counts for the exit code even when it is not kept.

use std::collections::HashMap;
use std::sync::Mutex;

/// Messages of one kind kept verbatim, per level.
pub const PER_KIND: usize = 50;

/// Longest message kept, in bytes; the rest is cut with a count.
pub const MAX_MESSAGE: usize = 2048;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Informational: something was skipped on purpose.
    Note,
    /// Suspicious but the scan is complete (a digest mismatch).
    Warning,
    /// Part of the input could not be scanned: the result is incomplete.
    Error,
}

/// One message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    /// Seriousness.
    pub level: Level,
    /// The message, naming the file and the problem.
    pub message: String,
}

pub use crate::redact::Scrubber;

/// A thread-safe collector shared by all workers of a run.
#[derive(Default)]
pub struct Diagnostics {
    state: Mutex<State>,
    /// Echo messages at or above this level to stderr (None: no echo).
    echo: Option<Level>,
    progress: Option<crate::progress::Progress>,
    scrub: Option<Scrubber>,
}

impl std::fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Diagnostics")
            .field("echo", &self.echo)
            .field("scrub", &self.scrub.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    items: Vec<Diagnostic>,
    /// Messages seen per (level, kind); past [`PER_KIND`] they are only counted.
    seen: HashMap<(Level, String), usize>,
    /// Kinds with messages left out, in first-seen order.
    over: Vec<(Level, String)>,
    has_errors: bool,
}

/// A message cut to [`MAX_MESSAGE`] bytes (on a character boundary).
fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &message[..end], message.len() - end)
}

/// `a` against `b` as text, except that runs of digits compare by value.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (m, n) = (run(x), run(y));
                let (dx, dy) = (trim_zeros(&x[..m]), trim_zeros(&y[..n]));
                let by_value = dx.len().cmp(&dy.len()).then_with(|| dx.cmp(dy));
                if by_value != std::cmp::Ordering::Equal {
                    return by_value;
                }
                (x, y) = (&x[m..], &y[n..]);
            }
            (Some(p), Some(q)) if p != q => return p.cmp(q),
            _ => (x, y) = (&x[1..], &y[1..]),
        }
    }
}

/// `digits` without its leading zeros.
fn trim_zeros(digits: &[u8]) -> &[u8] {
    &digits[digits.iter().take_while(|&&c| c == b'0').count()..]
}

/// What messages of one kind share: the text without quoted parts and numbers.
fn kind_of(message: &str) -> String {
    let mut kind = String::new();
    let mut quoted = false;
    for c in message.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                if quoted {
                    kind.push_str("\"…\"");
                }
            }
            _ if quoted => {}
            c if c.is_ascii_digit() => {
                if !kind.ends_with('#') {
                    kind.push('#');
                }
            }
            c => kind.push(c),
        }
    }
    // The target (first field) and digests vary too; the tail names the problem.
    let tail: String = kind.chars().rev().take(160).collect();
    tail.chars().rev().collect()
}

impl Diagnostics {
    /// A collector; with `echo`, each message is also written to stderr
    /// when it is recorded.
    pub fn new(echo: bool) -> Self {
        Diagnostics {
            state: Mutex::new(State::default()),
            echo: echo.then_some(Level::Note),
            progress: None,
            scrub: None,
        }
    }

    /// Echoes only errors (`--quiet`): quiet hides chatter, never a failure.
    pub fn echo_errors_only(mut self) -> Self {
        self.echo = Some(Level::Error);
        self
    }

    /// Passes every message through `scrub` before it is echoed or kept.
    pub fn with_scrubber(mut self, scrub: Scrubber) -> Self {
        self.scrub = Some(scrub);
        self
    }

    /// The scrubber every message goes through, if any.
    pub fn scrubber(&self) -> Option<Scrubber> {
        self.scrub.clone()
    }

    /// Echoes around these progress bars, so messages do not tear them.
    pub fn with_progress(mut self, progress: crate::progress::Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    fn push(&self, level: Level, message: String) {
        let message = match &self.scrub {
            Some(f) => f(&message),
            None => message,
        };
        let message = bounded(message);
        let kind = kind_of(&message);
        // A poisoned lock only means another worker panicked; keep its messages.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.has_errors |= level == Level::Error;
        let n = state.seen.entry((level, kind.clone())).or_insert(0);
        *n += 1;
        let n = *n;
        let echo = match n {
            n if n <= PER_KIND => Some(message.clone()),
            n if n == PER_KIND + 1 => {
                state.over.push((level, kind));
                Some(format!("more messages like the last are counted, not shown: {message}"))
            }
            _ => None,
        };
        if n <= PER_KIND {
            state.items.push(Diagnostic { level, message });
        }
        drop(state);
        if let Some(text) = echo.filter(|_| self.echo.is_some_and(|min| level >= min)) {
            let word = match level {
                Level::Note => "note",
                Level::Warning => "warning",
                Level::Error => "error",
            };
            let shown = crate::escape::escape_for_terminal(&text);
            let print = || eprintln!("strata: {word}: {shown}");
            match &self.progress {
                Some(p) => p.suspend(print),
                None => print(),
            }
        }
    }

    /// Records a note.
    pub fn note(&self, message: String) {
        self.push(Level::Note, message);
    }

    /// Records a warning.
    pub fn warn(&self, message: String) {
        self.push(Level::Warning, message);
    }

    /// Records an error: part of the input was not scanned.
    pub fn error(&self, message: String) {
        self.push(Level::Error, message);
    }

    /// True when any error was recorded (the run must exit 2), kept or not.
    pub fn has_errors(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).has_errors
    }

    /// A copy of everything kept so far, then one line per kind of message
    /// that was only counted. Both parts are in the order of their text with
    /// numbers compared by value (`layer 9` before `layer 10`), not in the
    /// order workers recorded them, so a report is the same for every thread
    /// count.
    pub fn snapshot(&self) -> Vec<Diagnostic> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = state.items.clone();
        out.sort_by(|a, b| {
            natural_cmp(&a.message, &b.message).then_with(|| a.message.cmp(&b.message))
        });
        let mut over = state.over.clone();
        over.sort_by(|a, b| natural_cmp(&a.1, &b.1).then_with(|| a.1.cmp(&b.1)));
        for key in &over {
            let total = state.seen.get(key).copied().unwrap_or(0);
            out.push(Diagnostic {
                level: key.0,
                message: format!(
                    "and {} more messages like: {}",
                    total.saturating_sub(PER_KIND),
                    key.1
                ),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_is_bounded_per_kind_and_errors_still_count() {
        let d = Diagnostics::new(false);
        let long = "x".repeat(50_000);
        for i in 0..10_000 {
            d.warn(format!("img.tar: layer 0: entry \"../{long}{i}\": escapes; ignored"));
        }
        d.error("img.tar: layer 1: broken".into());
        let all = d.snapshot();
        assert_eq!(all.len(), PER_KIND + 2);
        assert!(all.iter().all(|m| m.message.len() <= MAX_MESSAGE + 64));
        let summary = &all.last().unwrap().message;
        assert!(summary.starts_with(&format!("and {} more", 10_000 - PER_KIND)), "{summary}");
        assert!(d.has_errors());
        // Different kinds are kept apart.
        d.warn("img.tar: digest mismatch".into());
        assert!(d.snapshot().iter().any(|m| m.message == "img.tar: digest mismatch"));
    }

    #[test]
    fn snapshot_order_does_not_depend_on_the_order_of_recording() {
        let messages = [
            "img.tar: layer 10: tar stream ends early",
            "img.tar: layer 9: tar stream ends early",
            "img.tar: layer 4: /a: decoding budget spent",
            "img.tar: layer 4: /b: decoding budget spent",
        ];
        let record = |order: &[usize]| {
            let d = Diagnostics::new(false);
            for &i in order {
                d.warn(messages[i].to_owned());
            }
            d.snapshot().into_iter().map(|m| m.message).collect::<Vec<_>>()
        };
        let first = record(&[0, 1, 2, 3]);
        assert_eq!(first, record(&[3, 1, 0, 2]));
        // Numbers by value: layer 4, then 9, then 10.
        assert_eq!(first, [messages[2], messages[3], messages[1], messages[0]]);
        assert_eq!(natural_cmp("layer 007", "layer 7"), std::cmp::Ordering::Equal);
        assert_eq!(natural_cmp("a2", "a10"), std::cmp::Ordering::Less);
    }
}
