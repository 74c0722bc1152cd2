//! The Dockerfiles of the BuildKit differential suite, each with its build context,
//! build arguments, secrets and the platforms it is built for.
//!
//! Base images: `xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}` names the engine's
//! per-architecture busybox (`amd64`, `arm64`, `armv7`); `@REGISTRY@/busybox:latest` is
//! the multi-platform busybox pushed to the loopback registry (`@REGISTRY@` is replaced
//! by `127.0.0.1:PORT` before either builder sees the file).
//!
//! The path each final takes in xplat follows from its text: a final with a RUN (its
//! own, or an ONBUILD trigger's) runs in the engine, natively for linux/amd64 and
//! emulated for the others; a RUN-free final is assembled.

use std::os::unix::fs::PermissionsExt;

use crate::support::TestDir;

/// One Dockerfile built by both builders.
#[derive(Clone, Copy)]
pub struct Case {
    /// Short name, printed per case.
    pub name: &'static str,
    /// The Dockerfile.
    pub dockerfile: &'static str,
    /// Context files (path, content).
    pub files: &'static [(&'static str, &'static str)],
    /// Extra context preparation (modes, symlinks, archives, empty folders).
    pub setup: fn(&TestDir),
    /// `--build-arg` values.
    pub build_args: &'static [(&'static str, &'static str)],
    /// `--secret id=ID` with the secret's content.
    pub secrets: &'static [(&'static str, &'static str)],
    /// The platforms it is built for.
    pub platforms: &'static [&'static str],
}

/// linux/amd64, linux/arm64 and linux/arm/v7.
pub const ALL: &[&str] = &["linux/amd64", "linux/arm64", "linux/arm/v7"];

fn nothing(_: &TestDir) {}

fn chmod(dir: &TestDir, rel: &str, mode: u32) {
    std::fs::set_permissions(dir.join(rel), std::fs::Permissions::from_mode(mode))
        .expect("chmod a context file");
}

/// A case with no context preparation, build arguments or secrets, for every platform.
const fn case(
    name: &'static str,
    dockerfile: &'static str,
    files: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        name,
        dockerfile,
        files,
        setup: nothing,
        build_args: &[],
        secrets: &[],
        platforms: ALL,
    }
}

const A_TXT: &[(&str, &str)] = &[("a.txt", "a\n")];

const TREE: &[(&str, &str)] = &[
    ("a.txt", "a\n"),
    ("b.txt", "b\n"),
    ("c.md", "c\n"),
    ("dir/x", "x\n"),
    ("dir/sub/y", "y\n"),
    ("dir/sub/z.sh", "#!/bin/sh\necho z\n"),
];

fn tree_setup(d: &TestDir) {
    chmod(d, "dir/sub/z.sh", 0o755);
    chmod(d, "b.txt", 0o600);
    chmod(d, "dir/sub", 0o750);
    std::fs::create_dir_all(d.join("dir/empty")).unwrap();
    std::os::unix::fs::symlink("x", d.join("dir/link")).unwrap();
}

