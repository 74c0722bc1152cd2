//! A second Docker engine for the two-engine tests (issue 12).
//!
//! dockerd runs in its own network, pid and mount namespaces (`unshare -n -p -f -m
//! --mount-proc`): `--bridge none` in the host's network namespace would delete the main
//! engine's `docker0` (TESTING.md), and as the first process of its own pid namespace,
//! killing the start script takes every process of that engine with it (dockerd,
//! containerd, shims, containers): what "the engine died" means, with nothing left over.
//! It has its own data-root, exec-root and unix socket, and listens on TCP with TLS
//! (certificates made here with openssl). That TCP listener is inside its namespace; a
//! relay thread here connects from inside it (`setns`) and serves it at
//! `127.0.0.1:PORT`, so xplat speaks TLS to dockerd end to end.
//!
//! It stops when the test process ends (the start script waits for EOF on a pipe this
//! process holds) or when a test kills it. [`shared`] is the one engine all two-engine
//! tests share; a test that kills its engine starts its own ([`Engine2::start`]).
//! Fixtures come from `tests/fixtures/engines.sh` (`$XPLAT_FIXTURES/engines.env`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::command::try_run;
use super::fixtures::{fixtures_dir, parse_env};

/// The name of the builder image in both engines: amd64 in the main one, arm64 (loaded
/// from the fixture archive) in the second, as one multi-platform name resolves per node.
pub const BUILDER: &str = "xplat-test/builder:bookworm";

/// What `tests/fixtures/engines.sh` found.
fn fixture(key: &str) -> Option<String> {
    static ENV: OnceLock<std::collections::BTreeMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        std::fs::read_to_string(fixtures_dir().join("engines.env"))
            .map(|t| parse_env(&t))
            .unwrap_or_default()
    })
    .get(key)
    .filter(|v| !v.is_empty())
    .cloned()
}

/// `Ok` when a second engine can be started here, else why not.
pub fn available() -> Result<(), String> {
    super::Fixtures::get().binfmt_arm64()?;
    match fixture("ENGINE2").as_deref() {
        Some("yes") => Ok(()),
        Some(_) => Err(format!(
            "no second engine: {}",
            fixture("ENGINE2_REASON").unwrap_or_default()
        )),
        None => Err("tests/fixtures/engines.sh has not run".into()),
    }
}

