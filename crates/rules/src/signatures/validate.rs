//! Offline validators: structural checks of a candidate (checksums,
//! decodable keys and tokens). They never touch the network. Each returns a
//! short note of what was checked, or of what failed: a failed check lowers
//! the finding's severity instead of dropping it (a truncated or mangled
//! key is still a leak).

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

/// The validators a rule may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// GitHub `gh?_` tokens: CRC32 check digits.
    Github,
    /// npm `npm_` tokens: CRC32 check digits.
    Npm,
    /// JSON Web Tokens: header and payload decode, header has `alg`.
    Jwt,
    /// PEM private keys whose body decodes to DER.
    PemPrivateKey,
    /// OpenSSH private keys (`openssh-key-v1`).
    OpensshPrivateKey,
    /// AWS access key ids: base32 body, account id derivable.
    AwsAccessKeyId,
    /// PyPI tokens: a macaroon for pypi.org.
    Pypi,
    /// Slack tokens: the documented segment structure.
    Slack,
    /// HTTP Basic credentials: base64 of a printable `user:password`.
    BasicAuth,
}

impl std::str::FromStr for Validator {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "github" => Validator::Github,
            "npm" => Validator::Npm,
            "jwt" => Validator::Jwt,
            "pem-private-key" => Validator::PemPrivateKey,
            "openssh-private-key" => Validator::OpensshPrivateKey,
            "aws-access-key-id" => Validator::AwsAccessKeyId,
            "pypi" => Validator::Pypi,
            "slack" => Validator::Slack,
            "basic-auth" => Validator::BasicAuth,
            _ => return Err(()),
        })
    }
}

impl Validator {
    /// True for checksum validators: a value that passes has the exact
    /// documented length and check digits, so it is a token even when glued
    /// to the bytes around it (a Java class file's constant pool, a Go
    /// string table); one that fails needs word boundaries.
    pub fn is_checksum(self) -> bool {
        matches!(self, Validator::Github | Validator::Npm)
    }

    /// True when a candidate that fails is not a credential at all, rather
    /// than a mangled one: `Basic` followed by base64 that is not
    /// `user:password` is a word (`Basic authentication`), not a leak.
    pub fn is_required(self) -> bool {
        matches!(self, Validator::BasicAuth)
    }

    /// Checks a candidate secret: `Ok(note)` when it passes, `Err(what
    /// failed)` when it does not.
    ///
    /// # Errors
    /// The candidate fails the check; the message says which part failed.
    pub fn check(self, secret: &[u8]) -> Result<String, String> {
        self.passes(secret).ok_or_else(|| self.failure().to_owned())
    }

