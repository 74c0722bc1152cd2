//! Registry credentials from the places users already keep them: containers'
//! `auth.json` (`REGISTRY_AUTH_FILE`, then `$XDG_RUNTIME_DIR/containers/auth.json`)
//! and Docker's `$DOCKER_CONFIG/config.json` (`credHelpers`, `credsStore`,
//! `auths`), with `docker-credential-<name> get` run as a subprocess.
//!
//! Every path and environment value is injected through [`AuthSources`]; this
//! module never reads the process environment by itself, so tests need no
//! `set_var`. A [`Credential`]'s `Debug` never shows its secret.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use super::error::{RegistryError, Result};
use super::redact::redact;
use super::reference::{DOCKER_HUB, DOCKER_HUB_AUTH_KEY};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (or a personal access token as the password).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: String,
    },
    /// An OAuth refresh token from `docker login` (`identitytoken`).
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"REDACTED")
                .finish(),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(REDACTED)"),
        }
    }
}

/// Where credentials may be found. Build it with [`AuthSources::from_env`]
/// in the CLI, or field by field in tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSources {
    /// `REGISTRY_AUTH_FILE`: a containers `auth.json`, read first.
    pub registry_auth_file: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`: `containers/auth.json` under it is read next.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// Docker's config folder (`$DOCKER_CONFIG`, else `$HOME/.docker`).
    pub docker_config_dir: Option<PathBuf>,
    /// Folder holding `docker-credential-*` helpers; `None` searches `PATH`.
    pub helper_dir: Option<PathBuf>,
}

impl AuthSources {
    /// Reads the locations from an environment lookup (pass `|k| std::env::var(k).ok()`).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        Self {
            registry_auth_file: non_empty("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: non_empty("XDG_RUNTIME_DIR"),
            docker_config_dir: non_empty("DOCKER_CONFIG")
                .or_else(|| non_empty("HOME").map(|h| h.join(".docker"))),
            helper_dir: None,
        }
    }

    /// Finds credentials for `registry` (and, in `auth.json`, the more specific
    /// `registry/repository` keys). `Ok(None)` means "go anonymous".
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Credential>> {
        let containers_files = self.registry_auth_file.iter().cloned().chain(
            self.xdg_runtime_dir
                .iter()
                .map(|d| d.join("containers/auth.json")),
        );
        for path in containers_files {
            if let Some(file) = read_config(&path)? {
                if let Some(c) = self.lookup_in_file(&file, &path, registry, repository)? {
                    return Ok(Some(c));
                }
            }
        }
        if let Some(dir) = &self.docker_config_dir {
            let path = dir.join("config.json");
            if let Some(file) = read_config(&path)? {
                return self.lookup_in_file(&file, &path, registry, repository);
            }
        }
        Ok(None)
    }

    fn lookup_in_file(
        &self,
        file: &ConfigFile,
        path: &Path,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credential>> {
        if let Some(helper) = file.cred_helpers.get(registry).or_else(|| {
            (registry == DOCKER_HUB)
                .then(|| file.cred_helpers.get(DOCKER_HUB_AUTH_KEY))
                .flatten()
        }) {
            return self.run_helper(helper, registry);
        }
        if let Some(store) = file.creds_store.as_deref().filter(|s| !s.is_empty()) {
            if let Some(c) = self.run_helper(store, registry)? {
                return Ok(Some(c));
            }
        }
        // Most specific key first: host/ns/repo, host/ns, host.
        let mut wanted: Vec<String> = Vec::new();
        let parts: Vec<&str> = repository.split('/').collect();
        for n in (1..=parts.len()).rev() {
            wanted.push(format!("{registry}/{}", parts[..n].join("/")));
        }
        wanted.push(registry.to_string());
        for key in wanted {
            let hit = file.auths.iter().find(|(k, _)| normalize_key(k) == key);
            if let Some((_, entry)) = hit {
                return entry.credential(path).map(Some);
            }
        }
        Ok(None)
    }

    fn run_helper(&self, helper: &str, registry: &str) -> Result<Option<Credential>> {
        let program = format!("docker-credential-{helper}");
        let program = match &self.helper_dir {
            Some(d) => d.join(&program),
            None => PathBuf::from(&program),
        };
        let server = if registry == DOCKER_HUB {
            DOCKER_HUB_AUTH_KEY
        } else {
            registry
        };
        let fail = |reason: String| RegistryError::CredentialHelper {
            helper: helper.to_string(),
            registry: registry.to_string(),
            reason,
        };
        let mut child = Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("starting {}: {e}", program.display())))?;
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(server.as_bytes())
            .map_err(|e| fail(format!("writing to helper: {e}")))?;
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("waiting for helper: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            // The helper protocol's "not found" answer.
            if stdout.contains("credentials not found") {
                return Ok(None);
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(fail(format!(
                "{}: {}",
                out.status,
                redact(stderr.trim()).chars().take(300).collect::<String>()
            )));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct HelperAnswer {
            #[serde(default)]
            username: String,
            #[serde(default)]
            secret: String,
        }
        // Never echo the answer: it holds the secret.
        let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|e| {
            fail(format!(
                "helper printed invalid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if answer.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if answer.username == "<token>" {
            Credential::IdentityToken(answer.secret)
        } else {
            Credential::Basic {
                username: answer.username,
                password: answer.secret,
            }
        }))
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthEntry {
    fn credential(&self, path: &Path) -> Result<Credential> {
        if let Some(t) = self.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Credential::IdentityToken(t.clone()));
        }
        if let Some(a) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let bad = |reason: &str| RegistryError::ParsingAuthFile {
                path: path.to_path_buf(),
                reason: reason.to_string(),
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|_| bad("an \"auth\" value is not valid base64"))?;
            let text = String::from_utf8(raw).map_err(|_| bad("an \"auth\" value is not UTF-8"))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| bad("an \"auth\" value is not base64 of USER:PASSWORD"))?;
            return Ok(Credential::Basic {
                username: u.to_string(),
                password: p.to_string(),
            });
        }
        Ok(Credential::Basic {
            username: self.username.clone().unwrap_or_default(),
            password: self.password.clone().unwrap_or_default(),
        })
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/` → `host:5000`.
fn normalize_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => match k.split_once('/') {
            Some(("index.docker.io" | "registry-1.docker.io", rest)) => {
                format!("{DOCKER_HUB}/{rest}")
            }
            _ => k.to_string(),
        },
    }
}

