//! An exact, conservative prefilter for the keyword search.
//!
//! [`Prefilter::regions`] reports small byte ranges of a haystack that together
//! contain **every** occurrence of every keyword (ASCII case-insensitive), each
//! occurrence lying entirely inside one range. The ranges are sorted and
//! disjoint, so the caller can run the exact overlapping aho-corasick search
//! only inside them and get exactly the matches a search over the whole
//! haystack would have found.
//!
//! # How
//!
//! The prefilter is a DFA over the keywords' *prefixes*: their first `P` bytes
//! (`P` = [`MAX_PREFIX`], or less when the table would not fit), or the whole
//! keyword when shorter. A prefix hit ending at `end` means a keyword may
//! start in `[end - P, end)`, so the range `[end - P, end + reach)` holds it,
//! where `reach` is how far the longest keyword behind the matched prefixes
//! extends past `end`. Overlapping or touching ranges are merged. Long
//! prefixes matter: at `P = 4` English text hits a keyword prefix every ~100
//! bytes (`code`, `cont`, `conf`, …), at `P = 8` every ~1.5 KB.
//!
//! # Why it is fast
//!
//! A DFA scan is latency-bound: every transition is a load whose address
//! depends on the previous one. This one has small rows (one column per byte
//! class, ASCII case folded into the class table) whose hot part stays in L1,
//! and it scans [`STREAMS`] equal segments of the haystack *at once*, in one
//! loop, so the independent load chains overlap. The inner loop has no branch
//! per byte: a match state is marked by bit 31 of its id (masked off when
//! indexing), every id is stored to a small per-block trace, and one
//! vectorised OR over the trace per 64-byte block tells whether any stream
//! hit; only then is the trace (not the DFA) walked to find where hits end.
//! The tables are fixed-size arrays indexed by `u8` or masked values, so the
//! loop has no bounds checks and no `unsafe`.
//!
//! Identical rows are shared, so the table for the built-in rules (several
//! thousand keywords, `P = 8`) is a few thousand rows of ~50 `u32` columns
//! (1-2 MB, of which the start state's neighbourhood is what stays hot). The table holds up to
//! 2^19 entries: with fewer, the rule set's keywords would not fit at `P = 8`
//! and a shorter prefix would hit far more often in ordinary text.

use std::collections::HashMap;

/// Longest keyword prefix the DFA tracks.
pub const MAX_PREFIX: usize = 8;
/// Mark on the id of a state where some prefix ends.
const MATCH: u32 = 1 << 31;
/// Table length (a power of two: ids are masked into it).
const TABLE_LEN: usize = 1 << 19;
/// Index mask: strips the match mark.
const MASK: usize = TABLE_LEN - 1;
/// Bytes per block between accumulator checks.
const BLOCK: usize = 64;
/// Independent streams scanned in one loop.
pub const STREAMS: usize = 4;

/// What `regions` does for a given keyword set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No keywords: nothing can match.
    Never,
    /// An empty keyword matches everywhere: the whole haystack is one range.
    Always,
    /// Run the prefix DFA.
    Scan,
}

