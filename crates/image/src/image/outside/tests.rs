use std::io::{BufReader, Write};

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

use super::*;

/// What a decoder makes of `data`, read in uneven steps as the tar parser
/// reads: its bytes, its error's text (if any), and what it found outside.
fn decode(data: &[u8], zstd: bool) -> (Vec<u8>, Option<String>, Outside) {
    let shared = Shared::default();
    // A small buffer, so fields and frames straddle refills.
    let src = BufReader::with_capacity(7, data);
    let mut r: Box<dyn Read> = if zstd {
        Box::new(ZstdFrames::new(src, shared.clone()).unwrap())
    } else {
        Box::new(GzMembers::new(src, shared.clone()))
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 999];
    let err = loop {
        match r.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => break Some(format!("{:?}: {e}", e.kind())),
        }
    };
    // A failed decoder stays failed.
    if let Some(e) = &err {
        let again = r.read(&mut buf).unwrap_err();
        assert_eq!(&format!("{:?}: {again}", again.kind()), e);
    }
    (out, err, take(&shared))
}

fn flate2_reads(data: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::new();
    let mut d = flate2::bufread::MultiGzDecoder::new(BufReader::new(data));
    let mut buf = [0u8; 999];
    loop {
        match d.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(format!("{:?}: {e}", e.kind()))),
        }
    }
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn text() -> Vec<u8> {
    (0..20_000u32).flat_map(|i| format!("line {i} of a FAKE layer\n").into_bytes()).collect()
}

fn names(o: &Outside) -> Vec<(&str, &[u8])> {
    o.parts.iter().map(|p| (p.name.as_str(), p.bytes.as_slice())).collect()
}

#[test]
fn gzip_decodes_as_flate2_and_captures_header_fields() {
    let text = text();
    let one = gz(&text);
    let mut named = GzBuilder::new()
        .filename("layer.tar")
        .comment("a comment CANARY_000000000001")
        .extra(vec![7u8; 3000])
        .write(Vec::new(), Compression::best());
    named.write_all(b"hello from a named member").unwrap();
    let named = named.finish().unwrap();
    let mut bad_crc = one.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 1;
    let mut header_crc = named.clone();
    header_crc[3] |= FHCRC;
    // Inputs both decoders read alike: the same bytes, the same error.
    let alike: Vec<(&str, Vec<u8>)> = vec![
        ("one member", one.clone()),
        ("named", named.clone()),
        ("two members", [one.clone(), named.clone()].concat()),
        ("header only", one[..10].to_vec()),
        ("truncated body", one[..one.len() / 2].to_vec()),
        ("bad checksum", bad_crc),
        ("header CRC missing", header_crc),
        ("not gzip", b"plain text, no gzip here".to_vec()),
    ];
    for (what, data) in alike {
        let (want, want_err) = flate2_reads(&data);
        let (got, got_err, _) = decode(&data, false);
        assert_eq!(got_err, want_err, "{what}");
        assert!(got == want, "{what}: {} bytes, flate2 {}", got.len(), want.len());
    }
    let (got, err, found) = decode(&[one.clone(), named.clone()].concat(), false);
    assert_eq!(err, None);
    assert_eq!(got, [text.as_slice(), b"hello from a named member"].concat());
    assert_eq!(
        names(&found),
        [
            ("<gzip member 2 header: extra field>", &[7u8; 3000][..]),
            ("<gzip member 2 header: file name>", b"layer.tar"),
            ("<gzip member 2 header: comment>", b"a comment CANARY_000000000001"),
        ]
    );
    assert!(found.unread.is_empty());
}

#[test]
fn gzip_bytes_after_the_last_member_are_an_error_that_says_so() {
    let one = gz(&text());
    for tail in [&b"not gzip"[..], &[0u8; 3], &[0x1f, 0x8b, 8]] {
        let (got, err, _) = decode(&[one.clone(), tail.to_vec()].concat(), false);
        assert_eq!(got, text(), "{tail:?}");
        let err = err.expect("an error");
        assert!(
            err.contains("the bytes after gzip member 1 (from byte")
                && err.contains("are not a gzip member; no runtime reads them"),
            "{err}"
        );
    }
}

