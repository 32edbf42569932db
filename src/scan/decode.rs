//! Encoded values: candidate runs of base64/base64url, URL-encoding and
//! JSON/JS escapes, found cheaply and decoded within a per-file budget, so
//! a token stored as `dG9rZW4=` or `ghp\u005f…` is scanned as itself.
//! Also UTF-16 text without a byte-order mark, recognised by its NUL
//! pattern.
//!
//! Cheap by construction: binary windows (holding a NUL) are left alone;
//! in text, one table-driven pass finds base64 runs, and only
//! runs that could hold text (mixed case, a plausible length) are decoded;
//! escapes are looked for only where `memchr` finds a `%` or `\`. A decoded
//! run is kept only when it is text. Not owned here: scanning the decoded
//! bytes (the scanner does, and records [`Encoding`]s in each hit).

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

/// A decoding that was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// RFC 4648 base64.
    Base64,
    /// RFC 4648 base64url.
    Base64Url,
    /// UTF-16 little-endian.
    Utf16Le,
    /// UTF-16 big-endian.
    Utf16Be,
    /// Percent-encoding.
    Url,
    /// JSON or JavaScript string escapes (`\u002F`, `\/`, `\x41`).
    JsonEscape,
}

impl Encoding {
    /// The contract's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Base64 => "base64",
            Encoding::Base64Url => "base64url",
            Encoding::Utf16Le => "utf16le",
            Encoding::Utf16Be => "utf16be",
            Encoding::Url => "url",
            Encoding::JsonEscape => "json-escape",
        }
    }
}

/// Shortest base64 run decoded (18 bytes of text).
pub const MIN_BASE64: usize = 24;
/// Longest run decoded.
pub const MAX_RUN: usize = 32 * 1024;
/// Decodings applied on top of each other at most.
pub const MAX_DEPTH: usize = 2;

/// What may still be decoded for one file.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Decoded bytes left.
    pub bytes: usize,
    /// Runs left to try.
    pub runs: usize,
}

impl Default for Budget {
    /// 4 MiB of decoded output and 20,000 runs per file.
    fn default() -> Self {
        Budget { bytes: 4 << 20, runs: 20_000 }
    }
}

impl Budget {
    fn take(&mut self, bytes: usize) -> bool {
        if self.runs == 0 || self.bytes < bytes {
            return false;
        }
        self.runs -= 1;
        self.bytes -= bytes;
        true
    }
}

/// A decoded run.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Where the encoded run starts in the scanned bytes.
    pub start: usize,
    /// Where it ends.
    pub end: usize,
    /// Decodings applied, outermost first.
    pub chain: Vec<Encoding>,
    /// The decoded text.
    pub decoded: Vec<u8>,
}

/// Base64 alphabet classes: 1 standard-only (`+/`), 2 url-only (`-_`), 3 both.
const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() {
            t[i] = 3;
        } else if b == b'+' || b == b'/' {
            t[i] = 1;
        } else if b == b'-' || b == b'_' {
            t[i] = 2;
        }
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = classes();

