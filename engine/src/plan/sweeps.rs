//! Planning stage: sweeps. Validates each `[sweep]` key and alternative against the parameter
//! it varies, and counts the variants before anything is expanded.

use std::ops::Range;

use super::*;
use crate::config::SweepDecl;
use crate::value::Value;

/// One swept parameter: node, parameter, its alternatives.
pub(super) type Dim = (String, String, Vec<Value>);

impl Planner<'_> {
    /// The swept parameters, validated; bad keys and alternatives are reported and left out.
    pub(super) fn sweep_dims(&mut self, sweeps: &[SweepDecl], templates: &[Template]) -> Vec<Dim> {
        let mut dims: Vec<(String, String, Vec<Value>)> = Vec::new();
        let mut seed_dim: Option<Vec<Value>> = None;
        for (i, s) in sweeps.iter().enumerate() {
            // `"a.b"` and `a.b` are different TOML keys for one setting: two lists of
            // alternatives for it would make variants that ask for two values at once.
            if let Some(first) = sweeps[..i]
                .iter()
                .find(|f| f.target.value == s.target.value)
            {
                let e = self
                    .here(
                        "judgeflow::plan::swept_twice",
                        format!("`{}` is swept twice", s.target.value),
                        s.target.span.clone(),
                        "swept again here",
                    )
                    .also(first.target.span.clone(), "first here")
                    .help("list every alternative once, in one array");
                self.error(e);
                continue;
            }
            if s.target.value == SEED_KEY {
                seed_dim = Some(self.seed_alternatives(s, templates));
                continue;
            }
            let Some((node, param)) = s.target.value.split_once('.') else {
                let e = self.here(
                    "judgeflow::plan::bad_sweep",
                    format!("sweep key `{}` must be `node.param`", s.target.value),
                    s.target.span.clone(),
                    "expected `node.param`",
                );
                self.error(e);
                continue;
            };
            let Some(t) = templates.iter().find(|t| t.decl.name.value == node) else {
                if node == "pipeline" {
                    let e = self
                        .here(
                            "judgeflow::plan::bad_sweep",
                            format!("`{}` cannot be swept", s.target.value),
                            s.target.span.clone(),
                            "not a node parameter",
                        )
                        .help(format!(
                            "of `[pipeline]`, only the seed can be swept: `\"{SEED_KEY}\" = [1, 2, 3]`"
                        ));
                    self.error(e);
                    continue;
                }
                let e = self
                    .here(
                        "judgeflow::plan::unknown_node",
                        format!("sweep over unknown node `{node}`"),
                        s.target.span.clone(),
                        "no such node",
                    )
                    .suggest(node, templates.iter().map(|t| t.decl.name.value.as_str()));
                self.error(e);
                continue;
            };
            let specs = t.op.params();
            if crate::config::RESERVED_NODE_KEYS.contains(&param) {
                let help = if param == "seed" {
                    format!(
                        "sweep the pipeline seed instead (`\"{SEED_KEY}\" = [1, 2, 3]`, with \
                         `seed` removed from the nodes that should follow it), or set one \
                         node's seed per run: `--set {node}.seed=N`"
                    )
                } else {
                    "edit the pipeline file".to_string()
                };
                let e = self
                    .here(
                        "judgeflow::plan::bad_sweep",
                        format!("`{param}` of node `{node}` cannot be swept"),
                        s.target.span.clone(),
                        "a node setting, not a parameter",
                    )
                    .help(help);
                self.error(e);
                continue;
            }
            let Some(spec) = specs.iter().find(|sp| sp.name == param) else {
                let e = self
                    .here(
                        "judgeflow::plan::unknown_param",
                        format!("op `{}` has no parameter `{param}`", t.op.name()),
                        s.target.span.clone(),
                        "unknown parameter",
                    )
                    .suggest(param, specs.iter().map(|sp| sp.name));
                self.error(e);
                continue;
            };
            if t.op.kind().is_some() && param == "kind" {
                let e = self.here(
                    "judgeflow::plan::bad_sweep",
                    "`kind` selects the operator and cannot be swept",
                    s.target.span.clone(),
                    "sweep a parameter instead",
                );
                self.error(e);
                continue;
            }
            let mut values: Vec<Value> = Vec::new();
            let mut spans: Vec<Range<usize>> = Vec::new();
            for v in &s.values {
                match spec.kind.accept(v.value.clone()) {
                    // A repeated alternative would be a second variant identical to the first:
                    // twice the work for one result, and two labels for it.
                    Ok(accepted) if values.contains(&accepted) => {
                        let first = spans[values
                            .iter()
                            .position(|x| *x == accepted)
                            .expect("contained")]
                        .clone();
                        let e = self
                            .here(
                                "judgeflow::plan::duplicate_sweep_value",
                                format!("`{}` lists the same alternative twice", s.target.value),
                                v.span.clone(),
                                "repeated here",
                            )
                            .also(first, "first here")
                            .help("remove the repetition");
                        self.error(e);
                    }
                    Ok(accepted) => {
                        values.push(accepted);
                        spans.push(v.span.clone());
                    }
                    Err(label) => {
                        let e = self.here(
                            "judgeflow::plan::bad_value",
                            format!("invalid alternative for `{}`", s.target.value),
                            v.span.clone(),
                            label,
                        );
                        self.error(e);
                    }
                }
            }
            dims.push((node.to_string(), param.to_string(), values));
        }
        // The seed varies innermost: variants that differ only by seed come one after another,
        // and `seed=N` ends every label.
        if let Some(values) = seed_dim {
            let (node, param) = SEED_KEY.split_once('.').expect("dotted");
            dims.push((node.to_string(), param.to_string(), values));
        }
        dims
    }

    /// Checks the alternatives of `"pipeline.seed"`: non-negative integers, each once, and a
    /// seed that reaches at least one node; also that no `--set pipeline.seed` contradicts it.
    fn seed_alternatives(&mut self, s: &SweepDecl, templates: &[Template]) -> Vec<Value> {
        let mut values: Vec<Value> = Vec::new();
        let mut spans: Vec<Range<usize>> = Vec::new();
        for v in &s.values {
            match seed_value(&v.value) {
                Ok(n) => {
                    let n = Value::Int(n as i64);
                    if let Some(first) = values.iter().position(|x| *x == n) {
                        let e = self
                            .here(
                                "judgeflow::plan::duplicate_sweep_value",
                                format!("`{SEED_KEY}` lists the seed {} twice", plain(&n)),
                                v.span.clone(),
                                "repeated here",
                            )
                            .also(spans[first].clone(), "first here")
                            .help(
                                "each seed once: a repeated seed would run the same variant twice",
                            );
                        self.error(e);
                    } else {
                        values.push(n);
                        spans.push(v.span.clone());
                    }
                }
                Err(label) => {
                    let e = self
                        .here(
                            "judgeflow::plan::bad_seed",
                            format!("invalid seed in the sweep over `{SEED_KEY}`"),
                            v.span.clone(),
                            label,
                        )
                        .help(format!("seeds are integers from 0 to {}", i64::MAX));
                    self.error(e);
                }
            }
        }
        if let Some(o) = &self.seed_override {
            let e = ConfigError::new(
                "judgeflow::set::seed_swept",
                format!("`--set {SEED_KEY}` contradicts the sweep over `{SEED_KEY}`"),
            )
            .at(&o.origin, o.span.clone(), "the file sweeps this")
            .help(format!(
                "the pipeline makes one variant per seed; to run one of them select it, e.g. \
                 `judgeflow run PIPELINE NODE[seed={}]`, or drop the `--set`",
                values.first().map_or_else(|| "N".to_string(), plain)
            ));
            self.error(e);
        }
        if !templates.is_empty() && templates.iter().all(|t| t.seed.is_some()) {
            let e = self
                .here(
                    "judgeflow::plan::seed_unused",
                    format!("sweeping `{SEED_KEY}` changes nothing"),
                    s.target.span.clone(),
                    "every node sets its own `seed`",
                )
                .help("remove `seed` from the nodes that should vary with the pipeline seed, or drop this sweep");
            self.error(e);
        }
        values
    }

    /// How many variants the sweep makes, or `None` (reported) beyond the limit.
    pub(super) fn count_variants(&mut self, sweeps: &[SweepDecl], dims: &[Dim]) -> Option<usize> {
        // Count before expanding: 7 keys of 10 values are 10 million variants, which would
        // exhaust memory long before any diagnostic.
        let limit = max_variants();
        let count = dims
            .iter()
            .try_fold(1usize, |n, (_, _, v)| n.checked_mul(v.len().max(1)))
            .filter(|&n| n <= limit);
        if count.is_none() && self.errors.is_empty() {
            let described: Vec<String> = dims
                .iter()
                .map(|(n, p, v)| format!("{n}.{p}: {}", v.len()))
                .collect();
            let total = dims
                .iter()
                .try_fold(1u128, |n, (_, _, v)| n.checked_mul(v.len().max(1) as u128))
                .map_or_else(|| "too many".to_string(), |n| n.to_string());
            let first = sweeps.first().expect("variants come from sweeps");
            let mut e = self.here(
                "judgeflow::plan::too_many_variants",
                format!("the sweep makes {total} variants; the limit is {limit}"),
                first.target.span.clone(),
                format!("alternatives multiply: {}", described.join(" × ")),
            );
            for s in sweeps.iter().skip(1) {
                e = e.also(s.target.span.clone(), format!("× {}", s.values.len()));
            }
            let e = e.help(format!(
                "sweep fewer keys or values, or raise the limit with {MAX_VARIANTS_ENV}=N"
            ));
            self.error(e);
        }
        count
    }
}
