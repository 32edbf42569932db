//! Google API key: the Geocoding API (`GET /maps/api/geocode/json?latlng=0,0&key=KEY`) says
//! `REQUEST_DENIED` with "The provided API key is invalid." for a bad key; any other answer
//! (results, or an API not enabled for the key) means Google accepted the key itself. The key is
//! in the query, so the dry run and errors show it redacted.

use super::*;

pub fn provider() -> Provider {
    Provider {
        name: "google-api-key",
        rules: &["gcp-api-key"],
        request,
        read,
        proves: "Google recognises the key (Geocoding API answer); not which APIs it may call",
        pair_secret_rule: None,
        follow: None,
    }
}

fn request(c: &Credential) -> Result<Request, String> {
    Ok(get(
        &format!("https://maps.googleapis.com/maps/api/geocode/json?latlng=0,0&key={}", c.secret),
        vec![],
    ))
}

fn read(_: &Credential, resp: &Response) -> Outcome {
    let json = resp.json();
    let message = json["error_message"].as_str().unwrap_or("");
    match json["status"].as_str() {
        Some("REQUEST_DENIED")
            if message.contains("API key is invalid") || message.contains("API key not valid") =>
        {
            Outcome::invalid("google: the API key is invalid")
        }
        Some("REQUEST_DENIED") => Outcome::valid(Some(format!("key accepted; {message}"))),
        Some(_) => Outcome::valid(Some("key accepted by the Geocoding API".into())),
        None => valid_if_2xx(resp, &[]),
    }
}
