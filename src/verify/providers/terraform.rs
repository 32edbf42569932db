//! HCP Terraform: `GET /api/v2/account/details` returns the user of a user token.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "terraform",
        rules: &["terraform-cloud-token"],
        request,
        read,
        proves: "the token reads the HCP Terraform account (GET /api/v2/account/details)",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    let mut r = bearer("https://app.terraform.io/api/v2/account/details", &c.secret);
    r.headers.push(plain_header("accept", "application/vnd.api+json"));
    Ok(r)
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    valid_if_2xx(resp, &["/data/attributes/username", "/data/attributes/email"])
}
