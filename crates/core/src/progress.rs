//! Progress bars on stderr (indicatif), shown only when stderr is a
//! terminal and `--quiet` is off; never on stdout. Everything else in the
//! crate sees only these small handles, which are no-ops when hidden.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars of one run.
#[derive(Debug, Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    overall: ProgressBar,
}

/// A byte counter for one layer.
#[derive(Debug, Clone, Default)]
pub struct LayerProgress(Option<ProgressBar>);

impl LayerProgress {
    /// A counter that shows nothing.
    pub fn hidden() -> Self {
        LayerProgress(None)
    }

    /// Adds `n` bytes read.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    /// Removes the bar once the layer is done.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Progress {
    /// Bars on stderr when it is a terminal and `quiet` is off; else hidden.
    pub fn new(quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{spinner} layers {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        overall.enable_steady_tick(Duration::from_millis(120));
        Progress { multi: Some(multi), overall }
    }

    /// Progress that draws nothing.
    pub fn hidden() -> Self {
        Progress { multi: None, overall: ProgressBar::hidden() }
    }

    /// Announces an image and the layers it adds to the total.
    pub fn start_image(&self, name: &str, layers: usize) {
        self.overall.inc_length(layers as u64);
        self.overall.set_message(name.to_owned());
    }

    /// A byte bar for one layer of `size` stored bytes.
    pub fn layer(&self, index: usize, size: u64) -> LayerProgress {
        let Some(multi) = &self.multi else { return LayerProgress::hidden() };
        let bar = multi.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template(
                "  layer {prefix:>3} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(index.to_string());
        LayerProgress(Some(bar))
    }

    /// Counts a finished layer.
    pub fn layer_done(&self) {
        self.overall.inc(1);
    }

    /// Clears every bar.
    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }

    /// Runs `f` with the bars hidden, so a message printed to stderr is not torn.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.multi {
            Some(m) => m.suspend(f),
            None => f(),
        }
    }
}
