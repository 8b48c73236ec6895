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

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::config::{InputsDecl, NodeDecl, PipelineDecl, RESERVED_NODE_KEYS, Sp, valid_name};
use crate::error::{ConfigError, Origin};
use crate::op::{Operator, Port, PortKind, Registry};
use crate::value::{Params, Value};

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

/// Derives a node's seed from the pipeline seed, its template name and repetition, so seeds are
/// stable when unrelated nodes are added or sweeps change.
pub fn derive_seed(pipeline_seed: u64, template: &str, iteration: Option<u32>) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"judgeflow.seed.v1");
    h.update(&pipeline_seed.to_le_bytes());
    h.update(template.as_bytes());
    h.update(&iteration.unwrap_or(0).to_le_bytes());
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
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
fn seed_value(value: &Value) -> Result<u64, String> {
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
            nodes,
            groups,
            sweeps,
            ..
        } = decl;
        let mut entries = self.collect_params(&nodes);
        self.apply_overrides(&nodes, &mut entries, overrides);
        let seed = self.seed_override.as_ref().map_or(seed, |o| o.seed);

        // Group membership.
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for (gi, g) in groups.iter().enumerate() {
            for member in &g.nodes {
                if !nodes.iter().any(|n| n.name.value == member.value) {
                    let e = self
                        .here(
                            "judgeflow::plan::unknown_node",
                            format!(
                                "iteration group `{}` names unknown node `{}`",
                                g.name.value, member.value
                            ),
                            member.span.clone(),
                            "no such node",
                        )
                        .suggest(&member.value, nodes.iter().map(|n| n.name.value.as_str()));
                    self.error(e);
                } else if let Some(prev) = group_of.insert(member.value.clone(), gi) {
                    let msg = if prev == gi {
                        format!(
                            "node `{}` is listed twice in group `{}`",
                            member.value, g.name.value
                        )
                    } else {
                        format!(
                            "node `{}` is in two iteration groups (`{}` and `{}`)",
                            member.value, groups[prev].name.value, g.name.value
                        )
                    };
                    let e = self.here(
                        "judgeflow::plan::duplicate_member",
                        msg,
                        member.span.clone(),
                        "already a member",
                    );
                    self.error(e);
                }
            }
            for (member, target) in &g.initial {
                if !g.nodes.iter().any(|m| m.value == member.value) {
                    let e = self.here(
                        "judgeflow::plan::bad_initial",
                        format!(
                            "`initial` names `{}`, which is not a member of group `{}`",
                            member.value, g.name.value
                        ),
                        member.span.clone(),
                        "not in this group",
                    );
                    self.error(e);
                }
                let r = split_ref(&target.value);
                if r.selector.is_some() || group_of.get(r.node) == Some(&gi) {
                    let e = self.here(
                        "judgeflow::plan::bad_initial",
                        format!(
                            "the initial value of `{}` must be a node outside the group",
                            member.value
                        ),
                        target.span.clone(),
                        "refers into the group",
                    );
                    self.error(e);
                }
            }
        }

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

        // Sweeps: validate each target and alternative.
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
                seed_dim = Some(self.seed_alternatives(s, &templates));
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

        // Variants.
        let mut variant_settings: Vec<Vec<(String, String, Value)>> = vec![Vec::new()];
        for (node, param, values) in &dims {
            variant_settings = variant_settings
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut next = prefix.clone();
                        next.push((node.clone(), param.clone(), v.clone()));
                        next
                    })
                })
                .collect();
        }

        let mut graph: DiGraph<PlanNode, ()> = DiGraph::new();
        let mut by_identity: HashMap<blake3::Hash, NodeIndex> = HashMap::new();
        let mut variants = Vec::new();
        for (vi, settings) in variant_settings.iter().enumerate() {
            let mut nodes_of_variant: BTreeMap<String, NodeIndex> = BTreeMap::new();
            let is_seed = |node: &str, param: &str| SEED_KEY.split_once('.') == Some((node, param));
            let pipeline_seed = settings
                .iter()
                .find(|(n, p, _)| is_seed(n, p))
                .map_or(seed, |(_, _, v)| {
                    seed_value(v).expect("seed alternatives are checked")
                });
            for &ii in &order {
                let inst = &instances[ii];
                let t = &templates[inst.template];
                let mut params = t.params.clone();
                for (node, param, value) in settings {
                    if *node == t.decl.name.value && !is_seed(node, param) {
                        params.0.insert(param.clone(), value.clone());
                    }
                }
                let seed = t.seed.unwrap_or_else(|| {
                    derive_seed(pipeline_seed, &t.decl.name.value, inst.iteration)
                });
                let gpus = t.gpus.unwrap_or_else(|| t.op.gpus(&params));
                let bindings: Vec<Binding> = resolved[ii]
                    .iter()
                    .map(|r| Binding {
                        port: r.port,
                        kind: r.kind,
                        from: nodes_of_variant[&instances[r.from].name],
                        output: r.output,
                    })
                    .collect();
                let identity = identity(&*t.op, &params, seed, gpus, &bindings, &graph);
                let idx = *by_identity.entry(identity).or_insert_with(|| {
                    graph.add_node(PlanNode {
                        name: inst.name.clone(),
                        instance: inst.name.clone(),
                        template: t.decl.name.value.clone(),
                        iteration: inst.iteration,
                        op: t.op.clone(),
                        outputs: t.op.outputs(&params),
                        params,
                        seed,
                        gpus,
                        inputs: bindings.clone(),
                        variants: Vec::new(),
                        identity,
                    })
                });
                if graph[idx].variants.last() != Some(&vi) {
                    graph[idx].variants.push(vi);
                    if graph[idx].variants.len() == 1 {
                        for b in &bindings {
                            graph.add_edge(b.from, idx, ());
                        }
                    }
                }
                nodes_of_variant.insert(inst.name.clone(), idx);
            }
            let label = settings
                .iter()
                .map(|(n, p, v)| setting_label(&format!("{n}.{p}"), v))
                .collect::<Vec<_>>()
                .join(",");
            variants.push(Variant {
                label,
                settings: settings
                    .iter()
                    .map(|(n, p, v)| (format!("{n}.{p}"), v.clone()))
                    .collect(),
                nodes: nodes_of_variant,
            });
        }

        // Display names: nodes that sweeps split get the settings their variants share.
        let all = variants.len();
        for idx in graph.node_indices() {
            let vs = &graph[idx].variants;
            if vs.len() < all {
                let first = &variants[vs[0]].settings;
                let common: Vec<String> = first
                    .iter()
                    .filter(|(k, v)| {
                        vs.iter().all(|&o| {
                            variants[o]
                                .settings
                                .iter()
                                .any(|(k2, v2)| k2 == k && v2 == v)
                        })
                    })
                    .map(|(k, v)| setting_label(k, v))
                    .collect();
                let name = format!("{}[{}]", graph[idx].instance, common.join(","));
                graph[idx].name = name;
            }
        }

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
        })
    }

    fn collect_params(&mut self, nodes: &[NodeDecl]) -> HashMap<String, Vec<ParamEntry>> {
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

    /// Checks the alternatives of `"pipeline.seed"`: non-negative integers, each once, and a
    /// seed that reaches at least one node; also that no `--set pipeline.seed` contradicts it.
    fn seed_alternatives(
        &mut self,
        s: &crate::config::SweepDecl,
        templates: &[Template],
    ) -> Vec<Value> {
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

    fn apply_overrides(
        &mut self,
        nodes: &[NodeDecl],
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
            if target == SEED_KEY {
                let span = target.len() + 1..raw.len();
                match seed_value(&Value::parse_cli(value_text)) {
                    Ok(seed) => {
                        self.seed_override = Some(SeedOverride { seed, origin, span });
                    }
                    Err(label) => self.error(
                        ConfigError::new(
                            "judgeflow::set::bad_seed",
                            format!("invalid value for `{SEED_KEY}`"),
                        )
                        .at(&origin, span, label)
                        .help(format!("seeds are integers from 0 to {}", i64::MAX)),
                    ),
                }
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
            if param == "op" || param == "inputs" {
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
                    .help("edit the pipeline file to change what a node is or reads"),
                );
                continue;
            }
            let value_start = target.len() + 1;
            let entry = ParamEntry {
                name: param.to_string(),
                origin: origin.clone(),
                name_span: node.len() + 1..target.len(),
                value: Value::parse_cli(value_text),
                value_span: value_start..raw.len(),
            };
            let list = entries.get_mut(node).expect("checked above");
            list.retain(|e| e.name != param);
            list.push(entry);
        }
    }

    fn template(
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
        ok.then(|| Template {
            decl: node.clone(),
            op,
            params: Params(resolved),
            seed: node.seed.as_ref().map(|s| s.value),
            gpus: node.gpus.as_ref().map(|g| g.value),
            group,
        })
    }

    fn instances(
        &self,
        templates: &[Template],
        groups: &[crate::config::GroupDecl],
    ) -> Vec<Instance> {
        let mut out = Vec::new();
        for (ti, t) in templates.iter().enumerate() {
            match t.group {
                Some(g) => {
                    for i in 1..=groups[g].times.value {
                        out.push(Instance {
                            template: ti,
                            template_name: t.decl.name.value.clone(),
                            iteration: Some(i),
                            name: format!("{}@{i}", t.decl.name.value),
                        });
                    }
                }
                None => out.push(Instance {
                    template: ti,
                    template_name: t.decl.name.value.clone(),
                    iteration: None,
                    name: t.decl.name.value.clone(),
                }),
            }
        }
        out
    }

    /// For each instance, its resolved inputs (as instance indices). Errors are reported once per
    /// template (spans are per template), hence the dedup in [`build`].
    fn resolve_inputs(
        &mut self,
        templates: &[Template],
        groups: &[crate::config::GroupDecl],
        instances: &[Instance],
    ) -> Option<Vec<Vec<ResolvedInput>>> {
        let index: HashMap<&str, usize> = instances
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.name.as_str(), i))
            .collect();
        let mut all = Vec::new();
        for inst in instances {
            let t = &templates[inst.template];
            let ports = t.op.inputs(&t.params);
            let refs: Vec<(Option<&Sp<String>>, &Sp<String>)> = match &t.decl.inputs {
                InputsDecl::None => Vec::new(),
                InputsDecl::Positional(list) => list.iter().map(|r| (None, r)).collect(),
                InputsDecl::Named(list) => list.iter().map(|(p, r)| (Some(p), r)).collect(),
            };
            let mut bound: Vec<ResolvedInput> = Vec::new();
            // Ports the file tried to connect, even where that failed: they are reported once,
            // at the failing reference, not again as "missing".
            let mut attempted: Vec<&str> = Vec::new();
            for (pos, (port_name, reference)) in refs.iter().enumerate() {
                let port = match port_name {
                    None => match ports.get(pos) {
                        Some(p) => p.clone(),
                        None => {
                            let e = self
                                .here(
                                    "judgeflow::plan::too_many_inputs",
                                    format!(
                                        "op `{}` takes {} input{}, node `{}` gives more",
                                        t.op.name(),
                                        ports.len(),
                                        if ports.len() == 1 { "" } else { "s" },
                                        t.decl.name.value
                                    ),
                                    reference.span.clone(),
                                    "no port left for this input",
                                )
                                .help(format!(
                                    "ports of `{}`: {}",
                                    t.op.name(),
                                    describe_ports(&ports)
                                ));
                            self.error(e);
                            continue;
                        }
                    },
                    Some(pn) => match ports.iter().find(|p| p.name == pn.value) {
                        Some(p) => p.clone(),
                        None => {
                            let e = self
                                .here(
                                    "judgeflow::plan::unknown_port",
                                    format!(
                                        "op `{}` has no input port `{}`",
                                        t.op.name(),
                                        pn.value
                                    ),
                                    pn.span.clone(),
                                    "unknown input port",
                                )
                                .suggest(&pn.value, ports.iter().map(|p| p.name));
                            let e = if e.help.is_none() {
                                e.help(format!(
                                    "ports of `{}`: {}",
                                    t.op.name(),
                                    describe_ports(&ports)
                                ))
                            } else {
                                e
                            };
                            self.error(e);
                            continue;
                        }
                    },
                };
                attempted.push(port.name);
                if let Some(r) = self.resolve_ref(reference, inst, t, templates, groups, &index) {
                    let producer = &templates[instances[r.0].template];
                    let outputs = producer.op.outputs(&producer.params);
                    let output = match r.1.as_deref() {
                        None => match outputs.first() {
                            Some(o) => o.clone(),
                            None => {
                                let e = self.here(
                                    "judgeflow::plan::no_output",
                                    format!(
                                        "node `{}` has no outputs to read",
                                        producer.decl.name.value
                                    ),
                                    reference.span.clone(),
                                    "nothing to read",
                                );
                                self.error(e);
                                continue;
                            }
                        },
                        Some(name) => match outputs.iter().find(|o| o.name == name) {
                            Some(o) => o.clone(),
                            None => {
                                let e = self
                                    .here(
                                        "judgeflow::plan::unknown_port",
                                        format!(
                                            "node `{}` has no output `{name}`",
                                            producer.decl.name.value
                                        ),
                                        reference.span.clone(),
                                        "unknown output port",
                                    )
                                    .suggest(name, outputs.iter().map(|o| o.name));
                                let e = if e.help.is_none() {
                                    e.help(format!(
                                        "outputs of `{}`: {}",
                                        producer.decl.name.value,
                                        describe_ports(&outputs)
                                    ))
                                } else {
                                    e
                                };
                                self.error(e);
                                continue;
                            }
                        },
                    };
                    if let Some(problem) = incompatible(&output.kind, &port.kind) {
                        let e = self
                            .here(
                                "judgeflow::plan::schema_mismatch",
                                format!(
                                    "`{}` gives {} but port `{}` of `{}` expects {}",
                                    reference.value,
                                    output.kind.describe(),
                                    port.name,
                                    t.decl.name.value,
                                    port.kind.describe()
                                ),
                                reference.span.clone(),
                                problem,
                            )
                            .help(
                                "connect a node whose output carries the columns this port needs",
                            );
                        self.error(e);
                        continue;
                    }
                    if bound.iter().any(|b| b.port == port.name) {
                        let e = self.here(
                            "judgeflow::plan::duplicate_input",
                            format!("port `{}` is connected twice", port.name),
                            reference.span.clone(),
                            "second connection",
                        );
                        self.error(e);
                        continue;
                    }
                    bound.push(ResolvedInput {
                        port: port.name,
                        kind: port.kind,
                        from: r.0,
                        output: output.name,
                    });
                }
            }
            for port in &ports {
                if !port.optional && !attempted.contains(&port.name) {
                    let e = self
                        .here(
                            "judgeflow::plan::missing_input",
                            format!(
                                "node `{}` does not connect input `{}` ({})",
                                t.decl.name.value,
                                port.name,
                                port.kind.describe()
                            ),
                            t.decl.name.span.clone(),
                            "missing input",
                        )
                        .help(format!(
                            "ports of `{}`: {}",
                            t.op.name(),
                            describe_ports(&ports)
                        ));
                    self.error(e);
                }
            }
            all.push(bound);
        }
        self.errors.is_empty().then_some(all)
    }

    #[allow(clippy::too_many_arguments)]
    fn resolve_ref(
        &mut self,
        reference: &Sp<String>,
        inst: &Instance,
        t: &Template,
        templates: &[Template],
        groups: &[crate::config::GroupDecl],
        index: &HashMap<&str, usize>,
    ) -> Option<(usize, Option<String>)> {
        let r = split_ref(&reference.value);
        let span = reference.span.clone();
        let Some(target) = templates.iter().find(|x| x.decl.name.value == r.node) else {
            let valid = valid_name(r.node);
            let e = self
                .here(
                    "judgeflow::plan::unknown_node",
                    format!(
                        "input `{}` of node `{}` refers to unknown node `{}`",
                        reference.value, t.decl.name.value, r.node
                    ),
                    span,
                    if valid {
                        "no such node"
                    } else {
                        "not a node reference"
                    },
                )
                .suggest(r.node, templates.iter().map(|x| x.decl.name.value.as_str()));
            self.error(e);
            return None;
        };
        let name = match (r.selector, target.group) {
            (Some("prev"), Some(g)) if t.group == Some(g) => {
                let i = inst.iteration.expect("group members have iterations");
                if i > 1 {
                    format!("{}@{}", r.node, i - 1)
                } else {
                    let Some((_, init)) = groups[g].initial.iter().find(|(m, _)| m.value == r.node)
                    else {
                        let e = self
                            .here(
                                "judgeflow::plan::missing_initial",
                                format!(
                                    "`{}` has no value for the first repetition",
                                    reference.value
                                ),
                                span,
                                "nothing before repetition 1",
                            )
                            .help(format!(
                                "add `initial = {{ {} = \"NODE\" }}` to `[iterate.{}]`",
                                r.node, groups[g].name.value
                            ));
                        self.error(e);
                        return None;
                    };
                    let ir = split_ref(&init.value);
                    if !templates
                        .iter()
                        .any(|x| x.decl.name.value == ir.node && x.group.is_none())
                    {
                        let e = self
                            .here(
                                "judgeflow::plan::unknown_node",
                                format!("`initial` refers to unknown node `{}`", ir.node),
                                init.span.clone(),
                                "no such node outside the group",
                            )
                            .suggest(
                                ir.node,
                                templates
                                    .iter()
                                    .filter(|x| x.group.is_none())
                                    .map(|x| x.decl.name.value.as_str()),
                            );
                        self.error(e);
                        return None;
                    }
                    let port = r.port.or(ir.port).map(str::to_string);
                    return Some((index[ir.node], port));
                }
            }
            (Some("prev"), _) => {
                let e = self
                    .here(
                        "judgeflow::plan::bad_selector",
                        format!(
                            "`{}`: `@prev` works only between members of one iteration group",
                            reference.value
                        ),
                        span,
                        "not inside the same group",
                    )
                    .help("outside a group, name a repetition: `NODE@last` or `NODE@2`");
                self.error(e);
                return None;
            }
            (Some(sel), Some(g)) => {
                let times = groups[g].times.value;
                let n = if sel == "last" {
                    Some(times)
                } else {
                    sel.parse::<u32>().ok().filter(|n| (1..=times).contains(n))
                };
                let Some(n) = n else {
                    let e = self.here(
                        "judgeflow::plan::bad_selector",
                        format!("`{}`: repetition `{sel}` does not exist", reference.value),
                        span,
                        format!(
                            "group `{}` runs {times} time{}",
                            groups[g].name.value,
                            if times == 1 { "" } else { "s" }
                        ),
                    );
                    self.error(e);
                    return None;
                };
                format!("{}@{n}", r.node)
            }
            (Some(_), None) => {
                let e = self.here(
                    "judgeflow::plan::bad_selector",
                    format!(
                        "`{}`: node `{}` is not repeated, so it takes no `@`",
                        reference.value, r.node
                    ),
                    span,
                    "not in an iteration group",
                );
                self.error(e);
                return None;
            }
            (None, Some(g)) if t.group == Some(g) => {
                format!("{}@{}", r.node, inst.iteration.expect("member"))
            }
            (None, Some(g)) => {
                let e = self
                    .here(
                        "judgeflow::plan::ambiguous_ref",
                        format!(
                            "`{}` repeats in group `{}`; say which repetition",
                            r.node, groups[g].name.value
                        ),
                        span,
                        "which repetition?",
                    )
                    .help(format!(
                        "write `{}@last` or `{}@1`..`{}@{}`",
                        r.node, r.node, r.node, groups[g].times.value
                    ));
                self.error(e);
                return None;
            }
            (None, None) => r.node.to_string(),
        };
        Some((index[name.as_str()], r.port.map(str::to_string)))
    }

    fn topological(
        &mut self,
        templates: &[Template],
        instances: &[Instance],
        resolved: &[Vec<ResolvedInput>],
    ) -> Option<Vec<usize>> {
        let mut g: DiGraph<usize, ()> = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..instances.len()).map(|i| g.add_node(i)).collect();
        for (ii, inputs) in resolved.iter().enumerate() {
            for r in inputs {
                g.add_edge(nodes[r.from], nodes[ii], ());
            }
        }
        match toposort(&g, None) {
            Ok(order) => Some(order.into_iter().map(|n| g[n]).collect()),
            Err(_) => {
                for scc in tarjan_scc(&g) {
                    let set: BTreeSet<NodeIndex> = scc.iter().copied().collect();
                    let self_loop = scc.len() == 1 && g.edges(scc[0]).any(|e| e.target() == scc[0]);
                    if scc.len() < 2 && !self_loop {
                        continue;
                    }
                    let cycle = find_cycle(&g, scc[scc.len() - 1], &set);
                    let names: Vec<&str> = cycle
                        .iter()
                        .map(|&n| instances[g[n]].name.as_str())
                        .collect();
                    let first = &templates[instances[g[cycle[0]]].template];
                    let mut e = self.here(
                        "judgeflow::plan::cycle",
                        format!(
                            "the pipeline has a cycle: {} → {}",
                            names.join(" → "),
                            names[0]
                        ),
                        first.decl.name.span.clone(),
                        "this node depends on itself through the cycle",
                    );
                    for &n in &cycle[1..] {
                        let t = &templates[instances[g[n]].template];
                        if t.decl.name.span != first.decl.name.span {
                            e = e.also(t.decl.name.span.clone(), "part of the cycle");
                        }
                    }
                    let e = e.help("pipelines are acyclic; to feed a result back, use an `[iterate]` group with `NODE@prev`");
                    self.error(e);
                }
                None
            }
        }
    }
}

