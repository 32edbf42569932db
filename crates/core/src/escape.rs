//! Terminal escaping of image-derived text: every string from an image that
//! human output prints (names, platforms, digests, paths, instructions,
//! diagnostics) goes through [`escape_for_terminal`], so an image cannot
//! move the cursor, retitle the terminal (OSC) or reorder text (bidi).
//! JSON and SARIF are left alone: their encoders escape control characters
//! and their readers are programs.

/// Escapes control and bidi characters as `\u{…}` (or `\n`, `\t`…), so
/// image paths and instructions cannot drive or reorder a terminal.
pub fn escape_for_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Control characters (C0, DEL, C1) and the bidi controls.
fn needs_escape(c: char) -> bool {
    let bidi = matches!(
        c,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
    );
    c.is_control() || bidi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_esc_osc_c1_and_bidi() {
        let evil = "linux\u{1b}]0;pwned\u{7}/amd\u{9b}64\u{202e}cba";
        let out = escape_for_terminal(evil);
        assert!(!out.chars().any(needs_escape), "{out}");
        assert_eq!(out, "linux\\u{1b}]0;pwned\\u{7}/amd\\u{9b}64\\u{202e}cba");
        assert_eq!(escape_for_terminal("/app/ключ.txt"), "/app/ключ.txt");
    }
}
