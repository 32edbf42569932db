//! Encoded values: candidate runs of base64/base64url, URL-encoding and
//! JSON/JS escapes, found cheaply and decoded within a per-file budget, so
//! a token stored as `dG9rZW4=` or `ghp\u005f…` is scanned as itself.
//! Also UTF-16 text without a byte-order mark, recognised by its NUL
//! pattern.
//!
//! Cheap by construction: in binary windows (holding a NUL) only UTF-16
//! strings are looked for, by one word test per 16 bytes (`utf16`);
//! in text, one table-driven pass finds base64 runs, and only
//! runs that could hold text (mixed case, a plausible length) are decoded;
//! escapes are looked for only where `memchr` finds a `%` or `\`. A decoded
//! run is kept only when it is text. Not owned here: scanning the decoded
//! bytes (the scanner does, and records [`Encoding`]s in each hit).

mod utf16;

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

/// Decoded bytes allowed per file.
pub const MAX_DECODED: usize = 4 << 20;
/// Runs decoded per file.
pub const MAX_RUNS: usize = 20_000;

/// What may still be decoded for one file, and where decoding stopped.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Decoded bytes left.
    pub bytes: usize,
    /// Runs left to try.
    pub runs: usize,
    /// Set by [`find`] when a run was left undecoded: its start in the
    /// bytes `find` was given (the caller turns it into a file offset).
    pub pending_stop: Option<usize>,
    /// Offset in the file of the first run left undecoded, once the
    /// budget ran out (set by the scanner from [`Budget::pending_stop`]).
    pub stopped_at: Option<u64>,
}

impl Default for Budget {
    /// [`MAX_DECODED`] bytes of decoded output and [`MAX_RUNS`] runs per file.
    fn default() -> Self {
        Budget { bytes: MAX_DECODED, runs: MAX_RUNS, pending_stop: None, stopped_at: None }
    }
}

impl Budget {
    /// Charges one run of `bytes` decoded bytes starting at `start`; false
    /// (and the stop recorded) when the budget cannot pay for it.
    fn take(&mut self, bytes: usize, start: usize) -> bool {
        if self.runs == 0 || self.bytes < bytes {
            self.pending_stop.get_or_insert(start);
            return false;
        }
        self.runs -= 1;
        self.bytes -= bytes;
        true
    }

    /// Records that decoding stopped at file offset `at` (the first stop wins).
    pub fn stop_at(&mut self, at: u64) {
        self.stopped_at.get_or_insert(at);
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

const UPPER: u8 = 1;
const LOWER: u8 = 2;
const STD: u8 = 4;
const URL: u8 = 8;

/// What each byte says about a run: an upper- or lower-case letter, a
/// standard-only (`+/`) or url-only (`-_`) character.
const fn kinds() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_uppercase() {
            UPPER
        } else if b.is_ascii_lowercase() {
            LOWER
        } else if b == b'+' || b == b'/' {
            STD
        } else if b == b'-' || b == b'_' {
            URL
        } else {
            0
        };
        i += 1;
    }
    t
}

static KIND: [u8; 256] = kinds();

/// One high bit per byte of `w` that is surely outside both base64
/// alphabets: below `+` (controls, space, quotes, `!#$%&()*`), from `{` to
/// DEL, or non-ASCII. Exact per byte: the additions on 7-bit values never
/// carry into the next byte.
fn definite_breaks(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let lo7 = w & LOW7;
    let below = !(lo7 + 0x5555_5555_5555_5555) & HIGH; // lo7 < 0x2b
    let above = (lo7 + 0x0505_0505_0505_0505) & HIGH; // lo7 >= 0x7b
    below | above | (w & HIGH)
}

