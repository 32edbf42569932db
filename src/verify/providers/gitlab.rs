//! GitLab: `GET /api/v4/personal_access_tokens/self` describes the token (name, scopes, whether
//! it is active). gitlab.com by default; a self-hosted instance is a host from the scanned data.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "gitlab",
        rules: &["gitlab-pat", "gitlab-pat-routable"],
        request,
        read,
        proves: "the token is an active GitLab token (GET /api/v4/personal_access_tokens/self), with its scopes",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get(
        "https://gitlab.com/api/v4/personal_access_tokens/self",
        vec![secret_header("private-token", c.secret.clone())],
    ))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let json = resp.json();
    if (200..300).contains(&resp.status) && json["active"] == false {
        return Outcome::invalid("token is revoked or expired");
    }
    let mut o = valid_if_2xx(resp, &["/name"]);
    if let Some(scopes) = json["scopes"].as_array() {
        let s: Vec<&str> = scopes.iter().filter_map(|v| v.as_str()).collect();
        o.identity = Some(format!("{} (scopes: {})", o.identity.unwrap_or_default(), s.join(",")));
    }
    o
}
