use super::*;

#[test]
fn every_folder_in_templates_is_embedded_and_every_template_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let on_disk: BTreeSet<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let embedded: BTreeSet<String> = templates().iter().map(|t| t.name.to_string()).collect();
    assert_eq!(on_disk, embedded);
    for t in templates() {
        assert!(!t.description.is_empty(), "{}: no description", t.name);
        assert!(
            !t.description.contains('\n'),
            "{}: description is one line",
            t.name
        );
        let names: Vec<&str> = t.files.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["Dockerfile", ".dockerignore", "xplat.toml"]);
    }
}

#[test]
fn the_asked_for_templates_exist() {
    for name in ["go", "go-cgo", "rust", "c", "node", "python"] {
        assert_eq!(find(name).unwrap().name, name);
    }
}

#[test]
fn an_unknown_template_suggests_the_closest() {
    let err = find("rsut").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown template \"rsut\"; did you mean \"rust\"?; `xplat init --list` shows them all"
    );
    let err = find("haskell").unwrap_err();
    assert!(matches!(
        err,
        InitError::UnknownTemplate {
            suggestion: None,
            ..
        }
    ));
}

#[test]
fn detection_from_project_files() {
    type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>);
    let cases: &[Case] = &[
        (&["go.mod", "main.go"], Some(("go", "go.mod"))),
        (&["Cargo.toml", "src"], Some(("rust", "Cargo.toml"))),
        (&["package.json"], Some(("node", "package.json"))),
        (&["pyproject.toml"], Some(("python", "pyproject.toml"))),
        (&["requirements.txt"], Some(("python", "requirements.txt"))),
        (&["Makefile", "main.c"], Some(("c", "Makefile"))),
        (&["CMakeLists.txt"], Some(("c", "CMakeLists.txt"))),
        // A language manifest beats a Makefile that only drives it.
        (&["Makefile", "go.mod"], Some(("go", "go.mod"))),
        (&["Makefile", "Cargo.toml"], Some(("rust", "Cargo.toml"))),
        (&["README.md"], None),
        (&[], None),
    ];
    for (files, want) in cases {
        let got = detect(files).map(|d| (d.template, d.because_of));
        let want = want.map(|(t, f)| (t, f.to_string()));
        assert_eq!(got, want, "files {files:?}");
    }
}

#[test]
fn project_names_are_valid_repository_components() {
    assert_eq!(project_name("My Project_2"), "my-project-2");
    assert_eq!(project_name("--x--"), "x");
    assert_eq!(project_name("日本"), "app");
    assert_eq!(project_name(""), "app");
}

#[test]
fn render_replaces_the_name_everywhere() {
    let files = render(&find("rust").unwrap(), "hello");
    let toml = &files
        .iter()
        .find(|f| f.path == Path::new("xplat.toml"))
        .unwrap()
        .contents;
    assert!(toml.contains("registry.example/hello:{version}"), "{toml}");
    assert!(toml.contains("BIN = \"hello\""), "{toml}");
    assert!(files.iter().all(|f| !f.contents.contains(NAME_PLACEHOLDER)));
}

#[test]
fn list_shows_every_template_on_its_own_line() {
    let list = render_list();
    assert_eq!(list.lines().count(), templates().len());
    assert!(list.starts_with("go      Go with CGO off"), "{list}");
}

#[test]
fn every_template_dockerfile_parses_without_warnings() {
    for t in templates() {
        let text = t.files[0].1;
        let df = crate::dockerfile::parse(text)
            .unwrap_or_else(|e| panic!("templates/{}/Dockerfile: {e}", t.name));
        assert!(df.warnings.is_empty(), "{}: {:?}", t.name, df.warnings);
        assert!(df.stages.len() >= 2, "{}: multi-stage", t.name);
        // The build stages run on the build platform; only the last is per target.
        for stage in &df.stages[..df.stages.len() - 1] {
            let platform = stage.platform.as_ref().map(|w| format!("{w:?}"));
            assert!(
                platform
                    .as_deref()
                    .is_some_and(|p| p.contains("$BUILDPLATFORM")),
                "{}: stage {:?} must be FROM --platform=$BUILDPLATFORM",
                t.name,
                stage.name
            );
        }
    }
}
