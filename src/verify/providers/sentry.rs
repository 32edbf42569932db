//! Sentry. A user token (`sntryu_`, and the legacy 64-hex form) lists its organizations:
//! `GET /api/0/organizations/`, an endpoint that needs a user token. An organization auth token
//! (`sntrys_`) is not a user's and can only hold the `org:ci` scope (releases and source maps),
//! so that call answers 403 for it; instead its own payload names the organization and region
//! (`{"url", "region_url", "org"}` in base64 JSON between `sntrys_` and the secret part), and
//! `GET /api/0/organizations/{org}/releases/`, the release listing those tokens exist for, is
//! asked on the organization's region host. `sentry.io`, `us.sentry.io` and `de.sentry.io` are
//! Sentry's fixed hosts; a self-hosted Sentry named by the token needs `--verify-host`.

use base64::Engine;

use super::*;

/// Sentry's SaaS hosts.
const HOSTS: &[&str] = &["sentry.io", "us.sentry.io", "de.sentry.io"];

pub fn provider() -> Provider {
    Provider {
        name: "sentry",
        rules: &["sentry-user-token", "sentry-org-token", "sentry-auth-token-legacy"],
        request,
        read,
        proves: "a user token lists its Sentry organizations (GET /api/0/organizations/); an org \
                 token lists its organization's releases (GET /api/0/organizations/{org}/releases/)",
        pair_secret_rule: None,
        follow: None,
    }
}

/// What an org token says about itself.
#[derive(Debug, PartialEq, Eq)]
struct OrgToken {
    /// `https://HOST` the token is for.
    host: String,
    org: String,
    from_data: bool,
}

fn org_token(secret: &str) -> Result<OrgToken, String> {
    let payload = secret
        .strip_prefix("sntrys_")
        .and_then(|rest| rest.rsplit_once('_'))
        .map(|(p, _)| p)
        .ok_or("not an org token")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|_| "the org token's payload is not base64".to_owned())?;
    let json: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|_| "the org token's payload is not JSON".to_owned())?;
    let org = json["org"].as_str().unwrap_or_default();
    if org.is_empty()
        || !org.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
    {
        return Err("the org token names no usable organization slug".into());
    }
    let host_of = |key: &str| {
        json[key]
            .as_str()
            .and_then(|u| u.strip_prefix("https://"))
            .map(|h| h.trim_end_matches('/').to_ascii_lowercase())
            .filter(|h| {
                !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
            })
    };
    // No url: a SaaS token. A url that is not a plain https host is never guessed at: sending a
    // self-hosted instance's token to sentry.io would leak it.
    let url = match json.get("url") {
        None | Some(serde_json::Value::Null) => "sentry.io".to_owned(),
        Some(_) => host_of("url").ok_or("the org token's url is not a plain https host")?,
    };
    let region = host_of("region_url");
    let (host, from_data) = if HOSTS.contains(&url.as_str()) {
        // SaaS: the organization's region host when it is one of Sentry's, else sentry.io.
        (region.filter(|r| HOSTS.contains(&r.as_str())).unwrap_or(url), false)
    } else {
        (url, true)
    };
    Ok(OrgToken { host, org: org.to_owned(), from_data })
}

fn request(c: &Credential) -> Result<Request, String> {
    if c.rule_id != "sentry-org-token" {
        return Ok(bearer("https://sentry.io/api/0/organizations/", &c.secret));
    }
    let t = org_token(&c.secret)?;
    let mut r =
        bearer(&format!("https://{}/api/0/organizations/{}/releases/", t.host, t.org), &c.secret);
    r.host_from_data = t.from_data;
    Ok(r)
}

fn read(c: &Credential, resp: &Response) -> Outcome {
    if c.rule_id == "sentry-org-token" {
        let mut o = valid_if_2xx(resp, &[]);
        if o.status == VerifyStatus::Valid {
            let org = org_token(&c.secret).map(|t| t.org).unwrap_or_default();
            o.identity = Some(format!("organization {org} (org auth token)"));
        }
        return o;
    }
    valid_if_2xx(resp, &["/0/slug"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
        format!("sntrys_{b64}_FAKEsecretFAKEsecretFAKEsecretFAKEsecretFAK")
    }

    #[test]
    fn org_token_payload_picks_the_region_host() {
        let t = org_token(&token(
            r#"{"iat": 1, "url": "https://sentry.io", "region_url": "https://de.sentry.io", "org": "fake-org"}"#,
        ))
        .unwrap();
        assert_eq!(
            t,
            OrgToken { host: "de.sentry.io".into(), org: "fake-org".into(), from_data: false }
        );
        // A region that is not Sentry's own is ignored for SaaS.
        let t = org_token(&token(
            r#"{"url": "https://sentry.io", "region_url": "https://evil.example", "org": "a"}"#,
        ))
        .unwrap();
        assert_eq!(t.host, "sentry.io");
        // Self-hosted: the host comes from the data.
        let t =
            org_token(&token(r#"{"url": "https://sentry.corp.example/", "org": "a"}"#)).unwrap();
        assert_eq!((t.host.as_str(), t.from_data), ("sentry.corp.example", true));
        // A slug that would change the path is refused.
        assert!(org_token(&token(r#"{"url": "https://sentry.io", "org": "a/../b"}"#)).is_err());
        assert!(org_token(&token(r#"{"url": "https://x.example/@evil", "org": "a"}"#)).is_err());
        assert_eq!(org_token(&token(r#"{"org": "a"}"#)).unwrap().host, "sentry.io");
    }
}