/// Built once from the keywords (ASCII, matched case-insensitively).
pub struct Prefilter {
    /// `table[(id + class) & MASK]` is the next state's id; bit 31 of an id
    /// marks a match state.
    table: Box<[u32; TABLE_LEN]>,
    /// Byte to column, with ASCII case folded.
    classes: [u8; 256],
    /// Id of the start state.
    start: u32,
    /// Prefix length `P` the DFA tracks (`1..=MAX_PREFIX`).
    prefix: usize,
    /// Longest keyword.
    longest: usize,
    /// Distinct rows in the table.
    rows: usize,
    /// Columns per row.
    columns: usize,
    /// Per row: how far past a hit's end a keyword can reach, at most (the
    /// largest over the match states sharing the row).
    reach: Vec<usize>,
    mode: Mode,
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefilter")
            .field("mode", &self.mode)
            .field("prefix", &self.prefix)
            .field("longest", &self.longest)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// The prefix automaton before it is laid out as a table.
struct Built {
    /// Column count (class 0 is "no keyword byte").
    columns: usize,
    /// `delta[node][class]`: next node.
    delta: Vec<Vec<u32>>,
    /// Whether some prefix ends at the node.
    matches: Vec<bool>,
    /// How far past the node's end the keywords of its prefixes reach.
    reach: Vec<usize>,
}

impl Prefilter {
    /// Builds the prefilter. Keywords are ASCII and matched ASCII
    /// case-insensitively (other bytes match exactly, as in aho-corasick).
    pub fn new(keywords: &[&[u8]]) -> Prefilter {
        Self::with_max_prefix(keywords, MAX_PREFIX)
    }

    /// Like [`Prefilter::new`], tracking prefixes of at most `max_prefix`
    /// bytes (clamped to `1..=MAX_PREFIX`).
    pub fn with_max_prefix(keywords: &[&[u8]], max_prefix: usize) -> Prefilter {
        let mut classes = [0u8; 256];
        let table: Box<[u32; TABLE_LEN]> = vec![0u32; TABLE_LEN]
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| unreachable!("the vector has TABLE_LEN elements"));
        let longest = keywords.iter().map(|k| k.len()).max().unwrap_or(0);
        let mode = if keywords.is_empty() {
            Mode::Never
        } else if keywords.iter().any(|k| k.is_empty()) {
            Mode::Always
        } else {
            Mode::Scan
        };
        let mut pf = Prefilter {
            table,
            classes,
            start: 0,
            prefix: 1,
            longest,
            rows: 0,
            columns: 1,
            reach: Vec::new(),
            mode,
        };
        if mode != Mode::Scan {
            return pf;
        }
        // Longest prefix whose table fits; P = 1 always fits (one row).
        for prefix in (1..=max_prefix.clamp(1, MAX_PREFIX).min(longest)).rev() {
            classes = [0u8; 256];
            let prefixes: Vec<(Vec<u8>, usize)> = keywords
                .iter()
                .map(|k| (k[..k.len().min(prefix)].to_ascii_lowercase(), k.len()))
                .collect();
            let mut columns = 1usize;
            for &b in prefixes.iter().flat_map(|(p, _)| p) {
                if classes[usize::from(b)] == 0 {
                    classes[usize::from(b)] = u8::try_from(columns).unwrap_or(0);
                    columns += 1;
                }
            }
            for b in b'A'..=b'Z' {
                classes[usize::from(b)] = classes[usize::from(b.to_ascii_lowercase())];
            }
            let built = build(&prefixes, &classes, columns);
            if let Some((start, reach)) = layout(&built, &mut pf.table) {
                pf.rows = reach.len();
                pf.reach = reach;
                pf.columns = columns;
                pf.classes = classes;
                pf.start = start;
                pf.prefix = prefix;
                return pf;
            }
        }
        // Unreachable in practice (at P = 1 every row equals the start row),
        // but scanning everything is always correct.
        pf.mode = Mode::Always;
        pf
    }

    /// Calls `region(start, end)` with byte ranges of `hay` that together
    /// contain every occurrence of every keyword (each occurrence lies
    /// entirely inside one reported range). Ranges are sorted, disjoint and
    /// non-adjacent, each a few dozen bytes around a prefix hit.
    pub fn regions(&self, hay: &[u8], region: &mut dyn FnMut(usize, usize)) {
        match self.mode {
            Mode::Never => return,
            Mode::Always => return region(0, hay.len()),
            Mode::Scan => {}
        }
        let mut merge = Merge { current: None, out: region, len: hay.len(), back: self.prefix };
        let segment = hay.len() / (STREAMS * BLOCK) * BLOCK;
        if segment == 0 {
            let mut state = self.start;
            self.scan_checked(hay, 0, &mut state, &mut |end, id| {
                merge.hit(end, self.stop(end, id))
            });
        } else {
            self.scan_streams(hay, segment, &mut merge);
        }
        merge.finish();
    }