    /// What a failure of this check means.
    fn failure(self) -> &'static str {
        match self {
            Validator::Github => "github checksum mismatch",
            Validator::Npm => "npm checksum mismatch",
            Validator::Jwt => "jwt header or payload does not decode",
            Validator::PemPrivateKey => "private key body does not decode to a key",
            Validator::OpensshPrivateKey => "openssh key body does not decode",
            Validator::AwsAccessKeyId => "not a well-formed aws key id",
            Validator::Pypi => "not a pypi.org macaroon",
            Validator::Slack => "not a well-formed slack token",
            Validator::BasicAuth => "not base64 of a printable user:password",
        }
    }

    /// True for a validator that verifies check digits the provider puts in
    /// every token it issues.
    pub fn checks_digits(self) -> bool {
        matches!(self, Validator::Github | Validator::Npm)
    }

    fn passes(self, secret: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(secret).ok()?;
        match self {
            Validator::Github => crc32_token(text, 4).map(|_| "github checksum ok".into()),
            Validator::Npm => crc32_token(text, 4).map(|_| "npm checksum ok".into()),
            Validator::Jwt => jwt(text),
            Validator::PemPrivateKey => pem_private_key(text),
            Validator::OpensshPrivateKey => openssh_private_key(text),
            Validator::AwsAccessKeyId => aws_account(text),
            Validator::Pypi => pypi(text),
            Validator::Slack => slack(text),
            Validator::BasicAuth => basic_auth(text),
        }
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `base62(crc32(random))` left-padded to 6, as GitHub and npm do.
pub fn crc32_base62(random: &[u8]) -> String {
    let mut n = crc32fast::hash(random);
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// Tokens shaped `prefix(len) + 30 random + 6 check digits`.
fn crc32_token(text: &str, prefix_len: usize) -> Option<()> {
    let body = text.get(prefix_len..)?;
    if body.len() != 36 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (random, check) = body.split_at(30);
    (crc32_base62(random.as_bytes()) == check).then_some(())
}

/// RFC 7617 credentials: base64 of `user-id ":" password`, both non-empty
/// and printable (no control bytes; UTF-8 is allowed).
fn basic_auth(text: &str) -> Option<String> {
    let decoded = b64std(text)?;
    let pair = std::str::from_utf8(&decoded).ok()?;
    let (user, password) = pair.split_once(':')?;
    let printable = |s: &str| !s.is_empty() && !s.chars().any(char::is_control);
    (printable(user) && printable(password) && !user.contains(char::is_whitespace))
        .then(|| "decodes to user:password".to_owned())
}

fn lenient(alphabet: &base64::alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    lenient(&base64::alphabet::URL_SAFE).decode(s.trim_end_matches('=')).ok()
}

fn b64std(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    general_purpose::STANDARD
        .decode(&clean)
        .ok()
        .or_else(|| lenient(&base64::alphabet::STANDARD).decode(clean).ok())
}

fn jwt(text: &str) -> Option<String> {
    let mut parts = text.split('.');
    let (h, p) = (parts.next()?, parts.next()?);
    let header: serde_json::Value = serde_json::from_slice(&b64url(h)?).ok()?;
    let payload: serde_json::Value = serde_json::from_slice(&b64url(p)?).ok()?;
    let alg = header.get("alg")?.as_str()?;
    if !payload.is_object() {
        return None;
    }
    let mut note = format!("jwt decodes, alg {alg}");
    if let Some(exp) = payload.get("exp").and_then(serde_json::Value::as_i64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let state = if exp < now { "expired" } else { "not expired" };
        note.push_str(&format!(", exp {exp} ({state})"));
    }
    Some(note)
}

/// The base64 body between PEM armour lines, skipping RFC 1421 headers.
fn pem_body(text: &str) -> Option<(String, bool)> {
    let mut body = String::new();
    let mut encrypted = false;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN") {
            inside = true;
            encrypted |= line.contains("ENCRYPTED");
            continue;
        }
        if line.starts_with("-----END") {
            break;
        }
        if !inside {
            continue;
        }
        if line.contains(':') {
            encrypted |= line.contains("ENCRYPTED");
            continue;
        }
        body.push_str(line);
    }
    (!body.is_empty()).then_some((body, encrypted))
}

fn pem_private_key(text: &str) -> Option<String> {
    // Keys pasted into JSON or env files carry literal "\n" sequences.
    let text = text.replace("\\n", "\n");
    let (body, encrypted) = pem_body(&text)?;
    let der = b64std(&body)?;
    if der.len() < 40 {
        return None;
    }
    if der.first() == Some(&0x30) {
        let kind = if encrypted { "encrypted key, DER structure" } else { "DER structure" };
        return Some(format!("private key decodes ({kind})"));
    }
    // Legacy encrypted PEM (Proc-Type: 4,ENCRYPTED) is ciphertext, not DER.
    encrypted.then(|| "encrypted private key decodes".into())
}

fn openssh_private_key(text: &str) -> Option<String> {
    let text = text.replace("\\n", "\n");
    let (body, _) = pem_body(&text)?;
    let raw = b64std(&body)?;
    raw.starts_with(b"openssh-key-v1\0").then(|| "openssh key decodes".into())
}

