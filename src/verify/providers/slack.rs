//! Slack: `POST https://slack.com/api/auth.test` answers 200 with `ok: true` and the team and user
//! for a working token, `ok: false` with `invalid_auth`, `token_revoked`… for a dead one.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "slack",
        rules: &[
            "slack-bot-token",
            "slack-user-token",
            "slack-workspace-token",
            "slack-legacy-token",
        ],
        request,
        read,
        proves: "the token authenticates to the Slack workspace (POST auth.test, no effect)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(Request { method: "POST", ..bearer("https://slack.com/api/auth.test", &c.secret) })
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let json = resp.json();
    match (json["ok"].as_bool(), json["error"].as_str()) {
        (Some(true), _) => Outcome::valid(pick(&json, &["/team", "/user", "/url"])),
        (Some(false), Some("ratelimited")) => Outcome::error("rate limited by slack; not retried"),
        (Some(false), Some(e)) => Outcome::invalid(format!("slack: {e}")),
        _ => Outcome::error(format!("unexpected answer {}", resp.status)),
    }
}
