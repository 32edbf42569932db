//! `cargo run --example corpus -- <scenario> [params] <out> [options]`: writes a named test
//! image with the deterministic generator (the `strata-imagegen` crate, `crates/imagegen`) and prints its digests as JSON.
//!
//! Scenarios:
//!
//! * `leaky-app`: small app image with secrets in a deleted `.env`, an overwritten
//!   `config.yaml`, the config Env and a build-arg history entry.
//! * `big-gzip SIZE_MB LAYERS`: SIZE_MB MiB of pseudo-random text over LAYERS layers
//!   (benchmarks); one fake AWS key per layer.
//! * `big-file TOTAL_MB FILE_MB LAYERS`: the memory benchmark's image: layer 0 holds ONE text
//!   file of FILE_MB MiB, the rest of TOTAL_MB is spread over LAYERS more layers of 4 MiB text
//!   files; every layer ends with a fake AWS key pair. Its layers are compressed in parallel.
//! * `zeros-2g`: a 2 GiB file of zeros in a gzip layer, followed by a small secret file.
//! * `evil-paths`: path traversal, absolute names, escaping symlinks, hard links, GNU long
//!   names, `./` names and an opaque directory.
//! * `multi-image`: two tagged images sharing their base layer in one archive.
//! * `multiarch`: linux/amd64 + linux/arm64/v8 index (OCI formats; see `--index`).
//! * `all`: every scenario above except the big ones, in every format, into directory `<out>`.
//! * `hostile SHAPE`: one of issue 9's hostile inputs at full size (`bench/hostile.py`'s table;
//!   see `strata_imagegen::hostile`), an OCI layout in directory `<out>`; prints the path to
//!   scan. No options.
//! * `retop IN [TAG]`: a copy of the OCI archive IN with only its top layer changed (one file
//!   `data/retop-TAG.txt` appended; TAG defaults to `retop`), for the cached-rescan benchmark.
//!   No options.
//! * `wrap oci|oci-gzip|oci-zstd|docker LAYER.tar... NAME`: an image around layer tars made
//!   elsewhere (the real-content benchmark's, tarred by GNU tar from real trees), as an OCI
//!   archive with its layers stored plain, gzip- or zstd-compressed, or a classic docker-save
//!   archive; into `<out>`, the image named NAME (`strata_imagegen::wrap`). No options.
//!
//! Options:
//!
//! * `--format docker|docker-oci|oci-dir|oci-archive` (default `docker`, `oci-archive` for
//!   `multiarch`)
//! * `--compress none|gzip|zstd`: compress the whole archive (`docker save | gzip`)
//! * `--layer-compress none|gzip|zstd`: layer blob compression (default: none for `docker`,
//!   gzip otherwise)
//! * `--index flat|nested|attest` (`multiarch`, default `attest`)
//! * `--metadata-first`: put index.json/manifest.json before the blobs
//! * `--fault F`: `truncate-layer:N`, `missing-blob:N`, `wrong-digest:N`, `wrong-diff-id:N`,
//!   `corrupt-manifest`, `corrupt-docker-manifest`, `corrupt-config`, `corrupt-index`,
//!   `omit:PATH`

use strata_imagegen as imagegen;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use imagegen::{
    Compression, Entry, Fault, Format, ImageInfo, ImageSpec, IndexLayout, Layer, MultiInfo,
    PathStyle, WriteOptions,
};

/// Obviously fake AWS access key id (AKIA + 16 chars of [A-Z2-7]).
const AWS_KEY_ID: &str = "AKIAFAKETESTKEY2Q7XZ";
/// Second fake AWS access key id (used by big-gzip / zeros-2g / evil-paths).
const AWS_KEY_ID_2: &str = "AKIAFAKESTRATA2345QZ";
/// Fake 40-char AWS secret access key.
const AWS_SECRET: &str = "Fake0nly/StrataTestSecret+9xQ2mK7vR4tLp8";
/// Fake Slack bot token.
const SLACK_TOKEN: &str = "xoxb-1234567890123-1234567890123-FAKEstrataSlackToken0000";
/// Postgres URL with an embedded password.
const POSTGRES_URL: &str = "postgres://app:FakeStrataPassw0rd@db.example.test:5432/app";

