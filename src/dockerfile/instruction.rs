//! Typed instructions: what the planner reads.
//!
//! Words stay UNEXPANDED here: `$VAR`, quotes and escapes are exactly as
//! written (for ENV, LABEL and ARG the value is the raw word, quotes
//! included: `ENV A="x y"` stores `"x y"` with its quotes). The planner runs
//! [`super::expand`] on them with the ARG/ENV scope of the stage, which
//! removes quotes and resolves variables. Exec-form (JSON) arguments are
//! already decoded JSON strings and are not expanded by BuildKit either.

use std::time::Duration;

use serde::Serialize;

pub use super::node::Heredoc;
pub use super::raw::{CheckDirective, Directives, Warning};

/// Lines an item spans, 1-based and inclusive (continuations and heredoc
/// bodies included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Span {
    /// First physical line.
    pub start_line: usize,
    /// Last physical line.
    pub end_line: usize,
}

/// A value with the lines it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spanned<T> {
    /// The value.
    pub node: T,
    /// Where it is.
    pub span: Span,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// Parser directives.
    pub directives: Directives,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines), in order.
    pub meta_args: Vec<Spanned<ArgDecl>>,
    /// Stages in file order; `stages[i].index == i`.
    pub stages: Vec<Stage>,
    /// Non-fatal findings (empty continuation lines, …).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The stage with this `AS` name (case-insensitive) or this index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                name_or_index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
            })
    }
}

/// One `FROM` and the instructions up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Position among the stages, from 0.
    pub index: usize,
    /// The `AS` name, lowercased (BuildKit compares stage names lowercased).
    pub name: Option<String>,
    /// The image or stage reference, unexpanded (`golang:${GO_VERSION}`).
    pub base: String,
    /// `--platform=` value, unexpanded (`$BUILDPLATFORM`).
    pub platform: Option<String>,
    /// Lines of the whole stage, FROM line to its last instruction.
    pub span: Span,
    /// The instructions after FROM.
    pub instructions: Vec<Spanned<Instruction>>,
}

/// `name[=value]` of an ARG. `default` is the raw word (quotes kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    /// The variable name.
    pub name: String,
    /// The default value, raw and unexpanded, when `=` was given.
    pub default: Option<String>,
}

/// `key=value` of ENV or LABEL; both sides raw and unexpanded (quotes kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The key, raw (LABEL keys may be quoted: `"com.x"=1`).
    pub key: String,
    /// The value, raw.
    pub value: String,
}

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Command {
    /// `["executable", "arg"]`: run directly, no shell, no expansion.
    Exec(Vec<String>),
    /// `executable arg`: run through the stage's SHELL.
    Shell(String),
}

/// One Dockerfile instruction after FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Instruction {
    /// `RUN [--mount=...] [--network=default|none|host] [--security=sandbox|insecure] <command>`
    Run(Run),
    /// `COPY [--from=<stage|image>] [--chown=u:g] [--chmod=perms] [--link] [--parents] [--exclude=pat] <src>... <dest>`
    Copy(Copy),
    /// `ADD [--chown] [--chmod] [--link] [--exclude] [--checksum=<digest>] [--keep-git-dir] [--unpack] <src>... <dest>`
    Add(Add),
    /// `ENV <key>=<value> ...` or legacy `ENV <key> <value>`
    Env(Vec<KeyValue>),
    /// `ARG <name>[=<default>] ...`
    Arg(Vec<ArgDecl>),
    /// `LABEL <key>=<value> ...`
    Label(Vec<KeyValue>),
    /// `WORKDIR <path>`
    Workdir(String),
    /// `USER <user>[:<group>]`
    User(String),
    /// `EXPOSE <port>[/<proto>] ...`
    Expose(Vec<String>),
    /// `VOLUME ["/data"]` or `VOLUME /data /logs`
    Volume(Vec<String>),
    /// `CMD ["exe", "arg"]` or `CMD command arg`
    Cmd(Command),
    /// `ENTRYPOINT ["exe", "arg"]` or `ENTRYPOINT command arg`
    Entrypoint(Command),
    /// `SHELL ["executable", "parameters"]` (JSON form only)
    Shell(Vec<String>),
    /// `STOPSIGNAL <signal>`
    Stopsignal(String),
    /// `HEALTHCHECK [--interval=..] [--timeout=..] [--start-period=..] [--start-interval=..] [--retries=N] CMD <command>` or `HEALTHCHECK NONE`
    Healthcheck(Healthcheck),
    /// `ONBUILD <instruction>`: a trigger stored in the image, run by child builds.
    Onbuild(Onbuild),
    /// `MAINTAINER <name>` (deprecated; becomes the image author)
    Maintainer(String),
}

