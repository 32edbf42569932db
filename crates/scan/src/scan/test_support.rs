//! Helpers for this crate's unit tests: the built-in scanner and fake tokens that it finds.
//! (strata's pipeline tests have their own, over the same generator.)

use super::Scanner;

/// A fake GitHub token with a valid checksum, distinct per (alphanumeric, at most 26 bytes)
/// `tag`; the filler keeps it from looking like a mask.
pub(crate) fn token(tag: &str) -> String {
    const FILL: &str = "Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Bg0TyQa";
    strata_imagegen::checksummed_token("ghp_", &format!("FAKE{tag}{FILL}")[..30])
}

/// The scanner over the built-in rules.
pub(crate) fn scanner() -> Scanner {
    Scanner::new(crate::signatures::builtin().expect("built-in rules load"))
        .expect("built-in rules compile")
}

/// The windows a stream scan of `all` would see (`CHUNK` bytes, each
/// reporting the bytes past the first `OVERLAP`), as `(start, end, from,
/// to)`: binary ones (a NUL in `from..to`) first, then text (for throughput
/// measurements over real bytes).
#[allow(dead_code)]
pub(crate) fn windows(all: &[u8]) -> [Vec<(usize, usize, usize, usize)>; 2] {
    use super::stream::{CHUNK, OVERLAP};
    let mut out = [Vec::new(), Vec::new()];
    let mut base = 0;
    loop {
        let end = (base + CHUNK).min(all.len());
        let eof = end == all.len();
        let from = if base == 0 { 0 } else { OVERLAP };
        let to = if eof { end - base } else { end - base - OVERLAP };
        let text = memchr::memchr(0, &all[base + from..base + to]).is_none();
        out[usize::from(text)].push((base, end, from, to));
        if eof {
            return out;
        }
        base += CHUNK - 2 * OVERLAP;
    }
}

/// Measures `f` over each kind of window of `all` (see [`windows`]) in CPU
/// time, best of five rounds of three passes, and prints MB/s; `f` returns
/// a count printed beside (so the work is not optimised away).
#[allow(dead_code)]
pub(crate) fn throughput(what: &str, all: &[u8], mut f: impl FnMut(&[u8], usize, usize) -> usize) {
    for (kind, windows) in ["binary", "text"].iter().zip(windows(all)) {
        let bytes: usize = windows.iter().map(|w| w.3 - w.2).sum::<usize>() * 3;
        let mut best = std::time::Duration::MAX;
        let mut count = 0;
        for _ in 0..5 {
            let t = thread_cpu();
            count = 0;
            for _ in 0..3 {
                for &(start, end, from, to) in &windows {
                    count += f(&all[start..end], from, to);
                }
            }
            best = best.min(thread_cpu() - t);
        }
        eprintln!(
            "{what} {kind}: {:.0} MB/s over {} MB, {count} found",
            bytes as f64 / 1e6 / best.as_secs_f64(),
            (bytes / 3) >> 20
        );
    }
}

/// This thread's CPU time so far (from `/proc/thread-self/schedstat`, so a
/// measurement is not skewed by other processes on a shared machine); zero
/// where that file is missing.
#[allow(dead_code)]
pub(crate) fn thread_cpu() -> std::time::Duration {
    let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    std::time::Duration::from_nanos(ns)
}
