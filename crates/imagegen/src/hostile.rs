//! The hostile inputs of issue 9 at full size, for `bench/hostile.py`'s CPU and memory budget
//! table (the test suite's `tests/it/hostile.rs` builds small versions of the same shapes).
//! Each shape is an OCI layout directory (or, for `sharedconfig`, a docker-save archive)
//! written under a directory of its own; every layer is streamed, so a 2 GB PAX header costs
//! kilobytes of memory. Secrets are values of the test canary rule (`tests/it/canary.toml`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::layout::{Blob, Layout, one_layer};
use crate::raw::{END, file, header, in_records, link_header, long_name, padding, sparse_member};
use crate::{Compression, MT_OCI_INDEX, MT_OCI_MANIFEST, sha256_digest};

/// The names of the shapes, in the order of the budget table.
pub const SHAPES: &[&str] = &[
    "longname",
    "pax",
    "sparse",
    "awslines",
    "createdby",
    "dotdot",
    "deep",
    "deepok",
    "tfstate",
    "fanout",
    "sharedconfig",
    "names",
    "hitslinks",
    "hitsonetarget",
    "linkchain",
    "samepath",
    "listed",
    "listedmany",
    "threads",
    "cpiomany",
    "zipheaders",
    "repeated",
];

/// Writes shape `name` under `dir` (created; pass a fresh one) and returns the path to scan:
/// `dir` itself for a layout, the archive in it for `sharedconfig`.
pub fn build(name: &str, dir: &Path) -> io::Result<PathBuf> {
    match name {
        "longname" => longname(dir),
        "pax" => pax(dir),
        "sparse" => sparse(dir),
        "awslines" => aws_lines(dir),
        "createdby" => created_by(dir),
        "dotdot" => long_names(dir, 20_000, |i| format!("../{}{i}", "n".repeat(50_000)), &short()),
        "deep" => long_names(dir, 1_500, |i| deep_name(i, 50_000), &file("short", b"x\n")),
        "deepok" => long_names(dir, 1_500, |i| deep_name(i, 1_000), &file("short", b"x\n")),
        "tfstate" => tfstate(dir),
        "fanout" => fanout(dir),
        "sharedconfig" => shared_config(dir),
        "names" => long_names(dir, 20_000, |i| format!("{}{i}", "n".repeat(50_000)), &short()),
        "hitslinks" => hits_links(dir),
        "hitsonetarget" => hits_one_target(dir),
        "linkchain" => link_chain(dir),
        "samepath" => same_path(dir),
        "listed" => listed(dir, 60_000, 1),
        "listedmany" => listed(dir, 20_000, 2_000),
        "threads" => one_layer(dir, |w| {
            w.write_all(&file("a.txt", format!("{}\n", "x".repeat(19_000)).as_bytes()))?;
            w.write_all(&END)
        }),
        "cpiomany" => cpio_many(dir),
        "zipheaders" => zip_headers(dir),
        "repeated" => repeated(dir),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown hostile shape {name:?} (known: {})", SHAPES.join(", ")),
        )),
    }
}

/// A value the test canary rule matches, unique to `n`.
pub fn canary(n: u64) -> String {
    format!("CANARY_{n:012}")
}

fn short() -> Vec<u8> {
    header(b"short", b'0', 0).to_vec()
}

fn deep_name(i: usize, depth: usize) -> String {
    format!("d{i}/{}f", "a/".repeat(depth))
}

/// `len` bytes of `byte`, written in 1 MiB pieces.
fn fill(w: &mut dyn Write, byte: u8, len: u64) -> io::Result<()> {
    let chunk = vec![byte; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64);
        w.write_all(&chunk[..n as usize])?;
        left -= n;
    }
    Ok(())
}

/// A GNU long name of 1.5 GB, then the entry it names and a secret after it.
fn longname(dir: &Path) -> io::Result<PathBuf> {
    one_layer(dir, |w| {
        let size: u64 = 1_500_000_000;
        w.write_all(&header(b"././@LongLink", b'L', size))?;
        fill(w, b'n', size)?;
        w.write_all(&vec![0; padding(size)])?;
        w.write_all(&file("x", b"hidden behind the long name\n"))?;
        w.write_all(&file("after.conf", format!("key = {}\n", canary(1)).as_bytes()))?;
        w.write_all(&END)
    })
}

