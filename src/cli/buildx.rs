//! `docker buildx build` words that need more than a clap attribute: the buildx flags
//! xplat does not support (accepted, hidden, and refused with the reason, so clap does
//! not suggest a look-alike: `--ssh` is not `--push`), `--secret` from a file or the
//! environment, `--network`, `--add-host`, and `-f -` (the Dockerfile from stdin).
//! README.md ("From `docker buildx build` to `xplat build`") maps every buildx flag.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::render_error::{usage, Advice};
use crate::ops::NetworkMode;

/// buildx flags xplat accepts only to refuse them with the reason (hidden from `--help`).
#[derive(Debug, Clone, Default, Args)]
pub struct UnsupportedBuildxArgs {
    /// buildx's --ssh: refused (no SSH agent forwarding).
    #[arg(long, hide = true, value_name = "SPEC")]
    ssh: Vec<String>,
    /// buildx's --ulimit: refused (RUN gets the engine's limits).
    #[arg(long, hide = true, value_name = "ULIMIT")]
    ulimit: Vec<String>,
    /// buildx's --allow: refused (no entitlements).
    #[arg(long, hide = true, value_name = "ENTITLEMENT")]
    allow: Vec<String>,
    /// buildx's --attest: refused (no attestations).
    #[arg(long, hide = true, value_name = "SPEC")]
    attest: Vec<String>,
    /// buildx's --sbom: refused (no attestations).
    #[arg(long, hide = true, value_name = "SPEC", num_args = 0..=1, default_missing_value = "true")]
    sbom: Option<String>,
    /// buildx's --provenance: refused (no attestations).
    #[arg(long, hide = true, value_name = "SPEC", num_args = 0..=1, default_missing_value = "true")]
    provenance: Option<String>,
    /// buildx's --build-context: refused (one context).
    #[arg(long = "build-context", hide = true, value_name = "NAME=PATH")]
    build_context: Vec<String>,
    /// buildx's --builder: refused (use --context).
    #[arg(long, hide = true, value_name = "NAME")]
    builder: Option<String>,
    /// buildx's --cgroup-parent: refused.
    #[arg(long = "cgroup-parent", hide = true, value_name = "CGROUP")]
    cgroup_parent: Option<String>,
    /// buildx's --shm-size: refused.
    #[arg(long = "shm-size", hide = true, value_name = "BYTES")]
    shm_size: Option<String>,
    /// buildx's --call: refused (see xplat check, xplat plan).
    #[arg(long, hide = true, value_name = "METHOD")]
    call: Option<String>,
    /// buildx's --check: refused (see xplat check).
    #[arg(long, hide = true)]
    check: bool,
    /// buildx's --detach: refused.
    #[arg(long, hide = true)]
    detach: bool,
}

impl UnsupportedBuildxArgs {
    /// The first unsupported flag given, as a usage error (exit 2) with the reason.
    pub fn refuse(&self) -> anyhow::Result<()> {
        let refuse = |flag: &str, why: &str, instead: &str| -> anyhow::Result<()> {
            Err(usage(Advice::new(
                format!("{flag} is not supported: {why}"),
                instead.to_string(),
            )))
        };
        if !self.ssh.is_empty() {
            return refuse(
                "--ssh",
                "xplat does not forward an SSH agent into RUN (no RUN --mount=type=ssh)",
                "pass what the build needs with --secret id=ID,src=FILE or env=VAR",
            );
        }
        if !self.ulimit.is_empty() {
            return refuse(
                "--ulimit",
                "RUN containers get the engine's default limits",
                "set the limits in the engine's daemon.json (default-ulimits)",
            );
        }
        if !self.allow.is_empty() {
            return refuse(
                "--allow",
                "xplat grants no extra entitlements (security.insecure, device)",
                "--network host needs no --allow with xplat",
            );
        }
        if !self.attest.is_empty() || self.sbom.is_some() || self.provenance.is_some() {
            return refuse(
                "--attest/--sbom/--provenance",
                "xplat writes no attestations (SBOM, provenance) yet",
                "drop the flag; images are pushed without attestation manifests",
            );
        }
        if !self.build_context.is_empty() {
            return refuse(
                "--build-context",
                "one build context (the CONTEXT argument) per build",
                "COPY --from=IMAGE reads from an image; other folders must be inside the context",
            );
        }
        if self.builder.is_some() {
            return refuse(
                "--builder",
                "xplat has no builder instances: it drives the Docker engine itself",
                "choose the engine with --context NAME, DOCKER_CONTEXT or DOCKER_HOST",
            );
        }
        if self.cgroup_parent.is_some() || self.shm_size.is_some() {
            return refuse(
                "--cgroup-parent/--shm-size",
                "RUN containers get the engine's defaults",
                "drop the flag",
            );
        }
        if self.call.is_some() || self.check {
            return refuse(
                "--call/--check",
                "xplat build always builds",
                "`xplat check` lints the Dockerfile and `xplat plan` shows what would run",
            );
        }
        if self.detach {
            return refuse("--detach", "xplat has no build server", "drop the flag");
        }
        Ok(())
    }
}

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum NetworkArg {
    /// The engine's default network.
    #[default]
    Default,
    /// No network in RUN.
    None,
    /// The host's network in RUN.
    Host,
}

