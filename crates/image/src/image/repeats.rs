//! Blobs listed more than once in one image's layer list.
//!
//! A manifest may list the same layer blob at several positions (an
//! identical `COPY` step repeated, old Docker's empty layers, or a crafted
//! image listing one blob 60,000 times). Its bytes are the same at every
//! position, so it is walked and scanned once, at its last listing: that
//! listing is the one the final image shows, and the status of what it holds
//! is resolved from there on. The earlier listings still apply their
//! whiteouts and writes to the layers below them (see
//! [`super::whiteout::Timeline::with_repeats`]).

use std::collections::HashMap;

use super::Image;

/// Per layer position, the position of the last listing of the same blob
/// (the position itself when it is the last or only one). Blobs are the
/// same when they are the same member of the image's store, which is read
/// by name: the same name gives the same bytes.
pub fn last_listings(image: &Image) -> Vec<usize> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(image.layers.len());
    for (i, l) in image.layers.iter().enumerate() {
        last.insert(l.member.as_str(), i);
    }
    image
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| last.get(l.member.as_str()).copied().unwrap_or(i))
        .collect()
}
