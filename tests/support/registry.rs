//! A real registry on loopback: Debian's `docker-registry` (CNCF distribution
//! 2.8) on 127.0.0.1 with a free port and temporary storage, killed on drop;
//! and skopeo helpers to push the busybox fixture and read back manifests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::command::try_run;
use super::fixtures::Fixtures;

/// A running `docker-registry serve` on 127.0.0.1. Stopped (killed) on drop.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    htpasswd: Option<PathBuf>,
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// GET `path` over plain HTTP/1.0 and return the status code.
pub fn http_status(port: u16, path: &str) -> Result<u16, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

impl Registry {
    /// Starts a registry with empty storage on a free port and waits until `/v2/` answers 200.
    pub fn start() -> Result<Registry, String> {
        Registry::start_with(None)
    }

    /// Starts a registry that requires basic auth from the `htpasswd` file (bcrypt entries).
    pub fn start_with_htpasswd(htpasswd: &Path) -> Result<Registry, String> {
        Registry::start_with(Some(htpasswd.to_path_buf()))
    }

    fn start_with(htpasswd: Option<PathBuf>) -> Result<Registry, String> {
        let bin = Fixtures::get().registry_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("xplat-registry-")
            .tempdir()
            .map_err(|e| format!("temporary folder: {e}"))?;
        let mut reg = Registry {
            child: None,
            port: free_port()?,
            dir,
            bin,
            htpasswd,
        };
        reg.spawn()?;
        Ok(reg)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let storage = self.dir.path().join("storage");
        std::fs::create_dir_all(&storage).map_err(|e| e.to_string())?;
        let config = self.dir.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n",
            storage.display(),
            self.port
        );
        if let Some(h) = &self.htpasswd {
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: xplat-test\n    path: {}\n",
                h.display()
            ));
        }
        std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| e.to_string())?;
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let want = if self.htpasswd.is_some() { 401 } else { 200 };
            if http_status(self.port, "/v2/") == Ok(want) {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("registry exited with {status}: {}", self.log()));
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "registry did not answer /v2/ within 15 s: {}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The registry's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// An image reference in this registry: `127.0.0.1:PORT/<name>`.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{}", self.host(), name)
    }

    /// The folder the registry stores blobs and manifests in.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether the registry process is alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the registry (as a crash would) and waits for it; storage is kept.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the registry again on the same port with the same storage.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pushes the multi-platform busybox OCI layout (amd64, arm64, arm/v7) to
/// `registry` as `busybox:latest` with skopeo; returns the reference.
pub fn push_fixture_busybox(registry: &Registry) -> Result<String, String> {
    let f = Fixtures::get();
    let skopeo = f.skopeo()?;
    let layout = f.busybox_oci()?;
    let reference = registry.reference("busybox:latest");
    skopeo_copy(&skopeo, &layout, &reference)?;
    Ok(reference)
}

fn skopeo_copy(skopeo: &Path, layout: &Path, reference: &str) -> Result<(), String> {
    try_run(
        Command::new(skopeo)
            .args(["copy", "--all", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{reference}")),
    )
    .map(drop)
}

/// `skopeo inspect --raw docker://REFERENCE` over plain HTTP, parsed as JSON.
pub fn skopeo_inspect_raw(reference: &str) -> Result<serde_json::Value, String> {
    let skopeo = Fixtures::get().skopeo()?;
    let out = try_run(
        Command::new(skopeo)
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{reference}")),
    )?;
    serde_json::from_str(&out.stdout).map_err(|e| format!("skopeo printed no JSON: {e}"))
}