fn aws_account(text: &str) -> Option<String> {
    let body = text.get(4..)?;
    if text.len() != 20
        || !body.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        return None;
    }
    // Base32-decode the first 10 characters (50 bits) of the body.
    let mut bits: u64 = 0;
    for b in body.bytes().take(10) {
        let v = if b.is_ascii_uppercase() { b - b'A' } else { b - b'2' + 26 };
        bits = (bits << 5) | u64::from(v);
    }
    let top48 = bits >> 2;
    let account = (top48 & 0x7fff_ffff_ff80) >> 7;
    Some(format!("aws account {account:012}"))
}

fn pypi(text: &str) -> Option<String> {
    let raw = b64url(text.strip_prefix("pypi-")?)?;
    let location = [&b"test.pypi.org"[..], b"pypi.org"]
        .into_iter()
        .find(|loc| raw.windows(loc.len()).any(|w| w == *loc))?;
    Some(format!("macaroon for {}", String::from_utf8_lossy(location)))
}

fn slack(text: &str) -> Option<String> {
    let mut parts = text.split('-');
    let prefix = parts.next()?;
    if !matches!(prefix, "xoxb" | "xoxp" | "xoxa" | "xoxr" | "xoxs" | "xoxe" | "xoxe.xoxp" | "xapp")
    {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    if rest.len() < 2 || rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    let numeric = rest.iter().filter(|s| s.bytes().all(|b| b.is_ascii_digit())).count();
    let last = rest.last()?;
    (numeric >= 1 && last.len() >= 10 && last.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| format!("slack {prefix} token structure"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github_token(prefix: &str, random: &str) -> String {
        format!("{prefix}{random}{}", crc32_base62(random.as_bytes()))
    }

    #[test]
    fn basic_auth_decodes_to_a_printable_pair() {
        let v = Validator::BasicAuth;
        assert!(v.check(b"ZmFrZV91c2VyOlRxOXpMbTRWeDJLcA==").is_ok(), "fake_user:Tq9zLm4Vx2Kp");
        assert!(v.check(b"ZmFrZV91c2VyOlRxOXpMbTRWeDJLcA").is_ok(), "padding is optional");
        for bad in [&b"authentication"[..], b"Zm9vYmFyYmF6", b"OnBhc3N3b3Jk", b"dXNlcjo="] {
            assert!(v.check(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(v.is_required() && !v.is_checksum());
        assert!(Validator::Github.is_checksum() && !Validator::Github.is_required());
    }

    #[test]
    fn checksums() {
        let t = github_token("ghp_", "FAKEtestTOKEN0123456789abcdefg");
        assert!(Validator::Github.check(t.as_bytes()).is_ok());
        let mut bad = t.clone().into_bytes();
        bad[10] = if bad[10] == b'a' { b'b' } else { b'a' };
        assert!(Validator::Github.check(&bad).is_err());
        let n = github_token("npm_", "FAKEtestTOKEN0123456789abcdefg");
        assert!(Validator::Npm.check(n.as_bytes()).is_ok());
    }

    #[test]
    fn jwt_and_aws() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl";
        assert!(Validator::Jwt.check(jwt.as_bytes()).unwrap().contains("HS256"));
        assert_eq!(
            Validator::Jwt.check(b"abc.def.ghi").unwrap_err(),
            "jwt header or payload does not decode"
        );
        assert!(Validator::Jwt.check(b"abc.def.ghi").is_err());
        // The documented example key id belongs to account 581039954779.
        assert_eq!(
            Validator::AwsAccessKeyId.check(b"ASIAY34FZKBOKMUTVV7A").as_deref(),
            Ok("aws account 609629065308")
        );
        assert!(Validator::AwsAccessKeyId.check(b"AKIA0000000000000000").is_err());
    }

    #[test]
    fn slack_and_pypi() {
        assert!(
            Validator::Slack
                .check(b"xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx")
                .is_ok()
        );
        assert!(Validator::Slack.check(b"xoxb-not-a-real-token").is_err());
        let token = format!(
            "pypi-{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(b"\x02\x01\x08pypi.org\x02\x01abc")
        );
        assert_eq!(Validator::Pypi.check(token.as_bytes()).as_deref(), Ok("macaroon for pypi.org"));
    }
}
