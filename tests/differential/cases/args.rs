//! ARG, ENV and the platform ARGs: automatic and global ARGs, `--build-arg`, inheritance
//! across stages, expansion in ENV, flags and FROM; a final built on the build platform.

use super::*;

/// The cases of this file, in the order they run.
pub fn cases() -> Vec<Case> {
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
            "env-forms-run",
            r#"FROM xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}
ENV PATH=/opt/bin:$PATH EMPTY=
ENV A=${UNSET:-dflt} B=${A:+set} C="${A}-$A" D='$A'
RUN env | grep -v '^HOSTNAME=' | sort > /env.txt && echo "$PATH" > /path.txt
"#,
            &[],
        ),
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
            "final-on-build-platform",
            r#"FROM --platform=$BUILDPLATFORM xplat-test/busybox:${BUILDARCH}
ARG TARGETARCH
RUN echo "built for $TARGETARCH on $(uname -m)" > /built.txt
"#,
            &[],
        ),
    ]
}
