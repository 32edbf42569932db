//! Image references (`registry/repository:tag`, `…@sha256:…`,
//! `docker://…`): parsing, Docker Hub defaults, and the heuristic that tells a
//! reference from a file name that does not exist.
//!
//! It owns no I/O: whether a target is an existing path is decided by
//! `image::source` before it asks here.

use std::fmt;

/// The registry Docker Hub references resolve to when no host is named.
pub const DOCKER_HUB: &str = "docker.io";

/// Where Docker Hub's registry API actually answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// The prefix that marks a target as a registry reference whatever it looks like.
pub const SCHEME: &str = "docker://";

/// Longest tag the distribution spec allows.
const MAX_TAG: usize = 128;

/// Longest repository name we accept (the spec's practical limit).
const MAX_REPOSITORY: usize = 255;

/// A parsed image reference, normalised as Docker does
/// (`alpine` → `docker.io/library/alpine:latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `host[:port]` as written (`docker.io` for Docker Hub).
    pub registry: String,
    /// Repository path (`library/alpine`, `team/app`).
    pub repository: String,
    /// The tag, when one was given or defaulted.
    pub tag: Option<String>,
    /// The manifest digest (`sha256:<64 hex>`), when one was given.
    pub digest: Option<String>,
}

/// Why a string is not a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}': {reason}")]
pub struct ParseError {
    /// What was parsed.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Reference {
    /// Parses `[docker://][host[:port]/]path[:tag][@sha256:hex]`. Without tag
    /// or digest the tag is `latest`; see [`Reference::parse_repository`] to
    /// keep it absent.
    ///
    /// # Errors
    /// A malformed host, repository, tag or digest.
    pub fn parse(input: &str) -> Result<Reference, ParseError> {
        let mut r = Reference::parse_repository_or_ref(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some("latest".into());
        }
        Ok(r)
    }

    /// Parses a reference and requires it to name a repository only
    /// (no tag, no digest), as `--all-tags` does.
    ///
    /// # Errors
    /// A malformed reference, or one with a tag or digest.
    pub fn parse_repository(input: &str) -> Result<Reference, ParseError> {
        let r = Reference::parse_repository_or_ref(input)?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(ParseError {
                input: input.to_owned(),
                reason: "name a repository here (REGISTRY/REPO), without tag or digest".into(),
            });
        }
        Ok(r)
    }

    fn parse_repository_or_ref(input: &str) -> Result<Reference, ParseError> {
        let err = |reason: &str| ParseError {
            input: input.to_owned(),
            reason: format!("not an image reference: {reason}"),
        };
        let rest = input.strip_prefix(SCHEME).unwrap_or(input);
        if rest.is_empty() {
            return Err(err("it is empty"));
        }
        let (rest, digest) = match rest.split_once('@') {
            Some((name, digest)) => (name, Some(parse_digest(digest).map_err(|r| err(&r))?)),
            None => (rest, None),
        };
        let (registry, path) = split_registry(rest);
        let registry = match registry {
            Some(host) if !is_host(host) => return Err(err("the registry host is malformed")),
            Some("index.docker.io") => DOCKER_HUB.to_owned(),
            Some(host) => host.to_owned(),
            None => DOCKER_HUB.to_owned(),
        };
        // A colon after the last slash separates the tag.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (&path[..last_slash + i], Some(&path[last_slash + i + 1..])),
            None => (path, None),
        };
        if let Some(t) = tag
            && !is_tag(t)
        {
            return Err(err("the tag must be 1-128 letters, digits, '_', '.' or '-'"));
        }
        if !is_repository(repository) {
            return Err(err(
                "the repository must be lowercase letters and digits, separated by '.', '_', '-' or '/'",
            ));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        // The limit holds for the name as printed (`library/` added), so that
        // what we print parses back (found by fuzzing: fuzz/reference).
        if repository.len() > MAX_REPOSITORY {
            return Err(err("the repository name is longer than 255 characters"));
        }
        Ok(Reference { registry, repository, tag: tag.map(str::to_owned), digest })
    }

    /// The host the API answers on (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        registry_api_host(&self.registry)
    }

    /// The tag or digest to ask the manifests endpoint for; the digest wins.
    pub fn manifest_ref(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// `repository:tag` (or `repository@digest`): the key `--shard` hashes,
    /// independent of which registry or mirror serves it.
    pub fn shard_key(&self) -> String {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => format!("{}@{d}", self.repository),
            (Some(t), None) => format!("{}:{t}", self.repository),
            (None, None) => self.repository.clone(),
        }
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.to_owned()), digest: None, ..self.clone() }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The API host of a registry as written in a reference.
pub fn registry_api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB { DOCKER_HUB_API } else { registry }
}

