//! Every inner path the scan reports names bytes `copy_member` writes back: archives built
//! here in memory, scanned by the content scanner, then each hit's member copied out.

use super::{MemberError, copy_member};
use crate::scan::content::{ContentScanner, Limits};
use crate::scan::test_support::{gzip, scanner, tar, token, zip};

fn copy(path: &str, inner: &str, bytes: &[u8]) -> Result<Vec<u8>, MemberError> {
    let mut out = Vec::new();
    let n = copy_member(path, inner, &mut &bytes[..], &mut out)?;
    assert_eq!(n, out.len() as u64);
    Ok(out)
}

#[test]
fn every_inner_path_the_scan_reports_is_copied_back_whole() {
    let s = scanner();
    let (deep, plain, text) = (token("MEMBA"), token("MEMBB"), token("MEMBC"));
    let env = format!("GITHUB_TOKEN={deep}\n");
    let app = gzip(&tar(&[("app/other.txt", b"nothing here\n"), ("app/.env", env.as_bytes())]));
    let notes = format!("token {text}\n");
    let conf = format!("token: {plain}\n");
    let outer = zip(&[
        ("conf/app.tar.gz", &app),
        ("conf/settings.yml", conf.as_bytes()),
        ("notes.txt.gz", &gzip(notes.as_bytes())),
    ]);
    let mut cs = ContentScanner::new(&s, Limits::default());
    let hits = cs.scan_file("/srv/bundle.zip", &mut &outer[..]).unwrap();
    let inner: Vec<String> = hits.iter().filter_map(|h| h.inner_path.clone()).collect();
    assert_eq!(inner.len(), 3, "{inner:?}");
    let expected = [
        ("conf/app.tar.gz!app/.env", env.as_bytes()),
        ("conf/settings.yml", conf.as_bytes()),
        ("notes.txt.gz!notes.txt", notes.as_bytes()),
    ];
    for (want, bytes) in expected {
        assert!(inner.iter().any(|i| i == want), "{want} not among {inner:?}");
        assert_eq!(copy("/srv/bundle.zip", want, &outer).unwrap(), bytes, "{want}");
    }
}

#[test]
fn a_missing_member_says_what_was_read() {
    let outer = zip(&[("a.txt", b"one"), ("b.txt", b"two")]);
    let e = copy("/srv/x.zip", "c.txt", &outer).unwrap_err().to_string();
    assert!(e.contains("no member \"c.txt\" in this file (2 archive members read)"), "{e}");
    // A prefix of a member's name is not that member.
    let e = copy("/srv/x.zip", "a.tx", &outer).unwrap_err().to_string();
    assert!(e.contains("no member"), "{e}");
    // A file that is no archive has no members.
    let e = copy("/etc/hosts", "a.txt", b"127.0.0.1 localhost\n").unwrap_err().to_string();
    assert!(e.contains("0 archive members read"), "{e}");
}

#[test]
fn archives_past_the_depth_limit_stay_closed_as_in_the_scan() {
    // The member sits in a zip nested deeper than the depth limit: the scan did not open
    // it either, so it is not found; the zip that holds it is.
    let leaf = zip(&[("secret.txt", b"x")]);
    let l3 = zip(&[("l3.zip", &leaf)]);
    let l2 = zip(&[("l2.zip", &l3)]);
    let l1 = zip(&[("l1.zip", &l2)]);
    let e = copy("/x.zip", "l1.zip!l2.zip!l3.zip!secret.txt", &l1).unwrap_err().to_string();
    assert!(e.contains("no member"), "{e}");
    assert_eq!(copy("/x.zip", "l1.zip!l2.zip!l3.zip", &l1).unwrap(), leaf);
}
