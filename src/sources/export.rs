//! `docker-daemon:` and `docker-container:` for the commands that read
//! one layer at a time (`strata layers`, `strata extract`), which need each
//! layer on its own rather than the whole export in one pass.
//!
//! The engine serves no single layer, only the whole export. So the export
//! is read once for its metadata (layers skipped, their sizes noted), and
//! each layer the command then opens is a new export of the same image ID,
//! read up to that member and handed over through a bounded pipe while it
//! streams. Nothing is written to disk and memory stays flat; the price is
//! one more export per layer read, which the daemon produces again. A
//! container's writable layer is rebuilt from `/changes` and `/archive`
//! each time it is opened, as `scan` builds it.
//!
//! The image is asked for by ID, so a tag moved meanwhile cannot swap the
//! content; legacy `<hex>/layer.tar` members are checked against the
//! config's diff_ids and `blobs/sha256/<hex>` ones against their names, by
//! the layer walk, as for an archive.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::daemon::{writable_layer_summary, write_changes};
use super::pipe::pipe;
use super::{DOCKER_CONTAINER, DOCKER_DAEMON, Error, SourceOptions};
use crate::diagnostics::Diagnostics;
use crate::docker::{Change, Engine};
use crate::image::blob::{BlobSource, MemorySource};
use crate::image::store::BlobStore;
use crate::image::{self, Image, Layer, PlatformFilter, layout, save_stream};

/// A container's writable layer, rebuilt on each open.
#[derive(Debug)]
struct Writable {
    member: String,
    id: String,
    changes: Vec<Change>,
    size: u64,
}

/// An image in an engine, its layers fetched by exporting it again.
#[derive(Debug)]
struct ExportSource {
    engine: Engine,
    image_id: String,
    display: String,
    metadata: MemorySource,
    aliases: HashMap<String, String>,
    /// Layer member → its size in the export.
    sizes: HashMap<String, u64>,
    writable: Option<Writable>,
}

impl ExportSource {
    fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        let name = name.trim_start_matches("./");
        self.aliases.get(name).map_or(name, String::as_str)
    }
}

impl BlobSource for ExportSource {
    fn size(&self, name: &str) -> Option<u64> {
        let name = self.resolve(name);
        if let Some(w) = self.writable.as_ref().filter(|w| w.member == name) {
            return Some(w.size);
        }
        self.metadata.size(name).or_else(|| self.sizes.get(name).copied())
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, image::Error> {
        let name = self.resolve(name).to_owned();
        if self.metadata.size(&name).is_some() {
            return self.metadata.open(&name);
        }
        let (out, reader) = pipe();
        let engine = self.engine.clone();
        if let Some(w) = self.writable.as_ref().filter(|w| w.member == name) {
            let (id, changes) = (w.id.clone(), w.changes.clone());
            std::thread::spawn(move || {
                let mut out = out;
                if let Err(e) = write_changes(&engine, &id, &changes, &mut out) {
                    out.fail(io::Error::other(e.to_string()));
                }
            });
            return Ok(Box::new(reader));
        }
        if !self.sizes.contains_key(&name) {
            return Err(image::Error::MissingBlob { file: self.display.clone(), blob: name });
        }
        let (id, display) = (self.image_id.clone(), self.display.clone());
        std::thread::spawn(move || {
            let mut out = out;
            let failed = match engine.image_export(&id) {
                Err(e) => Some(e.to_string()),
                Ok(body) => match save_stream::copy_member(body, &display, &name, &mut out) {
                    Ok(_) => None,
                    // The reader stopped early (it found what it wanted): not an error.
                    Err(image::Error::Io { err, .. })
                        if err.kind() == io::ErrorKind::BrokenPipe =>
                    {
                        None
                    }
                    Err(e) => Some(e.to_string()),
                },
            };
            if let Some(e) = failed {
                out.fail(io::Error::other(e));
            }
        });
        Ok(Box::new(reader))
    }
}

/// Reads the export of `image_id` once for its metadata and layer sizes.
fn read_metadata(
    engine: &Engine,
    target: &str,
    image_id: &str,
) -> Result<(save_stream::Streamed, HashMap<String, u64>), Error> {
    let body = engine.image_export(image_id)?;
    let mut sizes = HashMap::new();
    let streamed = save_stream::read(body, target, &mut |member, size, _| {
        // The layer is skipped (the tar reader passes over what is left unread).
        sizes.insert(member.to_owned(), size);
        Ok(())
    })?;
    Ok((streamed, sizes))
}

/// An image to read from an engine's exports: the engine, the target that
/// names it, the image's ID, and a container's writable layer to serve
/// beside its layers (`docker-container:`).
struct Export<'a> {
    engine: &'a Engine,
    target: &'a str,
    image_id: &'a str,
    writable: Option<Writable>,
}

