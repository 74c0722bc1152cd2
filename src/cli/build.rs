//! `xplat build` (`xplat prune` is in `prune.rs`): flags + `xplat.toml` + `XPLAT_*` → [`BuildOptions`],
//! a tokio runtime, SIGINT/SIGTERM → the cancellation token (the library removes the
//! build's containers, the command exits 130), progress on stderr, and one summary line
//! per target on stdout.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::args::{BuildArgs, ProgressMode};
use super::options::Config;
use super::{project, Exit};
use crate::engine::Engine;
use crate::ops::{self, BuildOptions};
use crate::output::{deliver, BuildSummary, LoadTarget};
use crate::platform::Catalog;
use crate::progress::{JsonReporter, PlainReporter, Reporter, Silent, TtyReporter};
use crate::registry::PushEvent;

/// The library's options from the merged configuration, the build-only flags and the
/// resolved `--secret`s (see [`super::buildx::Secrets`]).
pub fn build_options(
    config: &Config,
    args: &BuildArgs,
    secrets: &super::buildx::Secrets,
    session: &ops::Session,
) -> anyhow::Result<BuildOptions> {
    let add_hosts = args
        .add_hosts
        .iter()
        .map(|h| super::buildx::parse_add_host(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(super::render_error::usage)?;
    let spec_error = |e: crate::travel::SpecError| {
        super::render_error::usage(super::render_error::Advice::new(
            e.to_string(),
            "see README.md, \"A build cache that travels\"",
        ))
    };
    let cache_from = if args.cache_from.is_empty() {
        &config.cache.from
    } else {
        &args.cache_from
    };
    let cache_from = cache_from
        .iter()
        .map(|v| crate::travel::parse_from(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(spec_error)?;
    let cache_to = args
        .cache_to
        .as_ref()
        .or(config.cache.to.as_ref())
        .map(|v| crate::travel::parse_to(v))
        .transpose()
        .map_err(spec_error)?;
    Ok(BuildOptions {
        cache_from,
        cache_to,
        context_dir: config.context.clone(),
        dockerfile: Some(config.dockerfile.clone()),
        platforms: session.inputs.platforms.clone(),
        target: session.inputs.target.clone(),
        // With --target the first -t names the per-platform tags; the final image
        // tags are the outputs' business (the output stage).
        tag: config.tags.first().cloned(),
        build_args: session.inputs.build_args.clone(),
        no_cache: config.cache.disabled || args.no_cache,
        jobs: args.jobs.unwrap_or(0),
        secrets: secrets.files.clone(),
        // --build-id, else XPLAT_BUILD_ID: the `xplat.build` label of the build's
        // containers (a CI job can find what its build made, on every engine).
        build_id: args
            .build_id
            .clone()
            .or_else(|| std::env::var("XPLAT_BUILD_ID").ok())
            .filter(|v| !v.is_empty()),
        pull: args.pull,
        cache_dir: None,
        network: args.network.unwrap_or_default().into(),
        add_hosts,
        no_cache_filter: args.no_cache_filter.clone(),
        engines: super::engines::specs(&config.engines).map_err(super::render_error::usage)?,
        on_engine_loss: match args.on_engine_loss {
            super::args::EngineLoss::Rerun => crate::exec::fleet::OnLoss::Rerun,
            super::args::EngineLoss::Fail => crate::exec::fleet::OnLoss::Fail,
        },
        build_platform: session.inputs.build_platform.clone(),
        catalog: session.catalog.clone(),
        parsed: Some(session.df.clone()),
    })
}

/// `--cache-to`: exports the recordings of the build's jobs. A failure is a warning
/// unless `ignore-error=false`.
async fn export_cache(
    opts: &BuildOptions,
    built: &ops::ImageBuild,
    client: &crate::registry::RegistryClient,
    work: &std::path::Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let (Some(to), Some(outputs)) = (&opts.cache_to, &built.outputs_dir) else {
        return Ok(());
    };
    let name = crate::travel::describe(&to.at);
    let exported = crate::travel::export(
        &to.at,
        outputs,
        &built.cache_keys,
        &built.checkpoints,
        client,
        work,
    )
    .await;
    let message = match exported {
        Ok(done) => {
            for why in &done.skipped {
                reporter.report(&crate::progress::Event::Note {
                    message: format!("warning: cache to {name}: left out {why}"),
                });
            }
            let ckpts = if to.mode == crate::travel::Mode::Max {
                format!(
                    " ({} checkpoints, {} of them already there)",
                    done.checkpoints, done.kept
                )
            } else {
                String::new()
            };
            format!(
                "cache to {name}: {} entries{ckpts}, {} bytes sent",
                done.entries, done.bytes
            )
        }
        Err(e) if to.ignore_error => format!("warning: cache to {name} failed: {e}"),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("exporting the cache to {name}")))
        }
    };
    reporter.report(&crate::progress::Event::Note { message });
    Ok(())
}

/// Connects to the build's engines (`[engines]`, `--engine`, else the one `--context`,
/// `DOCKER_HOST` or the Docker config names) and checks `--build-platform` against them.
async fn connect_engines(
    opts: &BuildOptions,
    config: &Config,
    catalog: &Catalog,
    context: Option<&str>,
) -> anyhow::Result<ops::Engines> {
    let engines = ops::engines::connect(&opts.engines, catalog, context)
        .await
        .map_err(anyhow::Error::new)
        .context("connecting to the Docker engine")?;
    if let Some(bp) = &config.build_platform {
        let named = engines.named();
        let ok = engines.live.iter().any(|e| {
            if named {
                e.native.iter().any(|n| n.can_run(bp))
            } else {
                bp == e.engine.platform()
            }
        });
        if !ok {
            return Err(Exit::Usage(format!(
                "--build-platform {bp}: build stages run on the engine's platform ({}); \
                 another build platform needs an engine of that platform",
                engines.first().platform()
            ))
            .into());
        }
    }
    Ok(engines)
}

/// Which progress display: `--progress`, else (and for `auto`) tty when stderr is a terminal.
pub fn progress_mode(flag: Option<ProgressMode>, stderr_is_terminal: bool) -> ProgressMode {
    match flag {
        Some(ProgressMode::Auto) | None if stderr_is_terminal => ProgressMode::Tty,
        Some(ProgressMode::Auto) | None => ProgressMode::Plain,
        Some(mode) => mode,
    }
}

fn reporter(mode: ProgressMode, quiet: bool) -> Box<dyn Reporter> {
    if quiet || mode == ProgressMode::Quiet {
        return Box::new(Silent);
    }
    match mode {
        ProgressMode::Auto | ProgressMode::Quiet => Box::new(Silent),
        ProgressMode::Tty => Box::new(TtyReporter::default()),
        ProgressMode::Plain => Box::new(PlainReporter::new(std::io::stderr())),
        ProgressMode::Json => Box::new(JsonReporter::new(std::io::stderr())),
    }
}

/// Cancels `token` on the first SIGINT or SIGTERM.
fn cancel_on_signals(token: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        token.cancel();
    });
    Ok(())
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `xplat build`.
pub fn build_command(
    args: &BuildArgs,
    quiet: bool,
    engine_context: Option<&str>,
    catalog: &Catalog,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    args.buildx.refuse()?;
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir().context("finding the current folder")?;
    let mut config = project::load_config_for_context(args, &env, &cwd, catalog)?;
    // `-f -`: the Dockerfile comes from stdin; the folder holding it lives until the end.
    let _stdin_dockerfile = if super::buildx::is_stdin(args.source.dockerfile.as_deref()) {
        let (path, dir) = super::buildx::stdin_dockerfile(std::io::stdin().lock())?;
        config.dockerfile = path;
        Some(dir)
    } else {
        None
    };
    let secrets = super::buildx::Secrets::resolve(&args.secrets, &env, &cwd)?;
    // Dockerfile, plan and tag mistakes are reported before (and without) an engine.
    let session = super::preflight::build(&config, catalog)?;
    let opts = build_options(&config, args, &secrets, &session)?;
    let mut out_opts = args.output.options(&config.tags, &layout_name(&config))?;
    out_opts.push |= config.output.push;
    out_opts.load |= config.output.load;
    // Any --output on the command line replaces xplat.toml's layout.
    if out_opts.oci_dest.is_none() && args.output.output.is_empty() {
        out_opts.oci_dest = config.output.oci_layout.as_ref().map(PathBuf::from);
    }
    if out_opts.push && out_opts.tags.is_empty() {
        return Err(super::render_error::usage(
            crate::output::OutputError::PushWithoutTag,
        ));
    }
    let mode = progress_mode(args.progress, std::io::stderr().is_terminal());
    // `--target STAGE -t NAME` and no output asked for: the user wants the stage's results
    // in the engine to inspect (NAME-<os>-<arch>), not an OCI export of what is often a
    // whole toolchain image, which would cost minutes for nothing.
    if config.target.is_some()
        && !out_opts.tags.is_empty()
        && out_opts.wants_default_layout()
        && out_opts.metadata_file.is_none()
    {
        return stage_results_command(
            &opts,
            &config,
            catalog,
            engine_context,
            reporter(mode, quiet),
            out,
        );
    }
    let source_date_epoch = source_date_epoch(&env).map_err(super::render_error::usage)?;
    let client = args.output.client()?;
    let work = WorkDir::new()?;
    let image_opts = ops::ImageOptions {
        format: args.output.index_format.into(),
        created: source_date_epoch.unwrap_or_else(now),
        source_date_epoch,
        work_dir: work.0.clone(),
    };
    let reporter = reporter(mode, quiet);
    let rt = runtime()?;
    let result = rt.block_on(async {
        let cancel = CancellationToken::new();
        cancel_on_signals(cancel.clone())?;
        // The registry's answer to a push and the engines' come at the same time; a refused
        // push is the error to report, whatever the engines said.
        let engines = {
            let check_push = async {
                if out_opts.push {
                    super::output_args::check_push(&client, &out_opts.tags).await?;
                }
                Ok::<_, anyhow::Error>(())
            };
            let connect = connect_engines(&opts, &config, catalog, engine_context);
            tokio::pin!(check_push, connect);
            tokio::select! {
                biased;
                checked = &mut check_push => {
                    checked?;
                    connect.await?
                }
                connected = &mut connect => {
                    check_push.await?;
                    connected?
                }
            }
        };
        // The containers the build retired are removed beside its export and push, and
        // waited for here, whatever the outcome.
        let result = build_and_deliver(
            &opts,
            &config,
            &mut out_opts,
            &engines,
            &client,
            &image_opts,
            &work,
            reporter.as_ref(),
            &cancel,
        )
        .await;
        let settled = engines.settle().await;
        reporter.finish();
        match (result, settled) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => {
                Err(anyhow::Error::new(e).context("removing the build's containers"))
            }
            (Ok(done), Ok(())) => Ok(done),
        }
    });
    let (built, delivered) = result?;
    let summary = BuildSummary::of(&built.index, &out_opts.tags);
    out.write_all(summary.render().as_bytes())?;
    for t in &built.engine_tags {
        writeln!(out, "tagged {t}")?;
    }
    for (repo, _) in &delivered.pushed {
        writeln!(out, "pushed {repo}")?;
    }
    for l in &delivered.loaded {
        writeln!(out, "{l}")?;
    }
    if let Some(hint) = &delivered.hint {
        writeln!(out, "{hint}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `xplat build`'s work once the engines are connected: the images, their delivery, the
/// cache export and the result line.
#[allow(clippy::too_many_arguments)]
async fn build_and_deliver(
    opts: &BuildOptions,
    config: &Config,
    out_opts: &mut crate::output::deliver::OutputOptions,
    engines: &ops::Engines,
    client: &crate::registry::RegistryClient,
    image_opts: &ops::ImageOptions,
    work: &WorkDir,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> anyhow::Result<(ops::ImageBuild, crate::output::deliver::Delivered)> {
    let built = ops::build_images(opts, engines, client, image_opts, reporter, cancel).await;
    let mut built = match built {
        Ok(b) => b,
        Err(e) if e.is_cancelled() => return Err(Exit::Interrupted.into()),
        Err(e) => return Err(anyhow::Error::new(e).context(building(&opts.context_dir))),
    };
    // `--label`/`--annotation` and xplat.toml's (git's OCI set included) go on last,
    // onto every target's image and the index.
    built.index = crate::output::metadata::with_labels_and_annotations(
        &built.index,
        &config.labels,
        &config.annotations,
    )
    .context("adding labels and annotations")?;
    if built.index.format() == crate::oci::IndexFormat::Docker && !config.annotations.is_empty() {
        reporter.report(&crate::progress::Event::Note {
            message: "annotations are not written: Docker manifest lists have none \
                      (use --index-format oci)"
                .into(),
        });
    }
    // The metadata file records the plan the build ran.
    out_opts.plan = Some(built.plan.clone());
    let load = LoadTarget {
        engine: engines.first(),
        fallback_tag: format!("{}:latest", layout_name(config)),
    };
    let on_push = push_reporter(reporter, &out_opts.tags);
    let delivered = tokio::select! {
        d = deliver(&built.index, out_opts, client, Some(&load), &work.0, &on_push) => d,
        _ = cancel.cancelled() => return Err(Exit::Interrupted.into()),
    };
    let delivered = delivered.context("writing the build's outputs")?;
    // The cache goes last: the image and its index are already delivered.
    export_cache(opts, &built, client, &work.0, reporter).await?;
    reporter.report(&super::output_args::result_event(
        &built.index,
        out_opts,
        &delivered,
    ));
    Ok((built, delivered))
}

/// Builds up to `--target` in the engine and tags each target's result there
/// (`NAME-<os>-<arch>[-<variant>]`); nothing is exported.
fn stage_results_command(
    opts: &ops::BuildOptions,
    config: &Config,
    catalog: &Catalog,
    engine_context: Option<&str>,
    reporter: Box<dyn Reporter>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        let cancel = CancellationToken::new();
        cancel_on_signals(cancel.clone())?;
        let engines = connect_engines(opts, config, catalog, engine_context).await?;
        let outcome = ops::build_on(opts, &engines, reporter.as_ref(), &cancel).await;
        reporter.finish();
        match outcome {
            Ok(o) => Ok(o),
            Err(e) if e.is_cancelled() => Err(Exit::Interrupted.into()),
            Err(e) => Err(anyhow::Error::new(e).context(building(&opts.context_dir))),
        }
    })?;
    for t in &outcome.targets {
        if let Some(tag) = &t.tag {
            writeln!(out, "{}  tagged {tag}", t.platform)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// SOURCE_DATE_EPOCH from the environment, when set (whole seconds).
pub fn source_date_epoch(
    env: &BTreeMap<String, String>,
) -> Result<Option<i64>, super::buildx::FlagError> {
    match env.get("SOURCE_DATE_EPOCH").map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| super::buildx::FlagError::SourceDateEpoch { value: v.into() }),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The name of the default layout folder and of a `--load` without `-t`: the first tag's
/// repository's last part, else the context folder's name, lowercased to a valid name.
pub fn layout_name(config: &Config) -> String {
    let from_tag = config
        .tags
        .first()
        .and_then(|t| crate::registry::ImageRef::parse(t).ok())
        .map(|r| r.repository);
    let raw = from_tag.unwrap_or_else(|| {
        std::fs::canonicalize(&config.context)
            .unwrap_or_else(|_| config.context.clone())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let last = raw.rsplit('/').next().unwrap_or("");
    let name: String = last
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if name.is_empty() {
        "image".into()
    } else {
        name.to_string()
    }
}

/// Push events as progress events ([`crate::progress::push::event_for`]): `blob`,
/// `manifest_pushed`, `index_pushed`, a note per retry. The repository is named when
/// every tag goes to one repository.
fn push_reporter<'a>(
    reporter: &'a dyn Reporter,
    tags: &[String],
) -> impl Fn(&PushEvent) + Send + Sync + 'a {
    let repos: std::collections::BTreeSet<String> = tags
        .iter()
        .filter_map(|t| crate::registry::ImageRef::parse(t).ok())
        .map(|r| format!("{}/{}", r.registry, r.repository))
        .collect();
    let repository = if repos.len() == 1 {
        repos.into_iter().next().unwrap_or_default()
    } else {
        String::new()
    };
    move |e: &PushEvent| {
        if let Some(event) = crate::progress::push::event_for(&repository, e) {
            reporter.report(&event);
        }
    }
}

/// A work folder for exported and large layers, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> anyhow::Result<WorkDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("xplat-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the work folder {}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn building(context: &Path) -> String {
    format!("building {}", context.display())
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `1536` → `1.5 KB` (powers of 1000, as `docker system df` prints).
pub fn human_bytes(n: i64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
