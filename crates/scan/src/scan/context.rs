//! Path context: documentation, tests and third-party packages hold
//! example credentials far more often than real ones (SDK docs, test
//! certificates, mock servers). Findings there are kept, so a responder can
//! still see them, but capped at `info` so they do not fail a pipeline.
//!
//! Third-party code is recognised two ways: by the standard install trees
//! (`site-packages`, `node_modules`, `vendor`, a jar's `BOOT-INF/lib`), and,
//! wherever it was installed, by the package metadata beside it
//! ([`super::packages`], passed in by the pipeline).

use super::packages::PackageRoots;

pub use crate::finding::context::PathContext;

/// Directory names that mean documentation wherever they are, in any case
/// (`Docs/`, `Examples/`: PHP, .NET and Java projects capitalise them). `man`
/// holds manual pages wherever a package keeps its own (Bundler's under
/// Ruby's library tree, npm's under its package).
const DOC_DIRS: &[&str] = &[
    "doc", "docs", "examples", "example", "samples", "sample", "demo", "demos", "javadoc",
    "gtk-doc", "man",
];
/// System documentation trees (names like `info` or `help` are too common elsewhere).
const SYSTEM_DOC_TREES: &[&str] = &[
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/help/",
    "/usr/share/gtk-doc/",
];
/// Directory names that mean tests wherever they are, in any case (PSR-4
/// `Tests/` and `Test/` in PHP packages, `Fixtures/`).
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
    "bower_components",
];

/// True when `dir` is one of `names`, ignoring ASCII case.
fn named(names: &[&str], dir: &str) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(dir))
}

/// A language runtime's own library tree, installed from its release
/// tarball where no package database lists it: the official Docker images
/// build Python, Ruby, PHP and Go under `/usr/local` (`lib/python3.12/`,
/// `lib/ruby/3.3.0/`, `include/ruby-3.3.0/`, `lib/php/`, `/usr/local/go/`),
/// as pyenv, rbenv and conda do under their own prefixes for Python and
/// Ruby. Their standard libraries document credentials in URLs and
/// assignments (`URI.parse("http://john:S3nsit1ve@…")` in Ruby's
/// `uri/generic.rb`). Application code never lives inside these trees. Go
/// and PHP roots are taken only at their `/usr/local` locations: `/go/src/app`
/// is a GOPATH and `/app/lib/php/` an application's own code.
///
/// The distribution's own prefixes (`/usr/lib/`, `/usr/share/`,
/// `/usr/include/`) are left to its package database
/// ([`super::packages`]), which knows which layer wrote each file: a
/// packaged file rewritten by a later layer keeps the rule's severity there.
fn in_runtime_tree(full: &str, dirs: &[&str]) -> bool {
    const DISTRO_PREFIXES: &[&str] = &["/usr/lib/", "/usr/lib64/", "/usr/share/", "/usr/include/"];
    const ROOTS: &[&str] = &["/usr/local/go/", "/usr/local/lib/php/"];
    if DISTRO_PREFIXES.iter().any(|p| full.starts_with(p)) {
        return false;
    }
    let stdlib = dirs.windows(2).any(|w| match (w[0], w[1]) {
        ("lib" | "lib64", d) | ("include", d) if versioned(d, "python") => true,
        ("include", d) => versioned(d, "ruby-"),
        _ => false,
    }) || dirs.windows(3).any(|w| {
        matches!(w[0], "lib" | "lib64")
            && w[1] == "ruby"
            && (versioned(w[2], "") || matches!(w[2], "vendor_ruby" | "site_ruby"))
    });
    stdlib || ROOTS.iter().any(|r| full.starts_with(r))
}

/// `name` followed by a version made of digits and dots (`python3.11`,
/// `ruby-3.1.0`; with an empty name, `3.1.0`).
fn versioned(dir: &str, name: &str) -> bool {
    dir.strip_prefix(name).is_some_and(|v| {
        v.starts_with(|c: char| c.is_ascii_digit())
            && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    })
}

