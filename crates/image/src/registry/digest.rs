//! Digest verification of what a registry serves: documents read whole are
//! hashed and compared with every digest claimed for them, and streamed
//! blobs are hashed as they pass and fail at their end (or when the
//! connection ends early) instead of ending quietly.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::Error;

/// `sha256:<hex>` of `bytes`.
pub(super) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks that `bytes` hash to each `sha256:` digest in `claimed` (others
/// are not checked); returns their digest. `ctx` and `what` name them in
/// the error.
pub(super) fn verify<'c>(
    ctx: &str,
    what: &str,
    bytes: &[u8],
    claimed: impl IntoIterator<Item = &'c str>,
) -> Result<String, Error> {
    let digest = sha256(bytes);
    for claimed in claimed {
        if claimed.starts_with("sha256:") && claimed != digest {
            return Err(Error::Invalid {
                reference: ctx.to_owned(),
                what: what.to_owned(),
                reason: format!("digest mismatch: expected {claimed}, content hashes to {digest}"),
            });
        }
    }
    Ok(digest)
}

/// A streamed blob that fails instead of ending early, and checks its
/// digest at the end: from a registry, a mismatch means the content is not
/// what the manifest names, so the layer's result cannot be trusted.
pub(super) struct VerifiedBlob {
    inner: ureq::BodyReader<'static>,
    /// `None` once the digest was checked.
    hasher: Option<Sha256>,
    read: u64,
    expected_len: Option<u64>,
    digest: String,
    /// The first failure, returned again on every later read.
    failed: Option<(io::ErrorKind, String)>,
}

impl VerifiedBlob {
    /// Checks `inner` against `digest`, and its length against
    /// `expected_len` (`Content-Length`) when known.
    pub(super) fn new(
        inner: ureq::BodyReader<'static>,
        digest: &str,
        expected_len: Option<u64>,
    ) -> Self {
        VerifiedBlob {
            inner,
            hasher: Some(Sha256::new()),
            read: 0,
            expected_len,
            digest: digest.to_owned(),
            failed: None,
        }
    }

    fn fail(&mut self, kind: io::ErrorKind, message: String) -> io::Error {
        self.failed = Some((kind, message.clone()));
        io::Error::new(kind, message)
    }

    fn of_len(&self) -> String {
        self.expected_len.map_or(String::new(), |n| format!(" of {n}"))
    }
}

impl Read for VerifiedBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, message)) = &self.failed {
            return Err(io::Error::new(*kind, message.clone()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(0) => {
                let Some(hasher) = self.hasher.take() else { return Ok(0) };
                if let Some(n) = self.expected_len
                    && self.read < n
                {
                    let msg = format!(
                        "the registry connection ended after {} of {n} bytes of blob {}",
                        self.read, self.digest
                    );
                    return Err(self.fail(io::ErrorKind::UnexpectedEof, msg));
                }
                let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
                if self.digest.starts_with("sha256:") && actual != self.digest {
                    let msg = format!(
                        "digest mismatch: blob {} from the registry hashes to {actual}",
                        self.digest
                    );
                    return Err(self.fail(io::ErrorKind::InvalidData, msg));
                }
                Ok(0)
            }
            Ok(n) => {
                if let Some(h) = self.hasher.as_mut() {
                    sha2::Digest::update(h, &buf[..n]);
                }
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                let msg = format!(
                    "the registry connection failed after {}{} bytes of blob {}: {e}",
                    self.read,
                    self.of_len(),
                    self.digest
                );
                Err(self.fail(e.kind(), msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_digests_are_checked() {
        let bytes = b"{}";
        let good = sha256(bytes);
        assert_eq!(good, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!(verify("r", "x", bytes, [good.as_str(), "md5:whatever"]).unwrap(), good);
        let bad = format!("sha256:{}", "0".repeat(64));
        let e = verify("reg/app:1", "manifest 1", bytes, [good.as_str(), bad.as_str()])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("reg/app:1: manifest 1: digest mismatch: expected sha256:000"),
            "{e}"
        );
    }
}