impl From<NetworkArg> for NetworkMode {
    fn from(n: NetworkArg) -> NetworkMode {
        match n {
            NetworkArg::Default => NetworkMode::Default,
            NetworkArg::None => NetworkMode::None,
            NetworkArg::Host => NetworkMode::Host,
        }
    }
}

/// A flag value (or variable) `xplat build` cannot use, said with the value given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlagError {
    /// `--add-host` without a separator.
    #[error("--add-host {value:?}: expected NAME:IP")]
    AddHostForm {
        /// The value given.
        value: String,
    },
    /// `--add-host` with an empty or blank name.
    #[error("--add-host {value:?}: {name:?} is not a host name")]
    AddHostName {
        /// The value given.
        value: String,
        /// Its name part.
        name: String,
    },
    /// `--add-host` whose address is neither an IP nor `host-gateway`.
    #[error("--add-host {value:?}: {ip:?} is not an IP address (or host-gateway)")]
    AddHostIp {
        /// The value given.
        value: String,
        /// Its address part.
        ip: String,
    },
    /// `--secret` with a field that is not `id=`, `src=`/`source=`, `env=` or `type=`.
    #[error("--secret {value:?}: expected id=ID,src=FILE or id=ID,env=VARIABLE")]
    SecretForm {
        /// The value given.
        value: String,
    },
    /// `--secret` with both `src=` and `env=`.
    #[error("--secret {value:?}: give src= or env=, not both")]
    SecretTwoSources {
        /// The value given.
        value: String,
    },
    /// `--secret` with neither a source nor an id to stand for one.
    #[error("--secret {value:?}: src=FILE or env=VARIABLE is missing")]
    SecretNoSource {
        /// The value given.
        value: String,
    },
    /// `--secret` whose id cannot be made from its source.
    #[error("--secret {value:?}: id=ID is missing")]
    SecretNoId {
        /// The value given.
        value: String,
    },
    /// `SOURCE_DATE_EPOCH` that is not whole seconds.
    #[error("SOURCE_DATE_EPOCH={value:?}: expected whole seconds since 1970")]
    SourceDateEpoch {
        /// The value given.
        value: String,
    },
}

/// `--add-host NAME:IP` (or `NAME=IP`, as newer buildx accepts); `IP` may be `host-gateway`.
pub fn parse_add_host(value: &str) -> Result<(String, String), FlagError> {
    let (name, ip) = value
        .split_once(['=', ':'])
        .ok_or_else(|| FlagError::AddHostForm {
            value: value.into(),
        })?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(FlagError::AddHostName {
            value: value.into(),
            name: name.into(),
        });
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && ip.parse::<IpAddr>().is_err() {
        return Err(FlagError::AddHostIp {
            value: value.into(),
            ip: ip.into(),
        });
    }
    Ok((name.to_string(), ip.to_string()))
}

/// Where a `--secret` comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file (made absolute against the current folder when given relative).
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "File({})", p.display()),
            SecretSource::Env(name) => write!(f, "Env({name})"),
        }
    }
}

