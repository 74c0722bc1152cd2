//! The interpreted templates (node, python): dependencies installed for each target on the
//! build machine, the app assembled onto the target's runtime image, run in the engine for
//! linux/amd64, linux/arm64 and linux/arm/v7.

use std::path::Path;

use super::{build, engine_registry, inspect, inspect_base, missing, need, run_image};
use super::{stand_in_args, CacheVolumes, Project, PLATFORMS};
use crate::support::Fixtures;

/// The image a template's args file names for `arg` (a stand-in in the test's registry).
fn arg<'a>(args: &'a [(String, String)], arg: &str) -> &'a str {
    args.iter()
        .find(|(k, _)| k == arg)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("the args file names no {arg}"))
}

#[test]
fn node_template_installs_per_target_and_runs_on_the_node_image_for_three_platforms() {
    let reg = need!(engine_registry());
    let args = need!(stand_in_args("node", &reg));
    let _volumes = CacheVolumes::snapshot();
    let project = Project::init(
        &[
            (
                "package.json",
                "{\n  \"name\": \"hello\",\n  \"version\": \"1.0.0\",\n  \"private\": true\n}\n",
            ),
            (
                "package-lock.json",
                "{\n  \"name\": \"hello\",\n  \"version\": \"1.0.0\",\n  \"lockfileVersion\": 3,\n  \
                 \"requires\": true,\n  \"packages\": {\n    \"\": {\n      \"name\": \"hello\",\n      \
                 \"version\": \"1.0.0\"\n    }\n  }\n}\n",
            ),
            (
                "index.js",
                "const fs = require('fs');\n\
                 const has = (p) => (fs.existsSync(p) ? 'yes' : 'no');\n\
                 console.log(`hello-node ${process.platform}/${process.arch} uid=${process.getuid()} ` +\n\
                 \x20 `env=${process.env.NODE_ENV} cwd=${process.cwd()} leak=${has('node_modules/leak')} toml=${has('xplat.toml')}`);\n",
            ),
            // The build machine's node_modules: .dockerignore keeps it out of the image.
            ("node_modules/leak/index.js", "module.exports = 1;\n"),
        ],
        None,
    );
    let built = build("node", &project, &reg, &args);
    let images = inspect(&built.reference);
    let base_ref = arg(&args, "NODE_IMAGE");
    for (t, arch) in PLATFORMS.iter().zip(["x64", "arm64", "arm"]) {
        let image = &images[t.platform];
        assert_eq!(image.config["User"], "node", "{}", t.platform);
        assert_eq!(image.config["Cmd"], serde_json::json!(["node", "index.js"]));
        assert_eq!(image.config["WorkingDir"], "/app", "{}", t.platform);
        // "the node image of each target plus three layers, the /app folder (WORKDIR, as
        // BuildKit makes it), node_modules and your code".
        let added = image.added_to(&inspect_base(base_ref, t));
        assert_eq!(added.len(), 3, "{}: {added:?}", t.platform);
        assert!(
            added.iter().sum::<u64>() < 100_000,
            "{}: {added:?}",
            t.platform
        );
        let out = run_image(&built.reference, t);
        assert_eq!(
            out.trim(),
            format!("hello-node linux/{arch} uid=1000 env=production cwd=/app leak=no toml=no")
        );
    }
}

#[test]
fn python_template_takes_each_targets_binary_wheel_and_runs_on_the_python_image_for_three_platforms(
) {
    let reg = need!(engine_registry());
    let args = need!(stand_in_args("python", &reg));
    let f = Fixtures::get();
    let Some(wheels) = f.values.get("PY_WHEELS").filter(|w| Path::new(w).is_dir()) else {
        missing(&format!(
            "the orjson wheels are missing (PY_WHEELS per {}; run tests/fixtures/setup.sh)",
            f.source
        ));
        return;
    };
    let _volumes = CacheVolumes::snapshot();
    let project = Project::init(
        &[
            // --no-index: nothing comes from PyPI at build time; pip must pick the wheel of
            // each target out of ./wheels.
            ("requirements.txt", "--no-index\norjson==3.13.0\n"),
            (
                "main.py",
                "import os, platform\nimport orjson\n\n\
                 print('hello-python', platform.machine(), orjson.dumps({'uid': os.getuid()}).decode(),\n\
                 \x20     'cwd=' + os.getcwd(), 'toml=' + ('yes' if os.path.exists('xplat.toml') else 'no'))\n",
            ),
        ],
        None,
    );
    let mut copied = 0;
    for entry in walk(Path::new(wheels)) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::create_dir_all(project.dir.join("wheels")).unwrap();
        std::fs::copy(&entry, project.dir.join("wheels").join(name)).unwrap();
        copied += 1;
    }
    assert_eq!(copied, 3, "one orjson wheel per machine in {wheels}");
    let built = build("python", &project, &reg, &args);
    let images = inspect(&built.reference);
    let base_ref = arg(&args, "PYTHON_IMAGE");
    for (t, machine) in PLATFORMS.iter().zip(["x86_64", "aarch64", "armv7l"]) {
        let image = &images[t.platform];
        assert_eq!(image.config["User"], "65532:65532", "{}", t.platform);
        assert_eq!(
            image.config["Cmd"],
            serde_json::json!(["python", "main.py"])
        );
        assert_eq!(image.config["WorkingDir"], "/app", "{}", t.platform);
        // "the python image of each target plus three layers, the /app folder (WORKDIR, as
        // BuildKit makes it), the packages and your code"
        // (the code includes ./wheels: three wheels of ~130 kB).
        let added = image.added_to(&inspect_base(base_ref, t));
        assert_eq!(added.len(), 3, "{}: {added:?}", t.platform);
        assert!(
            added.iter().sum::<u64>() < 2_000_000,
            "{}: {added:?}",
            t.platform
        );
        let out = run_image(&built.reference, t);
        assert_eq!(
            out.trim(),
            format!("hello-python {machine} {{\"uid\":65532}} cwd=/app toml=no")
        );
    }
}

/// The files under `dir`, recursively, sorted.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "whl") {
            out.push(path);
        }
    }
    out.sort();
    out
}
