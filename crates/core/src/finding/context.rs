//! Why a finding's path is unlikely to hold a live credential: the
//! classification a report shows. Deciding it from a path is
//! `scan::context`'s job; this module only names the outcomes.

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
    /// Shared libraries, static archives, object files, kernel modules and
    /// executables of the distribution (`/usr/lib/…/libgnutls.so` and
    /// `libgnutls.a` carry its self-test keys); `/usr/local` and `/opt` are
    /// not included.
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
