//! Section and parent-key context: a name on the line above a key says whose
//! key it is. An INI or TOML section header (`[duo]`, `[services.datadog]`),
//! a YAML parent key (`stripe:` with its keys indented below it) or a line
//! holding only a name (`duo`, then `secret_key=…`) puts the keys beneath it
//! in that provider's context.
//!
//! Each child line (`secret_key = …`) under a name that a provider rule lists
//! as a keyword is read again as one line, `name_` + the child
//! (`duo_secret_key = …`), and only the provider rules' matches in it are
//! kept, placed at the value in the file: the finding carries the provider's
//! rule and severity where the value has the provider's shape, and nothing
//! when it does not (the generic rules already saw the line as it is).

mod newlines;

use super::{Hit, Scanner};
use newlines::Newlines;

/// Most child lines read under one header: a section is a handful of keys,
/// and a long file must not turn into a second scan of itself.
const MAX_CHILDREN: usize = 64;
/// Longest child line re-read (its key and value).
const MAX_LINE: usize = 1024;
/// Longest header name looked at.
const MAX_NAME: usize = 64;

/// A child line to read again under its section's provider name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Child {
    /// Where the child's key starts in the buffer.
    pub key_start: usize,
    /// `name_` followed by the line from its key on.
    pub text: Vec<u8>,
    /// Length of the `name_` prefix in `text`.
    pub prefix: usize,
}

/// How a section ends.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// `[name]`: at the next header.
    Ini,
    /// `name:` at this indent: at the next line indented as little.
    Yaml(usize),
    /// A name alone on its line: at the next blank line.
    Heading,
}

struct Section {
    name: Vec<u8>,
    scope: Scope,
    children: usize,
}

/// The child lines in `data` whose key starts in `from..to` and whose
/// section's header names a provider: `provider(header)` gives the name to
/// prefix, if the header names one.
pub(crate) fn children(
    data: &[u8],
    from: usize,
    to: usize,
    provider: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Vec<Child> {
    let mut walk = Walk { from, provider, section: None, out: Vec::new() };
    let mut newlines = Newlines::new(data);
    let mut at = 0;
    while at < data.len() && at < to {
        let end = newlines.next().unwrap_or(data.len());
        let line = &data[at..end];
        let start = at;
        at = end + 1;
        // Outside a section only a header matters: most lines of code, prose
        // and binaries are passed over by looking at their two ends.
        if walk.section.is_some() || may_be_header(line) {
            walk.line(start, line);
        }
    }
    walk.out
}

/// False for a line that is surely not a section header (`ini_header`,
/// `yaml_parent` or `heading`): every header starts with a name byte, a
/// quote or `[` (after its indent), ends with `]` (only after `[`), `:` or
/// a name byte (before trailing white space; a name byte only for a
/// heading, which is not indented and starts with a letter) and is at most
/// [`MAX_HEADER`] bytes between the two.
fn may_be_header(line: &[u8]) -> bool {
    let indent = line.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    let Some(&first) = line.get(indent) else { return false };
    if !starts_header(first) {
        return false;
    }
    let Some(last) = line.iter().rposition(|b| !b.is_ascii_whitespace()) else { return false };
    // `[…]`, then `name:` (maybe quoted or a list item), then a heading,
    // which starts with a letter (so troff's `.TH` lines are passed over).
    last - indent < MAX_HEADER
        && match line[last] {
            b']' => first == b'[',
            b':' => first != b'[',
            b => indent == 0 && is_name_byte(b) && first.is_ascii_alphabetic(),
        }
}

/// Longest header line, between its indent and trailing white space:
/// `- "name":` or `[[name]]` around a [`MAX_NAME`]-byte name.
const MAX_HEADER: usize = MAX_NAME + 5;

/// The walk through a buffer's lines: the section they are in, and the
/// child lines found so far.
struct Walk<'p> {
    from: usize,
    provider: &'p dyn Fn(&[u8]) -> Option<Vec<u8>>,
    section: Option<Section>,
    out: Vec<Child>,
}

