//! The differential cases: single-platform Dockerfiles on `xplat-test/busybox:amd64`,
//! each with its build context. Where the classic builder of Docker 20.10 cannot take
//! the same text (it refuses `COPY --chmod`), `oracle` gives an equivalent Dockerfile
//! for it, and the reason is written next to it.

use std::os::unix::fs::PermissionsExt;

use crate::support::TestDir;

/// One Dockerfile built both ways.
pub struct Case {
    /// Short name, printed per case.
    pub name: &'static str,
    /// The Dockerfile xplat builds.
    pub dockerfile: &'static str,
    /// The Dockerfile the classic builder builds, when it cannot take `dockerfile` as is.
    pub oracle: Option<&'static str>,
    /// Context files (path, content).
    pub files: &'static [(&'static str, &'static str)],
    /// Extra context preparation (modes, symlinks, archives, empty folders).
    pub setup: fn(&TestDir),
    /// `--build-arg` values given to both builders.
    pub build_args: &'static [(&'static str, &'static str)],
    /// Comparisons known to differ (`fs:/path` or `config:Field`), with the reason.
    pub known: &'static [(&'static str, &'static str)],
}

fn nothing(_: &TestDir) {}

fn chmod(dir: &TestDir, rel: &str, mode: u32) {
    std::fs::set_permissions(dir.join(rel), std::fs::Permissions::from_mode(mode))
        .expect("chmod a context file");
}

/// A RUN adding a user `app` (uid 1000) whose primary group is `appg` (gid 1500), and a
/// group also named `app` (gid 1600), so
/// a `--chown=app` without a group shows which gid a builder picks.
macro_rules! add_app_user {
    () => {
        "RUN echo 'app:x:1000:1500:app:/home/app:/bin/sh' >> /etc/passwd \
        && echo 'appg:x:1500:' >> /etc/group && echo 'app:x:1600:' >> /etc/group && mkdir -p /home/app && chown 1000:1500 /home/app\n"
    };
}

/// Why `COPY --chown=app` (no group) differs.
const LATER_ARG_WINS: &str = "deliberate: xplat follows BuildKit, where `ARG E=from-arg` after \
    `ENV E=env-$A` gives RUN `E=from-arg` (the later setter wins; seen with the engine's BuildKit, \
    DOCKER_BUILDKIT=1); Docker 20.10's classic builder lets the ENV win (`E=env-default`)";

const CHOWN_USER_ONLY: &str = "`--chown=<user>` without a group: the Dockerfile reference says \
    the gid is the same number as the uid, which xplat does (1000:1000); Docker 20.10's classic \
    builder instead looks up a *group named like the user* (`app`, gid 1600; with no such group \
    it fails the build), and BuildKit is reported to use the user's primary group from \
    /etc/passwd (1500). xplat follows the reference; which of the three to match is a \
    decision for the lead, not a one-line fix";

