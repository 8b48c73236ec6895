//! Aggregation over seeds: when the pipeline sweeps `pipeline.seed`, variants that differ only
//! by seed form a group (labelled by the variant without its seed), and for each group:
//!
//! - per evaluation (a node with a `metrics` frame, as `evaluate` writes, by instance:
//!   `eval_base`, `evaluate@1`, ..., blind ones marked) and dimension: the mean accuracy over seeds, its 95% t-interval across seeds
//!   ([`crate::stats::mean_interval`], n = seeds with a score), and each seed's accuracy with
//!   its own (Wilson) interval from the `metrics` frame;
//! - the gain "last iteration minus base" per dimension: per seed, a paired bootstrap over the
//!   bench items both evaluations scored (from their `judgements` frames, which carry each
//!   sample's verdict per item), and across seeds the mean of the per-seed differences with its
//!   t-interval.
//!
//! The base is the first non-blind evaluation outside any iteration group, the last the
//! first non-blind one of the highest iteration (plan order). Seeds come from the variant labels
//! (`judgeflow_engine::plan::split_seed`).

use std::collections::BTreeMap;

use judgeflow_engine::cli::ReportNode;
use judgeflow_engine::plan::split_seed;
use miette::Result;

use crate::frames::{self, MetricsRow};
use crate::stats::{self, Paired, Votes};

/// A mean over seeds and its 95% t-interval.
#[derive(Clone, Debug)]
pub struct AcrossSeeds {
    /// Mean over seeds.
    pub mean: f64,
    /// Lower end of the t-interval (NaN with fewer than two seeds).
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Seeds that contributed.
    pub seeds: usize,
}

impl AcrossSeeds {
    fn of(values: &[f64]) -> Self {
        let (mean, lo, hi) = stats::mean_interval(values);
        AcrossSeeds {
            mean,
            lo,
            hi,
            seeds: values.iter().filter(|v| v.is_finite()).count(),
        }
    }
}

/// One seed's accuracy on one dimension, with its interval from `evaluate`.
#[derive(Clone, Debug)]
pub struct SeedScore {
    /// The pipeline seed.
    pub seed: u64,
    /// Accuracy.
    pub accuracy: f64,
    /// Its 95% interval (Wilson; NaN when unknown).
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Items scored.
    pub n: i64,
}

/// One evaluation of a group, aggregated over seeds.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Instance name (`eval_base`, `evaluate@2`).
    pub node: String,
    /// Repetition (0 outside iteration groups).
    pub iteration: u32,
    /// Whether the judge saw blank images.
    pub blind: bool,
    /// Per dimension (the frame's order, `overall` and `macro` last): across seeds, per seed.
    pub dimensions: Vec<(String, AcrossSeeds, Vec<SeedScore>)>,
}

/// The gain of the last iteration over the base on one dimension.
#[derive(Clone, Debug)]
pub struct Gain {
    /// Dimension, or `overall`.
    pub dimension: String,
    /// Mean of the per-seed differences, with its t-interval.
    pub across: AcrossSeeds,
    /// Per seed: the paired difference on the shared items and its bootstrap interval.
    pub per_seed: Vec<(u64, Paired)>,
}

/// Variants that differ only by their pipeline seed.
#[derive(Clone, Debug)]
pub struct Group {
    /// The variant label without the seed (empty when the seed is the only sweep).
    pub label: String,
    /// Its seeds, in plan order.
    pub seeds: Vec<u64>,
    /// Evaluations, base first, then by iteration; blind ones after the others of their
    /// iteration.
    pub evaluations: Vec<Evaluation>,
    /// `base → last`: the two instance names, and the gains per dimension.
    pub gain: Option<(String, String, Vec<Gain>)>,
}

impl Group {
    /// The group's name as tables show it.
    pub fn title(&self) -> String {
        if self.label.is_empty() {
            "all seeds".into()
        } else {
            self.label.clone()
        }
    }
}

/// The seed groups of a pipeline; empty when it does not sweep `pipeline.seed`.
pub fn groups(nodes: &[ReportNode]) -> Result<Vec<Group>> {
    let mut labels: Vec<String> = Vec::new();
    for v in nodes.iter().flat_map(|n| &n.variants) {
        if !labels.contains(v) {
            labels.push(v.clone());
        }
    }
    if labels.is_empty() || labels.iter().any(|l| split_seed(l).1.is_none()) {
        return Ok(Vec::new());
    }
    // Group label → [(seed, variant label)], in plan order.
    let mut grouped: Vec<(String, Vec<(u64, String)>)> = Vec::new();
    for l in &labels {
        let (rest, seed) = split_seed(l);
        let seed = seed.expect("checked above");
        match grouped.iter_mut().find(|(g, _)| g == rest) {
            Some((_, members)) => members.push((seed, l.clone())),
            None => grouped.push((rest.to_string(), vec![(seed, l.clone())])),
        }
    }
    // Read every evaluation once: (variant label, instance) → node, metrics.
    let evals: Vec<(&ReportNode, Vec<MetricsRow>)> = nodes
        .iter()
        .filter_map(|n| frames::metrics(n).transpose().map(|m| m.map(|m| (n, m))))
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for (label, members) in grouped {
        out.push(group(label, &members, &evals)?);
    }
    Ok(out)
}

fn instance(node: &ReportNode) -> String {
    match node.iteration {
        Some(i) => format!("{}@{i}", node.template),
        None => node.template.clone(),
    }
}

fn blind(rows: &[MetricsRow]) -> bool {
    rows.first().is_some_and(MetricsRow::blind)
}

