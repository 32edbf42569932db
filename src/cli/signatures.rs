//! `strata signatures list|check`: loads the rules (and, for `check`, runs
//! every rule's examples through the full scanner) and hands the result to
//! [`crate::report::rules`] to print.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;

use super::args::{SignaturesAction, SignaturesArgs};
use super::{Exit, load_signatures};
use crate::report::rules;

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
            rules::write_list(&mut out, scanner.rules())?;
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
            rules::write_check(&mut out, checked.len(), &problems)?;
            out.flush()?;
            Ok(if problems.is_empty() { Exit::Clean } else { Exit::Findings })
        }
    }
}