/// Maven's home (`~/.m2`) holds third-party code only in its local
/// repository and wrapper downloads; `settings.xml` and
/// `settings-security.xml` beside them are the user's own credentials.
fn in_maven_download_tree(dirs: &[&str]) -> bool {
    dirs.windows(2).any(|w| w[0] == ".m2" && matches!(w[1], "repository" | "wrapper"))
}

/// Package managers' download caches: the sources and archives of
/// dependencies, fetched as published (`~/.cargo/registry/src/…/rustls-0.23/`,
/// the rust image's `/usr/local/cargo/registry`, Go's module cache, Gradle's and NuGet's caches),
/// and the distributions' package caches under `/var/cache` (apt's `archives/*.deb`, dnf's
/// and yum's `*.rpm`, apk's, zypper's, pacman's), whose packages are opened like any
/// archive: their members are the distribution's files, as installed ones are. The user's
/// own files beside them (`~/.cargo/credentials.toml`, `~/.gradle/gradle.properties`,
/// `~/.nuget/NuGet/NuGet.Config`) are not in these directories.
fn in_package_cache(dirs: &[&str]) -> bool {
    let distro_cache = dirs.windows(3).any(|w| {
        w[0] == "var"
            && w[1] == "cache"
            && matches!(w[2], "apt" | "dnf" | "yum" | "libdnf5" | "apk" | "zypp" | "pacman")
    });
    distro_cache
        || dirs.windows(2).any(|w| {
            matches!(
                (w[0], w[1]),
                (".cargo" | "cargo", "registry" | "git")
                    | ("pkg", "mod")
                    | (".gradle", "caches")
                    | (".nuget", "packages")
                    | (".ivy2", "cache")
                    | (".npm", "_cacache")
            )
        })
}

/// Members of these directories of an application archive, or of the
/// archive exploded on disk, are bundled third-party jars (Spring Boot,
/// servlet WARs).
const BUNDLED_LIB_DIRS: &[&str] = &["BOOT-INF/lib/", "WEB-INF/lib/"];

/// SDK API model and example data: botocore's `data/<service>/<version>/`
/// files (`examples-1.json`, `service-2.json`…) and the AWS JS SDK's
/// `apis/*.examples.json`. They document requests and responses with
/// credential-shaped sample values; they never configure anything.
fn is_sdk_model_data(lower_name: &str) -> bool {
    const BOTOCORE_KINDS: &[&str] =
        &["examples-", "service-", "paginators-", "waiters-", "endpoint-rule-set-"];
    let json = lower_name.strip_suffix(".json").or_else(|| lower_name.strip_suffix(".json.gz"));
    let versioned_model = json.is_some_and(|stem| {
        BOTOCORE_KINDS.iter().any(|k| {
            stem.strip_prefix(k)
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        })
    });
    versioned_model || lower_name.ends_with(".examples.json")
}

/// [`classify`], plus third-party package roots proven by package metadata
/// anywhere in the image, and files a distribution package installed (as
/// stored in layer `layer`: a later rewrite of one is not the package's);
/// minus system binaries no package installed, where the image has a
/// package database to tell.
pub fn classify_in(
    path: &str,
    inner: Option<&str>,
    layer: usize,
    roots: &PackageRoots,
) -> Option<PathContext> {
    let context = match classify(path, inner) {
        // Where a package database lists the system's files, a binary in a system
        // directory that no package installed is the image's own (`COPY app
        // /usr/bin/app`): what it holds is reported at the rule's severity.
        Some(PathContext::SystemBinary)
            if roots.knows_distro_files() && !roots.lists_distro_file(path) =>
        {
            None
        }
        context => context,
    };
    context.or_else(|| {
        (roots.holds_member(path, inner) || roots.holds_distro_file(path, layer))
            .then_some(PathContext::ThirdParty)
    })
}

