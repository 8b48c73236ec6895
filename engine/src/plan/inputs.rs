//! Planning stage: instances and inputs. Unrolls iteration groups into `name@1..N` instances
//! and resolves every input reference (`node`, `node.port`, `node@prev`, `node@last`),
//! checking each edge: frame schemas structurally, artifacts by kind.

use std::collections::HashMap;

use super::*;
use crate::config::{InputsDecl, Sp, valid_name};
use crate::op::{Port, PortKind};

impl Planner<'_> {
    pub(super) fn instances(
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
    pub(super) fn resolve_inputs(
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
    pub(super) fn resolve_ref(
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
}

pub(super) fn describe_ports(ports: &[Port]) -> String {
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

pub(super) fn incompatible(given: &PortKind, wanted: &PortKind) -> Option<String> {
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