/// All cases, in the order they run.
pub fn all() -> Vec<Case> {
    vec![
        Case {
            name: "run-shell-and-exec-forms",
            dockerfile: "FROM xplat-test/busybox:amd64\n\
                RUN echo shell > /shell.txt && mkdir -p /a/b && ln -s /shell.txt /a/link && chmod 0600 /shell.txt\n\
                RUN [\"/bin/sh\", \"-c\", \"echo exec $0 > /exec.txt\"]\n\
                RUN [\"touch\", \"/touched\"]\n\
                RUN echo one \\\n    two > /continued.txt\n\
                ENTRYPOINT [\"/bin/echo\"]\n",
            oracle: None,
            files: &[],
            setup: nothing,
            build_args: &[],
            known: &[],
        },
        Case {
            name: "env-and-arg",
            dockerfile: "FROM xplat-test/busybox:amd64\n\
                ARG A=default\nARG B\nARG UNSET\n\
                ENV E=env-$A F=\"two words\"\n\
                RUN echo \"A=$A B=$B E=$E F=$F U=${UNSET:-none}\" > /args.txt\n\
                ARG E=from-arg\n\
                RUN echo \"E=$E\" > /e.txt && env | grep -v '^HOSTNAME=' | sort > /env.txt\n\
                ENV A=env-wins\n\
                RUN echo \"A=$A\" > /a.txt\n\
                RUN [\"/bin/busybox\", \"cp\", \"/proc/self/environ\", \"/exec-environ\"]\n\
                RUN tr '\\0' '\\n' < /exec-environ | grep -v '^HOSTNAME=' | sort > /exec-env.txt \
                && rm /exec-environ\n",
            oracle: None,
            files: &[],
            setup: nothing,
            build_args: &[("B", "given")],
            known: &[
                ("fs:/e.txt", LATER_ARG_WINS),
                ("fs:/env.txt", LATER_ARG_WINS),
                ("fs:/exec-env.txt", LATER_ARG_WINS),
            ],
        },
        Case {
            name: "workdir-created-and-relative",
            dockerfile: "FROM xplat-test/busybox:amd64\n\
                WORKDIR /w1\nWORKDIR sub/dir\nRUN pwd > here.txt\n\
                WORKDIR /w1/../w2\nRUN touch made\nWORKDIR ../w3/./x\n\
                COPY a.txt .\nCOPY a.txt rel/\n",
            oracle: None,
            files: &[("a.txt", "a\n")],
            setup: nothing,
            build_args: &[],
            known: &[],
        },
        Case {
            name: "env-expansion-in-later-instructions",
            dockerfile: "FROM xplat-test/busybox:amd64\n\
                ENV D=/app NAME=demo\nWORKDIR $D\n\
                ENV P=${D}/bin:$PATH\n\
                COPY a.txt ${D}/${NAME}.txt\n\
                LABEL path=$D name=\"${NAME}-x\"\n\
                USER ${NAME:+0}\n\
                EXPOSE ${PORT:-8080}\n\
                RUN echo \"$P\" > p.txt\n",
            oracle: None,
            files: &[("a.txt", "a\n")],
            setup: nothing,
            build_args: &[],
            known: &[],
        },
        Case {
            name: "user-numeric-and-named",
            dockerfile: concat!(
                "FROM xplat-test/busybox:amd64\n",
                add_app_user!(),
                "USER 1234:5678\nRUN id > /tmp/id1 && touch /tmp/numeric\n\
                USER app\nWORKDIR /home/app\nRUN id > id2 && touch mine && mkdir own\n\
                WORKDIR /home/app/made-by-workdir\nUSER 0\nRUN touch /root/back-to-root\n\
                USER app:1500\n"
            ),
            oracle: None,
            files: &[],
            setup: nothing,
            build_args: &[],
            known: &[(
                "fs:/home/app/made-by-workdir",
                "BuildKit, xplat's yardstick, makes a WORKDIR owned by the current USER \
                 (Mkdir WithUser); the classic builder makes it owned by root",
            )],
        },
        Case {
            name: "copy-files-dirs-wildcards-slashes",
            dockerfile: "FROM xplat-test/busybox:amd64\n\
                COPY a.txt /dst/a.txt\nCOPY a.txt /dst2/\nCOPY a.txt /noslash\n\
                COPY dir /copied\nCOPY dir/ /copied2/\n\
                COPY *.txt /wild/\nCOPY d?r/sub /s/\nCOPY a.txt b.txt /multi/\n\
                COPY [\"dir/x\", \"/json form/\"]\n\
                COPY . /all/\n",
            oracle: None,
            files: &[
                ("a.txt", "a\n"),
                ("b.txt", "b\n"),
                ("c.md", "c\n"),
                ("dir/x", "x\n"),
                ("dir/sub/y", "y\n"),
                ("dir/sub/z.sh", "#!/bin/sh\necho z\n"),
            ],
            setup: |d| {
                chmod(d, "dir/sub/z.sh", 0o755);
                chmod(d, "b.txt", 0o600);
                chmod(d, "dir/sub", 0o750);
                std::fs::create_dir_all(d.join("dir/empty")).unwrap();
                std::os::unix::fs::symlink("x", d.join("dir/link")).unwrap();
            },
            build_args: &[],
            known: &[],
        },
        Case {
            name: "copy-chown",
            dockerfile: concat!(
                "FROM xplat-test/busybox:amd64\n",
                add_app_user!(),
                "COPY --chown=app:appg a.txt /o/a.txt\n\
                COPY --chown=1001:1002 dir /o/dir\n\
                COPY --chown=app dir/sub /o/sub2/\n\
                COPY --chown=1:1 a.txt /new/parent/dirs/a.txt\n"
            ),
            oracle: None,
            files: &[("a.txt", "a\n"), ("dir/x", "x\n"), ("dir/sub/y", "y\n")],
            setup: nothing,
            build_args: &[],
            known: &[
                ("fs:/o/sub2", CHOWN_USER_ONLY),
                ("fs:/o/sub2/y", CHOWN_USER_ONLY),
            ],
        },
        Case {
            name: "copy-chmod",
            dockerfile: "FROM xplat-test/busybox:amd64\n\
                COPY --chmod=0640 a.txt b.sh /opt/m/\n\
                COPY --chmod=755 a.txt /opt/exec\n",
            // Docker 20.10's classic builder refuses --chmod ("requires BuildKit"): the
            // same filesystem made by COPY then chmod.
            oracle: Some(
                "FROM xplat-test/busybox:amd64\n\
                COPY a.txt b.sh /opt/m/\nRUN chmod 0640 /opt/m/a.txt /opt/m/b.sh\n\
                COPY a.txt /opt/exec\nRUN chmod 755 /opt/exec\n",
            ),
            files: &[("a.txt", "a\n"), ("b.sh", "echo b\n")],
            setup: |d| chmod(d, "b.sh", 0o700),
            build_args: &[],
            known: &[],
        },
        Case {
            name: "add-local-tar-gz-extracts",
            dockerfile: "FROM xplat-test/busybox:amd64\n\
                ADD archive.tar.gz /opt/\nADD archive.tar.gz /opt2\n\
                ADD plain.txt /plain/\n",
            oracle: None,
            files: &[("plain.txt", "plain\n")],
            setup: write_archive,
            build_args: &[],
            known: &[],
        },
        Case {
            name: "copy-from-previous-stage",
            dockerfile: "FROM xplat-test/busybox:amd64 AS builder\n\
                WORKDIR /src\nCOPY a.txt .\n\
                RUN echo built > out.bin && chmod 0700 out.bin && mkdir -p outdir/n \
                && echo n > outdir/n/f && ln -s f outdir/n/lf && chown -R 7:8 outdir\n\
                FROM xplat-test/busybox:amd64\n\
                COPY --from=builder /src/out.bin /usr/local/bin/\n\
                COPY --from=builder /src/outdir /opt/outdir\n\
                COPY --from=0 /src/a.txt /a-from-index\n\
                COPY --from=builder /src/outdir/ /opt/contents/\n",
            oracle: None,
            files: &[("a.txt", "a\n")],
            setup: nothing,
            build_args: &[],
            known: &[],
        },
        Case {
            name: "multi-stage-named-chain",
            dockerfile: "FROM xplat-test/busybox:amd64 AS one\n\
                ENV X=1\nLABEL stage=one\nRUN echo one > /one\n\
                FROM one AS two\nENV Y=$X-2\nRUN echo two-$X > /two\nWORKDIR /in-two\n\
                FROM xplat-test/busybox:amd64 AS unused\nRUN echo never > /never\n\
                FROM two\nLABEL stage=final\nENTRYPOINT [\"/bin/echo\"]\n",
            oracle: None,
            files: &[],
            setup: nothing,
            build_args: &[],
            known: &[],
        },
        Case {
            name: "dockerignore-with-exceptions",
            dockerfile: "FROM xplat-test/busybox:amd64\nCOPY . /ctx/\n",
            oracle: None,
            files: &[
                (
                    ".dockerignore",
                    "# comment\n*.log\n!keep.log\nsecret\ndocs/**/*.md\n!docs/README.md\n**/tmp\n",
                ),
                ("app.log", "no\n"),
                ("keep.log", "yes\n"),
                ("main.c", "int main(){}\n"),
                ("secret/key", "k\n"),
                ("docs/README.md", "readme\n"),
                ("docs/guide/a.md", "no\n"),
                ("docs/guide/a.txt", "yes\n"),
                ("src/tmp/t", "no\n"),
                ("src/keep", "yes\n"),
            ],
            setup: nothing,
            build_args: &[],
            known: &[],
        },
        Case {
            name: "metadata-instructions",
            dockerfile: "FROM xplat-test/busybox:amd64\n\
                LABEL a=1 \"b c\"=\"d e\"\nLABEL multi=\"x \\\n  y\"\n\
                EXPOSE 80 53/udp 8080/tcp\n\
                VOLUME /data [\"/v1\", \"/v2\"]\nVOLUME [\"/v3\", \"/v4\"] \n\
                STOPSIGNAL SIGINT\n\
                HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=4 CMD [\"true\"]\n\
                ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
                CMD [\"echo hi\"]\n\
                MAINTAINER someone\n",
            oracle: None,
            files: &[],
            setup: nothing,
            build_args: &[],
            known: &[],
        },
        Case {
            name: "shell-change-then-run",
            dockerfile: "FROM xplat-test/busybox:amd64\n\
                SHELL [\"/bin/sh\", \"-ec\"]\nRUN echo \"$0\" > /shell0\n\
                SHELL [\"/bin/busybox\", \"sh\", \"-c\"]\nRUN echo via-busybox > /bb\n\
                CMD echo shell form cmd\nENTRYPOINT echo ep\n\
                HEALTHCHECK CMD echo ok\n",
            oracle: None,
            files: &[],
            setup: nothing,
            build_args: &[],
            known: &[],
        },
        Case {
            name: "healthcheck-none-and-onbuild",
            dockerfile: "FROM xplat-test/busybox:amd64\n\
                HEALTHCHECK --interval=1s CMD true\nHEALTHCHECK NONE\n\
                ONBUILD RUN echo later\nSTOPSIGNAL 9\nUSER nobody:nogroup\n",
            oracle: None,
            files: &[],
            setup: nothing,
            build_args: &[],
            known: &[(
                "config:Healthcheck",
                "classic-builder quirk, xplat is right: the engine's commit fills zero \
                 HEALTHCHECK fields from the parent image, so after `HEALTHCHECK NONE` the \
                 classic image keeps the earlier Interval=1s next to Test=[NONE]; xplat \
                 writes Test=[NONE] alone (the interval of a disabled check means nothing)",
            )],
        },
    ]
}

/// `archive.tar.gz`: a folder, files with their own modes and owners, a symlink.
fn write_archive(dir: &TestDir) {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, uid: u64, data: &[u8], link| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid + 1);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    };
    add("pkg/", tar::EntryType::Directory, 0o750, 0, b"", None);
    add("pkg/bin/", tar::EntryType::Directory, 0o755, 0, b"", None);
    add(
        "pkg/bin/tool",
        tar::EntryType::Regular,
        0o755,
        0,
        b"#!/bin/sh\n",
        None,
    );
    add(
        "pkg/data.txt",
        tar::EntryType::Regular,
        0o600,
        1000,
        b"data\n",
        None,
    );
    add(
        "pkg/link",
        tar::EntryType::Symlink,
        0o777,
        0,
        b"",
        Some("data.txt"),
    );
    add(
        "top.txt",
        tar::EntryType::Regular,
        0o644,
        33,
        b"top\n",
        None,
    );
    let bytes = b.into_inner().unwrap().finish().unwrap();
    dir.write("archive.tar.gz", bytes);
}
