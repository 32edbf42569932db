//! Mailchimp Marketing API: `GET https://<dc>.api.mailchimp.com/3.0/` (the API root) with the key
//! as the basic-auth password returns the account; `<dc>` is the key's `-us21` suffix.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "mailchimp",
        rules: &["mailchimp-api-key"],
        request,
        read,
        proves: "the key reads the Mailchimp account (GET /3.0/)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    let dc = c.secret.rsplit_once('-').map(|(_, dc)| dc).unwrap_or("");
    let ok = dc.len() >= 3
        && dc.len() <= 5
        && dc.starts_with(|ch: char| ch.is_ascii_lowercase())
        && dc.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit());
    if !ok {
        return Err("the key has no data-center suffix".into());
    }
    Ok(get(&format!("https://{dc}.api.mailchimp.com/3.0/"), vec![basic("strata", &c.secret)]))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/account_name", "/email"])
}
