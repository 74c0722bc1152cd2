//! Benchmark helper (bench/layer_100mb.sh): plans CONTEXT/Dockerfile for the host platform,
//! assembles the final stage and writes its OCI layout to DEST. Prints the seconds taken.
use std::collections::BTreeMap;
use std::path::PathBuf;

use xplat::context::BuildContext;
use xplat::oci::{IndexFormat, LayerOptions};
use xplat::output::{deliver, images_for_targets, AssembleEnv, NoStages, OutputOptions};
use xplat::plan::{plan, PlanOptions};
use xplat::platform::{Catalog, Platform};
use xplat::registry::{ClientOptions, RegistryClient};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (ctx_dir, dest) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let start = std::time::Instant::now();
    let ctx = BuildContext::open(&ctx_dir, &ctx_dir.join("Dockerfile")).unwrap();
    let df = xplat::dockerfile::parse(&ctx.read_dockerfile().unwrap()).unwrap();
    let host = Platform::new("linux", "amd64", "");
    let opts = PlanOptions {
        targets: vec![host.clone()],
        build_platform: host,
        build_args: BTreeMap::new(),
        target_stage: None,
        ..Default::default()
    };
    let p = plan(&df, &opts, &Catalog::embedded()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let client = RegistryClient::new(ClientOptions::default()).unwrap();
    let env = AssembleEnv {
        context: Some(&ctx),
        stage_files: &NoStages,
        created: Some(0),
        layer_options: LayerOptions {
            source_date_epoch: Some(0),
            ..LayerOptions::default()
        },
        work_dir: work.path(),
        format: IndexFormat::Oci,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let index = rt
        .block_on(images_for_targets(&p, &client, &env, &BTreeMap::new()))
        .unwrap();
    let out = OutputOptions {
        oci_dest: Some(dest),
        ..OutputOptions::default()
    };
    rt.block_on(deliver(&index, &out, &client, None, work.path(), &|_| {}))
        .unwrap();
    println!("{:.2}", start.elapsed().as_secs_f64());
}
