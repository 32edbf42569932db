//! Third-party package roots, recognised from the package metadata an
//! installer leaves beside the code, wherever it was installed.
//!
//! Path rules ([`super::context`]) know the standard trees (`site-packages`,
//! `node_modules`, `vendor`…), but `pip install --target /app/pylibs` puts
//! botocore at `/app/pylibs/botocore`, a path that says nothing, and a jar in
//! `/opt/kafka/libs` or an npm tarball in `~/.npm/_cacache` is named by
//! nothing either. Installers and build tools always leave metadata beside
//! what they install; this module turns it into *package roots*: files,
//! directories and archive members that belong to an installed package, so
//! a finding under one is third-party code. One submodule per ecosystem:
//!
//! - `python`: `*.dist-info/RECORD`, `*.egg-info/top_level.txt`;
//! - `node`: `package.json` of a package directory under `node_modules`;
//! - `vendor`: Go `vendor/modules.txt` and the module cache
//!   (`pkg/mod/<module>@<version>`), Composer `<vendor-dir>/composer/installed.json`
//!   (with each package's `install-path`), RubyGems `specifications/*.gemspec`;
//! - `java`: jar manifests (`META-INF/MANIFEST.MF`) and Maven
//!   `META-INF/maven/**/pom.properties`, in jars and exploded;
//! - `archive`: archives that are packages themselves (npm tarballs,
//!   wheels, library jars), wherever they lie;
//! - `distro`: the files a distribution's package manager installed (dpkg's
//!   `*.md5sums`, apk's `installed`), each kept with the layer that listed it.
//!
//! The application's own files are never roots: a package is proven by
//! metadata that only an installer or a library build writes (an
//! application's top-level `package.json` is not under `node_modules`; an
//! application jar has a `Main-Class` or a `WEB-INF`/`BOOT-INF` tree).
//!
//! It is cheap: the decision uses only paths the layer walk sees anyway, the
//! small metadata files it reads ([`wants_content`]), and archive member
//! names; the roots of every layer of the image are pooled, so a package
//! installed in one layer covers its files in any layer. It owns no path
//! rules and no severity policy.

pub(crate) mod archive;
pub(crate) mod distro;
pub(crate) mod java;
pub(crate) mod node;
pub(crate) mod python;
pub(crate) mod vendor;

use std::collections::{HashMap, HashSet};

use crate::image::path::{file_name, parent};

/// Metadata files larger than this are not parsed (a big RECORD is a few hundred KiB).
pub const MAX_METADATA_FILE: u64 = 4 << 20;
/// Roots taken from one metadata file at most (a RECORD lists files; their
/// top-level names are few, so this only bounds hostile input).
const MAX_ROOTS_PER_FILE: usize = 4096;

/// Image paths (directories, files, or archive members written
/// `/outer.jar!inner/member`) that belong to installed third-party packages.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageRoots {
    roots: HashSet<String>,
    /// Directories holding an exploded Maven artifact
    /// (`DIR/META-INF/maven/**/pom.properties`): roots unless `DIR` is an application.
    #[serde(default)]
    maven_dirs: HashSet<String>,
    /// Exploded application directories (`DIR/META-INF/MANIFEST.MF` naming a
    /// `Main-Class`, or a `DIR/WEB-INF` tree).
    #[serde(default)]
    apps: HashSet<String>,
    /// Files a distribution package manager installed ([`distro`]), each
    /// with the last layer whose package database lists it (0 within one
    /// layer's walk; [`PackageRoots::extend_from_layer`] sets it).
    #[serde(default)]
    distro_files: HashMap<String, usize>,
}

impl PackageRoots {
    /// Adds one root (an absolute image path, or `path!member` inside archives).
    pub fn insert(&mut self, root: String) {
        self.roots.insert(root);
    }

    /// Records an exploded Maven artifact directory (a root unless it is an application).
    pub(crate) fn insert_maven_dir(&mut self, dir: String) {
        self.maven_dirs.insert(dir);
    }

    /// Records an exploded application directory.
    pub(crate) fn insert_app(&mut self, dir: String) {
        self.apps.insert(dir);
    }

    /// Records a file listed by a distribution's package database.
    pub(crate) fn insert_distro_file(&mut self, path: String) {
        self.distro_files.entry(path).or_insert(0);
    }