/// A PAX extended header whose `path` record is 2 GB long.
fn pax(dir: &Path) -> io::Result<PathBuf> {
    one_layer(dir, |w| {
        let value: u64 = 2_000_000_000;
        let prefix = format!("{} path=", value + 17);
        let size = prefix.len() as u64 + value + 1;
        w.write_all(&header(b"PaxHeader", b'x', size))?;
        w.write_all(prefix.as_bytes())?;
        fill(w, b'p', value)?;
        w.write_all(b"\n")?;
        w.write_all(&vec![0; padding(size)])?;
        w.write_all(&file("x", b"hidden\n"))?;
        w.write_all(&END)
    })
}

/// A GNU sparse entry whose one data block (holding a secret) sits at offset 2^44.
fn sparse(dir: &Path) -> io::Result<PathBuf> {
    one_layer(dir, |w| {
        w.write_all(&sparse_member(b"sparse.conf", &format!("key = {}\n", canary(2))))?;
        w.write_all(&END)
    })
}

/// One file of 200 MiB repeating one line with an AWS key id and a canary.
fn aws_lines(dir: &Path) -> io::Result<PathBuf> {
    one_layer(dir, |w| {
        let line: &[u8] = b"aws_access_key_id = AKIAZTESTFAKEEXAMPLE key = CANARY_REPEATED0001\n";
        let n = (200u64 << 20) / line.len() as u64;
        let size = n * line.len() as u64;
        w.write_all(&header(b"app/keys.txt", b'0', size))?;
        let block = line.repeat(10_000);
        let mut left = n;
        while left > 0 {
            let k = left.min(10_000);
            w.write_all(&block[..k as usize * line.len()])?;
            left -= k;
        }
        w.write_all(&vec![0; padding(size)])?;
        w.write_all(&END)
    })
}

/// A 1 MiB `created_by` holding 16,000 secrets.
fn created_by(dir: &Path) -> io::Result<PathBuf> {
    let keys: Vec<String> = (0..16_000).map(|i| format!("key={}", canary(i))).collect();
    let mut instr = format!("RUN echo {}", keys.join(" "));
    let pad = (1usize << 20).saturating_sub(instr.len());
    instr.push(' ');
    instr.push_str(&"x".repeat(pad));
    let layout = Layout::new(dir)?;
    let blob = layout.layer(Compression::Gzip, |w| {
        w.write_all(&file("a.txt", b"hi\n"))?;
        w.write_all(&END)
    })?;
    layout.image(&[blob], Some(vec![json!({"created_by": instr})]), None)
}

/// `count` entries, each named by a GNU long name `name(i)` and written as `entry`.
fn long_names(
    dir: &Path,
    count: usize,
    name: impl Fn(usize) -> String,
    entry: &[u8],
) -> io::Result<PathBuf> {
    one_layer(dir, |w| {
        for i in 0..count {
            w.write_all(&long_name(name(i).as_bytes()))?;
            w.write_all(entry)?;
        }
        w.write_all(&END)
    })
}

/// A layer file of `data` (its size known first), then the end of the archive.
fn one_file(dir: &Path, name: &str, data: &[u8]) -> io::Result<PathBuf> {
    one_layer(dir, |w| {
        w.write_all(&file(name, data))?;
        w.write_all(&END)
    })
}

/// A gzipped initramfs (cpio `newc`) of 3,000,000 one-byte members, the last holding a
/// canary: past the 100,000-member limit per nested archive.
fn cpio_many(dir: &Path) -> io::Result<PathBuf> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let member = |w: &mut dyn Write, name: &str, data: &[u8]| -> io::Result<()> {
        let mut h = b"070701".to_vec();
        for f in [1, 0o100644, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0] {
            h.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        h.extend_from_slice(name.as_bytes());
        h.push(0);
        h.resize(h.len().next_multiple_of(4), 0);
        h.extend_from_slice(data);
        h.resize(h.len().next_multiple_of(4), 0);
        w.write_all(&h)
    };
    for i in 0..3_000_000u32 {
        member(&mut gz, &format!("f/{i}"), b"x")?;
    }
    member(&mut gz, "etc/app.conf", format!("key = {}\n", canary(90)).as_bytes())?;
    member(&mut gz, "TRAILER!!!", b"")?;
    one_file(dir, "boot/initrd.img", &gz.finish()?)
}

