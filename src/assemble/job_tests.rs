//! The assembler over in-memory bases (no registry, no engine): issue 10's assembler
//! findings, and every step kind walked through `can_assemble` and the assembler.

use std::collections::BTreeMap;
use std::io::Read;

use super::*;
use crate::assemble::{AssembleEnv, Bases, KnownBases, LayerCache, NoStages};
use crate::context::BuildContext;
use crate::oci::{ContainerConfig, IndexFormat, LayerBlob, LayerOptions};
use crate::plan::{plan, BuildPlan, PlanOptions};
use crate::platform::{Catalog, Platform};

fn amd64() -> Platform {
    Platform::new("linux", "amd64", "")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

struct Case {
    dir: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Case {
    fn new(dockerfile: &str, files: &[(&str, &[u8])]) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        for (name, data) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        Case {
            dir,
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn ctx(&self) -> BuildContext {
        BuildContext::open(self.dir.path(), &self.dir.path().join("Dockerfile")).unwrap()
    }

    fn plan(&self, targets: &[Platform]) -> BuildPlan {
        let text = std::fs::read_to_string(self.dir.path().join("Dockerfile")).unwrap();
        let df = crate::dockerfile::parse(&text).unwrap();
        let opts = PlanOptions {
            targets: targets.to_vec(),
            build_platform: amd64(),
            ..PlanOptions::default()
        };
        plan(&df, &opts, &Catalog::embedded()).unwrap()
    }

    /// Assembles every target (scratch-based stages only), or the final job on `base`.
    fn build(&self, targets: &[Platform], base: Option<&OciImage>) -> Result<Vec<OciImage>> {
        let ctx = self.ctx();
        let p = self.plan(targets);
        let known = BTreeMap::new();
        let resolver = KnownBases(&known);
        let bases = Bases::new(&resolver, None, None);
        let layers = LayerCache::new(None, self.work.path(), LayerOptions::default());
        let env = AssembleEnv {
            context: Some(&ctx),
            bases: &bases,
            stage_files: &NoStages,
            created: Some(0),
            layers: &layers,
            work_dir: self.work.path(),
            format: IndexFormat::Oci,
            reporter: &crate::progress::Silent,
        };
        rt().block_on(async {
            match base {
                Some(b) => {
                    let last = p.jobs.last().unwrap();
                    Ok(vec![assemble(last, Some(b), &env, &BTreeMap::new()).await?])
                }
                None => {
                    let index =
                        super::super::images_for_targets(&p, &env, &BTreeMap::new()).await?;
                    Ok(index.images().iter().map(|(_, i)| i.clone()).collect())
                }
            }
        })
    }
}

/// (path, mode, uid, gid) of every entry of a layer.
fn entries(l: &LayerBlob) -> Vec<(String, u32, u64, u64)> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(l.open().unwrap()));
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
            )
        })
        .collect()
}

fn cc(i: &OciImage) -> &ContainerConfig {
    i.config().config.as_ref().unwrap()
}

/// A base like busybox: /tmp 1777, /etc/passwd with `app` (1000, primary group 1001),
/// and an ONBUILD trigger in its config.
fn base_image() -> OciImage {
    let layer = LayerBlob::build(
        &[
            LayerEntry::dir("tmp", 0o1777),
            LayerEntry::dir("etc", 0o755),
            LayerEntry::file(
                "etc/passwd",
                &b"root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n"[..],
                0o644,
            ),
            LayerEntry::file("etc/group", &b"root:x:0:\napp:x:1001:\n"[..], 0o644),
        ],
        &LayerOptions::default(),
    )
    .unwrap();
    let mut config = ImageConfig::for_platform(&amd64(), Some(0));
    config.config = Some(ContainerConfig {
        env: Some(vec!["PATH=/bin".into()]),
        on_build: Some(vec!["RUN echo trigger".into()]),
        ..ContainerConfig::default()
    });
    OciImage::new(config, vec![layer], IndexFormat::Oci).unwrap()
}

#[test]
fn parents_keep_the_bases_metadata_and_chown_and_workdir_use_its_users() {
    let case = Case::new(
        "FROM base\nCOPY --chown=app a /tmp/x/a\nUSER app\nWORKDIR /srv/www\nWORKDIR /tmp\n",
        &[("a", b"a")],
    );
    let img = &case.build(&[amd64()], Some(&base_image())).unwrap()[0];
    let layers = img.layers();
    assert_eq!(
        layers.len(),
        3,
        "base + COPY + one WORKDIR (the second exists)"
    );
    assert_eq!(
        entries(&layers[1]),
        [
            ("tmp/".into(), 0o1777, 0, 0),
            ("tmp/x/".into(), 0o755, 1000, 1001),
            ("tmp/x/a".into(), 0o644, 1000, 1001),
        ],
        "/tmp stays 1777; created parents take the --chown owner"
    );
    assert_eq!(
        entries(&layers[2]),
        [
            ("srv/".into(), 0o755, 1000, 1001),
            ("srv/www/".into(), 0o755, 1000, 1001)
        ],
        "WORKDIR directories are owned by the USER, as BuildKit makes them"
    );
    let history: Vec<_> = img
        .config()
        .history
        .iter()
        .map(|h| (h.created_by.clone().unwrap(), h.empty_layer))
        .collect();
    assert_eq!(history.last().unwrap(), &("WORKDIR /tmp".to_string(), true));
    assert_eq!(
        cc(img).on_build,
        None,
        "the base's ONBUILD triggers are not copied"
    );
    assert_eq!(cc(img).env.as_ref().unwrap(), &["PATH=/bin"]);
    assert_eq!(cc(img).working_dir.as_deref(), Some("/tmp"));
}