    /// Adds every root of `other`.
    pub fn extend(&mut self, other: &PackageRoots) {
        self.roots.extend(other.roots.iter().cloned());
        self.maven_dirs.extend(other.maven_dirs.iter().cloned());
        self.apps.extend(other.apps.iter().cloned());
        for (path, &layer) in &other.distro_files {
            let last = self.distro_files.entry(path.clone()).or_insert(layer);
            *last = (*last).max(layer);
        }
    }

    /// Adds every root of `other`, the roots of layer `layer`: its
    /// distribution files are recorded as listed by that layer.
    pub fn extend_from_layer(&mut self, other: &PackageRoots, layer: usize) {
        self.roots.extend(other.roots.iter().cloned());
        self.maven_dirs.extend(other.maven_dirs.iter().cloned());
        self.apps.extend(other.apps.iter().cloned());
        for path in other.distro_files.keys() {
            let last = self.distro_files.entry(path.clone()).or_insert(layer);
            *last = (*last).max(layer);
        }
    }

    /// True when the file at `path`, as stored in layer `layer`, is one a
    /// distribution package installed: a package database of that layer or
    /// a later one lists it. A copy written by a later layer than every
    /// database that lists it was put there by something else.
    pub fn holds_distro_file(&self, path: &str, layer: usize) -> bool {
        self.last_listing(path).is_some_and(|last| last >= layer)
    }

    /// True when the image has a package database (dpkg's or apk's) that
    /// lists files.
    pub fn knows_distro_files(&self) -> bool {
        !self.distro_files.is_empty()
    }

    /// True when a package database of any layer lists `path`.
    pub fn lists_distro_file(&self, path: &str) -> bool {
        self.last_listing(path).is_some()
    }

    /// The last layer whose package database lists `path`, under its own
    /// name or its merged-`/usr` alias (`/bin/sh` is `/usr/bin/sh` where
    /// `/bin` links to `usr/bin`: dpkg lists a file as its package ships it,
    /// the layer stores it where the link leads).
    fn last_listing(&self, path: &str) -> Option<usize> {
        let own = self.distro_files.get(path).copied();
        let alias = distro::usr_alias(path).and_then(|a| self.distro_files.get(&a).copied());
        own.max(alias)
    }

    /// True when `path` (an image path, archive levels joined with `!`) is a
    /// root or lies under one.
    pub fn holds(&self, path: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        let mut p = path.trim_end_matches('/');
        while !p.is_empty() && p != "/" {
            if self.roots.contains(p) || (self.maven_dirs.contains(p) && !self.apps.contains(p)) {
                return true;
            }
            p = enclosing(p);
        }
        false
    }

    /// True when the member `inner` (levels joined with `!`) of the file at
    /// `path`, or the file itself, belongs to a package.
    pub(crate) fn holds_member(&self, path: &str, inner: Option<&str>) -> bool {
        match inner {
            Some(i) => self.holds(&format!("{path}!{i}")),
            None => self.holds(path),
        }
    }

    /// Number of roots held.
    pub fn len(&self) -> usize {
        self.roots.len() + self.maven_dirs.len() + self.apps.len() + self.distro_files.len()
    }

    /// True when no root is known.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty() && self.maven_dirs.is_empty() && self.distro_files.is_empty()
    }
}

