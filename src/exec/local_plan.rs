//! A stand-in for the planner (`crate::plan`, being written in parallel): derives the
//! executor's jobs from the Dockerfile. One job per (stage, run platform, values of the
//! ARGs the stage declares, inputs); a job equal for several targets is made once and
//! serves them all. Pure. To be replaced by an adapter from `plan::BuildPlan`.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Base, ExecError, ExecJob, Result};
use crate::dockerfile::expand::Expander;
use crate::dockerfile::{Dockerfile, Instruction};
use crate::platform::{ArgRole, Catalog, Platform};

/// The jobs of a build and, per target platform (in `--platform` order), its final job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalPlan {
    /// Jobs, dependencies first.
    pub jobs: Vec<ExecJob>,
    /// Index of the job producing each target.
    pub targets: Vec<usize>,
}

/// The automatic platform ARGs (BuildKit's eight plus the catalog's `TARGET_*`/`BUILD_*`).
pub fn automatic_args(
    target: &Platform,
    build: &Platform,
    catalog: &Catalog,
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (prefix, p) in [("TARGET", target), ("BUILD", build)] {
        m.insert(format!("{prefix}PLATFORM"), p.format());
        m.insert(format!("{prefix}OS"), p.os.clone());
        m.insert(format!("{prefix}ARCH"), p.architecture.clone());
        m.insert(format!("{prefix}VARIANT"), p.variant.clone());
    }
    if let Some(spec) = catalog.get(target) {
        m.extend(spec.build_args(ArgRole::Target));
    }
    if let Some(spec) = catalog.get(build) {
        m.extend(spec.build_args(ArgRole::Build));
    }
    m
}

/// Plans `df` for each platform, building `target` (or the last stage).
pub fn plan(
    df: &Dockerfile,
    platforms: &[Platform],
    build_platform: &Platform,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
    catalog: &Catalog,
) -> Result<LocalPlan> {
    let last = df.stages.len().saturating_sub(1);
    let target_idx = match target {
        Some(t) => df
            .stage(t)
            .map(|s| s.index)
            .ok_or_else(|| ExecError::UnknownTarget { name: t.into() })?,
        None => last,
    };
    let escape = df.directives.escape;
    let mut p = Planner {
        df,
        build_platform,
        jobs: Vec::new(),
        by_identity: BTreeMap::new(),
        escape,
    };
    let mut targets = Vec::new();
    for tp in platforms {
        // Global scope: automatic ARGs, then the meta ARGs in order (--build-arg wins).
        let mut global = automatic_args(tp, build_platform, catalog);
        for a in &df.meta_args {
            let v = match (build_args.get(&a.node.name), &a.node.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => expand(escape, d, &global, "global", a.span.start_line)?,
                (None, None) => match global.get(&a.node.name) {
                    Some(v) => v.clone(),
                    None => continue,
                },
            };
            global.insert(a.node.name.clone(), v);
        }
        let mut values = global.clone();
        values.extend(build_args.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut memo = BTreeMap::new();
        let idx = p.job_for(target_idx, tp, &global, &values, &mut memo, &mut Vec::new())?;
        targets.push(idx);
    }
    name_jobs(&mut p.jobs);
    Ok(LocalPlan {
        jobs: p.jobs,
        targets,
    })
}

struct Planner<'a> {
    df: &'a Dockerfile,
    build_platform: &'a Platform,
    jobs: Vec<ExecJob>,
    by_identity: BTreeMap<String, usize>,
    escape: char,
}

fn expand(
    escape: char,
    word: &str,
    env: &BTreeMap<String, String>,
    stage: &str,
    line: usize,
) -> Result<String> {
    Expander::new(escape)
        .expand_word(word, env)
        .map_err(|source| ExecError::Expand {
            stage: stage.into(),
            line,
            word: word.into(),
            source: Box::new(source),
        })
}

