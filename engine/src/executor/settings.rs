//! Which executor runs a pipeline's nodes, and the Slurm options of its jobs: the `[executor]`
//! table of a pipeline file (overridden by `judgeflow run --executor`).
//!
//! ```toml
//! [executor]
//! kind = "slurm"            # threads (default) | subprocess | slurm
//! partition = "gpu"         # sbatch --partition
//! account = "vlm"           # sbatch --account
//! time = "04:00:00"         # sbatch --time
//! gpus_as = "gres"          # a node's GPUs as --gres=gpu:N (default) or --gpus=N
//! extra = ["--qos=high"]    # further sbatch flags, as written
//!
//! [executor.nodes.train]    # per-node overrides, by `[nodes.NAME]`; `extra` is appended
//! time = "12:00:00"
//! ```
//!
//! None of it is part of any cache key: where a node runs never changes what it computes.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use crate::error::{ConfigError, Origin};

/// Where nodes run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// On threads of the driver process (the default).
    #[default]
    Threads,
    /// Each node in its own `judgeflow exec-node` process on this machine.
    Subprocess,
    /// Each node as a Slurm job (`sbatch` of `judgeflow exec-node`).
    Slurm,
}

impl ExecutorKind {
    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Threads => "threads",
            ExecutorKind::Subprocess => "subprocess",
            ExecutorKind::Slurm => "slurm",
        }
    }
}

/// How a node's GPUs are asked of Slurm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuFlag {
    /// `--gres=gpu:N`, which every Slurm with GPUs configured understands.
    #[default]
    Gres,
    /// `--gpus=N` (Slurm 19.05 and later with `select/cons_tres`).
    Gpus,
}

/// The sbatch options of one node's job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--time`.
    pub time: Option<String>,
    /// How GPUs are requested (default `--gres`).
    pub gpus_as: Option<GpuFlag>,
    /// Further flags, passed to sbatch as written.
    pub extra: Vec<String>,
}

impl SlurmOptions {
    /// These options with `over`'s set fields in their place and its `extra` appended.
    pub fn merged(&self, over: &SlurmOptions) -> SlurmOptions {
        SlurmOptions {
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            time: over.time.clone().or_else(|| self.time.clone()),
            gpus_as: over.gpus_as.or(self.gpus_as),
            extra: self.extra.iter().chain(&over.extra).cloned().collect(),
        }
    }

    /// The sbatch flags these options stand for, for a job that needs `gpus` GPUs.
    pub fn sbatch_flags(&self, gpus: usize) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(p) = &self.partition {
            flags.push(format!("--partition={p}"));
        }
        if let Some(a) = &self.account {
            flags.push(format!("--account={a}"));
        }
        if let Some(t) = &self.time {
            flags.push(format!("--time={t}"));
        }
        if gpus > 0 {
            flags.push(match self.gpus_as.unwrap_or_default() {
                GpuFlag::Gres => format!("--gres=gpu:{gpus}"),
                GpuFlag::Gpus => format!("--gpus={gpus}"),
            });
        }
        flags.extend(self.extra.iter().cloned());
        flags
    }
}

/// A pipeline's `[executor]` table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutorSettings {
    /// Which executor.
    pub kind: ExecutorKind,
    /// Slurm options of every job.
    pub slurm: SlurmOptions,
    /// Per-node overrides, by template (`[nodes.NAME]`) name, with the span of the name.
    pub nodes: BTreeMap<String, (SlurmOptions, Range<usize>)>,
}

impl ExecutorSettings {
    /// The Slurm options of the node made from template `template`.
    pub fn slurm_for(&self, template: &str) -> SlurmOptions {
        match self.nodes.get(template) {
            Some((over, _)) => self.slurm.merged(over),
            None => self.slurm.clone(),
        }
    }
}

const TOP_KEYS: [&str; 7] = [
    "kind",
    "partition",
    "account",
    "time",
    "gpus_as",
    "extra",
    "nodes",
];

