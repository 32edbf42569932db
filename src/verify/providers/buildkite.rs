//! Buildkite: `GET /v2/access-token` describes the token itself (uuid, scopes).

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "buildkite",
        rules: &["buildkite-api-token"],
        request,
        read,
        proves: "the token is a live Buildkite API token (GET /v2/access-token)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://api.buildkite.com/v2/access-token", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/uuid"])
}
