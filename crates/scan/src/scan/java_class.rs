//! Compiled Java (`.class`, alone or in a jar): the strings of its constant pool.
//!
//! A class file stores every string literal, name and descriptor as a
//! `CONSTANT_Utf8` entry: a tag byte, a two-byte length, the bytes, and the
//! next entry's tag right after. The length's low byte is a letter or digit
//! for many token lengths (a 56-character Slack token is preceded by `8`,
//! 0x38), so a rule that wants a word boundary before the token never
//! matches the raw file. This module lists the strings one per line instead.
//!
//! Unlike a pyc, the constant pool is a plain table (JVMS §4.4): its count,
//! then entries whose size the tag fixes. It is walked exactly; a pool that
//! does not parse gives `None`, and the file is then scanned raw.
//! Recognising a class file is the sniff table's job (`sniff::file_format`
//! in strata-core).

/// The `CONSTANT_Utf8` strings of a class file, one per line, in pool
/// order; `None` when the constant pool is malformed. The output is at
/// most the file's size.
pub fn strings(data: &[u8]) -> Option<Vec<u8>> {
    let count = usize::from(u16::from_be_bytes([*data.get(8)?, *data.get(9)?]));
    let mut out = Vec::new();
    let mut at = 10;
    let mut index = 1;
    while index < count {
        let tag = *data.get(at)?;
        at += 1;
        let size = match tag {
            1 => {
                let len = usize::from(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]));
                out.extend_from_slice(data.get(at + 2..at + 2 + len)?);
                out.push(b'\n');
                2 + len
            }
            // Integer, Float; Fieldref, Methodref, InterfaceMethodref, NameAndType, Dynamic,
            // InvokeDynamic.
            3 | 4 | 9..=12 | 17 | 18 => 4,
            // Long and Double take two pool slots.
            5 | 6 => {
                index += 1;
                8
            }
            // Class, String, MethodType, Module, Package.
            7 | 8 | 16 | 19 | 20 => 2,
            // MethodHandle.
            15 => 3,
            _ => return None,
        };
        at += size;
        if at > data.len() {
            return None;
        }
        index += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A class file head with a constant pool of `entries` (each tag and body).
    fn class(entries: &[&[u8]], count: u16) -> Vec<u8> {
        let mut d = vec![0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 61];
        d.extend(count.to_be_bytes());
        for e in entries {
            d.extend_from_slice(e);
        }
        d.extend([0, 0x21]); // access flags, then the rest of the class
        d
    }

    fn utf8(s: &str) -> Vec<u8> {
        let mut e = vec![1];
        e.extend((s.len() as u16).to_be_bytes());
        e.extend(s.as_bytes());
        e
    }

    #[test]
    fn lists_every_utf8_entry_across_every_entry_size() {
        let token = "xoxb-123456789012-1234567890123-FAKEq8Lm3Xv9Rt2Wp7Kc4Hs5";
        assert_eq!(token.len(), 56, "its length byte is `8`");
        let long = [5, 0, 0, 0, 0, 0, 0, 0, 1];
        let data = class(
            &[
                &utf8("App"),
                &[7, 0, 1],
                &long,
                &[15, 1, 0, 2],
                &[10, 0, 1, 0, 2],
                &utf8(token),
                &utf8(""),
                &utf8("java/lang/Object"),
            ],
            // App, Class, Long (two slots), MethodHandle, Methodref, 3 strings: 9 slots + 1.
            10,
        );
        let text = strings(&data).unwrap();
        assert_eq!(text, format!("App\n{token}\n\njava/lang/Object\n").into_bytes());
    }

    #[test]
    fn a_malformed_pool_is_none() {
        assert_eq!(strings(&class(&[&utf8("App")], 3)), None, "a count past the end");
        assert_eq!(strings(&class(&[&[2, 0, 0]], 2)), None, "tag 2 does not exist");
        let mut cut = class(&[&utf8("a string cut short")], 2);
        cut.truncate(15);
        assert_eq!(strings(&cut), None);
        assert_eq!(strings(&[0xca, 0xfe]), None);
    }
}
