//! `docker-daemon:IMAGE` and `docker-container:ID`: the engine's `docker
//! save` export scanned while it streams, and a container's writable layer
//! rebuilt from `/changes` and `/archive` as one more layer on top.
//!
//! Each layer member of the export is scanned as it arrives (the scan of a
//! layer does not depend on its position); once the stream ends, the
//! metadata it carried places the scans in the image, statuses are
//! resolved and findings built, exactly as for a `docker save` archive.
//! Nothing is written to disk, and memory holds only the metadata
//! documents and each layer's path index.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::{Context, Error};
use crate::docker::{Change, ContainerInspect, Engine, ImageInspect};
use crate::image::blob::MemorySource;
use crate::image::save_stream::{self, Streamed};
use crate::image::store::BlobStore;
use crate::image::{Image, Layer, layout};
use crate::pipeline::{self, ImageScan, LayerScan};

/// Container changes named one by one in the diagnostics; the rest are counted.
const MAX_CHANGE_NOTES: usize = 200;

/// A reader that hashes what passes through it.
struct Hashing<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// One scanned layer member: the scan, and the SHA-256 of its bytes when
/// the member name does not already state it.
struct Scanned {
    scan: LayerScan,
    sha256: Option<String>,
    /// Bytes of the member as stored in the export.
    size: u64,
}

/// `sha256:<hex>` for a `blobs/sha256/<hex>` member.
fn member_digest(name: &str) -> Option<String> {
    name.strip_prefix("blobs/sha256/")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|h| format!("sha256:{h}"))
}

/// An image with no layers yet, to scan streamed layers against: it names
/// the target in messages and carries the run's checks.
fn provisional(target: &str, inspect: &ImageInspect, ctx: &Context<'_>) -> Image {
    let store = BlobStore::source(Arc::new(MemorySource::new(target)), target);
    Image::new(target, inspect.id.clone(), store, ctx.options.read)
        .with_references(inspect.repo_tags.clone().unwrap_or_default())
}

/// Reads the export of `name`, scanning each layer member on the way.
fn stream_export(
    engine: &Engine,
    target: &str,
    name: &str,
    inspect: &ImageInspect,
    ctx: &Context<'_>,
) -> Result<(Streamed, HashMap<String, Scanned>), Error> {
    let body = engine.image_export(name)?;
    let prov = provisional(target, inspect, ctx);
    let diff_ids: Vec<String> =
        inspect.rootfs.as_ref().map(|r| r.layers.clone()).unwrap_or_default();
    let mut scans: HashMap<String, Scanned> = HashMap::new();
    let mut arrived = 0usize;
    let streamed = save_stream::read(body, target, &mut |member, size, reader| {
        let digest = member_digest(member);
        // The position is only for messages and progress until the manifest arrives.
        let index =
            digest.as_ref().and_then(|d| diff_ids.iter().position(|x| x == d)).unwrap_or(arrived);
        arrived += 1;
        let layer = Layer::tar(
            index,
            member.to_owned(),
            digest.clone().unwrap_or_else(|| member.to_owned()),
            digest.is_some(),
        )
        .with_size(size);
        // Members named by digest are checked by the walk; the others are hashed
        // here, to be checked against the config's diff_ids once it arrives.
        let (scan, sha256) = if digest.is_some() {
            (scan_blob(&prov, &layer, Box::new(reader), ctx), None)
        } else {
            let mut hashing = Hashing { inner: reader, hasher: Sha256::new() };
            let scan = scan_blob(&prov, &layer, Box::new(&mut hashing), ctx);
            // Whatever the walk left unread still belongs to the digest.
            io::copy(&mut hashing, &mut io::sink())
                .map_err(|e| crate::image::Error::io(&format!("{target}: {member}"), e))?;
            (scan, Some(format!("sha256:{}", hex::encode(hashing.hasher.finalize()))))
        };
        scans.insert(member.to_owned(), Scanned { scan, sha256, size });
        Ok(())
    })?;
    Ok((streamed, scans))
}

fn scan_blob(
    image: &Image,
    layer: &Layer,
    blob: Box<dyn Read + '_>,
    ctx: &Context<'_>,
) -> LayerScan {
    pipeline::scan_layer_blob(image, layer, blob, &ctx.run)
}

