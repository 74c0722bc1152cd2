//! `ssh://` engines (issue 12: "check bollard's ssh support; say what you found"): an sshd
//! of the test's own on a loopback port, with keys made here, in front of this machine's
//! engine. bollard runs the `ssh` found on PATH with `docker system dial-stdio` on the
//! host; a port in the URL does not reach ssh as a port, so, as the README says, the host
//! gets a name in an ssh config (here through a PATH wrapper that adds `-F CONFIG`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{require, require_busybox_images, xplat, CmdOutput, TestDir};

struct Sshd {
    dir: TestDir,
    pid: Option<u32>,
}

impl Sshd {
    fn start() -> Result<Sshd, String> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() {
            return Err(
                "no /usr/sbin/sshd (openssh-server; tests/fixtures/setup.sh installs it)".into(),
            );
        }
        let dir = TestDir::new(&[]);
        let d = dir.path();
        for key in ["hostkey", "userkey"] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(d.join(key))
                .status()
                .map_err(|e| format!("ssh-keygen: {e}"))?
                .success();
            if !ok {
                return Err("ssh-keygen failed".into());
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let user = String::from_utf8_lossy(&Command::new("id").arg("-un").output().unwrap().stdout)
            .trim()
            .to_string();
        dir.write(
            "sshd_config",
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/userkey.pub\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nStrictModes no\n",
                d = d.display()
            ),
        );
        dir.write(
            "ssh_config",
            format!(
                "Host engine-over-ssh\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
                 IdentityFile {d}/userkey\n  StrictHostKeyChecking accept-new\n  \
                 UserKnownHostsFile {d}/known_hosts\n",
                d = d.display()
            ),
        );
        dir.write(
            "bin/ssh",
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {}/ssh_config \"$@\"\n",
                d.display()
            ),
        );
        set_executable(&d.join("bin/ssh"));
        std::fs::create_dir_all("/run/sshd").map_err(|e| format!("/run/sshd: {e}"))?;
        let status = Command::new(sshd)
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .status()
            .map_err(|e| format!("sshd: {e}"))?;
        assert!(status.success(), "sshd did not start");
        let mut me = Sshd { dir, pid: None };
        // sshd creates its pid file before it writes the pid: an empty read means "not yet".
        for _ in 0..100 {
            me.pid = std::fs::read_to_string(me.dir.join("sshd.pid"))
                .ok()
                .and_then(|pid| pid.trim().parse().ok());
            if me.pid.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(
            me.pid.is_some(),
            "sshd wrote no pid: {}",
            me.dir.read("sshd.log")
        );
        Ok(me)
    }

    /// `xplat ARGS` with the ssh wrapper first on PATH.
    fn xplat(&self, cwd: &Path, args: &[&str]) -> CmdOutput {
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        xplat()
            .current_dir(cwd)
            .env("PATH", path)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .output()
            .expect("run xplat")
            .into()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

fn set_executable(p: &PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn an_ssh_engine_is_listed_and_builds() {
    require_busybox_images!();
    let sshd = require!(Sshd::start());
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = TestDir::new(&[(
        "Dockerfile",
        &format!("FROM xplat-test/busybox:amd64\nRUN echo over-ssh-{nonce} > /x\n"),
    )]);
    let engine = "remote=ssh://engine-over-ssh";
    let listed = sshd.xplat(
        dir.path(),
        &[
            "engines",
            "--no-config",
            "--engine",
            engine,
            "--format",
            "json",
        ],
    );
    assert_eq!(listed.code, Some(0), "{}\n{}", listed.stdout, listed.stderr);
    let engines: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert!(
        listed.stdout.contains("ssh://engine-over-ssh"),
        "{engines:#}"
    );
    assert!(
        !listed.stdout.contains("\"reachable\":false"),
        "{engines:#}"
    );
    let out = dir.path().join("out");
    let built = sshd.xplat(
        dir.path(),
        &[
            "build",
            "--no-config",
            "--progress",
            "plain",
            "--engine",
            engine,
            "--output",
            &format!("type=local,dest={}", out.display()),
            ".",
        ],
    );
    assert_eq!(built.code, Some(0), "{}\n{}", built.stdout, built.stderr);
    assert!(built.stderr.contains("on remote"), "{}", built.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("x")).unwrap(),
        format!("over-ssh-{nonce}\n")
    );
}
