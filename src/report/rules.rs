//! The printed forms of `strata signatures`: the rule list (one line per
//! rule: id, severity, detector, name; then the count) and the result of
//! `signatures check` (one `FAIL` line per problem, then the counts).

use std::io::{self, Write};

use crate::scan::RuleInfo;

/// Writes the rule list.
///
/// # Errors
/// When writing fails.
pub fn write_list(out: &mut dyn Write, rules: &[RuleInfo]) -> io::Result<()> {
    for r in rules {
        writeln!(
            out,
            "{:<48} {:<9} {:<8} {}",
            r.id,
            r.severity.as_str(),
            format!("{:?}", r.detector).to_lowercase(),
            r.name
        )?;
    }
    writeln!(out, "{} rules", rules.len())
}

/// Writes what `signatures check` found: each problem, then how many rules
/// were checked and how many problems there were.
///
/// # Errors
/// When writing fails.
pub fn write_check(out: &mut dyn Write, checked: usize, problems: &[String]) -> io::Result<()> {
    for p in problems {
        writeln!(out, "FAIL {p}")?;
    }
    writeln!(out, "{checked} rules checked, {} problems", problems.len())
}
