//! Path context: documentation, tests and third-party packages hold
//! example credentials far more often than real ones (SDK docs, test
//! certificates, mock servers). Findings there are kept, so a responder can
//! still see them, but capped at `info` so they do not fail a pipeline.

/// Why a path is unlikely to hold a live credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathContext {
    /// Manuals, docs, examples, READMEs, changelogs, package metadata.
    Documentation,
    /// Test suites and fixtures.
    Test,
    /// Installed third-party packages (site-packages, node_modules, vendor…).
    ThirdParty,
    /// Shared libraries and executables of the distribution (`/usr/lib/…/libgnutls.so`
    /// carries its self-test keys); `/usr/local` and `/opt` are not included.
    SystemBinary,
}

impl PathContext {
    /// Words for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PathContext::Documentation => "documentation",
            PathContext::Test => "test",
            PathContext::ThirdParty => "third-party package",
            PathContext::SystemBinary => "system binary",
        }
    }
}

/// Directory names that mean documentation wherever they are.
const DOC_DIRS: &[&str] = &[
    "doc", "docs", "examples", "example", "samples", "sample", "demo", "demos", "javadoc",
    "gtk-doc",
];
/// System documentation trees (names like `info` or `help` are too common elsewhere).
const SYSTEM_DOC_TREES: &[&str] = &[
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/help/",
    "/usr/share/gtk-doc/",
];
const TEST_DIRS: &[&str] = &[
    "test",
    "tests",
    "testing",
    "testdata",
    "test-data",
    "test_data",
    "fixtures",
    "__tests__",
    "spec",
    "specs",
    "mocks",
    "certdata",
];
const THIRD_PARTY_DIRS: &[&str] = &[
    "site-packages",
    "dist-packages",
    "node_modules",
    "vendor",
    "_vendor",
    "gems",
    ".m2",
    "bower_components",
];

/// The context of an image path (with `!`-joined nested members), if any.
pub fn classify(path: &str, inner: Option<&str>) -> Option<PathContext> {
    let full = match inner {
        Some(i) => format!("{path}!{i}"),
        None => path.to_owned(),
    };
    let components: Vec<&str> = full.split(['/', '!']).filter(|c| !c.is_empty()).collect();
    let (dirs, file) = match components.split_last() {
        Some((file, dirs)) => (dirs, *file),
        None => return None,
    };
    let lower = file.to_ascii_lowercase();
    if dirs.iter().any(|d| TEST_DIRS.contains(d))
        || lower.starts_with("test_")
        || ["_test.py", "_test.go", ".test.js", ".test.ts", ".spec.js", ".spec.ts", "conftest.py"]
            .iter()
            .any(|s| lower.ends_with(s))
    {
        return Some(PathContext::Test);
    }
    let doc_file = ["readme", "changelog", "changes", "news"].iter().any(|p| lower.starts_with(p))
        // Python package metadata (dist-info/egg-info), by exact name only.
        || lower == "pkg-info"
        || lower == "metadata"
        || [".md", ".rst", ".adoc", ".markdown"].iter().any(|s| lower.ends_with(s));
    if doc_file
        || dirs.iter().any(|d| DOC_DIRS.contains(d))
        || SYSTEM_DOC_TREES.iter().any(|t| full.starts_with(t))
    {
        return Some(PathContext::Documentation);
    }
    if dirs.iter().any(|d| THIRD_PARTY_DIRS.contains(d)) {
        return Some(PathContext::ThirdParty);
    }
    if inner.is_none() && is_system_binary(path, &lower) {
        return Some(PathContext::SystemBinary);
    }
    None
}

/// Distribution binaries: executables in the system bin directories and
/// shared objects in the system library directories.
fn is_system_binary(path: &str, lower_name: &str) -> bool {
    const BIN_DIRS: &[&str] = &["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/usr/libexec/"];
    const LIB_DIRS: &[&str] = &["/usr/lib/", "/usr/lib64/", "/lib/", "/lib64/", "/usr/libexec/"];
    let shared_object = lower_name.ends_with(".so") || lower_name.contains(".so.");
    BIN_DIRS.iter().any(|d| path.starts_with(d) && !path[d.len()..].contains('/'))
        || (shared_object && LIB_DIRS.iter().any(|d| path.starts_with(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts() {
        use PathContext::*;
        let cases = [
            ("/usr/share/doc/pkg/examples/key.pem", None, Some(Documentation)),
            ("/usr/share/man/man5/x.5.gz", Some("x.5"), Some(Documentation)),
            ("/usr/lib/python3.11/test/certdata/k.pem", None, Some(Test)),
            ("/app/node_modules/lib/index.js", None, Some(ThirdParty)),
            ("/srv/app/README.md", None, Some(Documentation)),
            ("/app/app.jar", Some("BOOT-INF/classes/application.properties"), None),
            ("/app/.env", None, None),
            ("/root/.ssh/id_rsa", None, None),
            ("/app/latest/config", None, None),
            ("/usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3", None, Some(SystemBinary)),
            ("/usr/bin/openssl", None, Some(SystemBinary)),
            ("/usr/local/bin/app", None, None),
            ("/usr/lib/myapp/config.yml", None, None),
            ("/app/info/settings.py", None, None),
            ("/app/metadata.json", None, None),
            ("/srv/history.txt", None, None),
            ("/usr/share/info/wget.info.gz", Some("wget.info"), Some(Documentation)),
        ];
        for (p, i, want) in cases {
            assert_eq!(classify(p, i), want, "{p}");
        }
    }
}
