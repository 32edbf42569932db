//! Keystores: which files are Java (JKS, JCEKS) or PKCS#12 keystores, and
//! whether one holds private material (a private or secret key entry) or
//! only public certificates.
//!
//! A truststore such as the JRE's `cacerts` holds only CA certificates: it
//! is public data that every Java install ships, not a credential, so the
//! file detector reports only stores with a key entry. Unknown or malformed
//! structure counts as private: a store strata cannot read is not cleared.
//!
//! - JKS/JCEKS: the entry list is walked (tag 1 private key, 2 trusted
//!   certificate, 3 secret key); only tag 2 entries means a truststore.
//!   JCEKS secret keys are Java-serialised objects, so the walk stops at the
//!   first entry that is not a certificate.
//! - PKCS#12: a key is stored in a `keyBag` or `pkcs8ShroudedKeyBag` (and
//!   a Java secret key in a `secretBag`) inside an unencrypted `data`
//!   content (the key bag encrypts the key itself); OpenSSL, Java's keytool
//!   and Windows all write it that way, while certificates usually sit in
//!   an `encryptedData` content. So a PFX whose visible bag types hold no
//!   key bag, but which does show certificate bags or encrypted content, is
//!   a truststore. A PFX that hides keys inside `encryptedData` (possible,
//!   but written by no common tool) would be missed: see signatures/README.md.

/// A keystore format recognised by [`kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeystoreKind {
    /// Sun JKS (`FEEDFEED`).
    Jks,
    /// Sun JCEKS (`CECECECE`).
    Jceks,
    /// PKCS#12 / PFX.
    Pkcs12,
}

/// JKS/JCEKS by magic number; PKCS#12 by extension (`.p12`, `.pfx`,
/// `.keystore`) plus the PFX's DER structure (version 3 right after the
/// outer SEQUENCE header).
pub fn kind(name: &str, data: &[u8]) -> Option<KeystoreKind> {
    match data {
        [0xfe, 0xed, 0xfe, 0xed, ..] => Some(KeystoreKind::Jks),
        [0xce, 0xce, 0xce, 0xce, ..] => Some(KeystoreKind::Jceks),
        [0x30, 0x82, ..] | [0x30, 0x80, ..] => {
            let lower = name.to_ascii_lowercase();
            let by_name = [".p12", ".pfx", ".keystore"].iter().any(|e| lower.ends_with(e));
            let version_3 = data.windows(3).take(8).any(|w| w == [0x02, 0x01, 0x03]);
            (by_name && version_3).then_some(KeystoreKind::Pkcs12)
        }
        _ => None,
    }
}

/// True when the store holds (or may hold) a private or secret key; false
/// only when its structure shows nothing but public certificates.
pub fn holds_private_material(kind: KeystoreKind, data: &[u8]) -> bool {
    match kind {
        KeystoreKind::Jks | KeystoreKind::Jceks => !java_certificates_only(data).unwrap_or(false),
        KeystoreKind::Pkcs12 => !pkcs12_certificates_only(data),
    }
}

/// A big-endian reader that fails (None) instead of reading past the end.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.data.get(self.at..end)?;
        self.at = end;
        Some(out)
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A certificate: (version 2: type name), then length-prefixed bytes.
    fn certificate(&mut self, version: u32) -> Option<()> {
        if version == 2 {
            let n = self.u16()?;
            self.take(n)?;
        }
        let n = self.u32()? as usize;
        self.take(n).map(|_| ())
    }
}

/// Some(true) when every entry of a JKS/JCEKS store is a trusted
/// certificate; Some(false) at the first other entry; None when malformed.
fn java_certificates_only(data: &[u8]) -> Option<bool> {
    const TRUSTED_CERT: u32 = 2;
    let mut r = Reader { data, at: 4 };
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return None;
    }
    let count = r.u32()?;
    if count == 0 {
        // An empty store holds nothing, but also proves nothing: keep it.
        return Some(false);
    }
    for _ in 0..count {
        if r.u32()? != TRUSTED_CERT {
            return Some(false);
        }
        let alias = r.u16()?;
        r.take(alias)?;
        r.take(8)?; // creation time, ms since the epoch
        r.certificate(version)?;
    }
    Some(true)
}

/// DER of the PKCS#12 bag type OIDs (1.2.840.113549.1.12.10.1.n), n last.
fn bag_oid(n: u8) -> [u8; 13] {
    [0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, n]
}
/// DER of the PKCS#7 encryptedData OID (1.2.840.113549.1.7.6).
const ENCRYPTED_DATA: [u8; 11] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn pkcs12_certificates_only(data: &[u8]) -> bool {
    const KEY_BAG: u8 = 1;
    const SHROUDED_KEY_BAG: u8 = 2;
    const CERT_BAG: u8 = 3;
    const SECRET_BAG: u8 = 5;
    let has_key =
        [KEY_BAG, SHROUDED_KEY_BAG, SECRET_BAG].iter().any(|&n| contains(data, &bag_oid(n)));
    !has_key && (contains(data, &bag_oid(CERT_BAG)) || contains(data, &ENCRYPTED_DATA))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JKS version 2 store with the given entry tags (certificate bodies are filler).
    fn jks(tags: &[u32]) -> Vec<u8> {
        strata_imagegen::jks(tags, &[0x30, 0x02, 0x05, 0x00])
    }

    #[test]
    fn java_stores() {
        assert!(!holds_private_material(KeystoreKind::Jks, &jks(&[2, 2, 2])));
        assert!(holds_private_material(KeystoreKind::Jks, &jks(&[2, 1])));
        assert!(holds_private_material(KeystoreKind::Jks, &jks(&[])));
        let mut truncated = jks(&[2, 2]);
        truncated.truncate(40);
        assert!(holds_private_material(KeystoreKind::Jks, &truncated), "malformed: kept");
        assert_eq!(kind("cacerts", &jks(&[2])), Some(KeystoreKind::Jks));
    }

    #[test]
    fn pkcs12_bags() {
        let mut pfx = vec![0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x03];
        assert_eq!(kind("t.p12", &pfx), Some(KeystoreKind::Pkcs12));
        assert!(holds_private_material(KeystoreKind::Pkcs12, &pfx), "nothing visible: kept");
        pfx.extend(ENCRYPTED_DATA);
        assert!(!holds_private_material(KeystoreKind::Pkcs12, &pfx));
        pfx.extend(bag_oid(2));
        assert!(holds_private_material(KeystoreKind::Pkcs12, &pfx));
    }
}
