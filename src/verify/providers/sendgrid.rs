//! SendGrid: `GET /v3/scopes` lists what the API key may do.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "sendgrid",
        rules: &["sendgrid-api-key"],
        request,
        read,
        proves: "the API key is live (GET /v3/scopes), with the number of scopes",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://api.sendgrid.com/v3/scopes", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let mut o = valid_if_2xx(resp, &[]);
    if let Some(scopes) = resp.json()["scopes"].as_array() {
        o.identity = Some(format!("{} scopes", scopes.len()));
    }
    o
}
