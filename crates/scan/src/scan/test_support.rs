//! Helpers for this crate's unit tests: the built-in scanner and fake tokens that it finds.
//! (strata's pipeline tests have their own, over the same generator.)

use std::io::{Cursor, Write};

use strata_imagegen::raw;

use super::Scanner;

/// A tar of `members` (name, bytes), as the generator writes it.
pub(crate) fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out: Vec<u8> = members.iter().flat_map(|(n, d)| raw::file(n, d)).collect();
    out.extend(raw::END);
    out
}

/// `bytes` as one gzip member.
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("writes to memory");
    enc.finish().expect("writes to memory")
}

/// A zip of `members` (name, bytes), deflated.
pub(crate) fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in members {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).expect("zip member");
        w.write_all(data).expect("writes to memory");
    }
    w.finish().expect("writes to memory").into_inner()
}

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

/// The real bytes a throughput measurement runs over: `STRATA_BENCH_DATA`
/// names files (each one stream, default `/tmp/pfb/data.bin`) or
/// directories (each regular file in them a stream, as a scan sees them),
/// separated by `:`; `STRATA_BENCH_MB` (200) in all, shared evenly among
/// them. Empty when they are missing.
#[allow(dead_code)]
pub(crate) fn bench_streams() -> Vec<Vec<u8>> {
    let paths = std::env::var("STRATA_BENCH_DATA").unwrap_or("/tmp/pfb/data.bin".into());
    let paths: Vec<&str> = paths.split(':').collect();
    let mb: usize =
        std::env::var("STRATA_BENCH_MB").ok().and_then(|m| m.parse().ok()).unwrap_or(200);
    let share = mb * 1_000_000 / paths.len();
    let mut streams = Vec::new();
    for path in paths {
        let (mut total, mut todo) = (0usize, vec![std::path::PathBuf::from(path)]);
        while let Some(p) = todo.pop() {
            let Ok(meta) = std::fs::metadata(&p) else { continue };
            if meta.is_dir() {
                let Ok(entries) = std::fs::read_dir(&p) else { continue };
                let mut entries: Vec<_> = entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| !t.is_symlink()))
                    .map(|e| e.path())
                    .collect();
                entries.sort();
                todo.extend(entries.into_iter().rev());
            } else if meta.is_file() && total < share {
                let Ok(mut bytes) = std::fs::read(&p) else { continue };
                bytes.truncate(share - total);
                total += bytes.len();
                streams.push(bytes);
            }
        }
    }
    streams
}

/// A window of a stream: `(stream, start, end, from, to)`.
type Window = (usize, usize, usize, usize, usize);

/// The windows a stream scan of each of `streams` would see (`CHUNK` bytes,
/// each reporting the bytes past the first `OVERLAP`), as `(stream, start,
/// end, from, to)`: binary ones (a NUL in `from..to`) first, then text.
#[allow(dead_code)]
pub(crate) fn windows(streams: &[Vec<u8>]) -> [Vec<Window>; 2] {
    use super::stream::{CHUNK, OVERLAP};
    let mut out = [Vec::new(), Vec::new()];
    for (n, all) in streams.iter().enumerate() {
        let mut base = 0;
        loop {
            let end = (base + CHUNK).min(all.len());
            let eof = end == all.len();
            let from = if base == 0 { 0 } else { OVERLAP };
            let to = if eof { end - base } else { end - base - OVERLAP };
            let text = memchr::memchr(0, &all[base + from..base + to]).is_none();
            out[usize::from(text)].push((n, base, end, from, to));
            if eof {
                break;
            }
            base += CHUNK - 2 * OVERLAP;
        }
    }
    out
}

/// Measures `f(window, from, to)` over each kind of window of
/// [`bench_streams`] (see [`windows`]) in CPU time and prints MB/s; `f`
/// returns a count printed beside (so the work is not optimised away).
/// Each window is read just before `f` sees it, as a scan has read it
/// before it decodes (so `f` is timed on bytes in cache), and that read's
/// own time is taken off: best of five rounds of `STRATA_BENCH_PASSES` (10)
/// passes, each way.
/// `STRATA_BENCH_ONLY=binary` (or `text`) measures one kind only.
#[allow(dead_code)]
pub(crate) fn throughput(what: &str, mut f: impl FnMut(&[u8], usize, usize) -> usize) {
    let passes =
        std::env::var("STRATA_BENCH_PASSES").ok().and_then(|m| m.parse().ok()).unwrap_or(10);
    let streams = bench_streams();
    let only = std::env::var("STRATA_BENCH_ONLY").ok();
    let touch = |w: &[u8]| w.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    for (kind, windows) in ["binary", "text"].iter().zip(windows(&streams)) {
        if only.as_deref().is_some_and(|o| o != *kind) || windows.is_empty() {
            continue;
        }
        let bytes: usize = windows.iter().map(|w| w.4 - w.3).sum::<usize>() * passes;
        let mut best = [std::time::Duration::MAX; 2];
        let mut count = 0;
        for _ in 0..5 {
            for (with_f, best) in [true, false].into_iter().zip(&mut best) {
                let t = thread_cpu();
                if with_f {
                    count = 0;
                }
                for _ in 0..passes {
                    for &(n, start, end, from, to) in &windows {
                        let w = &streams[n][start..end];
                        std::hint::black_box(touch(w));
                        if with_f {
                            count += f(w, from, to);
                        }
                    }
                }
                *best = (*best).min(thread_cpu() - t);
            }
        }
        let spent = best[0].saturating_sub(best[1]).max(std::time::Duration::from_micros(1));
        eprintln!(
            "{what} {kind}: {:.0} MB/s over {} MB in {} windows, {count} found",
            bytes as f64 / 1e6 / spent.as_secs_f64(),
            (bytes / passes) >> 20,
            windows.len()
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
