//! Where xplat keeps its local caches: `XPLAT_CACHE_DIR`, else `$XDG_CACHE_HOME/xplat`,
//! else `~/.cache/xplat`. The environment is passed in (never read here), so tests need no
//! process-env mutation; the CLI passes `std::env::vars()`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The cache folder for this environment; `None` when no variable gives one (no HOME).
pub fn cache_dir(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    let set = |k: &str| env.get(k).filter(|v| !v.is_empty());
    if let Some(d) = set("XPLAT_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = set("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("xplat"));
    }
    set("HOME").map(|h| PathBuf::from(h).join(".cache").join("xplat"))
}

/// [`cache_dir`] of the process environment.
pub fn cache_dir_from_process() -> Option<PathBuf> {
    cache_dir(&std::env::vars().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_variable_set_wins() {
        let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let all = env(&[
            ("XPLAT_CACHE_DIR", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(cache_dir(&all), Some(PathBuf::from("/c")));
        let xdg = env(&[
            ("XPLAT_CACHE_DIR", ""),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(cache_dir(&xdg), Some(PathBuf::from("/x/xplat")));
        assert_eq!(
            cache_dir(&env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/xplat"))
        );
        assert_eq!(cache_dir(&env(&[])), None);
    }
}
