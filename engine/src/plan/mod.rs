//! From declarations to a runnable DAG: operator lookup, parameter validation (with `--set`
//! overrides), sweep expansion, iteration unrolling, input resolution with schema checks, cycle
//! detection, and merging of nodes that sweeps do not reach.
//!
//! Merging works on a node's *identity*: a hash of what it computes (operator, version,
//! parameters, seed, GPUs) and of its inputs' identities. Two variants whose node has the same
//! identity compute the same thing, so the plan holds it once and it runs once. The cache key
//! proper (see [`crate::cache`]) uses input *content* hashes instead and is only known while
//! running; identity is its structural shadow, known before anything runs.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::config::{NodeDecl, PipelineDecl};
use crate::error::{ConfigError, Origin};
use crate::op::{Operator, Port, PortKind, Registry};
use crate::value::{Params, Value};

mod groups;
mod inputs;
mod order;
mod params;
mod sweeps;
mod variants;

pub use variants::derive_seed;

use order::stable_topological_order;
/// A validated, expanded pipeline ready to run.
pub struct Plan {
    /// `[pipeline] name`.
    pub name: String,
    /// The DAG; edges point from producer to consumer.
    pub graph: DiGraph<PlanNode, ()>,
    /// Nodes in a topological order (file order among independent nodes).
    pub order: Vec<NodeIndex>,
    /// Sweep variants (one unnamed variant when the pipeline has no sweep).
    pub variants: Vec<Variant>,
    /// Template names whose frames `compare` shows (default: nodes nothing consumes).
    pub compare: Vec<String>,
    /// `[iterate.*]` groups in file order: name and member templates (for selections).
    pub groups: Vec<(String, Vec<String>)>,
    /// `[executor]`: where nodes run (never part of what they compute).
    pub executor: crate::executor::ExecutorSettings,
}

/// Most sweep variants a pipeline may expand into, unless [`MAX_VARIANTS_ENV`] says otherwise.
pub const MAX_VARIANTS: usize = 1000;

/// Most nodes a plan may have before sweep variants merge (variants × unrolled nodes).
pub const MAX_PLAN_NODES: usize = 200_000;

/// Environment variable that raises (or lowers) [`MAX_VARIANTS`].
pub const MAX_VARIANTS_ENV: &str = "JUDGEFLOW_MAX_VARIANTS";

fn max_variants() -> usize {
    std::env::var(MAX_VARIANTS_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(MAX_VARIANTS)
}

/// One combination of sweep alternatives.
#[derive(Clone, Debug)]
pub struct Variant {
    /// `vote.method=oracle` (several joined by `,`); empty without sweeps.
    pub label: String,
    /// The swept settings.
    pub settings: Vec<(String, Value)>,
    /// Instance name (`judge@2`) to plan node.
    pub nodes: BTreeMap<String, NodeIndex>,
}

/// One operator run in the plan.
pub struct PlanNode {
    /// Unique display name: the instance name, plus `[setting=value]` when sweeps split it.
    pub name: String,
    /// Instance name: the template name, plus `@N` inside an iteration group.
    pub instance: String,
    /// The template (the `[nodes.NAME]` table) it comes from.
    pub template: String,
    /// Repetition number inside its group.
    pub iteration: Option<u32>,
    /// The operator.
    pub op: Arc<dyn Operator>,
    /// Validated parameters.
    pub params: Params,
    /// The seed it receives.
    pub seed: u64,
    /// GPUs one run reserves.
    pub gpus: u32,
    /// Row shards it runs in (`crate::shard`); 1 for a whole run. Not part of its identity
    /// nor of its cache key: the output is the same whatever the count.
    pub shards: u32,
    /// Where each connected input port reads from.
    pub inputs: Vec<Binding>,
    /// Output ports.
    pub outputs: Vec<Port>,
    /// Indices of the variants this node belongs to.
    pub variants: Vec<usize>,
    /// Structural identity (what sweeps merge on).
    pub identity: blake3::Hash,
}

/// A connected input port.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The consumer's port.
    pub port: &'static str,
    /// What it carries.
    pub kind: PortKind,
    /// The producer node.
    pub from: NodeIndex,
    /// The producer's output port.
    pub output: &'static str,
}

impl Plan {
    /// Finds a node by display name, or by instance / template name when that is unambiguous.
    pub fn find(&self, name: &str) -> Result<NodeIndex, crate::Error> {
        if let Some(i) = self.order.iter().find(|&&i| self.graph[i].name == name) {
            return Ok(*i);
        }
        let matches: Vec<NodeIndex> = self
            .order
            .iter()
            .copied()
            .filter(|&i| self.graph[i].instance == name)
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => {
                let names: Vec<&str> = self
                    .order
                    .iter()
                    .map(|&i| self.graph[i].name.as_str())
                    .collect();
                let help = crate::error::closest(name, names.iter().copied())
                    .map(|c| format!("did you mean `{c}`?"))
                    .or_else(|| Some(format!("nodes: {}", names.join(", "))));
                Err(crate::Error::usage(
                    format!("no node `{name}` in pipeline `{}`", self.name),
                    help,
                ))
            }
            many => Err(crate::Error::usage(
                format!("`{name}` differs between sweep variants"),
                Some(format!(
                    "name one of: {}",
                    many.iter()
                        .map(|&i| self.graph[i].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            )),
        }
    }
}

/// A parameter as written: where its key and value are (file or `--set`).
#[derive(Clone)]
struct ParamEntry {
    name: String,
    origin: Origin,
    name_span: Range<usize>,
    value: Value,
    value_span: Range<usize>,
}

/// A `[nodes.*]` table after operator lookup and parameter validation.
struct Template {
    decl: NodeDecl,
    op: Arc<dyn Operator>,
    params: Params,
    seed: Option<u64>,
    gpus: Option<u32>,
    group: Option<usize>,
}

/// A reference like `judge@prev.checkpoint`, split.
struct Ref<'a> {
    node: &'a str,
    selector: Option<&'a str>,
    port: Option<&'a str>,
}

fn split_ref(text: &str) -> Ref<'_> {
    let (head, port) = match text.split_once('.') {
        Some((h, p)) => (h, Some(p)),
        None => (text, None),
    };
    let (node, selector) = match head.split_once('@') {
        Some((n, s)) => (n, Some(s)),
        None => (head, None),
    };
    Ref {
        node,
        selector,
        port,
    }
}

