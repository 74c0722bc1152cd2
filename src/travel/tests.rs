use super::*;
use crate::registry::ClientOptions;

const KEY_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ROOT: &str = "1ef637b7085347891f997bd23c559309bc5c1e3f512528103e4a713a2367d713";

fn client() -> RegistryClient {
    RegistryClient::new(ClientOptions::default()).unwrap()
}

/// An output-cache folder holding a recording for each of `keys`.
fn outputs_with(keys: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for k in keys {
        let dir = d.path().join(k.trim_start_matches("sha256:"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{ROOT}.json")),
            format!("{{\"k\":\"{k}\"}}"),
        )
        .unwrap();
        std::fs::write(dir.join(format!("{ROOT}.tar")), vec![7u8; 4096]).unwrap();
    }
    d
}

fn keys(k: &[&str]) -> BTreeSet<String> {
    k.iter().map(|s| s.to_string()).collect()
}

fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for d in std::fs::read_dir(dir).unwrap().flatten() {
        if d.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            out.push((
                format!(
                    "{}/{}",
                    d.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                ),
                std::fs::read(f.path()).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn specs_in_buildx_words() {
    let to = parse_to("type=local,dest=/c,mode=min").unwrap();
    assert_eq!(to.at, Location::Local("/c".into()));
    assert!(to.ignore_error);
    assert!(
        !parse_to("type=registry,ref=r.example/c:1,ignore-error=false")
            .unwrap()
            .ignore_error
    );
    assert!(matches!(
        parse_from("r.example/c:1").unwrap(),
        Location::Registry(_)
    ));
    assert_eq!(
        parse_from("type=local,src=d").unwrap(),
        Location::Local("d".into())
    );
    assert_eq!(
        parse_to("type=local,dest=/c,mode=max").unwrap().mode,
        Mode::Max
    );
    assert_eq!(parse_to("type=local,dest=/c").unwrap().mode, Mode::Min);
    assert!(parse_to("type=local,dest=/c,mode=all")
        .unwrap_err()
        .reason
        .contains("mode=all"));
    assert!(parse_to("type=gha")
        .unwrap_err()
        .reason
        .contains("type=gha"));
    assert!(parse_to("type=local")
        .unwrap_err()
        .reason
        .contains("dest=DIR"));
    assert!(parse_from("type=local,dest=x")
        .unwrap_err()
        .reason
        .contains("src=DIR"));
}

#[tokio::test]
async fn a_local_cache_round_trips_only_this_builds_keys_and_a_second_export_writes_nothing() {
    let outputs = outputs_with(&[KEY_A, KEY_B]);
    let to = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let at = Location::Local(to.path().join("cache"));
    let (keys_a, registry) = (keys(&[KEY_A]), client());
    let export_a = || export(&at, outputs.path(), &keys_a, &[], &registry, work.path());
    let first = export_a().await.unwrap();
    assert_eq!(first.entries, 1);
    assert!(first.bytes > 4096);
    let again = export_a().await.unwrap();
    assert_eq!(again.bytes, 0, "an unchanged cache writes no blob");
    // The layout is an OCI index whose entries carry their key.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(to.path().join("cache/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["manifests"][0]["annotations"][KEY_ANNOTATION], KEY_A);
    assert_eq!(index["manifests"][0]["artifactType"], ARTIFACT_TYPE);

    let fresh = tempfile::tempdir().unwrap();
    let got = import(&at, fresh.path(), &client()).await.unwrap();
    assert_eq!((got.entries, got.present, got.skipped.len()), (1, 0, 0));
    let want: Vec<_> = read_tree(outputs.path())
        .into_iter()
        .filter(|(p, _)| p.starts_with(KEY_A.trim_start_matches("sha256:")))
        .collect();
    assert_eq!(read_tree(fresh.path()), want);
    let twice = import(&at, fresh.path(), &client()).await.unwrap();
    assert_eq!((twice.entries, twice.present), (0, 1));
}

#[tokio::test]
async fn a_corrupt_blob_is_skipped_and_leaves_nothing() {
    let outputs = outputs_with(&[KEY_A]);
    let to = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let at = Location::Local(to.path().to_path_buf());
    export(
        &at,
        outputs.path(),
        &keys(&[KEY_A]),
        &[],
        &client(),
        work.path(),
    )
    .await
    .unwrap();
    // Flip a byte of the entry's layer.
    let blobs = to.path().join("blobs/sha256");
    for f in std::fs::read_dir(&blobs).unwrap().flatten() {
        let mut b = std::fs::read(f.path()).unwrap();
        if b.len() > 4096 {
            b[600] ^= 1;
            std::fs::write(f.path(), b).unwrap();
        }
    }
    let fresh = tempfile::tempdir().unwrap();
    let got = import(&at, fresh.path(), &client()).await.unwrap();
    assert_eq!(got.entries, 0);
    assert!(
        got.skipped[0].contains("does not match"),
        "{:?}",
        got.skipped
    );
    assert!(read_tree(fresh.path()).is_empty());
}

#[test]
fn entry_names_are_flat_and_known() {
    assert!(is_entry_file(&format!("{ROOT}.tar")));
    assert!(!is_entry_file("../x.tar"));
    assert!(!is_entry_file(&format!("a/{ROOT}.tar")));
    assert!(!is_entry_file(&format!("{ROOT}.sh")));
}

#[test]
fn an_unreadable_source_is_an_error_for_the_caller_to_warn_about() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = rt
        .block_on(import(
            &Location::Local("/nonexistent/xplat-cache".into()),
            Path::new("/tmp"),
            &client(),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("index.json"), "{err}");
}
