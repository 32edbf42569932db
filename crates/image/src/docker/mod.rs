//! The Docker Engine API (and Podman's Docker-compatible API) as a source:
//! where the daemon listens (`DOCKER_HOST`), which API version to speak
//! (negotiated with `/_ping`), and the few calls strata makes: image and
//! container inspect, `docker save` export, container changes and archive.
//!
//! It owns the transport and the engine's error messages, nothing about
//! layers: `image::save_stream` reads the export, `sources` drives the scan.

pub(crate) mod http;

use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;

pub use http::{Body, Endpoint};
use serde::Deserialize;

/// Where Docker listens when `DOCKER_HOST` is unset.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The newest API version strata speaks; a newer daemon is asked for this one.
const MAX_API: (u32, u32) = (1, 43);

/// The oldest API version with every call strata makes.
const MIN_API: (u32, u32) = (1, 24);

/// Largest JSON answer (inspect, changes) read into memory.
const MAX_JSON: u64 = 64 * 1024 * 1024;

/// Why the engine could not serve a request. Every message names the
/// target as the user gave it and the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `DOCKER_HOST` (or the default) is not a usable address.
    #[error("{target}: DOCKER_HOST={value}: {reason}")]
    Host {
        /// The target.
        target: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing listens there.
    #[error(
        "{target}: cannot connect to the Docker daemon at {endpoint}: {err} (is dockerd, or `podman system service`, running? set DOCKER_HOST to its socket)"
    )]
    NoDaemon {
        /// The target.
        target: String,
        /// Where we tried.
        endpoint: String,
        /// The OS error.
        err: io::Error,
    },
    /// The socket exists but we may not use it.
    #[error(
        "{target}: permission denied on the Docker socket {endpoint} (run as a member of the socket's group, e.g. `docker`, or as root)"
    )]
    Permission {
        /// The target.
        target: String,
        /// The socket.
        endpoint: String,
    },
    /// The image or container does not exist.
    #[error("{target}: not found in the Docker daemon at {endpoint}: {message}")]
    NotFound {
        /// The target.
        target: String,
        /// The daemon.
        endpoint: String,
        /// The daemon's own words.
        message: String,
    },
    /// Any other error answer, or a broken connection.
    #[error("{target}: Docker daemon at {endpoint}: {what}: {message}")]
    Api {
        /// The target.
        target: String,
        /// The daemon.
        endpoint: String,
        /// The request, in words.
        what: String,
        /// Status and the daemon's message, or the I/O failure.
        message: String,
    },
}

/// Parses `DOCKER_HOST`. Unix sockets always; `tcp://` (plain HTTP, no
/// TLS) only on a loopback address unless `insecure`.
///
/// # Errors
/// An unsupported scheme, a remote TCP host without `insecure`, or a
/// malformed address.
pub fn endpoint(value: &str, insecure: bool) -> Result<Endpoint, String> {
    if let Some(path) = value.strip_prefix("unix://") {
        if path.is_empty() {
            return Err("unix:// needs a socket path".into());
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = value.strip_prefix("tcp://").or_else(|| value.strip_prefix("http://")) {
        let addr = rest.trim_end_matches('/');
        let addr = if addr.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !addr.ends_with(']')
        {
            addr.to_owned()
        } else {
            format!("{addr}:2375")
        };
        let resolved: Vec<IpAddr> = addr
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {addr}: {e}"))?
            .map(|a| a.ip())
            .collect();
        if resolved.is_empty() {
            return Err(format!("{addr} resolves to no address"));
        }
        if !insecure && !resolved.iter().all(IpAddr::is_loopback) {
            return Err(format!(
                "{addr} is not a loopback address: the Docker API over plain TCP is unauthenticated and unencrypted; use a unix socket (or an SSH tunnel to one), or pass --insecure"
            ));
        }
        return Ok(Endpoint::Tcp(addr));
    }
    let scheme = value.split("://").next().unwrap_or(value);
    Err(format!(
        "unsupported scheme {scheme:?}: strata speaks to unix:///path/to/docker.sock, or tcp://127.0.0.1:PORT"
    ))
}

/// `Id`, tags and layers of an image, from `GET /images/{name}/json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    /// The image ID (`sha256:` of the config).
    pub id: String,
    /// `name:tag` references.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// The layer chain.
    #[serde(rename = "RootFS", default)]
    pub rootfs: Option<RootFs>,
}

/// `RootFS` of an inspect answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    /// diff_ids, bottom first.
    #[serde(default)]
    pub layers: Vec<String>,
}

