//! Platform specifier syntax, as containerd's `Parse`, `Normalize`, `Format` and
//! `FormatAll` define it: `os[(osversion[+feature]*)][/arch[/variant]]`, or one
//! word naming an OS or an architecture (the other half comes from the host).
//!
//! Parse and Normalize differ on defaults, on purpose (containerd does):
//! `parse("linux/arm")` has no variant while `normalized()` gives `v7`;
//! `parse("linux/arm64/v8")` keeps `v8` while `normalized()` drops it.

use super::{Platform, PlatformError, Result};

/// The GOOS values containerd knows; a one-word specifier naming one of them is an OS.
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

/// The GOARCH values containerd knows; a one-word specifier naming one of them is an architecture.
const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

/// What an os component must look like, for error messages.
const OS_SYNTAX: &str = "os[(version[+feature]...)] with letters, digits, '_' and '-'";
/// What an arch or variant component must look like, for error messages.
const PART_SYNTAX: &str = "letters, digits, '_', '.' and '-'";

impl Platform {
    /// Parses a specifier with containerd's rules, taking the missing half of a
    /// one-word specifier from the real host ([`Platform::host`]).
    pub fn parse(s: &str) -> Result<Platform> {
        Platform::parse_with_host(s, &Platform::host())
    }

    /// Parses a specifier with containerd's rules; a one-word specifier takes its
    /// missing OS or architecture from `host`.
    pub fn parse_with_host(s: &str, host: &Platform) -> Result<Platform> {
        if s.contains('*') {
            return Err(PlatformError::Wildcard {
                input: s.to_string(),
            });
        }
        let parts: Vec<&str> = s.splitn(4, '/').collect();
        let (os, os_version, os_features) = parse_os_component(s, parts[0])?;
        for part in &parts[1..] {
            if !is_part(part) {
                return Err(PlatformError::InvalidComponent {
                    input: s.to_string(),
                    component: part.to_string(),
                    expected: PART_SYNTAX,
                });
            }
        }
        let mut p = Platform {
            os: normalize_os(&os, host),
            os_version,
            os_features,
            ..Platform::default()
        };
        match parts.len() {
            1 => {
                if KNOWN_OS.contains(&p.os.as_str()) {
                    p.architecture = host.architecture.clone();
                    if host.architecture == "arm" && host.variant != "v7" {
                        p.variant = host.variant.clone();
                    }
                    return Ok(p);
                }
                let (arch, variant) = normalize_arch(parts[0], "");
                if !KNOWN_ARCH.contains(&arch.as_str()) {
                    return Err(PlatformError::UnknownOsOrArch {
                        input: s.to_string(),
                    });
                }
                p.variant = drop_default_arm_variant(&arch, variant);
                p.architecture = arch;
                p.os = host.os.clone();
                Ok(p)
            }
            2 => {
                let (arch, variant) = normalize_arch(parts[1], "");
                p.variant = drop_default_arm_variant(&arch, variant);
                p.architecture = arch;
                Ok(p)
            }
            3 => {
                let (arch, mut variant) = normalize_arch(parts[1], parts[2]);
                if arch == "arm64" && variant.is_empty() {
                    variant = "v8".to_string();
                }
                p.architecture = arch;
                p.variant = variant;
                Ok(p)
            }
            _ => Err(PlatformError::TooManyComponents {
                input: s.to_string(),
            }),
        }
    }

    /// containerd's `Normalize`, with the real host for an empty OS.
    pub fn normalized(&self) -> Platform {
        self.normalized_with_host(&Platform::host())
    }

    /// containerd's `Normalize`: canonical os/arch/variant (`linux/arm` gets `v7`,
    /// `arm64/v8` loses it), OS features sorted and deduplicated; an empty OS
    /// becomes `host`'s.
    pub fn normalized_with_host(&self, host: &Platform) -> Platform {
        let (architecture, variant) = normalize_arch(&self.architecture, &self.variant);
        let mut os_features = self.os_features.clone();
        os_features.sort();
        os_features.dedup();
        Platform {
            os: normalize_os(&self.os, host),
            architecture,
            variant,
            os_version: self.os_version.clone(),
            os_features,
        }
    }

