//! Files a distribution's package manager installed, from its database:
//!
//! - dpkg (Debian, Ubuntu): `/var/lib/dpkg/info/<package>.md5sums`, one
//!   `<md5>  <path>` line per file the package shipped, paths relative to `/`.
//!   Conffiles (`/etc/…`, which the user edits) are not in it.
//! - apk (Alpine, Wolfi): `/lib/apk/db/installed`, where an `F:<dir>` line
//!   names a directory and each `R:<name>` line after it a file in it.
//!
//! These are the distribution's own code and documentation (Ruby's standard
//! library documents `URI.parse("http://john:S3nsit1ve@…")`, Node packages
//! under `/usr/share/nodejs` hold test tokens), which path rules cannot tell
//! from an application installed beside them. Only the listed files are taken,
//! never their directories, and never files under `/etc/` (apk lists
//! configuration there, which the user edits). The layer that wrote the
//! database is kept with each file by the pipeline, so a file rewritten by a
//! later layer is the user's again.

use super::PackageRoots;
use crate::image::path::{file_name, parent};

/// Files taken from one database file at most (the largest Debian packages
/// list tens of thousands of files; this only bounds hostile input).
const MAX_FILES_PER_DATABASE: usize = 200_000;

fn is_dpkg_md5sums(path: &str) -> bool {
    file_name(path).ends_with(".md5sums") && parent(path) == "/var/lib/dpkg/info"
}

fn is_apk_installed(path: &str) -> bool {
    path == "/lib/apk/db/installed" || path == "/usr/lib/apk/db/installed"
}

/// True for a package database file whose bytes the walk should hand over.
pub(super) fn wants_content(path: &str) -> bool {
    is_dpkg_md5sums(path) || is_apk_installed(path)
}

/// The files that the database at `path` lists, from its bytes.
pub(super) fn roots_from(path: &str, data: Option<&[u8]>, out: &mut PackageRoots) {
    let Some(data) = data else { return };
    let mut files = Vec::new();
    if is_dpkg_md5sums(path) {
        dpkg_files(data, &mut files);
    } else if is_apk_installed(path) {
        apk_files(data, &mut files);
    }
    for f in files.into_iter().filter(|f| !f.starts_with("/etc/")).take(MAX_FILES_PER_DATABASE) {
        out.insert_distro_file(f);
    }
}

/// The other name of a path under a merged `/usr` (`/bin`, `/sbin` and the
/// `/lib*` directories linked to their `/usr` namesakes): `/bin/sh` for
/// `/usr/bin/sh` and the other way round; `None` elsewhere.
pub(super) fn usr_alias(path: &str) -> Option<String> {
    const MERGED: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];
    let top = |p: &str| p.split('/').nth(1).is_some_and(|d| MERGED.contains(&d));
    match path.strip_prefix("/usr") {
        Some(rest) if rest.starts_with('/') && top(rest) && rest.len() > 1 => Some(rest.to_owned()),
        _ if top(path) && path[1..].contains('/') => Some(format!("/usr{path}")),
        _ => None,
    }
}

/// `<32 hex>  <relative path>` lines (two spaces; dpkg writes no other form).
fn dpkg_files(data: &[u8], out: &mut Vec<String>) {
    for line in data.split(|&b| b == b'\n') {
        let Some(rel) = line.get(34..) else { continue };
        if line[..32].iter().all(u8::is_ascii_hexdigit)
            && &line[32..34] == b"  "
            && let Ok(rel) = std::str::from_utf8(rel)
            && is_plain_relative(rel)
        {
            out.push(format!("/{rel}"));
        }
    }
}

/// `F:<dir>` then `R:<file>` lines; a blank line ends a package.
fn apk_files(data: &[u8], out: &mut Vec<String>) {
    let mut dir: Option<&str> = None;
    for line in data.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else { continue };
        if line.is_empty() {
            dir = None;
        } else if let Some(d) = line.strip_prefix("F:") {
            dir = is_plain_relative(d).then_some(d);
        } else if let (Some(name), Some(d)) = (line.strip_prefix("R:"), dir)
            && !name.is_empty()
            && !name.contains('/')
            && name != ".."
        {
            out.push(format!("/{d}/{name}"));
        }
    }
}

