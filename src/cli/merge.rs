//! `strata merge`: JSON reports (shards of a sweep) joined into one; see
//! [`crate::merge`].

use std::io::Write;

use anyhow::{Context, Result};

use super::args::MergeArgs;
use super::{Exit, output};
use crate::finding::Severity;
use crate::report::gate::Gate;

/// Runs `strata merge`.
///
/// # Errors
/// An unreadable or invalid input report; an unwritable output.
pub(super) fn run(args: MergeArgs) -> Result<Exit> {
    let mut inputs = Vec::with_capacity(args.reports.len());
    for path in &args.reports {
        let name = path.display().to_string();
        let text = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
        let doc: serde_json::Value =
            serde_json::from_slice(&text).with_context(|| format!("{name}: not JSON"))?;
        inputs.push((name, doc));
    }
    let merged = crate::merge::merge(&inputs)?;
    let mut sink = output(args.output.as_deref())?;
    crate::merge::write(&mut sink, &merged)?;
    sink.flush()?;
    // An input that recorded errors means part of the sweep was not scanned.
    let errors =
        merged["diagnostics"].as_array().is_some_and(|d| d.iter().any(|x| x["level"] == "error"));
    if errors {
        return Ok(Exit::Error);
    }
    let gate = Gate::Severity(args.fail_on.into());
    let failing = merged["findings"].as_array().is_some_and(|f| {
        f.iter().any(|f| {
            Severity::ALL.iter().any(|s| f["severity"] == s.as_str() && gate.fails_severity(*s))
        })
    });
    Ok(if failing { Exit::Findings } else { Exit::Clean })
}