/// The first position `s >= i` (and `< to`) where [`MIN_BASE64`] bytes
/// without a [`definite_breaks`] byte begin, or a position before it; `None`
/// when there is none. Any base64 run long enough to decode starts at or
/// after `s`. Horspool-style: the highest break in the next 24 bytes (the
/// last eight looked at first) rules out every start up to it, so text is
/// crossed about 17 to 24 bytes per step with one word test.
fn next_stretch(data: &[u8], mut i: usize, to: usize) -> Option<usize> {
    const _: () = assert!(MIN_BASE64 == 24, "three words per candidate");
    let word = |p: usize| u64::from_le_bytes(data[p..p + 8].try_into().expect("an 8-byte slice"));
    while i < to {
        if i + MIN_BASE64 > data.len() {
            return Some(i);
        }
        let last_break = (0..3).rev().find_map(|w| {
            let p = i + 8 * w;
            let m = definite_breaks(word(p));
            (m != 0).then(|| p + 7 - (m.leading_zeros() / 8) as usize)
        });
        match last_break {
            None => return Some(i),
            Some(b) => i = b + 1,
        }
    }
    None
}

/// How runs are decoded: padding optional, stray trailing bits allowed.
const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
/// The standard alphabet's decoder (built once, not per run).
static STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
/// The url-safe alphabet's decoder.
static URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);

