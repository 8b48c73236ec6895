//! Building one entry: a plan node's (or a worker's task's) operator run under the entry's lock
//! into a temporary directory, then published into the cache.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use petgraph::graph::NodeIndex;

use crate::cache::{Cache, Ingredients, Lookup, Manifest};
use crate::error::{Error, Result};
use crate::op::{BoundInput, PortKind, RunContext};
use crate::plan::Plan;
use crate::progress::ProgressHub;

/// Builds one entry under its lock; `ran` is false when another process built it meanwhile.
#[allow(clippy::too_many_arguments)]
pub(super) fn build(
    plan: &Plan,
    cache: &Cache,
    idx: NodeIndex,
    ingredients: Ingredients,
    key: String,
    inputs: BTreeMap<String, BoundInput>,
    gpus: Vec<usize>,
    hub: &ProgressHub,
) -> Result<(Manifest, bool)> {
    let node = &plan.graph[idx];
    let unit = Unit {
        node: &node.name,
        op: node.op.as_ref(),
        params: &node.params,
        seed: node.seed,
        iteration: node.iteration,
        outputs: node.outputs.clone(),
        shards: node.shards,
    };
    crate::shard::build_node(cache, &unit, ingredients, key, inputs, gpus, hub)
}

/// What one build runs: a plan node's operator and settings, or the same read back from a task
/// file by a worker process (`crate::executor`).
pub(crate) struct Unit<'a> {
    pub node: &'a str,
    pub op: &'a dyn crate::op::Operator,
    pub params: &'a crate::value::Params,
    pub seed: u64,
    /// The repetition inside an `[iterate]` group, if any ([`RunContext::iteration`]).
    pub iteration: Option<u32>,
    pub outputs: Vec<crate::op::Port>,
    /// Row shards to run in (`crate::shard`).
    pub shards: u32,
}

/// [`build`] for any [`Unit`]: takes the entry's lock, runs the operator into a temporary
/// directory and publishes it; `ran` is false when another process built it meanwhile.
pub(crate) fn build_unit(
    cache: &Cache,
    unit: &Unit<'_>,
    ingredients: Ingredients,
    key: String,
    inputs: BTreeMap<String, BoundInput>,
    gpus: Vec<usize>,
    hub: &ProgressHub,
) -> Result<(Manifest, bool)> {
    let entry = cache.lock_entry(&key)?;
    match cache.lookup(&key)? {
        Lookup::Hit(m) => return Ok((m, false)),
        Lookup::Corrupt(_) => cache.discard(&key, &entry)?,
        Lookup::Miss => {}
    }
    let building = cache.begin(&key)?;
    let started = Instant::now();
    let mut ctx = RunContext {
        node: unit.node,
        params: unit.params,
        seed: unit.seed,
        gpus,
        iteration: unit.iteration,
        inputs,
        outputs: unit.outputs.clone(),
        out_dir: building.dir.clone(),
        written: BTreeSet::new(),
        progress: hub,
    };
    tracing::info!(node = %unit.node, op = unit.op.name(), "running");
    // A panicking operator must fail its node, not take the scheduler down with it (the
    // coordinator would wait forever for a report that never comes).
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unit.op.run(&mut ctx)))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            Err(miette::miette!("the operator panicked: {what}"))
        });
    outcome.map_err(|cause| Error::NodeFailed {
        node: unit.node.to_string(),
        op: unit.op.name().to_string(),
        cause,
    })?;
    let missing: Vec<&str> = unit
        .outputs
        .iter()
        .map(|p| p.name)
        .filter(|p| !ctx.written.contains(*p))
        .collect();
    if !missing.is_empty() {
        return Err(Error::NodeFailed {
            node: unit.node.to_string(),
            op: unit.op.name().to_string(),
            cause: miette::miette!(
                "the operator returned without writing output(s) {}",
                missing.join(", ")
            ),
        });
    }
    let ports: Vec<(&str, bool)> = unit
        .outputs
        .iter()
        .map(|p| (p.name, matches!(p.kind, PortKind::Frame(_))))
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    let manifest = cache.publish(building, ingredients, &ports, unit.node, seconds)?;
    Ok((manifest, true))
}