/// The context of an image path (with `!`-joined nested members), if any.
pub fn classify(path: &str, inner: Option<&str>) -> Option<PathContext> {
    let full = joined(path, inner);
    let components = components(&full);
    let (dirs, file) = match components.split_last() {
        Some((file, dirs)) => (dirs, *file),
        None => return None,
    };
    let lower = file.to_ascii_lowercase();
    if dirs.iter().any(|d| named(TEST_DIRS, d))
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
        || [".md", ".rst", ".adoc", ".markdown"].iter().any(|s| lower.ends_with(s))
        || is_sdk_model_data(&lower);
    if doc_file
        || dirs.iter().any(|d| named(DOC_DIRS, d))
        || SYSTEM_DOC_TREES.iter().any(|t| full.starts_with(t))
    {
        return Some(PathContext::Documentation);
    }
    if third_party_place(&full, dirs) {
        return Some(PathContext::ThirdParty);
    }
    if is_system_binary(path, inner, &file_name_lower(path)) {
        return Some(PathContext::SystemBinary);
    }
    None
}

/// True for a path in a tree of someone else's code, by its directories.
fn third_party_place(full: &str, dirs: &[&str]) -> bool {
    // In an archive or exploded on disk (`COPY --from=build app/dependencies/ ./`).
    let bundled = BUNDLED_LIB_DIRS.iter().any(|d| full.contains(d));
    bundled
        || dirs.iter().any(|d| THIRD_PARTY_DIRS.contains(d))
        || in_maven_download_tree(dirs)
        || in_package_cache(dirs)
        || in_runtime_tree(full, dirs)
}

/// True when a path [`classify_in`] puts in documentation or tests is the
/// image's own: not in the system's documentation trees, a third-party
/// tree, a package or a distribution package's files. (A README inside
/// `node_modules` is documentation by name and a package's by place.)
pub fn is_own(path: &str, inner: Option<&str>, layer: usize, roots: &PackageRoots) -> bool {
    let full = joined(path, inner);
    let components = components(&full);
    let dirs = components.split_last().map_or(&[][..], |(_, dirs)| dirs);
    !(SYSTEM_DOC_TREES.iter().any(|t| full.starts_with(t))
        || third_party_place(&full, dirs)
        || roots.holds_member(path, inner)
        || roots.holds_distro_file(path, layer))
}

/// An image path with its archive members, joined with `!`.
fn joined(path: &str, inner: Option<&str>) -> String {
    match inner {
        Some(i) => format!("{path}!{i}"),
        None => path.to_owned(),
    }
}

/// The directory and file names of a [`joined`] path, archive levels included.
fn components(full: &str) -> Vec<&str> {
    full.split(['/', '!']).filter(|c| !c.is_empty()).collect()
}

fn file_name_lower(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase()
}

/// Distribution binaries: executables in the system bin directories, and
/// compiled code in the system library directories: shared objects, static
/// archives (`.a`, whose members are the same object code as the `.so`),
/// object files, kernel modules (also compressed), the JDK's compiled
/// module images, and the compiled classes of jars under `/usr/share` or a
/// library directory (an application jar's config files there are not
/// capped). Decided on the outer file, so members of a compressed module
/// count too.
fn is_system_binary(path: &str, inner: Option<&str>, lower_name: &str) -> bool {
    const BIN_DIRS: &[&str] = &["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/usr/libexec/"];
    const COMPILED: &[&str] = &[".a", ".o", ".ko", ".ko.gz", ".ko.xz", ".ko.zst", ".jmod", ".jsa"];
    let shared_object = lower_name.ends_with(".so") || lower_name.contains(".so.");
    let compiled = shared_object || COMPILED.iter().any(|e| lower_name.ends_with(e));
    // The JDK's compiled module image (`lib/modules`, a jimage) holds its tools' help texts.
    let jdk_image = path.starts_with("/usr/lib/jvm/") && lower_name == "modules";
    // Classes of jars the distribution installs (`/usr/share/java`, `/usr/share/<pkg>/`).
    let system_jar = lower_name.ends_with(".jar")
        && inner.is_some_and(|i| i.ends_with(".class"))
        && (path.starts_with("/usr/share/") || in_lib_dir(path));
    BIN_DIRS.iter().any(|d| path.starts_with(d) && !path[d.len()..].contains('/'))
        || ((compiled || jdk_image) && in_lib_dir(path))
        || system_jar
}

