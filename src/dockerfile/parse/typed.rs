//! One instruction's raw node → its typed [`Instruction`]: arguments, flags checked per
//! instruction, HEALTHCHECK's options; errors located at the offending word.

use super::*;

/// Converts one raw instruction node (not FROM) to its typed form.
pub(super) fn instruction(
    node: &Node,
    span: Span,
    src: &Source,
) -> Result<Instruction, ParseError> {
    let lower = node.value.to_ascii_lowercase();
    let kw = lower.to_ascii_uppercase();
    let at = src.keyword(span);
    let no_flags = |node: &Node| flags_for(&kw, node, span, src, &[]);
    Ok(match lower.as_str() {
        "run" => {
            let f = flags_for(
                &kw,
                node,
                span,
                src,
                &[
                    ("mount", Kind::List),
                    ("network", Kind::Text),
                    ("security", Kind::Text),
                ],
            )?;
            let a = args(node);
            if a.is_empty() && !node.json {
                return Err(missing(&kw, "a command", at));
            }
            let mounts = f
                .list("mount")
                .iter()
                .map(|m| {
                    let at = match src.find(span, m, false) {
                        found if found.line > span.start_line || found.column > at.column => found,
                        _ => src.find(span, "--mount", false),
                    };
                    parse_mount(m, at)
                })
                .collect::<Result<_, _>>()?;
            let network = match f.text("network").as_deref() {
                None => None,
                Some("default") => Some(NetworkMode::Default),
                Some("none") => Some(NetworkMode::None),
                Some("host") => Some(NetworkMode::Host),
                Some(other) => {
                    return Err(ParseError::InvalidFlagValue {
                        flag: "network".into(),
                        reason: format!("unsupported network mode {other:?} (default, none, host)"),
                        location: src.find(span, "--network", false),
                    })
                }
            };
            let security = match f.text("security").as_deref() {
                None => None,
                Some("sandbox") => Some(SecurityMode::Sandbox),
                Some("insecure") => Some(SecurityMode::Insecure),
                Some(other) => {
                    return Err(ParseError::InvalidFlagValue {
                        flag: "security".into(),
                        reason: format!("unsupported security mode {other:?} (sandbox, insecure)"),
                        location: src.find(span, "--security", false),
                    })
                }
            };
            Instruction::Run(Run {
                command: command(a, node.json),
                heredocs: node.heredocs.clone(),
                mounts,
                network,
                security,
            })
        }
        "copy" | "add" => {
            let mut allowed = vec![
                ("chown", Kind::Text),
                ("chmod", Kind::Text),
                ("link", Kind::Bool),
                ("exclude", Kind::List),
            ];
            if lower == "copy" {
                allowed.extend([("from", Kind::Text), ("parents", Kind::Bool)]);
            } else {
                allowed.extend([
                    ("checksum", Kind::Text),
                    ("keep-git-dir", Kind::Bool),
                    ("unpack", Kind::Bool),
                ]);
            }
            let f = flags_for(&kw, node, span, src, &allowed)?;
            let mut a = args(node);
            if a.len() < 2 {
                return Err(missing(
                    &kw,
                    "at least two arguments: one or more sources and a destination",
                    at,
                ));
            }
            let dest = a.pop().unwrap_or_default();
            if lower == "copy" {
                Instruction::Copy(Copy {
                    sources: a,
                    dest,
                    from: f.text("from"),
                    chown: f.text("chown"),
                    chmod: f.text("chmod"),
                    link: f.flag("link").unwrap_or(false),
                    parents: f.flag("parents").unwrap_or(false),
                    exclude: f.list("exclude"),
                    heredocs: node.heredocs.clone(),
                })
            } else {
                Instruction::Add(Add {
                    sources: a,
                    dest,
                    chown: f.text("chown"),
                    chmod: f.text("chmod"),
                    link: f.flag("link").unwrap_or(false),
                    exclude: f.list("exclude"),
                    checksum: f.text("checksum"),
                    keep_git_dir: f.flag("keep-git-dir").unwrap_or(false),
                    unpack: f.flag("unpack"),
                    heredocs: node.heredocs.clone(),
                })
            }
        }
        "env" | "label" => {
            no_flags(node)?;
            if node.next.is_empty() {
                return Err(missing(&kw, "at least one name=value pair", at));
            }
            let kv = key_values(node);
            if kv.iter().any(|kv| kv.key.is_empty()) {
                return Err(invalid(&kw, "names can not be blank", at));
            }
            if lower == "env" {
                Instruction::Env(kv)
            } else {
                Instruction::Label(kv)
            }
        }
        "arg" => {
            no_flags(node)?;
            let a = args(node);
            if a.is_empty() {
                return Err(missing(&kw, "at least one name[=default]", at));
            }
            let mut decls = Vec::with_capacity(a.len());
            for word in a {
                let (name, default) = match word.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (word.clone(), None),
                };
                if name.is_empty() {
                    return Err(invalid(
                        &kw,
                        format!("missing name in {word:?}"),
                        src.find(span, &word, false),
                    ));
                }
                decls.push(ArgDecl { name, default });
            }
            Instruction::Arg(decls)
        }
        "workdir" => Instruction::Workdir(one_string(&kw, node, span, src, "a path")?),
        "user" => Instruction::User(one_string(&kw, node, span, src, "a user[:group]")?),
        "stopsignal" => Instruction::Stopsignal(one_string(&kw, node, span, src, "a signal")?),
        "maintainer" => Instruction::Maintainer(one_string(&kw, node, span, src, "a name")?),
        "expose" | "volume" => {
            no_flags(node)?;
            let a = args(node);
            if a.is_empty() {
                return Err(missing(&kw, "at least one argument", at));
            }
            if lower == "expose" {
                Instruction::Expose(a)
            } else {
                if a.iter().any(|v| v.trim().is_empty()) {
                    return Err(invalid(&kw, "a volume cannot be an empty string", at));
                }
                Instruction::Volume(a)
            }
        }
        "cmd" | "entrypoint" => {
            no_flags(node)?;
            let c = command(args(node), node.json);
            if lower == "cmd" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "shell" => {
            no_flags(node)?;
            if !node.json {
                return Err(invalid(&kw, "SHELL requires the arguments to be in JSON form: SHELL [\"executable\", \"parameters\"]", at));
            }
            let a = args(node);
            if a.is_empty() {
                return Err(missing(&kw, "at least one argument", at));
            }
            Instruction::Shell(a)
        }
        "healthcheck" => Instruction::Healthcheck(healthcheck(node, span, src)?),
        "onbuild" => {
            no_flags(node)?;
            let Some(inner) = node.next.first().and_then(|w| w.children.first()) else {
                return Err(missing(&kw, "an instruction to run in child builds", at));
            };
            let inner_kw = inner.value.to_ascii_lowercase();
            let inner_at = src.find(span, &inner.value, false);
            match inner_kw.as_str() {
                "onbuild" | "from" | "maintainer" => {
                    return Err(ParseError::InvalidOnbuildTrigger {
                        instruction: inner_kw.to_ascii_uppercase(),
                        location: inner_at,
                    })
                }
                k if !KEYWORDS.contains(&k) => return Err(unknown(&inner.value, inner_at)),
                _ => {}
            }
            // Heredoc bodies of a trigger are collected on the ONBUILD node.
            let inner = Node {
                heredocs: node.heredocs.clone(),
                ..inner.clone()
            };
            let parsed = instruction(&inner, span, src)?;
            let mut original = split_ws(node.original.trim(), Some(2))
                .get(1)
                .map_or(String::new(), |s| s.trim().to_string());
            // The image config keeps the trigger as text, bodies included.
            for h in &node.heredocs {
                original.push('\n');
                original.push_str(&h.content);
                original.push_str(&h.name);
            }
            Instruction::Onbuild(Onbuild {
                instruction: Box::new(parsed),
                original,
            })
        }
        _ => return Err(unknown(&node.value, at)),
    })
}

