//! What the pipeline promises for one image, checked on images written by
//! the corpus generator: each hit's status and removal layer come from the
//! later layers; findings carry their layer, digest and instruction; path
//! context caps severity only when asked; config findings come with the
//! layers'; and the result does not depend on the number of threads, on the
//! layer cache, or (within the per-run budget) on which worker saw a file.

use std::path::Path;

use crate::cache::LayerCache;
use crate::diagnostics::Diagnostics;
use crate::finding::{Finding, Severity, Status};
use crate::image::Image;
use crate::image::store::BlobStore;
use crate::progress::Progress;
use crate::scan::Scanner;
use crate::scan::content::Limits;

use strata_imagegen as imagegen;

use imagegen::{Entry, Format, ImageSpec, Layer};

/// A fake GitHub token with a valid checksum, distinct per (alphanumeric,
/// at most 26 bytes) `tag`; the filler keeps it from looking like a mask.
pub(crate) fn token(tag: &str) -> String {
    const FILL: &str = "Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Bg0TyQa";
    imagegen::checksummed_token("ghp_", &format!("FAKE{tag}{FILL}")[..30])
}

pub(crate) fn scanner() -> Scanner {
    Scanner::new(crate::signatures::builtin().unwrap()).unwrap()
}

/// Layer 0 adds three files with tokens; layer 1 deletes one; layer 2
/// overwrites another; the config's env holds a fourth token.
pub(crate) fn layered_spec() -> ImageSpec {
    ImageSpec {
        layers: vec![
            Layer::new(
                "COPY app /app",
                vec![
                    Entry::dir("app"),
                    Entry::file("app/.env", format!("GITHUB_TOKEN={}\n", token("del"))),
                    Entry::file("app/keep.txt", format!("x\ntoken: {}\n", token("over"))),
                    Entry::file("usr/share/doc/tool/README", format!("e.g. {}\n", token("doc"))),
                ],
            ),
            Layer::new("RUN rm /app/.env", vec![Entry::whiteout("app/.env")]),
            Layer::new("COPY keep.txt /app/", vec![Entry::file("app/keep.txt", "nothing\n")]),
        ],
        env: vec![format!("GH_TOKEN={}", token("env"))],
        repo_tags: vec!["example.test/pipeline:1".into()],
        ..ImageSpec::default()
    }
}

pub(crate) fn write(spec: &ImageSpec, dir: &Path) -> std::path::PathBuf {
    let out = dir.join("image");
    imagegen::write_image(spec, Format::OciDir, &out).unwrap();
    out
}

fn open(dir: &Path) -> Image {
    let diag = Diagnostics::new(false);
    let store = BlobStore::dir(dir, "img");
    let mut images =
        crate::image::layout::images("img", store, None, Default::default(), &diag).unwrap();
    assert_eq!(images.len(), 1);
    images.remove(0)
}