/// An image of the export, with a scan for each of its layers.
type Assembled = (Image, Vec<Option<LayerScan>>);

/// The images of a finished export, each with its prescanned layers.
fn assemble(
    target: &str,
    streamed: Streamed,
    scans: &HashMap<String, Scanned>,
    ctx: &Context<'_>,
) -> Result<Vec<Assembled>, Error> {
    let aliases = streamed.aliases.clone();
    let store = BlobStore::source(Arc::new(streamed.metadata), target);
    let mut images = layout::images(target, store, ctx.platform, ctx.options.read, ctx.run.diag)?;
    let mut out = Vec::with_capacity(images.len());
    // A layer member's scan, by the name the manifest gives the layer.
    let scanned = |layer: &Layer| {
        let member = aliases.get(&layer.member).map_or(layer.member.as_str(), String::as_str);
        scans.get(member)
    };
    for mut image in images.drain(..) {
        let mut pre = Vec::with_capacity(image.layers().len());
        for layer in image.layers() {
            let Some(s) = scanned(layer) else {
                ctx.run.diag.error(format!(
                    "{target}: layer {} ({}) is missing from the image export",
                    layer.index, layer.member
                ));
                pre.push(Some(LayerScan::default()));
                continue;
            };
            if let (Some(actual), Some(claimed)) = (s.sha256.as_deref(), layer.diff_id())
                && actual != claimed
            {
                ctx.run.diag.warn(format!(
                    "{target}: layer {} ({}): diff_id mismatch, config claims {claimed} but the layer hashes to {actual}",
                    layer.index, layer.member
                ));
            }
            pre.push(Some(s.scan.clone()));
        }
        // Metadata in memory knows no layer sizes; the stream did.
        image.fill_layer_sizes(|layer| scanned(layer).map(|s| s.size));
        out.push((image, pre));
    }
    Ok(out)
}

fn findings(image: &Image, pre: &[Option<LayerScan>], ctx: &Context<'_>) -> ImageScan {
    pipeline::scan_image_prescanned(image, &ctx.run, pre)
}

/// `docker-daemon:NAME`: the image as the daemon exports it.
///
/// # Errors
/// No daemon, no such image, or an export that is not an image.
pub fn scan_image(
    target: &str,
    name: &str,
    ctx: &Context<'_>,
) -> Result<Vec<(Image, ImageScan)>, Error> {
    let engine = Engine::connect(target, ctx.options.insecure)?;
    let inspect = engine.image_inspect(name)?;
    let (streamed, scans) = stream_export(&engine, target, name, &inspect, ctx)?;
    let images = assemble(target, streamed, &scans, ctx)?;
    Ok(images
        .into_iter()
        .map(|(image, pre)| {
            let found = findings(&image, &pre, ctx);
            (image, found)
        })
        .collect())
}

