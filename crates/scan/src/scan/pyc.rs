//! Compiled Python (`.pyc`): the string constants of its marshal stream.
//!
//! marshal writes each string as a type byte, a length and the bytes, back
//! to back with the next object's type byte, so a token constant is glued
//! to a letter (`…ghp_…N` when `None` follows, `Z` or `z` before the next
//! short string) and a rule that wants a word boundary never matches the
//! raw file. This module lists the strings one per line instead.
//!
//! Found by a sweep, not by unmarshalling (code objects nest and change
//! between Python versions): at every byte whose type (flag bit cleared) is
//! a string type, a length that fits the file and printable content make a
//! string, and the sweep continues after it. The output is at most the
//! file's size plus one newline per string. Recognising a pyc is the sniff
//! table's job (`sniff::is_pyc` in strata-core).

/// Shortest string kept: shorter ones hold no credential.
const MIN_STRING: usize = 8;

/// The string constants of a pyc (header skipped), one per line.
pub fn strings(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    // Python 3.7+: magic, flags, then 8 bytes of mtime/size or a hash.
    let mut i = 16.min(data.len());
    while i < data.len() {
        let (len_bytes, text) = match data[i] & 0x7f {
            b'z' | b'Z' => (1, true),
            b'a' | b'A' | b'u' | b't' => (4, true),
            b's' => (4, false),
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i + 1 + len_bytes;
        let Some(len) = data
            .get(i + 1..start)
            .map(|l| l.iter().rev().fold(0usize, |n, b| (n << 8) | usize::from(*b)))
        else {
            break;
        };
        let Some(value) = data.get(start..start.saturating_add(len)) else {
            i += 1;
            continue;
        };
        let printable = |b: &u8| b.is_ascii_graphic() || b" \t\r\n".contains(b) || *b >= 0x80;
        if len >= MIN_STRING && (!text || value.iter().all(printable)) {
            out.extend_from_slice(value);
            out.push(b'\n');
            i = start + len;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glued_constants_come_out_one_per_line() {
        let mut pyc = vec![0xa7, 0x0d, b'\r', b'\n'];
        pyc.extend([0u8; 12]);
        pyc.extend(b"\xe3\x00");
        pyc.push(0xda);
        pyc.push(12);
        pyc.extend(b"GITHUB_TOKEN");
        pyc.push(b'z');
        pyc.push(16);
        pyc.extend(b"tok_0123456789ab");
        pyc.extend(b"N)\x01");
        assert!(crate::sniff::is_pyc(&pyc));
        assert_eq!(strings(&pyc), b"GITHUB_TOKEN\ntok_0123456789ab\n");
        assert!(!crate::sniff::is_pyc(b"ab\r\nplain text"));
    }
}
