//! Hugging Face: `GET /api/whoami-v2` names the account and the token's role.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "huggingface",
        rules: &["huggingface-access-token", "huggingface-org-token"],
        request,
        read,
        proves: "the token authenticates to the Hugging Face Hub (GET /api/whoami-v2)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://huggingface.co/api/whoami-v2", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/name", "/auth/accessToken/role"])
}
