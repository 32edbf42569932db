//! Datadog: `GET /api/v1/validate` with `DD-API-KEY` answers `{"valid": true}` for a live key.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "datadog",
        rules: &["datadog-api-key"],
        request,
        read,
        proves: "the API key is valid (GET /api/v1/validate)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get(
        "https://api.datadoghq.com/api/v1/validate",
        vec![secret_header("dd-api-key", c.secret.clone())],
    ))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    match resp.json()["valid"].as_bool() {
        Some(true) => Outcome::valid(None),
        Some(false) => Outcome::invalid("datadog: valid false"),
        None => valid_if_2xx(resp, &[]),
    }
}
