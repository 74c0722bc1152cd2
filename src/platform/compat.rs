//! Which platform runs which: containerd's `NewMatcher` ([`Platform::matches`])
//! and `Only` ([`Platform::compat_vector`], [`Platform::can_run`]).
//!
//! The vector of a platform is what a host of that platform runs natively,
//! best first: amd64/vN runs lower vN and 386; arm/vN runs down to v5; every
//! known arm64 variant runs its lower arm64 variants and then arm/v8..v5.

use super::Platform;

/// LTSC Windows builds (ltsc2022, ltsc2025): a host runs containers from the
/// newest LTSC build older than itself up to its own build.
const WINDOWS_LTSC_BUILDS: &[u32] = &[20348, 26100];

impl Platform {
    /// containerd's `NewMatcher(self).Match(candidate)`: both normalized, equal
    /// os/arch/variant, the candidate's OS features a subset of ours (Windows:
    /// `win32k` ignored on the candidate, OS versions compatible). Because both
    /// sides are normalized this is also `OnlyStrict(self)`: `linux/arm` matches
    /// `linux/arm/v7`, `linux/arm64/v8` matches `linux/arm64`. Use it, not `==`,
    /// to ask "same platform?".
    pub fn matches(&self, candidate: &Platform) -> bool {
        let host = Platform::host();
        let m = self.normalized_with_host(&host);
        let c = candidate.normalized_with_host(&host);
        if m.os != c.os || m.architecture != c.architecture || m.variant != c.variant {
            return false;
        }
        let windows = m.os == "windows";
        if windows && !windows_versions_compatible(m.os_version.as_deref(), c.os_version.as_deref())
        {
            return false;
        }
        c.os_features
            .iter()
            .filter(|f| !(windows && f.as_str() == "win32k"))
            .all(|f| m.os_features.contains(f))
    }

    /// containerd's platform vector of `Only(self)`: every platform a host of
    /// `self` runs, best first. Empty for an arm64 variant containerd does not
    /// know (e.g. `v8.10`), exactly as containerd: such a host matches nothing.
    pub fn compat_vector(&self) -> Vec<Platform> {
        let p = self.normalized();
        let with = |architecture: &str, variant: String| Platform {
            architecture: architecture.to_string(),
            variant,
            ..p.clone()
        };
        let mut vector = Vec::new();
        match p.architecture.as_str() {
            "amd64" => {
                vector.push(p.clone());
                if let Some(n) = variant_number(&p.variant).filter(|n| *n > 1) {
                    vector.extend((1..n).rev().map(|v| with("amd64", format!("v{v}"))));
                }
                vector.push(with("386", String::new()));
            }
            "arm" => {
                vector.push(p.clone());
                if let Some(n) = variant_number(&p.variant).filter(|n| *n > 5) {
                    vector.extend((5..n).rev().map(|v| with("arm", format!("v{v}"))));
                }
            }
            "arm64" => {
                if let Some(variants) = arm64_variants(&p.variant) {
                    vector.extend(variants.into_iter().map(|v| with("arm64", v)));
                    vector.extend((5..=8).rev().map(|v| with("arm", format!("v{v}"))));
                }
            }
            _ => vector.push(p.clone()),
        }
        vector
    }

    /// containerd's `Only(self).Match(target)`: whether a host of `self` runs
    /// `target` natively (no emulation).
    pub fn can_run(&self, target: &Platform) -> bool {
        self.compat_vector().iter().any(|p| p.matches(target))
    }
}

/// `vN` → N (containerd: `strconv.Atoi(strings.TrimPrefix(v, "v"))`).
fn variant_number(variant: &str) -> Option<u32> {
    variant.strip_prefix('v').unwrap_or(variant).parse().ok()
}

/// The arm64 variants a normalized arm64 variant runs, best first; `None` when
/// containerd's table does not list it. v8.0 is written `v8`.
fn arm64_variants(variant: &str) -> Option<Vec<String>> {
    let v8_down_from = |minor: u32| {
        (1..=minor)
            .rev()
            .map(|m| format!("v8.{m}"))
            .chain(std::iter::once("v8".to_string()))
            .collect::<Vec<_>>()
    };
    let (major, minor) = match variant {
        "" | "v8" => (8, 0),
        "v9" => (9, 0),
        other => {
            let (major, minor) = other.strip_prefix('v')?.split_once('.')?;
            (major.parse().ok()?, minor.parse().ok()?)
        }
    };
    match (major, minor) {
        (8, 0..=9) => Some(v8_down_from(minor)),
        (9, 0..=7) => {
            let mut out: Vec<String> = (1..=minor).rev().map(|m| format!("v9.{m}")).collect();
            out.push("v9".to_string());
            out.extend(v8_down_from((minor + 5).min(9)));
            Some(out)
        }
        _ => None,
    }
}

