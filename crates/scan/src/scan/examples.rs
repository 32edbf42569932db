//! `strata signatures check`: every rule's examples and negative examples
//! run through the full scanner (prefilter, regex, validator, entropy gate,
//! example suppression). It lives in `scan` because it needs the whole
//! scanner; `signatures` only parses and validates rule files.

use super::Scanner;

/// Runs the examples of the rules named in `ids` through the full scanner
/// (prefilter, regex, validator, entropy gate, example suppression) and
/// returns one message per example it misses or negative example it hits.
pub fn check_examples(scanner: &Scanner, ids: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for sig in scanner.signatures().iter().filter(|s| ids.contains(&s.syntax.id)) {
        let id = sig.id();
        // Found at the rule's severity: a candidate the rule's validator rejects is
        // still reported, lowered, so a negative example may show up that way.
        let finds = |text: &str| {
            scanner
                .scan_bytes_all(text.as_bytes())
                .iter()
                .any(|h| scanner.rule(h.rule).id == id && !h.failed_check)
        };
        if let Err(e) = crate::signatures::build_regex(&sig.syntax.pattern) {
            problems.push(format!("{id} ({}): {e}", sig.origin));
            continue;
        }
        if sig.syntax.examples.is_empty() {
            problems.push(format!("{id} ({}): no examples", sig.origin));
        }
        for (i, ex) in sig.syntax.examples.iter().enumerate() {
            if !finds(ex) {
                problems.push(format!("{id} ({}): example {} is not found", sig.origin, i + 1));
            }
        }
        for (i, ex) in sig.syntax.negative_examples.iter().enumerate() {
            if finds(ex) {
                problems.push(format!(
                    "{id} ({}): negative example {} is found",
                    sig.origin,
                    i + 1
                ));
            }
        }
    }
    problems
}
