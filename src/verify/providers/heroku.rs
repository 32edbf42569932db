//! Heroku Platform API: `GET /account` with the version 3 Accept header returns the account email.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "heroku",
        rules: &["heroku-api-key-v2", "heroku-api-key-legacy"],
        request,
        read,
        proves: "the key reads the Heroku account (GET /account)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    let mut r = bearer("https://api.heroku.com/account", &c.secret);
    r.headers.push(plain_header("accept", "application/vnd.heroku+json; version=3"));
    Ok(r)
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/email"])
}