fn read_config(path: &Path) -> Result<Option<ConfigFile>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RegistryError::ReadingAuthFile {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    // Report the position only: serde's message can quote the secret.
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| RegistryError::ParsingAuthFile {
            path: path.to_path_buf(),
            reason: format!("invalid JSON at line {}, column {}", e.line(), e.column()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn basic(u: &str, p: &str) -> Option<Credential> {
        Some(Credential::Basic {
            username: u.into(),
            password: p.into(),
        })
    }

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn docker_config_auths_keys_and_identity_token() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "docker/config.json",
            &format!(
                r#"{{"auths":{{
                  "https://index.docker.io/v1/":{{"auth":"{}"}},
                  "localhost:5000":{{"auth":"{}"}},
                  "http://reg.example/":{{"username":"u3","password":"p3"}},
                  "acr.example":{{"auth":"","identitytoken":"tok"}}}}}}"#,
                b64("hubuser:hubpass"),
                b64("lu:lp:with:colons")
            ),
        );
        let s = AuthSources {
            docker_config_dir: Some(d.path().join("docker")),
            ..Default::default()
        };
        assert_eq!(
            s.lookup("docker.io", "library/alpine").unwrap(),
            basic("hubuser", "hubpass")
        );
        assert_eq!(
            s.lookup("localhost:5000", "app").unwrap(),
            basic("lu", "lp:with:colons")
        );
        assert_eq!(s.lookup("reg.example", "app").unwrap(), basic("u3", "p3"));
        assert_eq!(
            s.lookup("acr.example", "app").unwrap(),
            Some(Credential::IdentityToken("tok".into()))
        );
        assert_eq!(s.lookup("other.example", "app").unwrap(), None);
        let dbg = format!("{:?}", s.lookup("docker.io", "x/y").unwrap());
        assert!(!dbg.contains("hubpass") && dbg.contains("hubuser"), "{dbg}");
    }

    #[test]
    fn containers_auth_json_wins_and_matches_repository_keys() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "docker/config.json",
            &format!(
                r#"{{"auths":{{"reg.example":{{"auth":"{}"}}}}}}"#,
                b64("docker:d")
            ),
        );
        write(
            d.path(),
            "run/containers/auth.json",
            &format!(
                r#"{{"auths":{{"reg.example/team/app":{{"auth":"{}"}},"reg.example":{{"auth":"{}"}}}}}}"#,
                b64("repo:r"),
                b64("host:h")
            ),
        );
        let mut s = AuthSources {
            xdg_runtime_dir: Some(d.path().join("run")),
            docker_config_dir: Some(d.path().join("docker")),
            ..Default::default()
        };
        assert_eq!(
            s.lookup("reg.example", "team/app").unwrap(),
            basic("repo", "r")
        );
        assert_eq!(
            s.lookup("reg.example", "team/other").unwrap(),
            basic("host", "h")
        );
        let f = write(
            d.path(),
            "explicit.json",
            &format!(
                r#"{{"auths":{{"reg.example":{{"auth":"{}"}}}}}}"#,
                b64("explicit:e")
            ),
        );
        s.registry_auth_file = Some(f);
        assert_eq!(
            s.lookup("reg.example", "team/other").unwrap(),
            basic("explicit", "e")
        );
    }

    #[test]
    fn helpers_run_as_subprocesses() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        // A helper that answers for one server and says "not found" otherwise.
        let script = r#"#!/bin/sh