/// Format-valid GitHub classic token (`ghp_` + 30 base62 + crc32 checksum).
fn github_token() -> String {
    imagegen::checksummed_token("ghp_", "FAKEstrataTESTtoken0123456789a")
}

/// A second GitHub token (the one hidden in the overwritten config.yaml).
fn github_token_old() -> String {
    imagegen::checksummed_token("ghp_", "FAKEstrataOLDtoken9876543210zz")
}

/// Format-valid npm token (`npm_` + 30 base62 + crc32 checksum).
fn npm_token() -> String {
    imagegen::checksummed_token("npm_", "FAKEstrataNpmToken000000000000")
}

fn leaky_app() -> ImageSpec {
    let env_file = format!(
        "AWS_ACCESS_KEY_ID={AWS_KEY_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n\
         GITHUB_TOKEN={}\nDATABASE_URL={POSTGRES_URL}\n",
        github_token()
    );
    let old_config = format!(
        "log_level: debug\ndatabase:\n  host: db.example.test\ngithub:\n  token: {}\n",
        github_token_old()
    );
    let npm = npm_token();
    ImageSpec {
        layers: vec![
            Layer::new(
                "COPY app/ /app/ # buildkit",
                vec![
                    Entry::dir("app"),
                    Entry::file("app/package.json", r#"{"name":"leaky","version":"1.0.0"}"#),
                    Entry::file("app/server.js", "require('http').createServer().listen(8080);\n"),
                    Entry::file("app/config.yaml", old_config),
                ],
            ),
            Layer::new("COPY .env /app/.env # buildkit", vec![Entry::file("app/.env", env_file)]),
            Layer::new("RUN /bin/sh -c rm /app/.env # buildkit", vec![Entry::whiteout("app/.env")]),
            Layer::new(
                "COPY config.yaml /app/config.yaml # buildkit",
                vec![Entry::file(
                    "app/config.yaml",
                    "log_level: info\ndatabase:\n  host: db.example.test\n",
                )],
            ),
        ],
        empty_history: vec![
            (0, "ARG NPM_TOKEN".to_string()),
            (1, format!("RUN |1 NPM_TOKEN={npm} /bin/sh -c npm ci # buildkit")),
            (4, format!("ENV SLACK_TOKEN={SLACK_TOKEN}")),
            (4, "WORKDIR /app".to_string()),
            (4, r#"CMD ["node" "server.js"]"#.to_string()),
        ],
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            "NODE_ENV=production".to_string(),
            format!("SLACK_TOKEN={SLACK_TOKEN}"),
        ],
        labels: BTreeMap::from([(
            "org.opencontainers.image.source".to_string(),
            "https://example.test/leaky".to_string(),
        )]),
        cmd: vec!["node".to_string(), "server.js".to_string()],
        repo_tags: vec!["example.test/leaky:1".to_string()],
        build_args: BTreeMap::from([("NPM_TOKEN".to_string(), npm)]),
        ..ImageSpec::default()
    }
}

fn big_gzip(size_mb: u64, layers: u64) -> ImageSpec {
    const FILE: u64 = 4 << 20;
    let layers = layers.max(1);
    let total = size_mb << 20;
    let mut spec = ImageSpec {
        repo_tags: vec![format!("example.test/big:{size_mb}m-{layers}l")],
        ..ImageSpec::default()
    };
    for l in 0..layers {
        let mut remaining = total / layers + if l == 0 { total % layers } else { 0 };
        let dir = format!("data/layer{l:03}");
        let mut entries = vec![Entry::dir(&dir)];
        let mut n = 0u64;
        while remaining > 0 {
            let size = remaining.min(FILE);
            entries.push(Entry::Text {
                path: format!("{dir}/file-{n:05}.txt"),
                size,
                seed: l * 1_000_003 + n,
            });
            remaining -= size;
            n += 1;
        }
        entries.push(Entry::file(
            &format!("{dir}/settings.env"),
            format!("AWS_ACCESS_KEY_ID={AWS_KEY_ID_2}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"),
        ));
        spec.layers.push(Layer::new(&format!("COPY data{l} /data/layer{l:03}"), entries));
    }
    spec
}

/// The memory benchmark's image (`big-file`): layer 0 is one `file_mb` MiB text file, the rest
/// of `total_mb` goes to `layers` more layers of 4 MiB files (the first of them takes the
/// remainder); a layer left with nothing is not written.
fn big_file(total_mb: u64, file_mb: u64, layers: u64) -> ImageSpec {
    const FILE: u64 = 4 << 20;
    let big = file_mb << 20;
    let rest = (total_mb << 20).saturating_sub(big);
    let mut plans = vec![vec![("big.txt".to_string(), big)]];
    for l in 0..layers {
        let mut share = rest / layers + if l == 0 { rest % layers } else { 0 };
        let mut files = Vec::new();
        while share > 0 {
            let size = share.min(FILE);
            files.push((format!("file-{:05}.txt", files.len()), size));
            share -= size;
        }
        if !files.is_empty() {
            plans.push(files);
        }
    }
    let mut spec = ImageSpec {
        repo_tags: vec!["bench/big-file:1".to_string()],
        env: vec!["PATH=/usr/bin:/bin".to_string()],
        ..ImageSpec::default()
    };
    for (i, files) in (0u64..).zip(plans) {
        let dir = format!("data/layer{i:03}");
        let mut entries = vec![Entry::dir(&dir)];
        for (n, (name, size)) in (0u64..).zip(files) {
            entries.push(Entry::Text {
                path: format!("{dir}/{name}"),
                size,
                seed: i * 1_000_003 + n,
            });
        }
        entries.push(Entry::file(
            &format!("{dir}/settings.env"),
            format!("AWS_ACCESS_KEY_ID={AWS_KEY_ID_2}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"),
        ));
        spec.layers.push(Layer::new(&format!("COPY data{i} /data/"), entries));
    }
    spec
}

fn zeros_2g() -> ImageSpec {
    ImageSpec {
        layers: vec![Layer::new(
            "COPY data /data",
            vec![
                Entry::dir("data"),
                Entry::Zeros { path: "data/zeros.bin".to_string(), size: 2 << 30 },
                Entry::file("data/after.env", format!("AWS_ACCESS_KEY_ID={AWS_KEY_ID_2}\n")),
            ],
        )],
        repo_tags: vec!["example.test/zeros:2g".to_string()],
        ..ImageSpec::default()
    }
}

fn evil_paths() -> ImageSpec {
    let long_dir = "deep/".repeat(30);
    let secret = format!("aws_access_key_id = {AWS_KEY_ID_2}\n");
    ImageSpec {
        layers: vec![
            Layer::new(
                "ADD evil.tar /",
                vec![
                    Entry::dir("app"),
                    Entry::file("app/real", secret.clone()),
                    Entry::Hardlink { path: "app/hard".into(), target: "app/real".into() },
                    Entry::Symlink { path: "app/shadow".into(), target: "/etc/shadow".into() },
                    Entry::Symlink { path: "app/up".into(), target: "../../../..".into() },
                    Entry::RawName {
                        name: b"../../etc/evil".to_vec(),
                        data: secret.clone().into(),
                    },
                    Entry::RawName {
                        name: b"/abs/path/secret.txt".to_vec(),
                        data: secret.clone().into(),
                    },
                    Entry::RawName {
                        name: b"app/../../escape".to_vec(),
                        data: secret.clone().into(),
                    },
                    Entry::file(
                        &format!("{long_dir}token.txt"),
                        format!("token={}\n", github_token()),
                    ),
                ],
            ),
            Layer::new(
                "ADD dotslash.tar /",
                vec![
                    Entry::dir("app"),
                    Entry::Opaque { dir: "app".into() },
                    Entry::file("app/dotslash.env", secret),
                ],
            )
            .with_path_style(PathStyle::DotSlash),
        ],
        repo_tags: vec!["example.test/evil:1".to_string()],
        ..ImageSpec::default()
    }
}

fn multi_image() -> Vec<ImageSpec> {
    let first = leaky_app();
    let mut second = ImageSpec {
        layers: vec![first.layers[0].clone()],
        repo_tags: vec!["example.test/other:2".to_string(), "example.test/other:latest".into()],
        env: vec![format!("GITHUB_TOKEN={}", github_token())],
        ..ImageSpec::default()
    };
    second.layers.push(Layer::new(
        "COPY extra /extra",
        vec![Entry::file("extra/creds", format!("{AWS_KEY_ID}:{AWS_SECRET}\n"))],
    ));
    vec![first, second]
}

fn multiarch() -> Vec<ImageSpec> {
    let plat = |arch: &str, variant: Option<&str>| {
        let mut spec = leaky_app();
        spec.architecture = arch.to_string();
        spec.variant = variant.map(str::to_string);
        spec.layers[0].entries.push(Entry::file("app/arch.txt", arch));
        spec
    };
    vec![plat("amd64", None), plat("arm64", Some("v8"))]
}

struct Options {
    format: Option<Format>,
    compress: Compression,
    layer_compress: Option<Compression>,
    index: IndexLayout,
    write: WriteOptions,
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    match s {
        "none" => Ok(Compression::None),
        "gzip" | "gz" => Ok(Compression::Gzip),
        "zstd" | "zst" => Ok(Compression::Zstd),
        _ => Err(format!("unknown compression {s:?}")),
    }
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "docker" => Ok(Format::DockerLegacy),
        "docker-oci" => Ok(Format::DockerOci),
        "oci-dir" | "oci" => Ok(Format::OciDir),
        "oci-archive" => Ok(Format::OciArchive),
        _ => Err(format!("unknown format {s:?}")),
    }
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    let (name, arg) = s.split_once(':').unwrap_or((s, ""));
    let n = || arg.parse::<usize>().map_err(|_| format!("fault {name} needs a layer index"));
    Ok(match name {
        "truncate-layer" => Fault::TruncateLayer(n()?),
        "missing-blob" => Fault::MissingBlob(n()?),
        "wrong-digest" => Fault::WrongLayerDigest(n()?),
        "wrong-diff-id" => Fault::WrongDiffId(n()?),
        "corrupt-manifest" => Fault::CorruptManifestJson,
        "corrupt-docker-manifest" => Fault::CorruptDockerManifestJson,
        "corrupt-config" => Fault::CorruptConfigJson,
        "corrupt-index" => Fault::CorruptIndexJson,
        "omit" => Fault::OmitPath(arg.to_string()),
        _ => return Err(format!("unknown fault {s:?}")),
    })
}

