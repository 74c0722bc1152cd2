//! Image references with Docker's rules: `[REGISTRY/]REPO[:TAG][@DIGEST]`,
//! `docker.io` by default, `library/` for one-component Hub names, and an error
//! that names the part that is wrong. Pure.

use std::fmt;

use super::error::{RegistryError, Result};

/// Registry assumed when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";
/// Host that actually serves Docker Hub's `/v2/` API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Key Docker uses for Hub credentials in `config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/alpine`.
    pub repository: String,
    /// Tag; `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// Digest `algorithm:hex`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference with Docker's normalization rules.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |part: &'static str, value: &str, reason: &'static str| {
            RegistryError::InvalidReference {
                reference: input.to_string(),
                part,
                value: value.to_string(),
                reason,
            }
        };
        if input.is_empty() {
            return Err(bad("reference", input, "is empty"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (input, None),
        };
        if let Some(d) = digest {
            validate_digest(d).map_err(|reason| bad("digest", d, reason))?;
        }
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(|reason| bad("tag", t, reason))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        validate_registry(&registry).map_err(|reason| bad("registry", &registry, reason))?;
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        validate_repository(&repository)
            .map_err(|reason| bad("repository", &repository, reason))?;
        let tag = match (tag, digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest: digest.map(str::to_string),
        })
    }

    /// Host (and port) that serves this registry's `/v2/` API.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What to put after `/manifests/`: the digest if any, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository at another digest (tag dropped).
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// The same repository at another tag (digest dropped).
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// Whether two references live in the same registry (so blobs can be mounted).
    pub fn same_registry(&self, other: &ImageRef) -> bool {
        self.registry == other.registry
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn validate_registry(r: &str) -> Result<(), &'static str> {
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        // IPv6 literal: [::1]:5000
        let (h, p) = rest.split_once(']').ok_or("has an unclosed '['")?;
        if h.is_empty() || !h.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err("is not a valid IPv6 literal");
        }
        (None, p.strip_prefix(':'))
    } else {
        match r.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(r), None),
        }
    };
    if let Some(h) = host {
        if h.is_empty() {
            return Err("has an empty host name");
        }
        for label in h.split('.') {
            if label.is_empty()
                || label.starts_with('-')
                || label.ends_with('-')
                || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err("is not a valid host name (letters, digits, '-' and '.' only)");
            }
        }
    }
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err("has an invalid port");
        }
    }
    Ok(())
}

