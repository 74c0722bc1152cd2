use super::*;

fn run_of(text: &str) -> Run {
    let df = crate::dockerfile::parse(&format!("FROM scratch\n{text}")).unwrap();
    match &df.stages[0].instructions[0].node {
        Instruction::Run(r) => r.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn heredoc_rules() {
    let r = run_of("RUN echo hi\n");
    assert_eq!(heredoc_argv(&r), HeredocArgv::Plain);
    let r = run_of("RUN <<EOF\necho a\necho b\nEOF\n");
    assert_eq!(
        heredoc_argv(&r),
        HeredocArgv::Shell("echo a\necho b\n".into())
    );
    let r = run_of("RUN <<-'EOF'\n\techo $A\n\tEOF\n");
    assert_eq!(heredoc_argv(&r), HeredocArgv::Shell("echo $A\n".into()));
    let r = run_of("RUN <<EOF\n#!/bin/sh -e\necho x\nEOF\n");
    assert!(matches!(heredoc_argv(&r), HeredocArgv::Script(h) if h.name == "EOF"));
    let r = run_of("RUN cat <<A <<B > /f\none\nA\ntwo\nB\n");
    assert_eq!(
        heredoc_argv(&r),
        HeredocArgv::Shell("cat <<A <<B > /f\none\nA\ntwo\nB".into())
    );
}

fn cache(t: &str, v: &str) -> (String, MountSpec) {
    (
        t.to_string(),
        MountSpec::Cache {
            volume: v.into(),
            target: t.into(),
        },
    )
}

#[test]
fn cache_mounts_union_and_fixed_mounts_must_agree() {
    let go = RunMounts {
        caches: BTreeMap::from([cache("/go/pkg/mod", "m")]),
        targets: vec!["/go/pkg/mod".into()],
        ..RunMounts::default()
    };
    let build = RunMounts {
        caches: BTreeMap::from([cache("/go/pkg/mod", "m"), cache("/root/.cache", "b")]),
        targets: vec!["/go/pkg/mod".into(), "/root/.cache".into()],
        ..RunMounts::default()
    };
    assert!(go.joins(&build));
    let clash = RunMounts {
        caches: BTreeMap::from([cache("/go/pkg/mod", "other")]),
        ..RunMounts::default()
    };
    assert!(!go.joins(&clash));
    let bind = RunMounts {
        fixed: vec![MountSpec::Tmpfs {
            target: "/src".into(),
        }],
        ..RunMounts::default()
    };
    assert!(!go.joins(&bind));
    assert!(go.fits(&[], Network::Default, &build.caches));
    assert!(!build.fits(&[], Network::Default, &go.caches));
    assert!(!go.fits(&[], Network::None, &build.caches));
    assert!(build.under_a_target("/root/.cache/x"));
    assert!(!build.under_a_target("/root/.cachex"));
}