fn parse_args(args: Vec<String>) -> Result<(Vec<String>, Options), String> {
    let mut positional = Vec::new();
    let mut opts = Options {
        format: None,
        compress: Compression::None,
        layer_compress: None,
        index: IndexLayout::NestedWithAttestation,
        write: WriteOptions::default(),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value =
            || inline.clone().or_else(|| it.next()).ok_or(format!("{key} needs a value"));
        match key.as_str() {
            "--format" => opts.format = Some(parse_format(&value()?)?),
            "--compress" => opts.compress = parse_compression(&value()?)?,
            "--layer-compress" => opts.layer_compress = Some(parse_compression(&value()?)?),
            "--index" => {
                opts.index = match value()?.as_str() {
                    "flat" => IndexLayout::Flat,
                    "nested" => IndexLayout::Nested,
                    "attest" => IndexLayout::NestedWithAttestation,
                    v => return Err(format!("unknown index layout {v:?}")),
                }
            }
            "--fault" => opts.write.fault = parse_fault(&value()?)?,
            "--metadata-first" => opts.write.metadata_first = true,
            k if k.starts_with("--") => return Err(format!("unknown option {k}")),
            _ => positional.push(arg),
        }
    }
    Ok((positional, opts))
}

fn info_json(info: &ImageInfo) -> serde_json::Value {
    serde_json::json!({
        "manifest_digest": info.manifest_digest,
        "config_digest": info.config_digest,
        "layer_digests": info.layer_digests,
        "layer_sizes": info.layer_sizes,
        "diff_ids": info.diff_ids,
    })
}