struct Planner<'r> {
    registry: &'r Registry,
    origin: Origin,
    errors: Vec<ConfigError>,
}

/// Validates and expands a parsed pipeline. `overrides` are raw `--set node.param=value`.
pub fn build(
    decl: PipelineDecl,
    registry: &Registry,
    overrides: &[String],
) -> Result<Plan, Vec<ConfigError>> {
    let mut p = Planner {
        registry,
        origin: decl.origin.clone(),
        errors: Vec::new(),
    };
    let plan = p.plan(decl, overrides);
    let mut seen = BTreeSet::new();
    p.errors.retain(|e| {
        let span =
            e.at.as_ref()
                .map(|(o, s, _)| (o.0.name().to_string(), s.start, s.end));
        seen.insert((e.code, e.message.clone(), span))
    });
    match plan {
        Some(plan) if p.errors.is_empty() => Ok(plan),
        _ => Err(p.errors),
    }
}

impl Planner<'_> {
    fn error(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    fn here(
        &self,
        code: &'static str,
        msg: impl Into<String>,
        span: Range<usize>,
        label: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(code, msg).at(&self.origin, span, label)
    }

    fn plan(&mut self, decl: PipelineDecl, overrides: &[String]) -> Option<Plan> {
        let PipelineDecl {
            name,
            seed,
            compare,
            nodes,
            groups,
            sweeps,
            executor,
            ..
        } = decl;
        let mut entries = self.collect_params(&nodes);
        self.apply_overrides(&nodes, &mut entries, overrides);

        let group_of = self.group_membership(&nodes, &groups);

        // Operators and parameters.
        let mut templates: Vec<Template> = Vec::new();
        for node in &nodes {
            let params = &entries[&node.name.value];
            if let Some(t) = self.template(node, params, group_of.get(&node.name.value).copied()) {
                templates.push(t);
            }
        }
        if templates.len() != nodes.len() {
            return None;
        }

        let dims = self.sweep_dims(&sweeps, &templates);
        let count = self.count_variants(&sweeps, &dims);
        if !self.errors.is_empty() {
            return None;
        }

        // Instance graph of the first variant: edges do not depend on swept values, so one
        // instance graph serves for resolution order and cycle detection.
        let instances = self.instances(&templates, &groups);
        // Variants multiply unrolled iterations: bound the product too, before building it.
        let variant_count = count.unwrap_or(1);
        if variant_count.saturating_mul(instances.len()) > MAX_PLAN_NODES {
            let span = sweeps.first().map_or(0..0, |s| s.target.span.clone());
            let e = self
                .here(
                    "judgeflow::plan::too_many_variants",
                    format!(
                        "the sweep makes {variant_count} variants of {} nodes each; the limit is {MAX_PLAN_NODES} nodes in all",
                        instances.len()
                    ),
                    span,
                    "this sweep",
                )
                .help("sweep fewer values, or repeat iteration groups fewer times");
            self.error(e);
            return None;
        }
        let resolved = self.resolve_inputs(&templates, &groups, &instances)?;
        let order = self.topological(&templates, &instances, &resolved)?;

        let (graph, variants) =
            self.expand_variants(seed, &dims, &order, &templates, &instances, &resolved);

        let order = stable_topological_order(&graph);
        let mut compare_names = Vec::new();
        for c in &compare {
            if templates.iter().any(|t| t.decl.name.value == c.value) {
                compare_names.push(c.value.clone());
            } else {
                let e = self
                    .here(
                        "judgeflow::plan::unknown_node",
                        format!("`compare` names unknown node `{}`", c.value),
                        c.span.clone(),
                        "no such node",
                    )
                    .suggest(
                        &c.value,
                        templates.iter().map(|t| t.decl.name.value.as_str()),
                    );
                self.error(e);
            }
        }
        if compare.is_empty() {
            compare_names = templates
                .iter()
                .filter(|t| {
                    !resolved
                        .iter()
                        .flatten()
                        .any(|r| instances[r.from].template_name == t.decl.name.value)
                })
                .map(|t| t.decl.name.value.clone())
                .collect();
        }
        if !self.errors.is_empty() {
            return None;
        }
        Some(Plan {
            name: name.value,
            graph,
            order,
            variants,
            compare: compare_names,
            groups: groups
                .iter()
                .map(|g| {
                    (
                        g.name.value.clone(),
                        g.nodes.iter().map(|m| m.value.clone()).collect(),
                    )
                })
                .collect(),
            executor,
        })
    }
}

struct Instance {
    template: usize,
    template_name: String,
    iteration: Option<u32>,
    name: String,
}

struct ResolvedInput {
    port: &'static str,
    kind: PortKind,
    from: usize,
    output: &'static str,
}

pub(super) fn plain(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}
