//! Metadata instructions, ONBUILD, parsing (escape directive, CRLF and BOM, comments in
//! continuations) and bases (scratch, the loopback registry).

use super::*;

/// The cases of this file, in the order they run.
pub fn cases() -> Vec<Case> {
    vec![
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
        case(
            "crlf-and-bom",
            "\u{feff}FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}\r\n\
ENV A=1 \\\r\n    B=2\r\n\
# a comment\r\n\
RUN echo \"$A $B\" > /ab.txt\r\n\
COPY a.txt /crlf/\r\n",
            A_TXT,
        ),
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