fn multi_json(info: &MultiInfo) -> serde_json::Value {
    serde_json::json!({
        "index_digest": info.index_digest,
        "images": info.images.iter().map(info_json).collect::<Vec<_>>(),
        "attestation_digests": info.attestation_digests,
    })
}

/// Writes `specs` (one image, several images, or platforms when `multi`) to `out`, applying
/// layer and whole-archive compression.
fn write(
    mut specs: Vec<ImageSpec>,
    multi: bool,
    format: Format,
    opts: &Options,
    out: &Path,
) -> io::Result<serde_json::Value> {
    let layer_c = opts.layer_compress.unwrap_or(if format == Format::DockerLegacy {
        Compression::None
    } else {
        Compression::Gzip
    });
    for spec in &mut specs {
        for layer in &mut spec.layers {
            layer.compression = layer_c;
        }
    }
    if opts.compress != Compression::None && !format.is_archive() {
        return Err(io::Error::other("--compress needs an archive format"));
    }
    let target: PathBuf = if opts.compress == Compression::None {
        out.to_path_buf()
    } else {
        let mut name = out.as_os_str().to_owned();
        name.push(".uncompressed-tmp");
        PathBuf::from(name)
    };
    let result = if multi {
        imagegen::write_multiplatform_opts(&specs, opts.index, format, &target, &opts.write)
            .map(|i| multi_json(&i))
    } else {
        imagegen::write_images_opts(&specs, format, &target, &opts.write)
            .map(|v| serde_json::Value::Array(v.iter().map(info_json).collect()))
    }?;
    if target != out {
        imagegen::compress_whole(&target, out, opts.compress)?;
        std::fs::remove_file(&target)?;
    }
    Ok(result)
}

