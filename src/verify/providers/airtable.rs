//! Airtable: `GET /v0/meta/whoami` returns the user id and, with the scope, the email.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "airtable",
        rules: &["airtable-pat"],
        request,
        read,
        proves: "the token reads the Airtable user (GET /v0/meta/whoami)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://api.airtable.com/v0/meta/whoami", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/email", "/id"])
}
