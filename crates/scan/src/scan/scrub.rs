//! Secrets in free text that strata prints but never scans as content:
//! diagnostics and error messages (which may name a path, a member or a
//! tag that holds a key). The text is run through the same pattern engine
//! as file contents, and every match is replaced with its redacted form.
//!
//! Nothing is counted: documented example keys are redacted here too,
//! without touching the run's suppression counters.

use super::Scanner;
use crate::finding::Secret;
use crate::redact::Redactor;

impl Scanner {
    /// `text` with every secret the detectors recognise in it redacted.
    pub fn scrub_text(&self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut secrets: Vec<Secret> = Vec::new();
        self.engine.find_uncounted(bytes, &mut |m| {
            secrets.push(Secret::new(bytes[m.secret.0..m.secret.1].to_vec()));
        });
        if secrets.is_empty() {
            return text.to_owned();
        }
        Redactor::new(&secrets).apply(text).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detected_secrets_in_messages_are_redacted() {
        let scanner = Scanner::new(crate::signatures::builtin().unwrap()).unwrap();
        let msg = "img.tar: layer 0: entry \"app/AKIAQFAKETESTKEY7XYZ/x\": path too deep; ignored";
        let out = scanner.scrub_text(msg);
        assert!(!out.contains("AKIAQFAKETESTKEY7XYZ"), "{out}");
        assert!(out.starts_with("img.tar: layer 0: entry \"app/"), "{out}");
        let plain = "img.tar: layer 1 (sha256:0123): truncated tar stream";
        assert_eq!(scanner.scrub_text(plain), plain);
    }
}