fn scenario(name: &str, params: &[String]) -> Result<(Vec<ImageSpec>, bool), String> {
    let num = |i: usize| -> Result<u64, String> {
        params
            .get(i)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("{name} needs numeric parameter {}", i + 1))
    };
    let expect = |n: usize| {
        if params.len() == n { Ok(()) } else { Err(format!("{name} takes {n} parameter(s)")) }
    };
    Ok(match name {
        "leaky-app" => (expect(0).map(|_| vec![leaky_app()])?, false),
        "big-gzip" => {
            expect(2)?;
            (vec![big_gzip(num(0)?, num(1)?)], false)
        }
        "big-file" => {
            expect(3)?;
            (vec![big_file(num(0)?, num(1)?, num(2)?)], false)
        }
        "zeros-2g" => (expect(0).map(|_| vec![zeros_2g()])?, false),
        "evil-paths" => (expect(0).map(|_| vec![evil_paths()])?, false),
        "multi-image" => (expect(0).map(|_| multi_image())?, false),
        "multiarch" => (expect(0).map(|_| multiarch())?, true),
        _ => return Err(format!("unknown scenario {name:?}")),
    })
}

/// `all`: every small scenario in every format.
fn write_all(dir: &Path, opts: &Options) -> io::Result<serde_json::Value> {
    std::fs::create_dir_all(dir)?;
    let formats = [
        ("docker.tar", Format::DockerLegacy),
        ("docker-oci.tar", Format::DockerOci),
        ("oci", Format::OciDir),
        ("oci.tar", Format::OciArchive),
    ];
    let mut summary = serde_json::Map::new();
    for name in ["leaky-app", "evil-paths", "multi-image", "multiarch"] {
        let (specs, multi) = scenario(name, &[]).map_err(io::Error::other)?;
        for (suffix, format) in formats {
            if multi && format == Format::DockerLegacy {
                continue;
            }
            let file = format!("{name}.{suffix}");
            let value = write(specs.clone(), multi, format, opts, &dir.join(&file))?;
            summary.insert(file, value);
        }
    }
    Ok(serde_json::Value::Object(summary))
}