fn validate_repository(repo: &str) -> Result<(), &'static str> {
    if repo.is_empty() {
        return Err("is empty");
    }
    if repo.len() > 255 {
        return Err("is longer than 255 characters");
    }
    if repo.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("must be lowercase");
    }
    for comp in repo.split('/') {
        if comp.is_empty() {
            return Err("has an empty path component");
        }
        if !comp
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        {
            return Err("may contain only a-z, 0-9, '.', '_', '-' and '/'");
        }
        let b = comp.as_bytes();
        if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
            return Err("components must start and end with a letter or digit");
        }
        // Separators: one '.', one or two '_', or any number of '-'.
        let mut run = String::new();
        for c in comp.chars().chain(std::iter::once('a')) {
            if "._-".contains(c) {
                run.push(c);
            } else {
                if !(run.is_empty()
                    || run == "."
                    || run == "_"
                    || run == "__"
                    || run.chars().all(|c| c == '-'))
                {
                    return Err(
                        "has an invalid separator (use one '.', one or two '_', or dashes)",
                    );
                }
                run.clear();
            }
        }
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), &'static str> {
    if tag.is_empty() {
        return Err("is empty");
    }
    if tag.len() > 128 {
        return Err("is longer than 128 characters");
    }
    let first = tag.as_bytes()[0];
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return Err("must start with a letter, digit or '_'");
    }
    if !tag
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err("may contain only letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

pub(crate) fn validate_digest(d: &str) -> Result<(), &'static str> {
    let (alg, hex) = d.split_once(':').ok_or("must be ALGORITHM:HEX")?;
    let hex_ok =
        |n: usize| hex.len() == n && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
    match alg {
        "sha256" if hex_ok(64) => Ok(()),
        "sha512" if hex_ok(128) => Ok(()),
        "sha256" | "sha512" => Err("has a wrong-length or non-lowercase-hex value"),
        _ => Err("uses an unsupported algorithm (sha256 or sha512)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_like_docker() {
        type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            ("alpine", "docker.io", "library/alpine", Some("latest"), None),
            ("alpine:3.20", "docker.io", "library/alpine", Some("3.20"), None),
            ("user/app", "docker.io", "user/app", Some("latest"), None),
            ("index.docker.io/alpine", "docker.io", "library/alpine", Some("latest"), None),
            ("localhost/app", "localhost", "app", Some("latest"), None),
            ("localhost:5000/a/b:v1", "localhost:5000", "a/b", Some("v1"), None),
            ("127.0.0.1:5000/app:1.0", "127.0.0.1:5000", "app", Some("1.0"), None),
            ("ghcr.io/o/r@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "ghcr.io", "o/r", None, Some(D)),
            ("reg.example/app:t@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "reg.example", "app", Some("t"), Some(D)),
            ("[::1]:5000/app", "[::1]:5000", "app", Some("latest"), None),
            ("a/b__c-d--e.f/g", "docker.io", "a/b__c-d--e.f/g", Some("latest"), None),
        ];
        for (input, reg, repo, tag, digest) in cases {
            let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (
                    r.registry.as_str(),
                    r.repository.as_str(),
                    r.tag.as_deref(),
                    r.digest.as_deref()
                ),
                (*reg, *repo, *tag, *digest),
                "{input}"
            );
        }
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases: &[(&str, &str, &str)] = &[
            ("Alpine", "repository", "library/Alpine"),
            ("reg.example/App:1", "repository", "App"),
            ("app:bad!tag", "tag", "bad!tag"),
            ("app:.dot", "tag", ".dot"),
            ("app@sha256:abc", "digest", "sha256:abc"),
            ("app@md5:abc", "digest", "md5:abc"),
            ("reg.example:99999/app", "registry", "reg.example:99999"),
            ("bad_host.example/app", "registry", "bad_host.example"),
            ("reg.example/a//b", "repository", "a//b"),
            ("reg.example/a/-b", "repository", "a/-b"),
            ("reg.example/a...b", "repository", "a...b"),
            ("", "reference", ""),
        ];
        for (input, part, value) in cases {
            match ImageRef::parse(input) {
                Err(RegistryError::InvalidReference {
                    part: p, value: v, ..
                }) => {
                    assert_eq!((p, v.as_str()), (*part, *value), "{input}")
                }
                other => panic!("{input}: expected InvalidReference, got {other:?}"),
            }
        }
        let msg = ImageRef::parse("app:bad!tag").unwrap_err().to_string();
        assert!(msg.contains("tag \"bad!tag\""), "{msg}");
    }

    #[test]
    fn display_round_trips_and_api_host() {
        for s in [
            "docker.io/library/alpine:3",
            "127.0.0.1:5000/x/y:z",
            &format!("ghcr.io/o/r@{D}"),
        ] {
            assert_eq!(ImageRef::parse(s).unwrap().to_string(), *s);
        }
        assert_eq!(
            ImageRef::parse("alpine").unwrap().api_host(),
            DOCKER_HUB_API
        );
        assert_eq!(
            ImageRef::parse("localhost:1/a").unwrap().api_host(),
            "localhost:1"
        );
        let r = ImageRef::parse("localhost:1/a:t").unwrap();
        assert_eq!(r.with_digest(D).manifest_reference(), D);
        assert_eq!(r.manifest_reference(), "t");
    }
}
