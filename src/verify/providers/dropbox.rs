//! Dropbox: `POST /2/users/get_current_account` (an RPC read with no body) returns the account.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "dropbox",
        rules: &["dropbox-long-lived-token", "dropbox-short-lived-token"],
        request,
        read,
        proves: "the token reads the Dropbox account (POST /2/users/get_current_account, no effect)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(Request {
        method: "POST",
        ..bearer("https://api.dropboxapi.com/2/users/get_current_account", &c.secret)
    })
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/email", "/name/display_name"])
}
