//! Asana: `GET /api/1.0/users/me` returns the token owner.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "asana",
        rules: &["asana-pat"],
        request,
        read,
        proves: "the token reads the Asana user (GET /api/1.0/users/me)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://app.asana.com/api/1.0/users/me", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/data/name", "/data/email"])
}
