//! Discord: `GET /api/v10/users/@me` with `Authorization: Bot TOKEN` returns the bot user.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "discord",
        rules: &["discord-bot-token"],
        request,
        read,
        proves: "the bot token authenticates to Discord (GET /users/@me)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get(
        "https://discord.com/api/v10/users/@me",
        vec![secret_header("authorization", format!("Bot {}", c.secret))],
    ))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/username", "/id"])
}
