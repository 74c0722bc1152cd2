//! [`CacheKey`]: sha256 of a canonical serialization of a job's resolved
//! inputs and its dependencies' keys. Canonical = serde_json of values whose
//! maps are `BTreeMap`s and whose lists are in a defined order, so the same
//! inputs always give the same bytes. Line numbers are not part of the key:
//! adding a comment to the Dockerfile does not change it.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// `sha256:<64 hex>` of a job's resolved inputs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CacheKey(pub String);

impl CacheKey {
    /// The key of any serializable value (its canonical JSON, hashed).
    pub fn of<T: Serialize>(value: &T) -> CacheKey {
        // Serializing plain data (strings, numbers, BTreeMaps, enums) cannot fail.
        let bytes = serde_json::to_vec(value).expect("plan values serialize to JSON");
        CacheKey(format!("sha256:{}", hex::encode(Sha256::digest(&bytes))))
    }

    /// The first 12 hex digits, for people.
    pub fn short(&self) -> &str {
        let hex = self.0.strip_prefix("sha256:").unwrap_or(&self.0);
        &hex[..hex.len().min(12)]
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn same_value_same_key_twice_and_differs_on_change() {
        let mut a = BTreeMap::new();
        a.insert("TARGETARCH", "arm64");
        a.insert("A", "1");
        let k1 = CacheKey::of(&a);
        let k2 = CacheKey::of(&a.clone());
        assert_eq!(k1, k2);
        assert!(k1.0.starts_with("sha256:") && k1.0.len() == 7 + 64);
        a.insert("TARGETARCH", "amd64");
        assert_ne!(k1, CacheKey::of(&a));
        assert_eq!(k1.short().len(), 12);
    }
}
