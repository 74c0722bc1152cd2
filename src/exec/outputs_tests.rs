use super::*;

fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, name, *d).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, name, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A fake filesystem: `/out` (dir with `app`, `lib/x`), `/link` -> `/out/app`.
struct Fake;
impl SourceFs for Fake {
    fn read_dir<'a>(&'a self, _path: &'a str) -> BoxFuture<'a, FsResult<Vec<String>>> {
        async { Ok(vec![]) }.boxed()
    }
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<FsStat>>> {
        let kind = match path {
            "/out" => Some(PathKind::Dir),
            "/out/app" => Some(PathKind::File),
            "/link" => Some(PathKind::Symlink {
                target: "/out/app".into(),
            }),
            _ => None,
        };
        let r = kind.map(|kind| {
            fs_stat(PathStat {
                name: path.rsplit('/').next().unwrap().into(),
                size: 3,
                mode: 0o755,
                kind,
            })
        });
        async move { Ok(r) }.boxed()
    }
    fn archive<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Bytes>> {
        let t = match path {
            "/out" => tar_of(&[
                ("out/", None),
                ("out/app", Some(b"bin")),
                ("out/lib/", None),
                ("out/lib/x", Some(b"x")),
            ]),
            _ => tar_of(&[("app", Some(b"bin"))]),
        };
        async move { Ok(Bytes::from(t)) }.boxed()
    }
}

fn names(tar: &[u8]) -> Vec<String> {
    tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn records_roots_and_reads_them_back_like_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let cache = OutputCache::new(Some(dir.path().to_path_buf()));
    assert!(!cache.has_all("sha256:k", [&"/out".to_string()]));
    cache.record("sha256:k", "/out", &Fake).await.unwrap();
    cache.record("sha256:k", "/link", &Fake).await.unwrap();
    cache.record("sha256:k", "/nope", &Fake).await.unwrap();
    let roots = vec!["/out".to_string(), "/link".into(), "/nope".into()];
    assert!(cache.has_all("sha256:k", &roots));
    assert!(!cache.has_all("sha256:other", &roots));
    let files = cache.files("sha256:k", &roots).unwrap();
    assert!(matches!(
        files.lookup("/link").await.unwrap(),
        PathLookup::Found(PathStat {
            kind: PathKind::Symlink { .. },
            ..
        })
    ));
    assert!(matches!(
        files.lookup("/out/app").await.unwrap(),
        PathLookup::Found(PathStat {
            kind: PathKind::File,
            ..
        })
    ));
    assert_eq!(files.lookup("/nope").await.unwrap(), PathLookup::Missing);
    assert_eq!(
        files.lookup("/out/none").await.unwrap(),
        PathLookup::Missing
    );
    assert_eq!(names(&files.tar("/out").await.unwrap()).len(), 4);
    assert_eq!(
        names(&files.tar("/out/lib").await.unwrap()),
        ["lib", "lib/x"]
    );
    assert_eq!(names(&files.tar("/out/app").await.unwrap()), ["app"]);
    assert_eq!(
        SourceFs::read_dir(&files, "/out").await.unwrap(),
        ["app", "lib"]
    );
    assert!(files.lookup("/elsewhere").await.is_err());
}

#[test]
fn read_roots_stop_before_patterns() {
    assert_eq!(read_root("/out/app"), "/out/app");
    assert_eq!(read_root("out/*.so"), "/out");
    assert_eq!(read_root("/a/b*/c"), "/a");
    assert_eq!(read_root("*"), "/");
}

#[test]
fn cache_root_order() {
    let env = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        cache_root(&env(&[("XPLAT_CACHE_DIR", "/c"), ("HOME", "/h")])),
        Some(PathBuf::from("/c"))
    );
    assert_eq!(
        cache_root(&env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
        Some(PathBuf::from("/x/xplat"))
    );
    assert_eq!(
        cache_root(&env(&[("HOME", "/h")])),
        Some(PathBuf::from("/h/.cache/xplat"))
    );
    assert_eq!(cache_root(&env(&[])), None);
}
