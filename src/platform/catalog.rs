//! The platform catalog: what a cross build for each platform needs, one TOML
//! file per platform in `platforms/` (embedded with `include_str!`), plus user
//! folders that add or override entries.
//!
//! The catalog is also where platform strings from the user are resolved:
//! [`Catalog::resolve`] accepts containerd spellings and catalog aliases and
//! answers an unknown name with the closest known ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Platform, PlatformError, Result};

/// The embedded catalog: (file name, contents). Add a line here with each new file.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "linux-386.toml",
        include_str!("../../platforms/linux-386.toml"),
    ),
    (
        "linux-amd64.toml",
        include_str!("../../platforms/linux-amd64.toml"),
    ),
    (
        "linux-arm-v6.toml",
        include_str!("../../platforms/linux-arm-v6.toml"),
    ),
    (
        "linux-arm-v7.toml",
        include_str!("../../platforms/linux-arm-v7.toml"),
    ),
    (
        "linux-arm64.toml",
        include_str!("../../platforms/linux-arm64.toml"),
    ),
    (
        "linux-ppc64le.toml",
        include_str!("../../platforms/linux-ppc64le.toml"),
    ),
    (
        "linux-riscv64.toml",
        include_str!("../../platforms/linux-riscv64.toml"),
    ),
    (
        "linux-s390x.toml",
        include_str!("../../platforms/linux-s390x.toml"),
    ),
];

/// Architectures that take a variant; any other with a variant is rejected.
const ARCHES_WITH_VARIANTS: &[&str] = &["arm", "arm64", "amd64"];

/// Go toolchain settings for a platform (`[go]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoEnv {
    /// `GOOS`.
    pub goos: String,
    /// `GOARCH`.
    pub goarch: String,
    /// `GOARM` (5, 6 or 7), for `arm` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goarm: Option<String>,
}

/// Rust target triples for a platform (`[rust]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RustTargets {
    /// The glibc target, e.g. `aarch64-unknown-linux-gnu`.
    pub gnu: String,
    /// The musl target, e.g. `aarch64-unknown-linux-musl`, when Rust has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub musl: Option<String>,
}

/// One catalog entry: a platform and what a cross build for it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSpec {
    /// Operating system (GOOS spelling), e.g. `linux`.
    pub os: String,
    /// Architecture (GOARCH spelling), e.g. `arm`.
    pub architecture: String,
    /// Variant, e.g. `v7`; empty when the normalized platform has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// One line saying what runs this platform.
    pub description: String,
    /// Other names users write for it (`aarch64`, `armhf`, ...), matched case-insensitively.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// GNU triple of the C cross-compiler (`aarch64-linux-gnu`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gnu_triple: Option<String>,
    /// Debian architecture name (`arm64`, `armhf`, `ppc64el`).
    pub debian_arch: String,
    /// QEMU user-mode binary (`qemu-aarch64-static`).
    pub qemu_binary: String,
    /// Go toolchain settings.
    pub go: GoEnv,
    /// Rust target triples.
    pub rust: RustTargets,
}

/// Whose values [`PlatformSpec::build_args`] produces: the target's or the build platform's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgRole {
    /// `TARGET_*` ARGs, for the platform the image is for.
    Target,
    /// `BUILD_*` ARGs, for the platform the build runs on.
    Build,
}

impl ArgRole {
    fn prefix(self) -> &'static str {
        match self {
            ArgRole::Target => "TARGET",
            ArgRole::Build => "BUILD",
        }
    }
}