    /// containerd's `Format`: `os/arch[/variant]`, ignoring OS version and
    /// features; `unknown` when the OS is empty.
    pub fn format(&self) -> String {
        if self.os.is_empty() {
            return "unknown".to_string();
        }
        join_nonempty(&[&self.os, &self.architecture, &self.variant])
    }

    /// containerd's `FormatAll`: `os(version+feat...)/arch[/variant]` with the
    /// features sorted, empties and duplicates dropped, and `% + ( ) /` escaped;
    /// the parentheses are left out when there is nothing to put in them.
    pub fn format_all(&self) -> String {
        if self.os.is_empty() {
            return "unknown".to_string();
        }
        let mut options = encode_os_option(self.os_version.as_deref().unwrap_or(""));
        let mut features: Vec<&String> =
            self.os_features.iter().filter(|f| !f.is_empty()).collect();
        features.sort();
        features.dedup();
        for feature in features {
            options.push('+');
            options.push_str(&encode_os_option(feature));
        }
        if options.is_empty() {
            return self.format();
        }
        let os = format!("{}({options})", self.os);
        join_nonempty(&[&os, &self.architecture, &self.variant])
    }

    /// [`Platform::format`] of every platform, joined with `,` (the `--platform` list form).
    pub fn format_list(platforms: &[Platform]) -> String {
        platforms
            .iter()
            .map(Platform::format)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// containerd's `normalizeOS`: lowercase, `macos` is `darwin`, empty is the host's.
fn normalize_os(os: &str, host: &Platform) -> String {
    if os.is_empty() {
        return host.os.clone();
    }
    let os = os.to_lowercase();
    if os == "macos" {
        return "darwin".to_string();
    }
    os
}

/// containerd's `normalizeArch` (the table in NOTES.md).
pub(crate) fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_lowercase();
    let variant = variant.to_lowercase();
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let variant = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), variant)
        }
        "aarch64" | "arm64" => {
            let variant = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            };
            ("arm64".into(), variant)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let variant = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), variant)
        }
        _ => (arch, variant),
    }
}

/// Parse's own rule for 1- and 2-part specifiers: `arm` means v7 without saying so.
fn drop_default_arm_variant(arch: &str, variant: String) -> String {
    if arch == "arm" && variant == "v7" {
        String::new()
    } else {
        variant
    }
}

/// Splits `os[(version[+feature]*)]`, decoding `%` escapes; the os is returned raw.
fn parse_os_component(input: &str, part: &str) -> Result<(String, Option<String>, Vec<String>)> {
    let invalid = || PlatformError::InvalidComponent {
        input: input.to_string(),
        component: part.to_string(),
        expected: OS_SYNTAX,
    };
    let (os, options) = match part.find('(') {
        None => (part, None),
        Some(open) => {
            let inner = part[open + 1..].strip_suffix(')').ok_or_else(invalid)?;
            (&part[..open], Some(inner))
        }
    };
    if os.is_empty()
        || !os
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid());
    }
    let Some(options) = options else {
        return Ok((os.to_string(), None, Vec::new()));
    };
    let option_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '%' | '-');
    let mut pieces = options.split('+');
    let version = pieces.next().unwrap_or("");
    if !version.chars().all(option_char) {
        return Err(invalid());
    }
    let mut features = Vec::new();
    for feature in pieces {
        if feature.is_empty() || !feature.chars().all(option_char) {
            return Err(invalid());
        }
        features.push(decode_os_option(input, feature)?);
    }
    // containerd keeps an empty version as "": `windows()` has no version.
    let version = decode_os_option(input, version)?;
    let version = (!version.is_empty()).then_some(version);
    Ok((os.to_string(), version, features))
}

