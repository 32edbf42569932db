//! Twilio: `GET /2010-04-01/Accounts/<SID>.json` with basic auth `SID:auth token`. The account
//! SID must have been found in the same file as the auth token.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "twilio",
        rules: &["twilio-auth-token"],
        request,
        read,
        proves: "the auth token opens its account (GET /2010-04-01/Accounts/<SID>.json)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    let sid = c
        .partner(&["twilio-account-sid"])
        .ok_or("no Twilio account SID was found beside the auth token")?;
    if !sid.starts_with("AC") || !sid.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err("the account SID is malformed".into());
    }
    Ok(get(
        &format!("https://api.twilio.com/2010-04-01/Accounts/{sid}.json"),
        vec![basic(sid, &c.secret)],
    ))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/friendly_name", "/status"])
}
