//! UTF-16 strings of ASCII characters inside binary bytes (PE resources,
//! .NET user strings), without a byte-order mark: runs of at least
//! [`MIN_UTF16_UNITS`] code units, little- or big-endian, at even or odd
//! offsets (a string need not be aligned in the file).
//!
//! One pass finds them in all four forms at once. A run of 16 units covers
//! 32 bytes, so it covers a whole 16-byte block at an offset divisible by
//! 16, and the first 8 bytes of that block alternate NUL and non-NUL ASCII.
//! That test costs a few word operations per 16 bytes; only where it holds
//! are code units checked one by one, to find each run's exact ends.

use super::{Budget, Candidate, Encoding, MAX_RUN};

/// Shortest UTF-16 string decoded inside binary content, in code units
/// (shorter ones are mostly identifiers and labels).
pub const MIN_UTF16_UNITS: usize = 16;

/// Which code units a run is made of: those starting at offsets of
/// `parity`, in the given byte order.
#[derive(Debug, Clone, Copy)]
struct Units {
    parity: usize,
    big_endian: bool,
}

/// The four forms, in the order their runs are charged to the budget.
const FORMS: [Units; 4] = [
    Units { parity: 0, big_endian: false },
    Units { parity: 1, big_endian: false },
    Units { parity: 0, big_endian: true },
    Units { parity: 1, big_endian: true },
];

/// True for a UTF-16 code unit at `data[k..k + 2]` that is printable ASCII
/// (or tab, CR, LF) in the given byte order.
fn ascii_unit(data: &[u8], k: usize, big_endian: bool) -> bool {
    let Some(&[a, b]) = data.get(k..k + 2).map(|u| <&[u8; 2]>::try_from(u).expect("two bytes"))
    else {
        return false;
    };
    let (hi, lo) = if big_endian { (a, b) } else { (b, a) };
    hi == 0 && ((0x20..0x7f).contains(&lo) || matches!(lo, b'\t' | b'\n' | b'\r'))
}

/// High bit of each byte of a word that is not NUL.
fn non_nul(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    (((w & LOW7) + LOW7) | w) & HIGH
}

/// Bytes at even offsets of a word ASCII and not NUL, at odd offsets NUL.
const EVEN_TEXT: u64 = 0x0080_0080_0080_0080;
/// Bytes at odd offsets of a word ASCII and not NUL, at even offsets NUL.
const ODD_TEXT: u64 = 0x8000_8000_8000_8000;

/// The forms a run covering the word at `b` (`b` even) can have, by which
/// bytes of the word are NUL, each with a code unit of that form inside the
/// word: text at even offsets is little-endian units at even offsets or
/// big-endian ones at odd offsets, and the other way round.
fn forms_at(word: u64, b: usize) -> [(usize, usize); 2] {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let ascii = word & HIGH == 0;
    match non_nul(word) {
        EVEN_TEXT if ascii => [(0, b), (3, b + 1)],
        ODD_TEXT if ascii => [(1, b + 1), (2, b)],
        _ => [(usize::MAX, 0); 2],
    }
}

/// The maximal runs of at least [`MIN_UTF16_UNITS`] units of each form
/// that start in `data[from..to]`, as `(start, end)` in order; a run
/// already going at the first unit of the window's form at or after `from`
/// belongs to the window it began in, and is left out.
fn runs(data: &[u8], from: usize, to: usize) -> [Vec<(usize, usize)>; 4] {
    let mut found: [Vec<(usize, usize)>; 4] = Default::default();
    // Per form: the end of the last run measured (its units were all seen).
    let mut seen = [0usize; 4];
    // A run starting at or after `from` covers a block starting at or after it,
    // and one starting before `to` covers a block starting before `to + 16`.
    let first = from.next_multiple_of(16);
    let last = data.len().min(to.saturating_add(32));
    if first >= last {
        return found;
    }
    for (n, block) in data[first..last].chunks_exact(16).enumerate() {
        let word = u64::from_le_bytes(block[..8].try_into().expect("an 8-byte slice"));
        let b = first + 16 * n;
        for (form, k) in forms_at(word, b) {
            if form == usize::MAX || k < seen[form] {
                continue;
            }
            let Units { parity, big_endian } = FORMS[form];
            let ok = |k: usize| ascii_unit(data, k, big_endian);
            if !ok(k) {
                continue;
            }
            let first_unit = from + (from + parity) % 2;
            let mut start = k;
            while start > first_unit && ok(start - 2) {
                start -= 2;
            }
            let mut end = k + 2;
            while ok(end) {
                end += 2;
            }
            seen[form] = end;
            let began_before = start == first_unit && start >= 2 && ok(start - 2);
            if !began_before && start < to && end - start >= 2 * MIN_UTF16_UNITS {
                found[form].push((start, end));
            }
        }
    }
    found
}

/// The UTF-16 strings starting in `data[from..to]` (see the module doc),
/// decoded within `budget` and appended to `out` in order of position.
/// A run is decoded in pieces of at most [`MAX_RUN`] units, each charged to
/// the budget in turn, the runs of one form after another; the first piece a
/// form cannot pay for ends that form's search.
pub(super) fn find(
    data: &[u8],
    from: usize,
    to: usize,
    budget: &mut Budget,
    out: &mut Vec<Candidate>,
) {
    let first = out.len();
    'forms: for (Units { big_endian, .. }, runs) in FORMS.into_iter().zip(runs(data, from, to)) {
        for (run_start, run_end) in runs {
            let mut start = run_start;
            while (start == run_start || start < to) && run_end - start >= 2 * MIN_UTF16_UNITS {
                let end = run_end.min(start + 2 * MAX_RUN);
                if !budget.take((end - start) / 2, start) {
                    continue 'forms;
                }
                // The ASCII byte of each unit: the first in little-endian order.
                let decoded: Vec<u8> = data[start..end]
                    .iter()
                    .skip(usize::from(big_endian))
                    .step_by(2)
                    .copied()
                    .collect();
                let chain = vec![if big_endian { Encoding::Utf16Be } else { Encoding::Utf16Le }];
                out.push(Candidate { start, end, chain, decoded });
                start = end;
            }
        }
    }
    keep_longer_of_overlapping(out, first);
}

/// Orders the candidates in `out[first..]` by position and, of overlapping
/// ones, keeps the longer: UTF-16LE text reads as UTF-16BE one byte off (and
/// the other way round). On a tie little-endian wins, by far the more common
/// (Windows, .NET, compilers on x86 and ARM).
pub(super) fn keep_longer_of_overlapping(out: &mut Vec<Candidate>, first: usize) {
    let mut found: Vec<Candidate> = out.drain(first..).collect();
    found.sort_by_key(|c| c.start);
    for c in found {
        let fresh = out.len() > first;
        match out.last_mut() {
            Some(last) if fresh && c.start < last.end => {
                let better = |x: &Candidate| (x.decoded.len(), x.chain == [Encoding::Utf16Le]);
                if better(&c) > better(last) {
                    *last = c;
                }
            }
            _ => out.push(c),
        }
    }
}
