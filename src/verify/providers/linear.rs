//! Linear: a GraphQL query `{ viewer { name email } }` to `https://api.linear.app/graphql` with the
//! personal API key as `Authorization`. A query, never a mutation.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "linear",
        rules: &["linear-api-key"],
        request,
        read,
        proves: "the key reads its Linear user (GraphQL viewer query)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(Request {
        method: "POST",
        url: "https://api.linear.app/graphql".into(),
        headers: vec![secret_header("authorization", c.secret.clone())],
        body: Some((
            "application/json",
            br#"{"query":"{ viewer { name email } }"}"#.to_vec(),
            false,
        )),
        host_from_data: false,
    })
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let json = resp.json();
    if json["errors"].is_array() && json.pointer("/data/viewer").is_none_or(|v| v.is_null()) {
        return Outcome::invalid("linear: authentication error");
    }
    valid_if_2xx(resp, &["/data/viewer/email", "/data/viewer/name"])
}