/// A path below `/` written without `.`/`..` steps or a leading `/`.
fn is_plain_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_usr_names_alias_each_other() {
        assert_eq!(usr_alias("/usr/bin/sh").as_deref(), Some("/bin/sh"));
        assert_eq!(usr_alias("/bin/sh").as_deref(), Some("/usr/bin/sh"));
        assert_eq!(usr_alias("/lib64/ld.so").as_deref(), Some("/usr/lib64/ld.so"));
        assert_eq!(usr_alias("/usr/share/doc/x"), None);
        assert_eq!(usr_alias("/usr/local/bin/x"), None);
        assert_eq!(usr_alias("/binary/x"), None);
        assert_eq!(usr_alias("/bin"), None);
        let mut roots = PackageRoots::default();
        roots_from(
            "/var/lib/dpkg/info/dash.md5sums",
            Some(b"0123456789abcdef0123456789abcdef  bin/dash\n"),
            &mut roots,
        );
        assert!(roots.holds_distro_file("/usr/bin/dash", 0));
        assert!(roots.lists_distro_file("/bin/dash"));
        assert!(!roots.lists_distro_file("/usr/bin/other"));
    }

    #[test]
    fn dpkg_md5sums_lists_files_not_conffiles_or_directories() {
        let mut roots = PackageRoots::default();
        let md5sums = "0f343b0931126a20f133d67c2b018a3b  usr/lib/ruby/3.1.0/uri/generic.rb\n\
                       d41d8cd98f00b204e9800998ecf8427e  etc/odd.conf\n\
                       nothex0931126a20f133d67c2b018a3b  usr/lib/ruby/3.1.0/x.rb\n\
                       0f343b0931126a20f133d67c2b018a3b  ../escape\n";
        roots_from(
            "/var/lib/dpkg/info/libruby3.1:amd64.md5sums",
            Some(md5sums.as_bytes()),
            &mut roots,
        );
        assert!(roots.holds_distro_file("/usr/lib/ruby/3.1.0/uri/generic.rb", 0));
        assert!(!roots.holds_distro_file("/usr/lib/ruby/3.1.0/uri/other.rb", 0));
        assert!(!roots.holds_distro_file("/usr/lib/ruby/3.1.0/x.rb", 0));
        assert!(!roots.holds_distro_file("/etc/odd.conf", 0));
        assert!(!roots.holds("/usr/lib/ruby/3.1.0/uri"), "directories are not roots");
        // The same file name elsewhere is not the database.
        let mut other = PackageRoots::default();
        roots_from("/app/info/x.md5sums", Some(md5sums.as_bytes()), &mut other);
        assert!(other.is_empty());
    }

    #[test]
    fn apk_installed_lists_files_by_directory() {
        let mut roots = PackageRoots::default();
        let db = "C:Q1abc=\nP:ruby-libs\nV:3.2.2-r0\nF:usr/lib/ruby/3.2.0/uri\nR:generic.rb\n\
                  Z:Q1xyz=\nF:etc\nR:ruby.conf\n\nP:musl\nR:stray\n";
        roots_from("/lib/apk/db/installed", Some(db.as_bytes()), &mut roots);
        assert!(roots.holds_distro_file("/usr/lib/ruby/3.2.0/uri/generic.rb", 0));
        assert!(!roots.holds_distro_file("/etc/ruby.conf", 0));
        assert!(!roots.holds_distro_file("/stray", 0), "R: after a blank line has no F:");
    }

    #[test]
    fn a_file_rewritten_after_the_database_is_not_held() {
        let mut layer = PackageRoots::default();
        let md5sums = "0f343b0931126a20f133d67c2b018a3b  usr/share/app/x.py\n";
        roots_from("/var/lib/dpkg/info/app.md5sums", Some(md5sums.as_bytes()), &mut layer);
        let mut image = PackageRoots::default();
        image.extend_from_layer(&layer, 1);
        assert!(image.holds_distro_file("/usr/share/app/x.py", 0));
        assert!(image.holds_distro_file("/usr/share/app/x.py", 1));
        assert!(!image.holds_distro_file("/usr/share/app/x.py", 2));
    }
}