/// `--secret id=ID,src=FILE` or `id=ID,env=VAR` (buildx's forms; `source=` for `src=`,
/// `type=file|env`; a bare `id=ID` is the file `ID`, or the variable `ID` with `type=env`).
/// A relative `src` is made absolute against `cwd` here, so the engine never sees a
/// relative path ("mount path must be absolute", issue 13).
pub fn parse_secret(value: &str, cwd: &Path) -> Result<(String, SecretSource), FlagError> {
    let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
    for field in value.split(',') {
        match field.split_once('=') {
            Some(("id", v)) => id = Some(v.to_string()),
            Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
            Some(("env", v)) => env = Some(v.to_string()),
            Some(("type", t @ ("file" | "env"))) => kind = Some(t),
            _ => {
                return Err(FlagError::SecretForm {
                    value: value.into(),
                })
            }
        }
    }
    let id = id.filter(|i| !i.is_empty());
    let source = match (src, env) {
        (Some(_), Some(_)) => {
            return Err(FlagError::SecretTwoSources {
                value: value.into(),
            })
        }
        (Some(p), None) if kind == Some("env") => {
            SecretSource::Env(p.to_string_lossy().into_owned())
        }
        (Some(p), None) => SecretSource::File(p),
        (None, Some(v)) => SecretSource::Env(v),
        (None, None) => match (&id, kind) {
            (Some(i), Some("env")) => SecretSource::Env(i.clone()),
            (Some(i), _) => SecretSource::File(PathBuf::from(i)),
            (None, _) => {
                return Err(FlagError::SecretNoSource {
                    value: value.into(),
                })
            }
        },
    };
    let id = match (id, &source) {
        (Some(id), _) => id,
        (None, SecretSource::File(p)) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| FlagError::SecretNoId {
                value: value.into(),
            })?,
        (None, SecretSource::Env(v)) => v.clone(),
    };
    let source = match source {
        SecretSource::File(p) if p.is_relative() => SecretSource::File(cwd.join(p)),
        other => other,
    };
    Ok((id, source))
}

/// A private folder (mode 0700) removed with its content when dropped: for the secrets
/// taken from the environment and the Dockerfile read from stdin.
#[derive(Debug)]
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    /// Makes one under the temporary folder.
    pub fn new(what: &str) -> std::io::Result<PrivateDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("xplat-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(PrivateDir(dir))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` (mode 0600) with `bytes`.
    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        use std::io::Write as _;
        let path = self.0.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(bytes)?;
        Ok(path)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The secrets of a build as the executor takes them (id → file), and the private folder
/// holding those that came from the environment (keep it until the build ends).
#[derive(Debug, Default)]
pub struct Secrets {
    /// id → file bind-mounted for `RUN --mount=type=secret,id=ID`.
    pub files: BTreeMap<String, PathBuf>,
    /// Holds the files written for `env=` secrets.
    pub dir: Option<PrivateDir>,
}

impl Secrets {
    /// Resolves every `--secret` value: files made absolute, variables read from `env`
    /// (an unset variable is an error, as in buildx) and written to a private file.
    pub fn resolve(
        values: &[String],
        env: &BTreeMap<String, String>,
        cwd: &Path,
    ) -> anyhow::Result<Secrets> {
        let mut out = Secrets::default();
        for value in values {
            let (id, source) = parse_secret(value, cwd).map_err(|e| {
                usage(Advice::new(
                    e.to_string(),
                    "e.g. --secret id=npmrc,src=$HOME/.npmrc or --secret id=token,env=GITHUB_TOKEN",
                ))
            })?;
            let path = match source {
                SecretSource::File(p) => p,
                SecretSource::Env(var) => {
                    let Some(v) = env.get(&var) else {
                        return Err(usage(Advice::new(
                            format!("--secret {id}: the environment variable {var} is not set"),
                            format!(
                                "export {var} before the build, or give the secret as src=FILE"
                            ),
                        )));
                    };
                    if out.dir.is_none() {
                        out.dir = Some(PrivateDir::new("secrets")?);
                    }
                    let dir = out.dir.as_ref().expect("made above");
                    // The id may hold any character: the file is named by position.
                    dir.write(&format!("{}", out.files.len()), v.as_bytes())?
                }
            };
            out.files.insert(id, path);
        }
        Ok(out)
    }
}

/// `-f -`: the Dockerfile is read from `input` into a private folder; returns its path
/// (`<dir>/Dockerfile`) and the folder, to keep until the command ends.
pub fn stdin_dockerfile(mut input: impl Read) -> anyhow::Result<(PathBuf, PrivateDir)> {
    let mut text = Vec::new();
    input.read_to_end(&mut text)?;
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(usage(Advice::new(
            "-f -: the Dockerfile read from stdin is empty",
            "pipe the Dockerfile in: xplat build -f - . < Dockerfile",
        )));
    }
    let dir = PrivateDir::new("stdin")?;
    let path = dir.write("Dockerfile", &text)?;
    Ok((path, dir))
}

