//! DigitalOcean: `GET /v2/account` returns the account's email and team.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "digitalocean",
        rules: &["digitalocean-pat", "digitalocean-oauth-token"],
        request,
        read,
        proves: "the token reads the DigitalOcean account (GET /v2/account)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://api.digitalocean.com/v2/account", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/account/email", "/account/team/name"])
}
