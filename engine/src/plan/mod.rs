//! From declarations to a runnable DAG: operator lookup, parameter validation (with `--set`
//! overrides), sweep expansion, iteration unrolling, input resolution with schema checks, cycle
//! detection, and merging of nodes that sweeps do not reach.
//!
//! The pipeline seed is a setting like a parameter: `--set pipeline.seed=N` replaces
//! `[pipeline] seed`, and `[sweep] "pipeline.seed" = [..]` makes one variant per seed (see
//! [`SEED_KEY`]). A seed variant shares with another only what does not derive its seed from the
//! pipeline seed: nodes with their own `seed = N`, which identity merging then holds once.
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
    /// `--set pipeline.seed=N`, when given.
    seed_override: Option<SeedOverride>,
}

/// The pipeline seed as a sweep key and `--set` target: `[sweep] "pipeline.seed" = [1, 2, 3]`
/// makes one variant per seed; `--set pipeline.seed=N` replaces `[pipeline] seed`.
///
/// Every node without its own `seed` derives its seed from the pipeline seed ([`derive_seed`]),
/// so a seed variant shares nothing with another except nodes that set their own `seed` (and
/// what only they feed). The seed is the last setting of every variant, and its part of the
/// label is `seed=N` (`vote.method=oracle,seed=2`; [`split_seed`] takes it apart).
pub const SEED_KEY: &str = "pipeline.seed";

/// Splits a variant label into the label without its pipeline seed and that seed:
/// `vote.method=oracle,seed=2` → (`vote.method=oracle`, `Some(2)`), `seed=1` → (``, `Some(1)`),
/// a label without a seed → itself and `None`.
pub fn split_seed(label: &str) -> (&str, Option<u64>) {
    let (rest, digits) = match label.rsplit_once(",seed=") {
        Some((rest, digits)) => (rest, digits),
        None => match label.strip_prefix("seed=") {
            Some(digits) => ("", digits),
            None => return (label, None),
        },
    };
    match digits.parse::<u64>() {
        Ok(seed) if digits.bytes().all(|b| b.is_ascii_digit()) => (rest, Some(seed)),
        _ => (label, None),
    }
}

/// How one swept setting reads in labels and display names: `node.param=value`, and the
/// pipeline seed as `seed=N`.
fn setting_label(key: &str, value: &Value) -> String {
    if key == SEED_KEY {
        format!("seed={}", plain(value))
    } else {
        format!("{key}={}", plain(value))
    }
}

/// A seed as written (`--set` or a sweep alternative), or the label saying what is wrong.
/// Seeds are integers from 0 to `i64::MAX`, as TOML integers are.
fn seed_value(value: &Value) -> std::result::Result<u64, String> {
    match value {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Int(_) => Err("negative: a seed is 0 or more".into()),
        // `Value::parse_cli` keeps digits that overflow an integer as text.
        Value::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("too large: a seed is at most {}", i64::MAX))
        }
        other => Err(format!(
            "{}, not a seed (an integer, 0 or more)",
            other.type_name()
        )),
    }
}

/// `--set pipeline.seed=N`: the seed and where it was written.
struct SeedOverride {
    seed: u64,
    origin: Origin,
    span: Range<usize>,
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
        seed_override: None,
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
            mut nodes,
            mut groups,
            sweeps,
            executor,
            ..
        } = decl;
        let mut entries = self.collect_params(&nodes);
        self.apply_overrides(&mut nodes, &mut groups, &mut entries, overrides);
        let seed = self.seed_override.as_ref().map_or(seed, |o| o.seed);

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