/// Parses a bare registry (`host[:port]`, optionally `docker://` and a
/// trailing `/`), as `--catalog` takes it.
///
/// # Errors
/// When it is not a host, or names a repository too.
pub fn parse_registry(input: &str) -> Result<String, ParseError> {
    let host = input.strip_prefix(SCHEME).unwrap_or(input).trim_end_matches('/');
    if !is_host(host) {
        return Err(ParseError {
            input: input.to_owned(),
            reason: "name a registry here, as HOST or HOST:PORT".into(),
        });
    }
    Ok(if host == "index.docker.io" { DOCKER_HUB.to_owned() } else { host.to_owned() })
}

/// True when a target that is not an existing path should be read as a
/// registry reference: `docker://…`, a name whose first component is a
/// registry host (`localhost`, or containing `.` or `:`), or a name with an
/// explicit tag or digest (`alpine:3.19`). A bare `alpine` is not: a typo of
/// a file name should not turn into a network request.
pub fn looks_like_reference(target: &str) -> bool {
    if target.starts_with(SCHEME) {
        return true;
    }
    let Ok(r) = Reference::parse_repository_or_ref(target) else { return false };
    if r.tag.is_some() || r.digest.is_some() {
        return true;
    }
    let (host, _) = split_registry(target);
    // `backups.d/image.tar` parses as a reference too; an archive extension
    // says the user meant a file that is not there.
    let archive = [".tar", ".tgz", ".gz", ".zst", ".zstd", ".json"]
        .iter()
        .any(|ext| r.repository.ends_with(ext));
    host.is_some() && !archive
}

/// Splits off the first path component when it names a registry host.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first == "localhost" || first.contains('.') || first.contains(':') =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// `host[:port]` or `[ipv6]:port`, with DNS-style labels.
fn is_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, tail)) if v6.parse::<std::net::Ipv6Addr>().is_ok() => {
                match tail.strip_prefix(':') {
                    Some(p) => ("v6", Some(p)),
                    None if tail.is_empty() => ("v6", None),
                    None => return false,
                }
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    let labels_ok = !name.is_empty()
        && name.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    port_ok && labels_ok
}