/// True when decoded bytes are text worth scanning: at least 90%
/// printable ASCII or whitespace, and no NUL.
pub fn is_text(bytes: &[u8]) -> bool {
    // One pass over fixed-size chunks the compiler turns into vector
    // compares (NUL is not printable, so a chunk's count shows it).
    let (mut printable, mut nul) = (0usize, false);
    for chunk in bytes.chunks(256) {
        let (mut p, mut z) = (0u16, 0u8);
        for &b in chunk {
            p += u16::from(b.wrapping_sub(0x20) < 0x5f || b == b'\t' || b == b'\n' || b == b'\r');
            z |= u8::from(b == 0);
        }
        printable += usize::from(p);
        nul |= z != 0;
    }
    !bytes.is_empty() && !nul && printable * 10 >= bytes.len() * 9
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
    // A spent budget still looks for runs: the first one it cannot pay for
    // records where decoding stopped (and ends the search).
    if from >= to {
        return;
    }
    // Binary content (a NUL in the window): its long alphanumeric runs are
    // symbols and tables, not encoded text, and decoding them costs more than
    // the rest of the scan. Text files, config and decoded values have no NUL.
    // Its UTF-16 strings (PE resources, .NET user strings) are text, though.
    if memchr::memchr(0, &data[from..to]).is_some() {
        utf16::find(data, from, to, budget, out);
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
    while i < to && i + MIN_BASE64 <= data.len() {
        // Prose and code are crossed eight bytes at a time to the next stretch
        // long enough to hold a run (most text never has one).
        match next_stretch(data, i, to) {
            Some(s) => i = s,
            None => return,
        }
        // Skip search: a run of MIN_BASE64 starting at `i` needs `data[i + MIN_BASE64 - 1]`
        // in the alphabet; the last byte outside it before there says where to look next.
        let probe = i + MIN_BASE64 - 1;
        if probe >= data.len() {
            return;
        }
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
        if len > MAX_RUN || len % 4 == 1 {
            continue;
        }
        // One pass for what the run holds: both cases, and which alphabet.
        let kinds = run.iter().fold(0u8, |acc, &b| acc | KIND[b as usize]);
        if kinds & (UPPER | LOWER) != UPPER | LOWER {
            continue;
        }
        let (has_std, has_url) = (kinds & STD != 0, kinds & URL != 0);
        let (encoding, engine) = match (has_std, has_url) {
            (true, true) => continue,
            (false, true) => (Encoding::Base64Url, &URL_SAFE),
            _ => (Encoding::Base64, &STANDARD),
        };
        if !budget.take(len * 3 / 4, start) {
            return;
        }
        let Ok(bytes) = engine.decode(run) else { continue };
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
        if at < next || !hides_a_character(data, at, marker) {
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
        // A run belongs to the window holding its first hiding escape, which decoded it.
        let before = &data[start..at.min(from).max(start)];
        if memchr::memchr_iter(marker, before).any(|p| hides_a_character(data, start + p, marker)) {
            continue;
        }
        let run = &data[start..end];
        if marker == b'%' && !url_like(run) {
            continue;
        }
        let decoded = if marker == b'%' { percent_decode(run) } else { unescape(run) };
        let Some(decoded) = decoded else { continue };
        if !budget.take(decoded.len(), start) {
            return;
        }
        let encoding = if marker == b'%' { Encoding::Url } else { Encoding::JsonEscape };
        let mut chain = vec![encoding];
        if let Some(decoded) = as_text(decoded, &mut chain) {
            out.push(Candidate { start, end, chain, decoded });
        }
    }
}

/// True when the escape at `data[at]` can hide a character (`%XX`;
/// `\uXXXX`, `\xHH`, `\/`). Other escapes (`\n`, `\\`, a lone `%`) never
/// make a run worth decoding on their own, and are common in source code
/// and prose, so no run is built around them; a run holding one besides a
/// hiding escape is still built, around that escape.
fn hides_a_character(data: &[u8], at: usize, marker: u8) -> bool {
    let next = |k: usize| data.get(at + k).copied().unwrap_or(0);
    if marker == b'%' {
        next(1).is_ascii_hexdigit() && next(2).is_ascii_hexdigit()
    } else {
        matches!(next(1), b'u' | b'x' | b'/')
    }
}

/// True when a run holding `%XX` escapes is URL syntax (a scheme, a query,
/// form data or userinfo): percent-encoding means something only there. A
/// file name such as apt's `passwd_1%3a4.13…deb` is not decoded.
fn url_like(run: &[u8]) -> bool {
    memchr::memmem::find(run, b"://").is_some()
        || memchr::memchr3(b'=', b'?', b'&', run).is_some()
        || memchr::memchr(b'@', run).is_some()
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

    /// Every run `find` decodes in `data`, as text with its encoding chain.
    pub(super) fn decode_all(data: &[u8]) -> Vec<(String, Vec<&'static str>)> {
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
            b"\"/var/cache/apt/archives/partial/passwd_1%3a4.13+dfsg1-1_amd64.deb\" [1]",
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
        let mut budget = Budget { bytes: usize::MAX, runs: 10, ..Budget::default() };
        let mut out = Vec::new();
        find(data.as_bytes(), 0, data.len(), &mut budget, &mut out);
        assert_eq!(out.len(), 10);
    }
}

#[cfg(test)]
mod speed_and_region_tests {
    use super::tests::decode_all;
    use super::*;
    use proptest::prelude::*;

    /// Maximal runs of base64-alphabet bytes of at least MIN_BASE64, by brute force.
    fn naive_stretches(data: &[u8]) -> Vec<usize> {
        let mut starts = Vec::new();
        let mut i = 0;
        while i < data.len() {
            if CLASS[data[i] as usize] == 0 {
                i += 1;
                continue;
            }
            let s = i;
            while i < data.len() && CLASS[data[i] as usize] != 0 {
                i += 1;
            }
            if i - s >= MIN_BASE64 {
                starts.push(s);
            }
        }
        starts
    }

    proptest! {
        /// The word-at-a-time skip never jumps over a run long enough to decode.
        #[test]
        fn next_stretch_never_skips_a_run(
            data in proptest::collection::vec(
                prop_oneof![
                    4 => proptest::sample::select(b"abcXYZ019+/-_".to_vec()),
                    1 => proptest::sample::select(b" .=:\n\"\x00\xc3{".to_vec()),
                ],
                0..300,
            ),
            from in 0usize..300,
        ) {
            let from = from.min(data.len());
            for run in naive_stretches(&data).into_iter().filter(|&r| r >= from) {
                let s = next_stretch(&data, from, data.len());
                prop_assert!(s.is_some_and(|s| s <= run), "run at {run}, stretch {s:?}");
            }
        }
    }

    #[test]
    fn definite_breaks_are_exact() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b'a', b, b'a', b'a', b'a', b'a', b'a', b'a']);
            let surely_out = !(b'+'..b'{').contains(&b);
            assert_eq!(definite_breaks(w) != 0, surely_out, "{b:#x}");
            if surely_out {
                assert_eq!(definite_breaks(w), 0x80 << 8, "{b:#x} flags only its own byte");
            }
        }
    }

    #[test]
    fn utf16_strings_inside_binary_bytes() {
        let text = "password=FAKE_TEST_utf16_value";
        let binary = |big_endian: bool, padding: u8| {
            let mut bin = vec![0x7fu8, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0x3e, 0];
            bin.push(0x90); // an odd offset: strings need not be aligned
            for u in text.encode_utf16() {
                bin.extend(if big_endian { u.to_be_bytes() } else { u.to_le_bytes() });
            }
            bin.extend([padding; 16]);
            decode_all(&bin)
        };
        for big_endian in [false, true] {
            let word = if big_endian { "utf16be" } else { "utf16le" };
            assert_eq!(binary(big_endian, 0xff), [(text.to_owned(), vec![word])], "{word}");
        }
        // Big-endian text followed by NULs reads as little-endian one byte on, just as
        // long: the tie goes to little-endian (same text, only the label differs).
        assert_eq!(binary(false, 0), [(text.to_owned(), vec!["utf16le"])]);
        assert_eq!(binary(true, 0), [(text.to_owned(), vec!["utf16le"])]);
        // Short strings and zero padding are not text.
        let mut bin = vec![0u8; 64];
        bin.extend("short".encode_utf16().flat_map(u16::to_le_bytes));
        bin.extend([0u8; 64]);
        assert!(decode_all(&bin).is_empty());
    }

    #[test]
    fn budget_stop_is_recorded() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("some FAKE text to decode ok");
        let data = format!("{b64}\n").repeat(5);
        let mut budget = Budget { runs: 3, ..Budget::default() };
        let mut out = Vec::new();
        find(data.as_bytes(), 0, data.len(), &mut budget, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(budget.pending_stop, Some(3 * (b64.len() + 1)), "the fourth run");
    }
}

