//! Redaction of secrets inside free text that reports print verbatim: layer
//! instructions (`RUN |1 NPM_TOKEN=npm_… /bin/sh -c …`) and history entries
//! carry the very secrets the config detector finds.

use crate::finding::Secret;

/// Replaces known secrets in text with their redacted form.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// (raw secret, redacted form), longest first so overlapping secrets
    /// are replaced whole.
    pairs: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor for these secrets (non-UTF-8 secrets cannot occur in text we print).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut pairs: Vec<(String, String)> = secrets
            .into_iter()
            .filter_map(|s| {
                std::str::from_utf8(s.expose()).ok().map(|raw| (raw.to_owned(), s.redacted()))
            })
            .filter(|(raw, _)| raw.len() >= 4)
            .collect();
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        pairs.dedup_by(|a, b| a.0 == b.0);
        Redactor { pairs }
    }

    /// The text with every known secret replaced.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (raw, redacted) in &self.pairs {
            if out.contains(raw.as_str()) {
                out = out.replace(raw.as_str(), redacted);
            }
        }
        out
    }

    /// [`Redactor::apply`] on an optional string, in place.
    pub fn apply_opt(&self, text: &mut Option<String>) {
        if let Some(t) = text {
            *t = self.apply(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence() {
        let s = Secret::new(b"npm_abcdefghijklmnopqrstuvwxyz0123456789".to_vec());
        let r = Redactor::new([&s]);
        let out =
            r.apply("RUN |1 NPM_TOKEN=npm_abcdefghijklmnopqrstuvwxyz0123456789 /bin/sh -c npm ci");
        assert_eq!(out, "RUN |1 NPM_TOKEN=npm_…6789 /bin/sh -c npm ci");
    }
}