impl PlatformSpec {
    /// The platform this entry describes (normalized form).
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, &self.variant)
    }

    /// Its canonical name, `os/arch[/variant]`.
    pub fn name(&self) -> String {
        self.platform().format()
    }

    /// The file name it must live in: the name with `/` replaced by `-`, plus `.toml`.
    pub fn file_name(&self) -> String {
        format!("{}.toml", self.name().replace('/', "-"))
    }

    /// Whether a C cross-compiler triple is known for it.
    pub fn has_cross_compiler(&self) -> bool {
        self.gnu_triple.is_some()
    }

    /// Whether Rust has a musl target for it.
    pub fn has_rust_musl(&self) -> bool {
        self.rust.musl.is_some()
    }

    /// The Go environment: `GOOS`, `GOARCH` and, for arm, `GOARM`.
    pub fn go_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("GOOS".to_string(), self.go.goos.clone());
        env.insert("GOARCH".to_string(), self.go.goarch.clone());
        if let Some(goarm) = &self.go.goarm {
            env.insert("GOARM".to_string(), goarm.clone());
        }
        env
    }

    /// The catalog ARGs a Dockerfile stage may declare, beyond BuildKit's automatic
    /// ones. With `P` = `TARGET` or `BUILD` (per `role`):
    ///
    /// | ARG | value | example (linux/arm/v7) |
    /// |---|---|---|
    /// | `P_GNU_TRIPLE` | C cross-compiler triple | `arm-linux-gnueabihf` |
    /// | `P_RUST_TRIPLE` | Rust glibc target | `armv7-unknown-linux-gnueabihf` |
    /// | `P_RUST_MUSL_TRIPLE` | Rust musl target | `armv7-unknown-linux-musleabihf` |
    /// | `P_GOOS` | Go `GOOS` | `linux` |
    /// | `P_GOARCH` | Go `GOARCH` | `arm` |
    /// | `P_GOARM` | Go `GOARM` | `7` |
    /// | `P_DEBIAN_ARCH` | Debian architecture | `armhf` |
    /// | `P_QEMU` | QEMU user binary | `qemu-arm-static` |
    ///
    /// Every name is always present; a value the platform lacks (GOARM off arm,
    /// a missing musl target or cross-compiler) is the empty string, so
    /// `${TARGET_GOARM:+...}` works as it does for `TARGETVARIANT`.
    pub fn build_args(&self, role: ArgRole) -> BTreeMap<String, String> {
        let p = role.prefix();
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            ("GNU_TRIPLE", opt(&self.gnu_triple)),
            ("RUST_TRIPLE", self.rust.gnu.clone()),
            ("RUST_MUSL_TRIPLE", opt(&self.rust.musl)),
            ("GOOS", self.go.goos.clone()),
            ("GOARCH", self.go.goarch.clone()),
            ("GOARM", opt(&self.go.goarm)),
            ("DEBIAN_ARCH", self.debian_arch.clone()),
            ("QEMU", self.qemu_binary.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("{p}_{k}"), v))
        .collect()
    }

    /// Parses and validates one catalog file; `file` names it in errors.
    pub fn from_toml(text: &str, file: &Path) -> Result<PlatformSpec> {
        let spec: PlatformSpec =
            toml::from_str(text).map_err(|e| PlatformError::CatalogSyntax {
                file: file.to_path_buf(),
                message: e.to_string().trim_end().to_string(),
            })?;
        spec.validate(file)?;
        Ok(spec)
    }

    fn validate(&self, file: &Path) -> Result<()> {
        let invalid = |field: &'static str, reason: String| {
            Err(PlatformError::CatalogInvalid {
                file: file.to_path_buf(),
                field,
                reason,
            })
        };
        let given = self.platform();
        for (field, value) in [("os", &self.os), ("architecture", &self.architecture)] {
            if value.is_empty() {
                return invalid(field, "must not be empty".into());
            }
        }
        if !self.variant.is_empty() && !ARCHES_WITH_VARIANTS.contains(&self.architecture.as_str()) {
            return invalid(
                "variant",
                format!("architecture {} takes no variant", self.architecture),
            );
        }
        let normal = given.normalized_with_host(&given);
        if normal.os != given.os || normal.architecture != given.architecture {
            let field = if normal.os != given.os {
                "os"
            } else {
                "architecture"
            };
            return invalid(
                field,
                format!("write the canonical form {}", normal.format()),
            );
        }
        if normal.variant != given.variant {
            return invalid(
                "variant",
                format!("write the canonical form {}", normal.format()),
            );
        }
        if self.go.goos != self.os {
            return invalid("go.goos", format!("must equal os {:?}", self.os));
        }
        if self.go.goarch != self.architecture {
            return invalid(
                "go.goarch",
                format!("must equal architecture {:?}", self.architecture),
            );
        }
        let want_goarm =
            (self.architecture == "arm").then(|| self.variant.trim_start_matches('v').to_string());
        if self.go.goarm != want_goarm {
            return invalid(
                "go.goarm",
                match want_goarm {
                    Some(n) => format!("must be {n:?} for {}", self.name()),
                    None => format!("only applies to arm, not {}", self.architecture),
                },
            );
        }
        let expected_file = self.file_name();
        if file.file_name().and_then(|n| n.to_str()) != Some(expected_file.as_str()) {
            return invalid(
                "os/architecture/variant",
                format!(
                    "entry {} must live in a file named {expected_file}",
                    self.name()
                ),
            );
        }
        for alias in &self.aliases {
            if alias.trim().is_empty() || alias.contains(',') || alias.contains(char::is_whitespace)
            {
                return invalid("aliases", format!("{alias:?} is not a usable name"));
            }
        }
        Ok(())
    }
}