    /// Scans `STREAMS` segments of `segment` bytes in one loop, then the tail.
    // Indexing by block, byte and stream is the point: the streams interleave.
    #[allow(clippy::needless_range_loop)]
    fn scan_streams(&self, hay: &[u8], segment: usize, merge: &mut Merge<'_>) {
        let table: &[u32; TABLE_LEN] = &self.table;
        let mut hits: [Vec<(usize, u32)>; STREAMS] = std::array::from_fn(|_| Vec::new());
        // Each stream k > 0 starts P - 1 bytes before its segment, so a
        // prefix crossing into it is seen; hits ending before the segment
        // belong to stream k - 1, which is in the exact state there.
        let warm = self.prefix - 1;
        let mut states: [u32; STREAMS] = std::array::from_fn(|k| {
            let at = k * segment;
            let mut s = self.start;
            if k > 0 {
                for &b in &hay[at - warm..at] {
                    s = self.step(s, b);
                }
            }
            s
        });
        let blocks: [&[[u8; BLOCK]]; STREAMS] =
            std::array::from_fn(|k| hay[k * segment..(k + 1) * segment].as_chunks::<BLOCK>().0);
        let count = segment / BLOCK;
        // States after each byte of the current block, per stream.
        let mut trace = [[0u32; BLOCK]; STREAMS];
        for b in 0..count {
            let chunk: [&[u8; BLOCK]; STREAMS] = std::array::from_fn(|k| &blocks[k][b]);
            for j in 0..BLOCK {
                for k in 0..STREAMS {
                    let class = usize::from(self.classes[usize::from(chunk[k][j])]);
                    states[k] = table[(states[k] as usize + class) & MASK];
                    trace[k][j] = states[k];
                }
            }
            // Vectorised: any match state in this block?
            if trace.as_flattened().iter().fold(0, |a, &s| a | s) & MATCH != 0 {
                for (k, row) in trace.iter().enumerate() {
                    let base = k * segment + b * BLOCK + 1;
                    for (j, &s) in row.iter().enumerate() {
                        if s & MATCH != 0 {
                            hits[k].push((base + j, s));
                        }
                    }
                }
            }
        }
        // The last stream goes on over the tail.
        let tail = STREAMS * segment;
        let last = &mut hits[STREAMS - 1];
        self.scan_checked(&hay[tail..], tail, &mut states[STREAMS - 1], &mut |end, id| {
            last.push((end, id));
        });
        for list in &hits {
            for &(end, id) in list {
                merge.hit(end, self.stop(end, id));
            }
        }
    }

    /// Where the range for a hit ending at `end` in state `id` ends.
    fn stop(&self, end: usize, id: u32) -> usize {
        let row = (id as usize & MASK) / self.columns;
        end + self.reach.get(row).copied().unwrap_or(self.longest)
    }

    /// One transition.
    #[inline(always)]
    fn step(&self, state: u32, byte: u8) -> u32 {
        self.table[(state as usize + usize::from(self.classes[usize::from(byte)])) & MASK]
    }

    /// Scans `bytes` (at offset `base` of the haystack) byte by byte from
    /// `state`, calling `hit` with the end of each prefix hit.
    #[inline(always)]
    fn scan_checked(
        &self,
        bytes: &[u8],
        base: usize,
        state: &mut u32,
        hit: &mut dyn FnMut(usize, u32),
    ) {
        let mut s = *state;
        for (i, &b) in bytes.iter().enumerate() {
            s = self.step(s, b);
            if s & MATCH != 0 {
                hit(base + i + 1, s);
            }
        }
        *state = s;
    }

