//! `strata extract`: one file as a layer stored it, to stdout or to a file
//! written beside the destination and renamed only when complete.

use std::io;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::args::ExtractArgs;
use super::{Exit, load_signatures, open_images, scrubbed, scrubber};
use crate::diagnostics::Diagnostics;
use crate::image::Image;

/// Runs `strata extract`.
///
/// # Errors
/// An unreadable target, no such layer or file, an unsafe destination.
pub(super) fn run(args: ExtractArgs) -> Result<Exit> {
    // The file goes to the output on purpose; messages about the image are scrubbed.
    let scanner = Arc::new(crate::scan::Scanner::new(load_signatures(&[])?)?);
    let diag = Diagnostics::new(true).with_scrubber(scrubber(&scanner));
    // Refuse a device, link or directory before reading anything.
    if let Some(path) = &args.output {
        crate::extract::check_destination(path)?;
    }
    let sources = crate::sources::SourceOptions {
        insecure: args.insecure,
        storage_root: args.storage_root.clone(),
        read: crate::image::ReadOptions::default(),
    };
    let images = open_images(&args.target, args.platform.as_ref(), &sources, &diag)?;
    let image = pick_image(&args.target, images, args.image.as_deref())?;
    let wanted = crate::extract::Wanted {
        layer: args.layer,
        path: &args.path,
        inner: args.inner.as_deref(),
    };
    match &args.output {
        None => {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            crate::extract::extract(&image, &wanted, &diag, &mut out)
                .map_err(|e| scrubbed(&diag, e))?;
        }
        Some(path) => {
            // Write beside the destination and rename on success, so a failed or
            // partial extraction leaves nothing behind.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(".".as_ref());
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
            crate::extract::extract(&image, &wanted, &diag, tmp.as_file_mut())
                .map_err(|e| scrubbed(&diag, e))?;
            crate::extract::persist(tmp, path)?;
        }
    }
    Ok(Exit::Clean)
}

fn pick_image(target: &str, mut images: Vec<Image>, wanted: Option<&str>) -> Result<Image> {
    if let Some(w) = wanted {
        images.retain(|i| i.digest() == w || i.references().iter().any(|r| r == w));
    }
    match images.len() {
        1 => Ok(images.remove(0)),
        0 => bail!("{target}: no image matches {}", wanted.unwrap_or("")),
        _ => {
            let names: Vec<String> = images
                .iter()
                .map(|i| {
                    let r =
                        i.references().first().cloned().unwrap_or_else(|| i.digest().to_owned());
                    format!("{r} ({})", i.platform().unwrap_or("unknown platform"))
                })
                .collect();
            bail!(
                "{target} holds {} images; choose one with --platform or --image: {}",
                images.len(),
                names.join(", ")
            )
        }
    }
}