/// Where an entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built into the binary (`platforms/<file>`).
    Embedded,
    /// A user file.
    File(PathBuf),
}

/// The platform catalog: entries by canonical name (`linux/arm/v7`), sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    entries: BTreeMap<String, (PlatformSpec, Source)>,
    /// Lowercased alias or name → canonical name.
    names: BTreeMap<String, String>,
}

impl Default for Catalog {
    /// The embedded catalog.
    fn default() -> Catalog {
        Catalog::embedded()
    }
}

impl Catalog {
    /// The catalog built into the binary.
    ///
    /// # Panics
    /// Never for the shipped files: a test loads every one of them.
    pub fn embedded() -> Catalog {
        Catalog::from_entries(Vec::new()).expect("embedded platform catalog is valid (tested)")
    }

    /// The embedded catalog, with the `*.toml` files of each folder in
    /// `extra_dirs` added on top, in order: a later file with the same platform
    /// replaces the earlier entry. A missing folder is an error (see
    /// [`user_config_dir`] for the optional default folder).
    pub fn load(extra_dirs: &[PathBuf]) -> Result<Catalog> {
        let mut files = Vec::new();
        for dir in extra_dirs {
            let read_err = |source| PlatformError::CatalogRead {
                path: dir.clone(),
                source,
            };
            let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(read_err)?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<std::io::Result<_>>()
                .map_err(read_err)?;
            paths.retain(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file());
            paths.sort();
            for path in paths {
                let text = std::fs::read_to_string(&path).map_err(|source| {
                    PlatformError::CatalogRead {
                        path: path.clone(),
                        source,
                    }
                })?;
                files.push((path, text));
            }
        }
        Catalog::from_entries(files)
    }

    fn from_entries(user_files: Vec<(PathBuf, String)>) -> Result<Catalog> {
        let mut entries = BTreeMap::new();
        for (name, text) in EMBEDDED {
            let spec = PlatformSpec::from_toml(text, &Path::new("platforms").join(name))?;
            entries.insert(spec.name(), (spec, Source::Embedded));
        }
        for (path, text) in user_files {
            let spec = PlatformSpec::from_toml(&text, &path)?;
            entries.insert(spec.name(), (spec, Source::File(path)));
        }
        let mut names = BTreeMap::new();
        for (name, _) in entries.iter() {
            names.insert(name.to_lowercase(), name.clone());
        }
        for (name, (spec, source)) in entries.iter() {
            for alias in &spec.aliases {
                let key = alias.to_lowercase();
                if let Some(first) = names.get(&key) {
                    return Err(PlatformError::DuplicateAlias {
                        alias: key,
                        first: first.clone(),
                        second: name.clone(),
                        file: match source {
                            Source::Embedded => Path::new("platforms").join(spec.file_name()),
                            Source::File(path) => path.clone(),
                        },
                    });
                }
                names.insert(key, name.clone());
            }
        }
        Ok(Catalog { entries, names })
    }

