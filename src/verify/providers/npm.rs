//! npm registry: `GET /-/whoami` returns the user the token belongs to.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "npm",
        rules: &["npm-access-token", "npmrc-auth-token"],
        request,
        read,
        proves: "the token authenticates to the npm registry (GET /-/whoami)",
        pair_secret_rule: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://registry.npmjs.org/-/whoami", &c.secret))
}

fn read(resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/username"])
}