impl Planner<'_> {
    fn job_for(
        &mut self,
        idx: usize,
        tp: &Platform,
        global: &BTreeMap<String, String>,
        values: &BTreeMap<String, String>,
        memo: &mut BTreeMap<usize, usize>,
        visiting: &mut Vec<usize>,
    ) -> Result<usize> {
        if let Some(j) = memo.get(&idx) {
            return Ok(*j);
        }
        let stage = &self.df.stages[idx];
        let sname = stage.name.clone().unwrap_or_else(|| idx.to_string());
        if visiting.contains(&idx) {
            return Err(ExecError::Cycle { stage: sname });
        }
        visiting.push(idx);
        let line = stage.span.start_line;
        let explicit = match &stage.platform {
            Some(w) => Some({
                let v = expand(self.escape, w, global, &sname, line)?;
                Platform::parse_with_host(&v, self.build_platform)
                    .map_err(|_| ExecError::BadPlatform {
                        stage: sname.clone(),
                        value: v,
                    })?
                    .normalized()
            }),
            None => None,
        };
        let base_word = expand(self.escape, &stage.base, global, &sname, line)?;
        let mut deps = Vec::new();
        let base = if base_word.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else {
            match self.stage_index(&base_word, idx) {
                Some(i) => {
                    let j = self.job_for(i, tp, global, values, memo, visiting)?;
                    deps.push(j);
                    Base::Job(j)
                }
                None => Base::Image(base_word),
            }
        };
        // FROM another stage without --platform runs where that stage ran (BuildKit keeps
        // the platform of the base state), so `FROM base AS build` stays native.
        let run_platform = match (explicit, &base) {
            (Some(p), _) => p,
            (None, Base::Job(j)) => self.jobs[*j].platform.clone(),
            (None, _) => tp.clone(),
        };
        let mut from_jobs = BTreeMap::new();
        let mut declared = BTreeMap::new();
        for s in &stage.instructions {
            match &s.node {
                Instruction::Copy(c) => {
                    if let Some(f) = &c.from {
                        let f = expand(self.escape, f, global, &sname, s.span.start_line)?;
                        if let Some(i) = self.stage_index(&f, idx) {
                            let j = self.job_for(i, tp, global, values, memo, visiting)?;
                            if !deps.contains(&j) {
                                deps.push(j);
                            }
                            from_jobs.insert(f, j);
                        }
                    }
                }
                Instruction::Arg(decls) => {
                    for d in decls {
                        if let Some(v) = values.get(&d.name) {
                            declared.insert(d.name.clone(), v.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        visiting.pop();
        #[derive(Serialize)]
        struct Identity<'b> {
            stage: usize,
            platform: &'b Platform,
            base: &'b Base,
            dep_keys: Vec<&'b str>,
            args: &'b BTreeMap<String, String>,
        }
        let dep_keys: Vec<&str> = deps.iter().map(|d| self.jobs[*d].key.as_str()).collect();
        let ident = Identity {
            stage: idx,
            platform: &run_platform,
            base: &match &base {
                Base::Job(j) => Base::Image(self.jobs[*j].key.clone()),
                b => b.clone(),
            },
            dep_keys,
            args: &declared,
        };
        let key = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(
                serde_json::to_vec(&ident).expect("identity")
            ))
        );
        let j = match self.by_identity.get(&key) {
            Some(j) => {
                if !self.jobs[*j].serves.contains(tp) {
                    self.jobs[*j].serves.push(tp.clone());
                }
                *j
            }
            None => {
                self.jobs.push(ExecJob {
                    id: String::new(),
                    stage: sname,
                    platform: run_platform,
                    serves: vec![tp.clone()],
                    base,
                    steps: stage.instructions.clone(),
                    arg_values: declared,
                    deps,
                    from_jobs,
                    key: key.clone(),
                    escape: self.escape,
                });
                self.by_identity.insert(key, self.jobs.len() - 1);
                self.jobs.len() - 1
            }
        };
        memo.insert(idx, j);
        Ok(j)
    }

    /// A stage named `name` (or with that index) defined before stage `before`.
    fn stage_index(&self, name: &str, before: usize) -> Option<usize> {
        self.df.stage(name).map(|s| s.index).filter(|i| *i < before)
    }
}

/// Ids: `stage` when unique, else `stage@run-platform`, else `stage@run→target`.
fn name_jobs(jobs: &mut [ExecJob]) {
    let names: Vec<(String, String, String)> = jobs
        .iter()
        .map(|j| {
            let serves: Vec<String> = j.serves.iter().map(|p| p.format()).collect();
            (j.stage.clone(), j.platform.format(), serves.join(","))
        })
        .collect();
    for (i, j) in jobs.iter_mut().enumerate() {
        let (stage, run, serves) = &names[i];
        let same_stage = names.iter().filter(|n| &n.0 == stage).count();
        let same_run = names
            .iter()
            .filter(|n| &n.0 == stage && &n.1 == run)
            .count();
        j.id = if same_stage == 1 {
            stage.clone()
        } else if same_run == 1 {
            format!("{stage}@{run}")
        } else {
            format!("{stage}@{run}→{serves}")
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap().normalized()
    }

    fn plan_of(df: &str, platforms: &[&str], target: Option<&str>) -> LocalPlan {
        let df = parse(df).unwrap();
        let ps: Vec<Platform> = platforms.iter().map(|s| p(s)).collect();
        plan(
            &df,
            &ps,
            &p("linux/amd64"),
            target,
            &BTreeMap::new(),
            &Catalog::embedded(),
        )
        .unwrap()
    }

    #[test]
    fn a_stage_not_using_target_args_is_shared() {
        let lp = plan_of(
            "ARG BUILDPLATFORM\nFROM --platform=$BUILDPLATFORM base AS deps\nRUN fetch\n\
             FROM deps AS build\nARG TARGETARCH\nRUN make $TARGETARCH\n\
             FROM scratch\nCOPY --from=build /out /out\n",
            &["linux/amd64", "linux/arm64"],
            None,
        );
        let deps: Vec<_> = lp.jobs.iter().filter(|j| j.stage == "deps").collect();
        assert_eq!(deps.len(), 1, "deps shared: {:#?}", lp.jobs);
        assert_eq!(deps[0].serves.len(), 2);
        assert_eq!(deps[0].platform, p("linux/amd64"));
        let builds: Vec<_> = lp.jobs.iter().filter(|j| j.stage == "build").collect();
        assert_eq!(builds.len(), 2);
        assert!(builds.iter().all(|b| b.platform == p("linux/amd64")));
        assert_eq!(lp.targets.len(), 2);
        assert_ne!(lp.targets[0], lp.targets[1]);
        assert_eq!(lp.jobs[lp.targets[1]].platform, p("linux/arm64"));
        // Dependencies come first.
        for (i, j) in lp.jobs.iter().enumerate() {
            assert!(j.deps.iter().all(|d| *d < i));
        }
    }

    #[test]
    fn target_selects_stage_and_unknown_target_errors() {
        let lp = plan_of(
            "FROM a AS one\nRUN x\nFROM b AS two\n",
            &["linux/amd64"],
            Some("one"),
        );
        assert_eq!(lp.jobs.len(), 1);
        assert_eq!(lp.jobs[0].base, Base::Image("a".into()));
        let df = parse("FROM a AS one\n").unwrap();
        let err = plan(
            &df,
            &[p("linux/amd64")],
            &p("linux/amd64"),
            Some("nope"),
            &BTreeMap::new(),
            &Catalog::embedded(),
        );
        assert!(matches!(err, Err(ExecError::UnknownTarget { .. })));
    }

    #[test]
    fn meta_args_expand_in_from_and_build_args_override() {
        let df = parse("ARG IMG=base:1\nFROM ${IMG}\nARG X=d\n").unwrap();
        let args = BTreeMap::from([
            ("IMG".to_string(), "other:2".to_string()),
            ("X".into(), "given".into()),
        ]);
        let lp = plan(
            &df,
            &[p("linux/arm64")],
            &p("linux/amd64"),
            None,
            &args,
            &Catalog::embedded(),
        )
        .unwrap();
        assert_eq!(lp.jobs[0].base, Base::Image("other:2".into()));
        assert_eq!(
            lp.jobs[0].arg_values.get("X").map(String::as_str),
            Some("given")
        );
    }
}