/// What strata needs of `GET /containers/{id}/json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    /// The full container ID.
    pub id: String,
    /// The image ID the container runs.
    pub image: String,
    /// `/name`.
    #[serde(default)]
    pub name: String,
}

/// One entry of `GET /containers/{id}/changes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    /// Absolute path in the container.
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    pub kind: u8,
}

/// A daemon reached and its API version agreed.
#[derive(Debug, Clone)]
pub struct Engine {
    endpoint: Endpoint,
    /// `/v1.41`, prefixed to every versioned path.
    prefix: String,
    /// The target, leading every message.
    target: String,
}

/// Percent-encodes a path segment or query value; `keep` are left as they are.
pub fn encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl Engine {
    /// Connects to the daemon `DOCKER_HOST` names (or the default socket),
    /// and agrees an API version with `/_ping`.
    ///
    /// # Errors
    /// A bad `DOCKER_HOST`, no daemon, a socket we may not use, or an
    /// answer that is not the Docker API.
    pub fn connect(target: &str, insecure: bool) -> Result<Engine, Error> {
        let value = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"));
        let endpoint = endpoint(&value, insecure).map_err(|reason| Error::Host {
            target: target.to_owned(),
            value: value.clone(),
            reason,
        })?;
        let mut engine = Engine { endpoint, prefix: String::new(), target: target.to_owned() };
        let resp = engine.send("/_ping", "ping")?;
        let advertised = resp.header("api-version").and_then(parse_version);
        if resp.status != 200 {
            return Err(engine.api_error("ping", resp));
        }
        let version = match advertised {
            Some(v) => v,
            // Daemons older than API 1.25 do not advertise: ask /version.
            None => {
                #[derive(Deserialize)]
                struct Version {
                    #[serde(rename = "ApiVersion")]
                    api_version: String,
                }
                let v: Version = engine.json("/version", "version")?;
                parse_version(&v.api_version).unwrap_or(MIN_API)
            }
        };
        if version < MIN_API {
            return Err(Error::Api {
                target: target.to_owned(),
                endpoint: engine.endpoint.to_string(),
                what: "API version".into(),
                message: format!(
                    "the daemon speaks API {}.{}, strata needs {}.{} or newer",
                    version.0, version.1, MIN_API.0, MIN_API.1
                ),
            });
        }
        let (major, minor) = version.min(MAX_API);
        engine.prefix = format!("/v{major}.{minor}");
        Ok(engine)
    }

    /// GET a path (unversioned), mapping connection failures to errors
    /// that say what to do.
    fn send(&self, path: &str, what: &str) -> Result<http::Response, Error> {
        let full = format!("{}{path}", self.prefix);
        http::get(&self.endpoint, &full).map_err(|err| match err.kind() {
            io::ErrorKind::PermissionDenied => Error::Permission {
                target: self.target.clone(),
                endpoint: self.endpoint.to_string(),
            },
            io::ErrorKind::NotFound
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::AddrNotAvailable => Error::NoDaemon {
                target: self.target.clone(),
                endpoint: self.endpoint.to_string(),
                err,
            },
            _ => Error::Api {
                target: self.target.clone(),
                endpoint: self.endpoint.to_string(),
                what: what.to_owned(),
                message: err.to_string(),
            },
        })
    }

    /// An error for a non-2xx answer, with the daemon's `message`.
    fn api_error(&self, what: &str, resp: http::Response) -> Error {
        let status = resp.status;
        let body = resp.body.read_limited(64 * 1024).unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
        if status == 404 {
            return Error::NotFound {
                target: self.target.clone(),
                endpoint: self.endpoint.to_string(),
                message,
            };
        }
        Error::Api {
            target: self.target.clone(),
            endpoint: self.endpoint.to_string(),
            what: what.to_owned(),
            message: format!("HTTP {status}: {message}"),
        }
    }

    /// GET a path and stream the body of a 2xx answer.
    ///
    /// # Errors
    /// Transport failures and error answers.
    pub fn stream(&self, path: &str, what: &str) -> Result<Body, Error> {
        let resp = self.send(path, what)?;
        if !(200..300).contains(&resp.status) {
            return Err(self.api_error(what, resp));
        }
        Ok(resp.body)
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, path: &str, what: &str) -> Result<T, Error> {
        let body = self.stream(path, what)?;
        let bytes = body.read_limited(MAX_JSON).map_err(|e| self.io_error(what, &e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Api {
            target: self.target.clone(),
            endpoint: self.endpoint.to_string(),
            what: what.to_owned(),
            message: format!("unexpected answer: {e}"),
        })
    }

    /// An error for a failure while reading an answer.
    pub fn io_error(&self, what: &str, e: &io::Error) -> Error {
        Error::Api {
            target: self.target.clone(),
            endpoint: self.endpoint.to_string(),
            what: what.to_owned(),
            message: e.to_string(),
        }
    }

    /// `GET /images/{name}/json`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown image, and transport failures.
    pub fn image_inspect(&self, name: &str) -> Result<ImageInspect, Error> {
        self.json(&format!("/images/{}/json", encode(name, b"/:@")), "image inspect")
    }

    /// `GET /images/{name}/get`: the image as a `docker save` tar, streamed.
    ///
    /// # Errors
    /// Transport failures and error answers.
    pub fn image_export(&self, name: &str) -> Result<Body, Error> {
        self.stream(&format!("/images/{}/get", encode(name, b"/:@")), "image export")
    }

    /// `GET /containers/{id}/json`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown container, and transport failures.
    pub fn container_inspect(&self, id: &str) -> Result<ContainerInspect, Error> {
        self.json(&format!("/containers/{}/json", encode(id, b"")), "container inspect")
    }

    /// `GET /containers/{id}/changes`: what the container's writable layer
    /// added, modified and deleted.
    ///
    /// # Errors
    /// Transport failures and error answers.
    pub fn container_changes(&self, id: &str) -> Result<Vec<Change>, Error> {
        // The daemon answers `null` when nothing changed.
        let changes: Option<Vec<Change>> =
            self.json(&format!("/containers/{}/changes", encode(id, b"")), "container changes")?;
        Ok(changes.unwrap_or_default())
    }

    /// `GET /containers/{id}/archive?path=P`: a tar of one path.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the path is gone, and transport failures.
    pub fn container_archive(&self, id: &str, path: &str) -> Result<Body, Error> {
        self.stream(
            &format!("/containers/{}/archive?path={}", encode(id, b""), encode(path, b"/")),
            "container archive",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_values() {
        let ok: &[(&str, bool, Endpoint)] = &[
            ("unix:///run/docker.sock", false, Endpoint::Unix("/run/docker.sock".into())),
            ("tcp://127.0.0.1:2375", false, Endpoint::Tcp("127.0.0.1:2375".into())),
            ("tcp://localhost", false, Endpoint::Tcp("localhost:2375".into())),
            ("tcp://[::1]:2376", false, Endpoint::Tcp("[::1]:2376".into())),
            ("tcp://192.0.2.7:2375", true, Endpoint::Tcp("192.0.2.7:2375".into())),
        ];
        for (value, insecure, want) in ok {
            assert_eq!(endpoint(value, *insecure).as_ref(), Ok(want), "{value}");
        }
        let bad: &[(&str, &str)] = &[
            ("tcp://192.0.2.7:2375", "not a loopback address"),
            ("ssh://user@host", "unsupported scheme \"ssh\""),
            ("npipe:////./pipe/docker_engine", "unsupported scheme"),
            ("unix://", "needs a socket path"),
        ];
        for (value, want) in bad {
            let e = endpoint(value, false).unwrap_err();
            assert!(e.contains(want), "{value}: {e}");
        }
    }

    #[test]
    fn encoding_keeps_what_paths_need() {
        assert_eq!(encode("reg:5000/app:1", b"/:@"), "reg:5000/app:1");
        assert_eq!(encode("/app/a b?&.env", b"/"), "/app/a%20b%3F%26.env");
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert_eq!(parse_version("x"), None);
    }
}
