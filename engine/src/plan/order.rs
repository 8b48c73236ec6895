//! Planning stage: order. Topological order of the instance graph, with any cycle printed as
//! a path; plans list independent nodes in file order.

use std::collections::{BTreeSet, HashMap, VecDeque};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use super::*;

impl Planner<'_> {
    pub(super) fn topological(
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
pub(super) fn stable_topological_order(graph: &DiGraph<PlanNode, ()>) -> Vec<NodeIndex> {
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
pub(super) fn find_cycle(
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
