//! A temporary folder filled from a list of files (a build context for a test).

use std::path::{Path, PathBuf};

/// A temporary folder, removed on drop.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    /// A folder holding `files`: (relative path, content) pairs; parent folders are made.
    pub fn new(files: &[(&str, &str)]) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix("xplat-test-")
            .tempdir()
            .expect("create a temporary folder");
        let t = TestDir { dir };
        for (path, content) in files {
            t.write(path, content);
        }
        t
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `path()/rel`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `content` to `rel` (making parent folders); returns the full path.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        assert!(
            !rel.starts_with('/') && !rel.split('/').any(|c| c == ".."),
            "TestDir paths stay inside the folder: {rel}"
        );
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent folders");
        }
        std::fs::write(&p, content).expect("write test file");
        p
    }

    /// Reads `rel` as text.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).expect("read test file")
    }
}

/// Every path under `dir`, relative to it and sorted, with a file's content (`None` for a
/// folder): what a test compares before and after, or searches.
pub fn tree(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
                out.push((rel, None));
            } else {
                out.push((rel, Some(std::fs::read(&p).unwrap())));
            }
        }
    }
    out.sort();
    out
}