/// Throughput of [`find`] on real bytes (`cargo test --release --lib
/// decode_throughput -- --ignored --nocapture`; `STRATA_BENCH_DATA` names a
/// file or a tree of real files: see `test_support::bench_streams`).
#[cfg(test)]
mod throughput {
    use super::*;

    #[test]
    #[ignore = "a measurement, not a test"]
    fn decode_throughput() {
        crate::scan::test_support::throughput("decode::find", |data, from, to| {
            let mut out = Vec::new();
            find(data, from, to, &mut Budget::default(), &mut out);
            out.len()
        });
    }
}

/// The UTF-16 search as it was before `utf16` found all four forms in one
/// pass, kept to check that it finds the same runs.
#[cfg(test)]
mod utf16_oracle {
    use super::*;
    use proptest::prelude::*;

    /// Shortest UTF-16 string decoded inside binary content, in code units
    /// (shorter ones are mostly identifiers and labels).
    const MIN_UTF16_UNITS: usize = 16;

    /// Which UTF-16 code units [`utf16_runs`] looks for: those starting at
    /// offsets of `parity`, in the given byte order.
    #[derive(Debug, Clone, Copy)]
    struct Units {
        parity: usize,
        big_endian: bool,
    }

    /// True for a UTF-16 code unit at `data[k..k + 2]` that is printable ASCII
    /// (or tab, CR, LF) in the given byte order.
    fn ascii_unit(data: &[u8], k: usize, big_endian: bool) -> bool {
        let (hi, lo) = if big_endian { (data[k], data[k + 1]) } else { (data[k + 1], data[k]) };
        hi == 0 && ((0x20..0x7f).contains(&lo) || matches!(lo, b'\t' | b'\n' | b'\r'))
    }