/// All cases, in the order they run.
pub fn all() -> Vec<Case> {
    vec![
        case(
            "platform-args-run",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ARG TARGETPLATFORM
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
ARG BUILDPLATFORM
ARG BUILDOS
ARG BUILDARCH
RUN echo "t=$TARGETPLATFORM os=$TARGETOS arch=$TARGETARCH v=$TARGETVARIANT b=$BUILDPLATFORM $BUILDOS $BUILDARCH" > /platform.txt
RUN echo "undeclared=${BUILDVARIANT:-none}" > /undeclared.txt
"#,
            &[],
        ),
        case(
            "platform-args-cross-stage",
            r#"FROM --platform=$BUILDPLATFORM xplat-test/busybox:${BUILDARCH} AS build
ARG TARGETPLATFORM
ARG TARGETARCH
ARG BUILDPLATFORM
RUN mkdir -p /out && echo "$BUILDPLATFORM->$TARGETPLATFORM" > /out/plat && echo $TARGETARCH > /out/arch
FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY --from=build /out/ /opt/
ARG TARGETARCH
LABEL arch=$TARGETARCH
ENV ARCH=$TARGETARCH
"#,
            &[],
        ),
        case(
            "global-args-in-from",
            r#"ARG FLAVOR=busybox
ARG SUFFIX
ARG UNUSED=global-only
FROM xplat-test/${FLAVOR}:${TARGETARCH}${TARGETVARIANT}${SUFFIX} AS base
ARG FLAVOR
ARG SUFFIX=late
RUN echo "flavor=$FLAVOR suffix=$SUFFIX unused=${UNUSED:-unset}" > /global.txt
FROM base
ARG FLAVOR=overridden
RUN echo "final flavor=$FLAVOR" > /final.txt
"#,
            &[],
        ),
        Case {
            build_args: &[("GREETING", "hello"), ("LOCAL", "given"), ("EMPTY", "")],
            ..case(
                "build-arg-overrides-run",
                r#"ARG GREETING=hi
ARG TAG_ARCH=${TARGETARCH}
FROM xplat-test/busybox:${TAG_ARCH}${TARGETVARIANT}
ARG GREETING
ARG LOCAL=local-default
ARG EMPTY=not-empty
ENV FROM_ARG=$GREETING
RUN echo "$GREETING $LOCAL [${EMPTY}] $FROM_ARG" > /args.txt
"#,
                &[],
            )
        },
        Case {
            build_args: &[("VERSION", "1.2")],
            ..case(
                "build-arg-overrides-assembled",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ARG VERSION=0.0
ARG DEST=/opt/app
ENV VERSION=$VERSION
LABEL version=$VERSION dest=$DEST
COPY a.txt $DEST/a-$VERSION.txt
WORKDIR $DEST
"#,
                A_TXT,
            )
        },
        case(
            "arg-env-inheritance",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS parent
ARG PA=parent-arg
ENV PE=parent-env-$PA
FROM parent AS child
ARG CA=child
RUN echo "PA=${PA:-unset} PE=$PE CA=$CA" > /inherit.txt
FROM child
RUN echo "final PA=${PA:-unset} CA=${CA:-unset} PE=$PE" > /final.txt
"#,
            &[],
        ),
        Case {
            build_args: &[("Y", "b")],
            ..case(
                "env-then-arg",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ENV Y=a
ARG Y
ARG Z=1
ENV Z=2
RUN echo "Y=$Y Z=$Z" > /yz.txt && env | grep -v '^HOSTNAME=' | sort > /env.txt
"#,
                &[],
            )
        },
        case(
            "env-expansion-assembled",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ENV D=/app NAME=demo
ENV PATH=$D/bin:$PATH
WORKDIR $D
COPY a.txt ${D}/${NAME}.txt
LABEL path=$D name="${NAME}-x" unset="${NOPE:-dflt}"
USER ${NAME:+0}
EXPOSE ${PORT:-8080}
ENV COPY_OF_PATH=$PATH
"#,
            A_TXT,
        ),
        case(
            "mount-cache",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
WORKDIR /work
RUN --mount=type=cache,target=/var/cache/app,id=bkdiff-app echo cached > /var/cache/app/f && cp /var/cache/app/f /work/from-cache
RUN --mount=type=cache,target=/c2,uid=1000,gid=1000,mode=0700 ls -ldn /c2 | awk '{print $1, $3, $4}' > /work/c2.txt
RUN --mount=type=cache,id=bkdiff-notarget ls -A /work > /listing.txt
"#,
            &[],
        ),
        Case {
            setup: |d| {
                std::fs::create_dir_all(d.join("dir")).unwrap();
                d.write("dir/x", "x\n");
            },
            ..case(
                "mount-bind",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS src
RUN mkdir -p /data && echo from-stage > /data/s.txt
FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
RUN --mount=type=bind,source=a.txt,target=/mnt/a.txt cat /mnt/a.txt > /bind-file.txt
RUN --mount=type=bind,from=src,source=/data,target=/srcdata cat /srcdata/s.txt > /bind-stage.txt
RUN --mount=type=bind,target=/ctx,rw echo scribble > /ctx/a.txt && cat /ctx/a.txt > /rw.txt
WORKDIR /w
RUN --mount=type=bind,source=dir cat x > /bind-workdir.txt
RUN --mount=type=bind,target=rel,source=dir cat rel/x > /bind-rel.txt
"#,
                A_TXT,
            )
        },
        case(
            "mount-tmpfs",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/y && ls /scratch > /tmpfs-list.txt
WORKDIR /t
RUN --mount=type=tmpfs ls -A > /tmpfs-workdir.txt
"#,
            &[],
        ),
        Case {
            secrets: &[("token", "s3cr3t-value")],
            ..case(
                "mount-secret",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /secret-len.txt
RUN --mount=type=secret,id=token,target=/etc/app/token tr a-z A-Z < /etc/app/token > /secret-upper.txt
RUN --mount=type=secret,id=absent ls -A /run/secrets > /secrets-list.txt 2>&1 || echo none >> /secrets-list.txt
"#,
                &[],
            )
        },
        case(
            "workdir-chain-run",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ENV BASE=/srv
WORKDIR /a
WORKDIR b
WORKDIR ../c/./d
WORKDIR $BASE/app
WORKDIR ${BASE}/app/sub
RUN pwd > /pwd.txt
WORKDIR rel-after-run
"#,
            &[],
        ),
        case(
            "workdir-chain-assembled",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ENV BASE=/srv
WORKDIR /a
WORKDIR b
WORKDIR ../c/./d
WORKDIR $BASE/app
COPY a.txt .
WORKDIR sub
"#,
            A_TXT,
        ),
        case(
            "workdir-after-user-run",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
USER 1000:1000
WORKDIR /home/u/work
RUN id -u > /tmp/uid && touch /home/u/work/mine
USER 0
WORKDIR /home/u/work/root-made
"#,
            &[],
        ),
        case(
            "workdir-after-user-assembled",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
USER 1000:1000
WORKDIR /app/data
COPY a.txt .
USER nobody
WORKDIR /app/nobody
"#,
            A_TXT,
        ),
        Case {
            setup: tree_setup,
            ..case(
                "copy-files-dirs-slashes",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY a.txt /dst/a.txt
COPY a.txt /dst2/
COPY a.txt /noslash
COPY dir /copied
COPY dir/ /copied2/
COPY a.txt b.txt /multi/
COPY ["dir/x", "/json form/"]
COPY . /all/
COPY a.txt /tmp/
"#,
                TREE,
            )
        },
        Case {
            setup: tree_setup,
            ..case(
                "copy-wildcards",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY *.txt /wild/
COPY d?r/sub /s/
COPY [ab].txt /set/
COPY dir/su*/y /deep/
COPY *.md c.* /mixed/
"#,
                TREE,
            )
        },
        Case {
            setup: tree_setup,
            ..case(
                "copy-chown-numeric",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY --chown=1001:1002 dir /o/dir
COPY --chown=7 a.txt /o/seven
COPY --chown=1:1 a.txt /new/parent/dirs/a.txt
COPY --chown=0:0 b.txt /o/
"#,
                TREE,
            )
        },
        Case {
            dockerfile: concat!(
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS users
RUN echo 'app:x:1000:1500:app:/home/app:/bin/sh' >> /etc/passwd \
 && echo 'appg:x:1500:' >> /etc/group && echo 'app:x:1600:' >> /etc/group
"#,
                r#"FROM users
COPY --chown=app:appg a.txt /o/a.txt
COPY --chown=app dir /o/app-only/
COPY --chown=app:1600 a.txt /o/mixed
COPY --chown=1000:appg a.txt /o/mixed2
COPY --chown=nobody a.txt /o/nobody
USER app
WORKDIR /o/workdir-as-app
"#
            ),
            setup: tree_setup,
            ..case("copy-chown-names-assembled", "", TREE)
        },
        Case {
            dockerfile: concat!(
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS users
RUN echo 'app:x:1000:1500:app:/home/app:/bin/sh' >> /etc/passwd \
 && echo 'appg:x:1500:' >> /etc/group && echo 'app:x:1600:' >> /etc/group
"#,
                r#"FROM users
COPY --chown=app:appg a.txt /o/a.txt
COPY --chown=app dir /o/app-only/
COPY --chown=nobody a.txt /o/nobody
USER app
WORKDIR /o/workdir-as-app
RUN id > /tmp/id.txt
"#
            ),
            setup: tree_setup,
            ..case("copy-chown-names-run", "", TREE)
        },
        case(
            "dockerignore",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY . /ctx/
"#,
            &[
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
        ),
        case(
            "copy-from-stage",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS builder
WORKDIR /src
COPY a.txt .
RUN echo built > out.bin && chmod 0700 out.bin && mkdir -p outdir/n && echo n > outdir/n/f \
 && ln -s f outdir/n/lf && chown -R 7:8 outdir && chmod 0700 outdir
FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY --from=builder /src/out.bin /usr/local/bin/
COPY --from=builder /src/outdir /opt/outdir
COPY --from=0 /src/a.txt /a-from-index
COPY --from=builder /src/outdir/ /opt/contents/
COPY --from=builder --chown=5:6 /src/outdir /opt/chowned
COPY --from=builder /src/*.bin /opt/wild/
"#,
            A_TXT,
        ),
        case(
            "copy-from-stage-root",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS builder
RUN mkdir -p /out && echo x > /out/x
FROM scratch
COPY --from=builder / /
COPY --from=builder /etc /etc-copy
"#,
            &[],
        ),
        Case {
            setup: |d| {
                chmod(d, "b.sh", 0o700);
                write_archive(d);
            },
            ..case(
                "copy-chmod-and-add",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY --chmod=0640 a.txt b.sh /opt/m/
COPY --chmod=755 a.txt /opt/exec
ADD archive.tar.gz /opt/
ADD archive.tar.gz /opt2
ADD a.txt /plain/
"#,
                &[("a.txt", "a\n"), ("b.sh", "echo b\n")],
            )
        },
        case(
            "metadata-assembled",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
LABEL a=1 "b c"="d e"
LABEL multi="x \
  y"
EXPOSE 80 53/udp 8080/tcp
VOLUME /data /logs
VOLUME ["/v3", "/v4"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=4 CMD ["true"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
MAINTAINER someone
USER nobody
SHELL ["/bin/sh", "-ec"]
ENV K1=v1 K2="two words"
ENV K3 v3 legacy
"#,
            &[],
        ),
        case(
            "metadata-run",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
LABEL a=1
EXPOSE 443
VOLUME /data
SHELL ["/bin/sh", "-ec"]
RUN echo "$0" > /shell0
CMD echo shell form cmd
ENTRYPOINT echo ep
HEALTHCHECK CMD echo ok
STOPSIGNAL 9
RUN mkdir -p /data && echo after > /data/written-after-volume && echo done > /done
"#,
            &[],
        ),
        case(
            "healthcheck-none-onbuild-declared",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
HEALTHCHECK --interval=1s CMD true
HEALTHCHECK NONE
ONBUILD RUN echo later
ONBUILD COPY a.txt /b
STOPSIGNAL 9
USER nobody:nogroup
"#,
            &[],
        ),
        case(
            "onbuild-fires-run",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS parent
ONBUILD ARG TRIG=trigger-default
ONBUILD RUN echo "fired $TRIG" > /fired.txt
ONBUILD ENV FIRED=yes
LABEL parent=yes
FROM parent
RUN echo "child sees $FIRED" > /child.txt
"#,
            &[],
        ),
        case(
            "onbuild-fires-copy",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS parent
ONBUILD COPY a.txt /onbuild/
ONBUILD WORKDIR /ob
ONBUILD LABEL from=onbuild
FROM parent
LABEL child=1
"#,
            A_TXT,
        ),
        case(
            "escape-directive",
            "# escape=`\n\
FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}\n\
ENV WIN=C:\\Users\\app `\n    NEXT=line\n\
RUN echo \"back\\slash $WIN\" > /escape.txt && `\n    echo \"$NEXT\" >> /escape.txt\n\
COPY a.txt /dir\\name.txt\n\
LABEL path=\"C:\\tmp\"\n",
            A_TXT,
        ),
        Case {
            setup: tree_setup,
            ..case(
                "scratch-final",
                r#"FROM scratch
COPY a.txt /
COPY dir /dir
ENV A=1
"#,
                TREE,
            )
        },
        case(
            "scratch-stage-copy",
            r#"FROM scratch AS s
COPY a.txt /s/
FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY --from=s /s /from-scratch
"#,
            A_TXT,
        ),
        Case {
            setup: tree_setup,
            ..case(
                "copy-context-run",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
WORKDIR /ctx
COPY . .
COPY --chown=1001:1002 dir /owned/
RUN ls -lnR /ctx /owned | grep -v '^total' | awk '{print $1, $3, $4, $NF}' > /listing.txt
"#,
                TREE,
            )
        },
        case(
            "whiteouts-links-assembled",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS b
RUN rm /etc/group && mkdir -p /opt/d && echo a > /opt/d/f && ln /opt/d/f /opt/d/hard \
 && ln -s f /opt/d/soft && chmod 4755 /opt/d/f && rm -rf /root && mkdir -m 1777 /tmp2
FROM b
COPY a.txt /opt/d/
COPY --from=b /opt/d /copied
"#,
            A_TXT,
        ),
        case(
            "whiteouts-links-run",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
RUN rm /etc/group && mkdir -p /opt/d && echo a > /opt/d/f && ln /opt/d/f /opt/d/hard \
 && ln -s f /opt/d/soft && chmod 4755 /opt/d/f
RUN rm -rf /root /opt/d/soft && mkdir -m 1777 /tmp2
"#,
            &[],
        ),
        case(
            "env-forms-run",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ENV PATH=/opt/bin:$PATH EMPTY=
ENV A=${UNSET:-dflt} B=${A:+set} C="${A}-$A" D='$A'
RUN env | grep -v '^HOSTNAME=' | sort > /env.txt && echo "$PATH" > /path.txt
"#,
            &[],
        ),
        Case {
            setup: write_archive,
            ..case(
                "add-chown-archive",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ADD --chown=7:8 archive.tar.gz /x/
ADD --chown=9:9 a.txt /y/
"#,
                A_TXT,
            )
        },
        case(
            "entrypoint-resets-base-cmd",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ENTRYPOINT ["/bin/echo"]
EXPOSE 8000-8002 9000/udp
STOPSIGNAL SIGKILL
"#,
            &[],
        ),
        case(
            "entrypoint-resets-base-cmd-run",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
CMD ["first"]
ENTRYPOINT ["/bin/echo"]
RUN echo ran > /ran
"#,
            &[],
        ),
        Case {
            setup: tree_setup,
            ..case(
                "symlink-destinations",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS links
RUN mkdir -p /real/sub && ln -s /real /lnk && ln -s sub /real/rel
FROM links
COPY a.txt /lnk/
COPY b.txt /real/rel/
WORKDIR /lnk/wd
COPY dir /lnk/merged/
COPY dir /etc/
"#,
                TREE,
            )
        },
        Case {
            setup: tree_setup,
            ..case(
                "symlink-destinations-run",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
RUN mkdir -p /real/sub && ln -s /real /lnk && ln -s sub /real/rel
COPY a.txt /lnk/
COPY b.txt /real/rel/
WORKDIR /lnk/wd
COPY dir /etc/
RUN ls -la /real /real/sub | awk '{print $1, $3, $4, $NF}' > /ls.txt
"#,
                TREE,
            )
        },
        Case {
            setup: |d| {
                d.write("with space.txt", "s\n");
                d.write("dir with space/inner file", "i\n");
            },
            ..case(
                "names-with-spaces",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY ["with space.txt", "/dst dir/"]
COPY ["dir with space", "/other dir/"]
ENV GREETING="hello world" OTHER=a\ b
LABEL "key with space"="value with space"
"#,
                &[],
            )
        },
        // `--from` an image takes the target platform's image: the engine's per-arch
        // busybox images are one platform each, so these two are built for linux/amd64.
        Case {
            platforms: &["linux/amd64"],
            ..case(
                "from-engine-image",
                r#"FROM xplat-test/busybox:amd64
COPY --from=xplat-test/busybox:amd64 /etc/passwd /from-image/passwd
LABEL xplat.fixture.recipe=overridden
"#,
                &[],
            )
        },
        Case {
            platforms: &["linux/amd64"],
            ..case(
                "mount-from-engine-image-run",
                r#"FROM xplat-test/busybox:amd64
RUN --mount=type=bind,from=xplat-test/busybox:amd64,source=/etc,target=/img cat /img/group > /group-copy
"#,
                &[],
            )
        },
        case(
            "stage-picked-by-arg",
            r#"ARG FLAVOR=two
FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS one
LABEL stage=one
FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS two
LABEL stage=two
ENV IN_TWO=yes
FROM ${FLAVOR}
ENV PICKED=${FLAVOR}x
"#,
            &[],
        ),
        case(
            "crlf-and-bom",
            "\u{feff}FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}\r\n\
ENV A=1 \\\r\n    B=2\r\n\
# a comment\r\n\
RUN echo \"$A $B\" > /ab.txt\r\n\
COPY a.txt /crlf/\r\n",
            A_TXT,
        ),
        Case {
            build_args: &[("OWNER", "4321")],
            ..case(
                "flags-from-args",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ARG OWNER=1234
ARG GROUP=5678
ARG MODE=0640
ARG DEST=/owned
COPY --chown=${OWNER}:${GROUP} a.txt $DEST/
COPY --chown=$OWNER a.txt ${DEST}-too
"#,
                A_TXT,
            )
        },
        case(
            "comments-and-continuations",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
# comment
  # indented comment
RUN echo one \
# a comment inside the continuation
    two \

    three > /cont.txt
LABEL a="x" \
      b="y"
ENV   SPACED    value with spaces
"#,
            &[],
        ),
        case(
            "final-on-build-platform",
            r#"FROM --platform=$BUILDPLATFORM xplat-test/busybox:${BUILDARCH}
ARG TARGETARCH
RUN echo "built for $TARGETARCH on $(uname -m)" > /built.txt
"#,
            &[],
        ),
        case(
            "registry-base-run",
            r#"FROM @REGISTRY@/busybox:latest
ENV IN=registry
RUN uname -m > /m.txt && echo "$IN" > /in.txt
"#,
            &[],
        ),
        case(
            "registry-base-assembled",
            r#"FROM @REGISTRY@/busybox:latest AS b
COPY a.txt /b/
FROM b
COPY --from=@REGISTRY@/busybox:latest /etc/passwd /from-image/passwd
LABEL base=registry
"#,
            A_TXT,
        ),
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
    let tool: &[u8] = b"#!/bin/sh\n";
    add(
        "pkg/bin/tool",
        tar::EntryType::Regular,
        0o755,
        0,
        tool,
        None,
    );
    let data: &[u8] = b"data\n";
    add(
        "pkg/data.txt",
        tar::EntryType::Regular,
        0o600,
        1000,
        data,
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
    let top: &[u8] = b"top\n";
    add("top.txt", tar::EntryType::Regular, 0o644, 33, top, None);
    let bytes = b.into_inner().unwrap().finish().unwrap();
    dir.write("archive.tar.gz", bytes);
}
