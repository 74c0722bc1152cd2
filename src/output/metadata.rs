//! Metadata instructions (ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL,
//! STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER) as edits of an OCI image config, and the
//! engine's config state turned into the same form. Pure.
//!
//! The rules follow the classic builder's dispatchers (ENGINE-AND-REGISTRY.md §2.4):
//! ENTRYPOINT clears CMD unless CMD was set earlier in the same stage; a shell-form
//! command is wrapped in the current SHELL (default `/bin/sh -c`); EXPOSE without a
//! protocol means tcp; a relative WORKDIR is joined onto the previous one.

use std::collections::BTreeMap;

use crate::dockerfile::{Command, Healthcheck as HealthcheckInstr, Instruction};
use crate::oci::config::Empty;
use crate::oci::{ContainerConfig, Healthcheck, ImageConfig};

/// What an instruction did to the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// The config changed (or the instruction is config-only, like ARG): no layer.
    ConfigOnly,
    /// Not a metadata instruction (COPY, ADD, RUN): the caller handles it.
    NotMetadata,
}

/// Per-stage state the edits need besides the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageState {
    /// CMD was set by an instruction of this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

/// Applies a metadata instruction (already expanded by the planner) to `config`.
pub fn apply(config: &mut ImageConfig, state: &mut StageState, instr: &Instruction) -> Edit {
    let c = config.config.get_or_insert_with(ContainerConfig::default);
    match instr {
        Instruction::Env(pairs) => {
            let env = c.env.get_or_insert_with(Vec::new);
            for kv in pairs {
                set_env(env, &kv.key, &kv.value);
            }
        }
        Instruction::Label(pairs) => {
            let labels = c.labels.get_or_insert_with(BTreeMap::new);
            for kv in pairs {
                labels.insert(kv.key.clone(), kv.value.clone());
            }
        }
        Instruction::Workdir(dir) => {
            let base = c.working_dir.clone().unwrap_or_else(|| "/".into());
            c.working_dir = Some(join_workdir(&base, dir));
        }
        Instruction::User(u) => c.user = Some(u.clone()),
        Instruction::Expose(ports) => {
            let set = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                set.insert(port_key(p), Empty {});
            }
        }
        Instruction::Volume(vols) => {
            let set = c.volumes.get_or_insert_with(BTreeMap::new);
            for v in vols {
                set.insert(v.clone(), Empty {});
            }
        }
        Instruction::Cmd(cmd) => {
            c.cmd = Some(argv(cmd, c.shell.as_deref()));
            state.cmd_set = true;
        }
        Instruction::Entrypoint(cmd) => {
            c.entrypoint = Some(argv(cmd, c.shell.as_deref()));
            if !state.cmd_set {
                c.cmd = None;
            }
        }
        Instruction::Shell(sh) => c.shell = Some(sh.clone()),
        Instruction::Stopsignal(s) => c.stop_signal = Some(s.clone()),
        Instruction::Healthcheck(h) => c.healthcheck = Some(healthcheck(h, c.shell.as_deref())),
        Instruction::Onbuild(o) => c
            .on_build
            .get_or_insert_with(Vec::new)
            .push(o.original.clone()),
        Instruction::Maintainer(m) => config.author = Some(m.clone()),
        Instruction::Arg(_) => {}
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) => {
            return Edit::NotMetadata
        }
    }
    Edit::ConfigOnly
}

