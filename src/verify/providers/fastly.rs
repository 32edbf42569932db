//! Fastly: `GET /tokens/self` with `Fastly-Key` describes the token.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "fastly",
        rules: &["fastly-api-token"],
        request,
        read,
        proves: "the token is live at Fastly (GET /tokens/self)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get(
        "https://api.fastly.com/tokens/self",
        vec![secret_header("fastly-key", c.secret.clone())],
    ))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/name", "/user_id"])
}