    /// UTF-16 strings of ASCII characters inside binary bytes: runs of at
    /// least [`MIN_UTF16_UNITS`] code units starting in `data[from..to]` at
    /// offsets of the given parity (both parities are searched, since a string
    /// need not be aligned in the file). Found by the same skip search as
    /// base64 runs, one code unit at a time, so random binary bytes cost about
    /// one check per 32 bytes.
    fn utf16_runs(
        data: &[u8],
        window: std::ops::Range<usize>,
        Units { parity, big_endian }: Units,
        budget: &mut Budget,
        out: &mut Vec<Candidate>,
    ) {
        let std::ops::Range { start: from, end: to } = window;
        let ok = |k: usize| k + 2 <= data.len() && ascii_unit(data, k, big_endian);
        let span = 2 * (MIN_UTF16_UNITS - 1);
        let mut i = from + (from + parity) % 2;
        // A string that began before the window was decoded with the window it began in.
        if i >= 2 && ok(i - 2) {
            while ok(i) {
                i += 2;
            }
        }
        while i < to && i + span + 2 <= data.len() {
            let probe = i + span;
            // The last unit of the span that is not ASCII, from the end (a plain
            // loop: as a `rev().step_by(2)` iterator its speed hung on inlining,
            // 5% of a scan of binaries when a change elsewhere in the crate moved it).
            let mut k = probe;
            while ok(k) && k > i {
                k -= 2;
            }
            if !ok(k) {
                i = k + 2;
                continue;
            }
            let start = i;
            let mut end = probe + 2;
            while ok(end) && end - start < 2 * MAX_RUN {
                end += 2;
            }
            i = end;
            let units = (end - start) / 2;
            if !budget.take(units, start) {
                return;
            }
            // The ASCII byte of each unit: the first in little-endian order.
            let decoded: Vec<u8> =
                data[start..end].iter().skip(usize::from(big_endian)).step_by(2).copied().collect();
            let chain = vec![if big_endian { Encoding::Utf16Be } else { Encoding::Utf16Le }];
            out.push(Candidate { start, end, chain, decoded });
        }
    }

    /// `find` on a binary window as it was.
    fn old_find(
        data: &[u8],
        from: usize,
        to: usize,
        budget: &mut Budget,
        out: &mut Vec<Candidate>,
    ) {
        let to = to.min(data.len());
        if from >= to {
            return;
        }
        let first = out.len();
        for big_endian in [false, true] {
            for parity in 0..2 {
                utf16_runs(data, from..to, Units { parity, big_endian }, budget, out);
            }
        }
        // The overlap rule is the new search's own: what is compared is the search.
        super::utf16::keep_longer_of_overlapping(out, first);
    }
    /// What a search left behind: each candidate, and the budget.
    type Outcome = (Vec<(usize, usize, Vec<Encoding>, Vec<u8>)>, (usize, usize, Option<usize>));

    fn outcome(out: Vec<Candidate>, budget: Budget) -> Outcome {
        let found = out.into_iter().map(|c| (c.start, c.end, c.chain, c.decoded)).collect();
        (found, (budget.bytes, budget.runs, budget.pending_stop))
    }

    /// The old and the new search on the same window and budget.
    fn both(data: &[u8], from: usize, to: usize, budget: Budget) -> (Outcome, Outcome) {
        let (mut old, mut new) = (budget, budget);
        let (mut old_out, mut new_out) = (Vec::new(), Vec::new());
        old_find(data, from, to, &mut old, &mut old_out);
        let to = to.min(data.len());
        if from < to {
            utf16::find(data, from, to, &mut new, &mut new_out);
        }
        (outcome(old_out, old), outcome(new_out, new))
    }

    /// Bytes holding UTF-16 strings of both byte orders at any offset, among
    /// NULs, random bytes and other text (`base` bytes, when given, are
    /// real binary content the pieces are spliced into).
    fn binary_with_strings(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
        let unit = prop_oneof![
            8 => 0x20u8..0x7f,
            1 => proptest::sample::select(b"\t\n\r".to_vec()),
            1 => any::<u8>(),
        ];
        let string = (proptest::collection::vec(unit, 0..48), any::<bool>()).prop_map(|(s, be)| {
            s.into_iter().flat_map(|c| if be { [0, c] } else { [c, 0] }).collect::<Vec<u8>>()
        });
        let piece = prop_oneof![
            4 => string,
            1 => proptest::collection::vec(Just(0u8), 0..20),
            2 => proptest::collection::vec(any::<u8>(), 0..40),
            1 => proptest::collection::vec(0x20u8..0x7f, 0..40),
        ];
        let pieces = proptest::collection::vec((piece, any::<prop::sample::Index>()), 0..24);
        pieces.prop_map(move |pieces| {
            let mut data = base.clone();
            for (piece, at) in pieces {
                let at = if data.is_empty() { 0 } else { at.index(data.len() + 1) };
                data.splice(at..at, piece);
            }
            data
        })
    }

