//! `strata layers`: each image's layer timeline (digest, size, instruction,
//! files added, changed and deleted), instructions redacted unless
//! `--show-secrets`.

use std::io::{self, Write};
use std::sync::Arc;

use anyhow::Result;

use super::args::{LayersArgs, TimelineFormat};
use super::{Exit, load_signatures, open_images, scrubber};
use crate::diagnostics::Diagnostics;
use crate::timeline;

/// Runs `strata layers`.
///
/// # Errors
/// An unreadable target or unwritable output.
pub(super) fn run(args: LayersArgs) -> Result<Exit> {
    // Instructions can carry build-arg secrets: redact what the detectors find.
    let scanner = match args.show_secrets {
        true => None,
        false => Some(Arc::new(crate::scan::Scanner::new(load_signatures(&[])?)?)),
    };
    let mut diag = Diagnostics::new(true);
    if let Some(s) = &scanner {
        diag = diag.with_scrubber(scrubber(s));
    }
    let sources = crate::sources::SourceOptions {
        insecure: args.insecure,
        storage_root: args.storage_root.clone(),
        read: crate::image::ReadOptions {
            verify_diff_ids: !args.no_diff_id_check,
            index_names: true,
        },
    };
    let images = open_images(&args.target, args.platform.as_ref(), &sources, &diag)?;
    let mut records: Vec<_> = images.iter().map(|i| timeline::describe(i, &diag)).collect();
    if let Some(scanner) = &scanner {
        for (image, record) in images.iter().zip(&mut records) {
            let hits = crate::scan::config::scan(scanner, &image.config);
            let redactor = crate::redact::TextRedactor::new(
                crate::redact::Redactor::new(hits.iter().map(|h| &h.hit.secret)),
                diag.scrubber(),
            );
            for layer in &mut record.layers {
                if let Some(cb) = &mut layer.created_by {
                    *cb = redactor.apply(cb).into_owned();
                }
            }
            for r in &mut record.references {
                *r = redactor.apply(r).into_owned();
            }
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        TimelineFormat::Human => timeline::write_human(&mut out, &records)?,
        TimelineFormat::Json => {
            let doc = serde_json::json!({
                "version": 1,
                "tool": {"name": "strata", "version": env!("CARGO_PKG_VERSION")},
                "images": records,
                "diagnostics": diag.snapshot(),
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if diag.has_errors() { Exit::Error } else { Exit::Clean })
}
