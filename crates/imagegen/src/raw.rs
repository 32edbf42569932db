//! Raw tar blocks, for archives the `tar` crate would refuse to write: any typeflag byte, names
//! of any length or content, GNU sparse maps pointing anywhere, headers edited by hand. The
//! hostile shapes ([`crate::hostile`]) and the integration tests build their layers from these.

use crate::raw_header;

/// Bytes in a tar block.
pub const BLOCK: usize = 512;

/// The end-of-archive marker: two zero blocks.
pub const END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// A checksummed GNU header block (mode 0644, owner 0, mtime 0) with raw name bytes (cut to
/// 100) and any typeflag byte.
pub fn header(name: &[u8], flag: u8, size: u64) -> [u8; BLOCK] {
    let mut h = *raw_header(name, tar::EntryType::new(flag), 0o644, None, size).as_bytes();
    reseal(&mut h);
    h
}

/// A hardlink header block naming `target`.
pub fn link_header(name: &[u8], target: &[u8]) -> [u8; BLOCK] {
    let mut h = *raw_header(name, tar::EntryType::Link, 0o644, Some(target), 0).as_bytes();
    reseal(&mut h);
    h
}

/// Recomputes the checksum of a header whose fields were edited by hand, spelled as GNU tar
/// and Python's `tarfile` spell it (six octal digits, NUL, space), so a layer made of these
/// blocks has the same bytes as one those tools write.
pub fn reseal(h: &mut [u8; BLOCK]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Zero bytes that pad `len` bytes of entry data to a whole block.
pub fn padding(len: u64) -> usize {
    ((BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64) as usize
}

/// A GNU long-name record (`././@LongLink`, type `L`) naming the entry that follows.
pub fn long_name(name: &[u8]) -> Vec<u8> {
    let mut v = header(b"././@LongLink", b'L', name.len() as u64).to_vec();
    v.extend_from_slice(name);
    v.resize(v.len() + padding(name.len() as u64), 0);
    v
}

/// A special entry (long name, PAX header) of type `flag` whose data is `body` as given,
/// padded: malformed bodies included.
pub fn special(flag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = header(b"././@PaxHeader", flag, body.len() as u64).to_vec();
    v.extend_from_slice(body);
    v.resize(v.len() + padding(body.len() as u64), 0);
    v
}

/// One well-formed PAX record, `LEN KEY=VALUE\n`, its length counting itself.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut v = format!("{len} {key}=").into_bytes();
    v.extend_from_slice(value);
    v.push(b'\n');
    v
}

/// A PAX header of type `flag` (`x` for the next entry, `g` global) holding `records`.
pub fn pax(flag: u8, records: &[(&str, &[u8])]) -> Vec<u8> {
    let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    special(flag, &body)
}

/// A regular file entry: header, data, padding.
pub fn file(name: &str, data: &[u8]) -> Vec<u8> {
    let mut v = header(name.as_bytes(), b'0', data.len() as u64).to_vec();
    v.extend_from_slice(data);
    v.resize(v.len() + padding(data.len() as u64), 0);
    v
}

/// Pads a whole archive (ending with [`END`]) to a whole number of 10240-byte records, as GNU
/// tar and Python's `tarfile` write one.
pub fn in_records(mut archive: Vec<u8>) -> Vec<u8> {
    const RECORD: usize = 20 * BLOCK;
    archive.resize(archive.len().div_ceil(RECORD) * RECORD, 0);
    archive
}

/// A GNU sparse member (type `S`): one 512-byte data block (`data`, padded with newlines) at
/// offset 2^44, so a reader that streams the holes never ends.
pub fn sparse_member(name: &[u8], data: &str) -> Vec<u8> {
    let mut h = header(name, b'S', BLOCK as u64);
    // One map entry {offset 2^44, 512 bytes}, real size 2^44 + 512 (base-256 numbers).
    let base256 = |v: u64| {
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[4..].copy_from_slice(&v.to_be_bytes());
        f
    };
    h[386..398].copy_from_slice(&base256(1 << 44));
    h[398..410].copy_from_slice(&base256(BLOCK as u64));
    h[483..495].copy_from_slice(&base256((1 << 44) + BLOCK as u64));
    reseal(&mut h);
    let mut block = data.as_bytes().to_vec();
    block.resize(BLOCK, b'\n');
    [h.to_vec(), block].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_read_back_with_the_tar_crate() {
        let mut tar = file("a.txt", b"hello\n");
        tar.extend_from_slice(&long_name(&[b'n'; 300]));
        tar.extend_from_slice(&file("short", b"x"));
        tar.extend_from_slice(&link_header(b"l", b"a.txt"));
        tar.extend_from_slice(&pax(b'x', &[("path", &[b'p'; 120][..])]));
        tar.extend_from_slice(&file("short2", b"y"));
        tar.extend_from_slice(&END);
        let mut archive = tar::Archive::new(&tar[..]);
        let got: Vec<(Vec<u8>, u64)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                (e.path_bytes().into_owned(), e.size())
            })
            .collect();
        assert_eq!(
            got,
            [
                (b"a.txt".to_vec(), 6),
                (vec![b'n'; 300], 1),
                (b"l".to_vec(), 0),
                (vec![b'p'; 120], 1)
            ]
        );
        assert_eq!(pax_record("path", b"a"), b"9 path=a\n");
        let r = pax_record("k", &[b'v'; 94]);
        assert!(r.len() == 101 && r.starts_with(b"101 "), "a length of three digits counts itself");
    }

    #[test]
    fn a_resealed_header_reads_back() {
        let mut h = header(b"x", b'0', 0);
        h[0] = b'y';
        let mut tar = h.to_vec();
        tar.extend_from_slice(&END);
        let path = |tar: &[u8]| {
            let mut archive = tar::Archive::new(tar);
            let mut entries = archive.entries().expect("entries");
            entries.next().expect("one entry").map(|e| e.path_bytes().into_owned())
        };
        assert!(path(&tar).is_err(), "an edited header fails its checksum");
        let mut sealed: [u8; BLOCK] = tar[..BLOCK].try_into().expect("a block");
        reseal(&mut sealed);
        tar[..BLOCK].copy_from_slice(&sealed);
        assert_eq!(path(&tar).expect("valid checksum"), b"y");
    }
}
