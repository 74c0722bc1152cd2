//! Issue 14 through the binary: a build cache that travels. A "fresh runner" is the same
//! engine without the first build's step-cache images and with an empty local cache
//! folder; `--cache-from` must then make the rebuild run no RUN.

use std::path::Path;

use super::{events, ok, xplat_build};
use crate::support::{docker, require, require_busybox_images, tree, Fixtures, Registry, TestDir};

const SECRET: &str = "s3cr3t-value-never-cached";

fn project(nonce: u128) -> TestDir {
    TestDir::new(&[(
        "Dockerfile",
        &format!(
            "FROM xplat-test/busybox:amd64 AS build\n\
             RUN --mount=type=secret,id=tok --mount=type=cache,id=travel-{nonce},target=/cache \
             sh -c 'cat /run/secrets/tok > /dev/null && echo cachemark-{nonce} > /cache/m && echo out-{nonce} > /out.txt'\n\
             FROM scratch\nCOPY --from=build /out.txt /out.txt\n"
        ),
    )])
}

/// Removes the cache volume of `project(nonce)` when the test ends.
struct CacheVolume(String);

impl CacheVolume {
    fn of(nonce: u128) -> CacheVolume {
        CacheVolume(xplat::exec::run::cache_volume_name(
            &format!("travel-{nonce}"),
            "linux/amd64",
        ))
    }
}

impl Drop for CacheVolume {
    fn drop(&mut self) {
        let _ = docker(["volume", "rm", self.0.as_str()]).output();
    }
}