/// A zip whose first 64 MiB are stored local headers each declaring 64 MiB of data (a
/// streaming reader reads on through the ones after it), then a real zip: the members only
/// local headers list may read twice the file's size in all.
fn zip_headers(dir: &Path) -> io::Result<PathBuf> {
    let mut header = b"PK\x03\x04".to_vec();
    header.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    header.extend_from_slice(&(64u32 << 20).to_le_bytes());
    header.extend_from_slice(&(64u32 << 20).to_le_bytes());
    header.extend_from_slice(&[5, 0, 0, 0]);
    header.extend_from_slice(b"a.txt");
    let mut zip = header.repeat((64 << 20) / header.len());
    // One stored member and its central directory, offsets from the zip's own start.
    let data = b"nothing to see here\n";
    let crc = crc32(data);
    let mut local = b"PK\x03\x04".to_vec();
    local.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    local.extend_from_slice(&crc.to_le_bytes());
    for _ in 0..2 {
        local.extend_from_slice(&(data.len() as u32).to_le_bytes());
    }
    local.extend_from_slice(&[5, 0, 0, 0]);
    local.extend_from_slice(b"b.txt");
    local.extend_from_slice(data);
    let mut central = b"PK\x01\x02".to_vec();
    central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    central.extend_from_slice(&crc.to_le_bytes());
    for _ in 0..2 {
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
    }
    central.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    central.extend_from_slice(b"b.txt");
    let mut end = b"PK\x05\x06".to_vec();
    end.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    end.extend_from_slice(&(central.len() as u32).to_le_bytes());
    end.extend_from_slice(&(local.len() as u32).to_le_bytes());
    end.extend_from_slice(&[0, 0]);
    zip.extend_from_slice(&local);
    zip.extend_from_slice(&central);
    zip.extend_from_slice(&end);
    one_file(dir, "app/x.zip", &zip)
}

/// The CRC-32 of `data` (IEEE, as zip stores it).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// 10 Terraform state files of 37,000 passwords each.
fn tfstate(dir: &Path) -> io::Result<PathBuf> {
    one_layer(dir, |w| {
        for f in 0..10u64 {
            let mut doc = String::from(r#"{"version": 4, "resources": ["#);
            for i in 0..37_000 {
                doc.push_str(&format!(r#"{{"password": "Tst{:07}Qz"}},"#, f * 37_000 + i));
            }
            doc.push_str("{}]}\n");
            w.write_all(&file(&format!("infra/{f}/terraform.tfstate"), doc.as_bytes()))?;
        }
        w.write_all(&END)
    })
}

/// Four levels of image indexes, each listing the level below 30 times.
fn fanout(dir: &Path) -> io::Result<PathBuf> {
    let layout = Layout::new(dir)?;
    let blob = layout.layer(Compression::Gzip, |w| {
        w.write_all(&file("a.txt", b"hello\n"))?;
        w.write_all(&END)
    })?;
    let (mut digest, mut size) = layout.manifest(&[blob], None, None)?;
    let mut media_type = MT_OCI_MANIFEST;
    for _ in 0..4 {
        let entries = vec![(digest.clone(), size, media_type); 30];
        (digest, size) = layout.put_index(&entries)?;
        media_type = MT_OCI_INDEX;
    }
    layout.index(&[(digest, size, MT_OCI_INDEX)])?;
    Ok(dir.to_owned())
}

/// A docker-save archive of 4,000 manifest entries sharing one config of 1 MiB.
fn shared_config(dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let layer = in_records([file("a.txt", b"hello\n"), END.to_vec()].concat());
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"padding": "p".repeat(1 << 20)}},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer)]},
    });
    let entries: Vec<_> = (0..4000)
        .map(|i| json!({"Config": "c.json", "RepoTags": [format!("t:{i}")], "Layers": ["l/layer.tar"]}))
        .collect();
    let json = |v: &serde_json::Value| serde_json::to_vec(v).map_err(io::Error::other);
    let archive = [
        file("l/layer.tar", &layer),
        file("c.json", &json(&config)?),
        file("manifest.json", &json(&serde_json::Value::Array(entries))?),
        END.to_vec(),
    ]
    .concat();
    let archive = in_records(archive);
    let path = dir.join("many.tar");
    fs::write(&path, archive)?;
    Ok(path)
}

/// A layer written by `write`, then a layer holding only the removal `marker`.
fn then_removed(
    dir: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    marker: &[u8],
) -> io::Result<PathBuf> {
    let layout = Layout::new(dir)?;
    let first = layout.layer(Compression::Gzip, write)?;
    let second = layout.layer(Compression::Gzip, |w| {
        w.write_all(&header(marker, b'0', 0))?;
        w.write_all(&END)
    })?;
    let layers: [Blob; 2] = [first, second];
    layout.image(&layers, None, None)
}

fn secret_file(name: &str, n: u64) -> Vec<u8> {
    file(name, format!("key = {}\n", canary(n)).as_bytes())
}

