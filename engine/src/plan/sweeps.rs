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
        for s in sweeps {
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
        dims
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
