//! What kind of remote source an ADD names: one rule for the engine and the assembler
//! (they disagreed on `git://`). BuildKit's `isURL` is `http://`/`https://`; its git
//! detection (`gitutil.ParseGitRef`) takes `git://`, `git@`, `ssh://` and http(s) URLs
//! whose path ends in `.git` (with an optional `#ref`). Git wins over URL.

/// Whether an ADD source is a git repository.
pub fn is_git(src: &str) -> bool {
    if src.starts_with("git@") || src.starts_with("git://") || src.starts_with("ssh://") {
        return true;
    }
    if !(src.starts_with("http://") || src.starts_with("https://")) {
        return false;
    }
    let without_ref = src.split('#').next().unwrap_or("");
    let path = without_ref.split('?').next().unwrap_or("");
    path.trim_end_matches('/').ends_with(".git")
}

/// Whether an ADD source is an http(s) URL to download (and not a git repository).
pub fn is_url(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && !is_git(src)
}

/// Whether an ADD source is remote (a URL or a git repository): never a context path.
pub fn is_remote(src: &str) -> bool {
    is_url(src) || is_git(src)
}

/// The file name a URL gives: the last segment of its path, without query or fragment.
pub fn url_file_name(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = after_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or("");
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_for_every_source_kind() {
        // (source, is_url, is_git)
        let table = [
            ("https://example.com/x.tar.gz", true, false),
            ("http://example.com/a?b=c", true, false),
            ("https://github.com/moby/buildkit.git", false, true),
            ("https://github.com/moby/buildkit.git#v0.10.1", false, true),
            ("git://github.com/moby/buildkit", false, true),
            ("git@github.com:moby/buildkit.git", false, true),
            ("ssh://git@host/repo", false, true),
            ("dir/x", false, false),
            ("file.git", false, false),
            ("ftp://host/x", false, false),
        ];
        for (src, url, git) in table {
            assert_eq!((is_url(src), is_git(src)), (url, git), "{src}");
            assert_eq!(is_remote(src), url || git, "{src}");
        }
    }

    #[test]
    fn file_names_from_urls() {
        assert_eq!(
            url_file_name("http://h/a/b.tar.gz?x=1#f").as_deref(),
            Some("b.tar.gz")
        );
        assert_eq!(url_file_name("http://h/foobar/").as_deref(), Some("foobar"));
        assert_eq!(url_file_name("http://h"), None);
        assert_eq!(url_file_name("http://h/"), None);
    }
}
