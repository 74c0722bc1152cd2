//! Every template plans for linux/amd64, linux/arm64 and linux/arm/v7 with
//! nothing emulated, and passes `xplat check`'s lints with no warning.

use std::collections::BTreeMap;

use xplat::dockerfile;
use xplat::init;
use xplat::plan::{self, PlanOptions};
use xplat::platform::{Catalog, Platform};

fn options() -> PlanOptions {
    PlanOptions {
        targets: vec![
            Platform::new("linux", "amd64", ""),
            Platform::new("linux", "arm64", ""),
            Platform::new("linux", "arm", "v7"),
        ],
        build_platform: Platform::new("linux", "amd64", ""),
        build_args: BTreeMap::new(),
        target_stage: None,
        ..Default::default()
    }
}

#[test]
fn every_template_plans_with_nothing_emulated_and_lints_clean() {
    let catalog = Catalog::embedded();
    for t in init::templates() {
        let files = init::render(&t, "demo");
        let text = &files[0].contents;
        let df = dockerfile::parse(text).unwrap_or_else(|e| panic!("{}: {e}", t.name));
        let built = plan::plan(&df, &options(), &catalog)
            .unwrap_or_else(|e| panic!("templates/{}/Dockerfile does not plan: {e}", t.name));
        if std::env::var_os("XPLAT_SHOW_PLANS").is_some() {
            eprintln!("{}:\n{}", t.name, plan::render_text(&built));
        }
        let (_, _, emulated) = built.mode_counts();
        assert_eq!(
            emulated,
            0,
            "templates/{}: emulated jobs\n{}",
            t.name,
            plan::render_text(&built)
        );
        assert_eq!(built.targets.len(), 3, "{}", t.name);
        let diagnostics = plan::lint(&df, &options(), &catalog);
        assert!(
            diagnostics.is_empty(),
            "templates/{}: {diagnostics:#?}",
            t.name
        );
    }
}