    /// A budget: mostly plenty, sometimes running out part way.
    fn a_budget() -> impl Strategy<Value = Budget> {
        prop_oneof![
            1 => Just(Budget::default()),
            2 => (0usize..200, 0usize..6).prop_map(|(bytes, runs)| Budget { bytes, runs, ..Budget::default() }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The one-pass search finds what the four searches found, and
        /// spends the budget the same way, on any window of mixed bytes.
        #[test]
        fn utf16_one_pass_finds_what_four_passes_found(
            data in binary_with_strings(Vec::new()),
            from in any::<prop::sample::Index>(),
            len in any::<prop::sample::Index>(),
            budget in a_budget(),
        ) {
            let from = from.index(data.len() + 1);
            let to = from + len.index(data.len() - from + 1);
            let (old, new) = both(&data, from, to, budget);
            prop_assert_eq!(old, new);
        }
    }

    /// Real binary content: the first 64 KiB of this test program.
    fn real_binary() -> Vec<u8> {
        let exe = std::env::current_exe().expect("the test program's path");
        let mut bytes = std::fs::read(exe).expect("the test program is readable");
        bytes.truncate(64 << 10);
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The same on real binary bytes with strings spliced in, over stream
        /// windows (the overlap before `from` and after `to`).
        #[test]
        fn utf16_one_pass_matches_on_real_binaries(
            data in binary_with_strings(real_binary()),
            from in 0usize..40_000,
            budget in a_budget(),
        ) {
            let from = from.min(data.len());
            let to = data.len().saturating_sub(1 << 12).max(from);
            let (old, new) = both(&data, from, to, budget);
            prop_assert_eq!(old, new);
        }
    }

    /// Runs longer than [`MAX_RUN`] units are decoded in pieces, each piece
    /// starting in the window is charged to the budget: both searches cut
    /// the same pieces, wherever the window and the budget end.
    #[test]
    fn long_utf16_runs_are_cut_alike() {
        let text: Vec<u8> = (0..MAX_RUN * 2 + 100).map(|i| b'a' + (i % 26) as u8).collect();
        for (lead, big_endian) in [(0usize, false), (1, false), (7, true), (0, true)] {
            let mut data = vec![0xffu8; lead];
            data.extend(text.iter().flat_map(|&c| if big_endian { [0, c] } else { [c, 0] }));
            data.extend([0xff; 9]);
            let n = data.len();
            for (from, to) in [
                (0, n),
                (1, n),
                (lead + 2, n),
                (0, 2 * MAX_RUN + lead),
                (0, 2 * MAX_RUN + lead + 1),
                (0, 10),
            ] {
                for budget in [
                    Budget::default(),
                    Budget { bytes: MAX_RUN + 5, ..Budget::default() },
                    Budget { runs: 2, ..Budget::default() },
                ] {
                    let (old, new) = both(&data, from, to, budget);
                    assert_eq!(old, new, "lead {lead}, {from}..{to}, {budget:?}");
                    assert!(
                        from > lead || !new.0.is_empty() || budget.runs == 0,
                        "found at {from}"
                    );
                }
            }
        }
    }
}
/// The text search as it was before its decoders were built once and
/// `is_text` took one pass, kept to check that `find` finds the same runs
/// in text.
#[cfg(test)]
mod text_oracle {
    use super::*;
    use proptest::prelude::*;

    /// The first position `s >= i` (and `< to`) where [`MIN_BASE64`] bytes
    /// without a [`definite_breaks`] byte begin, or a position before it; `None`
    /// when there is none. Any base64 run long enough to decode starts at or
    /// after `s`. Horspool-style: the highest break in the next 24 bytes (the
    /// last eight looked at first) rules out every start up to it, so text is
    /// crossed about 17 to 24 bytes per step with one word test.
    fn old_next_stretch(data: &[u8], mut i: usize, to: usize) -> Option<usize> {
        const _: () = assert!(MIN_BASE64 == 24, "three words per candidate");
        let word =
            |p: usize| u64::from_le_bytes(data[p..p + 8].try_into().expect("an 8-byte slice"));
        while i < to {
            if i + MIN_BASE64 > data.len() {
                return Some(i);
            }
            let last_break = (0..3).rev().find_map(|w| {
                let p = i + 8 * w;
                let m = definite_breaks(word(p));
                (m != 0).then(|| p + 7 - (m.leading_zeros() / 8) as usize)
            });
            match last_break {
                None => return Some(i),
                Some(b) => i = b + 1,
            }
        }
        None
    }

    fn old_base64_runs(
        data: &[u8],
        from: usize,
        to: usize,
        budget: &mut Budget,
        out: &mut Vec<Candidate>,
    ) {
        let class = |k: usize| CLASS[data[k] as usize];
        // A run that began before the window start was handled with the window it began in.
        let mut i = from;
        if from > 0 && class(from - 1) != 0 {
            while i < data.len() && class(i) != 0 {
                i += 1;
            }
        }
        while i < to && i + MIN_BASE64 <= data.len() {
            // Prose and code are crossed eight bytes at a time to the next stretch
            // long enough to hold a run (most text never has one).
            match old_next_stretch(data, i, to) {
                Some(s) => i = s,
                None => return,
            }
            // Skip search: a run of MIN_BASE64 starting at `i` needs `data[i + MIN_BASE64 - 1]`
            // in the alphabet; the last byte outside it before there says where to look next.
            let probe = i + MIN_BASE64 - 1;
            if probe >= data.len() {
                return;
            }
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
            if len > MAX_RUN || len % 4 == 1 {
                continue;
            }
            // One pass for what the run holds: both cases, and which alphabet.
            let kinds = run.iter().fold(0u8, |acc, &b| acc | KIND[b as usize]);
            if kinds & (UPPER | LOWER) != UPPER | LOWER {
                continue;
            }
            let (has_std, has_url) = (kinds & STD != 0, kinds & URL != 0);
            let (encoding, alphabet) = match (has_std, has_url) {
                (true, true) => continue,
                (false, true) => (Encoding::Base64Url, &base64::alphabet::URL_SAFE),
                _ => (Encoding::Base64, &base64::alphabet::STANDARD),
            };
            if !budget.take(len * 3 / 4, start) {
                return;
            }
            let Ok(bytes) = old_engine(alphabet).decode(run) else { continue };
            let mut padded = end;
            while padded < data.len() && padded - end < 2 && data[padded] == b'=' {
                padded += 1;
            }
            let mut chain = vec![encoding];
            if let Some(decoded) = old_as_text(bytes, &mut chain) {
                out.push(Candidate { start, end: padded, chain, decoded });
            }
        }
    }

    fn old_engine(alphabet: &base64::alphabet::Alphabet) -> GeneralPurpose {
        GeneralPurpose::new(
            alphabet,
            GeneralPurposeConfig::new()
                .with_decode_padding_mode(DecodePaddingMode::Indifferent)
                .with_decode_allow_trailing_bits(true),
        )
    }

    fn old_is_text(bytes: &[u8]) -> bool {
        if bytes.is_empty() || bytes.contains(&0) {
            return false;
        }
        let printable = bytes
            .iter()
            .filter(|&&b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'));
        printable.count() * 10 >= bytes.len() * 9
    }

    fn old_as_text(bytes: Vec<u8>, chain: &mut Vec<Encoding>) -> Option<Vec<u8>> {
        if old_is_text(&bytes) {
            return Some(bytes);
        }
        let big_endian = utf16_pattern(&bytes)?;
        let text = decode_utf16(&bytes, big_endian).into_bytes();
        chain.push(if big_endian { Encoding::Utf16Be } else { Encoding::Utf16Le });
        old_is_text(&text).then_some(text)
    }

    /// `find` on a text window as it was.
    fn old_find(
        data: &[u8],
        from: usize,
        to: usize,
        budget: &mut Budget,
        out: &mut Vec<Candidate>,
    ) {
        let to = to.min(data.len());
        if from >= to {
            return;
        }
        let first = out.len();
        old_base64_runs(data, from, to, budget, out);
        if memchr::memchr(b'%', &data[from..to]).is_some() {
            escape_runs(data, from, to, b'%', budget, out);
        }
        if memchr::memchr(b'\\', &data[from..to]).is_some() {
            escape_runs(data, from, to, b'\\', budget, out);
        }
        out[first..].sort_by_key(|c| c.start);
    }
    /// What a search left behind: each candidate, and the budget.
    type Outcome = (Vec<(usize, usize, Vec<Encoding>, Vec<u8>)>, (usize, usize, Option<usize>));

    /// The old and the new search on the same text window and budget.
    fn both(data: &[u8], from: usize, to: usize, budget: Budget) -> (Outcome, Outcome) {
        let (mut old, mut new) = (budget, budget);
        let (mut old_out, mut new_out) = (Vec::new(), Vec::new());
        old_find(data, from, to, &mut old, &mut old_out);
        find(data, from, to, &mut new, &mut new_out);
        let outcome = |out: Vec<Candidate>, b: Budget| -> Outcome {
            let found = out.into_iter().map(|c| (c.start, c.end, c.chain, c.decoded)).collect();
            (found, (b.bytes, b.runs, b.pending_stop))
        };
        (outcome(old_out, old), outcome(new_out, new))
    }

    /// Text holding encoded values among prose, paths and code: base64 and
    /// base64url of text, binary and UTF-16 payloads (padded or not),
    /// percent and JSON escapes.
    fn a_text() -> impl Strategy<Value = Vec<u8>> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let payload = prop_oneof![
            proptest::collection::vec(0x20u8..0x7f, 0..80),
            proptest::collection::vec(any::<u8>(), 0..60),
            "[a-z=_ ]{0,40}".prop_map(|t| t.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        ];
        let encoded = (payload, any::<bool>()).prop_map(|(p, url)| {
            if url {
                URL_SAFE_NO_PAD.encode(p).into_bytes()
            } else {
                STANDARD.encode(p).into_bytes()
            }
        });
        let piece = prop_oneof![
            4 => encoded,
            2 => proptest::sample::select(vec![
                &b" the quick brown fox, "[..],
                b"/usr/lib/x86_64-linux-gnu/libFAKE.so.1",
                b"ThisIsAnIdentifierNameThatIsLong",
                b"postgres://app:FAKE%2Fpw%40x@db.test/app?x=1",
                b"\"https:\\/\\/user:FAKE\\u0040pass@host.test\\/x\"",
                b"100% of nothing; C:\\path\\to",
                b"\n",
                b"==",
                b"sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904aabbccdd00112233",
            ]).prop_map(<[u8]>::to_vec),
            1 => proptest::collection::vec(proptest::sample::select(b"aZ09+/-_=.%\\u:x \n".to_vec()), 0..60),
            1 => proptest::collection::vec(1u8..=255, 0..30),
        ];
        proptest::collection::vec(piece, 0..16).prop_map(|p| p.concat())
    }

    /// A budget: mostly plenty, sometimes running out part way.
    fn a_budget() -> impl Strategy<Value = Budget> {
        prop_oneof![
            1 => Just(Budget::default()),
            2 => (0usize..300, 0usize..6).prop_map(|(bytes, runs)| Budget { bytes, runs, ..Budget::default() }),
        ]
    }

    proptest! {
        /// The one-pass `is_text` says what the two passes said, around the
        /// 90% line, with and without NULs, across its 256-byte chunks.
        #[test]
        fn is_text_says_what_it_said(
            bytes in proptest::collection::vec(
                prop_oneof![8 => 0x20u8..0x7f, 1 => any::<u8>(), 1 => Just(b'\n')],
                0..1200,
            ),
        ) {
            prop_assert_eq!(is_text(&bytes), old_is_text(&bytes));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The same runs decoded, in the same order, with the same budget
        /// left, on any window of text.
        #[test]
        fn text_search_finds_what_it_found(
            data in a_text(),
            from in any::<prop::sample::Index>(),
            len in any::<prop::sample::Index>(),
            budget in a_budget(),
        ) {
            let from = from.index(data.len() + 1);
            let to = from + len.index(data.len() - from + 1);
            let (old, new) = both(&data, from, to, budget);
            prop_assert_eq!(old, new);
        }
    }
}
