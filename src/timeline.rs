//! The image records reports show: for each image, every layer with its
//! digest, size, instruction and (for `strata layers`) how many files it
//! added, changed and deleted. Printing them is `report`'s
//! (`report::layers`).

use rayon::prelude::*;
use serde::Serialize;

use crate::cache::LayerRead;
use crate::diagnostics::Diagnostics;
use crate::image::layer::{self, Flow, WalkSummary};
use crate::image::whiteout::Timeline;
use crate::image::{Image, Layer};

/// The `images` part of the JSON contract, one entry per image.
#[derive(Debug, Serialize)]
pub struct ImageRecord {
    /// The target as given.
    pub target: String,
    /// Tags recorded in the archive (an addition to the contract).
    pub references: Vec<String>,
    /// Manifest digest.
    pub digest: String,
    /// `os/arch[/variant]`.
    pub platform: Option<String>,
    /// Layers in manifest order.
    pub layers: Vec<LayerRecord>,
}

/// One layer of [`ImageRecord`].
#[derive(Debug, Serialize)]
pub struct LayerRecord {
    /// 0-based manifest position.
    pub index: usize,
    /// Blob digest.
    pub digest: String,
    /// Uncompressed digest from the config.
    pub diff_id: Option<String>,
    /// The instruction that produced the layer.
    pub created_by: Option<String>,
    /// Stored (compressed) size in bytes.
    pub size: u64,
    /// How much of the layer the scan read; present only in `strata scan`
    /// reports (`strata layers` does not scan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<LayerRead>,
    /// Counts of file changes; present only in `strata layers` output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FileCounts>,
}

/// Per-layer change counts.
#[derive(Debug, Serialize, Clone, Copy)]
pub struct FileCounts {
    /// Files new to the image.
    pub added: usize,
    /// Files that replaced a lower layer's file.
    pub changed: usize,
    /// Lower layers' files removed.
    pub deleted: usize,
}

impl ImageRecord {
    /// The record of an image without file counts.
    pub fn new(image: &Image) -> Self {
        ImageRecord {
            target: image.target().to_owned(),
            references: image.references().to_vec(),
            digest: image.digest().to_owned(),
            platform: image.platform().map(str::to_owned),
            layers: image.layers().iter().map(LayerRecord::new).collect(),
        }
    }

    /// The record of a scanned image: `reads[i]` says how much of layer `i`
    /// the scan read (a layer it has no word for was not read).
    pub fn scanned(image: &Image, reads: &[LayerRead]) -> Self {
        let mut record = ImageRecord::new(image);
        for (i, layer) in record.layers.iter_mut().enumerate() {
            layer.read = Some(reads.get(i).copied().unwrap_or_default());
        }
        record
    }
}

impl LayerRecord {
    fn new(layer: &Layer) -> Self {
        LayerRecord {
            index: layer.index,
            digest: layer.digest().to_owned(),
            diff_id: layer.diff_id().map(str::to_owned),
            created_by: layer.created_by.clone(),
            size: layer.size(),
            read: None,
            files: None,
        }
    }
}

/// Walks every layer of `image` in parallel (reading every byte, checking
/// digests) and returns the image's record with file counts.
pub fn describe(image: &Image, diag: &Diagnostics) -> ImageRecord {
    // A blob listed more than once is walked once, at its last listing.
    let last = crate::image::repeats::last_listings(image);
    let summaries: Vec<WalkSummary> = image
        .layers()
        .par_iter()
        .enumerate()
        .map(|(i, l)| {
            if last[i] != i {
                return WalkSummary::default();
            }
            let (summary, err) = layer::walk(image, l, diag, &mut |_, _| Ok(Flow::Continue));
            for unread in &summary.unread {
                diag.error(format!("{}: layer {}: {unread}", image.target(), l.index));
            }
            if let Some(e) = err {
                diag.error(e.to_string());
            }
            summary
        })
        .collect();
    let dropped = summaries.iter().any(|s| s.index.names_dropped());
    let timeline = Timeline::with_repeats(summaries.into_iter().map(|s| s.index).collect(), last);
    let mut record = ImageRecord::new(image);
    if dropped {
        // Counting needs every name; memory stays bounded instead.
        diag.warn(format!(
            "{}: a layer holds more than {} MiB of path names: file counts are not shown",
            image.target(),
            crate::image::whiteout::MAX_NAMED_BYTES >> 20
        ));
        return record;
    }
    for (layer, stats) in record.layers.iter_mut().zip(timeline.stats()) {
        layer.files =
            Some(FileCounts { added: stats.added, changed: stats.changed, deleted: stats.deleted });
    }
    record
}
