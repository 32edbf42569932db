//! Archives inside layer files, built here in memory and scanned through the content scanner
//! (the `Members` implementation strata runs): member paths across levels, a compressed
//! stream that is one level, the depth limit, and compressions strata does not read.

use crate::scan::content::{ContentScanner, Limits};
use crate::scan::test_support::{gzip, scanner, tar, token, zip};

/// Scans `bytes` as the layer file `path`: the hits' (inner path, secret), and the scanner
/// after it (its notes and unread records).
fn scan<'s>(
    s: &'s crate::scan::Scanner,
    limits: Limits,
    path: &str,
    bytes: &[u8],
) -> (Vec<(Option<String>, String)>, ContentScanner<'s>) {
    let mut cs = ContentScanner::new(s, limits);
    let hits = cs.scan_file(path, &mut &bytes[..]).unwrap();
    let seen = hits
        .into_iter()
        .map(|h| (h.inner_path, String::from_utf8_lossy(h.hit.secret.expose()).into_owned()))
        .collect();
    (seen, cs)
}

#[test]
fn members_are_named_level_by_level_and_a_tar_gz_is_one_level() {
    let s = scanner();
    let (deep, plain, text) = (token("NESTA"), token("NESTB"), token("NESTC"));
    let env = format!("GITHUB_TOKEN={deep}\n");
    let app = gzip(&tar(&[("app/.env", env.as_bytes())]));
    let notes = gzip(format!("token {text}\n").as_bytes());
    let conf = format!("token: {plain}\n");
    let outer = zip(&[
        ("conf/app.tar.gz", &app),
        ("conf/settings.yml", conf.as_bytes()),
        ("notes.txt.gz", &notes),
    ]);
    let (seen, cs) = scan(&s, Limits::default(), "/srv/bundle.zip", &outer);
    assert!(cs.unread.is_empty(), "{:?}", cs.unread);
    let want = |inner: &str, secret: &String| (Some(inner.to_owned()), secret.clone());
    assert!(seen.contains(&want("conf/app.tar.gz!app/.env", &deep)), "{seen:?}");
    assert!(seen.contains(&want("conf/settings.yml", &plain)), "{seen:?}");
    // A compressed file that is no tar is one member, named without its suffix.
    assert!(seen.contains(&want("notes.txt.gz!notes.txt", &text)), "{seen:?}");
}

#[test]
fn archives_deeper_than_the_limit_are_recorded_as_unread() {
    let s = scanner();
    let secret = token("DEEP");
    // Four levels of tar.gz: the limit (3) opens three, and the fourth's bytes are
    // compressed, so its raw bytes hold no token.
    let mut blob = gzip(&tar(&[("key.env", format!("GITHUB_TOKEN={secret}\n").as_bytes())]));
    for level in (1..4).rev() {
        blob = gzip(&tar(&[(&format!("level{level}.tar.gz"), &blob)]));
    }
    let (seen, cs) = scan(&s, Limits::default(), "/deep.tar.gz", &blob);
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(cs.unread.len(), 1, "{:?}", cs.unread);
    assert!(cs.unread[0].contains("nested deeper than the nested-archive depth limit (3 levels)"));
    // One more level allowed: the token is found, four levels down.
    let limits = Limits { max_depth: 4, ..Limits::default() };
    let (seen, cs) = scan(&s, limits, "/deep.tar.gz", &blob);
    assert!(cs.unread.is_empty(), "{:?}", cs.unread);
    let inner = "level1.tar.gz!level2.tar.gz!level3.tar.gz!key.env".to_owned();
    assert_eq!(seen, [(Some(inner), secret)]);
}

#[test]
fn a_compression_strata_cannot_read_is_scanned_raw_and_recorded() {
    let s = scanner();
    let mut seven = b"7z\xbc\xaf\x27\x1c".to_vec();
    seven.extend(format!(" GITHUB_TOKEN={}\n", token("RAW7Z")).as_bytes());
    let (seen, cs) = scan(&s, Limits::default(), "/backup.7z", &seven);
    assert_eq!(seen.len(), 1, "the raw bytes are still scanned: {seen:?}");
    assert_eq!(cs.unread.len(), 1, "{:?}", cs.unread);
    assert!(cs.unread[0].contains("7z"), "{:?}", cs.unread);
}