impl Walk<'_> {
    /// Reads the line starting at `data[start]` (without its newline).
    fn line(&mut self, start: usize, line: &[u8]) {
        let provider = self.provider;
        let section = &mut self.section;
        let indent = line.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
        if section.is_none() && !line.get(indent).is_some_and(|&b| starts_header(b)) {
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let body = &line[indent.min(line.len())..];
        if body.is_empty() {
            if matches!(section.as_ref().map(|s| s.scope), Some(Scope::Heading)) {
                *section = None;
            }
            return;
        }
        if body.starts_with(b"#") || body.starts_with(b";") || body.starts_with(b"//") {
            return;
        }
        // A YAML section ends at the first line indented no deeper than its header,
        // but for the items of a compact sequence (`key:` then `- item` at its indent).
        if let Some(Scope::Yaml(depth)) = section.as_ref().map(|s| s.scope)
            && indent <= depth
            && !(indent == depth && body.starts_with(b"- "))
        {
            *section = None;
        }
        if let Some(name) = ini_header(body) {
            *section = provider(name).map(|name| Section { name, scope: Scope::Ini, children: 0 });
            return;
        }
        if let Some(name) = yaml_parent(body) {
            if let Some(name) = provider(name) {
                *section = Some(Section { name, scope: Scope::Yaml(indent), children: 0 });
            }
            // A parent that names nothing nests inside the current section.
            return;
        }
        if indent == 0
            && section.is_none()
            && let Some(name) = heading(body)
            && let Some(name) = provider(name)
        {
            *section = Some(Section { name, scope: Scope::Heading, children: 0 });
            return;
        }
        let Some(s) = section.as_mut() else { return };
        let Some(key) = child_key(body) else { return };
        let key_start = start + indent + (body.len() - key.len());
        s.children += 1;
        if s.children > MAX_CHILDREN {
            return;
        }
        let lower = key.to_ascii_lowercase();
        let already_named = lower.windows(s.name.len()).any(|w| w == s.name.as_slice());
        if key_start < self.from || already_named {
            return;
        }
        let mut text = Vec::with_capacity(s.name.len() + 1 + key.len());
        text.extend_from_slice(&s.name);
        text.push(b'_');
        let prefix = text.len();
        text.extend_from_slice(&key[..key.len().min(MAX_LINE)]);
        self.out.push(Child { key_start, text, prefix });
    }
}

