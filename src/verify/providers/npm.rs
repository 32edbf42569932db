//! npm registry: `GET /-/whoami` returns the user the token belongs to.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "npm",
        // Not `npmrc-auth-token`: an .npmrc token may belong to any registry (GitHub Packages,
        // a private one), and must not be sent to registry.npmjs.org.
        rules: &["npm-access-token"],
        request,
        read,
        proves: "the token authenticates to the npm registry (GET /-/whoami)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://registry.npmjs.org/-/whoami", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/username"])
}