/// `[A-Za-z0-9_.-]+`
fn is_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Go's `url.PathUnescape`, used only when the value holds a `%`.
fn decode_os_option(input: &str, value: &str) -> Result<String> {
    if !value.contains('%') {
        return Ok(value.to_string());
    }
    let bad = || PlatformError::BadEscape {
        input: input.to_string(),
        value: value.to_string(),
    };
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// FormatAll's escaping of OS version and features; `%` first so nothing is escaped twice.
fn encode_os_option(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('+', "%2B")
        .replace('(', "%28")
        .replace(')', "%29")
        .replace('/', "%2F")
}

/// `path.Join` for our components: empty ones are dropped.
fn join_nonempty(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64() -> Platform {
        Platform::new("linux", "amd64", "")
    }

    #[test]
    fn normalize_table() {
        let rows = [
            // (arch, variant) -> (arch, variant)
            (("i386", "v3"), ("386", "")),
            (("x86_64", "v1"), ("amd64", "")),
            (("X86-64", "V3"), ("amd64", "v3")),
            (("aarch64", "8"), ("arm64", "")),
            (("arm64", "v8.0"), ("arm64", "")),
            (("arm64", "9.0"), ("arm64", "v9")),
            (("arm64", "v8.2"), ("arm64", "v8.2")),
            (("armhf", ""), ("arm", "v7")),
            (("armel", "v7"), ("arm", "v6")),
            (("arm", ""), ("arm", "v7")),
            (("arm", "5"), ("arm", "v5")),
            (("arm", "v8"), ("arm", "v8")),
            (("riscv64", ""), ("riscv64", "")),
        ];
        for ((a, v), (ea, ev)) in rows {
            assert_eq!(
                normalize_arch(a, v),
                (ea.to_string(), ev.to_string()),
                "{a}/{v}"
            );
        }
    }

    #[test]
    fn parse_and_normalize_defaults_differ() {
        let p = Platform::parse_with_host("linux/arm", &amd64()).unwrap();
        assert_eq!(p.variant, "");
        assert_eq!(p.normalized().variant, "v7");
        let p = Platform::parse_with_host("linux/arm64/v8", &amd64()).unwrap();
        assert_eq!(p.variant, "v8");
        assert_eq!(p.normalized().variant, "");
    }

    #[test]
    fn one_word_takes_host_parts() {
        let host = Platform::new("linux", "arm", "v6");
        assert_eq!(
            Platform::parse_with_host("linux", &host).unwrap().format(),
            "linux/arm/v6"
        );
        let host = Platform::new("darwin", "arm64", "");
        assert_eq!(
            Platform::parse_with_host("x86_64", &host).unwrap().format(),
            "darwin/amd64"
        );
        assert!(matches!(
            Platform::parse_with_host("amr64", &host),
            Err(PlatformError::UnknownOsOrArch { .. })
        ));
    }

    #[test]
    fn bad_input_errors() {
        for bad in [
            "linux(",
            "linux()x",
            "linux(+)",
            "linux(a++b)",
            "linux(%zz)",
            "l!nux",
        ] {
            assert!(Platform::parse_with_host(bad, &amd64()).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_os_formats_unknown_and_normalizes_to_host() {
        let p = Platform::new("", "arm64", "");
        assert_eq!(p.format(), "unknown");
        assert_eq!(p.format_all(), "unknown");
        assert_eq!(p.normalized_with_host(&amd64()).os, "linux");
    }

    #[test]
    fn format_all_drops_empty_and_duplicate_features() {
        let mut p = amd64();
        p.os_features = vec!["b".into(), "".into(), "a".into(), "b".into()];
        assert_eq!(p.format_all(), "linux(+a+b)/amd64");
        p.os_features = vec![String::new()];
        assert_eq!(p.format_all(), "linux/amd64");
    }

    #[test]
    fn serde_skips_empty_fields() {
        let json = serde_json::to_string(&Platform::new("linux", "arm64", "")).unwrap();
        assert_eq!(json, r#"{"os":"linux","architecture":"arm64"}"#);
        let p = Platform::parse_with_host("windows(10.0+win32k)/amd64", &amd64()).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"os":"windows","architecture":"amd64","os.version":"10.0","os.features":["win32k"]}"#
        );
        assert_eq!(serde_json::from_str::<Platform>(&json).unwrap(), p);
    }
}