    /// The prefix length the DFA tracks (for diagnostics and tests).
    #[cfg(test)]
    pub fn prefix_len(&self) -> usize {
        self.prefix
    }
}

/// Turns prefix hits (in increasing order of end) into merged ranges.
struct Merge<'a> {
    current: Option<(usize, usize)>,
    out: &'a mut dyn FnMut(usize, usize),
    len: usize,
    /// `P`: a keyword starts at most this far before a hit's end.
    back: usize,
}

impl Merge<'_> {
    /// A hit ending at `end` (after the previous hit's) whose keywords end
    /// by `stop`.
    fn hit(&mut self, end: usize, stop: usize) {
        let (start, stop) = (end.saturating_sub(self.back), stop.min(self.len));
        match &mut self.current {
            Some((_, e)) if start <= *e => *e = (*e).max(stop),
            current => {
                if let Some((s, e)) = current.replace((start, stop)) {
                    (self.out)(s, e);
                }
            }
        }
    }

    fn finish(self) {
        if let Some((s, e)) = self.current {
            (self.out)(s, e);
        }
    }
}

/// Builds the Aho-Corasick DFA over `prefixes` (lower-cased) in class space.
fn build(prefixes: &[(Vec<u8>, usize)], classes: &[u8; 256], columns: usize) -> Built {
    const NONE: u32 = u32::MAX;
    let mut trie: Vec<Vec<u32>> = vec![vec![NONE; columns]];
    let mut matches = vec![false];
    let mut reach = vec![0usize];
    for (p, len) in prefixes {
        let mut node = 0usize;
        for &b in p {
            let c = usize::from(classes[usize::from(b)]);
            if trie[node][c] == NONE {
                trie[node][c] = trie.len() as u32;
                trie.push(vec![NONE; columns]);
                matches.push(false);
                reach.push(0);
            }
            node = trie[node][c] as usize;
        }
        matches[node] = true;
        reach[node] = reach[node].max(len - p.len());
    }
    // Breadth-first: fill missing transitions from the failure state.
    let mut delta = trie.clone();
    let mut fail = vec![0u32; trie.len()];
    let mut queue = std::collections::VecDeque::new();
    for c in 0..columns {
        match trie[0][c] {
            NONE => delta[0][c] = 0,
            child => queue.push_back(child as usize),
        }
    }
    while let Some(node) = queue.pop_front() {
        let f = fail[node] as usize;
        matches[node] |= matches[f];
        reach[node] = reach[node].max(reach[f]);
        for c in 0..columns {
            match trie[node][c] {
                NONE => delta[node][c] = delta[f][c],
                child => {
                    fail[child as usize] = delta[f][c];
                    queue.push_back(child as usize);
                }
            }
        }
    }
    Built { columns, delta, matches, reach }
}

