//! Notion: `GET /v1/users/me` returns the integration's bot user and workspace.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "notion",
        rules: &["notion-integration-token", "notion-integration-token-legacy"],
        request,
        read,
        proves: "the integration token authenticates to Notion (GET /v1/users/me)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    let mut r = bearer("https://api.notion.com/v1/users/me", &c.secret);
    r.headers.push(plain_header("notion-version", "2022-06-28"));
    Ok(r)
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/name", "/bot/workspace_name"])
}