/// Whether a `-f` value means stdin.
pub fn is_stdin(path: Option<&Path>) -> bool {
    path.is_some_and(|p| p == Path::new("-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command};
    use clap::Parser;

    fn refused(argv: &[&str]) -> String {
        let mut full = vec!["xplat", "build"];
        full.extend_from_slice(argv);
        let cli = Cli::try_parse_from(full).expect("clap accepts the flag");
        let Command::Build(b) = cli.command else {
            panic!("build")
        };
        let err = b.buildx.refuse().unwrap_err();
        assert_eq!(super::super::render_error::exit_code(&err), 2);
        super::super::render_error::render(&err, Default::default())
    }

    #[test]
    fn unsupported_buildx_flags_say_why_instead_of_suggesting_a_look_alike() {
        for (argv, flag) in [
            (&["--ssh", "default"][..], "--ssh is not supported"),
            (
                &["--ulimit", "nofile=1024:1024"],
                "--ulimit is not supported",
            ),
            (&["--sbom"], "attestations"),
            (&["--provenance=false"], "attestations"),
            (&["--builder", "b"], "--builder"),
            (&["--check"], "--call/--check"),
        ] {
            let text = refused(argv);
            assert!(text.contains(flag), "{argv:?}: {text}");
            assert!(text.contains("hint: "), "{argv:?}: {text}");
            assert!(
                !text.contains("--push") && !text.contains("--quiet"),
                "{text}"
            );
        }
    }

    #[test]
    fn secrets_from_files_and_the_environment() {
        let cwd = Path::new("/work/app");
        assert_eq!(
            parse_secret("id=tok,src=/run/t", cwd).unwrap(),
            ("tok".into(), SecretSource::File("/run/t".into()))
        );
        assert_eq!(
            parse_secret("id=npmrc,src=.npmrc", cwd).unwrap(),
            (
                "npmrc".into(),
                SecretSource::File("/work/app/.npmrc".into())
            ),
            "relative src is made absolute"
        );
        assert_eq!(
            parse_secret("src=keys/key.pem", cwd).unwrap(),
            (
                "key.pem".into(),
                SecretSource::File("/work/app/keys/key.pem".into())
            )
        );
        assert_eq!(
            parse_secret("id=gh,env=GITHUB_TOKEN", cwd).unwrap(),
            ("gh".into(), SecretSource::Env("GITHUB_TOKEN".into()))
        );
        assert_eq!(
            parse_secret("type=env,id=TOKEN", cwd).unwrap(),
            ("TOKEN".into(), SecretSource::Env("TOKEN".into()))
        );
        assert_eq!(
            parse_secret("env=TOKEN", cwd).unwrap(),
            ("TOKEN".into(), SecretSource::Env("TOKEN".into()))
        );
        for bad in ["id=x,src=/a,env=B", "id=x,bogus=1", "type=file"] {
            assert!(parse_secret(bad, cwd).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_secrets_are_written_privately_and_removed() {
        let env = BTreeMap::from([("TOKEN".to_string(), "s3cret".to_string())]);
        let s = Secrets::resolve(
            &["id=tok,env=TOKEN".into(), "id=f,src=rel/file".into()],
            &env,
            Path::new("/cwd"),
        )
        .unwrap();
        let file = s.files["tok"].clone();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "s3cret");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(s.files["f"], PathBuf::from("/cwd/rel/file"));
        assert!(!format!("{s:?}").contains("s3cret"));
        drop(s);
        assert!(!file.exists(), "removed with the build");
        let err = Secrets::resolve(&["id=x,env=NOPE".into()], &env, Path::new("/")).unwrap_err();
        assert!(format!("{err:#}").contains("NOPE is not set"), "{err:#}");
    }

    #[test]
    fn add_host_values() {
        assert_eq!(
            parse_add_host("db:10.0.0.5").unwrap(),
            ("db".into(), "10.0.0.5".into())
        );
        assert_eq!(
            parse_add_host("gw=host-gateway").unwrap(),
            ("gw".into(), "host-gateway".into())
        );
        assert_eq!(
            parse_add_host("v6:::1").unwrap(),
            ("v6".into(), "::1".into())
        );
        for bad in ["db", "db:notanip", ":1.2.3.4"] {
            assert!(parse_add_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_dockerfile_from_stdin_is_kept_until_dropped() {
        let (path, dir) = stdin_dockerfile(&b"FROM scratch\n"[..]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "FROM scratch\n");
        assert!(path.starts_with(dir.path()));
        drop(dir);
        assert!(!path.exists());
        assert!(stdin_dockerfile(&b"  \n"[..]).is_err());
        assert!(is_stdin(Some(Path::new("-"))));
        assert!(!is_stdin(Some(Path::new("./-x"))));
    }
}
