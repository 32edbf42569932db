//! The JSON envelope every strata JSON document shares: `version` (of the
//! contract), `tool` (name and version of the strata that wrote it), then
//! the document's own fields; written pretty, with a final newline. `scan`,
//! `layers` and `merge` write through it, so the three cannot drift apart.

use std::io::{self, Write};

use serde::Serialize;

/// The contract version this strata writes and `merge` reads.
pub const VERSION: u32 = 1;

/// The `tool` object: who wrote the document.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Tool {
    /// Always `strata`.
    pub name: &'static str,
    /// This build's package version.
    pub version: &'static str,
}

/// This strata.
pub const TOOL: Tool = Tool { name: "strata", version: env!("CARGO_PKG_VERSION") };

/// A document: the envelope's fields first, then `body`'s (a struct or map
/// that serializes to an object without `version` or `tool` keys).
#[derive(Serialize)]
struct Envelope<'b, B: Serialize> {
    version: u32,
    tool: Tool,
    #[serde(flatten)]
    body: &'b B,
}

/// Writes `body` inside the envelope, as pretty JSON and a newline.
///
/// # Errors
/// When writing fails, or `body` does not serialize to an object.
pub fn write(out: &mut dyn Write, body: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &Envelope { version: VERSION, tool: TOOL, body })?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_fields_come_first_then_the_body_in_order() {
        #[derive(Serialize)]
        struct Body {
            images: [u8; 0],
            diagnostics: [u8; 0],
        }
        let mut out = Vec::new();
        write(&mut out, &Body { images: [], diagnostics: [] }).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("}\n"), "{text}");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["version"], VERSION);
        assert_eq!(doc["tool"]["name"], "strata");
        assert_eq!(doc["tool"]["version"], env!("CARGO_PKG_VERSION"));
        let keys: Vec<usize> = ["\"version\"", "\"tool\"", "\"images\"", "\"diagnostics\""]
            .map(|k| text.find(k).unwrap())
            .to_vec();
        assert!(keys.is_sorted(), "{text}");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_an_error() {
        assert!(write(&mut Vec::new(), &[1, 2]).is_err());
    }
}
