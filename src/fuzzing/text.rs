//! Text targets: image references (round trip through `Display`) and
//! registry auth challenges (`WWW-Authenticate`, round trip through a
//! re-encoded header).

use crate::registry::Reference;
use crate::registry::auth::{Challenge, parse_challenge};
use crate::registry::reference;

/// A reference parses, prints and parses back to itself.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = reference::looks_like_reference(text);
    if let Ok(host) = reference::parse_registry(text) {
        assert_eq!(reference::parse_registry(&host), Ok(host.clone()), "registry {text:?}");
    }
    let _ = Reference::parse_repository(text);
    let Ok(r) = Reference::parse(text) else { return };
    assert!(r.tag.is_some() || r.digest.is_some(), "a parsed reference names a tag or digest");
    let printed = r.to_string();
    let again = Reference::parse(&printed)
        .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse back: {e}"));
    assert_eq!(again, r, "{text:?} printed as {printed:?} parses to another reference");
    let _ = (r.api_host(), r.manifest_ref(), r.shard_key(), r.with_tag("t").to_string());
}

/// A challenge parses; a Bearer challenge re-encoded with quoted values
/// parses back to the same challenge.
pub fn auth_challenge(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some(Challenge::Bearer { realm, service, scope }) = parse_challenge(text) else { return };
    let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    let mut header = format!("Bearer realm={}", quote(&realm));
    if let Some(s) = &service {
        header.push_str(&format!(",service={}", quote(s)));
    }
    if let Some(s) = &scope {
        header.push_str(&format!(",scope={}", quote(s)));
    }
    assert_eq!(
        parse_challenge(&header),
        Some(Challenge::Bearer { realm, service, scope }),
        "{text:?} re-encoded as {header:?} parses differently"
    );
}
