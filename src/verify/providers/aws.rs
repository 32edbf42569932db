//! AWS: STS `GetCallerIdentity` (`POST https://sts.amazonaws.com/`, signed with SigV4 by the
//! `aws-sigv4` crate) returns the account and ARN of any valid key pair, needs no permission, and
//! changes nothing. A secret key needs its key id found in the same file (and the other way round).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::*;

const URL: &str = "https://sts.amazonaws.com/";
const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

pub fn provider() -> Provider {
    Provider {
        name: "aws",
        rules: &["aws-secret-access-key", "aws-access-key-id"],
        request,
        read,
        proves: "the key pair authenticates to AWS (STS GetCallerIdentity), with account and ARN",
        pair_secret_rule: Some("aws-secret-access-key"),
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    let (id, secret) = if c.rule_id == "aws-access-key-id" {
        let s = c
            .partner(&["aws-secret-access-key"])
            .ok_or("no secret access key was found beside the key id")?;
        (c.secret.as_str(), s)
    } else {
        let id = c
            .partner(&["aws-access-key-id"])
            .ok_or("no access key id was found beside the secret key")?;
        (id, c.secret.as_str())
    };
    signed(id, secret, SystemTime::now())
}

/// The STS request signed with SigV4 for us-east-1.
fn signed(id: &str, secret: &str, time: SystemTime) -> Result<Request, String> {
    let identity: Identity = Credentials::new(id, secret, None, None, "strata-verify").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing: {e}"))?
        .into();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let base = [("content-type", content_type), ("host", "sts.amazonaws.com")];
    let signable =
        SignableRequest::new("POST", URL, base.into_iter(), SignableBody::Bytes(BODY.as_bytes()))
            .map_err(|e| format!("signing: {e}"))?;
    let (instructions, _) =
        sign(signable, &params).map_err(|e| format!("signing: {e}"))?.into_parts();
    let mut headers = vec![plain_header("accept", "application/xml")];
    for (name, value) in instructions.headers() {
        let name: &'static str = match name {
            "authorization" => "authorization",
            "x-amz-date" => "x-amz-date",
            "x-amz-content-sha256" => "x-amz-content-sha256",
            "x-amz-security-token" => "x-amz-security-token",
            _ => continue,
        };
        headers.push(Header { name, value: value.to_owned(), secret: name == "authorization" });
    }
    Ok(Request {
        method: "POST",
        url: URL.into(),
        headers,
        body: Some((content_type, BODY.as_bytes().to_vec(), false)),
        host_from_data: false,
    })
}

fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let xml = String::from_utf8_lossy(&resp.body);
    match (resp.status, tag(&xml, "Arn"), tag(&xml, "Account")) {
        (200, Some(arn), Some(account)) => {
            Outcome::valid(Some(format!("account {account}, {arn}")))
        }
        (400, _, _) if xml.contains("InvalidClientTokenId") => {
            Outcome::invalid("aws: InvalidClientTokenId")
        }
        _ => valid_if_2xx(resp, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_with_sigv4() {
        let r = signed(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        let auth = r.headers.iter().find(|h| h.name == "authorization").unwrap();
        assert!(auth.value.starts_with("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/19700101/us-east-1/sts/aws4_request"), "{}", auth.value);
        assert!(auth.secret);
        assert!(!auth.value.contains("wJalrXUtnFEMI"));
    }
}
