//! Freshness and execution. Both walk the plan in topological order computing each node's cache
//! key from its inputs' content hashes; `status` stops at the first unknown hash (a dirty
//! upstream), `run` executes dirty nodes on worker threads as their inputs become ready.

mod run;
mod unit;

pub use run::{NodeReport, Outcome, RunOptions, run, run_traced, run_traced_on};
pub(crate) use unit::{Unit, build_unit};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use petgraph::graph::NodeIndex;
use serde::Serialize;

use crate::cache::{Cache, Ingredients, Lookup, Manifest};
use crate::dirty::{self, DirtyReason};
use crate::error::Result;
use crate::op::PortKind;
use crate::plan::{Plan, PlanNode};

/// Where a node stands before a run.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    /// A valid entry exists for its current key.
    Fresh {
        /// The key.
        key: String,
    },
    /// It must run; `why` lists what changed since its last run.
    Dirty {
        /// Its key (known because all inputs are fresh).
        key: String,
        /// What changed since its last run (`plan --json` writes each with its text).
        #[serde(serialize_with = "crate::dirty::serialize_reasons")]
        why: Vec<DirtyReason>,
    },
    /// Its key depends on upstream nodes that must run first (they may produce identical bytes,
    /// in which case this node stays fresh: early cutoff).
    Waiting {
        /// The dirty upstream nodes it reads from.
        upstream: Vec<String>,
        /// Changes in its own parameters/version/seed since its last run.
        #[serde(serialize_with = "crate::dirty::serialize_reasons")]
        why: Vec<DirtyReason>,
    },
}

/// Computes every node's status without running anything.
pub fn status(plan: &Plan, cache: &Cache) -> Result<Vec<(NodeIndex, Status)>> {
    let mut hashes: HashMap<NodeIndex, BTreeMap<String, String>> = HashMap::new();
    let mut out = Vec::new();
    for &idx in &plan.order {
        let node = &plan.graph[idx];
        let dirty_upstream: Vec<String> = node
            .inputs
            .iter()
            .filter(|b| !hashes.contains_key(&b.from))
            .map(|b| plan.graph[b.from].name.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // The record keeps the ingredients, so a node whose entry was removed still has a past.
        let last = cache.last_record(&plan.name, &node.name);
        if !dirty_upstream.is_empty() {
            let why = last
                .map(|m| dirty::own_changes(&m.ingredients, &own_ingredients(node)))
                .unwrap_or_else(|| vec![DirtyReason::NeverRun]);
            out.push((
                idx,
                Status::Waiting {
                    upstream: dirty_upstream,
                    why,
                },
            ));
            continue;
        }
        let ingredients = ingredients(node, &hashes);
        let key = ingredients.key();
        match cache.lookup(&key)? {
            Lookup::Hit(m) => {
                hashes.insert(idx, output_hashes(&m));
                out.push((idx, Status::Fresh { key }));
            }
            Lookup::Corrupt(detail) => out.push((
                idx,
                Status::Dirty {
                    key,
                    why: vec![DirtyReason::EntryCorrupt { detail }],
                },
            )),
            Lookup::Miss => {
                let why = match last {
                    Some(m) => dirty::diff(plan, node, &m.ingredients, &ingredients),
                    None => vec![dirty::never_run(&cache.records(&plan.name), &ingredients)],
                };
                out.push((idx, Status::Dirty { key, why }));
            }
        }
    }
    Ok(out)
}

fn output_hashes(m: &Manifest) -> BTreeMap<String, String> {
    m.outputs
        .iter()
        .map(|(p, o)| (p.clone(), o.hash.clone()))
        .collect()
}

/// The ingredients of `node` that do not depend on its inputs (those left empty).
fn own_ingredients(node: &PlanNode) -> Ingredients {
    Ingredients {
        op: node.op.name().to_string(),
        kind: node.op.kind().map(str::to_string),
        op_version: node.op.version(),
        params: node.params.to_json(),
        seed: node.op.uses_seed().then_some(node.seed),
        inputs: BTreeMap::new(),
        files: BTreeMap::new(),
        env: node
            .op
            .environment(&node.params)
            .into_iter()
            .filter_map(|var| {
                let value = std::env::var(var).ok().filter(|v| !v.is_empty())?;
                Some((var.to_string(), value))
            })
            .collect(),
    }
}

/// The ingredients of `node` given its producers' output hashes.
fn ingredients(
    node: &PlanNode,
    hashes: &HashMap<NodeIndex, BTreeMap<String, String>>,
) -> Ingredients {
    Ingredients {
        inputs: node
            .inputs
            .iter()
            .map(|b| (b.port.to_string(), hashes[&b.from][b.output].clone()))
            .collect(),
        files: node
            .op
            .external_inputs(&node.params)
            .iter()
            .map(|p| (p.display().to_string(), crate::cache::hash_path(p)))
            .collect(),
        ..own_ingredients(node)
    }
}

/// Where a fresh node's output port lives (for `show` and `compare`).
pub fn output_file(
    cache: &Cache,
    key: &str,
    node: &PlanNode,
    port: Option<&str>,
) -> Option<(String, PathBuf, bool)> {
    let p = match port {
        Some(name) => node.outputs.iter().find(|o| o.name == name)?,
        None => node
            .outputs
            .iter()
            .find(|o| matches!(o.kind, PortKind::Frame(_)))
            .or(node.outputs.first())?,
    };
    let frame = matches!(p.kind, PortKind::Frame(_));
    Some((
        p.name.to_string(),
        cache.output_path(key, p.name, frame),
        frame,
    ))
}