read server
case "$server" in
  reg.example) echo '{"ServerURL":"reg.example","Username":"hu","Secret":"hs"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"<token>","Secret":"idt"}' ;;
  broken.example) echo 'boom Basic c2VjcmV0' >&2; exit 2 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
"#;
        for name in ["docker-credential-fake", "docker-credential-store"] {
            let p = write(&bin, name, script);
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        write(
            d.path(),
            "docker/config.json",
            &format!(
                r#"{{"credsStore":"store","credHelpers":{{"reg.example":"fake","broken.example":"fake"}},
                   "auths":{{"file.example":{{"auth":"{}"}}}}}}"#,
                b64("f:f")
            ),
        );
        let s = AuthSources {
            docker_config_dir: Some(d.path().join("docker")),
            helper_dir: Some(bin),
            ..Default::default()
        };
        assert_eq!(s.lookup("reg.example", "a").unwrap(), basic("hu", "hs"));
        assert_eq!(
            s.lookup("docker.io", "library/a").unwrap(),
            Some(Credential::IdentityToken("idt".into()))
        );
        // The store says "not found": fall back to the file's auths.
        assert_eq!(s.lookup("file.example", "a").unwrap(), basic("f", "f"));
        let err = s.lookup("broken.example", "a").unwrap_err().to_string();
        assert!(
            err.contains("docker-credential-fake") && !err.contains("c2VjcmV0"),
            "{err}"
        );
    }

    #[test]
    fn bad_files_report_position_not_content() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "c/config.json",
            r#"{"auths":{"r":{"auth":"s3cr3t-not-base64!"}}}"#,
        );
        let s = AuthSources {
            docker_config_dir: Some(d.path().join("c")),
            ..Default::default()
        };
        let e = s.lookup("r", "a").unwrap_err().to_string();
        assert!(e.contains("base64") && !e.contains("s3cr3t"), "{e}");
        write(
            d.path(),
            "c/config.json",
            r#"{"auths":{"r":{"auth": s3cr3t}}}"#,
        );
        let e = s.lookup("r", "a").unwrap_err().to_string();
        assert!(e.contains("line 1") && !e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn from_env_prefers_docker_config_over_home() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            "XDG_RUNTIME_DIR" => Some("/run/user/1".to_string()),
            _ => None,
        };
        let s = AuthSources::from_env(env);
        assert_eq!(s.docker_config_dir, Some(PathBuf::from("/home/u/.docker")));
        assert_eq!(s.xdg_runtime_dir, Some(PathBuf::from("/run/user/1")));
        let s = AuthSources::from_env(|k| (k == "DOCKER_CONFIG").then(|| "/cfg".to_string()));
        assert_eq!(s.docker_config_dir, Some(PathBuf::from("/cfg")));
    }
}