impl Instruction {
    /// The keyword, uppercase (`RUN`, `COPY`, …).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::Run(_) => "RUN",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Stopsignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The command. In shell form with heredocs, the first line only
    /// (e.g. `<<EOF` or `python3 <<EOF`); the bodies are in `heredocs`.
    /// BuildKit runs a lone `<<EOF` as a script (its body, through the
    /// shell, or through its `#!` line); otherwise the shell sees the
    /// heredocs as here-documents. That decision is the planner's.
    pub command: Command,
    /// Heredocs opened on the RUN line, in order.
    pub heredocs: Vec<Heredoc>,
    /// `--mount=` flags, in order.
    pub mounts: Vec<Mount>,
    /// `--network=`; `None` when not given (BuildKit default: sandboxed default network).
    pub network: Option<NetworkMode>,
    /// `--security=`; `None` when not given (sandbox).
    pub security: Option<SecurityMode>,
}

/// `RUN --network=` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NetworkMode {
    /// `default`
    Default,
    /// `none`
    None,
    /// `host` (needs the `network.host` entitlement)
    Host,
}

/// `RUN --security=` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SecurityMode {
    /// `sandbox`
    Sandbox,
    /// `insecure` (needs the `security.insecure` entitlement)
    Insecure,
}

/// `RUN --mount=type=...` kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MountType {
    /// `bind` (the default): a read-only view of the context or a stage.
    Bind,
    /// `cache`: a persistent cache directory.
    Cache,
    /// `tmpfs`: an in-memory filesystem.
    Tmpfs,
    /// `secret`: a build secret as a file (or env var).
    Secret,
    /// `ssh`: an SSH agent socket.
    Ssh,
}

/// `--mount=type=cache,sharing=` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CacheSharing {
    /// `shared` (default)
    Shared,
    /// `private`
    Private,
    /// `locked`
    Locked,
}

/// One `RUN --mount=` with its keys. String values are unexpanded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// `type=`
    pub kind: MountType,
    /// `target=` / `dst=` / `destination=`
    pub target: Option<String>,
    /// `source=` / `src=`
    pub source: Option<String>,
    /// `from=`: stage or image to mount from.
    pub from: Option<String>,
    /// `readonly`/`ro` (true) or `rw`/`readwrite` (false); `None` if not said.
    pub readonly: Option<bool>,
    /// `id=` (cache id, secret id, ssh id).
    pub id: Option<String>,
    /// `sharing=` (cache mounts).
    pub sharing: Option<CacheSharing>,
    /// `mode=`, octal file mode.
    pub mode: Option<u32>,
    /// `uid=`
    pub uid: Option<u32>,
    /// `gid=`
    pub gid: Option<u32>,
    /// `required=` (secret/ssh); bare `required` means true.
    pub required: Option<bool>,
    /// `env=` (secret exposed as an environment variable).
    pub env: Option<String>,
    /// `size=` (tmpfs), in bytes.
    pub size: Option<u64>,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Sources (raw). With heredocs, the heredoc names appear here as `<<EOF`.
    pub sources: Vec<String>,
    /// Destination (raw).
    pub dest: String,
    /// `--from=`
    pub from: Option<String>,
    /// `--chown=`
    pub chown: Option<String>,
    /// `--chmod=`
    pub chmod: Option<String>,
    /// `--link`
    pub link: bool,
    /// `--parents`
    pub parents: bool,
    /// `--exclude=` patterns.
    pub exclude: Vec<String>,
    /// Heredocs used as inline sources.
    pub heredocs: Vec<Heredoc>,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Add {
    /// Sources (raw): paths, URLs or git references.
    pub sources: Vec<String>,
    /// Destination (raw).
    pub dest: String,
    /// `--chown=`
    pub chown: Option<String>,
    /// `--chmod=`
    pub chmod: Option<String>,
    /// `--link`
    pub link: bool,
    /// `--exclude=` patterns.
    pub exclude: Vec<String>,
    /// `--checksum=` (e.g. `sha256:…`), raw.
    pub checksum: Option<String>,
    /// `--keep-git-dir`
    pub keep_git_dir: bool,
    /// `--unpack[=bool]`; `None` when not given (unpack local archives only).
    pub unpack: Option<bool>,
    /// Heredocs used as inline sources.
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [options] CMD <command>`
    Cmd {
        /// The test command.
        test: Command,
        /// `--interval=` (default 30s when `None`).
        interval: Option<Duration>,
        /// `--timeout=` (default 30s).
        timeout: Option<Duration>,
        /// `--start-period=` (default 0s).
        start_period: Option<Duration>,
        /// `--start-interval=` (default 5s).
        start_interval: Option<Duration>,
        /// `--retries=` (default 3).
        retries: Option<u32>,
    },
}

/// `ONBUILD`: the parsed trigger and its text as written (what the image
/// config stores).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger, parsed (checked now so errors show at this line).
    pub instruction: Box<Instruction>,
    /// The trigger text after `ONBUILD `, as the image config records it.
    pub original: String,
}
