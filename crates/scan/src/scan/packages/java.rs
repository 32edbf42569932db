//! Java libraries, told from applications by the metadata every jar build
//! writes: `META-INF/MANIFEST.MF` and, for Maven builds,
//! `META-INF/maven/<group>/<artifact>/pom.properties`.
//!
//! A jar (or an exploded jar directory) is a *library* when it carries a
//! library's identity (Maven `pom.properties`, an OSGi `Bundle-SymbolicName`,
//! an `Automatic-Module-Name`) and is not an application: no `Main-Class` or
//! `Start-Class` in its manifest, no `WEB-INF/` or `BOOT-INF/` tree (web
//! and Spring Boot applications), no `META-INF/application.xml` (an EAR).
//! An application's manifest also names its dependencies: each `.jar` of
//! its `Class-Path`, relative to the application jar, is a library.
//!
//! Limit: an application shipped as a plain Maven jar without `Main-Class`
//! (started with `java -cp app.jar Main`) looks like a library; its findings
//! are kept, capped at info with context `third-party package`.

use super::{PackageRoots, resolve};
use crate::image::path::{file_name, parent};

/// Largest manifest read (real ones are a few KiB; big OSGi ones tens of KiB).
pub const MAX_MANIFEST: u64 = 256 << 10;

/// What a manifest's main section says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// `Main-Class` or `Start-Class`: an application.
    pub is_application: bool,
    /// `Bundle-SymbolicName` or `Automatic-Module-Name`: a library's identity.
    pub has_library_id: bool,
    /// The `Class-Path` entries, as written (space-separated relative URLs).
    pub class_path: Vec<String>,
}

/// Parses the main section of a manifest (72-byte lines continued by a
/// leading space; attribute names are case-insensitive).
pub fn parse_manifest(bytes: &[u8]) -> Manifest {
    let text = String::from_utf8_lossy(bytes);
    let mut attributes: Vec<String> = Vec::new();
    for line in text.split(['\n']).map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            break;
        }
        match (line.strip_prefix(' '), attributes.last_mut()) {
            (Some(more), Some(last)) => last.push_str(more),
            _ => attributes.push(line.to_owned()),
        }
    }
    let mut m = Manifest::default();
    for a in &attributes {
        let Some((name, value)) = a.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "main-class" | "start-class" if !value.is_empty() => m.is_application = true,
            "bundle-symbolicname" | "automatic-module-name" if !value.is_empty() => {
                m.has_library_id = true;
            }
            "class-path" => m.class_path = value.split_whitespace().map(str::to_owned).collect(),
            _ => {}
        }
    }
    m
}

fn is_pom_properties(name: &str) -> bool {
    name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties")
}

/// True when a zip with these member names (and this manifest, if it has
/// one) is a library jar, not an application.
pub fn is_library<'a>(
    names: impl IntoIterator<Item = &'a str>,
    manifest: Option<&Manifest>,
) -> bool {
    if manifest.is_some_and(|m| m.is_application) {
        return false;
    }
    let mut has_pom = false;
    for n in names {
        if n.starts_with("WEB-INF/")
            || n.starts_with("BOOT-INF/")
            || n == "META-INF/application.xml"
        {
            return false;
        }
        has_pom |= is_pom_properties(n);
    }
    has_pom || manifest.is_some_and(|m| m.has_library_id)
}

/// The jars an application jar at image path `jar` names in its
/// `Class-Path` (directories and absolute URLs are not taken: they may be
/// the application's own classes).
pub fn class_path_roots(jar: &str, manifest: &Manifest, out: &mut PackageRoots) {
    for entry in manifest.class_path.iter().take(super::MAX_ROOTS_PER_FILE) {
        let lower = entry.to_ascii_lowercase();
        if entry.contains(':') || !(lower.ends_with(".jar") || lower.ends_with(".zip")) {
            continue;
        }
        if let Some(dep) = resolve(parent(jar), entry)
            && dep != jar
        {
            out.insert(dep);
        }
    }
}

