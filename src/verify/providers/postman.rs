//! Postman: `GET /me` with `X-Api-Key` returns the user.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "postman",
        rules: &["postman-api-key"],
        request,
        read,
        proves: "the key reads the Postman user (GET /me)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get("https://api.getpostman.com/me", vec![secret_header("x-api-key", c.secret.clone())]))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/user/username", "/user/email"])
}
