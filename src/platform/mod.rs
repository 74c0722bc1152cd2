//! Platforms: `Platform { os, architecture, variant }` with containerd's parse,
//! normalize, format and match rules, and the catalog of what a cross build for
//! each platform needs (`platforms/*.toml`, embedded at build time).
//!
//! Pure: no I/O except reading a user catalog folder when asked
//! ([`Catalog::load`]). The host is a value passed in (`*_with_host`); only the
//! convenience wrappers read `std::env::consts`.
//!
//! The rules follow containerd/platforms v1.0.0-rc.4, the version BuildKit
//! vendors (see `../shared/peer/platforms/NOTES.md`):
//! - [`spec`]: parse, normalize, format, format_all;
//! - [`compat`]: `NewMatcher` ([`Platform::matches`]) and `Only`
//!   ([`Platform::compat_vector`], [`Platform::can_run`]);
//! - [`catalog`]: [`PlatformSpec`] and [`Catalog`] (`platforms/*.toml`);
//! - [`render`]: the `xplat platforms` table and JSON.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod catalog;
pub mod compat;
pub mod render;
pub mod spec;

pub use catalog::{ArgRole, Catalog, PlatformSpec};

/// An OCI platform as containerd and BuildKit understand it.
///
/// Serialises like the OCI image-spec `platform` object; empty fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in GOARCH spelling, e.g. `arm64`.
    pub architecture: String,
    /// CPU variant, e.g. `v7`; empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// OS version, e.g. `10.0.17763` (Windows); `None` when not given.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features, e.g. `win32k`, in the order given (normalizing sorts them).
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
}

impl Platform {
    /// A platform from its three usual parts, with no OS version or features.
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.to_string(),
            ..Platform::default()
        }
    }

    /// The platform this process runs on, from `std::env::consts`, in GOOS/GOARCH
    /// spelling. On 32-bit arm the variant is `v7` (the CPU is not probed).
    pub fn host() -> Platform {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let arch = std::env::consts::ARCH;
        let (architecture, variant) = match arch {
            "x86_64" => ("amd64", ""),
            "x86" => ("386", ""),
            "aarch64" => ("arm64", ""),
            "arm" => ("arm", "v7"),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", ""),
            "powerpc64" => ("ppc64", ""),
            "riscv64" => ("riscv64", ""),
            "s390x" => ("s390x", ""),
            "loongarch64" => ("loong64", ""),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", ""),
            other => (other, ""),
        };
        Platform::new(os, architecture, variant)
    }
}

impl std::fmt::Display for Platform {
    /// Writes [`Platform::format_all`] (equal to `format` when there is no OS version or feature).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.format_all())
    }
}

/// What can go wrong with platform strings and the platform catalog.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// `*` in a specifier (containerd does not support wildcards yet).
    #[error("invalid platform {input:?}: wildcards are not supported")]
    Wildcard {
        /// The specifier as given.
        input: String,
    },
    /// A `/`-separated component that does not match containerd's syntax.
    #[error("invalid platform {input:?}: component {component:?} is not valid ({expected})")]
    InvalidComponent {
        /// The specifier as given.
        input: String,
        /// The offending component (may be empty).
        component: String,
        /// What the component should look like.
        expected: &'static str,
    },
    /// A `%` escape in an OS version or feature that does not decode.
    #[error("invalid platform {input:?}: bad percent escape in {value:?}")]
    BadEscape {
        /// The specifier as given.
        input: String,
        /// The undecodable OS version or feature.
        value: String,
    },
    /// A one-word specifier that is neither a known OS nor a known architecture.
    #[error("invalid platform {input:?}: unknown operating system or architecture")]
    UnknownOsOrArch {
        /// The specifier as given.
        input: String,
    },
    /// More than three `/`-separated components.
    #[error("invalid platform {input:?}: too many components (at most os/arch/variant)")]
    TooManyComponents {
        /// The specifier as given.
        input: String,
    },
    /// A platform that parses but is not in the catalog.
    #[error("unknown platform {input:?}{}", did_you_mean(suggestions))]
    Unknown {
        /// The specifier as given.
        input: String,
        /// The closest catalog names, best first (may be empty).
        suggestions: Vec<String>,
    },
    /// An empty item in a comma-separated platform list.
    #[error("empty platform in list {list:?}")]
    EmptyListItem {
        /// The whole list as given.
        list: String,
    },
    /// Two items of a platform list that name the same platform.
    #[error("platform {platform} is given twice in the list ({first:?} and {second:?})")]
    DuplicateInList {
        /// The canonical platform both items resolve to.
        platform: String,
        /// The first item.
        first: String,
        /// The repeated item.
        second: String,
    },
    /// A catalog file or folder that cannot be read.
    #[error("reading platform catalog {path}: {source}")]
    CatalogRead {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A catalog file that is not valid TOML for a platform entry (unknown or
    /// missing field, wrong type); toml's message names the field.
    #[error("platform catalog file {file}: {message}")]
    CatalogSyntax {
        /// The file (for embedded entries, `platforms/<name>.toml`).
        file: PathBuf,
        /// The TOML/serde message, naming the field.
        message: String,
    },
    /// A catalog file whose values are inconsistent.
    #[error("platform catalog file {file}: field `{field}`: {reason}")]
    CatalogInvalid {
        /// The file.
        file: PathBuf,
        /// The field at fault.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// One alias claimed by two catalog entries.
    #[error("platform alias {alias:?} is claimed by both {first} and {second} ({file})")]
    DuplicateAlias {
        /// The alias, lowercased.
        alias: String,
        /// The platform that claimed it first.
        first: String,
        /// The platform that claims it again.
        second: String,
        /// The file of the second claim.
        file: PathBuf,
    },
}

fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [init @ .., last] => format!("; did you mean {} or {last}?", init.join(", ")),
    }
}

/// This module's result type.
pub type Result<T> = std::result::Result<T, PlatformError>;