/// Kahn's algorithm taking the lowest index first: nodes were added in file order (per variant),
/// so plans, logs and graphs list independent nodes the way the file does.
fn stable_topological_order(graph: &DiGraph<PlanNode, ()>) -> Vec<NodeIndex> {
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|i| {
            graph
                .neighbors_directed(i, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: BTreeSet<NodeIndex> = graph
        .node_indices()
        .filter(|i| indegree[i.index()] == 0)
        .collect();
    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(next) = ready.pop_first() {
        order.push(next);
        for succ in graph.neighbors(next) {
            indegree[succ.index()] -= 1;
            if indegree[succ.index()] == 0 {
                ready.insert(succ);
            }
        }
    }
    debug_assert_eq!(
        order.len(),
        graph.node_count(),
        "instance graph was acyclic"
    );
    order
}

/// A path u → … → u inside one strongly connected component.
fn find_cycle(
    g: &DiGraph<usize, ()>,
    start: NodeIndex,
    scc: &BTreeSet<NodeIndex>,
) -> Vec<NodeIndex> {
    let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(u) = queue.pop_front() {
        for e in g.edges(u) {
            let v = e.target();
            if v == start {
                let mut path = vec![u];
                let mut cur = u;
                while cur != start {
                    cur = parent[&cur];
                    path.push(cur);
                }
                path.reverse();
                return path;
            }
            if scc.contains(&v) && !parent.contains_key(&v) {
                parent.insert(v, u);
                queue.push_back(v);
            }
        }
    }
    vec![start]
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

fn describe_ports(ports: &[Port]) -> String {
    if ports.is_empty() {
        return "(none)".into();
    }
    ports
        .iter()
        .map(|p| {
            format!(
                "{}: {}{}",
                p.name,
                p.kind.describe(),
                if p.optional { " (optional)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn incompatible(given: &PortKind, wanted: &PortKind) -> Option<String> {
    match (given, wanted) {
        (PortKind::Frame(g), PortKind::Frame(w)) => {
            let missing = g.missing_for(w);
            (!missing.is_empty())
                .then(|| format!("schema `{}` lacks {}", g.name, missing.join(", ")))
        }
        (PortKind::Artifact(g), PortKind::Artifact(w)) => {
            (g != w).then(|| format!("a {g} is not a {w}"))
        }
        (PortKind::Frame(g), PortKind::Artifact(w)) => Some(format!(
            "frame `{}` given where a {w} artifact is needed",
            g.name
        )),
        (PortKind::Artifact(g), PortKind::Frame(w)) => Some(format!(
            "{g} artifact given where frame `{}` is needed",
            w.name
        )),
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

fn identity(
    op: &dyn Operator,
    params: &Params,
    seed: u64,
    gpus: u32,
    inputs: &[Binding],
    graph: &DiGraph<PlanNode, ()>,
) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(op.name().as_bytes());
    h.update(op.kind().unwrap_or("").as_bytes());
    h.update(&op.version().to_le_bytes());
    h.update(params.to_json().to_string().as_bytes());
    h.update(&seed.to_le_bytes());
    h.update(&gpus.to_le_bytes());
    for b in inputs {
        h.update(b.port.as_bytes());
        h.update(graph[b.from].identity.as_bytes());
        h.update(b.output.as_bytes());
    }
    h.finalize()
}
