//! Private keys stored as raw DER (`openssl pkey -outform DER`, `key.der`
//! files Java reads with `PKCS8EncodedKeySpec`): binary, so the PEM rules
//! never see them, yet each is a whole private key.
//!
//! A file is taken as a key only when it is exactly one DER structure (the
//! outer SEQUENCE's length ends at the file's end) shaped like one of:
//!
//! - PKCS#8 `PrivateKeyInfo` / `OneAsymmetricKey` (RFC 5208, RFC 5958):
//!   version 0 or 1, an `AlgorithmIdentifier` whose OID is a key algorithm
//!   (RSA, RSA-PSS, EC, DSA, Ed25519, Ed448, X25519, X448), then the key
//!   as an OCTET STRING;
//! - SEC1 `ECPrivateKey` (RFC 5915): version 1, then the key as an OCTET
//!   STRING of 16 to 66 bytes;
//! - PKCS#1 `RSAPrivateKey` (RFC 8017): version 0, then eight INTEGERs
//!   (modulus of at least 64 bytes … coefficient).
//!
//! Certificates (a SEQUENCE first), PKCS#12 (version 3) and CMS (an OID
//! first) have other shapes. Encrypted PKCS#8 (`EncryptedPrivateKeyInfo`,
//! an AlgorithmIdentifier first) is not taken: it needs its password.

/// Key algorithm OIDs (the DER content of the OBJECT IDENTIFIER).
const KEY_ALGORITHMS: &[&[u8]] = &[
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01], // rsaEncryption
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a], // RSASSA-PSS
    &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],             // ecPublicKey
    &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01],             // dsa
    &[0x2b, 0x65, 0x6e],                                     // X25519
    &[0x2b, 0x65, 0x6f],                                     // X448
    &[0x2b, 0x65, 0x70],                                     // Ed25519
    &[0x2b, 0x65, 0x71],                                     // Ed448
];

/// One DER element: its tag, its content, and the bytes after it.
fn element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x83 => {
            let n = usize::from(first - 0x80);
            let bytes = rest.get(..n)?;
            let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            // DER uses the shortest form: a long form for under 128 bytes is not DER.
            if len < 0x80 {
                return None;
            }
            (len, &rest[n..])
        }
        _ => return None,
    };
    let content = rest.get(..len)?;
    Some((tag, content, &rest[len..]))
}

/// True when `data` is exactly one DER-encoded private key of a shape listed
/// in the module documentation.
pub fn is_private_key(data: &[u8]) -> bool {
    if data.first() != Some(&0x30) {
        return false;
    }
    let Some((_, body, [])) = element(data) else { return false };
    let Some((0x02, version, rest)) = element(body) else { return false };
    match version {
        [0] | [1] if pkcs8(rest) => true,
        [1] => sec1(rest),
        [0] => pkcs1(rest),
        _ => false,
    }
}

/// `AlgorithmIdentifier` with a key algorithm's OID, then an OCTET STRING.
fn pkcs8(rest: &[u8]) -> bool {
    let Some((0x30, algorithm, rest)) = element(rest) else { return false };
    let Some((0x06, oid, _)) = element(algorithm) else { return false };
    let Some((0x04, key, _)) = element(rest) else { return false };
    KEY_ALGORITHMS.contains(&oid) && !key.is_empty()
}

/// An OCTET STRING of an EC private key's size (P-128 to P-521).
fn sec1(rest: &[u8]) -> bool {
    matches!(element(rest), Some((0x04, key, _)) if (16..=66).contains(&key.len()))
}

