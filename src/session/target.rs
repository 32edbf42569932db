//! What a target names: a local image (archive, layout directory, `-`,
//! `containers-storage:`) or an image in a registry. `image` reads local
//! containers and `registry` serves remote ones as blob sources; this is
//! the one place that chooses between them.

use std::io;

use crate::diagnostics::Diagnostics;
use crate::image::{self, Image, PlatformFilter, containers_storage, layout};
use crate::registry::{self, Reference, Registries};
use crate::sources::SourceOptions;

/// Opens every image `target` holds, filtered by platform. An existing
/// path always wins over a registry reference of the same spelling.
///
/// # Errors
/// When the target cannot be opened or its metadata is unusable (see
/// [`image::open_with`]); a registry failure names the reference.
pub fn open(
    target: &str,
    platform: Option<&PlatformFilter>,
    options: &SourceOptions,
    registries: &Registries,
    diag: &Diagnostics,
) -> Result<Vec<Image>, image::Error> {
    if is_remote(target) {
        let store = registries.open(target)?;
        return layout::images(target, store, platform, options.read, diag);
    }
    let storage_root = options.storage_root.as_deref();
    image::open_with(target, platform, storage_root, options.read, diag)
        .map_err(|e| with_hint(target, e))
}

/// [`open`], and engine targets too: `docker-daemon:` and
/// `docker-container:` read layer by layer through
/// [`crate::sources::export`]. What `layers` and `extract` open.
///
/// # Errors
/// As [`open`], and when the engine cannot serve the target.
pub fn open_any(
    target: &str,
    platform: Option<&PlatformFilter>,
    options: &SourceOptions,
    registries: &Registries,
    diag: &Diagnostics,
) -> Result<Vec<Image>, crate::sources::Error> {
    if crate::sources::is_streamed(target) {
        return crate::sources::export::open(target, options, platform, diag);
    }
    Ok(open(target, platform, options, registries, diag)?)
}

/// True when `target` is read from a registry: not stdin, not an engine or
/// storage target, and a reference by [`registry::is_reference`].
fn is_remote(target: &str) -> bool {
    let local_prefixes = [containers_storage::PREFIX, "docker-daemon:", "docker-container:"];
    target != "-"
        && !local_prefixes.iter().any(|p| target.starts_with(p))
        && registry::is_reference(target)
}

/// A missing file named like an image (`alpine`) is most likely a pull
/// the user meant: say how to ask for it.
fn with_hint(target: &str, e: image::Error) -> image::Error {
    match e {
        image::Error::Io { file, err }
            if file == target
                && err.kind() == io::ErrorKind::NotFound
                && !target.rsplit('/').next().unwrap_or(target).contains('.')
                && Reference::parse(target).is_ok() =>
        {
            image::Error::Unrecognised {
                file,
                reason: format!(
                    "no such file or directory (for a registry image, write {target}:TAG or docker://{target})"
                ),
            }
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_forms_never_go_to_a_registry() {
        for t in
            ["-", "docker-daemon:alpine:3", "docker-container:abc", "containers-storage:alpine"]
        {
            assert!(!is_remote(t), "{t}");
        }
        assert!(is_remote("docker://alpine"));
        assert!(is_remote("registry.example.test/app:1"));
    }

    #[test]
    fn a_missing_image_name_gets_the_pull_hint() {
        let diag = Diagnostics::new(false);
        let reg = Registries::default();
        let opts = SourceOptions::default();
        let err = open("no-such-image-strata-test", None, &opts, &reg, &diag).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("docker://no-such-image-strata-test"), "{text}");
        // A name with a dot is a file name: no hint.
        let err = open("no-such-file.tar", None, &opts, &reg, &diag).unwrap_err();
        assert!(!err.to_string().contains("docker://"), "{err}");
    }
}
