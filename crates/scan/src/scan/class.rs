//! Compiled Java classes (`.class`, alone or in a jar): the strings of the
//! constant pool.
//!
//! A class file stores each string constant as a tag byte, a two-byte
//! length and the bytes, back to back with the next entry: a 56-byte token
//! follows the length byte `0x38` (`8`), so `…8xoxb-…` never has the word
//! boundary a rule wants before the token. This module lists the pool's
//! `Utf8` entries one per line instead (JVM spec §4.4); every string literal,
//! class, field and method name of the class is one of them. Recognising a
//! class file is the sniff table's job (`sniff::is_java_class` in
//! strata-core).

/// Shortest string kept: shorter ones hold no credential.
const MIN_STRING: usize = 8;

/// The `Utf8` constants of a class file, one per line, or `None` when the
/// constant pool does not parse (an unknown tag, a length past the end):
/// the caller then scans the raw bytes. Class names and type descriptors
/// (the entries a `Class`, `NameAndType` or `MethodType` entry points to as
/// a type) are left out: they are never credentials, and code that builds a
/// header from pieces (`"Authorization"`, `": Basic "`, then a call on a
/// class named `org/apache/…`) would otherwise read as one.
pub fn strings(data: &[u8]) -> Option<Vec<u8>> {
    let count = usize::from(u16::from_be_bytes([*data.get(8)?, *data.get(9)?]));
    let u16_at =
        |i: usize| Some(usize::from(u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?])));
    // (pool index, byte range) of every Utf8 entry, and the indices used as types.
    let mut texts = Vec::new();
    let mut types = std::collections::HashSet::new();
    let mut i = 10;
    // Entries are numbered from 1; a long or a double takes two numbers.
    let mut slot = 1;
    while slot < count {
        let size = match *data.get(i)? {
            1 => {
                let len = u16_at(i + 1)?;
                data.get(i + 3..i + 3 + len)?;
                texts.push((slot, i + 3..i + 3 + len));
                3 + len
            }
            7 => {
                types.insert(u16_at(i + 1)?);
                3
            }
            16 => {
                types.insert(u16_at(i + 1)?);
                3
            }
            12 => {
                types.insert(u16_at(i + 3)?);
                5
            }
            8 | 19 | 20 => 3,
            15 => 4,
            3 | 4 | 9 | 10 | 11 | 17 | 18 => 5,
            5 | 6 => {
                slot += 1;
                9
            }
            _ => return None,
        };
        i += size;
        slot += 1;
    }
    let mut out = Vec::new();
    for (index, range) in texts {
        if range.len() >= MIN_STRING
            && !types.contains(&index)
            && !is_descriptor(&data[range.clone()])
        {
            out.extend_from_slice(&data[range]);
            out.push(b'\n');
        }
    }
    Some(out)
}

/// A type descriptor or signature (`(Ljava/lang/String;)V`,
/// `Lorg/apache/http/protocol/HttpContext;`, `[Ljava/lang/Object;`), which
/// fields and methods name directly rather than through the pool's type
/// entries. A `;` never occurs in base64, hex or a token alphabet.
fn is_descriptor(s: &[u8]) -> bool {
    match s {
        [b'(', ..] => s.contains(&b')'),
        [b'L' | b'[', .., b';'] => s.contains(&b'/'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A class file head (magic, minor, major 65) and a pool of `entries`.
    fn class(entries: &[&[u8]], count: u16) -> Vec<u8> {
        let mut c = vec![0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 65];
        c.extend(count.to_be_bytes());
        for e in entries {
            c.extend_from_slice(e);
        }
        c.extend([0, 0x21, 0, 1]);
        c
    }

    fn utf8(s: &str) -> Vec<u8> {
        let mut e = vec![1];
        e.extend((s.len() as u16).to_be_bytes());
        e.extend(s.as_bytes());
        e
    }

    #[test]
    fn pool_strings_come_out_one_per_line() {
        let token = "tok_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP";
        let long = [6u8, 1, 2, 3, 4, 5, 6, 7, 8];
        let entries: Vec<Vec<u8>> = vec![
            utf8("com/corp/Config"),
            vec![7, 0, 1],
            long.to_vec(),
            utf8(token),
            vec![8, 0, 5],
            utf8("<init>"),
            utf8("SLACK_TOKEN"),
            utf8("Lorg/apache/http/protocol/HttpContext;"),
            utf8("(Ljava/lang/String;)V"),
        ];
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        // Nine entries, the double taking two numbers: a count of 11.
        let c = class(&refs, 11);
        assert!(crate::sniff::is_java_class(&c));
        let got = strings(&c).unwrap();
        // Entry 1 is the class's name (the Class entry points to it): left
        // out, and so are descriptors; a field's name is kept, it says what
        // the value beside it is.
        assert_eq!(String::from_utf8(got).unwrap(), format!("{token}\nSLACK_TOKEN\n"));
    }

    #[test]
    fn a_pool_that_does_not_parse_is_none() {
        let bad = class(&[&[99, 0, 0]], 2);
        assert_eq!(strings(&bad), None);
        let cut = class(&[&[1, 0, 200, b'x']], 2);
        assert_eq!(strings(&cut), None);
        // A Mach-O universal binary has the magic and a count of architectures.
        assert!(!crate::sniff::is_java_class(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2]));
    }
}