/// True for `META-INF/MANIFEST.MF`, which says whether its directory is an application.
pub(super) fn wants_content(path: &str) -> bool {
    file_name(path) == "MANIFEST.MF" && file_name(parent(path)) == "META-INF"
}

/// Exploded jars: `DIR/META-INF/maven/**/pom.properties` makes `DIR` a
/// library unless `DIR/META-INF/MANIFEST.MF` names a main class or
/// `DIR/WEB-INF/` exists (decided when the image's roots are pooled).
pub(super) fn roots_from(path: &str, data: Option<&[u8]>, out: &mut PackageRoots) {
    if let Some(i) = path.find("/META-INF/maven/")
        && path.ends_with("/pom.properties")
        && i > 0
    {
        out.insert_maven_dir(path[..i].to_owned());
    }
    if let Some(i) = path.find("/WEB-INF/")
        && i > 0
    {
        out.insert_app(path[..i].to_owned());
    }
    if let Some(data) = data
        && wants_content(path)
        && parse_manifest(data).is_application
    {
        let dir = parent(parent(path));
        if dir != "/" {
            out.insert_app(dir.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse() {
        let m = parse_manifest(
            b"Manifest-Version: 1.0\r\nMain-Class: com.example.Main\r\nClass-Path: lib/jackson-core-2.17.0.jar lib/very-lon\r\n g-name-1.0.jar classes/\r\n\r\nName: x\r\nBundle-SymbolicName: y\r\n",
        );
        assert!(m.is_application);
        assert!(!m.has_library_id, "only the main section counts");
        assert_eq!(
            m.class_path,
            ["lib/jackson-core-2.17.0.jar", "lib/very-long-name-1.0.jar", "classes/"]
        );
        let lib = parse_manifest(b"Manifest-Version: 1.0\nAutomatic-Module-Name: okhttp3\n");
        assert!(!lib.is_application && lib.has_library_id);
    }

    #[test]
    fn libraries_and_applications() {
        let pom = "META-INF/maven/com.amazonaws/aws-java-sdk-core/pom.properties";
        let plain = Manifest::default();
        let app = Manifest { is_application: true, ..Manifest::default() };
        assert!(is_library(["META-INF/MANIFEST.MF", pom, "com/amazonaws/A.class"], Some(&plain)));
        assert!(!is_library(["META-INF/MANIFEST.MF", pom], Some(&app)));
        assert!(!is_library([pom, "WEB-INF/classes/app.properties"], None), "a war");
        assert!(!is_library([pom, "BOOT-INF/classes/application.yml"], Some(&plain)));
        assert!(
            !is_library(["META-INF/MANIFEST.MF", "app.properties"], Some(&plain)),
            "no identity"
        );

        let mut roots = PackageRoots::default();
        let m = parse_manifest(
            b"Main-Class: a.B\nClass-Path: lib/dep.jar ../shared/x.jar classes/ http://h/y.jar\n",
        );
        class_path_roots("/opt/app/app.jar", &m, &mut roots);
        assert!(roots.holds("/opt/app/lib/dep.jar"));
        assert!(roots.holds("/opt/shared/x.jar"));
        assert!(!roots.holds("/opt/app/classes/app.properties"));
        assert!(!roots.holds("/opt/app/app.jar"));
    }

    #[test]
    fn exploded_war_is_an_application() {
        let mut roots = PackageRoots::default();
        let root = "/usr/local/tomcat/webapps/ROOT";
        roots_from(
            &format!("{root}/META-INF/maven/com.example/shop/pom.properties"),
            None,
            &mut roots,
        );
        roots_from(&format!("{root}/WEB-INF/classes/application.properties"), None, &mut roots);
        assert!(!roots.holds(&format!("{root}/WEB-INF/classes/application.properties")));
    }
}
