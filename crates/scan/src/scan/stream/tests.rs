//! The window/overlap rule of [`Scanner::scan_stream`], as a property:
//! whatever the stream, the step size and the sizes the reader hands out,
//! scanning it in overlapping windows finds exactly what scanning the whole
//! buffer at once finds (same rules, offsets, lines, secrets and decodings),
//! including secrets that straddle a step's cutoff or the buffer's end.
//!
//! The overlap is the real [`OVERLAP`] (its size is the invariant: at least
//! twice the largest rule window plus the longest match); the step
//! (`buffer length - 2 × OVERLAP`) is made small, so a short stream crosses
//! many cutoffs.

use std::io::{self, Read};
use std::sync::LazyLock;

use proptest::prelude::*;

use super::OVERLAP;
use crate::scan::cap::HitCap;
use crate::scan::{Hit, Scanner};

static SCANNER: LazyLock<Scanner> = LazyLock::new(|| {
    Scanner::new(crate::signatures::builtin().expect("built-in rules load"))
        .expect("built-in rules compile")
});

/// A fake GitHub token with a valid CRC32 checksum, distinct per `n`; the filler keeps it from
/// looking like a mask.
fn github_token(n: u32) -> String {
    const FILL: &str = "Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Bg0TyQa";
    strata_imagegen::checksummed_token("ghp_", &format!("FAKEs{n}{FILL}")[..30])
}

/// The secrets placed in streams: a bare token, one after a keyword (a rule
/// window), and one inside base64 (a decoded hit).
fn secret(kind: u8, n: u32) -> String {
    use base64::Engine;
    match kind % 3 {
        0 => github_token(n),
        1 => format!("aws_secret_access_key = \"FAKEtestKEYz8Qm4Lp{n:05}Xw7Vb2Nc9Hd4Tq1Zz\"\n"),
        _ => base64::engine::general_purpose::STANDARD
            .encode(format!("export GITHUB_TOKEN={}\n", github_token(n))),
    }
}

/// Printable filler with spaces and newlines (xorshift, from `seed`).
fn filler(len: usize, mut seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 =:,.\n";
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ALPHABET[(seed % ALPHABET.len() as u64) as usize]
        })
        .collect()
}

/// A reader that hands out at most `most` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    most: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.data.len().min(out.len()).min(self.most);
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

type Seen = (usize, u64, u64, Vec<u8>, Vec<String>);

fn seen(hits: Vec<Hit>) -> Vec<Seen> {
    let mut v: Vec<Seen> = hits
        .into_iter()
        .map(|h| (h.rule, h.offset, h.line, h.secret.expose().to_vec(), h.decoding))
        .collect();
    v.sort();
    v
}

/// Scans `data` in windows of `step` new bytes, `prefill` of them already in
/// the buffer, the reader giving at most `most` bytes a call.
fn stream_scan(data: &[u8], step: usize, prefill: usize, most: usize) -> Vec<Hit> {
    let mut buf = vec![0u8; 2 * OVERLAP + step];
    let prefill = prefill.min(data.len()).min(buf.len());
    buf[..prefill].copy_from_slice(&data[..prefill]);
    let mut reader = Trickle { data: &data[prefill..], most };
    let mut cap = HitCap::new(usize::MAX);
    SCANNER.scan_stream(&mut buf, prefill, false, &mut reader, &mut cap).expect("reads from memory")
}

prop_compose! {
    /// A stream of `steps` windows of `step` bytes with secrets placed
    /// anywhere or within a few bytes of a cutoff or a buffer end.
    fn stream()(step in 512usize..6000, steps in 1usize..6, seed in any::<u64>())
        (placements in prop::collection::vec((0u8..3, 0usize..8, -80isize..80, any::<bool>(), 0usize..1 << 20), 1..5),
         step in Just(step), steps in Just(steps), seed in Just(seed))
        -> (Vec<u8>, usize, usize)
    {
        let len = 2 * OVERLAP + steps * step;
        let mut data = filler(len, seed | 1);
        let mut taken: Vec<(usize, usize)> = Vec::new();
        let mut placed = 0;
        for (n, (kind, k, delta, near_end, anywhere)) in placements.into_iter().enumerate() {
            let s = secret(kind, n as u32 + (seed % 1000) as u32);
            // Cutoffs fall at OVERLAP + k·step; buffer ends at 2·OVERLAP + k·step.
            let edge = if near_end { 2 * OVERLAP } else { OVERLAP } + (k % (steps + 1)) * step;
            let at = if anywhere % 3 == 0 { anywhere % len } else { edge.saturating_add_signed(delta) };
            let end = at + s.len() + 2;
            if end > len || taken.iter().any(|&(a, b)| at < b && a < end) {
                continue;
            }
            // Separated from the filler, so the secret's bounds are its own.
            data[at] = b' ';
            data[at + 1..end - 1].copy_from_slice(s.as_bytes());
            data[end - 1] = b' ';
            taken.push((at, end));
            placed += 1;
        }
        (data, step, placed)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn windows_find_what_the_whole_buffer_finds(
        (data, step, placed) in stream(),
        prefill in 0usize..1 << 17,
        most in prop_oneof![Just(usize::MAX), 1usize..5000],
    ) {
        let whole = seen(SCANNER.scan_bytes(&data));
        let windows = seen(stream_scan(&data, step, prefill, most));
        prop_assert_eq!(&windows, &whole);
        if placed > 0 {
            prop_assert!(!whole.is_empty(), "a placed secret is found");
        }
    }
}

/// Random bytes (a binary file), not text.
fn binary(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// Secrets on each side of, and across, the first cutoff and buffer end,
/// with the production buffer size, in text and in binary data.
#[test]
fn straddling_secrets_at_the_production_step() {
    let step = super::CHUNK - OVERLAP;
    let len = super::BUFFER + step;
    for mut data in [filler(len, 7), binary(len, 0xB1A5)] {
        found_once_at_the_edges(&mut data, step);
    }
}

fn found_once_at_the_edges(data: &mut [u8], step: usize) {
    let token = github_token(1);
    let mut want = Vec::new();
    for (i, edge) in [super::CHUNK, super::BUFFER].into_iter().enumerate() {
        for (j, at) in [edge - token.len() - 60, edge - 10, edge + 40].into_iter().enumerate() {
            let t = github_token(10 * i as u32 + j as u32);
            data[at - 1] = b' ';
            data[at..at + t.len()].copy_from_slice(t.as_bytes());
            data[at + t.len()] = b' ';
            want.push(at as u64);
        }
    }
    let whole = seen(SCANNER.scan_bytes(data));
    let windows = seen(stream_scan(data, step, 0, usize::MAX));
    assert_eq!(windows, whole);
    let tokens: Vec<u64> =
        windows.iter().filter(|h| h.3.starts_with(b"ghp_")).map(|h| h.1).collect();
    assert_eq!(tokens, want, "each token once, at its offset");
}
