//! Mailgun: `GET /v3/domains` with basic auth `api:KEY` lists the account's sending domains.
//! Mailgun keeps US and EU accounts apart: a key of an EU account is rejected (401) by the US
//! host `api.mailgun.net` and accepted by `api.eu.mailgun.net`, so a US 401 is followed by the
//! same call to the EU host (both fixed Mailgun hosts) before the key is called invalid.

use super::*;

const US: &str = "https://api.mailgun.net/v3/domains";
const EU: &str = "https://api.eu.mailgun.net/v3/domains";

pub fn provider() -> Provider {
    Provider {
        name: "mailgun",
        rules: &["mailgun-api-key"],
        request,
        read,
        proves: "the key lists the account's domains (GET /v3/domains, US region, then EU)",
        pair_secret_rule: None,
        follow: Some(follow),
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get(US, vec![basic("api", &c.secret)]))
}

/// A key the US region rejects may be an EU account's.
fn follow(c: &Credential, req: &Request, resp: &Response) -> Option<Request> {
    (req.url == US && resp.status == 401).then(|| get(EU, vec![basic("api", &c.secret)]))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let mut o = valid_if_2xx(resp, &["/items/0/name"]);
    if o.status == VerifyStatus::Valid && resp.url == EU {
        o.identity = Some(match o.identity {
            Some(domain) => format!("{domain} (EU region)"),
            None => "EU region".to_owned(),
        });
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred() -> Credential {
        Credential {
            rule_id: "mailgun-api-key".into(),
            secret: "key-00000000000000000000000000000000".into(),
            partners: vec![],
            material: None,
            allowed_hosts: vec![],
        }
    }

    fn answer(url: &str, status: u16) -> Response {
        Response { url: url.into(), status, headers: vec![], body: b"{}".to_vec() }
    }

    #[test]
    fn us_rejection_is_retried_in_the_eu_only() {
        let c = cred();
        let us = request(&c).unwrap();
        let eu = follow(&c, &us, &answer(US, 401)).expect("EU after a US 401");
        assert_eq!(eu.url, EU);
        assert!(follow(&c, &eu, &answer(EU, 401)).is_none(), "no third try");
        for status in [200, 429, 500, 403] {
            assert!(follow(&c, &us, &answer(US, status)).is_none(), "{status}");
        }
    }
}