/// 150k files, each with its own secret, and 150k hardlinks to them; a second layer deletes
/// the originals (the links keep them).
fn hits_links(dir: &Path) -> io::Result<PathBuf> {
    then_removed(
        dir,
        |w| {
            for i in 0..150_000u64 {
                w.write_all(&secret_file(&format!("s/{i}.conf"), 10_000_000 + i))?;
            }
            for i in 0..150_000 {
                w.write_all(&link_header(
                    format!("l/{i}").as_bytes(),
                    format!("s/{i}.conf").as_bytes(),
                ))?;
            }
            w.write_all(&END)
        },
        b"s/.wh..wh..opq",
    )
}

/// 150k small files, each with its own secret, then the same files again in a second layer
/// (what `RUN chown -R` leaves): strata's content memo fills up with the first ones and must
/// stay within its memory budget.
fn repeated(dir: &Path) -> io::Result<PathBuf> {
    let files = |w: &mut dyn Write| -> io::Result<()> {
        for i in 0..150_000u64 {
            let text =
                format!("# settings of service {i:06}, kept for the run\nkey = {}\n", canary(i));
            w.write_all(&file(&format!("srv/{i}.conf"), text.as_bytes()))?;
        }
        w.write_all(&END)
    };
    let layout = Layout::new(dir)?;
    let layers: [Blob; 2] =
        [layout.layer(Compression::Gzip, files)?, layout.layer(Compression::Gzip, files)?];
    layout.image(&layers, None, None)
}

/// 150k hits (one per file) and 150k hardlinks all to one file, which a second layer deletes.
fn hits_one_target(dir: &Path) -> io::Result<PathBuf> {
    then_removed(
        dir,
        |w| {
            w.write_all(&secret_file("s.conf", 3))?;
            for i in 0..150_000u64 {
                w.write_all(&secret_file(&format!("h/{i}.conf"), 20_000_000 + i))?;
            }
            for i in 0..150_000 {
                w.write_all(&link_header(format!("l/{i}").as_bytes(), b"s.conf"))?;
            }
            w.write_all(&END)
        },
        b".wh.s.conf",
    )
}

/// One secret, then a chain of 150k hardlinks, each to the previous; a second layer deletes
/// the first.
fn link_chain(dir: &Path) -> io::Result<PathBuf> {
    then_removed(
        dir,
        |w| {
            w.write_all(&secret_file("c0", 4))?;
            for i in 1..150_000 {
                let (name, target) = (format!("c{i}"), format!("c{}", i - 1));
                w.write_all(&link_header(name.as_bytes(), target.as_bytes()))?;
            }
            w.write_all(&END)
        },
        b".wh.c0",
    )
}

/// 150k versions of one path in one layer, each with its own secret and kept alive by a
/// hardlink made right after it.
fn same_path(dir: &Path) -> io::Result<PathBuf> {
    one_layer(dir, |w| {
        for i in 0..150_000u64 {
            w.write_all(&secret_file("s.conf", 30_000_000 + i))?;
            w.write_all(&link_header(format!("l/{i}").as_bytes(), b"s.conf"))?;
        }
        w.write_all(&END)
    })
}

/// One layer of `files` secret files, listed `times` times in the manifest.
fn listed(dir: &Path, times: usize, files: u64) -> io::Result<PathBuf> {
    let layout = Layout::new(dir)?;
    let blob = layout.layer(Compression::Gzip, |w| {
        for i in 0..files {
            w.write_all(&secret_file(&format!("app/{i}.conf"), 5 + i))?;
        }
        w.write_all(&END)
    })?;
    layout.image(&vec![blob; times], None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_file(path: &Path) -> serde_json::Value {
        serde_json::from_slice(&fs::read(path).expect("read")).expect("json")
    }

    #[test]
    fn an_unknown_shape_is_refused_with_the_known_ones() {
        let dir =
            std::env::temp_dir().join(format!("imagegen-hostile-none-{}", std::process::id()));
        let e = build("nope", &dir).expect_err("unknown shape");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("longname, pax, sparse"), "{e}");
        assert!(!dir.exists());
    }

    #[test]
    fn fanout_nests_four_indexes_of_thirty() {
        let dir = std::env::temp_dir().join(format!("imagegen-hostile-fan-{}", std::process::id()));
        let root = build("fanout", &dir).expect("fanout");
        let mut doc = json_file(&root.join("index.json"));
        let mut depth = 0;
        while doc["manifests"][0]["mediaType"] == MT_OCI_INDEX {
            let digest = doc["manifests"][0]["digest"].as_str().expect("digest").to_owned();
            doc = json_file(&root.join("blobs/sha256").join(&digest[7..]));
            assert_eq!(doc["manifests"].as_array().expect("list").len(), 30);
            depth += 1;
        }
        assert_eq!(depth, 4);
        assert_eq!(doc["manifests"][0]["mediaType"], MT_OCI_MANIFEST);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