fn in_lib_dir(path: &str) -> bool {
    const LIB_DIRS: &[&str] = &["/usr/lib/", "/usr/lib64/", "/lib/", "/lib64/", "/usr/libexec/"];
    LIB_DIRS.iter().any(|d| path.starts_with(d))
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
            ("/usr/lib/x86_64-linux-gnu/libgnutls.a", None, Some(SystemBinary)),
            ("/usr/lib/gcc/x86_64-linux-gnu/12/crtbegin.o", None, Some(SystemBinary)),
            ("/lib/modules/6.1.0-13-amd64/kernel/net/tls/tls.ko", None, Some(SystemBinary)),
            ("/lib/modules/6.1.0/kernel/net/tls/tls.ko.xz", Some("tls.ko"), Some(SystemBinary)),
            ("/usr/lib/jvm/java-17-openjdk-amd64/jmods/java.base.jmod", None, Some(SystemBinary)),
            ("/usr/local/lib/libmine.a", None, None),
            ("/app/build/libmine.a", None, None),
            ("/opt/app/lib/crypto.o", None, None),
            ("/usr/lib/myapp/backup.tar", None, None),
            ("/usr/lib/jvm/java-17-openjdk-amd64/lib/modules", None, Some(SystemBinary)),
            ("/usr/share/java/ca-certificates-java.jar", Some("org/x/A.class"), Some(SystemBinary)),
            ("/usr/share/myapp/app.jar", Some("BOOT-INF/classes/application.yml"), None),
            ("/app/lib/modules", None, None),
            ("/app/lib/app.jar", Some("BOOT-INF/classes/application.yml"), None),
            ("/app/pylibs/x/data/sts/2011-06-15/examples-1.json", None, Some(Documentation)),
            (
                "/srv/botocore/data/ec2/2016-11-15/service-2.json.gz",
                Some("service-2.json"),
                Some(Documentation),
            ),
            ("/app/aws-sdk/apis/sts-2011-06-15.examples.json", None, Some(Documentation)),
            ("/app/config/service-2.yaml", None, None),
            ("/app/config/service-prod.json", None, None),
            (
                "/app/app.jar",
                Some("BOOT-INF/lib/aws-sdk.jar!com/x/Fixture.properties"),
                Some(ThirdParty),
            ),
            ("/app/app.war", Some("WEB-INF/classes/app.properties"), None),
            ("/app/BOOT-INF/lib/aws-sdk.jar", Some("com/x/Fixture.properties"), Some(ThirdParty)),
            ("/usr/local/tomcat/webapps/ROOT/WEB-INF/lib/x.jar", None, Some(ThirdParty)),
            ("/usr/local/tomcat/webapps/ROOT/WEB-INF/classes/app.properties", None, None),
            ("/app/BOOT-INF/classes/application.yml", None, None),
            (
                "/var/cache/apt/archives/libgnutls30_3.7.9-2_amd64.deb",
                Some("data.tar.xz!usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3"),
                Some(ThirdParty),
            ),
            (
                "/var/cache/dnf/fedora-x/packages/openssl-3.0.rpm",
                Some("usr/bin/x"),
                Some(ThirdParty),
            ),
            ("/var/cache/myapp/token.txt", None, None),
            ("/srv/myapp_1.0_amd64.deb", Some("data.tar.xz!etc/myapp/secret.conf"), None),
            // Capitalised test and doc directories; manual pages kept by a package.
            ("/usr/share/php/Symfony/Contracts/HttpClient/Test/X.php", None, Some(Test)),
            ("/app/vendor/acme/sdk/Tests/Fixtures/keys.php", None, Some(Test)),
            ("/srv/app/Docs/setup.txt", None, Some(Documentation)),
            ("/usr/lib/ruby/3.1.0/bundler/man/bundle-config.1", None, Some(Documentation)),
            ("/srv/app/manifest/settings.yml", None, None),
            // Runtimes installed from their release tarballs (official images, pyenv).
            ("/usr/local/lib/ruby/3.3.0/uri/generic.rb", None, Some(ThirdParty)),
            ("/usr/local/lib/ruby/site_ruby/3.3.0/x.rb", None, Some(ThirdParty)),
            ("/usr/local/include/ruby-3.3.0/ruby/config.h", None, Some(ThirdParty)),
            ("/usr/local/lib/python3.12/smtplib.py", None, Some(ThirdParty)),
            ("/root/.pyenv/versions/3.11.9/lib/python3.11/imaplib.py", None, Some(ThirdParty)),
            ("/usr/local/go/src/crypto/x509/pkcs8.go", None, Some(ThirdParty)),
            // The distribution's prefixes are its package database's to judge.
            ("/usr/share/go-1.19/src/net/smtp/auth.go", None, None),
            ("/usr/lib/ruby/3.1.0/uri/generic.rb", None, None),
            ("/usr/local/lib/php/PEAR.php", None, Some(ThirdParty)),
            ("/go/src/app/config.go", None, None),
            ("/app/lib/php/config.php", None, None),
            ("/app/ruby/config.rb", None, None),
            ("/srv/go-app/main.go", None, None),
            ("/app/lib/pythonic/settings.py", None, None),
        ];
        for (p, i, want) in cases {
            assert_eq!(classify(p, i), want, "{p}");
        }
    }
}

