//! Planning stage: parameters. Collects each node's parameters as written (with spans),
//! applies `--set` overrides, looks the operator up and validates every parameter against its
//! `ParamSpec`s (unknown names with a suggestion, types, ranges, missing ones).

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::config::{GroupDecl, MAX_TIMES, NodeDecl, RESERVED_NODE_KEYS, Sp};
use crate::error::{ConfigError, Origin};
use crate::value::{Params, Value};

/// The first part of `--set iterate.GROUP.times=N` (unless a node has this name).
const ITERATE_PREFIX: &str = "iterate";

impl Planner<'_> {
    pub(super) fn collect_params(
        &mut self,
        nodes: &[NodeDecl],
    ) -> HashMap<String, Vec<ParamEntry>> {
        nodes
            .iter()
            .map(|n| {
                let list = n
                    .params
                    .iter()
                    .map(|(k, v)| ParamEntry {
                        name: k.value.clone(),
                        origin: self.origin.clone(),
                        name_span: k.span.clone(),
                        value: v.value.clone(),
                        value_span: v.span.clone(),
                    })
                    .collect();
                (n.name.value.clone(), list)
            })
            .collect()
    }

    pub(super) fn apply_overrides(
        &mut self,
        nodes: &mut [NodeDecl],
        groups: &mut [GroupDecl],
        entries: &mut HashMap<String, Vec<ParamEntry>>,
        overrides: &[String],
    ) {
        for raw in overrides {
            let origin = Origin::new("--set", raw.clone());
            let whole = 0..raw.len();
            let Some((target, value_text)) = raw.split_once('=') else {
                self.error(
                    ConfigError::new(
                        "judgeflow::set::syntax",
                        format!("`--set {raw}` is not `node.param=value`"),
                    )
                    .at(&origin, whole, "missing `=`"),
                );
                continue;
            };
            let Some((node, param)) = target.split_once('.') else {
                self.error(
                    ConfigError::new(
                        "judgeflow::set::syntax",
                        format!("`--set {raw}` is not `node.param=value`"),
                    )
                    .at(
                        &origin,
                        0..target.len(),
                        "missing `.` between node and parameter",
                    ),
                );
                continue;
            };
            let value_span = target.len() + 1..raw.len();
            if target == SEED_KEY {
                if let Some(seed) = self.set_seed(&origin, target, value_text, &value_span) {
                    self.seed_override = Some(SeedOverride {
                        seed,
                        origin,
                        span: value_span,
                    });
                }
                continue;
            }
            if node == ITERATE_PREFIX && !nodes.iter().any(|n| n.name.value == node) {
                self.iterate_override(groups, &origin, param, value_text, value_span);
                continue;
            }
            if node == "pipeline" && !nodes.iter().any(|n| n.name.value == node) {
                self.error(
                    ConfigError::new(
                        "judgeflow::set::pipeline_key",
                        format!("`--set` cannot change `{target}`"),
                    )
                    .at(&origin, node.len() + 1..target.len(), "not settable")
                    .help(format!(
                        "of `[pipeline]`, only the seed can be set: `--set {SEED_KEY}=N`"
                    )),
                );
                continue;
            }
            if !nodes.iter().any(|n| n.name.value == node) {
                let e = ConfigError::new(
                    "judgeflow::set::unknown_node",
                    format!("`--set` names unknown node `{node}`"),
                )
                .at(&origin, 0..node.len(), "no such node")
                .suggest(node, nodes.iter().map(|n| n.name.value.as_str()));
                self.error(e);
                continue;
            }
            if param == "seed" {
                // A node's own seed pins it (the pipeline seed no longer reaches it): setting it
                // from the command line varies one pinned node, e.g. a base model's pretraining,
                // without editing the file.
                if let Some(seed) = self.set_seed(&origin, target, value_text, &value_span) {
                    let decl = nodes
                        .iter_mut()
                        .find(|n| n.name.value == node)
                        .expect("checked above");
                    decl.seed = Some(Sp {
                        value: seed,
                        span: value_span,
                    });
                }
                continue;
            }
            let structural = match param {
                "op" | "inputs" => Some("edit the pipeline file to change what a node is or reads"),
                "gpus" | "shards" => Some(
                    "edit the pipeline file to change how a node is spread over devices or shards",
                ),
                _ => None,
            };
            if let Some(help) = structural {
                self.error(
                    ConfigError::new(
                        "judgeflow::set::structural",
                        format!("`--set` cannot change `{param}`"),
                    )
                    .at(
                        &origin,
                        node.len() + 1..target.len(),
                        "structure is fixed by the file",
                    )
                    .help(help),
                );
                continue;
            }
            let entry = ParamEntry {
                name: param.to_string(),
                origin: origin.clone(),
                name_span: node.len() + 1..target.len(),
                value: Value::parse_cli(value_text),
                value_span,
            };
            let list = entries.get_mut(node).expect("checked above");
            list.retain(|e| e.name != param);
            list.push(entry);
        }
    }

    /// The seed of `--set TARGET=VALUE` (`pipeline.seed` or a node's `seed`), or a diagnostic
    /// at `value_span` and `None`.
    fn set_seed(
        &mut self,
        origin: &Origin,
        target: &str,
        value_text: &str,
        value_span: &std::ops::Range<usize>,
    ) -> Option<u64> {
        match seed_value(&Value::parse_cli(value_text)) {
            Ok(seed) => Some(seed),
            Err(label) => {
                self.error(
                    ConfigError::new(
                        "judgeflow::set::bad_seed",
                        format!("invalid value for `{target}`"),
                    )
                    .at(origin, value_span.clone(), label)
                    .help(format!("seeds are integers from 0 to {}", i64::MAX)),
                );
                None
            }
        }
    }

    /// `--set iterate.GROUP.times=N` (`rest` is `GROUP.times`): how many times an iteration
    /// group repeats. Repetitions 1..N of a group share the cache with any other count's, so
    /// asking for more runs only the new ones.
    fn iterate_override(
        &mut self,
        groups: &mut [GroupDecl],
        origin: &Origin,
        rest: &str,
        value_text: &str,
        value_span: std::ops::Range<usize>,
    ) {
        let base = ITERATE_PREFIX.len() + 1;
        let Some((group, key)) = rest.split_once('.') else {
            self.error(
                ConfigError::new(
                    "judgeflow::set::syntax",
                    format!(
                        "`--set {ITERATE_PREFIX}.{rest}` is not `{ITERATE_PREFIX}.GROUP.times=N`"
                    ),
                )
                .at(origin, base..base + rest.len(), "missing `.times`"),
            );
            return;
        };
        let group_span = base..base + group.len();
        let Some(decl) = groups.iter_mut().find(|g| g.name.value == group) else {
            let e = ConfigError::new(
                "judgeflow::set::unknown_group",
                format!("`--set` names unknown iteration group `{group}`"),
            )
            .at(origin, group_span, "no such `[iterate.*]` group")
            .suggest(group, groups.iter().map(|g| g.name.value.as_str()));
            self.error(e);
            return;
        };
        if key != "times" {
            let start = group_span.end + 1;
            self.error(
                ConfigError::new(
                    "judgeflow::set::iterate_key",
                    format!("`--set` cannot change `{key}` of `[{ITERATE_PREFIX}.{group}]`"),
                )
                .at(origin, start..start + key.len(), "not settable")
                .help(format!(
                    "of an iteration group only the number of repetitions can be set: \
                     `--set {ITERATE_PREFIX}.{group}.times=N`"
                )),
            );
            return;
        }
        match Value::parse_cli(value_text) {
            Value::Int(n) if (1..=MAX_TIMES as i64).contains(&n) => decl.times.value = n as u32,
            other => {
                let label = match other {
                    Value::Int(_) => format!("out of range: 1 to {MAX_TIMES}"),
                    other => format!("{}, not a whole number", other.type_name()),
                };
                self.error(
                    ConfigError::new(
                        "judgeflow::set::bad_times",
                        format!("invalid value for `{ITERATE_PREFIX}.{group}.times`"),
                    )
                    .at(origin, value_span, label)
                    .help(format!(
                        "repetitions are whole numbers from 1 to {MAX_TIMES}"
                    )),
                );
            }
        }
    }

    pub(super) fn template(
        &mut self,
        node: &NodeDecl,
        params: &[ParamEntry],
        group: Option<usize>,
    ) -> Option<Template> {
        let name = &node.name;
        let Some(op_name) = &node.op else {
            let e = self
                .here(
                    "judgeflow::plan::missing_op",
                    format!("node `{}` has no `op`", name.value),
                    name.span.clone(),
                    "which operator runs here?",
                )
                .help(format!(
                    "add `op = \"...\"`; operators: {}",
                    self.registry.names().join(", ")
                ));
            self.error(e);
            return None;
        };
        let kinds = self.registry.kinds(&op_name.value);
        let kind_entry = params.iter().find(|p| p.name == "kind");
        let op = if kinds.is_empty() {
            match self.registry.get(&op_name.value, None) {
                Some(op) => op,
                None => {
                    let names = self.registry.names();
                    let e = self
                        .here(
                            "judgeflow::plan::unknown_op",
                            format!("unknown operator `{}`", op_name.value),
                            op_name.span.clone(),
                            "not a registered operator",
                        )
                        .suggest(&op_name.value, names.iter().copied());
                    let e = if e.help.is_none() {
                        e.help(format!("operators: {}", names.join(", ")))
                    } else {
                        e
                    };
                    self.error(e);
                    return None;
                }
            }
        } else {
            match kind_entry.map(|k| &k.value) {
                Some(Value::Str(kind)) => match self.registry.get(&op_name.value, Some(kind)) {
                    Some(op) => op,
                    None => {
                        let k = kind_entry.expect("matched");
                        let e = ConfigError::new(
                            "judgeflow::plan::unknown_kind",
                            format!("operator `{}` has no kind `{kind}`", op_name.value),
                        )
                        .at(&k.origin, k.value_span.clone(), "unknown kind")
                        .suggest(kind, kinds.iter().copied());
                        let e = if e.help.is_none() {
                            e.help(format!("kinds: {}", kinds.join(", ")))
                        } else {
                            e
                        };
                        self.error(e);
                        return None;
                    }
                },
                _ => {
                    let e = self
                        .here(
                            "judgeflow::plan::missing_kind",
                            format!("operator `{}` needs a `kind`", op_name.value),
                            op_name.span.clone(),
                            "which kind?",
                        )
                        .help(format!("add `kind = \"...\"`; kinds: {}", kinds.join(", ")));
                    self.error(e);
                    return None;
                }
            }
        };

        let specs = op.params();
        let mut resolved = BTreeMap::new();
        let mut ok = true;
        for entry in params {
            let Some(spec) = specs.iter().find(|s| s.name == entry.name) else {
                let candidates = specs
                    .iter()
                    .map(|s| s.name)
                    .chain(RESERVED_NODE_KEYS.iter().copied());
                let e = ConfigError::new(
                    "judgeflow::plan::unknown_param",
                    format!("op `{}` has no parameter `{}`", op.name(), entry.name),
                )
                .at(&entry.origin, entry.name_span.clone(), "unknown parameter")
                .suggest(&entry.name, candidates);
                let e = if e.help.is_none() {
                    e.help(format!(
                        "parameters of `{}`: {}",
                        op.name(),
                        specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                    ))
                } else {
                    e
                };
                self.error(e);
                ok = false;
                continue;
            };
            match spec.kind.accept(entry.value.clone()) {
                Ok(v) => {
                    resolved.insert(entry.name.clone(), v);
                }
                Err(label) => {
                    let e = ConfigError::new(
                        "judgeflow::plan::bad_value",
                        format!(
                            "invalid value for `{}` of node `{}`",
                            entry.name, name.value
                        ),
                    )
                    .at(&entry.origin, entry.value_span.clone(), label)
                    .help(format!("`{}`: {}", spec.name, spec.doc));
                    self.error(e);
                    ok = false;
                }
            }
        }
        for spec in &specs {
            if resolved.contains_key(spec.name) || params.iter().any(|p| p.name == spec.name) {
                continue;
            }
            match &spec.default {
                Some(d) => {
                    resolved.insert(spec.name.to_string(), d.clone());
                }
                None => {
                    let e = self
                        .here(
                            "judgeflow::plan::missing_param",
                            format!("node `{}` is missing parameter `{}`", name.value, spec.name),
                            name.span.clone(),
                            format!("needs `{}` ({})", spec.name, spec.kind.describe()),
                        )
                        .help(format!("`{}`: {}", spec.name, spec.doc));
                    self.error(e);
                    ok = false;
                }
            }
        }
        if let Some(shards) = node.shards.as_ref().filter(|s| s.value > 1)
            && op.row_shards(&Params(resolved.clone())).is_none()
        {
            let e = self
                .here(
                    "judgeflow::plan::shards",
                    format!(
                        "node `{}` asks for {} row shards, but operator `{}` cannot be split \
                         by rows with these parameters",
                        node.name.value,
                        shards.value,
                        op.name()
                    ),
                    shards.span.clone(),
                    "not shardable",
                )
                .help(
                    "row shards need an operator whose output rows each come from one input \
                     row (`judgeflow ops` says which); remove `shards`",
                );
            self.error(e);
            ok = false;
        }
        ok.then(|| Template {
            decl: node.clone(),
            op,
            params: Params(resolved),
            seed: node.seed.as_ref().map(|s| s.value),
            gpus: node.gpus.as_ref().map(|g| g.value),
            group,
        })
    }
}
