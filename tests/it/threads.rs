//! The thread count changes how the work is cut up (big files streamed to
//! workers, small ones in batches, several layers at once), never what is
//! found, nor what a budget keeps.

use std::io::{Read, Write};

use crate::util::*;

/// Files of this size and larger are streamed to a worker in windows
/// (`pipeline::jobs`); smaller ones are scanned whole, in batches. Where
/// secrets fall relative to the windows is the unit test's business
/// (`scan::stream::tests`); here the windows only have to exist.
const BUFFER: usize = (1 << 20) + (32 << 10);

fn text(seed: u64, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    ig::TextReader::new(seed, size as u64).read_to_end(&mut v).unwrap();
    v
}

/// Writes canary `n` at `offset`, on a line of its own.
fn plant(data: &mut [u8], offset: usize, n: u32) {
    let line = format!("\nk={}\n", canary(n));
    data[offset..offset + line.len()].copy_from_slice(line.as_bytes());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Offsets of the canaries in the big file: its start, spread over several
/// windows, and its end.
const BIG_OFFSETS: [usize; 5] = [100, 1_000_003, 2_100_000, 3_000_017, (4 << 20) - 40];

/// Canaries in `/data/many.log`, one rule: more than one file's budget.
const MANY: u32 = 130;

/// A 4 MiB text file with canaries 100.. at [`BIG_OFFSETS`].
fn big_file() -> Vec<u8> {
    let mut big = text(1, 4 << 20);
    for (k, off) in BIG_OFFSETS.iter().enumerate() {
        plant(&mut big, *off, 100 + k as u32);
    }
    big
}

/// A multi-layer image with big files (secrets on and near window edges), a file of exactly
/// one window, a big .tar.gz and a big UTF-16 file (read as streams), and many small files;
/// gzip, zstd and uncompressed layers. Returns it with the canaries planted (number, path).
fn image(dir: &std::path::Path) -> (std::path::PathBuf, Vec<(u32, String)>) {
    let mut planted = Vec::new();
    let big = big_file();
    for k in 0..BIG_OFFSETS.len() as u32 {
        planted.push((100 + k, "/data/big.log".to_owned()));
    }
    let mut edge = text(2, BUFFER);
    plant(&mut edge, BUFFER - 30, 200);
    planted.push((200, "/data/edge.log".to_owned()));
    let mut small_files = vec![Entry::dir("data"), Entry::dir("data/small")];
    for i in 0..600u32 {
        let mut body = text(10 + u64::from(i), 200 + (i as usize * 37) % 3000);
        if i % 50 == 7 {
            plant(&mut body, 20, 1000 + i);
            planted.push((1000 + i, format!("/data/small/f{i:04}.txt")));
        }
        small_files.push(Entry::file(&format!("data/small/f{i:04}.txt"), body));
    }
    small_files.push(Entry::file("data/big.log", big));
    // More matches of one rule than the per-file budget keeps (100): the budget is
    // charged in file order, whatever thread scans the file.
    let mut many = text(6, 3 << 20);
    for k in 0..MANY {
        plant(&mut many, 1000 + k as usize * 20_000, 5000 + k);
    }
    small_files.push(Entry::file("data/many.log", many));
    small_files.push(Entry::file("data/edge.log", edge));

    let mut member = text(3, 4 << 20);
    plant(&mut member, (3 << 20) + 11, 300);
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(member.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, "inner/app.log", member.as_slice()).unwrap();
    let targz = gzip(&tar.into_inner().unwrap());
    assert!(targz.len() > BUFFER, "the .tar.gz must be big enough to be streamed");
    planted.push((300, "/opt/bundle.tar.gz".to_owned()));
    let mut wide = String::from_utf8(text(4, 700_000)).unwrap();
    wide.insert_str(650_000, &format!("\nk={}\n", canary(301)));
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(wide.encode_utf16().flat_map(u16::to_le_bytes));
    assert!(utf16.len() > BUFFER);
    planted.push((301, "/opt/wide.txt".to_owned()));
    let notes = gzip(format!("notes\nk={}\n", canary(302)).as_bytes());
    planted.push((302, "/opt/notes.gz".to_owned()));

    let mut later = vec![Entry::dir("srv"), Entry::whiteout("data/small/f0007.txt")];
    for i in 0..400u32 {
        let mut body = text(5000 + u64::from(i), 100 + (i as usize * 53) % 1500);
        if i % 80 == 3 {
            plant(&mut body, 10, 2000 + i);
            planted.push((2000 + i, format!("/srv/s{i:04}.txt")));
        }
        later.push(Entry::file(&format!("srv/s{i:04}.txt"), body));
    }
    let spec = ImageSpec {
        layers: vec![
            Layer::new("COPY data /data", small_files),
            Layer::new(
                "COPY opt /opt",
                vec![
                    Entry::dir("opt"),
                    Entry::file("opt/bundle.tar.gz", targz),
                    Entry::file("opt/wide.txt", utf16),
                    Entry::file("opt/notes.gz", notes),
                ],
            )
            .with_compression(Compression::Zstd),
            Layer::new("COPY srv /srv", later).with_compression(Compression::None),
            Layer::new("COPY top /", vec![canary_file("top.conf", 400)]),
        ],
        ..ImageSpec::default()
    };
    planted.push((400, "/top.conf".to_owned()));
    let path = dir.join("mixed.tar");
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    (path, planted)
}

#[test]
fn findings_are_identical_for_every_thread_count() {
    let dir = tmp();
    let (img, planted) = image(dir.path());
    let mut reports = Vec::new();
    for threads in ["1", "2", "3", "8"] {
        let (code, json, err) = scan_json(&img, &["--threads", threads, "--show-secrets"]);
        assert_eq!(code, 1, "--threads {threads}: {err}");
        reports.push((threads, json));
    }
    let (_, first) = &reports[0];
    let canaries = findings_of(first, "test-canary");
    let in_many = canaries.iter().filter(|f| f["path"] == "/data/many.log").count();
    assert_eq!(in_many, 100, "the per-file budget keeps 100 of {MANY}");
    let mut found: Vec<(String, String)> = canaries
        .iter()
        .filter(|f| f["path"] != "/data/many.log")
        .map(|f| (f["secret"].as_str().unwrap().to_owned(), f["path"].as_str().unwrap().to_owned()))
        .collect();
    found.sort();
    let mut want: Vec<(String, String)> =
        planted.iter().map(|(n, p)| (canary(*n), p.clone())).collect();
    want.sort();
    assert_eq!(found, want, "every planted canary, once, in its file");
    // Lines in the big file count across window edges.
    let big = big_file();
    let in_big: Vec<_> = canaries.iter().filter(|f| f["path"] == "/data/big.log").collect();
    assert_eq!(in_big.len(), BIG_OFFSETS.len());
    for f in in_big {
        let secret = f["secret"].as_str().unwrap();
        let n: usize = secret.trim_start_matches("CANARY_").parse().unwrap();
        let off = BIG_OFFSETS[n - 100];
        // The canary's line starts right after the newline at `off`.
        let line = 1 + big[..=off].iter().filter(|b| **b == b'\n').count() as u64;
        assert_eq!(f["line"].as_u64(), Some(line), "line of {secret}");
    }
    for (threads, json) in &reports[1..] {
        assert_eq!(json["findings"], first["findings"], "--threads {threads} vs --threads 1");
        assert_eq!(json["summary"], first["summary"], "--threads {threads} vs --threads 1");
        assert_eq!(json["diagnostics"], first["diagnostics"], "--threads {threads} vs --threads 1");
    }
}
