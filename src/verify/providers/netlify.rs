//! Netlify: `GET /api/v1/user` returns the token owner's email.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "netlify",
        rules: &["netlify-access-token"],
        request,
        read,
        proves: "the token reads the Netlify user (GET /api/v1/user)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://api.netlify.com/api/v1/user", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/email", "/full_name"])
}