/// Whether a line whose text starts with `b` can be a section header.
fn starts_header(b: u8) -> bool {
    is_name_byte(b) || matches!(b, b'[' | b'"' | b'\'')
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// `[name]`, `[[name]]`, `[a.b]`, `[plugins."duo"]`: the name inside.
fn ini_header(body: &[u8]) -> Option<&[u8]> {
    let body = body.trim_ascii_end();
    let inner = body.strip_prefix(b"[")?.strip_suffix(b"]")?;
    let inner = inner.strip_prefix(b"[").and_then(|i| i.strip_suffix(b"]")).unwrap_or(inner);
    let ok = !inner.is_empty()
        && inner.len() <= MAX_NAME
        && inner.iter().all(|&b| is_name_byte(b) || matches!(b, b'"' | b'\'' | b' '));
    ok.then_some(inner)
}

/// `name:` with nothing after it (a YAML mapping key whose value is the
/// block below), optionally a list item (`- name:`).
fn yaml_parent(body: &[u8]) -> Option<&[u8]> {
    let body = body.trim_ascii_end();
    let body = body.strip_prefix(b"- ").unwrap_or(body);
    let name = body.strip_suffix(b":")?;
    let name = unquote(name);
    let ok = !name.is_empty() && name.len() <= MAX_NAME && name.iter().all(|&b| is_name_byte(b));
    ok.then_some(name)
}

/// A line holding a single name and nothing else (`duo`, `Scaleway`).
fn heading(body: &[u8]) -> Option<&[u8]> {
    let body = body.trim_ascii_end();
    let ok = body.len() >= 3
        && body.len() <= MAX_NAME
        && body[0].is_ascii_alphabetic()
        && body.iter().all(|&b| is_name_byte(b));
    ok.then_some(body)
}

/// The child line from its key on, when it is `key = value` or `key: value`
/// (the key possibly quoted, the line possibly a list item); `None` for
/// anything else.
fn child_key(body: &[u8]) -> Option<&[u8]> {
    let body = body.strip_prefix(b"- ").unwrap_or(body);
    let key_len =
        body.iter().take_while(|&&b| is_name_byte(b) || matches!(b, b'"' | b'\'')).count();
    let rest = body[key_len..].trim_ascii_start();
    let assigns = rest.starts_with(b"=") || rest.starts_with(b":");
    (key_len > 0 && key_len <= MAX_NAME && assigns && rest.len() > 1).then_some(body)
}

fn unquote(s: &[u8]) -> &[u8] {
    for q in [b'"', b'\''] {
        if s.len() >= 2 && s[0] == q && s[s.len() - 1] == q {
            return &s[1..s.len() - 1];
        }
    }
    s
}

impl Scanner {
    /// Provider-rule hits on the child lines of sections that name a
    /// provider (see the module doc), for keys starting in `data[from..to]`,
    /// with their position in `data`.
    pub(crate) fn section_hits(
        &self,
        data: &[u8],
        base: u64,
        from: usize,
        to: usize,
        set_aside: &mut super::tally::SetAside,
    ) -> Vec<(usize, Hit)> {
        let mut found = Vec::new();
        let kids = children(data, from, to, &|header| self.engine.section_provider(header));
        for c in kids {
            self.engine.find_uncounted(&c.text, &mut |m| {
                // Generic and entropy rules saw the line as it is; only a
                // provider's rule says more here.
                if self.rule(m.rule).rank < 3 || m.secret.0 < c.prefix {
                    return;
                }
                let pos = c.key_start + (m.secret.0 - c.prefix);
                if let Some(mut h) = self.to_hit(&c.text, 0, &m, set_aside) {
                    h.offset = base + pos as u64;
                    found.push((pos, h));
                }
            });
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(h: &[u8]) -> Option<Vec<u8>> {
        let h = h.to_ascii_lowercase();
        ["duo", "datadog", "stripe"]
            .into_iter()
            .find(|p| h.windows(p.len()).any(|w| w == p.as_bytes()))
            .map(|p| p.as_bytes().to_vec())
    }

    fn texts(data: &str) -> Vec<String> {
        children(data.as_bytes(), 0, data.len(), &provider)
            .into_iter()
            .map(|c| {
                // The key really starts where the child says.
                assert!(data.as_bytes()[c.key_start..].starts_with(&c.text[c.prefix..]));
                String::from_utf8(c.text).unwrap()
            })
            .collect()
    }

    #[test]
    fn ini_sections_name_their_keys() {
        let ini = "[general]\nhost = a\n[duo]\nikey = DIFAKE\nsecret_key = abc\n\n[other]\nsecret_key = z\n";
        assert_eq!(texts(ini), ["duo_ikey = DIFAKE", "duo_secret_key = abc"]);
        let toml = "[services.datadog]\napi_key = \"k\"\n";
        assert_eq!(texts(toml), ["datadog_api_key = \"k\""]);
    }

    #[test]
    fn yaml_parents_name_their_indented_keys() {
        let yaml = "payments:\n  stripe:\n    secret: sk\n    nested:\n      key: v\n  other: 1\nsecret: top\n";
        assert_eq!(texts(yaml), ["stripe_secret: sk", "stripe_key: v"]);
        // A compact sequence (items at the parent's indent) belongs to the parent
        // (Alertmanager's `opsgenie_configs:` then `- api_key:`); the next key ends it.
        let yaml = "  stripe_configs:\n  - api_key: k\n    region: eu\n  other:\n  - api_key: z\n";
        assert_eq!(texts(yaml), ["stripe_api_key: k", "stripe_region: eu"]);
    }

    #[test]
    fn a_name_alone_heads_the_lines_up_to_a_blank_line() {
        let notes = "duo\nsecret_key=abc\n\nsecret_key=def\n";
        assert_eq!(texts(notes), ["duo_secret_key=abc"]);
        // Not a heading: prose, or a key already naming the provider.
        assert!(texts("we use duo for this\nsecret_key=abc\n").is_empty());
        assert!(texts("[duo]\nduo_skey = abc\n").is_empty());
    }

    #[test]
    fn only_keys_in_range_and_within_the_child_budget() {
        let data = "[duo]\na = 1\nb = 2\n";
        let from = data.find("b =").unwrap();
        let kids = children(data.as_bytes(), from, data.len(), &provider);
        assert_eq!(kids.len(), 1);
        let many = format!("[duo]\n{}", "k = v\n".repeat(MAX_CHILDREN + 10));
        assert_eq!(texts(&many).len(), MAX_CHILDREN);
    }
}

/// Throughput of [`children`] on real bytes (`cargo test --release --lib
/// sections_throughput -- --ignored --nocapture`; `STRATA_BENCH_DATA` names
/// a file or a tree of real files: see `test_support::bench_streams`).
#[cfg(test)]
mod throughput {
    use super::*;

    #[test]
    #[ignore = "a measurement, not a test"]
    fn sections_throughput() {
        let scanner = crate::scan::test_support::scanner();
        let provider = |h: &[u8]| scanner.engine.section_provider(h);
        crate::scan::test_support::throughput("sections::children", |data, from, to| {
            children(data, from, to, &provider).len()
        });
    }
}

/// `children` as it was before `may_be_header` passed over most lines, kept
/// to check that the walk finds the same children.
#[cfg(test)]
mod oracle {
    use super::*;
    use proptest::prelude::*;

    /// The child lines in `data` whose key starts in `from..to` and whose
    /// section's header names a provider: `provider(header)` gives the name to
    /// prefix, if the header names one.
    pub(super) fn old_children(
        data: &[u8],
        from: usize,
        to: usize,
        provider: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Vec<Child> {
        let mut out = Vec::new();
        let mut section: Option<Section> = None;
        let mut newlines = memchr::memchr_iter(b'\n', data);
        let mut at = 0;
        while at < data.len() && at < to {
            let end = newlines.next().unwrap_or(data.len());
            let line = &data[at..end];
            let start = at;
            at = end + 1;
            let indent = line.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
            // Outside a section only a header matters, and every header starts
            // with a name byte, a quote, `[` or `- `: most lines of code, prose
            // and binaries are passed over here.
            if section.is_none() && !line.get(indent).is_some_and(|&b| starts_header(b)) {
                continue;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let body = &line[indent.min(line.len())..];
            if body.is_empty() {
                if matches!(section.as_ref().map(|s| s.scope), Some(Scope::Heading)) {
                    section = None;
                }
                continue;
            }
            if body.starts_with(b"#") || body.starts_with(b";") || body.starts_with(b"//") {
                continue;
            }
            // A YAML section ends at the first line indented no deeper than its header,
            // but for the items of a compact sequence (`key:` then `- item` at its indent).
            if let Some(Scope::Yaml(depth)) = section.as_ref().map(|s| s.scope)
                && indent <= depth
                && !(indent == depth && body.starts_with(b"- "))
            {
                section = None;
            }
            if let Some(name) = ini_header(body) {
                section =
                    provider(name).map(|name| Section { name, scope: Scope::Ini, children: 0 });
                continue;
            }
            if let Some(name) = yaml_parent(body) {
                if let Some(name) = provider(name) {
                    section = Some(Section { name, scope: Scope::Yaml(indent), children: 0 });
                }
                // A parent that names nothing nests inside the current section.
                continue;
            }
            if indent == 0
                && section.is_none()
                && let Some(name) = heading(body)
                && let Some(name) = provider(name)
            {
                section = Some(Section { name, scope: Scope::Heading, children: 0 });
                continue;
            }
            let Some(s) = section.as_mut() else { continue };
            let Some(key) = child_key(body) else { continue };
            let key_start = start + indent + (body.len() - key.len());
            s.children += 1;
            if s.children > MAX_CHILDREN {
                continue;
            }
            let lower = key.to_ascii_lowercase();
            let already_named = lower.windows(s.name.len()).any(|w| w == s.name.as_slice());
            if key_start < from || already_named {
                continue;
            }
            let mut text = Vec::with_capacity(s.name.len() + 1 + key.len());
            text.extend_from_slice(&s.name);
            text.push(b'_');
            let prefix = text.len();
            text.extend_from_slice(&key[..key.len().min(MAX_LINE)]);
            out.push(Child { key_start, text, prefix });
        }
        out
    }
    fn provider(h: &[u8]) -> Option<Vec<u8>> {
        let h = h.to_ascii_lowercase();
        ["duo", "datadog", "stripe"]
            .into_iter()
            .find(|p| h.windows(p.len()).any(|w| w == p.as_bytes()))
            .map(|p| p.as_bytes().to_vec())
    }

    /// Config-, YAML-, notes- and binary-looking lines, headers and keys
    /// among them, with any indent and line ending.
    fn a_buffer() -> impl Strategy<Value = Vec<u8>> {
        let text = proptest::sample::select(vec![
            &b"[duo]"[..],
            b"[[services.datadog]]",
            b"[plugins.\"stripe\"]",
            b"[general]",
            b"stripe:",
            b"- datadog:",
            b"\"duo\":",
            b"other:",
            b"duo",
            b"Stripe",
            b"DataDog",
            b"secret_key = abc",
            b"api_key: xyz",
            b"- skey: v",
            b"duo_skey = 1",
            b"# [duo]",
            b"; comment",
            b"// note",
            b"",
            b"we use duo for this",
            b"x = [1, 2]",
            b"a.b.c",
            b"\x7fELF\x02\x01\x00\x00duo",
        ]);
        let line = prop_oneof![
            6 => (text, 0usize..6, proptest::sample::select(vec![&b""[..], b" ", b"\t", b"\r", b" \r", b"\x0c"]), any::<bool>())
                .prop_map(|(t, indent, tail, tab)| {
                    let mut l = vec![if tab { b'\t' } else { b' ' }; indent];
                    l.extend_from_slice(t);
                    l.extend_from_slice(tail);
                    l
                }),
            1 => proptest::collection::vec(any::<u8>(), 0..200),
            1 => proptest::collection::vec(proptest::sample::select(b"ab:[] _-.\"'=\r\t".to_vec()), 0..80),
            // Headers around names of about the longest length looked at.
            1 => (0usize..3, 50usize..62, proptest::sample::select(vec![("- \"", "\":"), ("[[", "]]"), ("", ":"), ("", "")]))
                .prop_map(|(indent, n, (open, close))| {
                    let mut l = vec![b' '; indent];
                    l.extend_from_slice(open.as_bytes());
                    l.extend_from_slice(b"datadog");
                    l.extend(std::iter::repeat_n(b'x', n));
                    l.extend_from_slice(close.as_bytes());
                    l
                }),
        ];
        proptest::collection::vec(line, 0..120).prop_map(|lines| lines.join(&b'\n'))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Passing over lines that cannot be headers changes nothing.
        #[test]
        fn children_match_the_walk_over_every_line(
            data in a_buffer(),
            from in any::<prop::sample::Index>(),
            len in any::<prop::sample::Index>(),
        ) {
            let from = from.index(data.len() + 1);
            let to = from + len.index(data.len() - from + 1);
            prop_assert_eq!(old_children(&data, from, to, &provider), children(&data, from, to, &provider));
        }
    }

    /// A section's child budget runs out the same way (and, past it, a
    /// later header still opens a section).
    #[test]
    fn children_match_past_the_child_budget() {
        let data = format!(
            "[duo]\n{}\n[other]\nk = v\nstripe:\n  key: v\n",
            "k = v\n".repeat(MAX_CHILDREN + 3)
        );
        let data = data.as_bytes();
        for from in [0, 6, data.len() / 2, data.len() - 10] {
            let new = children(data, from, data.len(), &provider);
            assert_eq!(old_children(data, from, data.len(), &provider), new, "from {from}");
            assert!(new.last().is_some_and(|c| c.text == b"stripe_key: v"), "from {from}");
        }
    }
}
