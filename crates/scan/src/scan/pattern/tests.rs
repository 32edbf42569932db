//! The pattern engine over the built-in rules: a rule runs only where its keyword is, and a
//! rule past its budget counts candidates instead of running.

use super::*;
use crate::scan::test_support::token;

fn engine() -> PatternEngine {
    PatternEngine::new(crate::signatures::builtin().expect("rules load")).expect("engine builds")
}

fn rule(e: &PatternEngine, id: &str) -> usize {
    e.rules().iter().position(|r| r.syntax.id == id).unwrap_or_else(|| panic!("no rule {id}"))
}

/// Every match in `hay`: (rule id, secret).
fn matches(e: &PatternEngine, hay: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    e.find_uncounted(hay, &mut |m| {
        let secret = String::from_utf8_lossy(&hay[m.secret.0..m.secret.1]).into_owned();
        out.push((e.rules()[m.rule].syntax.id.clone(), secret));
    });
    out
}

#[test]
fn a_rule_runs_where_its_keyword_is_and_captures_the_secret() {
    let e = engine();
    let pat = token("PATTERN1");
    let found = matches(&e, format!("deploy:\n  token: {pat}\n").as_bytes());
    assert!(found.contains(&("github-pat-classic".to_owned(), pat.clone())), "{found:?}");
    assert!(matches(&e, b"nothing that names a provider or a credential here\n").is_empty());
    // The keyword is part of the token: without it (the same characters, no `ghp_`), no match.
    let bare = pat.trim_start_matches("ghp_");
    let found = matches(&e, format!("value {bare}\n").as_bytes());
    assert!(found.iter().all(|(id, _)| id != "github-pat-classic"), "{found:?}");
}

#[test]
fn a_rule_past_its_budget_counts_candidates_without_running() {
    let e = engine();
    let pat = rule(&e, "github-pat-classic");
    let hay: String =
        (0..3).map(|i| format!("t{i} = {}\n", token(&format!("BUDGET{i}")))).collect();
    let run = |full: &dyn Fn(usize) -> bool| {
        let (mut emitted, mut counted, mut examined) = (0, 0, 0);
        let mut budget = super::Budget {
            full,
            count: &mut |r, _| counted += usize::from(r == pat),
            examined: &mut |r, n| examined += if r == pat { n } else { 0 },
            placeholders: &mut 0,
            markers: &mut Vec::new(),
        };
        e.find_within_budget(hay.as_bytes(), &mut budget, &mut |m| {
            emitted += usize::from(m.rule == pat)
        });
        (emitted, counted, examined)
    };
    let (emitted, counted, examined) = run(&|_| false);
    assert_eq!((emitted, counted), (3, 0));
    assert!(examined >= 3, "{examined}");
    assert_eq!(run(&|r| r == pat), (0, 3, 0), "spent: counted, never run");
}

#[test]
fn windows_merge_overlapping_and_touching_spans_and_clip_to_the_buffer() {
    // (rule, start, end) sorted by start; windows of 10 bytes each side.
    let hits = [(0, 5, 8), (0, 20, 24), (0, 34, 36), (0, 60, 70), (0, 95, 99)];
    let got: Vec<(usize, usize)> = super::windows(&hits, 10, 100).collect();
    // 0..18 meets 10..34, which meets 24..46; 50..80 starts after 46; 85..109
    // clips to the buffer's 100 bytes.
    assert_eq!(got, [(0, 46), (50, 80), (85, 100)]);
    assert_eq!(super::windows(&[], 10, 100).count(), 0);
}
