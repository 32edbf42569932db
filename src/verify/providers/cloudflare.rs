//! Cloudflare: `GET /client/v4/user/tokens/verify` reports whether an API token is active.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "cloudflare",
        rules: &["cloudflare-api-token"],
        request,
        read,
        proves: "the API token is active (GET /client/v4/user/tokens/verify)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(bearer("https://api.cloudflare.com/client/v4/user/tokens/verify", &c.secret))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let json = resp.json();
    match (json["success"].as_bool(), json.pointer("/result/status").and_then(|s| s.as_str())) {
        (Some(true), Some("active")) => {
            Outcome::valid(pick(&json, &["/result/id"]).map(|id| format!("token {id}")))
        }
        (Some(true), Some(status)) => Outcome::invalid(format!("token is {status}")),
        _ => valid_if_2xx(resp, &[]).status_if_not_2xx(),
    }
}

trait Not2xx {
    fn status_if_not_2xx(self) -> Outcome;
}

impl Not2xx for Outcome {
    fn status_if_not_2xx(self) -> Outcome {
        if self.status == VerifyStatus::Valid {
            Outcome::invalid("cloudflare: success false")
        } else {
            self
        }
    }
}
