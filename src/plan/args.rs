//! ARG values: BuildKit's automatic platform ARGs, the catalog's per-platform
//! ARGs, the global scope (ARGs before the first FROM) and a stage's scope.
//!
//! The rules (BuildKit `dockerfile2llb`, see `../shared/peer/shell/PLATFORM_ARGS.md`):
//! - the automatic ARGs hold *normalized* values (`linux/arm` gives
//!   `TARGETVARIANT=v7`); `BUILDPLATFORM` is `os/arch[/variant]`,
//!   `TARGETPLATFORM` the full form with any OS version;
//! - a `--build-arg` of the same name overrides one automatic value only;
//! - automatic ARGs are visible in `FROM` (image and `--platform`) without any
//!   `ARG` line; inside a stage only after `ARG NAME`;
//! - a global ARG is visible in a stage only when re-declared with `ARG NAME`;
//!   its value there is the `--build-arg`, else the stage default, else the
//!   global value.
//!
//! xplat adds the catalog's values ([`PlatformSpec::build_args`]) with the same
//! scoping: `TARGET_GNU_TRIPLE`, `TARGET_RUST_TRIPLE`, `TARGET_GOARM`, … and their
//! `BUILD_` twins. They are absent when a platform is not in the catalog.
//!
//! **When a Dockerfile declares a catalog name itself** (real Dockerfiles declare
//! `ARG TARGET_GOOS=linux` or `ARG TARGET_GOARCH` and set them with `--build-arg`;
//! issue 10), the catalog value is a *global* value, like an automatic ARG's, so
//! BuildKit's precedence decides:
//! 1. a `--build-arg NAME=v` always wins, in FROM and in every stage;
//! 2. else the Dockerfile's own default wins (`ARG TARGET_GOARCH=amd64`, before the
//!    first FROM or in a stage): a Dockerfile written before xplat keeps its meaning;
//! 3. else `ARG NAME` without a default gets the catalog value for the target (or
//!    the build platform, for `BUILD_*`), and FROM sees it without any `ARG` line.
//!
//! A platform the catalog does not know leaves such an ARG without a value (unset),
//! unless rule 1 or 2 gives one.

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::expand::Expander;
use crate::dockerfile::{ArgDecl, Location, Spanned};
#[cfg(doc)]
use crate::platform::PlatformSpec;
use crate::platform::{ArgRole, Catalog, Platform};

use super::error::{PlanError, Result};

/// BuildKit's automatic ARG names, in BuildKit's order.
pub const AUTOMATIC: [&str; 11] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// Whether `name` is an ARG xplat or BuildKit defines by itself (automatic or catalog).
pub fn is_predefined(name: &str) -> bool {
    AUTOMATIC.contains(&name) || is_catalog_name(name)
}

/// Whether `name` is one of the catalog's `TARGET_*`/`BUILD_*` ARG names.
pub fn is_catalog_name(name: &str) -> bool {
    ["TARGET_", "BUILD_"].iter().any(|prefix| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| CATALOG_SUFFIXES.contains(&rest))
    })
}

/// The suffixes of [`PlatformSpec::build_args`] names (a test keeps them in step).
pub const CATALOG_SUFFIXES: [&str; 8] = [
    "GNU_TRIPLE",
    "RUST_TRIPLE",
    "RUST_MUSL_TRIPLE",
    "GOOS",
    "GOARCH",
    "GOARM",
    "DEBIAN_ARCH",
    "QEMU",
];

/// Whether `name` describes the target platform (`TARGET*` automatic or catalog ARG),
/// i.e. a stage that declares it differs per target.
pub fn is_target_name(name: &str) -> bool {
    is_predefined(name) && name.starts_with("TARGET") && name != "TARGETSTAGE"
}

/// The predefined ARG values for one target: BuildKit's automatic ARGs plus the
/// catalog's, for `build` (the engine's platform) and `target`.
pub fn predefined(
    build: &Platform,
    target: &Platform,
    target_stage: &str,
    catalog: &Catalog,
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        m.insert(k.to_string(), v.to_string());
    };
    put("BUILDPLATFORM", &build.format());
    put("BUILDOS", &build.os);
    put("BUILDOSVERSION", build.os_version.as_deref().unwrap_or(""));
    put("BUILDARCH", &build.architecture);
    put("BUILDVARIANT", &build.variant);
    put("TARGETPLATFORM", &target.format_all());
    put("TARGETOS", &target.os);
    put(
        "TARGETOSVERSION",
        target.os_version.as_deref().unwrap_or(""),
    );
    put("TARGETARCH", &target.architecture);
    put("TARGETVARIANT", &target.variant);
    put("TARGETSTAGE", target_stage);
    if let Some(spec) = catalog.get(target) {
        m.extend(spec.build_args(ArgRole::Target));
    }
    if let Some(spec) = catalog.get(build) {
        m.extend(spec.build_args(ArgRole::Build));
    }
    m
}

