//! `xplat config`: the effective configuration as TOML (the same keys
//! `xplat.toml` takes, so it can be pasted back) or as JSON.

use super::{Config, Origin};

/// The configuration as `xplat.toml`-shaped TOML, then where each setting came from.
pub fn toml(config: &Config) -> String {
    let mut view = serde_json::to_value(config).expect("Config serializes");
    let map = view.as_object_mut().expect("Config is an object");
    map.remove("origins");
    map.remove("config_file");
    // TOML has no null: leave unset settings out.
    map.retain(|_, v| !v.is_null());
    let mut out = match &config.config_file {
        Some(f) => format!("# effective configuration (file: {})\n", f.display()),
        None => "# effective configuration (no xplat.toml)\n".to_string(),
    };
    out.push_str(&::toml::to_string_pretty(&view).expect("JSON object is valid TOML"));
    out.push_str("\n# where each setting came from:\n");
    for (key, origin) in &config.origins {
        let from = match origin {
            Origin::Default => "default",
            Origin::File => "xplat.toml",
            Origin::Env => "environment",
            Origin::Flag => "command line",
        };
        out.push_str(&format!("#   {key}: {from}\n"));
    }
    out
}

/// The configuration as one JSON document, with origins.
pub fn json(config: &Config) -> String {
    serde_json::to_string_pretty(config).expect("Config serializes") + "\n"
}
