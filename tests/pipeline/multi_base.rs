//! Issue 9's race: with a multi-platform base image in a registry, `FROM reg/busybox:multi`
//! then `RUN uname -m > /arch` for amd64+arm64 with `--push` once published an arm64 image
//! whose base layer was x86-64 busybox (the two platforms' pulls of one tag raced in the
//! engine's image store), exit 0. Repeated cold, ten times: every pushed image has the
//! right architecture in its config and ran the right busybox.

use crate::e2e::{extract_from_registry, ok, platforms, skopeo, skopeo_config, xplat_build};
use crate::support::{
    docker, push_fixture_busybox, require, require_binfmt_arm64, require_engine, require_registry,
    require_skopeo, skopeo_inspect_raw, TestDir,
};

const RUNS: usize = 10;

/// Removes every engine image of `repository` (tags and digests), so the next build pulls
/// its base afresh.
fn forget_images(repository: &str) {
    let ids = docker(["images", "--no-trunc", "--quiet", repository])
        .output()
        .expect("docker images");
    for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
        let _ = docker(["rmi", "--force", id]).output();
    }
}

#[test]
fn a_multi_platform_base_gives_each_platform_its_own_architecture_ten_times_cold() {
    require_engine!();
    require_skopeo!();
    require_binfmt_arm64!();
    let reg = require_registry!();
    let latest = require!(push_fixture_busybox(&reg));
    // The tag both platforms share, as in the issue.
    let base = reg.reference("busybox:multi");
    skopeo(&[
        "copy",
        "--all",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{latest}"),
        &format!("docker://{base}"),
    ]);
    let repository = base.rsplit_once(':').unwrap().0.to_string();
    let dir = TestDir::new(&[(
        "Dockerfile",
        &format!("FROM {base}\nRUN uname -m > /arch\n"),
    )]);
    let work = tempfile::tempdir().unwrap();
    for run in 1..=RUNS {
        forget_images(&repository);
        let tag = reg.reference(&format!("arch:{run}"));
        let cache = work.path().join(format!("cache-{run}"));
        let cache = cache.display().to_string();
        ok(xplat_build(
            work.path(),
            &[
                "--platform",
                "linux/amd64,linux/arm64",
                "--no-cache",
                "-t",
                &tag,
                "--push",
                &dir.path().display().to_string(),
            ],
            &[("XPLAT_CACHE_DIR", &cache)],
        ));
        let raw = skopeo_inspect_raw(&tag).unwrap();
        assert_eq!(platforms(&raw), ["linux/amd64", "linux/arm64"], "run {run}");
        for (arch, uname) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
            assert_eq!(
                skopeo_config(&tag, arch)["architecture"],
                arch,
                "run {run}: the {arch} image's config"
            );
            let dest = work.path().join(format!("run-{run}"));
            std::fs::create_dir_all(&dest).unwrap();
            let file = extract_from_registry(&tag, arch, "/arch", &dest);
            let said = std::fs::read_to_string(file).unwrap();
            assert_eq!(
                said.trim(),
                uname,
                "run {run}: the {arch} image ran another platform's busybox"
            );
        }
    }
    forget_images(&repository);
}
