//! What `xplat platforms` prints: the catalog as a table for people, or as JSON.
//! Pure functions returning `String`; the CLI only writes them out.

use serde::Serialize;

use super::catalog::{Catalog, PlatformSpec, Source};

/// Column titles of [`table`], in order.
const HEADERS: [&str; 7] = [
    "PLATFORM",
    "ALIASES",
    "GNU TRIPLE",
    "RUST TRIPLE",
    "GO ENV",
    "DEBIAN",
    "QEMU",
];

/// The catalog as an aligned text table, one platform per line, sorted by
/// name, then one line per entry that comes from a user file. Missing values
/// print as `-`.
pub fn table(catalog: &Catalog) -> String {
    let rows: Vec<[String; 7]> = catalog.specs().map(row).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADERS.map(String::from);
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for spec in catalog.specs() {
        if let Some(Source::File(path)) = catalog.source(&spec.name()) {
            out.push_str(&format!("{} from {}\n", spec.name(), path.display()));
        }
    }
    out
}

fn row(spec: &PlatformSpec) -> [String; 7] {
    let or_dash = |v: Option<&String>| v.cloned().unwrap_or_else(|| "-".to_string());
    let go_env: Vec<String> = spec
        .go_env()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    [
        spec.name(),
        if spec.aliases.is_empty() {
            "-".to_string()
        } else {
            spec.aliases.join(",")
        },
        or_dash(spec.gnu_triple.as_ref()),
        spec.rust.gnu.clone(),
        go_env.join(" "),
        spec.debian_arch.clone(),
        spec.qemu_binary.clone(),
    ]
}

/// One entry of [`json`]: the spec's own fields plus its canonical name and origin.
#[derive(Serialize)]
struct JsonEntry<'a> {
    platform: String,
    #[serde(flatten)]
    spec: &'a PlatformSpec,
    /// `embedded` or the user file's path.
    source: String,
}

/// The catalog as pretty JSON: an array sorted by platform name, each element
/// `{"platform": "linux/arm/v7", <every PlatformSpec field>, "source": "embedded"|path}`.
pub fn json(catalog: &Catalog) -> String {
    let entries: Vec<JsonEntry> = catalog
        .specs()
        .map(|spec| JsonEntry {
            platform: spec.name(),
            spec,
            source: match catalog.source(&spec.name()) {
                Some(Source::File(path)) => path.display().to_string(),
                _ => "embedded".to_string(),
            },
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&entries)
        .expect("catalog entries are plain strings and always serialise");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_header_and_one_aligned_row_per_platform() {
        let catalog = Catalog::embedded();
        let text = table(&catalog);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + catalog.specs().count());
        assert!(lines[0].starts_with("PLATFORM"));
        let arm = lines
            .iter()
            .find(|l| l.starts_with("linux/arm/v7 "))
            .expect("arm/v7 row");
        for want in [
            "armhf",
            "arm-linux-gnueabihf",
            "armv7-unknown-linux-gnueabihf",
            "GOARM=7",
            "qemu-arm-static",
        ] {
            assert!(arm.contains(want), "{want} in {arm}");
        }
        let col = lines[0].find("GNU TRIPLE").unwrap();
        assert_eq!(
            &arm[col..col + "arm-linux-gnueabihf".len()],
            "arm-linux-gnueabihf"
        );
    }

    #[test]
    fn json_lists_every_platform_with_its_fields() {
        let catalog = Catalog::embedded();
        let value: serde_json::Value = serde_json::from_str(&json(&catalog)).unwrap();
        let entries = value.as_array().unwrap();
        assert_eq!(entries.len(), catalog.specs().count());
        let arm64 = entries
            .iter()
            .find(|e| e["platform"] == "linux/arm64")
            .unwrap();
        assert_eq!(arm64["gnu_triple"], "aarch64-linux-gnu");
        assert_eq!(arm64["rust"]["musl"], "aarch64-unknown-linux-musl");
        assert_eq!(arm64["go"]["goarch"], "arm64");
        assert_eq!(arm64["source"], "embedded");
        assert!(arm64.get("variant").is_none());
    }
}