/// The history text of an instruction (`created_by`), as BuildKit writes it: the keyword
/// and its arguments.
pub fn created_by(instr: &Instruction) -> String {
    let cmd = |c: &Command| match c {
        Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
        Command::Shell(s) => s.clone(),
    };
    let kvs = |v: &[crate::dockerfile::KeyValue]| {
        v.iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let rest = match instr {
        Instruction::Env(p) | Instruction::Label(p) => kvs(p),
        Instruction::Workdir(s)
        | Instruction::User(s)
        | Instruction::Stopsignal(s)
        | Instruction::Maintainer(s) => s.clone(),
        Instruction::Expose(v) | Instruction::Volume(v) | Instruction::Shell(v) => v.join(" "),
        Instruction::Cmd(c) | Instruction::Entrypoint(c) => cmd(c),
        Instruction::Copy(c) => format!(
            "{}{} {}",
            c.from
                .as_ref()
                .map(|f| format!("--from={f} "))
                .unwrap_or_default(),
            c.sources.join(" "),
            c.dest
        ),
        Instruction::Add(a) => format!("{} {}", a.sources.join(" "), a.dest),
        Instruction::Run(r) => cmd(&r.command),
        Instruction::Onbuild(o) => o.original.clone(),
        Instruction::Healthcheck(_) | Instruction::Arg(_) => String::new(),
    };
    format!("{} {}", instr.keyword(), rest)
        .trim_end()
        .to_string()
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// `WORKDIR` resolution: absolute paths are cleaned, relative ones joined onto `base`.
pub fn join_workdir(base: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{base}/{dir}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn port_key(p: &str) -> String {
    if p.contains('/') {
        p.to_ascii_lowercase()
    } else {
        format!("{p}/tcp")
    }
}

fn argv(cmd: &Command, shell: Option<&[String]>) -> Vec<String> {
    match cmd {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = shell.map_or_else(|| vec!["/bin/sh".into(), "-c".into()], <[_]>::to_vec);
            v.push(s.clone());
            v
        }
    }
}

fn healthcheck(h: &HealthcheckInstr, shell: Option<&[String]>) -> Healthcheck {
    let ns = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as i64);
    match h {
        HealthcheckInstr::None => Healthcheck {
            test: Some(vec!["NONE".into()]),
            ..Healthcheck::default()
        },
        HealthcheckInstr::Cmd {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test = match test {
                Command::Exec(v) => std::iter::once("CMD".to_string())
                    .chain(v.iter().cloned())
                    .collect(),
                Command::Shell(s) => {
                    let _ = shell;
                    vec!["CMD-SHELL".into(), s.clone()]
                }
            };
            Healthcheck {
                test: Some(test),
                interval: ns(interval),
                timeout: ns(timeout),
                start_period: ns(start_period),
                start_interval: ns(start_interval),
                retries: retries.map(i64::from),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::KeyValue;

    fn cfg() -> (ImageConfig, StageState) {
        (ImageConfig::default(), StageState::default())
    }

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn env_replaces_in_place_and_appends_new_keys() {
        let (mut c, mut s) = cfg();
        c.config = Some(ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            ..ContainerConfig::default()
        });
        apply(
            &mut c,
            &mut s,
            &Instruction::Env(vec![kv("PATH", "/usr/bin:/bin"), kv("B", "x y")]),
        );
        assert_eq!(
            c.config.unwrap().env.unwrap(),
            vec!["PATH=/usr/bin:/bin", "A=1", "B=x y"]
        );
    }

    #[test]
    fn entrypoint_clears_an_inherited_cmd_but_not_one_set_in_the_stage() {
        let (mut c, mut s) = cfg();
        c.config = Some(ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            ..ContainerConfig::default()
        });
        apply(
            &mut c,
            &mut s,
            &Instruction::Entrypoint(Command::Exec(vec!["/app".into()])),
        );
        assert_eq!(c.config.as_ref().unwrap().cmd, None);
        apply(
            &mut c,
            &mut s,
            &Instruction::Cmd(Command::Exec(vec!["--help".into()])),
        );
        apply(
            &mut c,
            &mut s,
            &Instruction::Entrypoint(Command::Exec(vec!["/b".into()])),
        );
        let cc = c.config.unwrap();
        assert_eq!(cc.cmd, Some(vec!["--help".to_string()]));
        assert_eq!(cc.entrypoint, Some(vec!["/b".to_string()]));
    }

    #[test]
    fn shell_form_uses_the_current_shell() {
        let (mut c, mut s) = cfg();
        apply(
            &mut c,
            &mut s,
            &Instruction::Cmd(Command::Shell("echo hi".into())),
        );
        assert_eq!(
            c.config.as_ref().unwrap().cmd.as_deref().unwrap(),
            ["/bin/sh", "-c", "echo hi"]
        );
        apply(
            &mut c,
            &mut s,
            &Instruction::Shell(vec!["/bin/bash".into(), "-ec".into()]),
        );
        apply(
            &mut c,
            &mut s,
            &Instruction::Cmd(Command::Shell("x".into())),
        );
        assert_eq!(c.config.unwrap().cmd.unwrap(), ["/bin/bash", "-ec", "x"]);
    }

    #[test]
    fn expose_defaults_to_tcp_and_workdir_joins() {
        let (mut c, mut s) = cfg();
        apply(
            &mut c,
            &mut s,
            &Instruction::Expose(vec!["8080".into(), "53/UDP".into()]),
        );
        apply(&mut c, &mut s, &Instruction::Workdir("/srv".into()));
        apply(&mut c, &mut s, &Instruction::Workdir("app/../web".into()));
        let cc = c.config.unwrap();
        let ports: Vec<_> = cc.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "8080/tcp"]);
        assert_eq!(cc.working_dir.as_deref(), Some("/srv/web"));
    }

    #[test]
    fn copy_is_not_metadata_and_has_a_history_text() {
        let (mut c, mut s) = cfg();
        let copy = Instruction::Copy(crate::dockerfile::Copy {
            sources: vec!["/out/app".into()],
            dest: "/app".into(),
            from: Some("build".into()),
            chown: None,
            chmod: None,
            link: false,
            parents: false,
            exclude: vec![],
            heredocs: vec![],
        });
        assert_eq!(apply(&mut c, &mut s, &copy), Edit::NotMetadata);
        assert_eq!(created_by(&copy), "COPY --from=build /out/app /app");
        assert_eq!(
            created_by(&Instruction::Expose(vec!["80".into()])),
            "EXPOSE 80"
        );
    }
}