#[test]
fn scratch_gets_buildkits_defaults_and_copy_from_a_foreign_platform_stage_needs_no_engine() {
    let arm64 = Platform::new("linux", "arm64", "");
    let case = Case::new(
        "FROM scratch AS files\nCOPY a /out/a\nFROM scratch\nCOPY --from=files /out /app\nENTRYPOINT [\"/app/a\"]\n",
        &[("a", b"bin")],
    );
    let images = case.build(&[amd64(), arm64], None).unwrap();
    assert_eq!(images.len(), 2);
    for img in &images {
        assert_eq!(
            cc(img).env.as_ref().unwrap(),
            &[format!("PATH={}", crate::stage::DEFAULT_PATH)]
        );
        assert_eq!(cc(img).working_dir.as_deref(), Some("/"));
        assert_eq!(
            entries(&img.layers()[0]),
            [("app/".into(), 0o755, 0, 0), ("app/a".into(), 0o644, 0, 0)]
        );
    }
    assert_eq!(images[1].config().architecture, "arm64");
    assert_eq!(
        images[0].layers()[0].digest(),
        images[1].layers()[0].digest(),
        "identical layers for both platforms"
    );
}

/// Serves `body` once per connection on loopback, for ADD <url>.
fn serve(body: &'static [u8]) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Thu, 01 Jan 1970 00:01:40 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            use std::io::Write;
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    format!("http://{addr}/dl/tool.txt")
}

fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn every_step_kind_marked_assemblable_is_assembled() {
    let url = serve(b"downloaded\n");
    let archive = tar_gz(&[("inner/x", b"x")]);
    let src = "FROM scratch AS src\nCOPY dir/ /out/\nCOPY a /out/link-target\n";
    // (name, final stage steps, assemblable)
    let table: Vec<(&str, String, bool)> = vec![
        ("env", "ENV A=1 B=\"x y\"".into(), true),
        ("label", "LABEL a=b".into(), true),
        ("workdir", "WORKDIR /w/x".into(), true),
        ("user", "USER 1:2".into(), true),
        ("expose", "EXPOSE 80 53/udp".into(), true),
        ("volume", "VOLUME /data".into(), true),
        ("cmd", "CMD [\"/a\"]".into(), true),
        ("entrypoint", "ENTRYPOINT /a".into(), true),
        ("shell", "SHELL [\"/bin/bash\", \"-c\"]".into(), true),
        ("stopsignal", "STOPSIGNAL SIGINT".into(), true),
        (
            "healthcheck",
            "HEALTHCHECK --interval=5s --start-interval=1s CMD true".into(),
            true,
        ),
        ("healthcheck none", "HEALTHCHECK NONE".into(), true),
        ("onbuild", "ONBUILD RUN make".into(), true),
        ("maintainer", "MAINTAINER me".into(), true),
        ("arg", "ARG X=1".into(), true),
        ("copy", "COPY a /a".into(), true),
        ("copy dir", "COPY dir /d/".into(), true),
        (
            "copy chown numeric",
            "COPY --chown=5:6 --chmod=600 a /a".into(),
            true,
        ),
        (
            "copy chown by name",
            "COPY etc/ /etc/\nCOPY --chown=app a /a".into(),
            true,
        ),
        ("copy wildcard", "COPY dir/*.txt /t/".into(), true),
        (
            "copy parents",
            "COPY --parents dir/./b.txt /p/".into(),
            true,
        ),
        ("copy exclude", "COPY --exclude=*.txt dir /e/".into(), true),
        (
            "copy --from stage",
            "COPY --from=src /out/b.txt /b".into(),
            true,
        ),
        ("copy --from dir", "COPY --from=src /out /o".into(), true),
        (
            "copy --from wildcard",
            "COPY --from=src /out/*.txt /w/".into(),
            true,
        ),
        ("copy heredoc", "COPY <<EOF /h\nhello\nEOF".into(), true),
        ("add local", "ADD a /a".into(), true),
        ("add archive", "ADD arch.tar.gz /x/".into(), true),
        ("add url", format!("ADD {url} /u/"), true),
        (
            "add url unpack",
            format!("ADD --unpack=true {url} /u/"),
            false,
        ),
        ("add git", "ADD git://example.com/repo /g".into(), false),
        (
            "copy --from --exclude",
            "COPY --from=src --exclude=x /out /o".into(),
            false,
        ),
        ("run", "RUN true".into(), false),
    ];
    for (name, steps, want) in table {
        let df = format!("{src}FROM scratch\n{steps}\n");
        let case = Case::new(
            &df,
            &[
                ("a", b"a"),
                ("dir/b.txt", b"b"),
                ("dir/c.bin", b"c"),
                ("etc/passwd", b"app:x:7:8::/:/bin/sh\n"),
                ("etc/group", b"app:x:8:\n"),
                ("arch.tar.gz", &archive),
            ],
        );
        let p = case.plan(&[amd64()]);
        let last = p.jobs.last().unwrap();
        assert_eq!(can_assemble(&last.steps), want, "{name}");
        if !want {
            continue;
        }
        let images = case.build(&[amd64()], None);
        assert!(
            images.is_ok(),
            "{name}: marked assemblable but refused: {}",
            images.unwrap_err()
        );
    }
}
