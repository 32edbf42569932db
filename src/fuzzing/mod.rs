//! Fuzzing entry points: one function per cargo-fuzz target (`fuzz/`), each
//! feeding arbitrary bytes to the library exactly as the binary would and
//! checking invariants cheap enough to run on every input. The regression
//! suite (`tests/it/fuzz_regressions.rs`) replays every committed crash
//! input through the same functions, so a fix is tested where it was found.
//!
//! Panics are the signal: an entry point panics (or the fuzzer's timeout or
//! memory limit fires) only when strata misbehaves. Errors on bad input are
//! the expected outcome and are swallowed.
//!
//! Not part of the stable API; `#[doc(hidden)]` in the crate root.

mod images;
mod layers;
mod scan;
mod seeds;
mod structured;
mod text;

// The git object readers are private to the scan layer; their target lives beside them.
pub use crate::scan::git::fuzz::git_objects;
pub use images::{docker_manifest, fixture, image_config, oci_index, oci_manifest};
pub use layers::{layer_entries, layer_walk};
pub use scan::{nested_archive, scan_archive};
pub use seeds::{FAKE_TOKEN, seeds};
pub use text::{auth_challenge, reference};

use std::path::Path;

use crate::scan::Scanner;

/// Every target's name, as `fuzz/` and `tests/fuzz-regressions/` spell it.
pub const TARGETS: &[&str] = &[
    "docker_manifest",
    "oci_manifest",
    "oci_index",
    "image_config",
    "layer_walk",
    "layer_entries",
    "reference",
    "auth_challenge",
    "nested_archive",
    "scan_archive",
    "git_objects",
];

/// Runs the named target on `data`. Returns false for an unknown name.
///
/// # Panics
/// When an invariant of the target does not hold for `data`.
pub fn run(target: &str, data: &[u8], scanner: &Scanner) -> bool {
    match target {
        "docker_manifest" => docker_manifest(data),
        "oci_manifest" => oci_manifest(data),
        "oci_index" => oci_index(data),
        "image_config" => image_config(data, scanner),
        "layer_walk" => layer_walk(data),
        "layer_entries" => layer_entries(data),
        "reference" => reference(data),
        "auth_challenge" => auth_challenge(data),
        "nested_archive" => nested_archive(data, scanner),
        "scan_archive" => scan_archive(data, scanner),
        "git_objects" => git_objects(data),
        _ => return false,
    }
    true
}

/// The scanner a default `strata scan` builds: the built-in rules.
///
/// # Panics
/// When the built-in rules do not compile (a build defect, not input).
pub fn scanner() -> Scanner {
    let rules = crate::signatures::builtin().expect("built-in rules should compile");
    Scanner::new(rules).expect("built-in rules should build a scanner")
}

/// A scratch directory for one input, in memory (`/dev/shm`) where the
/// machine has it, since a fuzzer writes thousands of them a second.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new().prefix("strata-fuzz-").to_owned();
    if shm.is_dir()
        && let Ok(dir) = builder.tempdir_in(shm)
    {
        return dir;
    }
    builder.tempdir().expect("a temporary directory should be available to the fuzzer")
}

/// Writes `bytes` at `dir/name`, creating parent directories.
fn put(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("the scratch directory should be writable");
    }
    std::fs::write(path, bytes).expect("the scratch directory should be writable");
}

/// `sha256:<hex>` of `bytes`.
fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Where a blob with this digest lives in an OCI layout.
fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}
