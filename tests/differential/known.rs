//! The deliberate differences from BuildKit: each names the case, the platforms (none:
//! all of the case's), the compared key (`fs:/path` or `config:Field`) and why xplat
//! differs on purpose. The suite fails on any difference not listed here, and on an
//! entry here that no longer occurs.

/// One listed difference.
pub struct Known {
    /// The case's name.
    pub case: &'static str,
    /// The platforms it occurs on; empty: every platform of the case.
    pub platforms: &'static [&'static str],
    /// `fs:/path` or `config:Field`.
    pub key: &'static str,
    /// Why it is deliberate.
    pub reason: &'static str,
}

impl Known {
    /// Whether the entry covers `platform`.
    pub fn applies_to(&self, platform: &str) -> bool {
        self.platforms.is_empty() || self.platforms.contains(&platform)
    }
}

/// The entry that lists `key` for `case` on `platform`, if any.
pub fn find(case: &str, platform: &str, key: &str) -> Option<&'static Known> {
    KNOWN
        .iter()
        .find(|k| k.case == case && k.key == key && k.applies_to(platform))
}

/// Every deliberate difference.
pub const KNOWN: &[Known] = &[];