/// Writes the DFA into `table` with identical rows shared; `None` when the
/// rows do not fit. Returns the start id and each row's reach.
fn layout(built: &Built, table: &mut [u32; TABLE_LEN]) -> Option<(u32, Vec<usize>)> {
    let mut base_of_row: HashMap<&[u32], usize> = HashMap::new();
    let mut base = Vec::with_capacity(built.delta.len());
    for row in &built.delta {
        let next = base_of_row.len() * built.columns;
        base.push(*base_of_row.entry(row.as_slice()).or_insert(next));
    }
    let rows = base_of_row.len();
    if rows * built.columns > TABLE_LEN {
        return None;
    }
    let id = |node: usize| -> u32 {
        // `base < TABLE_LEN`, so it fits in 19 bits (below the MATCH bit).
        (base[node] as u32) | if built.matches[node] { MATCH } else { 0 }
    };
    let mut reach = vec![0; rows];
    for (node, row) in built.delta.iter().enumerate() {
        for (c, &next) in row.iter().enumerate() {
            table[base[node] + c] = id(next as usize);
        }
        let r = &mut reach[base[node] / built.columns];
        *r = (*r).max(built.reach[node]);
    }
    Some((id(0), reach))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
    use proptest::prelude::*;

    fn regions(pf: &Prefilter, hay: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        pf.regions(hay, &mut |s, e| out.push((s, e)));
        out
    }

    /// Checks the prefilter's guarantee against aho-corasick over `hay`, and
    /// that searching only the regions finds the same matches.
    fn check(keywords: &[Vec<u8>], hay: &[u8]) -> Result<(), TestCaseError> {
        let refs: Vec<&[u8]> = keywords.iter().map(Vec::as_slice).collect();
        let pf = Prefilter::new(&refs);
        let rs = regions(&pf, hay);
        for w in rs.windows(2) {
            prop_assert!(w[0].1 < w[1].0, "regions not sorted/disjoint: {:?}", w);
        }
        for &(s, e) in &rs {
            prop_assert!(s < e || (s == e && keywords.iter().any(Vec::is_empty)));
            prop_assert!(e <= hay.len());
        }
        let ac = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .build(keywords)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let all: Vec<_> = ac.find_overlapping_iter(hay).collect();
        for m in &all {
            let inside = rs.iter().any(|&(s, e)| s <= m.start() && m.end() <= e);
            prop_assert!(inside, "{:?} not inside {:?}", m, rs);
        }
        let mut within = Vec::new();
        for &(s, e) in &rs {
            within.extend(ac.find_overlapping_iter(Input::new(hay).range(s..e)));
        }
        prop_assert_eq!(within.len(), all.len());
        Ok(())
    }

    fn keyword() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(
                prop_oneof![
                    8 => proptest::char::range('a', 'f'),
                    2 => proptest::char::range('A', 'F'),
                    1 => Just('$'),
                    1 => Just('-'),
                    1 => Just('~'),
                    1 => Just('_'),
                    1 => Just('6'),
                ]
                .prop_map(|c| c as u8),
                1..12,
            ),
            Just(b"$6$".to_vec()),
            Just(b"-us".to_vec()),
            Just(b"q~".to_vec()),
            Just(b"Q".to_vec()),
            Just(b"://".to_vec()),
        ]
    }

    fn case() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<u8>)> {
        proptest::collection::vec(keyword(), 1..12).prop_flat_map(|kws| {
            let pieces = kws.clone();
            let piece = prop_oneof![
                3 => proptest::sample::select(pieces).prop_map(|k| k),
                1 => proptest::sample::select(kws.clone()).prop_map(|k| {
                    k.iter().map(u8::to_ascii_uppercase).collect()
                }),
                4 => proptest::collection::vec(
                    prop_oneof![
                        proptest::sample::select(b"abcdefABCDEF$-~_6:/q ".to_vec()),
                        any::<u8>()
                    ],
                    0..80,
                ),
            ];
            let hay = proptest::collection::vec(piece, 0..64).prop_map(|v| v.concat());
            (Just(kws), hay)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn covers_every_occurrence((keywords, hay) in case()) {
            check(&keywords, &hay)?;
        }

        #[test]
        fn covers_across_segment_boundaries(
            (keywords, _) in case(),
            len in 0usize..3000,
            spots in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), -4i64..4), 0..12),
        ) {
            // Filler that matches nothing, keywords planted around the
            // segment boundaries, the start and the end.
            let mut hay = vec![b'z'; len];
            let segment = len / (STREAMS * BLOCK) * BLOCK;
            for (which, boundary, shift) in spots {
                let kw = which.get(&keywords);
                let k = boundary.index(STREAMS + 2);
                let at = match k {
                    0 => 0,
                    k if k <= STREAMS => k * segment,
                    _ => len.saturating_sub(kw.len()),
                } as i64 + shift - kw.len() as i64 / 2;
                for (i, &b) in kw.iter().enumerate() {
                    if let Ok(p) = usize::try_from(at + i as i64) && p < len {
                        hay[p] = b;
                    }
                }
            }
            check(&keywords, &hay)?;
        }
    }

    #[test]
    fn edge_cases() {
        let none: [&[u8]; 0] = [];
        assert!(regions(&Prefilter::new(&none), b"abc").is_empty());
        let empty: [&[u8]; 1] = [b""];
        assert_eq!(regions(&Prefilter::new(&empty), b"abc"), vec![(0, 3)]);
        let one: [&[u8]; 1] = [b"x"];
        assert_eq!(regions(&Prefilter::new(&one), b"aXa"), vec![(1, 2)]);
        assert!(regions(&Prefilter::new(&one), b"").is_empty());
        // Every byte value a keyword: still correct.
        let all: Vec<[u8; 2]> = (0..=255u8).map(|b| [b, b]).collect();
        let refs: Vec<&[u8]> = all.iter().map(|k| k.as_slice()).collect();
        let pf = Prefilter::new(&refs);
        assert_eq!(regions(&pf, b"aa"), vec![(0, 2)]);
    }

    /// The real keyword set: signatures/*.toml, the entropy rules' words
    /// and "://".
    fn real_keywords() -> Vec<Vec<u8>> {
        #[derive(serde::Deserialize)]
        struct File {
            rule: Vec<Rule>,
        }
        #[derive(serde::Deserialize)]
        struct Rule {
            keywords: Vec<String>,
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../signatures");
        let mut kws: Vec<Vec<u8>> = Vec::new();
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .expect("signatures dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).expect("read signature file");
            let file: File = toml::from_str(&text).expect("parse signature file");
            for r in file.rule {
                kws.extend(r.keywords.iter().map(|k| k.to_ascii_lowercase().into_bytes()));
            }
        }
        let words = include_str!("entropy.rs");
        let list = words.split("const SECRET_WORDS").nth(1).expect("SECRET_WORDS");
        let list = &list[..list.find("];").expect("end of SECRET_WORDS")];
        kws.extend(list.split('"').skip(1).step_by(2).map(|w| w.as_bytes().to_vec()));
        kws.push(b"://".to_vec());
        kws.sort();
        kws.dedup();
        assert!(kws.len() > 500, "only {} keywords", kws.len());
        kws
    }

    /// A few MB of mixed data: English-like text with keywords planted in
    /// it, raw bytes, and this crate's sources.
    fn mixed(keywords: &[Vec<u8>]) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let words = ["the", "of", "and", "secret", "password", "access", "tokens", "passing"];
        let mut out = Vec::new();
        while out.len() < 3 << 20 {
            let r = rand();
            match r % 16 {
                0 => {
                    let k = &keywords[(r >> 8) as usize % keywords.len()];
                    if r & (1 << 40) != 0 {
                        out.extend(k.iter().map(u8::to_ascii_uppercase));
                    } else {
                        out.extend_from_slice(k);
                    }
                }
                1 => out.extend((0..(r >> 8) % 64).map(|_| rand() as u8)),
                _ => {
                    out.extend_from_slice(words[(r >> 8) as usize % words.len()].as_bytes());
                    out.push(if r & (1 << 50) != 0 { b'\n' } else { b' ' });
                }
            }
        }
        out.extend_from_slice(include_bytes!("pattern.rs"));
        out.extend_from_slice(include_bytes!("entropy.rs"));
        out
    }

    #[test]
    fn real_keywords_on_mixed_data() {
        let keywords = real_keywords();
        let data = mixed(&keywords);
        let refs: Vec<&[u8]> = keywords.iter().map(Vec::as_slice).collect();
        assert_eq!(Prefilter::new(&refs).prefix_len(), MAX_PREFIX);
        for cut in [data.len(), data.len() - 1, 100_000, 4097, 511, 37] {
            check(&keywords, &data[..cut]).expect("prefilter covers every occurrence");
            check(&keywords, &data[data.len() - cut..]).expect("prefilter covers every occurrence");
        }
    }
}
