//! COPY and ADD: files, folders, wildcards, trailing slashes, `--chown` by number and by
//! name, `--chmod`, `.dockerignore`, archives, `--from` a stage, scratch or an image,
//! symlinked destinations.

use super::*;

/// The cases of this file, in the order they run.
pub fn cases() -> Vec<Case> {
    vec![
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
        Case {
            setup: |d| std::fs::create_dir_all(d.join("dir/empty")).unwrap(),
            ..case(
                "dockerignore-reinclude",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY . /ctx/
"#,
                &[
                    (
                        ".dockerignore",
                        "dir\n!dir/sub/y\nDockerfile\n.dockerignore\n*.md\n",
                    ),
                    ("a.txt", "a\n"),
                    ("c.md", "c\n"),
                    ("dir/x", "x\n"),
                    ("dir/sub/y", "y\n"),
                    ("dir/sub/z.sh", "z\n"),
                ],
            )
        },
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
        Case {
            setup: tree_setup,
            ..case(
                "chmod-directories",
                r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT} AS src
RUN mkdir -p /out/d && echo f > /out/d/f && chmod 0700 /out/d
FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY --chmod=0750 dir /ctx-dir/
COPY --from=src --chmod=0711 /out /from-stage
ADD --chmod=0600 a.txt /added
"#,
                TREE,
            )
        },
        // `--from` an image takes the target platform's image: the engine's per-arch
        // busybox images are one platform each, so it is built for linux/amd64 only.
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
        case(
            "scratch-stage-copy",
            r#"FROM scratch AS s
COPY a.txt /s/
FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
COPY --from=s /s /from-scratch
"#,
            A_TXT,
        ),
    ]
}
