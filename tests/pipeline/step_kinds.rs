//! Issue 9: every step kind walked through the planner and the assembler, through the
//! binary. A job `xplat plan` marks `assembled` must build: nothing the planner hands the
//! assembler is refused. Each case is a final stage on arm64 (a foreign platform: a job the
//! assembler cannot do would need emulation, so the planner must not be optimistic).

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::Value;

use crate::e2e::xplat_build;
use crate::support::{
    push_fixture_busybox, require, require_engine, require_registry, require_skopeo, run_ok, xplat,
    TestDir,
};

/// Serves `body` over HTTP on loopback to every request, for as long as the test runs.
fn serve(body: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    format!("http://127.0.0.1:{port}/file.txt")
}

/// A gzipped tar with one file, for `ADD` to unpack.
fn tar_gz() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, "inner/x", &b"x\n"[..]).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

/// The mode `xplat plan` gives the target's final job.
fn final_mode(dir: &TestDir) -> (String, Value) {
    let out = run_ok(xplat().current_dir(dir.path()).args([
        "plan",
        "--format",
        "json",
        "--platform",
        "linux/arm64",
        ".",
    ]));
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    let last = plan["targets"][0]["final_job"].as_u64().unwrap() as usize;
    let job = plan["jobs"][last].clone();
    (job["mode"].as_str().unwrap().to_string(), job)
}

#[test]
fn every_step_kind_the_planner_marks_assembled_is_assembled() {
    require_engine!();
    require_skopeo!();
    let reg = require_registry!();
    let busybox = require!(push_fixture_busybox(&reg));
    let url = serve(b"downloaded\n");
    let src = "FROM scratch AS src\nCOPY dir/ /out/\nCOPY etc/ /etc/\n";
    // (name, the final stage; `true` when it must be assembled)
    let cases: Vec<(&str, String, bool)> = vec![
        ("env", "FROM scratch\nENV A=1 B=\"x y\"".into(), true),
        ("label", "FROM scratch\nLABEL a=b".into(), true),
        ("workdir", "FROM scratch\nWORKDIR /w/x".into(), true),
        ("user", "FROM scratch\nUSER 1:2".into(), true),
        ("expose", "FROM scratch\nEXPOSE 80 53/udp".into(), true),
        ("volume", "FROM scratch\nVOLUME /data".into(), true),
        ("cmd", "FROM scratch\nCMD [\"/a\"]".into(), true),
        ("entrypoint", "FROM scratch\nENTRYPOINT /a".into(), true),
        (
            "shell",
            "FROM scratch\nSHELL [\"/bin/ash\", \"-c\"]".into(),
            true,
        ),
        ("stopsignal", "FROM scratch\nSTOPSIGNAL SIGINT".into(), true),
        (
            "healthcheck",
            "FROM scratch\nHEALTHCHECK --interval=5s --start-interval=1s CMD true".into(),
            true,
        ),
        (
            "healthcheck none",
            "FROM scratch\nHEALTHCHECK NONE".into(),
            true,
        ),
        ("onbuild", "FROM scratch\nONBUILD RUN make".into(), true),
        ("maintainer", "FROM scratch\nMAINTAINER me".into(), true),
        ("arg", "FROM scratch\nARG X=1\nENV X=$X".into(), true),
        ("copy", "FROM scratch\nCOPY a /a".into(), true),
        ("copy dir", "FROM scratch\nCOPY dir /d/".into(), true),
        (
            "copy chown numeric chmod",
            "FROM scratch\nCOPY --chown=5:6 --chmod=600 a /a".into(),
            true,
        ),
        (
            "copy chown by name",
            "FROM scratch\nCOPY etc/ /etc/\nCOPY --chown=app:app a /a".into(),
            true,
        ),
        (
            "copy chown by name from a stage base",
            "FROM src\nCOPY --chown=app a /a".into(),
            true,
        ),
        (
            "copy wildcard",
            "FROM scratch\nCOPY dir/*.txt /t/".into(),
            true,
        ),
        (
            "copy parents",
            "FROM scratch\nCOPY --parents dir/./b.txt /p/".into(),
            true,
        ),
        (
            "copy exclude",
            "FROM scratch\nCOPY --exclude=*.txt dir /e/".into(),
            true,
        ),
        ("copy link", "FROM scratch\nCOPY --link a /l".into(), true),
        (
            "copy --from stage",
            "FROM scratch\nCOPY --from=src /out/b.txt /b".into(),
            true,
        ),
        (
            "copy --from stage wildcard",
            "FROM scratch\nCOPY --from=src /out/*.txt /w/".into(),
            true,
        ),
        (
            "copy --from image",
            format!("FROM scratch\nCOPY --from={busybox} /bin/busybox /bb"),
            true,
        ),
        (
            "copy heredoc",
            "FROM scratch\nCOPY <<EOF /h\nhello\nEOF".into(),
            true,
        ),
        ("add local", "FROM scratch\nADD a /a".into(), true),
        (
            "add archive",
            "FROM scratch\nADD arch.tar.gz /x/".into(),
            true,
        ),
        (
            "add chmod",
            "FROM scratch\nADD --chmod=755 a /x".into(),
            true,
        ),
        ("add link", "FROM scratch\nADD --link a /x".into(), true),
        ("add url", format!("FROM scratch\nADD {url} /u/"), true),
        (
            "on a registry base",
            format!("FROM {busybox}\nCOPY a /a\nENV PATH=/bin"),
            true,
        ),
        ("run", "FROM scratch\nRUN true".into(), false),
    ];
    let archive = tar_gz();
    let work = tempfile::tempdir().unwrap();
    let mut assembled = 0;
    for (name, last, must) in &cases {
        let dir = TestDir::new(&[
            ("Dockerfile", &format!("{src}{last}\n")),
            ("a", "a\n"),
            ("dir/b.txt", "b\n"),
            ("dir/c.bin", "c\n"),
            ("etc/passwd", "app:x:7:8::/:/bin/sh\n"),
            ("etc/group", "app:x:8:\n"),
        ]);
        dir.write("arch.tar.gz", &archive);
        let (mode, job) = final_mode(&dir);
        if *must {
            assert_eq!(mode, "assembled", "{name}: {job}");
        }
        if mode != "assembled" {
            continue;
        }
        assembled += 1;
        let layout = work.path().join(name.replace(' ', "-"));
        let out = format!("type=oci,dest={}", layout.display());
        let ctx = dir.path().display().to_string();
        let built = xplat_build(
            work.path(),
            &["--platform", "linux/arm64", "--output", &out, &ctx],
            &[],
        );
        assert_eq!(
            built.code,
            Some(0),
            "{name}: planned as assembled, but the build failed:\n{}",
            built.stderr
        );
        let plan = crate::e2e::events(&built, "plan");
        assert_eq!(
            plan[0]["plan"]["jobs"][job["id"].as_u64().unwrap() as usize]["mode"],
            "assembled",
            "{name}"
        );
    }
    assert!(
        assembled >= cases.len() - 1,
        "{assembled} of {}",
        cases.len()
    );
}
