//! Planning stage: iteration groups. Each `[iterate.*]` member must be a node, in one group
//! only, and its `initial` value must come from outside the group.

use std::collections::HashMap;

use super::*;
use crate::config::{GroupDecl, NodeDecl};

impl Planner<'_> {
    /// The group each node belongs to (by index into `groups`); reports bad members.
    pub(super) fn group_membership(
        &mut self,
        nodes: &[NodeDecl],
        groups: &[GroupDecl],
    ) -> HashMap<String, usize> {
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
        group_of
    }
}
