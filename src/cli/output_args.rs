//! The output flags of `xplat build` and the `xplat inspect` command: raw arguments here,
//! turned into `output::OutputOptions` by [`OutputArgs::options`], and the inspect handler.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use super::render_error::usage;
use crate::oci::IndexFormat;
use crate::output::{OutputOptions, OutputSpec};
use crate::platform::Platform;
use crate::registry::{AuthSources, ClientOptions, RegistryClient};

/// `--index-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum IndexFormatArg {
    /// OCI image index and OCI manifests.
    #[default]
    Oci,
    /// Docker manifest list v2 and Docker v2s2 manifests.
    Docker,
}

impl From<IndexFormatArg> for IndexFormat {
    fn from(f: IndexFormatArg) -> IndexFormat {
        match f {
            IndexFormatArg::Oci => IndexFormat::Oci,
            IndexFormatArg::Docker => IndexFormat::Docker,
        }
    }
}

/// Where the result goes (any combination; none writes `./xplat-out/<name>/`).
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Push every platform, then the index, to the registry of each -t tag.
    #[arg(long)]
    pub push: bool,
    /// Where the result goes, as buildx says it (repeatable): type=local,dest=DIR (or just
    /// DIR), type=tar,dest=FILE, type=oci,dest=PATH, type=docker[,dest=FILE] (= --load),
    /// type=registry (= --push), type=image[,push=true].
    #[arg(long = "output", short = 'o', value_name = "type=TYPE,dest=PATH")]
    pub output: Vec<String>,
    /// Write the index digest (the image ID of a multi-platform image) to FILE.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Load the image for the engine's platform (or --load-platform) into the engine under each -t tag.
    #[arg(long)]
    pub load: bool,
    /// The platform --load loads.
    #[arg(long, value_name = "PLATFORM", requires = "load")]
    pub load_platform: Option<String>,
    /// Write the index digest and each platform's manifest digest, size and config digest as JSON.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// The multi-platform document's family.
    #[arg(long, value_enum, default_value_t = IndexFormatArg::Oci)]
    pub index_format: IndexFormatArg,
    /// A registry (host[:port]) spoken to over plain HTTP (repeatable; localhost always is).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
}

impl OutputArgs {
    /// Validated output options; `name` names the default layout folder `./xplat-out/<name>`.
    pub fn options(&self, tags: &[String], name: &str) -> anyhow::Result<OutputOptions> {
        let load_platform = self
            .load_platform
            .as_deref()
            .map(Platform::parse)
            .transpose()
            .context("reading --load-platform")
            .map_err(usage)?;
        let mut opts = OutputOptions {
            tags: tags.to_vec(),
            push: self.push,
            load: self.load,
            load_platform,
            metadata_file: self.metadata_file.clone(),
            default_dir: Some(PathBuf::from("xplat-out").join(name)),
            iidfile: self.iidfile.clone(),
            ..OutputOptions::default()
        };
        for value in &self.output {
            let spec = crate::output::parse_output_spec(value).map_err(usage)?;
            apply_output(&mut opts, spec, value).map_err(usage)?;
        }
        crate::output::deliver::validate_tags(&opts.tags).map_err(usage)?;
        if opts.push && opts.tags.is_empty() {
            return Err(usage(crate::output::OutputError::PushWithoutTag));
        }
        Ok(opts)
    }

    /// A registry client with credentials from the Docker and containers config files.
    pub fn client(&self) -> anyhow::Result<RegistryClient> {
        client(&self.insecure_registry)
    }
}

