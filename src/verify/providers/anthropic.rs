//! Anthropic: `GET /v1/models` with `x-api-key` and `anthropic-version`; 401 for a bad key.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "anthropic",
        rules: &["anthropic-api-key"],
        request,
        read,
        proves: "the key is accepted by the Anthropic API (GET /v1/models)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    let mut r = get(
        "https://api.anthropic.com/v1/models",
        vec![secret_header("x-api-key", c.secret.clone())],
    );
    r.headers.push(plain_header("anthropic-version", "2023-06-01"));
    Ok(r)
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &[])
}
