//! Running part of a pipeline: `judgeflow run PIPELINE [NODE ...]` (and `plan`, `graph`).
//!
//! # What a selection means
//! The plan is cut down to the selected nodes and everything upstream of them (their *cone*);
//! nothing downstream of them and nothing beside them runs, is planned or drawn. Selection never
//! changes a node's key: the cone computes exactly what it computes in a full run, so a partial
//! run and a full run share every cache entry, whichever comes first.
//!
//! # What an argument names
//! Tried in this order; the first rule that matches anything wins:
//! 1. a node's display name exactly (`judge@2[vote.method=oracle]`, `world`);
//! 2. `NAME[LABEL]`: `NAME` as in 3–5, but only in the sweep variant labelled `LABEL`
//!    (a node that variant shares with others is selected too: it is that variant's node);
//! 3. an instance name (`judge@2`): in every sweep variant;
//! 4. `TEMPLATE@last`: the last repetition of an iterated node;
//! 5. a template (`judge`): every repetition, in every variant;
//! 6. an `[iterate.*]` group (`self_train`): every repetition of every member.
//!
//! An argument that matches nothing fails the command with a diagnostic pointing at it and the
//! closest name there is, before anything runs.

use std::collections::{BTreeSet, HashSet};

use miette::NamedSource;
use petgraph::graph::NodeIndex;

use crate::error::{Error, UnknownNode, closest};
use crate::plan::Plan;

impl Plan {
    /// Restricts the plan to the upstream cone of the nodes `names` select (see the module
    /// docs); no names leaves it whole.
    pub fn select(&mut self, names: &[String]) -> Result<(), Error> {
        if names.is_empty() {
            return Ok(());
        }
        let mut chosen: Vec<NodeIndex> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match self.matching(name) {
                Some(found) => chosen.extend(found),
                None => return Err(self.unknown(names, i)),
            }
        }
        let mut cone: HashSet<NodeIndex> = HashSet::new();
        while let Some(i) = chosen.pop() {
            if cone.insert(i) {
                chosen.extend(self.graph[i].inputs.iter().map(|b| b.from));
            }
        }
        self.order.retain(|i| cone.contains(i));
        Ok(())
    }

    /// The nodes one argument selects, or `None` when it names nothing.
    fn matching(&self, name: &str) -> Option<Vec<NodeIndex>> {
        let exact: Vec<NodeIndex> = self
            .order
            .iter()
            .copied()
            .filter(|&i| self.graph[i].name == name)
            .collect();
        if !exact.is_empty() {
            return Some(exact);
        }
        let (base, candidates): (&str, Vec<NodeIndex>) =
            match name.strip_suffix(']').and_then(|s| s.split_once('[')) {
                Some((base, label)) => {
                    let variant = self.variants.iter().find(|v| v.label == label)?;
                    let mut nodes: Vec<NodeIndex> = variant.nodes.values().copied().collect();
                    nodes.sort_by_key(|i| self.order.iter().position(|o| o == i));
                    (base, nodes)
                }
                None => (name, self.order.clone()),
            };
        let pick = |keep: &dyn Fn(NodeIndex) -> bool| -> Option<Vec<NodeIndex>> {
            let found: Vec<NodeIndex> = candidates.iter().copied().filter(|&i| keep(i)).collect();
            (!found.is_empty()).then_some(found)
        };
        let node = |i: NodeIndex| &self.graph[i];
        pick(&|i| node(i).instance == base)
            .or_else(|| {
                let template = base.strip_suffix("@last")?;
                let last = candidates
                    .iter()
                    .filter(|&&i| node(i).template == template)
                    .filter_map(|&i| node(i).iteration)
                    .max()?;
                pick(&|i| node(i).template == template && node(i).iteration == Some(last))
            })
            .or_else(|| pick(&|i| node(i).template == base))
            .or_else(|| {
                let (_, members) = self.groups.iter().find(|(g, _)| g == base)?;
                pick(&|i| node(i).iteration.is_some() && members.contains(&node(i).template))
            })
    }

    /// The diagnostic for argument `bad` of `names`.
    fn unknown(&self, names: &[String], bad: usize) -> Error {
        let name = &names[bad];
        let start: usize = names[..bad].iter().map(|n| n.len() + 1).sum();
        let labelled = name.strip_suffix(']').and_then(|s| s.split_once('['));
        let help = match labelled {
            Some((_, label)) if !self.variants.iter().any(|v| v.label == label) => {
                let labels: Vec<&str> = self.variants.iter().map(|v| v.label.as_str()).collect();
                Some(match closest(label, labels.iter().copied()) {
                    Some(c) => format!("no sweep variant `{label}`; did you mean `{c}`?"),
                    None if labels == [""] => "the pipeline has no sweep".to_string(),
                    None => format!("sweep variants: {}", labels.join(", ")),
                })
            }
            _ => {
                let base = labelled.map_or(name.as_str(), |(b, _)| b);
                // Every name an argument may use is a candidate (so a misspelt `judge@2` is
                // answered with `judge@2`); the fallback list shows templates and groups only.
                let mut known: BTreeSet<&str> = BTreeSet::new();
                let mut listed: Vec<&str> = Vec::new();
                for &i in &self.order {
                    let n = &self.graph[i];
                    if known.insert(&n.template) {
                        listed.push(&n.template);
                    }
                    known.insert(&n.instance);
                    known.insert(&n.name);
                }
                for (g, _) in &self.groups {
                    if known.insert(g) {
                        listed.push(g);
                    }
                }
                Some(match closest(base, known.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("nodes and groups: {}", listed.join(", ")),
                })
            }
        };
        Error::UnknownNode(Box::new(UnknownNode {
            name: name.clone(),
            pipeline: self.name.clone(),
            args: NamedSource::new("command line", names.join(" ")),
            span: (start, name.len()).into(),
            help,
        }))
    }
}
