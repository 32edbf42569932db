//! Content targets: a file that may be a nested archive (zip, tar, gzip)
//! through the content scanner, and a whole `scan` of a small docker-save
//! or OCI archive rendered in every report format. Both check that nothing
//! they print holds a found secret whole.

use super::{put, scratch};
use crate::diagnostics::Diagnostics;
use crate::finding::Secret;
use crate::progress::Progress;
use crate::report::{Format, RenderOptions};
use crate::scan::Scanner;
use crate::scan::content::{ContentScanner, Limits};
use crate::session::{self, ScanOptions};

/// Secrets shorter than this can occur in printed text by chance (a path
/// component, a rule name), so leaks are only asserted for longer ones.
const LEAK_MIN: usize = 12;

/// Panics when `text` holds any of `secrets` whole.
fn assert_no_leak<'a>(text: &str, secrets: impl IntoIterator<Item = &'a Secret>, what: &str) {
    for s in secrets {
        if let Ok(raw) = std::str::from_utf8(s.expose())
            && raw.len() >= LEAK_MIN
        {
            assert!(!text.contains(raw), "{what} prints a found secret whole");
        }
    }
}

/// One layer file (`/app/lib/app.jar`) through the content scanner, with
/// the limits a scan uses.
pub fn nested_archive(data: &[u8], scanner: &Scanner) {
    let mut cs = ContentScanner::new(scanner, Limits::default());
    let Ok(hits) = cs.scan_file("/app/lib/app.jar", &mut &data[..]) else {
        panic!("reading from memory cannot fail, so scan_file must not either");
    };
    for h in &hits {
        assert!(h.inner_path.as_deref() != Some(""), "an empty inner path");
    }
    let notes = cs.notes.join("\n");
    assert_no_leak(&notes, hits.iter().map(|h| &h.hit.secret), "a nested-archive note");
}

/// `strata scan` of the bytes as an archive file: open, walk, detect,
/// filter, and render in every report format without `--show-secrets`.
pub fn scan_archive(data: &[u8], scanner: &Scanner) {
    let dir = scratch();
    put(dir.path(), "image.tar", data);
    let target = dir.path().join("image.tar").display().to_string();
    let options = ScanOptions {
        platform: None,
        statuses: Vec::new(),
        allowlist: Default::default(),
        baseline: None,
        no_path_context: false,
        progress: Progress::hidden(),
        show_secrets: false,
        cache_dir: None,
        sources: Default::default(),
        registries: Default::default(),
        k8s: None,
    };
    let diag = Diagnostics::new(false);
    let Ok(report) = session::run(&[target], scanner, &options, &diag) else { return };
    let secrets: Vec<&Secret> = report.findings.iter().map(|f| &f.secret).collect();
    let opts = RenderOptions::new(false, false);
    for format in Format::ALL {
        let mut out = Vec::new();
        report.write(format, opts.clone(), &mut out).expect("writing to memory cannot fail");
        let text = String::from_utf8_lossy(&out);
        assert_no_leak(&text, secrets.iter().copied(), &format!("the {format:?} report"));
    }
    let messages: Vec<String> = diag.snapshot().into_iter().map(|d| d.message).collect();
    assert_no_leak(&messages.join("\n"), secrets.iter().copied(), "a diagnostic");
}