fn group(
    label: String,
    members: &[(u64, String)],
    evals: &[(&ReportNode, Vec<MetricsRow>)],
) -> Result<Group> {
    // Instances in order: (iteration, blind, first appearance).
    let mut instances: Vec<(u32, bool, String)> = Vec::new();
    for (node, rows) in evals {
        if !members.iter().any(|(_, v)| node.variants.contains(v)) {
            continue;
        }
        let key = (node.iteration.unwrap_or(0), blind(rows), instance(node));
        if !instances.contains(&key) {
            instances.push(key);
        }
    }
    instances.sort_by_key(|(it, b, _)| (*it, *b));
    let of = |seed_label: &str, name: &str| {
        evals
            .iter()
            .find(|(n, _)| n.variants.iter().any(|v| v == seed_label) && instance(n) == name)
    };
    let mut evaluations = Vec::new();
    for (iteration, is_blind, name) in &instances {
        let mut dims: Vec<String> = Vec::new();
        for (_, seed_label) in members {
            if let Some((_, rows)) = of(seed_label, name) {
                for r in rows {
                    if !dims.contains(&r.dimension) {
                        dims.push(r.dimension.clone());
                    }
                }
            }
        }
        let dimensions = dims
            .into_iter()
            .map(|d| {
                let per_seed: Vec<SeedScore> = members
                    .iter()
                    .filter_map(|(seed, l)| {
                        let (_, rows) = of(l, name)?;
                        let r = rows.iter().find(|r| r.dimension == d)?;
                        Some(SeedScore {
                            seed: *seed,
                            accuracy: r.accuracy,
                            lo: r.accuracy_lo,
                            hi: r.accuracy_hi,
                            n: r.n,
                        })
                    })
                    .collect();
                let across =
                    AcrossSeeds::of(&per_seed.iter().map(|s| s.accuracy).collect::<Vec<_>>());
                (d, across, per_seed)
            })
            .collect();
        evaluations.push(Evaluation {
            node: name.clone(),
            iteration: *iteration,
            blind: *is_blind,
            dimensions,
        });
    }
    let base = evaluations
        .iter()
        .find(|e| e.iteration == 0 && !e.blind)
        .map(|e| e.node.clone());
    let last = evaluations
        .iter()
        .filter(|e| e.iteration > 0 && !e.blind)
        .max_by_key(|e| e.iteration)
        .map(|e| e.iteration)
        .and_then(|it| {
            evaluations
                .iter()
                .find(|e| e.iteration == it && !e.blind)
                .map(|e| e.node.clone())
        });
    let gain = match (base, last) {
        (Some(base), Some(last)) => {
            let gains = gains(members, &base, &last, &of)?;
            Some((base, last, gains))
        }
        _ => None,
    };
    Ok(Group {
        label,
        seeds: members.iter().map(|(s, _)| *s).collect(),
        evaluations,
        gain,
    })
}

type Lookup<'a, 'n> = dyn Fn(&str, &str) -> Option<&'a (&'n ReportNode, Vec<MetricsRow>)> + 'a;

/// Per-item votes of an evaluation: pair id → (dimension, votes).
fn item_votes(node: &ReportNode) -> Result<Option<BTreeMap<String, (String, Votes)>>> {
    let Some(rows) = frames::judgements(node)? else {
        return Ok(None);
    };
    let mut items: BTreeMap<String, (String, Votes)> = BTreeMap::new();
    for j in rows {
        let entry = items
            .entry(j.pair_id)
            .or_insert_with(|| (j.kind.clone(), Votes::default()));
        if j.verdict.is_some() {
            if j.agrees {
                entry.1.right += 1;
            } else {
                entry.1.wrong += 1;
            }
        }
    }
    Ok(Some(items))
}

fn gains<'a, 'n>(
    members: &[(u64, String)],
    base: &str,
    last: &str,
    of: &Lookup<'a, 'n>,
) -> Result<Vec<Gain>> {
    // Per seed: the items both evaluations scored, as (dimension, before, after).
    type Shared = Vec<(String, Votes, Votes)>;
    let mut per_seed: Vec<(u64, Shared)> = Vec::new();
    for (seed, l) in members {
        let (Some((b, _)), Some((a, _))) = (of(l, base), of(l, last)) else {
            continue;
        };
        let (Some(before), Some(after)) = (item_votes(b)?, item_votes(a)?) else {
            continue;
        };
        let shared: Vec<(String, Votes, Votes)> = before
            .iter()
            .filter_map(|(id, (dim, vb))| after.get(id).map(|(_, va)| (dim.clone(), *vb, *va)))
            .collect();
        per_seed.push((*seed, shared));
    }
    let mut dims: Vec<String> = Vec::new();
    for (_, items) in &per_seed {
        for (d, _, _) in items {
            if !dims.contains(d) {
                dims.push(d.clone());
            }
        }
    }
    dims.sort();
    dims.push("overall".into());
    Ok(dims
        .into_iter()
        .map(|d| {
            let per: Vec<(u64, Paired)> = per_seed
                .iter()
                .map(|(seed, items)| {
                    let pairs: Vec<(Votes, Votes)> = items
                        .iter()
                        .filter(|(dim, _, _)| d == "overall" || *dim == d)
                        .map(|(_, b, a)| (*b, *a))
                        .collect();
                    (
                        *seed,
                        stats::paired_bootstrap(&pairs, stats::RESAMPLES, *seed),
                    )
                })
                .collect();
            let across =
                AcrossSeeds::of(&per.iter().map(|(_, p)| p.difference).collect::<Vec<_>>());
            Gain {
                dimension: d,
                across,
                per_seed: per,
            }
        })
        .collect())
}
