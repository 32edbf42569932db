//! Vercel: `GET /v2/user` returns the authenticated user.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "vercel",
        rules: &["vercel-token"],
        request,
        read,
        proves: "the token reads the Vercel user (GET /v2/user)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://api.vercel.com/v2/user", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/user/username", "/user/email"])
}
