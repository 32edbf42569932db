//! Google service-account key files (`"type": "service_account"`): the OAuth 2.0 JWT-bearer grant
//! of Google's server-to-server flow. strata signs a short-lived RS256 assertion (`iss` =
//! `client_email`, `aud` = the token endpoint, a read-only scope, 5 minutes) with the file's
//! private key (`ring`) and POSTs `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` to
//! Google's fixed token host `https://oauth2.googleapis.com/token`. Google answers an access
//! token only when the key is still registered to an enabled account: that proves the key is
//! live and whose it is (`client_email`, project). Nothing is changed; the token minted lapses
//! by itself within the hour and is not kept.
//!
//! The scanner reports the `private_key_id`; the rest of the file's fields arrive as the
//! credential's material (see `scan::material`). The file's own `token_uri` is used only when
//! it names another host and `--verify-host` allows that host.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

use super::*;

/// Google's token endpoint.
const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Least scope that mints a token; the token is never used.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform.read-only";
/// Lifetime of the assertion, seconds (Google accepts at most an hour).
const LIFETIME: u64 = 300;

pub fn provider() -> Provider {
    Provider {
        name: "google-service-account",
        rules: &["gcp-service-account-key"],
        request,
        read,
        proves: "the key file's private key is still registered to an enabled service account \
                 (OAuth JWT-bearer grant at oauth2.googleapis.com/token), with its client_email",
        pair_secret_rule: None,
        follow: None,
    }
}

/// The fields of the key file the grant uses.
struct KeyFile {
    client_email: String,
    private_key_id: String,
    private_key: String,
    token_uri: Option<String>,
}

fn key_file(c: &Credential) -> Result<KeyFile, String> {
    let material = c.material.as_deref().ok_or(
        "the key file's JSON object (client_email, private_key) could not be read beside the \
         private_key_id",
    )?;
    let json: serde_json::Value =
        serde_json::from_str(material).map_err(|_| "the key file is not JSON".to_owned())?;
    let field = |k: &str| json[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(KeyFile {
        client_email: field("client_email").ok_or("the key file has no client_email")?,
        private_key_id: field("private_key_id").unwrap_or_else(|| c.secret.clone()),
        private_key: field("private_key").ok_or("the key file has no private_key")?,
        token_uri: field("token_uri"),
    })
}

/// The token endpoint to ask: Google's fixed one, unless the file names another host the user
/// allowed with `--verify-host`.
fn endpoint(k: &KeyFile, allowed: &[String]) -> (String, bool) {
    if let Some(uri) = &k.token_uri
        && let Some(rest) = uri.strip_prefix("https://")
    {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default().to_ascii_lowercase();
        if host != "oauth2.googleapis.com" && allowed.contains(&host) {
            return (uri.clone(), true);
        }
    }
    (TOKEN_URL.to_owned(), false)
}

/// The DER inside a PEM private key, and whether it is PKCS#8 (`PRIVATE KEY`) or PKCS#1
/// (`RSA PRIVATE KEY`).
fn pem_der(pem: &str) -> Result<(Vec<u8>, bool), String> {
    let pkcs8 = pem.contains("-----BEGIN PRIVATE KEY-----");
    if !pkcs8 && !pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        return Err("the private_key is not a PEM RSA private key".into());
    }
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|ch| !ch.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "the private_key's body is not base64".to_owned())?;
    Ok((der, pkcs8))
}

