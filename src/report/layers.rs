//! The printed forms of `strata layers`: each image's layer timeline
//! (digest, size, file counts, instruction) as a table for people, or as
//! the `images` part of the JSON contract inside the JSON envelope.
//! The records arrive redacted ([`super::redaction::redact_records`]).

use std::io::{self, Write};

use serde::Serialize;

use crate::diagnostics::Diagnostic;
use crate::escape::escape_for_terminal;
use crate::timeline::ImageRecord;

/// Output format of `layers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayersFormat {
    /// A table for people.
    Human,
    /// `images` and `diagnostics` of the JSON contract, in the envelope.
    Json,
}

/// Writes the layer timelines of `images` in `format`; JSON also carries
/// the run's `diagnostics`.
///
/// # Errors
/// When writing fails.
pub fn write(
    out: &mut dyn Write,
    format: LayersFormat,
    images: &[ImageRecord],
    diagnostics: &[Diagnostic],
) -> io::Result<()> {
    match format {
        LayersFormat::Human => write_human(out, images),
        LayersFormat::Json => {
            #[derive(Serialize)]
            struct Body<'a> {
                images: &'a [ImageRecord],
                diagnostics: &'a [Diagnostic],
            }
            super::envelope::write(out, &Body { images, diagnostics })
        }
    }
}

/// Writes the human timeline: one line per image, one per layer.
fn write_human(out: &mut dyn Write, records: &[ImageRecord]) -> io::Result<()> {
    for r in records {
        let name = r.references.first().map(String::as_str).unwrap_or(&r.target);
        writeln!(
            out,
            "{}  {}  {}",
            escape_for_terminal(name),
            escape_for_terminal(r.platform.as_deref().unwrap_or("-")),
            escape_for_terminal(&r.digest)
        )?;
        for l in &r.layers {
            let counts = l
                .files
                .map(|f| format!("+{} ~{} -{}", f.added, f.changed, f.deleted))
                .unwrap_or_default();
            writeln!(
                out,
                "  [{:>2}] {}  {:>10}  {:<18} {}",
                l.index,
                escape_for_terminal(short_digest(&l.digest)),
                human_size(l.size),
                counts,
                escape_for_terminal(l.created_by.as_deref().unwrap_or("-")),
            )?;
        }
    }
    Ok(())
}

/// `sha256:0123456789ab` (algorithm and 12 hex digits).
pub fn short_digest(d: &str) -> &str {
    let end = d.find(':').map_or(12, |i| i + 13);
    d.get(..end).unwrap_or(d)
}

/// Bytes in binary units, one decimal.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}
