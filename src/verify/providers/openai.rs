//! OpenAI: `GET /v1/models` lists models for a working key; 401 for a bad one.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "openai",
        rules: &[
            "openai-project-key",
            "openai-user-key",
            "openai-service-account-key",
            "openai-admin-key",
        ],
        request,
        read,
        proves: "the key is accepted by the OpenAI API (GET /v1/models)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://api.openai.com/v1/models", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &[])
}
