//! Sentry: `GET /api/0/organizations/` lists the organizations the token can see.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "sentry",
        rules: &["sentry-user-token", "sentry-org-token", "sentry-auth-token-legacy"],
        request,
        read,
        proves: "the token lists Sentry organizations (GET /api/0/organizations/)",
        pair_secret_rule: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://sentry.io/api/0/organizations/", &c.secret))
}

fn read(resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/0/slug"])
}