fn run() -> Result<(), String> {
    let (positional, opts) = parse_args(std::env::args().skip(1).collect())?;
    let (name, rest) = positional.split_first().ok_or_else(usage)?;
    let (out, params) = rest.split_last().ok_or_else(usage)?;
    let out = Path::new(out);
    let value = if name == "hostile" || name == "retop" || name == "wrap" {
        if opts.format.is_some()
            || opts.compress != Compression::None
            || opts.layer_compress.is_some()
            || opts.write != WriteOptions::default()
        {
            return Err(format!("{name} takes no options"));
        }
        match (name.as_str(), params) {
            ("hostile", [shape]) => imagegen::hostile::build(shape, out)
                .map(|target| serde_json::json!({ "target": target })),
            ("retop", [src] | [src, _]) => {
                let tag = params.get(1).map_or("retop", String::as_str);
                imagegen::retop::retop(Path::new(src), out, tag).map(|r| {
                    serde_json::json!({
                        "manifest_digest": r.manifest_digest,
                        "config_digest": r.config_digest,
                        "layer_digest": r.layer_digest,
                        "diff_id": r.diff_id,
                    })
                })
            }
            ("wrap", [format, rest @ ..]) if rest.len() >= 2 => {
                let (image_name, layers) = rest.split_last().ok_or_else(usage)?;
                let layers: Vec<PathBuf> = layers.iter().map(PathBuf::from).collect();
                let compression = match format.as_str() {
                    "oci" | "docker" => Compression::None,
                    "oci-gzip" => Compression::Gzip,
                    "oci-zstd" => Compression::Zstd,
                    _ => return Err(usage()),
                };
                if format == "docker" {
                    imagegen::wrap::docker_archive(out, &layers, image_name)
                        .map(|id| serde_json::json!({ "config_digest": id }))
                } else {
                    imagegen::wrap::oci_archive(out, compression, &layers, image_name)
                        .map(|d| serde_json::json!({ "manifest_digest": d }))
                }
            }
            _ => return Err(usage()),
        }
    } else if name == "all" {
        if !params.is_empty() {
            return Err(usage());
        }
        write_all(out, &opts)
    } else {
        let (specs, multi) = scenario(name, params)?;
        let default = if multi { Format::OciArchive } else { Format::DockerLegacy };
        write(specs, multi, opts.format.unwrap_or(default), &opts, out)
    }
    .map_err(|e| format!("writing {}: {e}", out.display()))?;
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    #[expect(clippy::print_stdout, reason = "the digests JSON is this tool's output")]
    {
        println!("{text}");
    }
    Ok(())
}

fn usage() -> String {
    "usage: corpus <leaky-app|big-gzip SIZE_MB LAYERS|big-file TOTAL_MB FILE_MB LAYERS|zeros-2g|\
     evil-paths|multi-image|multiarch|all> <out> [--format docker|docker-oci|oci-dir|oci-archive] [--compress none|gzip|zstd] \
     [--layer-compress none|gzip|zstd] [--index flat|nested|attest] [--metadata-first] \
     [--fault F]\n       corpus hostile SHAPE <out>\n       corpus retop IN [TAG] <out>\n       \
     corpus wrap oci|oci-gzip|oci-zstd|docker LAYER.tar... NAME <out>"
        .to_string()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corpus: {e}");
            ExitCode::FAILURE
        }
    }
}