/// Path components of lowercase alphanumerics joined by `.`, `_`, `__` or
/// runs of `-` (the distribution spec's grammar).
fn is_repository(path: &str) -> bool {
    if path.is_empty() || path.len() > MAX_REPOSITORY {
        return false;
    }
    path.split('/').all(|c| {
        let b = c.as_bytes();
        let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        !b.is_empty()
            && b.first().is_some_and(alnum)
            && b.last().is_some_and(alnum)
            && b.iter().all(|x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
            && !c.contains("..")
            && !c.contains("___")
    })
}

fn is_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

fn parse_digest(digest: &str) -> Result<String, String> {
    match digest.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64
                && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(digest.to_owned())
        }
        Some(("sha256", _)) => Err("a sha256 digest is 64 lowercase hex digits".into()),
        Some((alg, _)) => Err(format!("digest algorithm '{alg}' is not supported (only sha256)")),
        None => Err("a digest is written sha256:<hex>".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1241e491e307cad39ee66205dc3ffcd10aaae010b19a14948140d809565a529b";

    #[test]
    fn parses_and_normalises() {
        let t = |input: &str, reg: &str, repo: &str, tag: Option<&str>, digest: Option<&str>| {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry, reg, "{input}");
            assert_eq!(r.repository, repo, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
            assert_eq!(r.digest.as_deref(), digest, "{input}");
        };
        t("alpine", "docker.io", "library/alpine", Some("latest"), None);
        t("alpine:3.19", "docker.io", "library/alpine", Some("3.19"), None);
        t("docker://alpine", "docker.io", "library/alpine", Some("latest"), None);
        t("team/app:v1", "docker.io", "team/app", Some("v1"), None);
        t("docker.io/alpine", "docker.io", "library/alpine", Some("latest"), None);
        t("index.docker.io/team/app", "docker.io", "team/app", Some("latest"), None);
        t("localhost/app", "localhost", "app", Some("latest"), None);
        t("localhost:5000/a/b/c:1", "localhost:5000", "a/b/c", Some("1"), None);
        t(
            "127.0.0.1:5000/fixtures/leaky-app:1",
            "127.0.0.1:5000",
            "fixtures/leaky-app",
            Some("1"),
            None,
        );
    }

    #[test]
    fn digests() {
        let r = Reference::parse(&format!("ghcr.io/o/r@{D}")).unwrap();
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(D)));
        let r = Reference::parse(&format!("ghcr.io/o/r:v1@{D}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.digest.as_deref()), (Some("v1"), Some(D)));
        assert_eq!(r.manifest_ref(), D);
        assert!(Reference::parse("ghcr.io/o/r@sha256:abc").is_err());
        assert!(Reference::parse("ghcr.io/o/r@sha512:abc").is_err());
        assert!(Reference::parse("ghcr.io/o/r@abc").is_err());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "docker://",
            "Alpine",
            "ghcr.io/Team/app",
            "ghcr.io/team//app",
            "ghcr.io/team/app:",
            "ghcr.io/team/app:-x",
            "ghcr.io/-team/app",
            "host:99999/app",
            "host..x/app",
            "/abs/path",
            "./rel/path",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["docker.io/library/alpine:latest", "127.0.0.1:5000/x/y:1", &format!("q.io/a@{D}")]
        {
            assert_eq!(Reference::parse(s).unwrap().to_string(), *s);
        }
        assert_eq!(
            Reference::parse("alpine").unwrap().to_string(),
            "docker.io/library/alpine:latest"
        );
    }

    #[test]
    fn api_host_and_shard_key() {
        let r = Reference::parse("alpine:3").unwrap();
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.shard_key(), "library/alpine:3");
        let r = Reference::parse("127.0.0.1:5000/a/b:2").unwrap();
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert_eq!(r.shard_key(), "a/b:2");
    }

    #[test]
    fn repository_only() {
        let r = Reference::parse_repository("127.0.0.1:5000/fixtures/app").unwrap();
        assert_eq!(r.tag, None);
        assert!(Reference::parse_repository("127.0.0.1:5000/fixtures/app:1").is_err());
        assert_eq!(parse_registry("docker://127.0.0.1:5000/").unwrap(), "127.0.0.1:5000");
        assert_eq!(parse_registry("[::1]:5000").unwrap(), "[::1]:5000");
        assert!(parse_registry("127.0.0.1:5000/x").is_err());
    }

    #[test]
    fn reference_or_missing_file() {
        for yes in [
            "docker://anything",
            "alpine:3.19",
            "team/app:1",
            "localhost/app",
            "localhost:5000/app",
            "ghcr.io/o/r",
            "127.0.0.1:5000/fixtures/leaky-app",
        ] {
            assert!(looks_like_reference(yes), "{yes}");
        }
        for no in [
            "alpine",
            "image.tar",
            "out/image.tar",
            "backups.d/image.tar",
            "backups.d/image.tar.gz",
            "./image.tar",
            "../x/y",
            "/abs/image.tar",
            "C:\\images\\x.tar",
            "missing-dir",
        ] {
            assert!(!looks_like_reference(no), "{no}");
        }
    }
}
