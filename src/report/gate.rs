//! When a run fails: the one rule behind `scan`'s exit code 1, `merge`'s,
//! and JUnit's failing test cases.

use crate::finding::verification::VerifyStatus;
use crate::finding::{Finding, Severity};

/// What makes a finding fail the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// A finding at or above this severity (`--fail-on`).
    Severity(Severity),
    /// A credential verified live (`--fail-on-verified`).
    Verified,
}

impl Gate {
    /// True when `finding` fails the run.
    pub fn fails(self, finding: &Finding) -> bool {
        match self {
            Gate::Severity(_) => self.fails_severity(finding.severity),
            Gate::Verified => {
                finding.verification.as_ref().is_some_and(|v| v.status == VerifyStatus::Valid)
            }
        }
    }

    /// True when a finding of `severity` fails the run (a report read back,
    /// as `merge` does, has severities only; no finding is verified there).
    pub fn fails_severity(self, severity: Severity) -> bool {
        match self {
            Gate::Severity(at) => severity >= at,
            Gate::Verified => false,
        }
    }

    /// True when any of `findings` fails the run.
    pub fn fails_any<'f>(self, findings: impl IntoIterator<Item = &'f Finding>) -> bool {
        findings.into_iter().any(|f| self.fails(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_gate_is_at_or_above() {
        let gate = Gate::Severity(Severity::Medium);
        let got: Vec<bool> = Severity::ALL.iter().map(|s| gate.fails_severity(*s)).collect();
        // Critical, high, medium, low, info.
        assert_eq!(got, [true, true, true, false, false]);
        assert!(!Gate::Verified.fails_severity(Severity::Critical));
    }
}