    /// Every entry, sorted by canonical name.
    pub fn specs(&self) -> impl Iterator<Item = &PlatformSpec> {
        self.entries.values().map(|(spec, _)| spec)
    }

    /// Where the entry for `name` (canonical) came from.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.entries.get(name).map(|(_, source)| source)
    }

    /// The entry for a platform, compared in normalized form (`linux/arm` finds `linux/arm/v7`).
    pub fn get(&self, platform: &Platform) -> Option<&PlatformSpec> {
        let normal = platform.normalized();
        let key = Platform::new(&normal.os, &normal.architecture, &normal.variant).format();
        self.entries.get(&key).map(|(spec, _)| spec)
    }

    /// Resolves a user's platform string with the real host (see [`Catalog::resolve_with_host`]).
    pub fn resolve(&self, s: &str) -> Result<Platform> {
        self.resolve_with_host(s, &Platform::host())
    }

    /// Resolves a user's platform string to the catalog platform it names, in
    /// normalized form (as BuildKit normalizes `--platform`: `linux/arm` gives
    /// `arm/v7`). Accepts catalog names and aliases (case-insensitively) and any
    /// containerd spelling (`Linux/x86_64`, `aarch64`; one word takes the rest
    /// from `host`). Anything else, or a valid platform missing from the
    /// catalog, is [`PlatformError::Unknown`] with the closest names.
    pub fn resolve_with_host(&self, s: &str, host: &Platform) -> Result<Platform> {
        let trimmed = s.trim();
        // buildx's `local`: this machine's architecture; images are Linux images even on
        // a macOS host (issue 13).
        if trimmed.eq_ignore_ascii_case("local") {
            let mut local = host.normalized();
            local.os = "linux".into();
            return self.resolve_with_host(&local.format(), host);
        }
        if let Some(name) = self.names.get(&trimmed.to_lowercase()) {
            return Ok(self.entries[name].0.platform());
        }
        let parsed = Platform::parse_with_host(trimmed, host);
        if let Ok(p) = &parsed {
            if let Some(spec) = self.get(p) {
                let mut out = spec.platform();
                out.os_version = p.os_version.clone();
                out.os_features = p.normalized_with_host(host).os_features;
                return Ok(out);
            }
        }
        // A valid platform the catalog lacks is best answered by its own
        // architecture's entries; a typo by the names closest in spelling.
        let mut suggestions = match &parsed {
            Ok(p) => self.same_architecture(p),
            Err(_) => Vec::new(),
        };
        for name in self.suggest(trimmed) {
            if suggestions.len() < 3 && !suggestions.contains(&name) {
                suggestions.push(name);
            }
        }
        Err(PlatformError::Unknown {
            input: s.to_string(),
            suggestions,
        })
    }

    /// Resolves a comma-separated list (`linux/amd64,linux/arm64`), keeping its
    /// order. Items are trimmed; an empty item is an error. Two items naming the
    /// same platform (`linux/arm64,aarch64`) are rejected, not merged: a repeated
    /// platform in a release list is more often a typo than an intent.
    pub fn resolve_list_with_host(&self, list: &str, host: &Platform) -> Result<Vec<Platform>> {
        let mut out: Vec<(Platform, &str)> = Vec::new();
        for item in list.split(',') {
            if item.trim().is_empty() {
                return Err(PlatformError::EmptyListItem {
                    list: list.to_string(),
                });
            }
            let p = self.resolve_with_host(item, host)?;
            if let Some((_, first)) = out.iter().find(|(q, _)| *q == p) {
                return Err(PlatformError::DuplicateInList {
                    platform: p.format_all(),
                    first: first.trim().to_string(),
                    second: item.trim().to_string(),
                });
            }
            out.push((p, item));
        }
        Ok(out.into_iter().map(|(p, _)| p).collect())
    }

    /// [`Catalog::resolve_list_with_host`] with the real host.
    pub fn resolve_list(&self, list: &str) -> Result<Vec<Platform>> {
        self.resolve_list_with_host(list, &Platform::host())
    }

    /// The canonical names closest to `input` (over names and aliases), best first,
    /// at most three; none when nothing is close.
    fn suggest(&self, input: &str) -> Vec<String> {
        let input = input.to_lowercase();
        let mut scored: BTreeMap<String, (usize, bool)> = BTreeMap::new();
        for (candidate, name) in &self.names {
            let distance = strsim::damerau_levenshtein(&input, candidate);
            let limit = (candidate.len().max(input.len()) / 3).clamp(1, 3);
            if distance > limit {
                continue;
            }
            // Same letters in another order (a transposition) beats a substitution
            // at equal distance: `amr64` is arm64 mistyped more likely than amd64.
            let anagram = sorted_chars(&input) != sorted_chars(candidate);
            let score = (distance, anagram);
            let best = scored.entry(name.clone()).or_insert(score);
            *best = (*best).min(score);
        }
        let mut ranked: Vec<(usize, bool, String)> =
            scored.into_iter().map(|(n, (d, a))| (d, a, n)).collect();
        ranked.sort();
        let Some(best) = ranked.first().map(|(d, _, _)| *d) else {
            return Vec::new();
        };
        ranked
            .into_iter()
            .filter(|(d, _, _)| *d == best)
            .take(3)
            .map(|(_, _, n)| n)
            .collect()
    }
}

