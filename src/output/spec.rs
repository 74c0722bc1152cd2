//! `--output` values in buildx's vocabulary (pure): `type=local,dest=DIR`, a bare `DIR`
//! (= `type=local`), `type=tar,dest=FILE`, `type=oci,dest=PATH`, `type=docker[,dest=FILE]`
//! (= `--load`, or a docker-archive file), `type=registry` (= `--push`) and `type=image`
//! (`push=true` pushes, else loads). Keys in any order; `name=` adds image names (as
//! `-t` does) to the image types.

use std::path::PathBuf;

use super::error::{OutputError, Result};

/// One `--output` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// An OCI image layout: a folder, or a tar when the path ends in `.tar`.
    Oci {
        /// Where.
        dest: PathBuf,
    },
    /// The filesystem: one folder per platform when several are built.
    Local {
        /// The folder.
        dest: PathBuf,
    },
    /// The filesystem as one tar: a top folder per platform when several are built.
    Tar {
        /// The file.
        dest: PathBuf,
    },
    /// The image in Docker's form: loaded into the engine, or written as a docker-archive
    /// file (what `docker load` reads) when `dest` is given.
    Docker {
        /// The archive file, when not loading.
        dest: Option<PathBuf>,
        /// Extra image names.
        names: Vec<String>,
    },
    /// Pushed to the registry of every name (and `-t` tag).
    Registry {
        /// Extra image names.
        names: Vec<String>,
    },
    /// buildx's image exporter: pushed when `push=true`, else loaded into the engine.
    Image {
        /// Extra image names.
        names: Vec<String>,
        /// `push=true`.
        push: bool,
    },
}

const TYPES: &str = "local, tar, oci, docker, registry, image";