/// The global scope: predefined values with `--build-arg` overrides of the same
/// names, then each ARG before the first FROM in order (its default expanded
/// with the values known at that point; a `--build-arg` wins). A global ARG
/// with no default and no `--build-arg` stays unset, unless it names a
/// predefined ARG, which keeps its value.
pub fn global_scope(
    meta_args: &[Spanned<ArgDecl>],
    predefined: &BTreeMap<String, String>,
    build_args: &BTreeMap<String, String>,
    escape: char,
) -> Result<BTreeMap<String, String>> {
    let mut scope = predefined.clone();
    for (k, v) in build_args {
        if scope.contains_key(k) {
            scope.insert(k.clone(), v.clone());
        }
    }
    let ex = Expander::new(escape);
    for arg in meta_args {
        let decl = &arg.node;
        if let Some(v) = build_args.get(&decl.name) {
            scope.insert(decl.name.clone(), v.clone());
        } else if let Some(default) = &decl.default {
            let value = ex
                .expand_word(default, &scope)
                .map_err(|source| PlanError::Expand {
                    keyword: "ARG",
                    word: default.clone(),
                    source,
                    location: Location::line(arg.span.start_line),
                })?;
            scope.insert(decl.name.clone(), value);
        }
    }
    Ok(scope)
}

/// The value a stage's `ARG NAME[=default]` takes: the `--build-arg`, else the
/// default (already expanded), else the global value; `None`: declared, unset.
pub fn stage_arg_value(
    name: &str,
    expanded_default: Option<String>,
    global: &BTreeMap<String, String>,
    build_args: &BTreeMap<String, String>,
) -> Option<String> {
    build_args
        .get(name)
        .cloned()
        .or(expanded_default)
        .or_else(|| global.get(name).cloned())
}

