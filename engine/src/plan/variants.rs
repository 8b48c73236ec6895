//! Planning stage: variants. Expands sweeps into variants and builds the plan's graph, merging
//! nodes of different variants whose *identity* is the same (see the parent module); derives
//! each node's seed; names the nodes that sweeps split.

use std::collections::{BTreeMap, HashMap};

use petgraph::graph::{DiGraph, NodeIndex};

use super::*;
use crate::op::Operator;
use crate::value::{Params, Value};

impl Planner<'_> {
    /// The plan's graph and variants, from the resolved instance graph of the first variant.
    pub(super) fn expand_variants(
        &self,
        seed: u64,
        dims: &[sweeps::Dim],
        order: &[usize],
        templates: &[Template],
        instances: &[Instance],
        resolved: &[Vec<ResolvedInput>],
    ) -> (DiGraph<PlanNode, ()>, Vec<Variant>) {
        let mut variant_settings: Vec<Vec<(String, String, Value)>> = vec![Vec::new()];
        for (node, param, values) in dims {
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
            for &ii in order {
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
                        shards: t.decl.shards.as_ref().map_or(1, |s| s.value.max(1)),
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
        (graph, variants)
    }
}

pub(super) fn identity(
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