fn engine(alphabet: &base64::alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

/// True when decoded bytes are text worth scanning: at least 90%
/// printable ASCII or whitespace, and no NUL.
pub fn is_text(bytes: &[u8]) -> bool {
    if bytes.is_empty() || bytes.contains(&0) {
        return false;
    }
    let printable =
        bytes.iter().filter(|&&b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'));
    printable.count() * 10 >= bytes.len() * 9
}

/// `Some(big_endian)` when bytes look like UTF-16 text without a BOM: most
/// code units have one NUL byte, always on the same side.
pub fn utf16_pattern(bytes: &[u8]) -> Option<bool> {
    let n = bytes.len() / 2;
    if n < 8 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for pair in bytes.chunks_exact(2) {
        even += usize::from(pair[0] == 0);
        odd += usize::from(pair[1] == 0);
    }
    // ASCII-range text: the high byte of nearly every unit is NUL, the low byte never.
    if odd * 10 >= n * 7 && even * 50 <= n {
        Some(false)
    } else if even * 10 >= n * 7 && odd * 50 <= n {
        Some(true)
    } else {
        None
    }
}

/// Decodes UTF-16 code units (unpaired surrogates replaced).
pub fn decode_utf16(bytes: &[u8], big_endian: bool) -> String {
    let units = bytes.chunks_exact(2).map(|c| {
        if big_endian { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_le_bytes([c[0], c[1]]) }
    });
    char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

/// Turns decoded bytes into text: as they are, or from UTF-16 (adding that
/// decoding to `chain`). `None` when they are not text.
fn as_text(bytes: Vec<u8>, chain: &mut Vec<Encoding>) -> Option<Vec<u8>> {
    if is_text(&bytes) {
        return Some(bytes);
    }
    let big_endian = utf16_pattern(&bytes)?;
    let text = decode_utf16(&bytes, big_endian).into_bytes();
    chain.push(if big_endian { Encoding::Utf16Be } else { Encoding::Utf16Le });
    is_text(&text).then_some(text)
}

/// Finds and decodes candidate runs starting in `data[from..to]`, within
/// `budget`, appending them to `out` in order of position.
pub fn find(data: &[u8], from: usize, to: usize, budget: &mut Budget, out: &mut Vec<Candidate>) {
    let to = to.min(data.len());
    if from >= to || budget.runs == 0 {
        return;
    }
    // Binary content (a NUL in the window): its long alphanumeric runs are
    // symbols and tables, not encoded text, and decoding them costs more than
    // the rest of the scan. Text files, config and decoded values have no NUL.
    if memchr::memchr(0, &data[from..to]).is_some() {
        return;
    }
    let first = out.len();
    base64_runs(data, from, to, budget, out);
    if memchr::memchr(b'%', &data[from..to]).is_some() {
        escape_runs(data, from, to, b'%', budget, out);
    }
    if memchr::memchr(b'\\', &data[from..to]).is_some() {
        escape_runs(data, from, to, b'\\', budget, out);
    }
    out[first..].sort_by_key(|c| c.start);
}

fn base64_runs(data: &[u8], from: usize, to: usize, budget: &mut Budget, out: &mut Vec<Candidate>) {
    let class = |k: usize| CLASS[data[k] as usize];
    // A run that began before the window start was handled with the window it began in.
    let mut i = from;
    if from > 0 && class(from - 1) != 0 {
        while i < data.len() && class(i) != 0 {
            i += 1;
        }
    }
    // Skip search: a run of MIN_BASE64 starting at `i` needs `data[i + MIN_BASE64 - 1]`
    // in the alphabet; the last byte outside it before there says where to look next.
    // Prose is crossed a word at a time instead of byte by byte.
    while i < to && i + MIN_BASE64 <= data.len() {
        let probe = i + MIN_BASE64 - 1;
        if let Some(k) = (i..=probe).rev().find(|&k| class(k) == 0) {
            i = k + 1;
            continue;
        }
        let start = i;
        let mut end = probe + 1;
        while end < data.len() && class(end) != 0 {
            end += 1;
        }
        i = end;
        let run = &data[start..end];
        let len = run.len();
        let upper = run.iter().any(u8::is_ascii_uppercase);
        let lower = run.iter().any(u8::is_ascii_lowercase);
        if len > MAX_RUN || !(upper && lower) || len % 4 == 1 {
            continue;
        }
        let has_std = run.iter().any(|&b| CLASS[b as usize] == 1);
        let has_url = run.iter().any(|&b| CLASS[b as usize] == 2);
        let (encoding, alphabet) = match (has_std, has_url) {
            (true, true) => continue,
            (false, true) => (Encoding::Base64Url, &base64::alphabet::URL_SAFE),
            _ => (Encoding::Base64, &base64::alphabet::STANDARD),
        };
        if !budget.take(len * 3 / 4) {
            return;
        }
        let Ok(bytes) = engine(alphabet).decode(run) else { continue };
        let mut padded = end;
        while padded < data.len() && padded - end < 2 && data[padded] == b'=' {
            padded += 1;
        }
        let mut chain = vec![encoding];
        if let Some(decoded) = as_text(bytes, &mut chain) {
            out.push(Candidate { start, end: padded, chain, decoded });
        }
    }
}

/// Bytes that end an escaped run: anything but printable ASCII (so runs
/// stay short in binaries), quotes and separators.
fn ends_run(b: u8) -> bool {
    !(0x21..0x7f).contains(&b) || matches!(b, b'"' | b'\'' | b'`' | b'<' | b'>' | b',' | b';')
}

/// Runs around each `%XX` or `\` escape, decoded.
fn escape_runs(
    data: &[u8],
    from: usize,
    to: usize,
    marker: u8,
    budget: &mut Budget,
    out: &mut Vec<Candidate>,
) {
    let mut next = from;
    for at in memchr::memchr_iter(marker, &data[from..to]).map(|p| p + from) {
        if at < next {
            continue;
        }
        let mut start = at;
        while start > 0 && !ends_run(data[start - 1]) && at - start < MAX_RUN {
            start -= 1;
        }
        let mut end = at;
        while end < data.len() && end - at < MAX_RUN {
            let b = data[end];
            if marker == b'\\' && b == b'\\' && end + 1 < data.len() {
                end += 2;
                continue;
            }
            if ends_run(b) {
                break;
            }
            end += 1;
        }
        next = end;
        // A run belongs to the window holding its first escape, which decoded it.
        if memchr::memchr(marker, &data[start..at]).is_some_and(|p| start + p < from) {
            continue;
        }
        let run = &data[start..end];
        let decoded = if marker == b'%' { percent_decode(run) } else { unescape(run) };
        let Some(decoded) = decoded else { continue };
        if !budget.take(decoded.len()) {
            return;
        }
        let encoding = if marker == b'%' { Encoding::Url } else { Encoding::JsonEscape };
        let mut chain = vec![encoding];
        if let Some(decoded) = as_text(decoded, &mut chain) {
            out.push(Candidate { start, end, chain, decoded });
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes a run; `None` unless it holds at least one `%XX` escape.
fn percent_decode(run: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(run.len());
    let mut escapes = 0;
    let mut i = 0;
    while i < run.len() {
        if run[i] == b'%'
            && let (Some(h), Some(l)) =
                (run.get(i + 1).and_then(|&b| hex_val(b)), run.get(i + 2).and_then(|&b| hex_val(b)))
        {
            out.push(h << 4 | l);
            escapes += 1;
            i += 3;
            continue;
        }
        out.push(run[i]);
        i += 1;
    }
    (escapes > 0).then_some(out)
}

/// Undoes JSON/JS string escapes; `None` unless the run holds an escape
/// that hides a character (`\uXXXX`, `\xHH`, `\/`).
fn unescape(run: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(run.len());
    let mut hiding = false;
    let mut i = 0;
    let mut pending_high: Option<u16> = None;
    while i < run.len() {
        if run[i] != b'\\' || i + 1 >= run.len() {
            out.push(run[i]);
            i += 1;
            continue;
        }
        let e = run[i + 1];
        let hex = |from: usize, n: usize| -> Option<u32> {
            let digits = run.get(from..from + n)?;
            let s = std::str::from_utf8(digits).ok()?;
            u32::from_str_radix(s, 16).ok()
        };
        match e {
            b'u' => {
                let Some(unit) = hex(i + 2, 4) else {
                    out.push(run[i]);
                    i += 1;
                    continue;
                };
                hiding = true;
                let unit = unit as u16;
                let c = match pending_high.take() {
                    Some(high) if (0xdc00..0xe000).contains(&unit) => {
                        char::decode_utf16([high, unit]).next().and_then(Result::ok)
                    }
                    _ if (0xd800..0xdc00).contains(&unit) => {
                        pending_high = Some(unit);
                        i += 6;
                        continue;
                    }
                    _ => char::from_u32(u32::from(unit)),
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.unwrap_or('\u{fffd}').encode_utf8(&mut buf).as_bytes());
                i += 6;
            }
            b'x' => match hex(i + 2, 2) {
                Some(v) => {
                    hiding = true;
                    out.push(v as u8);
                    i += 4;
                }
                None => {
                    out.push(run[i]);
                    i += 1;
                }
            },
            b'/' => {
                hiding = true;
                out.push(b'/');
                i += 2;
            }
            b'"' | b'\\' | b'\'' => {
                out.push(e);
                i += 2;
            }
            b'n' => {
                out.push(b'\n');
                i += 2;
            }
            b't' => {
                out.push(b'\t');
                i += 2;
            }
            b'r' => {
                out.push(b'\r');
                i += 2;
            }
            _ => {
                out.push(run[i]);
                i += 1;
            }
        }
    }
    hiding.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(data: &[u8]) -> Vec<(String, Vec<&'static str>)> {
        let mut out = Vec::new();
        find(data, 0, data.len(), &mut Budget::default(), &mut out);
        out.into_iter()
            .map(|c| {
                (
                    String::from_utf8_lossy(&c.decoded).into_owned(),
                    c.chain.iter().map(|e| e.as_str()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn finds_each_encoding() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("token = FAKE_TEST_value_123");
        let got = decode_all(format!("data:\n  token: {b64}\n").as_bytes());
        assert_eq!(got, [("token = FAKE_TEST_value_123".into(), vec!["base64"])]);

        let utf16: Vec<u8> =
            "password=FAKE_TEST_pw_1".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&utf16);
        let got = decode_all(b64.as_bytes());
        assert_eq!(got[0].0, "password=FAKE_TEST_pw_1");
        assert_eq!(got[0].1.len(), 2);
        assert_eq!(got[0].1[1], "utf16le");

        let got = decode_all(br#"{"url": "https:\/\/user:FAKE\u0040pass@host.test\/x"}"#);
        assert_eq!(got, [("https://user:FAKE@pass@host.test/x".into(), vec!["json-escape"])]);

        let got = decode_all(b"DATABASE_URL=postgres://app:FAKE%2Fpw%40x@db.test/app ok");
        assert_eq!(
            got,
            [("DATABASE_URL=postgres://app:FAKE/pw@x@db.test/app".into(), vec!["url"])]
        );
    }

    #[test]
    fn ordinary_content_is_left_alone() {
        for text in [
            &b"sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904aabbccdd00112233"[..],
            b"/usr/lib/x86_64-linux-gnu/libgnutls.so.30",
            b"just some prose with words, and 100% of nothing; C:\\path\\to",
            b"ThisIsAnIdentifierNameThatIsLong = 3",
        ] {
            assert!(decode_all(text).is_empty(), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn utf16_without_bom_is_recognised() {
        let le: Vec<u8> = "key=value FAKE".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = "key=value FAKE".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(utf16_pattern(&le), Some(false));
        assert_eq!(utf16_pattern(&be), Some(true));
        assert_eq!(utf16_pattern(b"plain ascii text here"), None);
        assert_eq!(utf16_pattern(&[0u8; 64]), None);
    }

    #[test]
    fn budget_bounds_the_work() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("some FAKE text to decode ok");
        let data = format!("{b64}\n").repeat(100);
        let mut budget = Budget { bytes: usize::MAX, runs: 10 };
        let mut out = Vec::new();
        find(data.as_bytes(), 0, data.len(), &mut budget, &mut out);
        assert_eq!(out.len(), 10);
    }
}
