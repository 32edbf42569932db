//! Mailgun: `GET /v3/domains` with basic auth `api:KEY` lists the account's sending domains.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "mailgun",
        rules: &["mailgun-api-key"],
        request,
        read,
        proves: "the key lists the account's domains (GET /v3/domains)",
        pair_secret_rule: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get("https://api.mailgun.net/v3/domains", vec![basic("api", &c.secret)]))
}

fn read(resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/items/0/name"])
}
