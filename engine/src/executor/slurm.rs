//! The `slurm` executor: each node is an `sbatch` job running `judgeflow exec-node`, with the
//! pipeline's sbatch options (`[executor]`), its GPUs as `--gres=gpu:N` or `--gpus=N`, and its
//! output in the node's log. A job is done when its worker wrote its status file (the cheap,
//! common case) or when `scontrol` says it left the running states (cancelled, timed out,
//! failed, node failure); `scancel` cancels it. No accounting database (`sacct`) is needed.

use std::path::PathBuf;
use std::process::Command;

use super::{Executor, Job, JobSpec, JobState, TASK_ENV, status_path, worker_command};
use crate::error::{Error, Result};

pub(super) struct Slurm;

impl Slurm {
    /// Checks that Slurm's commands are here.
    pub(super) fn new() -> Result<Self> {
        match Command::new("sbatch").arg("--version").output() {
            Ok(out) if out.status.success() => Ok(Slurm),
            _ => Err(Error::usage(
                "`--executor slurm` needs Slurm's `sbatch`, which is not on this machine's PATH",
                Some(
                    "run the driver on a Slurm login node, or pick `--executor subprocess` \
                     (scripts/slurm_local.sh starts a one-machine Slurm for testing)"
                        .into(),
                ),
            )),
        }
    }
}

/// `word` quoted for `sh`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

impl Executor for Slurm {
    fn submit(&self, job: &JobSpec<'_>) -> Result<Job> {
        let (program, args) = worker_command(job.task)?;
        let script_path = job.task.with_extension("sbatch");
        let mut script = String::from("#!/bin/sh\n# written by judgeflow: one pipeline node\n");
        script.push_str(&format!(
            "export {TASK_ENV}={}\n",
            quote(&job.task.display().to_string())
        ));
        script.push_str("exec");
        for w in std::iter::once(program.display().to_string()).chain(args) {
            script.push(' ');
            script.push_str(&quote(&w));
        }
        script.push('\n');
        std::fs::write(&script_path, script)
            .map_err(|e| Error::io("cannot write the job script", &script_path, e))?;
        let name: String = job
            .node
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '@' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let out = Command::new("sbatch")
            .arg("--parsable")
            .arg(format!("--job-name=jf-{name}"))
            .arg(format!("--output={}", job.log.display()))
            .arg("--open-mode=append")
            .args(job.slurm.sbatch_flags(job.gpus))
            .arg(&script_path)
            .output()
            .map_err(|e| Error::io("cannot run sbatch", &script_path, e))?;
        if !out.status.success() {
            return Err(Error::NodeFailed {
                node: job.node.to_string(),
                op: "sbatch".into(),
                cause: miette::miette!(
                    "sbatch refused the job: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        // `--parsable` prints `ID` or `ID;CLUSTER`.
        let id = text
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        if id.is_empty() {
            return Err(Error::usage(
                format!("sbatch printed no job id (it printed `{}`)", text.trim()),
                None,
            ));
        }
        Ok(Job {
            id,
            child: None,
            status: Some(status_path(job.task)),
        })
    }

    fn poll(&self, job: &Job) -> Result<JobState> {
        if job.status.as_ref().is_some_and(|s: &PathBuf| s.exists()) {
            return Ok(JobState::Ended {
                detail: format!("finished (Slurm job {})", job.id),
            });
        }
        let out = Command::new("scontrol")
            .args(["show", "job", "-o", &job.id])
            .output()
            .map_err(|e| Error::io("cannot run scontrol", std::path::Path::new("scontrol"), e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            // Gone from the controller's memory (MinJobAge passed): it ended long ago.
            return Ok(JobState::Ended {
                detail: format!("left Slurm's queue (job {})", job.id),
            });
        }
        let field = |name: &str| {
            text.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name))
                .unwrap_or("?")
                .to_string()
        };
        let state = field("JobState=");
        // COMPLETING counts as running: its final state (CANCELLED, TIMEOUT, ...) is what the
        // failure must say; a worker that finished normally was seen by its status file above.
        Ok(match state.as_str() {
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED" | "REQUEUED"
            | "RESIZING" | "SIGNALING" | "STAGE_OUT" | "REQUEUE_HOLD" | "REQUEUE_FED" => {
                JobState::Running
            }
            _ => JobState::Ended {
                detail: format!(
                    "ended as Slurm job {} in state {state} (exit code {})",
                    job.id,
                    field("ExitCode=")
                ),
            },
        })
    }

    fn cancel(&self, job: &Job) {
        let _ = Command::new("scancel").arg(&job.id).status();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(super::quote("a'b c"), r"'a'\''b c'");
    }
}
