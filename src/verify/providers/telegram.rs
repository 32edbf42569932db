//! Telegram Bot API: `GET https://api.telegram.org/bot<token>/getMe` returns the bot. The token
//! travels in the path, so the dry run and every error show it redacted.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "telegram",
        rules: &["telegram-bot-token"],
        request,
        read,
        proves: "the bot token is live (GET /bot<token>/getMe)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get(&format!("https://api.telegram.org/bot{}/getMe", c.secret), vec![]))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let json = resp.json();
    match json["ok"].as_bool() {
        Some(true) => Outcome::valid(pick(&json, &["/result/username"]).map(|u| format!("@{u}"))),
        Some(false) => Outcome::invalid(
            pick(&json, &["/description"]).unwrap_or_else(|| "telegram: ok false".into()),
        ),
        None => valid_if_2xx(resp, &[]),
    }
}
