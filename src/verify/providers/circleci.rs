//! CircleCI: `GET /api/v2/me` with `Circle-Token` returns the user.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "circleci",
        rules: &["circleci-personal-token"],
        request,
        read,
        proves: "the token reads the CircleCI user (GET /api/v2/me)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get("https://circleci.com/api/v2/me", vec![secret_header("circle-token", c.secret.clone())]))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/login", "/name"])
}
