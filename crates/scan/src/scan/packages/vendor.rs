//! Vendored and cached dependencies of Go, PHP and Ruby:
//!
//! - Go: `go mod vendor` writes `vendor/modules.txt` (the vendor tree is the
//!   dependencies); the module cache keeps each module at
//!   `…/pkg/mod/<module path>@<version>/` and its downloads under
//!   `…/pkg/mod/cache/download/`.
//! - PHP: Composer writes `<vendor-dir>/composer/installed.json` whatever
//!   the vendor directory is called (`config.vendor-dir`); Composer 2 lists
//!   each package's `install-path` relative to that file's directory, which
//!   custom installers point outside the vendor directory
//!   (`wp-content/plugins/…`).
//! - Ruby: RubyGems and Bundler keep `specifications/NAME-VERSION.gemspec`
//!   beside `gems/NAME-VERSION/` in every gem home (`vendor/bundle/ruby/X`,
//!   `BUNDLE_PATH`, `/usr/local/bundle`).

use super::{MAX_ROOTS_PER_FILE, PackageRoots, resolve};
use crate::image::path::{file_name, join, parent};

fn is_composer_installed(path: &str) -> bool {
    file_name(path) == "installed.json" && file_name(parent(path)) == "composer"
}

/// True for `installed.json`, whose `install-path`s the walk should read.
pub(super) fn wants_content(path: &str) -> bool {
    is_composer_installed(path)
}

/// Roots proven by Go, Composer and RubyGems metadata at `path` (with the
/// bytes of `installed.json` when read).
pub(super) fn roots_from(path: &str, data: Option<&[u8]>, out: &mut PackageRoots) {
    let name = file_name(path);
    if name == "modules.txt" && file_name(parent(path)) == "vendor" {
        out.insert(parent(path).to_owned());
    } else if is_composer_installed(path) {
        let composer = parent(path);
        let vendor_dir = parent(composer);
        if vendor_dir != "/" {
            out.insert(vendor_dir.to_owned());
        }
        if let Some(data) = data {
            composer_install_paths(composer, data, out);
        }
    } else if let Some(stem) = name.strip_suffix(".gemspec")
        && file_name(parent(path)) == "specifications"
        && !stem.is_empty()
    {
        let home = parent(parent(path));
        out.insert(join(home, &format!("gems/{stem}")));
        out.insert(join(home, &format!("cache/{stem}.gem")));
    }
    if let Some(root) = go_module_dir(path) {
        out.insert(root.to_owned());
    }
}

/// The module directory (`…/pkg/mod/github.com/x/y@v1.2.3`) or the download
/// cache (`…/pkg/mod/cache`) of Go's module cache that holds `path`.
fn go_module_dir(path: &str) -> Option<&str> {
    let at = path.find("/pkg/mod/")? + "/pkg/mod/".len();
    let rest = &path[at..];
    if rest.starts_with("cache/download/") {
        return Some(&path[..at + "cache".len()]);
    }
    // The first component with `@v<digit>` ends the module path (versions are semver).
    let mut end = at;
    for component in rest.split('/') {
        end += component.len();
        if let Some((module, version)) = component.split_once("@v")
            && !module.is_empty()
            && version.starts_with(|c: char| c.is_ascii_digit())
        {
            return (end < path.len()).then_some(&path[..end]);
        }
        end += 1;
    }
    None
}

/// The `install-path`s of Composer 2's `installed.json`, resolved against
/// its directory; paths that climb to the vendor directory's parent or
/// above (which would cover the application itself) are skipped.
fn composer_install_paths(composer: &str, data: &[u8], out: &mut PackageRoots) {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Some(packages) = doc.get("packages").and_then(|p| p.as_array()) else { return };
    let vendor_dir = parent(composer);
    let app = parent(vendor_dir);
    for p in packages.iter().take(MAX_ROOTS_PER_FILE) {
        let Some(rel) = p.get("install-path").and_then(|v| v.as_str()) else { continue };
        let Some(dir) = resolve(composer, rel) else { continue };
        let covers_app = dir == "/"
            || (app.starts_with(&dir)
                && (app.len() == dir.len() || app.as_bytes()[dir.len()] == b'/'));
        if !covers_app {
            out.insert(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_vendor_and_module_cache() {
        let mut roots = PackageRoots::default();
        roots_from("/src/app/vendor/modules.txt", None, &mut roots);
        assert!(roots.holds("/src/app/vendor/github.com/aws/aws-sdk-go/aws/config.go"));
        assert!(!roots.holds("/src/app/main.go"));
        let cases = [
            (
                "/go/pkg/mod/github.com/aws/aws-sdk-go@v1.55.5/aws/credentials/example.ini",
                Some("/go/pkg/mod/github.com/aws/aws-sdk-go@v1.55.5"),
            ),
            (
                "/root/go/pkg/mod/cache/download/golang.org/x/net/@v/v0.1.0.zip",
                Some("/root/go/pkg/mod/cache"),
            ),
            ("/go/pkg/mod/golang.org/x/net@v0.1.0", None),
            ("/app/pkg/mod/handlers/user@vip.go", None),
            ("/app/src/server.go", None),
        ];
        for (path, want) in cases {
            assert_eq!(go_module_dir(path), want, "{path}");
        }
    }

    #[test]
    fn composer_vendor_dir_and_install_paths() {
        let installed = br#"{"packages": [
            {"name": "monolog/monolog", "install-path": "../monolog/monolog"},
            {"name": "acme/plugin", "install-path": "../../wp-content/plugins/acme"},
            {"name": "evil/root", "install-path": "../../"},
            {"name": "evil/up", "install-path": "../../../../../.."}
        ]}"#;
        let path = "/var/www/deps/composer/installed.json";
        assert!(wants_content(path));
        let mut roots = PackageRoots::default();
        roots_from(path, Some(installed), &mut roots);
        assert!(roots.holds("/var/www/deps/monolog/monolog/src/Handler.php"));
        assert!(roots.holds("/var/www/wp-content/plugins/acme/config.php"));
        assert!(!roots.holds("/var/www/wp-config.php"), "a package at the app root is not taken");
        assert!(!roots.holds("/var/www/index.php"));
    }

    #[test]
    fn gem_homes() {
        let mut roots = PackageRoots::default();
        roots_from(
            "/opt/bundle/ruby/3.2.0/specifications/aws-sdk-core-3.1.0.gemspec",
            None,
            &mut roots,
        );
        assert!(roots.holds("/opt/bundle/ruby/3.2.0/gems/aws-sdk-core-3.1.0/lib/x.rb"));
        assert!(roots.holds("/opt/bundle/ruby/3.2.0/cache/aws-sdk-core-3.1.0.gem"));
        assert!(!roots.holds("/opt/bundle/ruby/3.2.0/gems/other-1.0/lib/x.rb"));
    }
}
