//! Warnings and errors met during a run that do not stop it: a corrupt
//! layer, a digest mismatch, a skipped attestation. They are echoed to
//! stderr as they happen and kept for the report and the exit code.
//!
//! Messages can quote image bytes (paths, names): each one goes through the
//! run's scrubber (secrets detected in the text are redacted) before it is
//! echoed or kept, and the echo escapes terminal control characters.

use std::sync::Mutex;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
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
    items: Mutex<Vec<Diagnostic>>,
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

impl Diagnostics {
    /// A collector; with `echo`, each message is also written to stderr
    /// when it is recorded.
    pub fn new(echo: bool) -> Self {
        Diagnostics {
            items: Mutex::new(Vec::new()),
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
        if self.echo.is_some_and(|min| level >= min) {
            let word = match level {
                Level::Note => "note",
                Level::Warning => "warning",
                Level::Error => "error",
            };
            let shown = crate::escape::escape_for_terminal(&message);
            let print = || eprintln!("strata: {word}: {shown}");
            match &self.progress {
                Some(p) => p.suspend(print),
                None => print(),
            }
        }
        // A poisoned lock only means another worker panicked; keep its messages.
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.push(Diagnostic { level, message });
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

    /// True when any error was recorded (the run must exit 2).
    pub fn has_errors(&self) -> bool {
        self.snapshot().iter().any(|d| d.level == Level::Error)
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<Diagnostic> {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