fn nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// One build of `dir`, with its own local cache folder and build id (`travel-TEST-…`),
/// SOURCE_DATE_EPOCH=0.
fn build(dir: &Path, test: &str, run: &str, extra: &[&str]) -> crate::support::CmdOutput {
    let cache = dir.join(format!("local-cache-{run}"));
    let id = format!("travel-{test}-{run}-{}", nonce());
    let out = dir.join(format!("out-{run}"));
    let mut args = vec![
        "--no-config".to_string(),
        "--build-id".into(),
        id,
        "--platform".into(),
        "linux/amd64".into(),
        "--secret".into(),
        "id=tok,env=TOK".into(),
        "--output".into(),
        format!("type=oci,dest={}", out.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(".".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cache = cache.display().to_string();
    xplat_build(
        dir,
        &args,
        &[
            ("XPLAT_CACHE_DIR", cache.as_str()),
            ("TOK", SECRET),
            ("SOURCE_DATE_EPOCH", "0"),
        ],
    )
}

/// Removes the step-cache images of every build of the test `test` (a fresh engine's view).
fn forget_engine_cache(test: &str) {
    let ids = docker(["images", "-aq", "--filter", "label=xplat.build"])
        .output()
        .unwrap();
    let labelled = String::from_utf8_lossy(&ids.stdout).into_owned();
    for id in labelled.split_whitespace() {
        let label = docker([
            "image",
            "inspect",
            "-f",
            "{{ index .Config.Labels \"xplat.build\" }}",
            id,
        ])
        .output()
        .unwrap();
        if String::from_utf8_lossy(&label.stdout).starts_with(&format!("travel-{test}-")) {
            let _ = docker(["rmi", "-f", id]).output();
        }
    }
}

fn runs(out: &crate::support::CmdOutput) -> usize {
    events(out, "step_started")
        .iter()
        .filter(|e| e["text"].as_str().unwrap_or("").starts_with("RUN "))
        .count()
}

fn notes(out: &crate::support::CmdOutput) -> String {
    events(out, "note")
        .iter()
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn index_digest(out: &crate::support::CmdOutput) -> String {
    events(out, "result")
        .first()
        .map(|e| e["index_digest"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Every file under `dir`, read whole.
fn all_bytes(dir: &Path) -> Vec<u8> {
    tree(dir)
        .into_iter()
        .filter_map(|(_, c)| c)
        .flatten()
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_local_cache_lets_a_fresh_runner_run_nothing_and_holds_no_secret_or_cache_mount() {
    require_busybox_images!();
    let n = nonce();
    let dir = project(n);
    let _volume = CacheVolume::of(n);
    let shared = dir.join("shared-cache").display().to_string();
    let cold = ok(build(
        dir.path(),
        "local",
        "cold",
        &["--cache-to", &format!("type=local,dest={shared}")],
    ));
    assert_eq!(runs(&cold), 1, "{}", cold.stderr);
    assert!(notes(&cold).contains("cache to"), "{}", notes(&cold));
    forget_engine_cache("local");
    let warm = ok(build(
        dir.path(),
        "local",
        "warm",
        &["--cache-from", &format!("type=local,src={shared}")],
    ));
    assert_eq!(runs(&warm), 0, "{}", warm.stderr);
    assert!(notes(&warm).contains("1 entries taken"), "{}", notes(&warm));
    assert_eq!(
        index_digest(&warm),
        index_digest(&cold),
        "SOURCE_DATE_EPOCH=0 both times"
    );
    // Neither the secret nor what the cache mount held is in the cache.
    let blobs = all_bytes(Path::new(&shared));
    assert!(
        contains(&blobs, &format!("out-{n}")),
        "the result is in the cache"
    );
    assert!(!contains(&blobs, SECRET));
    assert!(!contains(&blobs, &format!("cachemark-{n}")));

    // A corrupt entry is skipped with a warning, and the build runs what it must.
    for f in std::fs::read_dir(Path::new(&shared).join("blobs/sha256"))
        .unwrap()
        .flatten()
    {
        let mut b = std::fs::read(f.path()).unwrap();
        if b.len() > 2048 {
            b[1000] ^= 0x55;
            std::fs::write(f.path(), b).unwrap();
        }
    }
    forget_engine_cache("local");
    let corrupt = ok(build(
        dir.path(),
        "local",
        "corrupt",
        &["--cache-from", &format!("type=local,src={shared}")],
    ));
    assert!(
        notes(&corrupt).contains("warning: cache from"),
        "{}",
        notes(&corrupt)
    );
    assert!(
        notes(&corrupt).contains("does not match"),
        "{}",
        notes(&corrupt)
    );
    assert_eq!(runs(&corrupt), 1, "{}", corrupt.stderr);
}

#[test]
fn a_registry_cache_travels_uploads_nothing_unchanged_and_an_unreachable_one_is_a_warning() {
    require_busybox_images!();
    require!(Fixtures::get().registry_bin());
    let registry = Registry::start().expect("start the loopback registry");
    let reference = registry.reference("app/cache:main");
    let n = nonce();
    let dir = project(n);
    let _volume = CacheVolume::of(n);
    let to = format!("type=registry,ref={reference}");
    let cold = ok(build(dir.path(), "registry", "cold", &["--cache-to", &to]));
    assert_eq!(runs(&cold), 1, "{}", cold.stderr);
    // The same build exported again: every blob is already there.
    let again = ok(build(dir.path(), "registry", "cold", &["--cache-to", &to]));
    assert!(notes(&again).contains("0 bytes sent"), "{}", notes(&again));
    forget_engine_cache("registry");
    let warm = ok(build(
        dir.path(),
        "registry",
        "warm",
        &["--cache-from", &reference],
    ));
    assert_eq!(runs(&warm), 0, "{}", warm.stderr);
    assert_eq!(index_digest(&warm), index_digest(&cold));
    // `xplat inspect` reads the cache like any index.
    let inspected = crate::support::xplat()
        .args(["inspect", "--raw", &reference])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&inspected.stdout);
    assert!(
        text.contains("dev.xplat.cache.key"),
        "{text}\n{}",
        String::from_utf8_lossy(&inspected.stderr)
    );

    // A source nobody answers at is a warning; the build runs.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    forget_engine_cache("registry");
    let dead = ok(build(
        dir.path(),
        "registry",
        "dead",
        &[
            "--cache-from",
            &format!("type=registry,ref=127.0.0.1:{port}/c:1"),
        ],
    ));
    assert!(
        notes(&dead).contains("could not be read"),
        "{}",
        notes(&dead)
    );
    assert_eq!(runs(&dead), 1, "{}", dead.stderr);
    // ignore-error=false: a failed export fails the build.
    let failed = build(
        dir.path(),
        "registry",
        "dead",
        &[
            "--cache-to",
            &format!("type=registry,ref=127.0.0.1:{port}/c:1,ignore-error=false"),
        ],
    );
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    assert!(
        failed.stderr.contains("exporting the cache"),
        "{}",
        failed.stderr
    );
}

/// A build whose first RUN (with a secret and a cache mount) comes before the COPY of a
/// context file, and whose second RUN reads both: `mode=max` must let a fresh runner
/// start at the checkpoint before the COPY.
fn max_project(nonce: u128) -> TestDir {
    TestDir::new(&[
        (
            "Dockerfile",
            &format!(
                "FROM xplat-test/busybox:amd64 AS build\n\
                 RUN --mount=type=secret,id=tok --mount=type=cache,id=travel-{nonce},target=/cache \
                 sh -c 'cat /run/secrets/tok > /dev/null && echo cachemark-{nonce} > /cache/m && \
                 echo prep-{nonce}-$(cat /proc/sys/kernel/random/uuid) > /prep.txt'\n\
                 COPY src.txt /src.txt\n\
                 RUN cat /prep.txt /src.txt > /out.txt\n\
                 FROM scratch\nCOPY --from=build /out.txt /out.txt\n"
            ),
        ),
        ("src.txt", "one\n"),
    ])
}

/// `bytes` decompressed, when they are gzip.
fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut plain = Vec::new();
    (bytes.starts_with(&[0x1f, 0x8b])
        && std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut plain).is_ok())
    .then_some(plain)
}

/// The `/out.txt` a build of `max_project` wrote into its OCI layout `out-RUN`.
fn out_txt(dir: &Path, run: &str) -> String {
    let layout = dir.join(format!("out-{run}"));
    for (_, content) in tree(&layout.join("blobs")) {
        let Some(plain) = content.as_deref().and_then(gunzip) else {
            continue;
        };
        for e in tar::Archive::new(&plain[..]).entries().unwrap().flatten() {
            let mut e = e;
            if e.path().unwrap().to_string_lossy().trim_start_matches('/') == "out.txt" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut e, &mut s).unwrap();
                return s;
            }
        }
    }
    panic!("no /out.txt in {}", layout.display())
}

/// A build of `max_project` on a fresh runner (test `test`'s step-cache images gone), after
/// `src.txt` became `text`, with `--cache-from FROM`.
fn fresh_after_change(
    dir: &TestDir,
    test: &str,
    run: &str,
    text: &str,
    from: &str,
) -> crate::support::CmdOutput {
    forget_engine_cache(test);
    dir.write("src.txt", format!("{text}\n"));
    ok(build(dir.path(), test, run, &["--cache-from", from]))
}

/// `(N checkpoints, M of them already there)` of a `mode=max` export's note.
fn checkpoint_counts(out: &crate::support::CmdOutput) -> (usize, usize) {
    let notes = notes(out);
    let at = notes
        .find(" checkpoints, ")
        .expect("a mode=max export note");
    let made = notes[..at].rsplit('(').next().unwrap().parse().unwrap();
    let rest = &notes[at + " checkpoints, ".len()..];
    let held = rest.split(' ').next().unwrap().parse().unwrap();
    (made, held)
}

/// Every blob under `dir`, and gzip ones decompressed too.
fn all_plain_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for (_, content) in tree(dir) {
        let Some(bytes) = content else { continue };
        all.extend(gunzip(&bytes).unwrap_or_default());
        all.extend(bytes);
    }
    all
}

#[test]
fn mode_max_lets_a_fresh_runner_start_a_changed_job_at_its_checkpoint() {
    require_busybox_images!();
    let n = nonce();
    let dir = max_project(n);
    let _volume = CacheVolume::of(n);
    let shared = dir.join("shared-cache").display().to_string();
    let to = format!("type=local,dest={shared},mode=max");
    let cold = ok(build(dir.path(), "max", "cold", &["--cache-to", &to]));
    assert_eq!(runs(&cold), 2, "{}", cold.stderr);
    let (made, held) = checkpoint_counts(&cold);
    assert!(made >= 1 && held == 0, "{}", notes(&cold));
    let prep = out_txt(dir.path(), "cold");
    assert!(prep.starts_with(&format!("prep-{n}-")), "{prep}");
    // Exported again unchanged: the checkpoint is kept, not read from the engine again.
    let again = ok(build(dir.path(), "max", "cold", &["--cache-to", &to]));
    assert_eq!(checkpoint_counts(&again), (made, made), "{}", notes(&again));
    assert!(
        notes(&again).contains(", 0 bytes sent"),
        "{}",
        notes(&again)
    );
    // Neither the secret nor what the cache mount held is in the checkpoint's layer.
    let blobs = all_plain_bytes(Path::new(&shared));
    assert!(
        contains(&blobs, &format!("prep-{n}-")),
        "the checkpoint is in the cache"
    );
    assert!(!contains(&blobs, SECRET));
    assert!(!contains(&blobs, &format!("cachemark-{n}")));

    // A fresh runner after a change: the first RUN does not run, its result is the cold one.
    let from = format!("type=local,src={shared}");
    let changed = fresh_after_change(&dir, "max", "changed", "two", &from);
    assert!(
        notes(&changed).contains("loaded the checkpoint of step 1"),
        "{}",
        notes(&changed)
    );
    assert_eq!(runs(&changed), 1, "{}", changed.stderr);
    let first_line = prep.lines().next().unwrap();
    assert_eq!(
        out_txt(dir.path(), "changed"),
        format!("{first_line}\ntwo\n")
    );

    // A corrupt checkpoint layer is a warning: the job runs from its first step.
    let manifest = std::fs::read_to_string(Path::new(&shared).join("index.json")).unwrap();
    let index: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let blob = |d: &str| {
        Path::new(&shared)
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let mut corrupted = 0;
    for entry in index["manifests"].as_array().unwrap() {
        if entry["annotations"]["dev.xplat.cache.kind"] != "checkpoint" {
            continue;
        }
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(blob(entry["digest"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        let layer = blob(m["layers"][0]["digest"].as_str().unwrap());
        let mut bytes = std::fs::read(&layer).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x55;
        std::fs::write(&layer, bytes).unwrap();
        corrupted += 1;
    }
    assert_eq!(corrupted, made);
    let corrupt = fresh_after_change(&dir, "max", "corrupt", "three", &from);
    assert!(
        notes(&corrupt).contains("could not be loaded"),
        "{}",
        notes(&corrupt)
    );
    assert_eq!(runs(&corrupt), 2, "{}", corrupt.stderr);
    assert_ne!(
        out_txt(dir.path(), "corrupt").lines().next(),
        prep.lines().next()
    );
}

#[test]
fn a_mode_max_registry_cache_loads_checkpoints_and_uploads_nothing_unchanged() {
    require_busybox_images!();
    require!(Fixtures::get().registry_bin());
    let registry = Registry::start().expect("start the loopback registry");
    let reference = registry.reference("app/cache:max");
    let n = nonce();
    let dir = max_project(n);
    let _volume = CacheVolume::of(n);
    let to = format!("type=registry,ref={reference},mode=max");
    let cold = ok(build(dir.path(), "maxreg", "cold", &["--cache-to", &to]));
    assert_eq!(runs(&cold), 2, "{}", cold.stderr);
    let (made, _) = checkpoint_counts(&cold);
    let again = ok(build(dir.path(), "maxreg", "cold", &["--cache-to", &to]));
    assert_eq!(checkpoint_counts(&again), (made, made), "{}", notes(&again));
    assert!(
        notes(&again).contains(", 0 bytes sent"),
        "{}",
        notes(&again)
    );
    let changed = fresh_after_change(&dir, "maxreg", "changed", "two", &reference);
    assert!(
        notes(&changed).contains("loaded the checkpoint of step 1"),
        "{}",
        notes(&changed)
    );
    assert_eq!(runs(&changed), 1, "{}", changed.stderr);
    assert_eq!(
        out_txt(dir.path(), "changed").lines().next(),
        out_txt(dir.path(), "cold").lines().next()
    );
}
