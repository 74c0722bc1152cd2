//! Step cache keys. A step's result is committed with label
//! `xplat.cache.key=<key>`; the key covers everything the step's result depends on:
//! the job key, the parent image, the instruction with the state it runs in (ENV, ARGs,
//! USER, WORKDIR, SHELL) and the content hash of what it reads (context files, another
//! image). A hit reuses the image without creating a container.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::config::State;
use crate::dockerfile::Instruction;

/// Everything a step's key is computed from.
#[derive(Debug, Serialize)]
pub struct StepInputs<'a> {
    /// The job's key.
    pub job_key: &'a str,
    /// The parent image id.
    pub parent: &'a str,
    /// The instruction, as the planner expanded it.
    pub instruction: &'a Instruction,
    /// The env, ARGs in scope, user, workdir and shell it runs with.
    pub env: &'a [String],
    /// ARGs in scope, sorted.
    pub args: Vec<(&'a str, &'a str)>,
    /// USER.
    pub user: Option<&'a str>,
    /// WORKDIR.
    pub workdir: Option<&'a str>,
    /// SHELL.
    pub shell: Vec<String>,
    /// Content hash of what the step reads (context files, another image's id), or "".
    pub content: &'a str,
}

impl<'a> StepInputs<'a> {
    /// The inputs of `instruction` run in `state` on top of `parent`.
    pub fn new(
        job_key: &'a str,
        parent: &'a str,
        instruction: &'a Instruction,
        state: &'a State,
        args: &'a BTreeMap<String, String>,
        content: &'a str,
    ) -> StepInputs<'a> {
        StepInputs {
            job_key,
            parent,
            instruction,
            env: &state.config.env,
            args: args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            user: state.config.user.as_deref(),
            workdir: state.config.working_dir.as_deref(),
            shell: state.shell(),
            content,
        }
    }

    /// `sha256:<hex>` of the canonical JSON of the inputs.
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).expect("step inputs serialize");
        format!("sha256:{}", hex::encode(Sha256::digest(&json)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;
    use crate::engine::ImageConfig;

    fn key_of(df: &str, parent: &str, content: &str, env: &[&str]) -> String {
        key_with_args(df, parent, content, env, &BTreeMap::new())
    }

    fn key_with_args(
        df: &str,
        parent: &str,
        content: &str,
        env: &[&str],
        args: &BTreeMap<String, String>,
    ) -> String {
        let df = parse(&format!("FROM scratch\n{df}")).unwrap();
        let mut st = State::new(ImageConfig::default(), "0");
        st.config.env = env.iter().map(|s| s.to_string()).collect();
        StepInputs::new(
            "job",
            parent,
            &df.stages[0].instructions[0].node,
            &st,
            args,
            content,
        )
        .key()
    }

    #[test]
    fn key_changes_with_each_input_and_is_stable() {
        let k = key_of("RUN make", "p1", "", &[]);
        assert_eq!(k, key_of("RUN make", "p1", "", &[]));
        assert!(k.starts_with("sha256:") && k.len() == 71);
        assert_ne!(k, key_of("RUN make all", "p1", "", &[]));
        assert_ne!(k, key_of("RUN make", "p2", "", &[]));
        assert_ne!(k, key_of("RUN make", "p1", "sha256:x", &[]));
        assert_ne!(k, key_of("RUN make", "p1", "", &["A=1"]));
        let arch = BTreeMap::from([("TARGETARCH".to_string(), "arm64".to_string())]);
        assert_ne!(k, key_with_args("RUN make", "p1", "", &[], &arch));
    }
}
