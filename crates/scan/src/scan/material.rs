//! What a live verifier needs beyond the reported secret, read from the bytes around a match
//! while they are still at hand: the fields of a Google service-account key file (the secret
//! reported is its `private_key_id`; a token grant needs the private key and `client_email`),
//! and the registry a docker `config.json` auth is for (Docker Hub's own entries may be checked
//! against Docker Hub, a private registry's may not).
//!
//! The material is carried in a [`Secret`] (its `Debug` redacts) from hit to finding and is never
//! reported: only `crate::verify` reads it. It is best-effort: a key file cut by a stream window,
//! or an object that does not parse, simply yields none, and the verifier then says why it could
//! not check.

use crate::finding::Secret;

/// How far before the match an enclosing JSON object may start.
const LOOK_BACK: usize = 8 << 10;
/// Largest JSON object parsed for a service-account key file (a real one is about 2.4 KiB).
const OBJECT_MAX: usize = 64 << 10;
/// Candidate `{` positions tried before giving up.
const TRIES: usize = 4;

/// The service-account fields a verifier needs, as one compact JSON object.
const SERVICE_ACCOUNT_FIELDS: &[&str] =
    &["type", "project_id", "private_key_id", "private_key", "client_email", "token_uri"];

/// The material for a match of rule `rule_id` whose secret is `buf[secret.0..secret.1]`, if the
/// rule has any and it can be read.
pub fn extract(rule_id: &str, buf: &[u8], secret: (usize, usize)) -> Option<Secret> {
    match rule_id {
        "gcp-service-account-key" => service_account(buf, secret),
        "docker-config-auth" => docker_registry(buf, secret.0).map(|r| Secret::new(r.into_bytes())),
        _ => None,
    }
}

/// The JSON object around the `private_key_id` at `secret`: tries the nearest `{` before it, then
/// earlier ones, and keeps the first object that parses, is a service account and names this key.
fn service_account(buf: &[u8], secret: (usize, usize)) -> Option<Secret> {
    let key_id = std::str::from_utf8(buf.get(secret.0..secret.1)?).ok()?;
    let floor = secret.0.saturating_sub(LOOK_BACK);
    let mut end = secret.0;
    for _ in 0..TRIES {
        let open = floor + memchr::memrchr(b'{', &buf[floor..end])?;
        end = open;
        let slice = &buf[open..buf.len().min(open + OBJECT_MAX)];
        let Some(Ok(serde_json::Value::Object(obj))) =
            serde_json::Deserializer::from_slice(slice).into_iter::<serde_json::Value>().next()
        else {
            continue;
        };
        if obj.get("type").and_then(|t| t.as_str()) != Some("service_account")
            || obj.get("private_key_id").and_then(|k| k.as_str()) != Some(key_id)
        {
            continue;
        }
        let kept: serde_json::Map<String, serde_json::Value> = SERVICE_ACCOUNT_FIELDS
            .iter()
            .filter_map(|f| obj.get(*f).map(|v| ((*f).to_owned(), v.clone())))
            .collect();
        return serde_json::to_vec(&kept).ok().map(Secret::new);
    }
    None
}

/// The key of the `auths` entry whose `"auth"` value starts at `at`: the string before the `{`
/// that opens the entry (`"registry.example": { "auth": "…" }`).
fn docker_registry(buf: &[u8], at: usize) -> Option<String> {
    let before = &buf[at.saturating_sub(LOOK_BACK)..at];
    let open = memchr::memrchr(b'{', before)?;
    // The auth must sit directly in that object, not in a nested one closed before it.
    if before[open..].contains(&b'}') {
        return None;
    }
    let head = before[..open].trim_ascii_end().strip_suffix(b":")?.trim_ascii_end();
    let head = head.strip_suffix(b"\"")?;
    let start = memchr::memrchr(b'"', head)? + 1;
    let key = std::str::from_utf8(&head[start..]).ok()?;
    (!key.is_empty() && !key.contains('\\')).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(rule: &str, text: &str, secret: &str) -> Option<String> {
        let at = text.find(secret).unwrap();
        extract(rule, text.as_bytes(), (at, at + secret.len()))
            .map(|s| String::from_utf8(s.expose().to_vec()).unwrap())
    }

    #[test]
    fn service_account_object_around_the_key_id() {
        let id = "0123456789abcdef0123456789abcdef01234567";
        let file = format!(
            "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"fake-test\",\n  \
             \"private_key_id\": \"{id}\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n\",\n  \
             \"client_email\": \"ci@fake-test.iam.gserviceaccount.com\",\n  \"client_id\": \"1\",\n  \
             \"token_uri\": \"https://oauth2.googleapis.com/token\"\n}}\n"
        );
        let m: serde_json::Value =
            serde_json::from_str(&material("gcp-service-account-key", &file, id).unwrap()).unwrap();
        assert_eq!(m["client_email"], "ci@fake-test.iam.gserviceaccount.com");
        assert_eq!(
            m["private_key"],
            "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
        );
        assert_eq!(m["token_uri"], "https://oauth2.googleapis.com/token");
        assert!(m.get("client_id").is_none(), "only the fields a verifier needs");
        // Nested in another document (a Kubernetes stringData, a tfvars JSON): the inner object.
        let nested = format!("{{\"stringData\": {{\"key.json\": 1}}, \"sa\": {file}}}");
        assert!(material("gcp-service-account-key", &nested, id).is_some());
        // Cut before the object ends: none.
        let cut = &file[..file.len() - 40];
        assert_eq!(material("gcp-service-account-key", cut, id), None);
        // Another key's object: none.
        let other =
            file.replace(&format!("\"private_key_id\": \"{id}\""), "\"private_key_id\": \"x\"");
        assert_eq!(material("gcp-service-account-key", &other, "service_account"), None);
    }

    #[test]
    fn docker_registry_of_the_auth() {
        for (text, want) in [
            (
                r#"{"auths": {"https://index.docker.io/v1/": {"auth": "QUJD"}}}"#,
                Some("https://index.docker.io/v1/"),
            ),
            (
                "{\n \"auths\": {\n  \"registry.corp.example\" : {\n   \"email\": \"x\",\n   \"auth\": \"QUJD\"\n  }\n }\n}",
                Some("registry.corp.example"),
            ),
            (r#"{"auth": "QUJD"}"#, None),
            (r#"{"auths": {"a.example": {"x": {}, "auth": "QUJD"}}}"#, None),
        ] {
            assert_eq!(material("docker-config-auth", text, "QUJD").as_deref(), want, "{text}");
        }
        assert_eq!(material("github-pat-classic", r#"{"a": {"auth": "QUJD"}}"#, "QUJD"), None);
    }
}
