//! `strata signatures list|check`: the rule list, and the check of rule
//! files and their examples through the full scanner.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;

use super::args::{SignaturesAction, SignaturesArgs};
use super::{Exit, load_signatures};

/// Runs `strata signatures list|check`.
///
/// # Errors
/// A rule file that cannot be read or parsed; an unwritable output.
pub(super) fn run(args: SignaturesArgs) -> Result<Exit> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.action {
        SignaturesAction::List { signatures } => {
            let scanner = crate::scan::Scanner::new(load_signatures(&signatures)?)?;
            for r in scanner.rules() {
                writeln!(
                    out,
                    "{:<48} {:<9} {:<8} {}",
                    r.id,
                    r.severity.as_str(),
                    format!("{:?}", r.detector).to_lowercase(),
                    r.name
                )?;
            }
            writeln!(out, "{} rules", scanner.rules().len())?;
            out.flush()?;
            Ok(Exit::Clean)
        }
        SignaturesAction::Check { path } => {
            let extra: Vec<PathBuf> = path.into_iter().collect();
            let signatures = load_signatures(&extra)?;
            let checked: Vec<String> = signatures
                .iter()
                .filter(|s| extra.is_empty() || !s.origin.starts_with("builtin:"))
                .map(|s| s.syntax.id.clone())
                .collect();
            let scanner = crate::scan::Scanner::new(signatures)?;
            let problems = crate::scan::examples::check_examples(&scanner, &checked);
            for p in &problems {
                writeln!(out, "FAIL {p}")?;
            }
            writeln!(out, "{} rules checked, {} problems", checked.len(), problems.len())?;
            out.flush()?;
            Ok(if problems.is_empty() { Exit::Clean } else { Exit::Findings })
        }
    }
}