fn unknown(name: &str, location: Location) -> ParseError {
    ParseError::UnknownInstruction {
        name: name.to_string(),
        suggestion: suggest(name, KEYWORDS).map(|s| s.to_ascii_uppercase()),
        location,
    }
}

fn healthcheck(node: &Node, span: Span, src: &Source) -> Result<Healthcheck, ParseError> {
    let kw = "HEALTHCHECK";
    let f = flags_for(
        kw,
        node,
        span,
        src,
        &[
            ("interval", Kind::Text),
            ("timeout", Kind::Text),
            ("start-period", Kind::Text),
            ("start-interval", Kind::Text),
            ("retries", Kind::Text),
        ],
    )?;
    let mut a = args(node).into_iter();
    let Some(typ) = a.next() else {
        return Err(missing(kw, "CMD <command> or NONE", src.keyword(span)));
    };
    let rest: Vec<String> = a.collect();
    match typ.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !rest.is_empty() {
                return Err(invalid(
                    kw,
                    "HEALTHCHECK NONE takes no arguments",
                    src.find(span, &rest[0], false),
                ));
            }
            Ok(Healthcheck::None)
        }
        "CMD" => {
            if rest.is_empty() || (!node.json && rest[0].is_empty()) {
                return Err(missing(
                    kw,
                    "a command after CMD",
                    src.find(span, &typ, false),
                ));
            }
            let duration = |name: &str| -> Result<Option<std::time::Duration>, ParseError> {
                let Some(v) = f.text(name) else {
                    return Ok(None);
                };
                let d = parse_go_duration(&v).map_err(|reason| ParseError::InvalidFlagValue {
                    flag: name.to_string(),
                    reason: reason.to_string(),
                    location: src.find(span, &format!("--{name}"), false),
                })?;
                if !d.is_zero() && d < std::time::Duration::from_millis(1) {
                    return Err(ParseError::InvalidFlagValue {
                        flag: name.to_string(),
                        reason: format!("{v:?} cannot be less than 1ms"),
                        location: src.find(span, &format!("--{name}"), false),
                    });
                }
                Ok(Some(d))
            };
            let retries = match f.text("retries") {
                None => None,
                Some(v) => Some(v.parse::<u32>().map_err(|_| ParseError::InvalidFlagValue {
                    flag: "retries".into(),
                    reason: format!("expected a non-negative integer, got {v:?}"),
                    location: src.find(span, "--retries", false),
                })?),
            };
            Ok(Healthcheck::Cmd {
                test: command(rest, node.json),
                interval: duration("interval")?,
                timeout: duration("timeout")?,
                start_period: duration("start-period")?,
                start_interval: duration("start-interval")?,
                retries,
            })
        }
        other => Err(invalid(
            kw,
            format!("unknown type {other:?} in HEALTHCHECK (try CMD)"),
            src.find(span, &typ, false),
        )),
    }
}
