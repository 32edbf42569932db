//! Provider rules added for issue 13, end to end: each credential is written
//! into one layer and deleted in the next, as a leaked file "removed" by a
//! later Dockerfile step, and must be reported as `deleted`; contextual rules
//! stay silent without their service name or with a value of the wrong shape.
//!
//! Every secret here is fake and built in the test (`FAKE` where the
//! alphabet allows it).

use serde_json::Value;

use crate::util::*;

/// `len` pseudo-random characters from `alphabet` (a fixed LCG, so runs repeat).
fn fill(seed: u64, len: usize, alphabet: &str) -> String {
    let a = alphabet.as_bytes();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            a[((x >> 33) % a.len() as u64) as usize] as char
        })
        .collect()
}

const ALNUM: &str = "Zq8Lm3Xv9Rt2Wp7Kc4Hs5Jd6Nf1Bg0TyQaFAKE";
const HEX: &str = "0123456789abcdef";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// (path, file body, rule id, the secret).
fn planted() -> Vec<(String, String, &'static str, String)> {
    let twitch = format!("live_417302958_FAKE{}", fill(1, 26, ALNUM));
    let aio = format!("aio_FAKE{}", fill(2, 24, ALNUM));
    let odt = format!("odt_FAKE{}", fill(3, 28, ALNUM));
    let boot = format!("{}.{}", fill(4, 6, LOWER), fill(5, 16, LOWER));
    let guid = |s: u64| {
        let h = fill(s, 32, HEX);
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    };
    let teams_key = fill(6, 32, HEX);
    let teams = format!(
        "https://outlook.office.com/webhook/{}@{}/IncomingWebhook/{teams_key}/{}",
        guid(7),
        guid(8),
        guid(9)
    );
    let bugherd = fill(10, 22, LOWER);
    vec![
        ("/app/stream.env".into(), format!("STREAM_KEY={twitch}\n"), "twitch-stream-key", twitch),
        ("/app/config.h".into(), format!("#define IO_KEY \"{aio}\"\n"), "adafruit-io-key", aio),
        (
            "/etc/dtrack.yaml".into(),
            format!("dtrack:\n  apiKey: \"{odt}\"\n"),
            "dependency-track-api-key",
            odt,
        ),
        (
            "/root/join.sh".into(),
            format!(
                "kubeadm join 10.0.0.10:6443 --token {boot} --discovery-token-unsafe-skip-ca-verification\n"
            ),
            "kubernetes-bootstrap-token",
            boot,
        ),
        (
            "/app/notify.py".into(),
            format!("TEAMS_URL = '{teams}'\n"),
            "microsoft-teams-webhook-url",
            teams_key,
        ),
        ("/app/.env".into(), format!("BUGHERD_API_KEY={bugherd}\n"), "bugherd-api-key", bugherd),
    ]
}

#[test]
fn provider_secrets_deleted_in_a_later_layer_are_reported_deleted() {
    let files = planted();
    let add: Vec<ig::Entry> =
        files.iter().map(|(p, body, _, _)| ig::Entry::file(p, body.as_bytes())).collect();
    let del: Vec<ig::Entry> = files.iter().map(|(p, _, _, _)| ig::Entry::whiteout(p)).collect();
    let spec = ig::ImageSpec {
        layers: vec![ig::Layer::new("COPY . /", add), ig::Layer::new("RUN rm -f secrets", del)],
        ..Default::default()
    };
    let dir = tmp();
    let path = out_path(dir.path(), ig::Format::OciArchive, "img");
    ig::write_image(&spec, ig::Format::OciArchive, &path).unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    for (p, _, rule, secret) in &files {
        let hits: Vec<&Value> = json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["path"] == p.as_str() && f["rule_id"] == *rule)
            .collect();
        assert_eq!(hits.len(), 1, "{rule} at {p}: {json:#}");
        assert_eq!(hits[0]["secret"], secret.as_str(), "{rule}");
        assert_eq!(hits[0]["status"], "deleted", "{rule}");
        assert_eq!(hits[0]["removed_in_layer"], 1, "{rule}");
    }
}

#[test]
fn contextual_provider_rules_need_the_name_and_the_exact_shape() {
    let hex32 = fill(11, 32, HEX);
    let decoys = [
        // The service name must start a word: `checkbox` is not `box`.
        ("/app/a.env", format!("checkbox_token={}\n", fill(12, 32, ALNUM))),
        // 33 hex characters are not a 32-hex Autopilot key.
        ("/app/b.env", format!("AUTOPILOT_API_KEY={hex32}f\n")),
        // Low entropy: a repeated pattern is scaffolding, not a key.
        ("/app/c.env", "CALENDARIFIC_API_KEY=abcdefabcdefabcdefabcdefabcdef12\n".to_owned()),
        // The Kubernetes documentation's example bootstrap token.
        ("/app/d.sh", "kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef\n".to_owned()),
        // A value without a secret-named key: an id, not a credential.
        ("/app/e.yaml", format!("atera_customer_id: {}\n", fill(13, 32, LOWER))),
    ];
    let entries = decoys.iter().map(|(p, b)| ig::Entry::file(p, b.as_bytes())).collect();
    let spec =
        ig::ImageSpec { layers: vec![ig::Layer::new("COPY . /", entries)], ..Default::default() };
    let dir = tmp();
    let path = out_path(dir.path(), ig::Format::OciArchive, "img");
    ig::write_image(&spec, ig::Format::OciArchive, &path).unwrap();
    let (_, json, err) = scan_json(&path, &[]);
    // Generic secret-named-assignment rules may still look at these lines; the
    // provider rules must not claim them.
    let provider = [
        "box-api-token",
        "autopilot-api-key",
        "calendarific-api-key",
        "kubernetes-bootstrap-token",
        "atera-api-key",
    ];
    let claimed: Vec<&Value> = json["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no report: {err}"))
        .iter()
        .filter(|f| provider.iter().any(|r| f["rule_id"] == *r))
        .collect();
    assert!(claimed.is_empty(), "{claimed:#?}");
    let suppressed = &json["summary"]["suppressed"]["documented example credentials"];
    assert!(suppressed.as_u64().unwrap_or(0) >= 1, "the docs token is counted: {json:#}");
}