/// Parses an `[executor]` table, pushing a diagnostic for each problem.
pub(crate) fn parse_table(
    origin: &Origin,
    value: &Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> ExecutorSettings {
    let mut out = ExecutorSettings::default();
    let err = |errors: &mut Vec<ConfigError>, msg: String, span: Range<usize>, label: &str| {
        errors.push(ConfigError::new("judgeflow::config::executor", msg).at(origin, span, label));
    };
    let DeValue::Table(t) = value.get_ref() else {
        err(
            errors,
            "`executor` must be a table".into(),
            value.span(),
            "expected `[executor]`",
        );
        return out;
    };
    for (key, v) in t.iter() {
        match key.get_ref().as_ref() {
            "kind" => match v.get_ref() {
                DeValue::String(s) => match s.as_ref() {
                    "threads" => out.kind = ExecutorKind::Threads,
                    "subprocess" => out.kind = ExecutorKind::Subprocess,
                    "slurm" => out.kind = ExecutorKind::Slurm,
                    other => err(
                        errors,
                        format!("unknown executor `{other}`"),
                        v.span(),
                        "expected `threads`, `subprocess` or `slurm`",
                    ),
                },
                _ => err(
                    errors,
                    "`executor.kind` must be a string".into(),
                    v.span(),
                    "expected `threads`, `subprocess` or `slurm`",
                ),
            },
            "nodes" => {
                let DeValue::Table(nodes) = v.get_ref() else {
                    err(
                        errors,
                        "`executor.nodes` must be a table of node tables".into(),
                        v.span(),
                        "expected `[executor.nodes.NAME]`",
                    );
                    continue;
                };
                for (name, table) in nodes.iter() {
                    let mut opts = SlurmOptions::default();
                    let DeValue::Table(fields) = table.get_ref() else {
                        err(
                            errors,
                            format!("`executor.nodes.{}` must be a table", name.get_ref()),
                            table.span(),
                            "expected a table of sbatch options",
                        );
                        continue;
                    };
                    for (k, fv) in fields.iter() {
                        if !slurm_field(origin, &mut opts, k, fv, errors) {
                            errors.push(
                                ConfigError::new(
                                    "judgeflow::config::executor",
                                    format!(
                                        "unknown key `{}` in `[executor.nodes.{}]`",
                                        k.get_ref(),
                                        name.get_ref()
                                    ),
                                )
                                .at(origin, k.span(), "unknown key")
                                .suggest(k.get_ref(), TOP_KEYS[1..6].iter().copied()),
                            );
                        }
                    }
                    out.nodes
                        .insert(name.get_ref().to_string(), (opts, name.span()));
                }
            }
            _ => {
                if !slurm_field(origin, &mut out.slurm, key, v, errors) {
                    errors.push(
                        ConfigError::new(
                            "judgeflow::config::executor",
                            format!("unknown key `{}` in `[executor]`", key.get_ref()),
                        )
                        .at(origin, key.span(), "unknown key")
                        .suggest(key.get_ref(), TOP_KEYS),
                    );
                }
            }
        }
    }
    out
}

/// Reads one sbatch option into `opts`; false when `key` is none.
fn slurm_field(
    origin: &Origin,
    opts: &mut SlurmOptions,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    v: &Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> bool {
    let string = |errors: &mut Vec<ConfigError>| match v.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        _ => {
            errors.push(
                ConfigError::new(
                    "judgeflow::config::executor",
                    format!("`{}` must be a string", key.get_ref()),
                )
                .at(origin, v.span(), "expected a string"),
            );
            None
        }
    };
    match key.get_ref().as_ref() {
        "partition" => opts.partition = string(errors),
        "account" => opts.account = string(errors),
        "time" => opts.time = string(errors),
        "gpus_as" => match string(errors).as_deref() {
            Some("gres") => opts.gpus_as = Some(GpuFlag::Gres),
            Some("gpus") => opts.gpus_as = Some(GpuFlag::Gpus),
            Some(other) => errors.push(
                ConfigError::new(
                    "judgeflow::config::executor",
                    format!("unknown way of asking for GPUs `{other}`"),
                )
                .at(origin, v.span(), "expected `gres` or `gpus`"),
            ),
            None => {}
        },
        "extra" => match v.get_ref() {
            DeValue::Array(items)
                if items
                    .iter()
                    .all(|i| matches!(i.get_ref(), DeValue::String(_))) =>
            {
                opts.extra = items
                    .iter()
                    .filter_map(|i| match i.get_ref() {
                        DeValue::String(s) => Some(s.to_string()),
                        _ => None,
                    })
                    .collect();
            }
            _ => errors.push(
                ConfigError::new(
                    "judgeflow::config::executor",
                    "`extra` must be an array of strings",
                )
                .at(
                    origin,
                    v.span(),
                    "expected sbatch flags, e.g. [\"--qos=high\"]",
                ),
            ),
        },
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_overrides_replace_fields_and_append_flags() {
        let base = SlurmOptions {
            partition: Some("cpu".into()),
            time: Some("01:00:00".into()),
            extra: vec!["--qos=low".into()],
            ..SlurmOptions::default()
        };
        let over = SlurmOptions {
            time: Some("12:00:00".into()),
            gpus_as: Some(GpuFlag::Gpus),
            extra: vec!["--exclusive".into()],
            ..SlurmOptions::default()
        };
        let flags = base.merged(&over).sbatch_flags(2);
        assert_eq!(
            flags,
            [
                "--partition=cpu",
                "--time=12:00:00",
                "--gpus=2",
                "--qos=low",
                "--exclusive"
            ]
        );
        assert_eq!(
            base.sbatch_flags(1),
            [
                "--partition=cpu",
                "--time=01:00:00",
                "--gres=gpu:1",
                "--qos=low"
            ]
        );
    }
}