impl Catalog {
    /// For a valid platform the catalog lacks (`windows/amd64`, `linux/amd64/v3`):
    /// the entries with its architecture, the same variant first.
    fn same_architecture(&self, p: &Platform) -> Vec<String> {
        let p = p.normalized();
        let mut same: Vec<&PlatformSpec> = self
            .specs()
            .filter(|s| s.architecture == p.architecture)
            .collect();
        same.sort_by_key(|s| (s.variant != p.variant, s.os != p.os, s.name()));
        same.iter().take(3).map(|s| s.name()).collect()
    }
}

fn sorted_chars(s: &str) -> Vec<char> {
    let mut chars: Vec<char> = s.chars().collect();
    chars.sort_unstable();
    chars
}

/// The default user catalog folder, given the environment's values (pass
/// `std::env::var_os("XDG_CONFIG_HOME")` and `std::env::var_os("HOME")`):
/// `$XDG_CONFIG_HOME/xplat/platforms`, else `$HOME/.config/xplat/platforms`.
/// `None` when neither is set or the folder does not exist.
pub fn user_config_dir(xdg_config_home: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    let base = match xdg_config_home.filter(|p| p.is_absolute()) {
        Some(xdg) => xdg.to_path_buf(),
        None => home?.join(".config"),
    };
    let dir = base.join("xplat").join("platforms");
    dir.is_dir().then_some(dir)
}

#[cfg(test)]
mod local_tests {
    use super::*;

    #[test]
    fn local_is_this_machine_as_a_linux_platform() {
        let c = Catalog::embedded();
        let arm_mac = Platform::parse("darwin/arm64").unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            c.resolve_with_host("local", &arm_mac).unwrap(),
            Platform::parse("linux/arm64").unwrap()
        );
        assert_eq!(
            c.resolve_list_with_host("local,linux/arm64", &amd).unwrap(),
            vec![amd.clone(), Platform::parse("linux/arm64").unwrap()]
        );
    }
}