#[cfg(test)]
mod package_tests {
    use super::*;

    #[test]
    fn package_metadata_makes_any_install_dir_third_party() {
        let mut roots = PackageRoots::default();
        super::super::packages::roots_from(
            "/app/pylibs/requests-2.32.3.dist-info/RECORD",
            Some(b"requests/__init__.py,sha256=x,1\n"),
            &mut roots,
        );
        let f = "/app/pylibs/requests/auth.py";
        assert_eq!(classify(f, None), None, "no standard path says so");
        assert_eq!(classify_in(f, None, 0, &roots), Some(PathContext::ThirdParty));
        assert_eq!(classify_in("/app/server.py", None, 0, &roots), None);
        // Path rules still come first.
        assert_eq!(
            classify_in("/app/pylibs/requests/README.md", None, 0, &roots),
            Some(PathContext::Documentation)
        );
    }
}

#[cfg(test)]
mod maven_tests {
    use super::*;

    #[test]
    fn maven_settings_are_the_users_own_its_repository_is_third_party() {
        for own in ["/root/.m2/settings.xml", "/home/ci/.m2/settings-security.xml"] {
            assert_eq!(classify(own, None), None, "{own}");
        }
        for dep in [
            "/root/.m2/repository/org/acme/lib/1.0/lib-1.0.jar",
            "/root/.m2/wrapper/dists/apache-maven-3.9.6-bin/x/conf/settings.xml",
        ] {
            assert_eq!(classify(dep, None), Some(PathContext::ThirdParty), "{dep}");
        }
    }

    #[test]
    fn package_caches_are_third_party_the_users_own_files_beside_them_are_not() {
        for own in [
            "/root/.cargo/credentials.toml",
            "/root/.cargo/config.toml",
            "/home/ci/.gradle/gradle.properties",
            "/root/.nuget/NuGet/NuGet.Config",
            "/root/.npmrc",
            "/go/src/app/main.go",
        ] {
            assert_eq!(classify(own, None), None, "{own}");
        }
        for dep in [
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ureq-3.5.2/src/proxy.rs",
            "/usr/local/cargo/git/checkouts/lib-1a2b3c/abc123/src/lib.rs",
            "/go/pkg/mod/github.com/acme/client@v1.2.3/auth.go",
            "/home/ci/.gradle/caches/modules-2/files-2.1/org.acme/lib/1.0/x/lib-1.0.jar",
            "/root/.nuget/packages/acme.client/1.0.0/lib/net8.0/Acme.Client.dll",
            "/root/.npm/_cacache/content-v2/sha512/ab/cd/ef",
        ] {
            assert_eq!(classify(dep, None), Some(PathContext::ThirdParty), "{dep}");
        }
    }
}
