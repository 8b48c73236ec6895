//! Why a node is dirty, as data.
//!
//! `plan` and `explain` compare a node's current [`Ingredients`] with those recorded at its last
//! run and name every ingredient that differs. Each difference is one [`DirtyReason`]: a typed
//! value that `plan --json` serialises as it is (tagged by `reason`, with a `text` field
//! carrying the rendering), and that the text output renders through [`std::fmt::Display`] only
//! at the edge. Parameter values appear as users write them (floats untagged), so
//! `{"reason": "param_changed", "name": "delta", "old": "1.0", "new": "2.0"}` renders as
//! `param delta: 1.0 → 2.0`.
//!
//! Content hashes are shortened to their first 12 hex digits, in the data as in the text: they
//! identify an output for a reader, not for a program (the full keys are in the cache).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::cache::{Ingredients, RunRecord};
use crate::plan::{Plan, PlanNode};

/// One reason a node must run (or, while waiting for upstream nodes, one change of its own).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DirtyReason {
    /// No run of this node name was ever recorded.
    NeverRun,
    /// The node now names another operator (or another member of a family).
    OperatorChanged {
        /// Operator (and kind) at the last run.
        old: String,
        /// Operator (and kind) now.
        new: String,
    },
    /// The operator's `version()` moved.
    OperatorVersionChanged {
        /// At the last run.
        old: u32,
        /// Now.
        new: u32,
    },
    /// A parameter's value moved.
    ParamChanged {
        /// Parameter name.
        name: String,
        /// Value at the last run, as written in a pipeline.
        old: String,
        /// Value now.
        new: String,
    },
    /// A parameter the operator did not declare at the last run.
    ParamAdded {
        /// Parameter name.
        name: String,
        /// Its value now.
        value: String,
    },
    /// A parameter the operator no longer declares.
    ParamRemoved {
        /// Parameter name.
        name: String,
        /// Its value at the last run.
        value: String,
    },
    /// The seed moved (`seed = N` edited, the pipeline seed changed), or entered or left the key
    /// because the operator's [`crate::Operator::uses_seed`] changed.
    SeedChanged {
        /// At the last run (`None`: not part of the key).
        old: Option<u64>,
        /// Now.
        new: Option<u64>,
    },
    /// Never run under this name, but a node of the same pipeline with exactly these settings
    /// and inputs ran under another name: the operator draws random numbers from a seed derived
    /// from the node's name, so a renamed node is a new draw.
    RenamedSeeded {
        /// The seed the other name gave.
        old: u64,
        /// The seed this name gives.
        new: u64,
    },
    /// An environment variable the operator declares ([`crate::Operator::environment`]) was
    /// set, unset or changed.
    EnvChanged {
        /// The variable.
        name: String,
        /// Its value at the last run (`None`: unset or empty).
        old: Option<String>,
        /// Its value now.
        new: Option<String>,
    },
    /// The content connected to an input port changed.
    InputChanged {
        /// Input port.
        port: String,
        /// Content hash at the last run (12 hex digits).
        old: String,
        /// Content hash now (12 hex digits).
        new: String,
        /// The node it comes from.
        from: String,
    },
    /// An input port that had nothing connected at the last run.
    InputConnected {
        /// Input port.
        port: String,
        /// The node it comes from.
        from: String,
    },
    /// A file outside the cache that the operator reads has new content.
    FileChanged {
        /// The path as the operator names it.
        path: String,
    },
    /// A file outside the cache that the last run did not read.
    FileAdded {
        /// The path as the operator names it.
        path: String,
    },
    /// Every ingredient matches the last run, but its entry is gone.
    EntryMissing,
    /// The entry exists but its bytes no longer match its manifest.
    EntryCorrupt {
        /// What was found.
        detail: String,
    },
}

impl fmt::Display for DirtyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DirtyReason::*;
        match self {
            NeverRun => write!(f, "never run"),
            OperatorChanged { old, new } => write!(f, "operator {old} → {new}"),
            OperatorVersionChanged { old, new } => write!(f, "op version {old} → {new}"),
            ParamChanged { name, old, new } => write!(f, "param {name}: {old} → {new}"),
            ParamAdded { name, value } => write!(f, "param {name} added ({value})"),
            ParamRemoved { name, value } => write!(f, "param {name} removed (was {value})"),
            SeedChanged {
                old: Some(old),
                new: Some(new),
            } => write!(f, "seed {old} → {new}"),
            SeedChanged { old: None, new: _ } => {
                write!(
                    f,
                    "the operator now draws random numbers: its seed joins the key"
                )
            }
            SeedChanged { old: _, new: None } => {
                write!(
                    f,
                    "the operator no longer uses its seed: the seed left the key"
                )
            }
            RenamedSeeded { old, new } => write!(
                f,
                "seed {old} → {new}: the same settings ran under another name, and this \
                 operator's seed derives from the node's name (set `seed = {old}` to keep it)"
            ),
            EnvChanged { name, old, new } => {
                let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".into());
                write!(f, "env {name}: {} → {}", shown(old), shown(new))
            }
            InputChanged {
                port,
                old,
                new,
                from,
            } => write!(f, "input {port}: content {old} → {new} (from `{from}`)"),
            InputConnected { port, from } => {
                write!(f, "input {port} newly connected (from `{from}`)")
            }
            FileChanged { path } => write!(f, "file {path}: content changed"),
            FileAdded { path } => write!(f, "file {path}: newly read"),
            EntryMissing => write!(f, "its cache entry was removed (gc or by hand)"),
            EntryCorrupt { detail } => write!(f, "cache entry is corrupt: {detail}"),
        }
    }
}

