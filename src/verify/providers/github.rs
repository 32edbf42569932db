//! GitHub: `GET https://api.github.com/user` returns the login; the `X-OAuth-Scopes` header lists a
//! classic token's scopes.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "github",
        rules: &[
            "github-pat-classic",
            "github-oauth-token",
            "github-user-to-server-token",
            "github-fine-grained-pat",
        ],
        request,
        read,
        proves: "the token authenticates as a GitHub user (GET /user), with its scopes",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    let mut r = get(
        "https://api.github.com/user",
        vec![secret_header("authorization", format!("token {}", c.secret))],
    );
    r.headers.push(plain_header("accept", "application/vnd.github+json"));
    Ok(r)
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let mut o = valid_if_2xx(resp, &["/login"]);
    if let (Some(id), Some(scopes)) = (&o.identity, resp.header("x-oauth-scopes")) {
        o.identity =
            Some(format!("{id} (scopes: {})", if scopes.is_empty() { "none" } else { scopes }));
    }
    o
}
