//! Node packages: every package npm, yarn or pnpm installs is a directory
//! `node_modules/NAME` (or `node_modules/@scope/NAME`) holding its
//! `package.json`, at any depth and under any install root (`--prefix`,
//! global installs, pnpm's `node_modules/.pnpm/…`). The application's own
//! `package.json` is not under `node_modules`, so it proves nothing.

use super::PackageRoots;
use crate::image::path::{file_name, parent};

/// The package directory a `package.json` at `path` describes, when it is
/// one installed under `node_modules`.
fn package_dir(path: &str) -> Option<&str> {
    if file_name(path) != "package.json" {
        return None;
    }
    let dir = parent(path);
    let up = parent(dir);
    let installed = file_name(up) == "node_modules"
        || (file_name(up).starts_with('@') && file_name(parent(up)) == "node_modules");
    (installed && !file_name(dir).starts_with('.')).then_some(dir)
}

/// Adds the package directory of an installed `package.json`.
pub(super) fn roots_from(path: &str, out: &mut PackageRoots) {
    if let Some(dir) = package_dir(path) {
        out.insert(dir.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_package_json_marks_its_directory() {
        let cases = [
            ("/srv/web/node_modules/express/package.json", Some("/srv/web/node_modules/express")),
            (
                "/x/node_modules/@aws-sdk/client-s3/package.json",
                Some("/x/node_modules/@aws-sdk/client-s3"),
            ),
            (
                "/app/node_modules/.pnpm/a@1.0.0/node_modules/a/package.json",
                Some("/app/node_modules/.pnpm/a@1.0.0/node_modules/a"),
            ),
            ("/app/package.json", None),
            ("/app/node_modules/package.json", None),
            ("/app/node_modules/.bin/package.json", None),
            ("/app/node_modules/express/lib/package.json", None),
        ];
        for (path, want) in cases {
            assert_eq!(package_dir(path), want, "{path}");
        }
    }
}