/// An RS256 JWT signed with the file's key; the signing errors never quote the key.
fn assertion(k: &KeyFile, aud: &str, now: u64) -> Result<String, String> {
    let (der, pkcs8) = pem_der(&k.private_key)?;
    let pair = if pkcs8 { RsaKeyPair::from_pkcs8(&der) } else { RsaKeyPair::from_der(&der) }
        .map_err(|e| format!("the private_key is not a usable RSA key ({e})"))?;
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": k.private_key_id});
    let claims = serde_json::json!({
        "iss": k.client_email,
        "scope": SCOPE,
        "aud": aud,
        "iat": now,
        "exp": now + LIFETIME,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig)
        .map_err(|_| "signing the assertion failed".to_owned())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

fn request(c: &Credential) -> Result<Request, String> {
    let k = key_file(c)?;
    let (url, from_data) = endpoint(&k, &c.allowed_hosts);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let jwt = assertion(&k, &url, now)?;
    // The JWT is URL-safe base64 and dots: no form escaping needed.
    let body =
        format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}");
    Ok(Request {
        method: "POST",
        url,
        headers: vec![plain_header("accept", "application/json")],
        body: Some(("application/x-www-form-urlencoded", body.into_bytes(), true)),
        host_from_data: from_data,
    })
}

/// Google's documented token-endpoint errors: `invalid_grant` for a deleted key ("Invalid JWT
/// Signature.") or a deleted account, `disabled_client`/`invalid_client`/`unauthorized_client`
/// for a disabled one; a rejected clock ("Invalid JWT: Token must be a short-lived token…") is
/// strata's problem, not the key's.
fn read(c: &Credential, resp: &Response) -> Outcome {
    let json = resp.json();
    if (200..300).contains(&resp.status) {
        if !json["access_token"].is_string() {
            return Outcome::error("the token endpoint answered without an access token");
        }
        // The grant succeeded for this `iss`: the account is the file's client_email.
        let file: serde_json::Value =
            c.material.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default();
        let who = match (file["client_email"].as_str(), file["project_id"].as_str()) {
            (Some(email), Some(project)) => format!("{email} (project {project})"),
            (Some(email), None) => email.to_owned(),
            _ => "service account".to_owned(),
        };
        return Outcome::valid(Some(who));
    }
    let error = json["error"].as_str().unwrap_or_default();
    let about = json["error_description"].as_str().unwrap_or_default();
    let why = format!("{error}: {about}");
    let clock = about.contains("short-lived") || about.contains("iat") || about.contains("exp");
    match error {
        "invalid_grant" if clock => {
            Outcome::error(format!("the assertion's time was refused (check the clock); {why}"))
        }
        "invalid_grant" | "disabled_client" | "invalid_client" | "unauthorized_client" => {
            Outcome::invalid(why)
        }
        _ => Outcome::error(format!("unexpected answer {}: {why}", resp.status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(material: serde_json::Value, allowed: &[&str]) -> Credential {
        Credential {
            rule_id: "gcp-service-account-key".into(),
            secret: "5e7a1f0c9b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f".into(),
            partners: vec![],
            material: Some(material.to_string()),
            allowed_hosts: allowed.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn missing_fields_and_bad_keys_are_unverifiable_without_quoting_the_key() {
        let mut c = cred(serde_json::json!({"type": "service_account"}), &[]);
        c.material = None;
        assert!(request(&c).unwrap_err().contains("could not be read"));
        let c = cred(serde_json::json!({"private_key": "x"}), &[]);
        assert!(request(&c).unwrap_err().contains("client_email"));
        let pem = "-----BEGIN PRIVATE KEY-----\nTUlJRkFLRVRFU1Q=\n-----END PRIVATE KEY-----\n";
        let c = cred(serde_json::json!({"client_email": "a@b", "private_key": pem}), &[]);
        let err = request(&c).unwrap_err();
        assert!(err.contains("not a usable RSA key") && !err.contains("TUlJ"), "{err}");
    }

    #[test]
    fn token_uri_only_when_allowed() {
        let k = |uri: &str| KeyFile {
            client_email: "a@b".into(),
            private_key_id: "k".into(),
            private_key: String::new(),
            token_uri: Some(uri.into()),
        };
        let other = "https://oauth2.corp.example/token";
        assert_eq!(endpoint(&k(other), &[]), (TOKEN_URL.to_owned(), false));
        assert_eq!(endpoint(&k(other), &["oauth2.corp.example".into()]), (other.to_owned(), true));
        assert_eq!(endpoint(&k(TOKEN_URL), &[]), (TOKEN_URL.to_owned(), false));
    }

    #[test]
    fn documented_errors() {
        let c = cred(serde_json::json!({"client_email": "a@b", "project_id": "p"}), &[]);
        let answer = |status, body: serde_json::Value| Response {
            url: TOKEN_URL.into(),
            status,
            headers: vec![],
            body: body.to_string().into_bytes(),
        };
        let o = read(
            &c,
            &answer(200, serde_json::json!({"access_token": "ya29.FAKE", "expires_in": 3599})),
        );
        assert_eq!(
            (o.status, o.identity.as_deref()),
            (VerifyStatus::Valid, Some("a@b (project p)"))
        );
        let deleted = serde_json::json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."});
        assert_eq!(read(&c, &answer(400, deleted)).status, VerifyStatus::Invalid);
        let clock = serde_json::json!({"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."});
        assert_eq!(read(&c, &answer(400, clock)).status, VerifyStatus::Error);
        let disabled = serde_json::json!({"error": "disabled_client", "error_description": "The OAuth client was disabled."});
        assert_eq!(read(&c, &answer(400, disabled)).status, VerifyStatus::Invalid);
    }
}