/// `docker-container:ID`: the container's image, plus its writable layer
/// as one more layer on top.
///
/// # Errors
/// No daemon, no such container, or an image export that is unusable.
pub fn scan_container(
    target: &str,
    id: &str,
    ctx: &Context<'_>,
) -> Result<Vec<(Image, ImageScan)>, Error> {
    let engine = Engine::connect(target, ctx.options.insecure)?;
    let container = engine.container_inspect(id)?;
    let inspect = engine.image_inspect(&container.image)?;
    let (streamed, scans) = stream_export(&engine, target, &container.image, &inspect, ctx)?;
    let mut images = assemble(target, streamed, &scans, ctx)?;
    if images.len() != 1 {
        return Err(Error::Image(crate::image::Error::Invalid {
            file: target.to_owned(),
            what: "image export".into(),
            reason: format!("holds {} images, expected the container's one", images.len()),
        }));
    }
    let (mut image, mut pre) = images.remove(0);
    let mut changes = engine.container_changes(&container.id)?;
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    let created_by = writable_layer_summary(&container, &changes);
    let short = &container.id[..container.id.len().min(12)];
    for c in changes.iter().take(MAX_CHANGE_NOTES) {
        let verb = match c.kind {
            1 => "added",
            2 => "deleted",
            _ => "changed",
        };
        ctx.run.diag.note(format!("{target}: the container {verb} {}", c.path));
    }
    if changes.len() > MAX_CHANGE_NOTES {
        ctx.run
            .diag
            .note(format!("{target}: … and {} more changes", changes.len() - MAX_CHANGE_NOTES));
    }
    // The layer's digest is known once it has streamed through the scan: it is scanned
    // on its own, at the position it will take, then put on top with its digest.
    let index = image.layers().len();
    let member = format!("container {short}");
    let scanned =
        Layer::tar(index, member.clone(), String::new(), false).with_created_by(created_by.clone());
    let (out, mut reader) = super::pipe::pipe();
    let writer_engine = engine.clone();
    let container_id = container.id.clone();
    let writer =
        std::thread::spawn(move || write_changes(&writer_engine, &container_id, &changes, out));
    let mut hashing = Hashing { inner: &mut reader, hasher: Sha256::new() };
    let scan = scan_blob(&image, &scanned, Box::new(&mut hashing), ctx);
    let _ = io::copy(&mut hashing, &mut io::sink());
    let digest = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    drop(reader);
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => ctx.run.diag.error(format!("{target}: writable layer: {e}")),
        Err(_) => ctx.run.diag.error(format!("{target}: writable layer: the reader thread failed")),
    }
    let top = Layer::tar(index, member, digest.clone(), false)
        .with_diff_id(digest)
        .with_created_by(created_by);
    image.push_layer(top);
    pre.push(Some(scan));
    let found = findings(&image, &pre, ctx);
    Ok(vec![(image, found)])
}

/// The `created_by` of a container's writable layer: what it changed.
pub(super) fn writable_layer_summary(container: &ContainerInspect, changes: &[Change]) -> String {
    let count = |k: u8| changes.iter().filter(|c| c.kind == k).count();
    let short = &container.id[..container.id.len().min(12)];
    let name = container.name.trim_start_matches('/');
    format!(
        "container {short} ({name}) writable layer: {} added, {} changed, {} deleted",
        count(1),
        count(0),
        count(2)
    )
}

/// Writes the container's changes as a layer tar: deletions as whiteouts,
/// additions and modifications with their current content from `/archive`.
pub(super) fn write_changes(
    engine: &Engine,
    id: &str,
    changes: &[Change],
    out: impl Write,
) -> Result<(), crate::docker::Error> {
    let mut b = tar::Builder::new(out);
    let broken = |what: &str, e: io::Error| engine.io_error(what, &e);
    for change in changes {
        let rel = change.path.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        if change.kind == 2 {
            let (dir, base) = match rel.rsplit_once('/') {
                Some((d, b)) => (format!("{d}/"), b),
                None => (String::new(), rel),
            };
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o644);
            b.append_data(&mut h, format!("{dir}.wh.{base}"), io::empty())
                .map_err(|e| broken("writing a whiteout", e))?;
            continue;
        }
        let body = match engine.container_archive(id, &change.path) {
            Ok(body) => body,
            // Gone since `/changes` listed it (a running container moves on).
            Err(crate::docker::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let what = format!("archive of {}", change.path);
        let mut archive = tar::Archive::new(body);
        let mut entries = archive.entries().map_err(|e| broken(&what, e))?;
        let Some(first) = entries.next() else { continue };
        let mut first = first.map_err(|e| broken(&what, e))?;
        let src = first.header().clone();
        let mut h = tar::Header::new_gnu();
        h.set_mode(src.mode().unwrap_or(0o644));
        h.set_uid(src.uid().unwrap_or(0));
        h.set_gid(src.gid().unwrap_or(0));
        h.set_mtime(src.mtime().unwrap_or(0));
        let kind = src.entry_type();
        h.set_entry_type(kind);
        let written = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                h.set_size(first.size());
                b.append_data(&mut h, rel, &mut first)
            }
            tar::EntryType::Symlink => {
                h.set_size(0);
                let link = first.link_name().ok().flatten().map(|l| l.into_owned());
                b.append_link(&mut h, rel, link.unwrap_or_default())
            }
            _ => {
                h.set_size(0);
                b.append_data(&mut h, rel, io::empty())
            }
        };
        written.map_err(|e| broken(&what, e))?;
    }
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| broken("finishing the writable layer", e))
}