/// Eight INTEGERs (modulus … coefficient), the modulus at least 512 bits, nothing after.
fn pkcs1(mut rest: &[u8]) -> bool {
    for i in 0..8 {
        let Some((0x02, int, next)) = element(rest) else { return false };
        if i == 0 && int.len() < 64 {
            return false;
        }
        rest = next;
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn der(b64: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
    }

    /// Ed25519, `openssl genpkey -algorithm ed25519 -outform DER`.
    const ED25519_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIBhTRMk35dkklYkdSBOihpqKlQgkEkMtzLTmkE6q04VX";
    /// A P-256 key, `openssl ec -outform DER` (SEC1).
    const EC_SEC1: &str = "MHcCAQEEIEoxWz4usVwy+yJosxIzH/ipwUGrZW7EyZoklSQXfm2CoAoGCCqGSM49AwEHoUQDQgAE\
                           3zLNHnMV1TtlxFcrFhQCmmsiJxItxqrYi2aiiUIf30QmBKFXw1rMTXGaImyWIs1UJW/b0y6h8FgY\
                           /NedDJWq9Q==";
    /// RSA-1024, `openssl rsa -traditional -outform DER` (PKCS#1).
    const RSA_PKCS1: &str = "MIICXQIBAAKBgQC8i5T/nTSe4IoJP1wBHUsXFPQcrJdlzoM9+7J42M624K+FKkPdl/L++neNyhCw\
                           c6BGhK244O4ASwvJOMOBEKibfgVHu309yPIv+fSQxYOGUdtWjsyyP7kEw2jlm1gvDUwkI0OLokns\
                           IHxSsDp/PoY6ABOyYxswEQKaQ1kgK/nVFQIDAQABAoGBAIdI4DBI7GjTVDgubiWejzKQplesvzUd\
                           aK4g2346kphFv6sdGHT3gjPSI9ZpFnCFhosSyFPPkPZE4sAPKriA63jojh/ZI/FW8GAQhW1RpQY8\
                           3x0dXpfvu8MGeec6a8HEQ11ED7rQTISQuU64wKcsNOydMyUEYbghdih9eSmNP4wBAkEA+kJ5vZ/v\
                           tAE6aJZks17+hiWCtGAwFlrPsIXRBmUWB1k6qgcJY73FmOElSGh1f2KCT3T8+mZlYsC8CwyQt0do\
                           RQJBAMDeuC0N8HjthigHVzx2c+z0fQd68FubbT50u0a2qwKcaLFZFcyTLfLX5GaauiZ3dskY/cB4\
                           iM/53ZclliDEDpECQDHg6e63X8karY+G2g8+EbCe7UwSF8N82gQux5hksV1JlX2p5V8xxZ5Q0WN7\
                           HmADPEGl6X3mxrJGA7SYDofY/ZkCQDzTAEpVJw07+x8MkZpj0NNdl0CQqNR7A8y6i4UVfoDoSqwD\
                           aDiIAemf5EvnZ+VRr4hj9UKJwLu2FQfhtqLGscECQQDE+8DPqVkVvzig1U14AgsqKpjZfKZ7/k1c\
                           PukOyyoohFsPYZ6gJdZiz2sW329c1kv6uOZDV39XdtK2h0WLVG0B";

    #[test]
    fn keys_in_der_are_recognised() {
        assert!(is_private_key(&der(ED25519_PKCS8)));
        assert!(is_private_key(&der(EC_SEC1)));
        assert!(is_private_key(&der(RSA_PKCS1)));
    }

    #[test]
    fn other_der_and_near_misses_are_not() {
        let key = der(ED25519_PKCS8);
        let mut longer = key.clone();
        longer.push(b'\n');
        let mut unknown_oid = key.clone();
        unknown_oid[9] = 0x7f; // 2b 65 70 -> 2b 65 7f
        // A certificate starts with a SEQUENCE (tbsCertificate), PKCS#12 with version 3.
        let cert_like = [0x30, 0x06, 0x30, 0x04, 0x02, 0x02, 0x01, 0x00];
        let pfx_like = [0x30, 0x05, 0x02, 0x01, 0x03, 0x04, 0x00];
        for bytes in
            [&key[..key.len() - 1], &longer[..], &unknown_oid[..], &cert_like, &pfx_like, b""]
        {
            assert!(!is_private_key(bytes), "{bytes:02x?}");
        }
    }
}
