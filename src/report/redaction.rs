//! Redaction of the instructions and tags a report prints, written once
//! for `scan` and `layers`: both redact image records through
//! [`redact_records`], and `scan` also each finding's copy of its
//! instruction ([`redact_instructions`]), clipped to
//! [`MAX_FINDING_INSTRUCTION`].
//!
//! Instructions and tags are redacted in place because no fingerprint or
//! baseline uses them; paths and locations stay raw in the findings and are
//! redacted when a report prints them ([`super::Report::redact`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::finding::Finding;
use crate::redact::TextRedactor;
use crate::timeline::ImageRecord;

/// Longest instruction a finding repeats, in bytes: a megabyte `RUN` line
/// with a hundred findings would otherwise print a hundred megabytes. The
/// image's layer list keeps the whole (redacted) instruction.
pub const MAX_FINDING_INSTRUCTION: usize = 4096;

/// `text` cut to [`MAX_FINDING_INSTRUCTION`] bytes (at a char boundary),
/// with a marker saying how long it was.
fn clip_instruction(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_FINDING_INSTRUCTION {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_FINDING_INSTRUCTION;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… [{} bytes in all]", &text[..end], text.len()))
}

/// Redacts every layer's instruction and every tag of `images` in place.
pub fn redact_records(redactor: &TextRedactor, images: &mut [ImageRecord]) {
    for image in images {
        for layer in &mut image.layers {
            if let Some(cb) = &mut layer.created_by
                && let Cow::Owned(new) = redactor.apply(cb)
            {
                *cb = new;
            }
        }
        for r in &mut image.references {
            if let Cow::Owned(new) = redactor.apply(r) {
                *r = new;
            }
        }
    }
}

/// Redacts and clips each finding's instruction in place, once per shared
/// instruction (findings of one layer share one `Arc`), not once per finding.
pub fn redact_instructions(redactor: &TextRedactor, findings: &mut [Finding]) {
    let mut done: HashMap<*const u8, Arc<str>> = HashMap::new();
    for f in findings {
        if let Some(cb) = &f.created_by {
            let key = Arc::as_ptr(cb).cast::<u8>();
            let redacted = done
                .entry(key)
                .or_insert_with(|| Arc::from(clip_instruction(&redactor.apply(cb)).as_ref()));
            f.created_by = Some(Arc::clone(redacted));
        }
    }
}
