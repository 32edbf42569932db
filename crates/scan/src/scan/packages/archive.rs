//! Archives that are packages themselves, recognised from their members
//! wherever they lie (npm's content-addressed cache names tarballs by hash
//! only; pip's cache and wheelhouses hold wheels; Gradle's cache and
//! `/opt/*/libs` hold jars):
//!
//! - an npm package tarball (`npm pack`, the npm cache): `package/package.json`;
//! - a wheel: `NAME-VERSION.dist-info/WHEEL` or `RECORD` at its top;
//! - a library jar ([`super::java::is_library`], decided by the caller,
//!   which holds the manifest).
//!
//! Every member of such an archive belongs to the package.

/// True when an archive member named `name` (relative to the archive) shows
/// that the archive is a package.
pub fn marks_package(name: &str) -> bool {
    let name = name.trim_start_matches("./");
    if name == "package/package.json" {
        return true;
    }
    match name.split_once('/') {
        Some((top, file)) => top.ends_with(".dist-info") && matches!(file, "WHEEL" | "RECORD"),
        None => false,
    }
}

/// The root naming one archive level: the file, or `path!inner`.
pub fn level(path: &str, inner: Option<&str>) -> String {
    match inner {
        Some(i) => format!("{path}!{i}"),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_markers() {
        assert!(marks_package("package/package.json"));
        assert!(marks_package("./package/package.json"));
        assert!(marks_package("requests-2.32.3.dist-info/RECORD"));
        assert!(marks_package("boto3-1.35.0.dist-info/WHEEL"));
        assert!(!marks_package("package.json"), "an application's own manifest");
        assert!(!marks_package("app/package/package.json"));
        assert!(!marks_package("x.dist-info/METADATA"));
        assert!(!marks_package("lib/x.dist-info/RECORD"));
    }
}