/// Names declared by ARGs before the first FROM.
pub fn global_names(meta_args: &[Spanned<ArgDecl>]) -> BTreeSet<String> {
    meta_args.iter().map(|a| a.node.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap().normalized()
    }

    #[test]
    fn automatic_values_are_normalized() {
        let cat = Catalog::embedded();
        let m = predefined(&p("linux/amd64"), &p("linux/arm"), "default", &cat);
        assert_eq!(m["TARGETPLATFORM"], "linux/arm/v7");
        assert_eq!(m["TARGETVARIANT"], "v7");
        assert_eq!(m["TARGETARCH"], "arm");
        assert_eq!(m["BUILDPLATFORM"], "linux/amd64");
        assert_eq!(m["BUILDVARIANT"], "");
        assert_eq!(m["TARGET_GNU_TRIPLE"], "arm-linux-gnueabihf");
        assert_eq!(m["TARGET_GOARM"], "7");
        assert_eq!(m["BUILD_GOARCH"], "amd64");
        assert_eq!(m["BUILD_GOARM"], "");
        let m = predefined(&p("linux/amd64"), &p("linux/arm64/v8"), "x", &cat);
        assert_eq!(m["TARGETPLATFORM"], "linux/arm64");
        assert_eq!(m["TARGETVARIANT"], "");
    }

    #[test]
    fn global_scope_rules() {
        let df =
            parse("ARG A=1\nARG B=${A}-x\nARG C\nARG TARGETARCH\nARG D=$TARGETOS\nFROM scratch\n")
                .unwrap();
        let cat = Catalog::embedded();
        let pre = predefined(&p("linux/amd64"), &p("linux/arm64"), "default", &cat);
        let none = BTreeMap::new();
        let g = global_scope(&df.meta_args, &pre, &none, '\\').unwrap();
        assert_eq!(g["A"], "1");
        assert_eq!(g["B"], "1-x");
        assert!(!g.contains_key("C"), "declared without value stays unset");
        assert_eq!(g["TARGETARCH"], "arm64");
        assert_eq!(g["D"], "linux");

        let mut ba = BTreeMap::new();
        ba.insert("A".to_string(), "9".to_string());
        ba.insert("TARGETOS".to_string(), "freebsd".to_string());
        let g = global_scope(&df.meta_args, &pre, &ba, '\\').unwrap();
        assert_eq!(
            g["B"], "9-x",
            "build-arg replaces the global value before later defaults"
        );
        assert_eq!(g["D"], "freebsd", "build-arg overrides one automatic value");
        assert_eq!(g["TARGETPLATFORM"], "linux/arm64", "and only that one");
    }

    #[test]
    fn stage_arg_precedence() {
        let mut g = BTreeMap::new();
        g.insert("V".to_string(), "global".to_string());
        let mut ba = BTreeMap::new();
        assert_eq!(
            stage_arg_value("V", None, &g, &ba).as_deref(),
            Some("global")
        );
        assert_eq!(
            stage_arg_value("V", Some("dflt".into()), &g, &ba).as_deref(),
            Some("dflt")
        );
        assert_eq!(stage_arg_value("W", None, &g, &ba), None);
        ba.insert("V".to_string(), "cli".to_string());
        assert_eq!(
            stage_arg_value("V", Some("dflt".into()), &g, &ba).as_deref(),
            Some("cli")
        );
    }

    /// The catalog-name rule of the module doc, at the global scope and in a stage.
    #[test]
    fn a_declared_catalog_name_follows_buildkits_precedence() {
        let cat = Catalog::embedded();
        let arm = p("linux/arm64");
        let pre = predefined(&p("linux/amd64"), &arm, "default", &cat);
        let none = BTreeMap::new();
        let cli = BTreeMap::from([("TARGET_GOARCH".to_string(), "riscv64".to_string())]);
        // (global ARG lines, build args, global value of TARGET_GOARCH)
        let cases: &[(&str, &BTreeMap<String, String>, Option<&str>)] = &[
            ("", &none, Some("arm64")),
            ("ARG TARGET_GOARCH\n", &none, Some("arm64")),
            ("ARG TARGET_GOARCH=amd64\n", &none, Some("amd64")),
            ("ARG TARGET_GOARCH=amd64\n", &cli, Some("riscv64")),
            ("", &cli, Some("riscv64")),
        ];
        for (globals, ba, want) in cases {
            let df = parse(&format!("{globals}FROM scratch\n")).unwrap();
            let g = global_scope(&df.meta_args, &pre, ba, '\\').unwrap();
            assert_eq!(
                g.get("TARGET_GOARCH").map(String::as_str),
                *want,
                "{globals:?} {ba:?}"
            );
        }
        // In a stage: --build-arg, else the stage default, else the global value.
        let g = global_scope(&[], &pre, &none, '\\').unwrap();
        assert_eq!(
            stage_arg_value("TARGET_GOARCH", Some("amd64".into()), &g, &none).as_deref(),
            Some("amd64")
        );
        assert_eq!(
            stage_arg_value("TARGET_GOARCH", None, &g, &none).as_deref(),
            Some("arm64")
        );
        assert_eq!(
            stage_arg_value("TARGET_GOARCH", Some("amd64".into()), &g, &cli).as_deref(),
            Some("riscv64")
        );
        // A platform the catalog does not know: no value unless declared.
        let odd = predefined(&p("linux/amd64"), &p("linux/sparc64"), "default", &cat);
        let g = global_scope(&[], &odd, &none, '\\').unwrap();
        assert_eq!(stage_arg_value("TARGET_GOARCH", None, &g, &none), None);
        assert_eq!(g["TARGETARCH"], "sparc64");
    }

    #[test]
    fn catalog_suffixes_match_the_catalog() {
        for spec in Catalog::embedded().specs() {
            let names: BTreeSet<String> = spec.build_args(ArgRole::Target).into_keys().collect();
            let ours: BTreeSet<String> = CATALOG_SUFFIXES
                .iter()
                .map(|s| format!("TARGET_{s}"))
                .collect();
            assert_eq!(names, ours, "{}", spec.name());
        }
    }

    #[test]
    fn name_classes() {
        assert!(is_target_name("TARGETARCH"));
        assert!(is_target_name("TARGET_GNU_TRIPLE"));
        assert!(!is_target_name("TARGETSTAGE"));
        assert!(!is_target_name("BUILDARCH"));
        assert!(is_predefined("BUILD_RUST_TRIPLE"));
        assert!(!is_predefined("TARGET_FOO"));
    }
}
