//! `Engine::pull_image` against a real registry process on loopback (Debian's
//! `docker-registry`), filled with the busybox fixture by the Docker CLI. Prints
//! `SKIPPED: <why>` when the registry binary, the CLI or the engine is missing.

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xplat::engine::{DockerEngine, Engine, ImageLookup, PullProgress};
use xplat::platform::Platform;

const BUSYBOX: &str = "xplat-test/busybox:amd64";

/// A `docker-registry` on 127.0.0.1, stopped and its storage removed on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Result<Registry, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("storage");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("docker-registry: {e}"))?;
        let registry = Registry {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("docker-registry did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn docker_cli(args: &[&str]) -> Result<(), String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("docker CLI: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[tokio::test]
async fn pull_for_a_platform_reports_progress_and_lands_the_image() {
    let engine = match DockerEngine::connect_from_process_env().await {
        Ok(e) => e,
        Err(e) => return println!("SKIPPED: {e}"),
    };
    if !matches!(
        engine.inspect_image(BUSYBOX).await,
        Ok(ImageLookup::Found(_))
    ) {
        return println!("SKIPPED: fixture image {BUSYBOX} is missing; run tests/run.sh");
    }
    let registry = match Registry::start() {
        Ok(r) => r,
        Err(e) => return println!("SKIPPED: no loopback registry: {e}"),
    };
    let reference = format!(
        "127.0.0.1:{}/xplat-pull-test:{}",
        registry.port,
        std::process::id()
    );
    if let Err(e) =
        docker_cli(&["tag", BUSYBOX, &reference]).and_then(|_| docker_cli(&["push", &reference]))
    {
        let _ = docker_cli(&["rmi", &reference]);
        return println!("SKIPPED: could not fill the registry: {e}");
    }
    engine.remove_image(&reference, false).await.unwrap();
    assert_eq!(
        engine.inspect_image(&reference).await.unwrap(),
        ImageLookup::Missing
    );

    let seen: Mutex<Vec<PullProgress>> = Mutex::default();
    let sink = |p: PullProgress| seen.lock().unwrap().push(p);
    let amd64 = Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: String::new(),
        ..Default::default()
    };
    engine.pull_image(&reference, &amd64, &sink).await.unwrap();

    let info = match engine.inspect_image(&reference).await.unwrap() {
        ImageLookup::Found(i) => i,
        ImageLookup::Missing => panic!("pulled image missing"),
    };
    assert_eq!(info.platform, amd64);
    let statuses: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.status.clone())
        .collect();
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("Pull") || s.contains("Downloaded")),
        "{statuses:?}"
    );
    engine.remove_image(&reference, false).await.unwrap();

    // A tag the registry does not have: a Pull error naming reference and platform.
    let absent = format!("127.0.0.1:{}/xplat-pull-test:absent", registry.port);
    let err = engine
        .pull_image(&absent, &amd64, &|_| {})
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("pulling {absent} for linux/amd64: ")),
        "{text}"
    );
}