/// Parses one `--output`/`-o` value.
pub fn parse_output_spec(value: &str) -> Result<OutputSpec> {
    let bad = |reason: String| OutputError::InvalidOutput {
        value: value.to_string(),
        reason,
    };
    if value == "-" {
        return Err(bad(
            "writing the output to stdout is not supported; use type=tar,dest=FILE".into(),
        ));
    }
    if !value.contains('=') {
        if value.is_empty() {
            return Err(bad("expected a folder, or type=TYPE,dest=PATH".into()));
        }
        return Ok(OutputSpec::Local {
            dest: PathBuf::from(value),
        });
    }
    let (mut kind, mut dest, mut names, mut push) = (None, None, Vec::new(), None);
    let mut saw_name = false;
    for part in value.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            // `name=a,b` (a comma list inside one key, as buildx allows).
            if saw_name && !part.is_empty() {
                names.push(part.to_string());
                continue;
            }
            return Err(bad(format!(
                "{part:?} is not KEY=VALUE (keys: type, dest, name, push)"
            )));
        };
        match k {
            "type" => kind = Some(v),
            "dest" if !v.is_empty() => dest = Some(PathBuf::from(v)),
            "dest" => return Err(bad("dest= is empty".into())),
            "name" => {
                saw_name = true;
                names.extend(v.split(',').filter(|n| !n.is_empty()).map(String::from))
            }
            "push" => {
                push = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad(format!("push={v:?}: expected true or false"))),
                })
            }
            "platform-split" if v == "true" => {}
            "platform-split" => {
                return Err(bad(
                    "platform-split=false is not supported: each platform gets its own folder"
                        .into(),
                ))
            }
            _ => {
                return Err(bad(format!(
                    "the key {k:?} is not supported (supported: type, dest, name, push, platform-split)"
                )))
            }
        }
    }
    let need_dest = |what: &str| {
        dest.clone()
            .ok_or_else(|| bad(format!("type={what} needs dest=PATH")))
    };
    let kind = kind.unwrap_or("local");
    let spec = match kind {
        "local" => OutputSpec::Local {
            dest: need_dest("local")?,
        },
        "tar" => OutputSpec::Tar {
            dest: need_dest("tar")?,
        },
        "oci" => OutputSpec::Oci {
            dest: need_dest("oci")?,
        },
        "docker" => OutputSpec::Docker {
            dest: dest.clone(),
            names,
        },
        "registry" => OutputSpec::Registry { names },
        "image" => OutputSpec::Image {
            names,
            push: push.unwrap_or(false),
        },
        other => {
            return Err(bad(format!(
                "type {other:?} is not supported (supported: {TYPES})"
            )))
        }
    };
    let takes_push = matches!(spec, OutputSpec::Image { .. } | OutputSpec::Registry { .. });
    if push.is_some() && !takes_push {
        return Err(bad(format!(
            "push= applies to type=image and type=registry, not type={kind}"
        )));
    }
    if push == Some(false) && matches!(spec, OutputSpec::Registry { .. }) {
        return Err(bad(
            "type=registry always pushes; use type=image,push=false to load".into(),
        ));
    }
    let names_allowed = matches!(
        spec,
        OutputSpec::Docker { .. } | OutputSpec::Registry { .. } | OutputSpec::Image { .. }
    );
    if saw_name && !names_allowed {
        return Err(bad(format!(
            "name= applies to type=docker, registry and image, not type={kind}"
        )));
    }
    if dest.is_some() && matches!(spec, OutputSpec::Registry { .. } | OutputSpec::Image { .. }) {
        return Err(bad(format!("type={kind} takes no dest=")));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn buildx_output_values() {
        let cases: Vec<(&str, OutputSpec)> = vec![
            ("out", OutputSpec::Local { dest: p("out") }),
            ("type=local,dest=out", OutputSpec::Local { dest: p("out") }),
            ("dest=out", OutputSpec::Local { dest: p("out") }),
            (
                "dest=out,type=local,platform-split=true",
                OutputSpec::Local { dest: p("out") },
            ),
            (
                "type=tar,dest=fs.tar",
                OutputSpec::Tar { dest: p("fs.tar") },
            ),
            (
                "type=oci,dest=app.tar",
                OutputSpec::Oci { dest: p("app.tar") },
            ),
            (
                "type=docker",
                OutputSpec::Docker {
                    dest: None,
                    names: vec![],
                },
            ),
            (
                "type=docker,dest=img.tar,name=app:1",
                OutputSpec::Docker {
                    dest: Some(p("img.tar")),
                    names: vec!["app:1".into()],
                },
            ),
            ("type=registry", OutputSpec::Registry { names: vec![] }),
            (
                "type=registry,name=r.example/a:1,name=r.example/b:1",
                OutputSpec::Registry {
                    names: vec!["r.example/a:1".into(), "r.example/b:1".into()],
                },
            ),
            (
                "type=image",
                OutputSpec::Image {
                    names: vec![],
                    push: false,
                },
            ),
            (
                "type=image,push=true",
                OutputSpec::Image {
                    names: vec![],
                    push: true,
                },
            ),
        ];
        for (value, want) in cases {
            assert_eq!(parse_output_spec(value).unwrap(), want, "{value}");
        }
    }

    #[test]
    fn values_buildx_users_mistype_are_refused_with_the_reason() {
        for (value, why) in [
            ("type=foo,dest=x", "type \"foo\" is not supported"),
            ("type=local", "needs dest=PATH"),
            ("type=tar", "needs dest=PATH"),
            ("type=oci", "needs dest=PATH"),
            ("-", "stdout"),
            (
                "type=local,dest=x,compression=zstd",
                "\"compression\" is not supported",
            ),
            (
                "type=local,dest=x,platform-split=false",
                "platform-split=false",
            ),
            ("type=local,dest=x,push=true", "push= applies"),
            ("type=registry,push=false", "always pushes"),
            ("type=image,dest=x", "takes no dest="),
            ("type=tar,dest=x,name=a", "name= applies"),
            ("type=image,push=maybe", "expected true or false"),
            ("type=local,dest=", "dest= is empty"),
        ] {
            let err = parse_output_spec(value).unwrap_err().to_string();
            assert!(err.contains(why), "{value}: {err}");
        }
    }
}