/// The build's `--label`/`xplat.toml` labels added to every image's config (a Dockerfile
/// LABEL of the same name is overridden, as `docker build --label` does), and its
/// annotations put on every manifest and on the index. The Docker family has no
/// annotations: there they are left out, and the caller says so.
pub fn with_labels_and_annotations(
    index: &crate::oci::ImageIndex,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> crate::oci::Result<crate::oci::ImageIndex> {
    use crate::oci::{ImageIndex, IndexFormat, OciImage};
    if labels.is_empty() && annotations.is_empty() {
        return Ok(index.clone());
    }
    let format = index.format();
    let annotations = match format {
        IndexFormat::Oci => annotations.clone(),
        IndexFormat::Docker => BTreeMap::new(),
    };
    let mut images = Vec::with_capacity(index.images().len());
    for (platform, image) in index.images() {
        let mut config = image.config().clone();
        if !labels.is_empty() {
            let container = config.config.get_or_insert_with(ContainerConfig::default);
            let merged = container.labels.get_or_insert_with(BTreeMap::new);
            merged.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let image = OciImage::with_annotations(
            config,
            image.layers().to_vec(),
            format,
            annotations.clone(),
        )?;
        images.push((platform.clone(), image));
    }
    ImageIndex::with_annotations(images, format, annotations)
}

#[cfg(test)]
mod label_tests {
    use super::*;
    use crate::oci::{ImageIndex, IndexFormat, LayerBlob, LayerEntry, LayerOptions, OciImage};
    use crate::platform::Platform;

    fn index(format: IndexFormat) -> ImageIndex {
        let p = Platform::new("linux", "amd64", "");
        let layer = LayerBlob::build(
            &[LayerEntry::file("/a", b"a".to_vec(), 0o644)],
            &LayerOptions::default(),
        )
        .unwrap();
        let mut config = ImageConfig::for_platform(&p, Some(0));
        config.config = Some(ContainerConfig {
            labels: Some(BTreeMap::from([("from".into(), "dockerfile".into())])),
            ..ContainerConfig::default()
        });
        let image = OciImage::new(config, vec![layer], format).unwrap();
        ImageIndex::new(vec![(p, image)], format).unwrap()
    }

    #[test]
    fn labels_reach_every_config_and_annotations_every_manifest_and_the_index() {
        let labels = BTreeMap::from([
            ("from".to_string(), "flag".to_string()),
            (
                "org.opencontainers.image.version".to_string(),
                "1.2.3".to_string(),
            ),
        ]);
        let annotations = BTreeMap::from([(
            "org.opencontainers.image.revision".to_string(),
            "abc".to_string(),
        )]);
        let before = index(IndexFormat::Oci);
        let after = with_labels_and_annotations(&before, &labels, &annotations).unwrap();
        let (_, image) = &after.images()[0];
        let got = image
            .config()
            .config
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(got["from"], "flag");
        assert_eq!(got["org.opencontainers.image.version"], "1.2.3");
        let manifest: serde_json::Value =
            serde_json::from_slice(image.manifest_blob().bytes()).unwrap();
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.revision"],
            "abc"
        );
        assert_eq!(
            after.document().annotations.as_ref().unwrap()["org.opencontainers.image.revision"],
            "abc"
        );
        assert_ne!(after.digest(), before.digest());
        // Nothing asked, nothing changed.
        let same =
            with_labels_and_annotations(&before, &BTreeMap::new(), &BTreeMap::new()).unwrap();
        assert_eq!(same.digest(), before.digest());
    }

    #[test]
    fn the_docker_family_gets_labels_but_no_annotations() {
        let labels = BTreeMap::from([("l".to_string(), "v".to_string())]);
        let annotations = BTreeMap::from([("a".to_string(), "b".to_string())]);
        let after = with_labels_and_annotations(&index(IndexFormat::Docker), &labels, &annotations)
            .unwrap();
        assert!(after.document().annotations.is_none());
        let (_, image) = &after.images()[0];
        assert_eq!(
            image
                .config()
                .config
                .as_ref()
                .unwrap()
                .labels
                .as_ref()
                .unwrap()["l"],
            "v"
        );
    }
}
