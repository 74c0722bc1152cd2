//! RUN and WORKDIR: every `--mount` type with and without a target, WORKDIR chains and
//! owners, what a RUN deletes and links.

use super::*;

/// The cases of this file, in the order they run.
pub fn cases() -> Vec<Case> {
    vec![
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
        // `from=` an image takes the target platform's image, and the engine's per-arch
        // busybox images are one platform each: built for linux/amd64 only.
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
    ]
}