/// Windows host/container OS version compatibility (containerd
/// `platform_windows_compat.go`); an empty version on either side matches.
fn windows_versions_compatible(host: Option<&str>, container: Option<&str>) -> bool {
    let (Some(host), Some(container)) = (host, container) else {
        return true;
    };
    let (Some(h), Some(c)) = (windows_version(host), windows_version(container)) else {
        return host == container;
    };
    if h.0 != c.0 || h.1 != c.1 {
        return false;
    }
    let (host_build, ctr_build) = (h.2, c.2);
    if host_build < WINDOWS_LTSC_BUILDS[0] {
        return host_build == ctr_build;
    }
    let oldest = WINDOWS_LTSC_BUILDS
        .iter()
        .rev()
        .find(|&&ltsc| ltsc < host_build)
        .copied()
        .unwrap_or(WINDOWS_LTSC_BUILDS[0]);
    (oldest..=host_build).contains(&ctr_build)
}

/// `major.minor.build[.rev]` → (major, minor, build).
fn windows_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let build = parts.next()?.parse().ok()?;
    Some((major, minor, build))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse_with_host(s, &Platform::new("linux", "amd64", "")).unwrap()
    }

    fn vector(s: &str) -> Vec<String> {
        p(s).compat_vector().iter().map(Platform::format).collect()
    }

    #[test]
    fn matcher_normalizes_both_sides() {
        let rows = [
            ("linux/arm", "linux/arm/v7", true),
            ("linux/arm/v7", "linux/armhf", true),
            ("linux/arm64", "linux/arm64/v8", true),
            ("linux/arm64/v8", "linux/aarch64", true),
            ("linux/amd64", "linux/x86_64/v1", true),
            ("linux/amd64", "linux/amd64/v2", false),
            ("linux/arm/v6", "linux/arm", false),
            ("linux/arm64", "linux/arm", false),
            ("linux/386", "linux/i386", true),
            ("linux/amd64", "darwin/amd64", false),
            ("Linux/AMD64", "linux/amd64", true),
        ];
        for (m, c, want) in rows {
            assert_eq!(p(m).matches(&p(c)), want, "{m} matches {c}");
        }
    }

    #[test]
    fn matcher_os_features_subset() {
        let rows = [
            ("linux(+gpu+simd)/amd64", "linux/amd64", true),
            ("linux(+gpu+simd)/amd64", "linux(+gpu)/amd64", true),
            ("linux(+gpu)/amd64", "linux(+gpu+simd)/amd64", false),
            ("linux/amd64", "linux(+gpu)/amd64", false),
            (
                "windows(10.0.17763)/amd64",
                "windows(10.0.17763+win32k)/amd64",
                true,
            ),
            ("linux/amd64", "linux(+win32k)/amd64", false),
        ];
        for (m, c, want) in rows {
            assert_eq!(p(m).matches(&p(c)), want, "{m} matches {c}");
        }
    }

    #[test]
    fn windows_os_version_rules() {
        let rows = [
            (17763, 17763, true),
            (17763, 20348, false),
            (20348, 17763, false),
            (20348, 20348, true),
            (22621, 17763, false),
            (22621, 20348, true),
            (25398, 17763, false),
            (25398, 20348, true),
            (26100, 20348, true),
            (20348, 26100, false),
            (20348, 22621, false),
            (26100, 22621, true),
        ];
        for (host, ctr, want) in rows {
            let h = p(&format!("windows(10.0.{host})/amd64"));
            let c = p(&format!("windows(10.0.{ctr})/amd64"));
            assert_eq!(h.matches(&c), want, "host {host} ctr {ctr}");
        }
        assert!(p("windows(99.99.99.99)/amd64").matches(&p("windows/amd64")));
        assert!(!p("windows(10.0.17763)/amd64").matches(&p("windows(6.3.17763)/amd64")));
    }

    #[test]
    fn host_is_normalized_and_runs_itself() {
        let host = Platform::host();
        assert_eq!(host.normalized(), host);
        assert!(host.can_run(&host));
        assert!(host.matches(&host));
    }

    #[test]
    fn amd64_vectors() {
        assert_eq!(vector("linux/amd64"), ["linux/amd64", "linux/386"]);
        assert_eq!(
            vector("linux/amd64/v3"),
            [
                "linux/amd64/v3",
                "linux/amd64/v2",
                "linux/amd64/v1",
                "linux/386"
            ]
        );
        assert!(p("linux/amd64/v3").can_run(&p("linux/amd64")));
        assert!(p("linux/amd64/v3").can_run(&p("linux/amd64/v2")));
        assert!(!p("linux/amd64/v2").can_run(&p("linux/amd64/v3")));
        assert!(!p("linux/amd64").can_run(&p("linux/amd64/v2")));
        assert!(p("linux/amd64").can_run(&p("linux/386")));
        assert!(!p("linux/386").can_run(&p("linux/amd64")));
        assert!(!p("linux/amd64").can_run(&p("linux/arm64")));
    }

    #[test]
    fn arm_vectors() {
        assert_eq!(
            vector("linux/arm/v7"),
            ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
        );
        assert_eq!(vector("linux/arm/v5"), ["linux/arm/v5"]);
        assert_eq!(vector("linux/arm/v4"), ["linux/arm/v4"]);
        assert!(p("linux/arm/v8").can_run(&p("linux/arm")));
        assert!(p("linux/arm/v7").can_run(&p("linux/arm")));
        assert!(!p("linux/arm/v6").can_run(&p("linux/arm")));
        assert!(p("linux/arm/v6").can_run(&p("linux/arm/v5")));
        assert!(!p("linux/arm/v5").can_run(&p("linux/arm/v6")));
    }

    #[test]
    fn arm64_vectors() {
        assert_eq!(
            vector("linux/arm64"),
            [
                "linux/arm64/v8",
                "linux/arm/v8",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/arm/v5"
            ]
        );
        assert_eq!(
            vector("linux/arm64/v8.2")[..3],
            ["linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64/v8"]
        );
        assert_eq!(
            vector("linux/arm64/v9")[..7],
            [
                "linux/arm64/v9",
                "linux/arm64/v8.5",
                "linux/arm64/v8.4",
                "linux/arm64/v8.3",
                "linux/arm64/v8.2",
                "linux/arm64/v8.1",
                "linux/arm64/v8"
            ]
        );
        let v96 = vector("linux/arm64/v9.6");
        assert_eq!(
            v96[..7],
            [
                "linux/arm64/v9.6",
                "linux/arm64/v9.5",
                "linux/arm64/v9.4",
                "linux/arm64/v9.3",
                "linux/arm64/v9.2",
                "linux/arm64/v9.1",
                "linux/arm64/v9"
            ]
        );
        assert_eq!(v96[7], "linux/arm64/v8.9");
        assert_eq!(v96.len(), 7 + 10 + 4);
        assert!(!p("linux/arm64/v9.6").can_run(&p("linux/arm64/v8.10")));
        assert!(p("linux/arm64").can_run(&p("linux/arm/v7")));
        assert!(p("linux/arm64").can_run(&p("linux/arm/v6")));
        assert!(p("linux/arm64").can_run(&p("linux/arm")));
        assert!(p("linux/arm64").can_run(&p("linux/arm64/v8")));
        assert!(!p("linux/arm64").can_run(&p("linux/arm64/v9")));
        assert!(!p("linux/arm64").can_run(&p("linux/arm/v9")));
        assert!(!p("linux/arm64").can_run(&p("linux/amd64")));
        assert!(p("linux/arm64/v8.10").compat_vector().is_empty());
        assert!(!p("linux/arm64/v8.10").can_run(&p("linux/arm64/v8.10")));
        assert!(p("linux/arm64/v9.7").compat_vector().len() == 7 + 1 + 10 + 4);
        assert!(p("linux/arm64/v9.8").compat_vector().is_empty());
    }

    #[test]
    fn other_arches_only_themselves() {
        assert_eq!(vector("linux/riscv64"), ["linux/riscv64"]);
        assert!(p("linux/s390x").can_run(&p("s390x")));
        assert!(!p("linux/ppc64le").can_run(&p("linux/ppc64")));
    }
}