/// Compares with what tests and scripts used to match: the rendered text.
impl PartialEq<&str> for DirtyReason {
    fn eq(&self, other: &&str) -> bool {
        let rendered = self.to_string();
        rendered == *other
    }
}

impl PartialEq<String> for DirtyReason {
    fn eq(&self, other: &String) -> bool {
        let rendered = self.to_string();
        rendered == *other
    }
}

/// A reason as `plan --json` writes it: the typed fields plus their rendering.
pub(crate) fn serialize_reasons<S: Serializer>(
    reasons: &[DirtyReason],
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct WithText<'a> {
        #[serde(flatten)]
        reason: &'a DirtyReason,
        text: String,
    }
    s.collect_seq(reasons.iter().map(|reason| WithText {
        reason,
        text: reason.to_string(),
    }))
}

/// What changed in a node's own settings (everything but inputs and files).
pub fn own_changes(old: &Ingredients, new: &Ingredients) -> Vec<DirtyReason> {
    let mut why = Vec::new();
    if old.op != new.op || old.kind != new.kind {
        let named = |i: &Ingredients| match &i.kind {
            Some(kind) => format!("{} ({kind})", i.op),
            None => i.op.clone(),
        };
        why.push(DirtyReason::OperatorChanged {
            old: named(old),
            new: named(new),
        });
    } else if old.op_version != new.op_version {
        why.push(DirtyReason::OperatorVersionChanged {
            old: old.op_version,
            new: new.op_version,
        });
    }
    let (empty_a, empty_b) = (serde_json::Map::new(), serde_json::Map::new());
    let a = old.params.as_object().unwrap_or(&empty_a);
    let b = new.params.as_object().unwrap_or(&empty_b);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let name = k.clone();
        match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x != y => why.push(DirtyReason::ParamChanged {
                name,
                old: show(x),
                new: show(y),
            }),
            (Some(x), None) => why.push(DirtyReason::ParamRemoved {
                name,
                value: show(x),
            }),
            (None, Some(y)) => why.push(DirtyReason::ParamAdded {
                name,
                value: show(y),
            }),
            _ => {}
        }
    }
    if old.seed != new.seed {
        why.push(DirtyReason::SeedChanged {
            old: old.seed,
            new: new.seed,
        });
    }
    let vars: BTreeSet<&String> = old.env.keys().chain(new.env.keys()).collect();
    for var in vars {
        let (was, now) = (old.env.get(var), new.env.get(var));
        if was != now {
            why.push(DirtyReason::EnvChanged {
                name: var.clone(),
                old: was.cloned(),
                new: now.cloned(),
            });
        }
    }
    why
}

/// Every ingredient that differs between a node's last run and now; when none does, the entry
/// itself went missing.
pub fn diff(
    plan: &Plan,
    node: &PlanNode,
    old: &Ingredients,
    new: &Ingredients,
) -> Vec<DirtyReason> {
    let mut why = own_changes(old, new);
    for b in &node.inputs {
        let now = &new.inputs[b.port];
        let from = plan.graph[b.from].name.clone();
        match old.inputs.get(b.port) {
            Some(was) if was != now => why.push(DirtyReason::InputChanged {
                port: b.port.to_string(),
                old: short(was),
                new: short(now),
                from,
            }),
            None => why.push(DirtyReason::InputConnected {
                port: b.port.to_string(),
                from,
            }),
            _ => {}
        }
    }
    for (path, now) in &new.files {
        match old.files.get(path) {
            Some(was) if was != now => why.push(DirtyReason::FileChanged { path: path.clone() }),
            None => why.push(DirtyReason::FileAdded { path: path.clone() }),
            _ => {}
        }
    }
    if why.is_empty() {
        why.push(DirtyReason::EntryMissing);
    }
    why
}

/// Why a node whose name never ran is dirty: [`DirtyReason::RenamedSeeded`] when another record
/// of its pipeline holds exactly its ingredients but for the seed (a seeded node renamed),
/// otherwise [`DirtyReason::NeverRun`].
pub fn never_run(records: &[RunRecord], new: &Ingredients) -> DirtyReason {
    let Some(seed) = new.seed else {
        return DirtyReason::NeverRun;
    };
    records
        .iter()
        .find_map(|r| {
            let old = r.ingredients.seed?;
            let mut same = r.ingredients.clone();
            same.seed = Some(seed);
            (same == *new).then_some(DirtyReason::RenamedSeeded { old, new: seed })
        })
        .unwrap_or(DirtyReason::NeverRun)
}

fn short(hash: &str) -> String {
    hash[..12.min(hash.len())].to_string()
}

/// Parameter JSON as users wrote it (floats are tagged in keys; untag them for display).
fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) if m.len() == 1 && m.contains_key("f64") => {
            m["f64"].as_str().unwrap_or_default().to_string()
        }
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}
