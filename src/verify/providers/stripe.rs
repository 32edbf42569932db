//! Stripe: `GET /v1/account` with the key as the basic-auth user. A restricted key without the
//! permission gets 403 with a permission error: the key is live, only restricted.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "stripe",
        rules: &[
            "stripe-secret-key-live",
            "stripe-restricted-key-live",
            "stripe-secret-key-test",
            "stripe-restricted-key-test",
        ],
        request,
        read,
        proves: "the key authenticates to the Stripe API (GET /v1/account)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get("https://api.stripe.com/v1/account", vec![basic(&c.secret, "")]))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/id", "/email"])
}

/// A 403 from Stripe for a restricted key that lacks the permission to read the account.
pub fn restricted_but_live(resp: &Response) -> bool {
    resp.status == 403
        && resp.json().pointer("/error/type").and_then(|t| t.as_str())
            == Some("invalid_request_error")
}
