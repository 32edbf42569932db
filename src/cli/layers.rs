//! `strata layers`: opens each image of the target, gathers its layer
//! timeline (digest, size, instruction, files added, changed and deleted),
//! redacts instructions unless `--show-secrets`, and hands the records to
//! [`crate::report::layers`] to print.

use std::io::{self, Write};
use std::sync::Arc;

use anyhow::Result;

use super::args::LayersArgs;
use super::{Exit, load_signatures, open_images, scrubber};
use crate::diagnostics::Diagnostics;
use crate::redact::{Redactor, TextRedactor};
use crate::report::redaction::redact_records;
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
            // The config's secrets, and whatever else the detectors recognise.
            let hits = crate::scan::config::scan(scanner, image);
            let redactor = TextRedactor::new(
                Redactor::new(hits.iter().map(|h| &h.hit.secret)),
                diag.scrubber(),
            );
            redact_records(&redactor, std::slice::from_mut(record));
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    crate::report::layers::write(&mut out, args.format.into(), &records, &diag.snapshot())?;
    out.flush()?;
    Ok(if diag.has_errors() { Exit::Error } else { Exit::Clean })
}
