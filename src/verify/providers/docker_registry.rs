//! Docker registries, for the `auth` (base64 `user:password`) of a docker `config.json` entry. The
//! scanner keeps the entry's key (the registry) beside the secret, and the registry decides where
//! the credential may go:
//!
//! - Docker Hub (`https://index.docker.io/v1/`, `docker.io`, `registry-1.docker.io`…): Docker's
//!   own fixed token service, `GET https://auth.docker.io/token?service=registry.docker.io` with
//!   basic auth, which issues a token for a good login and answers 401 otherwise.
//! - Any other registry is a host from the scanned data: contacted only when `--verify-host`
//!   names it. `GET https://REGISTRY/v2/` with basic auth (the Registry HTTP API's version
//!   check) answers 200 to a registry that takes basic auth; a token-auth registry answers 401
//!   with a `Bearer realm=…,service=…` challenge, and the login is then sent to that realm (its
//!   host too must be allowed with `--verify-host`, unless it is the registry's own) as Docker's
//!   token protocol says.
//!
//! An auth whose registry was not found beside it is not sent anywhere.

use base64::Engine;

use super::*;
use crate::registry::auth::{Challenge, parse_challenge};

/// The keys Docker uses for Docker Hub in `auths`, as hosts.
const DOCKER_HUB: &[&str] =
    &["index.docker.io", "docker.io", "registry-1.docker.io", "registry.hub.docker.com"];

const HUB_TOKEN: &str = "https://auth.docker.io/token?service=registry.docker.io";

pub fn provider() -> Provider {
    Provider {
        name: "docker-registry",
        rules: &["docker-config-auth"],
        request,
        read,
        proves: "the user:password logs in to the registry it is stored for (Docker Hub's token \
                 service; another registry's /v2/ and token service only with --verify-host)",
        pair_secret_rule: None,
        follow: Some(follow),
    }
}

/// `user` and `password` from the auth value.
fn login(c: &Credential) -> Result<(String, String), String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(c.secret.trim())
        .map_err(|_| "the auth value is not base64".to_owned())?;
    let text = String::from_utf8(raw).map_err(|_| "the auth value is not text".to_owned())?;
    let (user, pass) = text.split_once(':').ok_or("the auth value is not user:password")?;
    Ok((user.to_owned(), pass.to_owned()))
}

/// The registry host of an `auths` key (`https://registry.example:5000/v1/` →
/// `registry.example:5000`), when it is a plain host.
fn registry_host(key: &str) -> Option<String> {
    let rest = key.split_once("://").map_or(key, |(_, r)| r);
    let host = rest.split('/').next()?.to_ascii_lowercase();
    let plain = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
        && !host.starts_with(['.', '-', ':']);
    plain.then_some(host)
}

fn request(c: &Credential) -> Result<Request, String> {
    let (user, pass) = login(c)?;
    let key = c.material.as_deref().ok_or("the registry this auth is stored for was not found")?;
    let host = registry_host(key).ok_or("the auth's registry key is not a plain host")?;
    if DOCKER_HUB.contains(&host.as_str()) {
        return Ok(get(HUB_TOKEN, vec![basic(&user, &pass)]));
    }
    let mut r = get(&format!("https://{host}/v2/"), vec![basic(&user, &pass)]);
    r.host_from_data = true;
    Ok(r)
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// After a registry's `/v2/` challenge, the login goes to the token service it names.
fn follow(c: &Credential, req: &Request, resp: &Response) -> Option<Request> {
    if resp.status != 401 || !req.url.ends_with("/v2/") {
        return None;
    }
    // The same challenge parser the registry client uses.
    let Some(Challenge::Bearer { realm, service, .. }) =
        parse_challenge(resp.header("www-authenticate")?)
    else {
        return None;
    };
    // Only an https realm with a plain host: its host is then checked like any other.
    let rest = realm.strip_prefix("https://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let realm_host = registry_host(authority)?;
    let (user, pass) = login(c).ok()?;
    let mut url = format!("https://{realm_host}{}", if path.is_empty() { "/" } else { path });
    let sep = if url.contains('?') { '&' } else { '?' };
    if let Some(service) = service {
        url.push_str(&format!("{sep}service={}", encode(&service)));
    }
    let mut r = get(&url, vec![basic(&user, &pass)]);
    r.host_from_data = true;
    Some(r)
}

fn read(c: &Credential, resp: &Response) -> Outcome {
    if !(200..300).contains(&resp.status) {
        return valid_if_2xx(resp, &[]);
    }
    let user = login(c).map(|(u, _)| u).unwrap_or_default();
    let host = registry_host(&resp.url).unwrap_or_default();
    if resp.url == HUB_TOKEN {
        let issued = resp.json()["token"].is_string();
        return if issued {
            Outcome::valid(Some(format!("Docker Hub login {user}")))
        } else {
            Outcome::error("Docker Hub's token service answered without a token")
        };
    }
    // A /v2/ 200 (basic-auth registry) or a token from the registry's token service.
    let json = resp.json();
    if resp.url.ends_with("/v2/") || json["token"].is_string() || json["access_token"].is_string() {
        Outcome::valid(Some(format!("registry login {user} ({host})")))
    } else {
        Outcome::error(format!("{host} answered {} without a token", resp.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(registry: Option<&str>) -> Credential {
        Credential {
            rule_id: "docker-config-auth".into(),
            // fake-user:FAKE-registry-password-TEST
            secret: base64::engine::general_purpose::STANDARD
                .encode("fake-user:FAKE-registry-password-TEST"),
            partners: vec![],
            material: registry.map(str::to_owned),
            allowed_hosts: vec![],
        }
    }

    #[test]
    fn docker_hub_keys_use_the_fixed_token_service() {
        for key in ["https://index.docker.io/v1/", "docker.io", "registry-1.docker.io"] {
            let r = request(&cred(Some(key))).unwrap();
            assert_eq!((r.url.as_str(), r.host_from_data), (HUB_TOKEN, false), "{key}");
        }
        let r = request(&cred(Some("https://Registry.Corp.example:5000/v1/"))).unwrap();
        assert_eq!(
            (r.url.as_str(), r.host_from_data),
            ("https://registry.corp.example:5000/v2/", true)
        );
        assert!(request(&cred(None)).is_err(), "an auth without its registry goes nowhere");
        assert!(request(&cred(Some("user@evil.example"))).is_err());
    }

    #[test]
    fn token_challenge_is_followed_to_its_realm() {
        let c = cred(Some("ghcr.example"));
        let first = request(&c).unwrap();
        let resp = |h: &str| Response {
            url: first.url.clone(),
            status: 401,
            headers: vec![("www-authenticate".into(), h.into())],
            body: vec![],
        };
        let next = follow(
            &c,
            &first,
            &resp(r#"Bearer realm="https://ghcr.example/token",service="ghcr example",scope="x""#),
        )
        .unwrap();
        assert_eq!(next.url, "https://ghcr.example/token?service=ghcr%20example");
        assert!(next.host_from_data);
        assert!(follow(&c, &first, &resp(r#"Basic realm="Registry""#)).is_none());
        assert!(
            follow(&c, &first, &resp(r#"Bearer realm="http://plain.example/token""#)).is_none()
        );
        assert!(follow(&c, &next, &resp(r#"Bearer realm="https://a.example/t""#)).is_none());
    }
}
