//! The files of `templates/`, embedded in the binary. A test in `mod.rs` checks
//! that this list and the folders on disk agree, so a new template cannot be
//! forgotten here.

/// One embedded template folder: its name and `(file name, contents)` pairs.
pub(super) struct Embedded {
    pub name: &'static str,
    pub meta: &'static str,
    pub files: [(&'static str, &'static str); 3],
}

macro_rules! template {
    ($name:literal) => {
        Embedded {
            name: $name,
            meta: include_str!(concat!("../../templates/", $name, "/template.toml")),
            files: [
                (
                    "Dockerfile",
                    include_str!(concat!("../../templates/", $name, "/Dockerfile")),
                ),
                (
                    ".dockerignore",
                    include_str!(concat!("../../templates/", $name, "/.dockerignore")),
                ),
                (
                    "xplat.toml",
                    include_str!(concat!("../../templates/", $name, "/xplat.toml")),
                ),
            ],
        }
    };
}

/// Every template, in the order `xplat init --list` shows them.
pub(super) const TEMPLATES: &[Embedded] = &[
    template!("go"),
    template!("go-cgo"),
    template!("rust"),
    template!("c"),
    template!("node"),
    template!("python"),
];