#[test]
fn gzip_header_field_of_any_length_is_read_whole() {
    // flate2 refused a field over 64 KiB; the bytes are there for any puller to read.
    let long = vec![b'x'; 200_000];
    let mut data = gz(b"body");
    data[3] |= FCOMMENT;
    data.splice(10..10, long.iter().copied().chain([0]));
    let (got, err, found) = decode(&data, false);
    assert_eq!((got.as_slice(), err), (&b"body"[..], None));
    assert_eq!(names(&found), [("<gzip member 1 header: comment>", long.as_slice())]);
}

/// A skippable frame: magic 0x184D2A50 + `n`, its size, its bytes.
fn skippable(n: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x50 + n, 0x2a, 0x4d, 0x18];
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(data);
    f
}

#[test]
fn zstd_decodes_as_the_zstd_crate_and_captures_skippable_frames() {
    let text = text();
    let a = zstd::encode_all(&text[..text.len() / 2], 3).unwrap();
    let b = zstd::encode_all(&text[text.len() / 2..], 19).unwrap();
    let stream = [
        skippable(0, b"first"),
        a.clone(),
        skippable(14, b"between CANARY_000000000002"),
        skippable(15, b""),
        b.clone(),
        skippable(3, &[9u8; 70_000]),
    ]
    .concat();
    let (got, err, found) = decode(&stream, true);
    assert_eq!(err, None);
    assert!(got == zstd::decode_all(&stream[..]).unwrap() && got == text);
    assert_eq!(
        names(&found),
        [
            ("<zstd skippable frame 1>", &b"first"[..]),
            ("<zstd skippable frame 3>", b"between CANARY_000000000002"),
            ("<zstd skippable frame 6>", &[9u8; 70_000]),
        ]
    );
    // Cut anywhere, the stream is an error (a cut skippable frame too), never a clean end.
    for cut in [a.len() / 2, stream.len() - 10, stream.len() - 70_004] {
        let (_, err, _) = decode(&stream[..cut], true);
        assert!(err.as_deref().is_some_and(|e| e.starts_with("UnexpectedEof")), "{cut}: {err:?}");
    }
}

#[test]
fn zstd_bytes_after_the_last_frame_are_an_error_that_says_so() {
    let a = zstd::encode_all(&b"some tar bytes"[..], 3).unwrap();
    for tail in [&b"junk"[..], &[0u8; 2], &[0x28, 0xb5]] {
        let (got, err, _) = decode(&[a.clone(), tail.to_vec()].concat(), true);
        assert_eq!(got, b"some tar bytes", "{tail:?}");
        let err = err.expect("an error");
        assert!(
            err.contains("the bytes after zstd frame 1 (from byte")
                && err.ends_with("are not a zstd frame; no runtime reads them"),
            "{err}"
        );
    }
}

#[test]
fn bytes_over_the_budget_are_unread_and_said_so() {
    let big = vec![b'y'; MAX_OUTSIDE_BYTES - 10];
    let stream = [
        skippable(0, &big),
        skippable(1, b"0123456789ABCDEF"),
        skippable(2, b"more"),
        zstd::encode_all(&b"tar"[..], 1).unwrap(),
    ]
    .concat();
    let (got, err, found) = decode(&stream, true);
    assert_eq!((got.as_slice(), err), (&b"tar"[..], None));
    let held: Vec<(&str, usize)> = found.parts.iter().map(|p| (&*p.name, p.bytes.len())).collect();
    assert_eq!(held, [("<zstd skippable frame 1>", big.len()), ("<zstd skippable frame 2>", 10)]);
    assert_eq!(
        found.unread,
        [
            "6 bytes of <zstd skippable frame 2> were not read: over the 64 MiB limit on bytes held from outside the tar stream of one layer",
            "4 bytes of <zstd skippable frame 3> were not read: over the 64 MiB limit on bytes held from outside the tar stream of one layer",
        ]
    );
}
