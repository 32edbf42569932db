//! New Relic NerdGraph: the query `{ actor { user { email name } } }` with a user API key in the
//! `API-Key` header. A query, never a mutation.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "newrelic",
        rules: &["newrelic-user-api-key"],
        request,
        read,
        proves: "the user key reads its New Relic user (NerdGraph actor query)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(Request {
        method: "POST",
        url: "https://api.newrelic.com/graphql".into(),
        headers: vec![secret_header("api-key", c.secret.clone())],
        body: Some((
            "application/json",
            br#"{"query":"{ actor { user { email name } } }"}"#.to_vec(),
            false,
        )),
        host_from_data: false,
    })
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let json = resp.json();
    if json.pointer("/data/actor/user").is_none_or(|v| v.is_null()) {
        return Outcome::invalid("newrelic: no user for this key");
    }
    valid_if_2xx(resp, &["/data/actor/user/email"])
}
