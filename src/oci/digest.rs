//! `Digest`: a sha256 content address, and writers/readers that hash while streaming.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use super::error::{OciError, Result};

/// A `sha256:<64 lowercase hex>` content digest. Other algorithms are not produced
/// by xplat; `validate` accepts them in foreign documents as the schema does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// Parses `sha256:<hex>`; rejects other algorithms and uppercase hex.
    pub fn parse(s: &str) -> Result<Digest> {
        let bad = |reason| OciError::InvalidDigest {
            value: s.to_string(),
            reason,
        };
        let hex_part = s
            .strip_prefix("sha256:")
            .ok_or_else(|| bad("algorithm must be sha256"))?;
        if hex_part.len() != 64 {
            return Err(bad("expected 64 hex digits"));
        }
        if !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("expected lowercase hex digits"));
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut raw).map_err(|_| bad("expected hex digits"))?;
        Ok(Digest(raw))
    }

    /// The 64 hex digits, without the algorithm (the blob file name in an OCI layout).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// `blobs/sha256/<hex>`: the path of this blob inside an OCI layout.
    pub fn blob_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }

    /// Checks that `bytes` hash to this digest; `what` names the content in the error.
    pub fn verify(&self, bytes: &[u8], what: &str) -> Result<()> {
        let actual = Digest::of(bytes);
        if actual == *self {
            Ok(())
        } else {
            Err(OciError::DigestMismatch {
                what: what.to_string(),
                expected: self.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A writer that hashes and counts every byte on its way to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer, the digest and the byte count of everything written.
    pub fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest(self.hasher.finalize().into()),
            self.count,
        )
    }

    /// The inner writer, mutably (for flushing a file at the end).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and byte count of everything read so far.
    pub fn finish(self) -> (Digest, u64) {
        (Digest(self.hasher.finalize().into()), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tar_digest_is_the_well_known_one() {
        let d = Digest::of(&[0u8; 1024]);
        assert_eq!(
            d.to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
    }

    #[test]
    fn parse_rejects_bad_forms() {
        let good = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
        assert!(Digest::parse(good).is_ok());
        for bad in [
            "",
            "sha512:5f70",
            "sha256:5F70BF18A086007016E948B04AED3B82103A36BEA41755B6CDDFAF10ACE3C6EF",
            "sha256:5f70bf18",
            "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
            "sha256:zz70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn verify_and_hashing_writer_agree() {
        let data = b"hello world";
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(data).unwrap();
        let (out, d, n) = w.finish();
        assert_eq!(out, data);
        assert_eq!(n, 11);
        assert_eq!(d, Digest::of(data));
        assert!(d.verify(data, "x").is_ok());
        assert!(matches!(
            d.verify(b"other", "x"),
            Err(OciError::DigestMismatch { .. })
        ));
    }
}
