//! The outcome of a live check of a finding's credential (`--verify`), as
//! reports show it. Running the checks is `verify`'s job.

use serde::Serialize;

/// What a live check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyStatus {
    /// The provider accepted the credential.
    Valid,
    /// The provider rejected it (revoked, expired or never valid).
    Invalid,
    /// strata has no verifier for this rule, or lacks what the check needs (a paired key id).
    Unverifiable,
    /// The check could not conclude: timeout, rate limit, server error, refused host.
    Error,
}

impl VerifyStatus {
    /// The contract's word.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyStatus::Valid => "valid",
            VerifyStatus::Invalid => "invalid",
            VerifyStatus::Unverifiable => "unverifiable",
            VerifyStatus::Error => "error",
        }
    }
}

/// The `verification` object of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The outcome.
    pub status: VerifyStatus,
    /// The provider checked against (`github`, `aws`…), when one was.
    pub provider: Option<String>,
    /// Who the credential belongs to, as the provider said (account, user, scopes).
    pub identity: Option<String>,
    /// Why, for `invalid`, `unverifiable` and `error`.
    pub reason: Option<String>,
    /// When the check ran, `YYYY-MM-DDThh:mm:ssZ`.
    pub checked_at: String,
}
