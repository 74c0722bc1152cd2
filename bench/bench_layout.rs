//! Benchmark helper (bench/layer_100mb.sh, bench/layer_300mb.sh): plans CONTEXT/Dockerfile for
//! PLATFORMS (comma-separated, default linux/amd64), assembles every target and writes the
//! OCI layout to DEST. The layer cache is `XPLAT_CACHE_DIR` (unset: none). Prints the
//! seconds taken and what the layer cache did.
use std::collections::BTreeMap;
use std::path::PathBuf;

use xplat::assemble::{
    cache_dir::cache_dir_from_process, images_for_targets, AssembleEnv, Bases, LayerCache,
    NoStages, RegistryBases,
};
use xplat::context::BuildContext;
use xplat::oci::{IndexFormat, LayerOptions};
use xplat::output::{deliver, OutputOptions};
use xplat::plan::{plan, PlanOptions};
use xplat::platform::{Catalog, Platform};
use xplat::registry::{ClientOptions, RegistryClient};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (ctx_dir, dest) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let targets: Vec<Platform> = args
        .get(3)
        .map_or("linux/amd64", String::as_str)
        .split(',')
        .map(|p| Platform::parse(p).unwrap())
        .collect();
    let start = std::time::Instant::now();
    let ctx = BuildContext::open(&ctx_dir, &ctx_dir.join("Dockerfile")).unwrap();
    let df = xplat::dockerfile::parse(&ctx.read_dockerfile().unwrap()).unwrap();
    let opts = PlanOptions {
        targets,
        build_platform: Platform::new("linux", "amd64", ""),
        build_args: BTreeMap::new(),
        target_stage: None,
        ..Default::default()
    };
    let p = plan(&df, &opts, &Catalog::embedded()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let client = RegistryClient::new(ClientOptions::default()).unwrap();
    let resolver = RegistryBases { client: &client };
    let bases = Bases::new(&resolver, Some(&client), None);
    let layers = LayerCache::new(
        cache_dir_from_process(),
        work.path(),
        LayerOptions {
            source_date_epoch: Some(0),
            ..LayerOptions::default()
        },
    );
    let env = AssembleEnv {
        context: Some(&ctx),
        bases: &bases,
        stage_files: &NoStages,
        created: Some(0),
        layers: &layers,
        work_dir: work.path(),
        format: IndexFormat::Oci,
        reporter: &xplat::progress::Silent,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let index = rt
        .block_on(images_for_targets(&p, &env, &BTreeMap::new()))
        .unwrap();
    let out = OutputOptions {
        oci_dest: Some(dest),
        ..OutputOptions::default()
    };
    rt.block_on(deliver(&index, &out, &client, None, work.path(), &|_| {}))
        .unwrap();
    let s = layers.stats();
    println!(
        "{:.2} (layers written {}, shared {}, reused {})",
        start.elapsed().as_secs_f64(),
        s.written,
        s.shared,
        s.reused
    );
}