/// The images of `export`, their layers read by exporting it again.
fn images_of(
    export: Export<'_>,
    platform: Option<&PlatformFilter>,
    read: image::ReadOptions,
    diag: &Diagnostics,
) -> Result<Vec<Image>, Error> {
    let Export { engine, target, image_id, writable } = export;
    let (streamed, sizes) = read_metadata(engine, target, image_id)?;
    let source = ExportSource {
        engine: engine.clone(),
        image_id: image_id.to_owned(),
        display: target.to_owned(),
        metadata: streamed.metadata,
        aliases: streamed.aliases,
        sizes,
        writable,
    };
    let store = BlobStore::source(Arc::new(source), target);
    let mut images = layout::images(target, store.clone(), platform, read, diag)?;
    for image in &mut images {
        // Metadata in memory knows no layer sizes; the export did (`ExportSource::size`).
        image.fill_layer_sizes(|layer| store.size(&layer.member));
    }
    Ok(images)
}

/// Opens a `docker-daemon:` or `docker-container:` target for reading
/// layer by layer.
///
/// # Errors
/// No daemon, no such image or container, or an export that is not an
/// image.
pub fn open(
    target: &str,
    options: &SourceOptions,
    platform: Option<&PlatformFilter>,
    diag: &Diagnostics,
) -> Result<Vec<Image>, Error> {
    if let Some(name) = target.strip_prefix(DOCKER_DAEMON) {
        let engine = Engine::connect(target, options.insecure)?;
        let inspect = engine.image_inspect(name)?;
        let export = Export { engine: &engine, target, image_id: &inspect.id, writable: None };
        let images = images_of(export, platform, options.read, diag)?;
        // An export by ID records no tags: the daemon's name the image then.
        let tags = inspect.repo_tags.clone().unwrap_or_default();
        return Ok(images
            .into_iter()
            .map(|image| {
                if image.references().is_empty() {
                    image.with_references(tags.clone())
                } else {
                    image
                }
            })
            .collect());
    }
    let Some(id) = target.strip_prefix(DOCKER_CONTAINER) else {
        return Err(Error::Image(image::Error::Unrecognised {
            file: target.to_owned(),
            reason: "not an engine target".into(),
        }));
    };
    let engine = Engine::connect(target, options.insecure)?;
    let container = engine.container_inspect(id)?;
    let mut changes = engine.container_changes(&container.id)?;
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    // The layer's digest and size, from one build of it now; a container that
    // changes before a command reads the layer gives a diff_id mismatch warning.
    let mut hashing = HashingSink { hasher: Sha256::new(), size: 0 };
    write_changes(&engine, &container.id, &changes, &mut hashing)?;
    let digest = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    let short = container.id[..container.id.len().min(12)].to_owned();
    let created_by = writable_layer_summary(&container, &changes);
    let writable = Writable {
        member: format!("container {short}"),
        id: container.id.clone(),
        changes,
        size: hashing.size,
    };
    let member = writable.member.clone();
    let size = writable.size;
    let export =
        Export { engine: &engine, target, image_id: &container.image, writable: Some(writable) };
    let mut images = images_of(export, None, options.read, diag)?;
    if images.len() != 1 {
        return Err(Error::Image(image::Error::Invalid {
            file: target.to_owned(),
            what: "image export".into(),
            reason: format!("holds {} images, expected the container's one", images.len()),
        }));
    }
    let image = &mut images[0];
    let top = Layer::tar(0, member, digest.clone(), true)
        .with_diff_id(digest)
        .with_size(size)
        .with_created_by(created_by);
    image.push_layer(top);
    Ok(images)
}

/// Counts and hashes what is written to it.
struct HashingSink {
    hasher: Sha256,
    size: u64,
}

impl io::Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