/// Scans `image` on a pool of `threads`, with an optional cache directory.
fn scan(
    image: &Image,
    scanner: &Scanner,
    threads: usize,
    limits: Limits,
    use_context: bool,
    cache_dir: Option<&Path>,
) -> (Vec<Finding>, Diagnostics) {
    let diag = Diagnostics::new(false);
    let cache = LayerCache::new(cache_dir, scanner, limits).unwrap();
    let progress = Progress::new(true);
    let run = super::Options {
        scanner,
        limits,
        use_context,
        cache: &cache,
        progress: &progress,
        diag: &diag,
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let mut found = pool.install(|| super::scan_image(image, &run)).findings;
    crate::report::order::sort(&mut found);
    (found, diag)
}

/// What a finding says, without the secret itself.
type Row = (String, Option<usize>, Status, Option<usize>, Severity, Option<u64>, String);

fn rows(found: &[Finding]) -> Vec<Row> {
    found
        .iter()
        .map(|f| {
            (
                f.path.clone().or_else(|| f.location.clone()).unwrap_or_default(),
                f.layer_index,
                f.status,
                f.removed_in_layer,
                f.severity,
                f.line,
                f.secret.sha256(),
            )
        })
        .collect()
}

#[test]
fn statuses_come_from_the_later_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let image = open(&write(&layered_spec(), tmp.path()));
    let scanner = scanner();
    let (found, diag) = scan(&image, &scanner, 1, Limits::default(), true, None);
    assert!(!diag.has_errors(), "{:?}", diag.snapshot());
    type Place<'a> = (&'a str, Option<usize>, Status, Option<usize>, Severity);
    let got: Vec<Place> = found
        .iter()
        .map(|f| {
            let place = f.path.as_deref().or(f.location.as_deref()).unwrap_or("");
            (place, f.layer_index, f.status, f.removed_in_layer, f.severity)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/app/.env", Some(0), Status::Deleted, Some(1), Severity::Critical),
            ("/app/keep.txt", Some(0), Status::Overwritten, Some(2), Severity::Critical),
            ("/usr/share/doc/tool/README", Some(0), Status::Present, None, Severity::Info),
            ("config.env", None, Status::Config, None, Severity::Critical),
        ]
    );
    let layer0 = &image.layers()[0];
    for f in &found[..3] {
        assert_eq!(f.layer_digest.as_deref(), Some(layer0.digest()));
        assert_eq!(f.created_by.as_deref(), Some("COPY app /app"));
        assert_eq!(f.target, "img");
        assert_eq!(f.image_digest, image.digest());
    }
    assert_eq!(found[1].line, Some(2), "1-based line of the secret");
    assert_eq!(found[1].secret.expose(), token("over").as_bytes());
    assert_eq!(found[3].line, None, "config findings have no line");
    let doc = &found[2];
    assert!(doc.context.is_some() && doc.rule_severity == Severity::Critical);
}

#[test]
fn path_context_caps_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let image = open(&write(&layered_spec(), tmp.path()));
    let (found, _) = scan(&image, &scanner(), 1, Limits::default(), false, None);
    assert!(found.iter().all(|f| f.severity == Severity::Critical && f.context.is_none()));
}

#[test]
fn threads_and_cache_do_not_change_the_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let image = open(&write(&layered_spec(), tmp.path()));
    let scanner = scanner();
    let limits = Limits::default();
    let (one, _) = scan(&image, &scanner, 1, limits, true, None);
    let (three, _) = scan(&image, &scanner, 3, limits, true, None);
    assert_eq!(rows(&one), rows(&three));
    let cache = tmp.path().join("cache");
    let (cold, _) = scan(&image, &scanner, 2, limits, true, Some(&cache));
    assert!(std::fs::read_dir(&cache).unwrap().next().is_some(), "the cold run filled the cache");
    let (warm, _) = scan(&image, &scanner, 2, limits, true, Some(&cache));
    assert_eq!(rows(&one), rows(&cold));
    assert_eq!(rows(&one), rows(&warm));
}

/// Over the per-run budget, a layer keeps its first hits in path order,
/// whichever worker scanned which file, and says how many it dropped.
#[test]
fn run_budget_keeps_the_first_hits_in_path_order_on_any_thread_count() {
    let files: Vec<Entry> = (0..40)
        .map(|i| {
            Entry::file(
                &format!("srv/f{:02}.env", (i * 17) % 40),
                format!("T={}\n", token(&format!("b{i}"))),
            )
        })
        .collect();
    let spec =
        ImageSpec { layers: vec![Layer::new("COPY srv /srv", files)], ..ImageSpec::default() };
    let tmp = tempfile::tempdir().unwrap();
    let image = open(&write(&spec, tmp.path()));
    let scanner = scanner();
    let limits = Limits { max_findings: 7, ..Limits::default() };
    let mut seen = Vec::new();
    for threads in [1, 2, 4] {
        let (found, diag) = scan(&image, &scanner, threads, limits, true, None);
        let paths: Vec<String> = found.iter().filter_map(|f| f.path.clone()).collect();
        let want: Vec<String> = (0..7).map(|i| format!("/srv/f{i:02}.env")).collect();
        assert_eq!(paths, want, "{threads} threads");
        let notes: Vec<String> = diag.snapshot().into_iter().map(|d| d.message).collect();
        assert!(notes.iter().any(|m| m.contains("33 more findings not listed")), "{notes:?}");
        seen.push(rows(&found));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
}