/// A running second engine.
pub struct Engine2 {
    /// The `unshare` process (its child is the namespaces' first process).
    child: Child,
    /// Held open: the start script stops the engine at EOF.
    _stdin: Option<ChildStdin>,
    /// Host pid of the namespaces' first process (the start script).
    init: u32,
    /// Certificates, start script, logs, socket.
    dir: PathBuf,
    /// Data root (on disk, for overlay2).
    data: PathBuf,
    relay_port: u16,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    try_run(Command::new("openssl").current_dir(dir).args(args)).map(drop)
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`
/// (`ca.pem`, `cert.pem`, `key.pem` are the client's files, as the Docker CLI names them).
fn make_certs(dir: &Path) -> Result<(), String> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=xplat-test-ca",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
    )?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n")
        .map_err(|e| e.to_string())?;
    for (name, key, ext, cn) in [
        (
            "server-cert.pem",
            "server-key.pem",
            "server.ext",
            "127.0.0.1",
        ),
        ("cert.pem", "key.pem", "client.ext", "xplat-client"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                key,
                "-out",
                "req.csr",
            ],
        )?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "req.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                name,
            ],
        )?;
    }
    Ok(())
}

/// Removes the folders of second engines whose test process is gone.
fn remove_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The first child of `pid` (the namespaces' first process, forked by `unshare -f`).
fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Engine2 {
    /// Starts a second engine; `tag` goes into its folder names.
    pub fn start(tag: &str) -> Result<Engine2, String> {
        available()?;
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        // Unix socket paths are short: the run folder lives in /tmp; the data root on disk.
        let runs = Path::new("/tmp/xplat-e2");
        let datas = Path::new("/var/tmp/xplat-e2");
        remove_stale(runs);
        remove_stale(datas);
        let dir = runs.join(&id);
        let data = datas.join(&id);
        for d in [&dir, &data] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        make_certs(&dir)?;
        std::fs::write(dir.join("daemon.json"), "{}").map_err(|e| e.to_string())?;
        let d = dir.display();
        let script = format!(
            r#"ip link set lo up
mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
dockerd --config-file {d}/daemon.json --data-root {data} --exec-root {d}/exec \
  -H unix://{d}/docker.sock -H tcp://127.0.0.1:2376 --tlsverify --tlscacert {d}/ca.pem \
  --tlscert {d}/server-cert.pem --tlskey {d}/server-key.pem --pidfile {d}/docker.pid \
  --storage-driver overlay2 --bridge none --iptables=false --ip-masq=false \
  >{d}/dockerd.log 2>&1 &
read -r _ || true
kill -TERM $! 2>/dev/null
wait $!
rm -rf {data}
"#,
            data = data.display()
        );
        std::fs::write(dir.join("start.sh"), script).map_err(|e| e.to_string())?;
        let mut child = Command::new("unshare")
            .args(["-n", "-p", "-f", "-m", "--mount-proc", "bash"])
            .arg(dir.join("start.sh"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting unshare: {e}"))?;
        let stdin = child.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(60);
        let init = loop {
            if let Some(pid) = first_child(child.id()) {
                break pid;
            }
            if Instant::now() > deadline {
                return Err("unshare started no process".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut engine = Engine2 {
            child,
            _stdin: stdin,
            init,
            dir,
            data,
            relay_port: 0,
        };
        loop {
            let up = engine
                .docker()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if up {
                break;
            }
            if Instant::now() > deadline || !engine.alive() {
                let log =
                    std::fs::read_to_string(engine.dir.join("dockerd.log")).unwrap_or_default();
                return Err(format!("the second dockerd did not come up:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        engine.relay_port = relay(init, 2376)?;
        Ok(engine)
    }

    /// The engine's endpoint as xplat reaches it: TLS over tcp through the relay.
    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.relay_port)
    }

    /// The folder with the client's `ca.pem`, `cert.pem` and `key.pem`.
    pub fn certs(&self) -> &Path {
        &self.dir
    }

    /// `--engine NAME=HOST,platforms=…,tls=DIR` for this engine.
    pub fn engine_flag(&self, name: &str, platforms: &str) -> String {
        format!(
            "{name}={},platforms={platforms},tls={}",
            self.host(),
            self.certs().display()
        )
    }

    /// Its unix socket, for the docker CLI (visible from the host's namespaces).
    pub fn socket(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.display())
    }

    /// `docker -H <its socket>`.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(self.socket());
        c
    }

    /// Copies an image of the main engine into this one (`docker save | docker load`).
    pub fn load_from_main(&self, image: &str) -> Result<(), String> {
        let mut save = Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let out = self
            .docker()
            .arg("load")
            .stdin(save.stdout.take().expect("piped"))
            .output()
            .map_err(|e| e.to_string())?;
        let _ = save.wait();
        if !out.status.success() {
            return Err(format!(
                "loading {image}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// Loads the arm64 builder image of the fixtures as [`BUILDER`].
    pub fn load_arm64_builder(&self) -> Result<(), String> {
        let archive = fixture("BUILDER_ARM64_ARCHIVE")
            .ok_or("the arm64 builder archive is missing (run tests/fixtures/engines.sh)")?;
        let image = fixture("BUILDER_ARM64_IMAGE").unwrap_or_default();
        try_run(self.docker().args(["load", "-i", &archive]))?;
        try_run(self.docker().args(["tag", &image, BUILDER]))?;
        Ok(())
    }

    /// Whether its first process still runs.
    pub fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.init)).exists()
    }

    /// Kills the engine as a crash would: SIGKILL to its pid namespace's first process,
    /// which takes every process of the engine with it.
    pub fn kill(&mut self) {
        unsafe {
            libc::kill(self.init as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Engine2 {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Serves `127.0.0.1:port` of the network namespace of process `pid` at a free port on
/// the host's loopback; returns that port. One thread per connection pair.
fn relay(pid: u32, port: u16) -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?.port();
    let netns = format!("/proc/{pid}/ns/net");
    std::fs::File::open(&netns).map_err(|e| format!("{netns}: {e}"))?;
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let netns = netns.clone();
            std::thread::spawn(move || {
                // This thread enters the engine's namespace for good: a socket belongs
                // to the namespace it was made in, so the pumps below work from anywhere.
                let Ok(ns) = std::fs::File::open(&netns) else {
                    return;
                };
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                    return; // the engine is gone: the client sees the connection close
                };
                pump(client, server);
            });
        }
    });
    Ok(local)
}

/// Copies bytes both ways until either side closes, then closes both.
fn pump(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let one = std::thread::spawn(move || copy_then_close(a, b2));
    copy_then_close(b, a2);
    let _ = one.join();
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

/// The second engine every two-engine test shares (started once per test process, with
/// the busybox images and the arm64 builder loaded); `Err(why)` when it cannot be.
pub fn shared() -> Result<&'static Engine2, String> {
    static SHARED: OnceLock<Result<Engine2, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let e = Engine2::start("shared")?;
            super::Fixtures::get().busybox_images()?;
            let busybox = super::Fixtures::get().busybox_image("arm64");
            e.load_from_main(&busybox)?;
            e.load_arm64_builder()?;
            Ok(e)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// For `require!`-style use: `why` becomes a failure under `CI=true`, where nothing may
/// skip (tests/run.sh sets the fixtures up), else a `SKIPPED` line.
pub fn skip_or_fail(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and a two-engine test cannot run: {why}");
    }
    super::skip(why);
}