/// The `result` progress event of a build: the index, each platform's manifest, where
/// it went.
pub fn result_event(
    index: &crate::oci::ImageIndex,
    opts: &OutputOptions,
    delivered: &crate::output::Delivered,
) -> crate::progress::Event {
    let summary = crate::output::BuildSummary::of(index, &opts.tags);
    let written = delivered
        .layouts
        .iter()
        .chain(opts.local_dest.iter())
        .chain(opts.tar_dest.iter())
        .chain(opts.docker_dest.iter())
        .map(|p| p.display().to_string())
        .collect();
    crate::progress::Event::Result {
        index_digest: summary.index_digest,
        media_type: summary.media_type,
        tags: summary.tags,
        platforms: summary
            .platforms
            .into_iter()
            .map(|p| crate::progress::ResultPlatform {
                platform: p.platform,
                digest: p.digest,
                config_digest: p.config_digest,
            })
            .collect(),
        pushed: delivered.pushed.iter().map(|(r, _)| r.clone()).collect(),
        written,
    }
}

/// Adds one `--output` to the options (two outputs of one kind are refused).
fn apply_output(
    opts: &mut OutputOptions,
    spec: OutputSpec,
    value: &str,
) -> Result<(), crate::output::OutputError> {
    let twice = || crate::output::OutputError::InvalidOutput {
        value: value.to_string(),
        reason: "a second output of this type; give each type once".into(),
    };
    let set = |slot: &mut Option<PathBuf>, dest: PathBuf| {
        if slot.is_some() {
            return Err(twice());
        }
        *slot = Some(dest);
        Ok(())
    };
    let add_names = |names: Vec<String>, tags: &mut Vec<String>| {
        for n in names {
            if !tags.contains(&n) {
                tags.push(n);
            }
        }
    };
    match spec {
        OutputSpec::Oci { dest } => set(&mut opts.oci_dest, dest)?,
        OutputSpec::Local { dest } => set(&mut opts.local_dest, dest)?,
        OutputSpec::Tar { dest } => set(&mut opts.tar_dest, dest)?,
        OutputSpec::Docker { dest, names } => {
            add_names(names, &mut opts.tags);
            match dest {
                Some(d) => set(&mut opts.docker_dest, d)?,
                None => opts.load = true,
            }
        }
        OutputSpec::Registry { names } => {
            add_names(names, &mut opts.tags);
            opts.push = true;
        }
        OutputSpec::Image { names, push } => {
            add_names(names, &mut opts.tags);
            if push {
                opts.push = true;
            } else {
                opts.load = true;
            }
        }
    }
    Ok(())
}

/// Before anything is built: every repository the `-t` tags name is reachable and takes
/// a push from us (see [`crate::registry::preflight`]).
pub async fn check_push(client: &RegistryClient, tags: &[String]) -> anyhow::Result<()> {
    let targets = crate::output::deliver::validate_tags(tags)?;
    crate::registry::check_push(
        client,
        &targets,
        &crate::registry::PreflightOptions::default(),
    )
    .await?;
    Ok(())
}

fn client(insecure: &[String]) -> anyhow::Result<RegistryClient> {
    Ok(RegistryClient::new(ClientOptions {
        insecure_registries: insecure.to_vec(),
        auth: AuthSources::from_env(|k| std::env::var(k).ok()),
        ..ClientOptions::default()
    })?)
}

/// `xplat inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// A registry reference, or an OCI layout as oci:PATH[:TAG] (or an existing path).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Print the document itself, byte for byte.
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// A registry (host[:port]) spoken to over plain HTTP (repeatable).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
}

/// Runs `xplat inspect`.
pub fn inspect_command(args: &InspectArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let client = client(&args.insecure_registry)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    // `output::inspect` names the reference in its errors; a malformed one is a usage error.
    let shown = rt
        .block_on(crate::output::inspect(&args.reference, &client))
        .map_err(|e| match &e {
            crate::output::OutputError::Registry {
                source: crate::registry::RegistryError::InvalidReference { .. },
                ..
            } => usage(e),
            _ => e.into(),
        })?;
    if args.raw {
        out.write_all(&shown.raw)?;
    } else if args.json {
        serde_json::to_writer_pretty(&mut *out, &shown)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", shown.render())?;
    }
    Ok(())
}