/// The path one level up, where an archive (`/a.jar!x`) encloses its members.
fn enclosing(p: &str) -> &str {
    match p.rfind(['/', '!']) {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// `rel` (with `.` and `..`) resolved against the absolute directory `base`;
/// `None` when it is absolute or climbs above `/`.
pub(super) fn resolve(base: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') || rel.contains('\\') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|c| !c.is_empty()).collect();
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// True when the walk should hand this file's bytes to [`roots_from`]
/// (small metadata files whose content names what was installed).
pub fn wants_content(path: &str) -> bool {
    // Each ecosystem asks for a file of a fixed name: decide by the name first.
    (matches!(file_name(path), "RECORD" | "top_level.txt" | "installed.json" | "MANIFEST.MF")
        && (python::wants_content(path)
            || vendor::wants_content(path)
            || java::wants_content(path)))
        || distro::wants_content(path)
}

/// Package roots that the file at image path `path` proves, with its bytes
/// when [`wants_content`] asked for them (`None` otherwise, or when larger
/// than [`MAX_METADATA_FILE`]). Called for every file of every layer, so it
/// decides from the path first.
pub fn roots_from(path: &str, data: Option<&[u8]>, out: &mut PackageRoots) {
    if data.is_none() && !may_name_roots(path) {
        return;
    }
    distro::roots_from(path, data, out);
    python::roots_from(path, data, out);
    node::roots_from(path, out);
    vendor::roots_from(path, data, out);
    java::roots_from(path, data, out);
}

/// False only when no ecosystem's rule can take a root from the path alone:
/// what each module looks for by path (a file name, the name of the file's
/// directory, or a directory name anywhere in the path), in one pass, so
/// the hundreds of thousands of files that are none of these cost little.
fn may_name_roots(path: &str) -> bool {
    let name = file_name(path);
    let dir = file_name(parent(path));
    // node `package.json`; Go `vendor/modules.txt`, `/pkg/mod/`; Composer
    // `composer/installed.json`; RubyGems `*.gemspec`; Python metadata
    // directories; Java `/META-INF/maven/` and `/WEB-INF/`.
    matches!(name, "package.json" | "modules.txt" | "installed.json")
        || name.ends_with(".gemspec")
        || dir.ends_with(".dist-info")
        || dir.ends_with(".egg-info")
        // Substring searches, vectorised for short needles: cheaper than a
        // look at every `/` of every path.
        || path.contains("/pkg/mod/")
        || path.contains("/META-INF/")
        || path.contains("/WEB-INF/")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path from which some ecosystem takes a root by path alone gets
    /// through the gate; the files of an ordinary tree do not.
    #[test]
    fn path_gate_lets_every_path_rule_through() {
        let rooted = [
            "/srv/web/node_modules/express/package.json",
            "/src/app/vendor/modules.txt",
            "/app/vendor/composer/installed.json",
            "/usr/local/bundle/specifications/rack-3.0.8.gemspec",
            "/root/go/pkg/mod/github.com/x/y@v1.2.3/z.go",
            "/root/go/pkg/mod/cache/download/github.com/x/y/@v/v1.2.3.zip",
            "/opt/lib/jackson/META-INF/maven/com.f/jackson/pom.properties",
            "/srv/shop/WEB-INF/web.xml",
            "/srv/x/Django-5.0.dist-info/METADATA",
            "/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
        ];
        for path in rooted {
            let mut each = PackageRoots::default();
            python::roots_from(path, None, &mut each);
            node::roots_from(path, &mut each);
            vendor::roots_from(path, None, &mut each);
            java::roots_from(path, None, &mut each);
            assert!(!each.is_empty() || !each.apps.is_empty(), "{path}: no module takes a root");
            assert!(may_name_roots(path), "{path}");
            let mut gated = PackageRoots::default();
            roots_from(path, None, &mut gated);
            assert_eq!(gated, each, "{path}");
        }
        for path in ["/srv/app/node_modules/x/lib/index.js", "/usr/include/stdio.h", "/a", "/"] {
            assert!(!may_name_roots(path), "{path}");
        }
    }

    #[test]
    fn roots_cover_archive_members() {
        let mut roots = PackageRoots::default();
        roots.insert("/app/app.jar!BOOT-INF/lib/aws.jar".into());
        roots.insert("/root/.npm/_cacache/content-v2/sha512/ab/cd/ef".into());
        assert!(
            roots.holds_member("/app/app.jar", Some("BOOT-INF/lib/aws.jar!com/x/y.properties"))
        );
        assert!(!roots.holds_member("/app/app.jar", Some("BOOT-INF/classes/app.properties")));
        assert!(
            roots.holds_member(
                "/root/.npm/_cacache/content-v2/sha512/ab/cd/ef",
                Some("package/x.js")
            )
        );
        assert!(!roots.holds("/app/app.jar"));
    }

    #[test]
    fn exploded_maven_dirs_are_roots_unless_applications() {
        let mut roots = PackageRoots::default();
        java::roots_from(
            "/opt/lib/jackson/META-INF/maven/com.f/jackson/pom.properties",
            None,
            &mut roots,
        );
        java::roots_from("/app/META-INF/maven/com.example/demo/pom.properties", None, &mut roots);
        assert!(roots.holds("/opt/lib/jackson/com/f/x.properties"));
        assert!(roots.holds("/app/application.properties"), "not yet known to be an application");
        let mut app = PackageRoots::default();
        java::roots_from(
            "/app/META-INF/MANIFEST.MF",
            Some(b"Manifest-Version: 1.0\r\nMain-Class: com.example.Demo\r\n"),
            &mut app,
        );
        // Pooled in any order (the manifest may be in another layer).
        roots.extend(&app);
        assert!(!roots.holds("/app/application.properties"));
        assert!(roots.holds("/opt/lib/jackson/com/f/x.properties"));
    }
}
