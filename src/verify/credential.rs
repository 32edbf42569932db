//! What one live check is about: the secret, the rule that found it, and what
//! was found beside it. Both the providers (which build requests from it) and
//! the HTTP layer (which scrubs it from every error) read it, so it sits below
//! both.

/// A credential to check: the secret, its rule, and the other secrets found in the same file.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Rule that found it.
    pub rule_id: String,
    /// The secret.
    pub secret: String,
    /// (rule id, secret) of the other findings in the same file.
    pub partners: Vec<(String, String)>,
    /// What the check needs beyond the secret, as the scanner read it beside the match (a
    /// service-account key file's fields as JSON, the registry of a docker auth).
    pub material: Option<String>,
    /// Hosts from the scanned data the user allowed (`--verify-host`), lower-case: a provider
    /// that may use such a host (a key file's `token_uri`) chooses it only when listed here.
    pub allowed_hosts: Vec<String>,
}

impl Credential {
    /// The first partner found by one of `rules`.
    pub fn partner(&self, rules: &[&str]) -> Option<&str> {
        self.partners.iter().find(|(r, _)| rules.contains(&r.as_str())).map(|(_, s)| s.as_str())
    }
}
