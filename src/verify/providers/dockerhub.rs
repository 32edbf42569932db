//! Docker Hub: the registry token service (`GET https://auth.docker.io/token?service=registry.docker.io`)
//! issues a token for a good `user:password` (or access token) in basic auth, 401 otherwise.
//! A `config.json` auth does not say which registry it is for, so strata sends it to Docker Hub
//! only when `--verify-host auth.docker.io` allows it.

use base64::Engine;

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "dockerhub",
        rules: &["docker-config-auth"],
        request,
        read,
        proves: "the user:password logs in to Docker Hub's token service",
        pair_secret_rule: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(c.secret.trim())
        .map_err(|_| "the auth value is not base64".to_owned())?;
    let text = String::from_utf8(raw).map_err(|_| "the auth value is not text".to_owned())?;
    let (user, pass) = text.split_once(':').ok_or("the auth value is not user:password")?;
    let mut r =
        get("https://auth.docker.io/token?service=registry.docker.io", vec![basic(user, pass)]);
    r.host_from_data = true;
    Ok(r)
}

fn read(resp: &Response) -> Outcome {
    if (200..300).contains(&resp.status) && resp.json()["token"].is_string() {
        return Outcome::valid(Some("Docker Hub login".into()));
    }
    valid_if_2xx(resp, &[])
}
