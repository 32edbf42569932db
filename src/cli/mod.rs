//! Command line: `args` parses argv (clap only), `config` turns
//! arguments into run settings (pure), and one module per command does the
//! work; this module dispatches and maps outcomes to exit codes (0 clean,
//! 1 findings, 2 error). Nothing imports `cli`.

pub(crate) mod args;
pub(crate) mod config;
mod extract;
mod layers;
mod merge;
mod scan;
mod signatures;

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use args::{Cli, Command};

use crate::diagnostics::Diagnostics;
use crate::escape::escape_for_terminal;

/// Exit codes, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Nothing found (or the command succeeded).
    Clean = 0,
    /// Findings at or above the failure threshold.
    Findings = 1,
    /// Bad input, bad arguments, or part of the input could not be read.
    Error = 2,
}

/// Parses argv, runs, and prints errors as `strata: error: …`.
pub fn main() -> ExitCode {
    let cli = match Cli::from_argv() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Error } else { Exit::Clean };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(Exit::Clean as u8);
            }
            // Errors can quote image names and paths: no terminal control characters.
            eprintln!("strata: error: {}", escape_for_terminal(&format!("{e:#}")));
            ExitCode::from(Exit::Error as u8)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Runs a parsed command line.
///
/// # Errors
/// Anything that should end the run with exit code 2.
fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Scan(args) => scan::run(*args),
        Command::Layers(args) => layers::run(args),
        Command::Signatures(args) => signatures::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Completions { shell } => {
            io::stdout().lock().write_all(&args::completions(shell))?;
            Ok(Exit::Clean)
        }
        Command::Man => {
            args::man(&mut io::stdout().lock())?;
            Ok(Exit::Clean)
        }
        Command::Extract(args) => extract::run(args),
    }
}

/// The run's scrubber: secrets the detectors recognise in a message are
/// redacted before it is printed or kept.
fn scrubber(scanner: &Arc<crate::scan::Scanner>) -> crate::redact::Scrubber {
    let scanner = Arc::clone(scanner);
    Arc::new(move |text: &str| scanner.scrub_text(text))
}

/// An error as this run may print it: through the diagnostics' scrubber.
fn scrubbed(diag: &Diagnostics, e: impl std::fmt::Display) -> anyhow::Error {
    let text = e.to_string();
    anyhow::anyhow!(diag.scrubber().map_or_else(|| text.clone(), |s| s(&text)))
}

/// Opens the images of a `layers` or `extract` target (a path, a registry
/// reference or an engine target) with the run's own registry connections;
/// an error is scrubbed of what the detectors find in it.
///
/// # Errors
/// When the target cannot be opened.
fn open_images(
    target: &str,
    platform: Option<&crate::image::PlatformFilter>,
    sources: &crate::sources::SourceOptions,
    diag: &Diagnostics,
) -> Result<Vec<crate::image::Image>> {
    let registries =
        crate::registry::Registries::new(crate::registry::Settings { insecure: sources.insecure });
    crate::session::target::open_any(target, platform, sources, &registries, diag)
        .map_err(|e| scrubbed(diag, e))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// True when stdout is a terminal.
pub(crate) fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// The built-in rules plus the files or directories in `extra`.
fn load_signatures(extra: &[PathBuf]) -> Result<Vec<crate::signatures::Signature>> {
    let mut sets = vec![crate::signatures::builtin()?];
    for p in extra {
        sets.push(crate::signatures::load_path(p)?);
    }
    Ok(crate::signatures::merge(sets)?)
}

/// Where a report goes: the file `-o` names (created now, so a bad path
/// fails before a long run), or stdout.
fn output(path: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    })
}
